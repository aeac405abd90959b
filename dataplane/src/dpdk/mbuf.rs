use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;

use relay_sys::{rte_mbuf, rte_mempool};

use super::{DpdkError, Eal};

/// Packets per burst: one `rte_eth_rx_burst`/`rte_eth_tx_burst` call moves at most this many.
pub const BURST_SIZE: usize = 32;

/// A pool of packet buffers in EAL memory (`rte_pktmbuf_pool_create`).
///
/// Pools are made once at start-up and released by `rte_eal_cleanup` when the [`Eal`] is
/// dropped; the `'eal` lifetime keeps every pool, mbuf and port from outliving it.
#[derive(Clone, Copy)]
pub struct PktMbufPool<'eal> {
    raw: NonNull<rte_mempool>,
    _eal: PhantomData<&'eal Eal>,
}

// SAFETY: a pktmbuf pool made by rte_pktmbuf_pool_create uses DPDK's default thread-safe
// ring and per-lcore caches: alloc and free may be called from any EAL thread at once.
unsafe impl Send for PktMbufPool<'_> {}
// SAFETY: as above; the handle itself is an immutable pointer.
unsafe impl Sync for PktMbufPool<'_> {}

impl<'eal> PktMbufPool<'eal> {
    /// Creates a pool of `count` mbufs with `data_room` bytes each (headroom included) on NUMA
    /// `socket` (`-1` for any), with a per-lcore cache of `cache` buffers.
    pub fn create(
        _eal: &'eal Eal,
        name: &str,
        count: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Self, DpdkError> {
        let cname = CString::new(name)
            .map_err(|_| DpdkError::InvalidArgument(format!("pool name {name:?} contains NUL")))?;
        // SAFETY: the EAL is initialised (we hold &Eal); cname is NUL-terminated and DPDK
        // copies the name into the pool.
        let raw = unsafe {
            relay_sys::rte_pktmbuf_pool_create(cname.as_ptr(), count, cache, 0, data_room, socket)
        };
        NonNull::new(raw)
            .map(|raw| PktMbufPool {
                raw,
                _eal: PhantomData,
            })
            .ok_or_else(|| DpdkError::from_rte_errno("rte_pktmbuf_pool_create"))
    }

    /// The data room DPDK recommends (2048 bytes + headroom).
    pub fn default_data_room() -> u16 {
        // SAFETY: returns a compile-time constant.
        unsafe { relay_sys::relay_mbuf_default_buf_size() }
    }

    pub(super) fn as_ptr(&self) -> *mut rte_mempool {
        self.raw.as_ptr()
    }

    /// One buffer, or `None` when the pool is exhausted.
    pub fn alloc(&self) -> Option<Mbuf<'eal>> {
        // SAFETY: the pool is valid for 'eal; rte_pktmbuf_alloc returns null or an mbuf
        // whose ownership passes to us.
        let m = unsafe { relay_sys::rte_pktmbuf_alloc(self.raw.as_ptr()) };
        NonNull::new(m).map(|raw| Mbuf {
            raw,
            _eal: PhantomData,
        })
    }

    /// Appends `n` fresh, empty buffers to `burst` in one call; all or nothing.
    pub fn alloc_bulk(&self, burst: &mut Burst<'eal>, n: usize) -> Result<(), DpdkError> {
        let n = n.min(BURST_SIZE - burst.len);
        // SAFETY: the destination holds at least n free slots after burst.len; on success
        // DPDK writes n valid mbuf pointers there, which the burst then owns.
        let rc = unsafe {
            relay_sys::rte_pktmbuf_alloc_bulk(
                self.raw.as_ptr(),
                burst.mbufs.as_mut_ptr().add(burst.len),
                n as u32,
            )
        };
        super::check("rte_pktmbuf_alloc_bulk", rc)?;
        burst.len += n;
        Ok(())
    }

    /// Buffers currently free in the pool (cache included).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is valid for 'eal; the call only reads counters.
        unsafe { relay_sys::rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Buffers currently taken from the pool (by us, or held in NIC rings).
    pub fn in_use(&self) -> u32 {
        // SAFETY: as for `available`.
        unsafe { relay_sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }
}

/// One owned single-segment packet buffer. Dropping it returns it to its pool.
pub struct Mbuf<'eal> {
    raw: NonNull<rte_mbuf>,
    _eal: PhantomData<&'eal Eal>,
}

/// (checked, right) from an mbuf's offload flags: see [`Mbuf::rx_l4_checksum`].
#[inline]
fn l4_checksum_flags(flags: u64) -> Option<(bool, bool)> {
    let mask = u64::from(relay_sys::RTE_MBUF_F_RX_L4_CKSUM_MASK);
    match flags & mask {
        f if f == u64::from(relay_sys::RTE_MBUF_F_RX_L4_CKSUM_GOOD) => Some((true, true)),
        f if f == u64::from(relay_sys::RTE_MBUF_F_RX_L4_CKSUM_BAD) => Some((true, false)),
        f if f == u64::from(relay_sys::RTE_MBUF_F_RX_L4_CKSUM_NONE) => Some((false, true)),
        _ => None,
    }
}

/// The packet data of a raw mbuf (first segment).
///
/// # Safety
/// `m` must point to a valid mbuf that stays alive and unaliased for `'a`.
#[inline]
unsafe fn data_of<'a>(m: *mut rte_mbuf) -> &'a mut [u8] {
    // SAFETY: per the caller's contract `m` is valid; buf_addr + data_off is the start of
    // data_len initialised bytes inside the mbuf's buffer (rte_pktmbuf_mtod).
    unsafe {
        let m = &*m;
        let start = m.buf_addr.cast::<u8>().add(usize::from(m.data_off));
        std::slice::from_raw_parts_mut(start, usize::from(m.data_len))
    }
}

impl<'eal> Mbuf<'eal> {
    /// The packet bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: we own the mbuf; the shared borrow of self prevents mutation meanwhile.
        unsafe { data_of(self.raw.as_ptr()) }
    }

    /// The packet bytes, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: we own the mbuf exclusively (&mut self).
        unsafe { data_of(self.raw.as_ptr()) }
    }

    /// Grows the packet by `len` bytes at the tail and returns them, or `None` if the buffer
    /// has less than `len` bytes of tailroom.
    pub fn append(&mut self, len: u16) -> Option<&mut [u8]> {
        // SAFETY: we own the mbuf; rte_pktmbuf_append returns null or a pointer to `len`
        // writable bytes inside its buffer, which stay borrowed through &mut self.
        unsafe {
            let p = relay_sys::rte_pktmbuf_append(self.raw.as_ptr(), len);
            if p.is_null() {
                None
            } else {
                Some(std::slice::from_raw_parts_mut(
                    p.cast::<u8>(),
                    usize::from(len),
                ))
            }
        }
    }

    /// The packet bytes followed by the buffer's tailroom: room to grow the packet in place.
    #[inline]
    pub fn data_and_tailroom_mut(&mut self) -> &mut [u8] {
        // SAFETY: we own the mbuf exclusively; buf_addr + data_off starts the data, and the
        // buffer holds buf_len - data_off bytes from there (data plus tailroom).
        unsafe {
            let m = self.raw.as_ref();
            let start = m.buf_addr.cast::<u8>().add(usize::from(m.data_off));
            let room = usize::from(m.buf_len - m.data_off);
            std::slice::from_raw_parts_mut(start, room)
        }
    }

    /// Sets the packet length of a single-segment mbuf (after growing or shrinking it in
    /// place through [`Mbuf::data_and_tailroom_mut`]). Returns false if `len` does not fit.
    #[inline]
    pub fn set_len(&mut self, len: usize) -> bool {
        // SAFETY: we own the mbuf; for a single segment data_len == pkt_len and any length up
        // to buf_len - data_off keeps the mbuf valid.
        unsafe {
            let m = self.raw.as_mut();
            let room = usize::from(m.buf_len - m.data_off);
            if m.nb_segs != 1 || len > room {
                return false;
            }
            m.data_len = len as u16;
            m.pkt_len = len as u32;
        }
        true
    }

    /// Shrinks the packet to `len` bytes (no-op if already shorter).
    pub fn truncate(&mut self, len: u16) {
        // SAFETY: we own the mbuf; shortening data_len/pkt_len of a single-segment mbuf keeps
        // its invariants.
        unsafe {
            let m = self.raw.as_mut();
            if m.nb_segs == 1 && len < m.data_len {
                m.pkt_len = u32::from(len);
                m.data_len = len;
            }
        }
    }

    /// Packet length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.data().len()
    }

    /// Whether the packet holds no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The port the packet was received on.
    #[inline]
    pub fn rx_port(&self) -> u16 {
        // SAFETY: we own the mbuf; reading a plain field.
        unsafe { self.raw.as_ref().port }
    }

    /// Records the port the packet was received on (for a packet handed to another worker,
    /// as not every driver fills the field).
    #[inline]
    pub fn set_rx_port(&mut self, port: u16) {
        // SAFETY: we own the mbuf; writing a plain field.
        unsafe { self.raw.as_mut().port = port }
    }

    /// What the receiving NIC found of the L4 checksum (`RTE_MBUF_F_RX_L4_CKSUM_*`), as
    /// (checked, right): `None` if it did not check (or the port does not offer it);
    /// `Some((false, true))` for `..._NONE`: the checksum field is not meaningful but the data
    /// was verified.
    #[inline]
    pub fn rx_l4_checksum(&self) -> Option<(bool, bool)> {
        // SAFETY: we own the mbuf; reading a plain field.
        l4_checksum_flags(unsafe { self.raw.as_ref().ol_flags })
    }

    /// Asks the transmitting NIC to complete the UDP checksum (`RTE_MBUF_F_TX_UDP_CKSUM`):
    /// the IP header starts `l2_len` bytes in and is `l3_len` long, and the checksum field
    /// holds the pseudo-header sum. Only for ports with `RTE_ETH_TX_OFFLOAD_UDP_CKSUM`
    /// enabled. The IPv4 header checksum stays the caller's.
    #[inline]
    pub fn request_udp_checksum(&mut self, l2_len: u8, l3_len: u8, ipv6: bool) {
        let family = if ipv6 {
            relay_sys::RTE_MBUF_F_TX_IPV6
        } else {
            relay_sys::RTE_MBUF_F_TX_IPV4
        };
        // SAFETY: we own the mbuf; plain fields. `tx_offload` packs l2_len (7 bits) and
        // l3_len (9 bits) from bit 0, the rest zero (rte_mbuf_core.h).
        unsafe {
            let m = self.raw.as_mut();
            m.ol_flags |= relay_sys::RTE_MBUF_F_TX_UDP_CKSUM | family;
            m.__bindgen_anon_3.tx_offload = u64::from(l2_len & 0x7f) | (u64::from(l3_len) << 7);
        }
    }

    fn into_raw(self) -> *mut rte_mbuf {
        let raw = self.raw.as_ptr();
        std::mem::forget(self);
        raw
    }
}

impl Drop for Mbuf<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf and give it back exactly once.
        unsafe { relay_sys::rte_pktmbuf_free(self.raw.as_ptr()) }
    }
}

/// Up to [`BURST_SIZE`] owned mbufs in a fixed array: what one rx/tx burst call moves.
/// Dropping or clearing it frees the mbufs it still holds with one bulk call.
pub struct Burst<'eal> {
    pub(super) mbufs: [*mut rte_mbuf; BURST_SIZE],
    pub(super) len: usize,
    _eal: PhantomData<&'eal Eal>,
}

impl Default for Burst<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'eal> Burst<'eal> {
    /// An empty burst.
    pub fn new() -> Self {
        Burst {
            mbufs: [std::ptr::null_mut(); BURST_SIZE],
            len: 0,
            _eal: PhantomData,
        }
    }

    /// Number of mbufs held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no mbufs.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether it holds [`BURST_SIZE`] mbufs.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == BURST_SIZE
    }

    /// The bytes of packet `i`. Panics if `i >= len()`.
    #[inline]
    pub fn packet(&self, i: usize) -> &[u8] {
        assert!(i < self.len, "burst index {i} out of range {}", self.len);
        // SAFETY: slots below len hold owned, valid mbufs; &self prevents mutation.
        unsafe { data_of(self.mbufs[i]) }
    }

    /// Prefetches what reading the burst's packets touches first, in two passes so the
    /// misses of all packets overlap: every mbuf's first line (buffer address, offset and
    /// lengths; its address is the pointer itself), then every packet's first data line
    /// (Ethernet, IP and UDP headers; its address is read from the first pass's lines).
    /// A NIC's driver has written the mbuf lines during receive; a ring's has not.
    #[inline]
    pub fn prefetch_headers(&self) {
        for &m in &self.mbufs[..self.len] {
            super::prefetch(m);
        }
        for &m in &self.mbufs[..self.len] {
            // SAFETY: slots below len hold owned, valid mbufs; only two fields are read.
            let start = unsafe {
                let m = &*m;
                m.buf_addr
                    .cast::<u8>()
                    .wrapping_add(usize::from(m.data_off))
            };
            super::prefetch(start);
        }
    }

    /// The bytes of packet `i`, writable. Panics if `i >= len()`.
    #[inline]
    pub fn packet_mut(&mut self, i: usize) -> &mut [u8] {
        assert!(i < self.len, "burst index {i} out of range {}", self.len);
        // SAFETY: slots below len hold owned, valid mbufs; &mut self makes access exclusive.
        unsafe { data_of(self.mbufs[i]) }
    }

    /// Every packet's frame, all writable at once, in order: its bytes and tailroom (what
    /// [`Mbuf::data_and_tailroom_mut`] gives), its data length, the NIC's L4 checksum
    /// verdict ([`Mbuf::rx_l4_checksum`]) and the port it arrived on. The mbufs stay in the
    /// burst (for [`Burst::drain`] afterwards).
    #[inline]
    pub fn frames_mut(
        &mut self,
    ) -> impl Iterator<Item = (&mut [u8], usize, Option<(bool, bool)>, u16)> + '_ {
        self.mbufs[..self.len].iter().map(|&m| {
            // SAFETY: slots below len hold owned, valid single-segment mbufs, each its own
            // buffer, so the slices do not overlap; &mut self keeps them exclusive while they
            // live. buf_addr + data_off starts the data, and the buffer holds
            // buf_len - data_off bytes from there (data plus tailroom).
            unsafe {
                let r = &*m;
                let start = r.buf_addr.cast::<u8>().add(usize::from(r.data_off));
                let room = usize::from(r.buf_len - r.data_off);
                (
                    std::slice::from_raw_parts_mut(start, room),
                    usize::from(r.data_len),
                    l4_checksum_flags(r.ol_flags),
                    r.port,
                )
            }
        })
    }

    /// Adds `m` at the end, or gives it back if the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf<'eal>) -> Result<(), Mbuf<'eal>> {
        if self.is_full() {
            return Err(m);
        }
        self.mbufs[self.len] = m.into_raw();
        self.len += 1;
        Ok(())
    }

    /// Moves every mbuf out, in order, leaving the burst empty. Mbufs the iterator did not
    /// yield are freed when it is dropped.
    pub fn drain(&mut self) -> Drain<'_, 'eal> {
        let len = std::mem::replace(&mut self.len, 0);
        Drain {
            slots: &mut self.mbufs[..len],
            next: 0,
            _eal: PhantomData,
        }
    }

    /// Frees every mbuf held (one bulk call) and leaves the burst empty.
    pub fn clear(&mut self) {
        if self.len > 0 {
            // SAFETY: slots below len hold owned mbufs; they are freed once and forgotten.
            unsafe { relay_sys::rte_pktmbuf_free_bulk(self.mbufs.as_mut_ptr(), self.len as u32) };
            self.len = 0;
        }
    }

    /// Drops the first `n` slots' ownership after a partial tx and moves the rest forward.
    pub(super) fn consume_front(&mut self, n: usize) {
        self.mbufs.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

impl Drop for Burst<'_> {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The iterator of [`Burst::drain`].
pub struct Drain<'b, 'eal> {
    slots: &'b mut [*mut rte_mbuf],
    next: usize,
    _eal: PhantomData<&'eal Eal>,
}

impl<'eal> Iterator for Drain<'_, 'eal> {
    type Item = Mbuf<'eal>;

    #[inline]
    fn next(&mut self) -> Option<Mbuf<'eal>> {
        let raw = *self.slots.get(self.next)?;
        self.next += 1;
        // Slots of a burst below its length hold valid owned mbufs; ownership moves out once
        // because `next` only advances.
        NonNull::new(raw).map(|raw| Mbuf {
            raw,
            _eal: PhantomData,
        })
    }
}

impl Drop for Drain<'_, '_> {
    fn drop(&mut self) {
        let rest = &mut self.slots[self.next..];
        if !rest.is_empty() {
            // SAFETY: the slots not yet yielded hold owned mbufs nobody else references.
            unsafe { relay_sys::rte_pktmbuf_free_bulk(rest.as_mut_ptr(), rest.len() as u32) };
        }
    }
}
