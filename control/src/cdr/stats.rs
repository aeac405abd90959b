//! Anonymised statistics: hourly aggregates per trunk, with no personal data (no numbers,
//! URIs, Call-IDs or addresses). They are folded from a day's records before the purge
//! destroys them, kept under their own retention, and readable without a grant.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{age_in_days, fsutil, CallRecord, CdrError};

/// Upper bounds of the packet-loss histogram buckets, percent (the last bucket is open).
pub const LOSS_BUCKETS_PCT: [f64; 6] = [0.5, 1.0, 2.0, 5.0, 10.0, 20.0];
/// Upper bounds of the jitter histogram buckets, milliseconds.
pub const JITTER_BUCKETS_MS: [f64; 6] = [5.0, 10.0, 20.0, 30.0, 50.0, 100.0];
/// Upper bounds of the MOS histogram buckets.
pub const MOS_BUCKETS: [f64; 5] = [2.0, 3.0, 3.5, 4.0, 4.3];

/// One hour of one trunk.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HourStats {
    /// Start of the hour, `YYYY-MM-DDTHH:00Z`.
    pub hour: String,
    /// The trunk's configured name.
    pub trunk: String,
    /// Calls that used the trunk.
    pub attempted: u64,
    /// Of those, answered.
    pub answered: u64,
    /// Unanswered calls by cause (`sip_486`, `cancelled`, ...).
    pub failed: BTreeMap<String, u64>,
    /// Answered minutes.
    pub minutes: f64,
    /// Media streams per loss bucket (`LOSS_BUCKETS_PCT`, plus one open bucket).
    pub loss_histogram: Vec<u64>,
    /// Media streams per jitter bucket (`JITTER_BUCKETS_MS`, plus one open bucket).
    pub jitter_histogram: Vec<u64>,
    /// Media streams per estimated-MOS bucket (`MOS_BUCKETS`, plus one open bucket).
    pub mos_histogram: Vec<u64>,
}

impl HourStats {
    /// Answer-seizure ratio: answered / attempted.
    pub fn asr(&self) -> f64 {
        if self.attempted == 0 {
            0.0
        } else {
            self.answered as f64 / self.attempted as f64
        }
    }
}

fn bucket(bounds: &[f64], value: f64) -> usize {
    bounds
        .iter()
        .position(|&b| value <= b)
        .unwrap_or(bounds.len())
}

/// A MOS estimate from loss and jitter, by the simplified E-model (ITU-T G.107) commonly used
/// for monitoring: effective latency = 2 x jitter + 10 ms (one-way delay unknown to a relay),
/// R = 93.2 - delay impairment - 2.5 x loss%, MOS = 1 + 0.035 R + 7e-6 R (R - 60)(100 - R).
pub fn estimate_mos(loss_fraction: f64, jitter_ms: f64) -> f64 {
    let effective_latency = 2.0 * jitter_ms + 10.0;
    let delay = if effective_latency < 160.0 {
        effective_latency / 40.0
    } else {
        (effective_latency - 120.0) / 10.0
    };
    let r = (93.2 - delay - 2.5 * loss_fraction * 100.0).clamp(0.0, 100.0);
    (1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)).clamp(1.0, 4.5)
}

fn hour_of(ms: i64) -> String {
    let day = super::day_of(ms);
    let hour = ms.div_euclid(3_600_000).rem_euclid(24);
    format!("{day}T{hour:02}:00Z")
}

/// Aggregates `records` by (hour of setup, trunk). Only counts and distributions leave.
pub fn fold(records: &[CallRecord]) -> Vec<HourStats> {
    let mut folder = Folder::default();
    for r in records {
        folder.add(r);
    }
    folder.finish()
}

/// Aggregation one record at a time, so a day of records never has to be in memory at once.
#[derive(Default)]
pub struct Folder {
    by_key: BTreeMap<(String, String), HourStats>,
}

impl Folder {
    /// Counts one record.
    pub fn add(&mut self, r: &CallRecord) {
        let hour = hour_of(r.setup_ms);
        let mut trunks: Vec<&str> = r.legs.iter().map(|l| l.trunk.as_str()).collect();
        trunks.sort_unstable();
        trunks.dedup();
        for trunk in trunks {
            let s = self
                .by_key
                .entry((hour.clone(), trunk.to_owned()))
                .or_insert_with(|| HourStats {
                    hour: hour.clone(),
                    trunk: trunk.to_owned(),
                    loss_histogram: vec![0; LOSS_BUCKETS_PCT.len() + 1],
                    jitter_histogram: vec![0; JITTER_BUCKETS_MS.len() + 1],
                    mos_histogram: vec![0; MOS_BUCKETS.len() + 1],
                    ..HourStats::default()
                });
            s.attempted += 1;
            if r.answered() {
                s.answered += 1;
                s.minutes += r.duration_ms() as f64 / 60_000.0;
            } else {
                *s.failed.entry(r.end_reason.label()).or_default() += 1;
            }
            // Streams received from this trunk's legs.
            for m in r.media.iter().filter(|m| {
                r.legs
                    .get(usize::from(m.leg))
                    .is_some_and(|l| l.trunk == trunk)
            }) {
                let loss = m.loss_fraction();
                s.loss_histogram[bucket(&LOSS_BUCKETS_PCT, loss * 100.0)] += 1;
                s.jitter_histogram[bucket(&JITTER_BUCKETS_MS, m.jitter_ms)] += 1;
                s.mos_histogram[bucket(&MOS_BUCKETS, estimate_mos(loss, m.jitter_ms))] += 1;
            }
        }
    }

    /// The aggregates, ordered by hour and trunk.
    pub fn finish(self) -> Vec<HourStats> {
        self.by_key.into_values().collect()
    }
}

fn stats_path(dir: &Path, day: &str) -> std::path::PathBuf {
    dir.join("stats").join(format!("{day}.json"))
}

/// Whether `day` has been folded already.
pub(crate) fn is_folded(dir: &Path, day: &str) -> bool {
    stats_path(dir, day).exists()
}

/// Stores a day's aggregates durably.
pub(crate) fn store_day(dir: &Path, day: &str, hours: &[HourStats]) -> Result<(), CdrError> {
    let json = serde_json::to_vec_pretty(hours).map_err(|e| CdrError::Io(io::Error::other(e)))?;
    fsutil::write_durably(&stats_path(dir, day), &json)?;
    Ok(())
}

/// Loads the folded statistics of every day between `first` and `last` (inclusive).
pub fn load_folded(
    dir: &Path,
    first: &str,
    last: &str,
) -> Result<BTreeMap<String, Vec<HourStats>>, CdrError> {
    let mut out = BTreeMap::new();
    let stats_dir = dir.join("stats");
    let entries = match fs::read_dir(&stats_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    for e in entries {
        let name = e?.file_name().to_string_lossy().into_owned();
        let Some(day) = name.strip_suffix(".json") else {
            continue;
        };
        if day < first || day > last {
            continue;
        }
        let data = fs::read(stats_dir.join(&name))?;
        let hours: Vec<HourStats> =
            serde_json::from_slice(&data).map_err(|e| CdrError::Corrupt(format!("{name}: {e}")))?;
        out.insert(day.to_owned(), hours);
    }
    Ok(out)
}

/// Deletes folded statistics older than `retention_days`.
pub(crate) fn apply_retention(
    dir: &Path,
    retention_days: u32,
    now_ms: i64,
) -> Result<Vec<String>, CdrError> {
    let stats_dir = dir.join("stats");
    let mut deleted = Vec::new();
    let entries = match fs::read_dir(&stats_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(deleted),
        Err(e) => return Err(e.into()),
    };
    for e in entries {
        let name = e?.file_name().to_string_lossy().into_owned();
        let Some(day) = name.strip_suffix(".json") else {
            continue;
        };
        if age_in_days(day, now_ms).is_some_and(|age| age >= i64::from(retention_days)) {
            fsutil::remove_durably(&stats_dir.join(&name))?;
            deleted.push(day.to_owned());
        }
    }
    Ok(deleted)
}

/// Rows as CSV: `hour,trunk,attempted,answered,asr,minutes,failed,loss...,jitter...,mos...`.
pub fn to_csv(rows: &[HourStats]) -> String {
    let mut out = String::from("hour,trunk,attempted,answered,asr,minutes,failed");
    for b in LOSS_BUCKETS_PCT {
        out.push_str(&format!(",loss_le_{b}pct"));
    }
    out.push_str(",loss_gt");
    for b in JITTER_BUCKETS_MS {
        out.push_str(&format!(",jitter_le_{b}ms"));
    }
    out.push_str(",jitter_gt");
    for b in MOS_BUCKETS {
        out.push_str(&format!(",mos_le_{b}"));
    }
    out.push_str(",mos_gt\n");
    for r in rows {
        let failed: Vec<String> = r.failed.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!(
            "{},{},{},{},{:.4},{:.2},{}",
            r.hour,
            r.trunk.replace([',', '"', '\n'], "_"),
            r.attempted,
            r.answered,
            r.asr(),
            r.minutes,
            failed.join(";")
        ));
        for v in r
            .loss_histogram
            .iter()
            .chain(&r.jitter_histogram)
            .chain(&r.mos_histogram)
        {
            out.push_str(&format!(",{v}"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mos_estimate_is_monotonic_and_bounded() {
        let clean = estimate_mos(0.0, 2.0);
        assert!(clean > 4.3 && clean <= 4.5, "{clean}");
        assert!(estimate_mos(0.05, 2.0) < clean);
        assert!(estimate_mos(0.0, 80.0) < clean);
        assert!(estimate_mos(0.5, 300.0) >= 1.0);
    }

    #[test]
    fn buckets() {
        assert_eq!(bucket(&LOSS_BUCKETS_PCT, 0.0), 0);
        assert_eq!(bucket(&LOSS_BUCKETS_PCT, 0.7), 1);
        assert_eq!(bucket(&LOSS_BUCKETS_PCT, 99.0), 6);
    }
}
