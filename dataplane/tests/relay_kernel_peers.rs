//! The relay between Linux's own UDP stack on both sides: a network namespace this test
//! creates, a veth pair into it, `net_af_packet` with two queue pairs on the outer end (the
//! kernel spreads flows over them by hash, no RSS: so two workers share the port by software
//! dispatch, each receiving on its queue), and kernel sockets as caller and callee. The relay
//! answers the kernel's ARP for its address, resolves the callee by ARP, and the callee's
//! kernel checks every IPv4 and UDP checksum the relay wrote (it drops bad ones), so this
//! also checks our header arithmetic against an independent implementation.
//!
//! Needs root and iproute2; skipped (with a message) otherwise. Addresses in 198.18.0.0/15
//! only; the namespace, the veth pair and the relay process are removed however it ends.

mod common;

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const RELAY: &str = "198.18.7.1";
const CALLER: &str = "198.18.7.2";
const CALLEE: &str = "198.18.7.3";
const PACKETS: u16 = 200;

/// The kernel side, run by the test below inside the namespace (the test binary again, with
/// `RELAY_KERNEL_PEER` set): sends every call's packets from the caller's socket, receives at
/// the callee's socket, and prints how many arrived intact per call.
#[test]
fn kernel_peer() {
    let Ok(ports) = std::env::var("RELAY_KERNEL_PEER") else {
        return;
    };
    let ports: Vec<u16> = ports.split(',').map(|p| p.parse().unwrap()).collect();
    let caller = UdpSocket::bind((CALLER, 5004)).unwrap();
    let callee = UdpSocket::bind((CALLEE, 6000)).unwrap();
    callee
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut intact: std::collections::BTreeMap<u16, u64> = ports.iter().map(|&p| (p, 0)).collect();
    let mut wrong = 0u64;
    let mut buf = [0u8; 2048];
    let mut drain = |until: Instant| {
        while Instant::now() < until {
            let Ok((n, from)) = callee.recv_from(&mut buf) else {
                continue;
            };
            // The relay sends call `a`'s media from its port a + 2.
            let port = from.port().wrapping_sub(2);
            let seq = u16::from_be_bytes([buf[2], buf[3]]);
            match intact.get_mut(&port) {
                Some(c) if buf[..n] == common::peer_rtp(port, seq)[..] => *c += 1,
                _ => wrong += 1,
            }
        }
    };
    for seq in 0..PACKETS {
        for &p in &ports {
            caller
                .send_to(&common::peer_rtp(p, seq), (RELAY, p))
                .unwrap();
        }
        drain(Instant::now() + Duration::from_millis(2));
    }
    drain(Instant::now() + Duration::from_millis(500));
    println!("PEER {}", json!({"intact": intact, "wrong": wrong}));
}

#[test]
fn kernel_udp_peers_through_two_workers() {
    if std::env::var("RELAY_KERNEL_PEER").is_ok() {
        return;
    }
    if !common::can_make_namespaces() {
        eprintln!("skipped: needs root and iproute2 (network namespace and veth pair)");
        return;
    }
    let id = std::process::id();
    let ns = common::Netns::new(format!("rlyk{id}"));
    let (outer, inner) = (format!("rlka{id}"), format!("rlkb{id}"));
    for cmd in [
        vec![
            "ip", "link", "add", &outer, "type", "veth", "peer", "name", &inner,
        ],
        vec!["ip", "link", "set", &inner, "netns", &ns.name],
        vec![
            "ip",
            "-n",
            &ns.name,
            "addr",
            "add",
            "198.18.7.2/24",
            "dev",
            &inner,
        ],
        vec![
            "ip",
            "-n",
            &ns.name,
            "addr",
            "add",
            "198.18.7.3/24",
            "dev",
            &inner,
        ],
        vec!["ip", "-n", &ns.name, "link", "set", &inner, "up"],
        vec!["ip", "link", "set", &outer, "up"],
    ] {
        assert!(common::sh(&cmd), "{cmd:?}");
    }
    // The kernel would leave UDP checksums to an offload the veth never performs.
    common::sh(&[
        "ip", "netns", "exec", &ns.name, "ethtool", "-K", &inner, "tx", "off",
    ]);

    let tmp = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = common::ports_on_worker(0, 2, 24_000)
        .into_iter()
        .chain(common::ports_on_worker(1, 2, 24_000))
        .collect();
    let calls: Vec<Value> = ports
        .iter()
        .map(|&p| {
            json!({"id": format!("k{p}"), "media": [{
            "a": {"local": format!("{RELAY}:{p}")},
            "b": {"local": format!("{RELAY}:{}", p + 2), "remote": format!("{CALLEE}:6000")}}]})
        })
        .collect();
    let sessions = tmp.path().join("sessions.json");
    std::fs::write(&sessions, json!({"version": 1, "calls": calls}).to_string()).unwrap();
    let (socket, stats) = (tmp.path().join("relay.sock"), tmp.path().join("stats.json"));
    let mut relay = common::KillOnDrop(Some(
        Command::new(env!("CARGO_BIN_EXE_relay-dataplane"))
            .args(["run", "--port", &format!("net_af_packet0,ipv4={RELAY}/24")])
            .arg("--sessions")
            .arg(&sessions)
            .arg("--control")
            .arg(&socket)
            .arg("--stats-json")
            .arg(&stats)
            .args(["--duration", "60", "--"])
            .args([
                "--no-huge",
                "-m",
                "512",
                "--no-pci",
                "--no-shconf",
                "--log-level=error",
                "--lcores=0@0,1@0,2@0",
                &format!("--vdev=net_af_packet0,iface={outer},qpairs=2"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    common::wait_for_control_socket(&mut relay, &socket);

    let ports_list = ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let result = common::run_peer_in(&ns, "kernel_peer", ("RELAY_KERNEL_PEER", &ports_list));

    let mut child = relay.0.take().unwrap();
    let (status, out) = common::stop_by_signal(&mut child, "-TERM");
    assert!(status.success(), "{out}");
    assert!(
        out.contains("software dispatch: workers 0,1 receive and hand packets"),
        "{out}"
    );
    let stats: Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();

    // Every packet reached the callee's socket intact (so with checksums Linux accepts).
    assert_eq!(result["wrong"], json!(0), "{result}");
    for &p in &ports {
        let got = result["intact"][p.to_string()].as_u64().unwrap();
        assert!(
            got >= u64::from(PACKETS) * 9 / 10,
            "call k{p}: {got} of {PACKETS} arrived: {result} {stats}"
        );
    }
    // Each worker relayed its own calls, whichever queue the kernel put their packets on.
    let workers = stats["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{stats}");
    for w in workers {
        assert!(
            w["forwarded"].as_u64().unwrap() >= 2 * u64::from(PACKETS) * 9 / 10,
            "{stats}"
        );
    }
    // The relay asked for the callee when the calls were installed, so no packet waited for
    // ARP (the kernel learnt the relay's MAC from that request, or asked and was answered).
    assert!(
        stats["worker"]["drops"]
            .get("neighbour_unresolved")
            .is_none(),
        "{stats}"
    );
}
