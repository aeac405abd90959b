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
use relay_gen::ndr::{search, SearchConfig, SearchResult};
use relay_gen::send::{Codec, Sender};
use relay_gen::streams::{by_destination, plan, StreamPlan};
use relay_gen::verify::{Counts, Receiver, Report};
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
    /// Find the highest rate with no loss (NDR) and with 0.5% loss (PDR) by binary search
    /// over paced trials (RFC 2544 section 26.1).
    Ndr(NdrArgs),
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

/// The ports and the streams, shared by `run` and `ndr`.
#[derive(clap::Args)]
struct PortArgs {
    /// The DPDK port that sends to the relay's leg-a addresses.
    #[arg(long)]
    tx_port: String,
    /// The DPDK port the relay's leg-b packets arrive on.
    #[arg(long)]
    rx_port: String,
    /// The MAC address of the relay's port the frames go to.
    #[arg(long)]
    relay_mac: String,
    /// Open (check the tag and stamp, measure latency) every N-th packet of a stream and
    /// place the rest by their RTP sequence numbers: opening every packet costs the
    /// generator as much as the relay's re-key, so a run flat out needs N > 1.
    #[arg(long, default_value_t = 1)]
    verify_every: u16,
    /// EAL arguments (after `--`).
    #[arg(last = true)]
    eal: Vec<String>,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The relay's sessions file (schema version 1): every leg needs its remote address.
    #[arg(long)]
    sessions: PathBuf,
    #[command(flatten)]
    ports: PortArgs,
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
    /// How long to keep receiving after the last packet was sent.
    #[arg(long, default_value_t = 300)]
    drain_ms: u64,
    /// Write the report here as JSON too.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(clap::Args)]
struct NdrArgs {
    /// The relay's sessions file.
    #[arg(long)]
    sessions: PathBuf,
    #[command(flatten)]
    ports: PortArgs,
    /// The lowest rate tried, packets per second.
    #[arg(long, default_value_t = 10_000.0)]
    min_pps: f64,
    /// The highest rate tried (line rate for the packet size, or less).
    #[arg(long)]
    max_pps: f64,
    /// Stop when the bracket is narrower than this fraction.
    #[arg(long, default_value_t = 0.01)]
    resolution: f64,
    /// Trials per search at most.
    #[arg(long, default_value_t = 20)]
    max_trials: usize,
    /// Seconds per trial.
    #[arg(long, default_value_t = 1.0)]
    trial_seconds: f64,
    /// Payload size and clock.
    #[arg(long, value_enum, default_value = "g711")]
    codec: CodecArg,
    /// How long to keep receiving after each trial's last packet.
    #[arg(long, default_value_t = 200)]
    drain_ms: u64,
    /// Write both rates and the trace here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
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
        Command::Ndr(args) => ndr(args),
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

/// The generator's ports and state, kept across trials (the streams' sequence numbers and
/// the verifier's SRTP contexts go on from one trial to the next, as the relay's do).
struct Generator<'eal> {
    eal: &'eal Eal,
    pool: PktMbufPool<'eal>,
    tx: Port<'eal>,
    rx: Option<Port<'eal>>,
    plans: Vec<StreamPlan>,
    sender: Sender,
    receiver: Receiver,
    by_dst: HashMap<SocketAddr, usize>,
    l2: wire::L2Out,
    every: u16,
    next_stream: usize,
    other_frames: u64,
    /// The clock's origin (TSC) and rate.
    t0: u64,
    hz: u64,
}

/// What one trial offered and what came back.
struct TrialResult {
    /// Packets the pacing meant to send (the port refusing some is loss at that rate: the
    /// relay could not take them).
    intended: u64,
    /// Packets the port took.
    offered: u64,
    /// The verifier's report for this trial (counts of this trial only).
    report: Report,
    /// Seconds spent sending.
    seconds: f64,
    /// Packets the schedule called for that the generator itself did not make in time
    /// (paced trials only): the trial then says nothing about the relay at that rate.
    shortfall: u64,
}

impl TrialResult {
    /// Loss at the intended rate: packets meant and not delivered, over packets meant.
    fn loss_ratio(&self) -> f64 {
        if self.intended == 0 {
            0.0
        } else {
            self.intended.saturating_sub(self.report.delivered) as f64 / self.intended as f64
        }
    }

    /// The generator fell more than 1% behind its schedule.
    fn generator_limited(&self) -> bool {
        self.shortfall * 100 > self.intended + self.shortfall
    }
}

impl<'eal> Generator<'eal> {
    fn open(
        eal: &'eal Eal,
        args: &PortArgs,
        plans: Vec<StreamPlan>,
        codec: Codec,
    ) -> anyhow::Result<Self> {
        let relay_mac = mac(&args.relay_mac)?;
        let pool = PktMbufPool::create(
            eal,
            "gen",
            16_383,
            256,
            PktMbufPool::default_data_room(),
            eal.socket_id(),
        )
        .context("the mbuf pool")?;
        let open = |name: &str| -> anyhow::Result<Port<'eal>> {
            let id = Port::id_by_name(eal, name).with_context(|| format!("port {name}"))?;
            Port::open(eal, id, &PortConfig::default(), pool)
                .with_context(|| format!("port {name}"))
        };
        let tx = open(&args.tx_port)?;
        let rx = if args.rx_port == args.tx_port {
            None
        } else {
            Some(open(&args.rx_port)?)
        };
        if plans
            .iter()
            .any(|p| p.from.is_ipv4() != p.to_relay.is_ipv4())
        {
            bail!("a stream mixes IPv4 and IPv6 addresses");
        }
        let l2 = wire::L2Out {
            src: tx.mac().0,
            dst: relay_mac,
            vlan: None,
        };
        let (t0, hz) = eal.tsc();
        Ok(Generator {
            eal,
            pool,
            tx,
            rx,
            sender: Sender::with_ssrc_seed(&plans, codec, ssrc_seed()),
            receiver: Receiver::new(&plans),
            by_dst: by_destination(&plans),
            plans,
            l2,
            every: args.verify_every.max(1),
            next_stream: 0,
            other_frames: 0,
            t0,
            hz,
        })
    }

    fn now_ns(&self) -> u64 {
        let tsc = self.eal.tsc().0;
        ((tsc - self.t0) as u128 * 1_000_000_000 / u128::from(self.hz)) as u64
    }

    /// Offers `rate` packets per second (0: flat out) over all streams for `seconds` (or
    /// until `limit` packets), then receives for `drain_ms` more.
    fn trial(
        &mut self,
        rate: f64,
        seconds: f64,
        limit: u64,
        drain_ms: u64,
    ) -> anyhow::Result<TrialResult> {
        let before = self.receiver.report(0);
        let start = self.now_ns();
        let send_for = Duration::from_secs_f64(seconds).as_nanos() as u64;
        let gap_ns = if rate > 0.0 { 1e9 / rate } else { 0.0 };
        let (mut out, mut inb) = (Burst::new(), Burst::new());
        let mut packet = vec![0u8; self.sender.max_packet_len()];
        let (mut intended, mut offered) = (0u64, 0u64);
        let mut last_sent = start;
        let rx_port = self.rx.as_ref().unwrap_or(&self.tx).id();
        loop {
            let now = self.now_ns();
            let elapsed = now - start;
            if elapsed < send_for && intended < limit {
                let due = if gap_ns > 0.0 {
                    ((elapsed as f64 / gap_ns) as u64)
                        .saturating_sub(intended)
                        .min(32)
                } else {
                    32
                };
                for _ in 0..due.min(limit - intended) {
                    let Some(mut m) = self.pool.alloc() else {
                        break;
                    };
                    let s = self.next_stream;
                    let len = self.sender.next(s, now, &mut packet)?;
                    let p = &self.plans[s];
                    let at = if p.to_relay.is_ipv4() { 42 } else { 62 };
                    let Some(buf) = m.append((at + len + 64) as u16) else {
                        bail!("mbufs too small for {} bytes", at + len);
                    };
                    buf[at..at + len].copy_from_slice(&packet[..len]);
                    let n = wire::emit_udp(buf, at, len, &self.l2, p.from, p.to_relay)
                        .context("building a frame")?;
                    m.truncate(n as u16);
                    if out.push(m).is_err() {
                        break;
                    }
                    intended += 1;
                    self.next_stream = (self.next_stream + 1) % self.plans.len();
                }
                let taken = self.tx.tx_burst(0, &mut out) as u64;
                offered += taken;
                // What the port did not take is dropped here: at a paced rate it counts as
                // lost (the relay could not take it); flat out it was never meant.
                if gap_ns == 0.0 {
                    intended -= out.len() as u64;
                }
                out.clear();
                last_sent = now;
            } else if now > last_sent + drain_ms * 1_000_000 {
                break;
            }
            let rx = self.rx.as_ref().unwrap_or(&self.tx);
            debug_assert_eq!(rx.id(), rx_port);
            if rx.rx_burst(0, &mut inb) > 0 {
                let now = self.now_ns();
                for i in 0..inb.len() {
                    let frame = inb.packet_mut(i);
                    let Ok(u) = wire::parse_udp(frame) else {
                        self.other_frames += 1;
                        continue;
                    };
                    let Some(&stream) = self.by_dst.get(&u.dst) else {
                        self.other_frames += 1;
                        continue;
                    };
                    let payload = &mut frame[u.payload..u.payload + u.payload_len];
                    let seq = payload
                        .get(2..4)
                        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
                    if seq % self.every == 0 {
                        self.receiver.receive(stream, payload, now);
                    } else {
                        self.receiver.receive_unopened(stream, payload);
                    }
                }
                inb.clear();
            }
        }
        // What the schedule called for over the time spent sending.
        let scheduled = if gap_ns > 0.0 {
            (((last_sent - start).min(send_for)) as f64 / gap_ns) as u64
        } else {
            intended
        };
        let after = self.receiver.report(0);
        let counts = minus(after.counts, before.counts);
        let delivered = counts.fresh + counts.reordered;
        Ok(TrialResult {
            intended,
            offered,
            report: Report {
                sent: offered,
                delivered,
                lost: offered.saturating_sub(delivered),
                counts,
                latency_ns: after.latency_ns,
            },
            seconds: (last_sent.saturating_sub(start)).max(1) as f64 / 1e9,
            shortfall: scheduled.saturating_sub(intended),
        })
    }
}

/// Differs from run to run (time and process), so a second run against the same relay
/// sends under new SSRCs.
fn ssrc_seed() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() ^ d.as_secs() as u32);
    nanos ^ std::process::id().rotate_left(16)
}

/// `a - b`, field by field.
fn minus(a: Counts, b: Counts) -> Counts {
    Counts {
        fresh: a.fresh - b.fresh,
        reordered: a.reordered - b.reordered,
        duplicates: a.duplicates - b.duplicates,
        late: a.late - b.late,
        auth_failed: a.auth_failed - b.auth_failed,
        not_stamped: a.not_stamped - b.not_stamped,
        altered: a.altered - b.altered,
        misrouted: a.misrouted - b.misrouted,
        malformed: a.malformed - b.malformed,
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let plans = load_plan(&args.sessions)?;
    let eal = Eal::init(args.ports.eal.iter().cloned()).context("EAL initialisation")?;
    let mut gen = Generator::open(&eal, &args.ports, plans, args.codec.into())?;
    let t = gen.trial(
        args.rate,
        args.seconds,
        args.max_packets.unwrap_or(u64::MAX),
        args.drain_ms,
    )?;
    print_report(&gen.plans, &t.report, t.seconds, gen.other_frames);
    if let Some(path) = &args.json {
        let r = &t.report;
        let json = JsonReport {
            streams: gen.plans.len(),
            offered: r.sent,
            delivered: r.delivered,
            lost: r.lost,
            offered_pps: r.sent as f64 / t.seconds,
            delivered_pps: r.delivered as f64 / t.seconds,
            duplicates: r.counts.duplicates,
            reordered: r.counts.reordered,
            late: r.counts.late,
            failed: r.counts.failed(),
            latency_ns: r.latency_ns,
            clean: r.clean(),
        };
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn ndr(args: NdrArgs) -> anyhow::Result<()> {
    let plans = load_plan(&args.sessions)?;
    let eal = Eal::init(args.ports.eal.iter().cloned()).context("EAL initialisation")?;
    let mut gen = Generator::open(&eal, &args.ports, plans, args.codec.into())?;
    let cfg = SearchConfig {
        min_pps: args.min_pps,
        max_pps: args.max_pps,
        resolution: args.resolution,
        max_trials: args.max_trials,
    };
    let mut failure = None;
    let mut generator_limited = false;
    let result = search(&cfg, |rate| {
        match gen.trial(rate, args.trial_seconds, u64::MAX, args.drain_ms) {
            Ok(t) => {
                let failed = t.report.counts.failed() + t.report.counts.duplicates;
                // Verification failures fail a trial whatever the loss; so does a generator
                // that could not keep to the rate (the relay was not offered it).
                let limited = t.generator_limited();
                generator_limited |= limited;
                let loss = if failed > 0 || limited {
                    1.0
                } else {
                    t.loss_ratio()
                };
                let note = match (failed > 0, limited) {
                    (true, _) => " (verification failures)".to_owned(),
                    (false, true) => format!(
                        " (GENERATOR-LIMITED: {} packets behind schedule)",
                        t.shortfall
                    ),
                    _ => String::new(),
                };
                println!(
                    "trial {:>10.0} pps: intended {} offered {} delivered {} loss {:.5}%{note}",
                    rate,
                    t.intended,
                    t.offered,
                    t.report.delivered,
                    100.0 * t.loss_ratio(),
                );
                loss
            }
            Err(e) => {
                failure.get_or_insert(e);
                1.0
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    if generator_limited {
        println!(
            "note: some trials were generator-limited: the rates found are the lower of the relay's and this generator's"
        );
    }
    println!(
        "streams {}  NDR {:.0} pps ({:.3} Mpps)  PDR (0.5% loss) {:.0} pps  trials {}",
        gen.plans.len(),
        result.ndr_pps,
        result.ndr_pps / 1e6,
        result.pdr_pps,
        result.trace.len()
    );
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&NdrJson::from(&result))?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The search as JSON: both rates and the trace.
#[derive(serde::Serialize)]
struct NdrJson {
    ndr_pps: f64,
    pdr_pps: f64,
    trace: Vec<(f64, f64)>,
}

impl From<&SearchResult> for NdrJson {
    fn from(r: &SearchResult) -> NdrJson {
        NdrJson {
            ndr_pps: r.ndr_pps,
            pdr_pps: r.pdr_pps,
            trace: r.trace.iter().map(|t| (t.rate_pps, t.loss_ratio)).collect(),
        }
    }
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
