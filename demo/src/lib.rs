//! The whole appliance in one command (`relay-demo`, see `main.rs` and the README): the
//! setup and clean-up of a run ([`setup`]), the built-in callers ([`calls`]) and their media
//! ([`media`]), and the call records read back ([`records`]). A library as well, so that the
//! tests can recompute what the callers sent ([`media::payload`]).

#![forbid(unsafe_code)]

pub mod calls;
pub mod media;
pub mod metrics_relay;
pub mod records;
pub mod setup;
