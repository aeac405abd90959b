//! What the control plane and the data plane say to each other, with no DPDK and no I/O
//! runtime behind it:
//!
//! * [`schema`]: the session schema (version 1, `docs/sessions.md`): calls, media pairs,
//!   legs, SDES crypto, static neighbours, with validation and typed errors.
//! * [`control`]: the control-socket requests and responses (`docs/control-socket.md`).
//! * [`stats`]: the counters the data plane reports (per leg, call and worker) and its core
//!   map.
//! * [`client`]: a blocking client of the control socket.
//!
//! `relay-dataplane` serves these types; `relay-control`, `relayctl` and the tests speak them.
//! Keys in the schema are redacted from `Debug` and zeroised on drop, and the client zeroises
//! the request lines it builds.

#![forbid(unsafe_code)]

pub mod client;
pub mod control;
pub mod schema;
pub mod stats;

pub use schema::*;
