//! AES-GCM (NIST SP 800-38D) with AES-NI and PCLMULQDQ, for SRTP's AEAD suites (RFC 7714):
//! the AES round keys and the first powers of the hash key H computed once per key, the
//! keystream through `aes_ni`'s interleaved rounds (with the tag's block E(K, J0) in the same
//! group as the first counter blocks), and GHASH folding [`POWERS`] blocks per reduction
//! (`X1*H^8 + X2*H^7 + ... + X8*H`, one reduction for the eight products).
//!
//! The field arithmetic follows the "reflected" method of Gueron and Kounavis, "Intel
//! Carry-Less Multiplication Instruction and its Usage for Computing the GCM Mode" (Intel
//! white paper, 2014), sections 4-5: blocks are byte-reversed into registers, so a register's
//! most significant bit is GCM's coefficient of x^0; the 256-bit carry-less product of two
//! such values is shifted left by one bit and reduced modulo x^128 + x^7 + x^2 + x + 1.
//! Every function requires the `aes`, `pclmulqdq`, `sse2` and `ssse3` CPU features; the
//! caller checks them (`Features::get`).

use std::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_clmulepi64_si128, _mm_or_si128, _mm_set_epi32, _mm_set_epi8,
    _mm_setzero_si128, _mm_shuffle_epi32, _mm_shuffle_epi8, _mm_slli_epi64, _mm_slli_si128,
    _mm_srli_epi64, _mm_srli_si128, _mm_xor_si128,
};

use super::aes_ni::{encrypt_lanes, load, store, LANES};

/// Blocks GHASH folds per reduction, and the powers of H kept per key for it.
pub(super) const POWERS: usize = 16;

/// `v` with its 16 bytes in reverse order (a GCM block to or from the reflected form).
#[inline]
#[target_feature(enable = "sse2,ssse3")]
fn reverse(v: __m128i) -> __m128i {
    _mm_shuffle_epi8(
        v,
        _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
    )
}

/// A sum of 256-bit carry-less products kept as Karatsuba's three parts: `lo` the sum of the
/// low halves' products, `hi` of the high halves', `cross` of `(a0 ^ a1) * (b0 ^ b1)`.
/// Products are added (XORed) as they are; [`Wide::reduce`] folds once.
#[derive(Clone, Copy)]
struct Wide {
    lo: __m128i,
    cross: __m128i,
    hi: __m128i,
}

impl Wide {
    #[inline]
    #[target_feature(enable = "sse2")]
    fn zero() -> Wide {
        Wide {
            lo: _mm_setzero_si128(),
            cross: _mm_setzero_si128(),
            hi: _mm_setzero_si128(),
        }
    }

    /// Adds the carry-less product `a * b` (Karatsuba: three 64x64 multiplications).
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse2")]
    fn add_product(&mut self, a: __m128i, b: __m128i) {
        // Each operand's two halves XORed, in its low lane.
        let a_sum = _mm_xor_si128(a, _mm_shuffle_epi32::<0x4e>(a));
        let b_sum = _mm_xor_si128(b, _mm_shuffle_epi32::<0x4e>(b));
        self.lo = _mm_xor_si128(self.lo, _mm_clmulepi64_si128::<0x00>(a, b));
        self.hi = _mm_xor_si128(self.hi, _mm_clmulepi64_si128::<0x11>(a, b));
        self.cross = _mm_xor_si128(self.cross, _mm_clmulepi64_si128::<0x00>(a_sum, b_sum));
    }

    /// The sum of the products as a field element (reflected form).
    #[inline]
    #[target_feature(enable = "sse2")]
    fn reduce(self) -> __m128i {
        // The middle terms (Karatsuba: cross - lo - hi) into the halves: [x3 : x2] = hi,
        // [x1 : x0] = lo, 64 bits each.
        let mid = _mm_xor_si128(self.cross, _mm_xor_si128(self.lo, self.hi));
        let lo = _mm_xor_si128(self.lo, _mm_slli_si128::<8>(mid));
        let hi = _mm_xor_si128(self.hi, _mm_srli_si128::<8>(mid));
        // The product of two reflected 128-bit values is the reflected 255-bit product:
        // shift the 256 bits left by one (white paper, algorithm 5, step 1).
        let lo_top = _mm_srli_epi64::<63>(lo);
        let hi_top = _mm_srli_epi64::<63>(hi);
        let lo = _mm_or_si128(_mm_slli_epi64::<1>(lo), _mm_slli_si128::<8>(lo_top));
        let hi = _mm_or_si128(
            _mm_or_si128(_mm_slli_epi64::<1>(hi), _mm_slli_si128::<8>(hi_top)),
            _mm_srli_si128::<8>(lo_top),
        );
        // Reduction of the low (high-degree) half into the high half (algorithm 4, steps
        // 1-4): d = x1 ^ (x0 << 63) ^ (x0 << 62) ^ (x0 << 57), then [d : x0] XORed with itself
        // shifted right by 1, 2 and 7 as one 128-bit value, then into [x3 : x2].
        let spill = _mm_xor_si128(
            _mm_xor_si128(_mm_slli_epi64::<63>(lo), _mm_slli_epi64::<62>(lo)),
            _mm_slli_epi64::<57>(lo),
        );
        let dx = _mm_xor_si128(lo, _mm_slli_si128::<8>(spill));
        let high_lane = _mm_srli_si128::<8>(dx);
        // Each shift right of the 128-bit [d : x0]: both lanes shifted, d's low bits carried
        // into the top of x0's lane.
        let s1 = _mm_xor_si128(_mm_srli_epi64::<1>(dx), _mm_slli_epi64::<63>(high_lane));
        let s2 = _mm_xor_si128(_mm_srli_epi64::<2>(dx), _mm_slli_epi64::<62>(high_lane));
        let s7 = _mm_xor_si128(_mm_srli_epi64::<7>(dx), _mm_slli_epi64::<57>(high_lane));
        _mm_xor_si128(
            hi,
            _mm_xor_si128(_mm_xor_si128(dx, s1), _mm_xor_si128(s2, s7)),
        )
    }
}

/// `a * b` in GF(2^128), both and the result in reflected form.
#[inline]
#[target_feature(enable = "pclmulqdq,sse2")]
fn multiply(a: __m128i, b: __m128i) -> __m128i {
    let mut w = Wide::zero();
    w.add_product(a, b);
    w.reduce()
}

/// Computes H = E(K, 0^128) and its powers H^1..H^POWERS (reflected form) into `powers`.
///
/// # Safety
/// The CPU must have AES-NI, PCLMULQDQ, SSE2 and SSSE3; `rounds` is 10 or 14 with the keys
/// expanded for it.
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3")]
pub(super) unsafe fn hash_key_powers(
    keys: &[[u8; 16]],
    rounds: u8,
    powers: &mut [[u8; 16]; POWERS],
) {
    let mut v = [_mm_setzero_si128(); LANES];
    encrypt_lanes(keys, rounds, &mut v, 1);
    let h = reverse(v[0]);
    let mut p = h;
    for out in powers.iter_mut() {
        store(p, out);
        p = multiply(p, h);
    }
}

/// Block `i` of `bytes` (16-byte blocks, the last one padded with zeros), in reflected form.
#[inline]
#[target_feature(enable = "sse2,ssse3")]
fn block_at(bytes: &[u8], i: usize) -> __m128i {
    match bytes.get(16 * i..16 * i + 16) {
        Some(b) => reverse(load(b.try_into().expect("16 bytes"))),
        None => {
            let tail = &bytes[16 * i..];
            let mut last = [0u8; 16];
            last[..tail.len()].copy_from_slice(tail);
            reverse(load(&last))
        }
    }
}

/// GHASH (SP 800-38D section 6.4) over a known number of blocks, fed one at a time in
/// reflected form. The blocks are folded in groups of up to [`POWERS`] (the first group the
/// remainder), one reduction per group: for a group `X1..Xg`,
/// Y = (Y ^ X1) * H^g ^ X2 * H^(g-1) ^ ... ^ Xg * H. The products of a group do not depend on
/// each other, so they overlap with whatever else is in flight (the AES rounds).
struct Hasher<'a> {
    powers: &'a [[u8; 16]; POWERS],
    sum: Wide,
    y: __m128i,
    /// The next block's place in its group, and the group's length.
    at: usize,
    group: usize,
}

impl<'a> Hasher<'a> {
    #[inline]
    #[target_feature(enable = "sse2")]
    fn new(powers: &'a [[u8; 16]; POWERS], blocks: usize) -> Hasher<'a> {
        Hasher {
            powers,
            sum: Wide::zero(),
            y: _mm_setzero_si128(),
            at: 0,
            group: match blocks % POWERS {
                0 => POWERS,
                g => g,
            },
        }
    }

    #[inline]
    #[target_feature(enable = "pclmulqdq,sse2")]
    fn absorb(&mut self, x: __m128i) {
        let x = if self.at == 0 {
            _mm_xor_si128(x, self.y)
        } else {
            x
        };
        self.sum
            .add_product(x, load(&self.powers[self.group - 1 - self.at]));
        self.at += 1;
        if self.at == self.group {
            self.y = self.sum.reduce();
            self.sum = Wide::zero();
            self.at = 0;
            self.group = POWERS;
        }
    }

    /// The hash in GCM byte order (every announced block absorbed).
    #[inline]
    #[target_feature(enable = "sse2,ssse3")]
    fn finish(self) -> __m128i {
        debug_assert_eq!(self.at, 0, "fewer blocks than announced");
        reverse(self.y)
    }
}

/// What [`crypt`] does with the data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Encrypt, and hash the ciphertext made.
    Seal,
    /// Hash the ciphertext given, and decrypt.
    Unseal,
    /// Only XOR the keystream (undoes an `Unseal` whose tag did not match).
    KeystreamOnly,
}

/// GCM over `data` in place with IV `iv` and additional data `aad` (SP 800-38D sections 7.1
/// and 7.2): the keystream from counter block `iv || 2` (inc32 of J0 = `iv || 1`; SRTP
/// packets are far below 2^32 blocks, so the 32-bit counter never wraps) XORed in, and the
/// tag returned: GHASH of the AAD, the ciphertext and the lengths, XORed with E(K, J0), which
/// is encrypted in the first group beside the first counter blocks. The AES rounds of a
/// group of twelve blocks and the GHASH products of its ciphertext are in the same loop, so
/// the CPU's AES and carry-less multiply units work side by side.
#[inline]
#[target_feature(enable = "aes,avx,pclmulqdq,sse2,ssse3")]
fn crypt(
    keys: &[[u8; 16]],
    rounds: u8,
    powers: &[[u8; 16]; POWERS],
    iv: &[u8; 12],
    aad: &[u8],
    data: &mut [u8],
    mode: Mode,
) -> [u8; 16] {
    // A G.711 packet's ten blocks and J0 in one group: their rounds all in flight at once.
    const GROUP: usize = LANES;
    let hashing = mode != Mode::KeystreamOnly;
    let text_len = data.len();
    let (na, nt) = (aad.len().div_ceil(16), text_len.div_ceil(16));
    let mut hash = Hasher::new(powers, na + nt + 1);
    if hashing {
        for i in 0..na {
            hash.absorb(block_at(aad, i));
        }
    }
    let mut j0 = [0u8; 16];
    j0[..12].copy_from_slice(iv);
    j0[15] = 1;
    // The counter block kept byte-reversed, its 32-bit counter the low lane, incremented
    // there and reversed back per block.
    let mut reversed = reverse(load(&j0));
    let one = _mm_set_epi32(0, 0, 0, 1);
    let mut mask = _mm_setzero_si128();
    // The first group carries J0 in lane 0.
    let mut skip = 1;
    let mut rest = data;
    loop {
        let take = rest.len().min(16 * (GROUP - skip));
        let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(take);
        rest = tail;
        let n = skip + chunk.len().div_ceil(16);
        let mut v = [_mm_setzero_si128(); GROUP];
        for x in v[..n].iter_mut() {
            *x = reverse(reversed);
            reversed = _mm_add_epi32(reversed, one);
        }
        encrypt_lanes(keys, rounds, &mut v, n);
        if skip == 1 {
            mask = v[0];
        }
        for (ks, d) in v[skip..n].iter().zip(chunk.chunks_mut(16)) {
            if let Ok(d16) = <&mut [u8; 16]>::try_from(&mut *d) {
                let input = load(d16);
                if mode == Mode::Unseal {
                    hash.absorb(reverse(input));
                }
                let output = _mm_xor_si128(input, *ks);
                store(output, d16);
                if mode == Mode::Seal {
                    hash.absorb(reverse(output));
                }
            } else {
                // The last, partial block: hashed padded with zeros.
                let mut block = [0u8; 16];
                block[..d.len()].copy_from_slice(d);
                if mode == Mode::Unseal {
                    hash.absorb(reverse(load(&block)));
                }
                store(_mm_xor_si128(load(&block), *ks), &mut block);
                d.copy_from_slice(&block[..d.len()]);
                block[d.len()..].fill(0);
                if mode == Mode::Seal {
                    hash.absorb(reverse(load(&block)));
                }
            }
        }
        skip = 0;
        if rest.is_empty() {
            break;
        }
    }
    let mut tag = [0u8; 16];
    if hashing {
        let mut lengths = [0u8; 16];
        lengths[..8].copy_from_slice(&(8 * aad.len() as u64).to_be_bytes());
        lengths[8..].copy_from_slice(&(8 * text_len as u64).to_be_bytes());
        hash.absorb(reverse(load(&lengths)));
        store(_mm_xor_si128(hash.finish(), mask), &mut tag);
    }
    tag
}

/// Encrypts `data` in place and returns the 16-byte tag (SP 800-38D section 7.1).
///
/// # Safety
/// The CPU must have AES-NI, PCLMULQDQ, SSE2 and SSSE3; `rounds` is 10 or 14 with the keys
/// expanded for it and `powers` made by [`hash_key_powers`] from them.
#[target_feature(enable = "aes,avx,pclmulqdq,sse2,ssse3")]
pub(super) unsafe fn seal(
    keys: &[[u8; 16]],
    rounds: u8,
    powers: &[[u8; 16]; POWERS],
    iv: &[u8; 12],
    aad: &[u8],
    data: &mut [u8],
) -> [u8; 16] {
    crypt(keys, rounds, powers, iv, aad, data, Mode::Seal)
}

/// The tag `data` as ciphertext should carry, and `data` decrypted in place (section 7.2).
/// The caller compares the tags and, if they differ, calls [`undo_unseal`] to restore the
/// ciphertext.
///
/// # Safety
/// As [`seal`].
#[target_feature(enable = "aes,avx,pclmulqdq,sse2,ssse3")]
pub(super) unsafe fn unseal(
    keys: &[[u8; 16]],
    rounds: u8,
    powers: &[[u8; 16]; POWERS],
    iv: &[u8; 12],
    aad: &[u8],
    data: &mut [u8],
) -> [u8; 16] {
    crypt(keys, rounds, powers, iv, aad, data, Mode::Unseal)
}

/// XORs the keystream of `iv` into `data` once more: undoes [`unseal`]'s decryption when the
/// tag did not match.
///
/// # Safety
/// As [`seal`].
#[target_feature(enable = "aes,avx,pclmulqdq,sse2,ssse3")]
pub(super) unsafe fn undo_unseal(
    keys: &[[u8; 16]],
    rounds: u8,
    powers: &[[u8; 16]; POWERS],
    iv: &[u8; 12],
    data: &mut [u8],
) {
    crypt(keys, rounds, powers, iv, &[], data, Mode::KeystreamOnly);
}
