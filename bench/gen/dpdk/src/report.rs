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
    pub(crate) latency_ns: [u64; 5],
    pub(crate) clean: bool,
}

/// The search as JSON: both rates and the trace.
#[derive(serde::Serialize)]
pub(crate) struct NdrJson {
    ndr_pps: f64,
    pdr_pps: f64,
    trace: Vec<(f64, f64)>,
}

impl From<&SearchResult> for NdrJson {
    fn from(r: &SearchResult) -> NdrJson {
        NdrJson {
            ndr_pps: r.ndr_pps,
            pdr_pps: r.pdr_pps,
            trace: r.trace.iter().map(|t| (t.rate_pps, t.loss_ratio)).collect(),
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
