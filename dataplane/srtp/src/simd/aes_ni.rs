//! AES with AES-NI (FIPS 197; the key expansion as in Intel's AES-NI white paper, section
//! 5.2): round keys expanded once, then CTR keystream with up to twelve blocks in flight so the
//! `aesenc` latency of one block hides behind the others. Every function here requires the
//! `aes` and `sse2` CPU features; the caller checks them (`Features::get`).

use std::arch::x86_64::{
    __m128i, _mm_add_epi64, _mm_aesenc_si128, _mm_aesenclast_si128, _mm_aeskeygenassist_si128,
    _mm_loadu_si128, _mm_set_epi64x, _mm_set_epi8, _mm_shuffle_epi32, _mm_shuffle_epi8,
    _mm_slli_si128, _mm_storeu_si128, _mm_xor_si128,
};

use aes::Block;

/// Blocks encrypted together at most: a G.711 packet's 10 in one group, their rounds
/// interleaved (12 blocks and a round key fit the 16 SSE registers).
pub(super) const LANES: usize = 12;

#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn load(bytes: &[u8; 16]) -> __m128i {
    // SAFETY: `bytes` is 16 readable bytes; the load is unaligned.
    unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn store(v: __m128i, bytes: &mut [u8; 16]) {
    // SAFETY: `bytes` is 16 writable bytes; the store is unaligned.
    unsafe { _mm_storeu_si128(bytes.as_mut_ptr().cast(), v) }
}

/// `prev` with each 32-bit word XORed with all the words below it, then with `assist`'s word
/// chosen by the shuffle (the key schedule's running XOR).
#[inline]
#[target_feature(enable = "sse2")]
fn mix(prev: __m128i, assist: __m128i) -> __m128i {
    let mut k = prev;
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    _mm_xor_si128(k, assist)
}

/// Expands an AES-128 key into `out[0..11]`.
///
/// # Safety
/// The CPU must have AES-NI and SSE2.
#[target_feature(enable = "aes,sse2")]
pub(super) unsafe fn expand128(key: &[u8; 16], out: &mut [[u8; 16]]) {
    macro_rules! next {
        ($k:expr, $rcon:literal) => {
            mix(
                $k,
                _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<$rcon>($k)),
            )
        };
    }
    let k0 = load(key);
    let k1 = next!(k0, 0x01);
    let k2 = next!(k1, 0x02);
    let k3 = next!(k2, 0x04);
    let k4 = next!(k3, 0x08);
    let k5 = next!(k4, 0x10);
    let k6 = next!(k5, 0x20);
    let k7 = next!(k6, 0x40);
    let k8 = next!(k7, 0x80);
    let k9 = next!(k8, 0x1b);
    let k10 = next!(k9, 0x36);
    for (o, k) in out
        .iter_mut()
        .zip([k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10])
    {
        store(k, o);
    }
}

/// Expands an AES-256 key into `out[0..15]`.
///
/// # Safety
/// The CPU must have AES-NI and SSE2.
#[target_feature(enable = "aes,sse2")]
pub(super) unsafe fn expand256(key: &[u8; 32], out: &mut [[u8; 16]; 15]) {
    // Even round keys take the rotated, substituted last word with the round constant
    // (shuffle 0xff); odd ones the substituted word without rotation (shuffle 0xaa).
    macro_rules! even {
        ($prev2:expr, $prev1:expr, $rcon:literal) => {
            mix(
                $prev2,
                _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<$rcon>($prev1)),
            )
        };
    }
    macro_rules! odd {
        ($prev2:expr, $prev1:expr) => {
            mix(
                $prev2,
                _mm_shuffle_epi32::<0xaa>(_mm_aeskeygenassist_si128::<0x00>($prev1)),
            )
        };
    }
    let (lo, hi) = key.split_at(16);
    let k0 = load(lo.try_into().expect("16 bytes"));
    let k1 = load(hi.try_into().expect("16 bytes"));
    let k2 = even!(k0, k1, 0x01);
    let k3 = odd!(k1, k2);
    let k4 = even!(k2, k3, 0x02);
    let k5 = odd!(k3, k4);
    let k6 = even!(k4, k5, 0x04);
    let k7 = odd!(k5, k6);
    let k8 = even!(k6, k7, 0x08);
    let k9 = odd!(k7, k8);
    let k10 = even!(k8, k9, 0x10);
    let k11 = odd!(k9, k10);
    let k12 = even!(k10, k11, 0x20);
    let k13 = odd!(k11, k12);
    let k14 = even!(k12, k13, 0x40);
    let all = [
        k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, k12, k13, k14,
    ];
    for (o, k) in out.iter_mut().zip(all) {
        store(k, o);
    }
}

/// Encrypts the `N` blocks in `v` with the round keys, each round over every block before
/// the next (a constant `N`, so the blocks stay in registers).
#[inline]
#[target_feature(enable = "aes,sse2")]
fn encrypt_n<const N: usize>(keys: &[[u8; 16]], rounds: u8, v: &mut [__m128i; N]) {
    let r = usize::from(rounds);
    let k0 = load(&keys[0]);
    for x in v.iter_mut() {
        *x = _mm_xor_si128(*x, k0);
    }
    for key in &keys[1..r] {
        let k = load(key);
        for x in v.iter_mut() {
            *x = _mm_aesenc_si128(*x, k);
        }
    }
    let last = load(&keys[r]);
    for x in v.iter_mut() {
        *x = _mm_aesenclast_si128(*x, last);
    }
}

/// Encrypts the first `n <= LANES` blocks of `v` (in a group of 1, 2, 4, 8 or 12).
#[inline]
#[target_feature(enable = "aes,sse2")]
pub(super) fn encrypt_lanes(keys: &[[u8; 16]], rounds: u8, v: &mut [__m128i; LANES], n: usize) {
    fn group<const N: usize>(v: &mut [__m128i; LANES]) -> &mut [__m128i; N] {
        (&mut v[..N]).try_into().expect("N <= LANES")
    }
    match n {
        0 => {}
        1 => encrypt_n(keys, rounds, group::<1>(v)),
        2 => encrypt_n(keys, rounds, group::<2>(v)),
        3 | 4 => encrypt_n(keys, rounds, group::<4>(v)),
        5..=8 => encrypt_n(keys, rounds, group::<8>(v)),
        _ => encrypt_n(keys, rounds, v),
    }
}

/// Encrypts each block in place.
///
/// # Safety
/// The CPU must have AES-NI and SSE2; `rounds` is 10 or 14 with the keys expanded for it.
#[target_feature(enable = "aes,sse2")]
pub(super) unsafe fn encrypt_blocks(keys: &[[u8; 16]], rounds: u8, blocks: &mut [Block]) {
    let zero = load(&[0; 16]);
    for chunk in blocks.chunks_mut(LANES) {
        let mut v = [zero; LANES];
        for (x, b) in v.iter_mut().zip(chunk.iter()) {
            *x = load(b.as_slice().try_into().expect("16 bytes"));
        }
        encrypt_lanes(keys, rounds, &mut v, chunk.len());
        for (x, b) in v.iter().zip(chunk.iter_mut()) {
            store(*x, b.as_mut_slice().try_into().expect("16 bytes"));
        }
    }
}

/// XORs `data` with the CTR keystream from counter block `iv` (big-endian, 128 bits,
/// wrapping).
///
/// # Safety
/// The CPU must have AES-NI and SSE2; `rounds` is 10 or 14 with the keys expanded for it.
#[target_feature(enable = "aes,sse2")]
pub(super) unsafe fn xor_keystream(keys: &[[u8; 16]], rounds: u8, iv: &[u8; 16], data: &mut [u8]) {
    let mut counter = u128::from_be_bytes(*iv);
    let zero = load(&[0; 16]);
    for chunk in data.chunks_mut(16 * LANES) {
        let n = chunk.len().div_ceil(16);
        let mut v = [zero; LANES];
        for x in v[..n].iter_mut() {
            *x = load(&counter.to_be_bytes());
            counter = counter.wrapping_add(1);
        }
        encrypt_lanes(keys, rounds, &mut v, n);
        for (x, d) in v.iter().zip(chunk.chunks_mut(16)) {
            if let Ok(d16) = <&mut [u8; 16]>::try_from(&mut *d) {
                store(_mm_xor_si128(*x, load(d16)), d16);
            } else {
                let mut ks = [0u8; 16];
                store(*x, &mut ks);
                for (a, b) in d.iter_mut().zip(ks) {
                    *a ^= b;
                }
            }
        }
    }
}

/// [`xor_keystream`] for several messages at once: `jobs[i].1` is XORed with the keystream
/// from counter block `jobs[i].0`. The messages' blocks go through the AES rounds together,
/// twelve at a time across message boundaries, each XORed into its message straight from the
/// register (no keystream array in between).
///
/// # Safety
/// The CPU must have AES-NI, SSE2 and SSSE3; `rounds` is 10 or 14 with the keys expanded for
/// it.
#[target_feature(enable = "aes,sse2,ssse3")]
pub(super) unsafe fn xor_keystream_many(
    keys: &[[u8; 16]],
    rounds: u8,
    jobs: &mut [([u8; 16], &mut [u8])],
) {
    let zero = load(&[0; 16]);
    let mut v = [zero; LANES];
    // Where each lane's keystream goes: (job, byte offset).
    let mut dest = [(0usize, 0usize); LANES];
    let mut n = 0;
    let flush = |v: &mut [__m128i; LANES],
                 dest: &[(usize, usize); LANES],
                 n: usize,
                 jobs: &mut [([u8; 16], &mut [u8])]| {
        encrypt_lanes(keys, rounds, v, n);
        for (x, &(j, off)) in v.iter().zip(&dest[..n]) {
            let data = &mut jobs[j].1;
            let end = (off + 16).min(data.len());
            let d = &mut data[off..end];
            if let Ok(d16) = <&mut [u8; 16]>::try_from(&mut *d) {
                store(_mm_xor_si128(*x, load(d16)), d16);
            } else {
                let mut ks = [0u8; 16];
                store(*x, &mut ks);
                for (a, b) in d.iter_mut().zip(ks) {
                    *a ^= b;
                }
            }
        }
    };
    // Counter blocks made in a register: the counter kept byte-reversed (as two little-endian
    // 64-bit halves), the low half incremented, each block byte-swapped back. A message whose
    // counter would carry out of the low 64 bits (never in SRTP, whose low 16 bits count the
    // blocks) takes the scalar way.
    let swap = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let one = _mm_set_epi64x(0, 1);
    for j in 0..jobs.len() {
        let blocks = jobs[j].1.len().div_ceil(16) as u64;
        let start = u128::from_be_bytes(jobs[j].0);
        let no_carry = (start as u64).checked_add(blocks).is_some();
        let mut counter = start;
        let mut reversed = _mm_shuffle_epi8(load(&jobs[j].0), swap);
        for off in (0..jobs[j].1.len()).step_by(16) {
            v[n] = if no_carry {
                let block = _mm_shuffle_epi8(reversed, swap);
                reversed = _mm_add_epi64(reversed, one);
                block
            } else {
                load(&counter.to_be_bytes())
            };
            dest[n] = (j, off);
            counter = counter.wrapping_add(1);
            n += 1;
            if n == LANES {
                flush(&mut v, &dest, n, jobs);
                n = 0;
            }
        }
    }
    if n > 0 {
        flush(&mut v, &dest, n, jobs);
    }
}

/// XORs `data` with two CTR keystreams at once, `a`'s from counter block `iv_a` and `b`'s
/// from `iv_b` (both big-endian, 128 bits, wrapping), with the same number of rounds: six
/// blocks of each in flight, each round key loaded once per round for its six.
///
/// # Safety
/// The CPU must have AES-NI and SSE2; `rounds` is 10 or 14 with both key sets expanded for it.
#[target_feature(enable = "aes,sse2")]
pub(super) unsafe fn xor_two_keystreams(
    a: &[[u8; 16]],
    iv_a: &[u8; 16],
    b: &[[u8; 16]],
    iv_b: &[u8; 16],
    rounds: u8,
    data: &mut [u8],
) {
    const HALF: usize = LANES / 2;
    let r = usize::from(rounds);
    let (mut ca, mut cb) = (u128::from_be_bytes(*iv_a), u128::from_be_bytes(*iv_b));
    let zero = load(&[0; 16]);
    for chunk in data.chunks_mut(16 * HALF) {
        let n = chunk.len().div_ceil(16);
        let (mut va, mut vb) = ([zero; HALF], [zero; HALF]);
        for (x, y) in va.iter_mut().zip(vb.iter_mut()).take(n) {
            *x = load(&ca.to_be_bytes());
            *y = load(&cb.to_be_bytes());
            ca = ca.wrapping_add(1);
            cb = cb.wrapping_add(1);
        }
        let (k0a, k0b) = (load(&a[0]), load(&b[0]));
        for (x, y) in va.iter_mut().zip(vb.iter_mut()) {
            *x = _mm_xor_si128(*x, k0a);
            *y = _mm_xor_si128(*y, k0b);
        }
        for (ka, kb) in a[1..r].iter().zip(&b[1..r]) {
            let (ka, kb) = (load(ka), load(kb));
            for (x, y) in va.iter_mut().zip(vb.iter_mut()) {
                *x = _mm_aesenc_si128(*x, ka);
                *y = _mm_aesenc_si128(*y, kb);
            }
        }
        let (la, lb) = (load(&a[r]), load(&b[r]));
        for ((x, y), d) in va.iter().zip(&vb).zip(chunk.chunks_mut(16)) {
            let ks = _mm_xor_si128(_mm_aesenclast_si128(*x, la), _mm_aesenclast_si128(*y, lb));
            if let Ok(d16) = <&mut [u8; 16]>::try_from(&mut *d) {
                store(_mm_xor_si128(ks, load(d16)), d16);
            } else {
                let mut k = [0u8; 16];
                store(ks, &mut k);
                for (p, q) in d.iter_mut().zip(k) {
                    *p ^= q;
                }
            }
        }
    }
}
