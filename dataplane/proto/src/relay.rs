//! The relay's packet logic, sans I/O: one [`Relay`] per worker core owns its calls (flow
//! table, SRTP contexts, latching, statistics) and turns each received frame into a
//! [`Verdict`] in place: forward it (re-keyed, headers rewritten), answer it (ARP, ICMP echo),
//! or drop it with a counted [`DropReason`]. No allocation, lock or syscall per packet; time
//! is passed in.

use rustc_hash::FxHashMap as HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use relay_srtp::{Context, ContextConfig, SdesKey, SrtpError};

use crate::flows::{FlowKey, FlowRef, FlowTable};
use crate::rtpstats::RtpReceiveStats;
use crate::wire::{self, Arp, TxHeader, WireError, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use relay_session::{parse_mac, CallSpec, LegSpec, RtcpMode, SessionError, SessionsFile};

/// A hint to the CPU that memory will be read soon, supplied by the I/O shell (the data
/// plane's is `rte_prefetch0`'s instruction); the core never issues one itself, so it stays
/// free of `unsafe` and of any machine's intrinsics. A hint changes nothing observable.
pub trait CacheHint {
    /// Brings the cache line holding `addr` closer; any address, even a dangling one, is fine.
    fn line(&self, addr: *const u8);

    /// Hints the line holding `addr`.
    #[inline(always)]
    fn one<T: ?Sized>(&self, addr: *const T) {
        self.line(addr.cast::<u8>());
    }

    /// Hints every cache line that holds any of the `bytes` bytes from `addr` on (a range
    /// that starts mid-line spans one line more than its length suggests).
    #[inline(always)]
    fn range<T: ?Sized>(&self, addr: *const T, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let start = addr.cast::<u8>();
        let into_line = start as usize & 63;
        let first = start.wrapping_sub(into_line);
        for i in 0..(into_line + bytes).div_ceil(64) {
            self.line(first.wrapping_add(64 * i));
        }
    }
}

/// No hints: for tests, fuzzing and machines without a prefetch instruction.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHint;

impl CacheHint for NoHint {
    #[inline(always)]
    fn line(&self, _addr: *const u8) {}
}

/// Why a frame was dropped. One counter each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Not addressed to any of the relay's addresses.
    NotForUs,
    /// A protocol the relay does not carry (IPv6, IP options, fragments, ...).
    Unsupported,
    /// Header fields invalid or inconsistent.
    Malformed,
    /// Shorter than its headers say.
    Truncated,
    /// UDP checksum wrong.
    BadChecksum,
    /// UDP to a relay address with no stream on that port.
    UnknownFlow,
    /// From another source than the latched one, with strict source on.
    UnexpectedSource,
    /// The outgoing leg has no peer address yet (not in SDP, not latched).
    NoDestination,
    /// No port owns the outgoing leg's local address.
    NoRoute,
    /// The next hop's MAC is not known yet (an ARP request was queued).
    NeighbourUnresolved,
    /// SRTP authentication failed.
    AuthFailed,
    /// SRTP replay.
    Replayed,
    /// SRTP index too old for the replay window.
    TooOld,
    /// SRTP/RTP packet malformed (version, header, length).
    SrtpMalformed,
    /// SRTP MKI not this key's.
    MkiMismatch,
    /// SRTP key lifetime reached.
    KeyExpired,
    /// No room in the buffer to grow the packet (tag added).
    TooBig,
    /// The transmit queue was full (counted by the I/O layer).
    TxFull,
    /// The ring to the worker owning the packet's stream was full (software dispatch).
    HandoffFull,
}

impl DropReason {
    /// Every reason, in [`DropReason::index`] order.
    pub const ALL: [DropReason; 19] = [
        DropReason::NotForUs,
        DropReason::Unsupported,
        DropReason::Malformed,
        DropReason::Truncated,
        DropReason::BadChecksum,
        DropReason::UnknownFlow,
        DropReason::UnexpectedSource,
        DropReason::NoDestination,
        DropReason::NoRoute,
        DropReason::NeighbourUnresolved,
        DropReason::AuthFailed,
        DropReason::Replayed,
        DropReason::TooOld,
        DropReason::SrtpMalformed,
        DropReason::MkiMismatch,
        DropReason::KeyExpired,
        DropReason::TooBig,
        DropReason::TxFull,
        DropReason::HandoffFull,
    ];
    /// Number of reasons.
    pub const COUNT: usize = Self::ALL.len();

    /// Dense index for counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Counter name.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::NotForUs => "not_for_us",
            DropReason::Unsupported => "unsupported",
            DropReason::Malformed => "malformed",
            DropReason::Truncated => "truncated",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::UnknownFlow => "unknown_flow",
            DropReason::UnexpectedSource => "unexpected_source",
            DropReason::NoDestination => "no_destination",
            DropReason::NoRoute => "no_route",
            DropReason::NeighbourUnresolved => "neighbour_unresolved",
            DropReason::AuthFailed => "auth_failed",
            DropReason::Replayed => "replayed",
            DropReason::TooOld => "too_old",
            DropReason::SrtpMalformed => "srtp_malformed",
            DropReason::MkiMismatch => "mki_mismatch",
            DropReason::KeyExpired => "key_expired",
            DropReason::TooBig => "too_big",
            DropReason::TxFull => "tx_full",
            DropReason::HandoffFull => "handoff_full",
        }
    }
}

impl From<WireError> for DropReason {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated => DropReason::Truncated,
            WireError::Malformed => DropReason::Malformed,
            WireError::Unsupported => DropReason::Unsupported,
        }
    }
}

impl From<SrtpError> for DropReason {
    fn from(e: SrtpError) -> Self {
        match e {
            SrtpError::AuthFailed => DropReason::AuthFailed,
            SrtpError::Replayed => DropReason::Replayed,
            SrtpError::TooOld => DropReason::TooOld,
            SrtpError::MkiMismatch => DropReason::MkiMismatch,
            SrtpError::KeyExpired => DropReason::KeyExpired,
            SrtpError::BufferTooSmall => DropReason::TooBig,
            _ => DropReason::SrtpMalformed,
        }
    }
}

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

impl PortAddr {
    fn owns(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => v4 == self.ipv4 && !v4.is_unspecified(),
            IpAddr::V6(v6) => Some(v6) == self.ipv6,
        }
    }

    /// The next hop towards `dst`: itself if on link, else the gateway of its family.
    fn next_hop(&self, dst: IpAddr) -> Option<IpAddr> {
        match dst {
            IpAddr::V4(d) => {
                let mask = if self.prefix_len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix_len.min(32)))
                };
                if u32::from(d) & mask == u32::from(self.ipv4) & mask {
                    Some(dst)
                } else {
                    self.gateway.map(IpAddr::V4)
                }
            }
            IpAddr::V6(d) => {
                let ours = self.ipv6?;
                let bits = u32::from(self.prefix6_len.min(128));
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                if u128::from(d) & mask == u128::from(ours) & mask {
                    Some(dst)
                } else {
                    self.gateway6.map(IpAddr::V6)
                }
            }
        }
    }
}

/// Counters of one direction of one leg.
// `repr(C)`: the counters every packet updates first, the drop counters last.
#[derive(Clone, Debug, Default)]
#[repr(C)]
pub struct LegStats {
    /// Packets received from the leg and accepted.
    pub rx_packets: u64,
    /// Bytes of those (UDP payload as received).
    pub rx_bytes: u64,
    /// RTCP packets among them.
    pub rx_rtcp: u64,
    /// Packets sent to the leg.
    pub tx_packets: u64,
    /// Bytes sent to the leg (UDP payload).
    pub tx_bytes: u64,
    /// RTP loss and jitter of what the leg sends.
    pub rtp: RtpReceiveStats,
    /// When the last accepted packet arrived (ns, the caller's clock), 0 if never.
    pub last_rx_ns: u64,
    /// Packets from the leg dropped, per [`DropReason`] (last: rarely touched).
    pub drops: [u64; DropReason::COUNT],
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

type Keyed = Option<Box<(SdesKey, Context)>>;

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
    remote: Option<SocketAddr>,
    remote_rtcp: Option<SocketAddr>,
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
    /// Headers for packets sent to this leg: RTP, RTCP port (RFC 3550 port + 1).
    tx: [Option<TxCache>; 2],
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
    locals: [SocketAddr; 2],
    /// Drops of packets from each leg, per reason.
    drops: [[u64; DropReason::COUNT]; 2],
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
            locals: [a.local, b.local],
            drops: [[0; DropReason::COUNT]; 2],
        }
    }

    fn vacant() -> Media {
        Media {
            live: false,
            rtcp: RtcpMode::Mux,
            dirs: Default::default(),
            locals: [SocketAddr::from(([0, 0, 0, 0], 0)); 2],
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
            drops: self.drops[s],
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

/// Per-worker counters.
#[derive(Clone, Debug, Default)]
pub struct WorkerStats {
    /// Frames received.
    pub rx: u64,
    /// Frames forwarded.
    pub forwarded: u64,
    /// Replies sent (ARP, ICMP).
    pub replies: u64,
    /// Frames received here and handed to the worker owning their stream (software
    /// dispatch); counted again in that worker's `rx`, not in this one's.
    pub handed_over: u64,
    /// Drops per [`DropReason`].
    pub drops: [u64; DropReason::COUNT],
}

/// A call's counters, for the control plane.
#[derive(Clone, Debug)]
pub struct CallStats {
    /// Call id.
    pub id: String,
    /// Per media pair, per leg (a, b).
    pub media: Vec<[LegStats; 2]>,
}

const MAX_PENDING_ARP: usize = 64;

/// At most this many bytes of each SRTP context's hot memory are prefetched.
const CONTEXT_HOT: usize = 512;
/// The bytes of a direction's sending side before its built headers: context and counters.
const DIRECTION_TO_HOT: usize = std::mem::offset_of!(Sending, tx);

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
    calls: HashMap<String, Vec<u32>>,
    pending_arp: Vec<(u16, IpAddr)>,
    learnt: Vec<(IpAddr, [u8; 6])>,
    /// Per-worker counters.
    pub stats: WorkerStats,
}

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
            stats: WorkerStats::default(),
        }
    }

    /// Installs a sessions document: static neighbours, then calls.
    pub fn install(&mut self, doc: &SessionsFile) -> Result<(), SessionError> {
        for n in &doc.neighbours {
            self.neighbours.insert(n.ip, (parse_mac(&n.mac)?, STATIC));
            self.neighbour_gen += 1;
        }
        for call in &doc.calls {
            self.add_call(call)?;
        }
        Ok(())
    }

    fn port_of(&self, ip: IpAddr) -> Option<&PortAddr> {
        self.ports.iter().find(|p| p.owns(ip))
    }

    fn make_leg(
        &self,
        call: &str,
        spec: &LegSpec,
        (mut old_rx, mut old_tx): (Keyed, Keyed),
    ) -> Result<LegParts, SessionError> {
        if self.port_of(spec.local.ip()).is_none() {
            return Err(SessionError::NotLocal(spec.local.ip()));
        }
        let ctx_config = ContextConfig {
            replay_window: self.config.replay_window,
            ..ContextConfig::default()
        };
        // Keeping a key keeps its context, and so its ROC and replay window (RFC 3711 3.3.1);
        // a new key starts a fresh context.
        let context = |c: &Option<relay_session::CryptoSpec>,
                       old: &mut Keyed|
         -> Result<Keyed, SessionError> {
            match c {
                None => Ok(None),
                Some(c) => {
                    let key = c.parse(call)?;
                    match old.take() {
                        Some(kept) if kept.0 == key => Ok(Some(kept)),
                        _ => {
                            let ctx = Context::new(&key, ctx_config.clone());
                            Ok(Some(Box::new((key, ctx))))
                        }
                    }
                }
            }
        };
        let receive = context(&spec.receive, &mut old_rx)?;
        let send = context(&spec.send, &mut old_tx)?;
        let clock_rate = spec.clock_rate.max(1);
        Ok(LegParts {
            receiving: Receiving {
                strict: spec.strict_source,
                receive,
                clock_per_ns: ((u128::from(clock_rate) << 40) / 1_000_000_000) as u64,
                remote: spec.remote,
                ..Receiving::default()
            },
            sending: Sending {
                send,
                ..Sending::default()
            },
            local: spec.local,
        })
    }

    fn local_addrs(spec: &CallSpec) -> Vec<(SocketAddr, usize, u8, bool)> {
        let mut out = Vec::new();
        for (i, m) in spec.media.iter().enumerate() {
            for (side, leg) in [(0u8, &m.a), (1u8, &m.b)] {
                out.push((leg.local, i, side, false));
                if m.rtcp == RtcpMode::PortPlusOne {
                    out.push((
                        SocketAddr::new(leg.local.ip(), leg.local.port().wrapping_add(1)),
                        i,
                        side,
                        true,
                    ));
                }
            }
        }
        out
    }

    /// Installs a call (both directions of every media pair at once).
    pub fn add_call(&mut self, spec: &CallSpec) -> Result<(), SessionError> {
        if self.calls.contains_key(&spec.id) {
            return Err(SessionError::CallExists(spec.id.clone()));
        }
        self.insert_call(spec, Vec::new())
    }

    fn insert_call(
        &mut self,
        spec: &CallSpec,
        mut old_media: Vec<Option<Media>>,
    ) -> Result<(), SessionError> {
        let addrs = Self::local_addrs(spec);
        for (i, (a, ..)) in addrs.iter().enumerate() {
            if self.flows.contains((*a).into()) || addrs[..i].iter().any(|(b, ..)| b == a) {
                return Err(SessionError::AddressInUse(*a));
            }
        }
        let mut built = Vec::with_capacity(spec.media.len());
        for (i, m) in spec.media.iter().enumerate() {
            let (old_a, old_b) = match old_media.get_mut(i).and_then(Option::as_mut) {
                Some(old) => (old.take_contexts(0), old.take_contexts(1)),
                None => ((None, None), (None, None)),
            };
            built.push(Media::new(
                self.make_leg(&spec.id, &m.a, old_a)?,
                self.make_leg(&spec.id, &m.b, old_b)?,
                m.rtcp,
            ));
        }
        let mut slots = Vec::with_capacity(built.len());
        for m in built {
            let slot = match self.free.pop() {
                Some(s) => {
                    self.media[s as usize] = m;
                    s
                }
                None => {
                    self.media.push(m);
                    (self.media.len() - 1) as u32
                }
            };
            slots.push(slot);
        }
        for (addr, i, side, rtcp_port) in addrs {
            self.flows.insert(
                addr.into(),
                FlowRef {
                    media: slots[i],
                    side,
                    rtcp_port,
                },
            );
        }
        self.calls.insert(spec.id.clone(), slots);
        Ok(())
    }

    fn take_call(&mut self, id: &str) -> Result<Vec<Option<Media>>, SessionError> {
        let slots = self
            .calls
            .remove(id)
            .ok_or_else(|| SessionError::NoSuchCall(id.to_owned()))?;
        let mut media = Vec::with_capacity(slots.len());
        for s in slots {
            let m = std::mem::replace(&mut self.media[s as usize], Media::vacant());
            let m = m.live.then_some(m);
            if let Some(m) = &m {
                for local in m.locals {
                    self.flows.remove(local.into());
                    self.flows
                        .remove(SocketAddr::new(local.ip(), local.port().wrapping_add(1)).into());
                }
            }
            self.free.push(s);
            media.push(m);
        }
        Ok(media)
    }

    /// Removes a call; returns its final counters.
    pub fn remove_call(&mut self, id: &str) -> Result<CallStats, SessionError> {
        let media = self.take_call(id)?;
        Ok(CallStats {
            id: id.to_owned(),
            media: media
                .into_iter()
                .flatten()
                .map(|m| [m.leg_stats(0), m.leg_stats(1)])
                .collect(),
        })
    }

    /// Replaces a call's media (re-INVITE): legs whose key is unchanged keep their SRTP
    /// context (ROC, replay window); changed keys start fresh contexts. On error the old call
    /// stays as it was.
    pub fn modify_call(&mut self, spec: &CallSpec) -> Result<(), SessionError> {
        let own = self
            .calls
            .get(&spec.id)
            .ok_or_else(|| SessionError::NoSuchCall(spec.id.clone()))?;
        // Check everything first, so a refused change leaves the call as it was.
        let addrs = Self::local_addrs(spec);
        for (i, (a, ..)) in addrs.iter().enumerate() {
            let taken_by_other = self
                .flows
                .get((*a).into())
                .is_some_and(|f| !own.contains(&f.media));
            if taken_by_other || addrs[..i].iter().any(|(b, ..)| b == a) {
                return Err(SessionError::AddressInUse(*a));
            }
        }
        for m in &spec.media {
            for leg in [&m.a, &m.b] {
                if self.port_of(leg.local.ip()).is_none() {
                    return Err(SessionError::NotLocal(leg.local.ip()));
                }
                for c in [&leg.receive, &leg.send].into_iter().flatten() {
                    c.parse(&spec.id)?;
                }
            }
        }
        let old = self.take_call(&spec.id)?;
        self.insert_call(spec, old)
    }

    /// The ids of the installed calls.
    pub fn call_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.calls.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// A call's counters.
    pub fn call_stats(&self, id: &str) -> Option<CallStats> {
        let slots = self.calls.get(id)?;
        Some(CallStats {
            id: id.to_owned(),
            media: slots
                .iter()
                .map(|&s| &self.media[s as usize])
                .filter(|m| m.live)
                .map(|m| [m.leg_stats(0), m.leg_stats(1)])
                .collect(),
        })
    }

    /// Number of installed media pairs.
    pub fn media_count(&self) -> usize {
        self.media.len() - self.free.len()
    }

    /// Learns a neighbour from a received ARP or neighbour discovery message, and remembers
    /// it for [`Relay::drain_learnt`]: with several workers, the one that receives ARP and ND
    /// (RSS sends them to queue 0) tells the others.
    fn learn_from_wire(&mut self, ip: IpAddr, mac: [u8; 6], now_ns: u64) {
        self.learn(ip, mac, now_ns);
        if self.learnt.len() < MAX_PENDING_ARP {
            self.learnt.push((ip, mac));
        }
    }

    /// Calls `f` with each neighbour learnt from the wire since the last call.
    pub fn drain_learnt(&mut self, mut f: impl FnMut(IpAddr, [u8; 6])) {
        for (ip, mac) in self.learnt.drain(..) {
            f(ip, mac);
        }
    }

    /// Learns (or refreshes) a neighbour, evicting expired entries when full.
    pub fn learn(&mut self, ip: IpAddr, mac: [u8; 6], now_ns: u64) {
        if let Some(e) = self.neighbours.get_mut(&ip) {
            if e.1 != STATIC {
                if e.0 != mac {
                    self.neighbour_gen += 1;
                }
                *e = (mac, now_ns.saturating_add(self.config.neighbour_ttl_ns));
            }
            return;
        }
        if self.neighbours.len() >= self.config.max_neighbours {
            self.neighbours.retain(|_, (_, exp)| *exp > now_ns);
            if self.neighbours.len() >= self.config.max_neighbours {
                return;
            }
        }
        self.neighbours.insert(
            ip,
            (mac, now_ns.saturating_add(self.config.neighbour_ttl_ns)),
        );
        self.neighbour_gen += 1;
    }

    /// Builds the ARP requests (IPv4) and neighbour solicitations (IPv6) queued for
    /// unresolved next hops, calling `emit(port, frame)`.
    pub fn drain_arp_requests(&mut self, mut emit: impl FnMut(u16, &[u8])) {
        let mut buf = [0u8; 128];
        for (port, target) in std::mem::take(&mut self.pending_arp) {
            let Some(p) = self
                .ports
                .iter()
                .find(|p| p.port == port && (target.is_ipv4() || p.ipv6.is_some()))
            else {
                continue;
            };
            let n = match target {
                IpAddr::V4(t) => {
                    let arp = Arp {
                        op: 1,
                        sha: p.mac,
                        spa: p.ipv4,
                        tha: [0; 6],
                        tpa: t,
                    };
                    wire::write_arp(&mut buf, [0xff; 6], p.vlan, &arp)
                }
                IpAddr::V6(t) => {
                    //= https://www.rfc-editor.org/rfc/rfc4861#section-7.2.2
                    //# the solicitation is sent to the solicited-node multicast address
                    //# corresponding to the target address
                    let (group, group_mac) = wire::solicited_node(&t);
                    let mut ns = [0u8; 32];
                    ns[0] = 135;
                    ns[8..24].copy_from_slice(&t.octets());
                    ns[24] = 1;
                    ns[25] = 1;
                    ns[26..32].copy_from_slice(&p.mac);
                    let l2 = wire::L2Out {
                        src: p.mac,
                        dst: group_mac,
                        vlan: p.vlan,
                    };
                    wire::write_icmp6(&mut buf, &l2, p.ipv6.expect("checked"), group, 255, &ns)
                }
            };
            if let Some(n) = n {
                emit(port, &buf[..n]);
            }
        }
    }

    /// Prefetches, for the frames of a burst (up to 32), the state their processing will
    /// read: flow table slots first, then each packet's direction record, then SRTP keys, then
    /// per-SSRC state, each stage for the whole burst before the next, so the burst's cache
    /// misses overlap (the staged prefetch of DPDK's `l3fwd`) instead of following one
    /// another. Changes nothing; call it before [`Relay::process`] on each frame of the burst.
    pub fn prefetch_burst<'f, H: CacheHint>(
        &self,
        hint: &H,
        frames: impl Iterator<Item = &'f [u8]>,
    ) {
        let mut keys = [None; 32];
        let mut n = 0;
        for (slot, f) in keys.iter_mut().zip(frames) {
            *slot = wire::peek_udp_dst(f).map(FlowKey::from);
            if let Some(k) = *slot {
                hint.one(self.flows.slot_addr(k));
            }
            n += 1;
        }
        // Stage 1 above: the flow slots. Stage 2: each packet's direction record (field
        // addresses are computed, not loaded).
        let mut flows = [None; 32];
        for (f, k) in flows.iter_mut().zip(&keys[..n]) {
            let Some(flow) = k.and_then(|k| self.flows.get(k)) else {
                continue;
            };
            let Some(pair) = self.media.get(flow.media as usize) else {
                continue;
            };
            let dir = &pair.dirs[usize::from(flow.side)];
            hint.one(&pair.live);
            // The arriving leg's receiving side, the leaving leg's context and counters, and
            // the headers this packet will get: one run of lines.
            hint.range(dir, std::mem::offset_of!(Direction, to) + DIRECTION_TO_HOT);
            hint.range(
                &dir.to.tx[usize::from(flow.rtcp_port)],
                size_of::<Option<TxCache>>(),
            );
            *f = Some(flow);
        }
        // Stage 3: the SRTP contexts, whose addresses the (now cached) direction records hold.
        let mut contexts: [[Option<&Context>; 2]; 32] = [[None; 2]; 32];
        for (c, flow) in contexts.iter_mut().zip(&flows[..n]) {
            let Some(flow) = flow else { continue };
            let Some(pair) = self.media.get(flow.media as usize).filter(|m| m.live) else {
                continue;
            };
            let dir = &pair.dirs[usize::from(flow.side)];
            for (slot, keyed) in c.iter_mut().zip([&dir.from.receive, &dir.to.send]) {
                if let Some(keyed) = keyed {
                    let (at, bytes) = keyed.1.hot_fields();
                    hint.range(at, bytes);
                    *slot = Some(&keyed.1);
                }
            }
        }
        // Stage 4: what the (now cached) contexts point to: per-SSRC state, GCM schedules.
        for ctx in contexts[..n].iter().flatten().flatten() {
            for (at, bytes) in ctx.hot_memory() {
                hint.range(at, bytes.min(CONTEXT_HOT));
            }
        }
    }

    fn drop(&mut self, reason: DropReason) -> Verdict {
        self.stats.drops[reason.index()] += 1;
        Verdict::Drop(reason)
    }

    /// Handles one received frame in place. `frame[..len]` holds it; the rest of `frame` is
    /// room to grow (an SRTP tag, a longer IP header). `now_ns` is the caller's monotonic clock.
    pub fn process(&mut self, rx_port: u16, frame: &mut [u8], len: usize, now_ns: u64) -> Verdict {
        self.process_checked(rx_port, frame, len, now_ns, RxChecksum::Unknown)
    }

    /// [`Relay::process`] for a frame whose UDP checksum the receiving NIC has judged: the
    /// relay then does not check it again where it would (plain RTP about to be encrypted).
    pub fn process_checked(
        &mut self,
        rx_port: u16,
        frame: &mut [u8],
        len: usize,
        now_ns: u64,
        rx_checksum: RxChecksum,
    ) -> Verdict {
        self.stats.rx += 1;
        let Some(data) = frame.get(..len) else {
            return self.drop(DropReason::Truncated);
        };
        let l2 = match wire::parse_l2(data) {
            Ok(l2) => l2,
            Err(e) => return self.drop(e.into()),
        };
        match l2.ethertype {
            ETHERTYPE_ARP => self.arp(rx_port, frame, len, &l2, now_ns),
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => {
                self.ip(rx_port, frame, len, &l2, now_ns, rx_checksum)
            }
            _ => self.drop(DropReason::Unsupported),
        }
    }

    fn arp(
        &mut self,
        rx_port: u16,
        frame: &mut [u8],
        len: usize,
        l2: &wire::L2,
        now_ns: u64,
    ) -> Verdict {
        let arp = match wire::parse_arp(&frame[..len], l2) {
            Ok(a) => a,
            Err(e) => return self.drop(e.into()),
        };
        let Some(port) = self
            .ports
            .iter()
            .find(|p| p.port == rx_port && p.ipv4 == arp.tpa)
            .cloned()
        else {
            return self.drop(DropReason::NotForUs);
        };
        //= https://www.rfc-editor.org/rfc/rfc826
        //# If the pair <protocol type, sender protocol address> is already in my translation
        //# table, update the sender hardware address field of the entry with the new
        //# information in the packet
        self.learn_from_wire(IpAddr::V4(arp.spa), arp.sha, now_ns);
        if arp.op != 1 {
            return Verdict::Consumed;
        }
        let reply = Arp {
            op: 2,
            sha: port.mac,
            spa: port.ipv4,
            tha: arp.sha,
            tpa: arp.spa,
        };
        self.reply(wire::write_arp(frame, arp.sha, l2.vlan, &reply))
    }

    /// A reply of `len` bytes written in place, or a drop if it did not fit.
    fn reply(&mut self, len: Option<usize>) -> Verdict {
        match len {
            Some(len) => {
                self.stats.replies += 1;
                Verdict::Reply { len }
            }
            None => self.drop(DropReason::TooBig),
        }
    }

    fn is_ours(&self, rx_port: u16, ip: IpAddr) -> bool {
        self.ports.iter().any(|p| p.port == rx_port && p.owns(ip))
    }

    /// ICMP echo (v4 and v6) and IPv6 neighbour discovery for our addresses.
    fn icmp(
        &mut self,
        rx_port: u16,
        frame: &mut [u8],
        len: usize,
        l2: &wire::L2,
        now_ns: u64,
    ) -> Verdict {
        if l2.ethertype == ETHERTYPE_IPV4 {
            let ours = frame
                .get(l2.l3 + 16..l2.l3 + 20)
                .map(|d| IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3])));
            if !ours.is_some_and(|ip| self.is_ours(rx_port, ip)) {
                return self.drop(DropReason::Unsupported);
            }
            return match wire::icmp_echo_reply_in_place(&mut frame[..len], l2) {
                Ok(n) => {
                    self.stats.replies += 1;
                    Verdict::Reply { len: n }
                }
                Err(e) => self.drop(e.into()),
            };
        }
        let icmp = match wire::parse_icmp6(&frame[..len], l2) {
            Ok(i) => i,
            Err(e) => return self.drop(e.into()),
        };
        let Some(port) = self
            .ports
            .iter()
            .find(|p| p.port == rx_port && p.ipv6.is_some())
            .cloned()
        else {
            return self.drop(DropReason::NotForUs);
        };
        let ours = port.ipv6.expect("checked");
        let body = frame[icmp.at..icmp.at + icmp.len].to_owned_small();
        let out_l2 = wire::L2Out {
            src: port.mac,
            dst: l2.src,
            vlan: l2.vlan,
        };
        match icmp.kind {
            // Echo request to our address: echo reply with the same identifier, sequence, data.
            128 if icmp.dst == ours => {
                let mut reply = body;
                reply.bytes[0] = 129;
                self.reply(wire::write_icmp6(
                    frame,
                    &out_l2,
                    ours,
                    icmp.src,
                    64,
                    reply.as_slice(),
                ))
            }
            //= https://www.rfc-editor.org/rfc/rfc4861#section-7.2.4
            //# If the Source Address is not the unspecified address and, on link layers
            //# that have addresses, the solicitation includes a Source Link-Layer Address
            //# option, then the recipient SHOULD create or update the Neighbor Cache entry
            135 if icmp.hop_limit == 255
                && body.len >= 24
                && body.bytes[8..24] == ours.octets() =>
            {
                let unspecified = icmp.src.is_unspecified();
                if let Some(mac) = wire::nd_link_layer_option(body.as_slice(), 1) {
                    if !unspecified {
                        self.learn_from_wire(IpAddr::V6(icmp.src), mac, now_ns);
                    }
                }
                // Neighbour advertisement: solicited (unless answering DAD), override, with our
                // link-layer address as the target option.
                let mut na = [0u8; 32];
                na[0] = 136;
                na[4] = if unspecified { 0x20 } else { 0x60 };
                na[8..24].copy_from_slice(&ours.octets());
                na[24] = 2;
                na[25] = 1;
                na[26..32].copy_from_slice(&port.mac);
                let dst = if unspecified {
                    "ff02::1".parse().expect("constant")
                } else {
                    icmp.src
                };
                let dst_mac = if unspecified {
                    [0x33, 0x33, 0, 0, 0, 1]
                } else {
                    l2.src
                };
                let out_l2 = wire::L2Out {
                    dst: dst_mac,
                    ..out_l2
                };
                self.reply(wire::write_icmp6(frame, &out_l2, ours, dst, 255, &na))
            }
            136 if icmp.hop_limit == 255 && body.len >= 24 => {
                let target =
                    Ipv6Addr::from(<[u8; 16]>::try_from(&body.bytes[8..24]).expect("16 bytes"));
                match wire::nd_link_layer_option(body.as_slice(), 2) {
                    Some(mac) => {
                        self.learn_from_wire(IpAddr::V6(target), mac, now_ns);
                        Verdict::Consumed
                    }
                    None => self.drop(DropReason::Malformed),
                }
            }
            _ => self.drop(DropReason::NotForUs),
        }
    }

    fn ip(
        &mut self,
        rx_port: u16,
        frame: &mut [u8],
        len: usize,
        l2: &wire::L2,
        now_ns: u64,
        rx_checksum: RxChecksum,
    ) -> Verdict {
        let u = match wire::parse_udp_after(&frame[..len], l2) {
            Ok(u) => u,
            // Not UDP: ICMP echo and neighbour discovery for our addresses.
            Err(WireError::Unsupported) => return self.icmp(rx_port, frame, len, l2, now_ns),
            Err(e) => return self.drop(e.into()),
        };
        let Some(flow) = self.flows.get(u.dst.into()) else {
            let ours = self.ports.iter().any(|p| p.owns(u.dst.ip()));
            return self.drop(if ours {
                DropReason::UnknownFlow
            } else {
                DropReason::NotForUs
            });
        };
        match self.relay_udp(frame, &u, flow, now_ns, rx_checksum) {
            Ok(v) => {
                self.stats.forwarded += 1;
                v
            }
            Err(reason) => {
                if let Some(m) = self.media.get_mut(flow.media as usize) {
                    m.drops[usize::from(flow.side)][reason.index()] += 1;
                }
                self.drop(reason)
            }
        }
    }

    fn relay_udp(
        &mut self,
        frame: &mut [u8],
        u: &wire::Udp,
        flow: FlowRef,
        now_ns: u64,
        rx_checksum: RxChecksum,
    ) -> Result<Verdict, DropReason> {
        let Relay {
            media,
            ports,
            neighbours,
            neighbour_gen,
            pending_arp,
            ..
        } = self;
        let media = media
            .get_mut(flow.media as usize)
            .filter(|m| m.live)
            .ok_or(DropReason::UnknownFlow)?;
        let rtcp_mode = media.rtcp;
        // `here`: this packet's direction (arriving leg's receiving side, leaving leg's sending
        // side); `back`: the other one (the leaving leg's peer addresses, the arriving leg's
        // headers, which latching invalidates).
        let Media { dirs, locals, .. } = media;
        let (first, second) = dirs.split_at_mut(1);
        let (here, back) = if flow.side == 0 {
            (&mut first[0], &mut second[0])
        } else {
            (&mut second[0], &mut first[0])
        };
        let (inb, out) = (&mut here.from, &mut here.to);

        // Strict source after latching.
        let expected = if flow.rtcp_port {
            inb.remote_rtcp
        } else {
            inb.remote
        };
        if inb.strict && inb.latched && expected.is_some_and(|r| r != u.src) {
            return Err(DropReason::UnexpectedSource);
        }
        // The UDP checksum. SRTP in: the authentication tag already proves the payload
        // intact (RFC 3711 section 3.4), the checksum adds nothing. Plain RTP out unchanged:
        // the payload's sum is recovered from the checksum and carried to the new one (an
        // error stays detectable end to end). Plain RTP to be encrypted: verified here, or
        // the corruption would leave authenticated; unless the NIC has checked it. (A
        // checksum field the NIC calls meaningless over a verified payload is not carried.)
        let carried_sum = match (&inb.receive, &out.send, rx_checksum) {
            (Some(_), _, _) => None,
            (None, None, RxChecksum::PayloadVerified) => None,
            (None, None, _) => match wire::udp_payload_sum(frame, u) {
                Some(sum) => Some(sum),
                None if u.src.is_ipv4() => None,
                None => return Err(DropReason::BadChecksum),
            },
            (None, Some(_), RxChecksum::Good | RxChecksum::PayloadVerified) => None,
            (None, Some(_), RxChecksum::Bad) => return Err(DropReason::BadChecksum),
            (None, Some(_), RxChecksum::Unknown) => {
                if !wire::udp_checksum_ok(frame, u) {
                    return Err(DropReason::BadChecksum);
                }
                None
            }
        };
        let payload = &mut frame[u.payload..];
        let plen = u.payload_len;
        if plen < 2 {
            return Err(DropReason::SrtpMalformed);
        }
        //= https://www.rfc-editor.org/rfc/rfc5761#section-4
        //# RTCP packet types in the ranges 194-223 and 192-193 ... payload types 64-95
        let is_rtcp =
            flow.rtcp_port || (rtcp_mode == RtcpMode::Mux && (192..=223).contains(&payload[1]));
        // Inbound: authenticate and decrypt (or take plain RTP as it is).
        let plain = match (inb.receive.as_deref_mut(), is_rtcp) {
            (Some((_, ctx)), false) => ctx.unprotect_rtp(&mut payload[..plen])?,
            (Some((_, ctx)), true) => ctx.unprotect_rtcp(&mut payload[..plen])?,
            (None, _) => {
                if payload[0] >> 6 != 2 || plen < if is_rtcp { 8 } else { 12 } {
                    return Err(DropReason::SrtpMalformed);
                }
                plen
            }
        };
        // Authenticated (or plain): latch the peer's address from this packet.
        if !inb.latched || !inb.strict {
            let changed = if flow.rtcp_port {
                inb.set_remote(true, u.src)
            } else {
                !inb.latched && inb.set_remote(false, u.src)
            };
            if changed {
                back.to.tx = [None, None];
            }
            inb.latched = true;
        }
        inb.rx_packets += 1;
        inb.rx_bytes += plen as u64;
        inb.last_rx_ns = now_ns;
        if is_rtcp {
            inb.rx_rtcp += 1;
        } else if plain >= 12 {
            let seq = u16::from_be_bytes([payload[2], payload[3]]);
            let ts = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
            let arrival = ((u128::from(now_ns) * u128::from(inb.clock_per_ns)) >> 40) as u32;
            inb.rtp.update(seq, ts, arrival);
        }
        // Outbound: protect for the other leg.
        let out_len = match (out.send.as_deref_mut(), is_rtcp) {
            (Some((_, ctx)), false) => ctx.protect_rtp(payload, plain)?,
            (Some((_, ctx)), true) => ctx.protect_rtcp(payload, plain)?,
            (None, _) => plain,
        };
        let tx = usize::from(flow.rtcp_port);
        let cache = match out.tx[tx] {
            Some(c) if c.neighbour_gen == *neighbour_gen && c.expires_ns > now_ns => c,
            _ => {
                let peer = (back.from.remote, back.from.remote_rtcp);
                // (Only here: the local addresses are in a line no other packet reads.)
                let c = build_tx(
                    locals[1 - usize::from(flow.side)],
                    peer,
                    flow.rtcp_port,
                    ports,
                    neighbours,
                    now_ns,
                    pending_arp,
                )?;
                let c = TxCache {
                    neighbour_gen: *neighbour_gen,
                    ..c
                };
                out.tx[tx] = Some(c);
                c
            }
        };
        // The UDP checksum, continued: a sum carried from the incoming checksum is used as is
        // (the NIC would checksum whatever arrived, corrupted or not); otherwise the payload
        // was authenticated or just protected here, and the NIC completes the checksum where
        // it can, or it is summed here.
        let (len, offload) = match (carried_sum, cache.offload) {
            (None, true) => {
                let (len, o) = cache
                    .header
                    .write_for_offload(frame, u.payload, out_len)
                    .ok_or(DropReason::TooBig)?;
                (len, Some(o))
            }
            (carried, _) => {
                let sum = carried.unwrap_or_else(|| {
                    wire::checksum_add(0, &frame[u.payload..u.payload + out_len])
                });
                let len = cache
                    .header
                    .write(frame, u.payload, out_len, sum)
                    .ok_or(DropReason::TooBig)?;
                (len, None)
            }
        };
        out.tx_packets += 1;
        out.tx_bytes += out_len as u64;
        Ok(Verdict::Forward {
            port: cache.port,
            len,
            offload,
        })
    }
}

/// Builds the headers for packets sent from `local` to a leg's peer (`remote`, `remote_rtcp`),
/// RTP or RTCP port: route by the port that owns the local address, next hop on link or the
/// gateway, its MAC from the neighbour table (or an ARP request / neighbour solicitation
/// queued, and the packet dropped).
fn build_tx(
    local: SocketAddr,
    (remote, remote_rtcp): (Option<SocketAddr>, Option<SocketAddr>),
    rtcp_port: bool,
    ports: &[PortAddr],
    neighbours: &HashMap<IpAddr, ([u8; 6], u64)>,
    now_ns: u64,
    pending_arp: &mut Vec<(u16, IpAddr)>,
) -> Result<TxCache, DropReason> {
    let plus_one = |a: SocketAddr| SocketAddr::new(a.ip(), a.port().wrapping_add(1));
    let (src, dst) = if rtcp_port {
        (
            plus_one(local),
            remote_rtcp.or_else(|| remote.map(plus_one)),
        )
    } else {
        (local, remote)
    };
    let dst = dst.ok_or(DropReason::NoDestination)?;
    if dst.is_ipv4() != src.is_ipv4() {
        return Err(DropReason::NoRoute);
    }
    let port = ports
        .iter()
        .find(|p| p.owns(src.ip()))
        .ok_or(DropReason::NoRoute)?;
    let next_hop = port.next_hop(dst.ip()).ok_or(DropReason::NoRoute)?;
    let Some((dst_mac, expires_ns)) = neighbours
        .get(&next_hop)
        .filter(|(_, exp)| *exp > now_ns)
        .copied()
    else {
        if pending_arp.len() < MAX_PENDING_ARP && !pending_arp.contains(&(port.port, next_hop)) {
            pending_arp.push((port.port, next_hop));
        }
        return Err(DropReason::NeighbourUnresolved);
    };
    let l2 = wire::L2Out {
        src: port.mac,
        dst: dst_mac,
        vlan: port.vlan,
    };
    Ok(TxCache {
        header: TxHeader::new(&l2, src, dst).ok_or(DropReason::NoRoute)?,
        port: port.port,
        offload: port.udp_checksum_offload,
        neighbour_gen: 0,
        expires_ns,
    })
}

/// A copy of a small ICMPv6 message (echo data up to 1280 bytes), on the stack.
struct SmallCopy {
    bytes: [u8; 1280],
    len: usize,
}

impl SmallCopy {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

trait ToOwnedSmall {
    fn to_owned_small(&self) -> SmallCopy;
}

impl ToOwnedSmall for [u8] {
    fn to_owned_small(&self) -> SmallCopy {
        let len = self.len().min(1280);
        let mut bytes = [0u8; 1280];
        bytes[..len].copy_from_slice(&self[..len]);
        SmallCopy { bytes, len }
    }
}
