//! Just-in-time access: records are read only under a time-limited grant that names a reason,
//! and grants, revocations, refusals and every read go to an append-only audit log.
//!
//! What someone with a shell on the box cannot do unseen, without the KEK (root's alone):
//!
//! * **Forge a grant.** A grant carries an HMAC under a key derived from the KEK, and it must
//!   have its `grant` entry in the audit log; a grant file written or edited by hand is
//!   refused, and the attempt is logged.
//! * **Edit, remove or cut the log.** Each entry holds the SHA-256 of the line before it (a
//!   removed or changed line breaks the chain) and an HMAC of itself (under another KEK-derived
//!   key); `audit/head.json` anchors the newest entry with an HMAC, so cutting entries off
//!   the end, or the last one alone, is found by [`Access::verify`]. The anchor is written
//!   after the entry: after a crash it may lag one authentic entry behind, which is accepted.
//! * **Read personal data in the log.** Entries keep who, when, why, the grant and the ids of
//!   the records returned. The query terms of a read (numbers, URIs, Call-IDs) are sealed
//!   under the audit key of the entry's UTC day, which the purge destroys with the records of
//!   that day: the terms are shredded after at most the retention period, while the entry
//!   stays for the audit retention.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::crypto::{self, Kek, KeyKind, MacKey};
use super::{fsutil, CdrConfig, CdrError};

/// The longest grant: access is for a diagnosis, not standing.
pub const MAX_GRANT_TTL: Duration = Duration::from_secs(24 * 3600);

/// A time-limited permission for one operator to read records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Random identifier.
    pub id: String,
    /// The operator it was given to.
    pub who: String,
    /// Why (a ticket number or a sentence).
    pub reason: String,
    /// When it was given, ms since the epoch.
    pub created_ms: i64,
    /// When it lapses by itself, ms since the epoch.
    pub expires_ms: i64,
    /// What it allows: reading records (the default, and what grants written before scopes
    /// existed are), or writing a SIP trace while it lasts.
    #[serde(default, skip_serializing_if = "GrantScope::is_read")]
    pub scope: GrantScope,
    /// HMAC-SHA256 (hex) of the fields above under a KEK-derived key; empty in a file
    /// written by hand, which is then refused.
    #[serde(default)]
    pub mac: String,
}

/// What a grant allows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantScope {
    /// Reading call records, SIP traces and audit query terms (`relayctl cdr`, `trace show`).
    #[default]
    Read,
    /// relay-control writes every SIP message to the encrypted trace store while it lasts
    /// (`relayctl trace start`).
    Trace,
}

impl GrantScope {
    fn is_read(&self) -> bool {
        *self == GrantScope::Read
    }
}

impl Grant {
    fn mac_parts(&self) -> Vec<Vec<u8>> {
        let mut parts = vec![
            self.id.as_bytes().to_vec(),
            self.who.as_bytes().to_vec(),
            self.reason.as_bytes().to_vec(),
            self.created_ms.to_be_bytes().to_vec(),
            self.expires_ms.to_be_bytes().to_vec(),
        ];
        // Read grants MAC as they did before scopes existed; any other scope is bound in.
        if self.scope != GrantScope::Read {
            parts.push(b"scope:trace".to_vec());
        }
        parts
    }
}

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When, ms since the epoch.
    pub ts_ms: i64,
    /// Who (operator name).
    pub who: String,
    /// What: `grant`, `revoke`, `grant refused`, `cdr list`, `cdr show`, `cdr export`,
    /// `audit reveal`, `purge`.
    pub action: String,
    /// The grant the action ran under, created or refused.
    pub grant_id: Option<String>,
    /// The grant's reason.
    pub reason: Option<String>,
    /// What was done: the time range, which filters were used (not their values), and the
    /// ids of the records returned.
    pub detail: String,
    /// SHA-256 (hex) of the previous line of the log: a removed or edited line breaks the chain.
    pub prev: String,
    /// The personal query terms (numbers, URIs, Call-IDs), sealed under the audit key of the
    /// entry's UTC day (hex): unreadable once the purge has destroyed that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_terms: Option<String>,
    /// HMAC-SHA256 (hex) of the entry without this field, under a KEK-derived key. Entries
    /// written by the first version have none; after the first one that has, all must.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// The anchor of the log's newest entry: `audit/head.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Head {
    /// The monthly file of the newest entry.
    file: String,
    /// SHA-256 (hex) of the newest entry's line.
    last: String,
    /// HMAC-SHA256 (hex) of the two above under the audit MAC key.
    mac: String,
}

/// What [`Access::verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditCheck {
    /// Entries read.
    pub entries: usize,
    /// Whether the newest entry is anchored (false only for a log entirely written by the
    /// first version, which the next audited action anchors).
    pub anchored: bool,
    /// Where the log is broken: an entry altered, removed, cut off, or the anchor missing or
    /// altered. `None` if it is intact.
    pub problem: Option<String>,
}

/// The query terms of an audit entry, as [`Access::reveal`] finds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revealed {
    /// The entry has none.
    None,
    /// Their key was destroyed by the purge: they can never be read again.
    Shredded,
    /// They do not open with their key (altered).
    Damaged,
    /// The terms, as (name, value) pairs.
    Terms(Vec<(String, String)>),
}

/// Grants and the audit log of one store.
pub struct Access {
    grants_dir: PathBuf,
    audit_dir: PathBuf,
    keys_dir: PathBuf,
    kek: Kek,
    grant_key: MacKey,
    audit_key: MacKey,
}

fn random_id() -> Result<String, CdrError> {
    let mut b = [0u8; 8];
    crypto::fill_random(&mut b)?;
    Ok(crypto::hex(&b))
}

/// Parses a TTL such as `90s`, `30m`, `1h`, `2h30m`.
pub fn parse_ttl(s: &str) -> Result<Duration, CdrError> {
    let bad = || CdrError::Config(format!("bad TTL {s:?}: use e.g. 30m, 1h or 2h30m"));
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            let n: u64 = num.parse().map_err(|_| bad())?;
            num.clear();
            total += n * match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                _ => return Err(bad()),
            };
        }
    }
    if !num.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

fn terms_aad(ts_ms: i64, who: &str) -> Vec<u8> {
    let mut aad = b"relay-cdr-audit-terms-v1:".to_vec();
    aad.extend_from_slice(&ts_ms.to_be_bytes());
    aad.extend_from_slice(who.as_bytes());
    aad
}

fn log_files(audit_dir: &Path) -> Result<Vec<PathBuf>, CdrError> {
    let mut files: Vec<PathBuf> = match fs::read_dir(audit_dir) {
        Ok(e) => e
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    files.sort();
    Ok(files)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Access {
    /// Grants and audit log of the store of `config`. Loads the KEK (refusing a missing,
    /// malformed or loosely readable one): grants and entries are authenticated with keys
    /// derived from it.
    pub fn open(config: &CdrConfig) -> Result<Access, CdrError> {
        let kek = Kek::load(&config.kek_file)?;
        Ok(Access {
            grants_dir: config.dir.join("access").join("grants"),
            audit_dir: config.dir.join("audit"),
            keys_dir: config.keys_dir.clone(),
            grant_key: kek.mac_key("grant"),
            audit_key: kek.mac_key("audit"),
            kek,
        })
    }

    /// Grants and audit log of the store of `config`, with a KEK already loaded.
    pub(crate) fn with_kek(config: &CdrConfig, kek: &Kek) -> Access {
        Access {
            grants_dir: config.dir.join("access").join("grants"),
            audit_dir: config.dir.join("audit"),
            keys_dir: config.keys_dir.clone(),
            grant_key: kek.mac_key("grant"),
            audit_key: kek.mac_key("audit"),
            kek: kek.duplicate(),
        }
    }

    /// Gives `who` read access for `ttl` for `reason`, and audits it (the entry is written
    /// first: a grant without one is refused).
    pub fn grant(
        &self,
        who: &str,
        reason: &str,
        ttl: Duration,
        now_ms: i64,
    ) -> Result<Grant, CdrError> {
        self.grant_scoped(who, reason, ttl, GrantScope::Read, now_ms)
    }

    /// As [`Access::grant`], for `scope`.
    pub fn grant_scoped(
        &self,
        who: &str,
        reason: &str,
        ttl: Duration,
        scope: GrantScope,
        now_ms: i64,
    ) -> Result<Grant, CdrError> {
        if reason.trim().len() < 3 {
            return Err(CdrError::Config(
                "a grant needs a --reason (a ticket number or why the records are needed)".into(),
            ));
        }
        if ttl > MAX_GRANT_TTL {
            return Err(CdrError::Config(format!(
                "--ttl may be at most {}h",
                MAX_GRANT_TTL.as_secs() / 3600
            )));
        }
        let mut grant = Grant {
            id: random_id()?,
            who: who.to_owned(),
            reason: reason.trim().to_owned(),
            created_ms: now_ms,
            expires_ms: now_ms + ttl.as_millis() as i64,
            scope,
            mac: String::new(),
        };
        let parts = grant.mac_parts();
        grant.mac = self
            .grant_key
            .tag_hex(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>());
        self.audit(
            now_ms,
            who,
            "grant",
            Some(&grant),
            &match scope {
                GrantScope::Read => format!("ttl {}s", ttl.as_secs()),
                GrantScope::Trace => format!("SIP trace, ttl {}s", ttl.as_secs()),
            },
        )?;
        let json =
            serde_json::to_vec_pretty(&grant).map_err(|e| CdrError::Io(io::Error::other(e)))?;
        fsutil::write_durably(&self.grants_dir.join(format!("{}.json", grant.id)), &json)?;
        Ok(grant)
    }

    /// Withdraws grant `id` before it lapses, and audits it.
    pub fn revoke(&self, id: &str, who: &str, now_ms: i64) -> Result<(), CdrError> {
        let path = self.grants_dir.join(format!("{id}.json"));
        if !path.exists() || id.contains('/') {
            return Err(CdrError::NoGrant(format!("no grant {id}")));
        }
        let grant: Option<Grant> = fs::read(&path)
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok());
        fsutil::remove_durably(&path)?;
        self.audit(now_ms, who, "revoke", grant.as_ref(), "")?;
        Ok(())
    }

    fn authentic(&self, g: &Grant) -> bool {
        let parts = g.mac_parts();
        self.grant_key
            .verify_hex(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>(), &g.mac)
    }

    /// Whether the log has an authentic `grant` entry for `g`.
    fn granted_in_log(&self, g: &Grant) -> Result<bool, CdrError> {
        Ok(self.entries()?.iter().any(|e| {
            e.action == "grant"
                && e.grant_id.as_deref() == Some(g.id.as_str())
                && e.who == g.who
                && e.reason.as_deref() == Some(g.reason.as_str())
                && e.ts_ms == g.created_ms
                && self.entry_mac_ok(e) == Some(true)
        }))
    }

    /// Whether `grant` is one this store gave: its MAC verifies and the audit log has its
    /// `grant` entry.
    pub fn check(&self, grant: &Grant) -> Result<(), CdrError> {
        if self.authentic(grant) && self.granted_in_log(grant)? {
            Ok(())
        } else {
            Err(CdrError::NoGrant(format!(
                "grant {} is not authentic (no valid MAC, or no grant entry in the audit log): refused",
                grant.id
            )))
        }
    }

    /// Every grant file: its id (from the file name) and the grant, if it parses.
    fn grant_files(&self) -> Result<Vec<(PathBuf, String, Option<Grant>)>, CdrError> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.grants_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e.into()),
        };
        for e in entries {
            let path = e?.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let id = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let grant = fs::read(&path)
                .ok()
                .and_then(|d| serde_json::from_slice(&d).ok());
            out.push((path, id, grant));
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }

    /// Authentic grants (MAC and audit entry) that have not lapsed. Lapsed grant files are
    /// removed.
    pub fn active(&self, now_ms: i64) -> Result<Vec<Grant>, CdrError> {
        let mut out = Vec::new();
        for (path, _, grant) in self.grant_files()? {
            let Some(grant) = grant else { continue };
            if grant.expires_ms <= now_ms {
                let _ = fsutil::remove_durably(&path);
            } else if self.authentic(&grant) && self.granted_in_log(&grant)? {
                out.push(grant);
            }
        }
        out.sort_by_key(|g| g.created_ms);
        Ok(out)
    }

    /// Grant files that are not authentic (written or changed by hand), by file name.
    pub fn forged(&self) -> Result<Vec<String>, CdrError> {
        let mut out = Vec::new();
        for (path, _, grant) in self.grant_files()? {
            let ok = match &grant {
                Some(g) => self.authentic(g) && self.granted_in_log(g)?,
                None => false,
            };
            if !ok {
                out.push(file_name(&path));
            }
        }
        Ok(out)
    }

    /// The newest authentic, active grant of `who`, or an error that says how to get one.
    /// A grant file for `who` that is not authentic is refused, and each refusal is logged.
    pub fn require(&self, who: &str, now_ms: i64) -> Result<Grant, CdrError> {
        let mut good: Vec<Grant> = Vec::new();
        let mut refused = 0;
        for (path, id, grant) in self.grant_files()? {
            let Some(grant) = grant else { continue };
            if grant.who != who || grant.scope != GrantScope::Read {
                continue;
            }
            if !(self.authentic(&grant) && self.granted_in_log(&grant)?) {
                refused += 1;
                self.append(
                    now_ms,
                    who,
                    "grant refused",
                    Some(&id),
                    None,
                    &format!(
                        "grant file {} (grant {}) is not authentic: no valid MAC, or no grant entry in the audit log",
                        file_name(&path),
                        grant.id
                    ),
                    None,
                )?;
                continue;
            }
            if grant.expires_ms <= now_ms {
                let _ = fsutil::remove_durably(&path);
                continue;
            }
            good.push(grant);
        }
        good.sort_by_key(|g| g.created_ms);
        good.pop().ok_or_else(|| {
            let forged = if refused > 0 {
                format!(
                    "{refused} grant file(s) for {who} refused as not authentic (written or changed by hand); the attempt is in the audit log. "
                )
            } else {
                String::new()
            };
            CdrError::NoGrant(format!(
                "no active access grant for {who}: {forged}call records are readable only under a time-limited, audited grant. \
                 Get one with: relayctl access grant --reason \"<ticket or why>\" --ttl 1h"
            ))
        })
    }

    fn month_file(&self, ts_ms: i64) -> PathBuf {
        let day = super::day_of(ts_ms);
        self.audit_dir.join(format!("{}.jsonl", &day[..7]))
    }

    fn last_hash(&self) -> Result<String, CdrError> {
        for file in log_files(&self.audit_dir)?.iter().rev() {
            let text = fs::read_to_string(file)?;
            if let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) {
                return Ok(hex_sha256(line));
            }
        }
        Ok("genesis".into())
    }

    /// The canonical bytes an entry's MAC covers: the entry without its MAC, as JSON.
    fn entry_mac_input(e: &AuditEntry) -> Result<String, CdrError> {
        let mut bare = e.clone();
        bare.mac = None;
        serde_json::to_string(&bare).map_err(|e| CdrError::Io(io::Error::other(e)))
    }

    /// `Some(valid)` for an entry with a MAC, `None` for one of the first version.
    fn entry_mac_ok(&self, e: &AuditEntry) -> Option<bool> {
        let mac = e.mac.as_deref()?;
        Some(
            Self::entry_mac_input(e)
                .is_ok_and(|input| self.audit_key.verify_hex(&[input.as_bytes()], mac)),
        )
    }

    fn head_parts<'a>(file: &'a str, last: &'a str) -> [&'a [u8]; 3] {
        [b"head", file.as_bytes(), last.as_bytes()]
    }

    /// Appends one entry (durably), then anchors it.
    #[allow(clippy::too_many_arguments)] // the entry's fields
    fn append(
        &self,
        now_ms: i64,
        who: &str,
        action: &str,
        grant_id: Option<&str>,
        reason: Option<&str>,
        detail: &str,
        sealed_terms: Option<String>,
    ) -> Result<(), CdrError> {
        let mut entry = AuditEntry {
            ts_ms: now_ms,
            who: who.to_owned(),
            action: action.to_owned(),
            grant_id: grant_id.map(str::to_owned),
            reason: reason.map(str::to_owned),
            detail: detail.to_owned(),
            prev: self.last_hash()?,
            sealed_terms,
            mac: None,
        };
        entry.mac = Some(
            self.audit_key
                .tag_hex(&[Self::entry_mac_input(&entry)?.as_bytes()]),
        );
        let line = serde_json::to_string(&entry).map_err(|e| CdrError::Io(io::Error::other(e)))?;
        fsutil::private_dir(&self.audit_dir)?;
        let path = self.month_file(now_ms);
        let created = !path.exists();
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(format!("{line}\n").as_bytes())?;
        f.sync_data()?;
        if created {
            fsutil::sync_dir(&self.audit_dir)?;
        }
        let (file, last) = (file_name(&path), hex_sha256(&line));
        let head = Head {
            mac: self.audit_key.tag_hex(&Self::head_parts(&file, &last)),
            file,
            last,
        };
        let json = serde_json::to_vec(&head).map_err(|e| CdrError::Io(io::Error::other(e)))?;
        fsutil::write_durably(&self.audit_dir.join("head.json"), &json)?;
        Ok(())
    }

    /// Appends one entry (durably) to the audit log.
    pub fn audit(
        &self,
        now_ms: i64,
        who: &str,
        action: &str,
        grant: Option<&Grant>,
        detail: &str,
    ) -> Result<(), CdrError> {
        self.audit_read(now_ms, who, action, grant, detail, &[])
    }

    /// Appends the entry of a read: `detail` must hold no personal data; the personal query
    /// `terms` (e.g. `("number", "+4930...")`) are sealed under today's audit key.
    pub fn audit_read(
        &self,
        now_ms: i64,
        who: &str,
        action: &str,
        grant: Option<&Grant>,
        detail: &str,
        terms: &[(&str, &str)],
    ) -> Result<(), CdrError> {
        let sealed = if terms.is_empty() {
            None
        } else {
            let day = super::day_of(now_ms);
            let key = crypto::load_or_create_key(&self.kek, &self.keys_dir, KeyKind::Audit, &day)?;
            let json = serde_json::to_vec(terms).map_err(|e| CdrError::Io(io::Error::other(e)))?;
            Some(crypto::hex(&key.seal(&terms_aad(now_ms, who), &json)?))
        };
        self.append(
            now_ms,
            who,
            action,
            grant.map(|g| g.id.as_str()),
            grant.map(|g| g.reason.as_str()),
            detail,
            sealed,
        )
    }

    /// The query terms of `entry`, if their key still exists.
    pub fn reveal(&self, entry: &AuditEntry) -> Result<Revealed, CdrError> {
        let Some(sealed) = &entry.sealed_terms else {
            return Ok(Revealed::None);
        };
        let day = super::day_of(entry.ts_ms);
        let path = crypto::key_path(&self.keys_dir, KeyKind::Audit, &day);
        let Some(key) = crypto::load_key(&self.kek, &path, KeyKind::Audit, &day)? else {
            return Ok(Revealed::Shredded);
        };
        Ok(crypto::unhex(sealed)
            .and_then(|s| key.open(&terms_aad(entry.ts_ms, &entry.who), &s))
            .and_then(|plain| serde_json::from_slice(&plain).ok())
            .map_or(Revealed::Damaged, Revealed::Terms))
    }

    /// Every audit entry, oldest first.
    pub fn entries(&self) -> Result<Vec<AuditEntry>, CdrError> {
        let mut out = Vec::new();
        for file in log_files(&self.audit_dir)? {
            for line in fs::read_to_string(&file)?
                .lines()
                .filter(|l| !l.trim().is_empty())
            {
                out.push(
                    serde_json::from_str(line)
                        .map_err(|e| CdrError::Corrupt(format!("{}: {e}", file.display())))?,
                );
            }
        }
        Ok(out)
    }

    /// Removes the query terms that entries of the first version hold in clear (`call-id X`,
    /// `number N` in their detail) once the entry is at least `retention_days` old, as the
    /// terms of newer entries are shredded with their audit key. The entries after the first
    /// one changed are re-chained and their MACs renewed, the head is re-anchored, and an
    /// `audit redact` entry says what was done. Returns how many entries were redacted.
    pub(crate) fn redact_legacy_terms(
        &self,
        retention_days: u32,
        now_ms: i64,
    ) -> Result<usize, CdrError> {
        // Checked first: a broken log is left as it is, for whoever investigates.
        if self.verify()?.problem.is_some() {
            return Ok(0);
        }
        let mut files: Vec<(PathBuf, Vec<String>)> = Vec::new();
        for file in log_files(&self.audit_dir)? {
            let lines = fs::read_to_string(&file)?
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect();
            files.push((file, lines));
        }
        let mut redacted = 0;
        let mut rechain = false;
        let mut prev: Option<String> = None;
        let mut changed_files = Vec::new();
        for (fi, (_, lines)) in files.iter_mut().enumerate() {
            let mut changed = false;
            for line in lines.iter_mut() {
                let mut entry: AuditEntry = serde_json::from_str(line)
                    .map_err(|e| CdrError::Corrupt(format!("audit log: {e}")))?;
                let old = super::age_in_days(&super::day_of(entry.ts_ms), now_ms)
                    .is_some_and(|age| age >= i64::from(retention_days));
                let mut touched = false;
                if entry.mac.is_none() && old {
                    if let Some(clean) = redact_detail(&entry.detail) {
                        entry.detail = clean;
                        redacted += 1;
                        touched = true;
                        rechain = true;
                    }
                }
                if rechain {
                    if let Some(p) = &prev {
                        touched |= &entry.prev != p;
                        entry.prev = p.clone();
                    }
                    if touched && entry.mac.is_some() {
                        entry.mac = Some(
                            self.audit_key
                                .tag_hex(&[Self::entry_mac_input(&entry)?.as_bytes()]),
                        );
                    }
                    if touched {
                        *line = serde_json::to_string(&entry)
                            .map_err(|e| CdrError::Io(io::Error::other(e)))?;
                        changed = true;
                    }
                }
                prev = Some(hex_sha256(line));
            }
            if changed {
                changed_files.push(fi);
            }
        }
        if redacted == 0 {
            return Ok(0);
        }
        for fi in changed_files {
            let (path, lines) = &files[fi];
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            fsutil::write_durably(path, text.as_bytes())?;
        }
        if let Some((path, lines)) = files.iter().rev().find(|(_, l)| !l.is_empty()) {
            let (file, last) = (
                file_name(path),
                hex_sha256(lines.last().expect("not empty")),
            );
            let head = Head {
                mac: self.audit_key.tag_hex(&Self::head_parts(&file, &last)),
                file,
                last,
            };
            let json = serde_json::to_vec(&head).map_err(|e| CdrError::Io(io::Error::other(e)))?;
            fsutil::write_durably(&self.audit_dir.join("head.json"), &json)?;
        }
        self.audit(
            now_ms,
            "relay",
            "audit redact",
            None,
            &format!(
                "query terms removed from {redacted} entries of the first version older than {retention_days} days; entries after them re-chained"
            ),
        )?;
        Ok(redacted)
    }

    /// Checks the log: the hash chain, every entry's MAC, and that the newest entry is the
    /// one anchored in `audit/head.json`. `Err` only if it cannot be read at all.
    pub fn verify(&self) -> Result<AuditCheck, CdrError> {
        let mut check = AuditCheck::default();
        let broken = |mut check: AuditCheck, problem: String| {
            check.problem = Some(problem);
            Ok(check)
        };
        let mut prev: Option<String> = None;
        // Hashes of the last two lines, and the newest entry's file.
        let (mut last, mut before_last): (Option<String>, Option<String>) = (None, None);
        let mut last_file = String::new();
        let mut macs_seen = false;
        for file in log_files(&self.audit_dir)? {
            let text = fs::read_to_string(&file)?;
            if !text.is_empty() && !text.ends_with('\n') {
                return broken(
                    check,
                    format!(
                        "audit log {}: the last line is cut off (the file was truncated or altered)",
                        file.display()
                    ),
                );
            }
            for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
                let at = format!("audit log {} line {}", file.display(), i + 1);
                let entry: AuditEntry = match serde_json::from_str(line) {
                    Ok(e) => e,
                    Err(e) => return broken(check, format!("{at}: not an audit entry ({e})")),
                };
                // The oldest kept entry may point at a file removed by retention.
                if prev.as_ref().is_some_and(|p| &entry.prev != p) {
                    return broken(
                        check,
                        format!("{at}: chain broken (an entry before it was removed or changed)"),
                    );
                }
                match self.entry_mac_ok(&entry) {
                    Some(true) => macs_seen = true,
                    Some(false) => {
                        return broken(
                            check,
                            format!("{at}: entry altered (its MAC does not verify)"),
                        )
                    }
                    None if macs_seen => {
                        return broken(
                            check,
                            format!(
                            "{at}: entry without a MAC after authenticated ones (inserted by hand)"
                        ),
                        )
                    }
                    None => {}
                }
                let hash = hex_sha256(line);
                prev = Some(hash.clone());
                before_last = last.replace(hash);
                last_file = file_name(&file);
                check.entries += 1;
            }
        }
        let head_path = self.audit_dir.join("head.json");
        let head: Option<Head> = match fs::read(&head_path) {
            Ok(d) => match serde_json::from_slice(&d) {
                Ok(h) => Some(h),
                Err(_) => return broken(check, format!("{}: damaged", head_path.display())),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let Some(head) = head else {
            if macs_seen {
                return broken(
                    check,
                    format!(
                        "{}: missing: the newest entries cannot be checked (removed?)",
                        head_path.display()
                    ),
                );
            }
            // Empty, or written entirely by the first version: nothing to anchor yet.
            check.anchored = check.entries == 0;
            return Ok(check);
        };
        if !self
            .audit_key
            .verify_hex(&Self::head_parts(&head.file, &head.last), &head.mac)
        {
            return broken(
                check,
                format!("{}: altered (its MAC does not verify)", head_path.display()),
            );
        }
        check.anchored = true;
        // The head is written after its entry: it may lag one authentic entry behind.
        let anchored_newest = last.as_deref() == Some(head.last.as_str()) && last_file == head.file;
        let lagging_one = before_last.as_deref() == Some(head.last.as_str()) && macs_seen;
        if !(anchored_newest || lagging_one) {
            return broken(
                check,
                format!(
                    "the newest entries were removed, cut off or altered: the anchored newest entry (in {}) is not the last one",
                    head.file
                ),
            );
        }
        Ok(check)
    }
}

/// The detail of a first-version read without its query terms: `from D to D call-id C
/// number N; ...` becomes `from D to D call-id <redacted> number <redacted>; ...`. `None` if
/// there are none.
fn redact_detail(detail: &str) -> Option<String> {
    let (query, rest) = detail.split_once("; ").unwrap_or((detail, ""));
    let mut words: Vec<&str> = query.split(' ').collect();
    let mut found = false;
    for i in 1..words.len() {
        if matches!(words[i - 1], "call-id" | "number") && words[i] != "<redacted>" {
            words[i] = "<redacted>";
            found = true;
        }
    }
    found.then(|| {
        let query = words.join(" ");
        if rest.is_empty() {
            query
        } else {
            format!("{query}; {rest}")
        }
    })
}

fn hex_sha256(line: &str) -> String {
    crypto::hex(&Sha256::digest(line.as_bytes()))
}

/// Deletes monthly audit files whose every entry is older than `retention_days`.
pub(crate) fn apply_audit_retention(
    dir: &Path,
    retention_days: u32,
    now_ms: i64,
) -> Result<(), CdrError> {
    let audit_dir = dir.join("audit");
    let head: Option<Head> = fs::read(audit_dir.join("head.json"))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok());
    for file in log_files(&audit_dir)? {
        let Some(month) = file.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        // The month's last possible day is before the first of the next month.
        let Ok(mut date) = time::Date::parse(
            &format!("{month}-01"),
            &time::macros::format_description!("[year]-[month]-[day]"),
        ) else {
            continue;
        };
        date = date.replace_day(1).unwrap_or(date);
        let next_month = date
            .checked_add(time::Duration::days(31))
            .and_then(|d| d.replace_day(1).ok());
        let Some(end) = next_month else { continue };
        let end_day = format!(
            "{:04}-{:02}-{:02}",
            end.year(),
            u8::from(end.month()),
            end.day()
        );
        if super::age_in_days(&end_day, now_ms).is_some_and(|age| age > i64::from(retention_days)) {
            fsutil::remove_durably(&file)?;
            // The whole log aged out: its anchor goes with it.
            if head.as_ref().is_some_and(|h| h.file == file_name(&file)) {
                fsutil::remove_durably(&audit_dir.join("head.json"))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_version_details_lose_their_terms() {
        assert_eq!(
            redact_detail("from 2026-11-01 to 2026-11-02 call-id a@b number +4930; 1 records: r1")
                .as_deref(),
            Some(
                "from 2026-11-01 to 2026-11-02 call-id <redacted> number <redacted>; 1 records: r1"
            )
        );
        assert_eq!(
            redact_detail("from 2026-11-01 to 2026-11-02; 0 records: "),
            None
        );
        assert_eq!(redact_detail("ttl 3600s"), None);
    }

    #[test]
    fn ttl_parsing() {
        assert_eq!(parse_ttl("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_ttl("2h30m").unwrap(), Duration::from_secs(9000));
        for bad in ["", "1", "h", "1x", "0m", "-1h"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
