//! The relay's data plane: the I/O shell around the sans-I/O core `relay-proto`. DPDK
//! poll-mode workers, one per lcore, receive bursts, hand each frame to the core's
//! [`relay::Relay`] (time and cache hints passed in), and transmit what it forwards or answers.
//!
//! * [`dpdk`]: the only module with `unsafe`: EAL, mempools, ports (queues, RSS, offloads),
//!   mbufs, bursts and rings over the raw bindings in `relay-sys`.
//! * [`worker`]: one worker's poll loop: receive, software dispatch to the owning worker,
//!   process, transmit; control messages applied between bursts.
//! * [`runtime`]: builds the topology for `run` (ports, steering, relays, control socket,
//!   dispatch rings, workers on their lcores) and returns the final counters.
//! * [`config`]: `--port` options and the embedded default EAL arguments.
//! * [`cores`]: the core/port/queue plan (`--main-core`, `--workers`, `--map`).
//! * [`control_socket`]: the server of the control socket (protocol and types in
//!   `relay-session`).
//! * [`demo`], [`bench`](mod@bench), [`portloop`]: the README's main job, the throughput benchmark and the
//!   bare port loop.
//!
//! The core's modules are re-exported under their old paths ([`wire`], [`relay`], [`rss`], ...)
//! and the schema as [`session`]. `ARCHITECTURE.md` has the crates and the layer rules.

#![deny(unsafe_code)]

pub mod bench;
pub mod config;
pub mod control_socket;
pub mod cores;
pub mod demo;
pub mod dpdk;
pub mod held;
pub mod portloop;
pub mod runtime;
pub mod worker;

pub use relay_proto::{flows, relay, rss, rtpstats, wire};
pub use relay_session as session;
