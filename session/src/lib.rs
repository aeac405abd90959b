//! What the control plane and the data plane say to each other, with no DPDK and no I/O
//! runtime behind it: the session schema (version 1, `docs/sessions.md`), the control-socket
//! requests and responses (`docs/control-socket.md`), the counters the data plane reports,
//! and a blocking client for the control socket.
//!
//! `relay-dataplane` serves these types; `relay-control` and the tests speak them. Keys in
//! the schema are redacted from `Debug` and zeroised on drop.

#![forbid(unsafe_code)]

pub mod schema;

pub use schema::*;
