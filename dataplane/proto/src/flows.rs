//! The worker's flow table: local UDP address (the relay's address and port a packet is sent
//! to) -> the stream it belongs to.
//!
//! Open addressing with linear probing in one flat array of 32-byte slots (two per cache
//! line), at most half full, with backward-shift deletion (no tombstones, so lookups never
//! slow down as calls come and go). Being a plain array is the point: [`FlowTable::slot_addr`]
//! tells the relay which cache line a key's lookup will read, so it can prefetch the lines of
//! a whole burst before the first lookup (a general-purpose hash map gives no such handle).

use std::net::{IpAddr, SocketAddr};

/// What a local address leads to: a media pair, which of its legs received, RTP or RTCP port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowRef {
    /// Index of the media pair in the relay's media table.
    pub media: u32,
    /// The leg (0 = a, 1 = b) whose local address this is.
    pub side: u8,
    /// The RTCP port (local RTP port + 1) rather than the RTP port.
    pub rtcp_port: bool,
}

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

impl FlowKey {
    #[inline]
    fn hash(self) -> u64 {
        // Fold to 64 bits, then a multiplicative (Fibonacci) hash; the table index is taken
        // from the top bits, which depend on every input bit.
        let folded =
            (self.ip as u64) ^ ((self.ip >> 64) as u64).rotate_left(32) ^ u64::from(self.port);
        folded.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

/// One slot, flat: the key's IP as two words (a `u128` would align the slot to 16 bytes and
/// make it 48) and the flow's fields beside the port, so a slot is 32 bytes and two fill a
/// cache line exactly.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Slot {
    ip: [u64; 2],
    port: u16,
    used: bool,
    side: u8,
    rtcp_port: bool,
    media: u32,
}

impl Slot {
    #[inline]
    fn new(key: FlowKey, flow: FlowRef) -> Slot {
        Slot {
            ip: [(key.ip >> 64) as u64, key.ip as u64],
            port: key.port,
            used: true,
            side: flow.side,
            rtcp_port: flow.rtcp_port,
            media: flow.media,
        }
    }

    #[inline]
    fn key(&self) -> FlowKey {
        FlowKey {
            ip: (u128::from(self.ip[0]) << 64) | u128::from(self.ip[1]),
            port: self.port,
        }
    }

    #[inline]
    fn is(&self, key: FlowKey) -> bool {
        self.port == key.port && self.ip == [(key.ip >> 64) as u64, key.ip as u64]
    }

    #[inline]
    fn flow(&self) -> FlowRef {
        FlowRef {
            media: self.media,
            side: self.side,
            rtcp_port: self.rtcp_port,
        }
    }
}

const _: () = assert!(size_of::<Slot>() == 32);

const EMPTY: Slot = Slot {
    ip: [0; 2],
    port: 0,
    used: false,
    side: 0,
    rtcp_port: false,
    media: 0,
};

/// The flow table. Grows (by rehashing, at control time) to stay at most half full.
pub struct FlowTable {
    slots: Vec<Slot>,
    shift: u32,
    len: usize,
}

impl Default for FlowTable {
    fn default() -> Self {
        FlowTable::with_capacity(0)
    }
}

impl FlowTable {
    /// A table that holds `n` flows without growing.
    pub fn with_capacity(n: usize) -> FlowTable {
        let size = (2 * n).next_power_of_two().max(16);
        FlowTable {
            slots: vec![EMPTY; size],
            shift: 64 - size.trailing_zeros(),
            len: 0,
        }
    }

    /// Number of flows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn home(&self, key: FlowKey) -> usize {
        (key.hash() >> self.shift) as usize
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The address of the slot a lookup of `key` reads first (for prefetching).
    #[inline]
    pub fn slot_addr(&self, key: FlowKey) -> *const u8 {
        let slot: *const Slot = &self.slots[self.home(key)];
        slot.cast()
    }

    /// The flow of `key`.
    #[inline]
    pub fn get(&self, key: FlowKey) -> Option<FlowRef> {
        let mask = self.mask();
        let mut i = self.home(key);
        loop {
            let s = &self.slots[i];
            if !s.used {
                return None;
            }
            if s.is(key) {
                return Some(s.flow());
            }
            i = (i + 1) & mask;
        }
    }

    /// Whether `key` has a flow.
    pub fn contains(&self, key: FlowKey) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key`'s flow; returns the one it replaced.
    pub fn insert(&mut self, key: FlowKey, flow: FlowRef) -> Option<FlowRef> {
        if 2 * (self.len + 1) > self.slots.len() {
            self.grow();
        }
        let mask = self.mask();
        let mut i = self.home(key);
        loop {
            let s = &mut self.slots[i];
            if !s.used {
                *s = Slot::new(key, flow);
                self.len += 1;
                return None;
            }
            if s.is(key) {
                let old = s.flow();
                *s = Slot::new(key, flow);
                return Some(old);
            }
            i = (i + 1) & mask;
        }
    }

    /// Removes `key`'s flow, returning it.
    pub fn remove(&mut self, key: FlowKey) -> Option<FlowRef> {
        let mask = self.mask();
        let mut i = self.home(key);
        loop {
            let s = &self.slots[i];
            if !s.used {
                return None;
            }
            if s.is(key) {
                break;
            }
            i = (i + 1) & mask;
        }
        let removed = self.slots[i].flow();
        // Backward-shift deletion (Knuth, TAOCP 6.4 Algorithm R): move later members of the
        // probe run into the hole when their home slot is not between the hole and them.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let s = self.slots[j];
            if !s.used {
                break;
            }
            let home = self.home(s.key());
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
        Some(removed)
    }

    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        *self = FlowTable::with_capacity(old.len());
        for s in old.into_iter().filter(|s| s.used) {
            self.insert(s.key(), s.flow());
        }
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
        FlowRef {
            media: i,
            side: (i & 1) as u8,
            rtcp_port: i.is_multiple_of(3),
        }
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
        assert!(t.slots.iter().all(|s| !s.used));
    }
}
