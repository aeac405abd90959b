//! SRTP and SRTCP for the relay (RFC 3711, RFC 6188, RFC 7714), in pure Rust on the
//! `aes`, `ctr`, `sha1` and `aes-gcm` crates.
//!
//! * [`Suite`]: AES_CM_128/AES_256_CM with HMAC-SHA1 80- and 32-bit tags, AEAD_AES_128/256_GCM.
//!   No NULL cipher, no NULL authentication.
//! * [`MasterKey`], [`SdesKey`], [`CryptoAttribute`]: keys and their SDES `inline:` form
//!   (RFC 4568) with lifetime and MKI. Keys are zeroised on drop and never printed.
//! * [`Context`]: one direction's SRTP+SRTCP context. Session keys are derived once (KDR 0),
//!   AES key schedules expanded once, HMAC inner/outer states computed once. `protect_*` and
//!   `unprotect_*` work in place on `&mut [u8]`; [`rekey_rtp`] chains the two.
//! * Rollover counter estimation and replay windows follow RFC 3711 Appendix A and section
//!   3.3.2, and state changes only after a packet has authenticated.
//!
//! Hardware acceleration, detected at run time so release binaries need no
//! `-C target-cpu=native`: AES keys are AES-NI round keys, burst tags are SHA-1 on AVX-512
//! lanes and GCM is AES-NI with PCLMULQDQ (the fenced `simd` module, the only `unsafe` here);
//! without those features the `aes`, `sha1` (SHA-NI where present) and `aes-gcm` crates'
//! own code.
//!
//! Errors on the packet path are the small `Copy` enum [`SrtpError`], one counter each.

// Denied, not forbidden: `simd` (and only it) opts back in for its intrinsics.
#![deny(unsafe_code)]

mod context;
mod ct;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod hmac_sha1;
mod kdf;
mod key;
mod replay;
mod simd;
mod suite;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod vectors;

pub use context::{
    finish_rekey_rtp, rekey_rtcp, rekey_rtp, rekey_rtp_burst, staged_tags, Context, ContextConfig,
    StagedRtp, StreamPosition,
};
pub use error::SrtpError;
pub use key::{CryptoAttribute, KeyError, MasterKey, Mki, SdesKey};
pub use suite::{Suite, UnknownSuite};
