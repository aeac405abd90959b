//! Single-producer, single-consumer rings of mbufs between two worker cores: how a worker
//! that receives a packet belonging to another worker's stream hands it over (software
//! dispatch, for ports without RSS). One `rte_ring` per (from, to) pair, moved a burst at a
//! time: a couple of atomic operations per burst, no lock, no syscall.

use std::ffi::CString;
use std::marker::PhantomData;
use std::os::raw::c_void;
use std::ptr::NonNull;

use relay_sys::rte_ring;

use super::error::DpdkError;
use super::mbuf::{Burst, BURST_SIZE};
use super::Eal;

/// A ring of mbufs. Split it into its two ends with [`MbufRing::ends`]; dropping it frees the
/// mbufs still inside and the ring.
pub struct MbufRing<'eal> {
    raw: NonNull<rte_ring>,
    _eal: PhantomData<&'eal Eal>,
}

// SAFETY: the ring lives in EAL shared memory and is built for use from several threads; the
// `MbufRing` itself only frees it (on drop, when no end borrows it any more).
unsafe impl Send for MbufRing<'_> {}
// SAFETY: shared references only hand out the two ends, each usable by one thread at a time
// (`ends` takes `&mut self`, so there is one producer and one consumer).
unsafe impl Sync for MbufRing<'_> {}

impl<'eal> MbufRing<'eal> {
    /// A ring named `name` holding up to `size - 1` mbufs (`size` a power of two).
    pub fn create(_eal: &'eal Eal, name: &str, size: u32) -> Result<Self, DpdkError> {
        let c_name = CString::new(name)
            .map_err(|_| DpdkError::InvalidArgument(format!("ring name {name:?}")))?;
        // SAFETY: a valid C string; SOCKET_ID_ANY (-1); flags 0 (the SP/SC behaviour is chosen
        // per call below). DPDK copies the name.
        let raw = unsafe { relay_sys::rte_ring_create(c_name.as_ptr(), size, -1, 0) };
        NonNull::new(raw)
            .map(|raw| MbufRing {
                raw,
                _eal: PhantomData,
            })
            .ok_or_else(|| DpdkError::from_rte_errno("rte_ring_create"))
    }

    /// The producer and consumer ends.
    pub fn ends(&mut self) -> (RingProducer<'_, 'eal>, RingConsumer<'_, 'eal>) {
        (
            RingProducer {
                raw: self.raw,
                _ring: PhantomData,
                _eal: PhantomData,
            },
            RingConsumer {
                raw: self.raw,
                _ring: PhantomData,
                _eal: PhantomData,
            },
        )
    }
}

impl Drop for MbufRing<'_> {
    fn drop(&mut self) {
        let mut rest = Burst::new();
        loop {
            // SAFETY: no end exists any more (they borrow `self`), so this is the only user;
            // the destination has BURST_SIZE free slots.
            let n = unsafe {
                relay_sys::rte_ring_sc_dequeue_burst(
                    self.raw.as_ptr(),
                    rest.mbufs.as_mut_ptr().cast::<*mut c_void>(),
                    BURST_SIZE as u32,
                    std::ptr::null_mut(),
                )
            };
            if n == 0 {
                break;
            }
            rest.len = n as usize;
            rest.clear();
        }
        // SAFETY: empty and unused; freed once.
        unsafe { relay_sys::rte_ring_free(self.raw.as_ptr()) }
    }
}

/// The sending end of an [`MbufRing`], owned by one worker.
pub struct RingProducer<'r, 'eal> {
    raw: NonNull<rte_ring>,
    _ring: PhantomData<&'r mut ()>,
    _eal: PhantomData<&'eal Eal>,
}

// SAFETY: moved to the one worker thread that produces; not `Sync`, not `Clone`.
unsafe impl Send for RingProducer<'_, '_> {}

impl<'eal> RingProducer<'_, 'eal> {
    /// Moves packets from the front of `burst` into the ring; returns how many went. The rest
    /// (the ring was full) stay in `burst`, in order.
    #[inline]
    pub fn enqueue_burst(&mut self, burst: &mut Burst<'eal>) -> usize {
        if burst.is_empty() {
            return 0;
        }
        // SAFETY: this end is the ring's only producer (one per ring, `&mut self`); the first
        // `n` mbufs' ownership passes to the ring.
        let n = unsafe {
            relay_sys::rte_ring_sp_enqueue_burst(
                self.raw.as_ptr(),
                burst.mbufs.as_ptr().cast::<*mut c_void>(),
                burst.len as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        burst.consume_front(n);
        n
    }
}

/// The receiving end of an [`MbufRing`], owned by one worker.
pub struct RingConsumer<'r, 'eal> {
    raw: NonNull<rte_ring>,
    _ring: PhantomData<&'r mut ()>,
    _eal: PhantomData<&'eal Eal>,
}

// SAFETY: moved to the one worker thread that consumes; not `Sync`, not `Clone`.
unsafe impl Send for RingConsumer<'_, '_> {}

impl<'eal> RingConsumer<'_, 'eal> {
    /// Takes packets from the ring into the free slots of `burst`; returns how many came.
    #[inline]
    pub fn dequeue_burst(&mut self, burst: &mut Burst<'eal>) -> usize {
        let room = (BURST_SIZE - burst.len) as u32;
        // SAFETY: this end is the ring's only consumer; the destination has `room` free slots
        // and takes ownership of what is written there.
        let n = unsafe {
            relay_sys::rte_ring_sc_dequeue_burst(
                self.raw.as_ptr(),
                burst
                    .mbufs
                    .as_mut_ptr()
                    .add(burst.len)
                    .cast::<*mut c_void>(),
                room,
                std::ptr::null_mut(),
            )
        } as usize;
        burst.len += n;
        n
    }
}
