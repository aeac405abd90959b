//! The one module of this crate allowed `unsafe`: SIMD paths chosen at run time, each with
//! the portable path beside it and property tests proving them equal (the decision on
//! `unsafe` for SIMD in the performance issue, as smoltcp fences `phy/sys`).
//!
//! * [`AesKeys`]: AES-128/256 round keys expanded once and AES-CTR keystream with AES-NI,
//!   up to 12 blocks in flight (`aes_ni`), or with VAES two blocks per 256-bit register
//!   (`aes_vaes`, where the CPU has it: 1.5x the keystream per cycle on a Zen 4). AES-128's
//!   176 bytes of round keys are inline, AES-256's 240 boxed (rare in SRTP), where the `aes`
//!   crate's run-time-detected type keeps room for its portable bit-sliced schedule as well
//!   (704 / 960 bytes): SRTP keeps two keys per context, and a relay a million contexts.
//!   Without AES-NI (or with `RELAY_SRTP_NO_SIMD=1`) the `aes` crate's portable code.
//! * [`sha1_compress16`]: SHA-1 compression of up to 16 independent messages at once, one per
//!   32-bit lane of AVX-512 registers (multi-buffer hashing, as Intel's ipsec_mb does), each
//!   lane's words gathered from wherever its block lies. With AVX-512F and AVX-512BW;
//!   elsewhere the `sha1` crate (SHA-NI where present) on each lane. `HmacSha1::mac_many`
//!   uses it for the burst paths' tags: on a Zen 4 (AVX-512 on 256-bit units) a burst
//!   re-key is about 22% faster than with SHA-NI one message at a time.
//! * [`GcmKeys`]: AES-GCM (the AEAD suites, RFC 7714) with AES-NI and PCLMULQDQ: round keys
//!   and the first 16 powers of the hash key computed once per key, the keystream's AES
//!   rounds and the GHASH products in one loop, one GHASH reduction per 16 blocks
//!   (`gcm_clmul`); packets whose GHASH is one such group (every audio packet) on 256-bit
//!   registers with VAES and VPCLMULQDQ where the CPU has them (`gcm_vaes`). Elsewhere the
//!   `aes-gcm` crate, whose GHASH reduces once per block: ours is 2.5x (128-bit) to 3.5x
//!   (256-bit) faster per re-key on a Zen 4.
//!
//! The CPU check runs once and is cached ([`Features::get`]); `RELAY_SRTP_NO_SIMD=1` in the
//! environment turns every SIMD path off (so the portable path can be run on its own).

#![allow(unsafe_code)]

pub(crate) use gcm::GcmKeys;

use std::sync::OnceLock;

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes128Enc, Aes256Enc, Block};
use zeroize::{Zeroize, ZeroizeOnDrop};

#[cfg(target_arch = "x86_64")]
mod aes_ni;
#[cfg(target_arch = "x86_64")]
mod aes_vaes;
mod gcm;
#[cfg(target_arch = "x86_64")]
mod gcm_clmul;
#[cfg(target_arch = "x86_64")]
mod gcm_vaes;
#[cfg(target_arch = "x86_64")]
mod sha1_avx512;

/// Lanes of [`sha1_compress16`].
pub(crate) const LANES: usize = 16;

/// The SIMD paths this CPU offers (and the environment allows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Features {
    /// AES-NI (`aes`) with SSE2 and SSSE3: the AES rounds in hardware.
    pub(crate) aes_ni: bool,
    /// AVX-512F and AVX-512BW: SHA-1 of 16 messages at once.
    pub(crate) avx512: bool,
    /// PCLMULQDQ (with AES-NI): GCM's hash in hardware.
    pub(crate) clmul: bool,
    /// VAES, VPCLMULQDQ and AVX2: GCM two blocks per instruction.
    pub(crate) vaes: bool,
}

impl Features {
    /// Detected once per process.
    pub(crate) fn get() -> Features {
        static FEATURES: OnceLock<Features> = OnceLock::new();
        *FEATURES.get_or_init(Features::detect)
    }

    fn detect() -> Features {
        if std::env::var_os("RELAY_SRTP_NO_SIMD").is_some_and(|v| v != "0") {
            return Features {
                aes_ni: false,
                avx512: false,
                clmul: false,
                vaes: false,
            };
        }
        #[cfg(target_arch = "x86_64")]
        {
            Features {
                aes_ni: std::arch::is_x86_feature_detected!("aes")
                    && std::arch::is_x86_feature_detected!("sse2")
                    && std::arch::is_x86_feature_detected!("ssse3"),
                avx512: std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw"),
                clmul: std::arch::is_x86_feature_detected!("pclmulqdq")
                    && std::arch::is_x86_feature_detected!("avx"),
                vaes: std::arch::is_x86_feature_detected!("vaes")
                    && std::arch::is_x86_feature_detected!("vpclmulqdq")
                    && std::arch::is_x86_feature_detected!("avx2"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Features {
                aes_ni: false,
                avx512: false,
                clmul: false,
                vaes: false,
            }
        }
    }
}

/// The portable SHA-1 compression of one 64-byte block (the `sha1` crate's, SHA-NI where the
/// CPU has it).
#[inline]
pub(crate) fn sha1_compress(state: &mut [u32; 5], block: &[u8; 64]) {
    use sha1::digest::generic_array::GenericArray;
    sha1::compress(state, std::slice::from_ref(GenericArray::from_slice(block)));
}

/// For each set `k`, compresses `blocks[k][l]` into `states[l]` for each lane `l` set in
/// `masks[k]`; lanes not set are left as they are. The same as [`sha1_compress`] on each
/// (lane, block) in order; with AVX-512 all lanes of a set at once.
#[inline]
pub(crate) fn sha1_compress16(
    states: &mut [[u32; 5]; LANES],
    blocks: &[[&[u8; 64]; LANES]],
    masks: &[u16],
) {
    #[cfg(target_arch = "x86_64")]
    if Features::get().avx512 {
        const MAX_SETS: usize = 8;
        for (sets, masks) in blocks.chunks(MAX_SETS).zip(masks.chunks(MAX_SETS)) {
            let mut ptrs = [[std::ptr::null::<u8>(); LANES]; MAX_SETS];
            for (p, set) in ptrs.iter_mut().zip(sets) {
                for (q, b) in p.iter_mut().zip(set) {
                    *q = b.as_ptr();
                }
            }
            // SAFETY: `Features::get` found the `avx512f` and `avx512bw` features that
            // `compress16_at` enables; every pointer comes from a `&[u8; 64]`, 64 readable
            // bytes that outlive the call.
            unsafe { sha1_avx512::compress16_at(states, &ptrs[..sets.len()], masks) };
        }
        return;
    }
    sha1_compress16_portable(states, blocks, masks);
}

/// HMAC-SHA1 on 16 lanes: for each lane `l` set in `lanes`, the inner hash from `inner[l]`
/// over the block sets (each lane's padded message blocks, `masks[k]` telling which lanes
/// have a `k`-th block), then the outer hash from `outer[l]` over the inner digest; `outer[l]`
/// gets the final state. With AVX-512 in one pass (the outer block made in registers);
/// `None` where only the portable path exists (the caller then hashes its own way).
#[inline]
pub(crate) fn hmac16(
    inner: &[[u32; 5]; LANES],
    outer: &mut [[u32; 5]; LANES],
    blocks: &[[&[u8; 64]; LANES]],
    masks: &[u16],
    lanes: u16,
) -> Option<()> {
    #[cfg(target_arch = "x86_64")]
    if Features::get().avx512 {
        const MAX_SETS: usize = 24;
        if blocks.len() <= MAX_SETS {
            let mut ptrs = [[std::ptr::null::<u8>(); LANES]; MAX_SETS];
            for (p, set) in ptrs.iter_mut().zip(blocks) {
                for (q, b) in p.iter_mut().zip(set) {
                    *q = b.as_ptr();
                }
            }
            // SAFETY: `Features::get` found the `avx512f` and `avx512bw` features that
            // `hmac16_at` enables; every pointer comes from a `&[u8; 64]` that outlives the call.
            unsafe { sha1_avx512::hmac16_at(inner, outer, &ptrs[..blocks.len()], masks, lanes) };
            return Some(());
        }
    }
    let _ = (inner, outer, blocks, masks, lanes);
    None
}

/// The portable path of [`sha1_compress16`].
fn sha1_compress16_portable(
    states: &mut [[u32; 5]; LANES],
    blocks: &[[&[u8; 64]; LANES]],
    masks: &[u16],
) {
    for (set, &mask) in blocks.iter().zip(masks) {
        for (l, (state, block)) in states.iter_mut().zip(set).enumerate() {
            if mask & (1 << l) != 0 {
                sha1_compress(state, block);
            }
        }
    }
}

/// Whether [`sha1_compress16`] runs its lanes together (else callers gain nothing by
/// batching).
#[inline]
pub(crate) fn multi_lane() -> bool {
    Features::get().avx512
}

/// An AES-128 or AES-256 encryption key, expanded once.
// The round keys inline (a packet reads them with its context's other hot fields), the rare
// portable schedules boxed.
pub(crate) enum AesKeys {
    /// AES-128's 11 round keys for AES-NI, inline, zeroised on drop.
    Ni128(NiKeys128),
    /// AES-256's 15, boxed: SRTP rarely uses AES-256, and inline they would make every
    /// context (most of them AES-128) 64 bytes and a cache line larger.
    Ni256(Box<NiKeys>),
    /// The `aes` crate's portable path (boxed: it is large, and only CPUs without AES-NI take it).
    Soft128(Box<Aes128Enc>),
    Soft256(Box<Aes256Enc>),
}

/// AES-128 round keys as bytes (loaded unaligned per use).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct NiKeys128 {
    keys: [[u8; 16]; 11],
}

/// AES round keys as bytes (loaded unaligned per use), room for AES-256's.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct NiKeys {
    keys: [[u8; 16]; 15],
    /// 10 or 14.
    rounds: u8,
}

impl AesKeys {
    /// Expands a 16- or 32-byte key (other lengths are a caller's bug: SRTP suites fix them).
    pub(crate) fn new(key: &[u8]) -> AesKeys {
        assert!(key.len() == 16 || key.len() == 32, "AES-128 or AES-256 key");
        if Features::get().aes_ni {
            #[cfg(target_arch = "x86_64")]
            return match key.len() {
                16 => {
                    let mut keys = [[0u8; 16]; 11];
                    // SAFETY: `Features::get` found AES-NI and SSE2, the features `expand128`
                    // enables.
                    unsafe { aes_ni::expand128(key.try_into().expect("16 bytes"), &mut keys) };
                    AesKeys::Ni128(NiKeys128 { keys })
                }
                _ => AesKeys::Ni256(Box::new(NiKeys::expand(key))),
            };
        }
        AesKeys::portable(key)
    }

    /// The portable path regardless of the CPU (for the tests that compare the two).
    pub(crate) fn portable(key: &[u8]) -> AesKeys {
        match key.len() {
            16 => AesKeys::Soft128(Box::new(Aes128Enc::new(key.into()))),
            _ => AesKeys::Soft256(Box::new(Aes256Enc::new(key.into()))),
        }
    }

    /// Where the key schedule lies when it is not inline (AES-256, the portable paths), as
    /// (address, length), for prefetching; a null address where it is inline.
    pub(crate) fn boxed_schedule(&self) -> (*const u8, usize) {
        match self {
            AesKeys::Ni128(_) => (std::ptr::null(), 0),
            AesKeys::Ni256(k) => ((&**k as *const NiKeys).cast(), size_of::<NiKeys>()),
            AesKeys::Soft128(c) => ((&**c as *const Aes128Enc).cast(), size_of::<Aes128Enc>()),
            AesKeys::Soft256(c) => ((&**c as *const Aes256Enc).cast(), size_of::<Aes256Enc>()),
        }
    }

    /// The AES-NI round keys and the number of rounds, where this key has them.
    #[inline]
    fn round_keys(&self) -> Option<(&[[u8; 16]], u8)> {
        match self {
            AesKeys::Ni128(k) => Some((&k.keys, 10)),
            AesKeys::Ni256(k) => Some((&k.keys, k.rounds)),
            _ => None,
        }
    }

    /// XORs each `jobs[i].1` with the AES-CTR keystream from counter block `jobs[i].0`, the
    /// same as [`AesKeys::xor_keystream`] on each; with AES-NI the messages' blocks go through
    /// the rounds together and are XORed from the registers. Returns false (nothing done)
    /// where only the portable path exists: the caller then batches blocks its own way.
    #[inline]
    pub(crate) fn xor_keystream_many(&self, jobs: &mut [([u8; 16], &mut [u8])]) -> bool {
        match self.round_keys() {
            #[cfg(target_arch = "x86_64")]
            Some((keys, rounds)) => {
                if Features::get().vaes {
                    // SAFETY: `Features::get` found the features `aes_vaes` needs; the keys
                    // have `rounds` rounds; its arguments are references.
                    unsafe { aes_vaes::xor_keystream_many(keys, rounds, jobs) };
                    return true;
                }
                // SAFETY: AES-NI keys are only made where `Features::get` found AES-NI, SSE2
                // and SSSE3, the features `xor_keystream_many` enables; its arguments are
                // references.
                unsafe { aes_ni::xor_keystream_many(keys, rounds, jobs) };
                true
            }
            _ => false,
        }
    }

    /// XORs `data` with this key's CTR keystream from `iv` and `other`'s from `other_iv` in
    /// one pass: a re-key from one key to another without the plaintext in between. The same
    /// as [`AesKeys::xor_keystream`] with each in turn.
    #[inline]
    pub(crate) fn xor_two_keystreams(
        &self,
        iv: &[u8; 16],
        other: &AesKeys,
        other_iv: &[u8; 16],
        data: &mut [u8],
    ) {
        match (self.round_keys(), other.round_keys()) {
            #[cfg(target_arch = "x86_64")]
            (Some((a, rounds)), Some((b, other_rounds))) if rounds == other_rounds => {
                if Features::get().vaes {
                    // SAFETY: `Features::get` found the features `aes_vaes` needs; both
                    // schedules have `rounds` rounds; its arguments are references.
                    unsafe { aes_vaes::xor_two_keystreams(a, iv, b, other_iv, rounds, data) };
                    return;
                }
                // SAFETY: AES-NI keys are only made where `Features::get` found AES-NI and
                // SSE2, the features `xor_two_keystreams` enables; both schedules have `rounds`
                // rounds; its arguments are references.
                unsafe { aes_ni::xor_two_keystreams(a, iv, b, other_iv, rounds, data) };
            }
            _ => {
                self.xor_keystream(iv, data);
                other.xor_keystream(other_iv, data);
            }
        }
    }

    /// Encrypts each block in place (AES in ECB over independent blocks: the CTR keystream).
    #[inline]
    pub(crate) fn encrypt_blocks(&self, blocks: &mut [Block]) {
        #[cfg(target_arch = "x86_64")]
        if let Some((keys, rounds)) = self.round_keys() {
            // SAFETY: AES-NI keys are only made after `Features::get` found AES-NI and SSE2,
            // the features `encrypt_blocks` enables; its arguments are references.
            unsafe { aes_ni::encrypt_blocks(keys, rounds, blocks) };
            return;
        }
        match self {
            AesKeys::Soft128(c) => c.encrypt_blocks(blocks),
            AesKeys::Soft256(c) => c.encrypt_blocks(blocks),
            _ => unreachable!("AES-NI keys are only made on x86_64"),
        }
    }

    /// XORs `data` with the AES-CTR keystream that starts at counter block `iv` (a 128-bit
    /// big-endian counter, as SRTP's AES-CM uses it: RFC 3711 section 4.1.1).
    #[inline]
    pub(crate) fn xor_keystream(&self, iv: &[u8; 16], data: &mut [u8]) {
        match self.round_keys() {
            #[cfg(target_arch = "x86_64")]
            Some((keys, rounds)) => {
                if Features::get().vaes {
                    // SAFETY: `Features::get` found the features `aes_vaes` needs; the keys
                    // have `rounds` rounds; its arguments are references.
                    return unsafe { aes_vaes::xor_keystream(keys, rounds, iv, data) };
                }
                // SAFETY: as in `encrypt_blocks`: made only where the CPU has AES-NI and SSE2.
                unsafe { aes_ni::xor_keystream(keys, rounds, iv, data) }
            }
            _ => {
                let mut counter = u128::from_be_bytes(*iv);
                let mut blocks = [Block::default(); 8];
                for chunk in data.chunks_mut(128) {
                    let n = chunk.len().div_ceil(16);
                    for block in &mut blocks[..n] {
                        *block = Block::from(counter.to_be_bytes());
                        counter = counter.wrapping_add(1);
                    }
                    self.encrypt_blocks(&mut blocks[..n]);
                    for (d, k) in chunk.chunks_mut(16).zip(&blocks[..n]) {
                        for (x, y) in d.iter_mut().zip(k) {
                            *x ^= y;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl NiKeys {
    fn expand(key: &[u8]) -> NiKeys {
        let mut keys = [[0u8; 16]; 15];
        let rounds = match key.len() {
            16 => {
                // SAFETY: called only where `Features::get` found AES-NI and SSE2.
                unsafe { aes_ni::expand128(key.try_into().expect("16 bytes"), &mut keys) };
                10
            }
            _ => {
                // SAFETY: as above.
                unsafe { aes_ni::expand256(key.try_into().expect("32 bytes"), &mut keys) };
                14
            }
        };
        NiKeys { keys, rounds }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn both(key: &[u8]) -> (AesKeys, AesKeys) {
        (AesKeys::new(key), AesKeys::portable(key))
    }

    proptest! {
        /// Several messages at once equal each alone, whatever their lengths.
        #[test]
        fn many_keystreams_equal_one_at_a_time(
            key in any::<[u8; 16]>(),
            msgs in proptest::collection::vec((any::<[u8; 16]>(), proptest::collection::vec(any::<u8>(), 0..400)), 0..33),
        ) {
            let keys = AesKeys::new(&key);
            // Every third message's counter about to carry out of its low 64 bits.
            let msgs: Vec<([u8; 16], Vec<u8>)> = msgs
                .into_iter()
                .enumerate()
                .map(|(i, (mut iv, d))| {
                    if i % 3 == 0 {
                        iv[8..].fill(0xff);
                        iv[15] = 0xf0 | (i as u8 & 0x0f);
                    }
                    (iv, d)
                })
                .collect();
            let mut many: Vec<([u8; 16], Vec<u8>)> = msgs.clone();
            let mut jobs: Vec<([u8; 16], &mut [u8])> =
                many.iter_mut().map(|(iv, d)| (*iv, &mut d[..])).collect();
            if keys.xor_keystream_many(&mut jobs) {
                for ((iv, d), (_, got)) in msgs.iter().zip(&many) {
                    let mut want = d.clone();
                    AesKeys::portable(&key).xor_keystream(iv, &mut want);
                    prop_assert_eq!(got, &want);
                }
            }
        }

        /// Two keystreams at once equal one after the other, whatever the key sizes.
        #[test]
        fn two_keystreams_equal_one_after_the_other(
            ka in any::<[u8; 32]>(),
            kb in any::<[u8; 32]>(),
            long_a in any::<bool>(),
            long_b in any::<bool>(),
            iva in any::<[u8; 16]>(),
            ivb in any::<[u8; 16]>(),
            data in proptest::collection::vec(any::<u8>(), 0..=1500),
        ) {
            let a = AesKeys::new(if long_a { &ka[..] } else { &ka[..16] });
            let b = AesKeys::new(if long_b { &kb[..] } else { &kb[..16] });
            let (mut once, mut twice) = (data.clone(), data);
            a.xor_two_keystreams(&iva, &b, &ivb, &mut once);
            a.xor_keystream(&iva, &mut twice);
            b.xor_keystream(&ivb, &mut twice);
            prop_assert_eq!(once, twice);
        }

        /// The chosen path (AES-NI here when the CPU has it) gives the portable path's
        /// keystream for any key, start counter (including ones about to carry across
        /// 64-bit and 128-bit boundaries) and length 0 to 1,500 bytes.
        #[test]
        fn keystream_equals_the_portable_path(
            long in any::<bool>(),
            key in any::<[u8; 32]>(),
            iv in any::<[u8; 16]>(),
            near_wrap in 0u8..4,
            data in proptest::collection::vec(any::<u8>(), 0..=1500),
        ) {
            let key = if long { &key[..] } else { &key[..16] };
            let mut iv = iv;
            match near_wrap {
                1 => iv[8..].fill(0xff),
                2 => iv.fill(0xff),
                _ => {}
            }
            let (chosen, portable) = both(key);
            let (mut a, mut b) = (data.clone(), data);
            chosen.xor_keystream(&iv, &mut a);
            portable.xor_keystream(&iv, &mut b);
            prop_assert_eq!(a, b);
        }

        #[test]
        fn blocks_equal_the_portable_path(
            long in any::<bool>(),
            key in any::<[u8; 32]>(),
            blocks in proptest::collection::vec(any::<[u8; 16]>(), 0..70),
        ) {
            let key = if long { &key[..] } else { &key[..16] };
            let (chosen, portable) = both(key);
            let mut a: Vec<Block> = blocks.iter().map(|b| Block::from(*b)).collect();
            let mut b = a.clone();
            chosen.encrypt_blocks(&mut a);
            portable.encrypt_blocks(&mut b);
            prop_assert_eq!(a, b);
        }
    }

    proptest! {
        /// Each AES-CTR path this CPU has (AES-NI on 128-bit registers, VAES on 256-bit ones)
        /// gives the portable keystream, one message, several, and two keys at once, whatever
        /// the lengths and counters (some about to carry out of 64 bits).
        #[test]
        fn every_ctr_path_equals_the_portable_path(
            long in any::<bool>(),
            key in any::<[u8; 32]>(),
            key2 in any::<[u8; 32]>(),
            ivs in proptest::collection::vec(any::<[u8; 16]>(), 1..6),
            near_wrap in any::<bool>(),
            lens in proptest::collection::vec(0usize..=1500, 1..6),
        ) {
            let key = if long { &key[..] } else { &key[..16] };
            let key2 = if long { &key2[..] } else { &key2[..16] };
            let f = Features::get();
            let (chosen, other) = (AesKeys::new(key), AesKeys::new(key2));
            let (Some((keys, rounds)), Some((keys2, _))) = (chosen.round_keys(), other.round_keys()) else {
                return Ok(());
            };
            let portable = AesKeys::portable(key);
            let portable2 = AesKeys::portable(key2);
            let mut ivs = ivs;
            if near_wrap {
                ivs[0][8..].fill(0xff);
            }
            let msgs: Vec<([u8; 16], Vec<u8>)> = ivs
                .iter()
                .zip(lens.iter().cycle())
                .map(|(iv, &n)| (*iv, (0..n).map(|i| i as u8).collect()))
                .collect();
            let want: Vec<Vec<u8>> = msgs
                .iter()
                .map(|(iv, d)| {
                    let mut d = d.clone();
                    portable.xor_keystream(iv, &mut d);
                    d
                })
                .collect();
            let want_two: Vec<Vec<u8>> = msgs
                .iter()
                .zip(&want)
                .map(|((iv, _), once)| {
                    let mut d = once.clone();
                    portable2.xor_keystream(iv, &mut d);
                    d
                })
                .collect();
            let mut paths: Vec<&str> = vec!["aes_ni"];
            if f.vaes {
                paths.push("aes_vaes");
            }
            for path in paths {
                // One message at a time, and all at once.
                for ((iv, d), w) in msgs.iter().zip(&want) {
                    let mut got = d.clone();
                    // SAFETY: the round keys exist only where the CPU has AES-NI; `aes_vaes`
                    // only where `Features::get` found its features.
                    unsafe {
                        match path {
                            "aes_ni" => aes_ni::xor_keystream(keys, rounds, iv, &mut got),
                            _ => aes_vaes::xor_keystream(keys, rounds, iv, &mut got),
                        }
                    }
                    prop_assert_eq!(&got, w, "{}", path);
                }
                let mut many: Vec<([u8; 16], Vec<u8>)> = msgs.clone();
                let mut jobs: Vec<([u8; 16], &mut [u8])> =
                    many.iter_mut().map(|(iv, d)| (*iv, &mut d[..])).collect();
                // SAFETY: as above.
                unsafe {
                    match path {
                        "aes_ni" => aes_ni::xor_keystream_many(keys, rounds, &mut jobs),
                        _ => aes_vaes::xor_keystream_many(keys, rounds, &mut jobs),
                    }
                }
                for ((_, got), w) in many.iter().zip(&want) {
                    prop_assert_eq!(got, w, "{} many", path);
                }
                // Two keys' keystreams in one pass (the same counter block for both here).
                for ((iv, d), w) in msgs.iter().zip(&want_two) {
                    let mut got = d.clone();
                    // SAFETY: as above; both keys have `rounds` rounds.
                    unsafe {
                        match path {
                            "aes_ni" => aes_ni::xor_two_keystreams(keys, iv, keys2, iv, rounds, &mut got),
                            _ => aes_vaes::xor_two_keystreams(keys, iv, keys2, iv, rounds, &mut got),
                        }
                    }
                    prop_assert_eq!(&got, w, "{} two", path);
                }
            }
        }
    }

    #[test]
    fn fips_197_vectors() {
        // FIPS 197 appendix C.1 and C.3.
        let plain: [u8; 16] = std::array::from_fn(|i| (i as u8) * 0x11);
        let key128: Vec<u8> = (0u8..16).collect();
        let key256: Vec<u8> = (0u8..32).collect();
        for (key, want) in [
            (key128, "69c4e0d86a7b0430d8cdb78070b4c55a"),
            (key256, "8ea2b7ca516745bfeafc49904b496089"),
        ] {
            let mut b = [Block::from(plain)];
            AesKeys::new(&key).encrypt_blocks(&mut b);
            assert_eq!(crate::test_util::hex(want), b[0].to_vec());
        }
    }

    proptest! {
        /// The 16 lanes (AVX-512 here when the CPU has it) equal the portable path, for any
        /// states, blocks anywhere in memory and any lane masks.
        #[test]
        fn sixteen_lanes_equal_the_portable_path(
            states in proptest::collection::vec(any::<[u32; 5]>(), LANES),
            bytes in proptest::collection::vec(any::<u8>(), 64 * LANES * 3 + 63),
            shift in 0usize..64,
            order in proptest::collection::vec(0usize..3 * LANES, 3 * LANES),
            masks in proptest::collection::vec(any::<u16>(), 1..=3),
        ) {
            let states: [[u32; 5]; LANES] = states.try_into().unwrap();
            // Blocks at unaligned, scattered places of one buffer.
            let block = |k: usize| -> &[u8; 64] {
                bytes[shift + 64 * k..shift + 64 * k + 64].try_into().unwrap()
            };
            let sets: Vec<[&[u8; 64]; LANES]> = (0..masks.len())
                .map(|k| std::array::from_fn(|l| block(order[k * LANES + l])))
                .collect();
            let mut simd = states;
            sha1_compress16(&mut simd, &sets, &masks);
            let mut portable = states;
            sha1_compress16_portable(&mut portable, &sets, &masks);
            prop_assert_eq!(simd, portable);
        }
    }

    #[test]
    fn the_fips_180_vector_abc_in_every_lane() {
        // FIPS 180-2 appendix A.1: SHA-1("abc"), one padded block.
        let mut block = [0u8; 64];
        block[..3].copy_from_slice(b"abc");
        block[3] = 0x80;
        block[63] = 24;
        let init = [
            0x6745_2301,
            0xEFCD_AB89,
            0x98BA_DCFE,
            0x1032_5476,
            0xC3D2_E1F0,
        ];
        let mut states = [init; LANES];
        sha1_compress16(&mut states, &[[&block; LANES]], &[0xffff]);
        let want = [
            0xA999_3E36,
            0x4706_816A,
            0xBA3E_2571,
            0x7850_C26C,
            0x9CD0_D89D,
        ];
        assert_eq!(states, [want; LANES]);
    }

    #[test]
    fn the_cpu_check_is_reported() {
        // Not an assertion about the machine: which path the other tests took, in the log.
        eprintln!("SIMD paths: {:?}", Features::get());
    }
}
