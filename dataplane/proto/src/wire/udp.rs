//! UDP (RFC 768) over IPv4 or IPv6: the relay's parse and checksum check, the payload sum
//! recovered from a received checksum, the destination peeked for prefetch and dispatch, and
//! the frame builder that generators and tests use.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::checksum::{self, checksum_add, fold};
use super::ethernet::{parse_l2, L2Out, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN, L2};
use super::ipv4::{ipv4_header, pseudo_sum};
use super::ipv6::{ipv6_header, pseudo_sum6, v6};
use super::tx_header::TxHeader;
use super::{WireError, IPPROTO_UDP};

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

/// A UDP datagram over IPv4 or IPv6 inside a frame: offsets and addresses. (The frame's
/// layer-2 header is [`parse_l2`]'s: the relay's path reads it once and needs none of it
/// afterwards, so it is not carried here.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Udp {
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

/// Parses an Ethernet/IPv4/UDP or Ethernet/IPv6/UDP frame and checks the IPv4 header checksum
/// and the lengths (the UDP checksum is checked by [`udp_checksum_ok`] where it matters; IPv6
/// extension headers are not carried: media peers do not use them).
pub fn parse_udp(frame: &[u8]) -> Result<Udp, WireError> {
    parse_udp_after(frame, &parse_l2(frame)?)
}

/// [`parse_udp`] for a frame whose layer-2 header is already parsed (the relay's path: the
/// Ethernet header is read once per frame).
#[inline(always)]
pub fn parse_udp_after(frame: &[u8], l2: &L2) -> Result<Udp, WireError> {
    let l2 = *l2;
    match l2.ethertype {
        ETHERTYPE_IPV4 => {
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
            Ok(Udp {
                l4,
                payload: l4 + 8,
                payload_len: udp_len - 8,
                src: SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])),
                    u16::from_be_bytes([udp[0], udp[1]]),
                ),
                dst: SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])),
                    u16::from_be_bytes([udp[2], udp[3]]),
                ),
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

/// The part of a UDP checksum that does not depend on lengths or payload: the pseudo-header's
/// addresses and protocol, and the two ports (RFC 768; RFC 8200 section 8.1 for IPv6).
pub(crate) fn udp_address_sum(src: SocketAddr, dst: SocketAddr) -> u64 {
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
    Some(u32::from(checksum::subtract(!c, headers)))
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

/// The addresses of a UDP frame: what traffic generators and tests build frames from, and
/// what [`parse_udp_checked`] gives back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpEndpoints {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// 802.1Q VLAN id (12 bits), if tagged.
    pub vlan: Option<u16>,
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port (same family as `src`).
    pub dst: SocketAddr,
}

impl UdpEndpoints {
    /// The layer-2 header.
    pub fn l2(&self) -> L2Out {
        L2Out {
            src: self.src_mac,
            dst: self.dst_mac,
            vlan: self.vlan,
        }
    }

    /// Length of the Ethernet, IP and UDP headers: where the payload starts (42 bytes for
    /// untagged IPv4, 62 for untagged IPv6, 4 more with a tag).
    pub fn header_len(&self) -> usize {
        let ip = if self.src.is_ipv4() {
            super::ipv4::HEADER_LEN
        } else {
            super::ipv6::HEADER_LEN
        };
        self.l2().header_len() + ip + HEADER_LEN
    }
}

/// Writes a UDP frame carrying `payload` into `buf` and returns its length, or `None` if
/// `buf` is too small, the families differ, or the payload is too large for one datagram.
/// The IPv4 header checksum and the UDP checksum (RFC 768, over the pseudo-header) are set.
pub fn write_udp(buf: &mut [u8], ends: &UdpEndpoints, payload: &[u8]) -> Option<usize> {
    write_udp_with(buf, ends, payload.len(), |p| p.copy_from_slice(payload))
}

/// Like [`write_udp`], but `fill` writes the `payload_len` payload bytes in place (no
/// intermediate buffer); the checksums are computed after it.
pub fn write_udp_with(
    buf: &mut [u8],
    ends: &UdpEndpoints,
    payload_len: usize,
    fill: impl FnOnce(&mut [u8]),
) -> Option<usize> {
    let at = ends.header_len();
    // The UDP length, and over IPv4 the total length, fit their 16-bit fields.
    let ip_header = if ends.src.is_ipv4() {
        super::ipv4::HEADER_LEN
    } else {
        0
    };
    if ip_header + HEADER_LEN + payload_len > usize::from(u16::MAX) {
        return None;
    }
    let header = TxHeader::new(&ends.l2(), ends.src, ends.dst)?;
    let payload = buf.get_mut(at..at.checked_add(payload_len)?)?;
    fill(payload);
    let sum = checksum_add(0, payload);
    header.write(buf, at, payload_len, sum)
}

/// Checks a UDP frame of either family (lengths, the IPv4 header checksum and the UDP
/// checksum, which only IPv4 may leave out) and returns its addresses and payload.
pub fn parse_udp_checked(frame: &[u8]) -> Result<(UdpEndpoints, &[u8]), WireError> {
    let l2 = parse_l2(frame)?;
    let u = parse_udp_after(frame, &l2)?;
    if !udp_checksum_ok(frame, &u) {
        return Err(WireError::Malformed);
    }
    let ends = UdpEndpoints {
        src_mac: l2.src,
        dst_mac: l2.dst,
        vlan: l2.vlan,
        src: u.src,
        dst: u.dst,
    };
    Ok((ends, &frame[u.payload..u.payload + u.payload_len]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::arp::{write_arp, Arp};
    use crate::wire::IPPROTO_ICMPV6;

    fn ends() -> UdpEndpoints {
        UdpEndpoints {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            vlan: None,
            src: "198.18.0.1:40000".parse().unwrap(),
            dst: "198.19.0.1:50000".parse().unwrap(),
        }
    }

    #[test]
    fn round_trip() {
        let mut buf = [0u8; 256];
        let n = write_udp(&mut buf, &ends(), b"hello media").unwrap();
        assert_eq!(n, 42 + 11);
        let (e, payload) = parse_udp_checked(&buf[..n]).unwrap();
        assert_eq!(e, ends());
        assert_eq!(payload, b"hello media");
    }

    /// A corrupted payload or header is refused by the checked parse; which check failed
    /// shows in whether the unchecked parse still accepts the frame.
    #[test]
    fn corruption_is_detected() {
        let mut buf = [0u8; 256];
        let n = write_udp(&mut buf, &ends(), b"payload").unwrap();
        let mut bad = buf;
        bad[n - 1] ^= 1;
        assert_eq!(parse_udp_checked(&bad[..n]), Err(WireError::Malformed));
        assert!(
            parse_udp(&bad[..n]).is_ok(),
            "only the UDP checksum is wrong"
        );
        let mut bad = buf;
        bad[22] ^= 1; // TTL
        assert_eq!(parse_udp_checked(&bad[..n]), Err(WireError::Malformed));
        assert_eq!(
            parse_udp(&bad[..n]),
            Err(WireError::Malformed),
            "IP checksum"
        );
        assert_eq!(parse_udp_checked(&buf[..n - 1]), Err(WireError::Truncated));
        assert_eq!(parse_udp_checked(&buf[..10]), Err(WireError::Truncated));
    }

    #[test]
    fn too_small_buffer() {
        let mut buf = [0u8; 40];
        assert_eq!(write_udp(&mut buf, &ends(), b""), None);
        let mut big = vec![0u8; 70_000];
        assert_eq!(write_udp_with(&mut big, &ends(), 65_508, |_| ()), None);
        assert!(write_udp_with(&mut big, &ends(), 65_507, |_| ()).is_some());
    }

    /// The old IPv4-only round trip and rewrite: a frame built, parsed and checked, then given
    /// a new payload and new headers by a [`TxHeader`], and parsed and checked again.
    #[test]
    fn udp_round_trip_and_rewrite() {
        let ends = UdpEndpoints {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            vlan: None,
            src: "198.18.0.10:5004".parse().unwrap(),
            dst: "198.18.0.1:40000".parse().unwrap(),
        };
        let mut buf = [0u8; 256];
        let n = write_udp(&mut buf, &ends, b"hello").unwrap();
        let u = parse_udp(&buf[..n]).unwrap();
        assert_eq!((u.src, u.dst, u.payload_len), (ends.src, ends.dst, 5));
        assert!(udp_checksum_ok(&buf[..n], &u));
        buf[u.payload..u.payload + 7].copy_from_slice(b"goodbye");
        let out = TxHeader::new(
            &L2Out {
                src: [2, 0, 0, 0, 0, 3],
                dst: [2, 0, 0, 0, 0, 4],
                vlan: None,
            },
            "198.19.0.1:41000".parse().unwrap(),
            "198.19.0.20:6000".parse().unwrap(),
        )
        .unwrap();
        let sum = checksum_add(0, &buf[u.payload..u.payload + 7]);
        let m = out.write(&mut buf, u.payload, 7, sum).unwrap();
        let v = parse_udp(&buf[..m]).unwrap();
        assert_eq!(v.src, "198.19.0.1:41000".parse().unwrap());
        assert_eq!(v.dst, "198.19.0.20:6000".parse().unwrap());
        assert_eq!(&buf[v.payload..v.payload + v.payload_len], b"goodbye");
        assert!(udp_checksum_ok(&buf[..m], &v));
        assert_eq!(parse_l2(&buf[..m]).unwrap().dst, [2, 0, 0, 0, 0, 4]);
    }

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
                (
                    u.src,
                    u.dst,
                    parse_l2(&frame[..n]).unwrap().vlan,
                    u.payload_len
                ),
                (src, dst, Some(7), 5)
            );
            assert_eq!(&frame[u.payload..u.payload + 5], b"media");
            assert!(udp_checksum_ok(&frame[..n], &u));
            frame[n - 1] ^= 1;
            assert!(!udp_checksum_ok(&frame[..n], &u));
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
}
