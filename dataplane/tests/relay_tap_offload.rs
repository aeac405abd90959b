//! UDP checksum offload through a real driver: the relay runs inside a network namespace
//! this test creates, on `net_tap` (whose driver offers `RTE_ETH_TX_OFFLOAD_UDP_CKSUM`,
//! completing the checksum from the mbuf's offload fields, and `RTE_ETH_RX_OFFLOAD_UDP_CKSUM`,
//! flagging what it received; the plain-to-SRTP call then relies on the flag instead of its
//! own check), with Linux UDP sockets in the same
//! namespace as caller and callee. Four calls, one per mode (SRTP->SRTP, SRTP->RTP, RTP->SRTP,
//! RTP->RTP): the callee's kernel drops any datagram whose UDP checksum is wrong, and the
//! callee decrypts SRTP with its own key, so every packet that arrives intact proves the
//! offload request (flags, header lengths) and the relay's crypto right. The checksum field's
//! pseudo-header sum, which this driver recomputes itself, is checked by
//! `wire::tx_header::tests::offloaded_checksum_completes_to_the_software_one`.
//!
//! Needs root, iproute2 and `/dev/net/tun`; skipped (with a message) otherwise. Addresses in 198.18.0.0/15
//! only; the namespace (and the tap interface in it) and the relay are removed however it
//! ends.

mod common;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use relay_srtp::{Context, ContextConfig, MasterKey, SdesKey, Suite};
use serde_json::{json, Value};

const RELAY: &str = "198.18.9.1";
const CALLER: &str = "198.18.9.2";
const CALLEE: &str = "198.18.9.3";
const PACKETS: u16 = 200;

/// Each call: its first local port, and whether the caller and the callee speak SRTP.
const CALLS: [(u16, bool, bool); 4] = [
    (30_000, true, true),
    (30_010, true, false),
    (30_020, false, true),
    (30_030, false, false),
];

fn key(seed: u8) -> SdesKey {
    let suite = Suite::AesCm128HmacSha1_80;
    SdesKey::new(MasterKey::new(suite, &[seed; 16], &[seed ^ 0x5a; 14]).expect("lengths"))
}

/// The kernel side, run inside the namespace (this test binary again, with `RELAY_TAP_PEER`
/// set): sends every call's packets from the caller's socket (protected with the caller's key
/// where it speaks SRTP), receives at the callee's (decrypting with the callee's key), prints
/// how many arrived intact per call.
#[test]
fn tap_peer() {
    if std::env::var("RELAY_TAP_PEER").is_err() {
        return;
    }
    let caller = UdpSocket::bind((CALLER, 5004)).unwrap();
    let callee = UdpSocket::bind((CALLEE, 6000)).unwrap();
    callee
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut senders: BTreeMap<u16, Option<Context>> = CALLS
        .iter()
        .map(|&(p, srtp, _)| {
            (
                p,
                srtp.then(|| Context::new(&key(1), ContextConfig::default())),
            )
        })
        .collect();
    let mut receivers: BTreeMap<u16, Option<Context>> = CALLS
        .iter()
        .map(|&(p, _, srtp)| {
            (
                p,
                srtp.then(|| Context::new(&key(2), ContextConfig::default())),
            )
        })
        .collect();
    let mut intact: BTreeMap<u16, u64> = CALLS.iter().map(|&(p, ..)| (p, 0)).collect();
    let mut wrong = 0u64;
    let mut buf = [0u8; 2048];
    let mut drain = |until: Instant| {
        while Instant::now() < until {
            let Ok((n, from)) = callee.recv_from(&mut buf) else {
                continue;
            };
            // The relay sends call `p`'s media from its port p + 2.
            let port = from.port().wrapping_sub(2);
            let Some(ctx) = receivers.get_mut(&port) else {
                wrong += 1;
                continue;
            };
            let len = match ctx {
                Some(ctx) => match ctx.unprotect_rtp(&mut buf[..n]) {
                    Ok(len) => len,
                    Err(_) => {
                        wrong += 1;
                        continue;
                    }
                },
                None => n,
            };
            let seq = u16::from_be_bytes([buf[2], buf[3]]);
            if buf[..len] == common::peer_rtp(port, seq)[..] {
                *intact.get_mut(&port).unwrap() += 1;
            } else {
                wrong += 1;
            }
        }
    };
    for seq in 0..PACKETS {
        for (&p, ctx) in &mut senders {
            let mut b = common::peer_rtp(p, seq);
            if let Some(ctx) = ctx {
                let len = b.len();
                b.resize(len + ctx.srtp_overhead(), 0);
                let n = ctx.protect_rtp(&mut b, len).unwrap();
                b.truncate(n);
            }
            caller.send_to(&b, (RELAY, p)).unwrap();
        }
        drain(Instant::now() + Duration::from_millis(2));
    }
    drain(Instant::now() + Duration::from_millis(500));
    println!("PEER {}", json!({"intact": intact, "wrong": wrong}));
}

#[test]
fn udp_checksums_completed_by_the_tap_driver_pass_the_kernel() {
    if std::env::var("RELAY_TAP_PEER").is_ok() {
        return;
    }
    if !common::can_make_namespaces() || !std::path::Path::new("/dev/net/tun").exists() {
        eprintln!(
            "skipped: needs root, iproute2 and /dev/net/tun (network namespace and tap interface)"
        );
        return;
    }
    let id = std::process::id();
    let ns = common::Netns::new(format!("rlyt{id}"));
    let tap = format!("rlyt{id}");
    let tmp = tempfile::tempdir().unwrap();
    let crypto = |k: SdesKey| json!({"suite": "AES_CM_128_HMAC_SHA1_80", "key": k.to_inline()});
    let calls: Vec<Value> = CALLS
        .iter()
        .map(|&(p, caller_srtp, callee_srtp)| {
            let mut a = json!({"local": format!("{RELAY}:{p}")});
            if caller_srtp {
                a["receive"] = crypto(key(1));
            }
            let mut b =
                json!({"local": format!("{RELAY}:{}", p + 2), "remote": format!("{CALLEE}:6000")});
            if callee_srtp {
                b["send"] = crypto(key(2));
            }
            json!({"id": format!("t{p}"), "media": [{"a": a, "b": b}]})
        })
        .collect();
    let sessions = tmp.path().join("sessions.json");
    std::fs::write(&sessions, json!({"version": 1, "calls": calls}).to_string()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sessions, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (socket, stats) = (tmp.path().join("relay.sock"), tmp.path().join("stats.json"));
    // The relay runs in the namespace, so the driver makes its tap interface there.
    let mut relay = common::KillOnDrop(Some(
        Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(env!("CARGO_BIN_EXE_relay-dataplane"))
            .args(["run", "--port", &format!("net_tap0,ipv4={RELAY}/24")])
            .arg("--sessions")
            .arg(&sessions)
            .arg("--control")
            .arg(&socket)
            .arg("--stats-json")
            .arg(&stats)
            .args(["--duration", "60", "--"])
            .args(common::eal_args(&[&format!("net_tap0,iface={tap}")]))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    common::wait_for_control_socket(&mut relay, &socket);
    for cmd in [
        vec![
            "ip",
            "-n",
            &ns.name,
            "addr",
            "add",
            "198.18.9.2/24",
            "dev",
            &tap,
        ],
        vec![
            "ip",
            "-n",
            &ns.name,
            "addr",
            "add",
            "198.18.9.3/24",
            "dev",
            &tap,
        ],
        vec!["ip", "-n", &ns.name, "link", "set", &tap, "up"],
    ] {
        assert!(common::sh(&cmd), "{cmd:?}");
    }
    // The kernel's own sends must carry finished checksums (the relay checks plain RTP's).
    common::sh(&[
        "ip", "netns", "exec", &ns.name, "ethtool", "-K", &tap, "tx", "off",
    ]);

    let result = common::run_peer_in(&ns, "tap_peer", ("RELAY_TAP_PEER", "1"));

    let mut child = relay.0.take().unwrap();
    let (status, out) = common::stop_by_signal(&mut child, "-TERM");
    assert!(status.success(), "{out}");
    // The driver offered both offloads and the relay took them.
    assert!(
        out.contains("UDP checksums checked by the NIC in, completed by the NIC out"),
        "{out}"
    );
    let stats: Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    // Every packet of every mode reached the callee's socket with a checksum Linux accepts
    // and, decrypted where SRTP, byte for byte what the caller sent; but those sent before the
    // relay had resolved the callee by ARP.
    assert_eq!(result["wrong"], json!(0), "{result} {stats}");
    for &(p, ..) in &CALLS {
        let got = result["intact"][p.to_string()].as_u64().unwrap();
        assert!(
            got >= u64::from(PACKETS) * 9 / 10,
            "call t{p}: {got} of {PACKETS} arrived: {result} {stats}"
        );
    }
    assert_eq!(
        stats["worker"]["drops"]["bad_checksum"]
            .as_u64()
            .unwrap_or(0),
        0,
        "{stats}"
    );
}
