//! The CDR store: round trip, tamper/swap/truncation/wrong-KEK detection, key-file checks,
//! purge by crypto-shredding with an injected clock, statistics that survive the purge, and
//! a full disk.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;
use relay_control::cdr::access::Access;
use relay_control::cdr::stats;
use relay_control::cdr::{CdrError, CdrReader, CdrStore, Finding};

fn reader(config: &relay_control::cdr::CdrConfig) -> CdrReader {
    open_reader(config)
}

#[test]
fn round_trip_and_file_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path());
    let store = CdrStore::open(config.clone(), TestClock::at(T0)).unwrap();
    let written: Vec<_> = (0..200).map(|n| record(n, T0 - 1000 + n as i64)).collect();
    for r in &written[..100] {
        store.write(r).unwrap();
    }
    for r in &written[100..] {
        store.submit(r).unwrap();
    }
    drop(store); // drains the queue
    let report = reader(&config)
        .read_range(T0 - DAY_MS, T0 + DAY_MS)
        .unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.records, written);
    for f in segment_files(&config.dir) {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    assert_eq!(mode(&config.dir), 0o700);
    assert_eq!(mode(&config.keys_dir), 0o700);
    // Nothing readable in the files: no number, no Call-ID in clear.
    for f in segment_files(&config.dir) {
        let data = fs::read(f).unwrap();
        assert!(
            !data.windows(6).any(|w| w == b"+4930-" || w == b"teams-"),
            "plaintext on disk"
        );
    }
}

fn three_records(config: &relay_control::cdr::CdrConfig) -> std::path::PathBuf {
    let store = CdrStore::open(config.clone(), TestClock::at(T0)).unwrap();
    for n in 0..3 {
        store.write(&record(n, T0)).unwrap();
    }
    drop(store);
    segment_files(&config.dir).pop().unwrap()
}

/// (offset, length) of each record frame in a segment file (format 2: kind, length, sealed;
/// kind 1 is a record, kind 2 a commit).
fn frames(data: &[u8]) -> Vec<(usize, usize)> {
    let mut at = 22;
    let mut out = Vec::new();
    while at + 5 <= data.len() {
        let len = u32::from_le_bytes(data[at + 1..at + 5].try_into().unwrap()) as usize;
        if data[at] == 1 {
            out.push((at, 5 + len));
        }
        at += 5 + len;
    }
    out
}

#[test]
fn a_tampered_byte_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path());
    let seg = three_records(&config);
    let mut data = fs::read(&seg).unwrap();
    let (at, len) = frames(&data)[1];
    data[at + len / 2] ^= 0x01;
    fs::write(&seg, &data).unwrap();
    let report = reader(&config)
        .read_day(&relay_control::cdr::day_of(T0))
        .unwrap();
    assert_eq!(report.records.len(), 2);
    assert!(
        matches!(&report.findings[..], [Finding::Tampered { index: 1, .. }]),
        "{:?}",
        report.findings
    );
}

#[test]
fn swapped_records_are_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path());
    let seg = three_records(&config);
    let data = fs::read(&seg).unwrap();
    let f = frames(&data);
    assert_eq!(f[0].1, f[1].1, "records 0 and 1 encode to the same length");
    let mut swapped = data.clone();
    swapped[f[0].0..f[0].0 + f[0].1].copy_from_slice(&data[f[1].0..f[1].0 + f[1].1]);
    swapped[f[1].0..f[1].0 + f[1].1].copy_from_slice(&data[f[0].0..f[0].0 + f[0].1]);
    fs::write(&seg, &swapped).unwrap();
    let report = reader(&config)
        .read_day(&relay_control::cdr::day_of(T0))
        .unwrap();
    assert_eq!(
        report.records.len(),
        1,
        "only the record in its own place reads"
    );
    let tampered: Vec<u64> = report
        .findings
        .iter()
        .filter_map(|f| match f {
            Finding::Tampered { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(tampered, vec![0, 1]);
}

#[test]
fn truncation_is_detected_at_and_between_record_boundaries() {
    for cut_inside in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let config = setup(tmp.path());
        let seg = three_records(&config);
        let data = fs::read(&seg).unwrap();
        let last = frames(&data)[2];
        let cut = if cut_inside { last.0 + 10 } else { last.0 };
        fs::write(&seg, &data[..cut]).unwrap();
        let report = reader(&config)
            .read_day(&relay_control::cdr::day_of(T0))
            .unwrap();
        assert_eq!(report.records.len(), 2);
        assert!(
            report.findings.iter().any(|f| matches!(
                f,
                Finding::Truncated {
                    expected: 3,
                    found: 2,
                    ..
                }
            )),
            "cut inside {cut_inside}: {:?}",
            report.findings
        );
    }
}

#[test]
fn a_wrong_kek_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path());
    three_records(&config);
    let mut other = config.clone();
    other.kek_file = tmp.path().join("other.kek");
    relay_control::cdr::Kek::generate(&other.kek_file).unwrap();
    let grant = Access::open(&other)
        .unwrap()
        .grant("tester", "unit test", Duration::from_secs(60), T0)
        .unwrap();
    let err = CdrReader::open(&other, &grant)
        .unwrap()
        .read_day(&relay_control::cdr::day_of(T0))
        .unwrap_err();
    assert!(matches!(err, CdrError::WrongKek(_)), "{err}");
    assert!(
        err.to_string()
            .contains("does not open with this key-encryption key"),
        "{err}"
    );
}

#[test]
fn key_file_and_config_refusals_say_what_to_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = setup(tmp.path());
    // Readable by others.
    fs::set_permissions(&config.kek_file, fs::Permissions::from_mode(0o644)).unwrap();
    let err = CdrStore::open(config.clone(), TestClock::at(T0))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("chmod 600"), "{err}");
    // Wrong length.
    fs::set_permissions(&config.kek_file, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&config.kek_file, b"too short").unwrap();
    let err = CdrStore::open(config.clone(), TestClock::at(T0))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("wrong length") && err.contains("relayctl keygen"),
        "{err}"
    );
    // Missing.
    config.kek_file = tmp.path().join("missing.kek");
    let err = CdrStore::open(config.clone(), TestClock::at(T0))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("cannot read key-encryption key") && err.contains("relayctl keygen"),
        "{err}"
    );
    // Keys inside the data directory: a backup of it would keep purged days readable.
    fs::create_dir_all(tmp.path().join("c")).unwrap();
    let mut inside = setup(&tmp.path().join("c"));
    inside.keys_dir = inside.dir.join("keys");
    let err = CdrStore::open(inside, TestClock::at(T0))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("inside the data directory"), "{err}");
    // Retention over 30 days.
    fs::create_dir_all(tmp.path().join("b")).unwrap();
    let mut config = setup(&tmp.path().join("b"));
    config.retention_days = 31;
    let err = CdrStore::open(config, TestClock::at(T0))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("between 1 and 30"), "{err}");
}

#[test]
fn purge_shreds_old_days_and_keeps_statistics() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path());
    let clock = TestClock::at(T0);
    let store = CdrStore::open(config.clone(), clock.clone()).unwrap();
    // Calls on each of 32 consecutive days, written as they end (records older than the
    // retention are refused, so time really passes).
    let start = T0 - 31 * DAY_MS;
    for age in (0..=31).rev() {
        let t = T0 - age * DAY_MS;
        clock.set(t);
        for n in 0..5 {
            store.write(&record(age as u64 * 100 + n, t)).unwrap();
        }
    }
    let day = |age: i64| relay_control::cdr::day_of(T0 - age * DAY_MS);
    // Keep a copy of the oldest day's segments: a backup taken before the purge.
    let backup = tmp.path().join("backup");
    fs::create_dir_all(&backup).unwrap();
    for f in fs::read_dir(config.dir.join("segments").join(day(31))).unwrap() {
        let f = f.unwrap().path();
        fs::copy(&f, backup.join(f.file_name().unwrap())).unwrap();
    }
    let report = store.purge_now().unwrap();
    // Today is age 0 ("day 1"), so age 30 is the 31st day: days 31 and older are gone,
    // day 30 (age 29) is still there. No record is older than 30 days.
    assert_eq!(report.days_purged, vec![day(31), day(30)]);
    assert_eq!(report.records_folded, 10);
    drop(store);
    let r = reader(&config);
    assert!(matches!(r.read_day(&day(31)), Ok(rep) if rep.records.is_empty()));
    assert!(!config.keys_dir.join(format!("{}.key", day(31))).exists());
    assert_eq!(
        r.read_day(&day(29)).unwrap().records.len(),
        5,
        "age 29 (day 30) is kept"
    );
    // The pre-purge copy, put back, cannot be decrypted: its key exists nowhere.
    let restored = config.dir.join("segments").join(day(31));
    fs::create_dir_all(&restored).unwrap();
    for f in fs::read_dir(&backup).unwrap() {
        let f = f.unwrap().path();
        fs::copy(&f, restored.join(f.file_name().unwrap())).unwrap();
    }
    assert!(matches!(r.read_day(&day(31)), Err(CdrError::Purged(_))));
    // The statistics outlive the records.
    let folded = stats::load_folded(&config.dir, &day(31), &day(30)).unwrap();
    assert_eq!(folded.len(), 2);
    let teams: u64 = folded
        .values()
        .flatten()
        .filter(|h| h.trunk == "teams")
        .map(|h| h.attempted)
        .sum();
    assert_eq!(teams, 10);
    let answered: u64 = folded
        .values()
        .flatten()
        .filter(|h| h.trunk == "teams")
        .map(|h| h.answered)
        .sum();
    assert_eq!(answered, 8, "n % 4 == 3 failed with 486");
    let failed: u64 = folded
        .values()
        .flatten()
        .filter(|h| h.trunk == "teams")
        .map(|h| h.failed.get("sip_486").copied().unwrap_or(0))
        .sum();
    assert_eq!(failed, 2);
    // And contain no personal data.
    for f in fs::read_dir(config.dir.join("stats")).unwrap() {
        let text = fs::read_to_string(f.unwrap().path()).unwrap();
        assert!(
            !text.contains("+4930") && !text.contains("teams-") && !text.contains("198.18."),
            "{text}"
        );
    }
    let _ = start;
    // A late record for an already purged day is refused, not re-creating its key.
    let store = CdrStore::open(config.clone(), TestClock::at(T0)).unwrap();
    assert!(matches!(
        store.write(&record(9999, T0 - 30 * DAY_MS)),
        Err(CdrError::Expired(_))
    ));
}

#[test]
fn a_full_disk_keeps_records_queued_and_damages_nothing() {
    if !nix_is_root() {
        eprintln!("skipped: needs root to mount a small tmpfs");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut config = setup(tmp.path());
    let mnt = tmp.path().join("small");
    fs::create_dir_all(&mnt).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(status.success(), "mount tmpfs");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    config.dir = mnt.join("store");
    config.queue_capacity = 20;
    config.max_batch = 10;
    let store = CdrStore::open(config.clone(), TestClock::at(T0)).unwrap();
    for n in 0..50 {
        store.write(&record(n, T0)).unwrap();
    }
    let r = reader(&config); // the grant is written while there is still room
                             // Fill the filesystem.
    let filler = mnt.join("filler");
    let _ = fs::write(&filler, vec![0u8; 400 * 1024]);
    // New records are accepted into memory, the failure shows in the metrics...
    let mut accepted = 0;
    let mut refused = 0;
    for n in 50..200 {
        match store.submit(&record(n, T0)) {
            Ok(()) => accepted += 1,
            Err(CdrError::QueueFull(_)) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let m = store.metrics();
    assert!(m.failing, "{m:?}");
    assert!(m.write_errors > 0 && m.waiting > 0, "{m:?}");
    assert!(
        refused > 0,
        "the bounded queue refuses once full ({accepted} accepted)"
    );
    // ...and what was committed before is intact.
    let report = r.read_day(&relay_control::cdr::day_of(T0)).unwrap();
    assert!(
        report
            .findings
            .iter()
            .all(|f| !matches!(f, Finding::Tampered { .. } | Finding::Truncated { .. })),
        "{:?}",
        report.findings
    );
    assert!(report.records.len() >= 50);
    // Space comes back: the queued records are written by the retry.
    fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.metrics().waiting > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let m = store.metrics();
    assert_eq!(m.waiting, 0, "{m:?}");
    assert!(!m.failing);
    drop(store);
    let report = r.read_day(&relay_control::cdr::day_of(T0)).unwrap();
    assert_eq!(
        report.records.len(),
        50 + accepted,
        "every accepted record was written once"
    );
    let mut ids: Vec<_> = report.records.iter().map(|r| r.record_id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 50 + accepted, "no duplicates from retries");
}

fn nix_is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

// --- Hardening (issue 13) -------------------------------------------------------------------

/// Item 2: one flipped byte in either slot of a segment's manifest is reported as damage, and
/// every acknowledged record is still found.
#[test]
fn a_flipped_manifest_byte_is_damage_and_hides_no_acknowledged_record() {
    // Eleven commits of one record each: the newest manifest slot is slot 1, the older slot 0.
    for slot in [1u64, 0] {
        let tmp = tempfile::tempdir().unwrap();
        let config = setup(tmp.path());
        let store = CdrStore::open(config.clone(), TestClock::at(T0)).unwrap();
        for n in 0..11 {
            store.write(&record(n, T0)).unwrap();
        }
        drop(store);
        let manifests: Vec<_> = all_files(&config.dir)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "count"))
            .collect();
        assert_eq!(manifests.len(), 1, "{manifests:?}");
        let mut data = fs::read(&manifests[0]).unwrap();
        data[(slot * 128 + 2 + 20) as usize] ^= 0x40;
        fs::write(&manifests[0], &data).unwrap();
        let report = open_reader(&config)
            .read_day(&relay_control::cdr::day_of(T0))
            .unwrap();
        assert_eq!(
            report.records.len(),
            11,
            "slot {slot}: acknowledged records lost; findings {:?}",
            report.findings
        );
        assert!(
            report
                .findings
                .iter()
                .any(|f| !matches!(f, Finding::TornTail { .. })),
            "slot {slot}: the damage is not reported as damage: {:?}",
            report.findings
        );
    }
}

/// Item 5: a deleted segment (first, middle, last) or a deleted day directory is reported.
#[test]
fn a_deleted_segment_is_reported() {
    for victim in ["first", "middle", "last", "day"] {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = setup(tmp.path());
        config.segment_max_bytes = 2048; // two or three records per segment
        let store = CdrStore::open(config.clone(), TestClock::at(T0)).unwrap();
        for n in 0..30 {
            store.write(&record(n, T0)).unwrap();
        }
        drop(store);
        let segments = segment_files(&config.dir);
        assert!(segments.len() >= 4, "{segments:?}");
        let remove = |seg: &std::path::Path| {
            fs::remove_file(seg).unwrap();
            let _ = fs::remove_file(seg.with_extension("count"));
        };
        match victim {
            "first" => remove(&segments[0]),
            "middle" => remove(&segments[segments.len() / 2]),
            "last" => remove(segments.last().unwrap()),
            _ => fs::remove_dir_all(segments[0].parent().unwrap()).unwrap(),
        }
        let report = open_reader(&config)
            .read_range(T0 - DAY_MS, T0 + DAY_MS)
            .unwrap();
        assert!(report.records.len() < 30, "{victim}");
        assert!(
            report
                .findings
                .iter()
                .any(|f| !matches!(f, Finding::TornTail { .. })),
            "{victim}: a deleted segment goes unreported ({} records read)",
            report.records.len()
        );
    }
}

/// A deleted day directory stays reported after the control plane restarts and writes to
/// that day again (its new segment list does not wipe out the evidence).
#[test]
fn a_deleted_day_stays_reported_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path());
    let store = CdrStore::open(config.clone(), TestClock::at(T0)).unwrap();
    for n in 0..5 {
        store.write(&record(n, T0)).unwrap();
    }
    drop(store);
    let day = relay_control::cdr::day_of(T0);
    fs::remove_dir_all(config.dir.join("segments").join(&day)).unwrap();
    let store = CdrStore::open(config.clone(), TestClock::at(T0)).unwrap();
    for n in 5..8 {
        store.write(&record(n, T0)).unwrap();
    }
    drop(store);
    let report = open_reader(&config).read_day(&day).unwrap();
    assert_eq!(report.records.len(), 3);
    assert!(
        report
            .findings
            .iter()
            .any(|f| matches!(f, Finding::SegmentListDamaged { .. })),
        "{:?}",
        report.findings
    );
}

/// Item 7: in the default layout a backup of the data directory, taken before the purge and
/// restored after it, cannot be decrypted with the KEK.
#[test]
fn a_backup_of_the_data_directory_is_undecryptable_after_the_purge() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path()); // CdrConfig::new: the default layout
    let clock = TestClock::at(T0 - 31 * DAY_MS);
    let store = CdrStore::open(config.clone(), clock.clone()).unwrap();
    for n in 0..5 {
        store.write(&record(n, T0 - 31 * DAY_MS)).unwrap();
    }
    clock.set(T0);
    for n in 5..10 {
        store.write(&record(n, T0)).unwrap();
    }
    let backup = tmp.path().join("backup");
    copy_tree(&config.dir, &backup);
    let report = store.purge_now().unwrap();
    let old_day = relay_control::cdr::day_of(T0 - 31 * DAY_MS);
    assert_eq!(report.days_purged, vec![old_day.clone()]);
    drop(store);
    // The backup holds no key...
    for f in all_files(&backup) {
        assert!(
            f.extension().is_none_or(|e| e != "key"),
            "a day key in the data directory's backup: {}",
            f.display()
        );
    }
    // ...and, restored in place of the data directory, the purged day stays unreadable.
    fs::remove_dir_all(&config.dir).unwrap();
    copy_tree(&backup, &config.dir);
    match open_reader(&config).read_day(&old_day) {
        Err(CdrError::Purged(_)) => {}
        Ok(r) => assert!(
            r.records.is_empty(),
            "{} purged records decrypted from the backup",
            r.records.len()
        ),
        Err(e) => panic!("{e}"),
    }
}

/// Statistics folded as records are written equal a fold of the records themselves, also when
/// a checkpoint was lost (the purge then folds that segment from its records).
#[test]
fn statistics_folded_as_written_equal_a_fold_of_the_records() {
    for lose_a_checkpoint in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = setup(tmp.path());
        config.segment_max_bytes = 4096;
        let store = CdrStore::open(config.clone(), TestClock::at(T0)).unwrap();
        // Calls ending over the day, in several hours and segments.
        let day_start = T0 - T0.rem_euclid(DAY_MS) + 3 * 3_600_000;
        for n in 0..60 {
            store
                .write(&record(n, day_start + n as i64 * 400_000))
                .unwrap();
        }
        drop(store);
        let day = relay_control::cdr::day_of(T0);
        let records = reader(&config).read_day(&day).unwrap().records;
        assert_eq!(records.len(), 60);
        let expected = stats::fold(&records);
        if lose_a_checkpoint {
            let cp = all_files(&config.dir)
                .into_iter()
                .find(|p| p.extension().is_some_and(|e| e == "stats"))
                .unwrap();
            fs::remove_file(cp).unwrap();
        }
        let kek = relay_control::cdr::Kek::load(&config.kek_file).unwrap();
        let report = relay_control::cdr::purge(&config, &kek, T0 + 30 * DAY_MS).unwrap();
        assert_eq!(report.records_folded, 60);
        assert_eq!(
            report.records_decrypted > 0,
            lose_a_checkpoint,
            "{report:?}"
        );
        let folded = stats::load_folded(&config.dir, &day, &day).unwrap();
        let got = &folded[&day];
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(
                (&g.hour, &g.trunk, g.attempted, g.answered, &g.failed),
                (&e.hour, &e.trunk, e.attempted, e.answered, &e.failed)
            );
            assert_eq!(
                (&g.loss_histogram, &g.jitter_histogram, &g.mos_histogram),
                (&e.loss_histogram, &e.jitter_histogram, &e.mos_histogram)
            );
            assert!((g.minutes - e.minutes).abs() < 1e-9);
        }
    }
}
