//! The per-packet path: [`Relay::process`] parses a frame once, hands ARP, ICMP and neighbour
//! discovery to the answers, and relays UDP to a call's other leg: strict source, UDP
//! checksum, SRTP in, latching, statistics, SRTP out, and the leg's prebuilt headers.

use super::neighbours::build_tx;
use super::{DropReason, Media, Relay, RxChecksum, TxCache, Verdict};
use crate::flows::FlowRef;
use crate::wire::{self, WireError, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use relay_session::RtcpMode;

impl Relay {
    /// Handles one received frame in place. `frame[..len]` holds it; the rest of `frame` is
    /// room to grow (an SRTP tag, a longer IP header). `now_ns` is the caller's monotonic clock.
    pub fn process(&mut self, rx_port: u16, frame: &mut [u8], len: usize, now_ns: u64) -> Verdict {
        self.process_checked(rx_port, frame, len, now_ns, RxChecksum::Unknown)
    }

    /// [`Relay::process`] for a frame whose UDP checksum the receiving NIC has judged: the
    /// relay then does not check it again where it would (plain RTP about to be encrypted).
    pub fn process_checked(
        &mut self,
        rx_port: u16,
        frame: &mut [u8],
        len: usize,
        now_ns: u64,
        rx_checksum: RxChecksum,
    ) -> Verdict {
        self.stats.rx += 1;
        let Some(data) = frame.get(..len) else {
            return self.drop(DropReason::Truncated);
        };
        let l2 = match wire::parse_l2(data) {
            Ok(l2) => l2,
            Err(e) => return self.drop(e.into()),
        };
        match l2.ethertype {
            ETHERTYPE_ARP => self.arp(rx_port, frame, len, &l2, now_ns),
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => {
                self.ip(rx_port, frame, len, &l2, now_ns, rx_checksum)
            }
            _ => self.drop(DropReason::Unsupported),
        }
    }

    fn ip(
        &mut self,
        rx_port: u16,
        frame: &mut [u8],
        len: usize,
        l2: &wire::L2,
        now_ns: u64,
        rx_checksum: RxChecksum,
    ) -> Verdict {
        let u = match wire::parse_udp_after(&frame[..len], l2) {
            Ok(u) => u,
            // Not UDP: ICMP echo and neighbour discovery for our addresses.
            Err(WireError::Unsupported) => return self.icmp(rx_port, frame, len, l2, now_ns),
            Err(e) => return self.drop(e.into()),
        };
        let Some(flow) = self.flows.get(u.dst.into()) else {
            let ours = self.ports.iter().any(|p| p.owns(u.dst.ip()));
            return self.drop(if ours {
                DropReason::UnknownFlow
            } else {
                DropReason::NotForUs
            });
        };
        match self.relay_udp(frame, &u, flow, now_ns, rx_checksum) {
            Ok(v) => {
                self.stats.forwarded += 1;
                v
            }
            Err(reason) => {
                if let Some(m) = self.media.get_mut(flow.media as usize) {
                    m.drops[usize::from(flow.side)][reason.index()] += 1;
                }
                self.drop(reason)
            }
        }
    }

    fn relay_udp(
        &mut self,
        frame: &mut [u8],
        u: &wire::Udp,
        flow: FlowRef,
        now_ns: u64,
        rx_checksum: RxChecksum,
    ) -> Result<Verdict, DropReason> {
        let Relay {
            media,
            ports,
            neighbours,
            neighbour_gen,
            pending_arp,
            stats,
            ..
        } = self;
        let media = media
            .get_mut(flow.media as usize)
            .filter(|m| m.live)
            .ok_or(DropReason::UnknownFlow)?;
        let rtcp_mode = media.rtcp;
        // `here`: this packet's direction (arriving leg's receiving side, leaving leg's sending
        // side); `back`: the other one (the leaving leg's peer addresses, the arriving leg's
        // headers, which latching invalidates).
        let Media { dirs, locals, .. } = media;
        let (first, second) = dirs.split_at_mut(1);
        let (here, back) = if flow.side == 0 {
            (&mut first[0], &mut second[0])
        } else {
            (&mut second[0], &mut first[0])
        };
        let (inb, out) = (&mut here.from, &mut here.to);

        // Strict source after latching.
        let expected = if flow.rtcp_port {
            inb.remote_rtcp
        } else {
            inb.remote
        };
        if inb.strict && inb.latched && expected.is_some_and(|r| r != u.src) {
            return Err(DropReason::UnexpectedSource);
        }
        // The UDP checksum. SRTP in: the authentication tag already proves the payload
        // intact (RFC 3711 section 3.4), the checksum adds nothing. Plain RTP out unchanged:
        // the payload's sum is recovered from the checksum and carried to the new one (an
        // error stays detectable end to end). Plain RTP to be encrypted: verified here, or
        // the corruption would leave authenticated; unless the NIC has checked it. (A
        // checksum field the NIC calls meaningless over a verified payload is not carried.)
        let carried_sum = match (&inb.receive, &out.send, rx_checksum) {
            (Some(_), _, _) => None,
            (None, None, RxChecksum::PayloadVerified) => None,
            (None, None, _) => match wire::udp_payload_sum(frame, u) {
                Some(sum) => Some(sum),
                None if u.src.is_ipv4() => None,
                None => return Err(DropReason::BadChecksum),
            },
            (None, Some(_), RxChecksum::Good | RxChecksum::PayloadVerified) => None,
            (None, Some(_), RxChecksum::Bad) => return Err(DropReason::BadChecksum),
            (None, Some(_), RxChecksum::Unknown) => {
                if !wire::udp_checksum_ok(frame, u) {
                    return Err(DropReason::BadChecksum);
                }
                None
            }
        };
        let payload = &mut frame[u.payload..];
        let plen = u.payload_len;
        if plen < 2 {
            return Err(DropReason::SrtpMalformed);
        }
        //= https://www.rfc-editor.org/rfc/rfc5761#section-4
        //# RTCP packet types in the ranges 194-223 and 192-193 ... payload types 64-95
        let is_rtcp =
            flow.rtcp_port || (rtcp_mode == RtcpMode::Mux && (192..=223).contains(&payload[1]));
        // Inbound: authenticate and decrypt (or take plain RTP as it is).
        let plain = match (inb.receive.as_deref_mut(), is_rtcp) {
            (Some((_, ctx)), false) => ctx.unprotect_rtp(&mut payload[..plen])?,
            (Some((_, ctx)), true) => ctx.unprotect_rtcp(&mut payload[..plen])?,
            (None, _) => {
                if payload[0] >> 6 != 2 || plen < if is_rtcp { 8 } else { 12 } {
                    return Err(DropReason::SrtpMalformed);
                }
                plen
            }
        };
        // Authenticated (or plain): latch the peer's address from this packet.
        if !inb.latched || !inb.strict {
            let changed = if flow.rtcp_port {
                inb.set_remote(true, u.src)
            } else {
                !inb.latched && inb.set_remote(false, u.src)
            };
            if changed {
                back.to.tx = [None, None];
            }
            inb.latched = true;
        }
        inb.rx_packets += 1;
        inb.rx_bytes += plen as u64;
        inb.last_rx_ns = now_ns;
        if is_rtcp {
            inb.rx_rtcp += 1;
        } else if plain >= 12 {
            let seq = u16::from_be_bytes([payload[2], payload[3]]);
            let ts = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
            let arrival = ((u128::from(now_ns) * u128::from(inb.clock_per_ns)) >> 40) as u32;
            inb.rtp.update(seq, ts, arrival);
        }
        let srtp = inb.receive.is_some() || out.send.is_some();
        // Outbound: protect for the other leg.
        let out_len = match (out.send.as_deref_mut(), is_rtcp) {
            (Some((_, ctx)), false) => ctx.protect_rtp(payload, plain)?,
            (Some((_, ctx)), true) => ctx.protect_rtcp(payload, plain)?,
            (None, _) => plain,
        };
        let tx = usize::from(flow.rtcp_port);
        let cache = match out.tx[tx] {
            Some(c) if c.neighbour_gen == *neighbour_gen && c.expires_ns > now_ns => c,
            _ => {
                let peer = (back.from.remote, back.from.remote_rtcp);
                // (Only here: the local addresses are in a line no other packet reads.)
                let c = build_tx(
                    locals[1 - usize::from(flow.side)],
                    peer,
                    flow.rtcp_port,
                    ports,
                    neighbours,
                    now_ns,
                    pending_arp,
                )?;
                let c = TxCache {
                    neighbour_gen: *neighbour_gen,
                    ..c
                };
                out.tx[tx] = Some(c);
                c
            }
        };
        // The UDP checksum, continued: a sum carried from the incoming checksum is used as is
        // (the NIC would checksum whatever arrived, corrupted or not); otherwise the payload
        // was authenticated or just protected here, and the NIC completes the checksum where
        // it can, or it is summed here.
        let (len, offload) = match (carried_sum, cache.offload) {
            (None, true) => {
                let (len, o) = cache
                    .header
                    .write_for_offload(frame, u.payload, out_len)
                    .ok_or(DropReason::TooBig)?;
                (len, Some(o))
            }
            (carried, _) => {
                let sum = carried.unwrap_or_else(|| {
                    wire::checksum_add(0, &frame[u.payload..u.payload + out_len])
                });
                let len = cache
                    .header
                    .write(frame, u.payload, out_len, sum)
                    .ok_or(DropReason::TooBig)?;
                (len, None)
            }
        };
        out.tx_packets += 1;
        out.tx_bytes += out_len as u64;
        stats.srtp += u64::from(srtp);
        Ok(Verdict::Forward {
            port: cache.port,
            len,
            offload,
        })
    }
}
