//! Append-only segment files and their manifests.
//!
//! ```text
//! segments/<day>/<seq>.seg     "RCDRSEG1" | day (10 ASCII) | seq (u32 BE)    22-byte header
//!                              then records: len (u32 LE) | nonce | ciphertext | tag
//! segments/<day>/<seq>.count   two 128-byte slots, each a sealed {records, bytes, commit}:
//!                              what the last group commit made durable
//! ```
//! Each record is sealed with AAD = day | seq | record index, so a tampered byte, two swapped
//! records or a record moved to another segment fail authentication. The manifest is written
//! at every group commit, after the segment's fsync, into the slot the previous commit did not
//! use, and synced: a torn slot write leaves the other, older slot valid (its records were not
//! acknowledged yet), so a commit costs two syncs. a file holding fewer records
//! than its manifest was truncated; bytes past the manifest's length are a torn or
//! unacknowledged tail from a crash, reported and ignored.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::crypto::DayKey;
use super::fsutil;
use super::{CallRecord, CdrError};

const MAGIC: &[u8; 8] = b"RCDRSEG1";
pub(crate) const HEADER_LEN: u64 = 8 + 10 + 4;

fn record_aad(day: &str, seq: u32, index: u64) -> Vec<u8> {
    let mut aad = b"relay-cdr-record-v1:".to_vec();
    aad.extend_from_slice(day.as_bytes());
    aad.extend_from_slice(&seq.to_be_bytes());
    aad.extend_from_slice(&index.to_be_bytes());
    aad
}

fn manifest_aad(day: &str, seq: u32) -> Vec<u8> {
    let mut aad = b"relay-cdr-manifest-v1:".to_vec();
    aad.extend_from_slice(day.as_bytes());
    aad.extend_from_slice(&seq.to_be_bytes());
    aad
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    records: u64,
    bytes: u64,
    /// Commit number; the slot with the higher one is current.
    commit: u64,
}

const SLOT: u64 = 128;

/// The newest valid manifest slot, or `None` if neither authenticates.
fn read_manifest(key: &DayKey, day: &str, seq: u32, data: &[u8]) -> Option<Manifest> {
    (0..2)
        .filter_map(|slot| {
            let raw = data.get((slot * SLOT) as usize..((slot + 1) * SLOT) as usize)?;
            let len = usize::from(u16::from_le_bytes([raw[0], raw[1]]));
            let sealed = raw.get(2..2 + len)?;
            let plain = key.open(&manifest_aad(day, seq), sealed)?;
            serde_json::from_slice::<Manifest>(&plain).ok()
        })
        .max_by_key(|m| m.commit)
}

pub(crate) fn segment_path(day_dir: &Path, seq: u32) -> PathBuf {
    day_dir.join(format!("{seq:06}.seg"))
}

fn manifest_path(day_dir: &Path, seq: u32) -> PathBuf {
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

/// The segment being appended to.
pub(crate) struct SegmentWriter {
    file: File,
    manifest: File,
    commits: u64,
    day: String,
    seq: u32,
    /// Records and bytes made durable by the last commit.
    committed_records: u64,
    committed_bytes: u64,
    /// Appended since (not yet durable).
    records: u64,
    bytes: u64,
}

impl SegmentWriter {
    /// Starts a new segment `seq` in `day_dir` (never appends to an existing one, so a torn
    /// tail left by a crash is never written over).
    pub(crate) fn create(day_dir: &Path, day: &str, seq: u32) -> Result<SegmentWriter, CdrError> {
        fsutil::private_dir(day_dir)?;
        let path = segment_path(day_dir, seq);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(day.as_bytes());
        header.extend_from_slice(&seq.to_be_bytes());
        let manifest_file = manifest_path(day_dir, seq);
        let made = file
            .write_all(&header)
            .and_then(|()| file.sync_all())
            .and_then(|()| {
                let m = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&manifest_file)?;
                m.set_len(2 * SLOT)?;
                m.sync_all()?;
                fsutil::sync_dir(day_dir)?;
                Ok(m)
            });
        let manifest = match made {
            Ok(m) => m,
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
            commits: 0,
            day: day.to_owned(),
            seq,
            committed_records: 0,
            committed_bytes: HEADER_LEN,
            records: 0,
            bytes: HEADER_LEN,
        })
    }

    pub(crate) fn day(&self) -> &str {
        &self.day
    }

    pub(crate) fn seq(&self) -> u32 {
        self.seq
    }

    pub(crate) fn len(&self) -> u64 {
        self.bytes
    }

    /// Appends one sealed record (not yet durable).
    pub(crate) fn append(&mut self, key: &DayKey, record: &[u8]) -> Result<(), CdrError> {
        let sealed = key.seal(&record_aad(&self.day, self.seq, self.records), record)?;
        let mut frame = Vec::with_capacity(4 + sealed.len());
        frame.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        frame.extend_from_slice(&sealed);
        if let Err(e) = self.file.write_all(&frame) {
            self.rollback();
            return Err(e.into());
        }
        self.records += 1;
        self.bytes += frame.len() as u64;
        Ok(())
    }

    /// Makes everything appended durable: fsync, then the manifest. Only after this returns
    /// may the records be reported written.
    pub(crate) fn commit(&mut self, key: &DayKey) -> Result<(), CdrError> {
        let result = (|| -> Result<(), CdrError> {
            use std::os::unix::fs::FileExt;
            self.file.sync_data()?;
            let commit = self.commits + 1;
            let manifest = serde_json::to_vec(&Manifest {
                records: self.records,
                bytes: self.bytes,
                commit,
            })
            .map_err(|e| CdrError::Io(io::Error::other(e)))?;
            let sealed = key.seal(&manifest_aad(&self.day, self.seq), &manifest)?;
            let mut slot = vec![0u8; SLOT as usize];
            slot[..2].copy_from_slice(&(sealed.len() as u16).to_le_bytes());
            slot[2..2 + sealed.len()].copy_from_slice(&sealed);
            self.manifest.write_all_at(&slot, (commit % 2) * SLOT)?;
            self.manifest.sync_data()?;
            self.commits = commit;
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.committed_records = self.records;
                self.committed_bytes = self.bytes;
                Ok(())
            }
            Err(e) => {
                self.rollback();
                Err(e)
            }
        }
    }

    /// Forgets everything since the last commit: cuts the file back so a failed write leaves
    /// no partial record behind.
    fn rollback(&mut self) {
        let _ = self.file.set_len(self.committed_bytes);
        let _ = self.file.sync_data();
        self.records = self.committed_records;
        self.bytes = self.committed_bytes;
        use std::io::Seek;
        let _ = self.file.seek(io::SeekFrom::Start(self.committed_bytes));
    }
}

/// A problem found while reading a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A record that does not authenticate: altered, swapped or moved.
    Tampered {
        /// Segment file.
        segment: String,
        /// Index of the record in the segment.
        index: u64,
    },
    /// Fewer committed records than the manifest recorded: the file was truncated.
    Truncated {
        /// Segment file.
        segment: String,
        /// What the last commit made durable.
        expected: u64,
        /// What is readable.
        found: u64,
    },
    /// Bytes after the last commit: a torn or unacknowledged write from a crash. Nothing
    /// acknowledged is in them.
    TornTail {
        /// Segment file.
        segment: String,
        /// Bytes ignored.
        bytes: u64,
    },
    /// The segment's header or manifest is damaged or does not belong to this segment.
    BadHeader {
        /// Segment file.
        segment: String,
    },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Tampered { segment, index } => {
                write!(
                    f,
                    "{segment}: record {index} fails authentication (altered, swapped or moved)"
                )
            }
            Finding::Truncated {
                segment,
                expected,
                found,
            } => {
                write!(
                    f,
                    "{segment}: truncated: {expected} records were committed, {found} are readable"
                )
            }
            Finding::TornTail { segment, bytes } => {
                write!(f, "{segment}: {bytes} bytes after the last commit (a torn write from a crash, or a write in progress), ignored")
            }
            Finding::BadHeader { segment } => write!(f, "{segment}: header or manifest damaged"),
        }
    }
}

/// Reads every committed record of segment `seq`, reporting what is wrong.
pub(crate) fn read_segment(
    key: &DayKey,
    day_dir: &Path,
    day: &str,
    seq: u32,
    records: &mut Vec<CallRecord>,
    findings: &mut Vec<Finding>,
) -> Result<(), CdrError> {
    let path = segment_path(day_dir, seq);
    let name = path.display().to_string();
    let data = fs::read(&path)?;
    let header_ok = data.len() as u64 >= HEADER_LEN
        && &data[..8] == MAGIC
        && &data[8..18] == day.as_bytes()
        && data[18..22] == seq.to_be_bytes();
    if !header_ok {
        findings.push(Finding::BadHeader { segment: name });
        return Ok(());
    }
    let never_committed = Manifest {
        records: 0,
        bytes: HEADER_LEN,
        commit: 0,
    };
    let manifest = match fs::read(manifest_path(day_dir, seq)) {
        // Both slots still zero: never committed, everything in the file is unacknowledged.
        Ok(slots) if slots.iter().all(|&b| b == 0) => Some(never_committed),
        Ok(slots) => match read_manifest(key, day, seq, &slots) {
            Some(m) => Some(m),
            None => {
                findings.push(Finding::BadHeader {
                    segment: name.clone(),
                });
                None
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some(never_committed),
        Err(e) => return Err(e.into()),
    };
    let limit = manifest
        .as_ref()
        .map_or(data.len() as u64, |m| m.bytes.min(data.len() as u64));
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
        match key
            .open(&record_aad(day, seq, index), sealed)
            .and_then(|p| serde_json::from_slice::<CallRecord>(&p).ok())
        {
            Some(r) => records.push(r),
            None => findings.push(Finding::Tampered {
                segment: name.clone(),
                index,
            }),
        }
        at += 4 + len;
        index += 1;
    }
    if let Some(m) = &manifest {
        if index < m.records {
            findings.push(Finding::Truncated {
                segment: name.clone(),
                expected: m.records,
                found: index,
            });
        }
        if data.len() as u64 > m.bytes {
            findings.push(Finding::TornTail {
                segment: name,
                bytes: data.len() as u64 - m.bytes,
            });
        }
    }
    Ok(())
}
