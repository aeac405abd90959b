//! The relay with its worker on its own core (`--main-core 0 --workers 1`): the worker runs on
//! lcore 1 through `rte_eal_remote_launch`, the main core serves the control socket, and calls
//! installed from the sessions file and over the socket are relayed. Core options that cannot
//! work are refused before DPDK starts.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

fn relay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_relay-dataplane"))
}

#[test]
fn a_worker_on_its_own_core_relays_and_answers_the_socket() {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    if online.trim() == "0" {
        eprintln!("skipped: needs two CPUs");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.pcap");
    let frames = (0..32u16)
        .flat_map(|seq| [31_000u16, 31_010].map(|port| common::caller_rtp_frame(port, seq)));
    common::write_pcap(&input, frames);
    let sessions = tmp.path().join("sessions.json");
    let call = |id: &str, a: u16, b: u16| json!({"id": id, "media": [{"a": {"local": format!("198.18.0.1:{a}")}, "b": {"local": format!("198.18.0.1:{b}"), "remote": "198.18.1.20:6000"}}]});
    std::fs::write(&sessions, json!({"version": 1, "neighbours": [{"ip": "198.18.1.20", "mac": "02:00:00:00:00:20"}], "calls": [call("file", 31_000, 31_002)]}).to_string()).unwrap();
    let socket = tmp.path().join("relay.sock");
    let mut child = relay()
        .args([
            "run",
            "--port",
            "net_pcap0,ipv4=198.18.0.1/16",
            "--duration",
            "30",
            "--main-core",
            "0",
            "--workers",
            "1",
        ])
        .arg("--sessions")
        .arg(&sessions)
        .arg("--control")
        .arg(&socket)
        .args([
            "--",
            "--no-huge",
            "-m",
            "256",
            "--no-pci",
            "--no-shconf",
            "--log-level=error",
        ])
        .arg(format!(
            "--vdev=net_pcap0,rx_pcap={},tx_pcap=/dev/null,infinite_rx=1",
            input.display()
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut control = common::ControlClient::connect(&socket);
    let mut ask = |req: Value| control.ask(req);

    let map = ask(json!({"version": 1, "op": "core_map"}))["result"].clone();
    assert_eq!(
        (
            map["main_lcore"].clone(),
            map["workers"][0]["lcore"].clone()
        ),
        (json!(0), json!(1)),
        "{map}"
    );
    assert_eq!(
        map["workers"][0]["ports"][0]["steering"],
        json!("single"),
        "{map}"
    );
    assert_eq!(
        ask(json!({"version": 1, "op": "add_call", "call": call("socket", 31_010, 31_012)}))["ok"],
        json!(true)
    );
    std::thread::sleep(Duration::from_millis(300));
    for id in ["file", "socket"] {
        let s = ask(json!({"version": 1, "op": "stats", "id": id}))["result"].clone();
        assert!(
            s["media"][0]["a"]["rx_packets"].as_u64().unwrap_or(0) > 0,
            "{id}: {s}"
        );
    }
    let (status, out) = common::stop_by_signal(&mut child, "-INT");
    assert!(status.success(), "{out}");
    assert!(out.contains("final counters:"), "{out}");
}

#[test]
fn core_options_that_cannot_work_are_refused() {
    for (args, msg) in [
        (
            vec!["--workers", "0", "--main-core", "0"],
            "is the main core",
        ),
        (vec!["--workers", "999"], "does not exist or is offline"),
        (vec!["--workers", "1,1"], "listed twice"),
        (vec!["--main-core", "0"], "--main-core needs --workers"),
        (
            vec!["--map", "net_ring0:1@1"],
            "receive queue 0 of net_ring0 has no core",
        ),
        (
            vec!["--map", "net_ring0:0@1,net_ring0:0@2"],
            "given to core 1 and core 2",
        ),
        (vec!["--map", "net_ring9:0@1"], "no --port named"),
        (
            vec!["--map", "net_ring0:0@0", "--main-core", "0"],
            "is the main core",
        ),
        (
            vec!["--map", "net_ring0:0@1", "--workers", "1"],
            "cannot be used with",
        ),
    ] {
        let out = relay()
            .args(["run", "--port", "net_ring0,ipv4=198.18.0.1/24"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(msg), "{args:?}: {err}");
    }
    let out = relay()
        .args([
            "run",
            "--port",
            "net_ring0,ipv4=198.18.0.1/24",
            "--workers",
            "1",
            "--",
            "-l",
            "0",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("give cores with --main-core/--workers"));
    // With the EAL's own lcores, --map names lcores, and only worker lcores will do.
    let out = relay()
        .args([
            "run",
            "--port",
            "net_ring0,ipv4=198.18.0.1/24",
            "--map",
            "net_ring0:0@5",
            "--",
        ])
        .args([
            "--no-huge",
            "-m",
            "256",
            "--no-pci",
            "--no-shconf",
            "--log-level=error",
            "--vdev=net_ring0",
            "--lcores=0@0,1@0",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(2)
            && err.contains("--map names core 5, which is not a worker lcore of the EAL"),
        "{err}"
    );
    let out = relay()
        .args([
            "plan",
            "--port",
            "0000:03:00.0",
            "--port",
            "net_ring1",
            "--main-core",
            "0",
            "--map",
            "0000:03:00.0:0@1,0000:03:00.0:1@1,net_ring1:0@1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && text.contains(
                "0000:03:00.0 rx queues 0,1, net_ring1 rx queue 0; tx queue 0 of every port"
            )
            && text.contains("EAL core arguments: -l 0,1 --main-lcore 0"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = relay()
        .args([
            "plan",
            "--port",
            "net_ring0",
            "--workers",
            "1",
            "--main-core",
            "0",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && text.contains("worker 0   cpu 1")
            && text.contains("EAL core arguments: -l 0,1 --main-lcore 0"),
        "{text}"
    );
    // With the embedded default EAL arguments, the core options decide the cores.
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    if online.trim() != "0" {
        let out = relay()
            .args([
                "run",
                "--port",
                "net_ring0,ipv4=198.18.0.1/24",
                "--main-core",
                "0",
                "--workers",
                "1",
                "--duration",
                "0.5",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("final counters"),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A sessions file holding SRTP keys must be readable by its owner only; the refusal names
/// the file and the fix, and comes before DPDK starts.
#[test]
fn a_sessions_file_with_keys_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("keys.json");
    let keyed = json!({"version": 1, "calls": [{"id": "k", "media": [{
        "a": {"local": "198.18.0.1:4000", "receive": {"suite": "AES_CM_128_HMAC_SHA1_80",
              "key": "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"}},
        "b": {"local": "198.18.0.1:4002", "remote": "198.18.1.20:6000"}}]}]});
    std::fs::write(&path, keyed.to_string()).unwrap();
    let run = || {
        relay()
            .args([
                "run",
                "--port",
                "net_ring0,ipv4=198.18.0.1/24",
                "--duration",
                "0.2",
            ])
            .arg("--sessions")
            .arg(&path)
            .output()
            .unwrap()
    };
    for mode in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = run();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{mode:o}: {err}");
        assert!(
            err.contains("holds SRTP keys")
                && err.contains(&format!("chmod 600 {}", path.display())),
            "{err}"
        );
        assert!(
            !err.contains("WVNfX19"),
            "the key must not be printed: {err}"
        );
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Without keys the mode does not matter.
    std::fs::write(
        tmp.path().join("plain.json"),
        json!({"version": 1}).to_string(),
    )
    .unwrap();
    let out = relay()
        .args([
            "run",
            "--port",
            "net_ring0,ipv4=198.18.0.1/24",
            "--duration",
            "0.2",
        ])
        .arg("--sessions")
        .arg(tmp.path().join("plain.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
