//! Benchmarks and the traffic generator. Figures and the commands that produced them are in
//! `bench/RESULTS.md`; every throughput figure is a ratio against a reference measured in the
//! same run (libsrtp2, `dpdk-test-crypto-perf`, `dpdk-testpmd`).
//!
//! [`libsrtp`] drives Debian's libsrtp2 through the small C tool `libsrtp/srtp_ref.c` (built by
//! `build.rs`), so the reference implementation runs without any `unsafe` Rust.

#![forbid(unsafe_code)]

pub mod libsrtp;
pub mod machine;
pub mod rtp;
pub mod sipload;
