//! Zero-copy parsing and in-place rewriting of Ethernet (with one optional 802.1Q tag),
//! IPv4, UDP, ARP and ICMP echo, over the frame's own bytes.
//!
//! [`parse`] reads offsets and addresses without copying the packet; the rewrite functions
//! change headers in place. Every accessor checks lengths first, so no input can panic.

use std::net::{Ipv4Addr, SocketAddrV4};

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of an 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_UDP: u8 = 17;

/// Why a frame cannot be handled, as far as the headers tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than the headers it announces.
    Truncated,
    /// A header field is invalid (version, length, checksum).
    Malformed,
    /// A protocol the relay does not carry (not IPv4/ARP; IP options; fragments; not UDP/ICMP).
    Unsupported,
}

/// The layer-2 part of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L2 {
    /// Destination MAC.
    pub dst: [u8; 6],
    /// Source MAC.
    pub src: [u8; 6],
    /// The VLAN id, if the frame is tagged.
    pub vlan: Option<u16>,
    /// EtherType after the tag.
    pub ethertype: u16,
    /// Offset of the layer-3 header.
    pub l3: usize,
}

/// Reads the Ethernet header (and an 802.1Q tag).
pub fn parse_l2(frame: &[u8]) -> Result<L2, WireError> {
    let b = frame.get(..14).ok_or(WireError::Truncated)?;
    let mut l2 = L2 {
        dst: b[0..6].try_into().expect("6 bytes"),
        src: b[6..12].try_into().expect("6 bytes"),
        vlan: None,
        ethertype: u16::from_be_bytes([b[12], b[13]]),
        l3: 14,
    };
    if l2.ethertype == ETHERTYPE_VLAN {
        let tag = frame.get(14..18).ok_or(WireError::Truncated)?;
        l2.vlan = Some(u16::from_be_bytes([tag[0], tag[1]]) & 0x0fff);
        l2.ethertype = u16::from_be_bytes([tag[2], tag[3]]);
        l2.l3 = 18;
    }
    Ok(l2)
}

/// A UDP/IPv4 datagram inside a frame: offsets and addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Udp4 {
    /// The layer-2 header.
    pub l2: L2,
    /// Offset of the UDP header.
    pub l4: usize,
    /// Offset of the UDP payload.
    pub payload: usize,
    /// UDP payload length.
    pub payload_len: usize,
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
}

/// RFC 1071 one's-complement sum, folded to 16 bits (not inverted).
///
/// Adds eight bytes at a time as two 32-bit big-endian words into a 64-bit accumulator:
/// because 2^16 = 1 (mod 2^16 - 1), sums of wider words fold to the same 16-bit result
/// (RFC 1071 section 2(B)), at a quarter of the additions.
pub fn checksum_add(sum: u32, data: &[u8]) -> u32 {
    let mut acc = u64::from(sum);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (v >> 32) + (v & 0xffff_ffff);
    }
    let mut words = chunks.remainder().chunks_exact(2);
    for pair in &mut words {
        acc += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u32
}

/// The IPv4 header of a frame: (header offset, header length, total length, protocol).
fn ipv4_header(frame: &[u8], l3: usize) -> Result<(usize, usize, u8), WireError> {
    let ip = frame.get(l3..l3 + 20).ok_or(WireError::Truncated)?;
    if ip[0] >> 4 != 4 {
        return Err(WireError::Malformed);
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ihl != 20 {
        // Options are legal but never used by media peers; refusing keeps rewriting simple.
        return Err(WireError::Unsupported);
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if total < ihl || frame.len() < l3 + total {
        return Err(WireError::Truncated);
    }
    if checksum_add(0, ip) != 0xffff {
        return Err(WireError::Malformed);
    }
    // More-fragments set or a non-zero offset: RTP is never fragmented by sane peers.
    if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
        return Err(WireError::Unsupported);
    }
    Ok((ihl, total, ip[9]))
}

/// Parses an Ethernet/IPv4/UDP frame and checks the IPv4 header checksum and lengths (the
/// UDP checksum is checked by [`udp4_checksum_ok`] where it matters).
pub fn parse_udp4(frame: &[u8]) -> Result<Udp4, WireError> {
    parse_udp4_after(frame, parse_l2(frame)?)
}

/// [`parse_udp4`] for a frame whose layer-2 header is already parsed.
fn parse_udp4_after(frame: &[u8], l2: L2) -> Result<Udp4, WireError> {
    if l2.ethertype != ETHERTYPE_IPV4 {
        return Err(WireError::Unsupported);
    }
    let (ihl, total, proto) = ipv4_header(frame, l2.l3)?;
    if proto != IPPROTO_UDP {
        return Err(WireError::Unsupported);
    }
    let l4 = l2.l3 + ihl;
    let udp = frame.get(l4..l4 + 8).ok_or(WireError::Truncated)?;
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if udp_len < 8 || udp_len != total - ihl {
        return Err(WireError::Malformed);
    }
    let ip = &frame[l2.l3..];
    Ok(Udp4 {
        l2,
        l4,
        payload: l4 + 8,
        payload_len: udp_len - 8,
        src: SocketAddrV4::new(
            Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
            u16::from_be_bytes([udp[0], udp[1]]),
        ),
        dst: SocketAddrV4::new(
            Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
            u16::from_be_bytes([udp[2], udp[3]]),
        ),
    })
}

fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, udp_len: usize) -> u32 {
    let mut p = [0u8; 12];
    p[0..4].copy_from_slice(&src.octets());
    p[4..8].copy_from_slice(&dst.octets());
    p[9] = IPPROTO_UDP;
    p[10..12].copy_from_slice(&(udp_len as u16).to_be_bytes());
    checksum_add(0, &p)
}

/// Whether the UDP checksum is right (or absent: zero is allowed over IPv4).
pub fn udp4_checksum_ok(frame: &[u8], u: &Udp4) -> bool {
    let udp = &frame[u.l4..u.payload + u.payload_len];
    if udp[6] == 0 && udp[7] == 0 {
        return true;
    }
    checksum_add(pseudo_sum(*u.src.ip(), *u.dst.ip(), udp.len()), udp) == 0xffff
}

/// Rewrites a UDP/IPv4 frame in place for its next hop: MACs, addresses, ports, a payload of
/// `payload_len` bytes (already written at `u.payload`), TTL reset, and both checksums.
/// Returns the new frame length. The VLAN tag, if any, is replaced by `vlan` (same tagging).
pub fn rewrite_udp4(
    frame: &mut [u8],
    u: &Udp4,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: SocketAddrV4,
    dst: SocketAddrV4,
    payload_len: usize,
) -> usize {
    frame[0..6].copy_from_slice(&dst_mac);
    frame[6..12].copy_from_slice(&src_mac);
    let l3 = u.l2.l3;
    let udp_len = 8 + payload_len;
    let total = 20 + udp_len;
    {
        let ip = &mut frame[l3..l3 + 20];
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&[0, 0]);
        ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF, no fragments
        ip[8] = 64;
        ip[10..12].copy_from_slice(&[0, 0]);
        ip[12..16].copy_from_slice(&src.ip().octets());
        ip[16..20].copy_from_slice(&dst.ip().octets());
        let c = !(checksum_add(0, ip) as u16);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
    }
    let l4 = u.l4;
    frame[l4..l4 + 2].copy_from_slice(&src.port().to_be_bytes());
    frame[l4 + 2..l4 + 4].copy_from_slice(&dst.port().to_be_bytes());
    frame[l4 + 4..l4 + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    frame[l4 + 6..l4 + 8].copy_from_slice(&[0, 0]);
    let sum = checksum_add(
        pseudo_sum(*src.ip(), *dst.ip(), udp_len),
        &frame[l4..l4 + udp_len],
    );
    let c = match !(sum as u16) {
        0 => 0xffff,
        c => c,
    };
    frame[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
    l4 + udp_len
}

/// An ARP request or reply for IPv4 over Ethernet (RFC 826).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub op: u16,
    /// Sender hardware address.
    pub sha: [u8; 6],
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target hardware address.
    pub tha: [u8; 6],
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

/// Parses an ARP packet for IPv4 over Ethernet.
pub fn parse_arp(frame: &[u8], l2: &L2) -> Result<Arp, WireError> {
    let a = frame.get(l2.l3..l2.l3 + 28).ok_or(WireError::Truncated)?;
    if a[0..2] != [0, 1] || a[2..4] != [0x08, 0x00] || a[4] != 6 || a[5] != 4 {
        return Err(WireError::Unsupported);
    }
    Ok(Arp {
        op: u16::from_be_bytes([a[6], a[7]]),
        sha: a[8..14].try_into().expect("6 bytes"),
        spa: Ipv4Addr::new(a[14], a[15], a[16], a[17]),
        tha: a[18..24].try_into().expect("6 bytes"),
        tpa: Ipv4Addr::new(a[24], a[25], a[26], a[27]),
    })
}

/// Writes an ARP packet (with an optional VLAN tag) into `buf`; returns its length (42 or 46,
/// padded to the 60-byte Ethernet minimum).
pub fn write_arp(buf: &mut [u8], eth_dst: [u8; 6], vlan: Option<u16>, arp: &Arp) -> Option<usize> {
    let buf = buf.get_mut(..60)?;
    buf.fill(0);
    buf[0..6].copy_from_slice(&eth_dst);
    buf[6..12].copy_from_slice(&arp.sha);
    let mut at = 12;
    if let Some(v) = vlan {
        buf[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        buf[14..16].copy_from_slice(&v.to_be_bytes());
        at = 16;
    }
    buf[at..at + 2].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    let a = &mut buf[at + 2..at + 30];
    a[0..8].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 0]);
    a[6..8].copy_from_slice(&arp.op.to_be_bytes());
    a[8..14].copy_from_slice(&arp.sha);
    a[14..18].copy_from_slice(&arp.spa.octets());
    a[18..24].copy_from_slice(&arp.tha);
    a[24..28].copy_from_slice(&arp.tpa.octets());
    Some(60)
}

/// If `frame` is an ICMP echo request (checked), turns it into the echo reply in place:
/// swaps MACs and addresses, sets type 0, fixes both checksums. Returns the reply length.
pub fn icmp_echo_reply_in_place(frame: &mut [u8], l2: &L2) -> Result<usize, WireError> {
    let (ihl, total, proto) = ipv4_header(frame, l2.l3)?;
    if proto != IPPROTO_ICMP {
        return Err(WireError::Unsupported);
    }
    let icmp_at = l2.l3 + ihl;
    let icmp_len = total - ihl;
    let icmp = frame
        .get(icmp_at..icmp_at + icmp_len)
        .ok_or(WireError::Truncated)?;
    if icmp_len < 8 || icmp[0] != 8 || icmp[1] != 0 {
        return Err(WireError::Unsupported);
    }
    if checksum_add(0, icmp) != 0xffff {
        return Err(WireError::Malformed);
    }
    let (dst, src): ([u8; 6], [u8; 6]) = (
        frame[0..6].try_into().expect("6"),
        frame[6..12].try_into().expect("6"),
    );
    frame[0..6].copy_from_slice(&src);
    frame[6..12].copy_from_slice(&dst);
    let ip = &mut frame[l2.l3..l2.l3 + 20];
    let (s, d): ([u8; 4], [u8; 4]) = (
        ip[12..16].try_into().expect("4"),
        ip[16..20].try_into().expect("4"),
    );
    ip[12..16].copy_from_slice(&d);
    ip[16..20].copy_from_slice(&s);
    ip[8] = 64;
    ip[10..12].copy_from_slice(&[0, 0]);
    let c = !(checksum_add(0, ip) as u16);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let icmp = &mut frame[icmp_at..icmp_at + icmp_len];
    icmp[0] = 0;
    icmp[2..4].copy_from_slice(&[0, 0]);
    let c = !(checksum_add(0, icmp) as u16);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    Ok(l2.l3 + total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{write_udp_ipv4, UdpEndpoints};

    #[test]
    fn udp_round_trip_and_rewrite() {
        let ends = UdpEndpoints {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src: "198.18.0.10:5004".parse().unwrap(),
            dst: "198.18.0.1:40000".parse().unwrap(),
        };
        let mut buf = [0u8; 256];
        let n = write_udp_ipv4(&mut buf, &ends, b"hello").unwrap();
        let u = parse_udp4(&buf[..n]).unwrap();
        assert_eq!((u.src, u.dst, u.payload_len), (ends.src, ends.dst, 5));
        assert!(udp4_checksum_ok(&buf[..n], &u));
        buf[u.payload..u.payload + 7].copy_from_slice(b"goodbye");
        let m = rewrite_udp4(
            &mut buf,
            &u,
            [2, 0, 0, 0, 0, 3],
            [2, 0, 0, 0, 0, 4],
            "198.19.0.1:41000".parse().unwrap(),
            "198.19.0.20:6000".parse().unwrap(),
            7,
        );
        let v = parse_udp4(&buf[..m]).unwrap();
        assert_eq!(v.src, "198.19.0.1:41000".parse().unwrap());
        assert_eq!(v.dst, "198.19.0.20:6000".parse().unwrap());
        assert_eq!(&buf[v.payload..v.payload + v.payload_len], b"goodbye");
        assert!(udp4_checksum_ok(&buf[..m], &v));
        assert_eq!(v.l2.dst, [2, 0, 0, 0, 0, 4]);
    }

    #[test]
    fn wide_checksum_equals_rfc1071_word_sum() {
        let reference = |sum: u32, data: &[u8]| {
            let mut sum = sum;
            for pair in data.chunks(2) {
                sum += u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
                while sum > 0xffff {
                    sum = (sum & 0xffff) + (sum >> 16);
                }
            }
            sum
        };
        let mut x = 0x9e37_79b9u32;
        for len in 0..300 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            for start in [0u32, 1, 0xfffe, 0xffff] {
                assert_eq!(
                    checksum_add(start, &data),
                    reference(start, &data),
                    "len {len} start {start}"
                );
            }
        }
        assert_eq!(checksum_add(0, &[0xff; 4096]), 0xffff);
    }

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
            let _ = parse_udp4(&f);
            if let Ok(l2) = parse_l2(&f) {
                let _ = parse_arp(&f, &l2);
                let _ = icmp_echo_reply_in_place(&mut f, &l2);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Both address families: UDP over IPv4 or IPv6, ICMPv6 echo, neighbour discovery.
// ---------------------------------------------------------------------------------------------

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

const IPPROTO_ICMPV6: u8 = 58;

/// A UDP datagram over IPv4 or IPv6 inside a frame: offsets and addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Udp {
    /// The layer-2 header.
    pub l2: L2,
    /// Offset of the UDP header.
    pub l4: usize,
    /// Offset of the UDP payload.
    pub payload: usize,
    /// UDP payload length.
    pub payload_len: usize,
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
}

/// The IPv6 header of a frame without extension headers: (payload length, next header).
fn ipv6_header(frame: &[u8], l3: usize) -> Result<(usize, u8), WireError> {
    let ip = frame.get(l3..l3 + 40).ok_or(WireError::Truncated)?;
    if ip[0] >> 4 != 6 {
        return Err(WireError::Malformed);
    }
    let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    if frame.len() < l3 + 40 + payload {
        return Err(WireError::Truncated);
    }
    Ok((payload, ip[6]))
}

fn v6(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

/// Parses an Ethernet/IPv4/UDP or Ethernet/IPv6/UDP frame (IPv6 extension headers are not
/// carried: media peers do not use them).
pub fn parse_udp(frame: &[u8]) -> Result<Udp, WireError> {
    parse_udp_after(frame, &parse_l2(frame)?)
}

/// [`parse_udp`] for a frame whose layer-2 header is already parsed (the relay's path: the
/// Ethernet header is read once per frame).
pub fn parse_udp_after(frame: &[u8], l2: &L2) -> Result<Udp, WireError> {
    let l2 = *l2;
    match l2.ethertype {
        ETHERTYPE_IPV4 => {
            let u = parse_udp4_after(frame, l2)?;
            Ok(Udp {
                l2: u.l2,
                l4: u.l4,
                payload: u.payload,
                payload_len: u.payload_len,
                src: u.src.into(),
                dst: u.dst.into(),
            })
        }
        ETHERTYPE_IPV6 => {
            let (plen, next) = ipv6_header(frame, l2.l3)?;
            if next != IPPROTO_UDP {
                return Err(WireError::Unsupported);
            }
            let l4 = l2.l3 + 40;
            let udp = frame.get(l4..l4 + 8).ok_or(WireError::Truncated)?;
            let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
            if udp_len < 8 || udp_len != plen {
                return Err(WireError::Malformed);
            }
            let ip = &frame[l2.l3..];
            Ok(Udp {
                l2,
                l4,
                payload: l4 + 8,
                payload_len: udp_len - 8,
                src: SocketAddr::new(
                    IpAddr::V6(v6(&ip[8..24])),
                    u16::from_be_bytes([udp[0], udp[1]]),
                ),
                dst: SocketAddr::new(
                    IpAddr::V6(v6(&ip[24..40])),
                    u16::from_be_bytes([udp[2], udp[3]]),
                ),
            })
        }
        _ => Err(WireError::Unsupported),
    }
}

fn pseudo_sum6(src: &Ipv6Addr, dst: &Ipv6Addr, len: usize, proto: u8) -> u32 {
    let mut p = [0u8; 40];
    p[0..16].copy_from_slice(&src.octets());
    p[16..32].copy_from_slice(&dst.octets());
    p[32..36].copy_from_slice(&(len as u32).to_be_bytes());
    p[39] = proto;
    checksum_add(0, &p)
}

/// The destination address and port of a UDP frame (`None` for anything else), read without
/// validating lengths or checksums: for prefetching and for software dispatch, which only need
/// to know where a frame goes (the owning worker's full parse validates everything).
#[inline]
pub fn peek_udp_dst(frame: &[u8]) -> Option<SocketAddr> {
    let mut l3 = 14;
    let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if ethertype == ETHERTYPE_VLAN {
        ethertype = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
        l3 = 18;
    }
    match ethertype {
        ETHERTYPE_IPV4 => {
            let ip = frame.get(l3..l3 + 24)?;
            if ip[9] != IPPROTO_UDP {
                return None;
            }
            let l4 = l3 + usize::from(ip[0] & 0x0f) * 4;
            let port = frame.get(l4 + 2..l4 + 4)?;
            Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])),
                u16::from_be_bytes([port[0], port[1]]),
            ))
        }
        ETHERTYPE_IPV6 => {
            let ip = frame.get(l3..l3 + 44)?;
            if ip[6] != IPPROTO_UDP {
                return None;
            }
            Some(SocketAddr::new(
                IpAddr::V6(v6(&ip[24..40])),
                u16::from_be_bytes([ip[42], ip[43]]),
            ))
        }
        _ => None,
    }
}

/// Whether the UDP checksum is right (zero allowed over IPv4 only; RFC 8200 section 8.1).
pub fn udp_checksum_ok(frame: &[u8], u: &Udp) -> bool {
    let udp = &frame[u.l4..u.payload + u.payload_len];
    match (u.src.ip(), u.dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            if udp[6] == 0 && udp[7] == 0 {
                return true;
            }
            checksum_add(pseudo_sum(s, d, udp.len()), udp) == 0xffff
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            if udp[6] == 0 && udp[7] == 0 {
                return false;
            }
            checksum_add(pseudo_sum6(&s, &d, udp.len(), IPPROTO_UDP), udp) == 0xffff
        }
        _ => false,
    }
}

/// The layer-2 header to emit.
#[derive(Clone, Copy, Debug)]
pub struct L2Out {
    /// Source MAC.
    pub src: [u8; 6],
    /// Destination MAC.
    pub dst: [u8; 6],
    /// 802.1Q tag, if the port uses one.
    pub vlan: Option<u16>,
}

/// Folds a one's-complement accumulator to 16 bits (end-around carry, RFC 1071).
#[inline]
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The part of a UDP checksum that does not depend on lengths or payload: the pseudo-header's
/// addresses and protocol, and the two ports (RFC 768; RFC 8200 section 8.1 for IPv6).
fn udp_address_sum(src: SocketAddr, dst: SocketAddr) -> u64 {
    let ips = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            u64::from(u32::from(s) >> 16)
                + u64::from(u32::from(s) & 0xffff)
                + u64::from(u32::from(d) >> 16)
                + u64::from(u32::from(d) & 0xffff)
        }
        (s, d) => {
            let words = |ip: IpAddr| match ip {
                IpAddr::V6(v6) => u128::from(v6),
                IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
            };
            let (s, d) = (words(s), words(d));
            (0..8)
                .map(|i| ((s >> (16 * i)) & 0xffff) as u64 + ((d >> (16 * i)) & 0xffff) as u64)
                .sum()
        }
    };
    ips + u64::from(IPPROTO_UDP) + u64::from(src.port()) + u64::from(dst.port())
}

/// The one's-complement sum of a received datagram's UDP payload, recovered from its UDP
/// checksum instead of by reading the payload (`None` if the sender sent no checksum).
///
/// The checksum covers pseudo-header, UDP header and payload; taking the known header words
/// back out leaves the payload's sum. A relay that forwards the payload unchanged can then
/// checksum the new headers without touching the payload (the incremental update of
/// RFC 1624), and a datagram corrupted on the way in stays detectably corrupt on the way out.
pub fn udp_payload_sum(frame: &[u8], u: &Udp) -> Option<u32> {
    let c = u16::from_be_bytes([frame[u.l4 + 6], frame[u.l4 + 7]]);
    if c == 0 {
        return None;
    }
    let udp_len = (8 + u.payload_len) as u64;
    let headers = fold(udp_address_sum(u.src, u.dst) + 2 * udp_len);
    // sum(payload) = sum(all) - sum(headers), with sum(all) = !checksum.
    Some(u32::from(fold(u64::from(!c) + u64::from(!headers))))
}

/// The Ethernet (+ 802.1Q), IPv4 or IPv6, and UDP headers of one outgoing leg, built once
/// (when the leg's addresses or next hop change) and stamped onto every packet: only the
/// lengths and checksums change per packet, and the checksums start from sums taken here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxHeader {
    bytes: [u8; 66],
    len: u8,
    l3: u8,
    v4: bool,
    /// Sum of the IPv4 header with total length and checksum zero.
    ip_sum: u32,
    /// [`udp_address_sum`] of the addresses and ports.
    udp_sum: u64,
    /// The pseudo-header's addresses and protocol alone (no ports): what a NIC that
    /// completes the UDP checksum expects to find in the checksum field, plus the length.
    pseudo_sum: u32,
}

/// What a NIC needs to complete a UDP checksum ([`TxHeader::write_for_offload`]): where the
/// IP header starts and how long it is, and the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChecksumOffload {
    /// Ethernet header length, VLAN tag included (DPDK's `l2_len`).
    pub l2_len: u8,
    /// IP header length (DPDK's `l3_len`).
    pub l3_len: u8,
    /// IPv6 (else IPv4).
    pub ipv6: bool,
}

impl TxHeader {
    /// Headers from `src` to `dst` (same family) behind `l2`.
    pub fn new(l2: &L2Out, src: SocketAddr, dst: SocketAddr) -> Option<TxHeader> {
        if src.is_ipv4() != dst.is_ipv4() {
            return None;
        }
        let mut b = [0u8; 66];
        let l3 = if l2.vlan.is_some() { 18 } else { 14 };
        let ip_len = if src.is_ipv4() { 20 } else { 40 };
        let l4 = l3 + ip_len;
        b[0..6].copy_from_slice(&l2.dst);
        b[6..12].copy_from_slice(&l2.src);
        if let Some(v) = l2.vlan {
            b[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            b[14..16].copy_from_slice(&v.to_be_bytes());
        }
        let ethertype = if src.is_ipv4() {
            ETHERTYPE_IPV4
        } else {
            ETHERTYPE_IPV6
        };
        b[l3 - 2..l3].copy_from_slice(&ethertype.to_be_bytes());
        let mut ip_sum = 0;
        match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let ip = &mut b[l3..l3 + 20];
                // Version 4, IHL 5; DF set (RFC 6864: atomic datagram, ID 0); TTL 64.
                ip[0] = 0x45;
                ip[6] = 0x40;
                ip[8] = 64;
                ip[9] = IPPROTO_UDP;
                ip[12..16].copy_from_slice(&s.octets());
                ip[16..20].copy_from_slice(&d.octets());
                ip_sum = checksum_add(0, ip);
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let ip = &mut b[l3..l3 + 40];
                ip[0] = 0x60;
                ip[6] = IPPROTO_UDP;
                ip[7] = 64;
                ip[8..24].copy_from_slice(&s.octets());
                ip[24..40].copy_from_slice(&d.octets());
            }
            _ => return None,
        }
        b[l4..l4 + 2].copy_from_slice(&src.port().to_be_bytes());
        b[l4 + 2..l4 + 4].copy_from_slice(&dst.port().to_be_bytes());
        Some(TxHeader {
            bytes: b,
            len: (l4 + 8) as u8,
            l3: l3 as u8,
            v4: src.is_ipv4(),
            ip_sum,
            udp_sum: udp_address_sum(src, dst),
            pseudo_sum: u32::from(fold(
                udp_address_sum(src, dst) - u64::from(src.port()) - u64::from(dst.port()),
            )),
        })
    }

    /// Length of the headers (where the payload starts).
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Never: there is always at least an Ethernet header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Builds the frame around a UDP payload already in `frame` at `payload_at`
    /// (`payload_len` bytes) whose one's-complement sum is `payload_sum` (see
    /// [`checksum_add`], [`udp_payload_sum`]): moves the payload where these headers end if
    /// needed (IPv4 and IPv6, tagged and untagged headers differ in length), writes the
    /// headers, lengths and both checksums. Returns the frame length, or `None` if `frame` is
    /// too short.
    #[inline]
    pub fn write(
        &self,
        frame: &mut [u8],
        payload_at: usize,
        payload_len: usize,
        payload_sum: u32,
    ) -> Option<usize> {
        let (end, l4, udp_len) = self.write_headers(frame, payload_at, payload_len)?;
        let sum = fold(self.udp_sum + 2 * udp_len as u64 + u64::from(payload_sum));
        // RFC 768: a computed checksum of zero is sent as all ones (zero means "none").
        let c = match !sum {
            0 => 0xffff,
            c => c,
        };
        frame[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
        Some(end)
    }

    /// As [`TxHeader::write`], but leaves the UDP checksum for the NIC to complete (DPDK's
    /// `RTE_MBUF_F_TX_UDP_CKSUM`): the checksum field gets the pseudo-header's sum, not
    /// complemented, as the driver API requires, and the payload is never read. Returns the
    /// frame length and what to tell the driver.
    #[inline]
    pub fn write_for_offload(
        &self,
        frame: &mut [u8],
        payload_at: usize,
        payload_len: usize,
    ) -> Option<(usize, ChecksumOffload)> {
        let (end, l4, udp_len) = self.write_headers(frame, payload_at, payload_len)?;
        let pseudo = fold(u64::from(self.pseudo_sum) + udp_len as u64);
        frame[l4 + 6..l4 + 8].copy_from_slice(&pseudo.to_be_bytes());
        let l3 = usize::from(self.l3);
        Some((
            end,
            ChecksumOffload {
                l2_len: self.l3,
                l3_len: (l4 - l3) as u8,
                ipv6: !self.v4,
            },
        ))
    }

    /// Moves the payload, writes the headers, lengths and the IPv4 checksum; returns the
    /// frame length, where UDP starts and its length.
    #[inline]
    fn write_headers(
        &self,
        frame: &mut [u8],
        payload_at: usize,
        payload_len: usize,
    ) -> Option<(usize, usize, usize)> {
        let hlen = self.len();
        let end = hlen + payload_len;
        if end > frame.len() || payload_at + payload_len > frame.len() {
            return None;
        }
        if hlen != payload_at {
            frame.copy_within(payload_at..payload_at + payload_len, hlen);
        }
        // One fixed-size copy per header shape (the compiler inlines those; a variable
        // length would be a `memmove` call per packet).
        match hlen {
            42 => frame[..42].copy_from_slice(&self.bytes[..42]),
            46 => frame[..46].copy_from_slice(&self.bytes[..46]),
            62 => frame[..62].copy_from_slice(&self.bytes[..62]),
            _ => frame[..hlen].copy_from_slice(&self.bytes[..hlen]),
        }
        let l3 = usize::from(self.l3);
        let udp_len = 8 + payload_len;
        let l4 = if self.v4 {
            let total = (20 + udp_len) as u16;
            frame[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
            let c = !fold(u64::from(self.ip_sum) + u64::from(total));
            frame[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
            l3 + 20
        } else {
            frame[l3 + 4..l3 + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
            l3 + 40
        };
        frame[l4 + 4..l4 + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        Some((end, l4, udp_len))
    }
}

/// Builds a complete frame around a UDP payload already in `frame` at `payload_at`
/// (`payload_len` bytes): moves the payload where the new headers end (IPv4 and IPv6 headers
/// differ in length, and so do tagged and untagged frames), then writes Ethernet, IP and UDP
/// headers with both checksums. Returns the frame length, or `None` if `frame` is too short.
pub fn emit_udp(
    frame: &mut [u8],
    payload_at: usize,
    payload_len: usize,
    l2: &L2Out,
    src: SocketAddr,
    dst: SocketAddr,
) -> Option<usize> {
    let header = TxHeader::new(l2, src, dst)?;
    let payload = frame.get(payload_at..payload_at + payload_len)?;
    let sum = checksum_add(0, payload);
    header.write(frame, payload_at, payload_len, sum)
}

/// An ICMPv6 message inside an IPv6 frame: offsets, addresses, type.
#[derive(Clone, Copy, Debug)]
pub struct Icmp6 {
    /// Offset of the ICMPv6 header.
    pub at: usize,
    /// ICMPv6 length.
    pub len: usize,
    /// IPv6 source.
    pub src: Ipv6Addr,
    /// IPv6 destination.
    pub dst: Ipv6Addr,
    /// ICMPv6 type.
    pub kind: u8,
    /// IPv6 hop limit.
    pub hop_limit: u8,
}

/// Parses an ICMPv6 message and checks its checksum.
pub fn parse_icmp6(frame: &[u8], l2: &L2) -> Result<Icmp6, WireError> {
    let (plen, next) = ipv6_header(frame, l2.l3)?;
    if next != IPPROTO_ICMPV6 {
        return Err(WireError::Unsupported);
    }
    let ip = &frame[l2.l3..l2.l3 + 40];
    let (src, dst) = (v6(&ip[8..24]), v6(&ip[24..40]));
    let at = l2.l3 + 40;
    let icmp = frame.get(at..at + plen).ok_or(WireError::Truncated)?;
    if plen < 8 || checksum_add(pseudo_sum6(&src, &dst, plen, IPPROTO_ICMPV6), icmp) != 0xffff {
        return Err(WireError::Malformed);
    }
    Ok(Icmp6 {
        at,
        len: plen,
        src,
        dst,
        kind: icmp[0],
        hop_limit: ip[7],
    })
}

/// Writes an IPv6 + ICMPv6 frame whose ICMPv6 body (`body`, from the type byte on, checksum
/// zero) is placed after the headers; returns the frame length.
pub fn write_icmp6(
    frame: &mut [u8],
    l2: &L2Out,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    body: &[u8],
) -> Option<usize> {
    let l3 = if l2.vlan.is_some() { 18 } else { 14 };
    let at = l3 + 40;
    let end = at + body.len();
    let out = frame.get_mut(..end)?;
    out[0..6].copy_from_slice(&l2.dst);
    out[6..12].copy_from_slice(&l2.src);
    if let Some(v) = l2.vlan {
        out[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        out[14..16].copy_from_slice(&v.to_be_bytes());
    }
    out[l3 - 2..l3].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    let ip = &mut out[l3..at];
    ip[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
    ip[4..6].copy_from_slice(&(body.len() as u16).to_be_bytes());
    ip[6] = IPPROTO_ICMPV6;
    ip[7] = hop_limit;
    ip[8..24].copy_from_slice(&src.octets());
    ip[24..40].copy_from_slice(&dst.octets());
    out[at..end].copy_from_slice(body);
    out[at + 2..at + 4].copy_from_slice(&[0, 0]);
    let c = !(checksum_add(
        pseudo_sum6(&src, &dst, body.len(), IPPROTO_ICMPV6),
        &out[at..end],
    ) as u16);
    out[at + 2..at + 4].copy_from_slice(&c.to_be_bytes());
    Some(end)
}

/// The solicited-node multicast address of `ip` (RFC 4291 section 2.7.1) and its MAC.
pub fn solicited_node(ip: &Ipv6Addr) -> (Ipv6Addr, [u8; 6]) {
    let o = ip.octets();
    let addr = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    );
    let a = addr.octets();
    (addr, [0x33, 0x33, a[12], a[13], a[14], a[15]])
}

/// The link-layer address option (type 1 source, 2 target) of an NS/NA, if present.
pub fn nd_link_layer_option(icmp: &[u8], wanted: u8) -> Option<[u8; 6]> {
    let mut at = 24;
    while at + 8 <= icmp.len() {
        let (kind, len) = (icmp[at], usize::from(icmp[at + 1]) * 8);
        if len == 0 {
            return None;
        }
        if kind == wanted && len >= 8 {
            return icmp[at + 2..at + 8].try_into().ok();
        }
        at += len;
    }
    None
}

#[cfg(test)]
mod v6_tests {
    use super::*;

    #[test]
    fn emit_and_parse_both_families() {
        let l2 = L2Out {
            src: [2, 0, 0, 0, 0, 1],
            dst: [2, 0, 0, 0, 0, 2],
            vlan: Some(7),
        };
        for (src, dst) in [
            ("198.18.0.1:4000", "198.18.0.9:5000"),
            ("[2001:2::1]:4000", "[2001:2::9]:5000"),
        ] {
            let (src, dst): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
            let mut frame = [0u8; 256];
            frame[100..105].copy_from_slice(b"media");
            let n = emit_udp(&mut frame, 100, 5, &l2, src, dst).unwrap();
            let u = parse_udp(&frame[..n]).unwrap();
            assert_eq!(
                (u.src, u.dst, u.l2.vlan, u.payload_len),
                (src, dst, Some(7), 5)
            );
            assert_eq!(&frame[u.payload..u.payload + 5], b"media");
            assert!(udp_checksum_ok(&frame[..n], &u));
            frame[n - 1] ^= 1;
            assert!(!udp_checksum_ok(&frame[..n], &u));
        }
    }

    /// `checksum_add` against RFC 1071's definition (big-endian 16-bit words, end-around
    /// carry, one at a time) on every length up to 300 and random contents and start sums.
    #[test]
    fn checksum_matches_the_rfc_1071_definition() {
        let reference = |sum: u32, data: &[u8]| -> u32 {
            let mut acc = sum;
            for pair in data.chunks(2) {
                let w = u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
                acc += w;
                acc = (acc & 0xffff) + (acc >> 16);
            }
            while acc > 0xffff {
                acc = (acc & 0xffff) + (acc >> 16);
            }
            acc
        };
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for len in 0..300 {
            for _ in 0..20 {
                let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                let start = (next() % 0x1_0000) as u32;
                // Equal as one's-complement values (0 and 0xffff are both zero).
                let (a, b) = (checksum_add(start, &data), reference(start, &data));
                assert_eq!(a % 0xffff, b % 0xffff, "len {len}");
            }
            assert_eq!(
                checksum_add(0, &vec![0xff; len]) % 0xffff,
                reference(0, &vec![0xff; len]) % 0xffff
            );
        }
    }

    /// A small deterministic pseudo-random sequence (xorshift64) for the property tests.
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// Address pairs of both families, ports and addresses at their extremes.
    const ADDRESS_PAIRS: [(&str, &str); 3] = [
        ("198.18.0.1:4000", "198.18.0.9:5000"),
        ("198.19.255.254:65535", "198.18.0.0:1"),
        ("[2001:2::1]:4000", "[2001:2::ffff:9]:5000"),
    ];

    /// The payload sum recovered from a checksum gives the same frame as summing the payload,
    /// for both families, tagged or not, odd and even lengths, and keeps a corrupted payload
    /// detectably corrupt after the headers are rewritten.
    #[test]
    fn payload_sum_from_checksum_matches_full_sum() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let addrs = ADDRESS_PAIRS;
        for round in 0..600 {
            let (a, b) = addrs[round % 3];
            let (c, d) = addrs[(round / 3) % 3];
            let (src, dst): (SocketAddr, SocketAddr) = (a.parse().unwrap(), b.parse().unwrap());
            let (src2, dst2): (SocketAddr, SocketAddr) = (c.parse().unwrap(), d.parse().unwrap());
            let vlan = (round % 2 == 0).then_some(100);
            let l2 = L2Out {
                src: [2, 0, 0, 0, 0, 1],
                dst: [2, 0, 0, 0, 0, 2],
                vlan,
            };
            let len = (next() % 300) as usize;
            let mut frame = [0u8; 512];
            for byte in &mut frame[100..100 + len] {
                *byte = next() as u8;
            }
            let n = emit_udp(&mut frame, 100, len, &l2, src, dst).unwrap();
            let u = parse_udp(&frame[..n]).unwrap();
            let sum = udp_payload_sum(&frame[..n], &u).unwrap();
            let full = checksum_add(0, &frame[u.payload..u.payload + len]);
            assert_eq!(
                fold(u64::from(sum)) % 0xffff,
                fold(u64::from(full)) % 0xffff
            );
            // Rewrite to the second address pair from the recovered sum; compare to a full emit.
            let out = TxHeader::new(&L2Out { vlan: None, ..l2 }, src2, dst2).unwrap();
            let mut fast = frame;
            let m = out.write(&mut fast, u.payload, len, sum).unwrap();
            let mut slow = frame;
            let m2 = emit_udp(
                &mut slow,
                u.payload,
                len,
                &L2Out { vlan: None, ..l2 },
                src2,
                dst2,
            )
            .unwrap();
            assert_eq!((m, &fast[..m]), (m2, &slow[..m2]), "round {round}");
            let v = parse_udp(&fast[..m]).unwrap();
            assert!(udp_checksum_ok(&fast[..m], &v));
            // A payload bit flipped on the way in is still caught after the rewrite.
            if len > 0 {
                let mut bad = frame;
                bad[u.payload + len / 2] ^= 0x10;
                let sum = udp_payload_sum(&bad[..n], &u).unwrap();
                let m = out.write(&mut bad, u.payload, len, sum).unwrap();
                let v = parse_udp(&bad[..m]).unwrap();
                assert!(!udp_checksum_ok(&bad[..m], &v), "round {round}");
            }
        }
    }

    /// Headers written for checksum offload, completed as a NIC completes them (DPDK's
    /// contract for `RTE_MBUF_F_TX_UDP_CKSUM`: the one's-complement sum from the UDP header on,
    /// over the pseudo-header sum found in the checksum field, complemented, zero sent as all
    /// ones), are byte for byte the frame software checksumming writes; the offload description
    /// names the header lengths.
    #[test]
    fn offloaded_checksum_completes_to_the_software_one() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let addrs = ADDRESS_PAIRS;
        for round in 0..600 {
            let (a, b) = addrs[round % 3];
            let (src, dst): (SocketAddr, SocketAddr) = (a.parse().unwrap(), b.parse().unwrap());
            let vlan = (round % 2 == 0).then_some(100);
            let l2 = L2Out {
                src: [2, 0, 0, 0, 0, 1],
                dst: [2, 0, 0, 0, 0, 2],
                vlan,
            };
            let len = (next() % 300) as usize;
            let mut frame = [0u8; 512];
            for byte in &mut frame[100..100 + len] {
                *byte = next() as u8;
            }
            let header = TxHeader::new(&l2, src, dst).unwrap();
            let mut soft = frame;
            let sum = checksum_add(0, &frame[100..100 + len]);
            let n = header.write(&mut soft, 100, len, sum).unwrap();
            let mut nic = frame;
            let (m, offload) = header.write_for_offload(&mut nic, 100, len).unwrap();
            assert_eq!(m, n);
            let l3 = if vlan.is_some() { 18 } else { 14 };
            let ip_len = if src.is_ipv4() { 20 } else { 40 };
            assert_eq!(
                offload,
                ChecksumOffload {
                    l2_len: l3 as u8,
                    l3_len: ip_len as u8,
                    ipv6: src.is_ipv6()
                }
            );
            let l4 = l3 + ip_len;
            let c = match !(checksum_add(0, &nic[l4..m]) as u16) {
                0 => 0xffff,
                c => c,
            };
            nic[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
            assert_eq!(&nic[..m], &soft[..n], "round {round}");
        }
    }

    /// `peek_udp_dst` (prefetch and software dispatch) names the destination of UDP frames of
    /// either family, tagged or not, and of nothing else.
    #[test]
    fn peek_names_udp_destinations_only() {
        for (src, dst) in [
            ("198.18.0.1:4000", "198.18.0.9:5000"),
            ("[2001:2::1]:4000", "[2001:2::9]:5000"),
        ] {
            let (src, dst): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
            for vlan in [None, Some(7)] {
                let l2 = L2Out {
                    src: [2, 0, 0, 0, 0, 1],
                    dst: [2, 0, 0, 0, 0, 2],
                    vlan,
                };
                let mut frame = [0u8; 256];
                let n = emit_udp(&mut frame, 100, 20, &l2, src, dst).unwrap();
                assert_eq!(peek_udp_dst(&frame[..n]), Some(dst));
                assert_eq!(peek_udp_dst(&frame[..20]), None, "truncated");
                // The same frame as another protocol (ICMP / ICMPv6 in the protocol field).
                let l3 = if vlan.is_some() { 18 } else { 14 };
                if src.is_ipv4() {
                    frame[l3 + 9] = 1;
                } else {
                    frame[l3 + 6] = IPPROTO_ICMPV6;
                }
                assert_eq!(peek_udp_dst(&frame[..n]), None);
            }
        }
        let mut arp = [0u8; 64];
        let arp_frame = Arp {
            op: 1,
            sha: [2, 0, 0, 0, 0, 1],
            spa: "198.18.0.2".parse().unwrap(),
            tha: [0; 6],
            tpa: "198.18.0.1".parse().unwrap(),
        };
        let n = write_arp(&mut arp, [0xff; 6], None, &arp_frame).unwrap();
        assert_eq!(peek_udp_dst(&arp[..n]), None);
    }

    #[test]
    fn solicited_node_address() {
        let (a, mac) = solicited_node(&"2001:2::1:abcd".parse().unwrap());
        assert_eq!(a, "ff02::1:ff01:abcd".parse::<Ipv6Addr>().unwrap());
        assert_eq!(mac, [0x33, 0x33, 0xff, 0x01, 0xab, 0xcd]);
    }
}
