//! `relayctl top`: a live view of a running appliance, from the two local sockets an operator
//! already has (no Prometheus needed): relay-control's admin socket (calls, records, trunks)
//! and the data plane's control socket (per worker counters). Two samples make the rates.
//!
//! The same figures are on the Prometheus endpoint (`relay_calls_*`, `relay_cdr_*`,
//! `relay_trunk_*`, `relay_dataplane{worker,counter}`); `top` shows them without a
//! scraper, redrawn in place in a terminal and as plain lines otherwise.

use std::path::Path;
use std::time::Instant;

use relay_session::client::ControlClient;
use relay_session::stats::WorkerCounters;

use crate::shell::observe::{admin_request, AdminAnswer, AdminRequest, StatusView};

/// Both processes' figures at one moment.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When it was taken.
    pub at: Instant,
    /// relay-control's totals, or why they could not be read.
    pub control: Result<StatusView, String>,
    /// The data plane's counters (summed, with each worker's), or why they could not be read.
    pub dataplane: Result<WorkerCounters, String>,
}

/// Reads both sockets.
pub fn sample(admin_socket: &Path, dataplane_socket: &Path) -> Sample {
    let control = match admin_request(admin_socket, &AdminRequest::Status) {
        Ok(AdminAnswer::Status(s)) => Ok(s),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(format!("{}: {e}", admin_socket.display())),
    };
    let dataplane = ControlClient::connect(dataplane_socket)
        .and_then(|mut c| c.worker_stats())
        .map_err(|e| format!("{}: {e}", dataplane_socket.display()));
    Sample {
        at: Instant::now(),
        control,
        dataplane,
    }
}

fn per_second(now: u64, before: u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        0.0
    } else {
        now.saturating_sub(before) as f64 / secs
    }
}

/// The view of `now`, with rates since `before`.
pub fn render(before: &Sample, now: &Sample) -> Vec<String> {
    let secs = now.at.duration_since(before.at).as_secs_f64();
    let mut out = Vec::new();
    match (&now.control, &before.control) {
        (Ok(c), prev) => {
            let p = prev.as_ref().ok();
            let rate = |f: fn(&StatusView) -> u64| per_second(f(c), p.map_or(f(c), f), secs);
            out.push(format!(
                "calls       {} active, {:.1} set up/s, {:.1} ended/s; since start {} attempted, {} answered, {} failed, {} ended",
                c.calls_active,
                rate(|s| s.calls_answered),
                rate(|s| s.calls_ended),
                c.calls_attempted,
                c.calls_answered,
                c.calls_failed,
                c.calls_ended
            ));
            out.push(format!(
                "records     {} written ({:.1}/s), {} waiting; {} SIP connections",
                c.cdr_written,
                rate(|s| s.cdr_written),
                c.cdr_waiting,
                c.connections
            ));
            let trunks: Vec<String> = c
                .trunks
                .iter()
                .map(|t| {
                    format!(
                        "{} {} {}{}",
                        t.trunk,
                        t.peer,
                        t.state,
                        t.rtt_ms.map(|r| format!(" {r:.1} ms")).unwrap_or_default()
                    )
                })
                .collect();
            out.push(format!("trunks      {}", trunks.join(" | ")));
        }
        (Err(e), _) => out.push(format!("control     unreachable: {e}")),
    }
    match (&now.dataplane, &before.dataplane) {
        (Ok(d), prev) => {
            let workers = d.workers.clone().unwrap_or_else(|| vec![d.clone()]);
            let prev_workers: Vec<WorkerCounters> = prev
                .as_ref()
                .ok()
                .map(|p| p.workers.clone().unwrap_or_else(|| vec![p.clone()]))
                .unwrap_or_default();
            out.push(format!(
                "{:<11} {:>12} {:>12} {:>6} {:>14}  drops/s by reason",
                "worker", "packets/s", "re-keyed/s", "busy", "relayed"
            ));
            let mut rows: Vec<(String, &WorkerCounters, Option<&WorkerCounters>)> = workers
                .iter()
                .enumerate()
                .map(|(i, w)| (i.to_string(), w, prev_workers.get(i)))
                .collect();
            if workers.len() > 1 {
                rows.push(("all".into(), d, prev.as_ref().ok()));
            }
            for (name, w, p) in rows {
                let pf = |f: fn(&WorkerCounters) -> u64| p.map_or(f(w), f);
                let run = w.run_ns.saturating_sub(pf(|x| x.run_ns));
                let busy = w.busy_ns.saturating_sub(pf(|x| x.busy_ns));
                let drops: Vec<String> = w
                    .drops
                    .iter()
                    .filter_map(|(reason, n)| {
                        let before = p.and_then(|p| p.drops.get(reason)).copied().unwrap_or(*n);
                        let r = per_second(*n, before, secs);
                        (r > 0.0).then(|| format!("{reason} {r:.1}"))
                    })
                    .collect();
                out.push(format!(
                    "{:<11} {:>12.1} {:>12.1} {:>5.0}% {:>14}  {}",
                    name,
                    per_second(w.forwarded, pf(|x| x.forwarded), secs),
                    per_second(w.srtp, pf(|x| x.srtp), secs),
                    if run == 0 {
                        0.0
                    } else {
                        100.0 * busy as f64 / run as f64
                    },
                    w.forwarded,
                    if drops.is_empty() {
                        "-".into()
                    } else {
                        drops.join(", ")
                    }
                ));
            }
        }
        (Err(e), _) => out.push(format!("data plane  unreachable: {e}")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sample(at: Instant, answered: u64, forwarded: u64, busy: u64) -> Sample {
        let w = WorkerCounters {
            forwarded,
            srtp: forwarded,
            run_ns: busy * 4,
            busy_ns: busy,
            ..WorkerCounters::default()
        };
        Sample {
            at,
            control: Ok(StatusView {
                calls_active: 2,
                calls_attempted: answered,
                calls_answered: answered,
                ..StatusView::default()
            }),
            dataplane: Ok(WorkerCounters::sum(vec![w.clone(), w])),
        }
    }

    #[test]
    fn rates_come_from_two_samples() {
        let t0 = Instant::now();
        let a = sample(t0, 10, 1000, 100);
        let b = sample(t0 + Duration::from_secs(2), 14, 3000, 300);
        let lines = render(&a, &b);
        assert!(
            lines[0].starts_with("calls       2 active, 2.0 set up/s"),
            "{lines:?}"
        );
        let w0 = lines.iter().find(|l| l.starts_with("0 ")).unwrap();
        assert!(w0.contains("1000.0") && w0.contains("25%"), "{w0}");
        let all = lines.iter().find(|l| l.starts_with("all ")).unwrap();
        assert!(all.contains("2000.0") && all.contains("6000"), "{all}");
    }

    #[test]
    fn an_unreachable_process_is_said_so() {
        let t0 = Instant::now();
        let s = Sample {
            at: t0,
            control: Err("no socket".into()),
            dataplane: Err("no socket".into()),
        };
        let lines = render(&s, &s);
        assert_eq!(
            lines,
            [
                "control     unreachable: no socket",
                "data plane  unreachable: no socket"
            ]
        );
    }
}
