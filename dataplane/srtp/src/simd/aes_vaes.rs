//! AES-CTR on 256-bit registers (VAES): two counter blocks per register, so a packet's rounds
//! issue in half the instructions of `aes_ni`'s (on a Zen 4 a 256-bit `vaesenc` costs what a
//! 128-bit one does: 1.5x the keystream per cycle measured). The counter pair is made in a
//! register (byte-reversed, a 64-bit add per half); a message whose counter would carry out
//! of its low 64 bits (never in SRTP, whose low 16 bits count the blocks) takes `aes_ni`'s
//! scalar-counter path. Every function requires the `aes`, `avx`, `avx2`, `vaes`, `sse2` and
//! `ssse3` CPU features; the caller checks them (`Features::get`).

use std::arch::x86_64::{
    __m128i, __m256i, _mm256_add_epi64, _mm256_aesenc_epi128, _mm256_aesenclast_epi128,
    _mm256_broadcastsi128_si256, _mm256_castsi256_si128, _mm256_extracti128_si256,
    _mm256_loadu_si256, _mm256_set_epi64x, _mm256_set_m128i, _mm256_setzero_si256,
    _mm256_shuffle_epi8, _mm256_storeu_si256, _mm256_xor_si256, _mm_add_epi64, _mm_set_epi64x,
    _mm_set_epi8, _mm_shuffle_epi8,
};

use super::aes_ni::{self, load, store};

/// Counter pairs encrypted together at most: twelve blocks, a G.711 packet's ten in one
/// group.
const PAIRS: usize = 6;

/// The byte reversal of a 128-bit block, as a shuffle mask.
#[inline]
#[target_feature(enable = "sse2")]
fn reversal() -> __m128i {
    _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
}

/// Each 128-bit half of `v` byte-reversed.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn reverse2(v: __m256i) -> __m256i {
    _mm256_shuffle_epi8(v, _mm256_broadcastsi128_si256(reversal()))
}

/// Encrypts the `N` pairs in `v` with the round keys, each round over every pair.
#[inline]
#[target_feature(enable = "aes,avx2,vaes")]
fn encrypt_n<const N: usize>(keys: &[[u8; 16]], rounds: u8, v: &mut [__m256i; N]) {
    let r = usize::from(rounds);
    let k0 = _mm256_broadcastsi128_si256(load(&keys[0]));
    for x in v.iter_mut() {
        *x = _mm256_xor_si256(*x, k0);
    }
    for key in &keys[1..r] {
        let k = _mm256_broadcastsi128_si256(load(key));
        for x in v.iter_mut() {
            *x = _mm256_aesenc_epi128(*x, k);
        }
    }
    let last = _mm256_broadcastsi128_si256(load(&keys[r]));
    for x in v.iter_mut() {
        *x = _mm256_aesenclast_epi128(*x, last);
    }
}

/// Encrypts the first `n <= PAIRS` pairs of `v`.
#[inline]
#[target_feature(enable = "aes,avx2,vaes")]
fn encrypt_pairs(keys: &[[u8; 16]], rounds: u8, v: &mut [__m256i; PAIRS], n: usize) {
    fn group<const N: usize>(v: &mut [__m256i; PAIRS]) -> &mut [__m256i; N] {
        (&mut v[..N]).try_into().expect("N <= PAIRS")
    }
    match n {
        0 => {}
        1 => encrypt_n(keys, rounds, group::<1>(v)),
        2 => encrypt_n(keys, rounds, group::<2>(v)),
        3 => encrypt_n(keys, rounds, group::<3>(v)),
        4 => encrypt_n(keys, rounds, group::<4>(v)),
        5 => encrypt_n(keys, rounds, group::<5>(v)),
        _ => encrypt_n(keys, rounds, v),
    }
}

/// The counter pair (iv, iv + 1) byte-reversed, or `None` if counting `bytes` of keystream
/// from `iv` would carry out of its low 64 bits.
#[inline]
#[target_feature(enable = "avx2")]
fn counter_pair(iv: &[u8; 16], bytes: usize) -> Option<__m256i> {
    let low = u64::from_be_bytes(iv[8..].try_into().expect("8 bytes"));
    low.checked_add(bytes.div_ceil(16) as u64)?;
    let reversed = _mm_shuffle_epi8(load(iv), reversal());
    Some(_mm256_set_m128i(
        _mm_add_epi64(reversed, _mm_set_epi64x(0, 1)),
        reversed,
    ))
}

/// XORs the keystream pairs `$v` into `$chunk` (up to 32 bytes per pair; the last pair may
/// cover less). A macro so it inlines into its callers (`#[inline(always)]` is not allowed on
/// `#[target_feature]` functions, and LLVM left the function out of line).
macro_rules! xor_pairs {
    ($v:expr, $chunk:expr) => {
        for (x, d) in $v.iter().zip($chunk.chunks_mut(32)) {
            if let Ok(d32) = <&mut [u8; 32]>::try_from(&mut *d) {
                // SAFETY: `d32` is 32 readable and writable bytes; the load and store are
                // unaligned.
                unsafe {
                    let input = _mm256_loadu_si256(d32.as_ptr().cast());
                    _mm256_storeu_si256(d32.as_mut_ptr().cast(), _mm256_xor_si256(input, *x));
                }
            } else {
                let halves = [
                    _mm256_castsi256_si128(*x),
                    _mm256_extracti128_si256::<1>(*x),
                ];
                for (h, d) in halves.into_iter().zip(d.chunks_mut(16)) {
                    let mut ks = [0u8; 16];
                    store(h, &mut ks);
                    for (a, b) in d.iter_mut().zip(ks) {
                        *a ^= b;
                    }
                }
            }
        }
    };
}

/// XORs `data` with the CTR keystream from counter block `iv` (big-endian, 128 bits,
/// wrapping), as `aes_ni::xor_keystream` does.
///
/// # Safety
/// The CPU must have the features this module names; `rounds` is 10 or 14 with the keys
/// expanded for it.
#[target_feature(enable = "aes,avx,avx2,vaes,sse2,ssse3")]
pub(super) unsafe fn xor_keystream(keys: &[[u8; 16]], rounds: u8, iv: &[u8; 16], data: &mut [u8]) {
    let Some(mut pair) = counter_pair(iv, data.len()) else {
        // SAFETY: the features `aes_ni::xor_keystream` needs are a subset of this one's.
        return unsafe { aes_ni::xor_keystream(keys, rounds, iv, data) };
    };
    let two = _mm256_set_epi64x(0, 2, 0, 2);
    for chunk in data.chunks_mut(32 * PAIRS) {
        let n = chunk.len().div_ceil(32);
        let mut v = [_mm256_setzero_si256(); PAIRS];
        for x in v[..n].iter_mut() {
            *x = reverse2(pair);
            pair = _mm256_add_epi64(pair, two);
        }
        encrypt_pairs(keys, rounds, &mut v, n);
        xor_pairs!(&v[..n], chunk);
    }
}

/// [`xor_keystream`] for each job: `jobs[i].1` XORed with the keystream from counter block
/// `jobs[i].0`.
///
/// # Safety
/// As [`xor_keystream`].
#[target_feature(enable = "aes,avx,avx2,vaes,sse2,ssse3")]
pub(super) unsafe fn xor_keystream_many(
    keys: &[[u8; 16]],
    rounds: u8,
    jobs: &mut [([u8; 16], &mut [u8])],
) {
    for (iv, data) in jobs.iter_mut() {
        // SAFETY: this function's contract is `xor_keystream`'s.
        unsafe { xor_keystream(keys, rounds, iv, data) };
    }
}

/// XORs `data` with two CTR keystreams at once, `a`'s from `iv_a` and `b`'s from `iv_b`
/// (both with `rounds` rounds), as `aes_ni::xor_two_keystreams` does: six pairs of each in
/// flight, each round key loaded once per round.
///
/// # Safety
/// As [`xor_keystream`], for both key sets.
#[target_feature(enable = "aes,avx,avx2,vaes,sse2,ssse3")]
pub(super) unsafe fn xor_two_keystreams(
    a: &[[u8; 16]],
    iv_a: &[u8; 16],
    b: &[[u8; 16]],
    iv_b: &[u8; 16],
    rounds: u8,
    data: &mut [u8],
) {
    let (Some(mut pair_a), Some(mut pair_b)) = (
        counter_pair(iv_a, data.len()),
        counter_pair(iv_b, data.len()),
    ) else {
        // SAFETY: the features `aes_ni::xor_two_keystreams` needs are a subset of this one's.
        return unsafe { aes_ni::xor_two_keystreams(a, iv_a, b, iv_b, rounds, data) };
    };
    let two = _mm256_set_epi64x(0, 2, 0, 2);
    for chunk in data.chunks_mut(32 * PAIRS) {
        let n = chunk.len().div_ceil(32);
        let (mut va, mut vb) = (
            [_mm256_setzero_si256(); PAIRS],
            [_mm256_setzero_si256(); PAIRS],
        );
        for (x, y) in va.iter_mut().zip(vb.iter_mut()).take(n) {
            *x = reverse2(pair_a);
            *y = reverse2(pair_b);
            pair_a = _mm256_add_epi64(pair_a, two);
            pair_b = _mm256_add_epi64(pair_b, two);
        }
        match n {
            1 => two_n::<1>(a, b, rounds, &mut va, &vb),
            2 => two_n::<2>(a, b, rounds, &mut va, &vb),
            3 => two_n::<3>(a, b, rounds, &mut va, &vb),
            4 => two_n::<4>(a, b, rounds, &mut va, &vb),
            5 => two_n::<5>(a, b, rounds, &mut va, &vb),
            _ => two_n::<6>(a, b, rounds, &mut va, &vb),
        }
        xor_pairs!(&va[..n], chunk);
    }
}

/// The first `N` pairs of `va` encrypted with `a` and XORed with those of `vb` encrypted
/// with `b`, the two keys' rounds interleaved.
#[inline]
#[target_feature(enable = "aes,avx2,vaes")]
fn two_n<const N: usize>(
    a: &[[u8; 16]],
    b: &[[u8; 16]],
    rounds: u8,
    va: &mut [__m256i; PAIRS],
    vb: &[__m256i; PAIRS],
) {
    let r = usize::from(rounds);
    let mut x: [__m256i; N] = va[..N].try_into().expect("N <= PAIRS");
    let mut y: [__m256i; N] = vb[..N].try_into().expect("N <= PAIRS");
    let (k0a, k0b) = (
        _mm256_broadcastsi128_si256(load(&a[0])),
        _mm256_broadcastsi128_si256(load(&b[0])),
    );
    for (x, y) in x.iter_mut().zip(y.iter_mut()) {
        *x = _mm256_xor_si256(*x, k0a);
        *y = _mm256_xor_si256(*y, k0b);
    }
    for (ka, kb) in a[1..r].iter().zip(&b[1..r]) {
        let (ka, kb) = (
            _mm256_broadcastsi128_si256(load(ka)),
            _mm256_broadcastsi128_si256(load(kb)),
        );
        for (x, y) in x.iter_mut().zip(y.iter_mut()) {
            *x = _mm256_aesenc_epi128(*x, ka);
            *y = _mm256_aesenc_epi128(*y, kb);
        }
    }
    let (la, lb) = (
        _mm256_broadcastsi128_si256(load(&a[r])),
        _mm256_broadcastsi128_si256(load(&b[r])),
    );
    for ((out, x), y) in va.iter_mut().zip(x).zip(y) {
        *out = _mm256_xor_si256(
            _mm256_aesenclast_epi128(x, la),
            _mm256_aesenclast_epi128(y, lb),
        );
    }
}
