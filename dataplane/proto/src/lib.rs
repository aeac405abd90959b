//! The relay's sans-I/O core: everything a worker does to a frame, with no DPDK, no sockets
//! and no clock of its own (time is passed in, cache hints come from the I/O shell through
//! [`relay::CacheHint`]). Like `quinn-proto`, it is deterministic, so it is unit-tested,
//! property-tested and fuzzed without any device.
//!
//! * [`wire`]: zero-copy views and builders, one module per protocol: [`wire::ethernet`]
//!   (with 802.1Q), [`wire::ipv4`], [`wire::ipv6`], [`wire::udp`], [`wire::arp`],
//!   [`wire::icmp`] (ICMP and ICMPv6 echo), [`wire::ndisc`] (neighbour discovery),
//!   [`wire::checksum`] (RFC 1071, RFC 1624) and [`wire::tx_header`] (the prebuilt transmit
//!   header). One error enum, [`wire::WireError`]; byte offsets never leave `wire`.
//! * [`relay`]: the per-worker packet logic, one module per job: counters and drop reasons,
//!   calls (add, modify, remove), neighbours and next hops, local answers (ARP, ICMP, ND),
//!   forwarding (SRTP re-keying via `relay-srtp`, latching, checksums) and the staged
//!   prefetch of a burst; frames and time in, verdicts out.
//! * [`flows`]: the flow table (open addressing, prefetchable slots).
//! * [`rtpstats`]: RTP loss and jitter (RFC 3550 A.1, A.3, A.8).
//! * [`rss`]: the Toeplitz hash, the RSS key, and call placement: which worker owns a call.
//! * [`fuzzing`]: the bodies of the `fuzz/` targets (`wire_parse`, `relay_process`) and the
//!   seeds of their corpus, so `tests/fuzz_corpus.rs` replays it on stable Rust.
//!
//! Tests: inline unit tests per wire module; `tests/wire_roundtrip.rs` (property tests: every
//! view parses back what it emitted); `tests/relay_*.rs` over the harness in `tests/util`
//! (a relay, a clock, and calls with their peers' SRTP contexts); `tests/fuzz_corpus.rs`.
//!
//! The I/O shell (`relay-dataplane`) owns EAL, ports, mbufs, lcores and the worker loop.

#![forbid(unsafe_code)]

pub mod flows;
pub mod fuzzing;
pub mod relay;
pub mod rss;
pub mod rtpstats;
pub mod wire;
