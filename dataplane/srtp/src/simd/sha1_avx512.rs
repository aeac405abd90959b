//! SHA-1 (FIPS 180-4 section 6.1.2) of 16 independent messages at once with AVX-512: lane
//! `l` of every register holds message `l`'s value. The 80 rounds are the scalar ones, done
//! on 16 lanes: `f` as one `vpternlogd` (Ch 0xCA, Parity 0x96, Maj 0xE8), the rotations as
//! `vprold`. Each lane's block is loaded where it lies as one 64-byte row and the 16 rows
//! transposed in registers (64 shuffles per 16 blocks; 8-lane gathers were measured slower
//! on Zen 4), so no block is copied; the states stay in registers over a message's blocks
//! and are written back only for lanes that were active.

use std::arch::x86_64::{
    __m512i, _mm512_add_epi32, _mm512_loadu_si512, _mm512_mask_add_epi32, _mm512_rol_epi32,
    _mm512_set1_epi32, _mm512_set_epi64, _mm512_shuffle_epi8, _mm512_shuffle_i32x4,
    _mm512_storeu_si512, _mm512_ternarylogic_epi32, _mm512_unpackhi_epi32, _mm512_unpackhi_epi64,
    _mm512_unpacklo_epi32, _mm512_unpacklo_epi64, _mm512_xor_si512,
};

use super::LANES;

/// Transposes a 16 x 16 matrix of 32-bit words held in 16 registers: row `l`'s word `j`
/// becomes register `j`'s lane `l`. Three steps of shuffles: words paired within 128-bit
/// lanes, then pairs of pairs, then the 128-bit lanes of four registers exchanged.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn transpose16(r: [__m512i; 16]) -> [__m512i; 16] {
    // t[2i], t[2i+1]: rows 2i and 2i+1 interleaved by 32-bit words.
    let t: [__m512i; 16] = std::array::from_fn(|k| {
        let (a, b) = (r[k & !1], r[k | 1]);
        if k % 2 == 0 {
            _mm512_unpacklo_epi32(a, b)
        } else {
            _mm512_unpackhi_epi32(a, b)
        }
    });
    // u[4g + j]: in 128-bit lane q, word 4q + j of rows 4g..4g+3.
    let u: [__m512i; 16] = std::array::from_fn(|k| {
        let (g, j) = (k / 4, k % 4);
        let (a, b) = (t[4 * g + (j / 2)], t[4 * g + 2 + (j / 2)]);
        if j % 2 == 0 {
            _mm512_unpacklo_epi64(a, b)
        } else {
            _mm512_unpackhi_epi64(a, b)
        }
    });
    // Word 4q + j of all rows: 128-bit lane q of u[j], u[4 + j], u[8 + j], u[12 + j].
    let mut w = r;
    for j in 0..4 {
        let (a, b, c, d) = (u[j], u[4 + j], u[8 + j], u[12 + j]);
        let ab_lo = _mm512_shuffle_i32x4::<0x44>(a, b);
        let ab_hi = _mm512_shuffle_i32x4::<0xEE>(a, b);
        let cd_lo = _mm512_shuffle_i32x4::<0x44>(c, d);
        let cd_hi = _mm512_shuffle_i32x4::<0xEE>(c, d);
        w[j] = _mm512_shuffle_i32x4::<0x88>(ab_lo, cd_lo);
        w[4 + j] = _mm512_shuffle_i32x4::<0xDD>(ab_lo, cd_lo);
        w[8 + j] = _mm512_shuffle_i32x4::<0x88>(ab_hi, cd_hi);
        w[12 + j] = _mm512_shuffle_i32x4::<0xDD>(ab_hi, cd_hi);
    }
    w
}

/// 16 lanes' 5-word states as 5 registers of 16 lanes (transposed through a buffer).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn load_states(states: &[[u32; 5]; LANES]) -> [__m512i; 5] {
    let mut words = [[0u32; LANES]; 5];
    for (l, st) in states.iter().enumerate() {
        for (i, w) in st.iter().enumerate() {
            words[i][l] = *w;
        }
    }
    // SAFETY: `words` rows are 64 bytes each; unaligned loads.
    std::array::from_fn(|i| unsafe { _mm512_loadu_si512(words[i].as_ptr().cast()) })
}

/// Writes the lanes set in `lanes` of `s` back to `states`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn store_states(s: &[__m512i; 5], states: &mut [[u32; 5]; LANES], lanes: u16) {
    let mut words = [[0u32; LANES]; 5];
    for (i, v) in s.iter().enumerate() {
        // SAFETY: `words` rows are 64 writable bytes; unaligned stores.
        unsafe { _mm512_storeu_si512(words[i].as_mut_ptr().cast(), *v) };
    }
    for (l, st) in states.iter_mut().enumerate() {
        if lanes & (1 << l) != 0 {
            for (i, w) in st.iter_mut().enumerate() {
                *w = words[i][l];
            }
        }
    }
}

/// Compresses the block sets into `s`; returns the lanes any set touched.
///
/// # Safety
/// As [`compress16_at`]'s: every `blocks[k][l]` whose bit is set in `masks[k]` points to 64
/// readable bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn absorb(s: &mut [__m512i; 5], blocks: &[[*const u8; LANES]], masks: &[u16]) -> u16 {
    let mut touched = 0u16;
    for (set, &mask) in blocks.iter().zip(masks) {
        if mask == 0 {
            continue;
        }
        touched |= mask;
        // Each lane's block as one 64-byte row (an inactive lane reads the first active
        // lane's; its result is discarded by the mask), then the 16 x 16 words transposed so
        // register j holds word j of every lane.
        let first = set[mask.trailing_zeros() as usize];
        let rows: [__m512i; 16] = std::array::from_fn(|l| {
            let at = if mask & (1 << l) != 0 { set[l] } else { first };
            // SAFETY: `at` points to 64 readable bytes (the caller's contract); unaligned.
            unsafe { _mm512_loadu_si512(at.cast()) }
        });
        let w = transpose16(rows);
        let r = rounds(*s, w);
        for (v, d) in s.iter_mut().zip(r) {
            *v = _mm512_mask_add_epi32(*v, mask, *v, d);
        }
    }
    touched
}

/// For each set `k`, compresses the 64 bytes at `blocks[k][l]` into `states[l]` for each lane
/// `l` set in `masks[k]` (a lane's block pointer is not read when its bit is clear).
///
/// # Safety
///
/// The CPU must have the `avx512f` and `avx512bw` features, and every `blocks[k][l]` whose
/// bit is set in `masks[k]` must point to 64 readable bytes.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn compress16_at(
    states: &mut [[u32; 5]; LANES],
    blocks: &[[*const u8; LANES]],
    masks: &[u16],
) {
    let mut s = load_states(states);
    // SAFETY: the caller's contract, passed on.
    let touched = unsafe { absorb(&mut s, blocks, masks) };
    store_states(&s, states, touched);
}

/// HMAC-SHA1's two hashes for the lanes set in `lanes`: the inner hash from `inner` over the
/// block sets (the message's padded blocks), then the outer hash from `outer` over the inner
/// digest, its padding made in registers. `outer` receives the final states (the MACs).
///
/// # Safety
///
/// As [`compress16_at`].
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn hmac16_at(
    inner: &[[u32; 5]; LANES],
    outer: &mut [[u32; 5]; LANES],
    blocks: &[[*const u8; LANES]],
    masks: &[u16],
    lanes: u16,
) {
    let mut s = load_states(inner);
    // SAFETY: the caller's contract, passed on.
    unsafe { absorb(&mut s, blocks, masks) };
    // The outer block: the 20-byte inner digest, 0x80, zeros, and the length of key block
    // plus digest in bits (64 + 20 bytes = 672 bits), as SHA-1's big-endian words.
    let zero = _mm512_set1_epi32(0);
    let mut w = [zero; 16];
    w[..5].copy_from_slice(&s);
    w[5] = _mm512_set1_epi32(0x8000_0000u32 as i32);
    w[15] = _mm512_set1_epi32(672);
    let mut o = load_states(outer);
    let r = rounds_words(o, w);
    for (v, d) in o.iter_mut().zip(r) {
        *v = _mm512_add_epi32(*v, d);
    }
    store_states(&o, outer, lanes);
}

/// The 80 rounds of one block on 16 lanes: from state `s` and the block's 16 words `w` (as
/// read from memory, big-endian), the values to add to the state.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn rounds(s: [__m512i; 5], mut w: [__m512i; 16]) -> [__m512i; 5] {
    // Message words: big-endian in the blocks, so each 32-bit lane is byte-swapped.
    let swap = _mm512_set_epi64(
        0x0c0d_0e0f_0809_0a0b,
        0x0405_0607_0001_0203,
        0x0c0d_0e0f_0809_0a0b,
        0x0405_0607_0001_0203,
        0x0c0d_0e0f_0809_0a0b,
        0x0405_0607_0001_0203,
        0x0c0d_0e0f_0809_0a0b,
        0x0405_0607_0001_0203,
    );
    for v in &mut w {
        *v = _mm512_shuffle_epi8(*v, swap);
    }
    rounds_words(s, w)
}

/// The 80 rounds of one block on 16 lanes whose 16 message words `w` are already numbers.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
// The schedule's last words are written and never read (rounds 77-79).
#[allow(unused_assignments)]
fn rounds_words(s: [__m512i; 5], mut w: [__m512i; 16]) -> [__m512i; 5] {
    {
        let [mut a, mut b, mut c, mut d, mut e] = s;
        // The 80 rounds, unrolled (a macro per round, with constant word indices), so that the
        // 16 message words and the state stay in registers.
        macro_rules! round {
            ($t:literal, $f:literal, $k:expr) => {{
                let wt = if $t < 16 {
                    w[$t & 15]
                } else {
                    let x = _mm512_ternarylogic_epi32::<0x96>(
                        w[($t + 13) & 15],
                        w[($t + 8) & 15],
                        w[($t + 2) & 15],
                    );
                    let x = _mm512_rol_epi32::<1>(_mm512_xor_si512(x, w[$t & 15]));
                    w[$t & 15] = x;
                    x
                };
                let f = _mm512_ternarylogic_epi32::<$f>(b, c, d);
                let temp = _mm512_add_epi32(
                    _mm512_add_epi32(_mm512_rol_epi32::<5>(a), f),
                    _mm512_add_epi32(_mm512_add_epi32(e, $k), wt),
                );
                e = d;
                d = c;
                c = _mm512_rol_epi32::<30>(b);
                b = a;
                a = temp;
            }};
        }
        let k1 = _mm512_set1_epi32(0x5A82_7999u32 as i32);
        let k2 = _mm512_set1_epi32(0x6ED9_EBA1u32 as i32);
        let k3 = _mm512_set1_epi32(0x8F1B_BCDCu32 as i32);
        let k4 = _mm512_set1_epi32(0xCA62_C1D6u32 as i32);
        round!(0, 0xCA, k1);
        round!(1, 0xCA, k1);
        round!(2, 0xCA, k1);
        round!(3, 0xCA, k1);
        round!(4, 0xCA, k1);
        round!(5, 0xCA, k1);
        round!(6, 0xCA, k1);
        round!(7, 0xCA, k1);
        round!(8, 0xCA, k1);
        round!(9, 0xCA, k1);
        round!(10, 0xCA, k1);
        round!(11, 0xCA, k1);
        round!(12, 0xCA, k1);
        round!(13, 0xCA, k1);
        round!(14, 0xCA, k1);
        round!(15, 0xCA, k1);
        round!(16, 0xCA, k1);
        round!(17, 0xCA, k1);
        round!(18, 0xCA, k1);
        round!(19, 0xCA, k1);
        round!(20, 0x96, k2);
        round!(21, 0x96, k2);
        round!(22, 0x96, k2);
        round!(23, 0x96, k2);
        round!(24, 0x96, k2);
        round!(25, 0x96, k2);
        round!(26, 0x96, k2);
        round!(27, 0x96, k2);
        round!(28, 0x96, k2);
        round!(29, 0x96, k2);
        round!(30, 0x96, k2);
        round!(31, 0x96, k2);
        round!(32, 0x96, k2);
        round!(33, 0x96, k2);
        round!(34, 0x96, k2);
        round!(35, 0x96, k2);
        round!(36, 0x96, k2);
        round!(37, 0x96, k2);
        round!(38, 0x96, k2);
        round!(39, 0x96, k2);
        round!(40, 0xE8, k3);
        round!(41, 0xE8, k3);
        round!(42, 0xE8, k3);
        round!(43, 0xE8, k3);
        round!(44, 0xE8, k3);
        round!(45, 0xE8, k3);
        round!(46, 0xE8, k3);
        round!(47, 0xE8, k3);
        round!(48, 0xE8, k3);
        round!(49, 0xE8, k3);
        round!(50, 0xE8, k3);
        round!(51, 0xE8, k3);
        round!(52, 0xE8, k3);
        round!(53, 0xE8, k3);
        round!(54, 0xE8, k3);
        round!(55, 0xE8, k3);
        round!(56, 0xE8, k3);
        round!(57, 0xE8, k3);
        round!(58, 0xE8, k3);
        round!(59, 0xE8, k3);
        round!(60, 0x96, k4);
        round!(61, 0x96, k4);
        round!(62, 0x96, k4);
        round!(63, 0x96, k4);
        round!(64, 0x96, k4);
        round!(65, 0x96, k4);
        round!(66, 0x96, k4);
        round!(67, 0x96, k4);
        round!(68, 0x96, k4);
        round!(69, 0x96, k4);
        round!(70, 0x96, k4);
        round!(71, 0x96, k4);
        round!(72, 0x96, k4);
        round!(73, 0x96, k4);
        round!(74, 0x96, k4);
        round!(75, 0x96, k4);
        round!(76, 0x96, k4);
        round!(77, 0x96, k4);
        round!(78, 0x96, k4);
        round!(79, 0x96, k4);

        [a, b, c, d, e]
    }
}
