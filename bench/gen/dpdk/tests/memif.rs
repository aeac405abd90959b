//! `relay-gen` and `relay-dataplane` as two DPDK processes joined by two `net_memif` links,
//! each on its own core: every stream's packets offered, re-keyed by the relay (AES-CM in,
//! AES-CM or AES-GCM out), verified by the generator with the outbound keys. Half the calls
//! are on each port's second address (`--port ...,addrs=2`). The generator stops first, then the relay (a memif peer that exits while the other polls can crash it:
//! `../shared/DPDK-NOTES.md`).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CALLS: usize = 20;
const KEY_CM: &str = "inline:YUJDZGVmZ2hpSktMbW9QUXJzVHVWd3l6MTIzNDU2";
const KEY_CM_OUT: &str = "inline:QUJDZGVmZ2hpSktMbW9QUXJzVHVWd3l6MTIzNDU2";
const KEY_GCM: &str = "inline:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHA==";

fn sessions() -> String {
    let calls: Vec<String> = (0..CALLS)
        .map(|i| {
            // Half the calls on each port's second address (`addrs=2`).
            let host = 1 + i % 2;
            let (suite, key) = if i % 2 == 0 {
                ("AES_CM_128_HMAC_SHA1_80", KEY_CM_OUT)
            } else {
                ("AEAD_AES_128_GCM", KEY_GCM)
            };
            format!(
                r#"{{"id":"c{i}","media":[{{"rtcp":"mux",
                "a":{{"local":"198.18.0.{host}:{}","remote":"198.18.0.10:{}","clock_rate":8000,
                     "receive":{{"suite":"AES_CM_128_HMAC_SHA1_80","key":"{KEY_CM}"}}}},
                "b":{{"local":"198.19.0.{host}:{}","remote":"198.19.0.20:{}","clock_rate":8000,
                     "send":{{"suite":"{suite}","key":"{key}"}}}}}}]}}"#,
                40_000 + 4 * i,
                5_000 + 2 * i,
                40_002 + 4 * i,
                6_000 + 2 * i
            )
        })
        .collect();
    format!(
        r#"{{"version":1,"neighbours":[{{"ip":"198.18.0.10","mac":"02:00:00:00:00:10"}},{{"ip":"198.19.0.20","mac":"02:00:00:00:00:20"}}],"calls":[{}]}}"#,
        calls.join(",")
    )
}

/// A child process killed (by its PID) and reaped when the test ends, however it ends.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Waits for `child` at most `limit`; kills it (by its PID) if it is still running.
fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waiting") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_generator_verifies_every_stream_through_the_relay_over_memif() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let mut f = std::fs::File::create(path("sessions.json")).unwrap();
    f.write_all(sessions().as_bytes()).unwrap();
    std::fs::set_permissions(
        path("sessions.json"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let pid = std::process::id();
    let (sock_a, sock_b) = (path("a.sock"), path("b.sock"));
    // (Abstract sockets by default: the paths only name them.)
    let eal = |lcore: &str, prefix: &str, role: &str, macs: [&str; 2]| -> Vec<String> {
        vec![
            "--no-huge".into(),
            "-m".into(),
            "256".into(),
            "--no-pci".into(),
            "--no-shconf".into(),
            "-l".into(),
            lcore.into(),
            format!("--file-prefix={prefix}{pid}"),
            "--log-level=error".into(),
            format!(
                "--vdev=net_memif0,role={role},socket={},mac={}",
                sock_a.display(),
                macs[0]
            ),
            format!(
                "--vdev=net_memif1,role={role},socket={},mac={}",
                sock_b.display(),
                macs[1]
            ),
        ]
    };
    let relay_macs = ["02:00:00:00:01:01", "02:00:00:00:01:02"];
    let mut relay = Command::new(relay_testsupport::workspace_binary("relay-dataplane"))
        .args([
            "run",
            "--port",
            &format!(
                "net_memif0,ipv4=198.18.0.1/24,addrs=2,mac={}",
                relay_macs[0]
            ),
            "--port",
            &format!(
                "net_memif1,ipv4=198.19.0.1/24,addrs=2,mac={}",
                relay_macs[1]
            ),
            "--sessions",
        ])
        .arg(path("sessions.json"))
        .args(["--duration", "20", "--idle-exit-ms", "4000", "--stats-json"])
        .arg(path("relay.json"))
        .arg("--")
        .args(eal("1", "gtr", "server", relay_macs))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The relay is ready once it says it installed the calls (memif's sockets are abstract:
    // nothing to wait for in the file system).
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let out = relay.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if line.starts_with("installed") {
                let _ = ready_tx.send(());
            }
        }
    });
    let mut relay = Reaper(relay);
    ready
        .recv_timeout(Duration::from_secs(15))
        .expect("the relay never said it installed the calls");
    // The generator's command: `sub` with its own arguments, the ports, the sessions and
    // a JSON report at `json`, its EAL on lcore 0 with the memif clients.
    let generator = |sub: &str, args: &[&str], json: &str, prefix: &str| {
        Command::new(env!("CARGO_BIN_EXE_relay-gen"))
            .arg(sub)
            .args(args)
            .args(["--tx-port", "net_memif0", "--rx-port", "net_memif1"])
            .args(["--relay-mac", relay_macs[0], "--sessions"])
            .arg(path("sessions.json"))
            .arg("--json")
            .arg(path(json))
            .arg("--")
            .args(eal(
                "0",
                prefix,
                "client",
                ["02:00:00:00:00:10", "02:00:00:00:00:20"],
            ))
            .env("RUST_BACKTRACE", "0")
            .spawn()
            .unwrap()
    };
    let gen = generator(
        "run",
        &["--rate", "20000", "--seconds", "1"],
        "gen.json",
        "gtg",
    );
    let mut gen = Reaper(gen);
    let gen_status = wait_bounded(&mut gen.0, Duration::from_secs(30), "relay-gen");
    assert!(gen_status.success(), "relay-gen failed: {gen_status}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path("gen.json")).unwrap()).unwrap();

    // The NDR search over paced trials, on the same relay (its streams go on).
    let ndr = generator(
        "ndr",
        &[
            "--min-pps",
            "2000",
            "--max-pps",
            "30000",
            "--resolution",
            "0.1",
            "--trial-seconds",
            "0.2",
            "--max-trials",
            "6",
        ],
        "ndr.json",
        "gtn",
    );
    let mut ndr = Reaper(ndr);
    let ndr_status = wait_bounded(&mut ndr.0, Duration::from_secs(60), "relay-gen ndr");
    assert!(ndr_status.success(), "relay-gen ndr failed: {ndr_status}");
    // The generators are gone; the relay stops itself once idle.
    let relay_status = wait_bounded(&mut relay.0, Duration::from_secs(30), "relay-dataplane");
    assert!(
        relay_status.success(),
        "relay-dataplane failed: {relay_status}"
    );
    let search: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path("ndr.json")).unwrap()).unwrap();
    // Figures are not asserted (a debug build on a shared machine), only that the search
    // ran its trials and found a rate the relay carried without loss.
    assert!(search["ndr_pps"].as_f64().unwrap() >= 2000.0, "{search}");
    assert!(search["pdr_pps"].as_f64().unwrap() >= search["ndr_pps"].as_f64().unwrap());
    assert!(!search["trials"].as_array().unwrap().is_empty());

    assert_eq!(report["streams"], CALLS);
    let offered = report["offered"].as_u64().unwrap();
    assert!(offered >= 19_000, "offered {offered}");
    assert_eq!(report["delivered"].as_u64(), Some(offered));
    assert_eq!(report["failed"], 0);
    assert_eq!(report["clean"], true);
    let relay: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path("relay.json")).unwrap()).unwrap();
    // The relay forwarded the run's packets and then the search's, all re-keyed.
    let forwarded = relay["worker"]["forwarded"].as_u64().unwrap();
    assert!(forwarded > offered, "{relay}");
    assert_eq!(relay["worker"]["srtp"].as_u64(), Some(forwarded));
}
