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

mod generator;
mod report;
mod rtpengine;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use relay_dataplane::dpdk::Eal;
use relay_gen::ndr::{search, SearchConfig};
use relay_gen::send::Codec;
use relay_gen::streams::{plan, StreamPlan};
use relay_session::SessionsFile;

use generator::{Generator, Ports};
use report::{print_report, JsonReport, NdrJson, TrialJson};

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
    /// Write a sessions file of N streams with fresh keys for the relay and the generator.
    Sessions(SessionsArgs),
    /// Write a plain-RTP sessions file's streams as one pktgen-dpdk range (a Lua table for
    /// bench/pktgen/rtp-range.lua).
    PktgenFlows(PktgenFlowsArgs),
    /// The reference: set up N SRTP calls on rtpengine (ng protocol) and find its NDR and
    /// PDR re-keying them over loopback UDP (no DPDK).
    Rtpengine(RtpengineArgs),
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
    /// Mix in this many attack packets per stream packet, in turn one to a port the relay
    /// has no flow for and one with a forged SRTP tag sent just before the real packet (the
    /// established streams must lose nothing).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=7))]
    flood: u8,
    /// The far end returns every packet unchanged (`dpdk-testpmd` forwarding, a cable
    /// loop): verify each with the key it was sent with, at the address it was sent to.
    /// Measures the I/O path alone, the ceiling for the relay's figures.
    #[arg(long)]
    loopback: bool,
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
    #[command(flatten)]
    search: SearchArgs,
    /// Payload size and clock.
    #[arg(long, value_enum, default_value = "g711")]
    codec: CodecArg,
}

/// How an NDR/PDR search runs (`ndr` and `rtpengine`).
#[derive(clap::Args)]
struct SearchArgs {
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
    /// How long to keep receiving after each trial's last packet.
    #[arg(long, default_value_t = 200)]
    drain_ms: u64,
    /// Write both rates and the trials here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Before the search, send at the lowest rate in trials of 0.1 s until one comes back
    /// whole (the links up, the far end forwarding, caches and pages warm), for at most this
    /// many seconds. Warm-up trials are not part of the search.
    #[arg(long, default_value_t = 5.0)]
    warmup_seconds: f64,
}

impl SearchArgs {
    /// The warm-up, then the search, each trial printed; the search's JSON written if asked
    /// (`streams`, `flood` and `loopback` say what ran).
    fn run(
        &self,
        gen: &mut impl Trials,
        streams: usize,
        flood: u8,
        loopback: bool,
    ) -> anyhow::Result<relay_gen::ndr::SearchResult> {
        let cfg = SearchConfig {
            min_pps: self.min_pps,
            max_pps: self.max_pps,
            resolution: self.resolution,
            max_trials: self.max_trials,
        };
        warm_up(gen, self.min_pps, self.warmup_seconds, self.drain_ms)?;
        let (result, trials) = run_search(gen, &cfg, self.trial_seconds, self.drain_ms)?;
        if let Some(path) = &self.json {
            let json = NdrJson::new(streams, flood, loopback, &result, trials);
            std::fs::write(path, serde_json::to_string_pretty(&json)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(result)
    }
}

#[derive(clap::Args)]
struct SessionsArgs {
    /// Streams (one call each, RTCP muxed).
    #[arg(long)]
    streams: u32,
    /// The suite leg a's peer sends with; `rtp` for plain RTP on both legs.
    #[arg(long, default_value = "AES_CM_128_HMAC_SHA1_80")]
    suite: String,
    /// The suite the relay sends leg b with (default: the same as `--suite`).
    #[arg(long)]
    outbound_suite: Option<String>,
    /// Where to write it (mode 0600: it holds keys; an existing file is not replaced).
    #[arg(long)]
    out: PathBuf,
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

#[derive(clap::Args)]
struct RtpengineArgs {
    /// rtpengine's ng control port (its `listen-ng`).
    #[arg(long, default_value = "127.0.0.1:22223")]
    ng: std::net::SocketAddr,
    /// The generator's media address (rtpengine's `interface` must reach it).
    #[arg(long, default_value = "127.0.0.1")]
    ip: std::net::IpAddr,
    /// Calls (one stream each, leg a to leg b).
    #[arg(long)]
    streams: usize,
    /// Open every N-th packet of a stream (tag, stamp, latency), place the rest by their
    /// RTP sequence numbers.
    #[arg(long, default_value_t = 8)]
    verify_every: u16,
    #[command(flatten)]
    search: SearchArgs,
}

#[derive(clap::Args)]
struct PktgenFlowsArgs {
    /// The relay's sessions file (plain RTP, as `relay-gen sessions --suite rtp` writes).
    #[arg(long)]
    sessions: PathBuf,
    /// Where to write the Lua table.
    #[arg(long)]
    out: PathBuf,
    /// The relay port's MAC address (frame destination).
    #[arg(long)]
    relay_mac: String,
    /// Payload size of the frames (the script can step through others).
    #[arg(long, value_enum, default_value = "g711")]
    codec: CodecArg,
}

impl PortArgs {
    /// The streams of the sessions file, as a loop returns them with `--loopback`.
    fn plans(&self, sessions: &PathBuf) -> anyhow::Result<Vec<StreamPlan>> {
        let plans = load_plan(sessions)?;
        Ok(if self.loopback {
            relay_gen::streams::looped(plans)
        } else {
            plans
        })
    }

    fn ports(&self) -> anyhow::Result<Ports<'_>> {
        Ok(Ports {
            tx: &self.tx_port,
            rx: &self.rx_port,
            relay_mac: mac(&self.relay_mac)?,
            verify_every: self.verify_every,
            flood: self.flood,
        })
    }
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => run(args),
        Command::Ndr(args) => ndr(args),
        Command::Pcap(args) => pcap(args),
        Command::PktgenFlows(args) => pktgen_flows(args),
        Command::Rtpengine(args) => against_rtpengine(args),
        Command::Sessions(args) => sessions(args),
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

fn sessions(args: SessionsArgs) -> anyhow::Result<()> {
    use relay_gen::synthetic::{self, Layout};
    let suite = |name: &str| -> anyhow::Result<relay_srtp::Suite> {
        name.parse()
            .map_err(|e| anyhow::anyhow!("--suite {name}: {e} (or rtp for plain RTP)"))
    };
    let suites = if args.suite.eq_ignore_ascii_case("rtp") {
        None
    } else {
        let inbound = suite(&args.suite)?;
        let outbound = args.outbound_suite.as_deref().map_or(Ok(inbound), suite)?;
        Some((inbound, outbound))
    };
    anyhow::ensure!(args.streams > 0, "--streams must be at least 1");
    let layout = Layout {
        streams: args.streams,
    };
    synthetic::sessions(layout, suites)
        .write_private(&args.out)
        .with_context(|| format!("writing {} (it must not exist yet)", args.out.display()))?;
    println!(
        "{} streams written to {}; the relay's ports: ipv4=198.18.0.1/16,addrs={n} (leg a) and ipv4=198.19.0.1/16,addrs={n} (leg b); the generator's MACs {} (sending) and {} (receiving)",
        args.streams,
        args.out.display(),
        synthetic::PEER_MACS[0],
        synthetic::PEER_MACS[1],
        n = layout.relay_addresses(),
    );
    Ok(())
}

fn against_rtpengine(args: RtpengineArgs) -> anyhow::Result<()> {
    let mut gen = rtpengine::UdpGenerator::open(
        args.ng,
        args.ip,
        args.streams,
        Codec::G711,
        args.verify_every,
    )?;
    println!(
        "{} SRTP calls set up on rtpengine at {}",
        args.streams, args.ng
    );
    let result = args.search.run(&mut gen, args.streams, 0, false)?;
    gen.delete_calls();
    println!(
        "rtpengine: streams {}  NDR {:.0} pps ({:.3} Mpps)  PDR (0.5% loss) {:.0} pps  trials {}  stray datagrams {}",
        args.streams,
        result.ndr_pps,
        result.ndr_pps / 1e6,
        result.pdr_pps,
        result.trace.len(),
        gen.other
    );
    Ok(())
}

fn pktgen_flows(args: PktgenFlowsArgs) -> anyhow::Result<()> {
    let plans = load_plan(&args.sessions)?;
    mac(&args.relay_mac)?;
    let flows = relay_gen::pktgen::range_flows(&plans)
        .with_context(|| format!("{} as a pktgen range", args.sessions.display()))?;
    let payload = 12 + Codec::from(args.codec).payload_len();
    let lua = flows.to_lua(
        &args.relay_mac,
        payload,
        &args.sessions.display().to_string(),
    );
    std::fs::write(&args.out, lua).with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "{} streams as one pktgen range ({}:{}-{} to {}:{}-{}) written to {}",
        flows.streams,
        flows.src_ip,
        flows.sport.min,
        flows.sport.max,
        flows.dst_ip,
        flows.dport.min,
        flows.dport.max,
        args.out.display()
    );
    Ok(())
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
    let plans = args.ports.plans(&args.sessions)?;
    let eal = Eal::init(args.ports.eal.iter().cloned()).context("EAL initialisation")?;
    let mut gen = Generator::open(&eal, &args.ports.ports()?, plans, args.codec.into())?;
    let t = gen.trial(
        args.rate,
        args.seconds,
        args.max_packets.unwrap_or(u64::MAX),
        args.drain_ms,
    )?;
    print_report(&gen.plans, &t.report, t.seconds, gen.other_frames);
    if t.attacks > 0 {
        println!("attack packets offered besides: {}", t.attacks);
    }
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
            attacks: t.attacks,
            latency_ns: r.latency_ns,
            clean: r.clean(),
        };
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Short trials at `rate` until one is delivered whole and verified, or `seconds` have gone
/// by (then the search goes ahead and its trials say what is wrong).
/// A generator the search can run paced trials on: `relay-gen`'s DPDK ports, or sockets
/// to rtpengine (`relay-gen rtpengine`).
pub(crate) trait Trials {
    /// Offers `rate` packets/s for `seconds`, receives for `drain_ms` more, reports.
    fn paced_trial(
        &mut self,
        rate: f64,
        seconds: f64,
        drain_ms: u64,
    ) -> anyhow::Result<generator::TrialResult>;
}

impl Trials for Generator<'_> {
    fn paced_trial(
        &mut self,
        rate: f64,
        seconds: f64,
        drain_ms: u64,
    ) -> anyhow::Result<generator::TrialResult> {
        self.trial(rate, seconds, u64::MAX, drain_ms)
    }
}

fn warm_up(gen: &mut impl Trials, rate: f64, seconds: f64, drain_ms: u64) -> anyhow::Result<()> {
    const TRIAL_SECONDS: f64 = 0.1;
    let start = std::time::Instant::now();
    let mut tries = 0;
    while start.elapsed().as_secs_f64() < seconds {
        tries += 1;
        let t = gen.paced_trial(rate, TRIAL_SECONDS, drain_ms)?;
        let failed = t.report.counts.failed() + t.report.counts.duplicates;
        if t.intended > 0 && t.loss_ratio() == 0.0 && failed == 0 {
            println!(
                "warm-up: {} packets at {rate:.0} pps came back whole after {tries} trial(s) ({:.1} s)",
                t.intended,
                start.elapsed().as_secs_f64()
            );
            return Ok(());
        }
    }
    if seconds > 0.0 {
        println!(
            "warm-up: nothing came back whole at {rate:.0} pps in {seconds} s ({tries} trials); searching anyway"
        );
    }
    Ok(())
}

fn ndr(args: NdrArgs) -> anyhow::Result<()> {
    let plans = args.ports.plans(&args.sessions)?;
    let eal = Eal::init(args.ports.eal.iter().cloned()).context("EAL initialisation")?;
    let mut gen = Generator::open(&eal, &args.ports.ports()?, plans, args.codec.into())?;
    let streams = gen.plans.len();
    let result = args
        .search
        .run(&mut gen, streams, args.ports.flood, args.ports.loopback)?;
    println!(
        "streams {streams}  NDR {:.0} pps ({:.3} Mpps)  PDR (0.5% loss) {:.0} pps  trials {}",
        result.ndr_pps,
        result.ndr_pps / 1e6,
        result.pdr_pps,
        result.trace.len()
    );
    Ok(())
}

/// The NDR/PDR search over `gen`'s paced trials, each printed as it ends; the result and
/// the trials as the JSON report carries them.
pub(crate) fn run_search(
    gen: &mut impl Trials,
    cfg: &SearchConfig,
    trial_seconds: f64,
    drain_ms: u64,
) -> anyhow::Result<(relay_gen::ndr::SearchResult, Vec<TrialJson>)> {
    let mut failure = None;
    let mut generator_limited = false;
    let mut trials = Vec::new();
    let result = search(cfg, |rate| {
        match gen.paced_trial(rate, trial_seconds, drain_ms) {
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
                let mut attacks = if t.attacks > 0 {
                    format!(" (+{} attack packets)", t.attacks)
                } else {
                    String::new()
                };
                let c = &t.report.counts;
                if c.late + c.duplicates > 0 {
                    attacks.push_str(&format!(" (late {} duplicates {})", c.late, c.duplicates));
                }
                println!(
                    "trial {:>10.0} pps: intended {} offered {}{attacks} delivered {} loss {:.5}%{note}",
                    rate,
                    t.intended,
                    t.offered,
                    t.report.delivered,
                    100.0 * t.loss_ratio(),
                );
                trials.push(TrialJson {
                    rate_pps: rate,
                    loss_ratio: loss,
                    intended: t.intended,
                    offered: t.offered,
                    delivered: t.report.delivered,
                    failed,
                    generator_limited: limited,
                    attacks: t.attacks,
                    latency_ns: t.report.latency_ns,
                });
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
    Ok((result, trials))
}
