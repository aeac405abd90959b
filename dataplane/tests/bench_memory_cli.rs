//! `relay-dataplane bench-memory`, the fresh process in which `bench` measures memory per
//! stream: it runs without an EAL, and its figures keep the compact per-stream state honest
//! (issue 14: at most 1.5 KB per SRTP stream of a two-way call).

use std::process::Command;

fn bytes_per_stream(args: &[&str]) -> f64 {
    bytes_per_stream_with(args, None).0
}

/// The figure, and what the process said on stderr; `tunables`: its `GLIBC_TUNABLES`.
fn bytes_per_stream_with(args: &[&str], tunables: Option<&str>) -> (f64, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_relay-dataplane"));
    cmd.arg("bench-memory")
        .args(["--streams", "40000"])
        .args(args);
    if let Some(t) = tunables {
        cmd.env("GLIBC_TUNABLES", t);
    }
    let out = cmd.output().expect("relay-dataplane runs");
    assert!(
        out.status.success(),
        "bench-memory {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let figure = text
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("bench-memory {args:?} printed {text:?}"));
    (figure, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The system's hugepage pool of the default size, `/proc/sys/vm/nr_hugepages`.
const POOL: &str = "/proc/sys/vm/nr_hugepages";

fn pool_pages() -> Option<u64> {
    std::fs::read_to_string(POOL).ok()?.trim().parse().ok()
}

/// Gives the pool back to its size before the test when dropped, a failed assertion included.
struct PoolBack(u64);

impl Drop for PoolBack {
    fn drop(&mut self) {
        let _ = std::fs::write(POOL, self.0.to_string());
    }
}

/// A heap on the reserved hugepage pool (`glibc.malloc.hugetlb=2`, what `run` chooses when
/// the EAL runs on hugepages) is counted: the resident set size leaves those pages out. The
/// test reserves 64 pages (128 MB) for itself and gives them back; where it may not (not
/// root, a container's read-only `/proc/sys`), it says so and checks nothing.
#[test]
fn a_heap_on_reserved_hugepages_is_counted() {
    let Some(had) = pool_pages() else {
        eprintln!("SKIPPED: no {POOL}");
        return;
    };
    let back = PoolBack(had);
    if std::fs::write(POOL, (had + 64).to_string()).is_err() || pool_pages() != Some(had + 64) {
        eprintln!("SKIPPED: cannot reserve hugepages here ({POOL} not writable or no memory)");
        return;
    }
    let (two_way, said) =
        bytes_per_stream_with(&["--srtp", "--two-way"], Some("glibc.malloc.hugetlb=2"));
    drop(back);
    assert_eq!(pool_pages(), Some(had), "the pool as it was");
    let reserved: f64 = said
        .lines()
        .find_map(|l| l.strip_prefix("of which on the reserved hugepage pool: "))
        .and_then(|r| r.strip_suffix(" bytes per stream"))
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no share of the reserved pool reported: {said:?}"));
    // 40,000 streams of two-way calls: some 53 MB, most of it on the 128 MB reserved (the
    // first pages of the heap may predate the tables), all of it counted.
    assert!(
        (1_000.0..1_600.0).contains(&two_way),
        "SRTP, two-way calls on reserved hugepages: {two_way} bytes per stream"
    );
    assert!(
        reserved > two_way / 2.0,
        "{reserved} of {two_way} bytes per stream on the reserved pool"
    );
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
