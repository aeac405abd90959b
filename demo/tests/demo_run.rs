//! The README's main command, `relay-demo`, run as a user runs it (as root, small and short),
//! and what it promises checked from outside:
//!
//! - it exits 0, its summary's call counts are those asked for, and the call records read
//!   back independently with `relayctl` (under a grant of the test's own) number the same;
//! - on the wire (tcpdump on both outer links): SIP only inside TLS (no SIP start line, SDP
//!   or `a=crypto` in any frame), and no 16-byte run of the audio payload the callers sent
//!   on an SRTP link; the plain-RTP operator link shows the payload, which proves the check
//!   can fail;
//! - on disk: no file the run left (configuration, logs, CDR store, kept-call state, data
//!   plane statistics) holds a 16-byte run of the payload, in plain or in the SRTP form
//!   captured on the wire;
//! - retention (an injected clock): 31 days on, the purge leaves the run's records
//!   unreadable, its day's anonymised statistics remain, the audit log shows the grant;
//! - Ctrl-C hangs up and removes everything; a run after a crash removes what it left.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use relay_demo::media::{self, Direction};
use relay_testsupport::capture::read_udp;

const CALLS: u32 = 4;
const DURATION_S: f64 = 2.0;

/// One demo at a time: each takes the machine's cores, and the second test checks that
/// nothing of a run is left.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn demo(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_relay-demo"))
        .args(args)
        .output()
        .expect("relay-demo runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn kept_dir(output: &str) -> PathBuf {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix("kept        "))
        .expect("a kept line");
    PathBuf::from(line.split(' ').next().unwrap())
}

fn can_run() -> bool {
    if !relay_testsupport::netns::is_root() {
        eprintln!("skipped: needs root (network namespaces)");
        return false;
    }
    if !Path::new(&relay_testsupport::workspace_binary("relay-control")).exists() {
        panic!("relay-control is not built: cargo build --workspace --bins first (scripts/test.sh does)");
    }
    true
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.is_file() {
                out.push(p);
            }
        }
    }
    out
}

/// Every 16-byte run of every payload the callers sent (calls, both directions, the first
/// `packets` sequence numbers from each stream's start).
fn payload_runs() -> HashSet<[u8; 16]> {
    let mut runs = HashSet::new();
    for call in 0..CALLS {
        for dir in [Direction::CloudToOperator, Direction::OperatorToCloud] {
            let first = (media::ssrc(call, dir) as u16).wrapping_mul(7);
            for n in 0..200u16 {
                let p = media::payload(call, dir, first.wrapping_add(n));
                for w in p.windows(16) {
                    runs.insert(w.try_into().unwrap());
                }
            }
        }
    }
    runs
}

fn holds_any(data: &[u8], runs: &HashSet<[u8; 16]>) -> bool {
    data.windows(16)
        .any(|w| runs.contains(<&[u8; 16]>::try_from(w).unwrap()))
}

fn relayctl_records(dir: &Path) -> usize {
    relayctl(
        dir,
        &[
            "access",
            "grant",
            "--reason",
            "demo test: count the records",
            "--ttl",
            "5m",
        ],
    );
    relayctl(dir, &["cdr", "export", "--format", "json"])
        .lines()
        .filter(|l| l.starts_with('{'))
        .count()
}

/// `relayctl ARGS` on the run's store, as user `demo-test`; its output (it must succeed).
fn relayctl(dir: &Path, args: &[&str]) -> String {
    let bin = relay_testsupport::workspace_binary("relayctl");
    let out = relay_testsupport::appliance::relayctl(&bin, dir, "demo-test", args).unwrap();
    assert!(
        out.status.success(),
        "relayctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn calls_go_through_encrypted_and_leave_no_media_on_disk() {
    if !can_run() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let captures = tempfile::tempdir().unwrap();
    let calls = CALLS.to_string();
    let duration = DURATION_S.to_string();
    let (ok, out) = demo(&[
        "--calls",
        &calls,
        "--duration",
        &duration,
        "--cps",
        "4",
        "--operator-media",
        "rtp",
        "--keep",
        "--capture",
        captures.path().to_str().unwrap(),
    ]);
    assert!(ok, "relay-demo failed:\n{out}");
    let dir = kept_dir(&out);
    let cleanup = scopeguard(dir.clone());
    assert!(
        out.contains(&format!(
            "calls       {CALLS} attempted, {CALLS} answered, 0 failed"
        )),
        "{out}"
    );
    assert!(
        out.contains("they agree with the callers") && out.contains("result      OK"),
        "{out}"
    );
    assert_eq!(
        relayctl_records(&dir),
        CALLS as usize,
        "records read back by the test"
    );

    let runs = payload_runs();
    // The wire. Every frame of the cloud link: no SIP or SDP in clear, no payload.
    let cloud = std::fs::read(captures.path().join("cloud.pcap")).unwrap();
    for marker in [&b"SIP/2.0"[..], b"a=crypto", b"m=audio", b"inline:"] {
        assert!(
            !cloud.windows(marker.len()).any(|w| w == marker),
            "{} in clear on the cloud link",
            String::from_utf8_lossy(marker)
        );
    }
    let (cloud_udp, _) = read_udp(&captures.path().join("cloud.pcap")).unwrap();
    assert!(cloud_udp.len() as f64 >= f64::from(CALLS) * DURATION_S * 50.0 * 2.0 * 0.9);
    for d in &cloud_udp {
        assert!(
            !holds_any(&d.payload, &runs),
            "audio in clear on the SRTP link: {d:?}"
        );
    }
    // The operator link is plain RTP by choice: the payload is there, so the check above
    // would have found it. Its SIP is TLS all the same.
    let operator = std::fs::read(captures.path().join("operator.pcap")).unwrap();
    assert!(
        !operator.windows(7).any(|w| w == b"SIP/2.0"),
        "SIP in clear on the operator link"
    );
    let (operator_udp, _) = read_udp(&captures.path().join("operator.pcap")).unwrap();
    assert!(
        operator_udp.iter().any(|d| holds_any(&d.payload, &runs)),
        "the RTP link shows the audio"
    );

    // The disk: nothing of the audio, plain or as the SRTP the cloud link carried.
    let mut srtp_runs = HashSet::new();
    for d in cloud_udp.iter().filter(|d| d.payload.len() > 12 + 10) {
        for w in d.payload[12..d.payload.len() - 10].windows(16) {
            srtp_runs.insert(<[u8; 16]>::try_from(w).unwrap());
        }
    }
    let files = files_under(&dir);
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "seg")),
        "{files:?}"
    );
    for f in &files {
        let data = std::fs::read(f).unwrap();
        assert!(!holds_any(&data, &runs), "{} holds audio", f.display());
        assert!(
            !holds_any(&data, &srtp_runs),
            "{} holds SRTP from the wire",
            f.display()
        );
    }

    // Retention, with an injected clock: 31 days on, the purge has destroyed the run's
    // records (their day key and segments), the anonymised statistics of that day remain,
    // and the audit log still shows the grant the demo read them under.
    let config = relay_control::cdr::CdrConfig::new(dir.join("cdr"), dir.join("cdr.kek"));
    let kek = relay_control::cdr::Kek::load(&config.kek_file).unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let today = relay_control::cdr::day_of(now_ms);
    let report = relay_control::cdr::purge(&config, &kek, now_ms + 31 * 86_400_000).unwrap();
    assert!(report.days_purged.contains(&today), "{report:?}");
    assert!(!config.keys_dir.join(format!("{today}.key")).exists());
    assert!(!dir.join("cdr/segments").join(&today).exists());
    assert_eq!(
        relayctl_records(&dir),
        0,
        "records readable after the purge"
    );
    let stats = relayctl(&dir, &["stats", "--from", &today, "--format", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stats).unwrap();
    let attempted: u64 = rows
        .iter()
        .filter(|r| r["trunk"] == "cloud")
        .map(|r| r["attempted"].as_u64().unwrap())
        .sum();
    assert_eq!(
        attempted,
        u64::from(CALLS),
        "the day's statistics remain: {stats}"
    );
    assert!(
        !stats.contains("+49302"),
        "statistics hold no number: {stats}"
    );
    let audit = relayctl(&dir, &["audit", "show"]);
    assert!(
        audit.contains("read back the run's records"),
        "the demo's grant is in the audit log:\n{audit}"
    );
    drop(cleanup);
}

#[test]
fn srtp_on_both_legs_with_two_workers() {
    if !can_run() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (ok, out) = demo(&[
        "--calls",
        "6",
        "--duration",
        "2",
        "--cps",
        "6",
        "--workers",
        "2",
    ]);
    assert!(ok, "relay-demo failed:\n{out}");
    assert!(
        out.contains("calls       6 attempted, 6 answered, 0 failed"),
        "{out}"
    );
    assert!(
        out.contains("suites AES_CM_128_HMAC_SHA1_80 / AES_CM_128_HMAC_SHA1_80"),
        "{out}"
    );
    assert!(out.contains("worker 1:"), "{out}");
    // It removed everything it made.
    let pid_dirs = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("relay-demo-"))
        .count();
    assert_eq!(pid_dirs, 0, "a relay-demo temporary directory is left");
    let ns = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(!ns.contains("relaydemo-"), "namespaces left: {ns}");
}

#[test]
fn ctrl_c_hangs_up_and_a_run_after_a_crash_removes_what_it_left() {
    if !can_run() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let start = |calls: &str| {
        Command::new(env!("CARGO_BIN_EXE_relay-demo"))
            .args(["--calls", calls, "--duration", "60", "--cps", "10"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let wait_talking = |child: &mut std::process::Child| {
        // The header's last line comes once the appliance is up; calls start right after.
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0 {
            if line.contains("Ctrl-C hangs up") {
                break;
            }
            line.clear();
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
        out
    };
    // Ctrl-C (SIGINT to relay-demo alone: its children have a process group of their own):
    // the calls are hung up, the records still agree, everything is removed.
    let mut child = start("4");
    let mut out = wait_talking(&mut child);
    let pid = child.id();
    assert!(Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "stopped early is not a success:\n{rest}"
    );
    assert!(
        rest.contains("4 answered, 0 failed") && rest.contains("they agree with the callers"),
        "{rest}"
    );
    assert!(rest.contains("(stopped early)"), "{rest}");
    let netns = || {
        String::from_utf8_lossy(
            &Command::new("ip")
                .args(["netns", "list"])
                .output()
                .unwrap()
                .stdout,
        )
        .into_owned()
    };
    assert!(
        !netns().contains(&format!("-{pid}-")),
        "namespaces left after Ctrl-C: {}",
        netns()
    );

    // A crash (SIGKILL) leaves the namespaces and the appliance running; the next run
    // removes them.
    let mut child = start("2");
    let _ = wait_talking(&mut child);
    let pid = child.id();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        netns().contains(&format!("-{pid}-")),
        "a crash leaves its namespaces"
    );
    let (ok, out) = demo(&["--calls", "2", "--duration", "1", "--cps", "10"]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("namespace relaydemo-sbc-{pid}-")),
        "{out}"
    );
    assert!(!netns().contains(&format!("-{pid}-")), "left: {}", netns());
    let tmp_left = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("relay-demo-{pid}-"))
        });
    assert!(!tmp_left, "the crashed run's directory is left");
}

/// The value of the first Prometheus sample whose name and labels start with `prefix`.
fn prometheus_value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn relayctl_top_agrees_with_the_prometheus_endpoint() {
    if !can_run() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let metrics = "127.0.0.1:19464";
    let mut child = Command::new(env!("CARGO_BIN_EXE_relay-demo"))
        .args([
            "--calls",
            "4",
            "--duration",
            "6",
            "--cps",
            "8",
            "--metrics",
            metrics,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let (mut admin, mut dataplane) = (String::new(), String::new());
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0 {
        if let Some(rest) = line
            .trim()
            .strip_prefix("live view: relayctl top --admin-socket ")
        {
            let (a, d) = rest.split_once(" --dataplane-socket ").unwrap();
            (admin, dataplane) = (a.to_owned(), d.to_owned());
        }
        if line.contains("Ctrl-C hangs up") {
            break;
        }
        line.clear();
    }
    assert!(!admin.is_empty(), "the demo names its sockets");
    // The calls are up and talking (4 calls at 8/s: all placed within 0.5 s).
    std::thread::sleep(std::time::Duration::from_secs(2));
    let top = Command::new(relay_testsupport::workspace_binary("relayctl"))
        .args([
            "top",
            "--admin-socket",
            &admin,
            "--dataplane-socket",
            &dataplane,
            "--count",
            "1",
            "--interval",
            "1",
        ])
        .output()
        .unwrap();
    let top = String::from_utf8_lossy(&top.stdout).into_owned();
    let mut scrape = std::net::TcpStream::connect(metrics).unwrap();
    std::io::Write::write_all(&mut scrape, b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut prom = String::new();
    std::io::Read::read_to_string(&mut scrape, &mut prom).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "{rest}");

    // Calls: the same totals in both.
    assert!(
        top.contains("calls       4 active") && top.contains("since start 4 attempted, 4 answered"),
        "{top}"
    );
    assert_eq!(
        prometheus_value(&prom, "relay_calls_active "),
        Some(4.0),
        "{prom}"
    );
    assert_eq!(
        prometheus_value(&prom, "relay_calls_attempted_total "),
        Some(4.0),
        "{prom}"
    );
    assert!(
        top.contains("cloud 198.18.10.2:5061/tls up")
            && top.contains("operator 198.18.20.2:5061/tls up"),
        "{top}"
    );
    assert_eq!(
        prometheus_value(&prom, "relay_trunk_up{trunk=\"cloud\""),
        Some(1.0),
        "{prom}"
    );
    // The data plane: packets flowing and re-keyed, and the relayed total top showed is the
    // endpoint's, read a moment later (at 400 packets/s, within 2 s of it).
    let row = top
        .lines()
        .find(|l| l.starts_with("0 "))
        .unwrap_or_else(|| panic!("{top}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    let (pps, rekeyed, relayed): (f64, f64, f64) = (
        cols[1].parse().unwrap(),
        cols[2].parse().unwrap(),
        cols[4].parse().unwrap(),
    );
    assert!(pps > 200.0 && rekeyed > 200.0, "{row}");
    let prom_relayed =
        prometheus_value(&prom, "relay_dataplane{worker=\"0\",counter=\"forwarded\"}").unwrap();
    assert!(
        prom_relayed >= relayed && prom_relayed - relayed <= 800.0,
        "top {relayed}, Prometheus {prom_relayed}"
    );
    assert!(
        prometheus_value(&prom, "relay_dataplane{worker=\"0\",counter=\"busy_ns\"}").unwrap() > 0.0
    );
}

/// Removes the kept run directory when dropped.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scopeguard(dir: PathBuf) -> Cleanup {
    Cleanup(dir)
}
