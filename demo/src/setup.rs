//! What a run makes before its first call, and how a later run removes what a crashed one
//! left: the namespaces (with their veth pairs and any process still in them), the
//! temporary directory and the data plane's DPDK runtime directory.
//!
//! Every name carries the PID of the run that made it (`relaydemo-sbc-PID-N`,
//! `relay-demo-PID-*`, `/var/run/dpdk/sbcPID-N`); a name whose PID is no longer a running
//! relay-demo is a leftover.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use relay_testsupport::pki::Pki;
use relay_testsupport::topology;

/// The prefix of the run's namespaces.
pub const NETNS_PREFIX: &str = "relaydemo";
/// The prefix of the run's temporary directory (followed by the PID).
pub const TMP_PREFIX: &str = "relay-demo-";

/// Whether `pid` is a running relay-demo.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.contains("relay-demo"))
}

/// Whether any process has `pid` (DPDK directories are made by tests too: only those of
/// processes that are gone are removed).
fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The PID in a name `...-PID-N` or `PREFIXPID-...`.
fn pid_in(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?;
    rest.split(['-', '.'])
        .find(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()
}

/// Whether the process of a PID found in a name still runs (and so owns what is named).
type Running = fn(u32) -> bool;

/// Removes what runs that are no longer running left; what was removed, for the log.
pub fn remove_leftovers() -> Vec<String> {
    let mut removed = Vec::new();
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output();
    let names: Vec<String> = list
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for name in names {
        let Some(pid) = pid_in(&name, &format!("{NETNS_PREFIX}-")) else {
            continue;
        };
        if alive(pid) {
            continue;
        }
        // Processes a crashed run left in the namespace (the data plane, relay-control),
        // stopped by their PIDs.
        if let Ok(o) = std::process::Command::new("ip")
            .args(["netns", "pids", &name])
            .output()
        {
            for p in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", p])
                    .status();
                removed.push(format!("process {p} in {name}"));
            }
        }
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &name])
            .status();
        removed.push(format!("namespace {name}"));
    }
    let dirs: [(PathBuf, &str, Running); 2] = [
        (std::env::temp_dir(), TMP_PREFIX, alive),
        (PathBuf::from("/var/run/dpdk"), "sbc", exists),
    ];
    for (dir, prefix, running) in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = pid_in(&name, prefix) {
                if !running(pid) && std::fs::remove_dir_all(e.path()).is_ok() {
                    removed.push(e.path().display().to_string());
                }
            }
        }
    }
    removed
}

/// The run's PKI: a development CA, the SBC's certificate (its signalling addresses and
/// `sbc.test`), the cloud side's and the operator side's.
pub fn make_pki(dir: &Path) -> Pki {
    topology::pki(dir, ("cloud", &["sip.cloud.test"]), ("operator", &[]))
}

/// A fresh CDR key-encryption key (mode 0600), as `relayctl keygen` writes one.
pub fn make_kek(path: &Path) -> Result<()> {
    relay_control::cdr::Kek::generate(path)
        .with_context(|| format!("writing the key-encryption key {}", path.display()))
}

/// relay-control's configuration for the run: the cloud trunk (Teams Direct Routing
/// profile, mutual TLS, SRTP) and the operator trunk (TLS, RTP or SRTP).
pub fn control_toml(
    dir: &Path,
    socket: &Path,
    pki: &Pki,
    operator_srtp: bool,
    metrics: &str,
) -> String {
    let sbc = &pki.leaves[0];
    let policy = if operator_srtp {
        "srtp_mandatory"
    } else {
        "rtp"
    };
    format!(
        r#"# relay-demo: the whole appliance between a cloud side and an operator side.
[sbc]
fqdn = "sbc.test"
dataplane_socket = "{socket}"
media_ports = "30000-39999"
admin_socket = "{dir}/control.sock"
state_dir = "{dir}/state"
metrics = "{metrics}"
options_interval_s = 10
media_timeout_s = 30

[tls]
certificate = "{cert}"
private_key = "{key}"

[cdr]
dir = "{dir}/cdr"
kek = "{dir}/cdr.kek"

[[listen]]
transport = "tls"
address = "{sbc_cloud}:5061"

[[listen]]
transport = "tls"
address = "{sbc_operator}:5061"

[[trunk]]
name = "cloud"
profile = "teams"
peers = [{{ host = "{cloud}", port = 5061, transport = "tls" }}]
tls_server_name = "sip.cloud.test"
signalling_address = "{sbc_cloud}:5061"
media_address = "{cloud_media}"
media_policy = "srtp_mandatory"
suites = ["AES_CM_128_HMAC_SHA1_80"]
trust_store = "{ca}"
verify_client = true

[[trunk]]
name = "operator"
peers = [{{ host = "{operator}", port = 5061, transport = "tls" }}]
signalling_address = "{sbc_operator}:5061"
local_host = "{sbc_operator}"
media_address = "{operator_media}"
media_policy = "{policy}"
suites = ["AES_CM_128_HMAC_SHA1_80"]
trust_store = "{ca}"

[[route]]
from = "cloud"
to = "operator"
"#,
        socket = socket.display(),
        dir = dir.display(),
        cert = sbc.certificate.display(),
        key = sbc.key.display(),
        ca = pki.ca.display(),
        sbc_cloud = topology::SBC_ALICE_SIGNALLING,
        sbc_operator = topology::SBC_BOB_SIGNALLING,
        cloud = topology::ALICE,
        operator = topology::BOB,
        cloud_media = topology::SBC_ALICE_MEDIA,
        operator_media = topology::SBC_BOB_MEDIA,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_are_found_in_the_names_runs_give() {
        assert_eq!(pid_in("relaydemo-sbc-4242-1", "relaydemo-"), Some(4242));
        assert_eq!(pid_in("relay-demo-4242-abcXYZ", TMP_PREFIX), Some(4242));
        assert_eq!(pid_in("sbc4242-0", "sbc"), Some(4242));
        assert_eq!(pid_in("sbct-alice-1-0", "relaydemo-"), None);
    }
}
