//! Just-in-time SIP traces: the full text of every SIP message relay-control sends and
//! receives, written only while an operator's trace grant is active, encrypted, and kept no
//! longer than the call records.
//!
//! ```text
//! <keys>/trace/<day>.key       that day's trace key, wrapped by the KEK            until the day is purged
//! traces/<day>/<grant>.trace   the messages of that UTC day under grant <grant>     until the day is purged
//! ```
//!
//! A trace file is a sequence of frames, each a 4-byte big-endian length and one item sealed
//! with the day's trace key (AES-256-GCM, random nonce; the associated data binds the day
//! and the grant, so a frame moved to another file does not open). An item is one JSON
//! [`TraceEntry`]. A torn last frame (a crash mid-write) ends the read of that file and is
//! reported. The purge destroys the day's trace key with its record key, then deletes the
//! files: a trace lives exactly as long as the records of its day.
//!
//! SDES keys never reach a trace: `a=crypto` key material (`inline:` values) is replaced by
//! `inline:<redacted>` before an entry is sealed ([`redact_keys`]). Traces are written from
//! the parsed message in its canonical form (what the B2BUA saw), not the raw bytes; messages
//! the parser refused are counted in the metrics, not traced.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::access::Grant;
use super::crypto::{self, DayKey, Kek, KeyKind};
use super::day::Layout;
use super::{day_of, fsutil, CdrConfig, CdrError};

/// Which way a message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received by relay-control.
    In,
    /// Sent by relay-control.
    Out,
}

/// One traced SIP message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEntry {
    /// When, ms since the epoch.
    pub ts_ms: i64,
    /// Received or sent.
    pub direction: Direction,
    /// `tls`, `tcp` or `udp`.
    pub transport: String,
    /// The far end (address and port, or the trunk peer's host and port).
    pub peer: String,
    /// The message, with SDES keys redacted.
    pub text: String,
}

/// The associated data of a frame.
fn aad(day: &str, grant: &str) -> Vec<u8> {
    format!("relay-sip-trace-v1:{day}:{grant}").into_bytes()
}

/// Replaces the key material of every `a=crypto` line (`inline:<base64>[|lifetime][|mki]`)
/// with `inline:<redacted>`, keeping the suite and the rest of the line.
pub fn redact_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("inline:") {
        let start = i + "inline:".len();
        out.push_str(&rest[..start]);
        out.push_str("<redacted>");
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || c == ';')
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn traces_dir(layout: &Layout) -> PathBuf {
    layout.dir.join("traces")
}

fn grant_file_name(grant: &str) -> Option<String> {
    // Grant ids are ours (hex); anything else is not a file name we write.
    (!grant.is_empty() && grant.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| format!("{grant}.trace"))
}

/// Appends trace entries; owned by one thread of relay-control.
pub struct TraceWriter {
    layout: Layout,
    kek: Kek,
    keys: HashMap<String, DayKey>,
    files: HashMap<(String, String), File>,
}

impl std::fmt::Debug for TraceWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceWriter")
            .field("dir", &self.layout.dir)
            .finish_non_exhaustive()
    }
}

impl TraceWriter {
    /// A writer for the store `config` describes (its KEK is loaded and checked).
    pub fn open(config: &CdrConfig) -> Result<TraceWriter, CdrError> {
        config.validate()?;
        Ok(TraceWriter {
            layout: config.layout(),
            kek: Kek::load(&config.kek_file)?,
            keys: HashMap::new(),
            files: HashMap::new(),
        })
    }

    /// Seals `entry` (its keys redacted) into the trace of `grant` for the entry's day.
    pub fn append(&mut self, grant: &str, entry: &TraceEntry) -> Result<(), CdrError> {
        let name = grant_file_name(grant)
            .ok_or_else(|| CdrError::Config(format!("{grant:?} is not a grant id")))?;
        let day = day_of(entry.ts_ms);
        if !self.keys.contains_key(&day) {
            // Yesterday's handles are no longer needed.
            self.keys.clear();
            self.files.clear();
            let key =
                crypto::load_or_create_key(&self.kek, &self.layout.keys_dir, KeyKind::Trace, &day)?;
            self.keys.insert(day.clone(), key);
        }
        let key = &self.keys[&day];
        let mut redacted = entry.clone();
        redacted.text = redact_keys(&entry.text);
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(&redacted).map_err(|e| CdrError::Io(io::Error::other(e)))?,
        );
        let sealed = key.seal(&aad(&day, grant), &plain)?;
        let file = match self.files.entry((day.clone(), grant.to_owned())) {
            std::collections::hash_map::Entry::Occupied(f) => f.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let dir = traces_dir(&self.layout).join(&day);
                fsutil::private_dir(&traces_dir(&self.layout))?;
                fsutil::private_dir(&dir)?;
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(dir.join(&name))?;
                v.insert(f)
            }
        };
        let mut frame = Vec::with_capacity(4 + sealed.len());
        frame.extend_from_slice(&(sealed.len() as u32).to_be_bytes());
        frame.extend_from_slice(&sealed);
        file.write_all(&frame)?;
        Ok(())
    }
}

/// What reading the traces found.
#[derive(Debug, Default)]
pub struct TraceRead {
    /// Every entry that opened, with the id of the grant it was written under, oldest first.
    pub entries: Vec<(String, TraceEntry)>,
    /// Files or frames that did not open (damage, a torn last frame, a destroyed key).
    pub findings: Vec<String>,
}

/// Reads every trace of the days from `from_day` to `to_day` (inclusive, `YYYY-MM-DD`) under
/// `grant`, which must be an authentic read grant (whether it lapsed is checked by
/// [`Access::require`](super::access::Access::require), which has the clock). The caller
/// audits the read.
pub fn read(
    config: &CdrConfig,
    grant: &Grant,
    from_day: &str,
    to_day: &str,
) -> Result<TraceRead, CdrError> {
    if grant.scope != super::access::GrantScope::Read {
        return Err(CdrError::NoGrant(format!(
            "grant {} allows writing a trace, not reading one: get a read grant with relayctl access grant",
            grant.id
        )));
    }
    super::access::Access::open(config)?.check(grant)?;
    let kek = &Kek::load(&config.kek_file)?;
    let layout = config.layout();
    let mut out = TraceRead::default();
    for day in super::day::days_in(&traces_dir(&layout))? {
        if day.as_str() < from_day || day.as_str() > to_day {
            continue;
        }
        let path = crypto::key_path(&layout.keys_dir, KeyKind::Trace, &day);
        let Some(key) = crypto::load_key(kek, &path, KeyKind::Trace, &day)? else {
            out.findings
                .push(format!("{day}: the trace key is gone (purged)"));
            continue;
        };
        let dir = traces_dir(&layout).join(&day);
        let mut files: Vec<_> = fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n.ends_with(".trace"))
            .collect();
        files.sort();
        for name in files {
            let grant = name.trim_end_matches(".trace").to_owned();
            let data = fs::read(dir.join(&name))?;
            let mut at = 0;
            while at < data.len() {
                let Some(len) = data
                    .get(at..at + 4)
                    .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize)
                else {
                    out.findings
                        .push(format!("{day}/{name}: torn frame at byte {at}"));
                    break;
                };
                let Some(sealed) = data.get(at + 4..at + 4 + len) else {
                    out.findings
                        .push(format!("{day}/{name}: torn frame at byte {at}"));
                    break;
                };
                at += 4 + len;
                match key
                    .open(&aad(&day, &grant), sealed)
                    .and_then(|p| serde_json::from_slice::<TraceEntry>(&p).ok())
                {
                    Some(e) => out.entries.push((grant.clone(), e)),
                    None => out
                        .findings
                        .push(format!("{day}/{name}: a frame does not authenticate")),
                }
            }
        }
    }
    out.entries.sort_by_key(|(_, e)| e.ts_ms);
    Ok(out)
}

/// Destroys the trace key and deletes the traces of every day `expired` says; the days done.
pub(crate) fn purge(
    layout: &Layout,
    expired: impl Fn(&str) -> bool,
) -> Result<Vec<String>, CdrError> {
    let mut days = super::day::days_in(&KeyKind::Trace.dir(&layout.keys_dir))?;
    days.extend(super::day::days_in(&traces_dir(layout))?);
    days.sort();
    days.dedup();
    let mut done = Vec::new();
    for day in days.into_iter().filter(|d| expired(d)) {
        fsutil::remove_durably(&crypto::key_path(&layout.keys_dir, KeyKind::Trace, &day))?;
        match fs::remove_dir_all(traces_dir(layout).join(&day)) {
            Ok(()) => fsutil::sync_dir(&traces_dir(layout))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        done.push(day);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_redacted_and_the_rest_kept() {
        let sdp = "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31|1:1\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk\r\n";
        let r = redact_keys(sdp);
        assert!(!r.contains("WVNfX19z") && !r.contains("QUJDREVG"), "{r}");
        assert!(
            r.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<redacted>\r\n"),
            "{r}"
        );
        assert!(
            r.contains("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:<redacted>\r\n"),
            "{r}"
        );
        assert!(r.starts_with("m=audio 4000 RTP/SAVP 0\r\n"));
        assert_eq!(redact_keys("no keys here"), "no keys here");
    }

    #[test]
    fn grant_ids_only_make_plain_file_names() {
        assert_eq!(grant_file_name("a1b2").as_deref(), Some("a1b2.trace"));
        assert_eq!(grant_file_name("../x"), None);
        assert_eq!(grant_file_name(""), None);
    }
}
