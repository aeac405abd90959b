//! The writer (group commit, bounded queue, retry, statistics folded as records are written),
//! the reader, and the purge.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

use super::access::{Access, Grant};
use super::crypto::{self, DayKey, Kek, KeyKind};
use super::day::{self, DayIndex, IndexState, Layout, Listed};
use super::segment::{self, Finding, SegmentWriter};
use super::stats::{self, Checkpoint, Folder, HourStats, Sample};
use super::{age_in_days, day_of, fsutil, record, CallRecord, CdrError};

/// The longest retention the store accepts: the promise to customers is 30 days at most.
pub const MAX_RETENTION_DAYS: u32 = 30;

/// Settings of the store.
#[derive(Clone, Debug)]
pub struct CdrConfig {
    /// The data directory: segments, statistics, grants and the audit log.
    pub dir: PathBuf,
    /// The key directory: the wrapped day keys and audit keys. Outside the data directory, so
    /// that a backup of the data directory never holds a key, and a purged day in such a
    /// backup can never be decrypted (default: [`default_keys_dir`] of `dir`).
    pub keys_dir: PathBuf,
    /// The key-encryption key file (32 bytes or 64 hex digits, mode 0600).
    pub kek_file: PathBuf,
    /// Days records are kept (at most 30): a UTC day's records are destroyed once the day is
    /// this many days old, so no record lives longer than this. The personal query terms in
    /// the audit log are destroyed on the same schedule.
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
    /// How often the statistics folded so far are checkpointed beside their segment (also
    /// when a segment is closed, before a purge and at shutdown).
    pub checkpoint_interval: Duration,
}

/// The default key directory of a data directory: its sibling `<name>-keys`
/// (`/var/lib/relay/cdr` -> `/var/lib/relay/cdr-keys`).
pub fn default_keys_dir(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map_or_else(|| "cdr".into(), |n| n.to_string_lossy().into_owned());
    dir.with_file_name(format!("{name}-keys"))
}

impl CdrConfig {
    /// Defaults for a store in `dir` with the KEK in `kek_file`, and its keys in
    /// [`default_keys_dir`].
    pub fn new(dir: impl Into<PathBuf>, kek_file: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        CdrConfig {
            keys_dir: default_keys_dir(&dir),
            dir,
            kek_file: kek_file.into(),
            retention_days: MAX_RETENTION_DAYS,
            stats_retention_days: 400,
            audit_retention_days: 400,
            queue_capacity: 100_000,
            max_batch: 512,
            segment_max_bytes: 64 << 20,
            purge_interval: Duration::from_secs(3600),
            retry_interval: Duration::from_secs(1),
            checkpoint_interval: Duration::from_secs(10),
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
        if self.keys_dir.starts_with(&self.dir) {
            return Err(CdrError::Config(format!(
                "the key directory {} is inside the data directory {}: a backup of the data directory would hold the keys \
                 and keep purged records decryptable; use a directory of its own (default {})",
                self.keys_dir.display(),
                self.dir.display(),
                default_keys_dir(&self.dir).display()
            )));
        }
        Ok(())
    }

    pub(crate) fn layout(&self) -> Layout {
        Layout {
            dir: self.dir.clone(),
            keys_dir: self.keys_dir.clone(),
        }
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

/// What wakes the background thread.
enum Signal {
    /// Records were queued by `submit`.
    Work,
    /// Run the purge now.
    Purge(Sender<Result<PurgeReport, String>>),
}

/// What the callers and the background thread share.
struct Shared {
    /// Records accepted and not yet taken into a commit.
    queue: Mutex<Vec<Pending>>,
    /// The commit lock: whoever holds it takes the queue and commits it (see [`drive`]). A
    /// caller of [`CdrStore::write`] commits in its own thread when no commit runs, so one
    /// writer pays for one `fdatasync` and no thread hand-off; records queued during a
    /// commit go into the leader's next one (group commit).
    writer: Mutex<Writer>,
    metrics: Metrics,
    queue_capacity: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves state that is still consistent on disk (every
    // commit is all or nothing), so carry on with it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Commits what is queued unless someone else already is: the caller of `write` leads a
/// commit in its own thread if no commit runs; otherwise it only waits for its
/// acknowledgement, and the running leader keeps committing while records are queued.
/// After releasing the commit lock the leader looks at the queue once more, so a record
/// queued while it held the lock (whose writer found the lock taken) is never left behind.
/// Returns false if a commit failed (the background thread retries).
fn drive(shared: &Shared) -> bool {
    loop {
        let mut writer = match shared.writer.try_lock() {
            Ok(w) => w,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return true,
        };
        let ok = writer.commit_queued(shared, false);
        drop(writer);
        if !ok {
            return false;
        }
        if lock(&shared.queue).is_empty() {
            return true;
        }
    }
}

/// The CDR writer the control plane owns. Dropping it writes what is queued (retrying for a
/// few seconds if the disk fails), checkpoints the statistics, closes the segments and stops
/// the background thread.
pub struct CdrStore {
    shared: Arc<Shared>,
    bell: Option<Sender<Signal>>,
    background: Option<JoinHandle<()>>,
    retention_days: u32,
    clock: Arc<dyn Clock>,
}

impl CdrStore {
    /// Opens (or creates) the store: checks the configuration and the KEK (refusing a missing
    /// file, a wrong length or loose permissions), moves day keys of a store made by the
    /// first version out of the data directory, runs the purge, starts the background thread
    /// (commits of `submit`ted records, retries, statistics checkpoints, the hourly purge).
    pub fn open(config: CdrConfig, clock: Arc<dyn Clock>) -> Result<CdrStore, CdrError> {
        config.validate()?;
        let kek = Kek::load(&config.kek_file)?;
        fsutil::private_dir(&config.dir)?;
        fsutil::private_dir(&config.keys_dir)?;
        migrate_legacy_keys(&config.layout())?;
        let report = purge(&config, &kek, clock.now_ms())?;
        if !report.days_purged.is_empty() {
            tracing::info!(days = ?report.days_purged, "CDR purge at start-up");
        }
        let retention_days = config.retention_days;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Vec::new()),
            queue_capacity: config.queue_capacity,
            metrics: Metrics::default(),
            writer: Mutex::new(Writer {
                layout: config.layout(),
                config,
                kek,
                clock: clock.clone(),
                days: HashMap::new(),
                pending: Vec::new(),
                retry_at: None,
            }),
        });
        let (bell, rings) = bounded(16);
        let background = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("cdr-writer".into())
                .spawn(move || background(&shared, &rings))?
        };
        Ok(CdrStore {
            shared,
            bell: Some(bell),
            background: Some(background),
            retention_days,
            clock,
        })
    }

    fn pending(&self, record: &CallRecord, ack: Option<Ack>) -> Result<Pending, CdrError> {
        let day = day_of(record.end_ms);
        if age_in_days(&day, self.clock.now_ms())
            .is_some_and(|age| age >= i64::from(self.retention_days))
        {
            return Err(CdrError::Expired(day));
        }
        // Encoded and sampled here, on the caller's thread: a commit only seals and writes.
        let mut encoded = Vec::with_capacity(512);
        record::encode(record, &mut encoded);
        Ok(Pending {
            day,
            encoded,
            sample: Sample::of(record),
            ack,
        })
    }

    fn enqueue(&self, p: Pending) -> Result<(), CdrError> {
        if self.bell.is_none() {
            return Err(CdrError::Stopped);
        }
        let m = &self.shared.metrics;
        let mut queue = lock(&self.shared.queue);
        let waiting = m.waiting.load(Ordering::Relaxed);
        if waiting >= self.shared.queue_capacity {
            m.rejected_full.fetch_add(1, Ordering::Relaxed);
            return Err(CdrError::QueueFull(waiting));
        }
        queue.push(p);
        m.waiting.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Queues `record` without waiting for the disk. Fails only if the queue is full (the
    /// disk has been failing long enough to fill it) or the record is already expired.
    pub fn submit(&self, record: &CallRecord) -> Result<(), CdrError> {
        self.enqueue(self.pending(record, None)?)?;
        if let Some(bell) = &self.bell {
            // A full bell already has a wake-up waiting.
            let _ = bell.try_send(Signal::Work);
        }
        Ok(())
    }

    /// Writes `record` and returns once it is durable (group-committed with one fdatasync).
    /// While the disk fails this waits for the retry to succeed.
    pub fn write(&self, record: &CallRecord) -> Result<(), CdrError> {
        let (ack_tx, ack_rx) = bounded(1);
        self.enqueue(self.pending(record, Some(ack_tx))?)?;
        if !drive(&self.shared) {
            // Failing disk: the background thread retries; wake it to plan that.
            if let Some(bell) = &self.bell {
                let _ = bell.try_send(Signal::Work);
            }
        }
        match ack_rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(CdrError::Io(io::Error::other(e))),
            Err(_) => Err(CdrError::Stopped),
        }
    }

    /// Runs the purge now (it also runs at start-up and every `purge_interval`).
    pub fn purge_now(&self) -> Result<PurgeReport, CdrError> {
        let (ack_tx, ack_rx) = bounded(1);
        self.bell
            .as_ref()
            .ok_or(CdrError::Stopped)?
            .send(Signal::Purge(ack_tx))
            .map_err(|_| CdrError::Stopped)?;
        ack_rx
            .recv()
            .map_err(|_| CdrError::Stopped)?
            .map_err(|e| CdrError::Io(io::Error::other(e)))
    }

    /// The store's health counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        let m = &self.shared.metrics;
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
        drop(self.bell.take());
        if let Some(h) = self.background.take() {
            let _ = h.join();
        }
    }
}

/// The background thread: commits what `submit` queued, retries after write errors,
/// checkpoints statistics, runs the purge; at the end, writes what is left and closes.
fn background(shared: &Shared, rings: &Receiver<Signal>) {
    let (purge_interval, checkpoint_interval) = {
        let w = lock(&shared.writer);
        (w.config.purge_interval, w.config.checkpoint_interval)
    };
    let mut next_purge = Instant::now() + purge_interval;
    let mut next_checkpoint = Instant::now() + checkpoint_interval;
    loop {
        let retry_at = lock(&shared.writer).retry_at;
        let wake = retry_at
            .map_or(next_purge, |r| r.min(next_purge))
            .min(next_checkpoint);
        let signal = match rings.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Ok(s) => Some(s),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        {
            let mut w = lock(&shared.writer);
            w.commit_queued(shared, false);
            if let Some(Signal::Purge(ack)) = signal {
                let _ = ack.send(w.purge().map_err(|e| e.to_string()));
            }
            if Instant::now() >= next_checkpoint {
                w.checkpoint();
                next_checkpoint = Instant::now() + checkpoint_interval;
            }
            if Instant::now() >= next_purge {
                w.purge_logged();
                next_purge = Instant::now() + purge_interval;
            }
        }
        // Records queued while the lock was held here.
        drive(shared);
    }
    // Shutting down: try to write what is left, for a few retries.
    let mut w = lock(&shared.writer);
    for _ in 0..5 {
        if w.commit_queued(shared, true) {
            break;
        }
        let pause = w.config.retry_interval.min(Duration::from_secs(1));
        std::thread::sleep(pause);
    }
    let left = w.pending.len() + lock(&shared.queue).len();
    if left > 0 {
        tracing::error!(
            records = left,
            "CDR writer stopped with records not written"
        );
    }
    let days: Vec<String> = w.days.keys().cloned().collect();
    for day in days {
        w.close_segment(&day);
    }
}

/// Moves wrapped day keys from `<data dir>/keys/`, where the first version kept them, to the
/// key directory; each one durably in its new place before the old copy is removed.
fn migrate_legacy_keys(layout: &Layout) -> Result<(), CdrError> {
    let legacy = layout.legacy_keys_dir();
    let entries = match fs::read_dir(&legacy) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut moved = 0;
    for entry in entries {
        let from = entry?.path();
        if from.extension().is_none_or(|x| x != "key") {
            continue;
        }
        let name = from.file_name().expect("a file name").to_owned();
        let to = layout.keys_dir.join(&name);
        let data = fs::read(&from)?;
        match fs::read(&to) {
            Ok(existing) if existing == data => {}
            Ok(_) => {
                tracing::error!(key = %from.display(), "a different key of the same day is in the key directory; left in place");
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let tmp = layout
                    .keys_dir
                    .join(format!(".{}.migrating", name.to_string_lossy()));
                let _ = fs::remove_file(&tmp);
                fsutil::write_new_synced(&tmp, &data)?;
                let linked = fs::hard_link(&tmp, &to);
                fs::remove_file(&tmp)?;
                linked?;
                fsutil::sync_dir(&layout.keys_dir)?;
            }
            Err(e) => return Err(e.into()),
        }
        fsutil::remove_durably(&from)?;
        moved += 1;
    }
    if fs::remove_dir(&legacy).is_ok() {
        fsutil::sync_dir(&layout.dir)?;
    }
    if moved > 0 {
        tracing::info!(keys = moved, to = %layout.keys_dir.display(), "CDR day keys moved out of the data directory");
    }
    Ok(())
}

struct Pending {
    day: String,
    encoded: Vec<u8>,
    sample: Sample,
    ack: Option<Ack>,
}

/// The segment a day's records go to, and the statistics of what it committed.
struct OpenSegment {
    writer: SegmentWriter,
    folder: Folder,
    /// Committed since the last checkpoint.
    dirty: bool,
}

/// What the writer holds for a day it writes.
struct DayState {
    key: DayKey,
    index: DayIndex,
    open: Option<OpenSegment>,
    /// Segment numbers used so far (a number is used up even if making the file failed).
    last_seq: u32,
}

/// The store's write side; used only under the commit lock.
struct Writer {
    config: CdrConfig,
    layout: Layout,
    kek: Kek,
    clock: Arc<dyn Clock>,
    days: HashMap<String, DayState>,
    /// Records taken from the queue whose commit failed, retried first.
    pending: Vec<Pending>,
    /// After a failed commit, no new attempt before this (a failing disk is not hammered).
    retry_at: Option<Instant>,
}

impl Writer {
    /// Commits what is queued, in batches of at most `max_batch`, until the queue is empty or
    /// a commit fails. Returns whether everything is durable. `force` ignores the retry pause.
    fn commit_queued(&mut self, shared: &Shared, force: bool) -> bool {
        if !force && self.retry_at.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        loop {
            {
                let mut queue = lock(&shared.queue);
                let room = self.config.max_batch.saturating_sub(self.pending.len());
                let n = room.min(queue.len());
                self.pending.extend(queue.drain(..n));
            }
            if self.pending.is_empty() {
                return true;
            }
            if !self.flush(&shared.metrics) {
                self.retry_at = Some(Instant::now() + self.config.retry_interval);
                return false;
            }
            self.retry_at = None;
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
        // The purge folds checkpoints: bring them up to date first.
        self.checkpoint();
        let report = purge(&self.config, &self.kek, self.clock.now_ms())?;
        for day in &report.days_purged {
            // The key is zeroised on drop; the segment's files are gone.
            self.days.remove(day);
        }
        Ok(report)
    }

    /// Writes the statistics of every segment that committed since its last checkpoint.
    fn checkpoint(&mut self) {
        for (day, state) in &mut self.days {
            let Some(open) = state.open.as_mut().filter(|o| o.dirty) else {
                continue;
            };
            let (records, bytes) = open.writer.committed();
            let cp = Checkpoint {
                records,
                bytes,
                hours: open.folder.rows(),
            };
            match stats::write_checkpoint(
                &state.key,
                &self.layout.day_dir(day),
                day,
                open.writer.seq(),
                &cp,
            ) {
                Ok(()) => open.dirty = false,
                Err(e) => tracing::warn!(error = %e, day, "CDR statistics checkpoint failed"),
            }
        }
    }

    /// Checkpoints and closes the day's open segment: its final counts go into the day's
    /// segment list. Best effort: a failure only costs the purge a fold of its records.
    fn close_segment(&mut self, day: &str) {
        self.checkpoint();
        let Some(state) = self.days.get_mut(day) else {
            return;
        };
        let Some(open) = state.open.take() else {
            return;
        };
        let seq = open.writer.seq();
        let committed = open.writer.committed();
        if let Some(l) = state.index.segments.iter_mut().find(|l| l.seq == seq) {
            l.closed = Some(committed);
        }
        if let Err(e) = day::write_index(&state.key, &self.layout.day_dir(day), day, &state.index) {
            tracing::warn!(error = %e, day, "CDR segment list not updated at close");
        }
    }

    /// The day's key and segment list, loaded or made.
    fn day_state(&mut self, day: &str) -> Result<&mut DayState, CdrError> {
        if !self.days.contains_key(day) {
            let day_dir = self.layout.day_dir(day);
            let path = crypto::key_path(&self.layout.keys_dir, KeyKind::Data, day);
            let (key, new) = match crypto::load_key(&self.kek, &path, KeyKind::Data, day)? {
                Some(k) => (k, false),
                None => (
                    crypto::load_or_create_key(
                        &self.kek,
                        &self.layout.keys_dir,
                        KeyKind::Data,
                        day,
                    )?,
                    true,
                ),
            };
            let present = segment::segments_of(&day_dir)?;
            let adopt = || DayIndex {
                segments: present
                    .iter()
                    .map(|&seq| Listed { seq, closed: None })
                    .collect(),
            };
            let index = match day::read_index(&key, &day_dir, day)? {
                IndexState::Valid(i) => i,
                IndexState::Missing => {
                    if !new && !day::all_first_format(&day_dir, day, &present) {
                        // Deleted (or a crash right after the key was made): keep it reported.
                        tracing::error!(day, "CDR segment list missing: a marker keeps it reported, a new list names the segments on disk");
                        day::set_aside(&day_dir)?;
                    }
                    let i = adopt();
                    fsutil::private_dir(&day_dir)?;
                    day::write_index(&key, &day_dir, day, &i)?;
                    i
                }
                IndexState::Damaged => {
                    tracing::error!(day, "CDR segment list damaged: kept aside as evidence, a new one lists the segments on disk");
                    day::set_aside(&day_dir)?;
                    let i = adopt();
                    day::write_index(&key, &day_dir, day, &i)?;
                    i
                }
            };
            let last_seq = index
                .segments
                .iter()
                .map(|l| l.seq)
                .chain(present.iter().copied())
                .max()
                .unwrap_or(0);
            self.days.insert(
                day.to_owned(),
                DayState {
                    key,
                    index,
                    open: None,
                    last_seq,
                },
            );
        }
        Ok(self.days.get_mut(day).expect("inserted above"))
    }

    /// The day's open segment, started (and listed, durably) if there is none or it is full.
    fn segment(&mut self, day: &str) -> Result<(), CdrError> {
        let max = self.config.segment_max_bytes;
        let full = self
            .day_state(day)?
            .open
            .as_ref()
            .is_some_and(|o| o.writer.len() >= max);
        if full {
            self.close_segment(day);
        }
        let day_dir = self.layout.day_dir(day);
        let state = self.day_state(day)?;
        if state.open.is_none() {
            let seq = state.last_seq + 1;
            // Used up even if making the file fails (disk full): a retry never collides
            // with a half-made file.
            state.last_seq = seq;
            let writer = SegmentWriter::create(&day_dir, day, seq)?;
            // Listed before its first record: a listed segment that disappears is reported.
            state.index.segments.push(Listed { seq, closed: None });
            if let Err(e) = day::write_index(&state.key, &day_dir, day, &state.index) {
                state.index.segments.pop();
                return Err(e);
            }
            state.open = Some(OpenSegment {
                writer,
                folder: Folder::default(),
                dirty: false,
            });
        }
        Ok(())
    }

    /// Group-commits everything pending, one day at a time. Returns whether all of it is now
    /// durable; records of days that committed are acknowledged and dropped from the queue.
    fn flush(&mut self, metrics: &Metrics) -> bool {
        let days: BTreeSet<String> = self.pending.iter().map(|p| p.day.clone()).collect();
        let mut ok = true;
        for day in days {
            let (batch, rest): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|p| p.day == day);
            self.pending = rest;
            match self.commit_day(&day, &batch) {
                Ok(()) => {
                    let n = batch.len();
                    for p in batch {
                        if let Some(ack) = p.ack {
                            let _ = ack.send(Ok(()));
                        }
                    }
                    metrics.written.fetch_add(n as u64, Ordering::Relaxed);
                    metrics.waiting.fetch_sub(n, Ordering::Relaxed);
                }
                Err(e) => {
                    ok = false;
                    self.pending.extend(batch);
                    metrics.write_errors.fetch_add(1, Ordering::Relaxed);
                    if !metrics.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e, waiting = self.pending.len(), "CDR write failed; records kept in memory and retried");
                    }
                    if let Ok(mut last) = metrics.last_error.lock() {
                        *last = Some(e.to_string());
                    }
                    // A failed segment is not appended to again.
                    self.close_segment(&day);
                }
            }
        }
        if ok && metrics.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("CDR writes succeed again");
        }
        ok
    }

    fn commit_day(&mut self, day: &str, batch: &[Pending]) -> Result<(), CdrError> {
        self.segment(day)?;
        let state = self.days.get_mut(day).expect("made by segment()");
        let open = state.open.as_mut().expect("opened by segment()");
        for p in batch {
            open.writer.append(&state.key, &p.encoded)?;
        }
        open.writer.commit(&state.key)?;
        for p in batch {
            open.folder.add_sample(&p.sample);
        }
        open.dirty = true;
        tracing::debug!(
            day,
            seq = open.writer.seq(),
            records = batch.len(),
            "CDR group commit"
        );
        Ok(())
    }
}

/// Records read back, with everything found wrong on the way.
#[derive(Debug, Default)]
pub struct ReadReport {
    /// Records that authenticated, in write order per day.
    pub records: Vec<CallRecord>,
    /// Tampering, truncation, missing segments and torn tails found.
    pub findings: Vec<Finding>,
}

impl ReadReport {
    /// Whether anything was damaged (a torn tail from a crash is not damage).
    pub fn damaged(&self) -> bool {
        self.findings.iter().any(Finding::is_damage)
    }
}

/// Reads records for `relayctl`. Obtained only with an authentic access grant.
pub struct CdrReader {
    layout: Layout,
    kek: Kek,
}

impl CdrReader {
    /// Opens the store of `config` for reading under `grant`, which must be authentic: made
    /// by [`Access::grant`] (its MAC verifies) and in the audit log. Whether it has lapsed is
    /// checked by [`Access::require`], which has the clock.
    pub fn open(config: &CdrConfig, grant: &Grant) -> Result<CdrReader, CdrError> {
        let access = Access::open(config)?;
        access.check(grant)?;
        Ok(CdrReader {
            layout: config.layout(),
            kek: Kek::load(&config.kek_file)?,
        })
    }

    /// The UTC days that have records (or a key) in the store, ascending.
    pub fn days(&self) -> Result<Vec<String>, CdrError> {
        self.layout.days()
    }

    /// Every record of `day`, in memory (decrypted on one thread per core). Fails with
    /// [`CdrError::Purged`] if the day's key is gone.
    pub fn read_day(&self, day: &str) -> Result<ReadReport, CdrError> {
        let mut out = ReadReport::default();
        out.records = day::read_day(&self.layout, &self.kek, day, &mut out.findings)?;
        Ok(out)
    }

    /// Hands every record of `day` to `visit`, one at a time, in write order; returns what
    /// was found wrong. Memory stays bounded whatever the day's size, and the record handed
    /// over is reused for the next one (clone what you keep).
    pub fn visit_day(
        &self,
        day: &str,
        visit: &mut dyn FnMut(&CallRecord),
    ) -> Result<Vec<Finding>, CdrError> {
        let mut findings = Vec::new();
        day::visit_day(&self.layout, &self.kek, day, visit, &mut findings)?;
        Ok(findings)
    }

    /// Hands every record whose call ended between `from_ms` and `to_ms` (inclusive) to
    /// `visit`, one at a time; returns what was found wrong. This is what `relayctl` filters
    /// with: it never holds more than a segment in memory.
    pub fn visit_range(
        &self,
        from_ms: i64,
        to_ms: i64,
        visit: &mut dyn FnMut(&CallRecord),
    ) -> Result<Vec<Finding>, CdrError> {
        let (first, last) = (day_of(from_ms), day_of(to_ms));
        let mut findings = Vec::new();
        for day in self
            .days()?
            .into_iter()
            .filter(|d| *d >= first && *d <= last)
        {
            day::visit_day(
                &self.layout,
                &self.kek,
                &day,
                &mut |r| {
                    if r.end_ms >= from_ms && r.end_ms <= to_ms {
                        visit(r)
                    }
                },
                &mut findings,
            )?;
        }
        Ok(findings)
    }

    /// Every record whose call ended between `from_ms` and `to_ms` (inclusive), in memory.
    pub fn read_range(&self, from_ms: i64, to_ms: i64) -> Result<ReadReport, CdrError> {
        let mut out = ReadReport::default();
        let mut records = Vec::new();
        out.findings = self.visit_range(from_ms, to_ms, &mut |r| records.push(r.clone()))?;
        out.records = records;
        Ok(out)
    }
}

/// Statistics of days not purged yet, from their sealed checkpoints.
#[derive(Debug, Default)]
pub struct LiveStats {
    /// Hourly aggregates per trunk.
    pub rows: Vec<HourStats>,
    /// Damage found on the way.
    pub findings: Vec<Finding>,
}

/// The statistics of the days from `first_day` to `last_day` (inclusive, `YYYY-MM-DD`) that
/// are not folded yet, except those in `skip`. Needs the KEK (and refuses it as every command
/// does if it is readable by others), but no grant: only aggregates leave.
pub fn live_stats(
    config: &CdrConfig,
    first_day: &str,
    last_day: &str,
    skip: &BTreeSet<String>,
) -> Result<LiveStats, CdrError> {
    let kek = Kek::load(&config.kek_file)?;
    let layout = config.layout();
    let mut folder = Folder::default();
    let mut out = LiveStats::default();
    for day in layout.days()? {
        if day.as_str() < first_day || day.as_str() > last_day || skip.contains(&day) {
            continue;
        }
        let folded = day::fold_day(&layout, &kek, &day, &mut out.findings)?;
        folder.merge(folded.folder.finish())?;
    }
    out.rows = folder.finish();
    Ok(out)
}

/// What a purge did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PurgeReport {
    /// Days whose records were folded into statistics and destroyed.
    pub days_purged: Vec<String>,
    /// Days of statistics deleted by their own retention.
    pub stats_days_deleted: Vec<String>,
    /// Records the statistics of the purged days cover.
    pub records_folded: usize,
    /// Of those, records that had to be decrypted to be folded (no checkpoint covered them:
    /// segments of the first format, or written just before a crash).
    pub records_decrypted: usize,
    /// Days whose audit key (the query terms of that day's audit entries) was destroyed.
    pub audit_keys_destroyed: Vec<String>,
    /// Audit entries of the first version whose query terms (in clear) were removed.
    pub audit_entries_redacted: usize,
    /// Days whose SIP traces were destroyed (key and files).
    pub trace_days_purged: Vec<String>,
}

/// Purges every UTC day at least `retention_days` old: merges its statistics checkpoints
/// into `stats/<day>.json` (durably), destroys its key (the wrapped copy deleted and the
/// directory synced), then deletes its segments. Destroys the audit keys of the same days,
/// and applies the statistics and audit retention.
pub fn purge(config: &CdrConfig, kek: &Kek, now_ms: i64) -> Result<PurgeReport, CdrError> {
    config.validate()?;
    let layout = config.layout();
    let dir = &config.dir;
    let mut report = PurgeReport::default();
    let expired = |day: &str| {
        age_in_days(day, now_ms).is_some_and(|age| age >= i64::from(config.retention_days))
    };
    for day in layout.days()? {
        if !expired(&day) {
            continue;
        }
        // 1. Fold into statistics, unless an earlier, interrupted purge already did.
        if !stats::is_folded(dir, &day) {
            let mut findings = Vec::new();
            let folded = day::fold_day(&layout, kek, &day, &mut findings)?;
            for f in findings.iter().filter(|f| f.is_damage()) {
                tracing::warn!(finding = %f, "CDR purge: folding a damaged day");
            }
            report.records_folded += folded.records;
            report.records_decrypted += folded.decrypted;
            stats::store_day(dir, &day, &folded.folder.finish())?;
        }
        // 2. Crypto-shred: without this file the day's records exist nowhere in readable form.
        fsutil::remove_durably(&crypto::key_path(&layout.keys_dir, KeyKind::Data, &day))?;
        fsutil::remove_durably(&crypto::key_path(
            &layout.legacy_keys_dir(),
            KeyKind::Data,
            &day,
        ))?;
        // 3. Delete the ciphertext.
        let segments_dir = layout.segments_dir();
        match fs::remove_dir_all(layout.day_dir(&day)) {
            Ok(()) => fsutil::sync_dir(&segments_dir)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        report.days_purged.push(day);
    }
    // The personal query terms of the audit log go with the same schedule.
    let audit_keys = KeyKind::Audit.dir(&layout.keys_dir);
    for day in day::days_in(&audit_keys)? {
        if expired(&day) {
            fsutil::remove_durably(&crypto::key_path(&layout.keys_dir, KeyKind::Audit, &day))?;
            report.audit_keys_destroyed.push(day);
        }
    }
    // SIP traces live exactly as long as the records of their day.
    report.trace_days_purged = super::trace::purge(&layout, expired)?;
    report.stats_days_deleted = stats::apply_retention(dir, config.stats_retention_days, now_ms)?;
    super::access::apply_audit_retention(dir, config.audit_retention_days, now_ms)?;
    report.audit_entries_redacted =
        Access::with_kek(config, kek).redact_legacy_terms(config.retention_days, now_ms)?;
    Ok(report)
}
