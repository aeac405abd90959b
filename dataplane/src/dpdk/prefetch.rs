//! Cache prefetch, the Rust side of DPDK's `rte_prefetch0` and `rte_prefetch1`: a hint that
//! `addr`'s cache line will be read soon. The relay issues it for the state of every packet of
//! a burst before it processes the first one, so the burst's cache misses overlap instead of
//! following each other (the technique of DPDK's `l3fwd` and of VPP's dual/quad loops).

/// The cache level a prefetch brings its line into.
#[derive(Clone, Copy)]
enum Level {
    /// Every level (`prefetcht0`).
    L1,
    /// Level 2 and beyond, not level 1 (`prefetcht1`).
    L2,
}

#[inline(always)]
fn prefetch_into<T: ?Sized>(addr: *const T, level: Level) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` and `prefetcht1` need SSE, which every x86_64 CPU has (it is in the
    // target's baseline features). A prefetch is only a hint: it does not fault on any address
    // and reads nothing the program can observe, so no pointer validity is required.
    unsafe {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0, _MM_HINT_T1};
        match level {
            Level::L1 => _mm_prefetch::<_MM_HINT_T0>(addr.cast::<i8>()),
            Level::L2 => _mm_prefetch::<_MM_HINT_T1>(addr.cast::<i8>()),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (addr, level);
}

/// Asks the CPU to bring the cache line holding `addr` into every cache level. Never faults,
/// never changes what the program observes; any address (even a dangling one) is fine.
#[inline(always)]
pub fn prefetch<T: ?Sized>(addr: *const T) {
    prefetch_into(addr, Level::L1);
}

/// Asks the CPU to bring the cache line holding `addr` into the level-2 cache, not level 1
/// (`prefetcht1`, DPDK's `rte_prefetch1`). For data read a little later rather than next:
/// such a prefetch does not hold one of level 1's few miss buffers while it waits for
/// memory, so many more can be in flight at once. Same guarantees as [`prefetch`].
#[inline(always)]
pub fn prefetch_l2<T: ?Sized>(addr: *const T) {
    prefetch_into(addr, Level::L2);
}

/// The core's [`relay_proto::relay::CacheHint`]: [`prefetch_l2`] (`prefetcht1`). The relay
/// hints a whole burst's state, a few hundred lines at a million streams, before reading the
/// first: into level 1 (`prefetcht0`) the hints queued behind level 1's miss buffers and the
/// misses overlapped less. Measured on a Zen 4 (issue 14, bench/RESULTS.md): SRTP re-key at a
/// million streams +15-45%, plain RTP +15-60%, a thousand streams unchanged.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuPrefetch;

impl relay_proto::relay::CacheHint for CpuPrefetch {
    #[inline(always)]
    fn line(&self, addr: *const u8) {
        prefetch_l2(addr);
    }
}
