//! The bodies of the fuzz targets in `fuzz/fuzz_targets/` (`wire_parse`, `relay_process`),
//! kept here so `tests/fuzz_corpus.rs` replays the committed corpus on stable Rust in CI
//! without libFuzzer; and [`seeds`], the valid frames the corpus was made from.

use std::net::{Ipv6Addr, SocketAddr};

use relay_srtp::{Context, ContextConfig, MasterKey, SdesKey, Suite};

use crate::relay::{PortAddr, Received, Relay, RelayConfig, RxChecksum, Verdict, WorkerStats};
use crate::wire::{self, Arp, Echo, Ipv4Repr, Ipv6Repr, L2Out, Ndisc, UdpEndpoints};
use relay_session::{CallSpec, CryptoSpec, LegSpec, MediaSpec, RtcpMode, SessionsFile};

/// Runs every parser on `data` as a frame; panics only if one misbehaves: a panic inside it,
/// offsets outside the frame, a parsed header that does not parse back the same once
/// written, or an answer written in place that is not what it answers.
pub fn wire_parse(data: &[u8]) {
    let frame = data;
    if let Ok(u) = wire::parse_udp(frame) {
        assert!(u.l4 < u.payload && u.payload + u.payload_len <= frame.len());
        assert_eq!(
            wire::peek_udp_dst(frame),
            Some(u.dst),
            "peek and parse agree"
        );
        let _ = wire::udp_checksum_ok(frame, &u);
        let _ = wire::udp_payload_sum(frame, &u);
    } else {
        let _ = wire::peek_udp_dst(frame);
    }
    if let Ok((ends, payload)) = wire::parse_udp_checked(frame) {
        let mut again = vec![0u8; ends.header_len() + payload.len()];
        let n = wire::write_udp(&mut again, &ends, payload).expect("fits");
        assert_eq!(wire::parse_udp_checked(&again[..n]), Ok((ends, payload)));
    }
    let _ = Ndisc::parse(frame);
    let _ = wire::nd_link_layer_option(frame, 1);
    let Ok(l2) = wire::parse_l2(frame) else {
        return;
    };
    assert!(l2.l3 <= frame.len());
    let out = l2.answer_from([2, 0, 0, 0, 0, 1]);
    let mut buf = vec![0u8; frame.len() + 128];
    if let Ok(arp) = wire::parse_arp(frame, &l2) {
        let n = wire::write_arp(&mut buf, l2.dst, l2.vlan, &arp).expect("fits");
        let back = wire::parse_l2(&buf[..n]).expect("written");
        assert_eq!(wire::parse_arp(&buf[..n], &back), Ok(arp));
    }
    if let Ok(ip) = Ipv4Repr::parse(frame, l2.l3) {
        let end = ip.emit(&mut buf, l2.l3).expect("fits") + ip.payload_len;
        assert_eq!(Ipv4Repr::parse(&buf[..end], l2.l3), Ok(ip));
    }
    if let Ok(ip) = Ipv6Repr::parse(frame, l2.l3) {
        let end = ip.emit(&mut buf, l2.l3).expect("fits") + ip.payload_len;
        assert_eq!(Ipv6Repr::parse(&buf[..end], l2.l3), Ok(ip));
    }
    if let Ok((ip, echo)) = wire::parse_echo4(frame, &l2) {
        let n = wire::write_echo4(&mut buf, &out, ip.src, ip.dst, &echo).expect("fits");
        let back = wire::parse_l2(&buf[..n]).expect("written");
        assert_eq!(wire::parse_echo4(&buf[..n], &back).map(|e| e.1), Ok(echo));
    }
    let mut copy = frame.to_vec();
    if let Ok(n) = wire::icmp_echo_reply_in_place(&mut copy, &l2) {
        let (_, echo) = wire::parse_echo4(&copy[..n], &l2).expect("a valid reply");
        assert!(echo.reply);
    }
    if let Ok(icmp) = wire::parse_icmp6(frame, &l2) {
        assert!(icmp.at + icmp.len <= frame.len());
        let message = &frame[icmp.at..icmp.at + icmp.len];
        if let Ok(nd) = Ndisc::parse(message) {
            let n = nd.emit(&mut buf, &out, icmp.src, icmp.dst).expect("fits");
            let back = wire::parse_l2(&buf[..n]).expect("written");
            let again = wire::parse_icmp6(&buf[..n], &back).expect("written");
            // Options past the link-layer address are not written back.
            let parsed = Ndisc::parse(&buf[again.at..again.at + again.len]);
            assert_eq!(parsed, Ok(nd));
        }
        if let Ok((_, echo)) = wire::parse_echo6(frame, &l2) {
            buf[..frame.len()].copy_from_slice(frame);
            if !echo.reply {
                let n = wire::write_echo6_reply(&mut buf, &icmp, &out, icmp.dst).expect("fits");
                let back = wire::parse_l2(&buf[..n]).expect("written");
                let (_, answer) = wire::parse_echo6(&buf[..n], &back).expect("a valid reply");
                assert!(answer.reply && answer.ident == echo.ident && answer.seq == echo.seq);
            }
        }
    }
}

/// The time the fuzzed relay runs at.
const NOW_NS: u64 = 1_000_000_000;

/// A key of `suite` made of `seed` bytes.
fn key(suite: Suite, seed: u8) -> SdesKey {
    SdesKey::new(
        MasterKey::new(
            suite,
            &vec![seed; suite.key_len()],
            &vec![seed ^ 0x5a; suite.salt_len()],
        )
        .expect("lengths"),
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
        local: local.parse().expect("constant"),
        remote: remote.map(|r| r.parse().expect("constant")),
        strict_source: false,
        receive: receive.and_then(crypto),
        send: send.and_then(crypto),
        clock_rate: 8000,
        resume_receive: Vec::new(),
        resume_send: Vec::new(),
    }
}

/// The fuzzed relay: port 0 (198.18.0.1/24, 2001:2::1/64, untagged) and port 1
/// (198.19.0.1/24, 2001:2:0:1::1/64, VLAN 42), static neighbours for the peers, and three
/// calls: "srtp" (SRTP in on 198.18.0.1:40000, AES-GCM out), "plain6" (plain IPv6, RTCP on
/// port + 1, from `[2001:2::1]:42000`) and "to-srtp" (plain in on 198.18.0.1:41000, SRTP out to
/// a next hop whose MAC is unknown).
pub fn fuzz_relay() -> Relay {
    let port = |port, mac, ipv4: &str, ipv6: &str, vlan| PortAddr {
        port,
        mac,
        ipv4: ipv4.parse().expect("constant"),
        vlan,
        ipv6: Some(ipv6.parse().expect("constant")),
        udp_checksum_offload: port == 1,
        ..PortAddr::default()
    };
    let mut relay = Relay::new(
        vec![
            port(0, [2, 0, 0, 0, 0, 1], "198.18.0.1", "2001:2::1", None),
            port(
                1,
                [2, 0, 0, 0, 1, 1],
                "198.19.0.1",
                "2001:2:0:1::1",
                Some(42),
            ),
        ],
        RelayConfig::default(),
    );
    let doc = SessionsFile::from_json(
        r#"{"version":1,"neighbours":[{"ip":"198.18.0.10","mac":"02:00:00:00:00:10"},{"ip":"198.19.0.20","mac":"02:00:00:00:00:20"},{"ip":"2001:2::10","mac":"02:00:00:00:00:10"},{"ip":"2001:2:0:1::20","mac":"02:00:00:00:00:20"}]}"#,
    )
    .expect("constant");
    relay.install(&doc).expect("constant");
    let call = |id: &str, a: LegSpec, b: LegSpec, rtcp| CallSpec {
        id: id.into(),
        media: vec![MediaSpec { rtcp, a, b }],
    };
    let (k1, k2, k3) = (
        key(Suite::AesCm128HmacSha1_80, 1),
        key(Suite::AeadAes128Gcm, 2),
        key(Suite::AesCm128HmacSha1_32, 3),
    );
    for spec in [
        call(
            "srtp",
            leg(
                "198.18.0.1:40000",
                Some("198.18.0.10:5004"),
                Some(&k1),
                None,
            ),
            leg(
                "198.19.0.1:40002",
                Some("198.19.0.20:6000"),
                None,
                Some(&k2),
            ),
            RtcpMode::Mux,
        ),
        call(
            "plain6",
            leg("[2001:2::1]:42000", None, None, None),
            leg(
                "[2001:2:0:1::1]:42002",
                Some("[2001:2:0:1::20]:6000"),
                None,
                None,
            ),
            RtcpMode::PortPlusOne,
        ),
        call(
            "to-srtp",
            leg("198.18.0.1:41000", None, None, None),
            leg(
                "198.19.0.1:41002",
                Some("198.19.0.33:6000"),
                None,
                Some(&k3),
            ),
            RtcpMode::Mux,
        ),
    ] {
        relay.add_call(&spec).expect("constant");
    }
    relay
}

/// Feeds `data` to [`fuzz_relay`]: byte 0 picks the receiving port (bit 0), what the NIC
/// says of the UDP checksum (bits 1-2) and whether the frame arrives twice (bit 3, for
/// replays); the rest is the frame. Panics only if the relay misbehaves: a panic inside it,
/// or a frame that is not exactly one of forwarded (as valid UDP), answered, consumed, or
/// counted under exactly one drop reason.
pub fn relay_process(data: &[u8]) {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let rx_port = u16::from(selector & 1);
    let rx_checksum = match (selector >> 1) & 3 {
        0 => RxChecksum::Unknown,
        1 => RxChecksum::Good,
        2 => RxChecksum::Bad,
        _ => RxChecksum::PayloadVerified,
    };
    let times = 1 + usize::from(selector & 0x08 != 0);
    let mut relay = fuzz_relay();
    let drops = |s: &WorkerStats| s.drops.iter().sum::<u64>();
    let mut one_by_one = Vec::new();
    for _ in 0..times {
        let mut buf = frame.to_vec();
        buf.resize(frame.len() + 128, 0);
        let before = relay.stats.clone();
        let verdict = relay.process_checked(rx_port, &mut buf, frame.len(), NOW_NS, rx_checksum);
        one_by_one.push((verdict, buf.clone()));
        let after = &relay.stats;
        assert_eq!(after.rx, before.rx + 1);
        let (forwarded, replies, held) = (
            after.forwarded - before.forwarded,
            after.replies - before.replies,
            after.held - before.held,
        );
        match verdict {
            Verdict::Forward { port, len, .. } => {
                assert_eq!((forwarded, replies, drops(after)), (1, 0, drops(&before)));
                assert!(port < 2 && len <= buf.len());
                let u = wire::parse_udp(&buf[..len]).expect("forwarded frames are valid UDP");
                assert_eq!(u.payload + u.payload_len, len);
            }
            Verdict::Hold { port, len, .. } => {
                assert_eq!(
                    (forwarded, replies, held, drops(after)),
                    (0, 0, 1, drops(&before))
                );
                assert!(port < 2 && len <= buf.len());
                assert_eq!(buf[..6], [0; 6], "the destination MAC is left to fill in");
                let u = wire::parse_udp(&buf[..len]).expect("held frames are valid UDP");
                assert_eq!(u.payload + u.payload_len, len);
            }
            Verdict::Reply { len } => {
                assert_eq!((forwarded, replies, drops(after)), (0, 1, drops(&before)));
                assert!(len <= buf.len());
                wire::parse_l2(&buf[..len]).expect("replies are valid frames");
            }
            Verdict::Consumed => {
                assert_eq!((forwarded, replies, drops(after)), (0, 0, drops(&before)));
            }
            Verdict::Drop(reason) => {
                assert_eq!((forwarded, replies), (0, 0));
                assert_eq!(drops(after), drops(&before) + 1, "one reason counted");
                assert_eq!(
                    after.drops[reason.index()],
                    before.drops[reason.index()] + 1,
                    "{reason:?} counted"
                );
            }
        }
    }
    relay.drain_arp_requests(|port, f| {
        assert!(port < 2);
        wire::parse_l2(f).expect("requests are valid frames");
    });
    relay.drain_learnt(|_, _| {});
    // The burst path: the same frames as one burst give the same verdicts, bytes and counters.
    let mut burst = fuzz_relay();
    let mut bufs: Vec<Vec<u8>> = (0..times)
        .map(|_| {
            let mut b = frame.to_vec();
            b.resize(frame.len() + 128, 0);
            b
        })
        .collect();
    let mut verdicts = vec![Verdict::Consumed; times];
    let mut received: Vec<Received<'_>> = bufs
        .iter_mut()
        .map(|b| Received {
            port: rx_port,
            frame: &mut b[..],
            len: frame.len(),
            checksum: rx_checksum,
        })
        .collect();
    burst.process_burst(&mut received, NOW_NS, &mut verdicts);
    for ((v, b), (want, want_buf)) in verdicts.iter().zip(&bufs).zip(&one_by_one) {
        assert_eq!(v, want, "burst and one-by-one verdicts");
        if let Verdict::Forward { len, .. } | Verdict::Hold { len, .. } | Verdict::Reply { len } =
            *v
        {
            assert_eq!(b[..len], want_buf[..len], "burst and one-by-one bytes");
        }
    }
    assert_eq!(
        format!("{:?}", burst.stats),
        format!("{:?}", relay.stats),
        "burst and one-by-one counters"
    );
}

/// Valid frames of every kind the relay handles, named, as `relay_process` inputs (selector
/// byte first; `wire_parse` takes them without it): SRTP, SRTCP and plain RTP to the calls of
/// [`fuzz_relay`] over both families, tagged and not, ARP, ICMP and ICMPv6 echo, neighbour
/// solicitation and advertisement; then truncations of some of them.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let caller = L2Out {
        src: [2, 0, 0, 0, 0, 0x10],
        dst: [2, 0, 0, 0, 0, 1],
        vlan: None,
    };
    let callee = L2Out {
        src: [2, 0, 0, 0, 0, 0x33],
        dst: [2, 0, 0, 0, 1, 1],
        vlan: Some(42),
    };
    let rtp = |seq: u16, len: usize| {
        let mut p = vec![0x80, 8];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&0x1122_3344u32.to_be_bytes());
        p.extend((0..len).map(|i| i as u8));
        p
    };
    let udp = |l2: &L2Out, src: &str, dst: &str, payload: &[u8]| {
        let ends = UdpEndpoints {
            src_mac: l2.src,
            dst_mac: l2.dst,
            vlan: l2.vlan,
            src: src.parse::<SocketAddr>().expect("constant"),
            dst: dst.parse::<SocketAddr>().expect("constant"),
        };
        let mut f = vec![0u8; ends.header_len() + payload.len()];
        wire::write_udp(&mut f, &ends, payload).expect("fits");
        f
    };
    let mut tx = Context::new(
        &key(Suite::AesCm128HmacSha1_80, 1),
        ContextConfig::default(),
    );
    let mut srtp = rtp(1, 160);
    let plain_len = srtp.len();
    srtp.resize(plain_len + 16, 0);
    let n = tx.protect_rtp(&mut srtp, plain_len).expect("room");
    srtp.truncate(n);
    let mut srtcp = vec![0x80, 200, 0, 6, 0x11, 0x22, 0x33, 0x44];
    srtcp.extend_from_slice(&[7; 20]);
    let plain_len = srtcp.len();
    srtcp.resize(plain_len + 16, 0);
    let n = tx.protect_rtcp(&mut srtcp, plain_len).expect("room");
    srtcp.truncate(n);
    let (peer6, ours6): (Ipv6Addr, Ipv6Addr) = (
        "2001:2::10".parse().expect("constant"),
        "2001:2::1".parse().expect("constant"),
    );
    let mut buf = [0u8; 256];
    let mut frame = |f: &dyn Fn(&mut [u8]) -> Option<usize>| {
        let n = f(&mut buf).expect("fits");
        buf[..n].to_vec()
    };
    let echo = Echo {
        reply: false,
        ident: 7,
        seq: 1,
        data: b"pingpong",
    };
    let arp = Arp {
        op: 1,
        sha: caller.src,
        spa: "198.18.0.10".parse().expect("constant"),
        tha: [0; 6],
        tpa: "198.18.0.1".parse().expect("constant"),
    };
    let mut seeds: Vec<(String, u8, Vec<u8>)> = vec![
        (
            "srtp4".into(),
            0,
            udp(&caller, "198.18.0.10:5004", "198.18.0.1:40000", &srtp),
        ),
        (
            "srtp4_twice".into(),
            8,
            udp(&caller, "198.18.0.10:5004", "198.18.0.1:40000", &srtp),
        ),
        (
            "srtp4_vlan".into(),
            0,
            udp(
                &L2Out {
                    vlan: Some(42),
                    ..caller
                },
                "198.18.0.10:5004",
                "198.18.0.1:40000",
                &srtp,
            ),
        ),
        (
            "srtcp4_mux".into(),
            0,
            udp(&caller, "198.18.0.10:5004", "198.18.0.1:40000", &srtcp),
        ),
        (
            "rtp6_plain".into(),
            0,
            udp(
                &caller,
                "[2001:2::10]:5004",
                "[2001:2::1]:42000",
                &rtp(1, 160),
            ),
        ),
        (
            "rtcp6_port_plus_one".into(),
            0,
            udp(
                &caller,
                "[2001:2::10]:5005",
                "[2001:2::1]:42001",
                &srtcp[..28],
            ),
        ),
        (
            "rtp6_from_callee_vlan".into(),
            1,
            udp(
                &callee,
                "[2001:2:0:1::20]:6000",
                "[2001:2:0:1::1]:42002",
                &rtp(2, 40),
            ),
        ),
        (
            "rtp4_to_srtp_unresolved".into(),
            0,
            udp(
                &caller,
                "198.18.0.10:5004",
                "198.18.0.1:41000",
                &rtp(3, 160),
            ),
        ),
        (
            "rtp4_to_srtp_nic_good".into(),
            2,
            udp(
                &caller,
                "198.18.0.10:5004",
                "198.18.0.1:41000",
                &rtp(4, 160),
            ),
        ),
        (
            "rtp4_unknown_flow".into(),
            0,
            udp(&caller, "198.18.0.10:5004", "198.18.0.1:49999", &rtp(5, 20)),
        ),
        (
            "arp_request".into(),
            0,
            frame(&|b| wire::write_arp(b, [0xff; 6], None, &arp)),
        ),
        (
            "arp_reply_vlan".into(),
            1,
            frame(&|b| {
                wire::write_arp(
                    b,
                    callee.dst,
                    Some(42),
                    &Arp {
                        op: 2,
                        sha: callee.src,
                        spa: "198.19.0.33".parse().expect("constant"),
                        tha: callee.dst,
                        tpa: "198.19.0.1".parse().expect("constant"),
                    },
                )
            }),
        ),
        (
            "echo4".into(),
            0,
            frame(&|b| wire::write_echo4(b, &caller, arp.spa, arp.tpa, &echo)),
        ),
        (
            "echo6".into(),
            0,
            frame(&|b| wire::write_echo6(b, &caller, peer6, ours6, &echo)),
        ),
        (
            "ns6".into(),
            0,
            frame(&|b| {
                Ndisc::Solicit {
                    target: ours6,
                    lladdr: Some(caller.src),
                }
                .emit(b, &caller, peer6, wire::solicited_node(&ours6).0)
            }),
        ),
        (
            "ns6_dad".into(),
            0,
            frame(&|b| {
                Ndisc::Solicit {
                    target: ours6,
                    lladdr: None,
                }
                .emit(
                    b,
                    &caller,
                    Ipv6Addr::UNSPECIFIED,
                    wire::solicited_node(&ours6).0,
                )
            }),
        ),
        (
            "na6_vlan".into(),
            1,
            frame(&|b| {
                Ndisc::Advert {
                    flags: wire::ndisc::ADVERT_SOLICITED | wire::ndisc::ADVERT_OVERRIDE,
                    target: "2001:2:0:1::33".parse().expect("constant"),
                    lladdr: Some(callee.src),
                }
                .emit(
                    b,
                    &callee,
                    "2001:2:0:1::33".parse().expect("constant"),
                    "2001:2:0:1::1".parse().expect("constant"),
                )
            }),
        ),
    ];
    let mut cuts = Vec::new();
    for (name, selector, f) in &seeds {
        if ["srtp4_vlan", "rtp6_plain", "echo4", "ns6", "arp_request"].contains(&name.as_str()) {
            for cut in [13, 17, 33, 53, f.len() - 1] {
                if cut < f.len() {
                    cuts.push((format!("{name}_cut{cut}"), *selector, f[..cut].to_vec()));
                }
            }
        }
    }
    seeds.extend(cuts);
    seeds
        .into_iter()
        .map(|(name, selector, f)| {
            let mut input = vec![selector];
            input.extend_from_slice(&f);
            (name, input)
        })
        .collect()
}
