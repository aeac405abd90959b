//! The session border controller's B2BUA, sans I/O: SIP messages (parsed by `relay-sip`)
//! and time in; messages to send, data-plane changes, timers and call records out. The shell
//! (`relay-control`) owns sockets, TLS, the clock and the data plane's control socket.
//!
//! * [`core`]: the B2BUA: transactions and dialogs of both legs, routing between trunks,
//!   header rules, CANCEL, BYE, failover to a trunk's next peer, UDP retransmissions.
//! * [`media`]: SDP offer/answer through the relay: every RTP m-line anchored in the data
//!   plane, fresh SDES keys per leg and direction, one `a=crypto` per answer.
//! * [`ports`]: the media port allocator, placing each call's ports (RTP and RTCP, both legs)
//!   on one data-plane worker with the data plane's own placement function.
//! * [`config`]: trunks, peers, media policy, routes.
//! * [`ids`]: tags, branches and Call-IDs.

#![forbid(unsafe_code)]

pub mod call;
pub mod config;
pub mod core;
pub mod ids;
pub mod media;
pub mod ports;

pub use crate::call::{CallKey, Destination, FlowId, Leg, Phase};
pub use crate::core::health::PeerHealth;
pub use crate::core::persist::PersistedCall;
pub use crate::core::{Action, B2bua, CallEnd, CallSummary, EndedBy, Flow, ProgramOp, TimerKey};
