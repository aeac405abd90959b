//! Two workers sharing a port without RSS (`net_pcap`): the workers that receive (worker 0
//! only, or each on its own queue) hand each packet to the worker that owns its call
//! (software dispatch). With one queue, the callee's MAC, learnt from an ARP reply only worker 0
//! sees, reaches worker 1 by message. Three lcores on CPU 0 (`--lcores`), so the test runs on
//! a one-CPU machine too.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use relay_dataplane::wire::{self, Arp};
use serde_json::{json, Value};

const CALLEE_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x20];

fn relayed_to_callee(path: &Path) -> usize {
    common::read_pcap(path)
        .iter()
        .filter(|f| {
            f[..6] == CALLEE_MAC
                && wire::parse_udp(f).is_ok_and(|u| u.dst == "198.18.1.20:6000".parse().unwrap())
        })
        .count()
}

/// Worker 0 receives everything (the port has one receive queue) and hands over.
#[test]
fn two_workers_share_a_port_with_one_receive_queue() {
    two_workers_share_a_port_without_rss(1);
}

/// Each worker receives part of the traffic on its own queue (as a multi-queue port without
/// RSS spreads it) and hands the other worker's frames over: rings both ways.
#[test]
fn two_workers_share_a_port_with_a_receive_queue_each() {
    two_workers_share_a_port_without_rss(2);
}

fn two_workers_share_a_port_without_rss(rx_queues: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let (w0, w1) = (
        common::ports_on_worker(0, 2, 20_000),
        common::ports_on_worker(1, 2, 20_000),
    );
    // The callee announces itself once (an unsolicited ARP reply to the relay's address).
    let mut arp = vec![0u8; 64];
    let n = wire::write_arp(
        &mut arp,
        [2, 0, 0, 0, 0, 1],
        None,
        &Arp {
            op: 2,
            sha: CALLEE_MAC,
            spa: "198.18.1.20".parse().unwrap(),
            tha: [2, 0, 0, 0, 0, 1],
            tpa: "198.18.0.1".parse().unwrap(),
        },
    )
    .unwrap();
    arp.truncate(n);
    let mut frames = vec![arp];
    for seq in 0..50u16 {
        for &p in w0.iter().chain(&w1) {
            frames.push(common::caller_rtp_frame(p, seq));
        }
    }
    // One input file per receive queue; the media frames alternate between them. The ARP
    // reply comes first on queue 0 only with one queue: worker 1 then learns the MAC from
    // worker 0's message before worker 0 hands it any packet. With a queue each, worker 1 may
    // run through its whole file before worker 0 starts (all lcores share one CPU), so both
    // files start with the ARP reply (sharing in that setting: tests/relay_kernel_peers.rs).
    let arp = frames.remove(0);
    let inputs: Vec<_> = (0..rx_queues)
        .map(|q| tmp.path().join(format!("in{q}.pcap")))
        .collect();
    for (q, input) in inputs.iter().enumerate() {
        let media = frames.iter().skip(q).step_by(rx_queues);
        common::write_pcap(input, std::iter::once(&arp).chain(media));
    }
    frames.insert(0, arp);

    let call = |p: u16| json!({"id": format!("c{p}"), "media": [{"a": {"local": format!("198.18.0.1:{p}")}, "b": {"local": format!("198.18.0.1:{}", p + 2), "remote": "198.18.1.20:6000"}}]});
    let sessions = tmp.path().join("sessions.json");
    let calls: Vec<Value> = w0.iter().chain(&w1).map(|&p| call(p)).collect();
    std::fs::write(&sessions, json!({"version": 1, "calls": calls}).to_string()).unwrap();
    let (out0, out1) = (tmp.path().join("out0.pcap"), tmp.path().join("out1.pcap"));
    let stats = tmp.path().join("stats.json");
    let socket = tmp.path().join("relay.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_relay-dataplane"))
        .args(["run", "--port", "net_pcap0,ipv4=198.18.0.1/16"])
        .arg("--sessions")
        .arg(&sessions)
        .arg("--stats-json")
        .arg(&stats)
        .arg("--control")
        .arg(&socket)
        .args(["--idle-exit-ms", "1500", "--duration", "30", "--"])
        .args(common::THREE_LCORES_ON_CPU_0)
        .arg(format!(
            "--vdev=net_pcap0,{}tx_pcap={},tx_pcap={}",
            inputs
                .iter()
                .map(|i| format!("rx_pcap={},", i.display()))
                .collect::<String>(),
            out0.display(),
            out1.display()
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The core map says how each worker's packets arrive.
    let map = common::ControlClient::connect(&socket).ask(json!({"version": 1, "op": "core_map"}));
    for w in 0..2 {
        assert_eq!(
            map["result"]["workers"][w]["ports"][0]["steering"],
            json!("dispatch"),
            "{map}"
        );
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = if rx_queues == 1 {
        "no RSS, software dispatch: worker 0 receives and hands packets"
    } else {
        "no RSS, software dispatch: workers 0,1 receive and hand packets"
    };
    assert!(text.contains(mode), "{text}");
    let stats: Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    let workers = stats["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{stats}");
    // Each worker processed its own calls' frames, wherever they were received, and the ARP
    // replies that came in on its queue.
    assert_eq!(workers[0]["rx"], json!(100 + 1), "{stats}");
    assert_eq!(workers[1]["rx"], json!(100 + rx_queues - 1), "{stats}");
    // Every packet of every call reached its call's worker and was relayed, those that came
    // before the worker knew the callee's MAC too (worker 1 learns it from worker 0's
    // message, so its first packets may be early: held, then sent; how many depends on
    // scheduling).
    let mut relayed = [0u64; 2];
    for call in stats["calls"].as_array().unwrap() {
        let a = &call["media"][0]["a"];
        let b = &call["media"][0]["b"];
        let tx = b["tx_packets"].as_u64().unwrap();
        assert_eq!(a["rx_packets"], json!(50), "{call}");
        assert_eq!(tx, 50, "{call}");
        let port: u16 = call["id"].as_str().unwrap()[1..].parse().unwrap();
        relayed[usize::from(w1.contains(&port))] += tx;
    }
    assert!(
        stats["worker"]["drops"]
            .get("neighbour_unresolved")
            .is_none(),
        "no frame was given up waiting for the callee's MAC: {stats}"
    );
    // Each worker transmits on its own queue (tx_pcap one and two), with the MAC only worker
    // 0 received.
    assert_eq!(relayed_to_callee(&out0) as u64, relayed[0]);
    assert_eq!(relayed_to_callee(&out1) as u64, relayed[1]);
    // Who handed how much to whom: with one receive queue worker 0 handed over all of worker
    // 1's frames; with one each, each worker handed over the half of the other's frames that
    // arrived on its queue.
    let handed = |w: usize| workers[w]["handed_over"].as_u64().unwrap();
    if rx_queues == 1 {
        assert_eq!((handed(0), handed(1)), (100, 0), "{stats}");
    } else {
        assert_eq!((handed(0), handed(1)), (50, 50), "{stats}");
    }
    assert_eq!(
        stats["worker"]["drops"]["handoff_full"]
            .as_u64()
            .unwrap_or(0),
        0,
        "{stats}"
    );
}

/// An explicit `--map`: both receive queues of the callers' port on one worker (lcore 2), the
/// callees' port's only queue on the other (lcore 1). Worker 0 then receives none of its
/// calls' packets itself: worker 1 hands them over, and each worker sends on its own transmit
/// queue of the callees' port.
#[test]
fn a_queue_map_gives_one_worker_every_receive_queue_of_a_port() {
    let tmp = tempfile::tempdir().unwrap();
    let (w0, w1) = (
        common::ports_on_worker(0, 2, 20_000),
        common::ports_on_worker(1, 2, 20_000),
    );
    let mut frames = Vec::new();
    for seq in 0..50u16 {
        for &p in w0.iter().chain(&w1) {
            frames.push(common::caller_rtp_frame(p, seq));
        }
    }
    let inputs: Vec<_> = (0..2)
        .map(|q| tmp.path().join(format!("in{q}.pcap")))
        .collect();
    for (q, input) in inputs.iter().enumerate() {
        common::write_pcap(input, frames.iter().skip(q).step_by(2));
    }
    let quiet = tmp.path().join("quiet.pcap");
    common::write_pcap(&quiet, std::iter::empty::<&Vec<u8>>());
    let call = |p: u16| json!({"id": format!("c{p}"), "media": [{"a": {"local": format!("198.18.0.1:{p}")}, "b": {"local": format!("198.19.0.1:{}", p + 2), "remote": "198.19.1.20:6000"}}]});
    let calls: Vec<Value> = w0.iter().chain(&w1).map(|&p| call(p)).collect();
    let sessions = tmp.path().join("sessions.json");
    std::fs::write(
        &sessions,
        json!({"version": 1, "neighbours": [{"ip": "198.19.1.20", "mac": "02:00:00:00:00:20"}], "calls": calls}).to_string(),
    )
    .unwrap();
    let (out0, out1) = (tmp.path().join("out0.pcap"), tmp.path().join("out1.pcap"));
    let (back0, back1) = (tmp.path().join("back0.pcap"), tmp.path().join("back1.pcap"));
    let stats = tmp.path().join("stats.json");
    let socket = tmp.path().join("relay.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_relay-dataplane"))
        .args([
            "run",
            "--port",
            "net_pcap0,ipv4=198.18.0.1/16",
            "--port",
            "net_pcap1,ipv4=198.19.0.1/16",
            "--map",
            "net_pcap0:0@2,net_pcap0:1@2,net_pcap1:0@1",
        ])
        .arg("--sessions")
        .arg(&sessions)
        .arg("--stats-json")
        .arg(&stats)
        .arg("--control")
        .arg(&socket)
        .args(["--idle-exit-ms", "1500", "--duration", "30", "--"])
        .args(common::THREE_LCORES_ON_CPU_0)
        .arg(format!(
            "--vdev=net_pcap0,rx_pcap={},rx_pcap={},tx_pcap={},tx_pcap={}",
            inputs[0].display(),
            inputs[1].display(),
            back0.display(),
            back1.display()
        ))
        .arg(format!(
            "--vdev=net_pcap1,rx_pcap={},tx_pcap={},tx_pcap={}",
            quiet.display(),
            out0.display(),
            out1.display()
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let map = common::ControlClient::connect(&socket).ask(json!({"version": 1, "op": "core_map"}));
    let workers = &map["result"]["workers"];
    assert_eq!(workers[0]["lcore"], json!(1), "{map}");
    assert_eq!(workers[0]["ports"][0]["rx_queues"], json!([]), "{map}");
    assert_eq!(workers[0]["ports"][1]["rx_queues"], json!([0]), "{map}");
    assert_eq!(workers[1]["ports"][0]["rx_queues"], json!([0, 1]), "{map}");
    assert_eq!(workers[1]["ports"][1]["rx_queues"], json!([]), "{map}");
    for w in 0..2 {
        for p in 0..2 {
            assert_eq!(
                workers[w]["ports"][p]["steering"],
                json!("dispatch"),
                "{map}"
            );
            assert_eq!(workers[w]["ports"][p]["queue"], json!(w), "{map}");
        }
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("net_pcap0: id 0, 198.18.0.1/16, mac")
            && text.contains("2 rx / 2 tx queue(s), no RSS, software dispatch: worker 1 receives and hands packets"),
        "{text}"
    );
    let stats: Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    let per_worker = stats["workers"].as_array().unwrap();
    // Worker 1 received every frame and handed worker 0's 100 over; each relayed its own.
    let handed = |w: usize| per_worker[w]["handed_over"].as_u64().unwrap();
    assert_eq!((handed(0), handed(1)), (0, 100), "{stats}");
    assert_eq!(per_worker[0]["rx"], json!(100), "{stats}");
    assert_eq!(per_worker[1]["rx"], json!(100), "{stats}");
    for call in stats["calls"].as_array().unwrap() {
        assert_eq!(call["media"][0]["a"]["rx_packets"], json!(50), "{call}");
        assert_eq!(call["media"][0]["b"]["tx_packets"], json!(50), "{call}");
    }
    // Each worker's output went out on its own transmit queue of the callees' port.
    assert_eq!(relayed_to(&out0, "198.19.1.20:6000"), 100);
    assert_eq!(relayed_to(&out1, "198.19.1.20:6000"), 100);
    assert_eq!(
        stats["worker"]["drops"]["handoff_full"]
            .as_u64()
            .unwrap_or(0),
        0,
        "{stats}"
    );
}

fn relayed_to(path: &Path, dst: &str) -> usize {
    common::read_pcap(path)
        .iter()
        .filter(|f| {
            f[..6] == CALLEE_MAC && wire::parse_udp(f).is_ok_and(|u| u.dst == dst.parse().unwrap())
        })
        .count()
}
