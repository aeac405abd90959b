//! Shared by the whole-appliance tests: the SBC topology with relay-dataplane and
//! relay-control started in it, a test PKI, and the binaries built beside the test.

#![allow(dead_code, unreachable_pub)] // Each test binary uses a different part.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use relay_testsupport::appliance::{Appliance, Binaries};
use relay_testsupport::baresip::{Baresip, BaresipOpts};
use relay_testsupport::pki;
use relay_testsupport::topology::{self, SbcTopology};
pub use relay_testsupport::workspace_binary;

pub const WAIT: Duration = Duration::from_secs(15);

/// relay-control's configuration: the SBC's settings, with `trunks` (listeners, trunks and
/// routes) appended.
pub fn control_toml(dir: &Path, socket: &Path, pki: &pki::Pki, trunks: &str) -> String {
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
# Media counters are read every 2 s (a quarter of this): a restarted data plane gets its
# calls back within that.
media_timeout_s = 8

[tls]
certificate = "{cert}"
private_key = "{key}"

[cdr]
dir = "{cdr}"
kek = "{kek}"

{trunks}
"#,
        socket = socket.display(),
        admin = dir.join("control.sock").display(),
        state = dir.join("state").display(),
        cert = sbc.certificate.display(),
        key = sbc.key.display(),
        cdr = dir.join("cdr").display(),
        kek = dir.join("cdr.kek").display(),
    )
}

/// The SBC's two TLS listeners and the trunks to alice (198.18.10.2) and bob (198.18.20.2),
/// both SRTP-mandatory with `ca` as their trust store.
pub fn tls_trunks(ca: &Path) -> String {
    format!(
        r#"[[listen]]
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
"#,
        ca = ca.display()
    )
}

pub fn relayctl(dir: &Path, args: &[&str]) -> std::process::Output {
    relay_testsupport::appliance::relayctl(&workspace_binary("relayctl"), dir, "sbc-test", args)
        .expect("relayctl runs")
}

/// The test PKI: a CA, the SBC's certificate (both signalling addresses and `sbc.test`),
/// alice's and bob's.
pub fn pki(dir: &Path) -> pki::Pki {
    topology::pki(dir, ("alice", &[]), ("bob", &[]))
}

/// relay-dataplane and relay-control in `net`'s SBC namespace, with a CDR store in `dir`,
/// alice's and bob's trunks ([`tls_trunks`]) and a route from alice to bob.
pub fn start<'ns>(net: &'ns SbcTopology, dir: &Path, pki: &pki::Pki) -> Appliance<'ns> {
    let trunks = format!(
        "{}\n[[route]]\nfrom = \"alice-side\"\nto = \"bob-side\"\n",
        tls_trunks(&pki.ca)
    );
    start_with(net, dir, pki, &trunks)
}

/// As [`start`], with `trunks` (listeners, trunks and routes) in the configuration.
pub fn start_with<'ns>(
    net: &'ns SbcTopology,
    dir: &Path,
    pki: &pki::Pki,
    trunks: &str,
) -> Appliance<'ns> {
    std::fs::write(dir.join("cdr.kek"), "11".repeat(32)).unwrap();
    std::fs::set_permissions(dir.join("cdr.kek"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let bins = Binaries {
        dataplane: env!("CARGO_BIN_EXE_relay-dataplane").into(),
        control: workspace_binary("relay-control"),
    };
    let ports = relay_testsupport::appliance::sbc_media_ports();
    Appliance::start(&net.sbc, &bins, &ports, dir, |socket| {
        control_toml(dir, socket, pki, trunks)
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// bob listening on his TLS address, and alice with the SBC as her outbound proxy.
pub fn user_agents<'ns>(net: &'ns SbcTopology, pki: &pki::Pki) -> (Baresip<'ns>, Baresip<'ns>) {
    let bob = Baresip::start(
        &net.bob,
        &BaresipOpts::new(
            "sip:bob@198.18.20.2;transport=tls",
            topology::BOB_SIP,
            &pki.leaves[2].combined,
            &pki.ca,
        ),
    )
    .unwrap();
    let alice = Baresip::start(
        &net.alice,
        &BaresipOpts::new(
            "sip:alice@198.18.10.2;transport=tls",
            topology::ALICE_SIP,
            &pki.leaves[1].combined,
            &pki.ca,
        )
        .with_outbound_proxy(&topology::sbc_proxy_for_alice()),
    )
    .unwrap();
    (alice, bob)
}
