//! What the event loop tells the outside about itself: the gauges set before a Prometheus
//! scrape, and the answers on the admin socket (`relayctl calls`, `trunks`, `top`).

use std::collections::HashMap;

use relay_b2bua::B2bua;

use super::observe;
use crate::cdr::CdrStore;

pub(super) fn sip_labels(direction: &str, m: &relay_sip::Message) -> observe::SipLabels {
    let kind = match (m.method(), m.status()) {
        (Some(method), _) => method.as_str().to_owned(),
        (None, Some(code)) => format!("{}xx", code / 100),
        _ => "?".into(),
    };
    observe::SipLabels {
        direction: direction.into(),
        kind,
    }
}

/// Sets the gauges and the counters kept by the B2BUA before a scrape.
pub(super) fn update_gauges(
    metrics: &observe::Metrics,
    b2bua: &B2bua,
    counted: &mut relay_b2bua::core::Counters,
    cdr: Option<&CdrStore>,
    connections: usize,
) {
    metrics.calls_active.set(b2bua.active_calls() as i64);
    metrics.connections.set(connections as i64);
    let c = &b2bua.counters;
    metrics
        .calls_attempted
        .inc_by(c.calls_attempted - counted.calls_attempted);
    metrics
        .calls_answered
        .inc_by(c.calls_answered - counted.calls_answered);
    for (code, n) in &c.calls_failed {
        let before = counted.calls_failed.get(code).copied().unwrap_or(0);
        metrics
            .calls_failed
            .get_or_create(&observe::CauseLabels {
                cause: code.to_string(),
            })
            .inc_by(n - before);
    }
    *counted = c.clone();
    for ((t, p), h) in b2bua.health() {
        let trunk = &b2bua.config().trunks[t];
        let peer = &trunk.peers[p];
        let labels = observe::PeerLabels {
            trunk: trunk.name.clone(),
            peer: format!("{}:{}", peer.host, peer.port),
        };
        metrics.trunk_up.get_or_create(&labels).set(match h.up {
            Some(true) => 1,
            Some(false) => 0,
            None => -1,
        });
        if let Some(rtt) = h.rtt_ns {
            metrics
                .trunk_rtt_us
                .get_or_create(&labels)
                .set((rtt / 1000) as i64);
        }
    }
    if let Some(store) = cdr {
        let m = store.metrics();
        metrics.cdr_written.set(m.written as i64);
        metrics.cdr_write_errors.set(m.write_errors as i64);
        metrics.cdr_waiting.set(m.waiting as i64);
        metrics.cdr_failing.set(i64::from(m.failing));
    }
}

pub(super) fn admin_answer(
    b2bua: &B2bua,
    req: &observe::AdminRequest,
    now_ns: u64,
    shell: &ShellFigures<'_>,
) -> observe::AdminAnswer {
    match req {
        observe::AdminRequest::Calls => observe::AdminAnswer::Calls(
            b2bua
                .call_summaries()
                .into_iter()
                .map(|c| observe::CallView {
                    id: c.dataplane_id,
                    trunks: format!("{} -> {}", c.a_trunk, c.b_trunk),
                    from: observe::mask(&c.caller),
                    to: observe::mask(&c.callee),
                    state: format!("{:?}", c.phase).to_ascii_lowercase(),
                    held: c.held,
                    age_s: now_ns.saturating_sub(c.setup_ns) / 1_000_000_000,
                })
                .collect(),
        ),
        observe::AdminRequest::Trunks => observe::AdminAnswer::Trunks(trunk_views(b2bua)),
        observe::AdminRequest::Status => {
            let c = &b2bua.counters;
            let cdr_m = shell.cdr.map(CdrStore::metrics);
            observe::AdminAnswer::Status(observe::StatusView {
                calls_active: b2bua.active_calls() as u64,
                calls_attempted: c.calls_attempted,
                calls_answered: c.calls_answered,
                calls_failed: c.calls_failed.values().sum(),
                calls_ended: shell.calls_ended,
                cdr_written: cdr_m.as_ref().map_or(0, |m| m.written),
                cdr_waiting: cdr_m.as_ref().map_or(0, |m| m.waiting as u64),
                connections: shell.connections as u64,
                trunks: trunk_views(b2bua),
            })
        }
    }
}

/// What the shell adds to the B2BUA's figures in a status answer.
pub(super) struct ShellFigures<'a> {
    pub(super) calls_ended: u64,
    pub(super) cdr: Option<&'a CdrStore>,
    pub(super) connections: usize,
}

/// Every trunk peer's health, for `relayctl trunks` and `top`.
fn trunk_views(b2bua: &B2bua) -> Vec<observe::PeerView> {
    let health: HashMap<(usize, usize), relay_b2bua::PeerHealth> =
        b2bua.health().into_iter().collect();
    let mut v = Vec::new();
    for (t, trunk) in b2bua.config().trunks.iter().enumerate() {
        for (p, peer) in trunk.peers.iter().enumerate() {
            let h = health.get(&(t, p)).cloned().unwrap_or_default();
            v.push(observe::PeerView {
                trunk: trunk.name.clone(),
                peer: format!(
                    "{}:{}/{}",
                    peer.host,
                    peer.port,
                    peer.transport.as_str().to_ascii_lowercase()
                ),
                state: match h.up {
                    Some(true) => "up",
                    Some(false) => "down",
                    None => "unknown",
                }
                .into(),
                rtt_ms: h.rtt_ns.map(|n| n as f64 / 1e6),
                sent: h.sent,
                timeouts: h.timeouts,
            });
        }
    }
    v
}
