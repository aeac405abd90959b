//! The SIP/TLS load generator works on its own: `sip-bench self-test` has its UAC call its
//! UAS directly over TLS on 127.0.0.1 (no SBC, no root), and every call started completes
//! (INVITE -> 200 -> ACK -> BYE -> 200). The figures are not judged here: the benchmark
//! itself (`sip-bench run`, bench/RESULTS.md) is not run in CI.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn the_generator_completes_calls_against_itself_over_tls() {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_sip-bench"))
        .args(["self-test", "--seconds", "1"])
        .output()
        .expect("sip-bench runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line in\n{text}"));
    let report: serde_json::Value = serde_json::from_str(json).unwrap();
    let n = |k: &str| report[k].as_u64().unwrap_or(0);
    assert!(n("completed_in_window") > 0, "{text}");
    assert_eq!(n("started"), n("completed"), "{text}");
    assert_eq!(report["failed"], serde_json::json!({}), "{text}");
    // Both ends are the generator's: the UAS sees every request, and with no SBC in between
    // the keys arrive unchanged.
    for k in ["uas_invites", "uas_acks", "uas_byes", "key_passed_through"] {
        assert_eq!(n(k), n("started"), "{k}: {text}");
    }
    assert_eq!(n("rekeyed"), 0, "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}
