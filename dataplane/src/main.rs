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
use relay_dataplane::config::{eal_args_or_default, port_names, PortSpec};
use relay_dataplane::demo::{self, DemoConfig};
use relay_dataplane::dpdk::Eal;
use relay_dataplane::portloop::{self, PortLoopConfig};
use relay_dataplane::runtime::{self, ring_pair};
use relay_dataplane::session::SessionsFile;
use relay_dataplane::{bench, cores, worker};
use relay_session::stats::WorkerCounters;

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
        /// A port: `NAME,ipv4=A.B.C.D/LEN[,addrs=N][,gw=A.B.C.D][,vlan=ID][,mac=aa:bb:..]` (repeatable).
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
    /// Resident memory per stream of the bench's calls, installed in a relay of this process
    /// alone (no EAL): what `bench` runs in a fresh process for each of its memory figures.
    #[command(hide = true)]
    BenchMemory {
        /// Streams.
        #[arg(long)]
        streams: u32,
        /// SRTP calls (else plain RTP).
        #[arg(long)]
        srtp: bool,
        /// Two-way calls (two streams each; else one).
        #[arg(long)]
        two_way: bool,
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
        /// Hand the relay one frame at a time instead of whole bursts (to measure what the
        /// burst path, SRTP tags of a burst computed together, is worth).
        #[arg(long)]
        per_packet: bool,
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
    let cli = Cli::parse();
    match &cli.command {
        Command::Run { eal, .. } => {
            huge_pages_for_the_heap(heap_pages(&eal_args_or_default(eal.clone())))
        }
        // The bench's default EAL arguments run without hugepages, as `run`'s do.
        Command::Bench { eal, .. } if !eal.is_empty() => huge_pages_for_the_heap(heap_pages(eal)),
        Command::Bench { .. } | Command::BenchMemory { .. } => {
            huge_pages_for_the_heap(HeapPages::Transparent)
        }
        _ => {}
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("relay-dataplane: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Which huge pages the heap is to be backed with (glibc's `glibc.malloc.hugetlb`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HeapPages {
    /// Transparent huge pages (`1`): glibc advises the kernel to back the heap with huge pages
    /// where it can (best effort: under fragmentation it gives ordinary pages).
    Transparent,
    /// The reserved hugepage pool (`2`, `MAP_HUGETLB`), which the EAL uses too; glibc takes
    /// ordinary pages once the pool runs out.
    Reserved,
}

/// [`HeapPages::Reserved`] when the EAL runs on hugepages (its arguments lack `--no-huge`)
/// and the system's pool of the default size has free pages: the issue's "tables in
/// hugepage memory when the EAL has hugepages". Otherwise transparent huge pages.
fn heap_pages(eal_args: &[String]) -> HeapPages {
    let pool_free = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("HugePages_Free:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    heap_pages_for(eal_args, pool_free)
}

/// [`heap_pages`] for a pool with `pool_free` free pages.
fn heap_pages_for(eal_args: &[String], pool_free: u64) -> HeapPages {
    let eal_on_hugepages = !eal_args.iter().any(|a| a == "--no-huge");
    if eal_on_hugepages && pool_free > 0 {
        HeapPages::Reserved
    } else {
        HeapPages::Transparent
    }
}

/// What the heap runs on, for the bench's header: the tunable as this process got it.
fn heap_pages_in_use() -> String {
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    match tunables
        .split(':')
        .find_map(|t| t.strip_prefix("glibc.malloc.hugetlb="))
    {
        Some("1") => "heap: transparent huge pages (glibc.malloc.hugetlb=1)".into(),
        Some("2") => "heap: the reserved hugepage pool (glibc.malloc.hugetlb=2)".into(),
        Some(other) => format!("heap: glibc.malloc.hugetlb={other}"),
        None => "heap: ordinary pages".into(),
    }
}

/// The relay's tables (flows, calls, SRTP contexts) are read at random across gigabytes with
/// a million streams; on 4 KB pages every packet then also misses the TLB and walks page
/// tables. glibc (2.35 and later) backs `malloc`'s heap with huge pages when the tunable
/// `glibc.malloc.hugetlb` is set at start-up, which only the environment can do: so the
/// process restarts itself once with it, keeping its PID and arguments. `pages` says which
/// ([`heap_pages`]): transparent ones (measured in bench/RESULTS.md: SRTP re-key at 1 million
/// streams 0.94 -> 1.20 Mpps), or, when the EAL runs on hugepages, the reserved pool the EAL
/// draws from (glibc falls back to ordinary pages when it runs out). Skipped when
/// `GLIBC_TUNABLES` already names the tunable or `RELAY_NO_HUGE_HEAP=1`; a kernel with
/// transparent huge pages off (`never`) simply ignores the transparent kind.
fn huge_pages_for_the_heap(pages: HeapPages) {
    use std::os::unix::process::CommandExt;
    const TUNABLE: &str = "glibc.malloc.hugetlb";
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if tunables.contains(TUNABLE)
        || std::env::var_os("RELAY_NO_HUGE_HEAP").is_some_and(|v| v != "0")
    {
        return;
    }
    let mode = match pages {
        HeapPages::Transparent => 1,
        HeapPages::Reserved => 2,
    };
    let value = if tunables.is_empty() {
        format!("{TUNABLE}={mode}")
    } else {
        format!("{tunables}:{TUNABLE}={mode}")
    };
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| "relay-dataplane".into());
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    // Only returns if the exec failed; the process then goes on with the normal heap.
    let err = std::process::Command::new(exe)
        .arg0(argv0)
        .args(args)
        .env("GLIBC_TUNABLES", value)
        .exec();
    eprintln!("relay-dataplane: note: could not restart with huge pages for the heap ({err}); going on without");
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
            let eal_args = eal_args_or_default(eal);
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
            let port_opts: Vec<PortSpec> = ports
                .iter()
                .map(|p| PortSpec::parse(p))
                .collect::<Result<_, _>>()?;
            let names = port_names(&ports);
            let map = cores.map(&names)?;
            let defaults = eal.is_empty();
            let mut eal = eal_args_or_default(eal);
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
            let options = runtime::RunOptions {
                ports: &port_opts,
                map: map.as_ref(),
                sessions: doc.as_ref(),
                control: control_path.as_deref(),
                limits: worker::Limits {
                    stop: &stop,
                    duration: duration.map(Duration::from_secs_f64),
                    idle_exit: idle_exit_ms.map(Duration::from_millis),
                },
            };
            let summary = runtime::run(&eal, &options, &mut |line| println!("{line}"))?;
            let total = WorkerCounters {
                workers: None,
                ..summary.worker.clone()
            };
            println!("final counters: {}", serde_json::to_string(&total)?);
            if let Some(path) = &stats_json {
                std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            streams,
            packets,
            no_testpmd,
            modes,
            no_prefetch,
            per_packet,
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
                Some(bench::testpmd_macswap_pps()?)
            };
            let rekey = bench::engine_rekey_pps();
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
            println!("{}", bench::machine());
            println!("EAL arguments: {}", eal_args.join(" "));
            println!("{}", heap_pages_in_use());
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
            println!("bytes/stream: resident memory per stream once every stream carried a packet (in brackets: once installed, before any)");
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
                    let case = bench::BenchCase {
                        streams: n,
                        srtp,
                        packets,
                        prefetch: !no_prefetch,
                        per_packet,
                        rounds,
                        checksum_offload,
                    };
                    // SRTP rounds are each followed by the engine's own re-key rate; plain RTP
                    // is compared with the one testpmd run (a separate process).
                    let r = bench::run(&eal, pool, &a, &b, case, || {
                        srtp.then(bench::engine_rekey_pps).or(testpmd)
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
                    let line_ns = bench::random_line_ns(footprint);
                    let floor = |lines: f64| 1e3 / (lines * line_ns);
                    println!(
                        "{:<10} {:<28} {:>10.2} {:>24} {:>14}   ({:.2}x of {} streams)",
                        n,
                        mode,
                        pps / 1e6,
                        ratio,
                        format!(
                            "{:.0} ({:.0})",
                            r.bytes_per_stream, r.bytes_per_stream_installed
                        ),
                        pps / base,
                        streams[0]
                    );
                    if srtp {
                        println!("{:<10} {}", "", bench::g711_capacity(pps));
                    }
                    // Each in a process of its own (freed memory would be reused here).
                    let one_way = bench::memory_in_fresh_process(n, srtp, false)?;
                    let two_way = bench::memory_in_fresh_process(n, srtp, true)?;
                    println!(
                        "{:<10}   memory per stream, installed in a fresh process: {one_way:.0} bytes (calls of one stream, as here); {two_way:.0} bytes (two-way calls, every leg sending)",
                        ""
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
        Command::BenchMemory {
            streams,
            srtp,
            two_way,
        } => {
            println!("{:.0}", bench::memory_per_stream(streams, srtp, two_way)?);
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
            let eal_args = eal_args_or_default(eal);
            if !(8..=1458).contains(&payload) {
                bail!(
                    "--payload must be between 8 and 1458 bytes (one untagged 1500-byte IPv4 MTU)"
                );
            }
            println!("EAL arguments: {}", eal_args.join(" "));
            let eal = Eal::init(eal_args).context("starting the DPDK EAL")?;
            let (pool, a, b) =
                runtime::port_pair(&eal, "portloop", 8191, ["A", "B"], [&port_a, &port_b])?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heap_goes_to_the_reserved_pool_only_beside_an_eal_on_hugepages() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let on_hugepages = args(&["-l", "1", "--vdev=net_ring0"]);
        let without = args(&["--no-huge", "-m", "256", "-l", "1"]);
        assert_eq!(heap_pages_for(&on_hugepages, 512), HeapPages::Reserved);
        assert_eq!(heap_pages_for(&on_hugepages, 0), HeapPages::Transparent);
        assert_eq!(heap_pages_for(&without, 512), HeapPages::Transparent);
        let defaults = eal_args_or_default(Vec::new());
        assert_eq!(heap_pages_for(&defaults, 512), HeapPages::Transparent);
    }
}
