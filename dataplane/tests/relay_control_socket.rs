//! Calls added and removed over the control socket while packets flow: `net_pcap` replays a
//! capture forever (`infinite_rx=1`), the relay forwards what belongs to installed calls, and
//! the counters read over the socket move accordingly. SIGTERM ends the run gracefully.

mod common;

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapWriter};
use relay_session::client::ClientError;
use relay_session::stats::Steering;
use relay_session::CallSpec;
use serde_json::{json, Value};

fn frame(dst_port: u16, seq: u16) -> Vec<u8> {
    common::caller_rtp_frame(dst_port, seq)
}

fn call(id: &str, a: u16, b: u16) -> Value {
    json!({"id": id, "media": [{"a": {"local": format!("198.18.0.1:{a}"), "remote": "198.18.1.10:5004"},
                                 "b": {"local": format!("198.18.0.1:{b}"), "remote": "198.18.1.20:6000"}}]})
}

#[test]
fn sessions_change_over_the_socket_while_packets_flow() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.pcap");
    {
        let mut w = PcapWriter::new(File::create(&input).unwrap()).unwrap();
        for seq in 0..64u16 {
            for port in [30_000u16, 30_010] {
                let f = frame(port, seq);
                w.write_packet(&PcapPacket::new(Duration::ZERO, f.len() as u32, &f))
                    .unwrap();
            }
        }
    }
    let socket = tmp.path().join("relay.sock");
    let sessions = tmp.path().join("neighbours.json");
    std::fs::write(
        &sessions,
        r#"{"version":1,"neighbours":[{"ip":"198.18.1.20","mac":"02:00:00:00:00:20"}]}"#,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_relay-dataplane"))
        .args([
            "run",
            "--port",
            "net_pcap0,ipv4=198.18.0.1/16",
            "--duration",
            "30",
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
            "-l",
            "0",
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
    let mut c = common::ControlClient::connect(&socket);

    let worker = |c: &mut common::ControlClient| {
        c.ask(json!({"version": 1, "op": "stats"}))["result"].clone()
    };
    assert_eq!(
        c.ask(json!({"version": 1, "op": "list_calls"}))["result"],
        json!([])
    );
    std::thread::sleep(Duration::from_millis(100));
    let before = worker(&mut c);
    assert!(
        before["drops"]["unknown_flow"].as_u64().unwrap() > 0,
        "{before}"
    );
    assert_eq!(before["forwarded"], json!(0));

    // Bad requests get clear errors.
    let r = c.ask(json!({"version": 2, "op": "list_calls"}));
    assert_eq!(r["ok"], json!(false));
    assert!(r["error"].as_str().unwrap().contains("unsupported version"));
    let r = c.ask(json!({"version": 1, "op": "add_call", "call": {"id": "x", "media": [{"a": {"local": "203.0.113.1:1"}, "b": {"local": "198.18.0.1:2"}}]}}));
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("not an address of any relay port"),
        "{r}"
    );

    // Add a call: its packets start flowing.
    assert_eq!(
        c.ask(json!({"version": 1, "op": "add_call", "call": call("c1", 30_000, 30_002)}))["ok"],
        json!(true)
    );
    std::thread::sleep(Duration::from_millis(200));
    let s1 = c.ask(json!({"version": 1, "op": "stats", "id": "c1"}))["result"].clone();
    let rx1 = s1["media"][0]["a"]["rx_packets"].as_u64().unwrap();
    assert!(rx1 > 0, "{s1}");
    assert!(worker(&mut c)["forwarded"].as_u64().unwrap() > 0);
    // A second one, then remove the first: it answers its final counters.
    assert_eq!(
        c.ask(json!({"version": 1, "op": "add_call", "call": call("c2", 30_010, 30_012)}))["ok"],
        json!(true)
    );
    assert_eq!(
        c.ask(json!({"version": 1, "op": "add_call", "call": call("c3", 30_010, 30_014)}))["ok"],
        json!(false),
        "port in use"
    );
    std::thread::sleep(Duration::from_millis(200));
    let removed = c.ask(json!({"version": 1, "op": "remove_call", "id": "c1"}));
    assert!(
        removed["result"]["media"][0]["a"]["rx_packets"]
            .as_u64()
            .unwrap()
            >= rx1,
        "{removed}"
    );
    assert_eq!(
        c.ask(json!({"version": 1, "op": "list_calls"}))["result"],
        json!(["c2"])
    );
    let s2a = c.ask(json!({"version": 1, "op": "stats", "id": "c2"}))["result"]["media"][0]["a"]
        ["rx_packets"]
        .as_u64()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let s2b = c.ask(json!({"version": 1, "op": "stats", "id": "c2"}))["result"]["media"][0]["a"]
        ["rx_packets"]
        .as_u64()
        .unwrap();
    assert!(s2b > s2a, "c2 keeps flowing ({s2a} -> {s2b})");
    let map = c.ask(json!({"version": 1, "op": "core_map"}))["result"].clone();
    assert_eq!(map["workers"][0]["ports"][0]["name"], json!("net_pcap0"));

    // The same through the session crate's typed client, as the control plane uses it.
    let typed = &mut c.0;
    let spec: CallSpec = serde_json::from_value(call("c4", 30_000, 30_006)).unwrap();
    typed.add_call(&spec).unwrap();
    assert_eq!(typed.list_calls().unwrap(), ["c2", "c4"]);
    let refused = typed.add_call(&spec).unwrap_err();
    assert!(
        matches!(&refused, ClientError::Refused(r) if r.contains("already exists")),
        "{refused}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(typed.call_stats("c4").unwrap().media[0].a.rx_packets > 0);
    let totals = typed.worker_stats().unwrap();
    assert_eq!(totals.workers.as_ref().map(Vec::len), Some(1));
    assert!(
        totals.forwarded > 0 && totals.drops["unknown_flow"] > 0,
        "{totals:?}"
    );
    let core_map = typed.core_map().unwrap();
    assert_eq!(core_map.workers[0].ports[0].steering, Steering::Single);
    let last = typed.remove_call("c4").unwrap();
    assert_eq!(last.id, "c4");
    assert!(last.media[0].b.tx_packets > 0, "{last:?}");
    assert!(matches!(
        typed.call_stats("c4"),
        Err(ClientError::Refused(r)) if r == "no call c4"
    ));

    // SIGTERM: graceful stop with final counters.
    let (status, out) = common::stop_by_signal(&mut child, "-TERM");
    assert!(status.success(), "{out}");
    assert!(out.contains("final counters:"), "{out}");
    assert!(!socket.exists(), "socket removed at exit");
}
