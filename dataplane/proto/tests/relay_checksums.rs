//! UDP checksums: verified where the relay would otherwise authenticate corruption, carried
//! where it relays a payload unchanged, left to an offloading NIC where that is safe, and
//! taken from the receiving NIC's verdict where it has one.

mod util;

use relay_proto::relay::{DropReason, RxChecksum, Verdict};
use relay_proto::wire;
use relay_srtp::{Context, ContextConfig, SdesKey, Suite};
use util::*;

/// Two calls from a plain-RTP caller: "to-srtp" (port 40000, the callee gets SRTP with `kb`)
/// and "plain" (port 41000, plain RTP both ways), both to the callee at 198.19.0.20:6000.
fn add_plain_caller_calls(h: &mut Harness, kb: &SdesKey) {
    h.add(
        &Call::new("to-srtp")
            .a("198.18.0.1:40000", None)
            .b_keys(None, Some(kb)),
    );
    h.add(
        &Call::new("plain")
            .a("198.18.0.1:41000", None)
            .b("198.19.0.1:41002", Some("198.19.0.20:6000")),
    );
}

/// The UDP checksum: plain RTP that is about to be encrypted is verified (else corruption
/// would leave authenticated); plain RTP relayed as it is carries its payload's sum to the new
/// checksum, so a corrupted datagram is still detectably corrupt at the far end; IPv6 without
/// a checksum is refused (RFC 8200 section 8.1); IPv4 without one is relayed with a real one.
#[test]
fn udp_checksums_are_verified_or_carried() {
    let mut h = Harness::new();
    h.now_ns = 5;
    let kb = key(Suite::AesCm128HmacSha1_80, 2);
    add_plain_caller_calls(&mut h, &kb);
    h.add(
        &Call::new("plain6")
            .a("[2001:2::1]:42000", None)
            .b("[2001:2:0:1::1]:42002", Some("[2001:2:0:1::20]:6000")),
    );
    let corrupt = |dst: &str, src: &str, seq: u16| {
        let (mut buf, len) = frame(CALLER_MAC, src, dst, &rtp(seq, 160));
        buf[len - 7] ^= 0x40;
        (buf, len)
    };
    // Plain in, SRTP out: verified.
    let (mut buf, len) = corrupt("198.18.0.1:40000", "198.18.0.10:5004", 1);
    assert_eq!(
        h.process(0, &mut buf, len),
        Verdict::Drop(DropReason::BadChecksum)
    );
    let (mut buf, len) = frame(
        CALLER_MAC,
        "198.18.0.10:5004",
        "198.18.0.1:40000",
        &rtp(2, 160),
    );
    assert!(matches!(
        h.process(0, &mut buf, len),
        Verdict::Forward { .. }
    ));
    // Plain in, plain out: intact stays intact, corrupt stays corrupt, both rewritten.
    for (seq, bad) in [(1u16, false), (2, true), (3, false)] {
        let (mut buf, len) = if bad {
            corrupt("198.18.0.1:41000", "198.18.0.10:5004", seq)
        } else {
            frame(
                CALLER_MAC,
                "198.18.0.10:5004",
                "198.18.0.1:41000",
                &rtp(seq, 160),
            )
        };
        let Verdict::Forward { len, .. } = h.process(0, &mut buf, len) else {
            panic!("plain RTP is relayed");
        };
        let u = wire::parse_udp(&buf[..len]).unwrap();
        assert_eq!(u.dst, addr("198.19.0.20:6000"));
        assert_eq!(wire::udp_checksum_ok(&buf[..len], &u), !bad, "seq {seq}");
    }
    // IPv4 without a checksum: relayed with one.
    let (mut buf, len) = frame(
        CALLER_MAC,
        "198.18.0.10:5004",
        "198.18.0.1:41000",
        &rtp(4, 160),
    );
    buf[40..42].copy_from_slice(&[0, 0]);
    let Verdict::Forward { len, .. } = h.process(0, &mut buf, len) else {
        panic!("IPv4 without a UDP checksum is relayed");
    };
    let u = wire::parse_udp(&buf[..len]).unwrap();
    assert!(buf[u.l4 + 6..u.l4 + 8] != [0, 0] && wire::udp_checksum_ok(&buf[..len], &u));
    // IPv6 without a checksum: refused.
    let (mut buf, len) = frame(
        CALLER_MAC,
        "[2001:2::10]:5004",
        "[2001:2::1]:42000",
        &rtp(1, 160),
    );
    buf[60..62].copy_from_slice(&[0, 0]);
    assert_eq!(
        h.process(0, &mut buf, len),
        Verdict::Drop(DropReason::BadChecksum)
    );
    assert_eq!(h.relay.stats.drops[DropReason::BadChecksum.index()], 2);
}

/// Completes a UDP checksum as a NIC does for `RTE_MBUF_F_TX_UDP_CKSUM`: sums from the UDP
/// header on, over the pseudo-header sum the relay left in the checksum field.
fn complete_checksum(frame: &mut [u8], o: wire::ChecksumOffload) {
    let l4 = usize::from(o.l2_len) + usize::from(o.l3_len);
    let c = match !(wire::checksum_add(0, &frame[l4..]) as u16) {
        0 => 0xffff,
        c => c,
    };
    frame[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
}

/// On a port whose NIC completes UDP checksums, the relay leaves it the checksum of every
/// datagram whose payload was authenticated or protected here, and of no other: plain RTP
/// relayed as plain keeps the checksum carried from the sender (the NIC would bless a
/// corrupted payload). Completed as the NIC completes it, every checksum is right.
#[test]
fn udp_checksums_are_left_to_an_offloading_nic_where_safe() {
    let mut h = Harness::with_offload();
    h.now_ns = 5;
    let (ka, kb) = (
        key(Suite::AesCm128HmacSha1_80, 1),
        key(Suite::AesCm128HmacSha1_80, 2),
    );
    let calls = [
        ("srtp-srtp", Some(&ka), Some(&kb), 40000u16, true),
        ("srtp-plain", Some(&ka), None, 41000, true),
        ("plain-srtp", None, Some(&kb), 42000, true),
        ("plain-plain", None, None, 43000, false),
    ];
    let mut peers = Vec::new();
    for (id, receive, send, port, _) in calls {
        let call = Call::new(id)
            .a(&format!("198.18.0.1:{port}"), None)
            .a_keys(receive, None)
            .b(
                &format!("198.19.0.1:{}", port + 2),
                Some("198.19.0.20:6000"),
            )
            .b_keys(None, send);
        peers.push(h.add(&call));
    }
    for ((id, _, _, _, offloaded), p) in calls.into_iter().zip(&mut peers) {
        for seq in 1..4u16 {
            let (mut buf, len, plain) = p.caller.send(seq, 160);
            let Verdict::Forward {
                port: out,
                len,
                offload,
            } = h.process(0, &mut buf, len)
            else {
                panic!("{id}: not relayed");
            };
            assert_eq!(out, 1);
            assert_eq!(offload.is_some(), offloaded, "{id}");
            if let Some(o) = offload {
                assert_eq!((o.l2_len, o.l3_len, o.ipv6), (18, 20, false), "{id}");
                complete_checksum(&mut buf[..len], o);
            }
            let u = wire::parse_udp(&buf[..len]).unwrap();
            assert!(wire::udp_checksum_ok(&buf[..len], &u), "{id} seq {seq}");
            let got = buf[u.payload..u.payload + u.payload_len].to_vec();
            assert_eq!(p.callee.open(got).unwrap(), plain, "{id} seq {seq}");
        }
    }
}

/// What the receiving NIC says of a UDP checksum replaces the relay's own check where it
/// would make one (plain RTP about to be encrypted), and a checksum field the NIC calls
/// meaningless over a verified payload is not carried into the new one.
#[test]
fn a_nic_checked_udp_checksum_is_not_checked_again() {
    let mut h = Harness::new();
    let kb = key(Suite::AesCm128HmacSha1_80, 2);
    add_plain_caller_calls(&mut h, &kb);
    let to = |port: u16, seq: u16, field: Option<[u8; 2]>| {
        let (mut buf, len) = frame(
            CALLER_MAC,
            "198.18.0.10:5004",
            &format!("198.18.0.1:{port}"),
            &rtp(seq, 160),
        );
        if let Some(f) = field {
            buf[40..42].copy_from_slice(&f);
        }
        (buf, len)
    };
    let mut callee = Context::new(&kb, ContextConfig::default());
    // Plain in, SRTP out, with a wrong checksum field: the NIC's word decides.
    for (seq, nic, relayed) in [
        (1u16, RxChecksum::Unknown, false),
        (2, RxChecksum::Bad, false),
        (3, RxChecksum::Good, true),
        (4, RxChecksum::PayloadVerified, true),
    ] {
        let (mut buf, len) = to(40000, seq, Some([0x12, 0x34]));
        let v = h.relay.process_checked(0, &mut buf, len, 5, nic);
        if relayed {
            let (_, _, mut out) = forwarded(v, &buf);
            let n = callee.unprotect_rtp(&mut out).unwrap();
            assert_eq!(out[..n], rtp(seq, 160)[..], "{nic:?}");
        } else {
            assert_eq!(v, Verdict::Drop(DropReason::BadChecksum), "{nic:?}");
        }
    }
    // A right checksum the NIC calls bad is dropped: the NIC saw the bytes on the wire.
    let (mut buf, len) = to(40000, 5, None);
    assert_eq!(
        h.relay
            .process_checked(0, &mut buf, len, 5, RxChecksum::Bad),
        Verdict::Drop(DropReason::BadChecksum)
    );
    // Plain to plain: a meaningless field over a verified payload gets a fresh, right
    // checksum (carrying it would send a wrong one); a good one is carried as before.
    for (seq, nic) in [(1u16, RxChecksum::PayloadVerified), (2, RxChecksum::Good)] {
        let field = (nic == RxChecksum::PayloadVerified).then_some([0x12, 0x34]);
        let (mut buf, len) = to(41000, seq, field);
        let (_, u, out) = forwarded(h.relay.process_checked(0, &mut buf, len, 5, nic), &buf);
        assert_eq!(u.dst, addr("198.19.0.20:6000"));
        assert_eq!(out, rtp(seq, 160));
    }
}
