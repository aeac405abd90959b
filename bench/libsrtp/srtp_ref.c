/*
 * srtp_ref: Debian's libsrtp2 as a reference peer and a benchmark baseline for relay-srtp.
 * Test and benchmark tool only; never part of the product.
 *
 *   srtp_ref stream protect|unprotect rtp|rtcp SUITE KEYSALT_HEX [MKI_HEX]
 *       Reads records from stdin: u32 length (little-endian) + packet bytes.
 *       Writes records to stdout: i32 libsrtp status + u32 length + bytes (the result, or the
 *       input unchanged on error). One libsrtp session (wildcard SSRC) for the whole stream.
 *   srtp_ref bench SUITE PACKETS
 *       Times protect, unprotect and re-key (unprotect + protect with a second key) of
 *       PACKETS fresh 172-byte RTP packets (12-byte header + 160-byte payload) on one core,
 *       and prints "op packets_per_second" lines.
 *
 * SUITE is one of the SDES names (AES_CM_128_HMAC_SHA1_80, ..., AEAD_AES_256_GCM).
 */
#include <srtp2/srtp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PACKET 4096

static int set_suite(const char *suite, srtp_policy_t *p, int *key_len)
{
    if (!strcmp(suite, "AES_CM_128_HMAC_SHA1_80")) {
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtcp);
        *key_len = 30;
    } else if (!strcmp(suite, "AES_CM_128_HMAC_SHA1_32")) {
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&p->rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtcp); /* SRTCP keeps 80 bits */
        *key_len = 30;
    } else if (!strcmp(suite, "AES_256_CM_HMAC_SHA1_80")) {
        srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&p->rtp);
        srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&p->rtcp);
        *key_len = 46;
    } else if (!strcmp(suite, "AES_256_CM_HMAC_SHA1_32")) {
        srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32(&p->rtp);
        srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&p->rtcp);
        *key_len = 46;
    } else if (!strcmp(suite, "AEAD_AES_128_GCM")) {
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&p->rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&p->rtcp);
        *key_len = 28;
    } else if (!strcmp(suite, "AEAD_AES_256_GCM")) {
        srtp_crypto_policy_set_aes_gcm_256_16_auth(&p->rtp);
        srtp_crypto_policy_set_aes_gcm_256_16_auth(&p->rtcp);
        *key_len = 44;
    } else {
        return -1;
    }
    return 0;
}

static int unhex(const char *hex, unsigned char *out, size_t max)
{
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > max)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned int b;
        if (sscanf(hex + 2 * i, "%2x", &b) != 1)
            return -1;
        out[i] = (unsigned char)b;
    }
    return (int)(n / 2);
}

static void die(const char *msg)
{
    fprintf(stderr, "srtp_ref: %s\n", msg);
    exit(2);
}

/* A session for SUITE and KEY (key||salt), wildcard inbound or outbound SSRC, optional MKI. */
static srtp_t make_session(const char *suite, unsigned char *key, int key_len, int outbound,
                           unsigned char *mki, int mki_len)
{
    srtp_policy_t policy;
    int want;
    static srtp_master_key_t master;
    static srtp_master_key_t *masters[1];
    srtp_t session;

    memset(&policy, 0, sizeof(policy));
    if (set_suite(suite, &policy, &want))
        die("unknown suite");
    if (want != key_len)
        die("key||salt has the wrong length for the suite");
    policy.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
    policy.window_size = 128;
    policy.allow_repeat_tx = 0;
    if (mki_len > 0) {
        master.key = key;
        master.mki_id = mki;
        master.mki_size = (unsigned)mki_len;
        masters[0] = &master;
        policy.keys = masters;
        policy.num_master_keys = 1;
    } else {
        policy.key = key;
    }
    if (srtp_create(&session, &policy) != srtp_err_status_ok)
        die("srtp_create failed (suite not supported by this libsrtp?)");
    return session;
}

static int stream(int argc, char **argv)
{
    unsigned char key[64], mki[16];
    int key_len, mki_len = 0;
    int protect, rtcp;
    srtp_t session;
    uint32_t len;
    static unsigned char buf[MAX_PACKET + 256];

    if (argc < 6)
        die("usage: stream protect|unprotect rtp|rtcp SUITE KEYSALT_HEX [MKI_HEX]");
    protect = !strcmp(argv[2], "protect");
    rtcp = !strcmp(argv[3], "rtcp");
    if ((key_len = unhex(argv[5], key, sizeof(key))) < 0)
        die("bad key hex");
    if (argc > 6 && (mki_len = unhex(argv[6], mki, sizeof(mki))) < 0)
        die("bad MKI hex");
    session = make_session(argv[4], key, key_len, protect, mki, mki_len);

    while (fread(&len, 4, 1, stdin) == 1) {
        int n = (int)len;
        int32_t status;
        if (len > MAX_PACKET || fread(buf, 1, len, stdin) != len)
            die("bad input record");
        if (protect && rtcp)
            status = srtp_protect_rtcp_mki(session, buf, &n, mki_len > 0, 0);
        else if (protect)
            status = srtp_protect_mki(session, buf, &n, mki_len > 0, 0);
        else if (rtcp)
            status = srtp_unprotect_rtcp_mki(session, buf, &n, mki_len > 0);
        else
            status = srtp_unprotect_mki(session, buf, &n, mki_len > 0);
        if (status != srtp_err_status_ok)
            n = (int)len;
        len = (uint32_t)n;
        fwrite(&status, 4, 1, stdout);
        fwrite(&len, 4, 1, stdout);
        fwrite(buf, 1, len, stdout);
    }
    fflush(stdout);
    srtp_dealloc(session);
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_rtp(unsigned char *p, uint32_t i)
{
    p[0] = 0x80;
    p[1] = 0x00;
    p[2] = (unsigned char)(i >> 8);
    p[3] = (unsigned char)i;
    p[4] = (unsigned char)(i >> 24); p[5] = (unsigned char)(i >> 16);
    p[6] = (unsigned char)(i >> 8); p[7] = (unsigned char)i;
    p[8] = 0xca; p[9] = 0xfe; p[10] = 0xba; p[11] = 0xbe;
    memset(p + 12, (int)(i & 0xff), 160);
}

static int bench(int argc, char **argv)
{
    const int stride = 256;
    unsigned char key_a[64], key_b[64];
    int key_len;
    srtp_policy_t tmp;
    long packets;
    unsigned char *pkts;
    int *lens;
    double t0, t;

    if (argc < 4)
        die("usage: bench SUITE PACKETS");
    memset(&tmp, 0, sizeof(tmp));
    if (set_suite(argv[2], &tmp, &key_len))
        die("unknown suite");
    packets = atol(argv[3]);
    if (packets <= 0 || packets > 65536L * 64)
        die("PACKETS must be 1..4194304");
    for (int i = 0; i < key_len; i++) {
        key_a[i] = (unsigned char)(i * 7 + 1);
        key_b[i] = (unsigned char)(i * 13 + 5);
    }
    pkts = malloc((size_t)packets * stride);
    lens = malloc((size_t)packets * sizeof(int));
    if (!pkts || !lens)
        die("out of memory");

    /* protect: fresh packets, one sender session. */
    srtp_t tx_a = make_session(argv[2], key_a, key_len, 1, NULL, 0);
    for (long i = 0; i < packets; i++) {
        make_rtp(pkts + i * stride, (uint32_t)i);
        lens[i] = 172;
    }
    t0 = now();
    for (long i = 0; i < packets; i++)
        if (srtp_protect(tx_a, pkts + i * stride, &lens[i]) != srtp_err_status_ok)
            die("protect failed");
    t = now() - t0;
    printf("protect %.0f\n", (double)packets / t);

    /* unprotect: the packets just protected, in order. Keep a copy for the re-key run. */
    unsigned char *copy = malloc((size_t)packets * stride);
    int *copy_lens = malloc((size_t)packets * sizeof(int));
    if (!copy || !copy_lens)
        die("out of memory");
    memcpy(copy, pkts, (size_t)packets * stride);
    memcpy(copy_lens, lens, (size_t)packets * sizeof(int));
    srtp_t rx_a = make_session(argv[2], key_a, key_len, 0, NULL, 0);
    t0 = now();
    for (long i = 0; i < packets; i++)
        if (srtp_unprotect(rx_a, pkts + i * stride, &lens[i]) != srtp_err_status_ok)
            die("unprotect failed");
    t = now() - t0;
    printf("unprotect %.0f\n", (double)packets / t);

    /* re-key: unprotect with key A, protect with key B. */
    srtp_t rx_a2 = make_session(argv[2], key_a, key_len, 0, NULL, 0);
    srtp_t tx_b = make_session(argv[2], key_b, key_len, 1, NULL, 0);
    t0 = now();
    for (long i = 0; i < packets; i++) {
        if (srtp_unprotect(rx_a2, copy + i * stride, &copy_lens[i]) != srtp_err_status_ok)
            die("re-key unprotect failed");
        if (srtp_protect(tx_b, copy + i * stride, &copy_lens[i]) != srtp_err_status_ok)
            die("re-key protect failed");
    }
    t = now() - t0;
    printf("rekey %.0f\n", (double)packets / t);
    return 0;
}

int main(int argc, char **argv)
{
    if (srtp_init() != srtp_err_status_ok)
        die("srtp_init failed");
    if (argc > 1 && !strcmp(argv[1], "stream"))
        return stream(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "bench"))
        return bench(argc, argv);
    die("usage: srtp_ref stream ... | srtp_ref bench SUITE PACKETS");
    return 2;
}
