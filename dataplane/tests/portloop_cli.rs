//! The `relay-dataplane portloop` command as a user runs it: one process per run.

use std::process::Command;

fn relay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_relay-dataplane"))
}

#[test]
fn portloop_on_default_vdevs_forwards_and_verifies_everything() {
    let out = relay()
        .args(["portloop", "--packets", "20000", "--time-limit", "20"])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let count = |label: &str| -> u64 {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} line:\n{stdout}"));
        line[label.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(count("generated"), 20_000);
    assert_eq!(count("forwarded"), 20_000);
    assert_eq!(count("received"), 20_000);
    assert_eq!(count("verified"), 20_000);
    assert!(stdout.contains("result      OK"), "{stdout}");
}

#[test]
fn portloop_with_explicit_eal_args_and_missing_port_fails_clearly() {
    let out = relay()
        .args(["portloop", "--packets", "10", "--port-b", "net_ring9", "--"])
        .args([
            "--no-huge",
            "-m",
            "256",
            "--no-pci",
            "--no-shconf",
            "-l",
            "0",
            "--log-level=error",
        ])
        .args(["--vdev=net_ring0", "--vdev=net_ring1"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("port B (net_ring9): pass it with --vdev"),
        "{stderr}"
    );
}

#[test]
fn portloop_rejects_an_oversized_payload_before_starting_dpdk() {
    let out = relay()
        .args(["portloop", "--payload", "9000"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--payload must be between 8 and 1458"));
}

#[test]
fn demo_relays_and_rekeys_every_packet() {
    let out = relay()
        .args([
            "demo",
            "--calls",
            "50",
            "--packets",
            "20000",
            "--time-limit",
            "30",
        ])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count = |label: &str| -> u64 {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label}:\n{stdout}"));
        line[label.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(count("sent"), 20_000);
    assert_eq!(count("relayed"), 20_000);
    assert_eq!(count("verified"), 20_000);
    assert!(stdout.contains("drops       none"), "{stdout}");
}

#[test]
fn demo_refuses_bad_options_before_starting_dpdk() {
    let out = relay()
        .args(["demo", "--inbound", "NULL_HMAC_SHA1_80"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported SRTP crypto suite"));
    let out = relay()
        .args(["run", "--port", "net_ring0"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs ipv4="));
}
