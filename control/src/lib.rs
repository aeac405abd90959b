//! Control plane of the relay: the `relay-control` process (SIP over TLS, TCP and UDP
//! around the sans-I/O B2BUA of `relay-b2bua`, which anchors every call's media in the data
//! plane with fresh SDES keys per leg), the call-detail-record store and the `relayctl`
//! operator CLI.
//!
//! * [`config`]: `control.toml`, checked at start-up with errors that name the key and the fix.
//! * [`shell`]: listeners, connections, TLS (rustls), timers, the data plane's control socket
//!   and the CDR store around the B2BUA.
//! * [`cdr`]: the call-detail-record store (encrypted at rest, purged by crypto-shredding,
//!   anonymised statistics, just-in-time audited access).

#![forbid(unsafe_code)]

pub mod cdr;
pub mod config;
pub mod shell;
pub mod top;
