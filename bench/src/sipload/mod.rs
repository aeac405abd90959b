//! `sip-bench`: sustained new calls per second over SIP/TLS through an SBC, driven by a load
//! generator built on our own SIP stack (`relay-sip`) and rustls.
//!
//! - [`load`]: the generator, a UAC and a UAS in one process (both trunks' peers).
//! - [`msg`]: its SIP messages and SDES SDP.
//! - `transport`: its TLS streams and connections.
//! - [`pki`]: a throwaway CA and certificates for each run.
//! - [`run`]: the whole benchmark on one machine: relay-dataplane and relay-control (and, with
//!   `--reference`, Kamailio with rtpengine) in a network namespace of their own, pinned to
//!   cores, with CPU and memory read from `/proc`.

pub mod load;
pub mod msg;
pub mod pki;
pub mod procfs;
pub mod run;
mod transport;
