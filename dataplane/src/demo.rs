//! The demo: the relay between two generated SRTP peers on two looping ring ports.
//!
//! ```text
//! callers (relay-srtp, AES_CM_128_HMAC_SHA1_80) --tx--> port 0 --(loops back)--> relay
//! relay (unprotect, protect AEAD_AES_128_GCM, rewrite) --tx--> port 1 --(loops back)--> callees
//! ```
//! Every packet the callees receive is decrypted with the outbound keys and compared with what
//! the callers sent. Bounded in packets and time.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use relay_srtp::{Context, ContextConfig, MasterKey, SdesKey, Suite};

use crate::dpdk::{Burst, DpdkError, Eal, PktMbufPool, Port};
use crate::relay::{DropReason, PortAddr, Relay, RelayConfig, Verdict, WorkerStats};
use crate::session::{
    CallSpec, CryptoSpec, LegSpec, MediaSpec, RtcpMode, SessionError, SessionsFile,
};
use crate::wire::{self, write_udp_with, UdpEndpoints};

/// Demo settings.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Concurrent calls.
    pub calls: u32,
    /// SRTP packets in all.
    pub packets: u64,
    /// Inbound suite (what callers send).
    pub inbound: Suite,
    /// Outbound suite (what callees get).
    pub outbound: Suite,
    /// Give up after this long.
    pub time_limit: Duration,
    /// Where to write the generated sessions file (kept); `None`: a private temporary file,
    /// deleted once loaded.
    pub sessions_file: Option<std::path::PathBuf>,
}

/// What the demo saw.
#[derive(Clone, Debug, Default)]
pub struct DemoReport {
    /// SRTP packets the callers sent.
    pub sent: u64,
    /// Packets the callees received.
    pub received: u64,
    /// Of those, decrypted with the outbound keys to exactly what was sent.
    pub verified: u64,
    /// Received but wrong (did not decrypt, or other bytes).
    pub bad: u64,
    /// Time from first send to last receive.
    pub elapsed: Duration,
    /// The relay's counters.
    pub relay: WorkerStats,
    /// The sessions file the calls were loaded from, if it was kept.
    pub sessions_file: Option<std::path::PathBuf>,
}

const CALLER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xca, 0x11];
const RELAY_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const RELAY_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

fn key(suite: Suite) -> Result<SdesKey, SessionError> {
    MasterKey::random(suite)
        .map(SdesKey::new)
        .map_err(|e| SessionError::Crypto {
            call: "demo".into(),
            detail: e.to_string(),
        })
}

struct Peer {
    caller: Context,
    callee: Context,
    caller_addr: SocketAddrV4,
    relay_a: SocketAddrV4,
    seq: u16,
}

/// Runs the demo on ports `a` and `b` (each must loop back to itself, as `net_ringN` does).
pub fn run<'eal>(
    eal: &'eal Eal,
    pool: PktMbufPool<'eal>,
    a: &Port<'eal>,
    b: &Port<'eal>,
    config: &DemoConfig,
) -> Result<DemoReport, DpdkError> {
    let _ = eal;
    let ports = vec![
        PortAddr {
            port: a.id(),
            mac: RELAY_A,
            ipv4: "198.18.0.1".parse().expect("ip"),
            prefix_len: 16,
            gateway: None,
            vlan: None,
            ..PortAddr::default()
        },
        PortAddr {
            port: b.id(),
            mac: RELAY_B,
            ipv4: "198.19.0.1".parse().expect("ip"),
            prefix_len: 16,
            gateway: None,
            vlan: None,
            ..PortAddr::default()
        },
    ];
    let mut relay = Relay::new(ports, RelayConfig::default());
    let bad_setup = |e: SessionError| DpdkError::InvalidArgument(e.to_string());
    // The generated sessions document: the callees' and callers' neighbours and every call.
    let mut doc = SessionsFile::from_json(
        r#"{"version":1,"neighbours":[{"ip":"198.18.0.10","mac":"02:00:00:00:ca:11"},{"ip":"198.19.0.20","mac":"02:00:00:00:ca:22"}]}"#,
    )
    .map_err(bad_setup)?;
    let mut peers = Vec::with_capacity(config.calls as usize);
    for i in 0..config.calls {
        let (kin, kout) = (
            key(config.inbound).map_err(bad_setup)?,
            key(config.outbound).map_err(bad_setup)?,
        );
        let port = 20_000 + 2 * (i % 20_000) as u16;
        let caller_addr = SocketAddrV4::new(
            "198.18.0.10".parse().expect("ip"),
            10_000 + (i % 50_000) as u16,
        );
        let relay_a = SocketAddrV4::new("198.18.0.1".parse().expect("ip"), port);
        let spec = CallSpec {
            id: format!("demo-{i}"),
            media: vec![MediaSpec {
                rtcp: RtcpMode::Mux,
                a: LegSpec {
                    local: relay_a.into(),
                    remote: Some(caller_addr.into()),
                    strict_source: false,
                    receive: Some(CryptoSpec {
                        suite: config.inbound.name().into(),
                        key: kin.to_inline(),
                    }),
                    send: None,
                    clock_rate: 8000,
                    resume_receive: Vec::new(),
                    resume_send: Vec::new(),
                },
                b: LegSpec {
                    local: SocketAddrV4::new("198.19.0.1".parse().expect("ip"), port).into(),
                    remote: Some(
                        SocketAddrV4::new("198.19.0.20".parse().expect("ip"), 30_000).into(),
                    ),
                    strict_source: false,
                    receive: None,
                    send: Some(CryptoSpec {
                        suite: config.outbound.name().into(),
                        key: kout.to_inline(),
                    }),
                    clock_rate: 8000,
                    resume_receive: Vec::new(),
                    resume_send: Vec::new(),
                },
            }],
        };
        doc.calls.push(spec);
        peers.push(Peer {
            caller: Context::new(&kin, ContextConfig::default()),
            callee: Context::new(&kout, ContextConfig::default()),
            caller_addr,
            relay_a,
            seq: (i as u16).wrapping_mul(7919), // some calls cross the sequence wrap
        });
    }

    // Through a file, loaded as `relay-dataplane run --sessions FILE` loads it (owner-only: it
    // holds the calls' keys).
    let (path, keep) = match &config.sessions_file {
        Some(p) => (p.clone(), true),
        None => (
            std::env::temp_dir().join(format!("relay-demo-sessions-{}.json", std::process::id())),
            false,
        ),
    };
    let io = |e: std::io::Error| {
        DpdkError::InvalidArgument(format!("sessions file {}: {e}", path.display()))
    };
    doc.write_private(&path).map_err(io)?;
    drop(doc);
    let loaded = SessionsFile::load(&path);
    if !keep {
        std::fs::remove_file(&path).map_err(io)?;
    }
    relay
        .install(&loaded.map_err(bad_setup)?)
        .map_err(bad_setup)?;

    let mut report = DemoReport {
        sessions_file: keep.then_some(path),
        ..DemoReport::default()
    };
    let (mut gen, mut rx, mut fwd) = (Burst::new(), Burst::new(), Burst::new());
    let start = Instant::now();
    let deadline = start + config.time_limit;
    let mut last_rx = start;
    let mut next_call = 0usize;
    let (_, hz) = eal.tsc();
    let t0 = eal.tsc().0;
    let mut rtp = [0u8; 172];
    loop {
        // Callers: fresh SRTP packets, round robin over the calls.
        while report.sent + gen.len() as u64 <= config.packets.saturating_sub(1) && !gen.is_full() {
            let Some(mut m) = pool.alloc() else { break };
            let idx = next_call;
            next_call = (next_call + 1) % peers.len();
            let peer = &mut peers[idx];
            rtp[0] = 0x80;
            rtp[1] = 8;
            rtp[2..4].copy_from_slice(&peer.seq.to_be_bytes());
            rtp[4..8].copy_from_slice(&(u32::from(peer.seq) * 160).to_be_bytes());
            rtp[8..12].copy_from_slice(&(idx as u32).to_be_bytes());
            for (i, b) in rtp[12..].iter_mut().enumerate() {
                *b = (i as u8) ^ (peer.seq as u8);
            }
            peer.seq = peer.seq.wrapping_add(1);
            let room = 172 + peer.caller.srtp_overhead();
            let ends = UdpEndpoints {
                src_mac: CALLER_MAC,
                dst_mac: RELAY_A,
                vlan: None,
                src: peer.caller_addr.into(),
                dst: peer.relay_a.into(),
            };
            let Some(buf) = m.append((ends.header_len() + room) as u16) else {
                break;
            };
            let caller = &mut peer.caller;
            let mut ok = true;
            write_udp_with(buf, &ends, room, |p| {
                p[..172].copy_from_slice(&rtp);
                ok = caller.protect_rtp(p, 172).is_ok();
            });
            if !ok {
                break;
            }
            let _ = gen.push(m);
        }
        report.sent += a.tx_burst(0, &mut gen) as u64;

        // The relay, on port A's receive side.
        a.rx_burst(0, &mut rx);
        let now_ns = ((eal.tsc().0 - t0) as f64 * 1e9 / hz as f64) as u64;
        for mut m in rx.drain() {
            let len = m.len();
            if let Verdict::Forward { len, .. } =
                relay.process(a.id(), m.data_and_tailroom_mut(), len, now_ns)
            {
                if m.set_len(len) {
                    let _ = fwd.push(m);
                }
            }
        }
        b.tx_burst(0, &mut fwd);
        relay.stats.drops[DropReason::TxFull.index()] += fwd.len() as u64;
        fwd.clear();

        // Callees, on port B's receive side: decrypt and check.
        if b.rx_burst(0, &mut rx) > 0 {
            last_rx = Instant::now();
        }
        for m in rx.drain() {
            report.received += 1;
            let frame = m.data();
            let ok = (|| {
                let u = wire::parse_udp(frame).ok()?;
                let call = usize::from(u.src.port().checked_sub(20_000)? / 2);
                let peer = peers.get_mut(call)?;
                let mut payload = frame[u.payload..u.payload + u.payload_len].to_vec();
                let n = peer.callee.unprotect_rtp(&mut payload).ok()?;
                (n == 172
                    && u.dst.port() == 30_000
                    && payload[12..n]
                        .iter()
                        .enumerate()
                        .all(|(i, &b)| b == (i as u8) ^ payload[3]))
                .then_some(())
            })();
            if ok.is_some() {
                report.verified += 1;
            } else {
                report.bad += 1;
            }
        }

        let now = Instant::now();
        let done = report.sent >= config.packets && report.received >= report.sent;
        if done
            || now >= deadline
            || (report.sent >= config.packets && now - last_rx > Duration::from_secs(1))
        {
            break;
        }
    }
    report.elapsed = last_rx - start;
    report.relay = relay.stats.clone();
    Ok(report)
}
