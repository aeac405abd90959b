//! HMAC-SHA1 (RFC 2104) with the inner and outer hash states computed once per key.
//!
//! Per packet only the message blocks and one outer block are hashed: the key is never
//! re-hashed. The states are key-equivalent secrets and are zeroised on drop, which the
//! `hmac` crate's types do not do; the `hmac` crate serves as the reference in the tests.

use sha1::digest::generic_array::GenericArray;
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

#[inline]
fn compress_block(state: &mut [u32; 5], block: &[u8]) {
    sha1::compress(state, std::slice::from_ref(GenericArray::from_slice(block)));
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
        debug_assert!(suffix.len() <= 8);
        let mut state = self.inner;
        let mut blocks = data.chunks_exact(BLOCK);
        for block in &mut blocks {
            compress_block(&mut state, block);
        }
        let rest = blocks.remainder();
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
        for block in tail[..tail_len].chunks_exact(BLOCK) {
            compress_block(&mut state, block);
        }

        let mut outer_block = [0u8; BLOCK];
        for (chunk, word) in outer_block.chunks_exact_mut(4).zip(state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        outer_block[20] = 0x80;
        outer_block[56..].copy_from_slice(&(((BLOCK + 20) as u64) * 8).to_be_bytes());
        let mut state = self.outer;
        compress_block(&mut state, &outer_block);
        let mut out = [0u8; 20];
        for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
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
    }
}
