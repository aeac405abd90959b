//! Keys at rest: the key-encryption key (KEK) from a file, one AES-256-GCM data key per UTC
//! day wrapped by it, and sealing/opening of records with associated data.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::CdrError;

/// Length of the KEK and of every day key.
pub const KEY_LEN: usize = 32;
/// GCM nonce length; nonces are random per sealed item.
pub(crate) const NONCE_LEN: usize = 12;
/// GCM tag length.
pub(crate) const TAG_LEN: usize = 16;

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
        getrandom::getrandom(&mut key[..])
            .map_err(|e| CdrError::Io(io::Error::other(e.to_string())))?;
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
}

/// One UTC day's data key, unwrapped. Zeroised on drop; never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct DayKey([u8; KEY_LEN]);

impl fmt::Debug for DayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DayKey(<redacted>)")
    }
}

fn random_nonce() -> Result<[u8; NONCE_LEN], CdrError> {
    let mut n = [0u8; NONCE_LEN];
    getrandom::getrandom(&mut n).map_err(|e| CdrError::Io(io::Error::other(e.to_string())))?;
    Ok(n)
}

/// Seals `plain` under `cipher` with `aad`: nonce || ciphertext || tag.
fn seal_with(cipher: &Aes256Gcm, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, CdrError> {
    let nonce = random_nonce()?;
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
        .map_err(|_| CdrError::Io(io::Error::other("encryption failed")))?;
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens nonce || ciphertext || tag; `None` if it does not authenticate.
fn open_with(cipher: &Aes256Gcm, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
        .map(Zeroizing::new)
}

impl DayKey {
    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&self.0).into())
    }

    /// Seals a record or manifest.
    pub(crate) fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, CdrError> {
        seal_with(&self.cipher(), aad, plain)
    }

    /// Opens a sealed record or manifest.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        open_with(&self.cipher(), aad, sealed)
    }
}

fn wrap_aad(day: &str) -> Vec<u8> {
    let mut aad = b"relay-cdr-daykey-v1:".to_vec();
    aad.extend_from_slice(day.as_bytes());
    aad
}

/// Where wrapped day keys live: `<dir>/keys/<day>.key`.
pub(crate) fn day_key_path(keys_dir: &Path, day: &str) -> PathBuf {
    keys_dir.join(format!("{day}.key"))
}

/// Loads the day key of `day`, or `None` if it was never made or has been destroyed.
pub(crate) fn load_day_key(
    kek: &Kek,
    keys_dir: &Path,
    day: &str,
) -> Result<Option<DayKey>, CdrError> {
    let path = day_key_path(keys_dir, day);
    let sealed = match fs::read(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let plain = open_with(&kek.cipher(), &wrap_aad(day), &sealed).ok_or_else(|| {
        CdrError::WrongKek(format!(
            "the day key {} does not open with this key-encryption key (wrong KEK, or the file was altered)",
            path.display()
        ))
    })?;
    if plain.len() != KEY_LEN {
        return Err(CdrError::Corrupt(format!(
            "day key {} has the wrong length",
            path.display()
        )));
    }
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&plain);
    Ok(Some(DayKey(key)))
}

/// Makes, wraps and durably stores a fresh day key for `day`.
pub(crate) fn create_day_key(kek: &Kek, keys_dir: &Path, day: &str) -> Result<DayKey, CdrError> {
    let mut key = DayKey([0u8; KEY_LEN]);
    getrandom::getrandom(&mut key.0).map_err(|e| CdrError::Io(io::Error::other(e.to_string())))?;
    let sealed = seal_with(&kek.cipher(), &wrap_aad(day), &key.0)?;
    super::fsutil::write_durably(&day_key_path(keys_dir, day), &sealed)?;
    Ok(key)
}
