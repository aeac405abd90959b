//! `sip-bench`: sustained new calls per second over SIP/TLS through an SBC.
//!
//! - `sip-bench run [--reference]`: the whole benchmark (needs root): relay-dataplane and
//!   relay-control, then (with `--reference`) Kamailio with rtpengine, each measured with the
//!   same generator in a network namespace of its own; prints calls/s, CPU and memory. See
//!   `bench/run_sip_bench.sh`, which builds, installs the reference and runs it.
//! - `sip-bench load ...`: the generator alone (UAC and UAS) against a running SBC.
//! - `sip-bench hold ...`: the generator's memory run (idle connections, held calls).
//! - `sip-bench self-test`: the UAC calls the UAS directly over TLS on loopback (no SBC).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Result};
use clap::{Args, Parser, Subcommand};
use relay_bench::sipload::load::{self, HoldStep, LoadConfig};
use relay_bench::sipload::{pki, run};

#[derive(Parser)]
#[command(
    name = "sip-bench",
    about = "New calls per second over SIP/TLS through an SBC"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The whole benchmark: relay-control (and Kamailio + rtpengine with --reference).
    Run(RunArgs),
    /// The generator against a running SBC.
    Load(LoadArgs),
    /// The generator's memory run: idle connections, then held calls, steps read from stdin.
    Hold(HoldArgs),
    /// The UAC calls the UAS directly over TLS on 127.0.0.1 (no SBC), briefly.
    SelfTest {
        /// Seconds in the window.
        #[arg(long, default_value_t = 2)]
        seconds: u64,
    },
}

#[derive(Args, Clone)]
struct GenArgs {
    /// Where the UAC sends (the SBC's signalling address towards the caller).
    #[arg(long)]
    target: SocketAddr,
    /// The name in the SBC's certificate (default: the target's address).
    #[arg(long)]
    server_name: Option<String>,
    /// The UAC's source address.
    #[arg(long)]
    uac_bind: IpAddr,
    /// Where the UAS listens (the SBC's peer on the callee side).
    #[arg(long)]
    uas_listen: Option<SocketAddr>,
    /// CA (PEM) the SBC's certificate chains to.
    #[arg(long)]
    ca: PathBuf,
    /// The UAS's certificate (PEM).
    #[arg(long)]
    uas_cert: PathBuf,
    /// The UAS's key (PEM).
    #[arg(long)]
    uas_key: PathBuf,
    /// Persistent UAC connections calls are spread over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Calls in progress at most.
    #[arg(long, default_value_t = 200)]
    max_outstanding: usize,
    /// Seconds a transaction may take before the call counts as failed.
    #[arg(long, default_value_t = 10)]
    call_timeout: u64,
    /// ACK every TCP segment at once (TCP_QUICKACK) instead of delaying ACKs: shows what a
    /// peer that waits for ACKs (Nagle's algorithm) loses to delayed ACKs.
    #[arg(long)]
    quickack: bool,
}

impl GenArgs {
    fn config(&self) -> LoadConfig {
        LoadConfig {
            target: self.target,
            server_name: self
                .server_name
                .clone()
                .unwrap_or_else(|| self.target.ip().to_string()),
            target_host: self.target.ip().to_string(),
            uac_bind: self.uac_bind,
            uas_listen: self.uas_listen,
            ca: self.ca.clone(),
            uas_cert: self.uas_cert.clone(),
            uas_key: self.uas_key.clone(),
            connections: self.connections,
            rate: None,
            max_outstanding: self.max_outstanding,
            hold: Duration::ZERO,
            warmup: Duration::ZERO,
            duration: Duration::ZERO,
            call_timeout: Duration::from_secs(self.call_timeout),
            drain: Duration::from_secs(self.call_timeout),
            callee_prefix: "+4930".into(),
            markers: false,
            quickack: self.quickack,
        }
    }
}

#[derive(Args)]
struct LoadArgs {
    #[command(flatten)]
    generator: GenArgs,
    /// Offered calls per second (default: closed loop at --max-outstanding).
    #[arg(long)]
    rate: Option<f64>,
    /// Milliseconds from ACK to BYE.
    #[arg(long, default_value_t = 0)]
    hold_ms: u64,
    /// Warm-up seconds (not counted).
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Print `MEASURE start` / `MEASURE end` as the window opens and closes.
    #[arg(long)]
    markers: bool,
}

#[derive(Args)]
struct HoldArgs {
    #[command(flatten)]
    generator: GenArgs,
    /// Idle TLS connections to open besides the working ones.
    #[arg(long, default_value_t = 1000)]
    idle_connections: usize,
    /// Calls to place and hold.
    #[arg(long, default_value_t = 5000)]
    calls: u64,
}

#[derive(Args)]
struct RunArgs {
    /// Also measure the reference: Kamailio (TLS) + rtpengine (Debian packages kamailio,
    /// kamailio-tls-modules, rtpengine-daemon).
    #[arg(long)]
    reference: bool,
    /// Only the reference.
    #[arg(long)]
    reference_only: bool,
    /// Seconds measured per SBC.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Warm-up seconds before.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Calls in progress at most (closed loop).
    #[arg(long, default_value_t = 200)]
    outstanding: usize,
    /// Offered calls per second instead of the closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// UAC connections that carry the calls.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Milliseconds from ACK to BYE.
    #[arg(long, default_value_t = 0)]
    hold_ms: u64,
    /// Idle TLS connections for the memory figure.
    #[arg(long, default_value_t = 1000)]
    mem_connections: usize,
    /// Held calls for the memory figure.
    #[arg(long, default_value_t = 5000)]
    mem_calls: u64,
    /// Core of the SBC's signalling process.
    #[arg(long, default_value_t = 1)]
    sbc_core: u32,
    /// Core of the generator and the media relay.
    #[arg(long, default_value_t = 0)]
    gen_core: u32,
    /// Kamailio's TLS worker processes (tcp_children).
    #[arg(long, default_value_t = 8)]
    kamailio_children: u32,
    /// Where relay-control and relay-dataplane are (default: beside this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// bench/reference (default: the one in the source tree this binary was built from).
    #[arg(long)]
    reference_dir: Option<PathBuf>,
    /// A directory on the disk for state, call records and logs.
    #[arg(long, default_value = "/var/tmp")]
    work_dir: PathBuf,
    /// Keep the run's directory.
    #[arg(long)]
    keep: bool,
    /// Throughput only, no memory run.
    #[arg(long)]
    no_memory: bool,
    /// The generator ACKs every TCP segment at once (TCP_QUICKACK) instead of delaying its
    /// ACKs as peers usually do: shows what an SBC that waits for ACKs (Nagle) loses.
    #[arg(long)]
    quickack: bool,
}

fn print_result(json: &impl serde::Serialize) -> Result<()> {
    println!("RESULT {}", serde_json::to_string(json)?);
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Load(a) => {
            let mut cfg = a.generator.config();
            cfg.rate = a.rate;
            cfg.hold = Duration::from_millis(a.hold_ms);
            cfg.warmup = Duration::from_secs(a.warmup);
            cfg.duration = Duration::from_secs(a.seconds);
            cfg.markers = a.markers;
            let report = load::run(&cfg)?;
            eprintln!("{}", report.summary());
            print_result(&report)
        }
        Cmd::Hold(a) => {
            let mut cfg = a.generator.config();
            cfg.call_timeout = Duration::from_secs(a.generator.call_timeout.max(30));
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            std::thread::spawn(move || {
                for line in std::io::stdin().lines() {
                    let step = match line.as_deref().map(str::trim) {
                        Ok("calls") => HoldStep::Calls,
                        Ok("hangup") => HoldStep::Hangup,
                        _ => break,
                    };
                    if tx.send(step).is_err() {
                        break;
                    }
                }
            });
            let report = load::hold(&cfg, a.idle_connections, a.calls, rx)?;
            print_result(&report)
        }
        Cmd::SelfTest { seconds } => {
            let dir = tempfile::tempdir()?;
            let ip: IpAddr = [127, 0, 0, 1].into();
            let pki = pki::make(dir.path(), &[], &[], &[ip])?;
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let mut cfg = LoadConfig::self_test(port, pki.ca, pki.uas_cert, pki.uas_key);
            cfg.duration = Duration::from_secs(seconds);
            let report = load::run(&cfg)?;
            println!("{}", report.summary());
            print_result(&report)?;
            if report.completed_in_window == 0 || report.failures() > 0 {
                return Err(anyhow!("self-test: no calls completed, or some failed"));
            }
            Ok(())
        }
        Cmd::Run(a) => {
            let exe = std::env::current_exe()?;
            let bin_dir = a.bin_dir.clone().unwrap_or_else(|| {
                exe.parent()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("."))
            });
            let cfg = run::RunConfig {
                ours: !a.reference_only,
                reference: a.reference || a.reference_only,
                bin_dir,
                self_exe: exe,
                reference_dir: a.reference_dir.clone().unwrap_or_else(|| {
                    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/reference"))
                }),
                work_dir: a.work_dir.clone(),
                sbc_core: a.sbc_core,
                gen_core: a.gen_core,
                seconds: a.seconds,
                warmup: a.warmup,
                outstanding: a.outstanding,
                rate: a.rate,
                connections: a.connections,
                hold_ms: a.hold_ms,
                mem_connections: a.mem_connections,
                mem_calls: a.mem_calls,
                kamailio_children: a.kamailio_children,
                keep: a.keep,
                no_memory: a.no_memory,
                quickack: a.quickack,
            };
            run::run(&cfg).map(drop)
        }
    }
}
