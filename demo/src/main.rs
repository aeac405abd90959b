//! `relay-demo`: the whole appliance in one command, on one machine without a NIC or
//! hugepages.
//!
//! It builds three network namespaces joined by veth pairs in 198.18.0.0/15 (a "cloud" side,
//! the SBC, an "operator" side), starts `relay-dataplane` on DPDK virtual devices
//! (`net_af_packet`) over the SBC's links and `relay-control` with a development CA, its
//! certificates and a CDR key in a temporary directory, and places calls over SIP/TLS with
//! SDES SRTP from the cloud side to the operator side with its built-in callers
//! ([`calls`], [`media`]): real 20 ms pacing, every received packet decrypted and checked.
//! Then it stops the appliance, reads the run's call records back under an audited grant
//! ([`records`]), prints a summary and exits 0 only if every call went through intact and
//! the records agree. SIGINT/SIGTERM hang the calls up and clean up; a run after a crash
//! removes what the crashed one left ([`setup`]).
//!
//! `relay-demo dataplane ...` is the data plane alone (`relay-dataplane demo ...`).

#![forbid(unsafe_code)]

use std::io::{IsTerminal, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};
use relay_session::stats::FinalCounters;
use relay_testsupport::appliance::{Appliance, ApplianceOptions, Binaries};
use relay_testsupport::capture::Capture;
use relay_testsupport::topology::{self, SbcTopology};

use relay_demo::calls::{self, CallOutcome, Plan, Side, Sides};
use relay_demo::{media, records, setup};

#[derive(Parser)]
#[command(
    name = "relay-demo",
    about = "The whole appliance on virtual devices: calls over SIP/TLS with SRTP through relay-control and relay-dataplane, checked end to end",
    after_help = "Needs root (network namespaces). Exit status: 0 every call went through intact and the records agree; 1 otherwise; 2 the run could not be set up."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Calls to place.
    #[arg(long, default_value_t = 20)]
    calls: u32,
    /// Seconds of media per call.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// New calls per second.
    #[arg(long, default_value_t = 10.0)]
    cps: f64,
    /// Data-plane worker cores.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// What the operator side answers: plain RTP or SRTP (its trunk's media policy).
    #[arg(long, value_enum, default_value_t = OperatorMedia::Srtp)]
    operator_media: OperatorMedia,
    /// Keep the run's directory (configuration, logs, CDR store) and print where it is.
    #[arg(long)]
    keep: bool,
    /// Capture both outer links (the cloud side's and the operator side's interface) with
    /// tcpdump into DIR/cloud.pcap and DIR/operator.pcap while the calls run.
    #[arg(long, value_name = "DIR")]
    capture: Option<PathBuf>,
    /// Serve relay-control's Prometheus endpoint on this host address while the demo runs
    /// (for example 127.0.0.1:9464; it is relayed into the SBC's namespace).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Where relay-dataplane, relay-control and relayctl are (default: beside this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// The data plane alone: `relay-dataplane demo` with these arguments.
    Dataplane {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OperatorMedia {
    Rtp,
    Srtp,
}

/// relay-control's Prometheus port on the SBC namespace's loopback.
const METRICS_PORT: u16 = 9464;

fn bin_dir(cli: &Cli) -> Result<PathBuf> {
    match &cli.bin_dir {
        Some(d) => Ok(d.clone()),
        None => Ok(std::env::current_exe()?
            .parent()
            .ok_or_else(|| anyhow!("this binary has no directory"))?
            .to_owned()),
    }
}

fn binary(dir: &Path, name: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(anyhow!(
            "{} is missing: build the workspace first (cargo build --release; scripts/demo.sh does it)",
            p.display()
        ))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("relay-demo: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> Result<bool> {
    let bins = bin_dir(cli)?;
    if let Some(Command::Dataplane { args }) = &cli.command {
        let err = std::process::Command::new(binary(&bins, "relay-dataplane")?)
            .arg("demo")
            .args(args)
            .exec();
        return Err(anyhow!("starting relay-dataplane demo: {err}"));
    }
    if cli.calls == 0 || cli.cps <= 0.0 || cli.duration <= 0.0 || cli.workers == 0 {
        return Err(anyhow!(
            "--calls, --cps, --duration and --workers must be above 0"
        ));
    }
    if !relay_testsupport::netns::is_root() {
        return Err(anyhow!(
            "needs root for its network namespaces: run it with sudo (scripts/demo.sh does)"
        ));
    }
    let binaries = Binaries {
        dataplane: binary(&bins, "relay-dataplane")?,
        control: binary(&bins, "relay-control")?,
    };
    let relayctl = binary(&bins, "relayctl")?;
    let stop = calls::stop_flag()?;
    let leftovers = setup::remove_leftovers();
    for what in leftovers.iter().take(8) {
        eprintln!("relay-demo: removed what an earlier run left: {what}");
    }
    if leftovers.len() > 8 {
        eprintln!("relay-demo: ... and {} more", leftovers.len() - 8);
    }
    let started = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{}{}-", setup::TMP_PREFIX, std::process::id()))
        .tempdir()?;
    let dir = tmp.path().to_owned();
    let pki = setup::make_pki(&dir.join("pki"));
    setup::make_kek(&dir.join("cdr.kek"))?;
    let net = SbcTopology::named(setup::NETNS_PREFIX).context("building the namespaces")?;
    let operator_srtp = cli.operator_media == OperatorMedia::Srtp;
    let plan = Plan {
        calls: cli.calls,
        duration: Duration::from_secs_f64(cli.duration),
        cps: cli.cps,
        operator_srtp,
    };
    let run_seconds = (f64::from(cli.calls) / cli.cps + cli.duration) as u64 + 120;
    let stats_path = dir.join("dataplane-stats.json");
    let ports = relay_testsupport::appliance::sbc_media_ports();
    let options = ApplianceOptions {
        workers: cli.workers,
        run_seconds,
        stats_json: Some(stats_path.clone()),
        control_log: "relay_control=info".into(),
        own_process_group: true,
    };
    let mut sides = Sides::listen(&net, &pki.ca, &pki.leaves[1], &pki.leaves[2])?;
    let app = Appliance::start_with(&net.sbc, &binaries, &ports, &dir, options, |socket| {
        setup::control_toml(
            &dir,
            socket,
            &pki,
            operator_srtp,
            &format!("127.0.0.1:{METRICS_PORT}"),
        )
    })
    .map_err(|e| anyhow!("starting the appliance: {e}"))?;
    let operator_media = if operator_srtp {
        "SRTP (AES_CM_128_HMAC_SHA1_80)"
    } else {
        "plain RTP"
    };
    println!(
        "relay-demo: {} calls over SIP/TLS from the cloud side ({}) through relay-control and relay-dataplane ({} worker{}) to the operator side ({})",
        cli.calls,
        topology::ALICE,
        cli.workers,
        if cli.workers == 1 { "" } else { "s" },
        topology::BOB
    );
    println!(
        "            cloud leg SRTP (AES_CM_128_HMAC_SHA1_80, fresh keys per leg and direction), operator leg {operator_media}; {} s of G.711 per call at 20 ms, {} calls/s",
        cli.duration, cli.cps
    );
    let admin_socket = dir.join("control.sock");
    println!(
        "            live view: relayctl top --admin-socket {} --dataplane-socket {}",
        admin_socket.display(),
        app.socket().display()
    );
    if let Some(addr) = cli.metrics {
        let target = std::net::SocketAddr::from(([127, 0, 0, 1], METRICS_PORT));
        relay_demo::metrics_relay::start(addr, net.sbc.name(), target, stop.clone())?;
        println!(
            "            Prometheus endpoint: http://{addr}/metrics (Grafana dashboard: docs/grafana-dashboard.json)"
        );
    }
    println!(
        "            set up in {:.1} s; Ctrl-C hangs up and cleans up",
        started.elapsed().as_secs_f64()
    );

    // The live view: the callers' progress and `relayctl top`'s view of both processes,
    // redrawn in place on a terminal; on a pipe, the progress line every second and the
    // full view every fifth.
    let tty = std::io::stderr().is_terminal();
    let dataplane_socket = app.socket().to_owned();
    let mut before = relay_control::top::sample(&admin_socket, &dataplane_socket);
    let mut drawn = 0usize;
    let mut frames = 0u64;
    let mut progress = |p: &calls::Progress| {
        let now = relay_control::top::sample(&admin_socket, &dataplane_socket);
        let mut lines = vec![format!(
            "{:6.1} s  callers: placed {:>5}/{}  talking {:>5}  ended {:>5}  failed {:>3}",
            p.elapsed_s, p.placed, cli.calls, p.talking, p.done, p.failed
        )];
        frames += 1;
        if tty || frames.is_multiple_of(5) {
            lines.extend(relay_control::top::render(&before, &now));
        }
        before = now;
        if tty {
            if drawn > 0 {
                eprint!("\x1b[{drawn}A\x1b[J");
            }
            drawn = lines.len();
        }
        for l in &lines {
            eprintln!("{l}");
        }
        let _ = std::io::stderr().flush();
    };
    let captures = match &cli.capture {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            let start = |ns, iface: &str, name: &str| {
                Capture::start(ns, iface, &d.join(name), "")
                    .map_err(|e| anyhow!("tcpdump on {iface} (Debian package tcpdump): {e}"))
            };
            Some((
                start(&net.alice, topology::ALICE_IF, "cloud.pcap")?,
                start(&net.bob, topology::BOB_IF, "operator.pcap")?,
            ))
        }
        None => None,
    };
    let outcomes = {
        sides.connect()?;
        sides.run(&plan, &stop, &mut progress)?
    };
    drop(sides);
    if let Some((cloud, operator)) = captures {
        for (what, c) in [("cloud", cloud), ("operator", operator)] {
            let path = c.path().to_owned();
            let got = c.stop().map_err(|e| anyhow!("capture: {e}"))?;
            println!(
                "capture     {what} link: {} UDP datagrams, {} other frames in {}",
                got.datagrams.len(),
                got.other_frames,
                path.display()
            );
        }
    }
    let control_ok = app.stop();
    let dataplane: Option<FinalCounters> = std::fs::read(&stats_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let run_id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let records = records::read_back(&relayctl, &dir, &run_id);
    let ok = summarize(
        cli,
        &outcomes,
        dataplane.as_ref(),
        records.as_ref(),
        control_ok,
    );
    if let Err(e) = &records {
        println!("records     could not be read back: {e:#}");
    }
    println!(
        "took        {:.1} s{}",
        started.elapsed().as_secs_f64(),
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            " (stopped early)"
        } else {
            ""
        }
    );
    if cli.keep {
        let kept = tmp.keep();
        println!(
            "kept        {} (control.toml, logs, CDR store)",
            kept.display()
        );
    }
    drop(net);
    Ok(ok && !stop.load(std::sync::atomic::Ordering::Relaxed))
}

/// Sums one side's receive statistics.
fn received(outcomes: &[CallOutcome], side: Side) -> media::StreamStats {
    let mut s = media::StreamStats::default();
    let mut jitters = Vec::new();
    for o in outcomes {
        let r = match side {
            Side::Cloud => &o.cloud.received,
            Side::Operator => &o.operator.received,
        };
        s.received += r.received;
        s.verified += r.verified;
        s.auth_failed += r.auth_failed;
        s.wrong += r.wrong;
        s.duplicates += r.duplicates;
        if r.verified > 1 {
            jitters.push(r.jitter_ms);
        }
    }
    s.jitter_ms = jitters.iter().copied().fold(0.0, f64::max);
    s
}

/// Prints the summary; whether everything went through intact and the records agree.
fn summarize(
    cli: &Cli,
    outcomes: &[CallOutcome],
    dataplane: Option<&FinalCounters>,
    records: std::result::Result<&records::RecordSummary, &anyhow::Error>,
    control_ok: bool,
) -> bool {
    let mut ok = control_ok;
    let answered = outcomes.iter().filter(|o| o.answered).count();
    let failed: Vec<&CallOutcome> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    let by_cloud = outcomes
        .iter()
        .filter(|o| o.hung_up_by == Some(Side::Cloud))
        .count();
    let by_operator = outcomes
        .iter()
        .filter(|o| o.hung_up_by == Some(Side::Operator))
        .count();
    let clean = outcomes.iter().filter(|o| o.ended_cleanly).count();
    println!(
        "calls       {} attempted, {answered} answered, {} failed; hung up by the cloud side {by_cloud}, by the operator side {by_operator}; {clean} BYEs answered on both legs",
        outcomes.len(),
        failed.len()
    );
    let mut causes: std::collections::BTreeMap<&str, usize> = Default::default();
    for f in &failed {
        *causes
            .entry(f.failure.as_deref().unwrap_or("?"))
            .or_default() += 1;
    }
    for (cause, n) in &causes {
        let which: Vec<String> = failed
            .iter()
            .filter(|f| f.failure.as_deref() == Some(*cause))
            .take(5)
            .map(|f| format!("#{} {}", f.index, f.number))
            .collect();
        println!(
            "            failed: {n} x {cause} (e.g. {})",
            which.join(", ")
        );
    }
    ok &= failed.is_empty() && answered == outcomes.len() && clean == answered;
    let sent_up: u64 = outcomes.iter().map(|o| o.cloud.sent).sum();
    let sent_down: u64 = outcomes.iter().map(|o| o.operator.sent).sum();
    for (name, sent, got) in [
        (
            "cloud -> operator",
            sent_up,
            received(outcomes, Side::Operator),
        ),
        (
            "operator -> cloud",
            sent_down,
            received(outcomes, Side::Cloud),
        ),
    ] {
        let lost = sent.saturating_sub(got.verified);
        println!(
            "media       {name}: {sent} sent, {} received, {} verified byte for byte, {lost} lost ({:.3}%), {} failed authentication, {} wrong, {} duplicates; jitter at most {:.2} ms",
            got.received,
            got.verified,
            if sent == 0 { 0.0 } else { lost as f64 * 100.0 / sent as f64 },
            got.auth_failed,
            got.wrong,
            got.duplicates,
            got.jitter_ms
        );
        ok &= lost == 0 && got.auth_failed == 0 && got.wrong == 0 && sent > 0;
    }
    match dataplane {
        Some(d) => {
            let w = &d.worker;
            let drops = if w.drops.is_empty() {
                "none".to_owned()
            } else {
                w.drops
                    .iter()
                    .map(|(r, n)| format!("{r} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let rekey = if cli.operator_media == OperatorMedia::Srtp {
                "each decrypted with its leg's key and re-encrypted with the other's"
            } else {
                "SRTP <-> RTP: decrypted towards the operator, encrypted towards the cloud"
            };
            // Frames that waited for a peer's ARP answer (a call's first packets, at most).
            let held = if w.held > 0 {
                format!(" ({} of them held until a peer's MAC was known)", w.held)
            } else {
                String::new()
            };
            println!(
                "data plane  {} frames received, {} relayed ({rekey}){held}, {} local answers (ARP); drops: {drops}{}",
                w.rx,
                w.forwarded,
                w.replies,
                if w.drops.is_empty() {
                    ""
                } else {
                    " (frames on the links it shares with the kernel that are not media: the kernel's SIP/TLS, IPv6 link-local)"
                }
            );
            for (i, wk) in d.workers.iter().enumerate().filter(|_| d.workers.len() > 1) {
                println!(
                    "            worker {i}: {} received, {} relayed, {} handed over",
                    wk.rx, wk.forwarded, wk.handed_over
                );
            }
            ok &= w.forwarded >= sent_up + sent_down;
        }
        None => {
            println!("data plane  no final counters (it did not stop cleanly)");
            ok = false;
        }
    }
    match records {
        Ok(r) => {
            let agree = r.records == outcomes.len()
                && r.answered == answered
                && r.ended_by[0] == by_cloud
                && r.ended_by[1] == by_operator
                && r.packets_from == [sent_up, sent_down]
                && r.auth_failures == 0;
            println!(
                "records     {} call records read back under grant {} (audited): {} answered, ended by caller {} / callee {} / relay {}; media from the cloud leg {} packets, from the operator leg {}; suites {} / {}: {}",
                r.records,
                r.grant,
                r.answered,
                r.ended_by[0],
                r.ended_by[1],
                r.ended_by[2],
                r.packets_from[0],
                r.packets_from[1],
                r.suites[0].as_deref().unwrap_or("-"),
                r.suites[1].as_deref().unwrap_or("-"),
                if agree { "they agree with the callers" } else { "THEY DO NOT AGREE with the callers" }
            );
            ok &= agree;
        }
        Err(_) => ok = false,
    }
    if !control_ok {
        println!("relay-control did not stop cleanly");
    }
    println!("result      {}", if ok { "OK" } else { "FAILED" });
    ok
}
