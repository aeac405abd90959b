//! IPv6 headers (RFC 8200) without extension headers: media peers do not send them.

use std::net::Ipv6Addr;

use super::checksum::checksum_add;
use super::WireError;

/// Length of the IPv6 header.
pub const HEADER_LEN: usize = 40;

/// The IPv6 header of a frame without extension headers: (payload length, next header).
pub(crate) fn ipv6_header(frame: &[u8], l3: usize) -> Result<(usize, u8), WireError> {
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

/// The address in the first 16 bytes of `b`.
pub(crate) fn v6(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

/// The sum of the upper-layer pseudo-header (RFC 8200 section 8.1).
pub(crate) fn pseudo_sum6(src: &Ipv6Addr, dst: &Ipv6Addr, len: usize, proto: u8) -> u32 {
    let mut p = [0u8; 40];
    p[0..16].copy_from_slice(&src.octets());
    p[16..32].copy_from_slice(&dst.octets());
    p[32..36].copy_from_slice(&(len as u32).to_be_bytes());
    p[39] = proto;
    checksum_add(0, &p)
}

/// The Ethernet address an IPv6 multicast address maps to: 33:33 and its last four bytes.
//= https://www.rfc-editor.org/rfc/rfc2464#section-7
//# An IPv6 packet with a multicast destination address DST, consisting of the sixteen
//# octets DST[1] through DST[16], is transmitted to the Ethernet multicast address whose
//# first two octets are the value 3333 hexadecimal and whose last four octets are the last
//# four octets of DST.
pub fn multicast_mac(ip: &Ipv6Addr) -> [u8; 6] {
    let a = ip.octets();
    [0x33, 0x33, a[12], a[13], a[14], a[15]]
}

/// The fields of an IPv6 header the relay reads and writes (traffic class and flow label are
/// written zero and not read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// The protocol of the payload.
    pub next_header: u8,
    /// Payload length.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
}

impl Ipv6Repr {
    /// Reads the header at `l3` and checks its version and that the payload is in the frame.
    pub fn parse(frame: &[u8], l3: usize) -> Result<Ipv6Repr, WireError> {
        let (payload_len, next_header) = ipv6_header(frame, l3)?;
        let ip = &frame[l3..l3 + HEADER_LEN];
        Ok(Ipv6Repr {
            src: v6(&ip[8..24]),
            dst: v6(&ip[24..40]),
            next_header,
            payload_len,
            hop_limit: ip[7],
        })
    }

    /// Writes the header at `l3`; returns where the payload starts, or `None` if `frame` is
    /// too short or the payload too long for the length field.
    pub fn emit(&self, frame: &mut [u8], l3: usize) -> Option<usize> {
        let len = u16::try_from(self.payload_len).ok()?;
        let ip = frame.get_mut(l3..l3 + HEADER_LEN)?;
        ip[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
        ip[4..6].copy_from_slice(&len.to_be_bytes());
        ip[6] = self.next_header;
        ip[7] = self.hop_limit;
        ip[8..24].copy_from_slice(&self.src.octets());
        ip[24..40].copy_from_slice(&self.dst.octets());
        Some(l3 + HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks() {
        let repr = Ipv6Repr {
            src: "2001:2::1".parse().unwrap(),
            dst: "ff02::1".parse().unwrap(),
            next_header: 58,
            payload_len: 8,
            hop_limit: 255,
        };
        let mut frame = [0u8; 14 + 48];
        assert_eq!(repr.emit(&mut frame, 14), Some(54));
        assert_eq!(Ipv6Repr::parse(&frame, 14), Ok(repr));
        assert_eq!(Ipv6Repr::parse(&frame[..61], 14), Err(WireError::Truncated));
        frame[14] = 0x40;
        assert_eq!(Ipv6Repr::parse(&frame, 14), Err(WireError::Malformed));
        assert_eq!(multicast_mac(&repr.dst), [0x33, 0x33, 0, 0, 0, 1]);
    }
}
