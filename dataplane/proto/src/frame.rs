//! Building and checking Ethernet/IPv4/UDP frames over byte slices.
//!
//! Just what the port loop and the I/O tests need; the full zero-copy header views
//! (VLAN, IPv6, RTP/RTCP) belong to the relay's parser.

use std::net::{Ipv4Addr, SocketAddrV4};

/// Ethernet (14) + IPv4 without options (20) + UDP (8).
pub const UDP_IPV4_HEADERS: usize = 14 + 20 + 8;

const ETHERTYPE_IPV4: u16 = 0x0800;
const IPPROTO_UDP: u8 = 17;

/// The addresses of a UDP/IPv4 frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpEndpoints {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
}

/// The one's-complement sum of `data` as big-endian 16-bit words, folded (RFC 1071).
fn ones_complement_sum(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

/// Writes an Ethernet/IPv4/UDP frame carrying `payload` into `buf` and returns its length,
/// or `None` if `buf` is too small or the payload too large for one IPv4 datagram.
/// The IPv4 header checksum and the UDP checksum (RFC 768, over the pseudo-header) are set.
pub fn write_udp_ipv4(buf: &mut [u8], ends: &UdpEndpoints, payload: &[u8]) -> Option<usize> {
    write_udp_ipv4_with(buf, ends, payload.len(), |p| p.copy_from_slice(payload))
}

/// Like [`write_udp_ipv4`], but `fill` writes the `payload_len` payload bytes in place (no
/// intermediate buffer); the checksums are computed after it.
pub fn write_udp_ipv4_with(
    buf: &mut [u8],
    ends: &UdpEndpoints,
    payload_len: usize,
    fill: impl FnOnce(&mut [u8]),
) -> Option<usize> {
    let total = UDP_IPV4_HEADERS.checked_add(payload_len)?;
    let ip_len = u16::try_from(total - 14).ok()?;
    let udp_len = ip_len - 20;
    let frame = buf.get_mut(..total)?;

    frame[0..6].copy_from_slice(&ends.dst_mac);
    frame[6..12].copy_from_slice(&ends.src_mac);
    frame[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());

    let ip = &mut frame[14..34];
    ip[0] = 0x45; // version 4, IHL 5
    ip[1] = 0; // DSCP/ECN; media marking is the relay's business, not the generator's
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[4..6].copy_from_slice(&[0, 0]); // identification
    ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // don't fragment
    ip[8] = 64; // TTL
    ip[9] = IPPROTO_UDP;
    ip[10..12].copy_from_slice(&[0, 0]);
    ip[12..16].copy_from_slice(&ends.src.ip().octets());
    ip[16..20].copy_from_slice(&ends.dst.ip().octets());
    let ip_csum = !(ones_complement_sum(0, ip) as u16);
    ip[10..12].copy_from_slice(&ip_csum.to_be_bytes());

    let udp = &mut frame[34..];
    udp[0..2].copy_from_slice(&ends.src.port().to_be_bytes());
    udp[2..4].copy_from_slice(&ends.dst.port().to_be_bytes());
    udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
    udp[6..8].copy_from_slice(&[0, 0]);
    fill(&mut udp[8..]);
    let csum = udp_checksum(*ends.src.ip(), *ends.dst.ip(), udp);
    udp[6..8].copy_from_slice(&csum.to_be_bytes());
    Some(total)
}

/// The UDP checksum of `udp` (header with a zero checksum field, and payload).
/// A computed zero is sent as 0xffff (RFC 768).
fn udp_checksum(src: Ipv4Addr, dst: Ipv4Addr, udp: &[u8]) -> u16 {
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src.octets());
    pseudo[4..8].copy_from_slice(&dst.octets());
    pseudo[9] = IPPROTO_UDP;
    pseudo[10..12].copy_from_slice(&(udp.len() as u16).to_be_bytes());
    let sum = ones_complement_sum(ones_complement_sum(0, &pseudo), udp);
    match !(sum as u16) {
        0 => 0xffff,
        c => c,
    }
}

/// Why a frame is not a well-formed UDP/IPv4 frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than the headers it announces.
    Truncated,
    /// Not IPv4, or not UDP, or IPv4 options present.
    NotUdpIpv4,
    /// IPv4 header checksum wrong.
    BadIpChecksum,
    /// UDP checksum wrong.
    BadUdpChecksum,
}

/// Checks a UDP/IPv4 frame (lengths and both checksums) and returns its endpoints and payload.
pub fn parse_udp_ipv4(frame: &[u8]) -> Result<(UdpEndpoints, &[u8]), FrameError> {
    if frame.len() < UDP_IPV4_HEADERS {
        return Err(FrameError::Truncated);
    }
    if u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_IPV4
        || frame[14] != 0x45
        || frame[23] != IPPROTO_UDP
    {
        return Err(FrameError::NotUdpIpv4);
    }
    let ip = &frame[14..34];
    if ones_complement_sum(0, ip) != 0xffff {
        return Err(FrameError::BadIpChecksum);
    }
    let ip_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let udp_len = usize::from(u16::from_be_bytes([frame[38], frame[39]]));
    if ip_len < 28 || frame.len() < 14 + ip_len || udp_len != ip_len - 20 {
        return Err(FrameError::Truncated);
    }
    let src_ip = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst_ip = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let udp = &frame[34..34 + udp_len];
    let sent = u16::from_be_bytes([udp[6], udp[7]]);
    if sent != 0 {
        let mut pseudo = [0u8; 12];
        pseudo[0..4].copy_from_slice(&src_ip.octets());
        pseudo[4..8].copy_from_slice(&dst_ip.octets());
        pseudo[9] = IPPROTO_UDP;
        pseudo[10..12].copy_from_slice(&(udp_len as u16).to_be_bytes());
        if ones_complement_sum(ones_complement_sum(0, &pseudo), udp) != 0xffff {
            return Err(FrameError::BadUdpChecksum);
        }
    }
    let mut src_mac = [0; 6];
    let mut dst_mac = [0; 6];
    dst_mac.copy_from_slice(&frame[0..6]);
    src_mac.copy_from_slice(&frame[6..12]);
    let ends = UdpEndpoints {
        src_mac,
        dst_mac,
        src: SocketAddrV4::new(src_ip, u16::from_be_bytes([udp[0], udp[1]])),
        dst: SocketAddrV4::new(dst_ip, u16::from_be_bytes([udp[2], udp[3]])),
    };
    Ok((ends, &udp[8..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends() -> UdpEndpoints {
        UdpEndpoints {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src: "198.18.0.1:40000".parse().unwrap(),
            dst: "198.19.0.1:50000".parse().unwrap(),
        }
    }

    #[test]
    fn round_trip() {
        let mut buf = [0u8; 256];
        let n = write_udp_ipv4(&mut buf, &ends(), b"hello media").unwrap();
        assert_eq!(n, UDP_IPV4_HEADERS + 11);
        let (e, payload) = parse_udp_ipv4(&buf[..n]).unwrap();
        assert_eq!(e, ends());
        assert_eq!(payload, b"hello media");
    }

    #[test]
    fn known_ipv4_checksum() {
        // RFC 1071 style check against a header computed by hand (Wikipedia's example).
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(!(ones_complement_sum(0, &hdr) as u16), 0xb861);
    }

    #[test]
    fn corruption_is_detected() {
        let mut buf = [0u8; 256];
        let n = write_udp_ipv4(&mut buf, &ends(), b"payload").unwrap();
        let mut bad = buf;
        bad[n - 1] ^= 1;
        assert_eq!(parse_udp_ipv4(&bad[..n]), Err(FrameError::BadUdpChecksum));
        let mut bad = buf;
        bad[22] ^= 1; // TTL
        assert_eq!(parse_udp_ipv4(&bad[..n]), Err(FrameError::BadIpChecksum));
        assert_eq!(parse_udp_ipv4(&buf[..n - 1]), Err(FrameError::Truncated));
        assert_eq!(parse_udp_ipv4(&buf[..10]), Err(FrameError::Truncated));
    }

    #[test]
    fn too_small_buffer() {
        let mut buf = [0u8; 40];
        assert_eq!(write_udp_ipv4(&mut buf, &ends(), b""), None);
    }
}
