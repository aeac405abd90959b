//! IPv4 headers (RFC 791) without options: media peers never send options, and refusing
//! them keeps every header 20 bytes long.

use std::net::Ipv4Addr;

use super::checksum::{checksum_add, finish};
use super::{WireError, IPPROTO_UDP};

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;

/// The IPv4 header of a frame: (header offset, header length, total length, protocol).
pub(crate) fn ipv4_header(frame: &[u8], l3: usize) -> Result<(usize, usize, u8), WireError> {
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

/// The sum of the UDP pseudo-header over IPv4 (RFC 768).
pub(crate) fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, udp_len: usize) -> u32 {
    let mut p = [0u8; 12];
    p[0..4].copy_from_slice(&src.octets());
    p[4..8].copy_from_slice(&dst.octets());
    p[9] = IPPROTO_UDP;
    p[10..12].copy_from_slice(&(udp_len as u16).to_be_bytes());
    checksum_add(0, &p)
}

/// The destination address of an IPv4 header at `l3`, read without any check (`None` if the
/// frame is too short): to tell whether a packet is for us before validating it.
pub fn peek_ipv4_dst(frame: &[u8], l3: usize) -> Option<Ipv4Addr> {
    let d = frame.get(l3 + 16..l3 + 20)?;
    Some(Ipv4Addr::new(d[0], d[1], d[2], d[3]))
}

/// Writes the fields of a 20-byte header that do not change per packet: version and length,
/// DF with identification 0 (RFC 6864: an atomic datagram), TTL, protocol and addresses; the
/// total length and the checksum are left zero.
pub(crate) fn write_fixed(ip: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, ttl: u8) {
    // Version 4, IHL 5; DSCP/ECN 0 (marking is the network's business, not ours).
    ip[0..12].copy_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, ttl, protocol, 0, 0]);
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
}

/// The fields of an IPv4 header the relay reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// The protocol of the payload.
    pub protocol: u8,
    /// Payload length (total length less the header).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
}

impl Ipv4Repr {
    /// Reads and checks the header at `l3`: version, no options, lengths within the frame,
    /// header checksum, not a fragment.
    pub fn parse(frame: &[u8], l3: usize) -> Result<Ipv4Repr, WireError> {
        let (ihl, total, protocol) = ipv4_header(frame, l3)?;
        let ip = &frame[l3..l3 + ihl];
        Ok(Ipv4Repr {
            src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
            dst: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
            protocol,
            payload_len: total - ihl,
            ttl: ip[8],
        })
    }

    /// Writes the header at `l3` with its checksum; returns where the payload starts, or
    /// `None` if `frame` is too short or the payload too long for one datagram.
    pub fn emit(&self, frame: &mut [u8], l3: usize) -> Option<usize> {
        let total = u16::try_from(HEADER_LEN.checked_add(self.payload_len)?).ok()?;
        let ip = frame.get_mut(l3..l3 + HEADER_LEN)?;
        write_fixed(ip, self.src, self.dst, self.protocol, self.ttl);
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        let c = finish(checksum_add(0, ip));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        Some(l3 + HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks() {
        let repr = Ipv4Repr {
            src: Ipv4Addr::new(192, 168, 0, 1),
            dst: Ipv4Addr::new(192, 168, 0, 199),
            protocol: IPPROTO_UDP,
            payload_len: 95,
            ttl: 64,
        };
        let mut frame = [0u8; 14 + 115];
        assert_eq!(repr.emit(&mut frame, 14), Some(34));
        // The header RFC 1071 examples use (total length 0x73, checksum 0xb861).
        assert_eq!(&frame[14..18], &[0x45, 0, 0, 0x73]);
        assert_eq!(&frame[24..26], &[0xb8, 0x61]);
        assert_eq!(Ipv4Repr::parse(&frame, 14), Ok(repr));
        assert_eq!(
            Ipv4Repr::parse(&frame[..frame.len() - 1], 14),
            Err(WireError::Truncated)
        );
        let mut bad = frame;
        bad[22] ^= 1;
        assert_eq!(Ipv4Repr::parse(&bad, 14), Err(WireError::Malformed));
        let mut fragment = frame;
        fragment[20] |= 0x20; // more fragments
        assert!(Ipv4Repr::parse(&fragment, 14).is_err());
        assert_eq!(peek_ipv4_dst(&frame, 14), Some(repr.dst));
        assert_eq!(peek_ipv4_dst(&frame[..33], 14), None);
        let too_long = Ipv4Repr {
            payload_len: 65_516,
            ..repr
        };
        assert_eq!(too_long.emit(&mut frame, 14), None);
    }
}
