//! Test harness for integration tests that drive real SIP user agents through the relay.
//!
//! Dev-only (`publish = false`); nothing in the product depends on it. It builds isolated
//! networks out of Linux network namespaces and veth pairs ([`netns`], [`topology`]), runs
//! baresip user agents in them over SIP/TLS with SDES SRTP ([`baresip`]), captures what they
//! send with tcpdump ([`capture`]), and checks the captured media with libsrtp2 against the
//! keys the endpoints themselves advertised in their SDP ([`srtp_check`]). [`sipp`] runs SIPp
//! as a scripted operator-side user agent (SIP over UDP or TCP, plain RTP), [`sip_peer`] is a
//! scripted SIP/TLS peer on our own stack (the Teams side, which no package imitates), and
//! [`appliance`] starts the relay's two processes in a topology's SBC namespace.
//!
//! # What it needs
//!
//! Root (namespaces, veth pairs, tcpdump), iproute2, ethtool, tcpdump, ping, baresip 1.0.0
//! (`baresip-core`), SIPp (`sip-tester`) and libsrtp2 when relay-bench was built;
//! `scripts/install.sh --packages --test-deps` installs them all. Tests call [`skip_reason`]
//! (or [`sipp_skip_reason`]) first and skip, printing why, only when they are not root or
//! baresip (or SIPp) is not installed: anything else missing is a failure, because CI has it.
//!
//! # Rules it enforces
//!
//! - Addresses only in 198.18.0.0/15: [`netns::Veth::new`] and [`baresip::Baresip::start`]
//!   refuse any other. Processes run only inside namespaces the test made, so no packet of
//!   theirs can reach another network.
//! - Every process is stopped by its PID ([`netns::KillOnDrop`]), every namespace and veth
//!   pair is deleted on drop, and every wait has a bound. Process wrappers borrow their
//!   [`netns::Netns`], so a namespace cannot be dropped under a running process.
//!
//! The module docs of [`baresip`] record what baresip 1.0.0 needs; those of [`topology`]
//! show how a test puts the SBC between two user agents.

#![forbid(unsafe_code)]

pub mod appliance;
pub mod baresip;
pub mod capture;
mod error;
pub mod netns;
pub mod pki;
pub mod sip_peer;
pub mod sipp;
pub mod srtp_check;
pub mod topology;

pub use error::{Error, Result};

/// Why a namespace test cannot run here, or `None` if it can: not root, or (when
/// `needs_baresip`) no baresip. Tests print the reason and return.
pub fn skip_reason(needs_baresip: bool) -> Option<&'static str> {
    if !netns::is_root() {
        return Some("needs root (network namespaces, veth pairs, tcpdump)");
    }
    if needs_baresip && !baresip::baresip_installed() {
        return Some(
            "needs baresip (Debian package baresip-core: scripts/install.sh --packages --test-deps)",
        );
    }
    None
}

/// Why a SIPp test cannot run here, or `None` if it can: what [`skip_reason`] says, or no
/// SIPp (`sipp`, Debian package `sip-tester`).
pub fn sipp_skip_reason(needs_baresip: bool) -> Option<&'static str> {
    if let Some(why) = skip_reason(needs_baresip) {
        return Some(why);
    }
    if !sipp::sipp_installed() {
        return Some(
            "needs SIPp (Debian package sip-tester: scripts/install.sh --packages --test-deps)",
        );
    }
    None
}

/// A binary of the workspace built next to the running test binary (`target/<profile>/`,
/// the parent of its `deps/`): relay-control, relayctl. Panics, naming the build command,
/// when it is missing.
pub fn workspace_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("this test binary");
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build -p relay-control`; `cargo test --workspace` does)",
        path.display()
    );
    path
}
