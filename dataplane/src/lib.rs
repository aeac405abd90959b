//! The relay's data plane: DPDK poll-mode workers that receive, transform and transmit media.
//!
//! Layout (sans-I/O core, thin I/O shell, as in quinn and s2n-quic):
//! * [`frame`]: plain Rust over byte slices, testable without DPDK.
//! * [`dpdk`]: the only module with `unsafe`: EAL, mempools, ports, mbufs and bursts over the
//!   raw bindings in `relay-sys`.
//! * [`portloop`]: the furthest the product goes at this stage: a generator, a forwarder and a
//!   sink on two virtual ports, which `relay-dataplane portloop` runs and reports on.

#![deny(unsafe_code)]

pub mod dpdk;
pub mod frame;
pub mod portloop;
