//! HMAC-SHA1 (RFC 2104) with the inner and outer hash states computed once per key.
//!
//! Per packet only the message blocks and one outer block are hashed: the key is never
//! re-hashed. The states are key-equivalent secrets and are zeroised on drop, which the
//! `hmac` crate's types do not do; the `hmac` crate serves as the reference in the tests.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::simd::{self, LANES};

const BLOCK: usize = 64;
const INITIAL: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];

/// A keyed HMAC-SHA1: the SHA-1 states after absorbing `key ^ ipad` and `key ^ opad`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct HmacSha1 {
    inner: [u32; 5],
    outer: [u32; 5],
}

/// One SHA-1 compression (the `sha1` crate's: SHA-NI where the CPU has it).
#[inline]
fn compress(state: &mut [u32; 5], block: &[u8; 64]) {
    simd::sha1_compress(state, block);
}

#[inline]
fn compress_block(state: &mut [u32; 5], block: &[u8]) {
    compress(state, block.try_into().expect("a 64-byte block"));
}

/// The blocks one inner hash absorbs after the key: `data`'s whole blocks, then one or two
/// tail blocks (the rest of `data`, `suffix`, the 0x80 byte and the bit length).
struct InnerBlocks<'a> {
    whole: &'a [u8],
    tail: [u8; 2 * BLOCK],
    tail_len: usize,
}

impl<'a> InnerBlocks<'a> {
    fn new(data: &'a [u8], suffix: &[u8]) -> InnerBlocks<'a> {
        debug_assert!(suffix.len() <= 8);
        let whole_len = data.len() - data.len() % BLOCK;
        let (whole, rest) = data.split_at(whole_len);
        let total_bits = ((BLOCK + data.len() + suffix.len()) as u64) * 8;
        // rest + suffix + 0x80 + length: one block, or two if it does not fit in 56 bytes.
        let mut tail = [0u8; 2 * BLOCK];
        tail[..rest.len()].copy_from_slice(rest);
        tail[rest.len()..rest.len() + suffix.len()].copy_from_slice(suffix);
        let used = rest.len() + suffix.len();
        tail[used] = 0x80;
        let tail_len = if used + 1 + 8 <= BLOCK {
            BLOCK
        } else {
            2 * BLOCK
        };
        tail[tail_len - 8..tail_len].copy_from_slice(&total_bits.to_be_bytes());
        InnerBlocks {
            whole,
            tail,
            tail_len,
        }
    }

    fn count(&self) -> usize {
        (self.whole.len() + self.tail_len) / BLOCK
    }

    fn block(&self, i: usize) -> &[u8; 64] {
        let whole = self.whole.len() / BLOCK;
        let b = if i < whole {
            &self.whole[i * BLOCK..(i + 1) * BLOCK]
        } else {
            &self.tail[(i - whole) * BLOCK..(i - whole + 1) * BLOCK]
        };
        b.try_into().expect("a 64-byte block")
    }
}

/// The one block the outer hash absorbs: the inner digest, 0x80 and the bit length.
fn outer_block(inner: &[u32; 5]) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    for (chunk, word) in block.chunks_exact_mut(4).zip(inner) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    block[20] = 0x80;
    block[56..].copy_from_slice(&(((BLOCK + 20) as u64) * 8).to_be_bytes());
    block
}

fn digest(state: &[u32; 5]) -> [u8; 20] {
    let mut out = [0u8; 20];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

impl HmacSha1 {
    /// Keys the MAC. SRTP authentication keys are 20 bytes, well under the block size.
    pub(crate) fn new(key: &[u8]) -> Self {
        assert!(
            key.len() <= BLOCK,
            "HMAC keys longer than a block are not used by SRTP"
        );
        let mut pad = [0u8; BLOCK];
        let mut mac = HmacSha1 {
            inner: INITIAL,
            outer: INITIAL,
        };
        for (p, k) in pad.iter_mut().zip(key.iter().chain(std::iter::repeat(&0))) {
            *p = k ^ 0x36;
        }
        compress_block(&mut mac.inner, &pad);
        for (p, k) in pad.iter_mut().zip(key.iter().chain(std::iter::repeat(&0))) {
            *p = k ^ 0x5c;
        }
        compress_block(&mut mac.outer, &pad);
        pad.zeroize();
        mac
    }

    /// HMAC(key, `data` || `suffix`), `suffix` at most 8 bytes (the SRTP ROC is 4).
    #[inline]
    pub(crate) fn mac(&self, data: &[u8], suffix: &[u8]) -> [u8; 20] {
        let blocks = InnerBlocks::new(data, suffix);
        let mut state = self.inner;
        for i in 0..blocks.count() {
            compress(&mut state, blocks.block(i));
        }
        let mut outer = self.outer;
        compress(&mut outer, &outer_block(&state));
        digest(&outer)
    }

    /// Two MACs at once: `a` over `data_a || suffix_a` and `b` over `data_b || suffix_b`,
    /// the same as two calls of [`HmacSha1::mac`], their blocks taken in pairs: the place
    /// where a multi-lane SHA-1 goes. (Two SHA-NI lanes interleaved were measured no faster
    /// on Zen 4, whose SHA unit is bound by throughput, not latency: branch `sha-ni-2lane`.)
    #[inline]
    pub(crate) fn mac2(
        a: &HmacSha1,
        data_a: &[u8],
        suffix_a: &[u8],
        b: &HmacSha1,
        data_b: &[u8],
        suffix_b: &[u8],
    ) -> ([u8; 20], [u8; 20]) {
        let (ba, bb) = (
            InnerBlocks::new(data_a, suffix_a),
            InnerBlocks::new(data_b, suffix_b),
        );
        let (mut sa, mut sb) = (a.inner, b.inner);
        let (na, nb) = (ba.count(), bb.count());
        for i in 0..na.min(nb) {
            compress(&mut sa, ba.block(i));
            compress(&mut sb, bb.block(i));
        }
        for i in nb..na {
            compress(&mut sa, ba.block(i));
        }
        for i in na..nb {
            compress(&mut sb, bb.block(i));
        }
        let (mut oa, mut ob) = (a.outer, b.outer);
        compress(&mut oa, &outer_block(&sa));
        compress(&mut ob, &outer_block(&sb));
        (digest(&oa), digest(&ob))
    }

    /// Whether [`HmacSha1::mac_many`] computes its MACs together (AVX-512 here): callers
    /// with several messages should hand them over at once.
    #[inline]
    pub(crate) fn many_at_once() -> bool {
        simd::multi_lane()
    }

    /// The MACs of several messages: `out[i]` = the MAC of `items[i]` = (key, data, suffix),
    /// the same as [`HmacSha1::mac`] on each. With the multi-lane SHA-1 (AVX-512), up to 16
    /// messages go through SHA-1 together, block by block (a lane whose message has no more
    /// blocks sits out), then their outer hashes together; blocks are read where they lie.
    pub(crate) fn mac_many(items: &[(&HmacSha1, &[u8], &[u8])], out: &mut [[u8; 20]]) {
        /// Block sets per call of the multi-lane compression.
        const SETS: usize = 4;
        /// Most block sets one HMAC pass takes (a 1,500-byte message).
        const MAX_SETS: usize = 24;
        let zero = [0u8; BLOCK];
        for (items, out) in items.chunks(LANES).zip(out.chunks_mut(LANES)) {
            let n = items.len();
            if n < 2 || !simd::multi_lane() {
                for ((mac, data, suffix), o) in items.iter().zip(out.iter_mut()) {
                    *o = mac.mac(data, suffix);
                }
                continue;
            }
            // Each lane's inner message: its whole blocks where they lie, then one or two
            // tail blocks (rest of the data, suffix, 0x80, bit length) built here.
            let mut tails = [[0u8; 2 * BLOCK]; LANES];
            let mut whole = [0usize; LANES];
            let mut count = [0usize; LANES];
            for (l, (_, data, suffix)) in items.iter().enumerate() {
                debug_assert!(suffix.len() <= 8);
                let w = data.len() / BLOCK;
                let rest = &data[w * BLOCK..];
                let t = &mut tails[l];
                t[..rest.len()].copy_from_slice(rest);
                let used = rest.len() + suffix.len();
                t[rest.len()..used].copy_from_slice(suffix);
                t[used] = 0x80;
                let tail_len = if used + 1 + 8 <= BLOCK {
                    BLOCK
                } else {
                    2 * BLOCK
                };
                let bits = ((BLOCK + data.len() + suffix.len()) as u64) * 8;
                t[tail_len - 8..tail_len].copy_from_slice(&bits.to_be_bytes());
                whole[l] = w;
                count[l] = w + tail_len / BLOCK;
            }
            let block = |l: usize, k: usize| -> &[u8; BLOCK] {
                let b = if k < whole[l] {
                    &items[l].1[k * BLOCK..(k + 1) * BLOCK]
                } else {
                    &tails[l][(k - whole[l]) * BLOCK..(k - whole[l] + 1) * BLOCK]
                };
                b.try_into().expect("a 64-byte block")
            };
            let mut states: [[u32; 5]; LANES] =
                std::array::from_fn(|l| items.get(l).map_or(INITIAL, |(m, ..)| m.inner));
            let mut outer: [[u32; 5]; LANES] =
                std::array::from_fn(|l| items.get(l).map_or(INITIAL, |(m, ..)| m.outer));
            let all = if n == LANES {
                u16::MAX
            } else {
                (1u16 << n) - 1
            };
            let most = count[..n].iter().copied().max().unwrap_or(0);
            // Both hashes in one pass where the lanes can (a voice packet's message is 3-4
            // blocks; up to 24, a 1,500-byte packet's).
            macro_rules! fill {
                ($sets:expr, $masks:expr) => {
                    for (k, (set, mask)) in $sets.iter_mut().zip($masks.iter_mut()).enumerate() {
                        for l in 0..n {
                            if k < count[l] {
                                set[l] = block(l, k);
                                *mask |= 1 << l;
                            }
                        }
                    }
                };
            }
            let done = if most <= SETS {
                let mut sets = [[&zero; LANES]; SETS];
                let mut masks = [0u16; SETS];
                fill!(sets[..most], masks[..most]);
                simd::hmac16(&states, &mut outer, &sets[..most], &masks[..most], all)
            } else if most <= MAX_SETS {
                let mut sets = [[&zero; LANES]; MAX_SETS];
                let mut masks = [0u16; MAX_SETS];
                fill!(sets[..most], masks[..most]);
                simd::hmac16(&states, &mut outer, &sets[..most], &masks[..most], all)
            } else {
                None
            };
            if done.is_some() {
                for (o, s) in out.iter_mut().zip(&outer[..n]) {
                    *o = digest(s);
                }
                states.zeroize();
                outer.zeroize();
                continue;
            }
            let mut k = 0;
            while k < most {
                let step = (most - k).min(SETS);
                let mut sets = [[&zero; LANES]; SETS];
                let mut masks = [0u16; SETS];
                for (s, (set, mask)) in sets.iter_mut().zip(&mut masks).take(step).enumerate() {
                    for l in 0..n {
                        if k + s < count[l] {
                            set[l] = block(l, k + s);
                            *mask |= 1 << l;
                        }
                    }
                }
                simd::sha1_compress16(&mut states, &sets[..step], &masks[..step]);
                k += step;
            }
            // (Digests and packet bytes, no key material: not zeroised, as in `mac`.)
            let outer_blocks: [[u8; BLOCK]; LANES] =
                std::array::from_fn(|l| outer_block(&states[l]));
            let set: [&[u8; BLOCK]; LANES] = std::array::from_fn(|l| &outer_blocks[l]);
            simd::sha1_compress16(&mut outer, &[set], &[all]);
            for (o, s) in out.iter_mut().zip(&outer[..n]) {
                *o = digest(s);
            }
            states.zeroize();
            outer.zeroize();
        }
    }
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, Mac};
    use proptest::prelude::*;

    use super::*;
    use crate::test_util::hex;

    #[test]
    fn rfc2202_test_case_1() {
        let mac = HmacSha1::new(&[0x0b; 20]);
        assert_eq!(
            mac.mac(b"Hi There", &[]).to_vec(),
            hex("b617318655057264e28bc0b6fb378c8ef146be00")
        );
    }

    proptest! {
        #[test]
        fn matches_the_hmac_crate(key in proptest::collection::vec(any::<u8>(), 0..=64),
                                  data in proptest::collection::vec(any::<u8>(), 0..300),
                                  suffix in proptest::collection::vec(any::<u8>(), 0..=8)) {
            let mut reference = <Hmac<sha1::Sha1> as Mac>::new_from_slice(&key).unwrap();
            reference.update(&data);
            reference.update(&suffix);
            let want = reference.finalize().into_bytes();
            prop_assert_eq!(HmacSha1::new(&key).mac(&data, &suffix).to_vec(), want.to_vec());
        }

        #[test]
        fn many_at_once_equal_one_at_a_time(
            keys in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..=64), 1..=33),
            data in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..2000), 33),
            suffix in proptest::collection::vec(any::<u8>(), 0..=8),
        ) {
            let macs: Vec<HmacSha1> = keys.iter().map(|k| HmacSha1::new(k)).collect();
            let items: Vec<(&HmacSha1, &[u8], &[u8])> = macs
                .iter()
                .zip(&data)
                .map(|(m, d)| (m, d.as_slice(), suffix.as_slice()))
                .collect();
            let mut out = vec![[0u8; 20]; items.len()];
            HmacSha1::mac_many(&items, &mut out);
            for ((m, d, s), got) in items.iter().zip(&out) {
                prop_assert_eq!(*got, m.mac(d, s));
            }
        }

        #[test]
        fn two_at_once_equal_one_at_a_time(
            ka in proptest::collection::vec(any::<u8>(), 0..=64),
            kb in proptest::collection::vec(any::<u8>(), 0..=64),
            da in proptest::collection::vec(any::<u8>(), 0..1500),
            db in proptest::collection::vec(any::<u8>(), 0..1500),
            sa in proptest::collection::vec(any::<u8>(), 0..=8),
            sb in proptest::collection::vec(any::<u8>(), 0..=8),
        ) {
            let (a, b) = (HmacSha1::new(&ka), HmacSha1::new(&kb));
            let two = HmacSha1::mac2(&a, &da, &sa, &b, &db, &sb);
            prop_assert_eq!(two, (a.mac(&da, &sa), b.mac(&db, &sb)));
        }
    }
}
