//! Shared by the CDR tests: a settable clock, record factories and a store in a temp dir.

#![allow(dead_code, unreachable_pub)] // Each test binary uses a different part.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use relay_control::cdr::access::{Access, Grant};
use relay_control::cdr::{
    CallRecord, CdrConfig, CdrReader, Clock, EndReason, EndedBy, Kek, LegRecord, MediaRecord,
    SCHEMA_VERSION,
};

/// 2026-11-27T12:00:00Z.
pub const T0: i64 = 1_795_780_800_000;
pub const DAY_MS: i64 = 86_400_000;

#[derive(Default)]
pub struct TestClock(pub AtomicI64);

impl TestClock {
    pub fn at(ms: i64) -> Arc<TestClock> {
        Arc::new(TestClock(AtomicI64::new(ms)))
    }
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A call that ended at `end_ms`, distinct per `n`.
pub fn record(n: u64, end_ms: i64) -> CallRecord {
    let answered = n % 4 != 3;
    CallRecord {
        version: SCHEMA_VERSION,
        record_id: format!("rec{n:08}"),
        legs: vec![
            LegRecord {
                call_id: format!("teams-{n}@example.invalid"),
                from_uri: format!("sip:+4930{n:07}@teams.invalid"),
                to_uri: "sip:+4940123456@operator.invalid".into(),
                from_number: Some(format!("+4930{n:07}")),
                to_number: Some("+4940123456".into()),
                trunk: "teams".into(),
                peer: "198.18.5.1:5061".into(),
            },
            LegRecord {
                call_id: format!("op-{n}"),
                from_uri: format!("sip:+4930{n:07}@relay.invalid"),
                to_uri: "sip:+4940123456@operator.invalid".into(),
                from_number: Some(format!("+4930{n:07}")),
                to_number: Some("+4940123456".into()),
                trunk: "operator".into(),
                peer: "198.19.5.1:5060".into(),
            },
        ],
        setup_ms: end_ms - 120_000,
        answer_ms: answered.then_some(end_ms - 100_000),
        end_ms,
        ended_by: EndedBy::Caller,
        end_reason: if answered {
            EndReason::Normal
        } else {
            EndReason::SipStatus { code: 486 }
        },
        media: vec![MediaRecord {
            leg: 0,
            codec: Some("PCMA/8000".into()),
            srtp_suite: Some("AES_CM_128_HMAC_SHA1_80".into()),
            packets: 5000,
            bytes: 860_000,
            lost: n % 50,
            jitter_ms: (n % 40) as f64,
            auth_failures: 0,
            replay_drops: 0,
        }],
    }
}

/// A fresh store directory with a KEK file (mode 0600) next to it.
pub fn setup(dir: &Path) -> CdrConfig {
    let kek = dir.join("cdr.kek");
    Kek::generate(&kek).unwrap();
    let mut c = CdrConfig::new(dir.join("store"), kek);
    c.retry_interval = std::time::Duration::from_millis(50);
    c
}

pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

pub fn segment_files(store: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for day in std::fs::read_dir(store.join("segments")).unwrap() {
        for f in std::fs::read_dir(day.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "seg") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The store's grants and audit log.
pub fn access(config: &CdrConfig) -> Access {
    Access::open(config).unwrap()
}

/// A fresh ten-minute grant for `tester`, given at `T0`.
pub fn grant(config: &CdrConfig) -> Grant {
    access(config)
        .grant(
            "tester",
            "unit test",
            std::time::Duration::from_secs(600),
            T0,
        )
        .unwrap()
}

/// A reader under a fresh grant.
pub fn open_reader(config: &CdrConfig) -> CdrReader {
    CdrReader::open(config, &grant(config)).unwrap()
}

/// Every file under `root`, recursively, sorted.
pub fn all_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Copies the tree `from` to `to` (created), keeping file modes.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
