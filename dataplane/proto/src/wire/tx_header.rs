//! The headers of one outgoing leg, built once and stamped onto every packet sent to it.

use std::net::{IpAddr, SocketAddr};

use super::checksum::{checksum_add, fold};
use super::ethernet::{L2Out, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use super::ipv4::write_fixed;
use super::ipv6::Ipv6Repr;
use super::udp::udp_address_sum;
use super::IPPROTO_UDP;

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
        let ethertype = if src.is_ipv4() {
            ETHERTYPE_IPV4
        } else {
            ETHERTYPE_IPV6
        };
        let l3 = l2.emit(&mut b, ethertype)?;
        let ip_len = if src.is_ipv4() { 20 } else { 40 };
        let l4 = l3 + ip_len;
        let mut ip_sum = 0;
        match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                // DF set (RFC 6864: atomic datagram, ID 0); TTL 64; lengths and checksum
                // written per packet.
                let ip = &mut b[l3..l3 + 20];
                write_fixed(ip, s, d, IPPROTO_UDP, 64);
                ip_sum = checksum_add(0, ip);
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let ip = Ipv6Repr {
                    src: s,
                    dst: d,
                    next_header: IPPROTO_UDP,
                    payload_len: 0,
                    hop_limit: 64,
                };
                ip.emit(&mut b, l3)?;
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
    /// [`checksum_add`], [`super::udp_payload_sum`]): moves the payload where these headers
    /// end if needed (IPv4 and IPv6, tagged and untagged headers differ in length), writes the
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::udp::{emit_udp, parse_udp, udp_checksum_ok, udp_payload_sum};

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
}
