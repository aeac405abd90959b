//! HMAC-SHA1 (RFC 2104) with the inner and outer hash states computed once per key.
//!
//! Per packet only the message blocks and one outer block are hashed: the key is never
//! re-hashed. The states are key-equivalent secrets and are zeroised on drop, which the
//! `hmac` crate's types do not do; the `hmac` crate serves as the reference in the tests.

use zeroize::{Zeroize, ZeroizeOnDrop};

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
    use sha1::digest::generic_array::GenericArray;
    sha1::compress(state, std::slice::from_ref(GenericArray::from_slice(block)));
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
