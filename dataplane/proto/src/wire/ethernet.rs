//! Ethernet II frames with at most one IEEE 802.1Q tag: the header the relay reads ([`L2`])
//! and the one it writes ([`L2Out`]).

use super::WireError;

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of an 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

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

impl L2 {
    /// The header of an answer sent from `mac` back to this frame's sender, on its VLAN.
    pub fn answer_from(&self, mac: [u8; 6]) -> L2Out {
        L2Out {
            src: mac,
            dst: self.src,
            vlan: self.vlan,
        }
    }
}

/// The layer-2 header to emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L2Out {
    /// Source MAC.
    pub src: [u8; 6],
    /// Destination MAC.
    pub dst: [u8; 6],
    /// 802.1Q tag (the 12-bit VLAN id; priority 0), if the port uses one.
    pub vlan: Option<u16>,
}

impl L2Out {
    /// The header's length, where layer 3 starts: 14 bytes, 18 with a tag.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            18
        } else {
            14
        }
    }

    /// Writes the header (and tag) announcing `ethertype` at the start of `frame`; returns
    /// where layer 3 starts, or `None` if `frame` is too short.
    pub fn emit(&self, frame: &mut [u8], ethertype: u16) -> Option<usize> {
        let l3 = self.header_len();
        let b = frame.get_mut(..l3)?;
        b[0..6].copy_from_slice(&self.dst);
        b[6..12].copy_from_slice(&self.src);
        if let Some(v) = self.vlan {
            b[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            b[14..16].copy_from_slice(&v.to_be_bytes());
        }
        b[l3 - 2..l3].copy_from_slice(&ethertype.to_be_bytes());
        Some(l3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_and_untagged_headers() {
        let frame = [
            2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0xe0, 0x2a, 0x86, 0xdd,
        ];
        let l2 = parse_l2(&frame).unwrap();
        assert_eq!(
            l2,
            L2 {
                dst: [2, 0, 0, 0, 0, 2],
                src: [2, 0, 0, 0, 0, 1],
                vlan: Some(42),
                ethertype: ETHERTYPE_IPV6,
                l3: 18
            },
            "priority bits are not part of the VLAN id"
        );
        assert_eq!(parse_l2(&frame[..17]), Err(WireError::Truncated));
        assert_eq!(parse_l2(&frame[..13]), Err(WireError::Truncated));
        let mut out = [0u8; 18];
        let l3 = l2
            .answer_from([2, 0, 0, 0, 0, 9])
            .emit(&mut out, ETHERTYPE_ARP);
        assert_eq!(l3, Some(18));
        assert_eq!(&out[..6], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(&out[12..18], &[0x81, 0x00, 0x00, 0x2a, 0x08, 0x06]);
        let untagged = L2Out {
            vlan: None,
            ..l2.answer_from([2; 6])
        };
        assert_eq!(untagged.emit(&mut out[..13], ETHERTYPE_IPV4), None);
        assert_eq!(untagged.emit(&mut out, ETHERTYPE_IPV4), Some(14));
    }
}
