//! The relay's packet logic without DPDK: frames in, verdicts and rewritten frames out, with
//! relay-srtp contexts playing the two peers (relay-srtp itself is checked against libsrtp).

use std::net::{Ipv4Addr, SocketAddr};

use relay_proto::relay::{DropReason, PortAddr, Relay, RelayConfig, Verdict};
use relay_proto::wire;
use relay_session::{CallSpec, CryptoSpec, LegSpec, MediaSpec, RtcpMode, SessionsFile};
use relay_srtp::{Context, ContextConfig, MasterKey, SdesKey, SrtpError, Suite};

const RELAY_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const CALLER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const CALLEE_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x20];
const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn relay() -> Relay {
    relay_with_offload(false)
}

/// The relay of these tests; `offload`: port 1's NIC completes UDP checksums.
fn relay_with_offload(offload: bool) -> Relay {
    let ports = vec![
        PortAddr {
            port: 0,
            mac: RELAY_MAC,
            ipv4: "198.18.0.1".parse().unwrap(),
            prefix_len: 24,
            gateway: Some("198.18.0.254".parse().unwrap()),
            vlan: None,
            ipv6: Some("2001:2::1".parse().unwrap()),
            prefix6_len: 64,
            gateway6: None,
            udp_checksum_offload: false,
        },
        PortAddr {
            port: 1,
            mac: [2, 0, 0, 0, 1, 1],
            ipv4: "198.19.0.1".parse().unwrap(),
            prefix_len: 24,
            gateway: None,
            vlan: Some(42),
            ipv6: Some("2001:2:0:1::1".parse().unwrap()),
            prefix6_len: 64,
            gateway6: None,
            udp_checksum_offload: offload,
        },
    ];
    let mut r = Relay::new(ports, RelayConfig::default());
    let doc = SessionsFile::from_json(
        r#"{"version":1,"neighbours":[{"ip":"198.18.0.10","mac":"02:00:00:00:00:10"},{"ip":"198.19.0.20","mac":"02:00:00:00:00:20"},{"ip":"198.18.0.254","mac":"02:00:00:00:00:fe"},{"ip":"2001:2::10","mac":"02:00:00:00:00:10"},{"ip":"2001:2:0:1::20","mac":"02:00:00:00:00:20"}]}"#,
    )
    .unwrap();
    r.install(&doc).unwrap();
    r
}

fn key(suite: Suite, seed: u8) -> SdesKey {
    SdesKey::new(
        MasterKey::new(
            suite,
            &vec![seed; suite.key_len()],
            &vec![seed ^ 0x5a; suite.salt_len()],
        )
        .unwrap(),
    )
}

fn crypto(k: &SdesKey) -> Option<CryptoSpec> {
    Some(CryptoSpec {
        suite: k.master.suite().name().into(),
        key: k.to_inline(),
    })
}

fn leg(
    local: &str,
    remote: Option<&str>,
    receive: Option<&SdesKey>,
    send: Option<&SdesKey>,
) -> LegSpec {
    LegSpec {
        local: addr(local),
        remote: remote.map(addr),
        strict_source: false,
        receive: receive.and_then(crypto),
        send: send.and_then(crypto),
        clock_rate: 8000,
    }
}

fn call(id: &str, a: LegSpec, b: LegSpec, rtcp: RtcpMode) -> CallSpec {
    CallSpec {
        id: id.into(),
        media: vec![MediaSpec { rtcp, a, b }],
    }
}

fn rtp(seq: u16, payload: usize) -> Vec<u8> {
    let mut p = vec![0x80, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x1122_3344u32.to_be_bytes());
    p.extend((0..payload).map(|i| (i as u8) ^ (seq as u8)));
    p
}

/// A frame from `src` to `dst` carrying `payload`, with 64 bytes of room to grow.
fn frame(src_mac: [u8; 6], src: &str, dst: &str, payload: &[u8]) -> (Vec<u8>, usize) {
    let (s, d) = (addr(src), addr(dst));
    let at = if s.is_ipv4() { 42 } else { 62 };
    let mut buf = vec![0u8; at + payload.len() + 64];
    buf[at..at + payload.len()].copy_from_slice(payload);
    let l2 = wire::L2Out {
        src: src_mac,
        dst: RELAY_MAC,
        vlan: None,
    };
    let n = wire::emit_udp(&mut buf, at, payload.len(), &l2, s, d).unwrap();
    (buf, n)
}

fn protect(ctx: &mut Context, plain: &[u8]) -> Vec<u8> {
    let mut b = plain.to_vec();
    b.resize(plain.len() + 32, 0);
    let n = ctx.protect_rtp(&mut b, plain.len()).unwrap();
    b.truncate(n);
    b
}

fn forwarded(v: Verdict, buf: &[u8]) -> (u16, wire::Udp, Vec<u8>) {
    let Verdict::Forward { port, len, offload } = v else {
        panic!("not forwarded: {v:?}")
    };
    assert_eq!(offload, None, "no port offloads checksums here");
    let u = wire::parse_udp(&buf[..len]).expect("valid output frame");
    assert!(wire::udp_checksum_ok(&buf[..len], &u));
    (port, u, buf[u.payload..u.payload + u.payload_len].to_vec())
}

#[test]
fn every_mode_and_suite_relays_and_rewrites() {
    let suites: Vec<Option<Suite>> = std::iter::once(None)
        .chain(Suite::ALL.into_iter().map(Some))
        .collect();
    let mut n = 0;
    for &sin in &suites {
        for &sout in &suites {
            n += 1;
            let mut r = relay();
            let kin = sin.map(|s| key(s, 1));
            let kout = sout.map(|s| key(s, 2));
            let id = format!("call{n}");
            r.add_call(&call(
                &id,
                leg(
                    "198.18.0.1:40000",
                    Some("198.18.0.10:5004"),
                    kin.as_ref(),
                    None,
                ),
                leg(
                    "198.19.0.1:40002",
                    Some("198.19.0.20:6000"),
                    None,
                    kout.as_ref(),
                ),
                RtcpMode::Mux,
            ))
            .unwrap();
            let mut caller = kin
                .as_ref()
                .map(|k| Context::new(k, ContextConfig::default()));
            let mut callee = kout
                .as_ref()
                .map(|k| Context::new(k, ContextConfig::default()));
            for seq in [65_534u16, 65_535, 0, 1] {
                let plain = rtp(seq, 160);
                let wire_payload = match &mut caller {
                    Some(c) => protect(c, &plain),
                    None => plain.clone(),
                };
                let (mut buf, len) = frame(
                    CALLER_MAC,
                    "198.18.0.10:5004",
                    "198.18.0.1:40000",
                    &wire_payload,
                );
                let v = r.process(0, &mut buf, len, 1_000_000);
                let (port, u, mut payload) = forwarded(v, &buf);
                assert_eq!(port, 1, "{sin:?}->{sout:?}");
                assert_eq!(
                    (u.src, u.dst),
                    (addr("198.19.0.1:40002"), addr("198.19.0.20:6000"))
                );
                assert_eq!(u.l2.vlan, Some(42), "tagged for port 1");
                assert_eq!((u.l2.src, u.l2.dst), ([2, 0, 0, 0, 1, 1], CALLEE_MAC));
                let got = match &mut callee {
                    Some(c) => {
                        let n = c
                            .unprotect_rtp(&mut payload)
                            .unwrap_or_else(|e| panic!("{sin:?}->{sout:?}: {e}"));
                        payload[..n].to_vec()
                    }
                    None => payload,
                };
                assert_eq!(got, plain, "{sin:?}->{sout:?} seq {seq}");
            }
        }
    }
}

#[test]
fn bad_packets_are_dropped_and_counted_by_reason() {
    let mut r = relay();
    let (ka, kb) = (
        key(Suite::AesCm128HmacSha1_80, 1),
        key(Suite::AesCm128HmacSha1_80, 2),
    );
    r.add_call(&call(
        "c",
        leg(
            "198.18.0.1:40000",
            Some("198.18.0.10:5004"),
            Some(&ka),
            None,
        ),
        leg(
            "198.19.0.1:40002",
            Some("198.19.0.20:6000"),
            None,
            Some(&kb),
        ),
        RtcpMode::Mux,
    ))
    .unwrap();
    let mut caller = Context::new(&ka, ContextConfig::default());
    let good = protect(&mut caller, &rtp(10, 160));
    let send = |r: &mut Relay, payload: &[u8], dst: &str| {
        let (mut buf, len) = frame(CALLER_MAC, "198.18.0.10:5004", dst, payload);
        r.process(0, &mut buf, len, 5)
    };
    assert!(matches!(
        send(&mut r, &good, "198.18.0.1:40000"),
        Verdict::Forward { .. }
    ));
    assert_eq!(
        send(&mut r, &good, "198.18.0.1:40000"),
        Verdict::Drop(DropReason::Replayed)
    );
    let mut forged = protect(&mut caller, &rtp(11, 160));
    forged[20] ^= 1;
    assert_eq!(
        send(&mut r, &forged, "198.18.0.1:40000"),
        Verdict::Drop(DropReason::AuthFailed)
    );
    let fresh = protect(&mut caller, &rtp(12, 160));
    assert_eq!(
        send(&mut r, &fresh[..fresh.len() - 5], "198.18.0.1:40000"),
        Verdict::Drop(DropReason::AuthFailed)
    );
    assert_eq!(
        send(&mut r, &good[..6], "198.18.0.1:40000"),
        Verdict::Drop(DropReason::SrtpMalformed)
    );
    assert_eq!(
        send(&mut r, &good, "198.18.0.1:49999"),
        Verdict::Drop(DropReason::UnknownFlow)
    );
    assert_eq!(
        send(&mut r, &good, "198.18.0.77:40000"),
        Verdict::Drop(DropReason::NotForUs)
    );
    let (mut buf, len) = frame(CALLER_MAC, "198.18.0.10:5004", "198.18.0.1:40000", &good);
    assert_eq!(
        r.process(0, &mut buf, len - 3, 5),
        Verdict::Drop(DropReason::Truncated)
    );
    // Corrupted in flight (UDP checksum now wrong too): SRTP authentication catches it.
    let fresh = protect(&mut caller, &rtp(13, 160));
    let (mut buf, len) = frame(CALLER_MAC, "198.18.0.10:5004", "198.18.0.1:40000", &fresh);
    buf[len - 30] ^= 0xff;
    assert_eq!(
        r.process(0, &mut buf, len, 5),
        Verdict::Drop(DropReason::AuthFailed)
    );
    for garbage_len in 0..80 {
        let mut g: Vec<u8> = (0..garbage_len).map(|i| (i * 37) as u8).collect();
        g.resize(garbage_len + 16, 0);
        assert!(matches!(
            r.process(0, &mut g, garbage_len, 5),
            Verdict::Drop(_)
        ));
    }
    let stats = r.call_stats("c").unwrap();
    let a = &stats.media[0][0];
    assert_eq!(a.rx_packets, 1);
    assert_eq!(a.drops[DropReason::Replayed.index()], 1);
    assert_eq!(a.drops[DropReason::AuthFailed.index()], 3);
    assert_eq!(r.stats.drops[DropReason::UnknownFlow.index()], 1);
    assert_eq!(r.stats.drops[DropReason::NotForUs.index()], 1);
    assert_eq!(r.stats.forwarded, 1);
}

/// Two calls from a plain-RTP caller: "to-srtp" (port 40000, the callee gets SRTP with `kb`)
/// and "plain" (port 41000, plain RTP both ways), both to the callee at 198.19.0.20:6000.
fn add_plain_caller_calls(r: &mut Relay, kb: &SdesKey) {
    r.add_call(&call(
        "to-srtp",
        leg("198.18.0.1:40000", None, None, None),
        leg("198.19.0.1:40002", Some("198.19.0.20:6000"), None, Some(kb)),
        RtcpMode::Mux,
    ))
    .unwrap();
    r.add_call(&call(
        "plain",
        leg("198.18.0.1:41000", None, None, None),
        leg("198.19.0.1:41002", Some("198.19.0.20:6000"), None, None),
        RtcpMode::Mux,
    ))
    .unwrap();
}

/// The UDP checksum: plain RTP that is about to be encrypted is verified (else corruption
/// would leave authenticated); plain RTP relayed as it is carries its payload's sum to the new
/// checksum, so a corrupted datagram is still detectably corrupt at the far end; IPv6 without
/// a checksum is refused (RFC 8200 section 8.1); IPv4 without one is relayed with a real one.
#[test]
fn udp_checksums_are_verified_or_carried() {
    let mut r = relay();
    let kb = key(Suite::AesCm128HmacSha1_80, 2);
    add_plain_caller_calls(&mut r, &kb);
    r.add_call(&call(
        "plain6",
        leg("[2001:2::1]:42000", None, None, None),
        leg(
            "[2001:2:0:1::1]:42002",
            Some("[2001:2:0:1::20]:6000"),
            None,
            None,
        ),
        RtcpMode::Mux,
    ))
    .unwrap();
    let corrupt = |dst: &str, src: &str, seq: u16| {
        let (mut buf, len) = frame(CALLER_MAC, src, dst, &rtp(seq, 160));
        buf[len - 7] ^= 0x40;
        (buf, len)
    };
    // Plain in, SRTP out: verified.
    let (mut buf, len) = corrupt("198.18.0.1:40000", "198.18.0.10:5004", 1);
    assert_eq!(
        r.process(0, &mut buf, len, 5),
        Verdict::Drop(DropReason::BadChecksum)
    );
    let (mut buf, len) = frame(
        CALLER_MAC,
        "198.18.0.10:5004",
        "198.18.0.1:40000",
        &rtp(2, 160),
    );
    assert!(matches!(
        r.process(0, &mut buf, len, 5),
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
        let Verdict::Forward { len, .. } = r.process(0, &mut buf, len, 5) else {
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
    let Verdict::Forward { len, .. } = r.process(0, &mut buf, len, 5) else {
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
        r.process(0, &mut buf, len, 5),
        Verdict::Drop(DropReason::BadChecksum)
    );
    assert_eq!(r.stats.drops[DropReason::BadChecksum.index()], 2);
}

#[test]
fn latching_learns_only_from_authenticated_packets_and_strict_source_holds() {
    let mut r = relay();
    let (ka, kb) = (
        key(Suite::AesCm128HmacSha1_80, 1),
        key(Suite::AesCm128HmacSha1_80, 2),
    );
    let mut a = leg("198.18.0.1:40000", None, Some(&ka), Some(&ka));
    a.strict_source = true;
    let b = leg(
        "198.19.0.1:40002",
        Some("198.19.0.20:6000"),
        Some(&kb),
        Some(&kb),
    );
    r.add_call(&call("c", a, b, RtcpMode::Mux)).unwrap();
    let mut from_a = Context::new(&ka, ContextConfig::default());
    let mut from_b = Context::new(&kb, ContextConfig::default());
    // B -> A before A's address is known: nowhere to send.
    let p = protect(&mut from_b, &rtp(1, 20));
    let (mut buf, len) = frame(CALLEE_MAC, "198.19.0.20:6000", "198.19.0.1:40002", &p);
    assert_eq!(
        r.process(1, &mut buf, len, 1),
        Verdict::Drop(DropReason::NoDestination)
    );
    // A forged packet from an attacker does not latch.
    let mut forged = protect(
        &mut Context::new(
            &key(Suite::AesCm128HmacSha1_80, 9),
            ContextConfig::default(),
        ),
        &rtp(1, 20),
    );
    forged[15] ^= 1;
    let (mut buf, len) = frame(
        [2, 0, 0, 0, 0, 0x66],
        "198.18.0.66:7777",
        "198.18.0.1:40000",
        &forged,
    );
    assert_eq!(
        r.process(0, &mut buf, len, 2),
        Verdict::Drop(DropReason::AuthFailed)
    );
    // The genuine peer's first packet latches (from behind the gateway: NAT).
    let p = protect(&mut from_a, &rtp(1, 20));
    let (mut buf, len) = frame(GW_MAC, "203.0.113.5:31000", "198.18.0.1:40000", &p);
    assert!(matches!(
        r.process(0, &mut buf, len, 3),
        Verdict::Forward { .. }
    ));
    // Now B -> A goes to the latched address, via the gateway's MAC.
    let p = protect(&mut from_b, &rtp(2, 20));
    let (mut buf, len) = frame(CALLEE_MAC, "198.19.0.20:6000", "198.19.0.1:40002", &p);
    let (port, u, _) = forwarded(r.process(1, &mut buf, len, 4), &buf);
    assert_eq!(
        (port, u.dst, u.l2.dst),
        (0, addr("203.0.113.5:31000"), GW_MAC)
    );
    // Strict source: a genuine packet from elsewhere is refused after latching.
    let p = protect(&mut from_a, &rtp(2, 20));
    let (mut buf, len) = frame(CALLER_MAC, "198.18.0.10:5004", "198.18.0.1:40000", &p);
    assert_eq!(
        r.process(0, &mut buf, len, 5),
        Verdict::Drop(DropReason::UnexpectedSource)
    );
}

#[test]
fn arp_and_icmp_for_our_addresses_only() {
    let mut r = relay();
    let mut buf = vec![0u8; 128];
    let req = wire::Arp {
        op: 1,
        sha: CALLER_MAC,
        spa: "198.18.0.10".parse().unwrap(),
        tha: [0; 6],
        tpa: "198.18.0.1".parse().unwrap(),
    };
    let n = wire::write_arp(&mut buf, [0xff; 6], None, &req).unwrap();
    let Verdict::Reply { len } = r.process(0, &mut buf, n, 1) else {
        panic!("no ARP reply")
    };
    let l2 = wire::parse_l2(&buf[..len]).unwrap();
    let reply = wire::parse_arp(&buf[..len], &l2).unwrap();
    assert_eq!(
        (reply.op, reply.sha, reply.spa, reply.tha),
        (2, RELAY_MAC, "198.18.0.1".parse().unwrap(), CALLER_MAC)
    );
    assert_eq!(l2.dst, CALLER_MAC);
    // For an address that is not ours: silence.
    let other = wire::Arp {
        tpa: "198.18.0.99".parse().unwrap(),
        ..req
    };
    let n = wire::write_arp(&mut buf, [0xff; 6], None, &other).unwrap();
    assert_eq!(
        r.process(0, &mut buf, n, 1),
        Verdict::Drop(DropReason::NotForUs)
    );
    // ICMP echo to us is answered; to someone else dropped.
    for (dst, answered) in [
        (Ipv4Addr::new(198, 18, 0, 1), true),
        (Ipv4Addr::new(198, 18, 0, 99), false),
    ] {
        let mut f = vec![0u8; 14 + 20 + 16];
        f[0..6].copy_from_slice(&RELAY_MAC);
        f[6..12].copy_from_slice(&CALLER_MAC);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = [0x45, 0, 0, 36, 0, 1, 0, 0, 64, 1, 0, 0, 198, 18, 0, 10];
        f[14..30].copy_from_slice(&ip);
        f[30..34].copy_from_slice(&dst.octets());
        let c = !(wire::checksum_add(0, &f[14..34]) as u16);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f[34] = 8;
        f[38..42].copy_from_slice(&[0, 7, 0, 1]);
        f[42..50].copy_from_slice(b"pingpong");
        let c = !(wire::checksum_add(0, &f[34..50]) as u16);
        f[36..38].copy_from_slice(&c.to_be_bytes());
        let v = r.process(0, &mut f, 50, 1);
        if answered {
            let Verdict::Reply { len } = v else {
                panic!("no echo reply: {v:?}")
            };
            assert_eq!(f[34], 0, "echo reply");
            assert_eq!(&f[26..30], &[198, 18, 0, 1]);
            assert_eq!(&f[30..34], &[198, 18, 0, 10]);
            assert_eq!(wire::checksum_add(0, &f[34..len]), 0xffff);
            assert_eq!(&f[0..6], &CALLER_MAC);
        } else {
            assert!(matches!(v, Verdict::Drop(_)));
        }
    }
}

#[test]
fn unknown_next_hop_queues_one_arp_request() {
    let mut r = relay();
    r.add_call(&call(
        "c",
        leg("198.18.0.1:40000", Some("198.18.0.10:5004"), None, None),
        leg("198.19.0.1:40002", Some("198.19.0.33:6000"), None, None),
        RtcpMode::Mux,
    ))
    .unwrap();
    for seq in 0..3 {
        let (mut buf, len) = frame(
            CALLER_MAC,
            "198.18.0.10:5004",
            "198.18.0.1:40000",
            &rtp(seq, 20),
        );
        assert_eq!(
            r.process(0, &mut buf, len, 1),
            Verdict::Drop(DropReason::NeighbourUnresolved)
        );
    }
    let mut requests = Vec::new();
    r.drain_arp_requests(|port, f| requests.push((port, f.to_vec())));
    assert_eq!(requests.len(), 1);
    let (port, f) = &requests[0];
    let l2 = wire::parse_l2(f).unwrap();
    let arp = wire::parse_arp(f, &l2).unwrap();
    assert_eq!(
        (*port, l2.vlan, arp.op, arp.tpa),
        (1, Some(42), 1, "198.19.0.33".parse().unwrap())
    );
    // The answer teaches the relay, and traffic flows.
    let mut buf = vec![0u8; 128];
    let reply = wire::Arp {
        op: 2,
        sha: [2, 0, 0, 0, 0, 0x33],
        spa: "198.19.0.33".parse().unwrap(),
        tha: [2, 0, 0, 0, 1, 1],
        tpa: "198.19.0.1".parse().unwrap(),
    };
    let n = wire::write_arp(&mut buf, [2, 0, 0, 0, 1, 1], Some(42), &reply).unwrap();
    assert_eq!(r.process(1, &mut buf, n, 2), Verdict::Consumed);
    let (mut buf, len) = frame(
        CALLER_MAC,
        "198.18.0.10:5004",
        "198.18.0.1:40000",
        &rtp(3, 20),
    );
    let (_, u, _) = forwarded(r.process(0, &mut buf, len, 3), &buf);
    assert_eq!(u.l2.dst, [2, 0, 0, 0, 0, 0x33]);
}

#[test]
fn rtcp_mux_and_port_plus_one() {
    for mode in [RtcpMode::Mux, RtcpMode::PortPlusOne] {
        let mut r = relay();
        let (ka, kb) = (
            key(Suite::AesCm128HmacSha1_32, 1),
            key(Suite::AeadAes128Gcm, 2),
        );
        r.add_call(&call(
            "c",
            leg(
                "198.18.0.1:40000",
                Some("198.18.0.10:5004"),
                Some(&ka),
                None,
            ),
            leg(
                "198.19.0.1:40002",
                Some("198.19.0.20:6000"),
                None,
                Some(&kb),
            ),
            mode,
        ))
        .unwrap();
        let mut caller = Context::new(&ka, ContextConfig::default());
        let mut callee = Context::new(&kb, ContextConfig::default());
        let mut sr = vec![0x80, 200, 0, 6, 0x11, 0x22, 0x33, 0x44];
        sr.extend_from_slice(&[7; 20]);
        let mut b = sr.clone();
        b.resize(sr.len() + 32, 0);
        let n = caller.protect_rtcp(&mut b, sr.len()).unwrap();
        let (dst, out_src, out_dst) = match mode {
            RtcpMode::Mux => ("198.18.0.1:40000", "198.19.0.1:40002", "198.19.0.20:6000"),
            RtcpMode::PortPlusOne => ("198.18.0.1:40001", "198.19.0.1:40003", "198.19.0.20:6001"),
        };
        let (mut buf, len) = frame(CALLER_MAC, "198.18.0.10:5005", dst, &b[..n]);
        let (_, u, mut payload) = forwarded(r.process(0, &mut buf, len, 1), &buf);
        assert_eq!((u.src, u.dst), (addr(out_src), addr(out_dst)), "{mode:?}");
        let m = callee.unprotect_rtcp(&mut payload).unwrap();
        assert_eq!(&payload[..m], &sr[..]);
        assert_eq!(r.call_stats("c").unwrap().media[0][0].rx_rtcp, 1);
    }
}

#[test]
fn modify_keeps_the_roc_for_an_unchanged_key_and_remove_frees_the_ports() {
    let mut r = relay();
    let (ka, kb, kc) = (
        key(Suite::AesCm128HmacSha1_80, 1),
        key(Suite::AesCm128HmacSha1_80, 2),
        key(Suite::AeadAes256Gcm, 3),
    );
    let spec = call(
        "c",
        leg(
            "198.18.0.1:40000",
            Some("198.18.0.10:5004"),
            Some(&ka),
            None,
        ),
        leg(
            "198.19.0.1:40002",
            Some("198.19.0.20:6000"),
            None,
            Some(&kb),
        ),
        RtcpMode::Mux,
    );
    r.add_call(&spec).unwrap();
    assert!(r.add_call(&spec).is_err(), "same id twice");
    let mut caller = Context::new(&ka, ContextConfig::default());
    for seq in [65_535u16, 0] {
        let (mut buf, len) = frame(
            CALLER_MAC,
            "198.18.0.10:5004",
            "198.18.0.1:40000",
            &protect(&mut caller, &rtp(seq, 20)),
        );
        assert!(matches!(
            r.process(0, &mut buf, len, 1),
            Verdict::Forward { .. }
        ));
    }
    // re-INVITE: same inbound key, new outbound key. The inbound ROC (1) survives: seq 1
    // decrypts; a fresh context would have estimated ROC 0 and failed.
    let changed = call(
        "c",
        leg(
            "198.18.0.1:40000",
            Some("198.18.0.10:5004"),
            Some(&ka),
            None,
        ),
        leg(
            "198.19.0.1:40002",
            Some("198.19.0.20:6000"),
            None,
            Some(&kc),
        ),
        RtcpMode::Mux,
    );
    r.modify_call(&changed).unwrap();
    let (mut buf, len) = frame(
        CALLER_MAC,
        "198.18.0.10:5004",
        "198.18.0.1:40000",
        &protect(&mut caller, &rtp(1, 20)),
    );
    let (_, _, mut payload) = forwarded(r.process(0, &mut buf, len, 1), &buf);
    let mut callee = Context::new(&kc, ContextConfig::default());
    assert!(
        callee.unprotect_rtp(&mut payload).is_ok(),
        "new outbound key in use"
    );
    // A refused change leaves the call alone.
    let mut bad = changed.clone();
    bad.media[0].a.local = addr("198.18.0.7:40000");
    assert!(r.modify_call(&bad).is_err());
    assert_eq!(r.call_ids(), vec!["c".to_string()]);
    let stats = r.remove_call("c").unwrap();
    assert_eq!(
        stats.media[0][0].rx_packets, 1,
        "counters restart with the new media"
    );
    let (mut buf, len) = frame(
        CALLER_MAC,
        "198.18.0.10:5004",
        "198.18.0.1:40000",
        &rtp(2, 20),
    );
    assert_eq!(
        r.process(0, &mut buf, len, 1),
        Verdict::Drop(DropReason::UnknownFlow)
    );
    assert_eq!(r.media_count(), 0);
    let _ = SrtpError::Replayed;
}

#[test]
fn ipv6_legs_and_ipv4_to_ipv6_interworking() {
    let (ka, kb) = (
        key(Suite::AesCm128HmacSha1_80, 1),
        key(Suite::AeadAes256Gcm, 2),
    );
    for (a_local, a_peer, b_local, b_peer) in [
        (
            "[2001:2::1]:40000",
            "[2001:2::10]:5004",
            "[2001:2:0:1::1]:40002",
            "[2001:2:0:1::20]:6000",
        ),
        (
            "198.18.0.1:40000",
            "198.18.0.10:5004",
            "[2001:2:0:1::1]:40002",
            "[2001:2:0:1::20]:6000",
        ),
        (
            "[2001:2::1]:40000",
            "[2001:2::10]:5004",
            "198.19.0.1:40002",
            "198.19.0.20:6000",
        ),
    ] {
        let mut r = relay();
        r.add_call(&call(
            "c",
            leg(a_local, Some(a_peer), Some(&ka), None),
            leg(b_local, Some(b_peer), None, Some(&kb)),
            RtcpMode::Mux,
        ))
        .unwrap();
        let mut caller = Context::new(&ka, ContextConfig::default());
        let mut callee = Context::new(&kb, ContextConfig::default());
        for seq in [65_535u16, 0, 1] {
            let plain = rtp(seq, 160);
            let (mut buf, len) = frame(CALLER_MAC, a_peer, a_local, &protect(&mut caller, &plain));
            let (port, u, mut payload) = forwarded(r.process(0, &mut buf, len, 1), &buf);
            assert_eq!(
                (port, u.src, u.dst),
                (1, addr(b_local), addr(b_peer)),
                "{a_local} -> {b_local}"
            );
            assert_eq!(u.l2.vlan, Some(42));
            let n = callee.unprotect_rtp(&mut payload).unwrap();
            assert_eq!(&payload[..n], &plain[..]);
        }
    }
}

fn icmp6_frame(
    src: &str,
    dst: &str,
    dst_mac: [u8; 6],
    hop_limit: u8,
    body: &[u8],
) -> (Vec<u8>, usize) {
    let mut buf = vec![0u8; 256];
    let l2 = wire::L2Out {
        src: CALLER_MAC,
        dst: dst_mac,
        vlan: None,
    };
    let n = wire::write_icmp6(
        &mut buf,
        &l2,
        src.parse().unwrap(),
        dst.parse().unwrap(),
        hop_limit,
        body,
    )
    .unwrap();
    (buf, n)
}

fn ns(target: &str, source_mac: Option<[u8; 6]>) -> Vec<u8> {
    let mut b = vec![135, 0, 0, 0, 0, 0, 0, 0];
    b.extend_from_slice(&target.parse::<std::net::Ipv6Addr>().unwrap().octets());
    if let Some(mac) = source_mac {
        b.extend_from_slice(&[1, 1]);
        b.extend_from_slice(&mac);
    }
    b
}

#[test]
fn neighbour_discovery_and_icmpv6_echo() {
    let mut r = relay();
    // A solicitation for our address is answered with our MAC, and teaches us the sender's.
    let (mut buf, n) = icmp6_frame(
        "2001:2::77",
        "ff02::1:ff00:1",
        [0x33, 0x33, 0xff, 0, 0, 1],
        255,
        &ns("2001:2::1", Some(CALLER_MAC)),
    );
    let Verdict::Reply { len } = r.process(0, &mut buf, n, 1) else {
        panic!("no advertisement")
    };
    let l2 = wire::parse_l2(&buf[..len]).unwrap();
    let na = wire::parse_icmp6(&buf[..len], &l2).unwrap();
    assert_eq!(
        (na.kind, na.hop_limit, na.dst),
        (136, 255, "2001:2::77".parse().unwrap())
    );
    let body = &buf[na.at..na.at + na.len];
    assert_eq!(body[4] & 0x60, 0x60, "solicited and override");
    assert_eq!(
        &body[8..24],
        &"2001:2::1".parse::<std::net::Ipv6Addr>().unwrap().octets()
    );
    assert_eq!(wire::nd_link_layer_option(body, 2), Some(RELAY_MAC));
    assert_eq!(l2.dst, CALLER_MAC);
    // Not ours, or not hop limit 255 (RFC 4861 7.1.1): no answer.
    let (mut buf, n) = icmp6_frame(
        "2001:2::77",
        "ff02::1:ff00:99",
        [0x33, 0x33, 0xff, 0, 0, 0x99],
        255,
        &ns("2001:2::99", Some(CALLER_MAC)),
    );
    assert!(matches!(r.process(0, &mut buf, n, 1), Verdict::Drop(_)));
    let (mut buf, n) = icmp6_frame(
        "2001:2::77",
        "ff02::1:ff00:1",
        [0x33, 0x33, 0xff, 0, 0, 1],
        64,
        &ns("2001:2::1", Some(CALLER_MAC)),
    );
    assert!(matches!(r.process(0, &mut buf, n, 1), Verdict::Drop(_)));
    // Echo request to us: reply with the same data.
    let mut echo = vec![128, 0, 0, 0, 0x12, 0x34, 0, 1];
    echo.extend_from_slice(b"ping6");
    let (mut buf, n) = icmp6_frame("2001:2::77", "2001:2::1", RELAY_MAC, 64, &echo);
    let Verdict::Reply { len } = r.process(0, &mut buf, n, 1) else {
        panic!("no echo reply")
    };
    let l2 = wire::parse_l2(&buf[..len]).unwrap();
    let reply = wire::parse_icmp6(&buf[..len], &l2).unwrap();
    assert_eq!(
        (reply.kind, reply.src, reply.dst),
        (
            129,
            "2001:2::1".parse().unwrap(),
            "2001:2::77".parse().unwrap()
        )
    );
    assert_eq!(&buf[reply.at + 4..reply.at + reply.len], &echo[4..]);
    // An unresolved IPv6 next hop: one solicitation to its solicited-node group, then the
    // advertisement resolves it.
    r.add_call(&call(
        "c",
        leg("198.18.0.1:40000", Some("198.18.0.10:5004"), None, None),
        leg(
            "[2001:2:0:1::1]:40002",
            Some("[2001:2:0:1::33]:6000"),
            None,
            None,
        ),
        RtcpMode::Mux,
    ))
    .unwrap();
    let (mut buf, len) = frame(
        CALLER_MAC,
        "198.18.0.10:5004",
        "198.18.0.1:40000",
        &rtp(1, 20),
    );
    assert_eq!(
        r.process(0, &mut buf, len, 1),
        Verdict::Drop(DropReason::NeighbourUnresolved)
    );
    let mut sent = Vec::new();
    r.drain_arp_requests(|port, f| sent.push((port, f.to_vec())));
    assert_eq!(sent.len(), 1);
    let l2 = wire::parse_l2(&sent[0].1).unwrap();
    let sol = wire::parse_icmp6(&sent[0].1, &l2).unwrap();
    assert_eq!(
        (sent[0].0, sol.kind, sol.dst, l2.dst),
        (
            1,
            135,
            "ff02::1:ff00:33".parse().unwrap(),
            [0x33, 0x33, 0xff, 0, 0, 0x33]
        )
    );
    let mut na = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
    na.extend_from_slice(
        &"2001:2:0:1::33"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    na.extend_from_slice(&[2, 1, 2, 0, 0, 0, 0, 0x33]);
    let (mut buf, n) = icmp6_frame(
        "2001:2:0:1::33",
        "2001:2:0:1::1",
        [2, 0, 0, 0, 1, 1],
        255,
        &na,
    );
    assert_eq!(r.process(1, &mut buf, n, 2), Verdict::Consumed);
    let (mut buf, len) = frame(
        CALLER_MAC,
        "198.18.0.10:5004",
        "198.18.0.1:40000",
        &rtp(2, 20),
    );
    let (_, u, _) = forwarded(r.process(0, &mut buf, len, 3), &buf);
    assert_eq!(
        (u.dst, u.l2.dst),
        (addr("[2001:2:0:1::33]:6000"), [2, 0, 0, 0, 0, 0x33])
    );
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
    let mut r = relay_with_offload(true);
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
    for (id, receive, send, port, _) in calls {
        r.add_call(&call(
            id,
            leg(&format!("198.18.0.1:{port}"), None, receive, None),
            leg(
                &format!("198.19.0.1:{}", port + 2),
                Some("198.19.0.20:6000"),
                None,
                send,
            ),
            RtcpMode::Mux,
        ))
        .unwrap();
    }
    for (id, receive, send, port, offloaded) in calls {
        let mut caller = receive.map(|k| Context::new(k, ContextConfig::default()));
        let mut callee = send.map(|k| Context::new(k, ContextConfig::default()));
        for seq in 1..4u16 {
            let plain = rtp(seq, 160);
            let wire_payload = match &mut caller {
                Some(c) => protect(c, &plain),
                None => plain.clone(),
            };
            let (mut buf, len) = frame(
                CALLER_MAC,
                "198.18.0.10:5004",
                &format!("198.18.0.1:{port}"),
                &wire_payload,
            );
            let Verdict::Forward {
                port: out,
                len,
                offload,
            } = r.process(0, &mut buf, len, 5)
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
            let mut got = buf[u.payload..u.payload + u.payload_len].to_vec();
            if let Some(c) = &mut callee {
                let n = c.unprotect_rtp(&mut got).unwrap();
                got.truncate(n);
            }
            assert_eq!(got, plain, "{id} seq {seq}");
        }
    }
}

/// What the receiving NIC says of a UDP checksum replaces the relay's own check where it
/// would make one (plain RTP about to be encrypted), and a checksum field the NIC calls
/// meaningless over a verified payload is not carried into the new one.
#[test]
fn a_nic_checked_udp_checksum_is_not_checked_again() {
    use relay_proto::relay::RxChecksum;
    let mut r = relay();
    let kb = key(Suite::AesCm128HmacSha1_80, 2);
    add_plain_caller_calls(&mut r, &kb);
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
        let v = r.process_checked(0, &mut buf, len, 5, nic);
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
        r.process_checked(0, &mut buf, len, 5, RxChecksum::Bad),
        Verdict::Drop(DropReason::BadChecksum)
    );
    // Plain to plain: a meaningless field over a verified payload gets a fresh, right
    // checksum (carrying it would send a wrong one); a good one is carried as before.
    for (seq, nic) in [(1u16, RxChecksum::PayloadVerified), (2, RxChecksum::Good)] {
        let field = (nic == RxChecksum::PayloadVerified).then_some([0x12, 0x34]);
        let (mut buf, len) = to(41000, seq, field);
        let (_, u, out) = forwarded(r.process_checked(0, &mut buf, len, 5, nic), &buf);
        assert_eq!(u.dst, addr("198.19.0.20:6000"));
        assert_eq!(out, rtp(seq, 160));
    }
}
