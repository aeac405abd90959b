//! Two real baresip user agents in two namespaces, joined by one veth pair, call each other
//! over SIP/TLS with SDES SRTP; tcpdump captures the media on the veth and libsrtp checks
//! every packet against the key its sender put in its own SDP. This proves the harness end
//! to end before the SBC is put in the middle (see `relay_testsupport::topology`).
//!
//! Needs root and baresip; skipped (with the reason) otherwise. Addresses in 198.18.30.0/24
//! and 198.18.31.0/24 only; namespaces, veth pairs and processes are removed however it ends.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use relay_testsupport::baresip::{Baresip, BaresipOpts, Direction};
use relay_testsupport::capture::Capture;
use relay_testsupport::netns::{Netns, Veth};
use relay_testsupport::srtp_check;

/// A test CA and, per name, a PEM file with a leaf certificate (IP SAN, server and client
/// use) and its key, as baresip's `sip_certificate` wants them: both in one file.
struct Pki {
    ca: PathBuf,
    leaves: Vec<PathBuf>,
}

fn make_pki(dir: &Path, leaves: &[(&str, Ipv4Addr)]) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "relay test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    let leaves = leaves
        .iter()
        .map(|(name, ip)| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(DnType::CommonName, *name);
            params.subject_alt_names = vec![SanType::IpAddress((*ip).into())];
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
            let path = dir.join(format!("{name}.pem"));
            std::fs::write(&path, format!("{}{}", cert.pem(), key.serialize_pem())).unwrap();
            path
        })
        .collect();
    Pki { ca, leaves }
}

const ALICE: Ipv4Addr = Ipv4Addr::new(198, 18, 30, 1);
const BOB: Ipv4Addr = Ipv4Addr::new(198, 18, 30, 2);
const WAIT: Duration = Duration::from_secs(10);

#[test]
fn alice_calls_bob_over_tls_with_sdes_srtp() {
    if let Some(why) = relay_testsupport::skip_reason(true) {
        eprintln!("skipped: {why}");
        return;
    }
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let pki = make_pki(tmp.path(), &[("alice", ALICE), ("bob", BOB)]);
    let ns_alice = Netns::new("bsa").unwrap();
    let ns_bob = Netns::new("bsb").unwrap();
    let _link = Veth::new(
        &ns_alice,
        "alice0",
        "198.18.30.1/24",
        &ns_bob,
        "bob0",
        "198.18.30.2/24",
    )
    .unwrap();
    let capture =
        Capture::start(&ns_alice, "alice0", &tmp.path().join("call.pcap"), "udp").unwrap();

    let bob = Baresip::start(
        &ns_bob,
        &BaresipOpts::new(
            "sip:bob@198.18.30.2;transport=tls",
            SocketAddrV4::new(BOB, 5061),
            &pki.leaves[1],
            &pki.ca,
        ),
    )
    .unwrap();
    let alice = Baresip::start(
        &ns_alice,
        &BaresipOpts::new(
            "sip:alice@198.18.30.1;transport=tls",
            SocketAddrV4::new(ALICE, 5061),
            &pki.leaves[0],
            &pki.ca,
        ),
    )
    .unwrap();
    let t_ready = t0.elapsed();

    // baresip appends the account's ;transport=tls to the URI.
    alice.dial("sip:bob@198.18.30.2").unwrap();
    let established = alice.wait_event("CALL_ESTABLISHED", WAIT).unwrap();
    bob.wait_event("CALL_ESTABLISHED", WAIT).unwrap();
    let t_established = t0.elapsed();
    let menc = alice.wait_event("CALL_MENC", WAIT).unwrap();
    assert_eq!(menc.param, "0,audio,AES_CM_128_HMAC_SHA1_80", "{menc:?}");

    // ~2 s of media both ways.
    std::thread::sleep(Duration::from_secs(2));
    alice.hangup().unwrap();
    let closed = alice.wait_event("CALL_CLOSED", WAIT).unwrap();
    assert_eq!(closed.call_id, established.call_id);
    bob.wait_event("CALL_CLOSED", WAIT).unwrap();
    let t_closed = t0.elapsed();
    let captured = capture.stop().unwrap();

    // Signalling went over TLS: alice's INVITE as she sent it and as bob received it.
    let invite_sent = alice
        .sip_messages()
        .into_iter()
        .find(|m| m.start_line().starts_with("INVITE "))
        .unwrap_or_else(|| panic!("no INVITE in alice's trace:\n{}", alice.sip_trace()));
    assert_eq!(invite_sent.transport, "TLS");
    assert_eq!(invite_sent.dst, "198.18.30.2:5061".parse().unwrap());
    assert!(bob
        .sip_messages()
        .iter()
        .any(|m| m.start_line().starts_with("INVITE ") && m.transport == "TLS"));

    // Each endpoint saw its own key go out and its peer's come in.
    let seen_by_alice = alice.sdp_crypto_seen();
    let seen_by_bob = bob.sdp_crypto_seen();
    for seen in [&seen_by_alice, &seen_by_bob] {
        assert!(
            seen.iter().any(|c| c.direction == Direction::Sent)
                && seen.iter().any(|c| c.direction == Direction::Received),
            "{seen:#?}"
        );
        assert!(seen.iter().all(|c| c.suite == "AES_CM_128_HMAC_SHA1_80"));
    }
    let alice_key = alice.sent_key().unwrap();
    let bob_key = bob.sent_key().unwrap();
    assert_eq!(bob.received_key().unwrap(), alice_key);
    assert_eq!(alice.received_key().unwrap(), bob_key);
    assert_ne!(alice_key, bob_key);

    // Every SRTP (and SRTCP) packet authenticates with its sender's key and not the other's.
    let check =
        srtp_check::check_call(&captured.datagrams, ALICE, &alice_key, BOB, &bob_key).unwrap();
    check.verdict(80).unwrap();
    // PCMU, 20 ms: 12 bytes of header and 160 of payload once decrypted.
    assert_eq!(check.a_to_b.rtp_plain_sizes, BTreeSet::from([172]));
    assert_eq!(check.b_to_a.rtp_plain_sizes, BTreeSet::from([172]));
    assert_eq!(captured.kernel_drops, Some(0));
    eprintln!(
        "baresip direct call: ready {t_ready:?}, established {t_established:?}, closed \
         {t_closed:?}; SRTP alice->bob {} bob->alice {}, SRTCP {} / {}, plain RTCP by type {:?} / \
         {:?}; total {:?}",
        check.a_to_b.rtp.authenticated,
        check.b_to_a.rtp.authenticated,
        check.a_to_b.rtcp.authenticated,
        check.b_to_a.rtcp.authenticated,
        check.a_to_b.rtcp_plain,
        check.b_to_a.rtcp_plain,
        t0.elapsed()
    );
}

/// alice's account sends everything to an outbound proxy (here bob's own address, standing in
/// for the SBC): the INVITE for a URI whose host is nowhere goes to the proxy with a Route
/// header, which is how the SBC tests reach the SBC.
#[test]
fn outbound_proxy_receives_the_invite() {
    if let Some(why) = relay_testsupport::skip_reason(true) {
        eprintln!("skipped: {why}");
        return;
    }
    let alice_ip = Ipv4Addr::new(198, 18, 31, 1);
    let proxy_ip = Ipv4Addr::new(198, 18, 31, 2);
    let tmp = tempfile::tempdir().unwrap();
    let pki = make_pki(tmp.path(), &[("alice", alice_ip), ("proxy", proxy_ip)]);
    let ns_alice = Netns::new("bpa").unwrap();
    let ns_proxy = Netns::new("bpp").unwrap();
    let _link = Veth::new(
        &ns_alice,
        "alice0",
        "198.18.31.1/24",
        &ns_proxy,
        "proxy0",
        "198.18.31.2/24",
    )
    .unwrap();
    let proxy = Baresip::start(
        &ns_proxy,
        &BaresipOpts::new(
            "sip:bob@198.18.31.2;transport=tls",
            SocketAddrV4::new(proxy_ip, 5061),
            &pki.leaves[1],
            &pki.ca,
        ),
    )
    .unwrap();
    let alice = Baresip::start(
        &ns_alice,
        &BaresipOpts::new(
            "sip:alice@198.18.31.1;transport=tls",
            SocketAddrV4::new(alice_ip, 5061),
            &pki.leaves[0],
            &pki.ca,
        )
        .with_outbound_proxy("sip:198.18.31.2:5061;transport=tls"),
    )
    .unwrap();
    // 198.18.31.99 exists nowhere: the INVITE can only arrive through the proxy.
    alice.dial("sip:bob@198.18.31.99").unwrap();
    proxy.wait_event("CALL_ESTABLISHED", WAIT).unwrap();
    alice.wait_event("CALL_ESTABLISHED", WAIT).unwrap();
    let invite = proxy
        .sip_messages()
        .into_iter()
        .find(|m| m.start_line().starts_with("INVITE "))
        .unwrap();
    assert_eq!(
        invite.start_line(),
        "INVITE sip:bob@198.18.31.99;transport=tls SIP/2.0"
    );
    assert_eq!(
        invite.header("Route"),
        Some("<sip:198.18.31.2:5061;transport=tls;lr>")
    );
    assert_eq!(invite.src.ip(), std::net::IpAddr::V4(alice_ip));
    alice.hangup().unwrap();
    proxy.wait_event("CALL_CLOSED", WAIT).unwrap();
}
