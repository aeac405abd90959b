//! The frames the relay reads, rewrites and writes, one file per protocol (as smoltcp's
//! `wire`), over the frame's own bytes:
//!
//! * [`ethernet`]: Ethernet II with at most one 802.1Q tag: [`L2`] read, [`L2Out`] written.
//! * [`ipv4`], [`ipv6`]: the IP headers, without IPv4 options or IPv6 extension headers
//!   (media peers use neither; refusing them keeps every header one length).
//! * [`udp`]: UDP over either family: the relay's parse ([`parse_udp_after`]), the checksum
//!   check, the payload sum recovered from a checksum, the destination peeked for prefetch and
//!   dispatch, and the frame builder of generators and tests ([`write_udp`]).
//! * [`tx_header`]: [`TxHeader`], one outgoing leg's headers built once and stamped onto
//!   every packet, with checksums from precomputed sums or left to the NIC.
//! * [`arp`]: ARP for IPv4 over Ethernet (RFC 826).
//! * [`icmp`]: ICMP echo (RFC 792) and ICMPv6 (RFC 4443).
//! * [`ndisc`]: neighbour solicitation and advertisement (RFC 4861).
//! * [`checksum`]: the Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Parsers read offsets and addresses without copying the packet and check lengths before
//! every read, so no input makes them panic (the `wire_parse` fuzz target holds them to it);
//! rewrites work in place. Byte offsets stay in this module: the relay reads and writes frames
//! only through it. The most used items are re-exported here, so `wire::parse_udp` and
//! `wire::TxHeader` name the same things as `wire::udp::parse_udp` and
//! `wire::tx_header::TxHeader`.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod ndisc;
pub mod tx_header;
pub mod udp;

pub use arp::{parse_arp, write_arp, Arp};
pub use checksum::{checksum_add, fold};
pub use ethernet::{
    parse_l2, L2Out, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN, L2,
};
pub use icmp::{
    icmp_echo_reply_in_place, parse_echo4, parse_echo6, parse_icmp6, write_echo4, write_echo6,
    write_echo6_reply, write_icmp6, Echo, Icmp6,
};
pub use ipv4::{peek_ipv4_dst, Ipv4Repr};
pub use ipv6::Ipv6Repr;
pub use ndisc::{nd_link_layer_option, solicited_node, Ndisc};
pub use tx_header::{ChecksumOffload, TxHeader};
pub use udp::{
    emit_udp, parse_udp, parse_udp_after, parse_udp_checked, peek_udp_dst, udp_checksum_ok,
    udp_payload_sum, write_udp, write_udp_with, Udp, UdpEndpoints,
};

/// IP protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IP protocol number (next header) of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;

/// Why a frame cannot be handled, as far as the headers tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than the headers it announces.
    Truncated,
    /// A header field is invalid (version, length, checksum).
    Malformed,
    /// A protocol the relay does not carry (not IPv4/IPv6/ARP; IP options; fragments; not
    /// UDP/ICMP).
    Unsupported,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_never_panics() {
        let mut x = 0x1234_5678u32;
        for len in 0..200 {
            let mut f: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            if len > 13 {
                f[12] = 0x08;
                f[13] = if len % 2 == 0 { 0x00 } else { 0x06 };
            }
            let _ = parse_udp(&f);
            if let Ok(l2) = parse_l2(&f) {
                let _ = parse_arp(&f, &l2);
                let _ = icmp_echo_reply_in_place(&mut f, &l2);
            }
        }
    }
}
