//! Counters: why frames were dropped (one counter per reason), per worker, per leg and per
//! call.

use relay_srtp::SrtpError;

use super::{Relay, Verdict};
use crate::rtpstats::RtpReceiveStats;
use crate::wire::WireError;

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
    /// Where the SRTP streams the leg sends stand.
    pub srtp_receive: Vec<relay_srtp::StreamPosition>,
    /// Where the SRTP streams sent to the leg stand.
    pub srtp_send: Vec<relay_srtp::StreamPosition>,
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
    /// Frames relayed towards a next hop whose MAC was not known yet ([`Verdict::Hold`]): each
    /// is counted again when the I/O shell sends it (`forwarded`) or gives up on it (`drops`).
    pub held: u64,
    /// Frames received here and handed to the worker owning their stream (software
    /// dispatch); counted again in that worker's `rx`, not in this one's.
    pub handed_over: u64,
    /// Drops per [`DropReason`].
    pub drops: [u64; DropReason::COUNT],
    /// Of the frames forwarded, those whose SRTP/SRTCP was authenticated and decrypted or
    /// that were encrypted here: the re-keying work.
    pub srtp: u64,
    /// Nanoseconds the worker's loop ran, and of them the loop rounds that found packets
    /// (kept by the I/O shell, which has the clock): their ratio is how busy the core is.
    pub run_ns: u64,
    /// See [`WorkerStats::run_ns`].
    pub busy_ns: u64,
}

/// A call's counters, for the control plane.
#[derive(Clone, Debug)]
pub struct CallStats {
    /// Call id.
    pub id: String,
    /// Per media pair, per leg (a, b).
    pub media: Vec<[LegStats; 2]>,
}

impl Relay {
    pub(super) fn drop(&mut self, reason: DropReason) -> Verdict {
        self.stats.drops[reason.index()] += 1;
        Verdict::Drop(reason)
    }
}
