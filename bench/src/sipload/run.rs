//! The whole benchmark on this one machine (`sip-bench run`).
//!
//! Everything runs in a network namespace made for the run, with 198.18.0.0/15 addresses on
//! its loopback only, so no packet leaves it:
//!
//! ```text
//!  198.18.10.2  UAC (sip-bench)  --TLS-->  198.18.10.1:5061  SBC  198.18.20.1:5061  --TLS-->  198.18.20.2:5061  UAS (sip-bench)
//!                                          (relay-control, or Kamailio with rtpengine)
//! ```
//!
//! Cores: the SBC's signalling process (relay-control with all its threads, or every Kamailio
//! process) is pinned to `--sbc-core`; the generator and the media relay (relay-dataplane,
//! or rtpengine) share `--gen-core`. relay-dataplane's worker busy-polls, so its polling
//! thread is put in `SCHED_IDLE`: it then only gets the cycles the generator leaves, while
//! its control-socket threads keep their ordinary priority. No media flows: the media
//! relays only have to accept their control requests (relay-dataplane on `net_ring`
//! devices; rtpengine in userspace mode, no kernel module).
//!
//! For each SBC: memory first (fresh processes: base, then idle TLS connections, then held
//! calls, each read from `/proc` after a pause), then throughput (warm-up, then the window,
//! CPU time of each process read at both ends of the window). Processes are stopped by PID.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use super::load::{HoldReport, Report};
use super::pki::{self, BenchPki};
use super::procfs::{cpu_ticks, machine, mem_kib, tree};

/// The caller's (UAC's) address.
pub const UAC: Ipv4Addr = Ipv4Addr::new(198, 18, 10, 2);
/// The SBC's signalling address towards the caller.
pub const SBC_A: Ipv4Addr = Ipv4Addr::new(198, 18, 10, 1);
/// The SBC's signalling address towards the callee.
pub const SBC_B: Ipv4Addr = Ipv4Addr::new(198, 18, 20, 1);
/// The callee's (UAS's) address.
pub const UAS: Ipv4Addr = Ipv4Addr::new(198, 18, 20, 2);
/// rtpengine's media address (the reference only; relay-dataplane has its own on `net_ring`).
pub const RTPENGINE_MEDIA: Ipv4Addr = Ipv4Addr::new(198, 18, 30, 10);
/// The SIP/TLS port of everyone.
pub const PORT: u16 = 5061;

/// What `sip-bench run` is asked to do.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Measure relay-control (default) ...
    pub ours: bool,
    /// ... and/or Kamailio + rtpengine.
    pub reference: bool,
    /// Where `relay-control` and `relay-dataplane` are.
    pub bin_dir: PathBuf,
    /// This binary (the generator is started from it).
    pub self_exe: PathBuf,
    /// `bench/reference/` (Kamailio's configuration, rtpengine's).
    pub reference_dir: PathBuf,
    /// A directory on the disk for the run (state, CDRs, logs).
    pub work_dir: PathBuf,
    /// The core of the SBC's signalling process.
    pub sbc_core: u32,
    /// The core of the generator and the media relay.
    pub gen_core: u32,
    /// Measurement window, seconds.
    pub seconds: u64,
    /// Warm-up before it, seconds.
    pub warmup: u64,
    /// Calls in progress at most (closed loop).
    pub outstanding: usize,
    /// Offered rate instead of the closed loop.
    pub rate: Option<f64>,
    /// UAC connections that carry calls.
    pub connections: usize,
    /// Hold time, ms.
    pub hold_ms: u64,
    /// Idle TLS connections for the memory figure.
    pub mem_connections: usize,
    /// Held calls for the memory figure.
    pub mem_calls: u64,
    /// Kamailio's TLS worker processes.
    pub kamailio_children: u32,
    /// Keep the run's directory (logs, configuration) afterwards.
    pub keep: bool,
    /// Skip the memory run.
    pub no_memory: bool,
    /// The generator ACKs every TCP segment at once (see `LoadConfig::quickack`).
    pub quickack: bool,
}

/// One SBC's figures.
#[derive(Clone, Debug, Serialize)]
pub struct SutResult {
    /// Its name.
    pub name: String,
    /// The generator's throughput report.
    pub load: Report,
    /// CPU of the signalling processes over the window, percent of one core.
    pub sbc_cpu_pct: f64,
    /// CPU of the media relay over the window (relay-dataplane: without its polling
    /// worker, so its control socket's threads only).
    pub media_cpu_pct: f64,
    /// CPU of the generator over the window.
    pub gen_cpu_pct: f64,
    /// Memory of the signalling processes, KiB: at rest, with the idle connections, with
    /// the held calls (RSS for one process, PSS summed for several).
    pub sbc_mem_kib: [u64; 3],
    /// The same for the media relay.
    pub media_mem_kib: [u64; 3],
    /// What the memory run reached.
    pub hold: HoldReport,
}

impl SutResult {
    /// CPU microseconds per completed call, signalling and media relay together.
    pub fn cpu_us_per_call(&self) -> f64 {
        (self.sbc_cpu_pct + self.media_cpu_pct) * 1e4 / self.load.calls_per_s.max(1e-9)
    }

    /// Bytes per connection and per held call of the signalling processes, and per held call
    /// of the media relay.
    pub fn per_unit(&self) -> (f64, f64, f64) {
        let conns = self.hold.connections.max(1) as f64;
        let calls = self.hold.held.max(1) as f64;
        let d = |a: u64, b: u64| (b as f64 - a as f64) * 1024.0;
        (
            d(self.sbc_mem_kib[0], self.sbc_mem_kib[1]) / conns,
            d(self.sbc_mem_kib[1], self.sbc_mem_kib[2]) / calls,
            d(self.media_mem_kib[1], self.media_mem_kib[2]) / calls,
        )
    }
}

/// A process stopped by PID (SIGTERM, then SIGKILL after 10 s) when dropped.
struct Proc {
    name: String,
    child: Option<Child>,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command, log: Option<&Path>) -> Result<Proc> {
        cmd.stdin(Stdio::null());
        if let Some(log) = log {
            let f = std::fs::File::create(log)?;
            cmd.stdout(f.try_clone()?).stderr(f);
        }
        let child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            name: name.into(),
            child: Some(child),
        })
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        let pid = rustix::process::Pid::from_child(&child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("sip-bench: {} did not stop on SIGTERM: SIGKILL", self.name);
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The run's network namespace, deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Result<Netns> {
        // Namespaces of earlier runs that were killed before they could clean up.
        for line in sh(&["ip", "netns", "list"])?.lines() {
            let Some(old) = line.split_whitespace().next() else {
                continue;
            };
            if let Some(pid) = old.strip_prefix("sipbench-") {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = sh(&["ip", "netns", "del", old]);
                }
            }
        }
        let name = format!("sipbench-{}", std::process::id());
        sh(&["ip", "netns", "add", &name])?;
        let ns = Netns(name);
        ns.run(&["ip", "link", "set", "lo", "up"])?;
        for a in [UAC, SBC_A, SBC_B, UAS, RTPENGINE_MEDIA] {
            ns.run(&["ip", "addr", "add", &format!("{a}/32"), "dev", "lo"])?;
        }
        Ok(ns)
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let mut v = vec!["ip", "netns", "exec", &self.0];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// `program` inside the namespace, pinned to `core`.
    fn command(&self, core: u32, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, "taskset", "-c", &core.to_string()])
            .arg(program);
        c
    }

    /// Whether a socket listens on `what` (`198.18.10.1:5061`, TCP or UDP).
    fn listening(&self, what: &str, udp: bool) -> bool {
        self.run(&["ss", "-Hln", if udp { "-u" } else { "-t" }])
            .is_ok_and(|s| s.split_whitespace().any(|w| w == what))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh(&["ip", "netns", "del", &self.0]);
    }
}

fn sh(args: &[&str]) -> Result<String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> Result<bool>) -> Result<()> {
    let until = Instant::now() + timeout;
    loop {
        if ok()? {
            return Ok(());
        }
        if Instant::now() >= until {
            bail!("{what} not ready within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn clk_tck() -> f64 {
    sh(&["getconf", "CLK_TCK"])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A generator child: its stdout read line by line on a thread.
struct Generator {
    proc: Proc,
    stdin: Option<ChildStdin>,
    lines: std_mpsc::Receiver<String>,
}

impl Generator {
    fn start(ns: &Netns, cfg: &RunConfig, args: &[String], log: &Path) -> Result<Generator> {
        let mut cmd = ns.command(cfg.gen_core, &cfg.self_exe);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?);
        let mut child = cmd.spawn().context("starting the generator")?;
        let stdin = child.stdin.take();
        let stdout: ChildStdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = std_mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Generator {
            proc: Proc {
                name: "sip-bench generator".into(),
                child: Some(child),
            },
            stdin,
            lines: rx,
        })
    }

    fn expect(&self, prefix: &str, timeout: Duration, log: &Path) -> Result<String> {
        let until = Instant::now() + timeout;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return Ok(l),
                Ok(_) => {}
                Err(_) => bail!(
                    "the generator did not print {prefix:?} within {timeout:?}; its log:\n{}",
                    tail(log, 30)
                ),
            }
        }
    }

    fn say(&mut self, line: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| anyhow!("stdin closed"))?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        Ok(())
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = text.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// The processes of one SBC under test.
struct Sut {
    name: String,
    procs: Vec<Proc>,
    /// The signalling process whose tree is measured.
    signalling: u32,
    /// The media relay.
    media: u32,
    /// Its busy-polling thread, left out of its CPU figure (relay-dataplane's worker).
    media_poller: Option<u32>,
    logs: Vec<PathBuf>,
}

impl Sut {
    fn signalling_pids(&self) -> Vec<u32> {
        tree(self.signalling)
    }

    fn check_alive(&mut self) -> Result<()> {
        for (p, log) in self.procs.iter_mut().zip(&self.logs) {
            if p.exited() {
                bail!("{} exited; its log:\n{}", p.name, tail(log, 40));
            }
        }
        Ok(())
    }
}

fn generator_args(cfg: &RunConfig, pki: &BenchPki) -> Vec<String> {
    [
        "--target",
        &format!("{SBC_A}:{PORT}"),
        "--server-name",
        &SBC_A.to_string(),
        "--uac-bind",
        &UAC.to_string(),
        "--uas-listen",
        &format!("{UAS}:{PORT}"),
        "--ca",
        &pki.ca.display().to_string(),
        "--uas-cert",
        &pki.uas_cert.display().to_string(),
        "--uas-key",
        &pki.uas_key.display().to_string(),
        "--connections",
        &cfg.connections.to_string(),
        "--max-outstanding",
        &cfg.outstanding.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(cfg.quickack.then(|| "--quickack".to_owned()))
    .collect()
}

fn start_ours(ns: &Netns, cfg: &RunConfig, dir: &Path, pki: &BenchPki) -> Result<Sut> {
    let socket = dir.join("dataplane.sock");
    let dp_log = dir.join("relay-dataplane.log");
    let mut dp = ns.command(cfg.gen_core, &cfg.bin_dir.join("relay-dataplane"));
    dp.args(["run", "--port", "net_ring0,ipv4=198.18.10.10/24"])
        .args(["--port", "net_ring1,ipv4=198.18.20.10/24", "--control"])
        .arg(&socket)
        .args([
            "--",
            "--no-huge",
            "-m",
            "512",
            "--no-pci",
            "--no-shconf",
            "-l",
        ])
        .arg(cfg.gen_core.to_string())
        .args(["--log-level=error", "--vdev=net_ring0", "--vdev=net_ring1"])
        .arg(format!("--file-prefix=sipbench{}", std::process::id()));
    let mut dp = Proc::spawn("relay-dataplane", dp, Some(&dp_log))?;
    wait_for(
        "relay-dataplane's control socket",
        Duration::from_secs(20),
        || {
            if dp.exited() {
                bail!("relay-dataplane exited:\n{}", tail(&dp_log, 30));
            }
            Ok(socket.exists())
        },
    )?;
    // The polling thread: the one that has used the most CPU after a moment.
    std::thread::sleep(Duration::from_millis(700));
    let task = |tid: u32| format!("{}/task/{tid}", dp.pid());
    let busiest = std::fs::read_dir(format!("/proc/{}/task", dp.pid()))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .max_by_key(|tid| cpu_ticks(&task(*tid)))
        .ok_or_else(|| anyhow!("relay-dataplane has no threads"))?;
    let name = std::fs::read_to_string(format!("/proc/{}/comm", task(busiest)))?;
    if name.trim().starts_with("control") {
        bail!("relay-dataplane's busiest thread is {name:?}, not its polling worker");
    }
    sh(&["chrt", "--idle", "-p", "0", &busiest.to_string()])?;
    let poller = busiest;

    let kek = dir.join("cdr.kek");
    std::fs::write(&kek, "5a".repeat(32))?;
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600))?;
    let config = dir.join("control.toml");
    std::fs::write(&config, control_toml(dir, &socket, pki))?;
    let rc_log = dir.join("relay-control.log");
    let control_bin = cfg.bin_dir.join("relay-control");
    let check = Command::new(&control_bin)
        .arg("--config")
        .arg(&config)
        .arg("--check")
        .output()?;
    if !check.status.success() {
        bail!(
            "relay-control --check refused {}: {}",
            config.display(),
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let mut rc = ns.command(cfg.sbc_core, &control_bin);
    rc.arg("--config").arg(&config);
    let mut rc = Proc::spawn("relay-control", rc, Some(&rc_log))?;
    wait_for("relay-control", Duration::from_secs(30), || {
        if rc.exited() {
            bail!("relay-control exited:\n{}", tail(&rc_log, 30));
        }
        Ok(std::fs::read_to_string(&rc_log)
            .unwrap_or_default()
            .contains("relay-control ready"))
    })?;
    let signalling = rc.pid();
    let media = dp.pid();
    Ok(Sut {
        name: "relay-control + relay-dataplane".into(),
        procs: vec![rc, dp],
        signalling,
        media,
        media_poller: Some(poller),
        logs: vec![rc_log, dp_log],
    })
}

/// relay-control's configuration for the run: two TLS trunks, SRTP both sides; no OPTIONS
/// (the UAC does not listen); freed media ports reused after 1 s and a media timeout far
/// beyond the run, since no media flows; state and CDRs on the disk, as in production.
pub fn control_toml(dir: &Path, socket: &Path, pki: &BenchPki) -> String {
    format!(
        r#"# sip-bench: relay-control between the generator's UAC and UAS.
[sbc]
fqdn = "sbc.bench"
dataplane_socket = "{socket}"
media_ports = "20000-59999"
max_calls = 100000
port_quarantine_s = 1
admin_socket = "{dir}/control.sock"
state_dir = "{dir}/state"
media_timeout_s = 600
hold_timeout_s = 3600

[tls]
certificate = "{cert}"
private_key = "{key}"

[cdr]
dir = "{dir}/cdr"
kek = "{dir}/cdr.kek"

# The generator is one source with many connections and calls: the limits are raised out of
# its way (the reference has none either); the run measures calls, not refusals.
[limits]
max_connections = 2000
max_connections_per_source = 2000
max_tls_handshakes = 1100
invites_per_second = 100000
invites_per_second_per_source = 100000

[[listen]]
transport = "tls"
address = "{SBC_A}:{PORT}"

[[listen]]
transport = "tls"
address = "{SBC_B}:{PORT}"

[[trunk]]
name = "caller-side"
peers = [{{ host = "{UAC}", port = {PORT}, transport = "tls" }}]
signalling_address = "{SBC_A}:{PORT}"
local_host = "{SBC_A}"
media_address = "198.18.10.10"
media_policy = "srtp_mandatory"
suites = ["AES_CM_128_HMAC_SHA1_80"]
trust_store = "{ca}"
options_ping = false

[[trunk]]
name = "callee-side"
peers = [{{ host = "{UAS}", port = {PORT}, transport = "tls" }}]
signalling_address = "{SBC_B}:{PORT}"
local_host = "{SBC_B}"
media_address = "198.18.20.10"
media_policy = "srtp_mandatory"
suites = ["AES_CM_128_HMAC_SHA1_80"]
trust_store = "{ca}"
options_ping = false

[[route]]
from = "caller-side"
to = "callee-side"
"#,
        socket = socket.display(),
        dir = dir.display(),
        cert = pki.sbc_cert.display(),
        key = pki.sbc_key.display(),
        ca = pki.ca.display(),
    )
}

/// Whether Kamailio (with its TLS and rtpengine modules) and rtpengine are installed, or
/// what is missing.
pub fn reference_missing() -> Option<String> {
    let mut missing = Vec::new();
    if which("kamailio").is_none() {
        missing.push("kamailio");
    }
    if !Path::new("/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so").exists() {
        missing.push("kamailio-tls-modules");
    }
    if which("rtpengine").is_none() {
        missing.push("rtpengine-daemon");
    }
    (!missing.is_empty()).then(|| {
        format!(
            "the reference needs the Debian packages {} (bench/run_sip_bench.sh --reference installs them)",
            missing.join(", ")
        )
    })
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.exists())
    })
}

fn start_reference(ns: &Netns, cfg: &RunConfig, dir: &Path, pki: &BenchPki) -> Result<Sut> {
    if let Some(why) = reference_missing() {
        bail!("{why}");
    }
    // rtpengine: its own configuration file, as given in bench/reference/.
    let rtp_conf = cfg.reference_dir.join("rtpengine.conf");
    let rtp_log = dir.join("rtpengine.log");
    let rtpengine = which("rtpengine").expect("checked above");
    let mut rtp = ns.command(cfg.gen_core, &rtpengine);
    rtp.arg(format!("--config-file={}", rtp_conf.display()))
        .arg("--config-section=sip-bench");
    let mut rtp = Proc::spawn("rtpengine", rtp, Some(&rtp_log))?;
    wait_for("rtpengine's ng port", Duration::from_secs(20), || {
        if rtp.exited() {
            bail!("rtpengine exited:\n{}", tail(&rtp_log, 30));
        }
        Ok(ns.listening("127.0.0.1:22222", true))
    })?;

    // Kamailio: bench/reference/kamailio.cfg with this run's paths and worker count.
    let tls_cfg = dir.join("kamailio-tls.cfg");
    let template = std::fs::read_to_string(cfg.reference_dir.join("kamailio-tls.cfg"))?;
    std::fs::write(
        &tls_cfg,
        template
            .replace("@SBC_CERT@", &pki.sbc_cert.display().to_string())
            .replace("@SBC_KEY@", &pki.sbc_key.display().to_string())
            .replace("@CA@", &pki.ca.display().to_string()),
    )?;
    let kam_cfg = dir.join("kamailio.cfg");
    let template = std::fs::read_to_string(cfg.reference_dir.join("kamailio.cfg"))?;
    std::fs::write(
        &kam_cfg,
        template
            .replace("@TLS_CFG@", &tls_cfg.display().to_string())
            .replace("@CHILDREN@", &cfg.kamailio_children.to_string()),
    )?;
    let run_dir = dir.join("kamailio-run");
    std::fs::create_dir_all(&run_dir)?;
    let check = Command::new("kamailio")
        .args(["-c", "-f"])
        .arg(&kam_cfg)
        .output()?;
    if !check.status.success() {
        bail!(
            "kamailio -c refused {}: {}",
            kam_cfg.display(),
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let kam_log = dir.join("kamailio.log");
    let kamailio = which("kamailio").expect("checked above");
    let mut kam = ns.command(cfg.sbc_core, &kamailio);
    // -DD: the main process stays in the foreground (its PID is ours) and forks its workers.
    kam.args(["-DD", "-E", "-m", "512", "-M", "16", "-f"])
        .arg(&kam_cfg)
        .arg("-Y")
        .arg(&run_dir);
    let mut kam = Proc::spawn("kamailio", kam, Some(&kam_log))?;
    let a = format!("{SBC_A}:{PORT}");
    wait_for("kamailio's TLS listener", Duration::from_secs(30), || {
        if kam.exited() {
            bail!("kamailio exited:\n{}", tail(&kam_log, 40));
        }
        Ok(ns.listening(&a, false))
    })?;
    std::thread::sleep(Duration::from_secs(1));
    let signalling = kam.pid();
    let media = rtp.pid();
    Ok(Sut {
        name: "Kamailio (TLS) + rtpengine".into(),
        procs: vec![kam, rtp],
        signalling,
        media,
        media_poller: None,
        logs: vec![kam_log, rtp_log],
    })
}

fn measure(
    ns: &Netns,
    cfg: &RunConfig,
    pki: &BenchPki,
    sut: &mut Sut,
    dir: &Path,
) -> Result<SutResult> {
    let tck = clk_tck();
    let sig = || mem_kib(&sut.signalling_pids());
    let media_pid = sut.media;
    let media = || mem_kib(&[media_pid]);
    std::thread::sleep(Duration::from_secs(1));
    let mut sbc_mem = [sig(), 0, 0];
    let mut media_mem = [media(), 0, 0];

    // Memory: idle connections, then held calls.
    let hold = if cfg.no_memory {
        HoldReport::default()
    } else {
        let hold_log = dir.join(format!("generator-hold-{}.log", sut.signalling));
        let mut args = vec!["hold".to_owned()];
        args.extend(generator_args(cfg, pki));
        args.extend([
            "--idle-connections".into(),
            cfg.mem_connections.to_string(),
            "--calls".into(),
            cfg.mem_calls.to_string(),
        ]);
        let mut g = Generator::start(ns, cfg, &args, &hold_log)?;
        g.expect("READY connections", Duration::from_secs(120), &hold_log)?;
        std::thread::sleep(Duration::from_secs(2));
        sbc_mem[1] = sig();
        media_mem[1] = media();
        g.say("calls")?;
        g.expect("READY calls", Duration::from_secs(300), &hold_log)?;
        std::thread::sleep(Duration::from_secs(2));
        sbc_mem[2] = sig();
        media_mem[2] = media();
        sut.check_alive()?;
        g.say("hangup")?;
        let line = g.expect("RESULT ", Duration::from_secs(120), &hold_log)?;
        let hold: HoldReport = serde_json::from_str(&line["RESULT ".len()..])?;
        drop(g);
        std::thread::sleep(Duration::from_secs(3));
        hold
    };

    // Throughput.
    let load_log = dir.join(format!("generator-load-{}.log", sut.signalling));
    let mut args = vec!["load".to_owned()];
    args.extend(generator_args(cfg, pki));
    args.extend([
        "--markers".into(),
        "--seconds".into(),
        cfg.seconds.to_string(),
        "--warmup".into(),
        cfg.warmup.to_string(),
        "--hold-ms".into(),
        cfg.hold_ms.to_string(),
    ]);
    if let Some(r) = cfg.rate {
        args.extend(["--rate".into(), r.to_string()]);
    }
    let g = Generator::start(ns, cfg, &args, &load_log)?;
    let gen_pid = g.proc.pid();
    let sample = |s: &Sut| {
        (
            Instant::now(),
            s.signalling_pids()
                .iter()
                .map(|p| cpu_ticks(&p.to_string()))
                .sum::<u64>(),
            cpu_ticks(&s.media.to_string())
                - s.media_poller
                    .map_or(0, |t| cpu_ticks(&format!("{}/task/{t}", s.media))),
            cpu_ticks(&gen_pid.to_string()),
        )
    };
    let timeout = Duration::from_secs(cfg.warmup + 60);
    g.expect("MEASURE start", timeout, &load_log)?;
    let s0 = sample(sut);
    g.expect(
        "MEASURE end",
        Duration::from_secs(cfg.seconds + 30),
        &load_log,
    )?;
    let s1 = sample(sut);
    let line = g.expect("RESULT ", Duration::from_secs(60), &load_log)?;
    let load: Report = serde_json::from_str(&line["RESULT ".len()..])?;
    sut.check_alive()?;
    let wall = s1.0.duration_since(s0.0).as_secs_f64();
    let pct = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / tck / wall * 100.0;
    Ok(SutResult {
        name: sut.name.clone(),
        load,
        sbc_cpu_pct: pct(s0.1, s1.1),
        media_cpu_pct: pct(s0.2, s1.2),
        gen_cpu_pct: pct(s0.3, s1.3),
        sbc_mem_kib: sbc_mem,
        media_mem_kib: media_mem,
        hold,
    })
}

fn print_result(r: &SutResult) {
    let (per_conn, per_call, media_per_call) = r.per_unit();
    println!("== {}", r.name);
    println!("{}", r.load.summary());
    println!(
        "CPU over the window: signalling {:.0}% of its core, media relay {:.0}% ({}), generator {:.0}%",
        r.sbc_cpu_pct,
        r.media_cpu_pct,
        if r.name.starts_with("relay") {
            "its control threads; the polling worker left out"
        } else {
            "all of it"
        },
        r.gen_cpu_pct
    );
    println!(
        "CPU per call: {:.0} us signalling + {:.0} us media relay = {:.0} us: {:.0} calls per CPU-second",
        r.sbc_cpu_pct * 1e4 / r.load.calls_per_s.max(1e-9),
        r.media_cpu_pct * 1e4 / r.load.calls_per_s.max(1e-9),
        r.cpu_us_per_call(),
        1e6 / r.cpu_us_per_call().max(1e-9)
    );
    if r.hold.connections == 0 {
        return;
    }
    println!(
        "memory, signalling (KiB): {} at rest, {} with {} TLS connections, {} with {} calls held: {:.0} bytes per connection, {:.0} bytes per call",
        r.sbc_mem_kib[0],
        r.sbc_mem_kib[1],
        r.hold.connections,
        r.sbc_mem_kib[2],
        r.hold.held,
        per_conn,
        per_call
    );
    println!(
        "memory, media relay (KiB): {} at rest, {} with the connections, {} with the calls: {:.0} bytes per call",
        r.media_mem_kib[0], r.media_mem_kib[1], r.media_mem_kib[2], media_per_call
    );
    if !r.hold.failed.is_empty() {
        println!("memory run failures: {:?}", r.hold.failed);
    }
}

/// Runs the benchmark and prints its figures.
pub fn run(cfg: &RunConfig) -> Result<Vec<SutResult>> {
    if !std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    {
        bail!("sip-bench run needs root (a network namespace, core pinning, SCHED_IDLE)");
    }
    if cfg.reference {
        if let Some(why) = reference_missing() {
            bail!("{why}");
        }
    }
    println!("{}", machine());
    println!(
        "cores: SBC signalling on cpu {}, generator and media relay on cpu {}; {} s window after {} s warm-up; {}; {} UAC connections; hold {} ms",
        cfg.sbc_core,
        cfg.gen_core,
        cfg.seconds,
        cfg.warmup,
        match cfg.rate {
            Some(r) => format!("offered {r} calls/s (at most {} in progress)", cfg.outstanding),
            None => format!("closed loop, {} calls in progress", cfg.outstanding),
        },
        cfg.connections,
        cfg.hold_ms
    );
    if cfg.quickack {
        println!(
            "the generator ACKs every TCP segment at once (TCP_QUICKACK), not as a usual peer"
        );
    }
    let base = tempfile::Builder::new()
        .prefix("sip-bench.")
        .tempdir_in(&cfg.work_dir)
        .with_context(|| format!("a directory in {}", cfg.work_dir.display()))?;
    let dir = base.path().to_owned();
    println!(
        "run directory: {} (on the filesystem of {})",
        dir.display(),
        cfg.work_dir.display()
    );
    let ns = Netns::new()?;
    let pki = pki::make(
        &dir.join("pki"),
        &[IpAddr::V4(SBC_A), IpAddr::V4(SBC_B)],
        &["sbc.bench"],
        &[IpAddr::V4(UAS)],
    )?;
    let mut results = Vec::new();
    if cfg.ours {
        let d = dir.join("ours");
        std::fs::create_dir_all(&d)?;
        let mut sut = start_ours(&ns, cfg, &d, &pki)?;
        let r = measure(&ns, cfg, &pki, &mut sut, &d);
        for p in &mut sut.procs {
            p.stop();
        }
        let r = r?;
        print_result(&r);
        results.push(r);
    }
    if cfg.reference {
        let d = dir.join("reference");
        std::fs::create_dir_all(&d)?;
        let mut sut = start_reference(&ns, cfg, &d, &pki)?;
        let r = measure(&ns, cfg, &pki, &mut sut, &d);
        for p in &mut sut.procs {
            p.stop();
        }
        let r = r?;
        print_result(&r);
        results.push(r);
    }
    if cfg.keep {
        let kept = base.keep();
        println!("kept {}", kept.display());
    }
    if let [ours, reference] = results.as_slice() {
        println!("== summary");
        println!(
            "calls/s per signalling core: relay-control {:.0}, Kamailio + rtpengine {:.0}: {:.2}x the reference",
            ours.load.calls_per_s,
            reference.load.calls_per_s,
            ours.load.calls_per_s / reference.load.calls_per_s.max(1e-9)
        );
        println!(
            "CPU per call (signalling + media relay control): relay-control {:.0} us, Kamailio + rtpengine {:.0} us: {:.0} vs {:.0} calls per CPU-second, {:.2}x the reference",
            ours.cpu_us_per_call(),
            reference.cpu_us_per_call(),
            1e6 / ours.cpu_us_per_call().max(1e-9),
            1e6 / reference.cpu_us_per_call().max(1e-9),
            reference.cpu_us_per_call() / ours.cpu_us_per_call().max(1e-9)
        );
        if ours.hold.connections == 0 || reference.hold.connections == 0 {
            return Ok(results);
        }
        let (oc, ol, om) = ours.per_unit();
        let (rc, rl, rm) = reference.per_unit();
        println!(
            "bytes per TLS connection: relay-control {oc:.0}, Kamailio {rc:.0}; per held call: relay-control {ol:.0} + relay-dataplane {om:.0}, Kamailio {rl:.0} + rtpengine {rm:.0}"
        );
    }
    Ok(results)
}
