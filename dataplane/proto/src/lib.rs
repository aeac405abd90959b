//! The relay's sans-I/O core: everything a worker does to a frame, with no DPDK, no sockets
//! and no clock of its own (time is passed in, cache hints come from the I/O shell through
//! [`relay::CacheHint`]).
//!
//! * [`wire`]: zero-copy views and builders of Ethernet/VLAN, IPv4, IPv6, UDP, ARP, ICMP and
//!   neighbour discovery, checksums, and the prebuilt transmit header.
//! * [`relay`]: the per-worker packet logic: calls, SRTP re-keying via `relay-srtp`, latching,
//!   local answers, forwarding and counters; frames and time in, verdicts out.
//! * [`flows`]: the flow table (open addressing, prefetchable slots).
//! * [`rtpstats`]: RTP loss and jitter (RFC 3550 A.1, A.3, A.8).
//! * [`rss`]: the Toeplitz hash, the RSS key, and call placement: which worker owns a call.
//!
//! The I/O shell (`relay-dataplane`) owns EAL, ports, mbufs, lcores and the worker loop.

#![forbid(unsafe_code)]

pub mod flows;
pub mod fuzzing;
pub mod relay;
pub mod rss;
pub mod rtpstats;
pub mod wire;
