//! Call records from the B2BUA's call ends and the data plane's final counters.

use relay_b2bua::CallEnd;
use relay_session::stats::{CallCounters, LegCounters};

use crate::cdr::{CallRecord, EndReason, EndedBy, LegRecord, MediaRecord, SCHEMA_VERSION};

/// Milliseconds since the Unix epoch of a monotonic time, given the epoch time of the
/// monotonic zero.
fn ms(epoch_ms_at_zero: i64, ns: u64) -> i64 {
    epoch_ms_at_zero + (ns / 1_000_000) as i64
}

fn media(leg: u8, c: &LegCounters, suite: Option<String>) -> MediaRecord {
    MediaRecord {
        leg,
        codec: None,
        srtp_suite: suite,
        packets: c.rx_packets,
        bytes: c.rx_bytes,
        lost: c.rtp_lost,
        jitter_ms: c.jitter_ms,
        auth_failures: c.drops.get("auth_failed").copied().unwrap_or(0),
        replay_drops: c.drops.get("replayed").copied().unwrap_or(0),
    }
}

/// The record of `end`, with the media statistics of `counters` (none if the call never
/// reached the data plane). `record_id` is random hex.
pub fn record(
    end: &CallEnd,
    counters: Option<&CallCounters>,
    epoch_ms_at_zero: i64,
    record_id: String,
) -> CallRecord {
    let leg = |call_id: &str, from: &str, to: &str, trunk: &str| LegRecord {
        call_id: call_id.to_owned(),
        from_uri: String::new(),
        to_uri: String::new(),
        from_number: (!from.is_empty()).then(|| from.to_owned()),
        to_number: (!to.is_empty()).then(|| to.to_owned()),
        trunk: trunk.to_owned(),
        peer: String::new(),
    };
    let mut media_records = Vec::new();
    if let Some(c) = counters {
        for (i, m) in c.media.iter().enumerate() {
            let (a_suite, b_suite) = end.suites.get(i).cloned().unwrap_or((None, None));
            media_records.push(media(0, &m.a, a_suite));
            media_records.push(media(1, &m.b, b_suite));
        }
    }
    CallRecord {
        version: SCHEMA_VERSION,
        record_id,
        legs: vec![
            leg(&end.a_call_id, &end.caller, &end.callee, &end.a_trunk),
            leg(&end.b_call_id, &end.caller, &end.callee, &end.b_trunk),
        ],
        setup_ms: end
            .restored_times
            .map_or(ms(epoch_ms_at_zero, end.setup_ns), |t| t.0),
        answer_ms: match end.restored_times {
            Some((_, answer)) => answer,
            None => end.answer_ns.map(|n| ms(epoch_ms_at_zero, n)),
        },
        end_ms: ms(epoch_ms_at_zero, end.end_ns),
        ended_by: match end.ended_by {
            relay_b2bua::EndedBy::Caller => EndedBy::Caller,
            relay_b2bua::EndedBy::Callee => EndedBy::Callee,
            relay_b2bua::EndedBy::Relay => EndedBy::Relay,
        },
        end_reason: match end.status {
            _ if end.reason == "media timeout" => EndReason::MediaTimeout,
            200 => EndReason::Normal,
            487 => EndReason::Cancelled,
            408 if end.ended_by == relay_b2bua::EndedBy::Relay => EndReason::SignallingTimeout,
            code => EndReason::SipStatus { code },
        },
        media: media_records,
    }
}
