//! The appliance under test: `relay-dataplane` and `relay-control` started inside the SBC
//! namespace of a topology, each stopped by PID when the [`Appliance`] is dropped.
//!
//! The data plane runs on DPDK's `net_af_packet` over the SBC namespace's veth ends (see
//! [`crate::topology`]), with its own media address on each, one lcore, no huge pages, and a
//! file prefix of its own, so that two appliances of one test process do not share DPDK
//! runtime files. `relay-control` gets the `control.toml` the test writes (the data plane's
//! socket path is handed to the closure that writes it), is checked with `--check` first, and
//! is ready when it logs `relay-control ready`.
//!
//! The binaries are the test's to find (they are built next to the test binary); this
//! module only runs them.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::netns::{check_test_address, wait_until, KillOnDrop, Netns};

/// How long each process may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(15);

static NEXT_PREFIX: AtomicU32 = AtomicU32::new(0);

/// One data-plane port: the SBC namespace's interface and the data plane's address on it.
#[derive(Clone, Debug)]
pub struct MediaPort {
    /// The interface in the SBC namespace (`sbc-alice`).
    pub iface: String,
    /// The data plane's address on it (not a kernel address).
    pub address: Ipv4Addr,
    /// The prefix length of the link.
    pub prefix_len: u8,
}

/// Where the appliance's binaries are.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// `relay-dataplane`.
    pub dataplane: PathBuf,
    /// `relay-control`.
    pub control: PathBuf,
}

/// `relayctl ARGS` (the binary `bin`) on the CDR store of a run directory `dir`
/// (`dir/cdr`, key `dir/cdr.kek`), as operator `user`.
pub fn relayctl(bin: &Path, dir: &Path, user: &str, args: &[&str]) -> Result<std::process::Output> {
    Command::new(bin)
        .args(args)
        .env("RELAY_CDR_DIR", dir.join("cdr"))
        .env("RELAY_CDR_KEK", dir.join("cdr.kek"))
        .env("USER", user)
        .env_remove("SUDO_USER")
        .output()
        .map_err(|e| Error::io(format!("running {}", bin.display()), e))
}

/// The data plane's two ports in an [`SbcTopology`](crate::topology::SbcTopology)'s SBC
/// namespace: `sbc-alice` with 198.18.10.10 and `sbc-bob` with 198.18.20.10.
pub fn sbc_media_ports() -> [MediaPort; 2] {
    use crate::topology;
    let port = |iface: &str, address| MediaPort {
        iface: iface.into(),
        address,
        prefix_len: topology::PREFIX_LEN,
    };
    [
        port(topology::SBC_ALICE_IF, topology::SBC_ALICE_MEDIA),
        port(topology::SBC_BOB_IF, topology::SBC_BOB_MEDIA),
    ]
}

/// How the data plane runs (the defaults are the tests': one lcore, 120 s).
#[derive(Clone, Debug)]
pub struct ApplianceOptions {
    /// Worker lcores. One runs on the main lcore (`-l 0`); more get their own lcores, all on
    /// the machine's last CPU, and each port as many queue pairs.
    pub workers: usize,
    /// The data plane stops by itself after this long.
    pub run_seconds: u64,
    /// Where the data plane writes its final counters (`--stats-json`) when it stops.
    pub stats_json: Option<PathBuf>,
    /// relay-control's `RELAY_LOG`.
    pub control_log: String,
    /// Start both processes in a process group of their own, so that a terminal's Ctrl-C
    /// reaches only the program that started them, which then stops them in order.
    pub own_process_group: bool,
}

impl Default for ApplianceOptions {
    fn default() -> Self {
        ApplianceOptions {
            workers: 1,
            run_seconds: 120,
            stats_json: None,
            control_log: "relay_control=debug".into(),
            own_process_group: false,
        }
    }
}

/// relay-dataplane and relay-control running in the SBC namespace.
pub struct Appliance<'ns> {
    // Field order is drop order: relay-control goes before the data plane it talks to.
    control: KillOnDrop,
    dataplane: KillOnDrop,
    ns: &'ns Netns,
    socket: PathBuf,
    dp_log: PathBuf,
    rc_log: PathBuf,
    config_path: PathBuf,
    control_bin: PathBuf,
    dataplane_bin: PathBuf,
    ports: Vec<MediaPort>,
    options: ApplianceOptions,
}

impl std::fmt::Debug for Appliance<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appliance")
            .field("ns", &self.ns.name())
            .field("dataplane", &self.dataplane.pid())
            .field("control", &self.control.pid())
            .field("socket", &self.socket)
            .finish()
    }
}

impl<'ns> Appliance<'ns> {
    /// Starts the data plane in `ns` on `ports` (at most 120 s of run time), waits for its
    /// control socket, writes `control.toml` into `dir` with `config(socket)`, checks it with
    /// `relay-control --check`, starts relay-control with `RELAY_LOG=relay_control=debug` and
    /// waits until it is ready. Each wait is bounded (15 s); failures carry both logs.
    pub fn start(
        ns: &'ns Netns,
        bins: &Binaries,
        ports: &[MediaPort],
        dir: &Path,
        config: impl FnOnce(&Path) -> String,
    ) -> Result<Appliance<'ns>> {
        Appliance::start_with(ns, bins, ports, dir, ApplianceOptions::default(), config)
    }

    /// As [`Appliance::start`], with `options`.
    pub fn start_with(
        ns: &'ns Netns,
        bins: &Binaries,
        ports: &[MediaPort],
        dir: &Path,
        options: ApplianceOptions,
        config: impl FnOnce(&Path) -> String,
    ) -> Result<Appliance<'ns>> {
        for p in ports {
            check_test_address(p.address)?;
        }
        let socket = dir.join("dataplane.sock");
        let dp_log = dir.join("dataplane.log");
        let rc_log = dir.join("control.log");
        let create = |path: &Path| {
            std::fs::File::create(path)
                .map_err(|e| Error::io(format!("creating {}", path.display()), e))
        };
        create(&dp_log)?;
        let mut appliance = Appliance {
            control: KillOnDrop(None),
            dataplane: KillOnDrop(None),
            ns,
            socket,
            dp_log,
            rc_log,
            config_path: dir.join("control.toml"),
            control_bin: bins.control.clone(),
            dataplane_bin: bins.dataplane.clone(),
            ports: ports.to_vec(),
            options,
        };
        appliance.start_dataplane()?;

        let config_path = dir.join("control.toml");
        std::fs::write(&config_path, config(&appliance.socket))
            .map_err(|e| Error::io(format!("writing {}", config_path.display()), e))?;
        let check = Command::new(&bins.control)
            .arg("--config")
            .arg(&config_path)
            .arg("--check")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::io("running relay-control --check", e))?;
        if !check.status.success() {
            return Err(Error::Process(format!(
                "relay-control --check refused {}: {}",
                config_path.display(),
                String::from_utf8_lossy(&check.stderr)
            )));
        }
        create(&appliance.rc_log)?;
        appliance.start_control()?;
        Ok(appliance)
    }

    /// Starts the data plane (again), its output appended to its log, and waits for its
    /// control socket.
    fn start_dataplane(&mut self) -> Result<()> {
        let _ = std::fs::remove_file(&self.socket);
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.dp_log)
            .map_err(|e| Error::io(format!("opening {}", self.dp_log.display()), e))?;
        let mut cmd = self.ns.command(&self.dataplane_bin.display().to_string());
        cmd.arg("run");
        for (i, p) in self.ports.iter().enumerate() {
            cmd.arg("--port").arg(format!(
                "net_af_packet{i},ipv4={}/{}",
                p.address, p.prefix_len
            ));
        }
        cmd.arg("--control").arg(&self.socket);
        cmd.arg("--duration")
            .arg(self.options.run_seconds.to_string());
        if let Some(stats) = &self.options.stats_json {
            cmd.arg("--stats-json").arg(stats);
        }
        cmd.args(["--", "--no-huge", "-m", "512", "--no-pci", "--no-shconf"]);
        let workers = self.options.workers.max(1);
        if workers == 1 {
            cmd.args(["-l", "0"]);
        } else {
            // The main lcore on CPU 0, the workers together on the last CPU.
            let last = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
            let lcores: Vec<String> = std::iter::once("0@0".to_owned())
                .chain((1..=workers).map(|w| format!("{w}@{last}")))
                .collect();
            cmd.arg(format!("--lcores={}", lcores.join(",")));
        }
        cmd.arg("--log-level=error");
        cmd.arg(format!(
            "--file-prefix=sbc{}-{}",
            std::process::id(),
            NEXT_PREFIX.fetch_add(1, Ordering::Relaxed)
        ));
        if self.options.own_process_group {
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        }
        for (i, p) in self.ports.iter().enumerate() {
            if workers == 1 {
                cmd.arg(format!("--vdev=net_af_packet{i},iface={}", p.iface));
            } else {
                cmd.arg(format!(
                    "--vdev=net_af_packet{i},iface={},qpairs={workers}",
                    p.iface
                ));
            }
        }
        self.dataplane = KillOnDrop::new(
            cmd.stdin(Stdio::null())
                .stdout(
                    log.try_clone()
                        .map_err(|e| Error::io("duplicating a file handle", e))?,
                )
                .stderr(log)
                .spawn()
                .map_err(|e| Error::io("starting relay-dataplane", e))?,
        );
        let up = wait_until(START_TIMEOUT, || {
            if self.dataplane.try_wait().is_some() {
                return Some(false);
            }
            self.socket.exists().then_some(true)
        });
        if up != Some(true) {
            return Err(Error::Process(format!(
                "the data plane did not start in {START_TIMEOUT:?}:\n{}",
                self.dataplane_log()
            )));
        }
        Ok(())
    }

    /// Stops the data plane (SIGTERM) and starts it again: it comes back with no calls.
    pub fn restart_dataplane(&mut self) -> Result<()> {
        self.dataplane.terminate(Duration::from_secs(10));
        self.start_dataplane()
    }

    /// Starts relay-control (again) with the appliance's `control.toml`, its log appended to
    /// the same file, and waits until this run is ready.
    fn start_control(&mut self) -> Result<()> {
        let runs = self.control_log().matches("relay-control ready").count();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.rc_log)
            .map_err(|e| Error::io(format!("opening {}", self.rc_log.display()), e))?;
        let mut cmd = self.ns.command(&self.control_bin.display().to_string());
        if self.options.own_process_group {
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        }
        self.control = KillOnDrop::new(
            cmd.arg("--config")
                .arg(&self.config_path)
                .env("RELAY_LOG", &self.options.control_log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| Error::io("starting relay-control", e))?,
        );
        let ready = wait_until(START_TIMEOUT, || {
            if self.control.try_wait().is_some() {
                return Some(false);
            }
            (self.control_log().matches("relay-control ready").count() > runs).then_some(true)
        });
        if ready != Some(true) {
            return Err(Error::Process(format!(
                "relay-control did not start in {START_TIMEOUT:?}:\n{}",
                self.logs()
            )));
        }
        Ok(())
    }

    /// relay-control's PID.
    pub fn control_pid(&self) -> Option<u32> {
        self.control.pid()
    }

    /// Kills relay-control with SIGKILL, as a crash would, and waits for it to be gone.
    pub fn kill_control(&mut self) -> bool {
        let Some(pid) = self.control.pid() else {
            return false;
        };
        let killed = crate::netns::sh(&["kill", "-KILL", &pid.to_string()]);
        killed && wait_until(START_TIMEOUT, || self.control.try_wait()).is_some()
    }

    /// Starts relay-control again after it stopped or was killed.
    pub fn restart_control(&mut self) -> Result<()> {
        self.start_control()
    }

    /// Stops relay-control only (SIGTERM, so its record store is flushed); whether it
    /// exited successfully within 10 s. The data plane keeps running.
    pub fn stop_control(&mut self) -> bool {
        self.control
            .terminate(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    }

    /// The data plane's control socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// What the data plane printed so far.
    pub fn dataplane_log(&self) -> String {
        std::fs::read_to_string(&self.dp_log).unwrap_or_default()
    }

    /// relay-control's log so far.
    pub fn control_log(&self) -> String {
        std::fs::read_to_string(&self.rc_log).unwrap_or_default()
    }

    /// Both logs, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "--- relay-control\n{}\n--- data plane\n{}",
            self.control_log(),
            self.dataplane_log()
        )
    }

    /// Stops relay-control (SIGTERM, so its record store is flushed) and then the data plane;
    /// whether relay-control exited successfully within 10 s.
    pub fn stop(mut self) -> bool {
        let ok = self
            .control
            .terminate(Duration::from_secs(10))
            .is_some_and(|s| s.success());
        self.dataplane.terminate(Duration::from_secs(10));
        ok
    }
}
