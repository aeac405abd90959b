//! Property tests: every wire view parses back what it emitted (`parse(emit(x)) == x`), for
//! both IP families, tagged and untagged.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use relay_proto::wire::{self, Arp, Echo, Ipv4Repr, Ipv6Repr, L2Out, Ndisc, UdpEndpoints, L2};

fn mac() -> impl Strategy<Value = [u8; 6]> {
    any::<[u8; 6]>()
}

/// An outgoing layer-2 header, untagged or with a 12-bit VLAN id.
fn l2out() -> impl Strategy<Value = L2Out> {
    (mac(), mac(), proptest::option::of(0u16..4096)).prop_map(|(src, dst, vlan)| L2Out {
        src,
        dst,
        vlan,
    })
}

fn v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn v6() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

/// A source and destination of one family, either.
fn endpoints() -> impl Strategy<Value = (SocketAddr, SocketAddr)> {
    prop_oneof![
        (v4(), any::<u16>(), v4(), any::<u16>())
            .prop_map(|(a, p, b, q)| ((a, p).into(), (b, q).into())),
        (v6(), any::<u16>(), v6(), any::<u16>())
            .prop_map(|(a, p, b, q)| ((a, p).into(), (b, q).into())),
    ]
}

proptest! {
    #[test]
    fn ethernet(l2 in l2out(), ethertype in any::<u16>().prop_filter("not a tag", |t| *t != wire::ETHERTYPE_VLAN)) {
        let mut frame = [0u8; 18];
        let l3 = l2.emit(&mut frame, ethertype).unwrap();
        prop_assert_eq!(
            wire::parse_l2(&frame[..l3]),
            Ok(L2 { dst: l2.dst, src: l2.src, vlan: l2.vlan, ethertype, l3 })
        );
    }

    #[test]
    fn ipv4(src in v4(), dst in v4(), protocol in any::<u8>(), payload_len in 0usize..1500, ttl in any::<u8>(), l2 in l2out()) {
        let ip = Ipv4Repr { src, dst, protocol, payload_len, ttl };
        let mut frame = vec![0u8; 18 + 20 + payload_len];
        let l3 = l2.emit(&mut frame, wire::ETHERTYPE_IPV4).unwrap();
        let end = ip.emit(&mut frame, l3).unwrap() + payload_len;
        prop_assert_eq!(Ipv4Repr::parse(&frame[..end], l3), Ok(ip));
    }

    #[test]
    fn ipv6(src in v6(), dst in v6(), next_header in any::<u8>(), payload_len in 0usize..1500, hop_limit in any::<u8>(), l2 in l2out()) {
        let ip = Ipv6Repr { src, dst, next_header, payload_len, hop_limit };
        let mut frame = vec![0u8; 18 + 40 + payload_len];
        let l3 = l2.emit(&mut frame, wire::ETHERTYPE_IPV6).unwrap();
        let end = ip.emit(&mut frame, l3).unwrap() + payload_len;
        prop_assert_eq!(Ipv6Repr::parse(&frame[..end], l3), Ok(ip));
    }

    #[test]
    fn udp((src, dst) in endpoints(), l2 in l2out(), payload in proptest::collection::vec(any::<u8>(), 0..600)) {
        let ends = UdpEndpoints { src_mac: l2.src, dst_mac: l2.dst, vlan: l2.vlan, src, dst };
        let mut frame = vec![0u8; ends.header_len() + payload.len()];
        let n = wire::write_udp(&mut frame, &ends, &payload).unwrap();
        prop_assert_eq!(n, frame.len());
        let (got, body) = wire::parse_udp_checked(&frame).unwrap();
        prop_assert_eq!(got, ends);
        prop_assert_eq!(body, &payload[..]);
        // The relay's view of the same frame, and the peek used for prefetch and dispatch.
        let u = wire::parse_udp(&frame).unwrap();
        prop_assert_eq!((u.src, u.dst, wire::parse_l2(&frame).unwrap().vlan, u.payload_len), (src, dst, l2.vlan, payload.len()));
        prop_assert_eq!(wire::peek_udp_dst(&frame), Some(dst));
    }

    #[test]
    fn arp(op in 1u16..=2, sha in mac(), spa in v4(), tha in mac(), tpa in v4(), l2 in l2out()) {
        let arp = Arp { op, sha, spa, tha, tpa };
        let mut frame = [0u8; 64];
        let n = wire::write_arp(&mut frame, l2.dst, l2.vlan, &arp).unwrap();
        let parsed = wire::parse_l2(&frame[..n]).unwrap();
        prop_assert_eq!((parsed.src, parsed.dst, parsed.vlan), (sha, l2.dst, l2.vlan));
        prop_assert_eq!(wire::parse_arp(&frame[..n], &parsed), Ok(arp));
    }

    #[test]
    fn icmp_echo(
        v6_family in any::<bool>(),
        (a4, b4, a6, b6) in (v4(), v4(), v6(), v6()),
        reply in any::<bool>(),
        ident in any::<u16>(),
        seq in any::<u16>(),
        data in proptest::collection::vec(any::<u8>(), 0..300),
        l2 in l2out(),
    ) {
        let echo = Echo { reply, ident, seq, data: &data };
        let mut frame = vec![0u8; 18 + 40 + 8 + data.len()];
        if v6_family {
            let n = wire::write_echo6(&mut frame, &l2, a6, b6, &echo).unwrap();
            let parsed = wire::parse_l2(&frame[..n]).unwrap();
            let (icmp, got) = wire::parse_echo6(&frame[..n], &parsed).unwrap();
            prop_assert_eq!((icmp.src, icmp.dst, got), (a6, b6, echo));
        } else {
            let n = wire::write_echo4(&mut frame, &l2, a4, b4, &echo).unwrap();
            let parsed = wire::parse_l2(&frame[..n]).unwrap();
            let (ip, got) = wire::parse_echo4(&frame[..n], &parsed).unwrap();
            prop_assert_eq!((ip.src, ip.dst, got), (a4, b4, echo));
        }
    }

    #[test]
    fn neighbour_discovery(
        solicit in any::<bool>(),
        flags in prop_oneof![Just(0u8), Just(0x20), Just(0x40), Just(0x60), Just(0x80), Just(0xe0)],
        target in v6(),
        lladdr in proptest::option::of(mac()),
        (src, dst) in (v6(), v6()),
        l2 in l2out(),
    ) {
        let nd = if solicit {
            Ndisc::Solicit { target, lladdr }
        } else {
            Ndisc::Advert { flags, target, lladdr }
        };
        let mut frame = [0u8; 18 + 40 + 32];
        let n = nd.emit(&mut frame, &l2, src, dst).unwrap();
        let parsed = wire::parse_l2(&frame[..n]).unwrap();
        let icmp = wire::parse_icmp6(&frame[..n], &parsed).unwrap();
        prop_assert_eq!((icmp.src, icmp.dst, icmp.hop_limit), (src, dst, 255));
        prop_assert_eq!(Ndisc::parse(&frame[icmp.at..icmp.at + icmp.len]), Ok(nd));
    }
}
