//! The worker's flow table: local UDP address (the relay's address and port a packet is sent
//! to) -> the stream it belongs to.
//!
//! Two levels: the local IP (a relay has few: one or more per port, about one per 30,000
//! streams) picks a port map, and the port indexes it directly: 4 bytes per port, 256 KB per
//! local IP, whatever the number of streams. A lookup is one hash probe in a table of a few
//! entries, which stays in cache, then one read of 4 bytes; no probe run, no key compared, and
//! nothing a flood of packets to chosen addresses can lengthen.
//!
//! Why not one hash table over (IP, port), as until issue 14's fifth step: at a million
//! streams an open-addressed table of 32-byte slots, at most half full, spans 256 MB, and
//! every packet's slot is on a page of its own, a TLB miss on top of the cache miss. The port
//! maps of a million streams span about 8 MB: some 2,000 pages, which a TLB of a few thousand
//! entries can mostly hold, and lines a last-level cache can mostly hold; and they cost about
//! 9 bytes per stream instead of 256. Measured: plain RTP at a million streams +40-100%
//! (`bench/RESULTS.md`). Port maps are allocated zeroed (vacant), so the kernel backs only
//! the pages whose ports are used. [`FlowTable::locate`] finds the entry a key's lookup will
//! read, so the relay can prefetch the entries of a whole burst before it reads the first.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

use rustc_hash::FxHashMap as HashMap;

/// What a local address leads to: a media pair, which of its legs received, RTP or RTCP port.
///
/// Held in the port map's own form, one `u32` (`(media + 1) << 2 | side << 1 | RTCP port`,
/// never 0): a lookup reads it without unpacking, and a copy is one move. (As three fields it
/// was written a field at a time and read back whole on the burst path, a store the CPU could
/// not forward: about 12 ns a packet, measured with `relay_profile`.)
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FlowRef(NonZeroU32);

/// Media pairs a flow can name: a port map's entry keeps the index in 30 bits beside the side
/// and the RTCP flag, and 0 for vacant. (A billion media pairs would take 700 GB.)
pub const MAX_MEDIA: u32 = (1 << 30) - 1;

impl FlowRef {
    /// Leg `side` (0 = a, 1 = b; only its lowest bit is kept) of media pair `media`, on its
    /// RTCP port (local RTP port + 1) or its RTP port.
    ///
    /// # Panics
    /// If `media` is [`MAX_MEDIA`] or more.
    #[inline]
    pub fn new(media: u32, side: u8, rtcp_port: bool) -> FlowRef {
        assert!(media < MAX_MEDIA, "media index {media} out of range");
        let entry = ((media + 1) << 2) | (u32::from(side & 1) << 1) | u32::from(rtcp_port);
        FlowRef(NonZeroU32::new(entry).expect("media + 1 is not 0"))
    }

    /// Index of the media pair in the relay's media table (below [`MAX_MEDIA`]).
    #[inline]
    pub fn media(self) -> u32 {
        (self.0.get() >> 2) - 1
    }

    /// The leg (0 = a, 1 = b) whose local address this is.
    #[inline]
    pub fn side(self) -> u8 {
        ((self.0.get() >> 1) & 1) as u8
    }

    /// The RTCP port (local RTP port + 1) rather than the RTP port.
    #[inline]
    pub fn rtcp_port(self) -> bool {
        self.0.get() & 1 == 1
    }

    /// The entry's form; never 0.
    #[inline]
    fn pack(self) -> u32 {
        self.0.get()
    }

    /// The flow of an entry, or `None` for vacant (0).
    #[inline]
    fn unpack(entry: u32) -> Option<FlowRef> {
        NonZeroU32::new(entry).map(FlowRef)
    }
}

impl std::fmt::Debug for FlowRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowRef")
            .field("media", &self.media())
            .field("side", &self.side())
            .field("rtcp_port", &self.rtcp_port())
            .finish()
    }
}

/// A port map entry without a flow.
const VACANT: u32 = 0;

/// Ports per local IP.
const PORTS: usize = 1 << 16;

/// A local address in the table's form: the IP as an IPv6 address (IPv4 mapped, RFC 4291
/// 2.5.5.2) and the port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    ip: u128,
    port: u16,
}

impl From<SocketAddr> for FlowKey {
    #[inline]
    fn from(a: SocketAddr) -> Self {
        let ip = match a.ip() {
            IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
            IpAddr::V6(v6) => u128::from(v6),
        };
        FlowKey { ip, port: a.port() }
    }
}

/// One local IP's flows: an entry per port ([`FlowRef::pack`], or [`VACANT`]).
struct PortMap {
    /// One entry per port: a `u16` port indexes it without a bounds check.
    entries: Box<[u32; PORTS]>,
    /// Entries not vacant: the map is freed with its last flow.
    used: u32,
}

impl PortMap {
    fn new() -> PortMap {
        PortMap {
            // Zeroed memory straight from the allocator: untouched pages cost nothing.
            entries: vec![VACANT; PORTS]
                .into_boxed_slice()
                .try_into()
                .expect("PORTS entries"),
            used: 0,
        }
    }
}

/// A port map entry found by [`FlowTable::locate`]: where it is, and what it holds.
#[derive(Clone, Copy)]
pub struct FlowSlot<'t>(&'t u32);

impl FlowSlot<'_> {
    /// The entry's address (for prefetching).
    #[inline]
    pub fn addr(self) -> *const u8 {
        let entry: *const u32 = self.0;
        entry.cast()
    }

    /// The entry's flow (a read of the entry).
    #[inline]
    pub fn flow(self) -> Option<FlowRef> {
        FlowRef::unpack(*self.0)
    }
}

/// The flow table.
#[derive(Default)]
pub struct FlowTable {
    ips: HashMap<u128, PortMap>,
    len: usize,
}

impl FlowTable {
    /// Number of flows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entry a lookup of `key` reads, found but not yet read: the burst path finds a
    /// burst's entries, prefetches them, and reads them later, one hash probe a packet.
    /// `None` if no flow has `key`'s IP.
    #[inline]
    pub fn locate(&self, key: FlowKey) -> Option<FlowSlot<'_>> {
        let map = self.ips.get(&key.ip)?;
        Some(FlowSlot(&map.entries[usize::from(key.port)]))
    }

    /// The flow of `key`.
    #[inline]
    pub fn get(&self, key: FlowKey) -> Option<FlowRef> {
        let map = self.ips.get(&key.ip)?;
        FlowRef::unpack(map.entries[usize::from(key.port)])
    }

    /// Whether `key` has a flow.
    pub fn contains(&self, key: FlowKey) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key`'s flow; returns the one it replaced.
    pub fn insert(&mut self, key: FlowKey, flow: FlowRef) -> Option<FlowRef> {
        let packed = flow.pack();
        let map = self.ips.entry(key.ip).or_insert_with(PortMap::new);
        let entry = &mut map.entries[usize::from(key.port)];
        let old = FlowRef::unpack(std::mem::replace(entry, packed));
        if old.is_none() {
            map.used += 1;
            self.len += 1;
        }
        old
    }

    /// Removes `key`'s flow, returning it.
    pub fn remove(&mut self, key: FlowKey) -> Option<FlowRef> {
        let map = self.ips.get_mut(&key.ip)?;
        let old = FlowRef::unpack(std::mem::replace(
            &mut map.entries[usize::from(key.port)],
            VACANT,
        ))?;
        map.used -= 1;
        self.len -= 1;
        if map.used == 0 {
            self.ips.remove(&key.ip);
        }
        Some(old)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn key(i: u32) -> FlowKey {
        let ip = IpAddr::from([198, 18, (i >> 16) as u8, (i >> 8) as u8]);
        SocketAddr::new(ip, (i & 0xff) as u16 * 2 + 2000).into()
    }

    fn flow(i: u32) -> FlowRef {
        FlowRef::new(i, (i & 1) as u8, i.is_multiple_of(3))
    }

    #[test]
    fn v4_and_v6_keys_differ() {
        let v4: SocketAddr = "198.18.0.1:4000".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:4000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:198.18.0.1]:4000".parse().unwrap();
        let mut t = FlowTable::default();
        t.insert(v4.into(), flow(1));
        assert_eq!(t.get(v4.into()), Some(flow(1)));
        assert_eq!(t.get(v6.into()), None);
        // The mapped form is the same local address, by design.
        assert_eq!(t.get(mapped.into()), Some(flow(1)));
        assert_eq!(
            t.get("198.18.0.1:4001".parse::<SocketAddr>().unwrap().into()),
            None
        );
    }

    #[test]
    fn entries_keep_every_field_at_the_limits() {
        for media in [0, 1, 12_345, MAX_MEDIA - 1] {
            for side in [0, 1] {
                for rtcp_port in [false, true] {
                    let f = FlowRef::new(media, side, rtcp_port);
                    assert_eq!(
                        (f.media(), f.side(), f.rtcp_port()),
                        (media, side, rtcp_port)
                    );
                    assert_ne!(f.pack(), VACANT);
                    assert_eq!(FlowRef::unpack(f.pack()), Some(f));
                }
            }
        }
        assert_eq!(FlowRef::unpack(VACANT), None);
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn a_media_index_beyond_the_entries_is_refused() {
        FlowTable::default().insert(key(1), flow(MAX_MEDIA));
    }

    /// Ports 0 and 65535 are entries like any other.
    #[test]
    fn every_port_is_its_own_entry() {
        let mut t = FlowTable::default();
        let at = |port| SocketAddr::from(([198, 18, 0, 1], port)).into();
        t.insert(at(0), flow(7));
        t.insert(at(65535), flow(8));
        assert_eq!(t.get(at(0)), Some(flow(7)));
        assert_eq!(t.get(at(65535)), Some(flow(8)));
        assert_eq!(t.get(at(1)), None);
        let vacant = t.locate(at(1)).expect("a known IP's entry can be found");
        assert_eq!(vacant.flow(), None);
        assert_eq!(
            vacant.addr(),
            t.locate(at(0)).expect("found").addr().wrapping_add(4),
            "entries side by side, one per port"
        );
        assert!(t
            .locate(SocketAddr::from(([198, 18, 0, 2], 1)).into())
            .is_none());
        assert_eq!(t.len(), 2);
    }

    /// A random mix of inserts, replacements and removals, checked against `HashMap` after
    /// every step, through several growths and long probe runs.
    #[test]
    fn matches_a_hash_map() {
        let mut t = FlowTable::default();
        let mut model: HashMap<u32, FlowRef> = HashMap::new();
        let mut rng = 0x1234_5678_9abc_def1u64;
        for step in 0..200_000u32 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let k = (rng % 5_000) as u32;
            match rng >> 61 {
                0..=3 => assert_eq!(t.insert(key(k), flow(step)), model.insert(k, flow(step))),
                4..=6 => assert_eq!(t.remove(key(k)), model.remove(&k)),
                // A located entry, read, is what a lookup gives.
                _ if step % 2 == 0 => assert_eq!(
                    t.locate(key(k)).and_then(FlowSlot::flow),
                    model.get(&k).copied()
                ),
                _ => assert_eq!(t.get(key(k)), model.get(&k).copied()),
            }
            assert_eq!(t.len(), model.len());
        }
        for k in 0..5_000 {
            assert_eq!(t.get(key(k)), model.get(&k).copied(), "key {k}");
        }
        for k in 0..5_000 {
            t.remove(key(k));
        }
        assert!(t.is_empty());
        assert!(t.ips.is_empty(), "port maps freed with their last flow");
    }
}
