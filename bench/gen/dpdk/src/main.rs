//! `relay-gen`: the SRTP traffic generator as its own DPDK process, on its own core. It plays
//! both peers of every stream of a relay's sessions file: it sends each stream's packets
//! (stamped, protected with the key the relay receives with) out of one port to the relay,
//! receives what the relay sends out of another, verifies every packet with the outbound key
//! and reports offered and delivered rates, loss, reordering, verification failures and
//! latency percentiles (`relay_gen::verify`).
//!
//! Topologies: two `net_memif` ports to a `relay-dataplane` process on the same machine
//! (each on its own core), or two NIC ports cabled to the relay host's (README, "Throughput
//! runs"). `relay-gen pcap` writes a capture of fresh valid SRTP for replay tools.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand, ValueEnum};
use relay_dataplane::dpdk::{Burst, Eal, PktMbufPool, Port, PortConfig};
use relay_gen::send::{Codec, Sender};
use relay_gen::streams::{plan, StreamPlan};
use relay_gen::verify::{Receiver, Report};
use relay_proto::wire;
use relay_session::SessionsFile;

#[derive(Parser)]
#[command(
    version,
    about = "SRTP traffic generator for relay-dataplane: offers every stream of a sessions file, verifies what the relay sends"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Offer every stream's packets for a while, verify what comes back, report.
    Run(RunArgs),
    /// Write a capture of fresh, valid SRTP for every stream (for replay tools).
    Pcap(PcapArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum CodecArg {
    G711,
    G722,
    Opus,
    Video,
}

impl From<CodecArg> for Codec {
    fn from(c: CodecArg) -> Codec {
        match c {
            CodecArg::G711 => Codec::G711,
            CodecArg::G722 => Codec::G722,
            CodecArg::Opus => Codec::Opus,
            CodecArg::Video => Codec::Video,
        }
    }
}

#[derive(clap::Args)]
struct RunArgs {
    /// The relay's sessions file (schema version 1): every leg needs its remote address.
    #[arg(long)]
    sessions: PathBuf,
    /// The DPDK port that sends to the relay's leg-a addresses.
    #[arg(long)]
    tx_port: String,
    /// The DPDK port the relay's leg-b packets arrive on.
    #[arg(long)]
    rx_port: String,
    /// The MAC address of the relay's port the frames go to.
    #[arg(long)]
    relay_mac: String,
    /// Packets per second offered over all streams; 0 sends flat out.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// How long to offer.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// At most this many packets in all.
    #[arg(long)]
    max_packets: Option<u64>,
    /// Payload size and clock.
    #[arg(long, value_enum, default_value = "g711")]
    codec: CodecArg,
    /// Open (check the tag and stamp, measure latency) every N-th packet of a stream and
    /// place the rest by their RTP sequence numbers: opening every packet costs the
    /// generator as much as the relay's re-key, so a run flat out needs N > 1.
    #[arg(long, default_value_t = 1)]
    verify_every: u16,
    /// How long to keep receiving after the last packet was sent.
    #[arg(long, default_value_t = 300)]
    drain_ms: u64,
    /// Write the report here as JSON too.
    #[arg(long)]
    json: Option<PathBuf>,
    /// EAL arguments (after `--`).
    #[arg(last = true)]
    eal: Vec<String>,
}

#[derive(clap::Args)]
struct PcapArgs {
    /// The relay's sessions file.
    #[arg(long)]
    sessions: PathBuf,
    /// Where to write the capture.
    #[arg(long)]
    out: PathBuf,
    /// Packets per stream (each is used once: the relay drops replays).
    #[arg(long, default_value_t = 1000)]
    per_stream: u64,
    /// The generator's MAC address (frame source).
    #[arg(long, default_value = "02:00:00:00:00:10")]
    src_mac: String,
    /// The relay port's MAC address (frame destination).
    #[arg(long)]
    relay_mac: String,
    /// Payload size and clock.
    #[arg(long, value_enum, default_value = "g711")]
    codec: CodecArg,
}

/// The report as JSON.
#[derive(serde::Serialize)]
struct JsonReport {
    streams: usize,
    offered: u64,
    delivered: u64,
    lost: u64,
    offered_pps: f64,
    delivered_pps: f64,
    duplicates: u64,
    reordered: u64,
    late: u64,
    failed: u64,
    latency_ns: [u64; 5],
    clean: bool,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => run(args),
        Command::Pcap(args) => pcap(args),
    }
}

fn mac(s: &str) -> anyhow::Result<[u8; 6]> {
    relay_session::parse_mac(s).with_context(|| format!("MAC address {s:?}"))
}

fn load_plan(path: &PathBuf) -> anyhow::Result<Vec<StreamPlan>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the sessions file {}", path.display()))?;
    let doc = SessionsFile::from_json(&text).context("the sessions file")?;
    Ok(plan(&doc)?)
}

fn pcap(args: PcapArgs) -> anyhow::Result<()> {
    let plans = load_plan(&args.sessions)?;
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let n = relay_gen::capture::write(
        std::io::BufWriter::new(file),
        &plans,
        args.codec.into(),
        args.per_stream,
        Duration::from_micros(20),
        relay_gen::capture::Ends {
            src_mac: mac(&args.src_mac)?,
            dst_mac: mac(&args.relay_mac)?,
        },
    )?;
    println!(
        "{n} frames of {} streams written to {}",
        plans.len(),
        args.out.display()
    );
    Ok(())
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let plans = load_plan(&args.sessions)?;
    let relay_mac = mac(&args.relay_mac)?;
    let eal = Eal::init(args.eal.iter().cloned()).context("EAL initialisation")?;
    let pool = PktMbufPool::create(
        &eal,
        "gen",
        16_383,
        256,
        PktMbufPool::default_data_room(),
        eal.socket_id(),
    )
    .context("the mbuf pool")?;
    let open = |name: &str| -> anyhow::Result<Port<'_>> {
        let id = Port::id_by_name(&eal, name).with_context(|| format!("port {name}"))?;
        Port::open(&eal, id, &PortConfig::default(), pool).with_context(|| format!("port {name}"))
    };
    let tx = open(&args.tx_port)?;
    let rx = if args.rx_port == args.tx_port {
        None
    } else {
        Some(open(&args.rx_port)?)
    };
    let rx = rx.as_ref().unwrap_or(&tx);
    let codec: Codec = args.codec.into();
    let every = args.verify_every.max(1);
    let mut sender = Sender::new(&plans, codec);
    let mut receiver = Receiver::new(&plans);
    let by_dst: HashMap<SocketAddr, usize> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| (p.to_peer, i))
        .collect();
    let l2 = wire::L2Out {
        src: tx.mac().0,
        dst: relay_mac,
        vlan: None,
    };
    if plans
        .iter()
        .any(|p| p.from.is_ipv4() != p.to_relay.is_ipv4())
    {
        bail!("a stream mixes IPv4 and IPv6 addresses");
    }

    let (t0, hz) = eal.tsc();
    let ns = |tsc: u64| ((tsc - t0) as u128 * 1_000_000_000 / u128::from(hz)) as u64;
    let gap_ns = if args.rate > 0.0 {
        1e9 / args.rate
    } else {
        0.0
    };
    let send_for = Duration::from_secs_f64(args.seconds).as_nanos() as u64;
    let limit = args.max_packets.unwrap_or(u64::MAX);
    let (mut out, mut inb) = (Burst::new(), Burst::new());
    let mut packet = vec![0u8; sender.max_packet_len()];
    let (mut offered, mut next_stream) = (0u64, 0usize);
    let mut other_frames = 0u64;
    let mut sending_until = send_for;
    let mut last_sent_ns = 0;
    loop {
        let now = ns(eal.tsc().0);
        let sending = now < sending_until && offered < limit;
        if sending {
            // Due packets (paced), or a burst (flat out).
            let due = if gap_ns > 0.0 {
                ((now as f64 / gap_ns) as u64)
                    .saturating_sub(offered)
                    .min(32)
            } else {
                32
            };
            for _ in 0..due.min(limit - offered) {
                let Some(mut m) = pool.alloc() else { break };
                let s = next_stream;
                let len = sender.next(s, now, &mut packet)?;
                let p = &plans[s];
                let at = if p.to_relay.is_ipv4() { 42 } else { 62 };
                let Some(buf) = m.append((at + len + 64) as u16) else {
                    bail!("mbufs too small for {} bytes", at + len);
                };
                buf[at..at + len].copy_from_slice(&packet[..len]);
                let n = wire::emit_udp(buf, at, len, &l2, p.from, p.to_relay)
                    .context("building a frame")?;
                m.truncate(n as u16);
                if out.push(m).is_err() {
                    break;
                }
                next_stream = (next_stream + 1) % plans.len();
            }
            let taken = tx.tx_burst(0, &mut out) as u64;
            offered += taken;
            // What the port did not take was never offered (its sequence numbers are a
            // gap the verifier does not count as lost).
            out.clear();
            if taken > 0 {
                last_sent_ns = now;
            }
        } else if now > last_sent_ns + args.drain_ms * 1_000_000 {
            break;
        } else if sending_until == send_for && !sending {
            sending_until = now;
        }
        if rx.rx_burst(0, &mut inb) > 0 {
            let now = ns(eal.tsc().0);
            for i in 0..inb.len() {
                let frame = inb.packet_mut(i);
                let Ok(u) = wire::parse_udp(frame) else {
                    other_frames += 1;
                    continue;
                };
                let Some(&stream) = by_dst.get(&u.dst) else {
                    other_frames += 1;
                    continue;
                };
                let payload = &mut frame[u.payload..u.payload + u.payload_len];
                let seq = payload
                    .get(2..4)
                    .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
                if seq % every == 0 {
                    receiver.receive(stream, payload, now);
                } else {
                    receiver.receive_unopened(stream, payload);
                }
            }
            inb.clear();
        }
    }
    let elapsed_s = (sending_until.min(last_sent_ns.max(1))) as f64 / 1e9;
    let report = receiver.report(offered);
    print_report(&plans, &report, elapsed_s, other_frames);
    if let Some(path) = &args.json {
        let json = JsonReport {
            streams: plans.len(),
            offered: report.sent,
            delivered: report.delivered,
            lost: report.lost,
            offered_pps: report.sent as f64 / elapsed_s,
            delivered_pps: report.delivered as f64 / elapsed_s,
            duplicates: report.counts.duplicates,
            reordered: report.counts.reordered,
            late: report.counts.late,
            failed: report.counts.failed(),
            latency_ns: report.latency_ns,
            clean: report.clean(),
        };
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn print_report(plans: &[StreamPlan], r: &Report, seconds: f64, other: u64) {
    let us = |ns: u64| ns as f64 / 1e3;
    println!(
        "streams {}  offered {} ({:.3} Mpps)  delivered {} ({:.3} Mpps)  lost {} ({:.4}%)",
        plans.len(),
        r.sent,
        r.sent as f64 / seconds / 1e6,
        r.delivered,
        r.delivered as f64 / seconds / 1e6,
        r.lost,
        100.0 * r.loss_ratio()
    );
    println!(
        "duplicates {}  reordered {}  late {}  failed verification {} (tag {}, not stamped {}, altered {}, misrouted {}, malformed {})  other frames {}",
        r.counts.duplicates,
        r.counts.reordered,
        r.counts.late,
        r.counts.failed(),
        r.counts.auth_failed,
        r.counts.not_stamped,
        r.counts.altered,
        r.counts.misrouted,
        r.counts.malformed,
        other
    );
    println!(
        "latency us: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
        us(r.latency_ns[0]),
        us(r.latency_ns[1]),
        us(r.latency_ns[2]),
        us(r.latency_ns[3]),
        us(r.latency_ns[4])
    );
    println!("{}", if r.clean() { "clean" } else { "NOT clean" });
}
