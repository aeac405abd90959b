//! The relay's data plane: DPDK poll-mode workers that receive, transform and transmit media.
//!
//! Layout (sans-I/O core, thin I/O shell, as in quinn and s2n-quic):
//! * [`wire`]: zero-copy parsing, in-place rewriting and building of frames, one module per
//!   protocol.
//! * [`relay`]: the per-worker packet logic (flow table, SRTP re-keying via `relay-srtp`,
//!   latching, ARP/ICMP answers, statistics), sans I/O: frames and time in, verdicts out.
//! * [`session`]: the versioned session schema the control plane installs.
//! * [`rtpstats`]: RTP loss and jitter (RFC 3550 A.1, A.3, A.8).
//! * [`dpdk`]: the only module with `unsafe`: EAL, mempools, ports, mbufs and bursts over the
//!   raw bindings in `relay-sys`.
//! * [`portloop`]: the furthest the product goes at this stage: a generator, a forwarder and a
//!   sink on two virtual ports, which `relay-dataplane portloop` runs and reports on.

#![deny(unsafe_code)]

pub mod bench;
pub mod control_socket;
pub mod cores;
pub mod demo;
pub mod dpdk;
pub mod portloop;
pub mod worker;

pub use relay_proto::{flows, relay, rss, rtpstats, wire};
pub use relay_session as session;
