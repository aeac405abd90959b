//! `relayctl` as an operator runs it: no grant, no records; a grant with a reason opens them
//! for its TTL; every grant and read lands in the hash-chained audit log; statistics need no
//! grant; an edited audit log is detected.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use common::*;
use relay_control::cdr::{CdrStore, SystemClock};

fn relayctl(dir: &Path, user: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relayctl"))
        .args(args)
        .env("RELAY_CDR_DIR", dir.join("store"))
        .env("RELAY_CDR_KEK", dir.join("cdr.kek"))
        .env("USER", user)
        .env_remove("SUDO_USER")
        .output()
        .expect("relayctl runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn records_only_under_an_audited_grant() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path());
    let now = relay_control::cdr::Clock::now_ms(&SystemClock);
    {
        let store = CdrStore::open(config.clone(), Arc::new(SystemClock)).unwrap();
        for n in 0..12 {
            store.write(&record(n, now - 60_000)).unwrap();
        }
    }
    let dir = tmp.path();

    // No grant: refused, and told how to get one.
    let o = relayctl(dir, "alice", &["cdr", "list"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("relayctl access grant --reason"),
        "{}",
        text(&o)
    );

    // Statistics need no grant and carry no numbers.
    let o = relayctl(dir, "alice", &["stats", "--format", "csv"]);
    assert!(o.status.success(), "{}", text(&o));
    let csv = String::from_utf8_lossy(&o.stdout);
    assert!(
        csv.starts_with("hour,trunk,attempted,answered,asr,minutes,failed"),
        "{csv}"
    );
    let teams: u64 = csv
        .lines()
        .filter(|l| l.contains(",teams,"))
        .map(|l| l.split(',').nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(teams, 12);
    assert!(!csv.contains("+4930"));

    // A grant needs a reason.
    let o = relayctl(
        dir,
        "alice",
        &["access", "grant", "--reason", "", "--ttl", "1h"],
    );
    assert_eq!(o.status.code(), Some(2));
    let o = relayctl(
        dir,
        "alice",
        &[
            "access",
            "grant",
            "--reason",
            "TICKET-42 one-way audio",
            "--ttl",
            "1h",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));

    // Now the records read, by call-id and number, as a list, JSON and CSV.
    let o = relayctl(dir, "alice", &["cdr", "list"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.starts_with("rec0"))
            .count(),
        12
    );
    let o = relayctl(
        dir,
        "alice",
        &["cdr", "export", "--call-id", "teams-5@example.invalid"],
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("\"record_id\":\"rec00000005\""));
    let o = relayctl(
        dir,
        "alice",
        &[
            "cdr",
            "export",
            "--number",
            "+49300000007",
            "--format",
            "csv",
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(out.lines().count(), 2, "header and one row: {out}");
    let o = relayctl(dir, "alice", &["cdr", "show", "rec00000003"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("\"code\": 486"),
        "{}",
        text(&o)
    );

    // Another operator's grant does not cover bob.
    let o = relayctl(dir, "bob", &["cdr", "list"]);
    assert_eq!(o.status.code(), Some(2));

    // The audit log has the grant, every read with its reason, and what was read.
    let o = relayctl(dir, "alice", &["audit", "show"]);
    let log = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        log.contains("grant") && log.contains("TICKET-42 one-way audio"),
        "{log}"
    );
    assert_eq!(
        log.lines().filter(|l| l.contains("cdr list")).count(),
        1,
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("cdr export")
            && l.contains("number +49300000007")
            && l.contains("rec00000007")),
        "{log}"
    );
    assert!(relayctl(dir, "alice", &["audit", "verify"])
        .status
        .success());

    // Revoking ends access at once.
    let grants =
        String::from_utf8_lossy(&relayctl(dir, "alice", &["access", "list"]).stdout).into_owned();
    let id = grants.split_whitespace().next().unwrap().to_owned();
    assert!(relayctl(dir, "alice", &["access", "revoke", &id])
        .status
        .success());
    assert_eq!(
        relayctl(dir, "alice", &["cdr", "list"]).status.code(),
        Some(2)
    );

    // An edited audit log breaks the chain.
    let audit_dir = dir.join("store").join("audit");
    let file = std::fs::read_dir(&audit_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("TICKET-42", "TICKET-43");
    std::fs::write(&file, edited).unwrap();
    let o = relayctl(dir, "alice", &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("chain broken"), "{}", text(&o));
}

#[test]
fn grants_expire_by_themselves() {
    let tmp = tempfile::tempdir().unwrap();
    setup(tmp.path());
    let dir = tmp.path();
    let o = relayctl(
        dir,
        "carol",
        &["access", "grant", "--reason", "short look", "--ttl", "1s"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(relayctl(dir, "carol", &["cdr", "list"]).status.success());
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let o = relayctl(dir, "carol", &["cdr", "list"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("no active access grant"));
    // Too long a TTL is refused.
    let o = relayctl(
        dir,
        "carol",
        &["access", "grant", "--reason", "long", "--ttl", "3d"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("at most 24h"), "{}", text(&o));
}

#[test]
fn keygen_and_key_file_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = relayctl(dir, "dave", &["cdr", "list"]);
    assert_eq!(o.status.code(), Some(2));
    let kek = dir.join("cdr.kek");
    let o = relayctl(dir, "dave", &["keygen", "--out", kek.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(mode(&kek), 0o600);
    let o = relayctl(dir, "dave", &["keygen", "--out", kek.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "never overwrites a key");
    std::fs::set_permissions(&kek, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let o = relayctl(dir, "dave", &["purge"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("chmod 600"), "{}", text(&o));
}
