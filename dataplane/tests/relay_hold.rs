//! On real DPDK (`net_pcap`, one worker): a call's packets towards a peer whose MAC the relay
//! does not know yet are held while it is asked for, and sent, in order, when it answers; those
//! towards a peer that never answers are given up after a second and counted.

mod common;

use std::process::Command;

use relay_dataplane::wire::{self, Arp};
use serde_json::{json, Value};

const RELAY_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const CALLEE_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x20];
/// Frames to the answering callee before its answer: more than one receive burst (32), so
/// some are held across bursts whatever the burst boundaries.
const BEFORE_ANSWER: u16 = 40;
const AFTER_ANSWER: u16 = 10;
/// Frames to the callee that never answers.
const TO_SILENT: u16 = 5;

#[test]
fn packets_wait_for_the_next_hops_answer_and_are_given_up_when_none_comes() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in.pcap"), tmp.path().join("out.pcap"));
    // The callee answers the relay's ARP request only after 40 of its call's packets came in.
    let mut answer = vec![0u8; 64];
    let n = wire::write_arp(
        &mut answer,
        RELAY_MAC,
        None,
        &Arp {
            op: 2,
            sha: CALLEE_MAC,
            spa: "198.18.1.20".parse().unwrap(),
            tha: RELAY_MAC,
            tpa: "198.18.0.1".parse().unwrap(),
        },
    )
    .unwrap();
    answer.truncate(n);
    let mut frames: Vec<Vec<u8>> = (0..BEFORE_ANSWER)
        .map(|seq| common::caller_rtp_frame(20_000, seq))
        .collect();
    frames.extend((0..TO_SILENT).map(|seq| common::caller_rtp_frame(20_010, seq)));
    frames.push(answer);
    frames.extend(
        (BEFORE_ANSWER..BEFORE_ANSWER + AFTER_ANSWER)
            .map(|seq| common::caller_rtp_frame(20_000, seq)),
    );
    common::write_pcap(&input, &frames);
    let call = |id: &str, p: u16, callee: &str| json!({"id": id, "media": [{"a": {"local": format!("198.18.0.1:{p}")}, "b": {"local": format!("198.18.0.1:{}", p + 2), "remote": callee}}]});
    let sessions = tmp.path().join("sessions.json");
    let calls = [
        call("answers", 20_000, "198.18.1.20:6000"),
        call("silent", 20_010, "198.18.1.30:6000"),
    ];
    std::fs::write(&sessions, json!({"version": 1, "calls": calls}).to_string()).unwrap();
    let stats = tmp.path().join("stats.json");
    // Idle for 1.5 s after the last frame: longer than a frame is held.
    let out = Command::new(env!("CARGO_BIN_EXE_relay-dataplane"))
        .args([
            "run",
            "--port",
            "net_pcap0,ipv4=198.18.0.1/16,mac=02:00:00:00:00:01",
            "--idle-exit-ms",
            "1500",
            "--duration",
            "30",
        ])
        .arg("--sessions")
        .arg(&sessions)
        .arg("--stats-json")
        .arg(&stats)
        .arg("--")
        .args(common::eal_args(&[&common::pcap_vdev(&input, &output)]))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent = common::read_pcap(&output);
    // Every packet of the answering callee's call went out, to its MAC, in the order it came.
    let to_callee: Vec<u16> = sent
        .iter()
        .filter_map(|f| {
            let u = wire::parse_udp(f).ok()?;
            (u.dst == "198.18.1.20:6000".parse().unwrap()).then(|| {
                assert_eq!(f[..6], CALLEE_MAC, "completed with the answer's MAC");
                assert!(wire::udp_checksum_ok(f, &u));
                u16::from_be_bytes([f[u.payload + 2], f[u.payload + 3]])
            })
        })
        .collect();
    let want: Vec<u16> = (0..BEFORE_ANSWER + AFTER_ANSWER).collect();
    assert_eq!(to_callee, want, "{stdout}");
    // Nothing went to the silent one; it was asked for.
    let to_silent = sent
        .iter()
        .filter(|f| {
            wire::parse_udp(f)
                .is_ok_and(|u| u.dst.ip() == "198.18.1.30".parse::<std::net::IpAddr>().unwrap())
        })
        .count();
    assert_eq!(to_silent, 0);
    let asked_for_silent = sent
        .iter()
        .filter(|f| {
            let Ok(l2) = wire::parse_l2(f) else {
                return false;
            };
            wire::parse_arp(f, &l2).is_ok_and(|a| {
                a.op == 1 && a.tpa == "198.18.1.30".parse::<std::net::Ipv4Addr>().unwrap()
            })
        })
        .count();
    assert!(asked_for_silent >= 1, "{stdout}");
    let stats: Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    let w = &stats["worker"];
    let held = w["held"].as_u64().unwrap();
    // At least the first receive burst's frames to the callee waited, and all of the silent
    // one's; those to the callee after its answer did not.
    assert!(
        (32 + u64::from(TO_SILENT)..=u64::from(BEFORE_ANSWER + TO_SILENT)).contains(&held),
        "{stats}"
    );
    assert_eq!(
        w["forwarded"].as_u64().unwrap(),
        u64::from(BEFORE_ANSWER + AFTER_ANSWER),
        "{stats}"
    );
    assert_eq!(
        w["drops"]["neighbour_unresolved"],
        json!(TO_SILENT),
        "the silent callee's frames, given up: {stats}"
    );
}
