//! The call-detail record: what the control plane fills in at the end of every call.
//!
//! Schema version 1. It holds call metadata only: never media, never SRTP keys (the suite name
//! is recorded, not its key). Inside an encrypted record it is stored in a compact binary
//! encoding ([`encode`]/[`decode`], segments of format 2); segments of format 1 hold JSON, which
//! is still read.

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

/// First byte of a binary-encoded record: the encoding's version.
const CODEC_V2: u8 = 2;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

/// Appends the binary encoding of `r` to `out`: a version byte, then every field in schema
/// order; lengths and counters as LEB128 varints, times as i64 LE, jitter as f64 LE bits.
pub(crate) fn encode(r: &CallRecord, out: &mut Vec<u8>) {
    out.push(CODEC_V2);
    put_varint(out, u64::from(r.version));
    put_str(out, &r.record_id);
    put_varint(out, r.legs.len() as u64);
    for l in &r.legs {
        put_str(out, &l.call_id);
        put_str(out, &l.from_uri);
        put_str(out, &l.to_uri);
        put_opt_str(out, l.from_number.as_deref());
        put_opt_str(out, l.to_number.as_deref());
        put_str(out, &l.trunk);
        put_str(out, &l.peer);
    }
    out.extend_from_slice(&r.setup_ms.to_le_bytes());
    match r.answer_ms {
        None => out.push(0),
        Some(a) => {
            out.push(1);
            out.extend_from_slice(&a.to_le_bytes());
        }
    }
    out.extend_from_slice(&r.end_ms.to_le_bytes());
    out.push(match r.ended_by {
        EndedBy::Caller => 0,
        EndedBy::Callee => 1,
        EndedBy::Relay => 2,
    });
    match r.end_reason {
        EndReason::Normal => out.push(0),
        EndReason::SipStatus { code } => {
            out.push(1);
            put_varint(out, u64::from(code));
        }
        EndReason::Cancelled => out.push(2),
        EndReason::MediaTimeout => out.push(3),
        EndReason::SignallingTimeout => out.push(4),
    }
    put_varint(out, r.media.len() as u64);
    for m in &r.media {
        out.push(m.leg);
        put_opt_str(out, m.codec.as_deref());
        put_opt_str(out, m.srtp_suite.as_deref());
        put_varint(out, m.packets);
        put_varint(out, m.bytes);
        put_varint(out, m.lost);
        out.extend_from_slice(&m.jitter_ms.to_bits().to_le_bytes());
        put_varint(out, m.auth_failures);
        put_varint(out, m.replay_drops);
    }
}

/// A bounds-checked cursor: every read returns `None` past the end.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.data.len() {
            return None;
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.varint()?).ok()
    }

    fn str(&mut self) -> Option<&'a str> {
        let n = self.len()?;
        std::str::from_utf8(self.bytes(n)?).ok()
    }

    fn opt_str(&mut self) -> Option<Option<&'a str>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.str()?)),
            _ => None,
        }
    }

    fn count(&mut self) -> Option<usize> {
        // Every element takes at least one byte: refuse counts the input cannot hold, so a
        // corrupt length never makes a huge allocation.
        let n = self.len()?;
        (n <= self.data.len()).then_some(n)
    }
}

fn set_str(dst: &mut String, src: &str) {
    dst.clear();
    dst.push_str(src);
}

fn set_opt(dst: &mut Option<String>, src: Option<&str>) {
    match (dst.as_mut(), src) {
        (Some(d), Some(s)) => set_str(d, s),
        (_, s) => *dst = s.map(str::to_owned),
    }
}

fn empty_leg() -> LegRecord {
    LegRecord {
        call_id: String::new(),
        from_uri: String::new(),
        to_uri: String::new(),
        from_number: None,
        to_number: None,
        trunk: String::new(),
        peer: String::new(),
    }
}

fn empty_media() -> MediaRecord {
    MediaRecord {
        leg: 0,
        codec: None,
        srtp_suite: None,
        packets: 0,
        bytes: 0,
        lost: 0,
        jitter_ms: 0.0,
        auth_failures: 0,
        replay_drops: 0,
    }
}

/// A record with every field empty, to decode into.
pub(crate) fn empty() -> CallRecord {
    CallRecord {
        version: 0,
        record_id: String::new(),
        legs: Vec::new(),
        setup_ms: 0,
        answer_ms: None,
        end_ms: 0,
        ended_by: EndedBy::Caller,
        end_reason: EndReason::Normal,
        media: Vec::new(),
    }
}

/// Decodes a record written by [`encode`]; `None` if `data` is not exactly one valid record.
#[cfg(test)]
pub(crate) fn decode(data: &[u8]) -> Option<CallRecord> {
    let mut r = empty();
    decode_into(data, &mut r).then_some(r)
}

/// Decodes a record written by [`encode`] into `r`, reusing the allocations of its strings
/// and lists (a reader of a million records then allocates almost nothing). False if `data`
/// is not exactly one valid record; `r` is then partly overwritten.
pub(crate) fn decode_into(data: &[u8], r: &mut CallRecord) -> bool {
    decode_fields(&mut Reader { data }, r).is_some()
}

fn decode_fields(rd: &mut Reader<'_>, r: &mut CallRecord) -> Option<()> {
    if rd.u8()? != CODEC_V2 {
        return None;
    }
    r.version = u32::try_from(rd.varint()?).ok()?;
    set_str(&mut r.record_id, rd.str()?);
    let n_legs = rd.count()?;
    r.legs.truncate(n_legs);
    r.legs.resize_with(n_legs, empty_leg);
    for l in &mut r.legs {
        set_str(&mut l.call_id, rd.str()?);
        set_str(&mut l.from_uri, rd.str()?);
        set_str(&mut l.to_uri, rd.str()?);
        set_opt(&mut l.from_number, rd.opt_str()?);
        set_opt(&mut l.to_number, rd.opt_str()?);
        set_str(&mut l.trunk, rd.str()?);
        set_str(&mut l.peer, rd.str()?);
    }
    r.setup_ms = rd.i64()?;
    r.answer_ms = match rd.u8()? {
        0 => None,
        1 => Some(rd.i64()?),
        _ => return None,
    };
    r.end_ms = rd.i64()?;
    r.ended_by = match rd.u8()? {
        0 => EndedBy::Caller,
        1 => EndedBy::Callee,
        2 => EndedBy::Relay,
        _ => return None,
    };
    r.end_reason = match rd.u8()? {
        0 => EndReason::Normal,
        1 => EndReason::SipStatus {
            code: u16::try_from(rd.varint()?).ok()?,
        },
        2 => EndReason::Cancelled,
        3 => EndReason::MediaTimeout,
        4 => EndReason::SignallingTimeout,
        _ => return None,
    };
    let n_media = rd.count()?;
    r.media.truncate(n_media);
    r.media.resize_with(n_media, empty_media);
    for m in &mut r.media {
        m.leg = rd.u8()?;
        set_opt(&mut m.codec, rd.opt_str()?);
        set_opt(&mut m.srtp_suite, rd.opt_str()?);
        m.packets = rd.varint()?;
        m.bytes = rd.varint()?;
        m.lost = rd.varint()?;
        m.jitter_ms = f64::from_bits(u64::from_le_bytes(rd.bytes(8)?.try_into().ok()?));
        m.auth_failures = rd.varint()?;
        m.replay_drops = rd.varint()?;
    }
    rd.data.is_empty().then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: u64) -> CallRecord {
        CallRecord {
            version: SCHEMA_VERSION,
            record_id: format!("r{n}"),
            legs: vec![
                LegRecord {
                    call_id: format!("{n}@example.invalid"),
                    from_uri: "sip:+4930123@example.invalid".into(),
                    to_uri: "sip:\u{e9}l\u{e8}ve@example.invalid".into(),
                    from_number: Some("+4930123".into()),
                    to_number: None,
                    trunk: "teams".into(),
                    peer: "[2001:db8::1]:5061".into(),
                },
                LegRecord {
                    call_id: String::new(),
                    from_uri: String::new(),
                    to_uri: "x".repeat(300),
                    from_number: None,
                    to_number: Some(String::new()),
                    trunk: "operator".into(),
                    peer: "198.19.5.1:5060".into(),
                },
            ],
            setup_ms: -5,
            answer_ms: n.is_multiple_of(2).then_some(i64::MAX),
            end_ms: i64::MIN,
            ended_by: [EndedBy::Caller, EndedBy::Callee, EndedBy::Relay][n as usize % 3],
            end_reason: [
                EndReason::Normal,
                EndReason::SipStatus { code: 486 },
                EndReason::Cancelled,
                EndReason::MediaTimeout,
                EndReason::SignallingTimeout,
            ][n as usize % 5]
                .clone(),
            media: vec![MediaRecord {
                leg: 1,
                codec: Some("PCMA/8000".into()),
                srtp_suite: None,
                packets: u64::MAX,
                bytes: 0,
                lost: 127,
                jitter_ms: 12.625,
                auth_failures: 128,
                replay_drops: 1 << 40,
            }],
        }
    }

    #[test]
    fn binary_round_trip() {
        for n in 0..10 {
            let r = sample(n);
            let mut buf = Vec::new();
            encode(&r, &mut buf);
            assert_eq!(decode(&buf).as_ref(), Some(&r), "{n}");
            // Smaller than the JSON it replaces.
            assert!(buf.len() < serde_json::to_vec(&r).unwrap().len());
        }
    }

    #[test]
    fn decoding_into_a_used_record_gives_the_same_record() {
        let mut into = empty();
        for n in [3, 0, 7, 1, 2] {
            let mut r = sample(n);
            if n == 0 {
                r.legs.truncate(1);
                r.media.clear();
            }
            let mut buf = Vec::new();
            encode(&r, &mut buf);
            assert!(decode_into(&buf, &mut into));
            assert_eq!(into, r, "{n}");
        }
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let mut buf = Vec::new();
        encode(&sample(1), &mut buf);
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut]).is_none(), "{cut}");
        }
        let mut longer = buf.clone();
        longer.push(0);
        assert!(decode(&longer).is_none());
        // Arbitrary bytes never panic.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut junk = buf.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = (x % junk.len() as u64) as usize;
                junk[at] = (x >> 32) as u8;
            }
            let _ = decode(&junk);
        }
    }
}
