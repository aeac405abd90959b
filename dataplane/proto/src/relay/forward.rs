//! The per-packet path: [`Relay::process`] parses a frame once, hands ARP, ICMP and neighbour
//! discovery to the answers, and relays UDP to a call's other leg in stages: admission
//! (strict source, UDP checksum), SRTP in, latching and statistics, SRTP out, and the leg's
//! prebuilt headers. The burst path (`burst.rs`) runs the same stages with the SRTP tags of a
//! whole burst computed together.

use std::net::{IpAddr, SocketAddr};

use rustc_hash::FxHashMap as HashMap;

use super::neighbours::build_tx;
use super::{
    Direction, DropReason, Endpoint, Media, PortAddr, Receiving, Relay, RxChecksum, TxCache,
    Verdict, WorkerStats,
};
use crate::flows::{FlowKey, FlowRef};
use crate::wire::{self, WireError, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use relay_session::RtcpMode;

/// What admission learnt about a UDP packet to relay.
#[derive(Clone, Copy)]
pub(super) struct Admitted {
    /// The payload's sum carried over from the incoming UDP checksum, when it is to be reused.
    pub(super) carried_sum: Option<u32>,
    /// RTCP (on the RTCP port, or multiplexed by payload type).
    pub(super) is_rtcp: bool,
}

/// What [`Relay::classify`] made of a frame: a UDP packet of a known flow, or already done.
pub(super) enum Classified {
    Udp(wire::Udp, FlowRef),
    Done(Verdict),
}

/// What a packet of one flow works on, borrowed from the relay once: its media pair's two
/// directions (`here`: the arriving leg's receiving side and the leaving leg's sending side;
/// `back`: the leaving leg's peer addresses and the arriving leg's headers, which latching
/// invalidates), the pair's local addresses and RTCP mode, and what building headers needs.
pub(super) struct Path<'r> {
    pub(super) here: &'r mut Direction,
    back: &'r mut Direction,
    locals: &'r [Endpoint; 2],
    rtcp_mode: RtcpMode,
    ports: &'r [PortAddr],
    neighbours: &'r HashMap<IpAddr, ([u8; 6], u64)>,
    neighbour_gen: u64,
    pending_arp: &'r mut Vec<(u16, IpAddr)>,
    stats: &'r mut WorkerStats,
}

/// Strict source after latching: a packet from anywhere but the latched address is refused.
#[inline]
pub(super) fn check_source(
    inb: &Receiving,
    flow: FlowRef,
    u: &wire::Udp,
) -> Result<(), DropReason> {
    let expected = if flow.rtcp_port() {
        inb.remote_rtcp
    } else {
        inb.remote
    };
    if inb.strict && inb.latched && expected.is_some_and(|r| r != Endpoint::from(u.src)) {
        return Err(DropReason::UnexpectedSource);
    }
    Ok(())
}

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
        match self.classify(rx_port, frame, len, now_ns, None) {
            Classified::Done(v) => v,
            Classified::Udp(u, flow) => {
                let relayed = self.relay_udp(frame, &u, flow, now_ns, rx_checksum);
                self.account(flow, relayed)
            }
        }
    }

    /// Parses a received frame: answers ARP, ICMP and neighbour discovery, drops what is not
    /// a known flow's UDP (counted), and gives back the UDP packets to relay. `found`: what
    /// the burst's prefetch found of the frame (its destination and that address's flow),
    /// used when the parsed destination is the same.
    #[inline(always)]
    pub(super) fn classify(
        &mut self,
        rx_port: u16,
        frame: &mut [u8],
        len: usize,
        now_ns: u64,
        found: Option<(FlowKey, Option<FlowRef>)>,
    ) -> Classified {
        self.stats.rx += 1;
        let Some(data) = frame.get(..len) else {
            return Classified::Done(self.drop(DropReason::Truncated));
        };
        let l2 = match wire::parse_l2(data) {
            Ok(l2) => l2,
            Err(e) => return Classified::Done(self.drop(e.into())),
        };
        match l2.ethertype {
            ETHERTYPE_ARP => Classified::Done(self.arp(rx_port, frame, len, &l2, now_ns)),
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => {
                let u = match wire::parse_udp_after(&frame[..len], &l2) {
                    Ok(u) => u,
                    // Not UDP: ICMP echo and neighbour discovery for our addresses.
                    Err(WireError::Unsupported) => {
                        return Classified::Done(self.icmp(rx_port, frame, len, &l2, now_ns))
                    }
                    Err(e) => return Classified::Done(self.drop(e.into())),
                };
                // The flow the burst's prefetch found for this destination, if it did.
                let key = FlowKey::from(u.dst);
                let flow = match found {
                    Some((k, flow)) if k == key => flow,
                    _ => self.flows.get(key),
                };
                match flow {
                    Some(flow) => Classified::Udp(u, flow),
                    None => {
                        let ours = self.ports.iter().any(|p| p.owns(u.dst.ip()));
                        Classified::Done(self.drop(if ours {
                            DropReason::UnknownFlow
                        } else {
                            DropReason::NotForUs
                        }))
                    }
                }
            }
            _ => Classified::Done(self.drop(DropReason::Unsupported)),
        }
    }

    /// Counts a relayed packet's outcome: forwarded, or dropped for its leg and the worker.
    #[inline(always)]
    pub(super) fn account(
        &mut self,
        flow: FlowRef,
        relayed: Result<Verdict, DropReason>,
    ) -> Verdict {
        match relayed {
            Ok(v) => {
                match v {
                    Verdict::Hold { .. } => self.stats.held += 1,
                    _ => self.stats.forwarded += 1,
                }
                v
            }
            Err(reason) => {
                if let Some(m) = self.media.get_mut(flow.media() as usize) {
                    let count = &mut m.drops[usize::from(flow.side())][reason.index()];
                    *count = count.saturating_add(1);
                }
                self.drop(reason)
            }
        }
    }

    /// The live media pair of `flow`, borrowed for its stages.
    #[inline(always)]
    pub(super) fn path(&mut self, flow: FlowRef) -> Result<Path<'_>, DropReason> {
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
            .get_mut(flow.media() as usize)
            .filter(|m| m.live)
            .ok_or(DropReason::UnknownFlow)?;
        let Media {
            dirs, locals, rtcp, ..
        } = media;
        let (first, second) = dirs.split_at_mut(1);
        let (here, back) = if flow.side() == 0 {
            (&mut first[0], &mut second[0])
        } else {
            (&mut second[0], &mut first[0])
        };
        Ok(Path {
            here,
            back,
            locals,
            rtcp_mode: *rtcp,
            ports,
            neighbours,
            neighbour_gen: *neighbour_gen,
            pending_arp,
            stats,
        })
    }

    /// Relays one UDP packet of `flow` through every stage.
    #[inline(always)]
    pub(super) fn relay_udp(
        &mut self,
        frame: &mut [u8],
        u: &wire::Udp,
        flow: FlowRef,
        now_ns: u64,
        rx_checksum: RxChecksum,
    ) -> Result<Verdict, DropReason> {
        let mut path = self.path(flow)?;
        let admitted = path.admit(frame, u, flow, rx_checksum)?;
        path.relay_admitted(frame, u, flow, admitted, now_ns)
    }
}

impl Path<'_> {
    /// The stages after admission, one packet at a time.
    #[inline(always)]
    pub(super) fn relay_admitted(
        &mut self,
        frame: &mut [u8],
        u: &wire::Udp,
        flow: FlowRef,
        admitted: Admitted,
        now_ns: u64,
    ) -> Result<Verdict, DropReason> {
        let plain = self.unprotect(frame, u, admitted.is_rtcp)?;
        self.received(frame, u, flow, admitted.is_rtcp, plain, now_ns);
        let out_len = self.protect(frame, u, admitted.is_rtcp, plain)?;
        self.send(frame, u, flow, admitted.carried_sum, out_len, now_ns)
    }

    /// Admission: strict source, the UDP checksum where it matters, and RTP or RTCP.
    #[inline(always)]
    pub(super) fn admit(
        &self,
        frame: &[u8],
        u: &wire::Udp,
        flow: FlowRef,
        rx_checksum: RxChecksum,
    ) -> Result<Admitted, DropReason> {
        let (inb, out) = (&self.here.from, &self.here.to);
        check_source(inb, flow, u)?;
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
        if u.payload_len < 2 {
            return Err(DropReason::SrtpMalformed);
        }
        //= https://www.rfc-editor.org/rfc/rfc5761#section-4
        //# RTCP packet types in the ranges 194-223 and 192-193 ... payload types 64-95
        let is_rtcp = flow.rtcp_port()
            || (self.rtcp_mode == RtcpMode::Mux && (192..=223).contains(&frame[u.payload + 1]));
        Ok(Admitted {
            carried_sum,
            is_rtcp,
        })
    }

    /// Inbound, one packet: authenticates and decrypts (or takes plain RTP as it is);
    /// returns the plain length.
    #[inline(always)]
    pub(super) fn unprotect(
        &mut self,
        frame: &mut [u8],
        u: &wire::Udp,
        is_rtcp: bool,
    ) -> Result<usize, DropReason> {
        let payload = &mut frame[u.payload..u.payload + u.payload_len];
        let plen = payload.len();
        Ok(match (self.here.from.receive.as_deref_mut(), is_rtcp) {
            (Some(ctx), false) => ctx.unprotect_rtp(payload)?,
            (Some(ctx), true) => ctx.unprotect_rtcp(payload)?,
            (None, _) => {
                if payload[0] >> 6 != 2 || plen < if is_rtcp { 8 } else { 12 } {
                    return Err(DropReason::SrtpMalformed);
                }
                plen
            }
        })
    }

    /// An authenticated (or plain) packet arrived: latch the peer's address from it and
    /// count it in the leg's statistics.
    #[inline(always)]
    pub(super) fn received(
        &mut self,
        frame: &[u8],
        u: &wire::Udp,
        flow: FlowRef,
        is_rtcp: bool,
        plain: usize,
        now_ns: u64,
    ) {
        let inb = &mut self.here.from;
        if !inb.latched || !inb.strict {
            let changed = if flow.rtcp_port() {
                inb.set_remote(true, u.src)
            } else {
                !inb.latched && inb.set_remote(false, u.src)
            };
            if changed {
                self.back.to.tx = None;
            }
            inb.latched = true;
        }
        inb.rx_packets += 1;
        inb.rx_bytes += u.payload_len as u64;
        inb.last_rx_ns = now_ns;
        if is_rtcp {
            inb.rx_rtcp += 1;
        } else if plain >= 12 {
            let p = &frame[u.payload..];
            let seq = u16::from_be_bytes([p[2], p[3]]);
            let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
            let arrival = ((u128::from(now_ns) * u128::from(inb.clock_per_ns)) >> 40) as u32;
            inb.rtp.update(seq, ts, arrival);
        }
    }

    /// Outbound, one packet: protects for the other leg (or leaves plain RTP); returns the
    /// payload's new length.
    #[inline(always)]
    fn protect(
        &mut self,
        frame: &mut [u8],
        u: &wire::Udp,
        is_rtcp: bool,
        plain: usize,
    ) -> Result<usize, DropReason> {
        let payload = &mut frame[u.payload..];
        Ok(match (self.here.to.send.as_deref_mut(), is_rtcp) {
            (Some(ctx), false) => ctx.protect_rtp(payload, plain)?,
            (Some(ctx), true) => ctx.protect_rtcp(payload, plain)?,
            (None, _) => plain,
        })
    }

    /// The leaving leg's headers around the `out_len` payload bytes, and the verdict.
    #[inline(always)]
    pub(super) fn send(
        &mut self,
        frame: &mut [u8],
        u: &wire::Udp,
        flow: FlowRef,
        carried_sum: Option<u32>,
        out_len: usize,
        now_ns: u64,
    ) -> Result<Verdict, DropReason> {
        let srtp = self.here.from.receive.is_some() || self.here.to.send.is_some();
        // The cached headers read in place (a copy would move 112 bytes a packet).
        let neighbour_gen = self.neighbour_gen;
        let fresh = |c: &TxCache| c.neighbour_gen == neighbour_gen && c.expires_ns > now_ns;
        let built;
        let mut unresolved = None;
        let cache: &TxCache = match &self.here.to.tx {
            Some(c) if !flow.rtcp_port() && fresh(c) => c,
            _ => {
                let peer = (
                    self.back.from.remote.map(SocketAddr::from),
                    self.back.from.remote_rtcp.map(SocketAddr::from),
                );
                // (Only here: the local addresses are in a line no other packet reads.)
                let (c, awaiting) = build_tx(
                    self.locals[1 - usize::from(flow.side())].into(),
                    peer,
                    flow.rtcp_port(),
                    self.ports,
                    self.neighbours,
                    now_ns,
                    self.pending_arp,
                )?;
                built = TxCache { neighbour_gen, ..c };
                unresolved = awaiting;
                if !flow.rtcp_port() && unresolved.is_none() {
                    self.here.to.tx = Some(built);
                }
                &built
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
        let port = cache.port;
        let out = &mut self.here.to;
        out.tx_packets += 1;
        out.tx_bytes += out_len as u64;
        self.stats.srtp += u64::from(srtp);
        Ok(match unresolved {
            None => Verdict::Forward { port, len, offload },
            Some(next_hop) => Verdict::Hold {
                port,
                len,
                offload,
                next_hop,
            },
        })
    }
}
