//! Call-detail records: encrypted at rest, purged after at most 30 days by crypto-shredding,
//! anonymised statistics that outlive them, and reads only under a just-in-time grant.
//!
//! Two directories: the data directory and, outside it, the key directory (default: the data
//! directory's sibling `<name>-keys`, e.g. `/var/lib/relay/cdr-keys`). Files are 0600,
//! directories 0700. What each file holds, and how long:
//!
//! ```text
//! <keys>/<day>.key             the day's AES-256-GCM data key, wrapped by the KEK     until the day is purged
//! <keys>/audit/<day>.key       the key of that day's audit query terms, wrapped       until the day is purged
//! segments/<day>/<seq>.seg     records of calls that ended that UTC day, with commit  until the day is purged
//!                              frames (segment.rs)
//! segments/<day>/<seq>.count   the sealed manifest of the segment's last commit       until the day is purged
//! segments/<day>/<seq>.stats   sealed hourly aggregates of the segment so far         until the day is purged
//! segments/<day>/index         the sealed list of the day's segments (day.rs)         until the day is purged
//! stats/<day>.json             anonymised hourly aggregates per trunk, merged from    stats_retention_days (400)
//!                              the checkpoints at the purge
//! access/grants/<id>.json      just-in-time read grants, MAC'd                        until they lapse (24 h at most)
//! audit/<yyyy-mm>.jsonl        append-only, hash-chained, MAC'd audit log; query      audit_retention_days (400);
//!                              terms sealed under the day's audit key                 terms shredded with the key
//! audit/head.json              the MAC'd anchor of the newest audit entry             as long as the log
//! <keys>/trace/<day>.key       the day's SIP trace key, wrapped by the KEK            until the day is purged
//! traces/<day>/<grant>.trace   SIP messages written under a trace grant (trace.rs)    until the day is purged
//! ```
//!
//! * [`CdrStore`] is the writer the control plane owns: [`CdrStore::submit`] queues a record
//!   (bounded queue; the control plane never blocks on disk), [`CdrStore::write`] waits until
//!   it is durable. A writer thread group-commits: appends a batch and a commit frame in one
//!   write, one `fdatasync`; only then are the records acknowledged, and their statistics
//!   folded. On an I/O error (disk full) the batch stays queued and is retried in a new
//!   segment; what was committed is never touched.
//! * [`CdrReader`] reads and verifies records for `relayctl`; it is handed out only with an
//!   authentic [`Grant`](access::Grant), and every read is audited.
//! * [`purge`] merges each expired day's statistics checkpoints, destroys its key (zeroised in
//!   memory, wrapped copy deleted and synced), then deletes its segments. After that no copy
//!   of the data directory can be decrypted: the key exists nowhere. The key directory is
//!   outside the data directory so that backups of the data directory never hold keys; keep
//!   the key directory out of backups (or back it up with the same retention).

mod crypto;
mod day;
mod fsutil;
mod record;
mod segment;

pub mod access;
pub mod stats;
mod store;
pub mod trace;

use std::io;

pub use crypto::{Kek, KEY_LEN};
pub use record::{CallRecord, EndReason, EndedBy, LegRecord, MediaRecord, SCHEMA_VERSION};
pub use segment::Finding;
pub use store::{
    default_keys_dir, live_stats, purge, CdrConfig, CdrReader, CdrStore, Clock, LiveStats,
    MetricsSnapshot, PurgeReport, ReadReport, SystemClock, MAX_RETENTION_DAYS,
};

/// Errors of the CDR store and `relayctl`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CdrError {
    /// The key-encryption key file is missing, has the wrong length or permissions.
    #[error("{0}")]
    KeyFile(String),
    /// A day key does not open with the KEK.
    #[error("{0}")]
    WrongKek(String),
    /// The configuration is not acceptable (e.g. retention over 30 days).
    #[error("invalid CDR configuration: {0}")]
    Config(String),
    /// A file is damaged beyond the findings a read reports.
    #[error("corrupt CDR store: {0}")]
    Corrupt(String),
    /// The day's key was destroyed by the purge: its records can never be read again.
    #[error("the records of {0} were purged: their key no longer exists")]
    Purged(String),
    /// The in-memory queue is full (the disk has been failing for a while).
    #[error("CDR queue full ({0} records waiting): record not accepted")]
    QueueFull(usize),
    /// The record is older than the retention period and would be purged at once.
    #[error("record ended on {0}, outside the retention period")]
    Expired(String),
    /// No active access grant.
    #[error("{0}")]
    NoGrant(String),
    /// The writer thread has stopped.
    #[error("the CDR writer has stopped")]
    Stopped,
    /// An I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// `YYYY-MM-DD` of the UTC day containing `ms` (milliseconds since the epoch).
pub fn day_of(ms: i64) -> String {
    let dt = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let d = dt.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Whole days from UTC day `day` (`YYYY-MM-DD`) to the day containing `now_ms`.
pub(crate) fn age_in_days(day: &str, now_ms: i64) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(day, &format).ok()?;
    let today = time::OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1000))
        .ok()?
        .date();
    Some((today - date).whole_days())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(1_795_780_800_000), "2026-11-27");
        assert_eq!(day_of(-1), "1969-12-31");
        assert_eq!(age_in_days("2026-11-27", 1_795_780_800_000), Some(0));
        assert_eq!(age_in_days("2026-10-28", 1_795_780_800_000), Some(30));
        assert_eq!(age_in_days("not-a-day", 0), None);
    }
}
