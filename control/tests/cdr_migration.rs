//! A store written by the first version (`tests/fixtures/cdr-v1`) is read by this one: its
//! records intact, its day key moved out of the data directory when the control plane starts,
//! new records added beside the old ones, its grant (no MAC) refused, its audit log anchored by
//! the next entry, its statistics folded by the purge, and the number its audit log holds in
//! clear removed once the entry is past the retention.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use relay_control::cdr::{day_of, purge, CdrConfig, CdrStore, Kek};

/// The fixture, copied (the KEK made 0600, as git does not keep modes).
fn fixture(tmp: &Path) -> CdrConfig {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cdr-v1");
    copy_tree(&from, tmp);
    let kek = tmp.join("cdr.kek");
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut config = CdrConfig::new(tmp.join("store"), kek);
    config.retry_interval = std::time::Duration::from_millis(50);
    config
}

fn ids(records: &[relay_control::cdr::CallRecord]) -> Vec<String> {
    records.iter().map(|r| r.record_id.clone()).collect()
}

#[test]
fn a_first_version_store_is_read_migrated_and_purged() {
    let tmp = tempfile::tempdir().unwrap();
    let config = fixture(tmp.path());
    let day = day_of(T0);
    let expected: Vec<String> = (0..20).map(|n| format!("rec{n:08}")).collect();

    // Read as it is: format-1 segments, key still inside the data directory.
    let report = open_reader(&config).read_day(&day).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(ids(&report.records), expected);
    assert_eq!(report.records[3], record(3, T0 - 3_600_000 + 3000));
    // The streaming read (what relayctl uses) decodes format 1 the same way.
    let mut visited = Vec::new();
    let findings = open_reader(&config)
        .visit_day(&day, &mut |r| visited.push(r.clone()))
        .unwrap();
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(visited, report.records);

    // Its grant has no MAC: never used (the reader above made a new one), refused and logged.
    let access = access(&config);
    let old_grant = "52352afaad111e5c";
    assert_eq!(access.forged().unwrap(), vec![format!("{old_grant}.json")]);
    let used = access.require("tester", T0 + 60_000).unwrap();
    assert_ne!(used.id, old_grant);
    assert!(access
        .entries()
        .unwrap()
        .iter()
        .any(|e| e.action == "grant refused" && e.grant_id.as_deref() == Some(old_grant)));
    // The old entries had no MAC: the log is now anchored and verifies.
    let check = access.verify().unwrap();
    assert_eq!(check.problem, None);
    assert!(check.anchored);

    // The control plane starts: the key moves out of the data directory, new records go
    // into format-2 segments beside the old ones.
    let store = CdrStore::open(config.clone(), TestClock::at(T0)).unwrap();
    assert!(!config.dir.join("keys").exists());
    assert!(config.keys_dir.join(format!("{day}.key")).exists());
    for n in 20..25 {
        store.write(&record(n, T0)).unwrap();
    }
    drop(store);
    let report = open_reader(&config).read_day(&day).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    let all: Vec<String> = (0..25).map(|n| format!("rec{n:08}")).collect();
    assert_eq!(ids(&report.records), all);

    // The purge folds both formats, and removes the number the old audit entry holds.
    let audit_file = config.dir.join("audit").join("2026-11.jsonl");
    assert!(contains(
        &std::fs::read(&audit_file).unwrap(),
        b"+49300000007"
    ));
    let kek = Kek::load(&config.kek_file).unwrap();
    let report = purge(&config, &kek, T0 + 30 * DAY_MS).unwrap();
    assert_eq!(report.days_purged, vec![day.clone()]);
    assert_eq!(report.records_folded, 25);
    assert_eq!(report.records_decrypted, 20, "no checkpoints in format 1");
    assert_eq!(report.audit_entries_redacted, 1);
    for f in all_files(tmp.path()) {
        assert!(
            !contains(&std::fs::read(&f).unwrap(), b"+49300000007"),
            "{} still holds the number",
            f.display()
        );
    }
    let check = access.verify().unwrap();
    assert_eq!(check.problem, None, "re-chained and re-anchored");
    let folded = relay_control::cdr::stats::load_folded(&config.dir, &day, &day).unwrap();
    let teams: u64 = folded[&day]
        .iter()
        .filter(|h| h.trunk == "teams")
        .map(|h| h.attempted)
        .sum();
    assert_eq!(teams, 25);
}
