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
            && l.contains("by number (sealed)")
            && !l.contains("+49300000007")
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

    // An edited audit log is damage (exit 3).
    let audit_dir = dir.join("store").join("audit");
    let file = std::fs::read_dir(&audit_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("TICKET-42", "TICKET-43");
    std::fs::write(&file, edited).unwrap();
    let o = relayctl(dir, "alice", &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        text(&o).contains("chain broken") || text(&o).contains("altered"),
        "{}",
        text(&o)
    );
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

// --- Hardening (issue 13) -------------------------------------------------------------------

/// Twelve records that ended a minute ago, and a grant for alice.
fn store_with_records(dir: &Path) -> relay_control::cdr::CdrConfig {
    let config = setup(dir);
    let now = relay_control::cdr::Clock::now_ms(&SystemClock);
    {
        let store = CdrStore::open(config.clone(), Arc::new(SystemClock)).unwrap();
        for n in 0..12 {
            store.write(&record(n, now - 60_000)).unwrap();
        }
    }
    let o = relayctl(
        dir,
        "alice",
        &["access", "grant", "--reason", "TICKET-42", "--ttl", "1h"],
    );
    assert!(o.status.success(), "{}", text(&o));
    config
}

/// Item 1: the query terms of a read (a number, a Call-ID) are in no file in clear, the audit
/// entry still says who read what and why, and the terms are shredded with their day's key.
#[test]
fn query_terms_are_in_no_file_and_are_shredded_with_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = store_with_records(dir);
    let o = relayctl(dir, "alice", &["cdr", "list", "--number", "+49300000007"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = relayctl(
        dir,
        "alice",
        &["cdr", "export", "--call-id", "teams-5@example.invalid"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let secrets: [&[u8]; 2] = [b"+49300000007", b"teams-5@example.invalid"];
    let scan = || {
        for f in all_files(dir) {
            let data = std::fs::read(&f).unwrap();
            for s in secrets {
                assert!(
                    !contains(&data, s),
                    "{} holds {:?} in clear",
                    f.display(),
                    String::from_utf8_lossy(s)
                );
            }
        }
    };
    scan();
    // Who, why and which records are still there.
    let log =
        String::from_utf8_lossy(&relayctl(dir, "alice", &["audit", "show"]).stdout).into_owned();
    assert!(
        log.lines().any(|l| l.contains("cdr list")
            && l.contains("alice")
            && l.contains("TICKET-42")
            && l.contains("rec00000007")),
        "{log}"
    );
    // Under a grant the terms can be revealed while their key exists...
    let o = relayctl(dir, "alice", &["audit", "show", "--reveal"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("+49300000007"), "{}", text(&o));
    // ...and not once the purge has destroyed it.
    let now = relay_control::cdr::Clock::now_ms(&SystemClock);
    let kek = relay_control::cdr::Kek::load(&config.kek_file).unwrap();
    relay_control::cdr::purge(&config, &kek, now + 31 * DAY_MS).unwrap();
    let o = relayctl(dir, "alice", &["audit", "show", "--reveal"]);
    assert!(!text(&o).contains("+49300000007"), "{}", text(&o));
    assert!(text(&o).contains("shredded"), "{}", text(&o));
    scan();
}

/// Item 3: the newest audit entry edited, deleted or cut off fails `audit verify` (exit 3).
#[test]
fn the_newest_audit_entry_cannot_be_changed_or_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    store_with_records(dir);
    for _ in 0..2 {
        assert!(relayctl(dir, "alice", &["cdr", "list"]).status.success());
    }
    let o = relayctl(dir, "alice", &["audit", "verify"]);
    assert!(o.status.success(), "{}", text(&o));
    let audit_dir = dir.join("store").join("audit");
    let mut logs: Vec<_> = std::fs::read_dir(&audit_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    logs.sort();
    let newest = logs.pop().unwrap();
    let original = std::fs::read_to_string(&newest).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    let (last, rest) = lines.split_last().unwrap();
    let joined = |ls: &[&str]| ls.iter().map(|l| format!("{l}\n")).collect::<String>();
    let tampered = [
        (
            "edited",
            joined(rest) + &last.replace("cdr list", "cdr show") + "\n",
        ),
        ("deleted", joined(rest)),
        ("cut off", joined(rest) + &last[..last.len() / 2]),
    ];
    for (what, content) in tampered {
        std::fs::write(&newest, content).unwrap();
        let o = relayctl(dir, "alice", &["audit", "verify"]);
        assert_eq!(o.status.code(), Some(3), "{what}: {}", text(&o));
        std::fs::write(&newest, &original).unwrap();
        assert!(relayctl(dir, "alice", &["audit", "verify"])
            .status
            .success());
    }
}

/// Item 4: a grant file written by hand is refused, and the attempt is in the audit log.
#[test]
fn a_hand_written_grant_is_refused_and_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    store_with_records(dir);
    let now = relay_control::cdr::Clock::now_ms(&SystemClock);
    let grants = dir.join("store").join("access").join("grants");
    std::fs::create_dir_all(&grants).unwrap();
    // A forged grant for mallory, and alice's real grant copied and edited for mallory.
    std::fs::write(
        grants.join("deadbeefdeadbeef.json"),
        format!(
            r#"{{"id":"deadbeefdeadbeef","who":"mallory","reason":"hand written","created_ms":{now},"expires_ms":{}}}"#,
            now + 3_600_000
        ),
    )
    .unwrap();
    let o = relayctl(dir, "mallory", &["cdr", "list"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!text(&o).contains("rec00000001"), "{}", text(&o));
    std::fs::remove_file(grants.join("deadbeefdeadbeef.json")).unwrap();
    let real = std::fs::read_dir(&grants)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let copied = std::fs::read_to_string(&real)
        .unwrap()
        .replace("alice", "mallory");
    std::fs::write(grants.join("0123456789abcdef.json"), copied).unwrap();
    let o = relayctl(dir, "mallory", &["cdr", "list"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let log =
        String::from_utf8_lossy(&relayctl(dir, "alice", &["audit", "show"]).stdout).into_owned();
    assert!(
        log.lines()
            .filter(|l| l.contains("mallory") && l.contains("refused"))
            .count()
            >= 2,
        "{log}"
    );
    assert!(log.contains("deadbeefdeadbeef"), "{log}");
    // Alice's own grant still works.
    assert!(relayctl(dir, "alice", &["cdr", "list"]).status.success());
}

/// Item 6: `stats` refuses a KEK readable by others, as every other command does.
#[test]
fn stats_refuses_a_world_readable_kek() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    store_with_records(dir);
    std::fs::set_permissions(
        dir.join("cdr.kek"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let o = relayctl(dir, "alice", &["stats"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("chmod 600"), "{}", text(&o));
}

/// Item 8: reading commands exit 3 when something was damaged (what is readable is still
/// printed), 0 when nothing was, and a torn tail from a crash is not damage.
#[test]
fn reading_commands_exit_3_on_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = store_with_records(dir);
    let seg = segment_files(&config.dir).pop().unwrap();
    let original = std::fs::read(&seg).unwrap();
    // A torn tail (bytes a crash left after the last commit) is noted, not damage.
    let mut torn = original.clone();
    torn.extend_from_slice(&[0x17; 40]);
    std::fs::write(&seg, &torn).unwrap();
    let o = relayctl(dir, "alice", &["cdr", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // One altered byte in the middle of the file.
    let mut damaged = original.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x01;
    std::fs::write(&seg, &damaged).unwrap();
    for args in [
        &["cdr", "list"][..],
        &["cdr", "export"][..],
        &["cdr", "show", "rec00000000"][..],
    ] {
        let o = relayctl(dir, "alice", args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", text(&o));
        assert!(
            text(&o).contains("authentication"),
            "{args:?}: {}",
            text(&o)
        );
    }
    // The records that are intact are still printed.
    let o = relayctl(dir, "alice", &["cdr", "list"]);
    let listed = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.starts_with("rec0"))
        .count();
    assert!(listed >= 10, "{listed}: {}", text(&o));
    // A deleted segment file.
    std::fs::write(&seg, &original).unwrap();
    assert_eq!(
        relayctl(dir, "alice", &["cdr", "list"]).status.code(),
        Some(0)
    );
    std::fs::remove_file(&seg).unwrap();
    let o = relayctl(dir, "alice", &["cdr", "list"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("missing"), "{}", text(&o));
}
