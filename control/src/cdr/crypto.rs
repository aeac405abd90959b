//! Keys at rest: the key-encryption key (KEK) from a file, the MAC keys derived from it, one
//! AES-256-GCM data key per UTC day and one audit key per UTC day, each wrapped by the KEK,
//! and sealing/opening with associated data.
//!
//! Wrapped keys live in the key directory, outside the store's data directory
//! ([`CdrConfig::keys_dir`](super::CdrConfig::keys_dir)): `<day>.key` for the day's records,
//! `audit/<day>.key` for the personal query terms of that day's audit entries. Destroying a
//! file shreds everything sealed under it.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::CdrError;

/// Length of the KEK and of every day key.
pub const KEY_LEN: usize = 32;
/// GCM nonce length.
pub(crate) const NONCE_LEN: usize = 12;
/// GCM tag length.
pub(crate) const TAG_LEN: usize = 16;
/// What sealing adds to a plaintext: nonce and tag.
pub(crate) const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// The key-encryption key. Zeroised on drop; never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Kek([u8; KEY_LEN]);

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    /// Reads the KEK from `path`: exactly 32 raw bytes, or 64 hex digits (with an optional
    /// trailing newline), readable by its owner only. Each refusal says how to fix it.
    pub fn load(path: &Path) -> Result<Kek, CdrError> {
        let meta = fs::metadata(path).map_err(|e| {
            CdrError::KeyFile(format!(
                "cannot read key-encryption key {}: {e}; create one with `relayctl keygen --out {}`",
                path.display(),
                path.display()
            ))
        })?;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(CdrError::KeyFile(format!(
                "key-encryption key {} is accessible by group or others (mode {:o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            )));
        }
        let raw = Zeroizing::new(
            fs::read(path)
                .map_err(|e| CdrError::KeyFile(format!("cannot read {}: {e}", path.display())))?,
        );
        let mut key = [0u8; KEY_LEN];
        let text = std::str::from_utf8(&raw).ok().map(str::trim_end);
        match (raw.len(), text) {
            (KEY_LEN, _) => key.copy_from_slice(&raw),
            (_, Some(hex)) if hex.len() == 2 * KEY_LEN && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                for (i, k) in key.iter_mut().enumerate() {
                    *k = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("checked hex digits");
                }
            }
            (n, _) => {
                return Err(CdrError::KeyFile(format!(
                    "key-encryption key {} has the wrong length ({n} bytes): it must be 32 random bytes or 64 hex digits; \
                     create one with `relayctl keygen --out {}`",
                    path.display(),
                    path.display()
                )))
            }
        }
        Ok(Kek(key))
    }

    /// Writes a fresh random KEK (64 hex digits) to `path` with mode 0600; refuses to
    /// overwrite an existing file.
    pub fn generate(path: &Path) -> Result<(), CdrError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(&mut key[..])?;
        let hex: Zeroizing<String> =
            Zeroizing::new(key.iter().map(|b| format!("{b:02x}")).collect());
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| CdrError::KeyFile(format!("cannot create {}: {e}", path.display())))?;
        f.write_all(hex.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        Ok(())
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&self.0).into())
    }

    /// A second copy, for a component that outlives the borrow (zeroised on drop as well).
    pub(crate) fn duplicate(&self) -> Kek {
        Kek(self.0)
    }

    /// A MAC key for one purpose, derived from the KEK: HMAC-SHA256(KEK, label). Whoever can
    /// make one can read the KEK, which is root's alone.
    pub(crate) fn mac_key(&self, label: &str) -> MacKey {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(b"relay-cdr-mac-key-v1:");
        mac.update(label.as_bytes());
        MacKey(mac.finalize().into_bytes().into())
    }
}

/// A KEK-derived key that authenticates grants and the audit log. Zeroised on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct MacKey([u8; 32]);

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey(<redacted>)")
    }
}

impl MacKey {
    fn hmac(&self, parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        for p in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac
    }

    /// The tag of `parts`, as hex.
    pub(crate) fn tag_hex(&self, parts: &[&[u8]]) -> String {
        hex(&self.hmac(parts).finalize().into_bytes())
    }

    /// Whether `tag_hex` is the tag of `parts` (constant-time comparison).
    pub(crate) fn verify_hex(&self, parts: &[&[u8]], tag_hex: &str) -> bool {
        match unhex(tag_hex) {
            Some(tag) => self.hmac(parts).verify_slice(&tag).is_ok(),
            None => false,
        }
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Bytes of a hex string, or `None` if it is not one.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), CdrError> {
    getrandom::getrandom(buf).map_err(|e| CdrError::Io(io::Error::other(e.to_string())))
}

fn random_nonce() -> Result<[u8; NONCE_LEN], CdrError> {
    let mut n = [0u8; NONCE_LEN];
    fill_random(&mut n)?;
    Ok(n)
}

/// Appends `nonce || ciphertext || tag` of `plain` to `out`.
fn seal_into(
    cipher: &Aes256Gcm,
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    plain: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CdrError> {
    out.extend_from_slice(&nonce);
    let start = out.len();
    out.extend_from_slice(plain);
    match cipher.encrypt_in_place_detached(Nonce::from_slice(&nonce), aad, &mut out[start..]) {
        Ok(tag) => {
            out.extend_from_slice(&tag);
            Ok(())
        }
        Err(_) => {
            out[start..].zeroize();
            out.truncate(start - NONCE_LEN);
            Err(CdrError::Io(io::Error::other("encryption failed")))
        }
    }
}

/// Opens `nonce || ciphertext || tag` into `plain` (cleared first); false if it does not
/// authenticate, and then `plain` is left empty. The caller zeroises `plain` when done with
/// it (each open overwrites the previous plaintext's bytes as far as the new one reaches).
fn open_into(cipher: &Aes256Gcm, aad: &[u8], sealed: &[u8], plain: &mut Vec<u8>) -> bool {
    plain.clear();
    if sealed.len() < SEAL_OVERHEAD {
        return false;
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
    plain.extend_from_slice(ct);
    let ok = cipher
        .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, plain, Tag::from_slice(tag))
        .is_ok();
    if !ok {
        plain.zeroize();
        plain.clear();
    }
    ok
}

fn seal_random(cipher: &Aes256Gcm, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, CdrError> {
    let mut out = Vec::with_capacity(plain.len() + SEAL_OVERHEAD);
    seal_into(cipher, random_nonce()?, aad, plain, &mut out)?;
    Ok(out)
}

fn open_owned(cipher: &Aes256Gcm, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut plain = Zeroizing::new(Vec::new());
    open_into(cipher, aad, sealed, &mut plain).then_some(plain)
}

/// One UTC day's data key (or audit key), unwrapped, with its cipher ready: the key schedule
/// is computed once, not per record. Zeroised on drop (`aes` and `ghash` are built with their
/// `zeroize` features); never printed.
pub(crate) struct DayKey {
    cipher: Aes256Gcm,
}

impl fmt::Debug for DayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DayKey(<redacted>)")
    }
}

impl DayKey {
    fn from_bytes(bytes: &[u8; KEY_LEN]) -> DayKey {
        DayKey {
            cipher: Aes256Gcm::new(bytes.into()),
        }
    }

    /// Seals a small item under a random nonce.
    pub(crate) fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, CdrError> {
        seal_random(&self.cipher, aad, plain)
    }

    /// Appends a sealed item under `nonce` to `out`. The caller guarantees the nonce is never
    /// used twice with this key (see [`NonceSeq`]).
    pub(crate) fn seal_into(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        plain: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CdrError> {
        seal_into(&self.cipher, nonce, aad, plain, out)
    }

    /// Opens a sealed item.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        open_owned(&self.cipher, aad, sealed)
    }

    /// Opens a sealed item into a buffer the caller reuses (and zeroises when done); false if
    /// it does not authenticate.
    pub(crate) fn open_into(&self, aad: &[u8], sealed: &[u8], plain: &mut Vec<u8>) -> bool {
        open_into(&self.cipher, aad, sealed, plain)
    }
}

/// Nonces for one segment writer: 8 random bytes drawn when the writer starts, then a 32-bit
/// counter. Writers never share a prefix by more than chance (2^-64 per pair), and a writer
/// never repeats a counter, so no nonce is used twice under a day key, without a system call
/// per record.
pub(crate) struct NonceSeq {
    prefix: [u8; 8],
    next: u32,
}

impl NonceSeq {
    pub(crate) fn new() -> Result<NonceSeq, CdrError> {
        let mut prefix = [0u8; 8];
        fill_random(&mut prefix)?;
        Ok(NonceSeq { prefix, next: 0 })
    }

    pub(crate) fn next(&mut self) -> Result<[u8; NONCE_LEN], CdrError> {
        let n = self.next;
        self.next = n.checked_add(1).ok_or_else(|| {
            CdrError::Io(io::Error::other(
                "nonce counter exhausted: the segment must be rotated",
            ))
        })?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..8].copy_from_slice(&self.prefix);
        nonce[8..].copy_from_slice(&n.to_be_bytes());
        Ok(nonce)
    }
}

/// Which wrapped key: the data key of a day, or the audit key of a day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// Seals the day's records, manifests, segment list and statistics.
    Data,
    /// Seals the personal query terms of the day's audit entries.
    Audit,
    /// Seals the day's just-in-time SIP traces (trace.rs).
    Trace,
}

impl KeyKind {
    fn wrap_aad(self, day: &str) -> Vec<u8> {
        let mut aad = match self {
            KeyKind::Data => b"relay-cdr-daykey-v1:".to_vec(),
            KeyKind::Audit => b"relay-cdr-auditkey-v1:".to_vec(),
            KeyKind::Trace => b"relay-sip-tracekey-v1:".to_vec(),
        };
        aad.extend_from_slice(day.as_bytes());
        aad
    }

    /// The directory of this kind of key inside the key directory.
    pub(crate) fn dir(self, keys_dir: &Path) -> PathBuf {
        match self {
            KeyKind::Data => keys_dir.to_owned(),
            KeyKind::Audit => keys_dir.join("audit"),
            KeyKind::Trace => keys_dir.join("trace"),
        }
    }
}

/// Where the wrapped key of `day` lives: `<keys>/<day>.key`, `<keys>/audit/<day>.key` or
/// `<keys>/trace/<day>.key`.
pub(crate) fn key_path(keys_dir: &Path, kind: KeyKind, day: &str) -> PathBuf {
    kind.dir(keys_dir).join(format!("{day}.key"))
}

/// Loads the key of `day` from `path`, or `None` if it was never made or has been destroyed.
pub(crate) fn load_key(
    kek: &Kek,
    path: &Path,
    kind: KeyKind,
    day: &str,
) -> Result<Option<DayKey>, CdrError> {
    let sealed = match fs::read(path) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let plain = open_owned(&kek.cipher(), &kind.wrap_aad(day), &sealed).ok_or_else(|| {
        CdrError::WrongKek(format!(
            "the day key {} does not open with this key-encryption key (wrong KEK, or the file was altered)",
            path.display()
        ))
    })?;
    let bytes: Zeroizing<[u8; KEY_LEN]> =
        Zeroizing::new(plain.as_slice().try_into().map_err(|_| {
            CdrError::Corrupt(format!("day key {} has the wrong length", path.display()))
        })?);
    Ok(Some(DayKey::from_bytes(&bytes)))
}

/// Loads the key of `day`, or makes, wraps and durably stores a fresh one. Never replaces a
/// key another process made at the same moment: the file is linked into place, which fails
/// if it exists, and then that key is used.
pub(crate) fn load_or_create_key(
    kek: &Kek,
    keys_dir: &Path,
    kind: KeyKind,
    day: &str,
) -> Result<DayKey, CdrError> {
    let path = key_path(keys_dir, kind, day);
    if let Some(k) = load_key(kek, &path, kind, day)? {
        return Ok(k);
    }
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    fill_random(&mut bytes[..])?;
    let sealed = seal_random(&kek.cipher(), &kind.wrap_aad(day), &bytes[..])?;
    let dir = kind.dir(keys_dir);
    super::fsutil::private_dir(&dir)?;
    let mut suffix = [0u8; 6];
    fill_random(&mut suffix)?;
    let tmp = dir.join(format!(".{day}.{}.tmp", hex(&suffix)));
    super::fsutil::write_new_synced(&tmp, &sealed)?;
    let linked = fs::hard_link(&tmp, &path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            super::fsutil::sync_dir(&dir)?;
            Ok(DayKey::from_bytes(&bytes))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => load_key(kek, &path, kind, day)?
            .ok_or_else(|| CdrError::Io(io::Error::other("day key vanished while created"))),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_and_refuse_changes() {
        let key = DayKey::from_bytes(&[7u8; KEY_LEN]);
        let mut nonces = NonceSeq::new().unwrap();
        let mut out = b"prefix".to_vec();
        key.seal_into(nonces.next().unwrap(), b"aad", b"hello", &mut out)
            .unwrap();
        let sealed = &out[6..];
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        let mut plain = Vec::new();
        assert!(key.open_into(b"aad", sealed, &mut plain));
        assert_eq!(plain, b"hello");
        assert!(!key.open_into(b"other", sealed, &mut plain));
        assert!(plain.is_empty());
        let mut bad = sealed.to_vec();
        bad[NONCE_LEN] ^= 1;
        assert!(key.open(b"aad", &bad).is_none());
        assert!(key.open(b"aad", &sealed[..10]).is_none());
        let n1 = nonces.next().unwrap();
        let n2 = nonces.next().unwrap();
        assert_ne!(n1, n2);
        assert_eq!(n1[..8], n2[..8]);
    }

    #[test]
    fn mac_keys_differ_by_label_and_verify_in_constant_time() {
        let kek = Kek([3u8; KEY_LEN]);
        let (a, b) = (kek.mac_key("grant"), kek.mac_key("audit"));
        let tag = a.tag_hex(&[b"x", b"y"]);
        assert!(a.verify_hex(&[b"x", b"y"], &tag));
        assert!(!a.verify_hex(&[b"xy"], &tag));
        assert!(!b.verify_hex(&[b"x", b"y"], &tag));
        assert!(!a.verify_hex(&[b"x", b"y"], "zz"));
        assert_eq!(unhex(&hex(&[0, 255, 16])).unwrap(), vec![0, 255, 16]);
    }
}
