//! A writer killed with SIGKILL mid-stream loses nothing it acknowledged: a child process (this
//! test binary, re-run in child mode) writes records from four threads and prints each id once
//! `write` returns; the parent kills it, reopens the store, and finds every acknowledged record.
//! The child checkpoints its statistics every 50 ms, so the kill lands between checkpoints: the
//! purge must still count every readable record exactly once.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use relay_control::cdr::access::Access;
use relay_control::cdr::{day_of, CdrConfig, CdrReader, CdrStore, SystemClock};

const CHILD_ENV: &str = "RELAY_CDR_CRASH_CHILD_DIR";

/// In child mode (the parent sets `RELAY_CDR_CRASH_CHILD_DIR`): write until killed.
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let mut config = CdrConfig::new(dir.join("store"), dir.join("cdr.kek"));
    config.checkpoint_interval = Duration::from_millis(50);
    let store =
        Arc::new(CdrStore::open(config, Arc::new(SystemClock)).expect("child opens the store"));
    let now = relay_control::cdr::Clock::now_ms(&SystemClock);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for n in 0.. {
                    let id = t * 1_000_000 + n;
                    store.write(&record(id, now)).expect("durable write");
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK rec{id:08}").unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

#[test]
fn acknowledged_records_survive_sigkill() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("ACK ") {
            acked.push(id.to_owned());
        }
        if acked.len() >= 2000 || Instant::now() > deadline {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL, mid-write
    child.wait().unwrap();
    assert!(
        acked.len() >= 500,
        "child acknowledged only {} records",
        acked.len()
    );

    let grant = Access::open(&config)
        .unwrap()
        .grant("tester", "crash test", Duration::from_secs(60), T0)
        .unwrap();
    let reader = CdrReader::open(&config, &grant).unwrap();
    let mut found = std::collections::HashSet::new();
    let mut findings = Vec::new();
    for day in reader.days().unwrap() {
        let r = reader.read_day(&day).unwrap();
        found.extend(r.records.into_iter().map(|r| r.record_id));
        findings.extend(r.findings);
    }
    let missing: Vec<_> = acked.iter().filter(|id| !found.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged records lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    // A torn tail may be reported; nothing may be tampered or truncated.
    for f in &findings {
        assert!(
            matches!(f, relay_control::cdr::Finding::TornTail { .. }),
            "unexpected finding: {f}"
        );
    }
    // The statistics: checkpoints plus the records after the last one, each counted once.
    let now = relay_control::cdr::Clock::now_ms(&SystemClock);
    let kek = relay_control::cdr::Kek::load(&config.kek_file).unwrap();
    let report = relay_control::cdr::purge(&config, &kek, now + 31 * DAY_MS).unwrap();
    assert_eq!(report.records_folded, found.len(), "{report:?}");
    eprintln!(
        "{} acknowledged, {} readable, {} of them decrypted by the purge (after the last checkpoint), findings: {:?}, day {}",
        acked.len(),
        found.len(),
        report.records_decrypted,
        findings,
        day_of(T0)
    );
}
