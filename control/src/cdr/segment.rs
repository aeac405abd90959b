//! Append-only segment files, their commit frames and manifests.
//!
//! Format 2, written by this version:
//!
//! ```text
//! segments/<day>/<seq>.seg    "RCDRSEG2" | day (10 ASCII) | seq (u32 BE)    22-byte header
//!                             then frames: kind (u8) | len (u32 LE) | nonce | ciphertext | tag
//!                               kind 1, record:  a binary-encoded record (record.rs)
//!                               kind 2, commit:  records so far (u64 LE) | its own offset (u64 LE)
//! segments/<day>/<seq>.count  two 128-byte slots, each len (u16 LE) | sealed
//!                             {records, bytes, commit}: what the last group commit covered
//! ```
//!
//! A record is sealed with AAD = day | seq | record index, a commit frame with AAD = day | seq
//! | its offset, so an altered byte, two swapped records, a record moved to another segment or a
//! commit frame moved elsewhere fail authentication.
//!
//! A group commit appends the batch's records and one commit frame in one write, then calls
//! `fdatasync` once: a record is acknowledged only when a commit frame after it is durable.
//! Reading, everything after the last authentic commit frame is a tail that no commit covered:
//! a torn or unacknowledged write from a crash, reported and ignored. After the sync the
//! manifest slot the previous commit did not use is overwritten, without a sync of its own:
//! it only ever describes data already durable, so after a crash it may lag behind the
//! segment, never run ahead of it. It is what detects a file cut at a commit boundary (fewer
//! records than the manifest) and tells damage from a torn tail: records the manifest covers
//! whose commit frame is damaged are still returned, and reported as damage. A manifest slot
//! that does not authenticate is reported as damage; it hides nothing, because the commit
//! frames in the segment cover every acknowledged record by themselves.
//!
//! Format 1 (`RCDRSEG1`, JSON records without commit frames, the manifest synced at every
//! commit) is still read; a damaged manifest there makes every authentic record count.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use zeroize::Zeroize;

use super::crypto::{DayKey, NonceSeq, SEAL_OVERHEAD};
use super::{fsutil, record, CallRecord, CdrError};

const MAGIC_V1: &[u8; 8] = b"RCDRSEG1";
const MAGIC_V2: &[u8; 8] = b"RCDRSEG2";
pub(crate) const HEADER_LEN: u64 = 8 + 10 + 4;
const FRAME_HEAD: usize = 5;
const KIND_RECORD: u8 = 1;
const KIND_COMMIT: u8 = 2;
/// A frame longer than this is not one (records are a few hundred bytes).
const MAX_FRAME: usize = 1 << 20;
/// How far past a frame that cannot be parsed the reader looks for the next one.
const RESYNC_WINDOW: usize = 64 << 10;

/// Associated data of a frame: a label, the day, the segment and a number (the record index,
/// or the commit frame's offset). On the stack: one is built for every record read.
struct Aad([u8; 42]);

impl Aad {
    fn new(label: &[u8; 20], day: &str, seq: u32, n: u64) -> Aad {
        let mut a = [0u8; 42];
        a[..20].copy_from_slice(label);
        let day = day.as_bytes();
        a[20..20 + day.len().min(10)].copy_from_slice(&day[..day.len().min(10)]);
        a[30..34].copy_from_slice(&seq.to_be_bytes());
        a[34..42].copy_from_slice(&n.to_be_bytes());
        Aad(a)
    }

    fn record(day: &str, seq: u32, index: u64) -> Aad {
        Aad::new(b"relay-cdr-record-v2:", day, seq, index)
    }

    fn commit(day: &str, seq: u32, offset: u64) -> Aad {
        Aad::new(b"relay-cdr-commit-v2:", day, seq, offset)
    }
}

fn record_aad_v1(day: &str, seq: u32, index: u64) -> Vec<u8> {
    let mut aad = b"relay-cdr-record-v1:".to_vec();
    aad.extend_from_slice(day.as_bytes());
    aad.extend_from_slice(&seq.to_be_bytes());
    aad.extend_from_slice(&index.to_be_bytes());
    aad
}

fn manifest_aad(version: u8, day: &str, seq: u32) -> Vec<u8> {
    let mut aad = format!("relay-cdr-manifest-v{version}:").into_bytes();
    aad.extend_from_slice(day.as_bytes());
    aad.extend_from_slice(&seq.to_be_bytes());
    aad
}

/// What a group commit covered.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    /// Commit number; the slot with the higher one is current.
    pub(crate) commit: u64,
}

impl Manifest {
    fn to_bytes(self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[..8].copy_from_slice(&self.records.to_le_bytes());
        b[8..16].copy_from_slice(&self.bytes.to_le_bytes());
        b[16..].copy_from_slice(&self.commit.to_le_bytes());
        b
    }

    fn from_bytes(b: &[u8]) -> Option<Manifest> {
        let word = |i: usize| Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?));
        (b.len() == 24).then_some(())?;
        Some(Manifest {
            records: word(0)?,
            bytes: word(8)?,
            commit: word(16)?,
        })
    }
}

const SLOT: u64 = 128;

/// The manifest as found on disk.
#[derive(Debug, Default)]
pub(crate) struct ManifestRead {
    /// The newest slot that authenticates.
    pub(crate) newest: Option<Manifest>,
    /// A slot that holds something but does not authenticate, or the file is missing or short.
    pub(crate) damaged: bool,
}

fn read_manifest(
    key: &DayKey,
    version: u8,
    day: &str,
    seq: u32,
    path: &Path,
) -> io::Result<ManifestRead> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(ManifestRead {
                newest: None,
                damaged: true,
            })
        }
        Err(e) => return Err(e),
    };
    let mut out = ManifestRead {
        newest: None,
        damaged: data.len() as u64 != 2 * SLOT,
    };
    let aad = manifest_aad(version, day, seq);
    for slot in 0..2 {
        let Some(raw) = data.get((slot * SLOT) as usize..((slot + 1) * SLOT) as usize) else {
            continue;
        };
        if raw.iter().all(|&b| b == 0) {
            continue; // never written
        }
        let len = usize::from(u16::from_le_bytes([raw[0], raw[1]]));
        let m = raw.get(2..2 + len).and_then(|sealed| {
            let plain = key.open(&aad, sealed)?;
            match version {
                1 => serde_json::from_slice::<Manifest>(&plain).ok(),
                _ => Manifest::from_bytes(&plain),
            }
        });
        match m {
            Some(m) if out.newest.is_none_or(|n| n.commit < m.commit) => out.newest = Some(m),
            Some(_) => {}
            None => out.damaged = true,
        }
    }
    Ok(out)
}

pub(crate) fn segment_path(day_dir: &Path, seq: u32) -> PathBuf {
    day_dir.join(format!("{seq:06}.seg"))
}

pub(crate) fn manifest_path(day_dir: &Path, seq: u32) -> PathBuf {
    day_dir.join(format!("{seq:06}.count"))
}

/// The segment numbers present in a day directory, ascending.
pub(crate) fn segments_of(day_dir: &Path) -> io::Result<Vec<u32>> {
    let mut seqs = Vec::new();
    match fs::read_dir(day_dir) {
        Ok(entries) => {
            for entry in entries {
                let name = entry?.file_name();
                let name = name.to_string_lossy();
                if let Some(seq) = name
                    .strip_suffix(".seg")
                    .and_then(|s| s.parse::<u32>().ok())
                {
                    seqs.push(seq);
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// The segment being appended to (format 2).
pub(crate) struct SegmentWriter {
    file: File,
    manifest: File,
    day: String,
    seq: u32,
    nonces: NonceSeq,
    commits: u64,
    /// Frames appended since the last commit, written by the next one.
    batch: Vec<u8>,
    /// Records and bytes made durable by the last commit.
    committed_records: u64,
    committed_bytes: u64,
    /// Records appended to `batch` so far.
    records: u64,
}

impl SegmentWriter {
    /// Starts a new segment `seq` in `day_dir` (never appends to an existing one, so a torn
    /// tail left by a crash is never written over). The header and the empty manifest are
    /// durable when this returns.
    pub(crate) fn create(day_dir: &Path, day: &str, seq: u32) -> Result<SegmentWriter, CdrError> {
        fsutil::private_dir(day_dir)?;
        let path = segment_path(day_dir, seq);
        let manifest_file = manifest_path(day_dir, seq);
        let made = (|| -> io::Result<(File, File)> {
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            let mut header = Vec::with_capacity(HEADER_LEN as usize);
            header.extend_from_slice(MAGIC_V2);
            header.extend_from_slice(day.as_bytes());
            header.extend_from_slice(&seq.to_be_bytes());
            file.write_all_at(&header, 0)?;
            file.sync_all()?;
            let m = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&manifest_file)?;
            // Real zeroes, not a hole: later slot writes then allocate nothing.
            m.write_all_at(&[0u8; 2 * SLOT as usize], 0)?;
            m.sync_all()?;
            fsutil::sync_dir(day_dir)?;
            Ok((file, m))
        })();
        let (file, manifest) = match made {
            Ok(f) => f,
            Err(e) => {
                // An empty or half-written segment holds nothing: do not leave it behind.
                let _ = fs::remove_file(&path);
                let _ = fs::remove_file(&manifest_file);
                return Err(e.into());
            }
        };
        Ok(SegmentWriter {
            file,
            manifest,
            day: day.to_owned(),
            seq,
            nonces: NonceSeq::new()?,
            commits: 0,
            batch: Vec::with_capacity(64 << 10),
            committed_records: 0,
            committed_bytes: HEADER_LEN,
            records: 0,
        })
    }

    pub(crate) fn seq(&self) -> u32 {
        self.seq
    }

    /// Bytes in the file once the pending batch is committed.
    pub(crate) fn len(&self) -> u64 {
        self.committed_bytes + self.batch.len() as u64
    }

    /// Records and bytes made durable so far.
    pub(crate) fn committed(&self) -> (u64, u64) {
        (self.committed_records, self.committed_bytes)
    }

    fn push_frame(
        &mut self,
        kind: u8,
        key: &DayKey,
        aad: &Aad,
        plain: &[u8],
    ) -> Result<(), CdrError> {
        let nonce = self.nonces.next()?;
        let start = self.batch.len();
        self.batch.push(kind);
        self.batch
            .extend_from_slice(&((plain.len() + SEAL_OVERHEAD) as u32).to_le_bytes());
        if let Err(e) = key.seal_into(nonce, &aad.0, plain, &mut self.batch) {
            self.batch.truncate(start);
            return Err(e);
        }
        Ok(())
    }

    /// Adds one encoded record to the batch (in memory; written by [`commit`](Self::commit)).
    pub(crate) fn append(&mut self, key: &DayKey, encoded: &[u8]) -> Result<(), CdrError> {
        let aad = Aad::record(&self.day, self.seq, self.records);
        self.push_frame(KIND_RECORD, key, &aad, encoded)?;
        self.records += 1;
        Ok(())
    }

    /// Makes the batch durable: its records and a commit frame in one write, one
    /// `fdatasync`, then the manifest slot (not synced). Only after this returns may the
    /// records be reported written. On an error nothing of the batch counts: the file is cut
    /// back, and the caller starts a new segment for the retry.
    pub(crate) fn commit(&mut self, key: &DayKey) -> Result<(), CdrError> {
        let result = (|| -> Result<Manifest, CdrError> {
            let offset = self.len();
            let mut plain = [0u8; 16];
            plain[..8].copy_from_slice(&self.records.to_le_bytes());
            plain[8..].copy_from_slice(&offset.to_le_bytes());
            self.push_frame(
                KIND_COMMIT,
                key,
                &Aad::commit(&self.day, self.seq, offset),
                &plain,
            )?;
            self.file.write_all_at(&self.batch, self.committed_bytes)?;
            self.file.sync_data()?;
            Ok(Manifest {
                records: self.records,
                bytes: self.len(),
                commit: self.commits + 1,
            })
        })();
        match result {
            Ok(m) => {
                self.commits = m.commit;
                self.committed_records = m.records;
                self.committed_bytes = m.bytes;
                self.batch.clear();
                // Durable already; the manifest only adds truncation detection, so a failure
                // here is logged, not returned.
                if let Err(e) = self.write_manifest(key, m) {
                    tracing::warn!(error = %e, segment = self.seq, "CDR manifest not updated");
                }
                Ok(())
            }
            Err(e) => {
                self.rollback();
                Err(e)
            }
        }
    }

    fn write_manifest(&mut self, key: &DayKey, m: Manifest) -> Result<(), CdrError> {
        let mut slot = [0u8; SLOT as usize];
        let mut sealed = Vec::with_capacity(24 + SEAL_OVERHEAD);
        key.seal_into(
            self.nonces.next()?,
            &manifest_aad(2, &self.day, self.seq),
            &m.to_bytes(),
            &mut sealed,
        )?;
        slot[..2].copy_from_slice(&(sealed.len() as u16).to_le_bytes());
        slot[2..2 + sealed.len()].copy_from_slice(&sealed);
        self.manifest.write_all_at(&slot, (m.commit % 2) * SLOT)?;
        Ok(())
    }

    /// Forgets everything since the last commit and cuts the file back, so a failed write
    /// leaves no partial frame behind (best effort: what is left is an uncommitted tail).
    fn rollback(&mut self) {
        let _ = self.file.set_len(self.committed_bytes);
        self.batch.clear();
        self.records = self.committed_records;
    }
}

/// A problem found while reading the store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finding {
    /// A record that does not authenticate: altered, swapped or moved.
    Tampered {
        /// Segment file.
        segment: String,
        /// Index of the record in the segment.
        index: u64,
    },
    /// Fewer records than the manifest or the day's segment list recorded as committed: the
    /// file was cut, or a frame is damaged so that the ones after it cannot be found.
    Truncated {
        /// Segment file.
        segment: String,
        /// What was committed.
        expected: u64,
        /// What is readable.
        found: u64,
    },
    /// Bytes after the last commit: a torn or unacknowledged write from a crash. Nothing
    /// acknowledged is in them. Not damage.
    TornTail {
        /// Segment file.
        segment: String,
        /// Bytes ignored.
        bytes: u64,
    },
    /// The segment's header is damaged or does not belong to this segment.
    BadHeader {
        /// Segment file.
        segment: String,
    },
    /// A manifest slot does not authenticate, or the manifest is missing.
    ManifestDamaged {
        /// Segment file the manifest belongs to.
        segment: String,
    },
    /// A commit frame or a frame header does not authenticate; the records it covered are
    /// still read when they authenticate themselves.
    FrameDamaged {
        /// Segment file.
        segment: String,
        /// Offset of the frame.
        offset: u64,
    },
    /// A segment the day's authenticated segment list names is not on disk.
    SegmentMissing {
        /// Segment file.
        segment: String,
    },
    /// A segment with records that the day's segment list does not name.
    SegmentUnlisted {
        /// Segment file.
        segment: String,
    },
    /// The day's segment list is missing or does not authenticate: segments may have been
    /// deleted without trace.
    SegmentListDamaged {
        /// The UTC day.
        day: String,
    },
    /// A statistics checkpoint does not authenticate (the statistics were folded from the
    /// records instead).
    StatsDamaged {
        /// Segment file.
        segment: String,
    },
}

impl Finding {
    /// Whether this is damage (everything but a torn tail from a crash).
    pub fn is_damage(&self) -> bool {
        !matches!(self, Finding::TornTail { .. })
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Tampered { segment, index } => write!(
                f,
                "{segment}: record {index} fails authentication (altered, swapped or moved)"
            ),
            Finding::Truncated {
                segment,
                expected,
                found,
            } => write!(
                f,
                "{segment}: truncated: {expected} records were committed, {found} are readable ({} lost)",
                expected.saturating_sub(*found)
            ),
            Finding::TornTail { segment, bytes } => write!(
                f,
                "{segment}: {bytes} bytes after the last commit (a torn write from a crash, or a write in progress), ignored"
            ),
            Finding::BadHeader { segment } => write!(f, "{segment}: header damaged"),
            Finding::ManifestDamaged { segment } => write!(
                f,
                "{segment}: its manifest is damaged or missing (the records are checked against their commit frames)"
            ),
            Finding::FrameDamaged { segment, offset } => write!(
                f,
                "{segment}: the commit or frame header at byte {offset} fails authentication"
            ),
            Finding::SegmentMissing { segment } => write!(
                f,
                "{segment}: missing: the day's segment list names it, but the file is gone with its records"
            ),
            Finding::SegmentUnlisted { segment } => write!(
                f,
                "{segment}: holds records but is not in the day's segment list"
            ),
            Finding::SegmentListDamaged { day } => write!(
                f,
                "{day}: the day's segment list is missing or damaged: deleted segments cannot be ruled out"
            ),
            Finding::StatsDamaged { segment } => write!(
                f,
                "{segment}: its statistics checkpoint is damaged (folded from the records instead)"
            ),
        }
    }
}

/// One frame as parsed.
struct Frame<'a> {
    kind: u8,
    sealed: &'a [u8],
    end: usize,
}

fn frame_at(data: &[u8], at: usize) -> Option<Frame<'_>> {
    let head = data.get(at..at + FRAME_HEAD)?;
    let len = u32::from_le_bytes(head[1..5].try_into().ok()?) as usize;
    if !(SEAL_OVERHEAD..=MAX_FRAME).contains(&len) {
        return None;
    }
    let end = at + FRAME_HEAD + len;
    Some(Frame {
        kind: head[0],
        sealed: data.get(at + FRAME_HEAD..end)?,
        end,
    })
}

/// The plaintext of a committed record, before decoding.
pub(crate) struct Plain<'a> {
    /// The segment format: 2 (binary encoding) or 1 (JSON).
    pub(crate) format: u8,
    /// Where its frame starts in the segment.
    pub(crate) offset: u64,
    pub(crate) bytes: &'a [u8],
}

impl Plain<'_> {
    /// Decodes into `record` (reusing its allocations); false if it is authentic but not a
    /// record this version can decode.
    pub(crate) fn decode_into(&self, record: &mut CallRecord) -> bool {
        match self.format {
            1 => match serde_json::from_slice::<CallRecord>(self.bytes) {
                Ok(r) => {
                    *record = r;
                    true
                }
                Err(_) => false,
            },
            _ => record::decode_into(self.bytes, record),
        }
    }
}

/// What a frame turned out to be (a record's plaintext is left in the buffer).
enum Opened {
    Record,
    Commit { records: u64 },
    Unknown,
}

/// A record read but not yet covered by a commit frame.
struct Pend {
    index: u64,
    /// Where its frame starts.
    offset: u64,
    /// Its plaintext in the scan's arena; `None` if it does not authenticate.
    plain: Option<(usize, usize)>,
}

/// Reads the frames of a format-2 segment from `start` (a commit boundary, or the header's
/// end) with `index` records before it, returning the committed records through `emit`.
pub(crate) struct Scan<'a> {
    pub(crate) key: &'a DayKey,
    pub(crate) day: &'a str,
    pub(crate) seq: u32,
    pub(crate) name: &'a str,
}

/// What a scan found besides records.
#[derive(Debug, Default)]
pub(crate) struct ScanEnd {
    /// Records covered by the last authentic commit frame.
    pub(crate) committed_records: u64,
    /// Where that frame ends.
    pub(crate) committed_bytes: u64,
}

impl Scan<'_> {
    fn open(&self, frame: &Frame<'_>, at: usize, index: u64, plain: &mut Vec<u8>) -> Opened {
        let as_record = |plain: &mut Vec<u8>| {
            self.key
                .open_into(
                    &Aad::record(self.day, self.seq, index).0,
                    frame.sealed,
                    plain,
                )
                .then_some(())
        };
        let as_commit = |plain: &mut Vec<u8>| {
            if !self.key.open_into(
                &Aad::commit(self.day, self.seq, at as u64).0,
                frame.sealed,
                plain,
            ) {
                return None;
            }
            let records = u64::from_le_bytes(plain.get(..8)?.try_into().ok()?);
            let offset = u64::from_le_bytes(plain.get(8..16)?.try_into().ok()?);
            (plain.len() == 16 && offset == at as u64).then_some(records)
        };
        match frame.kind {
            KIND_RECORD => as_record(plain).map_or(Opened::Unknown, |()| Opened::Record),
            KIND_COMMIT => {
                as_commit(plain).map_or(Opened::Unknown, |records| Opened::Commit { records })
            }
            _ => Opened::Unknown,
        }
    }

    /// A frame whose kind byte was altered still opens as what it is.
    fn open_any(&self, frame: &Frame<'_>, at: usize, index: u64, plain: &mut Vec<u8>) -> Opened {
        for kind in [KIND_RECORD, KIND_COMMIT] {
            let f = Frame { kind, ..*frame };
            match self.open(&f, at, index, plain) {
                Opened::Unknown => {}
                found => return found,
            }
        }
        Opened::Unknown
    }

    /// Looks past a frame that cannot be parsed for the next one that authenticates (the
    /// damaged frame's length was altered): a record `index` to `index + 3`, or a commit.
    /// Returns its offset and the index of the record (or the count of the commit) there.
    fn resync(
        &self,
        data: &[u8],
        from: usize,
        index: u64,
        plain: &mut Vec<u8>,
    ) -> Option<(usize, u64)> {
        let last = data.len().min(from + RESYNC_WINDOW);
        for at in from..last {
            if !matches!(data[at], KIND_RECORD | KIND_COMMIT) {
                continue;
            }
            let Some(frame) = frame_at(data, at) else {
                continue;
            };
            for i in index..index + 4 {
                match self.open_any(&frame, at, i, plain) {
                    Opened::Record => return Some((at, i)),
                    Opened::Commit { records } if records >= index => return Some((at, records)),
                    _ => {}
                }
            }
        }
        None
    }

    /// What an unauthentic frame before `next_at` was, judged by the frame after it: a record
    /// (`Some(true)`: the next frame is record `index + 1` or a commit of `index + 1`), a
    /// commit (`Some(false)`: the next frame is record `index`), or unknown.
    fn judge(&self, data: &[u8], next_at: usize, index: u64, plain: &mut Vec<u8>) -> Option<bool> {
        let next = frame_at(data, next_at)?;
        match self.open_any(&next, next_at, index + 1, plain) {
            Opened::Record => return Some(true),
            Opened::Commit { records } if records == index + 1 => return Some(true),
            _ => {}
        }
        match self.open_any(&next, next_at, index, plain) {
            Opened::Record => Some(false),
            _ => None,
        }
    }

    /// Scans `data` (the whole file, or zeroes before `start`) from `start`, a commit boundary
    /// or the header's end, with `start_index` records before it. `covered` is how many
    /// records the manifest (or the segment list) says were committed: records up to there
    /// whose commit frame is damaged are still returned, and a shortfall is reported as
    /// truncation. The plaintexts of committed records go to `emit`, in order.
    pub(crate) fn run(
        &self,
        data: &[u8],
        start: u64,
        start_index: u64,
        covered: Option<u64>,
        emit: &mut dyn FnMut(&Plain<'_>),
        findings: &mut Vec<Finding>,
    ) -> ScanEnd {
        let mut plain = Vec::with_capacity(1024);
        // Plaintexts of the records not yet covered by a commit frame; reused, and zeroised
        // once at the end.
        let mut arena: Vec<u8> = Vec::new();
        let mut at = start as usize;
        let mut index = start_index;
        let mut end = ScanEnd {
            committed_records: start_index,
            committed_bytes: start,
        };
        // Records since the last authentic commit frame, and damage found among them: both
        // count only once a commit (or the manifest) covers them.
        let mut pending: Vec<Pend> = Vec::new();
        let mut pending_damage: Vec<Finding> = Vec::new();
        let damaged = |offset: usize| Finding::FrameDamaged {
            segment: self.name.to_owned(),
            offset: offset as u64,
        };
        let mut settle = |pending: &mut Vec<Pend>,
                          arena: &mut Vec<u8>,
                          pending_damage: &mut Vec<Finding>,
                          findings: &mut Vec<Finding>,
                          upto: u64| {
            // In index order: settle the prefix, keep the rest (and the allocation).
            let settled = pending.partition_point(|p| p.index < upto);
            for p in pending.drain(..settled) {
                match p.plain {
                    Some((a, b)) => emit(&Plain {
                        format: 2,
                        offset: p.offset,
                        bytes: &arena[a..b],
                    }),
                    None => findings.push(Finding::Tampered {
                        segment: self.name.to_owned(),
                        index: p.index,
                    }),
                }
            }
            if pending.is_empty() {
                arena.clear();
            }
            findings.append(pending_damage);
        };
        let lost = |from: u64, to: u64, offset: usize| {
            (from..to).map(move |k| Pend {
                index: k,
                offset: offset as u64,
                plain: None,
            })
        };
        while at < data.len() {
            let Some(frame) = frame_at(data, at) else {
                // Cut short (a torn tail) or a header that makes no sense (altered length):
                // look for authentic frames after it.
                match self.resync(data, at + 1, index, &mut plain) {
                    Some((next, i)) => {
                        pending.extend(lost(index, i, at));
                        pending_damage.push(damaged(at));
                        index = i;
                        at = next;
                        continue;
                    }
                    None => break,
                }
            };
            let opened = match self.open(&frame, at, index, &mut plain) {
                Opened::Unknown => {
                    let o = self.open_any(&frame, at, index, &mut plain);
                    if !matches!(o, Opened::Unknown) {
                        pending_damage.push(damaged(at)); // its kind byte was altered
                    }
                    o
                }
                o => o,
            };
            match opened {
                Opened::Record => {
                    let a = arena.len();
                    arena.extend_from_slice(&plain);
                    pending.push(Pend {
                        index,
                        offset: at as u64,
                        plain: Some((a, arena.len())),
                    });
                    index += 1;
                }
                Opened::Commit { records } => {
                    if records != index {
                        pending_damage.push(damaged(at));
                        pending.extend(lost(index, records, at));
                        index = index.max(records);
                    }
                    settle(
                        &mut pending,
                        &mut arena,
                        &mut pending_damage,
                        findings,
                        records,
                    );
                    end.committed_records = records;
                    end.committed_bytes = frame.end as u64;
                }
                Opened::Unknown => match self.judge(data, frame.end, index, &mut plain) {
                    Some(true) => {
                        pending.extend(lost(index, index + 1, at));
                        index += 1;
                    }
                    Some(false) => pending_damage.push(damaged(at)),
                    // The last frame: torn, or the damaged last commit; `covered` decides.
                    None if frame.end == data.len() => {
                        pending.extend(lost(index, index + 1, at));
                        index += 1;
                    }
                    None => match self.resync(data, at + 1, index, &mut plain) {
                        Some((next, i)) => {
                            pending.extend(lost(index, i, at));
                            pending_damage.push(damaged(at));
                            index = i;
                            at = next;
                            continue;
                        }
                        None => break,
                    },
                },
            }
            at = frame.end;
        }
        // Everything after the last authentic commit frame.
        let tail = data.len() as u64 - end.committed_bytes;
        match covered {
            Some(c) if c > end.committed_records => {
                // The manifest says more was committed: the records it covers are acknowledged.
                let readable = pending
                    .iter()
                    .filter(|p| p.index < c && p.plain.is_some())
                    .count() as u64;
                let present = index.min(c);
                settle(&mut pending, &mut arena, &mut pending_damage, findings, c);
                if present < c {
                    findings.push(Finding::Truncated {
                        segment: self.name.to_owned(),
                        expected: c,
                        found: end.committed_records + readable,
                    });
                } else {
                    // All there: the commit frame after them is what is damaged.
                    findings.push(damaged(end.committed_bytes as usize));
                }
                end.committed_records = c;
            }
            _ => {
                if tail > 0 {
                    findings.push(Finding::TornTail {
                        segment: self.name.to_owned(),
                        bytes: tail,
                    });
                }
            }
        }
        plain.zeroize();
        arena.zeroize();
        end
    }
}

/// The final counts the day's segment list recorded for a closed segment, if any.
pub(crate) type Closed = Option<(u64, u64)>;

/// The format of a segment file, from its header.
pub(crate) fn format_of(data: &[u8], day: &str, seq: u32) -> Option<u8> {
    let header_ok = data.len() as u64 >= HEADER_LEN
        && &data[8..18] == day.as_bytes()
        && data[18..22] == seq.to_be_bytes();
    match data.get(..8)? {
        m if header_ok && m == MAGIC_V2 => Some(2),
        m if header_ok && m == MAGIC_V1 => Some(1),
        _ => None,
    }
}

/// A segment as read from disk: its manifest first, then its bytes, so a writer committing
/// meanwhile can only make the data run ahead of the manifest (a tail), never behind it.
pub(crate) struct Loaded {
    /// The whole file; with a `from` offset, zeroes between the header and it (never read).
    data: Vec<u8>,
    version: Option<u8>,
    manifest: ManifestRead,
}

impl Loaded {
    /// The segment's format (1 or 2), or `None` if its header is damaged.
    pub(crate) fn version(&self) -> Option<u8> {
        self.version
    }

    /// The file's length.
    pub(crate) fn len(&self) -> u64 {
        self.data.len() as u64
    }

    /// How many records the manifest says were committed (a capacity hint).
    pub(crate) fn committed_hint(&self) -> usize {
        self.manifest.newest.map_or(0, |m| m.records as usize)
    }

    /// The buffer, for the next [`load_into`].
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.data
    }
}

/// Loads segment `seq`, or `None` if its file does not exist. Bytes before `from` (other than
/// the header) are not read: folding after a checkpoint needs only the tail.
pub(crate) fn load(
    key: &DayKey,
    day_dir: &Path,
    day: &str,
    seq: u32,
    from: u64,
) -> Result<Option<Loaded>, CdrError> {
    load_into(key, day_dir, day, seq, from, Vec::new())
}

/// [`load`] into `buffer` (its allocation is reused: reading a day's segments one after the
/// other then touches fresh memory once).
pub(crate) fn load_into(
    key: &DayKey,
    day_dir: &Path,
    day: &str,
    seq: u32,
    from: u64,
    mut data: Vec<u8>,
) -> Result<Option<Loaded>, CdrError> {
    let mut f = match File::open(segment_path(day_dir, seq)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut header = Vec::with_capacity(HEADER_LEN as usize);
    (&mut f).take(HEADER_LEN).read_to_end(&mut header)?;
    let version = format_of(&header, day, seq);
    let manifest = match version {
        Some(v) => read_manifest(key, v, day, seq, &manifest_path(day_dir, seq))?,
        None => ManifestRead::default(),
    };
    let len = f.metadata()?.len() as usize;
    let skip = (from as usize).clamp(header.len(), len.max(header.len()));
    data.clear();
    if skip > header.len() && data.capacity() < skip {
        // Zeroed by the allocator: pages of the skipped part are never touched.
        data = vec![0u8; skip];
    } else {
        data.resize(skip, 0);
    }
    data[..header.len()].copy_from_slice(&header);
    f.seek(io::SeekFrom::Start(skip as u64))?;
    data.reserve(len.saturating_sub(skip));
    f.read_to_end(&mut data)?;
    Ok(Some(Loaded {
        data,
        version,
        manifest,
    }))
}

/// Reads the committed records of a loaded segment from `start` (the header's end, or the
/// end of a checkpointed commit) with `start_index` records before it, reporting what is
/// wrong; each is decoded into one record whose allocations are reused, and handed to `emit`.
#[allow(clippy::too_many_arguments)] // each is one thing the caller knows; a struct would only rename them
pub(crate) fn read_loaded(
    key: &DayKey,
    day_dir: &Path,
    day: &str,
    seq: u32,
    closed: Closed,
    loaded: &Loaded,
    start: u64,
    start_index: u64,
    emit: &mut dyn FnMut(&CallRecord),
    findings: &mut Vec<Finding>,
) {
    let mut record = record::empty();
    let mut undecodable = Vec::new();
    read_loaded_plain(
        key,
        day_dir,
        day,
        seq,
        closed,
        loaded,
        start,
        start_index,
        &mut |plain| {
            if plain.decode_into(&mut record) {
                emit(&record);
            } else {
                undecodable.push(plain.offset);
            }
        },
        findings,
    );
    let name = segment_path(day_dir, seq).display().to_string();
    findings.extend(undecodable.into_iter().map(|offset| Finding::FrameDamaged {
        segment: name.clone(),
        offset,
    }));
}

/// [`read_loaded`] without decoding: the plaintexts of the committed records, in order.
#[allow(clippy::too_many_arguments)] // as read_loaded
pub(crate) fn read_loaded_plain(
    key: &DayKey,
    day_dir: &Path,
    day: &str,
    seq: u32,
    closed: Closed,
    loaded: &Loaded,
    start: u64,
    start_index: u64,
    emit: &mut dyn FnMut(&Plain<'_>),
    findings: &mut Vec<Finding>,
) {
    let name = segment_path(day_dir, seq).display().to_string();
    let manifest = &loaded.manifest;
    match loaded.version {
        None => findings.push(Finding::BadHeader { segment: name }),
        Some(1) => read_v1(key, day, seq, &name, &loaded.data, manifest, emit, findings),
        Some(_) => {
            if manifest.damaged {
                findings.push(Finding::ManifestDamaged {
                    segment: name.clone(),
                });
            }
            let covered = match (manifest.newest.map(|m| m.records), closed.map(|c| c.0)) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            Scan {
                key,
                day,
                seq,
                name: &name,
            }
            .run(
                &loaded.data,
                start.max(HEADER_LEN),
                start_index,
                covered,
                emit,
                findings,
            );
        }
    }
}

/// Reads every committed record of segment `seq`; `false` if its file does not exist.
#[cfg(test)]
pub(crate) fn read_segment(
    key: &DayKey,
    day_dir: &Path,
    day: &str,
    seq: u32,
    closed: Closed,
    emit: &mut dyn FnMut(&CallRecord),
    findings: &mut Vec<Finding>,
) -> Result<bool, CdrError> {
    let Some(loaded) = load(key, day_dir, day, seq, 0)? else {
        return Ok(false);
    };
    read_loaded(
        key, day_dir, day, seq, closed, &loaded, HEADER_LEN, 0, emit, findings,
    );
    Ok(true)
}

/// Format 1: JSON records, no commit frames; the manifest alone says what was committed.
#[allow(clippy::too_many_arguments)]
fn read_v1(
    key: &DayKey,
    day: &str,
    seq: u32,
    name: &str,
    data: &[u8],
    manifest: &ManifestRead,
    emit: &mut dyn FnMut(&Plain<'_>),
    findings: &mut Vec<Finding>,
) {
    let never_committed = Manifest {
        records: 0,
        bytes: HEADER_LEN,
        commit: 0,
    };
    // A damaged manifest slot may have been the newest: then every record that authenticates
    // counts, rather than hiding the last commit's records as a torn tail.
    let limit_manifest = if manifest.damaged {
        findings.push(Finding::ManifestDamaged {
            segment: name.to_owned(),
        });
        None
    } else {
        Some(manifest.newest.unwrap_or(never_committed))
    };
    let limit = limit_manifest.map_or(data.len() as u64, |m| m.bytes.min(data.len() as u64));
    let mut at = HEADER_LEN as usize;
    let mut index = 0u64;
    while (at as u64) < limit {
        let Some(len_bytes) = data.get(at..at + 4) else {
            break;
        };
        let len = u32::from_le_bytes(len_bytes.try_into().expect("4 bytes")) as usize;
        let Some(sealed) = data.get(at + 4..at + 4 + len) else {
            break;
        };
        if (at + 4 + len) as u64 > limit {
            break;
        }
        match key.open(&record_aad_v1(day, seq, index), sealed) {
            Some(p) => emit(&Plain {
                format: 1,
                offset: at as u64,
                bytes: &p,
            }),
            None => findings.push(Finding::Tampered {
                segment: name.to_owned(),
                index,
            }),
        }
        at += 4 + len;
        index += 1;
    }
    let expected = manifest.newest.map_or(0, |m| m.records);
    if index < expected {
        findings.push(Finding::Truncated {
            segment: name.to_owned(),
            expected,
            found: index,
        });
    }
    if let Some(m) = limit_manifest {
        if data.len() as u64 > m.bytes {
            findings.push(Finding::TornTail {
                segment: name.to_owned(),
                bytes: data.len() as u64 - m.bytes,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdr::crypto::{load_or_create_key, Kek, KeyKind};

    fn key(dir: &Path) -> DayKey {
        let kek_path = dir.join("kek");
        Kek::generate(&kek_path).unwrap();
        let kek = Kek::load(&kek_path).unwrap();
        load_or_create_key(&kek, &dir.join("keys"), KeyKind::Data, "2026-11-27").unwrap()
    }

    fn rec(n: u64) -> CallRecord {
        let mut r: CallRecord = serde_json::from_str(&format!(
            r#"{{"version":1,"record_id":"r{n}","legs":[],"setup_ms":0,"answer_ms":null,"end_ms":0,
            "ended_by":"caller","end_reason":{{"kind":"normal"}},"media":[]}}"#
        ))
        .unwrap();
        r.setup_ms = n as i64;
        r
    }

    /// A segment of `commits` commits of `per` records each; returns its directory.
    fn written(dir: &Path, key: &DayKey, commits: u64, per: u64) -> PathBuf {
        let day_dir = dir.join("day");
        let mut w = SegmentWriter::create(&day_dir, "2026-11-27", 1).unwrap();
        let mut n = 0;
        for _ in 0..commits {
            for _ in 0..per {
                let mut buf = Vec::new();
                record::encode(&rec(n), &mut buf);
                w.append(key, &buf).unwrap();
                n += 1;
            }
            w.commit(key).unwrap();
        }
        day_dir
    }

    fn read(key: &DayKey, day_dir: &Path) -> (Vec<u64>, Vec<Finding>) {
        let (mut ids, mut findings) = (Vec::new(), Vec::new());
        read_segment(
            key,
            day_dir,
            "2026-11-27",
            1,
            None,
            &mut |r| ids.push(r.setup_ms as u64),
            &mut findings,
        )
        .unwrap();
        (ids, findings)
    }

    #[test]
    fn torn_tails_at_every_cut_after_the_last_commit_are_not_damage() {
        let tmp = tempfile::tempdir().unwrap();
        let key = key(tmp.path());
        let day_dir = written(tmp.path(), &key, 3, 2);
        let seg = segment_path(&day_dir, 1);
        let full = fs::read(&seg).unwrap();
        let manifest = fs::read(manifest_path(&day_dir, 1)).unwrap();
        // A fourth commit that a crash interrupted at every possible byte, with the manifest
        // still describing the third (it is written after the sync).
        let mut w = SegmentWriter {
            file: OpenOptions::new().write(true).open(&seg).unwrap(),
            manifest: OpenOptions::new()
                .write(true)
                .open(manifest_path(&day_dir, 1))
                .unwrap(),
            day: "2026-11-27".into(),
            seq: 1,
            nonces: NonceSeq::new().unwrap(),
            commits: 3,
            batch: Vec::new(),
            committed_records: 6,
            committed_bytes: full.len() as u64,
            records: 6,
        };
        for n in 6..9 {
            let mut buf = Vec::new();
            record::encode(&rec(n), &mut buf);
            w.append(&key, &buf).unwrap();
        }
        w.commit(&key).unwrap();
        let longer = fs::read(&seg).unwrap();
        fs::write(manifest_path(&day_dir, 1), &manifest).unwrap();
        for cut in full.len()..longer.len() {
            fs::write(&seg, &longer[..cut]).unwrap();
            let (ids, findings) = read(&key, &day_dir);
            assert_eq!(ids, (0..6).collect::<Vec<_>>(), "cut at {cut}");
            assert!(
                findings.iter().all(|f| !f.is_damage()),
                "cut at {cut}: {findings:?}"
            );
            assert_eq!(findings.is_empty(), cut == full.len(), "cut at {cut}");
        }
        fs::write(&seg, &longer).unwrap();
        let (ids, findings) = read(&key, &day_dir);
        assert_eq!(ids, (0..9).collect::<Vec<_>>());
        assert!(findings.is_empty(), "{findings:?}");
    }

    #[test]
    fn any_flipped_byte_is_reported_and_loses_at_most_its_own_record() {
        let tmp = tempfile::tempdir().unwrap();
        let key = key(tmp.path());
        let day_dir = written(tmp.path(), &key, 4, 3);
        let seg = segment_path(&day_dir, 1);
        let full = fs::read(&seg).unwrap();
        for at in HEADER_LEN as usize..full.len() {
            let mut bad = full.clone();
            bad[at] ^= 0x20;
            fs::write(&seg, &bad).unwrap();
            let (ids, findings) = read(&key, &day_dir);
            assert!(
                findings.iter().any(Finding::is_damage),
                "byte {at}: {findings:?}"
            );
            assert!(
                ids.len() >= 11,
                "byte {at}: {} records, {findings:?}",
                ids.len()
            );
        }
        for slot in 0..2 {
            fs::write(&seg, &full).unwrap();
            let path = manifest_path(&day_dir, 1);
            let good = fs::read(&path).unwrap();
            let mut bad = good.clone();
            bad[slot * SLOT as usize + 20] ^= 1;
            fs::write(&path, &bad).unwrap();
            let (ids, findings) = read(&key, &day_dir);
            assert_eq!(ids.len(), 12, "slot {slot}");
            assert!(
                matches!(&findings[..], [Finding::ManifestDamaged { .. }]),
                "{findings:?}"
            );
            fs::write(&path, &good).unwrap();
        }
    }

    #[test]
    fn a_file_cut_at_a_commit_boundary_is_truncation() {
        let tmp = tempfile::tempdir().unwrap();
        let key = key(tmp.path());
        let day_dir = written(tmp.path(), &key, 4, 3);
        let seg = segment_path(&day_dir, 1);
        let full = fs::read(&seg).unwrap();
        // Find the end of the third commit by reading a copy cut at each frame boundary.
        let mut at = HEADER_LEN as usize;
        let mut commits = 0;
        while commits < 3 {
            let f = frame_at(&full, at).unwrap();
            if f.kind == KIND_COMMIT {
                commits += 1;
            }
            at = f.end;
        }
        fs::write(&seg, &full[..at]).unwrap();
        let (ids, findings) = read(&key, &day_dir);
        assert_eq!(ids.len(), 9);
        assert!(
            matches!(
                &findings[..],
                [Finding::Truncated {
                    expected: 12,
                    found: 9,
                    ..
                }]
            ),
            "{findings:?}"
        );
    }
}
