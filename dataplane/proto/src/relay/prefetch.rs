//! Prefetch staging: the cache lines a burst's packets will read, hinted stage by stage so
//! the burst's misses overlap. The hint itself comes from the I/O shell ([`CacheHint`]).

use relay_srtp::Context;

use super::{Direction, Relay, Sending, TxCache};
use crate::flows::{FlowKey, FlowRef, FlowSlot};
use crate::wire;

/// A hint to the CPU that memory will be read soon, supplied by the I/O shell (the data
/// plane's is `rte_prefetch0`'s instruction); the core never issues one itself, so it stays
/// free of `unsafe` and of any machine's intrinsics. A hint changes nothing observable.
pub trait CacheHint {
    /// Whether hints do anything: without them the burst path skips the stages that only
    /// compute addresses to hint.
    const HINTS: bool = true;

    /// Brings the cache line holding `addr` closer; any address, even a dangling one, is fine.
    fn line(&self, addr: *const u8);

    /// Hints the line holding `addr`.
    #[inline(always)]
    fn one<T: ?Sized>(&self, addr: *const T) {
        self.line(addr.cast::<u8>());
    }

    /// Hints every cache line that holds any of the `bytes` bytes from `addr` on (a range
    /// that starts mid-line spans one line more than its length suggests).
    #[inline(always)]
    fn range<T: ?Sized>(&self, addr: *const T, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let start = addr.cast::<u8>();
        let into_line = start as usize & 63;
        let first = start.wrapping_sub(into_line);
        for i in 0..(into_line + bytes).div_ceil(64) {
            self.line(first.wrapping_add(64 * i));
        }
    }
}

/// No hints: for tests, fuzzing and machines without a prefetch instruction.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHint;

impl CacheHint for NoHint {
    const HINTS: bool = false;

    #[inline(always)]
    fn line(&self, _addr: *const u8) {}
}

/// At most this many bytes of each SRTP context's hot memory are prefetched.
const CONTEXT_HOT: usize = 512;
/// The bytes of a direction's sending side before its built headers: context and counters.
const DIRECTION_TO_HOT: usize = std::mem::offset_of!(Sending, tx);

/// What the prefetch stages found of each frame of a burst: the destination its headers name
/// and that address's flow (`None` inside: no flow there), or `None` for a frame that names no
/// UDP destination. The burst path then reads each frame's flow from here: one lookup a frame.
pub(super) type Found = [Option<(FlowKey, Option<FlowRef>)>; 32];

impl Relay {
    /// Prefetches, for the frames of a burst (up to 32), the state their processing will
    /// read: flow table entries first, then each packet's direction record, then SRTP keys, then
    /// per-SSRC state, each stage for the whole burst before the next, so the burst's cache
    /// misses overlap (the staged prefetch of DPDK's `l3fwd`) instead of following one
    /// another. Changes nothing; call it before [`Relay::process`] on each frame of the burst.
    /// ([`Relay::process_burst_hinted`] does this itself, and keeps the flows it finds.)
    pub fn prefetch_burst<'f, H: CacheHint>(
        &self,
        hint: &H,
        frames: impl Iterator<Item = &'f [u8]>,
    ) {
        self.stage_burst(hint, frames);
    }

    /// [`Relay::prefetch_burst`]'s stages; returns what they found of each frame.
    #[inline(always)]
    pub(super) fn stage_burst<'f, H: CacheHint>(
        &self,
        hint: &H,
        frames: impl Iterator<Item = &'f [u8]>,
    ) -> Found {
        // Stage 1: the flow table entries, found (one hash probe of the local IP) and hinted.
        let mut keys = [None; 32];
        let mut slots = [None; 32];
        let mut n = 0;
        for ((key, slot), f) in keys.iter_mut().zip(&mut slots).zip(frames) {
            *key = wire::peek_udp_dst(f).map(FlowKey::from);
            *slot = key.and_then(|k| self.flows.locate(k));
            if let Some(s) = slot {
                hint.line(s.addr());
            }
            n += 1;
        }
        // Stage 2: the entries read; each packet's direction record (field addresses are
        // computed, not loaded).
        let mut found: Found = [None; 32];
        let mut flows = [None; 32];
        for ((out, f), (k, slot)) in found
            .iter_mut()
            .zip(&mut flows)
            .zip(keys[..n].iter().zip(&slots))
        {
            let Some(k) = *k else { continue };
            let flow = slot.and_then(FlowSlot::flow);
            *out = Some((k, flow));
            if !H::HINTS {
                continue;
            }
            let Some(flow) = flow else { continue };
            let Some(pair) = self.media.get(flow.media() as usize) else {
                continue;
            };
            let dir = &pair.dirs[usize::from(flow.side())];
            hint.one(&pair.live);
            // The arriving leg's receiving side, the leaving leg's context and counters, and
            // the headers this packet will get: one run of lines.
            hint.range(dir, std::mem::offset_of!(Direction, to) + DIRECTION_TO_HOT);
            hint.range(&dir.to.tx, size_of::<Option<TxCache>>());
            *f = Some(flow);
        }
        if !H::HINTS {
            return found;
        }
        // Stage 3: the SRTP contexts, whose addresses the (now cached) direction records hold.
        let mut contexts: [[Option<&Context>; 2]; 32] = [[None; 2]; 32];
        for (c, flow) in contexts.iter_mut().zip(&flows[..n]) {
            let Some(flow) = flow else { continue };
            let Some(pair) = self.media.get(flow.media() as usize).filter(|m| m.live) else {
                continue;
            };
            let dir = &pair.dirs[usize::from(flow.side())];
            for (slot, keyed) in c.iter_mut().zip([&dir.from.receive, &dir.to.send]) {
                if let Some(keyed) = keyed {
                    let (at, bytes) = keyed.hot_fields();
                    hint.range(at, bytes);
                    *slot = Some(&**keyed);
                }
            }
        }
        // Stage 4: what the (now cached) contexts point to: per-SSRC state, GCM schedules.
        for ctx in contexts[..n].iter().flatten().flatten() {
            for (at, bytes) in ctx.hot_memory() {
                hint.range(at, bytes.min(CONTEXT_HOT));
            }
        }
        found
    }
}
