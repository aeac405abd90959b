//! The SRTP traffic generator's sans-I/O core (issue 15): what `relay-gen` sends and how it
//! judges what comes back, with no DPDK, sockets or clock of its own (time is passed in).
//!
//! * [`streams`]: the streams of a relay's sessions file as a generator sees them: where to
//!   send, with which key, and where and with which key the relayed packets arrive.
//! * [`stamp`]: the generator's mark in every RTP payload (stream, sequence number, send
//!   time) and the filler pattern after it, so a payload altered on the way is caught even
//!   without SRTP.
//! * [`send`]: the send side: each stream's next RTP packet at a codec's size, stamped and
//!   protected with the key the relay receives with.
//! * [`verify`]: the receive side: every relayed packet opened with the outbound key and its
//!   stamp checked; loss, duplicates, reordering, failed verification and latency
//!   percentiles reported.
//! * [`capture`]: `--write-pcap`, a capture of fresh valid SRTP for tools that cannot make
//!   it (pktgen-dpdk's pcap replay).
//! * [`synthetic`]: a sessions file of `n` streams with fresh keys, laid out over as many
//!   relay addresses as the stream count needs (`relay-gen sessions`).
//! * [`pktgen`]: a sessions file's streams as one pktgen-dpdk range (`relay-gen
//!   pktgen-flows`, for `bench/pktgen/rtp-range.lua`).
//! * [`rtpengine`]: calls set up on rtpengine over its ng protocol (the reference relay's
//!   side of `relay-gen rtpengine`): requests, replies and both legs' SDP.
//! * [`ndr`]: the RFC 2544 binary search for the no-drop rate and the rate at 0.5% loss, as
//!   FD.io CSIT reports them, over any trial function.

#![forbid(unsafe_code)]

pub mod capture;
pub mod ndr;
pub mod pktgen;
pub mod rtpengine;
pub mod send;
pub mod stamp;
pub mod streams;
pub mod synthetic;
pub mod verify;
