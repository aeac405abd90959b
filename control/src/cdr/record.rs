//! The call-detail record: what the control plane fills in at the end of every call.
//!
//! Schema version 1, serialised as JSON inside the encrypted record. It holds call metadata
//! only: never media, never SRTP keys (the suite name is recorded, not its key).

use serde::{Deserialize, Serialize};

/// The record schema version written by this build.
pub const SCHEMA_VERSION: u32 = 1;

/// One call, both legs, as the B2BUA saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Schema version ([`SCHEMA_VERSION`]).
    pub version: u32,
    /// A unique identifier of this record (hex), independent of the SIP Call-IDs.
    pub record_id: String,
    /// Leg 0 is the side that sent the INVITE to us, leg 1 the side we sent it to.
    pub legs: Vec<LegRecord>,
    /// When the INVITE arrived, milliseconds since the Unix epoch (UTC).
    pub setup_ms: i64,
    /// When the call was answered (200 OK), if it was.
    pub answer_ms: Option<i64>,
    /// When the call ended (BYE, CANCEL, error response or media timeout).
    pub end_ms: i64,
    /// Who ended the call.
    pub ended_by: EndedBy,
    /// Why: the SIP status code (for failures and BYE the final code seen), or a timeout.
    pub end_reason: EndReason,
    /// Per-stream media statistics from the data plane.
    pub media: Vec<MediaRecord>,
}

impl CallRecord {
    /// Billable duration in milliseconds: answer to end, zero if never answered.
    pub fn duration_ms(&self) -> i64 {
        self.answer_ms.map_or(0, |a| (self.end_ms - a).max(0))
    }

    /// Whether the call was answered.
    pub fn answered(&self) -> bool {
        self.answer_ms.is_some()
    }
}

/// One signalling leg.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegRecord {
    /// The SIP Call-ID of this leg.
    pub call_id: String,
    /// From URI.
    pub from_uri: String,
    /// To URI.
    pub to_uri: String,
    /// Calling number (E.164 or as received), if one could be extracted.
    pub from_number: Option<String>,
    /// Called number.
    pub to_number: Option<String>,
    /// The trunk (configured peer) this leg used, e.g. `teams` or `operator`.
    pub trunk: String,
    /// The peer's signalling address (`ip:port`).
    pub peer: String,
}

/// Who ended a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    /// The party on leg 0.
    Caller,
    /// The party on leg 1.
    Callee,
    /// The relay itself (timeout, error, shutdown).
    Relay,
}

/// Why a call ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EndReason {
    /// Normal hang-up after answer (BYE).
    Normal,
    /// A final SIP response ended the attempt (e.g. 486 Busy Here).
    SipStatus {
        /// The status code.
        code: u16,
    },
    /// Cancelled before answer.
    Cancelled,
    /// No media for longer than the configured timeout.
    MediaTimeout,
    /// No final response in time.
    SignallingTimeout,
}

impl EndReason {
    /// A short, stable label for statistics (`normal`, `sip_486`, `media_timeout`, ...).
    pub fn label(&self) -> String {
        match self {
            EndReason::Normal => "normal".into(),
            EndReason::SipStatus { code } => format!("sip_{code}"),
            EndReason::Cancelled => "cancelled".into(),
            EndReason::MediaTimeout => "media_timeout".into(),
            EndReason::SignallingTimeout => "signalling_timeout".into(),
        }
    }
}

/// Statistics of one media stream as received from one leg.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MediaRecord {
    /// Which leg sent this stream to the relay (0 or 1).
    pub leg: u8,
    /// Codec name from SDP (e.g. `PCMA/8000`).
    pub codec: Option<String>,
    /// SRTP suite on this leg (e.g. `AES_CM_128_HMAC_SHA1_80`), or none for plain RTP.
    pub srtp_suite: Option<String>,
    /// Packets received from the leg.
    pub packets: u64,
    /// Bytes received from the leg.
    pub bytes: u64,
    /// Packets lost (RFC 3550 A.3 cumulative loss).
    pub lost: u64,
    /// Interarrival jitter in milliseconds (RFC 3550 A.8).
    pub jitter_ms: f64,
    /// Packets dropped because their SRTP tag did not verify.
    pub auth_failures: u64,
    /// Packets dropped as replays.
    pub replay_drops: u64,
}

impl MediaRecord {
    /// Fraction of expected packets lost, 0.0 to 1.0.
    pub fn loss_fraction(&self) -> f64 {
        let expected = self.packets + self.lost;
        if expected == 0 {
            0.0
        } else {
            self.lost as f64 / expected as f64
        }
    }
}
