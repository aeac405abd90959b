//! One direction's media of one call, as a caller's phone would send and receive it: G.711
//! µ-law at 20 ms (160 bytes, 50 packets/s) of a 400 Hz tone, in SRTP
//! (AES_CM_128_HMAC_SHA1_80) or plain RTP, from the leg's own UDP socket to the relay's
//! address in the SDP; and what arrives on that socket, decrypted with the key the relay
//! announced to this leg and compared byte for byte with what the far end sent.
//!
//! Every payload is a function of (call, direction, sequence number): its first bytes name
//! them, the rest is the tone, so a packet delivered to the wrong call, the wrong direction
//! or with a changed byte is caught, not only a lost one. Interarrival jitter is RFC 3550
//! section 6.4.1 (A.8), in milliseconds.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use relay_srtp::{Context, ContextConfig, SdesKey};

/// Bytes of G.711 per packet (20 ms at 8 kHz).
pub const PAYLOAD: usize = 160;
/// Packet interval.
pub const PTIME: Duration = Duration::from_millis(20);
/// How long a stream keeps receiving after it stops sending (packets in flight).
pub const GRACE: Duration = Duration::from_millis(300);
const RTP_HEADER: usize = 12;
const PT_PCMU: u8 = 0;

/// Which way a stream goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the cloud side's caller to the operator side.
    CloudToOperator,
    /// From the operator side back to the cloud.
    OperatorToCloud,
}

impl Direction {
    fn code(self) -> u8 {
        match self {
            Direction::CloudToOperator => 0,
            Direction::OperatorToCloud => 1,
        }
    }

    /// The other way.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::CloudToOperator => Direction::OperatorToCloud,
            Direction::OperatorToCloud => Direction::CloudToOperator,
        }
    }
}

/// The SSRC of call `call`'s stream in `dir` (distinct for every stream of a run).
pub fn ssrc(call: u32, dir: Direction) -> u32 {
    0x5e00_0000 | (call << 1) | u32::from(dir.code())
}

/// G.711 µ-law of one 16-bit sample (ITU-T G.711, the usual segment encoder).
fn ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let exponent = (7 - (s.leading_zeros() as i32 - 17)).clamp(0, 7);
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// One period of a 400 Hz tone at 8 kHz (20 samples), µ-law.
fn tone() -> [u8; 20] {
    let mut t = [0u8; 20];
    for (i, b) in t.iter_mut().enumerate() {
        let phase = i as f64 / 20.0 * std::f64::consts::TAU;
        *b = ulaw((phase.sin() * 8000.0) as i16);
    }
    t
}

/// The payload of packet `seq` of call `call` in `dir`.
pub fn payload(call: u32, dir: Direction, seq: u16) -> [u8; PAYLOAD] {
    let tone = tone();
    let mut p = [0u8; PAYLOAD];
    p[..4].copy_from_slice(&call.to_be_bytes());
    p[4] = dir.code();
    p[5..7].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in p.iter_mut().enumerate().skip(7) {
        *b = tone[(usize::from(seq) * PAYLOAD + i) % tone.len()];
    }
    p
}

/// What arrived of one stream at its receiving socket.
#[derive(Clone, Debug, Default)]
pub struct StreamStats {
    /// Packets that arrived on the receiving socket.
    pub received: u64,
    /// Of them, decrypted (or, plain, parsed) and byte-identical to what was sent, once each.
    pub verified: u64,
    /// Failed SRTP authentication (or replay) with the announced key.
    pub auth_failed: u64,
    /// Authenticated but not what was sent for this call and direction (wrong SSRC, payload).
    pub wrong: u64,
    /// A sequence number seen before.
    pub duplicates: u64,
    /// Interarrival jitter at the end, in milliseconds (RFC 3550 A.8).
    pub jitter_ms: f64,
}

/// One leg's end of a call's media: sends `dir` and receives the reverse.
#[derive(Debug)]
pub struct LegMedia {
    /// The leg's own socket (inside its namespace).
    pub socket: std::net::UdpSocket,
    /// The relay's address and port for this leg, from the SDP.
    pub remote: SocketAddr,
    /// The key this leg sends with (its own, from the SDP it sent); `None`: plain RTP.
    pub send_key: Option<SdesKey>,
    /// The key the relay sends to this leg with (from the SDP the relay sent); `None`: RTP.
    pub receive_key: Option<SdesKey>,
    /// The call.
    pub call: u32,
    /// What this leg sends.
    pub dir: Direction,
    /// When it stops sending (it receives for [`GRACE`] more).
    pub end: Instant,
    /// Turns true when the run is stopped (Ctrl-C): the leg stops sending then.
    pub stop: tokio::sync::watch::Receiver<bool>,
}

/// What a leg's media task returns: its sending counter, and the receive side of the
/// reverse direction.
#[derive(Debug, Default)]
pub struct LegResult {
    /// Packets this leg sent.
    pub sent: u64,
    /// What it received (the reverse direction's stream; `sent` there is 0).
    pub received: StreamStats,
}

/// Runs one leg's media until `end` + [`GRACE`].
pub async fn run(mut leg: LegMedia) -> std::io::Result<LegResult> {
    leg.socket.set_nonblocking(true)?;
    let socket = tokio::net::UdpSocket::from_std(leg.socket)?;
    let mut send = leg
        .send_key
        .as_ref()
        .map(|k| Context::new(k, ContextConfig::default()));
    let mut receive = leg
        .receive_key
        .as_ref()
        .map(|k| Context::new(k, ContextConfig::default()));
    let my_ssrc = ssrc(leg.call, leg.dir);
    let their_dir = leg.dir.reverse();
    let their_ssrc = ssrc(leg.call, their_dir);
    let start = Instant::now();
    let mut ticks = tokio::time::interval(PTIME);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut result = LegResult::default();
    let mut seen = HashSet::new();
    let mut transit_prev: Option<f64> = None;
    let mut jitter = 0.0f64;
    let mut seq: u16 = (my_ssrc as u16).wrapping_mul(7);
    let mut ts: u32 = my_ssrc.rotate_left(7);
    let mut out = [0u8; 1500];
    let mut buf = [0u8; 1500];
    let mut done = leg.end + GRACE;
    loop {
        let now = Instant::now();
        if now >= done {
            break;
        }
        tokio::select! {
            changed = leg.stop.changed(), if now < leg.end => {
                if changed.is_err() || *leg.stop.borrow() {
                    leg.end = now;
                    done = now + GRACE;
                }
            }
            _ = ticks.tick(), if now < leg.end => {
                out[0] = 0x80;
                out[1] = PT_PCMU | if result.sent == 0 { 0x80 } else { 0 };
                out[2..4].copy_from_slice(&seq.to_be_bytes());
                out[4..8].copy_from_slice(&ts.to_be_bytes());
                out[8..12].copy_from_slice(&my_ssrc.to_be_bytes());
                out[RTP_HEADER..RTP_HEADER + PAYLOAD].copy_from_slice(&payload(leg.call, leg.dir, seq));
                let len = match &mut send {
                    Some(ctx) => ctx
                        .protect_rtp(&mut out, RTP_HEADER + PAYLOAD)
                        .map_err(|e| std::io::Error::other(format!("SRTP protect: {e}")))?,
                    None => RTP_HEADER + PAYLOAD,
                };
                socket.send_to(&out[..len], leg.remote).await?;
                result.sent += 1;
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(PAYLOAD as u32);
            }
            got = socket.recv_from(&mut buf) => {
                let (n, _) = got?;
                let arrival = start.elapsed();
                result.received.received += 1;
                let len = match &mut receive {
                    Some(ctx) => match ctx.unprotect_rtp(&mut buf[..n]) {
                        Ok(len) => len,
                        Err(_) => {
                            result.received.auth_failed += 1;
                            continue;
                        }
                    },
                    None => n,
                };
                if len != RTP_HEADER + PAYLOAD || buf[0] >> 6 != 2 {
                    result.received.wrong += 1;
                    continue;
                }
                let rseq = u16::from_be_bytes([buf[2], buf[3]]);
                let rts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
                let rssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
                if rssrc != their_ssrc
                    || buf[RTP_HEADER..len] != payload(leg.call, their_dir, rseq)[..]
                {
                    result.received.wrong += 1;
                    continue;
                }
                if !seen.insert(rseq) {
                    result.received.duplicates += 1;
                    continue;
                }
                result.received.verified += 1;
                // RFC 3550 A.8, in timestamp units (8 kHz).
                let transit = arrival.as_secs_f64() * 8000.0 - f64::from(rts);
                if let Some(prev) = transit_prev {
                    let d = (transit - prev).abs();
                    jitter += (d - jitter) / 16.0;
                }
                transit_prev = Some(transit);
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(done)) => break,
        }
    }
    result.received.jitter_ms = jitter / 8.0;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_matches_g711_reference_points() {
        assert_eq!(ulaw(0), 0xff);
        assert_eq!(ulaw(-1), 0x7f);
        assert_eq!(ulaw(32_767), 0x80);
        assert_eq!(ulaw(-32_768), 0x00);
        assert_eq!(ulaw(1000), 0xce);
    }

    #[test]
    fn payloads_differ_by_call_direction_and_sequence() {
        let a = payload(1, Direction::CloudToOperator, 5);
        assert_ne!(a, payload(2, Direction::CloudToOperator, 5));
        assert_ne!(a, payload(1, Direction::OperatorToCloud, 5));
        assert_ne!(a, payload(1, Direction::CloudToOperator, 6));
        assert_eq!(a, payload(1, Direction::CloudToOperator, 5));
    }
}
