//! ARP for IPv4 over Ethernet (RFC 826): requests the relay answers and sends, replies it
//! learns from.

use std::net::Ipv4Addr;

use super::ethernet::{L2Out, ETHERTYPE_ARP, L2};
use super::WireError;

/// ARP operation: request.
pub const OP_REQUEST: u16 = 1;
/// ARP operation: reply.
pub const OP_REPLY: u16 = 2;

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
    // Hardware type Ethernet (1), protocol IPv4, address lengths 6 and 4.
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

/// Writes an ARP packet from `arp.sha` to `eth_dst` (with an optional VLAN tag) into `buf`;
/// returns its length: 60 bytes, padded to the Ethernet minimum.
pub fn write_arp(buf: &mut [u8], eth_dst: [u8; 6], vlan: Option<u16>, arp: &Arp) -> Option<usize> {
    let buf = buf.get_mut(..60)?;
    buf.fill(0);
    let l2 = L2Out {
        src: arp.sha,
        dst: eth_dst,
        vlan,
    };
    let at = l2.emit(buf, ETHERTYPE_ARP)?;
    let a = &mut buf[at..at + 28];
    a[0..8].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 0]);
    a[6..8].copy_from_slice(&arp.op.to_be_bytes());
    a[8..14].copy_from_slice(&arp.sha);
    a[14..18].copy_from_slice(&arp.spa.octets());
    a[18..24].copy_from_slice(&arp.tha);
    a[24..28].copy_from_slice(&arp.tpa.octets());
    Some(60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::parse_l2;

    #[test]
    fn request_round_trip_and_refusals() {
        let req = Arp {
            op: OP_REQUEST,
            sha: [2, 0, 0, 0, 0, 0x10],
            spa: "198.18.0.10".parse().unwrap(),
            tha: [0; 6],
            tpa: "198.18.0.1".parse().unwrap(),
        };
        let mut buf = [0u8; 64];
        assert_eq!(write_arp(&mut buf[..59], [0xff; 6], None, &req), None);
        let n = write_arp(&mut buf, [0xff; 6], Some(42), &req).unwrap();
        let l2 = parse_l2(&buf[..n]).unwrap();
        assert_eq!(
            (l2.vlan, l2.ethertype, l2.dst),
            (Some(42), ETHERTYPE_ARP, [0xff; 6])
        );
        assert_eq!(parse_arp(&buf[..n], &l2), Ok(req));
        assert_eq!(
            parse_arp(&buf[..l2.l3 + 27], &l2),
            Err(WireError::Truncated)
        );
        buf[l2.l3 + 4] = 8; // a hardware address length other than Ethernet's
        assert_eq!(parse_arp(&buf[..n], &l2), Err(WireError::Unsupported));
    }
}
