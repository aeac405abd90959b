//! What `relay-gen` prints and writes: the report of a run, the search's result.

use relay_gen::ndr::SearchResult;
use relay_gen::streams::StreamPlan;
use relay_gen::verify::Report;

/// The report as JSON.
#[derive(serde::Serialize)]
pub(crate) struct JsonReport {
    pub(crate) streams: usize,
    pub(crate) offered: u64,
    pub(crate) delivered: u64,
    pub(crate) lost: u64,
    pub(crate) offered_pps: f64,
    pub(crate) delivered_pps: f64,
    pub(crate) duplicates: u64,
    pub(crate) reordered: u64,
    pub(crate) late: u64,
    pub(crate) failed: u64,
    pub(crate) attacks: u64,
    pub(crate) latency_ns: [u64; 5],
    pub(crate) clean: bool,
}

/// One trial of a search as JSON.
#[derive(serde::Serialize, Clone)]
pub(crate) struct TrialJson {
    /// The rate the trial offered (stream packets; attack packets come on top).
    pub(crate) rate_pps: f64,
    /// What the search judged it by (1 for a trial with verification failures or one the
    /// generator could not keep to).
    pub(crate) loss_ratio: f64,
    /// Packets meant, the port took, and delivered verified.
    pub(crate) intended: u64,
    pub(crate) offered: u64,
    pub(crate) delivered: u64,
    /// Packets that failed verification or came twice.
    pub(crate) failed: u64,
    /// The generator fell behind its schedule: nothing is known of the relay at this rate.
    pub(crate) generator_limited: bool,
    /// Attack packets the port took.
    pub(crate) attacks: u64,
    /// Latency percentiles (50, 90, 99, 99.9, max) of this trial, nanoseconds.
    pub(crate) latency_ns: [u64; 5],
}

/// The search as JSON: both rates, the trials in order, and the latency at the NDR.
#[derive(serde::Serialize)]
pub(crate) struct NdrJson {
    pub(crate) streams: usize,
    pub(crate) flood: u8,
    pub(crate) loopback: bool,
    pub(crate) ndr_pps: f64,
    pub(crate) pdr_pps: f64,
    pub(crate) trials: Vec<TrialJson>,
    /// The latency of the highest-rate trial without loss (zeros if none).
    pub(crate) latency_at_ndr_ns: [u64; 5],
}

impl NdrJson {
    pub(crate) fn new(
        streams: usize,
        flood: u8,
        loopback: bool,
        result: &SearchResult,
        trials: Vec<TrialJson>,
    ) -> NdrJson {
        let latency_at_ndr_ns = trials
            .iter()
            .filter(|t| t.loss_ratio == 0.0)
            .max_by(|a, b| a.rate_pps.total_cmp(&b.rate_pps))
            .map_or([0; 5], |t| t.latency_ns);
        NdrJson {
            streams,
            flood,
            loopback,
            ndr_pps: result.ndr_pps,
            pdr_pps: result.pdr_pps,
            trials,
            latency_at_ndr_ns,
        }
    }
}

pub(crate) fn print_report(plans: &[StreamPlan], r: &Report, seconds: f64, other: u64) {
    let us = |ns: u64| ns as f64 / 1e3;
    println!(
        "streams {}  offered {} ({:.3} Mpps)  delivered {} ({:.3} Mpps)  lost {} ({:.4}%)",
        plans.len(),
        r.sent,
        r.sent as f64 / seconds / 1e6,
        r.delivered,
        r.delivered as f64 / seconds / 1e6,
        r.lost,
        100.0 * r.loss_ratio()
    );
    println!(
        "duplicates {}  reordered {}  late {}  failed verification {} (tag {}, not stamped {}, altered {}, misrouted {}, malformed {})  other frames {}",
        r.counts.duplicates,
        r.counts.reordered,
        r.counts.late,
        r.counts.failed(),
        r.counts.auth_failed,
        r.counts.not_stamped,
        r.counts.altered,
        r.counts.misrouted,
        r.counts.malformed,
        other
    );
    println!(
        "latency us: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
        us(r.latency_ns[0]),
        us(r.latency_ns[1]),
        us(r.latency_ns[2]),
        us(r.latency_ns[3]),
        us(r.latency_ns[4])
    );
    println!("{}", if r.clean() { "clean" } else { "NOT clean" });
}
