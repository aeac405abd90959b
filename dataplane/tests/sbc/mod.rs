//! Shared by the whole-appliance tests: the SBC topology with relay-dataplane and
//! relay-control started in it, a test PKI, and the binaries built beside the test.

#![allow(dead_code, unreachable_pub)] // Each test binary uses a different part.

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use relay_testsupport::netns::{wait_until, KillOnDrop};
use relay_testsupport::pki;
use relay_testsupport::topology::{self, SbcTopology};

pub const WAIT: Duration = Duration::from_secs(15);

/// A binary of the workspace built next to this test's own (`target/<profile>/`).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("this test binary");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build -p relay-control`; `cargo test --workspace` does)",
        path.display()
    );
    path
}

pub fn control_toml(dir: &Path, socket: &Path, pki: &pki::Pki) -> String {
    let sbc = &pki.leaves[0];
    format!(
        r#"
[sbc]
fqdn = "sbc.test"
dataplane_socket = "{socket}"
media_ports = "30000-39999"
admin_socket = "{admin}"
state_dir = "{state}"
metrics = "127.0.0.1:9464"
options_interval_s = 2

[tls]
certificate = "{cert}"
private_key = "{key}"

[cdr]
dir = "{cdr}"
kek = "{kek}"

[[listen]]
transport = "tls"
address = "198.18.10.1:5061"

[[listen]]
transport = "tls"
address = "198.18.20.1:5061"

[[trunk]]
name = "alice-side"
peers = [{{ host = "198.18.10.2", port = 5061, transport = "tls" }}]
signalling_address = "198.18.10.1:5061"
local_host = "198.18.10.1"
media_address = "198.18.10.10"
media_policy = "srtp_mandatory"
suites = ["AES_CM_128_HMAC_SHA1_80"]
trust_store = "{ca}"

[[trunk]]
name = "bob-side"
peers = [{{ host = "198.18.20.2", port = 5061, transport = "tls" }}]
signalling_address = "198.18.20.1:5061"
local_host = "198.18.20.1"
media_address = "198.18.20.10"
media_policy = "srtp_mandatory"
suites = ["AES_CM_128_HMAC_SHA1_80"]
trust_store = "{ca}"

[[route]]
from = "alice-side"
to = "bob-side"
"#,
        socket = socket.display(),
        admin = dir.join("control.sock").display(),
        state = dir.join("state").display(),
        cert = sbc.certificate.display(),
        key = sbc.key.display(),
        cdr = dir.join("cdr").display(),
        kek = dir.join("cdr.kek").display(),
        ca = pki.ca.display(),
    )
}

pub fn relayctl(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(workspace_binary("relayctl"))
        .args(args)
        .env("RELAY_CDR_DIR", dir.join("cdr"))
        .env("RELAY_CDR_KEK", dir.join("cdr.kek"))
        .env("USER", "sbc-test")
        .env_remove("SUDO_USER")
        .output()
        .expect("relayctl runs")
}

/// The appliance in its namespace: the data plane on both veth ends, relay-control with a
/// CDR store, and where their logs, sockets and state are.
pub struct Appliance {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub config: PathBuf,
    pub pki: pki::Pki,
    pub dataplane: KillOnDrop,
    pub control: KillOnDrop,
    /// Which relay-control run writes the log (a restart starts a new one).
    pub runs: u32,
    pub net: SbcTopology,
}

static PREFIX: AtomicU32 = AtomicU32::new(0);

impl Appliance {
    /// Builds the topology and starts both processes; panics with their output if they do
    /// not come up.
    pub fn start(dir: &Path) -> Appliance {
        let ip = |a: Ipv4Addr| IpAddr::V4(a);
        let pki = pki::make(
            dir,
            &[
                (
                    "sbc",
                    &[
                        ip(topology::SBC_ALICE_SIGNALLING),
                        ip(topology::SBC_BOB_SIGNALLING),
                    ],
                    &["sbc.test"],
                ),
                ("alice", &[ip(topology::ALICE)], &[]),
                ("bob", &[ip(topology::BOB)], &[]),
            ],
        );
        let net = SbcTopology::new().unwrap();
        let socket = dir.join("dataplane.sock");
        let dp_log = std::fs::File::create(dir.join("dataplane.log")).unwrap();
        let prefix = format!(
            "sbc{}x{}",
            std::process::id(),
            PREFIX.fetch_add(1, Ordering::Relaxed)
        );
        let dataplane = KillOnDrop::new(
            net.sbc
                .command(env!("CARGO_BIN_EXE_relay-dataplane"))
                .args([
                    "run",
                    "--port",
                    "net_af_packet0,ipv4=198.18.10.10/24",
                    "--port",
                    "net_af_packet1,ipv4=198.18.20.10/24",
                    "--control",
                ])
                .arg(&socket)
                .args([
                    "--duration",
                    "120",
                    "--",
                    "--no-huge",
                    "-m",
                    "512",
                    "--no-pci",
                    "--no-shconf",
                    "-l",
                    "0",
                    "--log-level=error",
                ])
                .arg(format!("--file-prefix={prefix}"))
                .args([
                    &format!("--vdev=net_af_packet0,iface={}", topology::SBC_ALICE_IF),
                    &format!("--vdev=net_af_packet1,iface={}", topology::SBC_BOB_IF),
                ])
                .stdout(dp_log.try_clone().unwrap())
                .stderr(dp_log)
                .spawn()
                .unwrap(),
        );
        assert!(
            wait_until(WAIT, || socket.exists().then_some(())).is_some(),
            "the data plane did not start:\n{}",
            std::fs::read_to_string(dir.join("dataplane.log")).unwrap_or_default()
        );
        std::fs::write(dir.join("cdr.kek"), "11".repeat(32)).unwrap();
        std::fs::set_permissions(dir.join("cdr.kek"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let config = dir.join("control.toml");
        std::fs::write(&config, control_toml(dir, &socket, &pki)).unwrap();
        let check = Command::new(workspace_binary("relay-control"))
            .arg("--config")
            .arg(&config)
            .arg("--check")
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let control = start_control(&net, &config, &dir.join("control-1.log"));
        let mut a = Appliance {
            dir: dir.to_owned(),
            socket,
            config,
            pki,
            dataplane,
            control,
            runs: 1,
            net,
        };
        a.wait_log("relay-control ready");
        a
    }

    /// relay-control's log of its current run.
    pub fn control_log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("control-{}.log", self.runs)))
            .unwrap_or_default()
    }

    /// The data plane's output.
    pub fn dataplane_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dataplane.log")).unwrap_or_default()
    }

    /// Waits for `text` in relay-control's log of its current run.
    pub fn wait_log(&mut self, text: &str) {
        assert!(
            wait_until(WAIT, || self.control_log().contains(text).then_some(())).is_some(),
            "no {text:?} from relay-control:\n{}",
            self.control_log()
        );
    }

    /// Starts relay-control again (after it stopped or was killed).
    pub fn restart_control(&mut self) {
        self.runs += 1;
        self.control = start_control(
            &self.net,
            &self.config,
            &self.dir.join(format!("control-{}.log", self.runs)),
        );
        self.wait_log("relay-control ready");
    }

    /// `relayctl` on this appliance's record store.
    pub fn relayctl(&self, args: &[&str]) -> std::process::Output {
        relayctl(&self.dir, args)
    }
}

fn start_control(net: &SbcTopology, config: &Path, log: &Path) -> KillOnDrop {
    let log = std::fs::File::create(log).unwrap();
    KillOnDrop::new(
        net.sbc
            .command(workspace_binary("relay-control").to_str().unwrap())
            .arg("--config")
            .arg(config)
            .env("RELAY_LOG", "relay_control=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}
