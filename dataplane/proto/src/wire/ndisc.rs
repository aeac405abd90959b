//! Neighbour solicitation and advertisement (RFC 4861 sections 4.3, 4.4 and 7) over Ethernet:
//! how the relay resolves IPv6 next hops and answers for its own addresses.

use std::net::Ipv6Addr;

use super::ethernet::L2Out;
use super::icmp::write_icmp6_with;
use super::ipv6::multicast_mac;
use super::WireError;

/// ICMPv6 type: neighbour solicitation.
pub const NEIGHBOR_SOLICIT: u8 = 135;
/// ICMPv6 type: neighbour advertisement.
pub const NEIGHBOR_ADVERT: u8 = 136;
/// Advertisement flag: the sender is a router.
pub const ADVERT_ROUTER: u8 = 0x80;
/// Advertisement flag: sent in response to a solicitation.
pub const ADVERT_SOLICITED: u8 = 0x40;
/// Advertisement flag: the receiver is to replace a cached link-layer address.
pub const ADVERT_OVERRIDE: u8 = 0x20;
/// The all-nodes multicast address, where an answer to duplicate address detection goes.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// The hop limit neighbour discovery is sent with, and must arrive with.
//= https://www.rfc-editor.org/rfc/rfc4861#section-7.1.1
//# The IP Hop Limit field has a value of 255, i.e., the packet could not possibly have been
//# forwarded by a router.
pub const HOP_LIMIT: u8 = 255;

/// Option type: source link-layer address.
const OPT_SOURCE_LL: u8 = 1;
/// Option type: target link-layer address.
const OPT_TARGET_LL: u8 = 2;
/// Options are looked for in this many bytes of a message at most (the IPv6 minimum MTU),
/// which bounds the work one message can cause.
const SCANNED: usize = 1280;

/// A neighbour solicitation or advertisement, with its link-layer address option if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ndisc {
    /// Who has `target`? (`lladdr`: the sender's MAC, the source link-layer address option.)
    Solicit {
        /// The address asked about.
        target: Ipv6Addr,
        /// The solicitor's MAC.
        lladdr: Option<[u8; 6]>,
    },
    /// `target` is at `lladdr` (the target link-layer address option).
    Advert {
        /// [`ADVERT_ROUTER`], [`ADVERT_SOLICITED`], [`ADVERT_OVERRIDE`].
        flags: u8,
        /// The address advertised.
        target: Ipv6Addr,
        /// Its MAC.
        lladdr: Option<[u8; 6]>,
    },
}

impl Ndisc {
    /// Parses an ICMPv6 message (from its type byte on, checksum already checked, see
    /// [`super::parse_icmp6`]): `Unsupported` if it is neither solicitation nor
    /// advertisement, `Truncated` if shorter than the 24 bytes up to the target address.
    pub fn parse(message: &[u8]) -> Result<Ndisc, WireError> {
        let kind = *message.first().ok_or(WireError::Truncated)?;
        if kind != NEIGHBOR_SOLICIT && kind != NEIGHBOR_ADVERT {
            return Err(WireError::Unsupported);
        }
        let m = message.get(..message.len().min(SCANNED)).expect("in range");
        let fixed = m.get(..24).ok_or(WireError::Truncated)?;
        let target = Ipv6Addr::from(<[u8; 16]>::try_from(&fixed[8..24]).expect("16 bytes"));
        Ok(if kind == NEIGHBOR_SOLICIT {
            Ndisc::Solicit {
                target,
                lladdr: nd_link_layer_option(m, OPT_SOURCE_LL),
            }
        } else {
            Ndisc::Advert {
                flags: fixed[4] & (ADVERT_ROUTER | ADVERT_SOLICITED | ADVERT_OVERRIDE),
                target,
                lladdr: nd_link_layer_option(m, OPT_TARGET_LL),
            }
        })
    }

    /// The ICMPv6 message's length: 24 bytes, 32 with the link-layer address option.
    pub fn message_len(&self) -> usize {
        let (Ndisc::Solicit { lladdr, .. } | Ndisc::Advert { lladdr, .. }) = self;
        if lladdr.is_some() {
            32
        } else {
            24
        }
    }

    /// Writes the message as a complete Ethernet/IPv6/ICMPv6 frame from `src` to `dst`, with
    /// hop limit 255; returns its length, or `None` if `frame` is too short.
    pub fn emit(
        &self,
        frame: &mut [u8],
        l2: &L2Out,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) -> Option<usize> {
        let (kind, flags, target, lladdr, option) = match *self {
            Ndisc::Solicit { target, lladdr } => {
                (NEIGHBOR_SOLICIT, 0, target, lladdr, OPT_SOURCE_LL)
            }
            Ndisc::Advert {
                flags,
                target,
                lladdr,
            } => (NEIGHBOR_ADVERT, flags, target, lladdr, OPT_TARGET_LL),
        };
        write_icmp6_with(frame, l2, src, dst, HOP_LIMIT, self.message_len(), |m| {
            m[..8].copy_from_slice(&[kind, 0, 0, 0, flags, 0, 0, 0]);
            m[8..24].copy_from_slice(&target.octets());
            if let Some(mac) = lladdr {
                // One option of one 8-byte unit.
                m[24] = option;
                m[25] = 1;
                m[26..32].copy_from_slice(&mac);
            }
        })
    }
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
    (addr, multicast_mac(&addr))
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
mod tests {
    use super::*;
    use crate::wire::ethernet::parse_l2;
    use crate::wire::icmp::parse_icmp6;

    #[test]
    fn solicited_node_address() {
        let (a, mac) = solicited_node(&"2001:2::1:abcd".parse().unwrap());
        assert_eq!(a, "ff02::1:ff01:abcd".parse::<Ipv6Addr>().unwrap());
        assert_eq!(mac, [0x33, 0x33, 0xff, 0x01, 0xab, 0xcd]);
    }

    #[test]
    fn advertisement_bytes_and_round_trip() {
        let na = Ndisc::Advert {
            flags: ADVERT_SOLICITED | ADVERT_OVERRIDE,
            target: "2001:2::1".parse().unwrap(),
            lladdr: Some([2, 0, 0, 0, 0, 1]),
        };
        let l2 = L2Out {
            src: [2, 0, 0, 0, 0, 1],
            dst: [2, 0, 0, 0, 0, 0x10],
            vlan: None,
        };
        let mut f = [0u8; 128];
        let (src, dst) = ("2001:2::1".parse().unwrap(), "2001:2::77".parse().unwrap());
        let n = na.emit(&mut f, &l2, src, dst).unwrap();
        assert_eq!(n, 14 + 40 + 32);
        let icmp = parse_icmp6(&f[..n], &parse_l2(&f[..n]).unwrap()).unwrap();
        assert_eq!((icmp.kind, icmp.hop_limit), (NEIGHBOR_ADVERT, 255));
        let m = &f[icmp.at..icmp.at + icmp.len];
        assert_eq!(m[4], 0x60);
        assert_eq!(&m[24..32], &[2, 1, 2, 0, 0, 0, 0, 1]);
        assert_eq!(Ndisc::parse(m), Ok(na));
        assert_eq!(Ndisc::parse(&m[..23]), Err(WireError::Truncated));
        assert_eq!(Ndisc::parse(&[128, 0, 0, 0]), Err(WireError::Unsupported));
        // A zero-length option ends the search.
        let mut zero = m.to_vec();
        zero[25] = 0;
        assert_eq!(nd_link_layer_option(&zero, 2), None);
    }
}
