//! AES-GCM for short packets on 256-bit registers (VAES and VPCLMULQDQ: two blocks per
//! instruction): every audio codec's SRTP packet, whose AAD, text and length block fit one
//! GHASH group of [`POWERS`] blocks. The text's counter blocks go through the AES rounds in
//! pairs with E(K, J0) beside them in a 128-bit register; the ciphertext is hashed a pair at a
//! time against a pair of powers of H, every product independent and summed unreduced, and
//! reduced once (the field arithmetic of `gcm_clmul`, whose narrower path takes longer
//! packets and CPUs without VAES). On a Zen 4 the AES rounds of a pair cost what one block's
//! do on 128-bit registers, and so do the carry-less multiplications.
//!
//! Every function requires the `aes`, `avx`, `avx2`, `vaes`, `pclmulqdq`, `vpclmulqdq`,
//! `sse2` and `ssse3` CPU features; the caller checks them (`Features::get`).

use std::arch::x86_64::{
    __m128i, __m256i, _mm256_add_epi32, _mm256_aesenc_epi128, _mm256_aesenclast_epi128,
    _mm256_broadcastsi128_si256, _mm256_castsi256_si128, _mm256_clmulepi64_epi128,
    _mm256_extracti128_si256, _mm256_loadu_si256, _mm256_set_epi32, _mm256_set_m128i,
    _mm256_setzero_si256, _mm256_shuffle_epi32, _mm256_storeu_si256, _mm256_xor_si256,
    _mm_add_epi32, _mm_aesenc_si128, _mm_aesenclast_si128, _mm_set_epi32, _mm_xor_si128,
};

use super::aes_ni::{load, store};
use super::aes_vaes::reverse2;
use super::gcm_clmul::{block_at, lengths_block, reverse, reversed_j0, Key, Wide, POWERS};

/// Text blocks a packet may have for this path (with its AAD and length block it must also
/// fit one group of [`POWERS`]).
const MAX_TEXT_BLOCKS: usize = 14;
const PAIRS: usize = MAX_TEXT_BLOCKS / 2;

/// Whether a packet with `aad_len` bytes of AAD and `text_len` of text takes this path.
#[inline]
pub(super) fn fits(aad_len: usize, text_len: usize) -> bool {
    let text = text_len.div_ceil(16);
    text <= MAX_TEXT_BLOCKS && aad_len.div_ceil(16) + text < POWERS
}

/// What [`crypt_short`] does with the data.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Encrypt, and hash the ciphertext made.
    Seal,
    /// Hash the ciphertext given, and decrypt.
    Unseal,
    /// Only XOR the keystream (undoes an `Unseal` whose tag did not match).
    KeystreamOnly,
}

/// Karatsuba's three sums (see `gcm_clmul::Wide`) for two products at once, one per half.
#[derive(Clone, Copy)]
struct Wide2 {
    lo: __m256i,
    cross: __m256i,
    hi: __m256i,
}

impl Wide2 {
    #[inline]
    #[target_feature(enable = "avx2")]
    fn zero() -> Wide2 {
        Wide2 {
            lo: _mm256_setzero_si256(),
            cross: _mm256_setzero_si256(),
            hi: _mm256_setzero_si256(),
        }
    }

    /// Adds the carry-less products of `a`'s and `b`'s halves, each with each.
    #[inline]
    #[target_feature(enable = "avx2,vpclmulqdq")]
    fn add_products(&mut self, a: __m256i, b: __m256i) {
        let a_sum = _mm256_xor_si256(a, _mm256_shuffle_epi32::<0x4e>(a));
        let b_sum = _mm256_xor_si256(b, _mm256_shuffle_epi32::<0x4e>(b));
        self.lo = _mm256_xor_si256(self.lo, _mm256_clmulepi64_epi128::<0x00>(a, b));
        self.hi = _mm256_xor_si256(self.hi, _mm256_clmulepi64_epi128::<0x11>(a, b));
        self.cross = _mm256_xor_si256(self.cross, _mm256_clmulepi64_epi128::<0x00>(a_sum, b_sum));
    }

    /// Both halves' sums added into `w` (the sums are linear, so they reduce together).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn fold_into(self, w: &mut Wide) {
        let both =
            |v: __m256i| _mm_xor_si128(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        w.lo = _mm_xor_si128(w.lo, both(self.lo));
        w.hi = _mm_xor_si128(w.hi, both(self.hi));
        w.cross = _mm_xor_si128(w.cross, both(self.cross));
    }
}

/// The AES rounds over the `N` counter pairs in `v` and the block `j0` beside them.
#[inline]
#[target_feature(enable = "aes,avx2,vaes")]
fn rounds<const N: usize>(key: Key<'_>, v: &mut [__m256i], j0: &mut __m128i) {
    let v: &mut [__m256i; N] = v.try_into().expect("N pairs");
    let r = usize::from(key.rounds);
    let k = load(&key.round_keys[0]);
    let kw = _mm256_broadcastsi128_si256(k);
    for x in v.iter_mut() {
        *x = _mm256_xor_si256(*x, kw);
    }
    *j0 = _mm_xor_si128(*j0, k);
    for round_key in &key.round_keys[1..r] {
        let k = load(round_key);
        let kw = _mm256_broadcastsi128_si256(k);
        for x in v.iter_mut() {
            *x = _mm256_aesenc_epi128(*x, kw);
        }
        *j0 = _mm_aesenc_si128(*j0, k);
    }
    let k = load(&key.round_keys[r]);
    let kw = _mm256_broadcastsi128_si256(k);
    for x in v.iter_mut() {
        *x = _mm256_aesenclast_epi128(*x, kw);
    }
    *j0 = _mm_aesenclast_si128(*j0, k);
}

/// GCM over a short packet (see [`fits`]) in place, as `gcm_clmul`'s `crypt` does it for one
/// key: the keystream from `iv || 2` XORed in, and the tag returned (zero for
/// `KeystreamOnly`).
///
/// # Safety
/// The CPU must have the features this module names; the key as [`Key`] says; the packet
/// must [`fits`].
#[target_feature(enable = "aes,avx,avx2,vaes,pclmulqdq,vpclmulqdq,sse2,ssse3")]
pub(super) unsafe fn crypt_short(
    key: Key<'_>,
    iv: &[u8; 12],
    aad: &[u8],
    data: &mut [u8],
    mode: Mode,
) -> [u8; 16] {
    debug_assert!(fits(aad.len(), data.len()));
    let text_len = data.len();
    let (na, nt) = (aad.len().div_ceil(16), text_len.div_ceil(16));
    let n = na + nt + 1;
    let pairs = nt.div_ceil(2);
    // Counter pairs (iv || 2, iv || 3), (iv || 4, iv || 5), ... made byte-reversed (the
    // 32-bit counter in each half's low lane) and reversed back; J0 on its own.
    let j0 = reversed_j0(iv);
    let mut counters = _mm256_set_m128i(
        _mm_add_epi32(j0, _mm_set_epi32(0, 0, 0, 2)),
        _mm_add_epi32(j0, _mm_set_epi32(0, 0, 0, 1)),
    );
    let two = _mm256_set_epi32(0, 0, 0, 2, 0, 0, 0, 2);
    let mut ks = [_mm256_setzero_si256(); PAIRS];
    for k in ks.iter_mut().take(pairs) {
        *k = reverse2(counters);
        counters = _mm256_add_epi32(counters, two);
    }
    let mut mask = reverse(j0);
    match pairs {
        0 => rounds::<0>(key, &mut ks[..0], &mut mask),
        1 => rounds::<1>(key, &mut ks[..1], &mut mask),
        2 => rounds::<2>(key, &mut ks[..2], &mut mask),
        3 => rounds::<3>(key, &mut ks[..3], &mut mask),
        4 => rounds::<4>(key, &mut ks[..4], &mut mask),
        5 => rounds::<5>(key, &mut ks[..5], &mut mask),
        6 => rounds::<6>(key, &mut ks[..6], &mut mask),
        _ => rounds::<7>(key, &mut ks[..7], &mut mask),
    }

    let hashing = mode != Mode::KeystreamOnly;
    // One group: block `p` of the n (AAD, text, lengths) is multiplied by H^(n - p).
    let power = |p: usize| load(&key.powers[n - 1 - p]);
    let power_pair = |p: usize| _mm256_set_m128i(power(p + 1), power(p));
    let mut sum = Wide::zero();
    let mut sum2 = Wide2::zero();
    if hashing {
        for i in 0..na {
            sum.add_product(block_at(aad, i), power(i));
        }
    }
    let whole_pairs = text_len / 32;
    for (k, ks) in ks.iter().enumerate().take(pairs) {
        let p = na + 2 * k;
        if k < whole_pairs {
            let at: &mut [u8; 32] = (&mut data[32 * k..32 * k + 32]).try_into().expect("32");
            // SAFETY: `at` is 32 readable and writable bytes; the load and store are
            // unaligned.
            let input = unsafe { _mm256_loadu_si256(at.as_ptr().cast()) };
            if mode == Mode::Unseal {
                sum2.add_products(reverse2(input), power_pair(p));
            }
            let output = _mm256_xor_si256(input, *ks);
            // SAFETY: as above.
            unsafe { _mm256_storeu_si256(at.as_mut_ptr().cast(), output) };
            if mode == Mode::Seal {
                sum2.add_products(reverse2(output), power_pair(p));
            }
        } else {
            // The last pair: one or two blocks, the last of them perhaps partial, each
            // hashed padded with zeros.
            let halves = [
                _mm256_castsi256_si128(*ks),
                _mm256_extracti128_si256::<1>(*ks),
            ];
            for (j, (d, half)) in data[32 * k..].chunks_mut(16).zip(halves).enumerate() {
                let mut block = [0u8; 16];
                block[..d.len()].copy_from_slice(d);
                if mode == Mode::Unseal {
                    sum.add_product(reverse(load(&block)), power(p + j));
                }
                store(_mm_xor_si128(load(&block), half), &mut block);
                d.copy_from_slice(&block[..d.len()]);
                block[d.len()..].fill(0);
                if mode == Mode::Seal {
                    sum.add_product(reverse(load(&block)), power(p + j));
                }
            }
        }
    }
    let mut tag = [0u8; 16];
    if hashing {
        sum.add_product(lengths_block(aad.len(), text_len), power(n - 1));
        sum2.fold_into(&mut sum);
        store(_mm_xor_si128(reverse(sum.reduce()), mask), &mut tag);
    }
    tag
}
