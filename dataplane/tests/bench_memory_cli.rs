//! `relay-dataplane bench-memory`, the fresh process in which `bench` measures memory per
//! stream: it runs without an EAL, and its figures keep the compact per-stream state honest
//! (issue 14: at most 1.5 KB per SRTP stream of a two-way call).

use std::process::Command;

fn bytes_per_stream(args: &[&str]) -> f64 {
    let out = Command::new(env!("CARGO_BIN_EXE_relay-dataplane"))
        .arg("bench-memory")
        .args(["--streams", "40000"])
        .args(args)
        .output()
        .expect("relay-dataplane runs");
    assert!(
        out.status.success(),
        "bench-memory {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("bench-memory {args:?} printed {text:?}"))
}

#[test]
fn memory_per_stream_stays_compact() {
    let plain = bytes_per_stream(&[]);
    let srtp = bytes_per_stream(&["--srtp"]);
    let srtp_two_way = bytes_per_stream(&["--srtp", "--two-way"]);
    // 40,000 streams: tens of MB, so the resident set's 2 MB steps (huge pages for the heap)
    // move a figure by 50 bytes at most. Measured on x86-64 (2026-12-02): about 1,000 /
    // 1,950 / 1,460 bytes; 884 / 1,831 / 1,382 with the flow table's port maps.
    assert!(
        (500.0..1_400.0).contains(&plain),
        "plain RTP: {plain} bytes per stream"
    );
    assert!(
        (1_000.0..2_300.0).contains(&srtp),
        "SRTP: {srtp} bytes per stream"
    );
    assert!(
        srtp_two_way < 1_600.0 && srtp_two_way < srtp,
        "SRTP, two-way calls: {srtp_two_way} bytes per stream (one-way {srtp})"
    );
}
