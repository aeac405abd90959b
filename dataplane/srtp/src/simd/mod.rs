//! The one module of this crate allowed `unsafe`: SIMD paths chosen at run time, each with
//! the portable path beside it and property tests proving them equal (the decision on
//! `unsafe` for SIMD in the performance issue, as smoltcp fences `phy/sys`).
//!
//! * [`AesKeys`]: AES-128/256 round keys expanded once and AES-CTR keystream with AES-NI,
//!   8 blocks in flight. 176 or 240 bytes per key where the `aes` crate's run-time-detected
//!   type keeps room for its portable bit-sliced schedule as well (704 / 960 bytes): SRTP
//!   keeps two of them per context, and a relay a million contexts. Without AES-NI (or with
//!   `RELAY_SRTP_NO_SIMD=1`) the `aes` crate's portable implementation is used.
//!
//! The CPU check runs once and is cached ([`Features::get`]); `RELAY_SRTP_NO_SIMD=1` in the
//! environment turns every SIMD path off (so the portable path can be run on its own).

#![allow(unsafe_code)]

use std::sync::OnceLock;

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes128Enc, Aes256Enc, Block};
use zeroize::{Zeroize, ZeroizeOnDrop};

#[cfg(target_arch = "x86_64")]
mod aes_ni;

/// The SIMD paths this CPU offers (and the environment allows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Features {
    /// AES-NI (`aes`) with SSE2: the AES rounds in hardware.
    pub(crate) aes_ni: bool,
}

impl Features {
    /// Detected once per process.
    pub(crate) fn get() -> Features {
        static FEATURES: OnceLock<Features> = OnceLock::new();
        *FEATURES.get_or_init(Features::detect)
    }

    fn detect() -> Features {
        if std::env::var_os("RELAY_SRTP_NO_SIMD").is_some_and(|v| v != "0") {
            return Features { aes_ni: false };
        }
        #[cfg(target_arch = "x86_64")]
        {
            Features {
                aes_ni: std::arch::is_x86_feature_detected!("aes")
                    && std::arch::is_x86_feature_detected!("sse2"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Features { aes_ni: false }
        }
    }
}

/// An AES-128 or AES-256 encryption key, expanded once.
// The round keys inline (a packet reads them with its context's other hot fields), the rare
// portable schedules boxed.
#[allow(clippy::large_enum_variant)]
pub(crate) enum AesKeys {
    /// Round keys for AES-NI: 11 (AES-128) or 15 (AES-256), zeroised on drop.
    Ni(NiKeys),
    /// The `aes` crate's portable path (boxed: it is large, and only CPUs without AES-NI take it).
    Soft128(Box<Aes128Enc>),
    Soft256(Box<Aes256Enc>),
}

/// AES round keys as bytes (loaded unaligned per use).
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
            return AesKeys::Ni(NiKeys::expand(key));
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

    /// Encrypts each block in place (AES in ECB over independent blocks: the CTR keystream).
    #[inline]
    pub(crate) fn encrypt_blocks(&self, blocks: &mut [Block]) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Ni` keys are only made after `Features::get` found AES-NI and SSE2,
            // the features `encrypt_blocks` enables; its arguments are references.
            AesKeys::Ni(k) => unsafe { aes_ni::encrypt_blocks(&k.keys, k.rounds, blocks) },
            #[cfg(not(target_arch = "x86_64"))]
            AesKeys::Ni(_) => unreachable!("AES-NI keys are only made on x86_64"),
            AesKeys::Soft128(c) => c.encrypt_blocks(blocks),
            AesKeys::Soft256(c) => c.encrypt_blocks(blocks),
        }
    }

    /// XORs `data` with the AES-CTR keystream that starts at counter block `iv` (a 128-bit
    /// big-endian counter, as SRTP's AES-CM uses it: RFC 3711 section 4.1.1).
    #[inline]
    pub(crate) fn xor_keystream(&self, iv: &[u8; 16], data: &mut [u8]) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `encrypt_blocks`: made only where the CPU has AES-NI and SSE2.
            AesKeys::Ni(k) => unsafe { aes_ni::xor_keystream(&k.keys, k.rounds, iv, data) },
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

    #[test]
    fn the_cpu_check_is_reported() {
        // Not an assertion about the machine: which path the other tests took, in the log.
        eprintln!("SIMD paths: {:?}", Features::get());
    }
}
