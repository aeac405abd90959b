//! Frames held for a next hop's MAC ([`Verdict::Hold`](relay_proto::relay::Verdict::Hold)):
//! a call's first packets towards a peer the relay has just asked for (ARP request or
//! neighbour solicitation) wait here, complete but for their destination MAC, and go out
//! when the answer comes, instead of being lost. A host's neighbour cache does the same
//! (RFC 1122 section 2.3.2.2: "SHOULD save (rather than discard) at least one (the latest)
//! packet"; Linux keeps up to `unres_qlen` a neighbour).
//!
//! Bounded in frames and in time: at most [`HOLD_CAPACITY`] a worker (what does not fit is
//! dropped), each for at most [`HOLD_NS`] (then dropped); both counted as
//! `neighbour_unresolved`. Nothing is allocated after start-up.

use std::net::IpAddr;

use relay_proto::relay::{DropReason, Relay};

use crate::dpdk::Mbuf;

/// Frames a worker holds at most: a burst of new calls towards one unresolved gateway,
/// a few packets each.
pub const HOLD_CAPACITY: usize = 256;

/// How long a frame is held: an ARP or neighbour discovery answer comes within
/// milliseconds on a working link; a second later the packet is of no use to a jitter
/// buffer (and the neighbour is asked again by the packets that follow).
pub const HOLD_NS: u64 = 1_000_000_000;

struct Held<'eal> {
    m: Mbuf<'eal>,
    /// Output port, as an index in the worker's queues.
    out: usize,
    next_hop: IpAddr,
    until_ns: u64,
}

/// One worker's held frames, oldest first.
pub struct HeldFrames<'eal> {
    frames: Vec<Held<'eal>>,
    /// The other half of `frames` while [`HeldFrames::release`] sorts them (no allocation).
    spare: Vec<Held<'eal>>,
}

impl Default for HeldFrames<'_> {
    fn default() -> Self {
        HeldFrames {
            frames: Vec::with_capacity(HOLD_CAPACITY),
            spare: Vec::with_capacity(HOLD_CAPACITY),
        }
    }
}

impl<'eal> HeldFrames<'eal> {
    /// Whether nothing is held (the forwarding loop's only cost when nothing waits).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Holds `m` (for output `out`) until `next_hop`'s MAC is known, or drops and counts it
    /// if [`HOLD_CAPACITY`] frames already wait.
    pub fn hold(
        &mut self,
        relay: &mut Relay,
        m: Mbuf<'eal>,
        out: usize,
        next_hop: IpAddr,
        now_ns: u64,
    ) {
        if self.frames.len() >= HOLD_CAPACITY {
            relay.stats.drops[DropReason::NeighbourUnresolved.index()] += 1;
            return;
        }
        self.frames.push(Held {
            m,
            out,
            next_hop,
            until_ns: now_ns.saturating_add(HOLD_NS),
        });
    }

    /// Completes and passes to `send(out, frame)`, in the order they came, the frames whose
    /// next hop the relay now knows (counted as forwarded), drops those held too long
    /// (counted as `neighbour_unresolved`), and keeps the rest.
    pub fn release(
        &mut self,
        relay: &mut Relay,
        now_ns: u64,
        mut send: impl FnMut(&mut Relay, usize, Mbuf<'eal>),
    ) {
        let mut keep = std::mem::take(&mut self.spare);
        for mut h in self.frames.drain(..) {
            if complete(relay, &mut h.m, h.next_hop) {
                send(relay, h.out, h.m);
                continue;
            }
            if now_ns >= h.until_ns {
                relay.stats.drops[DropReason::NeighbourUnresolved.index()] += 1;
            } else {
                keep.push(h);
            }
        }
        self.spare = std::mem::replace(&mut self.frames, keep);
    }
}

/// Writes `next_hop`'s MAC into held frame `m` and counts it as forwarded, if the relay knows
/// that MAC now.
pub fn complete(relay: &mut Relay, m: &mut Mbuf<'_>, next_hop: IpAddr) -> bool {
    let (Some(mac), Some(dst)) = (relay.neighbour_mac(next_hop), m.data_mut().get_mut(..6)) else {
        return false;
    };
    dst.copy_from_slice(&mac);
    relay.stats.forwarded += 1;
    true
}
