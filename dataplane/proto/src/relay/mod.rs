//! The relay's packet logic, sans I/O: one [`Relay`] per worker core owns its calls (flow
//! table, SRTP contexts, latching, statistics) and turns each received frame into a
//! [`Verdict`] in place: forward it (re-keyed, headers rewritten), answer it (ARP, ICMP echo,
//! neighbour discovery), or drop it with a counted [`DropReason`]. No allocation, lock or
//! syscall per packet; time is passed in.
//!
//! One file per job, all of them `impl Relay` blocks over the state defined here:
//! * `counters`: [`DropReason`], [`WorkerStats`], [`LegStats`], [`CallStats`].
//! * `calls`: installing, modifying and removing calls ([`Relay::add_call`],
//!   [`Relay::modify_call`], [`Relay::remove_call`], [`Relay::install`]).
//! * `neighbours`: the neighbour table, next hops, and the ARP requests and neighbour
//!   solicitations queued for unresolved ones ([`Relay::learn`],
//!   [`Relay::drain_arp_requests`]).
//! * `answers`: ARP, ICMP echo and neighbour discovery for the relay's own addresses.
//! * `forward`: [`Relay::process`]: the per-packet path, from parse to [`Verdict::Forward`].
//! * `prefetch`: [`CacheHint`], [`NoHint`] and [`Relay::prefetch_burst`], the staged prefetch
//!   of a burst's state.
//!
//! The per-call state below is laid out for the hot path (`repr(C)`, the fields in the order a
//! packet reads them); the files above only move code, never this layout.

use rustc_hash::FxHashMap as HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use relay_srtp::Context;

use crate::flows::FlowTable;
use crate::rtpstats::RtpReceiveStats;
use crate::wire::{self, TxHeader};
use relay_session::RtcpMode;

mod answers;
mod burst;
mod calls;
mod counters;
mod forward;
mod neighbours;
mod prefetch;

pub use burst::Received;
pub use counters::{CallStats, DropReason, LegStats, WorkerStats};
pub use prefetch::{CacheHint, NoHint};

/// What to do with a frame after [`Relay::process`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit `len` bytes of the (rewritten) frame on `port`.
    Forward {
        /// Output port.
        port: u16,
        /// New frame length.
        len: usize,
        /// The NIC is to complete the UDP checksum (see [`PortAddr::udp_checksum_offload`]).
        offload: Option<wire::ChecksumOffload>,
    },
    /// As `Forward`, once the MAC of `next_hop` is known: the frame is complete but for its
    /// destination MAC (bytes 0 to 5, zeros), asked for by an ARP request or neighbour
    /// solicitation now queued ([`Relay::drain_arp_requests`]). The I/O shell holds the frame
    /// a short while, fills in [`Relay::neighbour_mac`] when it is known and transmits (counting
    /// it in [`WorkerStats::forwarded`]), or gives up and counts it in
    /// [`DropReason::NeighbourUnresolved`]; counted meanwhile in [`WorkerStats::held`] (and
    /// already in the leg's transmit counters, as the relay's work on it is done). So a
    /// call's first packets towards a peer not yet resolved are late, not lost, as a host's
    /// neighbour cache queues them (RFC 4861 section 7.2.2, RFC 1122 section 2.3.2.2).
    Hold {
        /// Output port.
        port: u16,
        /// New frame length.
        len: usize,
        /// As in `Forward`.
        offload: Option<wire::ChecksumOffload>,
        /// The next hop whose MAC completes the frame.
        next_hop: IpAddr,
    },
    /// Transmit `len` bytes back on the port it came from (ARP reply, ICMP echo reply).
    Reply {
        /// Reply length.
        len: usize,
    },
    /// Handled, nothing to send (e.g. an ARP reply we learnt from).
    Consumed,
    /// Dropped and counted.
    Drop(DropReason),
}

/// What the receiving NIC says of a frame's UDP checksum (DPDK's `RTE_MBUF_F_RX_L4_CKSUM_*`
/// flags, with `RTE_ETH_RX_OFFLOAD_UDP_CKSUM` enabled).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RxChecksum {
    /// Nothing: the relay checks what it needs itself.
    #[default]
    Unknown,
    /// The NIC checked the checksum: right.
    Good,
    /// The NIC checked the checksum: wrong.
    Bad,
    /// The checksum field is not meaningful but the payload's integrity was verified
    /// (`RTE_MBUF_F_RX_L4_CKSUM_NONE`, e.g. from a local virtual machine).
    PayloadVerified,
}

/// One of the relay's ports and its addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortAddr {
    /// The DPDK port id.
    pub port: u16,
    /// Its MAC.
    pub mac: [u8; 6],
    /// Its IPv4 address.
    pub ipv4: Ipv4Addr,
    /// Prefix length of the attached IPv4 subnet.
    pub prefix_len: u8,
    /// IPv4 default gateway, if the port reaches beyond its subnet.
    pub gateway: Option<Ipv4Addr>,
    /// VLAN id to tag transmitted frames with (and to expect on received ones).
    pub vlan: Option<u16>,
    /// Its IPv6 address, if it has one.
    pub ipv6: Option<Ipv6Addr>,
    /// Prefix length of the attached IPv6 subnet.
    pub prefix6_len: u8,
    /// IPv6 default gateway.
    pub gateway6: Option<Ipv6Addr>,
    /// The port's NIC completes UDP checksums (`RTE_ETH_TX_OFFLOAD_UDP_CKSUM` enabled): used
    /// for datagrams whose payload was authenticated or freshly protected here.
    pub udp_checksum_offload: bool,
}

impl Default for PortAddr {
    fn default() -> Self {
        PortAddr {
            port: 0,
            mac: [0; 6],
            ipv4: Ipv4Addr::UNSPECIFIED,
            prefix_len: 24,
            gateway: None,
            vlan: None,
            ipv6: None,
            prefix6_len: 64,
            gateway6: None,
            udp_checksum_offload: false,
        }
    }
}

/// A leg's outgoing headers as last built, and what they were built from.
#[derive(Clone, Copy)]
struct TxCache {
    header: TxHeader,
    port: u16,
    /// The port completes UDP checksums.
    offload: bool,
    /// The neighbour table's generation when built: any MAC change since rebuilds.
    neighbour_gen: u64,
    /// When the next hop's neighbour entry expires.
    expires_ns: u64,
}

/// A UDP address as a stream keeps it: 20 bytes, where a `SocketAddr` takes 32 for the
/// IPv6 flow label and scope id that the relay never uses; a media pair keeps six (two
/// local addresses, the latched peers' RTP and RTCP addresses of both legs).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Endpoint {
    /// The IPv4 address in the first four bytes, or the IPv6 address.
    ip: [u8; 16],
    port: u16,
    v6: bool,
}

impl From<SocketAddr> for Endpoint {
    #[inline]
    fn from(a: SocketAddr) -> Self {
        let mut ip = [0u8; 16];
        let v6 = match a.ip() {
            IpAddr::V4(v4) => {
                ip[..4].copy_from_slice(&v4.octets());
                false
            }
            IpAddr::V6(v6) => {
                ip = v6.octets();
                true
            }
        };
        Endpoint {
            ip,
            port: a.port(),
            v6,
        }
    }
}

impl From<Endpoint> for SocketAddr {
    #[inline]
    fn from(e: Endpoint) -> Self {
        let ip = if e.v6 {
            IpAddr::V6(Ipv6Addr::from(e.ip))
        } else {
            IpAddr::V4(Ipv4Addr::new(e.ip[0], e.ip[1], e.ip[2], e.ip[3]))
        };
        SocketAddr::new(ip, e.port)
    }
}

const _: () = assert!(size_of::<Option<Endpoint>>() == 20);

/// A leg's SRTP context (it knows its SDES key: [`Context::is_for`]).
type Keyed = Option<Box<Context>>;

/// What the hot path reads of a leg when a packet arrives from it.
// `repr(C)`: the fields in the order the hot path reads them.
#[derive(Default)]
#[repr(C)]
struct Receiving {
    latched: bool,
    strict: bool,
    // Boxed: a plain-RTP leg then costs a pointer, not a context's worth of key schedules.
    receive: Keyed,
    /// RTP timestamp units per nanosecond, times 2^40 (no division per packet).
    clock_per_ns: u64,
    remote: Option<Endpoint>,
    remote_rtcp: Option<Endpoint>,
    rx_packets: u64,
    rx_bytes: u64,
    rx_rtcp: u64,
    last_rx_ns: u64,
    rtp: RtpReceiveStats,
}

impl Receiving {
    /// Latches the peer's address for the RTP or RTCP port; true if it changed (the headers
    /// towards the leg must then be rebuilt).
    fn set_remote(&mut self, rtcp_port: bool, src: SocketAddr) -> bool {
        let src = Endpoint::from(src);
        let slot = if rtcp_port {
            &mut self.remote_rtcp
        } else {
            &mut self.remote
        };
        let changed = *slot != Some(src);
        *slot = Some(src);
        changed
    }
}

/// What the hot path reads of a leg when a packet is sent to it.
#[derive(Default)]
#[repr(C)]
struct Sending {
    send: Keyed,
    tx_packets: u64,
    tx_bytes: u64,
    /// Headers for packets sent to this leg's RTP port (and RTCP multiplexed on it). RTCP to
    /// a separate port (RFC 3550 port + 1), a packet every few seconds, gets its headers
    /// built each time: a second cache would cost every stream 112 bytes.
    tx: Option<TxCache>,
}

/// One direction of a media pair in one piece: the receiving side of the leg packets arrive
/// from, then the sending side of the leg they leave to. A packet reads one run of about five
/// cache lines of it (see `Relay::prefetch_burst`) instead of lines spread over two legs.
#[derive(Default)]
#[repr(C)]
struct Direction {
    from: Receiving,
    to: Sending,
}

/// A leg as built from its spec, before its halves go into the two directions.
struct LegParts {
    receiving: Receiving,
    sending: Sending,
    local: SocketAddr,
}

// Stored in place (`Vec<Media>`, not `Vec<Option<Media>>`): an `Option`'s tag would sit wherever
// the compiler finds a niche (lines away from what a packet reads), and reading it would cost a
// cache miss per packet. A removed call leaves a vacant entry instead.
#[repr(C)]
struct Media {
    live: bool,
    rtcp: RtcpMode,
    /// `dirs[s]`: packets arriving on leg `s` (0 = a, 1 = b) and leaving to the other leg.
    dirs: [Direction; 2],
    locals: [Endpoint; 2],
    /// Drops of packets from each leg, per reason. 32 bits each (half the memory of a
    /// stream's counters otherwise), stopping at `u32::MAX` rather than wrapping: over four
    /// billion drops on one leg, 71 minutes of a 1 Mpps flood at it. The worker's counters
    /// ([`WorkerStats::drops`]) are 64-bit and count on.
    drops: [[u32; DropReason::COUNT]; 2],
}

impl Media {
    fn new(a: LegParts, b: LegParts, rtcp: RtcpMode) -> Media {
        Media {
            live: true,
            rtcp,
            dirs: [
                Direction {
                    from: a.receiving,
                    to: b.sending,
                },
                Direction {
                    from: b.receiving,
                    to: a.sending,
                },
            ],
            locals: [a.local.into(), b.local.into()],
            drops: [[0; DropReason::COUNT]; 2],
        }
    }

    fn vacant() -> Media {
        Media {
            live: false,
            rtcp: RtcpMode::Mux,
            dirs: Default::default(),
            locals: [SocketAddr::from(([0, 0, 0, 0], 0)).into(); 2],
            drops: [[0; DropReason::COUNT]; 2],
        }
    }

    /// Leg `s`'s contexts (receive, send), taken out for a re-INVITE.
    fn take_contexts(&mut self, s: usize) -> (Keyed, Keyed) {
        (
            self.dirs[s].from.receive.take(),
            self.dirs[1 - s].to.send.take(),
        )
    }

    /// Leg `s`'s counters.
    fn leg_stats(&self, s: usize) -> LegStats {
        let (rx, tx) = (&self.dirs[s].from, &self.dirs[1 - s].to);
        LegStats {
            rx_packets: rx.rx_packets,
            rx_bytes: rx.rx_bytes,
            rx_rtcp: rx.rx_rtcp,
            tx_packets: tx.tx_packets,
            tx_bytes: tx.tx_bytes,
            rtp: rx.rtp.clone(),
            last_rx_ns: rx.last_rx_ns,
            drops: self.drops[s].map(u64::from),
            srtp_receive: rx
                .receive
                .as_ref()
                .map(|k| k.positions())
                .unwrap_or_default(),
            srtp_send: tx.send.as_ref().map(|k| k.positions()).unwrap_or_default(),
        }
    }
}

/// Tunables of a worker's relay.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// How long a learnt neighbour MAC stays valid.
    pub neighbour_ttl_ns: u64,
    /// Most neighbours remembered.
    pub max_neighbours: usize,
    /// SRTP replay window.
    pub replay_window: u32,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            neighbour_ttl_ns: 300_000_000_000,
            max_neighbours: 4096,
            replay_window: 128,
        }
    }
}

/// Most ARP requests / neighbour solicitations queued, and most neighbours learnt from the wire
/// between two [`Relay::drain_learnt`].
const MAX_PENDING_ARP: usize = 64;

/// One worker's relay state and packet logic.
pub struct Relay {
    ports: Vec<PortAddr>,
    config: RelayConfig,
    neighbours: HashMap<IpAddr, ([u8; 6], u64)>,
    /// Bumped whenever a neighbour's MAC is added or changes, invalidating built headers.
    neighbour_gen: u64,
    flows: FlowTable,
    media: Vec<Media>,
    free: Vec<u32>,
    /// Each call's media slots, by call id. The id boxed (16 bytes, not `String`'s 24) and up
    /// to four slots inline: no heap block per call beside its id.
    calls: HashMap<Box<str>, CallSlots>,
    pending_arp: Vec<(u16, IpAddr)>,
    learnt: Vec<(IpAddr, [u8; 6])>,
    /// The burst path's lists, allocated once.
    scratch: burst::Scratch,
    /// Per-worker counters.
    pub stats: WorkerStats,
}

/// A call's media slots.
type CallSlots = smallvec::SmallVec<[u32; 4]>;

/// A neighbour entry that never expires.
const STATIC: u64 = u64::MAX;

impl Relay {
    /// A relay for `ports`.
    pub fn new(ports: Vec<PortAddr>, config: RelayConfig) -> Relay {
        Relay {
            ports,
            config,
            neighbours: HashMap::default(),
            neighbour_gen: 0,
            flows: FlowTable::default(),
            media: Vec::new(),
            free: Vec::new(),
            calls: HashMap::default(),
            pending_arp: Vec::with_capacity(MAX_PENDING_ARP),
            learnt: Vec::with_capacity(MAX_PENDING_ARP),
            scratch: burst::Scratch::new(),
            stats: WorkerStats::default(),
        }
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The per-stream records are sized on purpose (issue 14: memory per stream at a million
    /// streams); a field added to them should be a decision, not an accident.
    #[test]
    fn per_stream_records_stay_compact() {
        assert!(
            size_of::<Media>() <= 744,
            "Media: {} bytes",
            size_of::<Media>()
        );
        assert!(
            size_of::<Direction>() <= 272,
            "Direction: {} bytes",
            size_of::<Direction>()
        );
        assert_eq!(size_of::<Option<Endpoint>>(), 20);
    }
}
