//! Published test vectors, verbatim: RFC 3711 Appendix B.2, RFC 7714 sections 16 and 17,
//! and libsrtp's reference packets (`srtp_driver.c`, the vectors every SRTP stack checks).
//! The key derivation vectors (RFC 3711 B.3, RFC 6188 7.2) are in `kdf.rs`.

use crate::test_util::hex;
use crate::{Context, MasterKey, SrtpError, Suite};

#[test]
fn rfc3711_b2_aes_cm_keystream() {
    //= https://www.rfc-editor.org/rfc/rfc3711#appendix-B.2
    //= type=test
    //# Session Key:      2B7E151628AED2A6ABF7158809CF4F3C
    //# Rollover Counter: 00000000
    //# Sequence Number:  0000
    //# SSRC:             00000000
    //# Session Salt:     F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000 (already shifted)
    //# Offset:           F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000
    let key = hex("2B7E151628AED2A6ABF7158809CF4F3C");
    let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000").try_into().unwrap();
    let mut stream = vec![0u8; 48];
    Context::keystream_for_test(&key, &iv, &mut stream);
    assert_eq!(
        stream,
        hex("E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0")
    );
    // The last blocks of the table: counters FEFF, FF00, FF01.
    let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF").try_into().unwrap();
    let mut stream = vec![0u8; 48];
    Context::keystream_for_test(&key, &iv, &mut stream);
    assert_eq!(
        stream,
        hex("EC8CDF7398607CB0F2D21675EA9EA1E4 362B7C3C6773516318A077D7FC5073AE 6A2CC3787889374FBEB4C81B17BA6C44")
    );
}

fn libsrtp_test_key(suite: Suite) -> MasterKey {
    match suite.key_len() {
        16 => MasterKey::new(
            suite,
            &hex("e1f97a0d3e018be0d64fa32c06de4139"),
            &hex("0ec675ad498afeebb6960b3aabe6"),
        ),
        _ => MasterKey::new(
            suite,
            &hex("f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6"),
            &hex("3b04803de51ee7c96423ab5b78d2"),
        ),
    }
    .unwrap()
}

/// Protects `plain` with a fresh context and checks the result, then unprotects it back.
fn check_rtp(suite: Suite, master: &MasterKey, plain: &[u8], protected: &[u8]) {
    let mut tx = Context::from_master(master);
    let mut buf = vec![0u8; plain.len() + 64];
    buf[..plain.len()].copy_from_slice(plain);
    let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
    assert_eq!(&buf[..n], protected, "{suite} protect");
    let mut rx = Context::from_master(master);
    let mut packet = protected.to_vec();
    let n = rx.unprotect_rtp(&mut packet).unwrap();
    assert_eq!(&packet[..n], plain, "{suite} unprotect");
    // The same packet again is a replay.
    let mut again = protected.to_vec();
    assert_eq!(rx.unprotect_rtp(&mut again), Err(SrtpError::Replayed));
}

#[test]
fn libsrtp_reference_packet_aes_cm_128_hmac_sha1_80() {
    let suite = Suite::AesCm128HmacSha1_80;
    check_rtp(
        suite,
        &libsrtp_test_key(suite),
        &hex("800f1234decafbadcafebabe abababababababababababababababab"),
        &hex("800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb"),
    );
}

#[test]
fn libsrtp_reference_packet_empty_payload() {
    let suite = Suite::AesCm128HmacSha1_80;
    check_rtp(
        suite,
        &libsrtp_test_key(suite),
        &hex("800f1234decafbadcafebabe"),
        &hex("800f1234decafbadcafebabe 773c2e1cd91d590d16e5"),
    );
}

#[test]
fn libsrtp_reference_packet_aes_256_cm_hmac_sha1_80() {
    let suite = Suite::AesCm256HmacSha1_80;
    check_rtp(
        suite,
        &libsrtp_test_key(suite),
        &hex("800f1234decafbadcafebabe abababababababababababababababab"),
        &hex("800f1234decafbadcafebabe f1d9de17ff251ff1aa007774b0b4b40d a08d9d9a5b3a55d8873b"),
    );
}

#[test]
fn libsrtp_reference_srtcp_packet_aes_cm_128_hmac_sha1_80() {
    let master = libsrtp_test_key(Suite::AesCm128HmacSha1_80);
    let plain = hex("81c8000bcafebabe abababababababababababababababab");
    let protected =
        hex("81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798");
    let mut tx = Context::from_master(&master);
    let mut buf = vec![0u8; 64];
    buf[..plain.len()].copy_from_slice(&plain);
    // The first SRTCP packet carries index 1, as libsrtp sends it.
    let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
    assert_eq!(&buf[..n], &protected[..]);
    let mut rx = Context::from_master(&master);
    let mut packet = protected.clone();
    let n = rx.unprotect_rtcp(&mut packet).unwrap();
    assert_eq!(&packet[..n], &plain[..]);
    let mut again = protected.clone();
    assert_eq!(rx.unprotect_rtcp(&mut again), Err(SrtpError::Replayed));
}

const RFC7714_KEY_128: &str = "000102030405060708090a0b0c0d0e0f";
const RFC7714_KEY_256: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const RFC7714_SALT: &str = "517569642070726f2071756f";
const RFC7714_RTP: &str = "8040f17b8041f8d35501a0b2 47616c6c696120657374206f6d6e69732064697669736120696e207061727465732074726573";
const RFC7714_RTCP: &str =
    "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";

fn rfc7714_context(suite: Suite, key: &str) -> Context {
    Context::from_session_keys(suite, &hex(key), &hex(RFC7714_SALT), &[])
}

#[test]
fn rfc7714_16_srtp_aead_aes_128_and_256_gcm() {
    //= https://www.rfc-editor.org/rfc/rfc7714#section-16.1.1
    //= type=test
    //# Encrypted and tagged RTP packet (AEAD_AES_128_GCM)
    let cases = [
        (Suite::AeadAes128Gcm, RFC7714_KEY_128,
         "8040f17b8041f8d35501a0b2 f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833 899d7f27beb16a9152cf765ee4390cce"),
        (Suite::AeadAes256Gcm, RFC7714_KEY_256,
         "8040f17b8041f8d35501a0b2 32b1de78a822fe12ef9f78fa332e33aab18012389a58e2f3b50b2a0276ffae0f1ba63799b87b 7aa3db36dfffd6b0f9bb7878d7a76c13"),
    ];
    for (suite, key, protected) in cases {
        let plain = hex(RFC7714_RTP);
        let protected = hex(protected);
        let mut tx = rfc7714_context(suite, key);
        let mut buf = vec![0u8; plain.len() + 16];
        buf[..plain.len()].copy_from_slice(&plain);
        let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
        assert_eq!(&buf[..n], &protected[..], "{suite} protect");
        let mut rx = rfc7714_context(suite, key);
        let mut packet = protected.clone();
        let n = rx.unprotect_rtp(&mut packet).unwrap();
        assert_eq!(&packet[..n], &plain[..], "{suite} unprotect");
        // One flipped bit anywhere fails authentication and leaves the context unchanged.
        for bit in [0usize, 8 * 12 + 3, 8 * (protected.len() - 1)] {
            let mut forged = protected.clone();
            forged[bit / 8] ^= 1 << (bit % 8);
            let mut fresh = rfc7714_context(suite, key);
            assert!(fresh.unprotect_rtp(&mut forged).is_err());
            assert_eq!(fresh.roc(0x5501a0b2), None);
        }
    }
}

#[test]
fn rfc7714_17_srtcp_aead_aes_128_gcm_encrypt() {
    //= https://www.rfc-editor.org/rfc/rfc7714#section-17.1.1
    //= type=test
    //# Encrypted and tagged RTCP packet (AEAD_AES_128_GCM), SRTCP index 0x5d4
    let plain = hex(RFC7714_RTCP);
    let protected = hex(
        "81c8000d4d617273 63e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32dc676a5f1730d6fda4ce09b4686303ded0bb9275bc84aa458 96cf4d2fc5abf87245d9eade 800005d4",
    );
    let mut tx = rfc7714_context(Suite::AeadAes128Gcm, RFC7714_KEY_128);
    tx.set_srtcp_index(0x4d617273, 0x5d4);
    let mut buf = vec![0u8; plain.len() + 20];
    buf[..plain.len()].copy_from_slice(&plain);
    let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
    assert_eq!(&buf[..n], &protected[..]);
    let mut rx = rfc7714_context(Suite::AeadAes128Gcm, RFC7714_KEY_128);
    let mut packet = protected.clone();
    let n = rx.unprotect_rtcp(&mut packet).unwrap();
    assert_eq!(&packet[..n], &plain[..]);
}

#[test]
fn rfc7714_17_srtcp_aead_aes_256_gcm_decrypt() {
    //= https://www.rfc-editor.org/rfc/rfc7714#section-17.1.2
    //= type=test
    //# Encrypted and tagged RTCP packet (AEAD_AES_256_GCM)
    let protected = hex(
        "81c8000d4d617273d50ae4d1f5ce5d304ba297e47d470c282c3ece5dbffe0a50a2eaa5c1110555be8415f658c61de0476f1b6fad1d1eb30c4446839f57ff6f6cb26ac3be800005d4",
    );
    let mut rx = rfc7714_context(Suite::AeadAes256Gcm, RFC7714_KEY_256);
    let mut packet = protected.clone();
    let n = rx.unprotect_rtcp(&mut packet).unwrap();
    assert_eq!(&packet[..n], &hex(RFC7714_RTCP)[..]);
}
