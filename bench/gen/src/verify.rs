//! The receive side: every relayed packet opened with the stream's outbound key (the relay's
//! sending key of leg b), its stamp read and checked, its place in the stream's sequence
//! judged, and its latency (now minus the stamp's send time) recorded.
//!
//! A relay that forwards without re-keying, re-keys with the wrong key or alters a packet
//! fails verification (the tag does not check, or for plain RTP the filler differs); a
//! duplicate, a packet reordered beyond the window or one never delivered is counted as
//! such. A trial of the NDR search passes only with nothing lost and nothing failed.

use hdrhistogram::Histogram;
use relay_srtp::{Context, ContextConfig, SrtpError};

use crate::stamp::{Stamp, StampError};
use crate::streams::StreamPlan;

/// Packets behind a stream's highest sequence number that still count as reordered (later
/// ones are late); the same as the SRTP replay window the receiving contexts keep.
pub const WINDOW: u64 = 128;

/// What one received packet was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The next one, or one after a gap.
    Fresh,
    /// Behind one received before it, within [`WINDOW`]: delivered, out of order.
    Reordered,
    /// Received before.
    Duplicate,
    /// Behind by more than [`WINDOW`].
    Late,
    /// Its SRTP tag did not check with the outbound key (not re-keyed, the wrong key, or
    /// altered).
    AuthFailed,
    /// No generator stamp in the payload.
    NotStamped,
    /// The payload after the stamp was changed.
    Altered,
    /// A stamp of another stream, or a stream the plan does not have.
    Misrouted,
    /// Not an RTP packet, or SRTP that does not parse.
    Malformed,
}

/// Counts of each [`Outcome`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// [`Outcome::Fresh`].
    pub fresh: u64,
    /// [`Outcome::Reordered`].
    pub reordered: u64,
    /// [`Outcome::Duplicate`].
    pub duplicates: u64,
    /// [`Outcome::Late`].
    pub late: u64,
    /// [`Outcome::AuthFailed`].
    pub auth_failed: u64,
    /// [`Outcome::NotStamped`].
    pub not_stamped: u64,
    /// [`Outcome::Altered`].
    pub altered: u64,
    /// [`Outcome::Misrouted`].
    pub misrouted: u64,
    /// [`Outcome::Malformed`].
    pub malformed: u64,
}

impl Counts {
    fn add(&mut self, o: Outcome) {
        let c = match o {
            Outcome::Fresh => &mut self.fresh,
            Outcome::Reordered => &mut self.reordered,
            Outcome::Duplicate => &mut self.duplicates,
            Outcome::Late => &mut self.late,
            Outcome::AuthFailed => &mut self.auth_failed,
            Outcome::NotStamped => &mut self.not_stamped,
            Outcome::Altered => &mut self.altered,
            Outcome::Misrouted => &mut self.misrouted,
            Outcome::Malformed => &mut self.malformed,
        };
        *c += 1;
    }

    /// What was counted since `earlier` (a snapshot of the same counts).
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            fresh: self.fresh - earlier.fresh,
            reordered: self.reordered - earlier.reordered,
            duplicates: self.duplicates - earlier.duplicates,
            late: self.late - earlier.late,
            auth_failed: self.auth_failed - earlier.auth_failed,
            not_stamped: self.not_stamped - earlier.not_stamped,
            altered: self.altered - earlier.altered,
            misrouted: self.misrouted - earlier.misrouted,
            malformed: self.malformed - earlier.malformed,
        }
    }

    /// Packets that failed verification.
    pub fn failed(&self) -> u64 {
        self.auth_failed + self.not_stamped + self.altered + self.misrouted + self.malformed
    }
}

/// A run's result as the generator reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Packets offered to the relay.
    pub sent: u64,
    /// Distinct packets delivered and verified (fresh and reordered).
    pub delivered: u64,
    /// Offered and never delivered (as far as this run saw).
    pub lost: u64,
    /// Every outcome.
    pub counts: Counts,
    /// Latency percentiles in nanoseconds: 50, 90, 99, 99.9 and the maximum (zero when
    /// nothing was delivered).
    pub latency_ns: [u64; 5],
}

impl Report {
    /// Lost over sent (0 with nothing sent).
    pub fn loss_ratio(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.lost as f64 / self.sent as f64
        }
    }

    /// Nothing lost, duplicated, late or failed.
    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.counts.duplicates == 0
            && self.counts.late == 0
            && self.counts.failed() == 0
    }
}

/// Where one stream's received sequence numbers stand.
struct RxStream {
    /// Opens what the relay sent (`None`: plain RTP).
    context: Option<Context>,
    /// The highest stamp sequence number verified, and which of the [`WINDOW`] below it
    /// were seen (bit `i`: `highest - i`).
    highest: Option<u64>,
    seen: u128,
}

impl RxStream {
    /// Where stream packet `seq` falls: the window moves on for a fresh one.
    fn place(&mut self, seq: u64) -> Outcome {
        match self.highest {
            None => {
                self.highest = Some(seq);
                self.seen = 1;
                Outcome::Fresh
            }
            Some(h) if seq > h => {
                let ahead = seq - h;
                self.seen = if ahead >= 128 { 0 } else { self.seen << ahead };
                self.seen |= 1;
                self.highest = Some(seq);
                Outcome::Fresh
            }
            Some(h) if h - seq < WINDOW => {
                let bit = 1u128 << (h - seq);
                if self.seen & bit != 0 {
                    return Outcome::Duplicate;
                }
                self.seen |= bit;
                Outcome::Reordered
            }
            Some(_) => Outcome::Late,
        }
    }
}

/// The verifier of a run.
pub struct Receiver {
    streams: Vec<RxStream>,
    counts: Counts,
    latency: Histogram<u64>,
}

impl Receiver {
    /// A receiver for the streams of a plan.
    pub fn new(plans: &[StreamPlan]) -> Receiver {
        let streams = plans
            .iter()
            .map(|p| RxStream {
                context: p.receive_key.as_ref().map(|k| {
                    Context::new(
                        k,
                        ContextConfig {
                            replay_window: WINDOW as u32,
                            ..ContextConfig::default()
                        },
                    )
                }),
                highest: None,
                seen: 0,
            })
            .collect();
        Receiver {
            streams,
            counts: Counts::default(),
            // 1 ns to 100 s, three significant digits.
            latency: Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid bounds"),
        }
    }

    /// Judges one packet the relay sent on stream `stream` (as the I/O layer found it by
    /// its destination port), received at `now_ns` on the generator's clock. Opens it in
    /// place.
    pub fn receive(&mut self, stream: usize, packet: &mut [u8], now_ns: u64) -> Outcome {
        let outcome = self.judge(stream, packet, now_ns);
        self.counts.add(outcome);
        outcome
    }

    fn judge(&mut self, stream: usize, packet: &mut [u8], now_ns: u64) -> Outcome {
        let Some(s) = self.streams.get_mut(stream) else {
            return Outcome::Misrouted;
        };
        let plain_len = match &mut s.context {
            Some(ctx) => match ctx.unprotect_rtp(packet) {
                Ok(n) => n,
                Err(SrtpError::AuthFailed) => return Outcome::AuthFailed,
                Err(SrtpError::Replayed) => return Outcome::Duplicate,
                Err(SrtpError::TooOld) => return Outcome::Late,
                Err(_) => return Outcome::Malformed,
            },
            None => packet.len(),
        };
        let Some(payload) = rtp_payload(&packet[..plain_len]) else {
            return Outcome::Malformed;
        };
        let stamp = match Stamp::read(payload) {
            Ok(s) => s,
            Err(StampError::Altered) => return Outcome::Altered,
            Err(StampError::NotStamped | StampError::TooShort(_)) => return Outcome::NotStamped,
        };
        if stamp.stream as usize != stream {
            return Outcome::Misrouted;
        }
        let outcome = s.place(stamp.seq);
        if matches!(outcome, Outcome::Fresh | Outcome::Reordered) {
            let _ = self
                .latency
                .record(now_ns.saturating_sub(stamp.sent_ns).max(1));
        }
        outcome
    }

    /// Judges a packet by its RTP sequence number alone, without opening it (the RTP header
    /// is not encrypted): fresh, reordered, duplicate or late, and nothing about its tag,
    /// stamp or latency. For runs where opening every packet would make the generator
    /// slower than the relay it measures: open a sample with [`Receiver::receive`] and
    /// place the rest with this.
    pub fn receive_unopened(&mut self, stream: usize, packet: &[u8]) -> Outcome {
        let outcome = match self.streams.get_mut(stream) {
            None => Outcome::Misrouted,
            Some(_) if packet.len() < 12 || packet[0] >> 6 != 2 => Outcome::Malformed,
            Some(s) => {
                let seq = u16::from_be_bytes([packet[2], packet[3]]);
                // The 16-bit number extended to the stream's 64-bit count, nearest to the
                // highest seen (the generator's RTP sequence number is its count's low bits).
                let seq = match s.highest {
                    None => u64::from(seq),
                    Some(h) => {
                        let delta = i64::from(seq.wrapping_sub(h as u16) as i16);
                        h.checked_add_signed(delta).unwrap_or(0)
                    }
                };
                s.place(seq)
            }
        };
        self.counts.add(outcome);
        outcome
    }

    /// Forgets the latencies recorded so far (each trial of a search reports its own).
    pub fn reset_latency(&mut self) {
        self.latency.reset();
    }

    /// The report, given how many packets were sent.
    pub fn report(&self, sent: u64) -> Report {
        let delivered = self.counts.fresh + self.counts.reordered;
        let h = &self.latency;
        let latency_ns = if h.is_empty() {
            [0; 5]
        } else {
            [
                h.value_at_quantile(0.50),
                h.value_at_quantile(0.90),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max(),
            ]
        };
        Report {
            sent,
            delivered,
            lost: sent.saturating_sub(delivered),
            counts: self.counts,
            latency_ns,
        }
    }
}

/// The payload of an RTP packet (RFC 3550 section 5.1: the fixed header, CSRCs, the
/// extension), or `None` if it is not one.
fn rtp_payload(p: &[u8]) -> Option<&[u8]> {
    if p.len() < 12 || p[0] >> 6 != 2 {
        return None;
    }
    let mut at = 12 + 4 * usize::from(p[0] & 0x0f);
    if p[0] & 0x10 != 0 {
        let words = p.get(at + 2..at + 4)?;
        at += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    p.get(at..)
}
