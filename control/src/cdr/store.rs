//! The writer (group commit, bounded queue, retry), the reader, and the purge.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};

use super::access::Grant;
use super::crypto::{self, DayKey, Kek};
use super::segment::{self, Finding, SegmentWriter};
use super::{age_in_days, day_of, fsutil, stats, CallRecord, CdrError};

/// The longest retention the store accepts: the promise to customers is 30 days at most.
pub const MAX_RETENTION_DAYS: u32 = 30;

/// Settings of the store.
#[derive(Clone, Debug)]
pub struct CdrConfig {
    /// Directory holding keys, segments, statistics, grants and the audit log.
    pub dir: PathBuf,
    /// The key-encryption key file (32 bytes or 64 hex digits, mode 0600).
    pub kek_file: PathBuf,
    /// Days records are kept (at most 30): a UTC day's records are destroyed once the day is
    /// this many days old, so no record lives longer than this.
    pub retention_days: u32,
    /// Days anonymised statistics are kept.
    pub stats_retention_days: u32,
    /// Days audit log entries are kept.
    pub audit_retention_days: u32,
    /// Records that may wait in memory while the disk fails before new ones are refused.
    pub queue_capacity: usize,
    /// Records per group commit at most.
    pub max_batch: usize,
    /// A new segment file is started past this size.
    pub segment_max_bytes: u64,
    /// How often the purge runs (it also runs at start-up).
    pub purge_interval: Duration,
    /// How long to wait before retrying after a write error.
    pub retry_interval: Duration,
}

impl CdrConfig {
    /// Defaults for a store in `dir` with the KEK in `kek_file`.
    pub fn new(dir: impl Into<PathBuf>, kek_file: impl Into<PathBuf>) -> Self {
        CdrConfig {
            dir: dir.into(),
            kek_file: kek_file.into(),
            retention_days: MAX_RETENTION_DAYS,
            stats_retention_days: 400,
            audit_retention_days: 400,
            queue_capacity: 100_000,
            max_batch: 512,
            segment_max_bytes: 64 << 20,
            purge_interval: Duration::from_secs(3600),
            retry_interval: Duration::from_secs(1),
        }
    }

    /// Refuses settings that would break the retention promise or cannot work.
    pub fn validate(&self) -> Result<(), CdrError> {
        if self.retention_days == 0 || self.retention_days > MAX_RETENTION_DAYS {
            return Err(CdrError::Config(format!(
                "retention_days is {}: it must be between 1 and {MAX_RETENTION_DAYS} (records are kept at most 30 days)",
                self.retention_days
            )));
        }
        if self.queue_capacity == 0 || self.max_batch == 0 {
            return Err(CdrError::Config(
                "queue_capacity and max_batch must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Where the store gets the time: the system clock, or a test's.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system's real-time clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

#[derive(Default)]
struct Metrics {
    written: AtomicU64,
    write_errors: AtomicU64,
    rejected_full: AtomicU64,
    waiting: AtomicUsize,
    failing: AtomicBool,
    /// Set when the store is dropped, so a writer stuck on a failing disk still stops.
    closing: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// The store's health, for the control plane's metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Records durably written since start.
    pub written: u64,
    /// Failed group commits since start.
    pub write_errors: u64,
    /// Records refused because the queue was full.
    pub rejected_full: u64,
    /// Records accepted but not yet durable.
    pub waiting: usize,
    /// Whether the last write attempt failed (the disk is full or failing).
    pub failing: bool,
    /// The last write error, if any.
    pub last_error: Option<String>,
}

type Ack = Sender<Result<(), String>>;

enum Job {
    Write {
        day: String,
        json: Vec<u8>,
        ack: Option<Ack>,
    },
    Purge {
        ack: Sender<Result<PurgeReport, String>>,
    },
}

/// The CDR writer the control plane owns. Dropping it writes what is queued (retrying for a
/// few seconds if the disk fails) and stops the writer thread.
pub struct CdrStore {
    tx: Option<Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    metrics: Arc<Metrics>,
    retention_days: u32,
    clock: Arc<dyn Clock>,
}

impl CdrStore {
    /// Opens (or creates) the store: checks the configuration and the KEK (refusing a missing
    /// file, a wrong length or loose permissions), runs the purge, starts the writer thread.
    pub fn open(config: CdrConfig, clock: Arc<dyn Clock>) -> Result<CdrStore, CdrError> {
        config.validate()?;
        let kek = Kek::load(&config.kek_file)?;
        fsutil::private_dir(&config.dir)?;
        let report = purge(&config, &kek, clock.now_ms())?;
        if !report.days_purged.is_empty() {
            tracing::info!(days = ?report.days_purged, "CDR purge at start-up");
        }
        let metrics = Arc::new(Metrics::default());
        let (tx, rx) = bounded(config.queue_capacity);
        let retention_days = config.retention_days;
        let writer = Writer {
            segments_dir: config.dir.join("segments"),
            keys_dir: config.dir.join("keys"),
            config,
            kek,
            clock: clock.clone(),
            keys: HashMap::new(),
            open: HashMap::new(),
            next_seq: HashMap::new(),
            pending: Vec::new(),
            metrics: metrics.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("cdr-writer".into())
            .spawn(move || writer.run(rx))?;
        Ok(CdrStore {
            tx: Some(tx),
            writer: Some(handle),
            metrics,
            retention_days,
            clock,
        })
    }

    fn job(&self, record: &CallRecord, ack: Option<Ack>) -> Result<Job, CdrError> {
        let day = day_of(record.end_ms);
        if age_in_days(&day, self.clock.now_ms())
            .is_some_and(|age| age >= i64::from(self.retention_days))
        {
            return Err(CdrError::Expired(day));
        }
        let json = serde_json::to_vec(record).map_err(|e| CdrError::Io(io::Error::other(e)))?;
        Ok(Job::Write { day, json, ack })
    }

    fn send(&self, job: Job) -> Result<(), CdrError> {
        let tx = self.tx.as_ref().ok_or(CdrError::Stopped)?;
        match tx.try_send(job) {
            Ok(()) => {
                self.metrics.waiting.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                self.metrics.rejected_full.fetch_add(1, Ordering::Relaxed);
                Err(CdrError::QueueFull(tx.len()))
            }
            Err(TrySendError::Disconnected(_)) => Err(CdrError::Stopped),
        }
    }

    /// Queues `record` without waiting for the disk. Fails only if the queue is full (the
    /// disk has been failing long enough to fill it) or the record is already expired.
    pub fn submit(&self, record: &CallRecord) -> Result<(), CdrError> {
        self.send(self.job(record, None)?)
    }

    /// Writes `record` and returns once it is durable (group-committed with fsync). While the
    /// disk fails this waits for the retry to succeed.
    pub fn write(&self, record: &CallRecord) -> Result<(), CdrError> {
        let (ack_tx, ack_rx) = bounded(1);
        self.send(self.job(record, Some(ack_tx))?)?;
        match ack_rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(CdrError::Io(io::Error::other(e))),
            Err(_) => Err(CdrError::Stopped),
        }
    }

    /// Runs the purge now (it also runs at start-up and every `purge_interval`).
    pub fn purge_now(&self) -> Result<PurgeReport, CdrError> {
        let (ack_tx, ack_rx) = bounded(1);
        self.tx
            .as_ref()
            .ok_or(CdrError::Stopped)?
            .send(Job::Purge { ack: ack_tx })
            .map_err(|_| CdrError::Stopped)?;
        ack_rx
            .recv()
            .map_err(|_| CdrError::Stopped)?
            .map_err(|e| CdrError::Io(io::Error::other(e)))
    }

    /// The store's health counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        let m = &self.metrics;
        MetricsSnapshot {
            written: m.written.load(Ordering::Relaxed),
            write_errors: m.write_errors.load(Ordering::Relaxed),
            rejected_full: m.rejected_full.load(Ordering::Relaxed),
            waiting: m.waiting.load(Ordering::Relaxed),
            failing: m.failing.load(Ordering::Relaxed),
            last_error: m.last_error.lock().map(|e| e.clone()).unwrap_or(None),
        }
    }
}

impl Drop for CdrStore {
    fn drop(&mut self) {
        self.metrics.closing.store(true, Ordering::SeqCst);
        drop(self.tx.take());
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
    }
}

struct Pending {
    day: String,
    json: Vec<u8>,
    ack: Option<Ack>,
}

struct Writer {
    config: CdrConfig,
    kek: Kek,
    clock: Arc<dyn Clock>,
    segments_dir: PathBuf,
    keys_dir: PathBuf,
    keys: HashMap<String, DayKey>,
    open: HashMap<String, SegmentWriter>,
    next_seq: HashMap<String, u32>,
    pending: Vec<Pending>,
    metrics: Arc<Metrics>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Job>) {
        let mut next_purge = Instant::now() + self.config.purge_interval;
        let mut retry_at: Option<Instant> = None;
        loop {
            let wake = match retry_at {
                Some(t) if !self.pending.is_empty() => t.min(next_purge),
                _ => next_purge,
            };
            let timeout = wake.saturating_duration_since(Instant::now());
            // Take new work only while the batch has room: a failing disk fills the bounded
            // channel, and then `submit` refuses instead of memory growing.
            if self.pending.len() < self.config.max_batch {
                match rx.recv_timeout(timeout) {
                    Ok(job) => self.accept(job),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                while self.pending.len() < self.config.max_batch {
                    match rx.try_recv() {
                        Ok(job) => self.accept(job),
                        Err(_) => break,
                    }
                }
            } else if self.metrics.closing.load(Ordering::SeqCst) {
                break;
            } else {
                std::thread::sleep(timeout.min(Duration::from_millis(100)));
            }
            if !self.pending.is_empty() && retry_at.is_none_or(|t| Instant::now() >= t) {
                retry_at = if self.flush() {
                    None
                } else {
                    Some(Instant::now() + self.config.retry_interval)
                };
            }
            if Instant::now() >= next_purge {
                self.purge_logged();
                next_purge = Instant::now() + self.config.purge_interval;
            }
        }
        // Shutting down: try to write what is left, for a few retries.
        for _ in 0..5 {
            if self.pending.is_empty() || self.flush() {
                break;
            }
            std::thread::sleep(self.config.retry_interval.min(Duration::from_secs(1)));
        }
        if !self.pending.is_empty() {
            tracing::error!(
                records = self.pending.len(),
                "CDR writer stopped with records not written"
            );
        }
    }

    fn accept(&mut self, job: Job) {
        match job {
            Job::Write { day, json, ack } => self.pending.push(Pending { day, json, ack }),
            Job::Purge { ack } => {
                let result = self.purge();
                let _ = ack.send(result.map_err(|e| e.to_string()));
            }
        }
    }

    fn purge_logged(&mut self) {
        match self.purge() {
            Ok(r) if !r.days_purged.is_empty() => {
                tracing::info!(days = ?r.days_purged, "CDR purge")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "CDR purge failed"),
        }
    }

    fn purge(&mut self) -> Result<PurgeReport, CdrError> {
        let report = purge(&self.config, &self.kek, self.clock.now_ms())?;
        for day in &report.days_purged {
            // Zeroised on drop.
            self.keys.remove(day);
            self.open.remove(day);
        }
        Ok(report)
    }

    fn key(&mut self, day: &str) -> Result<&DayKey, CdrError> {
        if !self.keys.contains_key(day) {
            let key = match crypto::load_day_key(&self.kek, &self.keys_dir, day)? {
                Some(k) => k,
                None => crypto::create_day_key(&self.kek, &self.keys_dir, day)?,
            };
            self.keys.insert(day.to_owned(), key);
        }
        Ok(&self.keys[day])
    }

    fn segment(&mut self, day: &str) -> Result<(), CdrError> {
        let rotate = self
            .open
            .get(day)
            .is_some_and(|s| s.len() >= self.config.segment_max_bytes);
        if rotate {
            self.open.remove(day);
        }
        if !self.open.contains_key(day) {
            let day_dir = self.segments_dir.join(day);
            let seq = match self.next_seq.get(day) {
                Some(&s) => s,
                None => segment::segments_of(&day_dir)?.last().map_or(1, |s| s + 1),
            };
            // The number is used up even if creating the file fails (disk full): a retry
            // never collides with a half-made file.
            self.next_seq.insert(day.to_owned(), seq + 1);
            let w = SegmentWriter::create(&day_dir, day, seq)?;
            self.open.insert(day.to_owned(), w);
        }
        Ok(())
    }

    /// Group-commits everything pending, one day at a time. Returns whether all of it is now
    /// durable; records of days that committed are acknowledged and dropped from the queue.
    fn flush(&mut self) -> bool {
        let days: BTreeSet<String> = self.pending.iter().map(|p| p.day.clone()).collect();
        let mut ok = true;
        for day in days {
            match self.commit_day(&day) {
                Ok(n) => {
                    let (done, rest): (Vec<Pending>, Vec<Pending>) =
                        std::mem::take(&mut self.pending)
                            .into_iter()
                            .partition(|p| p.day == day);
                    self.pending = rest;
                    for p in done {
                        if let Some(ack) = p.ack {
                            let _ = ack.send(Ok(()));
                        }
                    }
                    self.metrics.written.fetch_add(n as u64, Ordering::Relaxed);
                    self.metrics.waiting.fetch_sub(n, Ordering::Relaxed);
                }
                Err(e) => {
                    ok = false;
                    self.metrics.write_errors.fetch_add(1, Ordering::Relaxed);
                    if !self.metrics.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e, waiting = self.pending.len(), "CDR write failed; records kept in memory and retried");
                    }
                    if let Ok(mut last) = self.metrics.last_error.lock() {
                        *last = Some(e.to_string());
                    }
                    // A failed segment is not appended to again.
                    self.open.remove(&day);
                }
            }
        }
        if ok && self.metrics.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("CDR writes succeed again");
        }
        ok
    }

    fn commit_day(&mut self, day: &str) -> Result<usize, CdrError> {
        self.key(day)?;
        self.segment(day)?;
        let key = &self.keys[day];
        let seg = self.open.get_mut(day).expect("opened above");
        let mut n = 0;
        for p in self.pending.iter().filter(|p| p.day == day) {
            seg.append(key, &p.json)?;
            n += 1;
        }
        seg.commit(key)?;
        tracing::debug!(
            day = seg.day(),
            seq = seg.seq(),
            records = n,
            "CDR group commit"
        );
        Ok(n)
    }
}

/// Records read back, with everything found wrong on the way.
#[derive(Debug, Default)]
pub struct ReadReport {
    /// Records that authenticated, in write order per day.
    pub records: Vec<CallRecord>,
    /// Tampering, truncation and torn tails found.
    pub findings: Vec<Finding>,
}

/// Reads records for `relayctl`. Obtained only with an access grant.
pub struct CdrReader {
    dir: PathBuf,
    kek: Kek,
}

impl CdrReader {
    /// Opens the store in `dir` for reading under `grant`.
    pub fn open(dir: &Path, kek_file: &Path, grant: &Grant) -> Result<CdrReader, CdrError> {
        let _ = grant;
        Self::open_internal(dir, kek_file)
    }

    /// For the purge and statistics, which only ever let aggregates out.
    pub(crate) fn open_internal(dir: &Path, kek_file: &Path) -> Result<CdrReader, CdrError> {
        Ok(CdrReader {
            dir: dir.to_owned(),
            kek: Kek::load(kek_file)?,
        })
    }

    /// The UTC days that have records on disk, ascending.
    pub fn days(&self) -> Result<Vec<String>, CdrError> {
        days_in(&self.dir.join("segments"))
    }

    /// Every record of `day`. Fails with [`CdrError::Purged`] if the day's key is gone.
    pub fn read_day(&self, day: &str) -> Result<ReadReport, CdrError> {
        read_day(&self.dir, &self.kek, day)
    }

    /// Every record whose call ended between `from_ms` and `to_ms` (inclusive).
    pub fn read_range(&self, from_ms: i64, to_ms: i64) -> Result<ReadReport, CdrError> {
        let (first, last) = (day_of(from_ms), day_of(to_ms));
        let mut out = ReadReport::default();
        for day in self
            .days()?
            .into_iter()
            .filter(|d| *d >= first && *d <= last)
        {
            let mut r = self.read_day(&day)?;
            r.records
                .retain(|rec| rec.end_ms >= from_ms && rec.end_ms <= to_ms);
            out.records.append(&mut r.records);
            out.findings.append(&mut r.findings);
        }
        Ok(out)
    }
}

fn days_in(dir: &Path) -> Result<Vec<String>, CdrError> {
    let mut days = Vec::new();
    match fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries {
                let name = e?.file_name().to_string_lossy().into_owned();
                let name = name.strip_suffix(".key").unwrap_or(&name).to_owned();
                if name.len() == 10 && age_in_days(&name, 0).is_some() {
                    days.push(name);
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    days.sort();
    days.dedup();
    Ok(days)
}

fn read_day(dir: &Path, kek: &Kek, day: &str) -> Result<ReadReport, CdrError> {
    let day_dir = dir.join("segments").join(day);
    let seqs = segment::segments_of(&day_dir)?;
    let mut out = ReadReport::default();
    if seqs.is_empty() {
        return Ok(out);
    }
    let key = crypto::load_day_key(kek, &dir.join("keys"), day)?
        .ok_or_else(|| CdrError::Purged(day.to_owned()))?;
    for seq in seqs {
        segment::read_segment(
            &key,
            &day_dir,
            day,
            seq,
            &mut out.records,
            &mut out.findings,
        )?;
    }
    Ok(out)
}

/// Aggregates a day segment by segment (never the whole day in memory).
fn fold_day(dir: &Path, kek: &Kek, day: &str) -> Result<(Vec<stats::HourStats>, usize), CdrError> {
    let day_dir = dir.join("segments").join(day);
    let mut folder = stats::Folder::default();
    let mut count = 0;
    let seqs = segment::segments_of(&day_dir)?;
    // Key already destroyed by an interrupted purge: nothing left to fold.
    let Some(key) = crypto::load_day_key(kek, &dir.join("keys"), day)? else {
        return Ok((folder.finish(), 0));
    };
    let (mut records, mut findings) = (Vec::new(), Vec::new());
    for seq in seqs {
        segment::read_segment(&key, &day_dir, day, seq, &mut records, &mut findings)?;
        for r in records.drain(..) {
            folder.add(&r);
            count += 1;
        }
    }
    for f in findings {
        tracing::warn!(finding = %f, "CDR purge: folding a damaged segment");
    }
    Ok((folder.finish(), count))
}

/// What a purge did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PurgeReport {
    /// Days whose records were folded into statistics and destroyed.
    pub days_purged: Vec<String>,
    /// Days of statistics deleted by their own retention.
    pub stats_days_deleted: Vec<String>,
    /// Records folded into statistics before destruction.
    pub records_folded: usize,
}

/// Purges every UTC day at least `retention_days` old: folds it into the anonymised
/// statistics (durably), destroys its key (the wrapped copy deleted and the directory
/// synced), then deletes its segments. Also applies the statistics and audit retention.
pub fn purge(config: &CdrConfig, kek: &Kek, now_ms: i64) -> Result<PurgeReport, CdrError> {
    config.validate()?;
    let dir = &config.dir;
    let (segments_dir, keys_dir) = (dir.join("segments"), dir.join("keys"));
    let mut report = PurgeReport::default();
    let mut days: Vec<String> = days_in(&segments_dir)?;
    days.extend(days_in(&keys_dir)?);
    days.sort();
    days.dedup();
    for day in days {
        if age_in_days(&day, now_ms).is_none_or(|age| age < i64::from(config.retention_days)) {
            continue;
        }
        // 1. Fold into statistics, unless an earlier, interrupted purge already did.
        if !stats::is_folded(dir, &day) {
            let (hours, folded) = fold_day(dir, kek, &day)?;
            report.records_folded += folded;
            stats::store_day(dir, &day, &hours)?;
        }
        // 2. Crypto-shred: without this file the day's records exist nowhere in readable form.
        fsutil::remove_durably(&crypto::day_key_path(&keys_dir, &day))?;
        // 3. Delete the ciphertext.
        let day_dir = segments_dir.join(&day);
        match fs::remove_dir_all(&day_dir) {
            Ok(()) => fsutil::sync_dir(&segments_dir)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        report.days_purged.push(day);
    }
    report.stats_days_deleted = stats::apply_retention(dir, config.stats_retention_days, now_ms)?;
    super::access::apply_audit_retention(dir, config.audit_retention_days, now_ms)?;
    Ok(report)
}
