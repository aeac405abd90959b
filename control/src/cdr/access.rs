//! Just-in-time access: records are read only under a time-limited grant that names a reason,
//! and grants, revocations and every read go to an append-only, hash-chained audit log.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{fsutil, CdrError};

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
}

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When, ms since the epoch.
    pub ts_ms: i64,
    /// Who (operator name).
    pub who: String,
    /// What: `grant`, `revoke`, `cdr list`, `cdr show`, `cdr export`, `purge`.
    pub action: String,
    /// The grant the action ran under or created.
    pub grant_id: Option<String>,
    /// The grant's reason.
    pub reason: Option<String>,
    /// What was read: the query and the records returned.
    pub detail: String,
    /// SHA-256 (hex) of the previous line of the log: a removed or edited line breaks the chain.
    pub prev: String,
}

/// Grants and the audit log of one store directory.
pub struct Access {
    grants_dir: PathBuf,
    audit_dir: PathBuf,
}

fn random_id() -> Result<String, CdrError> {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).map_err(|e| CdrError::Io(io::Error::other(e.to_string())))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
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

impl Access {
    /// Grants and audit log under the store directory `dir`.
    pub fn new(dir: &Path) -> Access {
        Access {
            grants_dir: dir.join("access").join("grants"),
            audit_dir: dir.join("audit"),
        }
    }

    /// Gives `who` read access for `ttl` for `reason`, and audits it.
    pub fn grant(
        &self,
        who: &str,
        reason: &str,
        ttl: Duration,
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
        let grant = Grant {
            id: random_id()?,
            who: who.to_owned(),
            reason: reason.trim().to_owned(),
            created_ms: now_ms,
            expires_ms: now_ms + ttl.as_millis() as i64,
        };
        let json =
            serde_json::to_vec_pretty(&grant).map_err(|e| CdrError::Io(io::Error::other(e)))?;
        fsutil::write_durably(&self.grants_dir.join(format!("{}.json", grant.id)), &json)?;
        self.audit(
            now_ms,
            who,
            "grant",
            Some(&grant),
            &format!("ttl {}s", ttl.as_secs()),
        )?;
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

    /// Grants that have not lapsed. Lapsed grant files are removed.
    pub fn active(&self, now_ms: i64) -> Result<Vec<Grant>, CdrError> {
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
            let grant: Grant = match fs::read(&path)
                .ok()
                .and_then(|d| serde_json::from_slice(&d).ok())
            {
                Some(g) => g,
                None => continue,
            };
            if grant.expires_ms <= now_ms {
                let _ = fsutil::remove_durably(&path);
            } else {
                out.push(grant);
            }
        }
        out.sort_by_key(|g| g.created_ms);
        Ok(out)
    }

    /// The newest active grant of `who`, or an error that says how to get one.
    pub fn require(&self, who: &str, now_ms: i64) -> Result<Grant, CdrError> {
        self.active(now_ms)?.into_iter().rev().find(|g| g.who == who).ok_or_else(|| {
            CdrError::NoGrant(format!(
                "no active access grant for {who}: call records are readable only under a time-limited, audited grant. \
                 Get one with: relayctl access grant --reason \"<ticket or why>\" --ttl 1h"
            ))
        })
    }

    fn month_file(&self, ts_ms: i64) -> PathBuf {
        let day = super::day_of(ts_ms);
        self.audit_dir.join(format!("{}.jsonl", &day[..7]))
    }

    fn log_files(&self) -> Result<Vec<PathBuf>, CdrError> {
        let mut files: Vec<PathBuf> = match fs::read_dir(&self.audit_dir) {
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

    fn last_hash(&self) -> Result<String, CdrError> {
        for file in self.log_files()?.iter().rev() {
            let text = fs::read_to_string(file)?;
            if let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) {
                return Ok(hex_sha256(line));
            }
        }
        Ok("genesis".into())
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
        let entry = AuditEntry {
            ts_ms: now_ms,
            who: who.to_owned(),
            action: action.to_owned(),
            grant_id: grant.map(|g| g.id.clone()),
            reason: grant.map(|g| g.reason.clone()),
            detail: detail.to_owned(),
            prev: self.last_hash()?,
        };
        let mut line =
            serde_json::to_string(&entry).map_err(|e| CdrError::Io(io::Error::other(e)))?;
        line.push('\n');
        fsutil::private_dir(&self.audit_dir)?;
        let path = self.month_file(now_ms);
        let created = !path.exists();
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(line.as_bytes())?;
        f.sync_data()?;
        if created {
            fsutil::sync_dir(&self.audit_dir)?;
        }
        Ok(())
    }

    /// Every audit entry, oldest first.
    pub fn entries(&self) -> Result<Vec<AuditEntry>, CdrError> {
        let mut out = Vec::new();
        for file in self.log_files()? {
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

    /// Checks the hash chain; returns the number of entries, or where it breaks.
    pub fn verify(&self) -> Result<usize, CdrError> {
        let mut prev: Option<String> = None;
        let mut n = 0;
        for file in self.log_files()? {
            for (i, line) in fs::read_to_string(&file)?
                .lines()
                .filter(|l| !l.trim().is_empty())
                .enumerate()
            {
                let entry: AuditEntry = serde_json::from_str(line).map_err(|e| {
                    CdrError::Corrupt(format!("{} line {}: {e}", file.display(), i + 1))
                })?;
                // The oldest kept entry may point at a file removed by retention.
                if let Some(p) = &prev {
                    if &entry.prev != p {
                        return Err(CdrError::Corrupt(format!(
                            "audit log {} line {}: chain broken (an entry before it was removed or changed)",
                            file.display(),
                            i + 1
                        )));
                    }
                }
                prev = Some(hex_sha256(line));
                n += 1;
            }
        }
        Ok(n)
    }
}

fn hex_sha256(line: &str) -> String {
    Sha256::digest(line.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deletes monthly audit files whose every entry is older than `retention_days`.
pub(crate) fn apply_audit_retention(
    dir: &Path,
    retention_days: u32,
    now_ms: i64,
) -> Result<(), CdrError> {
    let access = Access::new(dir);
    for file in access.log_files()? {
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
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
