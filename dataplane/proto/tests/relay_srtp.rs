//! SRTP and plain RTP through the relay without DPDK: every suite in and out, drops by
//! reason, RTCP muxed or on port + 1, IPv6 legs and interworking between the families.

mod util;

use relay_proto::relay::{DropReason, Verdict};
use relay_proto::wire;
use relay_session::RtcpMode;
use relay_srtp::Suite;
use util::*;

#[test]
fn every_mode_and_suite_relays_and_rewrites() {
    let suites: Vec<Option<Suite>> = std::iter::once(None)
        .chain(Suite::ALL.into_iter().map(Some))
        .collect();
    let mut n = 0;
    for &sin in &suites {
        for &sout in &suites {
            n += 1;
            let mut h = Harness::new();
            h.now_ns = 1_000_000;
            let Peers {
                mut caller,
                mut callee,
            } = h.add(&Call::new(&format!("call{n}")).srtp(sin, sout));
            for seq in [65_534u16, 65_535, 0, 1] {
                let (mut buf, len, plain) = caller.send(seq, 160);
                let v = h.process(0, &mut buf, len);
                let (port, u, payload) = forwarded(v, &buf);
                assert_eq!(port, 1, "{sin:?}->{sout:?}");
                assert_eq!(
                    (u.src, u.dst),
                    (addr("198.19.0.1:40002"), addr("198.19.0.20:6000"))
                );
                let l2 = wire::parse_l2(&buf).unwrap();
                assert_eq!(l2.vlan, Some(42), "tagged for port 1");
                assert_eq!((l2.src, l2.dst), (PORT1_MAC, CALLEE_MAC));
                let got = callee
                    .open(payload)
                    .unwrap_or_else(|e| panic!("{sin:?}->{sout:?}: {e}"));
                assert_eq!(got, plain, "{sin:?}->{sout:?} seq {seq}");
            }
        }
    }
}

/// A small deterministic pseudo-random byte sequence (xorshift32).
fn noise(state: &mut u32) -> u8 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    *state as u8
}

#[test]
fn bad_packets_are_dropped_and_counted_by_reason() {
    let mut h = Harness::new();
    h.now_ns = 5;
    let srtp80 = Some(Suite::AesCm128HmacSha1_80);
    let Peers { mut caller, .. } = h.add(&Call::new("c").srtp(srtp80, srtp80));
    let good = caller.seal(&rtp(10, 160));
    let send = |h: &mut Harness, payload: &[u8], dst: &str| {
        let (mut buf, len) = frame(CALLER_MAC, "198.18.0.10:5004", dst, payload);
        h.process(0, &mut buf, len)
    };
    assert!(matches!(
        send(&mut h, &good, "198.18.0.1:40000"),
        Verdict::Forward { .. }
    ));
    assert_eq!(
        send(&mut h, &good, "198.18.0.1:40000"),
        Verdict::Drop(DropReason::Replayed)
    );
    let mut forged = caller.seal(&rtp(11, 160));
    forged[20] ^= 1;
    assert_eq!(
        send(&mut h, &forged, "198.18.0.1:40000"),
        Verdict::Drop(DropReason::AuthFailed)
    );
    let fresh = caller.seal(&rtp(12, 160));
    assert_eq!(
        send(&mut h, &fresh[..fresh.len() - 5], "198.18.0.1:40000"),
        Verdict::Drop(DropReason::AuthFailed)
    );
    assert_eq!(
        send(&mut h, &good[..6], "198.18.0.1:40000"),
        Verdict::Drop(DropReason::SrtpMalformed)
    );
    assert_eq!(
        send(&mut h, &good, "198.18.0.1:49999"),
        Verdict::Drop(DropReason::UnknownFlow)
    );
    assert_eq!(
        send(&mut h, &good, "198.18.0.77:40000"),
        Verdict::Drop(DropReason::NotForUs)
    );
    let (mut buf, len) = frame(CALLER_MAC, "198.18.0.10:5004", "198.18.0.1:40000", &good);
    assert_eq!(
        h.process(0, &mut buf, len - 3),
        Verdict::Drop(DropReason::Truncated)
    );
    // Corrupted in flight (UDP checksum now wrong too): SRTP authentication catches it.
    let fresh = caller.seal(&rtp(13, 160));
    let (mut buf, len) = frame(CALLER_MAC, "198.18.0.10:5004", "198.18.0.1:40000", &fresh);
    buf[len - 30] ^= 0xff;
    assert_eq!(
        h.process(0, &mut buf, len),
        Verdict::Drop(DropReason::AuthFailed)
    );
    for garbage_len in 0..80 {
        let mut g: Vec<u8> = (0..garbage_len).map(|i| (i * 37) as u8).collect();
        g.resize(garbage_len + 16, 0);
        assert!(matches!(
            h.process(0, &mut g, garbage_len),
            Verdict::Drop(_)
        ));
    }
    let stats = h.relay.call_stats("c").unwrap();
    let a = &stats.media[0][0];
    assert_eq!(a.rx_packets, 1);
    assert_eq!(a.drops[DropReason::Replayed.index()], 1);
    assert_eq!(a.drops[DropReason::AuthFailed.index()], 3);
    assert_eq!(h.relay.stats.drops[DropReason::UnknownFlow.index()], 1);
    assert_eq!(h.relay.stats.drops[DropReason::NotForUs.index()], 1);
    assert_eq!(h.relay.stats.forwarded, 1);

    // Garbage under the headers of each family: IPv4, IPv6 with UDP, ICMPv6 or another next
    // header, tagged or not, and ARP; then every truncation of valid IPv6 frames (UDP, echo,
    // neighbour solicitation). Each is dropped and counted under exactly one reason.
    let mut x = 0x2545_f491u32;
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for len in 18..140usize {
        for shape in 0..7 {
            let mut f: Vec<u8> = (0..len).map(|_| noise(&mut x)).collect();
            let (tag, l3) = if shape == 3 { (4, 18) } else { (0, 14) };
            if tag == 4 {
                f[12..16].copy_from_slice(&[0x81, 0x00, 0x00, 0x2a]);
            }
            let ethertype: u16 = match shape {
                0 => 0x0800,
                5 => 0x0806,
                _ => 0x86dd,
            };
            f[l3 - 2..l3].copy_from_slice(&ethertype.to_be_bytes());
            if shape == 5 {
                // Ethernet and IPv4, so the ARP parse reads on.
                if let Some(a) = f.get_mut(14..20) {
                    a.copy_from_slice(&[0, 1, 8, 0, 6, 4]);
                }
            }
            if let Some(ip) = f.get_mut(l3..l3 + 40) {
                match shape {
                    0 => ip[0] = 0x45,
                    1..=4 | 6 => {
                        ip[0] = 0x60;
                        let plen = (len - l3 - 40) as u16;
                        ip[4..6].copy_from_slice(&plen.to_be_bytes());
                        ip[6] = match shape {
                            1 | 3 => 17,
                            2 => 58,
                            4 => 0,
                            _ => ip[6],
                        };
                    }
                    _ => {}
                }
            }
            inputs.push(f);
        }
    }
    let mut valid6 = vec![frame(
        CALLER_MAC,
        "[2001:2::10]:5004",
        "[2001:2::1]:40000",
        &good,
    )];
    let l2 = wire::L2Out {
        src: CALLER_MAC,
        dst: RELAY_MAC,
        vlan: None,
    };
    let (peer, ours) = ("2001:2::10".parse().unwrap(), "2001:2::1".parse().unwrap());
    let mut buf = vec![0u8; 256];
    let echo = wire::Echo {
        reply: false,
        ident: 1,
        seq: 2,
        data: b"ping6",
    };
    let n = wire::write_echo6(&mut buf, &l2, peer, ours, &echo).unwrap();
    valid6.push((buf.clone(), n));
    let ns = wire::Ndisc::Solicit {
        target: ours,
        lladdr: Some(CALLER_MAC),
    };
    let n = ns.emit(&mut buf, &l2, peer, ours).unwrap();
    valid6.push((buf.clone(), n));
    for (f, n) in &valid6 {
        inputs.extend((0..*n).map(|cut| f[..cut].to_vec()));
    }
    let mut reasons = std::collections::BTreeSet::new();
    for f in inputs {
        let len = f.len();
        let mut buf = f.clone();
        buf.resize(len + 64, 0);
        let before: u64 = h.relay.stats.drops.iter().sum();
        let v = h.process(0, &mut buf, len);
        let Verdict::Drop(reason) = v else {
            panic!("{v:?} for {f:02x?}");
        };
        reasons.insert(reason.name());
        let after: u64 = h.relay.stats.drops.iter().sum();
        assert_eq!(after, before + 1, "one drop counted for {f:02x?}");
    }
    assert_eq!(h.relay.call_stats("c").unwrap().media[0][0].rx_packets, 1);
    // The garbage got past layer 2 in both families, to each of these verdicts.
    for reason in ["malformed", "not_for_us", "truncated", "unsupported"] {
        assert!(reasons.contains(reason), "no {reason} among {reasons:?}");
    }
}

#[test]
fn rtcp_mux_and_port_plus_one() {
    for mode in [RtcpMode::Mux, RtcpMode::PortPlusOne] {
        let mut h = Harness::new();
        h.now_ns = 1;
        let call = Call::new("c")
            .srtp(Some(Suite::AesCm128HmacSha1_32), Some(Suite::AeadAes128Gcm))
            .rtcp(mode);
        let Peers {
            mut caller,
            mut callee,
        } = h.add(&call);
        let mut sr = vec![0x80, 200, 0, 6, 0x11, 0x22, 0x33, 0x44];
        sr.extend_from_slice(&[7; 20]);
        let mut b = sr.clone();
        b.resize(sr.len() + 32, 0);
        let n = caller
            .tx
            .as_mut()
            .unwrap()
            .protect_rtcp(&mut b, sr.len())
            .unwrap();
        let (dst, out_src, out_dst) = match mode {
            RtcpMode::Mux => ("198.18.0.1:40000", "198.19.0.1:40002", "198.19.0.20:6000"),
            RtcpMode::PortPlusOne => ("198.18.0.1:40001", "198.19.0.1:40003", "198.19.0.20:6001"),
        };
        let (mut buf, len) = frame(CALLER_MAC, "198.18.0.10:5005", dst, &b[..n]);
        let (_, u, mut payload) = forwarded(h.process(0, &mut buf, len), &buf);
        assert_eq!((u.src, u.dst), (addr(out_src), addr(out_dst)), "{mode:?}");
        let m = callee
            .rx
            .as_mut()
            .unwrap()
            .unprotect_rtcp(&mut payload)
            .unwrap();
        assert_eq!(&payload[..m], &sr[..]);
        assert_eq!(h.relay.call_stats("c").unwrap().media[0][0].rx_rtcp, 1);
    }
}

#[test]
fn ipv6_legs_and_ipv4_to_ipv6_interworking() {
    let (sa, sb) = (Some(Suite::AesCm128HmacSha1_80), Some(Suite::AeadAes256Gcm));
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
        let mut h = Harness::new();
        h.now_ns = 1;
        let call = Call::new("c")
            .a(a_local, Some(a_peer))
            .b(b_local, Some(b_peer))
            .srtp(sa, sb);
        let Peers {
            mut caller,
            mut callee,
        } = h.add(&call);
        for seq in [65_535u16, 0, 1] {
            let (mut buf, len, plain) = caller.send(seq, 160);
            let (port, u, payload) = forwarded(h.process(0, &mut buf, len), &buf);
            assert_eq!(
                (port, u.src, u.dst),
                (1, addr(b_local), addr(b_peer)),
                "{a_local} -> {b_local}"
            );
            assert_eq!(wire::parse_l2(&buf).unwrap().vlan, Some(42));
            assert_eq!(callee.open(payload).unwrap(), plain);
        }
    }
}

/// A data plane that restarts re-installs its calls with the stream positions it reported:
/// a stream already past the sequence wrap (ROC 1) keeps authenticating in both directions
/// of the relay, and without the positions it would not.
#[test]
fn a_reinstalled_call_continues_its_streams_past_the_wrap() {
    let call =
        Call::new("wrapped").srtp(Some(Suite::AesCm128HmacSha1_80), Some(Suite::AeadAes128Gcm));
    let mut h = Harness::new();
    let Peers {
        mut caller,
        mut callee,
    } = h.add(&call);
    // Across the wrap: ROC 1 from seq 0 on, in the relay's contexts and the peers'.
    for seq in [65_533u16, 65_534, 65_535, 0, 1, 2] {
        let (mut buf, len, plain) = caller.send(seq, 160);
        let (_, _, payload) = forwarded(h.process(0, &mut buf, len), &buf);
        assert_eq!(callee.open(payload).unwrap(), plain);
    }
    let stats = h.relay.call_stats("wrapped").unwrap();
    let (a, b) = (&stats.media[0][0], &stats.media[0][1]);
    assert_eq!((a.srtp_receive[0].roc, a.srtp_receive[0].seq), (1, 2));
    assert_eq!((b.srtp_send[0].roc, b.srtp_send[0].seq), (1, 2));

    // The data plane restarts: a new relay, the same call with the positions it reported.
    let positions = |v: &[relay_srtp::StreamPosition]| -> Vec<relay_session::StreamPosition> {
        v.iter().map(|&p| p.into()).collect()
    };
    let mut spec = call.spec();
    spec.media[0].a.resume_receive = positions(&a.srtp_receive);
    spec.media[0].b.resume_send = positions(&b.srtp_send);
    for (seq, resume, works) in [(3u16, true, true), (4, false, false)] {
        let mut again = Harness::new();
        let mut s = spec.clone();
        if !resume {
            s.media[0].a.resume_receive.clear();
            s.media[0].b.resume_send.clear();
        }
        again.relay.add_call(&s).unwrap();
        let (mut buf, len, plain) = caller.send(seq, 160);
        match again.process(0, &mut buf, len) {
            v @ Verdict::Forward { .. } => {
                let (_, _, payload) = forwarded(v, &buf);
                let opened = callee.open(payload);
                assert_eq!(opened.is_ok(), works, "resumed: {resume}");
                if works {
                    assert_eq!(opened.unwrap(), plain);
                }
            }
            v => assert!(!works, "resumed: {resume}: {v:?}"),
        }
    }
}
