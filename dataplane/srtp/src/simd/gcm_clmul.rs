//! AES-GCM (NIST SP 800-38D) with AES-NI and PCLMULQDQ, for SRTP's AEAD suites (RFC 7714):
//! the AES round keys and the first powers of the hash key H computed once per key, the
//! keystream through `aes_ni`'s interleaved rounds (with the tag's block E(K, J0) in the same
//! group as the first counter blocks), and GHASH folding [`POWERS`] blocks per reduction
//! (`X1*H^16 + X2*H^15 + ... + X16*H`, one reduction for the sixteen products).
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
pub(super) fn reverse(v: __m128i) -> __m128i {
    _mm_shuffle_epi8(
        v,
        _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
    )
}

/// A sum of 256-bit carry-less products kept as Karatsuba's three parts: `lo` the sum of the
/// low halves' products, `hi` of the high halves', `cross` of `(a0 ^ a1) * (b0 ^ b1)`.
/// Products are added (XORed) as they are; [`Wide::reduce`] folds once.
#[derive(Clone, Copy)]
pub(super) struct Wide {
    pub(super) lo: __m128i,
    pub(super) cross: __m128i,
    pub(super) hi: __m128i,
}

impl Wide {
    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn zero() -> Wide {
        Wide {
            lo: _mm_setzero_si128(),
            cross: _mm_setzero_si128(),
            hi: _mm_setzero_si128(),
        }
    }

    /// Adds the carry-less product `a * b` (Karatsuba: three 64x64 multiplications).
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse2")]
    pub(super) fn add_product(&mut self, a: __m128i, b: __m128i) {
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
    pub(super) fn reduce(self) -> __m128i {
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
pub(super) fn block_at(bytes: &[u8], i: usize) -> __m128i {
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

/// J0 = `iv || 1` (section 7.1 step 2, for a 96-bit IV), byte-reversed.
#[inline]
#[target_feature(enable = "sse2,ssse3")]
pub(super) fn reversed_j0(iv: &[u8; 12]) -> __m128i {
    let mut j0 = [0u8; 16];
    j0[..12].copy_from_slice(iv);
    j0[15] = 1;
    reverse(load(&j0))
}

/// One AES-GCM key as the functions here take it: the AES round keys (`rounds + 1` of them)
/// and the powers of H made from them by [`hash_key_powers`].
#[derive(Clone, Copy)]
pub(super) struct Key<'a> {
    pub(super) round_keys: &'a [[u8; 16]],
    pub(super) rounds: u8,
    pub(super) powers: &'a [[u8; 16]; POWERS],
}

/// What [`crypt`] does with the data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Encrypt, and hash the ciphertext made.
    Seal,
    /// Hash the ciphertext given, and decrypt.
    Unseal,
    /// Hash the ciphertext given under the first key, decrypt it and encrypt it under the
    /// second key, and hash the new ciphertext under the second key.
    Rekey,
    /// Only XOR the keystream(s) (undoes an `Unseal` or `Rekey` whose tag did not match).
    KeystreamOnly,
}

/// The GCM length block (section 7.1 step 5: the AAD's and the text's lengths in bits),
/// reflected.
#[inline]
#[target_feature(enable = "sse2,ssse3")]
pub(super) fn lengths_block(aad_len: usize, text_len: usize) -> __m128i {
    let mut lengths = [0u8; 16];
    lengths[..8].copy_from_slice(&(8 * aad_len as u64).to_be_bytes());
    lengths[8..].copy_from_slice(&(8 * text_len as u64).to_be_bytes());
    reverse(load(&lengths))
}

/// The next `n` counter blocks from `reversed` (a counter block byte-reversed: its 32-bit
/// counter is the low lane, incremented there and reversed back per block), encrypted.
#[inline]
#[target_feature(enable = "aes,sse2,ssse3")]
fn keystream(key: Key<'_>, reversed: &mut __m128i, n: usize) -> [__m128i; LANES] {
    let one = _mm_set_epi32(0, 0, 0, 1);
    let mut v = [_mm_setzero_si128(); LANES];
    for x in v[..n].iter_mut() {
        *x = reverse(*reversed);
        *reversed = _mm_add_epi32(*reversed, one);
    }
    encrypt_lanes(key.round_keys, key.rounds, &mut v, n);
    v
}

/// GCM over `data` in place with IV `iv` and additional data `aad` (SP 800-38D sections 7.1
/// and 7.2): the keystream from counter block `iv || 2` (inc32 of J0 = `iv || 1`; SRTP
/// packets are far below 2^32 blocks, so the 32-bit counter never wraps) XORed in, and the
/// tag returned: GHASH of the AAD, the ciphertext and the lengths, XORed with E(K, J0), which
/// is encrypted in the first group beside the first counter blocks (a G.711 packet's ten
/// blocks and J0 in one group of twelve, all in flight at once).
///
/// With a second key (`Mode::Rekey`, or `KeystreamOnly` to undo one) the data is XORed with
/// both keystreams in the same pass, the first key's hash taken over the data given and the
/// second's over the data made: a re-key from one key to another with neither the plaintext
/// in memory nor a second pass. Returns the two tags (the second zero without a second key).
#[inline]
#[target_feature(enable = "aes,avx,pclmulqdq,sse2,ssse3")]
fn crypt(
    a: Key<'_>,
    iv: &[u8; 12],
    b: Option<(Key<'_>, &[u8; 12])>,
    aad: &[u8],
    data: &mut [u8],
    mode: Mode,
) -> ([u8; 16], [u8; 16]) {
    let hash_in = matches!(mode, Mode::Unseal | Mode::Rekey);
    let hash_out_a = mode == Mode::Seal;
    let hash_out_b = mode == Mode::Rekey;
    let text_len = data.len();
    let (na, nt) = (aad.len().div_ceil(16), text_len.div_ceil(16));
    let mut hash_a = Hasher::new(a.powers, na + nt + 1);
    let mut hash_b = Hasher::new(b.map_or(a.powers, |(k, _)| k.powers), na + nt + 1);
    if mode != Mode::KeystreamOnly {
        for i in 0..na {
            let x = block_at(aad, i);
            hash_a.absorb(x);
            if hash_out_b {
                hash_b.absorb(x);
            }
        }
    }
    let mut reversed_a = reversed_j0(iv);
    let mut reversed_b = reversed_j0(b.map_or(iv, |(_, iv)| iv));
    let (mut mask_a, mut mask_b) = (_mm_setzero_si128(), _mm_setzero_si128());
    // The first group carries J0 in lane 0.
    let mut skip = 1;
    let mut rest = data;
    loop {
        let take = rest.len().min(16 * (LANES - skip));
        let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(take);
        rest = tail;
        let n = skip + chunk.len().div_ceil(16);
        let mut v = keystream(a, &mut reversed_a, n);
        if skip == 1 {
            mask_a = v[0];
        }
        if let Some((key_b, _)) = b {
            let w = keystream(key_b, &mut reversed_b, n);
            if skip == 1 {
                mask_b = w[0];
            }
            for (x, y) in v.iter_mut().zip(w) {
                *x = _mm_xor_si128(*x, y);
            }
        }
        for (ks, d) in v[skip..n].iter().zip(chunk.chunks_mut(16)) {
            if let Ok(d16) = <&mut [u8; 16]>::try_from(&mut *d) {
                let input = load(d16);
                if hash_in {
                    hash_a.absorb(reverse(input));
                }
                let output = _mm_xor_si128(input, *ks);
                store(output, d16);
                if hash_out_a {
                    hash_a.absorb(reverse(output));
                }
                if hash_out_b {
                    hash_b.absorb(reverse(output));
                }
            } else {
                // The last, partial block: hashed padded with zeros.
                let mut block = [0u8; 16];
                block[..d.len()].copy_from_slice(d);
                if hash_in {
                    hash_a.absorb(reverse(load(&block)));
                }
                store(_mm_xor_si128(load(&block), *ks), &mut block);
                d.copy_from_slice(&block[..d.len()]);
                block[d.len()..].fill(0);
                if hash_out_a {
                    hash_a.absorb(reverse(load(&block)));
                }
                if hash_out_b {
                    hash_b.absorb(reverse(load(&block)));
                }
            }
        }
        skip = 0;
        if rest.is_empty() {
            break;
        }
    }
    let (mut tag_a, mut tag_b) = ([0u8; 16], [0u8; 16]);
    if mode != Mode::KeystreamOnly {
        let lengths = lengths_block(aad.len(), text_len);
        hash_a.absorb(lengths);
        store(_mm_xor_si128(hash_a.finish(), mask_a), &mut tag_a);
        if hash_out_b {
            hash_b.absorb(lengths);
            store(_mm_xor_si128(hash_b.finish(), mask_b), &mut tag_b);
        }
    }
    (tag_a, tag_b)
}

/// Encrypts `data` in place and returns the 16-byte tag (SP 800-38D section 7.1).
///
/// # Safety
/// The CPU must have AES-NI, PCLMULQDQ, SSE2 and SSSE3; the key as [`Key`] says.
#[target_feature(enable = "aes,avx,pclmulqdq,sse2,ssse3")]
pub(super) unsafe fn seal(key: Key<'_>, iv: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
    crypt(key, iv, None, aad, data, Mode::Seal).0
}

/// The tag `data` as ciphertext should carry, and `data` decrypted in place (section 7.2).
/// The caller compares the tags and, if they differ, calls [`undo`] to restore the
/// ciphertext.
///
/// # Safety
/// As [`seal`].
#[target_feature(enable = "aes,avx,pclmulqdq,sse2,ssse3")]
pub(super) unsafe fn unseal(key: Key<'_>, iv: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
    crypt(key, iv, None, aad, data, Mode::Unseal).0
}

/// Re-keys `data` in place from key `a` (IV `iv_a`) to key `b` (IV `iv_b`), the same AAD
/// for both: returns the tag the data as given should carry under `a` and the tag of the new
/// data under `b`. The caller compares the first and, if it differs, calls [`undo`] with both
/// keys to restore the data.
///
/// # Safety
/// As [`seal`], for both keys.
#[target_feature(enable = "aes,avx,pclmulqdq,sse2,ssse3")]
pub(super) unsafe fn rekey(
    a: Key<'_>,
    iv_a: &[u8; 12],
    b: Key<'_>,
    iv_b: &[u8; 12],
    aad: &[u8],
    data: &mut [u8],
) -> ([u8; 16], [u8; 16]) {
    crypt(a, iv_a, Some((b, iv_b)), aad, data, Mode::Rekey)
}

/// XORs the keystream of `iv` (and of the second key's, if given) into `data` once more:
/// undoes [`unseal`] or [`rekey`] when the tag did not match.
///
/// # Safety
/// As [`seal`].
#[target_feature(enable = "aes,avx,pclmulqdq,sse2,ssse3")]
pub(super) unsafe fn undo(
    key: Key<'_>,
    iv: &[u8; 12],
    second: Option<(Key<'_>, &[u8; 12])>,
    data: &mut [u8],
) {
    crypt(key, iv, second, &[], data, Mode::KeystreamOnly);
}
