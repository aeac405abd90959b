//! Verifies captured media with libsrtp2, the reference implementation, using the keys the
//! endpoints themselves advertised in their SDP.
//!
//! A flow is every UDP datagram from one IPv4 address to another. Its RTP/RTCP packets
//! (version 2; RTCP by payload type 64-95, as RFC 5761 demultiplexes) are run through one
//! libsrtp inbound session for the sender's key (`relay_bench::libsrtp`, so libsrtp's own
//! replay window and rollover-counter estimation apply). [`check_call`] does that for both
//! directions of a call, and again with the *other* side's key, which must fail: that proves
//! the packets are encrypted with the sender's key and not merely well-formed.
//!
//! RTCP that does not authenticate but is a well-formed plain compound packet is counted as
//! plain, by type. baresip 1.0.0 (libre) sends two such packets per stream, neither with
//! media nor reports: an APP packet ("PING"/"PONG") to open NAT pinholes before SRTP is
//! keyed, and a BYE when the call ends, after its SRTP layer is gone. [`CallCheck::verdict`]
//! allows plain RTCP of those two types ([`PLAIN_RTCP_ALLOWED`]) and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use relay_bench::libsrtp::{self, Op};
use relay_srtp::SdesKey;

use crate::capture::{between, UdpDatagram};
use crate::error::{Error, Result};

/// libsrtp's `srtp_err_status_ok`.
pub const STATUS_OK: i32 = 0;
/// libsrtp's `srtp_err_status_auth_fail` (`srtp2/srtp.h`; 9 and 10 are replay failures).
pub const STATUS_AUTH_FAIL: i32 = 7;

/// Plain RTCP packet types [`CallCheck::verdict`] lets pass: BYE (203) and APP (204).
pub const PLAIN_RTCP_ALLOWED: [u8; 2] = [203, 204];

/// How the packets of one kind (RTP or RTCP) of one flow fared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Packets of this kind in the flow.
    pub packets: usize,
    /// Packets libsrtp authenticated (and decrypted).
    pub authenticated: usize,
    /// Packets that did not authenticate, by libsrtp status ([`STATUS_AUTH_FAIL`]: 7; 9 and
    /// 10: replay; 2: too short to be SRTCP).
    pub failed: BTreeMap<i32, usize>,
}

/// What libsrtp made of one flow with one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowCheck {
    /// SRTP.
    pub rtp: Counts,
    /// SRTCP (including the plain RTCP counted below, which also failed).
    pub rtcp: Counts,
    /// RTCP packets that did not authenticate but are plain compound RTCP, by the first
    /// packet's type (204: APP).
    pub rtcp_plain: BTreeMap<u8, usize>,
    /// Datagrams that are not RTP or RTCP (STUN, anything else).
    pub other: usize,
    /// The SSRCs of the RTP packets.
    pub ssrcs: BTreeSet<u32>,
    /// Sizes of the authenticated RTP packets after decryption (header + payload).
    pub rtp_plain_sizes: BTreeSet<usize>,
}

impl FlowCheck {
    /// Plain RTCP packets of the types in [`PLAIN_RTCP_ALLOWED`] (BYE, APP).
    pub fn rtcp_plain_allowed(&self) -> usize {
        self.rtcp_plain
            .iter()
            .filter(|(pt, _)| PLAIN_RTCP_ALLOWED.contains(pt))
            .map(|(_, n)| n)
            .sum()
    }
}

/// Whether `payload` looks like RTP or RTCP (version 2) and, if so, whether it is RTCP.
fn classify(payload: &[u8]) -> Option<bool> {
    if payload.len() < 8 || payload[0] >> 6 != 2 {
        return None;
    }
    let rtcp = (64..=95).contains(&(payload[1] & 0x7f));
    // An RTP header is at least 12 bytes (up to the SSRC).
    (rtcp || payload.len() >= 12).then_some(rtcp)
}

/// If `packet` is a plain compound RTCP packet (every header version 2, lengths adding up to
/// exactly the datagram), the type of its first packet.
pub fn plain_rtcp_type(packet: &[u8]) -> Option<u8> {
    let mut offset = 0;
    while offset < packet.len() {
        let header = packet.get(offset..offset + 4)?;
        if header[0] >> 6 != 2 || !(192..=223).contains(&header[1]) {
            return None;
        }
        offset += (usize::from(u16::from_be_bytes([header[2], header[3]])) + 1) * 4;
    }
    (offset == packet.len()).then(|| packet[1])
}

/// Runs every RTP and RTCP datagram from `from` to `to` in `datagrams` through libsrtp with
/// `key` (one inbound session each for RTP and RTCP).
pub fn check_flow(
    datagrams: &[UdpDatagram],
    from: Ipv4Addr,
    to: Ipv4Addr,
    key: &SdesKey,
) -> Result<FlowCheck> {
    let mut check = FlowCheck::default();
    let mut rtp = Vec::new();
    let mut rtcp = Vec::new();
    for d in between(datagrams, from, to) {
        match classify(&d.payload) {
            None => check.other += 1,
            Some(true) => rtcp.push(d.payload.clone()),
            Some(false) => {
                check.ssrcs.insert(u32::from_be_bytes([
                    d.payload[8],
                    d.payload[9],
                    d.payload[10],
                    d.payload[11],
                ]));
                rtp.push(d.payload.clone());
            }
        }
    }
    for (is_rtcp, packets) in [(false, &rtp), (true, &rtcp)] {
        if packets.is_empty() {
            continue;
        }
        let outcomes = libsrtp::run(Op::Unprotect, is_rtcp, key, packets)
            .map_err(|e| Error::Libsrtp(format!("{e:#}")))?;
        let counts = if is_rtcp {
            &mut check.rtcp
        } else {
            &mut check.rtp
        };
        counts.packets = packets.len();
        for (packet, outcome) in packets.iter().zip(&outcomes) {
            if outcome.status == STATUS_OK {
                counts.authenticated += 1;
                if !is_rtcp {
                    check.rtp_plain_sizes.insert(outcome.packet.len());
                }
                continue;
            }
            *counts.failed.entry(outcome.status).or_default() += 1;
            if is_rtcp {
                if let Some(pt) = plain_rtcp_type(packet) {
                    *check.rtcp_plain.entry(pt).or_default() += 1;
                }
            }
        }
    }
    Ok(check)
}

/// The RTP packets from `from` to `to` in `datagrams` that authenticate with `key`,
/// decrypted (header and plain payload), in capture order: what the receiver plays. For
/// comparing a relayed SRTP stream with the plain RTP on the relay's other side.
pub fn decrypt_rtp(
    datagrams: &[UdpDatagram],
    from: Ipv4Addr,
    to: Ipv4Addr,
    key: &SdesKey,
) -> Result<Vec<Vec<u8>>> {
    let rtp: Vec<Vec<u8>> = between(datagrams, from, to)
        .into_iter()
        .filter(|d| classify(&d.payload) == Some(false))
        .map(|d| d.payload.clone())
        .collect();
    if rtp.is_empty() {
        return Ok(Vec::new());
    }
    let outcomes = libsrtp::run(Op::Unprotect, false, key, &rtp)
        .map_err(|e| Error::Libsrtp(format!("{e:#}")))?;
    Ok(outcomes
        .into_iter()
        .filter(|o| o.status == STATUS_OK)
        .map(|o| o.packet)
        .collect())
}

/// Both directions of a call between `a` and `b`, each checked with the sender's key and
/// with the other side's key.
#[derive(Clone, Debug)]
pub struct CallCheck {
    /// a to b with a's key: everything should authenticate.
    pub a_to_b: FlowCheck,
    /// a to b with b's key: nothing should authenticate.
    pub a_to_b_with_b_key: FlowCheck,
    /// b to a with b's key.
    pub b_to_a: FlowCheck,
    /// b to a with a's key.
    pub b_to_a_with_a_key: FlowCheck,
}

/// Checks a call's capture: `a` sends with `a_key`, `b` with `b_key` (the keys each put in
/// its own SDP).
pub fn check_call(
    datagrams: &[UdpDatagram],
    a: Ipv4Addr,
    a_key: &SdesKey,
    b: Ipv4Addr,
    b_key: &SdesKey,
) -> Result<CallCheck> {
    Ok(CallCheck {
        a_to_b: check_flow(datagrams, a, b, a_key)?,
        a_to_b_with_b_key: check_flow(datagrams, a, b, b_key)?,
        b_to_a: check_flow(datagrams, b, a, b_key)?,
        b_to_a_with_a_key: check_flow(datagrams, b, a, a_key)?,
    })
}

impl CallCheck {
    /// `Ok` if each direction carried at least `min_rtp` SRTP packets, every SRTP packet and
    /// every RTCP packet but plain BYE and APP ones authenticated with the sender's key, and
    /// none with the other key; otherwise what was wrong.
    pub fn verdict(&self, min_rtp: usize) -> std::result::Result<(), String> {
        let mut wrong = Vec::new();
        for (name, right, other) in [
            ("a->b", &self.a_to_b, &self.a_to_b_with_b_key),
            ("b->a", &self.b_to_a, &self.b_to_a_with_a_key),
        ] {
            if right.rtp.packets < min_rtp {
                wrong.push(format!(
                    "{name}: {} SRTP packets, expected at least {min_rtp}",
                    right.rtp.packets
                ));
            }
            if right.rtp.authenticated != right.rtp.packets {
                wrong.push(format!(
                    "{name}: {} of {} SRTP packets authenticated with the sender's key",
                    right.rtp.authenticated, right.rtp.packets
                ));
            }
            let plain_ok = right.rtcp_plain_allowed();
            if right.rtcp.authenticated + plain_ok != right.rtcp.packets {
                wrong.push(format!(
                    "{name}: {} of {} RTCP packets authenticated, {plain_ok} plain BYE or APP",
                    right.rtcp.authenticated, right.rtcp.packets
                ));
            }
            if other.rtp.authenticated + other.rtcp.authenticated != 0 {
                wrong.push(format!(
                    "{name}: {} SRTP and {} SRTCP packets authenticated with the other side's key",
                    other.rtp.authenticated, other.rtcp.authenticated
                ));
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(format!("{}\n{self:#?}", wrong.join("\n")))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddrV4;
    use std::time::Duration;

    use relay_srtp::{MasterKey, Suite};

    use super::*;

    fn key(byte: u8) -> SdesKey {
        SdesKey::new(MasterKey::new(Suite::AesCm128HmacSha1_80, &[byte; 16], &[byte; 14]).unwrap())
    }

    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend_from_slice(&[0xff; 160]);
        p
    }

    /// An RTCP receiver report without report blocks plus an SDES chunk.
    fn rtcp() -> Vec<u8> {
        vec![
            0x80, 201, 0, 1, 0x12, 0x34, 0x56, 0x78, //
            0x81, 202, 0, 2, 0x12, 0x34, 0x56, 0x78, 1, 1, b'a', 0,
        ]
    }

    fn datagram(from: [u8; 4], to: [u8; 4], payload: Vec<u8>) -> UdpDatagram {
        UdpDatagram {
            time: Duration::ZERO,
            src: SocketAddrV4::new(from.into(), 20000),
            dst: SocketAddrV4::new(to.into(), 20002),
            payload,
        }
    }

    #[test]
    fn plain_rtcp_is_recognised() {
        assert_eq!(plain_rtcp_type(&rtcp()), Some(201));
        let app = [
            0x80, 0xcc, 0, 3, 1, 2, 3, 4, b'P', b'I', b'N', b'G', b'P', b'O', b'N', b'G',
        ];
        assert_eq!(plain_rtcp_type(&app), Some(204));
        assert_eq!(plain_rtcp_type(&app[..12]), None);
        let mut longer = app.to_vec();
        longer.extend_from_slice(&[0x80, 0, 0, 1, 9]);
        assert_eq!(plain_rtcp_type(&longer), None);
        assert_eq!(plain_rtcp_type(&rtp(1)), None);
    }

    #[test]
    fn a_protected_call_passes_and_a_swapped_key_fails() {
        let (a, b) = ([198, 18, 30, 1], [198, 18, 30, 2]);
        let (ka, kb) = (key(1), key(2));
        let mut all = Vec::new();
        for (from, to, k) in [(a, b, &ka), (b, a, &kb)] {
            let plain: Vec<Vec<u8>> = (65_530..65_530 + 20).map(|s| rtp(s as u16)).collect();
            for o in libsrtp::run(Op::Protect, false, k, &plain).unwrap() {
                assert_eq!(o.status, 0);
                all.push(datagram(from, to, o.packet));
            }
            for o in libsrtp::run(Op::Protect, true, k, &[rtcp()]).unwrap() {
                all.push(datagram(from, to, o.packet));
            }
            // libre's plain APP "PING" and a datagram that is neither RTP nor RTCP.
            all.push(datagram(
                from,
                to,
                vec![
                    0x80, 0xcc, 0, 3, 1, 2, 3, 4, b'P', b'I', b'N', b'G', b'P', b'O', b'N', b'G',
                ],
            ));
            all.push(datagram(from, to, vec![0, 1, 0, 0]));
        }
        let call = check_call(&all, a.into(), &ka, b.into(), &kb).unwrap();
        call.verdict(20).unwrap();
        let plain = decrypt_rtp(&all, a.into(), b.into(), &ka).unwrap();
        assert_eq!(plain.len(), 20);
        assert_eq!(plain[0], rtp(65_530));
        assert!(decrypt_rtp(&all, a.into(), b.into(), &kb)
            .unwrap()
            .is_empty());
        assert_eq!(call.a_to_b.rtp.authenticated, 20);
        assert_eq!(call.a_to_b.rtcp.authenticated, 1);
        assert_eq!(call.a_to_b.rtcp_plain.get(&204), Some(&1));
        assert_eq!(call.a_to_b.other, 1);
        assert_eq!(call.a_to_b.ssrcs, BTreeSet::from([0x1234_5678]));
        assert_eq!(call.a_to_b.rtp_plain_sizes, BTreeSet::from([172]));
        assert_eq!(
            call.a_to_b_with_b_key.rtp.failed.get(&STATUS_AUTH_FAIL),
            Some(&20)
        );
        assert!(call.verdict(21).is_err());

        // The keys the wrong way round: nothing authenticates.
        let swapped = check_call(&all, a.into(), &kb, b.into(), &ka).unwrap();
        let why = swapped.verdict(20).unwrap_err();
        assert!(why.contains("0 of 20 SRTP packets authenticated"), "{why}");
        assert!(why.contains("with the other side's key"), "{why}");

        // A plain BYE passes; a plain receiver report does not.
        all.push(datagram(
            a,
            b,
            vec![0x81, 203, 0, 1, 0x12, 0x34, 0x56, 0x78],
        ));
        let call = check_call(&all, a.into(), &ka, b.into(), &kb).unwrap();
        assert_eq!(call.a_to_b.rtcp_plain_allowed(), 2);
        call.verdict(20).unwrap();
        all.push(datagram(a, b, rtcp()));
        let call = check_call(&all, a.into(), &ka, b.into(), &kb).unwrap();
        assert_eq!(call.a_to_b.rtcp_plain.get(&201), Some(&1));
        let why = call.verdict(20).unwrap_err();
        assert!(
            why.contains("a->b: 1 of 4 RTCP packets authenticated, 2 plain"),
            "{why}"
        );
    }
}
