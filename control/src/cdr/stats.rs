//! Anonymised statistics: hourly aggregates per trunk, with no personal data (no numbers,
//! URIs, Call-IDs or addresses), readable without a grant.
//!
//! They are folded as records are written: each record's [`Sample`] is computed when it is
//! queued, and the writer adds it to the aggregates of its segment once it is committed. The
//! aggregates are checkpointed beside the segment, sealed with the day key
//! (`segments/<day>/<seq>.stats`, covering the first `records` records of the segment), and the
//! purge only merges these checkpoints (folding records past a checkpoint, which only a crash
//! leaves) into `stats/<day>.json` before it destroys the key. That file is kept under its own
//! retention.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::crypto::DayKey;
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

const HOUR_MS: i64 = 3_600_000;

fn hour_label(hour: i64) -> String {
    let day = super::day_of(hour * HOUR_MS);
    format!("{day}T{:02}:00Z", hour.rem_euclid(24))
}

/// The hour number (hours since the epoch) of a label `YYYY-MM-DDTHH:00Z`.
fn hour_number(label: &str) -> Option<i64> {
    let (day, rest) = label.split_once('T')?;
    let hour: i64 = rest.strip_suffix(":00Z")?.parse().ok()?;
    let date = time::Date::parse(
        day,
        &time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    let days =
        (date - time::Date::from_calendar_date(1970, time::Month::January, 1).ok()?).whole_days();
    Some(days * 24 + hour)
}

/// What one record adds to the statistics: no personal data, only the hour, the trunks and
/// the buckets. Computed when the record is queued, so the writer never parses records.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    hour: i64,
    answered: bool,
    minutes: f64,
    failure: Option<String>,
    /// Each distinct trunk of the call, with the (loss, jitter, MOS) bucket of every stream
    /// received from its legs.
    trunks: Vec<(String, Vec<[u8; 3]>)>,
}

impl Sample {
    /// The sample of `r`.
    pub fn of(r: &CallRecord) -> Sample {
        let mut trunks: Vec<&str> = r.legs.iter().map(|l| l.trunk.as_str()).collect();
        trunks.sort_unstable();
        trunks.dedup();
        Sample {
            hour: r.setup_ms.div_euclid(HOUR_MS),
            answered: r.answered(),
            minutes: r.duration_ms() as f64 / 60_000.0,
            failure: (!r.answered()).then(|| r.end_reason.label()),
            trunks: trunks
                .into_iter()
                .map(|trunk| {
                    let streams = r
                        .media
                        .iter()
                        .filter(|m| {
                            r.legs
                                .get(usize::from(m.leg))
                                .is_some_and(|l| l.trunk == trunk)
                        })
                        .map(|m| {
                            let loss = m.loss_fraction();
                            [
                                bucket(&LOSS_BUCKETS_PCT, loss * 100.0) as u8,
                                bucket(&JITTER_BUCKETS_MS, m.jitter_ms) as u8,
                                bucket(&MOS_BUCKETS, estimate_mos(loss, m.jitter_ms)) as u8,
                            ]
                        })
                        .collect();
                    (trunk.to_owned(), streams)
                })
                .collect(),
        }
    }
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
#[derive(Default, Clone, Debug)]
pub struct Folder {
    by_key: BTreeMap<(i64, String), HourStats>,
}

impl Folder {
    /// Counts one record.
    pub fn add(&mut self, r: &CallRecord) {
        self.add_sample(&Sample::of(r));
    }

    fn slot(&mut self, hour: i64, trunk: &str) -> &mut HourStats {
        self.by_key
            .entry((hour, trunk.to_owned()))
            .or_insert_with(|| HourStats {
                hour: hour_label(hour),
                trunk: trunk.to_owned(),
                loss_histogram: vec![0; LOSS_BUCKETS_PCT.len() + 1],
                jitter_histogram: vec![0; JITTER_BUCKETS_MS.len() + 1],
                mos_histogram: vec![0; MOS_BUCKETS.len() + 1],
                ..HourStats::default()
            })
    }

    /// Counts one record by its sample.
    pub fn add_sample(&mut self, sample: &Sample) {
        for (trunk, streams) in &sample.trunks {
            let s = self.slot(sample.hour, trunk);
            s.attempted += 1;
            if sample.answered {
                s.answered += 1;
                s.minutes += sample.minutes;
            }
            if let Some(f) = &sample.failure {
                *s.failed.entry(f.clone()).or_default() += 1;
            }
            for [loss, jitter, mos] in streams {
                s.loss_histogram[usize::from(*loss)] += 1;
                s.jitter_histogram[usize::from(*jitter)] += 1;
                s.mos_histogram[usize::from(*mos)] += 1;
            }
        }
    }

    /// Adds aggregates folded elsewhere (another segment's checkpoint).
    pub fn merge(&mut self, rows: impl IntoIterator<Item = HourStats>) -> Result<(), CdrError> {
        for row in rows {
            let hour = hour_number(&row.hour).ok_or_else(|| {
                CdrError::Corrupt(format!("bad hour {:?} in statistics", row.hour))
            })?;
            let s = self.slot(hour, &row.trunk);
            if row.loss_histogram.len() != s.loss_histogram.len()
                || row.jitter_histogram.len() != s.jitter_histogram.len()
                || row.mos_histogram.len() != s.mos_histogram.len()
            {
                return Err(CdrError::Corrupt(
                    "statistics with a different bucket layout".into(),
                ));
            }
            s.attempted += row.attempted;
            s.answered += row.answered;
            s.minutes += row.minutes;
            for (k, v) in row.failed {
                *s.failed.entry(k).or_default() += v;
            }
            for (a, b) in s.loss_histogram.iter_mut().zip(&row.loss_histogram) {
                *a += b;
            }
            for (a, b) in s.jitter_histogram.iter_mut().zip(&row.jitter_histogram) {
                *a += b;
            }
            for (a, b) in s.mos_histogram.iter_mut().zip(&row.mos_histogram) {
                *a += b;
            }
        }
        Ok(())
    }

    /// The aggregates so far, ordered by hour and trunk.
    pub fn rows(&self) -> Vec<HourStats> {
        self.by_key.values().cloned().collect()
    }

    /// The aggregates, ordered by hour and trunk.
    pub fn finish(self) -> Vec<HourStats> {
        self.by_key.into_values().collect()
    }
}

/// The aggregates of the first `records` records (`bytes` bytes) of one segment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    pub(crate) hours: Vec<HourStats>,
}

/// What was found where a segment's checkpoint should be.
pub(crate) enum CheckpointState {
    Missing,
    Damaged,
    Valid(Checkpoint),
}

fn checkpoint_aad(day: &str, seq: u32) -> Vec<u8> {
    let mut aad = b"relay-cdr-segment-stats-v2:".to_vec();
    aad.extend_from_slice(day.as_bytes());
    aad.extend_from_slice(&seq.to_be_bytes());
    aad
}

/// `segments/<day>/<seq>.stats`.
pub(crate) fn checkpoint_path(day_dir: &Path, seq: u32) -> std::path::PathBuf {
    day_dir.join(format!("{seq:06}.stats"))
}

/// Seals and writes a segment's checkpoint. Not synced: a crash that loses it only means the
/// purge folds that segment from its records.
pub(crate) fn write_checkpoint(
    key: &DayKey,
    day_dir: &Path,
    day: &str,
    seq: u32,
    checkpoint: &Checkpoint,
) -> Result<(), CdrError> {
    let json = serde_json::to_vec(checkpoint).map_err(|e| CdrError::Io(io::Error::other(e)))?;
    let sealed = key.seal(&checkpoint_aad(day, seq), &json)?;
    fsutil::replace_unsynced(&checkpoint_path(day_dir, seq), &sealed)?;
    Ok(())
}

/// Reads a segment's checkpoint.
pub(crate) fn read_checkpoint(
    key: &DayKey,
    day_dir: &Path,
    day: &str,
    seq: u32,
) -> Result<CheckpointState, CdrError> {
    let sealed = match fs::read(checkpoint_path(day_dir, seq)) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(CheckpointState::Missing),
        Err(e) => return Err(e.into()),
    };
    Ok(key
        .open(&checkpoint_aad(day, seq), &sealed)
        .and_then(|plain| serde_json::from_slice(&plain).ok())
        .map_or(CheckpointState::Damaged, CheckpointState::Valid))
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
    fn hour_labels_round_trip_and_merging_adds_up() {
        for hour in [-25, 0, 23, 24, 498_827] {
            assert_eq!(hour_number(&hour_label(hour)), Some(hour), "{hour}");
        }
        let mut a = Folder::default();
        let mut b = Folder::default();
        let rows = |f: &Folder| f.rows();
        let mut whole = Folder::default();
        for n in 0..40 {
            let r = CallRecord {
                version: 1,
                record_id: format!("{n}"),
                legs: vec![super::super::LegRecord {
                    call_id: String::new(),
                    from_uri: String::new(),
                    to_uri: String::new(),
                    from_number: None,
                    to_number: None,
                    trunk: ["a", "b"][n % 2].into(),
                    peer: String::new(),
                }],
                setup_ms: n as i64 * 600_000,
                answer_ms: (n % 3 != 0).then_some(n as i64 * 600_000 + 1000),
                end_ms: n as i64 * 600_000 + 61_000,
                ended_by: super::super::EndedBy::Caller,
                end_reason: super::super::EndReason::SipStatus { code: 486 },
                media: vec![super::super::MediaRecord {
                    leg: 0,
                    codec: None,
                    srtp_suite: None,
                    packets: 100,
                    bytes: 1000,
                    lost: n as u64,
                    jitter_ms: n as f64,
                    auth_failures: 0,
                    replay_drops: 0,
                }],
            };
            whole.add(&r);
            if n < 17 {
                a.add(&r)
            } else {
                b.add(&r)
            }
        }
        a.merge(rows(&b)).unwrap();
        assert_eq!(a.finish(), whole.finish());
    }

    #[test]
    fn buckets() {
        assert_eq!(bucket(&LOSS_BUCKETS_PCT, 0.0), 0);
        assert_eq!(bucket(&LOSS_BUCKETS_PCT, 0.7), 1);
        assert_eq!(bucket(&LOSS_BUCKETS_PCT, 99.0), 6);
    }
}
