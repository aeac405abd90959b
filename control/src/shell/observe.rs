//! What operators see of `relay-control`: a Prometheus text endpoint (`prometheus-client`)
//! on a configured local address, and a local admin socket (Unix, mode 0600) that
//! `relayctl calls` and `relayctl trunks` read.
//!
//! The endpoint answers `GET /metrics` only, with HTTP/1.0 and `Connection: close`: a few
//! lines of hand-written HTTP for one local scraper instead of an HTTP server crate.
//! Numbers are never exported: metrics are by trunk, method, class and cause.

use std::path::Path;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, oneshot};

/// Labels of SIP message counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SipLabels {
    /// `in` or `out`.
    pub direction: String,
    /// The method (requests) or the status class `1xx`..`6xx` (responses).
    pub kind: String,
}

/// Labels by cause.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabels {
    /// The SIP status or cause.
    pub cause: String,
}

/// Labels of a trunk peer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    /// The trunk.
    pub trunk: String,
    /// The peer's host and port.
    pub peer: String,
}

/// Labels of a data-plane worker counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkerLabels {
    /// The worker.
    pub worker: String,
    /// `rx`, `forwarded`, `replies`, `handed_over`, `held`, or a drop reason.
    pub counter: String,
}

/// Labels of a result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `failed`.
    pub result: String,
}

/// Every metric.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// Calls in progress.
    pub calls_active: Gauge,
    /// Calls attempted.
    pub calls_attempted: Counter,
    /// Calls answered.
    pub calls_answered: Counter,
    /// Calls that failed, by final status.
    pub calls_failed: Family<CauseLabels, Counter>,
    /// Calls ended, by who and why.
    pub calls_ended: Family<CauseLabels, Counter>,
    /// SIP requests and responses in and out.
    pub sip_messages: Family<SipLabels, Counter>,
    /// Messages refused by the parser, by the status they deserve.
    pub sip_malformed: Family<CauseLabels, Counter>,
    /// TLS handshakes, by result.
    pub tls_handshakes: Family<ResultLabels, Counter>,
    /// Open connections and UDP associations.
    pub connections: Gauge,
    /// Trunk peers: 1 up, 0 down, -1 not asked yet.
    pub trunk_up: Family<PeerLabels, Gauge>,
    /// The last OPTIONS round trip, microseconds.
    pub trunk_rtt_us: Family<PeerLabels, Gauge>,
    /// CDR store: records written.
    pub cdr_written: Gauge,
    /// CDR store: failed group commits.
    pub cdr_write_errors: Gauge,
    /// CDR store: records waiting for the disk.
    pub cdr_waiting: Gauge,
    /// CDR store: 1 while writes fail.
    pub cdr_failing: Gauge,
    /// Refusals and answers of the transport limits (`[limits]`), by kind.
    pub refusals: Family<CauseLabels, Gauge>,
    /// The data plane's counters per worker, read at each scrape.
    pub dataplane: Family<WorkerLabels, Gauge>,
}

impl Metrics {
    /// The registry over these metrics.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("relay");
        r.register(
            "calls_active",
            "Calls in progress",
            self.calls_active.clone(),
        );
        r.register(
            "calls_attempted",
            "Calls attempted",
            self.calls_attempted.clone(),
        );
        r.register(
            "calls_answered",
            "Calls answered",
            self.calls_answered.clone(),
        );
        r.register(
            "calls_failed",
            "Calls failed, by final status",
            self.calls_failed.clone(),
        );
        r.register(
            "calls_ended",
            "Calls ended, by cause",
            self.calls_ended.clone(),
        );
        r.register(
            "sip_messages",
            "SIP requests (by method) and responses (by class)",
            self.sip_messages.clone(),
        );
        r.register(
            "sip_malformed",
            "SIP messages refused by the parser, by the status they deserve",
            self.sip_malformed.clone(),
        );
        r.register(
            "tls_handshakes",
            "TLS handshakes, by result",
            self.tls_handshakes.clone(),
        );
        r.register(
            "connections",
            "Open SIP connections and UDP associations",
            self.connections.clone(),
        );
        r.register(
            "trunk_up",
            "Trunk peer health from OPTIONS: 1 up, 0 down, -1 unknown",
            self.trunk_up.clone(),
        );
        r.register(
            "trunk_options_rtt_us",
            "Last OPTIONS round trip per trunk peer, microseconds",
            self.trunk_rtt_us.clone(),
        );
        r.register(
            "cdr_written",
            "Call records durably written since start",
            self.cdr_written.clone(),
        );
        r.register(
            "cdr_write_errors",
            "Failed CDR group commits since start",
            self.cdr_write_errors.clone(),
        );
        r.register(
            "cdr_waiting",
            "Call records waiting for the disk",
            self.cdr_waiting.clone(),
        );
        r.register(
            "cdr_failing",
            "1 while CDR writes fail",
            self.cdr_failing.clone(),
        );
        r.register(
            "limit_refusals",
            "Refusals and answers of the transport limits since start, by kind",
            self.refusals.clone(),
        );
        r.register(
            "dataplane",
            "Data-plane counters per worker (packets, drops by reason) at the last scrape",
            self.dataplane.clone(),
        );
        r
    }
}

/// One active call as `relayctl calls` shows it (numbers masked to their last 4 digits).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallView {
    /// The data plane's id.
    pub id: String,
    /// Trunks a -> b.
    pub trunks: String,
    /// Caller, masked.
    pub from: String,
    /// Callee, masked.
    pub to: String,
    /// `calling`, `answered`, `confirmed`, `ending`.
    pub state: String,
    /// On hold.
    pub held: bool,
    /// Seconds since the INVITE.
    pub age_s: u64,
}

/// One trunk peer as `relayctl trunks` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerView {
    /// The trunk.
    pub trunk: String,
    /// Host:port/transport.
    pub peer: String,
    /// `up`, `down` or `unknown`.
    pub state: String,
    /// Last OPTIONS round trip, ms.
    pub rtt_ms: Option<f64>,
    /// OPTIONS sent and unanswered.
    pub sent: u64,
    /// Unanswered.
    pub timeouts: u64,
}

/// A request on the admin socket.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AdminRequest {
    /// Active calls.
    Calls,
    /// Trunk health.
    Trunks,
    /// Totals for a live view (`relayctl top`).
    Status,
}

/// relay-control's totals at one moment (`relayctl top` turns two into rates).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StatusView {
    /// Calls in progress.
    pub calls_active: u64,
    /// Calls started since relay-control started.
    pub calls_attempted: u64,
    /// Of them, answered.
    pub calls_answered: u64,
    /// Of them, failed (any final status).
    pub calls_failed: u64,
    /// Calls ended (after an answer, or failed), with a record.
    pub calls_ended: u64,
    /// Call records durably written.
    pub cdr_written: u64,
    /// Call records waiting to be written.
    pub cdr_waiting: u64,
    /// Open SIP connections.
    pub connections: u64,
    /// Every trunk peer's health.
    pub trunks: Vec<PeerView>,
}

/// The answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminAnswer {
    /// Active calls.
    Calls(Vec<CallView>),
    /// Trunk peers.
    Trunks(Vec<PeerView>),
    /// Totals.
    Status(StatusView),
    /// The request was not understood.
    Error(String),
}

/// What the observation tasks ask of the event loop.
#[derive(Debug)]
pub enum Ask {
    /// Update the gauges, then answer.
    Scrape(oneshot::Sender<()>),
    /// An admin request.
    Admin(AdminRequest, oneshot::Sender<AdminAnswer>),
}

/// Masks a number or user to its last four characters (`…4567`).
pub fn mask(s: &str) -> String {
    let n = s.chars().count();
    if n <= 4 {
        "…".into()
    } else {
        format!("…{}", s.chars().skip(n - 4).collect::<String>())
    }
}

/// Serves `GET /metrics` on `listener`.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    ask: mpsc::UnboundedSender<Ask>,
    dataplane: std::path::PathBuf,
) {
    let registry = Arc::new(metrics.registry());
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let registry = registry.clone();
        let ask = ask.clone();
        let metrics = metrics.clone();
        let dataplane = dataplane.clone();
        tokio::spawn(async move {
            let mut head = [0u8; 1024];
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut head))
                .await;
            let Ok(Ok(n)) = n else { return };
            let ok = head[..n].starts_with(b"GET /metrics ");
            if ok {
                let (tx, rx) = oneshot::channel();
                if ask.send(Ask::Scrape(tx)).is_ok() {
                    let _ = rx.await;
                }
                // The data plane's counters, read outside the event loop.
                let stats = tokio::task::spawn_blocking(move || {
                    relay_session::client::ControlClient::connect(&dataplane)
                        .and_then(|mut c| c.worker_stats())
                })
                .await;
                if let Ok(Ok(total)) = stats {
                    for (w, s) in total.workers.unwrap_or_default().iter().enumerate() {
                        let set = |counter: &str, v: u64| {
                            metrics
                                .dataplane
                                .get_or_create(&WorkerLabels {
                                    worker: w.to_string(),
                                    counter: counter.into(),
                                })
                                .set(v as i64);
                        };
                        set("rx", s.rx);
                        set("forwarded", s.forwarded);
                        set("replies", s.replies);
                        set("handed_over", s.handed_over);
                        set("held", s.held);
                        set("srtp", s.srtp);
                        set("run_ns", s.run_ns);
                        set("busy_ns", s.busy_ns);
                        for (reason, v) in &s.drops {
                            set(&format!("drop_{reason}"), *v);
                        }
                    }
                }
            }
            let mut body = String::new();
            let (status, body) =
                if ok && prometheus_client::encoding::text::encode(&mut body, &registry).is_ok() {
                    ("200 OK", body)
                } else {
                    ("404 Not Found", "GET /metrics\n".to_owned())
                };
            let response = format!(
                "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

/// Serves the admin socket at `path` (mode 0600, replacing a stale socket).
pub fn bind_admin(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    if let Some(parent) = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && !p.exists())
    {
        std::fs::create_dir_all(parent)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Answers admin requests, one JSON line each.
pub async fn serve_admin(listener: UnixListener, ask: mpsc::UnboundedSender<Ask>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let ask = ask.clone();
        tokio::spawn(async move {
            let (rd, mut wr) = stream.into_split();
            let mut lines = BufReader::new(rd.take(64 * 1024)).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let answer = match serde_json::from_str::<AdminRequest>(&line) {
                    Ok(req) => {
                        let (tx, rx) = oneshot::channel();
                        if ask.send(Ask::Admin(req, tx)).is_err() {
                            return;
                        }
                        rx.await.unwrap_or(AdminAnswer::Error("stopping".into()))
                    }
                    Err(e) => AdminAnswer::Error(format!("bad request: {e}")),
                };
                let Ok(text) = serde_json::to_string(&answer) else {
                    return;
                };
                if wr.write_all(format!("{text}\n").as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// `relayctl`'s side: one request on the admin socket at `path`.
pub fn admin_request(path: &Path, req: &AdminRequest) -> std::io::Result<AdminAnswer> {
    use std::io::{BufRead, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(path)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    writeln!(
        stream,
        "{}",
        serde_json::to_string(req).map_err(std::io::Error::other)?
    )?;
    let mut line = String::new();
    std::io::BufReader::new(stream).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_masked_to_four_characters() {
        assert_eq!(mask("+4930123456"), "…3456");
        assert_eq!(mask("bob"), "…");
    }

    #[test]
    fn the_grafana_dashboard_uses_only_metrics_we_export() {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/grafana-dashboard.json"
        ));
        let dash: serde_json::Value = serde_json::from_str(text).unwrap();
        // Families are encoded once they hold a sample: give each one.
        let m = Metrics::default();
        let cause = || CauseLabels { cause: "x".into() };
        let peer = || PeerLabels {
            trunk: "t".into(),
            peer: "p".into(),
        };
        m.calls_failed.get_or_create(&cause()).inc();
        m.calls_ended.get_or_create(&cause()).inc();
        m.sip_malformed.get_or_create(&cause()).inc();
        m.refusals.get_or_create(&cause()).set(1);
        m.sip_messages
            .get_or_create(&SipLabels {
                direction: "in".into(),
                kind: "INVITE".into(),
            })
            .inc();
        m.tls_handshakes
            .get_or_create(&ResultLabels {
                result: "ok".into(),
            })
            .inc();
        m.trunk_up.get_or_create(&peer()).set(1);
        m.trunk_rtt_us.get_or_create(&peer()).set(1);
        m.dataplane
            .get_or_create(&WorkerLabels {
                worker: "0".into(),
                counter: "rx".into(),
            })
            .set(1);
        let mut encoded = String::new();
        prometheus_client::encoding::text::encode(&mut encoded, &m.registry()).unwrap();
        let panels = dash["panels"].as_array().unwrap();
        assert!(panels.len() >= 10);
        for p in panels {
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{}", p["title"]);
            for t in targets {
                let expr = t["expr"].as_str().unwrap();
                let mut rest = expr;
                while let Some(i) = rest.find("relay_") {
                    let name: String = rest[i..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    let family = name.strip_suffix("_total").unwrap_or(&name);
                    assert!(
                        encoded.contains(&format!("# TYPE {family} ")),
                        "{} uses {name}, which relay-control does not export",
                        p["title"]
                    );
                    rest = &rest[i + name.len()..];
                }
            }
        }
        // The data plane's counters the dashboard reads are the ones the scrape sets.
        let source = include_str!("observe.rs");
        for counter in [
            "\"forwarded\"",
            "\"srtp\"",
            "\"busy_ns\"",
            "\"run_ns\"",
            "\"drop_{reason}\"",
        ] {
            assert!(
                source.contains(&format!("set({counter}"))
                    || source.contains(&format!("set(&format!({counter}")),
                "{counter}"
            );
        }
    }

    #[test]
    fn the_registry_encodes_every_metric() {
        let m = Metrics::default();
        m.calls_attempted.inc();
        m.trunk_up
            .get_or_create(&PeerLabels {
                trunk: "teams".into(),
                peer: "a:5061".into(),
            })
            .set(1);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &m.registry()).unwrap();
        assert!(text.contains("relay_calls_attempted_total 1"), "{text}");
        assert!(
            text.contains("relay_trunk_up{trunk=\"teams\",peer=\"a:5061\"} 1"),
            "{text}"
        );
    }
}
