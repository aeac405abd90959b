//! The relay as a user runs it, on real DPDK (`net_pcap`): SRTP protected by libsrtp with each
//! call's inbound key goes in from a pcap file, and what comes out is decrypted by libsrtp with
//! the outbound keys: every mode (SRTP->SRTP, SRTP->RTP, RTP->SRTP, RTP->RTP) and every suite,
//! each stream crossing the sequence number wrap. Duplicates, forgeries, truncated frames and
//! packets for unknown flows do not come out and are counted under their reason.

mod common;

use std::os::unix::fs::PermissionsExt;

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::process::Command;

use relay_bench::libsrtp::{self, Op};
use relay_bench::rtp::{rtp_packet, RtpShape};
use relay_dataplane::wire::{self, write_udp, UdpEndpoints};
use relay_srtp::{MasterKey, SdesKey, Suite};
use serde_json::{json, Value};

const PACKETS_PER_CALL: usize = 24;
const FIRST_SEQ: u16 = 65_524; // crosses 65535 -> 0 half way
const RELAY_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];

struct Call {
    id: String,
    a_port: u16,
    b_port: u16,
    inbound: Option<SdesKey>,
    outbound: Option<SdesKey>,
    plain: Vec<Vec<u8>>,
}

fn frame(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 14 + 28 + payload.len()];
    let ends = UdpEndpoints {
        src_mac: PEER_MAC,
        dst_mac: RELAY_MAC,
        vlan: None,
        src: src.into(),
        dst: dst.into(),
    };
    let n = write_udp(&mut buf, &ends, payload).unwrap();
    buf.truncate(n);
    buf
}

fn crypto(k: &Option<SdesKey>) -> Value {
    match k {
        Some(k) => json!({"suite": k.master.suite().name(), "key": k.to_inline()}),
        None => Value::Null,
    }
}

#[test]
fn every_mode_and_suite_through_net_pcap() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in.pcap"), tmp.path().join("out.pcap"));
    let caller: SocketAddrV4 = "198.18.1.10:5004".parse().unwrap();
    let callee: SocketAddrV4 = "198.18.1.20:6000".parse().unwrap();
    let relay_ip = "198.18.0.1".parse().unwrap();

    // One call per (inbound, outbound) pair of {plain RTP, every suite}.
    let choices: Vec<Option<Suite>> = std::iter::once(None)
        .chain(Suite::ALL.into_iter().map(Some))
        .collect();
    let mut calls = Vec::new();
    for (i, &sin) in choices.iter().enumerate() {
        for (j, &sout) in choices.iter().enumerate() {
            let n = (i * choices.len() + j) as u16;
            let key = |s: Option<Suite>| s.map(|s| SdesKey::new(MasterKey::random(s).unwrap()));
            let ssrc = 0x1000 + u32::from(n);
            calls.push(Call {
                id: format!("call-{n}"),
                a_port: 20_000 + 4 * n,
                b_port: 20_002 + 4 * n,
                inbound: key(sin),
                outbound: key(sout),
                plain: (0..PACKETS_PER_CALL)
                    .map(|k| {
                        rtp_packet(
                            FIRST_SEQ.wrapping_add(k as u16),
                            ssrc,
                            RtpShape {
                                payload: 160,
                                csrcs: (k % 2) as u8,
                                ..RtpShape::default()
                            },
                        )
                    })
                    .collect(),
            });
        }
    }

    // What the callers send: libsrtp-protected (or plain) packets, interleaved across calls,
    // with bad packets mixed in.
    let mut wire_packets: Vec<Vec<Vec<u8>>> = Vec::new();
    for c in &calls {
        wire_packets.push(match &c.inbound {
            Some(k) => libsrtp::run(Op::Protect, false, k, &c.plain)
                .unwrap()
                .into_iter()
                .map(|o| {
                    assert_eq!(o.status, 0);
                    o.packet
                })
                .collect(),
            None => c.plain.clone(),
        });
    }
    let mut frames = Vec::new();
    let (mut duplicates, mut forgeries, mut truncated, mut unknown) = (0u64, 0u64, 0u64, 0u64);
    for k in 0..PACKETS_PER_CALL {
        for (c, packets) in calls.iter().zip(&wire_packets) {
            let dst = SocketAddrV4::new(relay_ip, c.a_port);
            let f = frame(caller, dst, &packets[k]);
            frames.push(f.clone());
            if c.inbound.is_some() && k % 7 == 3 {
                frames.push(f.clone()); // a duplicate: replay
                duplicates += 1;
                // A forgery of the next packet, ahead of it: its tag fails, and the genuine
                // packet that follows is still accepted.
                let mut p = packets[k + 1].clone();
                let last = p.len() - 1;
                p[last] ^= 0x01;
                frames.push(frame(caller, dst, &p));
                forgeries += 1;
            }
            if k == 5 {
                frames.push(f[..f.len() - 9].to_vec()); // cut short: IP length lies
                truncated += 1;
                frames.push(frame(caller, SocketAddrV4::new(relay_ip, 9), &packets[k])); // no such flow
                unknown += 1;
            }
        }
    }
    common::write_pcap(&input, &frames);

    let sessions = json!({
        "version": 1,
        "neighbours": [{"ip": "198.18.1.20", "mac": "02:00:00:00:00:20"}, {"ip": "198.18.1.10", "mac": "02:00:00:00:00:10"}],
        "calls": calls.iter().map(|c| json!({
            "id": c.id,
            "media": [{
                "rtcp": "mux",
                "a": {"local": format!("198.18.0.1:{}", c.a_port), "remote": caller.to_string(), "receive": crypto(&c.inbound)},
                "b": {"local": format!("198.18.0.1:{}", c.b_port), "remote": callee.to_string(), "send": crypto(&c.outbound)},
            }],
        })).collect::<Vec<_>>(),
    });
    let sessions_path = tmp.path().join("sessions.json");
    std::fs::write(&sessions_path, serde_json::to_vec(&sessions).unwrap()).unwrap();
    // It holds keys: owner-only, or the relay refuses it (tests/relay_workers.rs).
    std::fs::set_permissions(&sessions_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let stats_path = tmp.path().join("stats.json");

    let out = Command::new(env!("CARGO_BIN_EXE_relay-dataplane"))
        .args([
            "run",
            "--port",
            "net_pcap0,ipv4=198.18.0.1/16,mac=02:00:00:00:00:01",
            "--idle-exit-ms",
            "700",
            "--duration",
            "60",
        ])
        .arg("--sessions")
        .arg(&sessions_path)
        .arg("--stats-json")
        .arg(&stats_path)
        .arg("--")
        .args(common::eal_args(&[&common::pcap_vdev(&input, &output)]))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Sort what came out by call (the relay sends from leg b's local port).
    let mut by_call: HashMap<u16, Vec<Vec<u8>>> = HashMap::new();
    for data in common::read_pcap(&output) {
        let u = wire::parse_udp(&data).expect("relay output is valid UDP/IPv4");
        assert!(u.src.is_ipv4());
        assert!(wire::udp_checksum_ok(&data, &u));
        assert_eq!(u.dst, callee.into());
        assert_eq!(wire::parse_l2(&data).unwrap().src, RELAY_MAC);
        assert_eq!(wire::parse_l2(&data).unwrap().dst, [2, 0, 0, 0, 0, 0x20]);
        by_call
            .entry(u.src.port())
            .or_default()
            .push(data[u.payload..u.payload + u.payload_len].to_vec());
    }
    for c in &calls {
        let got = by_call.remove(&c.b_port).unwrap_or_default();
        assert_eq!(
            got.len(),
            PACKETS_PER_CALL,
            "{}: {:?} -> {:?}",
            c.id,
            c.inbound.as_ref().map(|k| k.master.suite()),
            c.outbound.as_ref().map(|k| k.master.suite())
        );
        let plain: Vec<Vec<u8>> = match &c.outbound {
            Some(k) => libsrtp::run(Op::Unprotect, false, k, &got)
                .unwrap()
                .into_iter()
                .map(|o| {
                    assert_eq!(
                        o.status, 0,
                        "{}: libsrtp could not unprotect the relay's output",
                        c.id
                    );
                    o.packet
                })
                .collect(),
            None => got,
        };
        assert_eq!(plain, c.plain, "{}: payloads differ", c.id);
    }
    assert!(
        by_call.is_empty(),
        "unexpected output from ports {:?}",
        by_call.keys()
    );

    // The bad packets are counted under the right reasons.
    let stats: Value = serde_json::from_slice(&std::fs::read(&stats_path).unwrap()).unwrap();
    let drops = &stats["worker"]["drops"];
    assert_eq!(drops["replayed"], json!(duplicates), "{stats}");
    assert_eq!(drops["auth_failed"], json!(forgeries), "{stats}");
    assert_eq!(drops["truncated"], json!(truncated), "{stats}");
    assert_eq!(drops["unknown_flow"], json!(unknown), "{stats}");
    assert_eq!(
        stats["worker"]["forwarded"],
        json!(calls.len() * PACKETS_PER_CALL)
    );
    // Per call: loss 0 across the wrap, every packet counted.
    let first = stats["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "call-0")
        .unwrap();
    assert_eq!(
        first["media"][0]["a"]["rx_packets"],
        json!(PACKETS_PER_CALL)
    );
    assert_eq!(first["media"][0]["a"]["rtp_lost"], json!(0));
}
