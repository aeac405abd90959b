//! [`GcmKeys`]: AES-GCM with our own paths (`gcm_clmul` on 128-bit registers, `gcm_vaes`
//! on 256-bit ones for packets whose GHASH is one group), chosen when the key is made, and
//! the tests that prove both equal to the `aes-gcm` crate.

use zeroize::{Zeroize, ZeroizeOnDrop};

#[cfg(target_arch = "x86_64")]
use super::{gcm_clmul, gcm_vaes};
use super::{Features, NiKeys};

/// An AES-GCM key for AES-NI and PCLMULQDQ: the AES round keys and the powers of the hash
/// key that GHASH folds with (`gcm_clmul`). Zeroised on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct GcmKeys {
    aes: NiKeys,
    /// Short packets take `gcm_vaes` (the CPU has VAES and VPCLMULQDQ).
    wide: bool,
    #[cfg(target_arch = "x86_64")]
    powers: [[u8; 16]; gcm_clmul::POWERS],
}

impl GcmKeys {
    /// Expands a 16- or 32-byte key; `None` where the CPU lacks AES-NI or PCLMULQDQ (or
    /// `RELAY_SRTP_NO_SIMD` is set): the caller then uses the `aes-gcm` crate.
    pub(crate) fn new(key: &[u8]) -> Option<GcmKeys> {
        let f = Features::get();
        if !(f.aes_ni && f.clmul) {
            return None;
        }
        GcmKeys::with_paths(key, f.vaes)
    }

    /// [`GcmKeys::new`] without the 256-bit path, for the tests that compare the two.
    #[cfg(test)]
    fn narrow(key: &[u8]) -> Option<GcmKeys> {
        let f = Features::get();
        if !(f.aes_ni && f.clmul) {
            return None;
        }
        GcmKeys::with_paths(key, false)
    }

    fn with_paths(key: &[u8], wide: bool) -> Option<GcmKeys> {
        #[cfg(target_arch = "x86_64")]
        {
            let aes = NiKeys::expand(key);
            let mut powers = [[0u8; 16]; gcm_clmul::POWERS];
            // SAFETY: `Features::get` found AES-NI, SSE2, SSSE3 and PCLMULQDQ, the features
            // `hash_key_powers` enables; the keys were expanded for their `rounds`.
            unsafe { gcm_clmul::hash_key_powers(&aes.keys, aes.rounds, &mut powers) };
            Some(GcmKeys { aes, wide, powers })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (key, wide);
            None
        }
    }

    /// The key as `gcm_clmul` takes it.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn key(&self) -> gcm_clmul::Key<'_> {
        let rounds = self.aes.rounds;
        gcm_clmul::Key {
            round_keys: &self.aes.keys[..=usize::from(rounds)],
            rounds,
            powers: &self.powers,
        }
    }

    /// Encrypts `data` in place with IV `iv` and additional data `aad`; returns the tag.
    #[inline]
    pub(crate) fn seal(&self, iv: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
        #[cfg(target_arch = "x86_64")]
        {
            if self.wide && gcm_vaes::fits(aad.len(), data.len()) {
                // SAFETY: `wide` keys are only made where `Features::get` found the features
                // `crypt_short` enables; the packet fits; the arguments are references.
                return unsafe {
                    gcm_vaes::crypt_short(self.key(), iv, aad, data, gcm_vaes::Mode::Seal)
                };
            }
            // SAFETY: `GcmKeys` are only made where `Features::get` found the features `seal`
            // enables, with `powers` made from these round keys; the arguments are references.
            unsafe { gcm_clmul::seal(self.key(), iv, aad, data) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("GCM keys are only made on x86_64 ({iv:?} {aad:?} {data:?})")
    }

    /// Checks `tag` (in constant time) and decrypts `data` in place; on a mismatch `data` is
    /// left as it was and `Err` returned.
    #[inline]
    pub(crate) fn open(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), ()> {
        #[cfg(target_arch = "x86_64")]
        {
            if self.wide && gcm_vaes::fits(aad.len(), data.len()) {
                use gcm_vaes::{crypt_short, Mode};
                // SAFETY: as in `seal`.
                let want = unsafe { crypt_short(self.key(), iv, aad, data, Mode::Unseal) };
                if crate::ct::tags_match(&want, tag) {
                    return Ok(());
                }
                // SAFETY: as in `seal`.
                unsafe { crypt_short(self.key(), iv, aad, data, Mode::KeystreamOnly) };
                return Err(());
            }
            // SAFETY: as in `seal`.
            let want = unsafe { gcm_clmul::unseal(self.key(), iv, aad, data) };
            if crate::ct::tags_match(&want, tag) {
                return Ok(());
            }
            // Forged: the keystream XORed again puts the ciphertext back.
            // SAFETY: as in `seal`.
            unsafe { gcm_clmul::undo(self.key(), iv, None, data) };
            Err(())
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("GCM keys are only made on x86_64 ({iv:?} {aad:?} {data:?} {tag:?})")
    }

    /// Re-keys `data` in place from these keys to `to` in one pass: checks `tag` (the data's
    /// tag under these keys and `iv`, in constant time) and returns the new data's tag under
    /// `to` and `to_iv`, the same AAD for both. The same as [`GcmKeys::open`] then `to`'s
    /// [`GcmKeys::seal`], without the plaintext ever in memory. On a mismatch `data` is left
    /// as it was and `Err` returned.
    #[inline]
    pub(crate) fn rekey(
        &self,
        iv: &[u8; 12],
        tag: &[u8],
        to: &GcmKeys,
        to_iv: &[u8; 12],
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<[u8; 16], ()> {
        #[cfg(target_arch = "x86_64")]
        {
            if self.wide && to.wide && gcm_vaes::fits(aad.len(), data.len()) {
                // Two passes on 256-bit registers beat one on 128-bit ones.
                self.open(iv, aad, data, tag)?;
                return Ok(to.seal(to_iv, aad, data));
            }
            // SAFETY: as in `seal`, for both keys.
            let (want, made) =
                unsafe { gcm_clmul::rekey(self.key(), iv, to.key(), to_iv, aad, data) };
            if crate::ct::tags_match(&want, tag) {
                return Ok(made);
            }
            // SAFETY: as in `seal`, for both keys.
            unsafe { gcm_clmul::undo(self.key(), iv, Some((to.key(), to_iv)), data) };
            Err(())
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!(
            "GCM keys are only made on x86_64 ({iv:?} {tag:?} {} {to_iv:?} {aad:?} {data:?})",
            to.powers.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::aead::KeyInit;
    use proptest::prelude::*;

    /// The `aes-gcm` crate's answer: (ciphertext, tag).
    fn crate_gcm(key: &[u8], iv: &[u8; 12], aad: &[u8], data: &[u8]) -> (Vec<u8>, [u8; 16]) {
        use aes_gcm::aead::AeadInPlace;
        use aes_gcm::{Aes128Gcm, Aes256Gcm};
        let mut out = data.to_vec();
        let tag = match key.len() {
            16 => Aes128Gcm::new(key.into()).encrypt_in_place_detached(iv.into(), aad, &mut out),
            _ => Aes256Gcm::new(key.into()).encrypt_in_place_detached(iv.into(), aad, &mut out),
        };
        (out, tag.unwrap().into())
    }

    proptest! {
        /// Our AES-GCM (AES-NI and PCLMULQDQ) gives the `aes-gcm` crate's ciphertext and tag
        /// for any key, IV, additional data and length 0 to 1,500 bytes, opens what it seals,
        /// and refuses a changed tag, ciphertext or AAD byte leaving the data as it was.
        #[test]
        fn gcm_equals_the_aes_gcm_crate(
            long in any::<bool>(),
            key in any::<[u8; 32]>(),
            iv in any::<[u8; 12]>(),
            aad in proptest::collection::vec(any::<u8>(), 0..80),
            data in proptest::collection::vec(any::<u8>(), 0..=1500),
            flip in any::<(u16, u8)>(),
            narrow in any::<bool>(),
        ) {
            let key = if long { &key[..] } else { &key[..16] };
            // Both SIMD paths: 256-bit registers for short packets where the CPU has VAES,
            // 128-bit ones.
            let ours = if narrow { GcmKeys::narrow(key) } else { GcmKeys::new(key) };
            let Some(ours) = ours else {
                return Ok(());
            };
            let (want, want_tag) = crate_gcm(key, &iv, &aad, &data);
            let mut sealed = data.clone();
            let tag = ours.seal(&iv, &aad, &mut sealed);
            prop_assert_eq!(&sealed, &want);
            prop_assert_eq!(tag, want_tag);

            let mut opened = sealed.clone();
            prop_assert!(ours.open(&iv, &aad, &mut opened, &tag).is_ok());
            prop_assert_eq!(&opened, &data);

            // One bit changed in the tag, the ciphertext or the AAD.
            let bit = 1u8 << (flip.1 % 8);
            let (mut bad_tag, mut bad_text, mut bad_aad) = (tag, sealed.clone(), aad.clone());
            let place = usize::from(flip.0);
            match place % 3 {
                0 => bad_tag[place % 16] ^= bit,
                1 if !bad_text.is_empty() => {
                    let n = bad_text.len();
                    bad_text[place % n] ^= bit;
                }
                _ if !bad_aad.is_empty() => {
                    let n = bad_aad.len();
                    bad_aad[place % n] ^= bit;
                }
                _ => bad_tag[0] ^= bit,
            }
            let before = bad_text.clone();
            prop_assert!(ours.open(&iv, &bad_aad, &mut bad_text, &bad_tag).is_err());
            prop_assert_eq!(bad_text, before);
        }
    }

    proptest! {
        /// A one-pass re-key equals opening with one key and sealing with the other, for any
        /// two keys (128 or 256 bits), IVs, AAD and lengths; a wrong tag anywhere is refused
        /// and leaves the data as it was.
        #[test]
        fn gcm_rekey_equals_open_then_seal(
            long in any::<(bool, bool)>(),
            ka in any::<[u8; 32]>(),
            kb in any::<[u8; 32]>(),
            ivs in any::<([u8; 12], [u8; 12])>(),
            aad in proptest::collection::vec(any::<u8>(), 0..60),
            data in proptest::collection::vec(any::<u8>(), 0..=1500),
            forge in any::<Option<(u8, u8)>>(),
            narrow in any::<(bool, bool)>(),
        ) {
            let ka = if long.0 { &ka[..] } else { &ka[..16] };
            let kb = if long.1 { &kb[..] } else { &kb[..16] };
            let make = |k, narrow| if narrow { GcmKeys::narrow(k) } else { GcmKeys::new(k) };
            let (Some(a), Some(b)) = (make(ka, narrow.0), make(kb, narrow.1)) else {
                return Ok(());
            };
            let mut sealed = data.clone();
            let mut tag = a.seal(&ivs.0, &aad, &mut sealed);
            if let Some((at, bit)) = forge {
                tag[usize::from(at) % 16] ^= 1 << (bit % 8);
            }
            let mut fused = sealed.clone();
            let got = a.rekey(&ivs.0, &tag, &b, &ivs.1, &aad, &mut fused);
            if forge.is_some() {
                prop_assert!(got.is_err());
                prop_assert_eq!(fused, sealed);
            } else {
                let mut want = data.clone();
                let want_tag = b.seal(&ivs.1, &aad, &mut want);
                prop_assert_eq!(got, Ok(want_tag));
                prop_assert_eq!(fused, want);
            }
        }
    }

    #[test]
    fn gcm_test_case_4_of_the_gcm_spec() {
        // McGrew and Viega, "The Galois/Counter Mode of Operation", test case 4 (AES-128,
        // 60 bytes of plaintext, 20 of AAD) and case 16 (its AES-256 twin).
        let hex = crate::test_util::hex;
        let plain = hex(concat!(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72",
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
        ));
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let iv: [u8; 12] = hex("cafebabefacedbaddecaf888").try_into().unwrap();
        for (key, cipher, tag) in [
            (
                "feffe9928665731c6d6a8f9467308308",
                concat!(
                    "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e",
                    "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091"
                ),
                "5bc94fbc3221a5db94fae95ae7121a47",
            ),
            (
                "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
                concat!(
                    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa",
                    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
                ),
                "76fc6ece0f4e1768cddf8853bb2d551b",
            ),
        ] {
            for ours in [GcmKeys::new(&hex(key)), GcmKeys::narrow(&hex(key))] {
                let Some(ours) = ours else {
                    eprintln!("no AES-NI/PCLMULQDQ: the aes-gcm crate's path is tested elsewhere");
                    return;
                };
                let mut data = plain.clone();
                let got = ours.seal(&iv, &aad, &mut data);
                assert_eq!(data, hex(cipher));
                assert_eq!(got.to_vec(), hex(tag));
            }
        }
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// `cargo test --release -p relay-srtp --lib -- --ignored --nocapture gcm_seal_loop`: the
    /// cost of one GCM seal of a G.711 payload, for a profiler (not a check).
    #[test]
    #[ignore = "a profiling loop, not a check"]
    fn gcm_seal_loop() {
        let Some(keys) = GcmKeys::new(&[7u8; 16]) else {
            return;
        };
        let mut data = [0x55u8; 160];
        let aad = [0x80u8; 12];
        let rounds = 2_000_000u32;
        let t = std::time::Instant::now();
        let mut acc = 0u8;
        for i in 0..rounds {
            let mut iv = [0u8; 12];
            iv[..4].copy_from_slice(&i.to_be_bytes());
            acc ^= keys.seal(&iv, &aad, &mut data)[0];
        }
        eprintln!(
            "seal 160 bytes: {:.1} ns ({acc})",
            t.elapsed().as_secs_f64() * 1e9 / f64::from(rounds)
        );
    }
}
