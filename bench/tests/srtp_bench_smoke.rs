//! `srtp-bench` runs end to end and prints every row (figures are not judged here: they
//! belong in bench/RESULTS.md, measured on a quiet machine).

use std::process::Command;

/// Runs `srtp-bench` with `args`, asserts it succeeded, and returns what it printed.
fn srtp_bench(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_srtp-bench"))
        .args(args)
        .output()
        .expect("srtp-bench runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn srtp_bench_prints_every_figure() {
    let text = srtp_bench(&[
        "--packets",
        "3000",
        "--passes",
        "1",
        "--rounds",
        "2",
        "--no-dpdk",
        "--suite",
        "AES_CM_128_HMAC_SHA1_80",
        "--suite",
        "AEAD_AES_256_GCM",
    ]);
    for suite in ["AES_CM_128_HMAC_SHA1_80", "AEAD_AES_256_GCM"] {
        for op in [
            "protect",
            "unprotect",
            "rekey",
            "rekey burst32",
            "(a) libsrtp rekey",
        ] {
            let row = text
                .lines()
                .find(|l| l.starts_with(suite) && l.contains(op));
            let rate: f64 = row
                // The columns end: rate, ratio, the rounds' range of ratios.
                .and_then(|l| l.split_whitespace().rev().nth(2))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {suite} {op} row:\n{text}"));
            assert!(rate > 0.0);
        }
    }
}

#[test]
fn srtp_bench_times_only_the_operations_asked_for() {
    let text = srtp_bench(&[
        "--packets",
        "2000",
        "--rounds",
        "1",
        "--no-dpdk",
        "--no-libsrtp",
        "--ops",
        "rekey-burst,protect",
        "--suite",
        "AES_CM_128_HMAC_SHA1_80",
    ]);
    let ops: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("AES_CM_128_HMAC_SHA1_80"))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take_while(|w| w.parse::<f64>().is_err())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(ops, ["protect", "rekey burst32"], "{text}");
}
