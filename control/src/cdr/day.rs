//! Where a day's files are, its authenticated segment list, and reading or folding a whole
//! day.
//!
//! ```text
//! segments/<day>/index        sealed with the day key: every segment made that day, and the
//!                             final record count of each one closed; rewritten durably when a
//!                             segment is started or closed
//! ```
//!
//! The list is written before the first record of a new segment, so a segment with records is
//! always listed: a listed segment that is gone is reported missing, a missing or damaged list
//! is reported (segments could have been deleted without trace), and so is a segment with
//! records that is not listed. Days written by the first format have no list; they are read
//! as before.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::crypto::{self, DayKey, Kek, KeyKind};
use super::segment::{self, Finding, Plain};
use super::stats::{self, CheckpointState, Folder};
use super::{fsutil, record, CallRecord, CdrError};
use zeroize::Zeroize;

/// The store's directories.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    /// The data directory: segments, statistics, grants, audit log.
    pub(crate) dir: PathBuf,
    /// The key directory, outside the data directory.
    pub(crate) keys_dir: PathBuf,
}

impl Layout {
    pub(crate) fn segments_dir(&self) -> PathBuf {
        self.dir.join("segments")
    }

    pub(crate) fn day_dir(&self, day: &str) -> PathBuf {
        self.segments_dir().join(day)
    }

    /// Where the first version kept day keys: inside the data directory.
    pub(crate) fn legacy_keys_dir(&self) -> PathBuf {
        self.dir.join("keys")
    }

    /// The day key of `day` from the key directory, or from the legacy location of a store
    /// not yet migrated (the control plane moves them at start-up).
    pub(crate) fn load_day_key(&self, kek: &Kek, day: &str) -> Result<Option<DayKey>, CdrError> {
        let path = crypto::key_path(&self.keys_dir, KeyKind::Data, day);
        if let Some(k) = crypto::load_key(kek, &path, KeyKind::Data, day)? {
            return Ok(Some(k));
        }
        let legacy = crypto::key_path(&self.legacy_keys_dir(), KeyKind::Data, day);
        crypto::load_key(kek, &legacy, KeyKind::Data, day)
    }

    /// Every UTC day with segments or a key, ascending: a day whose directory was deleted
    /// still has its key, and is reported.
    pub(crate) fn days(&self) -> Result<Vec<String>, CdrError> {
        let mut days = days_in(&self.segments_dir())?;
        days.extend(days_in(&self.keys_dir)?);
        days.extend(days_in(&self.legacy_keys_dir())?);
        days.sort();
        days.dedup();
        Ok(days)
    }
}

/// The `YYYY-MM-DD` names (with or without `.key`) in `dir`.
pub(crate) fn days_in(dir: &Path) -> Result<Vec<String>, CdrError> {
    let mut days = Vec::new();
    match fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries {
                let name = e?.file_name().to_string_lossy().into_owned();
                let name = name.strip_suffix(".key").unwrap_or(&name).to_owned();
                if name.len() == 10 && super::age_in_days(&name, 0).is_some() {
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

/// One segment in the day's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Listed {
    pub(crate) seq: u32,
    /// Records and bytes when the segment was closed; `None` while it may still grow.
    #[serde(default)]
    pub(crate) closed: Option<(u64, u64)>,
}

/// The day's segment list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DayIndex {
    pub(crate) segments: Vec<Listed>,
}

impl DayIndex {
    pub(crate) fn get(&self, seq: u32) -> Option<&Listed> {
        self.segments.iter().find(|l| l.seq == seq)
    }
}

pub(crate) enum IndexState {
    Missing,
    Damaged,
    Valid(DayIndex),
}

fn index_aad(day: &str) -> Vec<u8> {
    let mut aad = b"relay-cdr-day-index-v2:".to_vec();
    aad.extend_from_slice(day.as_bytes());
    aad
}

fn index_path(day_dir: &Path) -> PathBuf {
    day_dir.join("index")
}

/// Whether a damaged list was set aside by the writer (see [`set_aside`]).
fn set_aside_exists(day_dir: &Path) -> bool {
    fs::read_dir(day_dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with("index.damaged"))
    })
}

pub(crate) fn read_index(key: &DayKey, day_dir: &Path, day: &str) -> Result<IndexState, CdrError> {
    let sealed = match fs::read(index_path(day_dir)) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(IndexState::Missing),
        Err(e) => return Err(e.into()),
    };
    Ok(key
        .open(&index_aad(day), &sealed)
        .and_then(|plain| serde_json::from_slice(&plain).ok())
        .map_or(IndexState::Damaged, IndexState::Valid))
}

/// Replaces the day's list, durably.
pub(crate) fn write_index(
    key: &DayKey,
    day_dir: &Path,
    day: &str,
    index: &DayIndex,
) -> Result<(), CdrError> {
    let json = serde_json::to_vec(index).map_err(|e| CdrError::Io(io::Error::other(e)))?;
    let sealed = key.seal(&index_aad(day), &json)?;
    fsutil::write_durably(&index_path(day_dir), &sealed)?;
    Ok(())
}

/// Keeps a damaged list as evidence (readers keep reporting it) before the writer starts a
/// new one from the segments on disk; for a list that is missing, leaves a marker instead.
pub(crate) fn set_aside(day_dir: &Path) -> io::Result<()> {
    fsutil::private_dir(day_dir)?;
    let mut n = 0;
    loop {
        let to = day_dir.join(format!("index.damaged-{n}"));
        if !to.exists() {
            match fs::rename(index_path(day_dir), &to) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => fsutil::write_new_synced(
                    &to,
                    b"the segment list was missing when the writer next used this day\n",
                )?,
                Err(e) => return Err(e),
            }
            return fsutil::sync_dir(day_dir);
        }
        n += 1;
    }
}

/// Whether every segment in `present` is of the first format (a day written before segment
/// lists existed).
pub(crate) fn all_first_format(day_dir: &Path, day: &str, present: &[u32]) -> bool {
    !present.is_empty()
        && present
            .iter()
            .all(|&seq| format_on_disk(day_dir, day, seq) == Some(1))
}

/// The format of segment `seq` from its header, or `None` if unreadable.
fn format_on_disk(day_dir: &Path, day: &str, seq: u32) -> Option<u8> {
    let mut header = [0u8; segment::HEADER_LEN as usize];
    fs::File::open(segment::segment_path(day_dir, seq))
        .and_then(|mut f| f.read_exact(&mut header))
        .ok()?;
    segment::format_of(&header, day, seq)
}

/// The segments to read and what the list says about each.
struct Plan {
    present: Vec<u32>,
    index: Option<DayIndex>,
}

fn plan(
    key: &DayKey,
    day_dir: &Path,
    day: &str,
    findings: &mut Vec<Finding>,
) -> Result<Plan, CdrError> {
    // The list first, then the directory: a segment started meanwhile shows up as unlisted
    // (checked again below), never as missing.
    let state = read_index(key, day_dir, day)?;
    let present = segment::segments_of(day_dir)?;
    let list_damaged = || Finding::SegmentListDamaged {
        day: day.to_owned(),
    };
    let index = match state {
        IndexState::Valid(index) => {
            if set_aside_exists(day_dir) {
                findings.push(list_damaged());
            }
            for l in &index.segments {
                if !present.contains(&l.seq) {
                    findings.push(Finding::SegmentMissing {
                        segment: segment::segment_path(day_dir, l.seq).display().to_string(),
                    });
                }
            }
            Some(index)
        }
        IndexState::Damaged => {
            findings.push(list_damaged());
            None
        }
        IndexState::Missing => {
            // A day of the first format has no list; any other day must.
            if !all_first_format(day_dir, day, &present) {
                findings.push(list_damaged());
            }
            None
        }
    };
    Ok(Plan { present, index })
}

/// Whether the list, read again, names `seq` (it was started after the first read).
fn listed_now(key: &DayKey, day_dir: &Path, day: &str, seq: u32) -> bool {
    matches!(read_index(key, day_dir, day), Ok(IndexState::Valid(i)) if i.get(seq).is_some())
}

/// Where a segment's records go, as plaintexts.
trait Sink {
    /// How many records the manifest promises, before the first one.
    fn expect(&mut self, _records: usize) {}
    /// One committed record; false if it is authentic but cannot be decoded.
    fn plain(&mut self, plain: &Plain<'_>) -> bool;
}

/// Decoded records, kept.
struct Collect {
    records: Vec<CallRecord>,
    scratch: CallRecord,
}

impl Sink for Collect {
    fn expect(&mut self, records: usize) {
        self.records.reserve(records);
    }
    fn plain(&mut self, plain: &Plain<'_>) -> bool {
        let ok = plain.decode_into(&mut self.scratch);
        if ok {
            self.records.push(self.scratch.clone());
        }
        ok
    }
}

/// Decoded records, each handed to a visitor in one reused record.
struct Visit<'a> {
    visit: &'a mut dyn FnMut(&CallRecord),
    scratch: CallRecord,
}

impl Sink for Visit<'_> {
    fn plain(&mut self, plain: &Plain<'_>) -> bool {
        let ok = plain.decode_into(&mut self.scratch);
        if ok {
            (self.visit)(&self.scratch);
        }
        ok
    }
}

/// Reads segment `seq` of a planned day into `buffer`'s allocation, handing each committed
/// record to `sink`.
#[allow(clippy::too_many_arguments)] // the day's context, passed down unchanged
fn read_one(
    key: &DayKey,
    day_dir: &Path,
    day: &str,
    seq: u32,
    index: Option<&DayIndex>,
    buffer: &mut Vec<u8>,
    sink: &mut dyn Sink,
    findings: &mut Vec<Finding>,
) -> Result<(), CdrError> {
    let listed = index.and_then(|i| i.get(seq).copied());
    let name = || segment::segment_path(day_dir, seq).display().to_string();
    let Some(loaded) = segment::load_into(key, day_dir, day, seq, 0, std::mem::take(buffer))?
    else {
        // Deleted while we read: reported like any missing segment.
        findings.push(Finding::SegmentMissing { segment: name() });
        return Ok(());
    };
    sink.expect(loaded.committed_hint());
    let unlisted = index.is_some() && listed.is_none();
    let mut emitted = 0usize;
    let mut own = Vec::new();
    let mut undecodable = Vec::new();
    segment::read_loaded_plain(
        key,
        day_dir,
        day,
        seq,
        listed.and_then(|l| l.closed),
        &loaded,
        segment::HEADER_LEN,
        0,
        &mut |plain| {
            emitted += 1;
            if !sink.plain(plain) {
                undecodable.push(plain.offset);
            }
        },
        &mut own,
    );
    own.extend(undecodable.into_iter().map(|offset| Finding::FrameDamaged {
        segment: name(),
        offset,
    }));
    // Not in the list: harmless if nothing was ever committed in it (a crash between making
    // the file and listing it), damage otherwise.
    if unlisted
        && (emitted > 0 || own.iter().any(Finding::is_damage))
        && !listed_now(key, day_dir, day, seq)
    {
        findings.push(Finding::SegmentUnlisted { segment: name() });
    }
    findings.append(&mut own);
    *buffer = loaded.into_buffer();
    Ok(())
}

/// The day's key and plan, or `None` if there is nothing to read.
fn open_day(
    layout: &Layout,
    kek: &Kek,
    day: &str,
    findings: &mut Vec<Finding>,
) -> Result<Option<(DayKey, Plan)>, CdrError> {
    let day_dir = layout.day_dir(day);
    let Some(key) = layout.load_day_key(kek, day)? else {
        if segment::segments_of(&day_dir)?.is_empty() {
            return Ok(None);
        }
        return Err(CdrError::Purged(day.to_owned()));
    };
    let plan = plan(&key, &day_dir, day, findings)?;
    Ok(Some((key, plan)))
}

/// Plaintext bytes per chunk handed from the reading thread to the visiting one.
const CHUNK_BYTES: usize = 256 << 10;
/// Chunks the reading thread may run ahead of the visitor.
const CHUNKS_AHEAD: usize = 4;

/// Plaintexts of committed records, from the reading thread.
#[derive(Default)]
struct Chunk {
    seq: u32,
    bytes: Vec<u8>,
    /// Format, frame offset, and range in `bytes` of each record.
    records: Vec<(u8, u64, usize, usize)>,
}

enum Piece {
    Chunk(Chunk),
    Done(Result<Vec<Finding>, CdrError>),
}

/// The reading thread's sink: plaintexts copied into chunks, sent when full. Chunks come back
/// from the visitor to be reused, so their bytes are overwritten rather than freed, and all
/// of them are zeroised when the day is done.
struct Chunker<'a> {
    tx: &'a crossbeam_channel::Sender<Piece>,
    spare: &'a crossbeam_channel::Receiver<Chunk>,
    chunk: Chunk,
    /// The visitor has gone: stop.
    gone: bool,
}

impl Chunker<'_> {
    fn send(&mut self) {
        if self.chunk.records.is_empty() || self.gone {
            return;
        }
        let seq = self.chunk.seq;
        let mut next = self.spare.try_recv().unwrap_or_default();
        next.seq = seq;
        let full = std::mem::replace(&mut self.chunk, next);
        self.gone = self.tx.send(Piece::Chunk(full)).is_err();
    }

    fn start(&mut self, seq: u32) {
        self.send();
        self.chunk.seq = seq;
    }
}

impl Sink for Chunker<'_> {
    fn plain(&mut self, plain: &Plain<'_>) -> bool {
        let a = self.chunk.bytes.len();
        self.chunk.bytes.extend_from_slice(plain.bytes);
        let b = self.chunk.bytes.len();
        self.chunk.records.push((plain.format, plain.offset, a, b));
        if b >= CHUNK_BYTES {
            self.send();
        }
        true // decoded, and judged, by the visitor
    }
}

/// Hands every committed record of `day` to `emit`, in write order, one at a time, decoded
/// into one record whose allocations are reused: memory stays bounded whatever the day's
/// size, and almost nothing is allocated per record. With more than one core the reading,
/// authentication and decryption run on a second thread a few chunks of plaintext ahead,
/// and decoding and visiting on the caller's (records are never allocated on one thread
/// and freed on the other). Fails with [`CdrError::Purged`] if the day's key is gone but
/// segments are left.
pub(crate) fn visit_day(
    layout: &Layout,
    kek: &Kek,
    day: &str,
    emit: &mut dyn FnMut(&CallRecord),
    findings: &mut Vec<Finding>,
) -> Result<(), CdrError> {
    let Some((key, plan)) = open_day(layout, kek, day, findings)? else {
        return Ok(());
    };
    let day_dir = layout.day_dir(day);
    let (seqs, index) = (&plan.present, plan.index.as_ref());
    let mut visit = Visit {
        visit: emit,
        scratch: record::empty(),
    };
    if readers(usize::MAX) == 1 || seqs.is_empty() {
        let mut buffer = Vec::new();
        for &seq in seqs {
            read_one(
                &key,
                &day_dir,
                day,
                seq,
                index,
                &mut buffer,
                &mut visit,
                findings,
            )?;
        }
        return Ok(());
    }
    let (tx, rx) = crossbeam_channel::bounded::<Piece>(CHUNKS_AHEAD);
    let (spare_tx, spare_rx) = crossbeam_channel::bounded::<Chunk>(CHUNKS_AHEAD + 2);
    let spare_left = spare_rx.clone();
    std::thread::scope(|scope| {
        let (key, day_dir) = (&key, &day_dir);
        scope.spawn(move || {
            let mut chunker = Chunker {
                tx: &tx,
                spare: &spare_rx,
                chunk: Chunk::default(),
                gone: false,
            };
            let mut buffer = Vec::new();
            let mut found = Vec::new();
            let mut result = Ok(());
            for &seq in seqs {
                chunker.start(seq);
                result = read_one(
                    key,
                    day_dir,
                    day,
                    seq,
                    index,
                    &mut buffer,
                    &mut chunker,
                    &mut found,
                );
                if result.is_err() || chunker.gone {
                    break;
                }
            }
            chunker.send();
            let mut last = std::mem::take(&mut chunker.chunk);
            last.bytes.zeroize();
            while let Ok(mut c) = spare_rx.try_recv() {
                c.bytes.zeroize();
            }
            let _ = tx.send(Piece::Done(result.map(|()| found)));
        });
        let mut outcome = Ok(());
        for piece in &rx {
            match piece {
                Piece::Chunk(mut chunk) => {
                    for &(format, offset, a, b) in &chunk.records {
                        let plain = Plain {
                            format,
                            offset,
                            bytes: &chunk.bytes[a..b],
                        };
                        if !visit.plain(&plain) {
                            findings.push(Finding::FrameDamaged {
                                segment: segment::segment_path(day_dir, chunk.seq)
                                    .display()
                                    .to_string(),
                                offset,
                            });
                        }
                    }
                    chunk.bytes.clear();
                    chunk.records.clear();
                    if let Err(e) = spare_tx.try_send(chunk) {
                        e.into_inner().bytes.zeroize();
                    }
                }
                Piece::Done(Ok(mut found)) => {
                    findings.append(&mut found);
                    break;
                }
                Piece::Done(Err(e)) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        // Chunks returned but not reused (the reading thread is done with them).
        while let Ok(mut c) = spare_left.try_recv() {
            c.bytes.zeroize();
        }
        outcome
    })
}

/// Threads that decrypt a day's segments: one per core, at most 4.
fn readers(segments: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4)
        .min(segments)
        .max(1)
}

/// Every committed record of `day`, in write order, decrypted on one thread per core (each
/// takes whole segments). Fails with [`CdrError::Purged`] if the day's key is gone but
/// segments are left.
pub(crate) fn read_day(
    layout: &Layout,
    kek: &Kek,
    day: &str,
    findings: &mut Vec<Finding>,
) -> Result<Vec<CallRecord>, CdrError> {
    let Some((key, plan)) = open_day(layout, kek, day, findings)? else {
        return Ok(Vec::new());
    };
    let day_dir = layout.day_dir(day);
    let (seqs, index) = (&plan.present, plan.index.as_ref());
    let next = std::sync::atomic::AtomicUsize::new(0);
    type Part = Result<(Vec<CallRecord>, Vec<Finding>), CdrError>;
    let parts: Vec<(usize, Part)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..readers(seqs.len()))
            .map(|_| {
                let (next, key, day_dir) = (&next, &key, &day_dir);
                scope.spawn(move || {
                    let mut buffer = Vec::new();
                    let mut parts = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&seq) = seqs.get(i) else { break };
                        let mut sink = Collect {
                            records: Vec::new(),
                            scratch: record::empty(),
                        };
                        let mut found = Vec::new();
                        let read = read_one(
                            key,
                            day_dir,
                            day,
                            seq,
                            index,
                            &mut buffer,
                            &mut sink,
                            &mut found,
                        );
                        let failed = read.is_err();
                        parts.push((i, read.map(|()| (sink.records, found))));
                        if failed {
                            break;
                        }
                    }
                    parts
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut parts = parts;
    parts.sort_by_key(|(i, _)| *i);
    let mut out = Vec::new();
    let mut ordered = Vec::with_capacity(parts.len());
    for (_, part) in parts {
        ordered.push(part?);
    }
    out.reserve(ordered.iter().map(|(r, _)| r.len()).sum());
    for (mut records, mut found) in ordered {
        out.append(&mut records);
        findings.append(&mut found);
    }
    Ok(out)
}

/// A day's statistics.
pub(crate) struct Folded {
    pub(crate) folder: Folder,
    /// Records they cover.
    pub(crate) records: usize,
    /// Of those, records decrypted to fold them (not covered by a checkpoint).
    pub(crate) decrypted: usize,
}

/// Folds `day` into statistics: each segment's sealed checkpoint, plus the records after it
/// (only a crash leaves any), or the whole segment where there is no checkpoint (segments of
/// the first format).
pub(crate) fn fold_day(
    layout: &Layout,
    kek: &Kek,
    day: &str,
    findings: &mut Vec<Finding>,
) -> Result<Folded, CdrError> {
    let mut folder = Folder::default();
    let mut decrypted = 0;
    let mut records = 0;
    let day_dir = layout.day_dir(day);
    // Key already destroyed by an interrupted purge: nothing left to fold.
    let Some(key) = layout.load_day_key(kek, day)? else {
        return Ok(Folded {
            folder,
            records: 0,
            decrypted: 0,
        });
    };
    let plan = plan(&key, &day_dir, day, findings)?;
    for &seq in &plan.present {
        let closed = plan
            .index
            .as_ref()
            .and_then(|i| i.get(seq))
            .and_then(|l| l.closed);
        let checkpoint = match stats::read_checkpoint(&key, &day_dir, day, seq)? {
            CheckpointState::Valid(cp) => Some(cp),
            CheckpointState::Missing => None,
            CheckpointState::Damaged => {
                findings.push(Finding::StatsDamaged {
                    segment: segment::segment_path(&day_dir, seq).display().to_string(),
                });
                None
            }
        };
        let from = checkpoint.as_ref().map_or(0, |cp| cp.bytes);
        let Some(loaded) = segment::load(&key, &day_dir, day, seq, from)? else {
            continue; // reported by `plan` if listed
        };
        // Checkpoints exist only for the second format.
        let (checkpoint, loaded) = match checkpoint {
            Some(cp) if loaded.version() == Some(2) => (Some(cp), loaded),
            Some(_) => match segment::load(&key, &day_dir, day, seq, 0)? {
                Some(all) => (None, all),
                None => continue,
            },
            None => (None, loaded),
        };
        let (start, start_index) = checkpoint
            .as_ref()
            .map_or((segment::HEADER_LEN, 0), |cp| (cp.bytes, cp.records));
        let mut add = |r: &CallRecord| {
            folder.add(r);
            decrypted += 1;
        };
        if loaded.len() > start {
            segment::read_loaded(
                &key,
                &day_dir,
                day,
                seq,
                closed,
                &loaded,
                start,
                start_index,
                &mut add,
                findings,
            );
        }
        if let Some(cp) = checkpoint {
            records += cp.records as usize;
            folder.merge(cp.hours)?;
        }
    }
    Ok(Folded {
        folder,
        records: records + decrypted,
        decrypted,
    })
}
