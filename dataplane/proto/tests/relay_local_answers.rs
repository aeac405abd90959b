//! The relay's answers for its own addresses (ARP, ICMP echo, neighbour discovery) and its
//! own ARP requests and neighbour solicitations for unresolved next hops.

mod util;

use std::net::{IpAddr, Ipv4Addr};

use relay_proto::relay::{DropReason, Verdict};
use relay_proto::wire;
use util::*;

#[test]
fn arp_and_icmp_for_our_addresses_only() {
    let mut h = Harness::new();
    h.now_ns = 1;
    let mut buf = vec![0u8; 128];
    let req = wire::Arp {
        op: 1,
        sha: CALLER_MAC,
        spa: "198.18.0.10".parse().unwrap(),
        tha: [0; 6],
        tpa: "198.18.0.1".parse().unwrap(),
    };
    let n = wire::write_arp(&mut buf, [0xff; 6], None, &req).unwrap();
    let Verdict::Reply { len } = h.process(0, &mut buf, n) else {
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
        h.process(0, &mut buf, n),
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
        let v = h.process(0, &mut f, 50);
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

/// 198.19.0.33 (MAC 02:00:00:00:00:33) answers the relay's ARP request on port 1 at `now_ns`.
fn answer_arp_for_33(h: &mut Harness, now_ns: u64) {
    let mut buf = vec![0u8; 128];
    let reply = wire::Arp {
        op: 2,
        sha: [2, 0, 0, 0, 0, 0x33],
        spa: "198.19.0.33".parse().unwrap(),
        tha: [2, 0, 0, 0, 1, 1],
        tpa: "198.19.0.1".parse().unwrap(),
    };
    let n = wire::write_arp(&mut buf, [2, 0, 0, 0, 1, 1], Some(42), &reply).unwrap();
    h.now_ns = now_ns;
    assert_eq!(h.process(1, &mut buf, n), Verdict::Consumed);
}

#[test]
fn a_calls_peer_is_asked_for_at_install_and_a_stale_entry_keeps_media_flowing() {
    let mut h = Harness::new();
    h.now_ns = 1;
    let Peers { mut caller, .. } =
        h.add(&Call::new("c").b("198.19.0.1:40002", Some("198.19.0.33:6000")));
    // Asked for while the call is set up, before its first packet.
    let mut requests = Vec::new();
    h.relay
        .drain_arp_requests(|port, f| requests.push((port, f.to_vec())));
    assert_eq!(requests.len(), 1);
    let l2 = wire::parse_l2(&requests[0].1).unwrap();
    let arp = wire::parse_arp(&requests[0].1, &l2).unwrap();
    assert_eq!(arp.tpa, "198.19.0.33".parse::<Ipv4Addr>().unwrap());
    answer_arp_for_33(&mut h, 2);
    // So the first packet goes through.
    let (mut buf, len, _) = caller.send(0, 20);
    h.now_ns = 3;
    forwarded(h.process(0, &mut buf, len), &buf);
    assert_eq!(wire::parse_l2(&buf).unwrap().dst, [2, 0, 0, 0, 0, 0x33]);
    // Long after the entry aged out (300 s), packets still go to the MAC it had, and the
    // neighbour is asked again, once.
    h.now_ns = 2 + 301_000_000_000;
    for seq in 1..4 {
        let (mut buf, len, _) = caller.send(seq, 20);
        forwarded(h.process(0, &mut buf, len), &buf);
        assert_eq!(wire::parse_l2(&buf).unwrap().dst, [2, 0, 0, 0, 0, 0x33]);
    }
    let mut again = Vec::new();
    h.relay
        .drain_arp_requests(|port, f| again.push((port, f.to_vec())));
    assert_eq!(again.len(), 1, "one refresh request");
}

#[test]
fn unknown_next_hop_queues_one_arp_request_and_its_packets_are_held_for_the_answer() {
    let mut h = Harness::new();
    h.now_ns = 1;
    let Peers {
        mut caller,
        mut callee,
    } = h.add(&Call::new("c").b("198.19.0.1:40002", Some("198.19.0.33:6000")));
    let peer: IpAddr = "198.19.0.33".parse().unwrap();
    let mut held = Vec::new();
    for seq in 0..3 {
        let (mut buf, len, _) = caller.send(seq, 20);
        let v = h.process(0, &mut buf, len);
        let Verdict::Hold {
            port: 1,
            len,
            next_hop,
            ..
        } = v
        else {
            panic!("not held for the next hop: {v:?}")
        };
        assert_eq!(next_hop, peer);
        // Complete but for the destination MAC.
        assert_eq!(buf[..6], [0; 6]);
        let u = wire::parse_udp(&buf[..len]).unwrap();
        assert_eq!(u.payload + u.payload_len, len);
        held.push((buf, len));
    }
    assert_eq!(
        (h.relay.stats.held, h.relay.stats.forwarded),
        (3, 0),
        "counted as held, not yet forwarded"
    );
    assert_eq!(h.relay.neighbour_mac(peer), None);
    let mut requests = Vec::new();
    h.relay
        .drain_arp_requests(|port, f| requests.push((port, f.to_vec())));
    assert_eq!(requests.len(), 1);
    let (port, f) = &requests[0];
    let l2 = wire::parse_l2(f).unwrap();
    let arp = wire::parse_arp(f, &l2).unwrap();
    assert_eq!(
        (*port, l2.vlan, arp.op, arp.tpa),
        (1, Some(42), 1, "198.19.0.33".parse().unwrap())
    );
    // The answer teaches the relay: the held frames can be completed with the MAC it
    // names (as the I/O shell does), and traffic flows.
    answer_arp_for_33(&mut h, 2);
    assert_eq!(h.relay.neighbour_mac(peer), Some([2, 0, 0, 0, 0, 0x33]));
    for (seq, (mut buf, len)) in held.into_iter().enumerate() {
        buf[..6].copy_from_slice(&[2, 0, 0, 0, 0, 0x33]);
        let v = Verdict::Forward {
            port: 1,
            len,
            offload: None,
        };
        let (_, _, payload) = forwarded(v, &buf);
        assert_eq!(
            callee.open(payload).unwrap(),
            rtp(seq as u16, 20),
            "held frame {seq} is whole once its MAC is in"
        );
    }
    let (mut buf, len, _) = caller.send(3, 20);
    h.now_ns = 3;
    forwarded(h.process(0, &mut buf, len), &buf);
    assert_eq!(wire::parse_l2(&buf).unwrap().dst, [2, 0, 0, 0, 0, 0x33]);
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
    let mut h = Harness::new();
    h.now_ns = 1;
    // A solicitation for our address is answered with our MAC, and teaches us the sender's.
    let (mut buf, n) = icmp6_frame(
        "2001:2::77",
        "ff02::1:ff00:1",
        [0x33, 0x33, 0xff, 0, 0, 1],
        255,
        &ns("2001:2::1", Some(CALLER_MAC)),
    );
    let Verdict::Reply { len } = h.process(0, &mut buf, n) else {
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
    assert!(matches!(h.process(0, &mut buf, n), Verdict::Drop(_)));
    let (mut buf, n) = icmp6_frame(
        "2001:2::77",
        "ff02::1:ff00:1",
        [0x33, 0x33, 0xff, 0, 0, 1],
        64,
        &ns("2001:2::1", Some(CALLER_MAC)),
    );
    assert!(matches!(h.process(0, &mut buf, n), Verdict::Drop(_)));
    // Echo request to us: reply with the same data.
    let mut echo = vec![128, 0, 0, 0, 0x12, 0x34, 0, 1];
    echo.extend_from_slice(b"ping6");
    let (mut buf, n) = icmp6_frame("2001:2::77", "2001:2::1", RELAY_MAC, 64, &echo);
    let Verdict::Reply { len } = h.process(0, &mut buf, n) else {
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
    let Peers { mut caller, .. } =
        h.add(&Call::new("c").b("[2001:2:0:1::1]:40002", Some("[2001:2:0:1::33]:6000")));
    let (mut buf, len, _) = caller.send(1, 20);
    assert!(matches!(
        h.process(0, &mut buf, len),
        Verdict::Hold { next_hop, .. } if next_hop == "2001:2:0:1::33".parse::<IpAddr>().unwrap()
    ));
    let mut sent = Vec::new();
    h.relay
        .drain_arp_requests(|port, f| sent.push((port, f.to_vec())));
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
    h.now_ns = 2;
    assert_eq!(h.process(1, &mut buf, n), Verdict::Consumed);
    let (mut buf, len, _) = caller.send(2, 20);
    h.now_ns = 3;
    let (_, u, _) = forwarded(h.process(0, &mut buf, len), &buf);
    assert_eq!(
        (u.dst, wire::parse_l2(&buf).unwrap().dst),
        (addr("[2001:2:0:1::33]:6000"), [2, 0, 0, 0, 0, 0x33])
    );
}
