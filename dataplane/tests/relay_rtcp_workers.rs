//! RTP and RTCP of every call reach the worker that owns the call, with two workers sharing a
//! port by software dispatch (`net_pcap`, a receive queue each): SRTP->SRTP, SRTP->RTP and
//! RTP->SRTP calls, RTCP multiplexed and on port + 1, both directions, IPv4, IPv6 and
//! IPv4<->IPv6 legs. Every packet comes out, and libsrtp decrypts it with the outbound key of
//! the leg it leaves on. Before the RSS key kept `p` and `p + 1` together, every RTCP packet on
//! port + 1 was dropped as `unknown_flow` on the worker that did not own its call.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use relay_bench::libsrtp::{self, Op};
use relay_bench::rtp::{rtcp_packet, rtp_packet, RtpShape};
use relay_dataplane::rss::{queue_for_port, SOFTWARE_RETA_SIZE};
use relay_dataplane::wire::{self, L2Out};
use relay_srtp::{MasterKey, SdesKey, Suite};
use serde_json::{json, Value};

const RTP_PER_STREAM: usize = 12;
const RTCP_PER_STREAM: usize = 4;
const RELAY_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const A_PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const B_PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x20];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    SrtpToSrtp,
    SrtpToRtp,
    RtpToSrtp,
}

/// One side of a call: the relay's local address, the peer's, and the keys of what the peer
/// sends (`receive`) and what the relay sends it (`send`).
struct Side {
    local: SocketAddr,
    peer: SocketAddr,
    peer_mac: [u8; 6],
    receive: Option<SdesKey>,
    send: Option<SdesKey>,
}

struct Call {
    id: String,
    mode: Mode,
    port_plus_one: bool,
    sides: [Side; 2],
    /// The input file (receive queue, so receiving worker) its frames go to.
    queue: usize,
}

fn key(suite: Option<Suite>) -> Option<SdesKey> {
    suite.map(|s| SdesKey::new(MasterKey::random(s).unwrap()))
}

fn crypto(k: &Option<SdesKey>) -> Value {
    match k {
        Some(k) => json!({"suite": k.master.suite().name(), "key": k.to_inline()}),
        None => Value::Null,
    }
}

fn plus_one(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip(), a.port() + 1)
}

fn frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: SocketAddr,
    dst: SocketAddr,
    p: &[u8],
) -> Vec<u8> {
    let mut buf = vec![0u8; 128 + p.len()];
    buf[64..64 + p.len()].copy_from_slice(p);
    let l2 = L2Out {
        src: src_mac,
        dst: dst_mac,
        vlan: None,
    };
    let n = wire::emit_udp(&mut buf, 64, p.len(), &l2, src, dst).expect("room for headers");
    buf.truncate(n);
    buf
}

/// Protects `plain` with `key` through libsrtp (RTCP if `rtcp`), or leaves it plain.
fn protect(key: &Option<SdesKey>, rtcp: bool, plain: &[Vec<u8>]) -> Vec<Vec<u8>> {
    match key {
        Some(k) => libsrtp::run(Op::Protect, rtcp, k, plain)
            .unwrap()
            .into_iter()
            .map(|o| {
                assert_eq!(o.status, 0);
                o.packet
            })
            .collect(),
        None => plain.to_vec(),
    }
}

#[test]
fn rtp_and_rtcp_of_every_call_reach_its_worker() {
    let tmp = tempfile::tempdir().unwrap();
    let v4 = |host: u8| -> IpAddr { format!("198.18.1.{host}").parse().unwrap() };
    let v6 = |host: u8| -> IpAddr { format!("2001:2::{host:x}").parse().unwrap() };
    let relay_v4: IpAddr = "198.18.0.1".parse().unwrap();
    let relay_v6: IpAddr = "2001:2::1".parse().unwrap();

    // Per worker, even local ports p whose p + 2 lands on the same worker (each call takes p
    // and p + 2 for its legs, p + 1 and p + 3 for their RTCP).
    let mut free: Vec<Vec<u16>> = (0..2)
        .map(|w| common::ports_on_worker(w, 12, 20_000))
        .collect();
    let mut calls = Vec::new();
    let modes = [Mode::SrtpToSrtp, Mode::SrtpToRtp, Mode::RtpToSrtp];
    let families = [(false, false), (true, true), (false, true)];
    for (mi, &mode) in modes.iter().enumerate() {
        for port_plus_one in [false, true] {
            for (fi, &(a6, b6)) in families.iter().enumerate() {
                let n = calls.len();
                let owner = n % 2;
                let p = free[owner].remove(0);
                let (a_suite, b_suite) = match mode {
                    Mode::SrtpToSrtp => {
                        (Some(Suite::AesCm128HmacSha1_80), Some(Suite::AeadAes128Gcm))
                    }
                    Mode::SrtpToRtp => (Some(Suite::AesCm128HmacSha1_32), None),
                    Mode::RtpToSrtp => (None, Some(Suite::AesCm128HmacSha1_80)),
                };
                let side = |six: bool, port: u16, host: u8, mac, suite| Side {
                    local: SocketAddr::new(if six { relay_v6 } else { relay_v4 }, port),
                    peer: SocketAddr::new(
                        if six { v6(host) } else { v4(host) },
                        5004 + 2 * host as u16,
                    ),
                    peer_mac: mac,
                    receive: key(suite),
                    send: key(suite),
                };
                calls.push(Call {
                    id: format!("call-{n}"),
                    mode,
                    port_plus_one,
                    sides: [
                        side(a6, p, 0x10, A_PEER_MAC, a_suite),
                        side(b6, p + 2, 0x20, B_PEER_MAC, b_suite),
                    ],
                    // Half the calls arrive on their owner's queue, half are handed over.
                    queue: (mi + fi + n / 2) % 2,
                });
            }
        }
    }
    for c in &calls {
        for s in &c.sides {
            assert_eq!(
                queue_for_port(s.local.port() + 1, SOFTWARE_RETA_SIZE, 2),
                queue_for_port(s.local.port(), SOFTWARE_RETA_SIZE, 2),
                "the RSS key keeps an even port and its RTCP port together"
            );
        }
    }

    // What each side sends, per call: RTP and RTCP, to the relay's RTP port, or its RTCP
    // port + 1; and what must come out at the far side, in plain.
    let mut inputs: Vec<Vec<Vec<u8>>> = vec![Vec::new(), Vec::new()];
    // (call, arriving side, rtcp) -> plain packets sent.
    let mut sent: HashMap<(usize, usize, bool), Vec<Vec<u8>>> = HashMap::new();
    let mut per_call: Vec<Vec<Vec<u8>>> = Vec::new();
    for (ci, c) in calls.iter().enumerate() {
        let mut frames = Vec::new();
        for (si, s) in c.sides.iter().enumerate() {
            let ssrc = 0x5000 + (ci as u32) * 4 + si as u32;
            let rtp: Vec<Vec<u8>> = (0..RTP_PER_STREAM)
                .map(|k| rtp_packet(1000 + k as u16, ssrc, RtpShape::default()))
                .collect();
            let rtcp: Vec<Vec<u8>> = (0..RTCP_PER_STREAM as u32)
                .map(|k| rtcp_packet(k + 1, ssrc, (k % 3) as u8))
                .collect();
            let (rtcp_from, rtcp_to) = if c.port_plus_one {
                (plus_one(s.peer), plus_one(s.local))
            } else {
                (s.peer, s.local)
            };
            let wire_rtp = protect(&s.receive, false, &rtp);
            let wire_rtcp = protect(&s.receive, true, &rtcp);
            for (k, p) in wire_rtp.iter().enumerate() {
                frames.push(frame(s.peer_mac, RELAY_MAC, s.peer, s.local, p));
                if k % 3 == 2 {
                    let r = &wire_rtcp[k / 3];
                    frames.push(frame(s.peer_mac, RELAY_MAC, rtcp_from, rtcp_to, r));
                }
            }
            sent.insert((ci, si, false), rtp);
            sent.insert((ci, si, true), rtcp);
        }
        per_call.push(frames);
    }
    // Interleave the calls' frames in each input file, as real traffic arrives.
    for k in 0.. {
        let mut any = false;
        for (c, frames) in calls.iter().zip(&per_call) {
            if let Some(f) = frames.get(k) {
                inputs[c.queue].push(f.clone());
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    let total: usize = per_call.iter().map(Vec::len).sum();

    let input_paths: Vec<_> = (0..2)
        .map(|q| tmp.path().join(format!("in{q}.pcap")))
        .collect();
    for (path, frames) in input_paths.iter().zip(&inputs) {
        common::write_pcap(path, frames);
    }
    let sessions = json!({
        "version": 1,
        "neighbours": [
            {"ip": "198.18.1.16", "mac": "02:00:00:00:00:10"},
            {"ip": "198.18.1.32", "mac": "02:00:00:00:00:20"},
            {"ip": "2001:2::10", "mac": "02:00:00:00:00:10"},
            {"ip": "2001:2::20", "mac": "02:00:00:00:00:20"},
        ],
        "calls": calls.iter().map(|c| json!({
            "id": c.id,
            "media": [{
                "rtcp": if c.port_plus_one { "port_plus_one" } else { "mux" },
                "a": {"local": c.sides[0].local.to_string(), "remote": c.sides[0].peer.to_string(),
                      "receive": crypto(&c.sides[0].receive), "send": crypto(&c.sides[0].send)},
                "b": {"local": c.sides[1].local.to_string(), "remote": c.sides[1].peer.to_string(),
                      "receive": crypto(&c.sides[1].receive), "send": crypto(&c.sides[1].send)},
            }],
        })).collect::<Vec<_>>(),
    });
    let sessions_path = tmp.path().join("sessions.json");
    std::fs::write(&sessions_path, serde_json::to_vec(&sessions).unwrap()).unwrap();
    std::fs::set_permissions(&sessions_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let stats_path = tmp.path().join("stats.json");
    let outputs: Vec<_> = (0..2)
        .map(|q| tmp.path().join(format!("out{q}.pcap")))
        .collect();

    let out = Command::new(env!("CARGO_BIN_EXE_relay-dataplane"))
        .args([
            "run",
            "--port",
            "net_pcap0,ipv4=198.18.0.1/16,ipv6=2001:2::1/64,mac=02:00:00:00:00:01",
            "--idle-exit-ms",
            "1500",
            "--duration",
            "60",
        ])
        .arg("--sessions")
        .arg(&sessions_path)
        .arg("--stats-json")
        .arg(&stats_path)
        .arg("--")
        .args(common::THREE_LCORES_ON_CPU_0)
        .arg(format!(
            "--vdev=net_pcap0,rx_pcap={},rx_pcap={},tx_pcap={},tx_pcap={}",
            input_paths[0].display(),
            input_paths[1].display(),
            outputs[0].display(),
            outputs[1].display()
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("software dispatch"), "{text}");

    // Sort what came out by stream: the local address it left from says the call and side,
    // the port (RTCP on p + 1) or the packet type (multiplexed) says RTP or RTCP.
    let mut by_local: HashMap<SocketAddr, (usize, usize)> = HashMap::new();
    for (ci, c) in calls.iter().enumerate() {
        for (si, s) in c.sides.iter().enumerate() {
            by_local.insert(s.local, (ci, si));
            by_local.insert(plus_one(s.local), (ci, si));
        }
    }
    // (call, leaving side, rtcp) -> packets as they left.
    let mut got: HashMap<(usize, usize, bool), Vec<Vec<u8>>> = HashMap::new();
    for data in outputs.iter().flat_map(|o| common::read_pcap(o)) {
        let u = wire::parse_udp(&data).expect("relay output is valid UDP");
        assert!(wire::udp_checksum_ok(&data, &u));
        let &(ci, si) = by_local
            .get(&u.src)
            .expect("sent from a call's local address");
        let c = &calls[ci];
        let s = &c.sides[si];
        let payload = data[u.payload..u.payload + u.payload_len].to_vec();
        let rtcp = if c.port_plus_one {
            u.src.port() == s.local.port() + 1
        } else {
            (192..=223).contains(&payload[1])
        };
        let to = if rtcp && c.port_plus_one {
            plus_one(s.peer)
        } else {
            s.peer
        };
        assert_eq!(u.dst, to, "{}: sent to the side's peer", c.id);
        assert_eq!(&data[..6], &s.peer_mac);
        got.entry((ci, si, rtcp)).or_default().push(payload);
    }
    for (ci, c) in calls.iter().enumerate() {
        for (si, s) in c.sides.iter().enumerate() {
            for rtcp in [false, true] {
                // What leaves towards side si is what the other side sent.
                let expected = &sent[&(ci, 1 - si, rtcp)];
                let what = format!(
                    "{} ({:?}, {}, {} -> {}, {})",
                    c.id,
                    c.mode,
                    if c.port_plus_one {
                        "port_plus_one"
                    } else {
                        "mux"
                    },
                    c.sides[1 - si].local,
                    s.local,
                    if rtcp { "RTCP" } else { "RTP" }
                );
                let packets = got.remove(&(ci, si, rtcp)).unwrap_or_default();
                assert_eq!(packets.len(), expected.len(), "{what}: packets out");
                let plain: Vec<Vec<u8>> = match &s.send {
                    Some(k) => libsrtp::run(Op::Unprotect, rtcp, k, &packets)
                        .unwrap()
                        .into_iter()
                        .map(|o| {
                            assert_eq!(o.status, 0, "{what}: libsrtp could not unprotect");
                            o.packet
                        })
                        .collect(),
                    None => packets,
                };
                assert_eq!(&plain, expected, "{what}: content");
            }
        }
    }

    let stats: Value = serde_json::from_slice(&std::fs::read(&stats_path).unwrap()).unwrap();
    assert_eq!(stats["worker"]["forwarded"], json!(total), "{stats}");
    assert_eq!(stats["worker"]["drops"], json!({}), "{stats}");
    for w in 0..2 {
        let forwarded = stats["workers"][w]["forwarded"].as_u64().unwrap();
        assert!(forwarded > 0, "worker {w} owns calls: {stats}");
    }
    let handed: u64 = (0..2)
        .map(|w| stats["workers"][w]["handed_over"].as_u64().unwrap())
        .sum();
    assert!(
        handed > 0,
        "half the calls arrive at the other worker: {stats}"
    );
}
