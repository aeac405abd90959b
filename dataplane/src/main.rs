//! `relay-dataplane`: the DPDK data plane binary.
//!
//! * `demo`: the relay between generated SRTP callers and callees on two looping `net_ring`
//!   ports (the README's main job; no NIC, no hugepages).
//! * `run`: the relay on the given ports, with sessions from a file and/or the control socket.
//! * `portloop`: the bare DPDK port loop (generator, forwarder, sink).
//!
//! EAL arguments follow `--`; without any, an embedded default runs on two `net_ring`
//! virtual devices.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use relay_dataplane::demo::{self, DemoConfig};
use relay_dataplane::dpdk::{Eal, MacAddr, PktMbufPool, Port, PortConfig};
use relay_dataplane::portloop::{self, PortLoopConfig};
use relay_dataplane::relay::{PortAddr, Relay, RelayConfig};
use relay_dataplane::session::{parse_mac, SessionsFile};
use relay_dataplane::{control_socket, cores, rss, worker};
use relay_session::stats::{
    CoreMap, CorePort, CoreWorker, FinalCounters, Steering, WorkerCounters,
};

/// EAL arguments used when none are given: two looping ring devices, no hugepages, no PCI.
const DEFAULT_EAL_ARGS: &[&str] = &[
    "--no-huge",
    "-m",
    "256",
    "--no-pci",
    "--no-shconf",
    "-l",
    "0",
    "--log-level=notice",
    "--vdev=net_ring0",
    "--vdev=net_ring1",
];

#[derive(Parser)]
#[command(
    name = "relay-dataplane",
    version,
    about = "DPDK poll-mode SRTP media relay: data plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which cores do what.
#[derive(clap::Args, Clone)]
struct CoreOpts {
    /// The main core (control socket, statistics). Default: the first online CPU.
    #[arg(long)]
    main_core: Option<u32>,
    /// Worker cores, one poll loop each, e.g. `2-5` or `1,3`. Without it, one worker runs on
    /// the main core (and the EAL core arguments are yours to give after `--`).
    #[arg(long)]
    workers: Option<String>,
    /// Which core polls which receive queue, instead of `--workers`: `PORT:QUEUE@CORE,...`
    /// (PORT as named in `--port`, or its position there), e.g.
    /// `net_ring0:0@2,net_ring0:1@3,net_ring1:0@2`. Every receive queue of every port needs
    /// exactly one core; the map's cores are the workers, each with a transmit queue on every
    /// port. With EAL core arguments after `--` (`--lcores`), CORE is an EAL lcore id.
    #[arg(long, conflicts_with = "workers")]
    map: Option<String>,
}

impl CoreOpts {
    /// The receive-queue map, checked against the `--port` device names.
    fn map(&self, ports: &[String]) -> Result<Option<cores::RxMap>> {
        self.map
            .as_deref()
            .map(|m| cores::RxMap::parse(m, ports).map_err(|e| anyhow::anyhow!("{e}")))
            .transpose()
    }

    fn plan(&self, map: Option<cores::RxMap>) -> Result<Option<cores::CorePlan>> {
        let online = cores::online_cpus();
        let main = self.main_core.unwrap_or(online[0]);
        if let Some(map) = map {
            return Ok(Some(
                cores::plan_map(main, map, &online).map_err(|e| anyhow::anyhow!("{e}"))?,
            ));
        }
        let Some(workers) = &self.workers else {
            if self.main_core.is_some() {
                bail!("--main-core needs --workers or --map");
            }
            return Ok(None);
        };
        let workers = cores::parse_list(workers).map_err(|e| anyhow::anyhow!("--workers: {e}"))?;
        Ok(Some(
            cores::plan(main, &workers, &online).map_err(|e| anyhow::anyhow!("{e}"))?,
        ))
    }
}

/// The device name of each `--port` option, in order.
fn port_names(ports: &[String]) -> Vec<String> {
    ports
        .iter()
        .map(|p| p.split(',').next().unwrap_or_default().to_owned())
        .collect()
}

#[derive(Subcommand)]
enum Command {
    /// Relay generated SRTP calls between two looping ring ports and verify every packet.
    Demo {
        /// Concurrent calls (at most 20000).
        #[arg(long, default_value_t = 1000)]
        calls: u32,
        /// SRTP packets in all.
        #[arg(long, default_value_t = 1_000_000)]
        packets: u64,
        /// Suite the callers use.
        #[arg(long, default_value = "AES_CM_128_HMAC_SHA1_80")]
        inbound: String,
        /// Suite the callees get.
        #[arg(long, default_value = "AEAD_AES_128_GCM")]
        outbound: String,
        /// Stop after this many seconds even if packets are missing.
        #[arg(long, default_value_t = 60)]
        time_limit: u64,
        /// Keep the generated sessions file here (mode 0600; it holds the calls' keys), e.g. to
        /// run `relay-dataplane run --sessions` on it. By default a temporary file is used and
        /// deleted once loaded.
        #[arg(long)]
        sessions_file: Option<PathBuf>,
        /// EAL arguments (after `--`); default: two net_ring vdevs without hugepages.
        #[arg(last = true)]
        eal: Vec<String>,
    },
    /// Run the relay on DPDK ports.
    Run {
        /// A port: `NAME,ipv4=A.B.C.D/LEN[,gw=A.B.C.D][,vlan=ID][,mac=aa:bb:..]` (repeatable).
        #[arg(long = "port", required = true)]
        ports: Vec<String>,
        /// Sessions (schema version 1) to install at start-up.
        #[arg(long)]
        sessions: Option<PathBuf>,
        /// Unix socket for the control plane.
        #[arg(long)]
        control: Option<PathBuf>,
        /// Stop after this many seconds.
        #[arg(long)]
        duration: Option<f64>,
        /// Stop once nothing arrived for this many milliseconds (after something did).
        #[arg(long)]
        idle_exit_ms: Option<u64>,
        /// Write the final counters (JSON) here.
        #[arg(long)]
        stats_json: Option<PathBuf>,
        #[command(flatten)]
        cores: CoreOpts,
        /// EAL arguments (after `--`).
        #[arg(last = true)]
        eal: Vec<String>,
    },
    /// Print the core / port / queue map `run` would use, without starting anything.
    Plan {
        /// Ports as for `run` (only the device name is used).
        #[arg(long = "port", required = true)]
        ports: Vec<String>,
        #[command(flatten)]
        cores: CoreOpts,
    },
    /// Relay throughput on one core at many concurrent streams, next to `dpdk-testpmd`
    /// macswap on the same ring devices and the SRTP engine's own re-key rate.
    Bench {
        /// Concurrent stream counts to measure.
        #[arg(long, value_delimiter = ',', default_value = "1000,100000,1000000")]
        streams: Vec<u32>,
        /// Packets relayed per measurement.
        #[arg(long, default_value_t = 3_000_000)]
        packets: u64,
        /// Skip the dpdk-testpmd reference.
        #[arg(long)]
        no_testpmd: bool,
        /// Modes to measure: `rtp` (RTP -> RTP), `srtp` (AES_CM_128_HMAC_SHA1_80 re-key).
        #[arg(long, value_delimiter = ',', default_value = "rtp,srtp", value_parser = ["rtp", "srtp"])]
        modes: Vec<String>,
        /// Leave out the relay's staged prefetch (to measure what it is worth).
        #[arg(long)]
        no_prefetch: bool,
        /// Timed rounds per measurement; the SRTP engine's re-key rate is measured after each,
        /// and the ratio reported is the median of the rounds' ratios.
        #[arg(long, default_value_t = 5)]
        rounds: u32,
        /// Measure as if port B's NIC completed UDP checksums (net_ring does not: the frames
        /// then carry the pseudo-header sum): the relay's cost on such a NIC.
        #[arg(long)]
        checksum_offload: bool,
        /// EAL arguments (after `--`); default: two net_ring vdevs, lcore 1, 4 GiB without hugepages.
        #[arg(last = true)]
        eal: Vec<String>,
    },
    /// Generate frames on port A, forward A -> B rewriting Ethernet addresses, verify on B.
    Portloop {
        /// Frames to generate.
        #[arg(long, default_value_t = 1_000_000)]
        packets: u64,
        /// UDP payload bytes per frame (172 = RTP header + 20 ms of G.711).
        #[arg(long, default_value_t = 172)]
        payload: usize,
        /// Stop after this many seconds even if frames are missing.
        #[arg(long, default_value_t = 30)]
        time_limit: u64,
        /// Device name of port A.
        #[arg(long, default_value = "net_ring0")]
        port_a: String,
        /// Device name of port B.
        #[arg(long, default_value = "net_ring1")]
        port_b: String,
        /// EAL arguments (after `--`); default: two net_ring vdevs without hugepages.
        #[arg(last = true)]
        eal: Vec<String>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("relay-dataplane: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// A packet pool and the two looping ring ports `net_ring0` and `net_ring1`.
fn ring_pair<'eal>(
    eal: &'eal Eal,
    pool_name: &str,
    mbufs: u32,
) -> Result<(PktMbufPool<'eal>, Port<'eal>, Port<'eal>)> {
    let pool = PktMbufPool::create(
        eal,
        pool_name,
        mbufs,
        256,
        PktMbufPool::default_data_room(),
        -1,
    )
    .context("creating the mbuf pool (try a larger -m)")?;
    let open = |name: &str| -> Result<Port<'eal>> {
        let id = Port::id_by_name(eal, name)
            .with_context(|| format!("{name}: pass --vdev={name} in the EAL arguments"))?;
        Port::open(eal, id, &PortConfig::default(), pool).with_context(|| format!("opening {name}"))
    };
    Ok((pool, open("net_ring0")?, open("net_ring1")?))
}

fn eal_args(eal: Vec<String>) -> Vec<String> {
    if eal.is_empty() {
        DEFAULT_EAL_ARGS.iter().map(|s| s.to_string()).collect()
    } else {
        eal
    }
}

/// A parsed `--port` option.
struct PortOpt {
    name: String,
    ipv4: std::net::Ipv4Addr,
    prefix_len: u8,
    gateway: Option<std::net::Ipv4Addr>,
    ipv6: Option<(std::net::Ipv6Addr, u8)>,
    gateway6: Option<std::net::Ipv6Addr>,
    vlan: Option<u16>,
    mac: Option<[u8; 6]>,
    /// Let the NIC complete UDP checksums where it can (`csum=offload`, the default) or
    /// always sum in software (`csum=software`).
    checksum_offload: bool,
}

fn parse_port(spec: &str) -> Result<PortOpt> {
    let mut parts = spec.split(',');
    let name = parts
        .next()
        .filter(|n| !n.is_empty())
        .context("--port needs a device name first")?
        .to_owned();
    let (mut ipv4, mut prefix_len, mut gateway, mut vlan, mut mac) = (None, 24, None, None, None);
    let (mut ipv6, mut gateway6) = (None, None);
    let mut checksum_offload = true;
    for kv in parts {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--port {spec}: {kv:?} is not key=value"))?;
        match k {
            "ipv4" => {
                let (a, p) = v.split_once('/').unwrap_or((v, "24"));
                ipv4 = Some(
                    a.parse()
                        .with_context(|| format!("--port {spec}: bad ipv4 {a:?}"))?,
                );
                prefix_len = p
                    .parse()
                    .ok()
                    .filter(|p| *p <= 32)
                    .with_context(|| format!("--port {spec}: bad prefix {p:?}"))?;
            }
            "ipv6" => {
                let (a, p) = v.split_once('/').unwrap_or((v, "64"));
                let addr = a
                    .parse()
                    .with_context(|| format!("--port {spec}: bad ipv6 {a:?}"))?;
                let len = p
                    .parse()
                    .ok()
                    .filter(|p| *p <= 128)
                    .with_context(|| format!("--port {spec}: bad prefix {p:?}"))?;
                ipv6 = Some((addr, len));
            }
            "gw6" => {
                gateway6 = Some(
                    v.parse()
                        .with_context(|| format!("--port {spec}: bad gw6 {v:?}"))?,
                )
            }
            "gw" => {
                gateway = Some(
                    v.parse()
                        .with_context(|| format!("--port {spec}: bad gw {v:?}"))?,
                )
            }
            "vlan" => {
                vlan = Some(
                    v.parse()
                        .ok()
                        .filter(|v| (1..4095).contains(v))
                        .with_context(|| format!("--port {spec}: bad vlan {v:?}"))?,
                )
            }
            "mac" => mac = Some(parse_mac(v).with_context(|| format!("--port {spec}"))?),
            "csum" => {
                checksum_offload = match v {
                    "offload" => true,
                    "software" => false,
                    _ => bail!("--port {spec}: csum is offload or software, not {v:?}"),
                }
            }
            _ => bail!("--port {spec}: unknown key {k:?} (ipv4, gw, ipv6, gw6, vlan, mac, csum)"),
        }
    }
    if ipv4.is_none() && ipv6.is_none() {
        bail!("--port {spec}: needs ipv4=A.B.C.D/LEN and/or ipv6=ADDR/LEN");
    }
    let ipv4 = ipv4.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
    Ok(PortOpt {
        name,
        ipv4,
        prefix_len,
        gateway,
        ipv6,
        gateway6,
        vlan,
        mac,
        checksum_offload,
    })
}

/// `dpdk-testpmd` macswap forwarding on two net_ring ports, one forwarding core (lcore 1):
/// packets forwarded per second, summed over both ports.
fn testpmd_macswap_pps() -> Result<f64> {
    let out = std::process::Command::new("timeout")
        .args([
            "-s",
            "INT",
            "7",
            "dpdk-testpmd",
            "--no-huge",
            "-m",
            "1024",
            "--no-pci",
            "--no-shconf",
            "-l",
            "0,1",
            "--log-level=error",
        ])
        .args([
            "--vdev=net_ring0",
            "--vdev=net_ring1",
            "--",
            "--forward-mode=macswap",
            "--tx-first",
            "--txpkts=214",
            "--stats-period=2",
            "--no-flush-rx",
            "--total-num-mbufs=8192",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .context("running dpdk-testpmd (package dpdk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The last stats period's Rx-pps of each port.
    let rates: Vec<f64> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Rx-pps:"))
        .filter_map(|r| r.split_whitespace().next()?.parse().ok())
        .collect();
    if rates.len() < 2 {
        bail!("no Rx-pps in dpdk-testpmd output:\n{text}");
    }
    Ok(rates[rates.len() - 2..].iter().sum())
}

/// The SRTP engine's burst re-key rate (AES_CM_128_HMAC_SHA1_80, 172-byte RTP) on this core.
fn engine_rekey_pps() -> f64 {
    use relay_srtp::{rekey_rtp_burst, Context, ContextConfig, MasterKey, SdesKey, Suite};
    let suite = Suite::AesCm128HmacSha1_80;
    let ka = SdesKey::new(MasterKey::new(suite, &[1; 16], &[2; 14]).expect("lengths"));
    let kb = SdesKey::new(MasterKey::new(suite, &[3; 16], &[4; 14]).expect("lengths"));
    let n = 200_000usize;
    let mut tx = Context::new(&ka, ContextConfig::default());
    let mut bufs: Vec<[u8; 256]> = (0..n)
        .map(|i| {
            let mut b = [0u8; 256];
            b[0] = 0x80;
            b[2..4].copy_from_slice(&(i as u16).to_be_bytes());
            b[8..12].copy_from_slice(&7u32.to_be_bytes());
            tx.protect_rtp(&mut b, 172).expect("protect");
            b
        })
        .collect();
    let (mut rx, mut out) = (
        Context::new(&ka, ContextConfig::default()),
        Context::new(&kb, ContextConfig::default()),
    );
    let lens = [182usize; 32];
    let mut results = [Ok(0); 32];
    let start = std::time::Instant::now();
    for chunk in bufs.chunks_mut(32) {
        let mut views: Vec<&mut [u8]> = chunk.iter_mut().map(|b| &mut b[..]).collect();
        let k = views.len();
        rekey_rtp_burst(&mut rx, &mut out, &mut views, &lens[..k], &mut results[..k]);
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Demo {
            calls,
            packets,
            inbound,
            outbound,
            time_limit,
            sessions_file,
            eal,
        } => {
            if calls == 0 || calls > 20_000 {
                bail!("--calls must be between 1 and 20000");
            }
            let config = DemoConfig {
                calls,
                packets,
                inbound: inbound
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--inbound: {e}"))?,
                outbound: outbound
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--outbound: {e}"))?,
                time_limit: Duration::from_secs(time_limit),
                sessions_file,
            };
            let eal_args = eal_args(eal);
            println!("EAL arguments: {}", eal_args.join(" "));
            let eal = Eal::init(eal_args).context("starting the DPDK EAL")?;
            let (pool, a, b) = ring_pair(&eal, "demo", 16383)?;
            println!(
                "{} calls: callers send {} to {} (198.18.0.1), the relay re-keys to {} for the callees via {} (198.19.0.1)",
                calls, config.inbound, a.name(), config.outbound, b.name()
            );
            let r = demo::run(&eal, pool, &a, &b, &config)?;
            let secs = r.elapsed.as_secs_f64().max(1e-9);
            match &r.sessions_file {
                Some(p) => println!(
                    "sessions    {calls:>10} calls in a generated sessions file, kept at {} (mode 0600)",
                    p.display()
                ),
                None => println!(
                    "sessions    {calls:>10} calls in a generated sessions file (mode 0600, loaded as `run --sessions` does, then deleted)"
                ),
            }
            println!(
                "sent        {:>10} SRTP packets ({}) from the callers",
                r.sent, config.inbound
            );
            println!(
                "relayed     {:>10} packets, re-keyed to {} ({:.2} Mpps end to end: callers, relay and callees share one core)",
                r.relay.forwarded,
                config.outbound,
                r.relay.forwarded as f64 / secs / 1e6
            );
            println!("received    {:>10} packets at the callees", r.received);
            println!("verified    {:>10} decrypted with the callees' keys, byte-identical to what was sent", r.verified);
            let drops: Vec<String> = relay_dataplane::relay::DropReason::ALL
                .iter()
                .filter(|d| r.relay.drops[d.index()] > 0)
                .map(|d| format!("{}={}", d.name(), r.relay.drops[d.index()]))
                .collect();
            println!(
                "drops       {}",
                if drops.is_empty() {
                    "none".into()
                } else {
                    drops.join(" ")
                }
            );
            let ok = r.verified == packets && r.bad == 0;
            println!("result      {}", if ok { "OK" } else { "INCOMPLETE" });
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Plan { ports, cores } => {
            let names = port_names(&ports);
            let plan = cores
                .plan(cores.map(&names)?)?
                .context("plan needs --workers or --map (and optionally --main-core)")?;
            let names: Vec<(String, Option<u32>)> = names
                .into_iter()
                .map(|name| {
                    let node = cores::pci_node(&name);
                    (name, node)
                })
                .collect();
            let (text, warnings) = plan.describe(&names);
            print!("{text}");
            println!("EAL core arguments: {}", plan.eal_args().join(" "));
            for w in warnings {
                println!("warning: {w}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            ports,
            sessions,
            control: control_path,
            duration,
            idle_exit_ms,
            stats_json,
            cores,
            eal,
        } => {
            let port_opts: Vec<PortOpt> =
                ports.iter().map(|p| parse_port(p)).collect::<Result<_>>()?;
            let names = port_names(&ports);
            let map = cores.map(&names)?;
            let defaults = eal.is_empty();
            let mut eal = eal_args(eal);
            let eal_cores = |a: &String| {
                matches!(a.as_str(), "-l" | "-c" | "--lcores" | "--main-lcore")
                    || a.starts_with("--lcores=")
                    || a.starts_with("-l")
            };
            // `--map` with the EAL's own core arguments names EAL lcores (checked once the
            // EAL is up); otherwise the plan names CPUs and gives DPDK its core arguments.
            let lcore_map = map.is_some()
                && !defaults
                && eal.iter().any(eal_cores)
                && cores.main_core.is_none();
            let plan = if lcore_map {
                None
            } else {
                cores.plan(map.clone())?
            };
            if let Some(plan) = &plan {
                if defaults {
                    // The embedded default names core 0; the plan decides the cores instead.
                    if let Some(i) = eal.iter().position(|a| a == "-l") {
                        eal.drain(i..i + 2);
                    }
                }
                if eal.iter().any(eal_cores) {
                    bail!("give cores with --main-core/--workers (or --map), not in the EAL arguments");
                }
                eal.extend(plan.eal_args());
            }
            let doc = match &sessions {
                Some(path) => Some(
                    SessionsFile::load(path)
                        .with_context(|| format!("sessions file {}", path.display()))?,
                ),
                None => None,
            };
            let stop = Arc::new(AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(sig, stop.clone())
                    .context("installing the signal handler")?;
            }
            let eal = Eal::init(eal).context("starting the DPDK EAL")?;
            // Workers: the planned cores, else the EAL's worker lcores (`-l`/`--lcores` passed
            // through), else the main lcore itself.
            let worker_lcores: Vec<u32> = match eal.worker_lcores() {
                w if w.is_empty() => vec![eal.lcore_id()],
                w => w,
            };
            let on_main = worker_lcores == [eal.lcore_id()];
            let nw = worker_lcores.len();
            if let Some(map) = &map {
                for core in map.cores() {
                    if !worker_lcores.contains(&core) {
                        bail!(
                            "--map names core {core}, which is not a worker lcore of the EAL (workers: {:?}); with --lcores, every CORE in --map must be one of its worker lcores",
                            worker_lcores
                        );
                    }
                }
            }
            let pool = PktMbufPool::create(
                &eal,
                "relay",
                16383 * nw as u32,
                256,
                PktMbufPool::default_data_room(),
                -1,
            )
            .context("creating the mbuf pool (try a larger -m)")?;
            let mut opened = Vec::new();
            let mut addrs = Vec::new();
            let mut placement = rss::Placement::new(nw as u16);
            // Per port: the receive queues each worker polls, and whether the workers that
            // receive hand packets over (software dispatch) rather than the NIC steering them.
            let mut rx_of: Vec<Vec<Vec<u16>>> = Vec::new();
            let mut dispatched: Vec<bool> = Vec::new();
            for (pi, p) in port_opts.iter().enumerate() {
                let id = Port::id_by_name(&eal, &p.name).with_context(|| {
                    format!("port {}: pass it with --vdev or bind the NIC", p.name)
                })?;
                // Several workers: RSS on the UDP destination port if the port has it, else
                // software dispatch (see worker::Handoff): a receive queue per worker where the
                // port has enough (however it spreads packets over them), else one, and the
                // workers that receive hand each frame to its owner. An explicit --map says
                // which worker polls which queue; unless that is queue i on worker i of a port
                // with RSS, its ports are shared by dispatch.
                let caps = Port::caps(&eal, id).with_context(|| format!("querying {}", p.name))?;
                if usize::from(caps.max_tx_queues) < nw {
                    bail!(
                        "port {}: {nw} workers need {nw} transmit queues, it has {}; use fewer workers",
                        p.name,
                        caps.max_tx_queues
                    );
                }
                let polls: Vec<Vec<u16>> = match &map {
                    Some(map) => worker_lcores
                        .iter()
                        .map(|&l| map.queues_of(pi, l))
                        .collect(),
                    None if usize::from(caps.max_rx_queues) >= nw => {
                        (0..nw as u16).map(|q| vec![q]).collect()
                    }
                    None => (0..nw)
                        .map(|w| if w == 0 { vec![0] } else { Vec::new() })
                        .collect(),
                };
                let rx_queues = polls.iter().map(Vec::len).sum::<usize>() as u16;
                if rx_queues > caps.max_rx_queues {
                    bail!(
                        "port {}: --map gives it {rx_queues} receive queues, it has {}",
                        p.name,
                        caps.max_rx_queues
                    );
                }
                let rss = nw > 1 && caps.rss_udp && rx_queues > 1;
                let one_each = polls
                    .iter()
                    .enumerate()
                    .all(|(w, q)| q.as_slice() == [w as u16]);
                let dispatch = nw > 1 && !(rss && one_each);
                let config = PortConfig {
                    promiscuous: true,
                    rx_queues,
                    tx_queues: nw as u16,
                    rss_udp_dst_port: rss,
                    // Enabled only if the device has it (Port::offloads says).
                    tx_offloads: if p.checksum_offload {
                        relay_sys::RTE_ETH_TX_OFFLOAD_UDP_CKSUM
                    } else {
                        0
                    },
                    rx_offloads: if p.checksum_offload {
                        relay_sys::RTE_ETH_RX_OFFLOAD_UDP_CKSUM
                    } else {
                        0
                    },
                    ..PortConfig::default()
                };
                let port = Port::open(&eal, id, &config, pool)
                    .with_context(|| format!("opening {}", p.name))?;
                let mac = p.mac.unwrap_or_else(|| match port.mac() {
                    MacAddr([0, 0, 0, 0, 0, 0]) => [0x02, 0, 0, 0, 0, id as u8],
                    m => m.0,
                });
                let udp_checksum_offload =
                    port.offloads().1 & relay_sys::RTE_ETH_TX_OFFLOAD_UDP_CKSUM != 0;
                let udp_checksum_check =
                    port.offloads().0 & relay_sys::RTE_ETH_RX_OFFLOAD_UDP_CKSUM != 0;
                addrs.push(PortAddr {
                    port: id,
                    mac,
                    ipv4: p.ipv4,
                    prefix_len: p.prefix_len,
                    gateway: p.gateway,
                    vlan: p.vlan,
                    ipv6: p.ipv6.map(|(a, _)| a),
                    prefix6_len: p.ipv6.map_or(64, |(_, l)| l),
                    gateway6: p.gateway6,
                    udp_checksum_offload,
                });
                let v6 = p.ipv6.map_or(String::new(), |(a, l)| format!(", {a}/{l}"));
                let steering = match (nw, dispatch) {
                    (1, _) => String::new(),
                    (_, false) => ", RSS on the UDP destination port".into(),
                    (_, true) => {
                        let receivers: Vec<String> = polls
                            .iter()
                            .enumerate()
                            .filter(|(_, q)| !q.is_empty())
                            .map(|(w, _)| w.to_string())
                            .collect();
                        let (who, verbs) = match receivers.as_slice() {
                            [one] => (format!("worker {one}"), "receives and hands"),
                            many => (format!("workers {}", many.join(",")), "receive and hand"),
                        };
                        format!(
                            ", {}software dispatch: {who} {verbs} packets to their workers",
                            if rss {
                                "RSS over the queues, "
                            } else {
                                "no RSS, "
                            },
                        )
                    }
                };
                println!(
                    "port {}: id {id}, {}/{}{v6}, mac {}, {rx_queues} rx / {nw} tx queue(s){steering}, UDP checksums {} in, {} out",
                    p.name,
                    p.ipv4,
                    p.prefix_len,
                    MacAddr(mac),
                    if udp_checksum_check {
                        "checked by the NIC"
                    } else {
                        "checked in software"
                    },
                    if udp_checksum_offload {
                        "completed by the NIC"
                    } else {
                        "summed in software"
                    }
                );
                // The table the owner of a destination port is computed with: the NIC's
                // where it steers, else the software dispatch's (worker::hand_over).
                let reta_size = if dispatch {
                    rss::SOFTWARE_RETA_SIZE
                } else {
                    port.reta_size()
                };
                placement.add_address(std::net::IpAddr::V4(p.ipv4), reta_size);
                if let Some((v6, _)) = p.ipv6 {
                    placement.add_address(std::net::IpAddr::V6(v6), reta_size);
                }
                rx_of.push(polls);
                dispatched.push(dispatch);
                opened.push(port);
            }
            // A call belongs to the worker all its local ports, RTP and RTCP, map to (RSS or
            // software dispatch on the UDP destination port); see relay_proto::rss.
            let steer = move |call: &relay_dataplane::session::CallSpec| -> Result<usize, String> {
                placement.place(call).map_err(|e| e.to_string())
            };
            let mut relays: Vec<Relay> = (0..nw)
                .map(|_| Relay::new(addrs.clone(), RelayConfig::default()))
                .collect();
            let channels: Vec<_> = (0..nw)
                .map(|_| crossbeam_channel::bounded::<worker::ControlMsg>(1024))
                .collect();
            let mut owners = Vec::new();
            if let Some(doc) = &doc {
                let neighbours = SessionsFile {
                    version: doc.version,
                    neighbours: doc.neighbours.clone(),
                    calls: Vec::new(),
                };
                for r in &mut relays {
                    r.install(&neighbours)
                        .context("installing the static neighbours")?;
                }
                for call in &doc.calls {
                    let w = steer(call).map_err(|e| anyhow::anyhow!("sessions file: {e}"))?;
                    relays[w]
                        .add_call(call)
                        .with_context(|| format!("sessions file: call {}", call.id))?;
                    owners.push((call.id.clone(), w));
                }
                println!("installed {} calls from the sessions file", doc.calls.len());
            }
            let router = Arc::new(control_socket::Router::new(
                channels.iter().map(|(tx, _)| tx.clone()).collect(),
                steer,
            ));
            for (id, w) in &owners {
                router.register(id, *w);
            }
            // How packets reach each worker: the only worker, RSS, or software dispatch
            // (workers receive on the queues they poll and hand packets to their owners).
            let core_map = CoreMap {
                main_lcore: eal.lcore_id(),
                workers: worker_lcores
                    .iter()
                    .enumerate()
                    .map(|(i, &lcore)| CoreWorker {
                        lcore,
                        ports: port_opts
                            .iter()
                            .enumerate()
                            .map(|(pi, p)| CorePort {
                                name: p.name.clone(),
                                queue: i as u16,
                                rx_queues: rx_of[pi][i].clone(),
                                steering: match (nw, dispatched[pi]) {
                                    (1, _) => Steering::Single,
                                    (_, false) => Steering::Rss,
                                    (_, true) => Steering::Dispatch,
                                },
                            })
                            .collect(),
                    })
                    .collect(),
            };
            if let Some(path) = &control_path {
                control_socket::serve(path, router.clone(), core_map)
                    .with_context(|| format!("control socket {}", path.display()))?;
                println!("control socket {}", path.display());
            }
            let limits = worker::Limits {
                stop: &stop,
                duration: duration.map(Duration::from_secs_f64),
                idle_exit: idle_exit_ms.map(Duration::from_millis),
            };
            {
                // Transmit queue w of every port, and the receive queues the map gives it, go
                // to worker w.
                let port_ids: Vec<u16> = opened.iter().map(Port::id).collect();
                let mut handles: Vec<_> = Vec::new();
                for (port, polls) in opened.iter_mut().zip(&rx_of) {
                    let name = port.id();
                    handles.push(
                        port.queue_handles_with(polls)
                            .with_context(|| format!("port {name}: receive queues"))?
                            .into_iter(),
                    );
                }
                let mut per_worker: Vec<Vec<_>> = (0..nw)
                    .map(|_| handles.iter_mut().filter_map(Iterator::next).collect())
                    .collect();
                // Per worker, the ports on which it receives for others (software dispatch).
                let dispatch_ports: Vec<Vec<u16>> = (0..nw)
                    .map(|w| {
                        port_ids
                            .iter()
                            .enumerate()
                            .filter(|&(pi, _)| dispatched[pi] && !rx_of[pi][w].is_empty())
                            .map(|(_, &id)| id)
                            .collect()
                    })
                    .collect();
                // Software dispatch rings, one per (receiving worker, owning worker) pair.
                let mut rings = Vec::new();
                for from in (0..nw).filter(|&w| !dispatch_ports[w].is_empty()) {
                    for to in (0..nw).filter(|&to| to != from) {
                        let ring = relay_dataplane::dpdk::MbufRing::create(
                            &eal,
                            &format!("handoff{from}to{to}"),
                            4096,
                        )
                        .context("creating the dispatch rings (try a larger -m)")?;
                        rings.push((from, to, ring));
                    }
                }
                let mut handoffs: Vec<worker::Handoff<'_, '_>> = (0..nw)
                    .map(|w| worker::Handoff {
                        me: w,
                        workers: nw as u16,
                        dispatch_ports: dispatch_ports[w].clone(),
                        to: (0..nw).map(|_| None).collect(),
                        from: Vec::new(),
                        peers: channels
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| *i != w)
                            .map(|(_, (tx, _))| tx.clone())
                            .collect(),
                    })
                    .collect();
                for (from, to, ring) in &mut rings {
                    let (producer, consumer) = ring.ends();
                    handoffs[*from].to[*to] = Some(producer);
                    handoffs[*to].from.push(consumer);
                }
                if on_main {
                    worker::run(
                        &eal,
                        pool,
                        &mut per_worker[0],
                        &mut relays[0],
                        Some(&channels[0].1),
                        &mut handoffs[0],
                        &limits,
                    );
                } else {
                    let eal_ref = &eal;
                    let limits_ref = &limits;
                    let ((), failed) = eal.scope(|scope| {
                        for ((((queues, relay), (_, rx)), handoff), &lcore) in per_worker.iter_mut().zip(relays.iter_mut()).zip(channels.iter()).zip(handoffs.iter_mut()).zip(&worker_lcores) {
                            if let Err(e) = scope.launch(lcore, move || worker::run(eal_ref, pool, queues, relay, Some(rx), handoff, limits_ref)) {
                                eprintln!("relay-dataplane: cannot start the worker on lcore {lcore}: {e}");
                            }
                        }
                    });
                    if !failed.is_empty() {
                        bail!("the workers on lcores {failed:?} failed");
                    }
                }
            }
            let summary = FinalCounters {
                worker: WorkerCounters::sum(
                    relays
                        .iter()
                        .map(|r| control_socket::worker_counters(&r.stats))
                        .collect(),
                ),
                workers: relays
                    .iter()
                    .map(|r| control_socket::worker_counters(&r.stats))
                    .collect(),
                calls: relays
                    .iter()
                    .flat_map(|r| r.call_ids().into_iter().filter_map(|id| r.call_stats(&id)))
                    .map(|c| control_socket::call_counters(&c))
                    .collect(),
            };
            let total = WorkerCounters {
                workers: None,
                ..summary.worker.clone()
            };
            println!("final counters: {}", serde_json::to_string(&total)?);
            if let Some(path) = &stats_json {
                std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            drop(opened);
            if let Some(path) = &control_path {
                let _ = std::fs::remove_file(path);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            streams,
            packets,
            no_testpmd,
            modes,
            no_prefetch,
            rounds,
            checksum_offload,
            eal,
        } => {
            if rounds == 0 {
                bail!("--rounds must be at least 1");
            }
            let testpmd = if no_testpmd {
                None
            } else {
                Some(testpmd_macswap_pps()?)
            };
            let rekey = engine_rekey_pps();
            let eal_args = if eal.is_empty() {
                [
                    "--no-huge",
                    "-m",
                    "4096",
                    "--no-pci",
                    "--no-shconf",
                    "-l",
                    "1",
                    "--log-level=error",
                    "--vdev=net_ring0",
                    "--vdev=net_ring1",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect()
            } else {
                eal
            };
            println!("EAL arguments: {}", eal_args.join(" "));
            let eal = Eal::init(eal_args).context("starting the DPDK EAL")?;
            let (pool, a, b) = ring_pair(&eal, "bench", 8191)?;
            if let Some(t) = testpmd {
                println!(
                    "(ref) dpdk-testpmd macswap, net_ring, 1 core      {:>10.2} Mpps",
                    t / 1e6
                );
            }
            println!(
                "(ref) relay-srtp burst re-key, 1 core            {:>10.2} Mpps   (also after every SRTP round)",
                rekey / 1e6
            );
            println!("Mpps: the median of {rounds} timed rounds; ratio: the median of the rounds' ratios to their reference");
            println!(
                "{:<10} {:<28} {:>10} {:>24} {:>14}",
                "streams", "mode", "Mpps", "vs reference [range]", "bytes/stream"
            );
            let mut first: std::collections::HashMap<bool, f64> = std::collections::HashMap::new();
            for &n in &streams {
                for srtp in [false, true] {
                    if !modes.iter().any(|m| (m == "srtp") == srtp) {
                        continue;
                    }
                    let case = relay_dataplane::bench::BenchCase {
                        streams: n,
                        srtp,
                        packets,
                        prefetch: !no_prefetch,
                        rounds,
                        checksum_offload,
                    };
                    // SRTP rounds are each followed by the engine's own re-key rate; plain RTP
                    // is compared with the one testpmd run (a separate process).
                    let r = relay_dataplane::bench::run(&eal, pool, &a, &b, case, || {
                        srtp.then(engine_rekey_pps).or(testpmd)
                    })?;
                    let (mode, reference) = if srtp {
                        ("SRTP re-key (AES_CM_128_80)", "re-key")
                    } else {
                        ("RTP -> RTP", "testpmd")
                    };
                    let ratio = r.ratios().map_or("-".into(), |(median, lo, hi)| {
                        format!("{median:.2}x {reference} [{lo:.2}-{hi:.2}]")
                    });
                    let pps = r.median_pps();
                    let base = *first.entry(srtp).or_insert(pps);
                    let footprint = (r.bytes_per_stream * f64::from(n)) as usize;
                    let line_ns = relay_dataplane::bench::random_line_ns(footprint);
                    let floor = |lines: f64| 1e3 / (lines * line_ns);
                    println!(
                        "{:<10} {:<28} {:>10.2} {:>24} {:>14.0}   ({:.2}x of {} streams)",
                        n,
                        mode,
                        pps / 1e6,
                        ratio,
                        r.bytes_per_stream,
                        pps / base,
                        streams[0]
                    );
                    // The memory reference: what reading the lines a packet needs, and
                    // nothing else, would allow at this footprint.
                    let lines = if srtp { 25.0 } else { 10.0 };
                    println!(
                        "{:<10} {:<28} {:>10.2} {:>14}   (ref: {line_ns:.1} ns per random line in {} MB, {lines} lines per packet)",
                        "",
                        "  memory floor",
                        floor(lines),
                        format!("{:.2}x floor", pps / 1e6 / floor(lines)),
                        footprint >> 20
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Portloop {
            packets,
            payload,
            time_limit,
            port_a,
            port_b,
            eal,
        } => {
            let eal_args = eal_args(eal);
            if !(8..=1458).contains(&payload) {
                bail!(
                    "--payload must be between 8 and 1458 bytes (one untagged 1500-byte IPv4 MTU)"
                );
            }
            println!("EAL arguments: {}", eal_args.join(" "));
            let eal = Eal::init(eal_args).context("starting the DPDK EAL")?;
            let pool = PktMbufPool::create(
                &eal,
                "portloop",
                8191,
                256,
                PktMbufPool::default_data_room(),
                -1,
            )
            .context("creating the mbuf pool (try a larger -m)")?;
            let config = PortConfig::default();
            let a_id = Port::id_by_name(&eal, &port_a)
                .with_context(|| format!("port A ({port_a}): pass it with --vdev"))?;
            let b_id = Port::id_by_name(&eal, &port_b)
                .with_context(|| format!("port B ({port_b}): pass it with --vdev"))?;
            if a_id == b_id {
                bail!("port A and port B are the same device ({port_a})");
            }
            let a = Port::open(&eal, a_id, &config, pool)
                .with_context(|| format!("opening {port_a}"))?;
            let b = Port::open(&eal, b_id, &config, pool)
                .with_context(|| format!("opening {port_b}"))?;
            println!("port A: {} (id {}, mac {})", a.name(), a.id(), a.mac());
            println!("port B: {} (id {}, mac {})", b.name(), b.id(), b.mac());
            let loop_config = PortLoopConfig {
                packets,
                payload_len: payload,
                time_limit: Duration::from_secs(time_limit),
            };
            let r = portloop::run(&eal, pool, &a, &b, &loop_config)?;
            println!("generated   {:>12} frames on {}", r.generated, a.name());
            println!(
                "forwarded   {:>12} frames ({} bytes) {} -> {}, {:.2} Mpps",
                r.forwarded,
                r.forwarded_bytes,
                a.name(),
                b.name(),
                r.forwarded_pps() / 1e6
            );
            println!("received    {:>12} frames on {}", r.received, b.name());
            println!(
                "verified    {:>12} frames byte-identical to what was generated",
                r.verified
            );
            println!(
                "problems    corrupt {} out-of-order {} dropped (tx full) {}",
                r.corrupt, r.out_of_order, r.dropped_tx_full
            );
            println!(
                "port stats  {}: rx {} tx {}; {}: rx {} tx {}",
                a.name(),
                r.port_a.rx_packets,
                r.port_a.tx_packets,
                b.name(),
                r.port_b.rx_packets,
                r.port_b.tx_packets
            );
            let ok = r.verified == packets && r.corrupt == 0 && r.out_of_order == 0;
            println!("result      {}", if ok { "OK" } else { "INCOMPLETE" });
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
