//! The three-namespace topology that puts the SBC between two baresip user agents.
//!
//! ```text
//!  ns alice                       ns sbc                                  ns bob
//! ┌──────────────┐   veth   ┌──────────────────────────────────┐   veth   ┌──────────────┐
//! │ alice0       ├──────────┤ sbc-alice           sbc-bob      ├──────────┤ bob0         │
//! │ 198.18.10.2  │          │ 198.18.10.1 kernel  198.18.20.1  │          │ 198.18.20.2  │
//! │ baresip      │          │ 198.18.10.10 DPDK   198.18.20.10 │          │ baresip      │
//! └──────────────┘          └──────────────────────────────────┘          └──────────────┘
//! ```
//!
//! Each peer namespace is joined to the SBC namespace by one veth pair. On the SBC's end of
//! each pair the *kernel* has the signalling address (198.18.10.1, 198.18.20.1): relay-control
//! listens there for SIP over TLS with ordinary sockets. The *data plane* has the media
//! address (198.18.10.10, 198.18.20.10), which the kernel does not have: relay-dataplane,
//! started inside the SBC namespace, reads and writes the same veth ends with DPDK's
//! `net_af_packet` and answers ARP for its media address itself. The two share the
//! interface (and its MAC) without stepping on each other: frames for the media address
//! reach the kernel too, but it has no such address and does not forward (a new namespace
//! has `ip_forward` 0), so it drops them; the data plane ignores frames for the kernel's
//! address. A packet socket also sees the kernel's own outgoing frames (the SIP/TLS
//! segments); the data plane drops those as not addressed to it.
//!
//! How a test uses it (the SBC processes are the caller's to start):
//!
//! ```no_run
//! use relay_testsupport::baresip::{Baresip, BaresipOpts};
//! use relay_testsupport::topology::{self, SbcTopology};
//! # fn certs() -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) { todo!() }
//! # fn main() -> relay_testsupport::Result<()> {
//! let net = SbcTopology::new()?;
//! let (ca, alice_pem, bob_pem) = certs(); // a test CA and leaf certificates with IP SANs
//!
//! // 1. The data plane, inside the SBC namespace, on both veth ends:
//! //    net.sbc.command("relay-dataplane")
//! //        .args(["run", "--port", "net_af_packet0,ipv4=198.18.10.10/24",
//! //               "--port", "net_af_packet1,ipv4=198.18.20.10/24", "--control", SOCK, "--",
//! //               "--no-huge", "-m", "512", "--no-pci", "--no-shconf",
//! //               "--vdev=net_af_packet0,iface=sbc-alice",
//! //               "--vdev=net_af_packet1,iface=sbc-bob"])
//! //    wrapped in a KillOnDrop; wait for its control socket.
//! // 2. relay-control, inside the SBC namespace (net.sbc.command(...)), listening for
//! //    SIP/TLS on 198.18.10.1:5061 (alice's side) and 198.18.20.1:5061 (bob's side),
//! //    routing alice's calls to bob at 198.18.20.2:5061, and giving the data plane's
//! //    198.18.10.10 / 198.18.20.10 as the media addresses in the SDP it sends.
//!
//! // 3. bob listens for the SBC's INVITE; alice sends everything to the SBC.
//! let bob = Baresip::start(&net.bob, &BaresipOpts::new(
//!     "sip:bob@198.18.20.2;transport=tls", topology::BOB_SIP, &bob_pem, &ca))?;
//! let alice = Baresip::start(&net.alice, &BaresipOpts::new(
//!     "sip:alice@198.18.10.2;transport=tls", topology::ALICE_SIP, &alice_pem, &ca)
//!     .with_outbound_proxy(&topology::sbc_proxy_for_alice()))?;
//! alice.dial("sip:bob@198.18.20.2")?;
//!
//! // 4. Capture on both legs (relay_testsupport::capture::Capture::start on net.alice with
//! //    topology::ALICE_IF and on net.bob with topology::BOB_IF), then verify each leg with
//! //    srtp_check::check_call: alice <-> 198.18.10.10 with alice.sent_key() and
//! //    alice.received_key() (the SBC's key towards alice), bob <-> 198.18.20.10 with
//! //    bob.received_key() (the SBC's key towards bob) and bob.sent_key().
//! # Ok(()) }
//! ```

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::error::Result;
use crate::netns::{Netns, Veth};

/// alice's address (and SIP/TLS listening address with [`ALICE_SIP`]).
pub const ALICE: Ipv4Addr = Ipv4Addr::new(198, 18, 10, 2);
/// The SBC kernel's signalling address on alice's side.
pub const SBC_ALICE_SIGNALLING: Ipv4Addr = Ipv4Addr::new(198, 18, 10, 1);
/// The data plane's media address on alice's side (not a kernel address).
pub const SBC_ALICE_MEDIA: Ipv4Addr = Ipv4Addr::new(198, 18, 10, 10);
/// bob's address.
pub const BOB: Ipv4Addr = Ipv4Addr::new(198, 18, 20, 2);
/// The SBC kernel's signalling address on bob's side.
pub const SBC_BOB_SIGNALLING: Ipv4Addr = Ipv4Addr::new(198, 18, 20, 1);
/// The data plane's media address on bob's side (not a kernel address).
pub const SBC_BOB_MEDIA: Ipv4Addr = Ipv4Addr::new(198, 18, 20, 10);
/// Prefix length of both links.
pub const PREFIX_LEN: u8 = 24;
/// The SIP/TLS port everyone listens on.
pub const SIP_TLS_PORT: u16 = 5061;
/// alice's SIP/TLS address.
pub const ALICE_SIP: SocketAddrV4 = SocketAddrV4::new(ALICE, SIP_TLS_PORT);
/// bob's SIP/TLS address.
pub const BOB_SIP: SocketAddrV4 = SocketAddrV4::new(BOB, SIP_TLS_PORT);

/// alice's interface, in her namespace.
pub const ALICE_IF: &str = "alice0";
/// The SBC's interface towards alice (kernel signalling address, data plane via `net_af_packet`).
pub const SBC_ALICE_IF: &str = "sbc-alice";
/// The SBC's interface towards bob.
pub const SBC_BOB_IF: &str = "sbc-bob";
/// bob's interface, in his namespace.
pub const BOB_IF: &str = "bob0";

/// alice's outbound proxy, the SBC's signalling address on her side:
/// `sip:198.18.10.1:5061;transport=tls`.
pub fn sbc_proxy_for_alice() -> String {
    format!("sip:{SBC_ALICE_SIGNALLING}:{SIP_TLS_PORT};transport=tls")
}

/// A test PKI for the topology: a CA, the SBC's certificate (both signalling addresses and
/// `sbc.test`), then the alice-side peer `alice.0` (alice's address and the DNS names
/// `alice.1`) and the bob-side peer `bob.0` likewise, in that order in `leaves`.
pub fn pki(dir: &std::path::Path, alice: (&str, &[&str]), bob: (&str, &[&str])) -> crate::pki::Pki {
    use std::net::IpAddr;
    crate::pki::make(
        dir,
        &[
            (
                "sbc",
                &[
                    IpAddr::V4(SBC_ALICE_SIGNALLING),
                    IpAddr::V4(SBC_BOB_SIGNALLING),
                ],
                &["sbc.test"],
            ),
            (alice.0, &[IpAddr::V4(ALICE)], alice.1),
            (bob.0, &[IpAddr::V4(BOB)], bob.1),
        ],
    )
}

/// Three namespaces (alice, SBC, bob) and the two veth pairs between them; all deleted on
/// drop. Field order is drop order: the links go before the namespaces.
#[derive(Debug)]
pub struct SbcTopology {
    /// alice0 (198.18.10.2) <-> sbc-alice (198.18.10.1).
    pub alice_link: Veth,
    /// sbc-bob (198.18.20.1) <-> bob0 (198.18.20.2).
    pub bob_link: Veth,
    /// alice's namespace.
    pub alice: Netns,
    /// The SBC's namespace: relay-control and relay-dataplane run here.
    pub sbc: Netns,
    /// bob's namespace.
    pub bob: Netns,
}

impl SbcTopology {
    /// Builds the topology (needs root and iproute2, ethtool).
    pub fn new() -> Result<SbcTopology> {
        SbcTopology::named("sbct")
    }

    /// As [`SbcTopology::new`], the namespaces called `PREFIX-alice-PID-N`, `PREFIX-sbc-...`,
    /// `PREFIX-bob-...`.
    pub fn named(prefix: &str) -> Result<SbcTopology> {
        let alice = Netns::new(&format!("{prefix}-alice"))?;
        let sbc = Netns::new(&format!("{prefix}-sbc"))?;
        let bob = Netns::new(&format!("{prefix}-bob"))?;
        let cidr = |a: Ipv4Addr| format!("{a}/{PREFIX_LEN}");
        let alice_link = Veth::new(
            &alice,
            ALICE_IF,
            &cidr(ALICE),
            &sbc,
            SBC_ALICE_IF,
            &cidr(SBC_ALICE_SIGNALLING),
        )?;
        let bob_link = Veth::new(
            &sbc,
            SBC_BOB_IF,
            &cidr(SBC_BOB_SIGNALLING),
            &bob,
            BOB_IF,
            &cidr(BOB),
        )?;
        Ok(SbcTopology {
            alice_link,
            bob_link,
            alice,
            sbc,
            bob,
        })
    }
}
