//! The load generator: a UAC that places calls over a few persistent TLS connections to the
//! SBC, and a UAS that answers the SBC's INVITEs, in one single-threaded tokio runtime.
//!
//! A call is INVITE (SDP offer, RTP/SAVP with one SDES key) -> 100 -> 200 (answer) -> ACK ->
//! BYE after the hold time -> 200. The UAS answers every INVITE with 200 and its own fresh
//! key, ACKs need nothing, BYE gets 200. Since both ends are here, each call's keys are
//! compared across the SBC: the key the UAS is offered must differ from the one the UAC
//! offered, and the key the UAC is answered from the one the UAS answered (the SBC re-keys
//! each leg); calls where either key came through unchanged are counted apart.
//!
//! Load is closed-loop (`rate = None`: as fast as the SBC completes calls, at most
//! `max_outstanding` calls in progress) or open-loop at a fixed offered rate (calls that would
//! exceed `max_outstanding` are not placed, and counted). Figures count what completed inside
//! the measurement window (after `warmup`, for `duration`); then no call is started and those
//! in progress get `drain` to finish. Every wait is bounded: a call without its final
//! response within `call_timeout` is a failure ("timeout").
//!
//! With `SIP_BENCH_SHOW` set in the environment, the first INVITE the UAS receives and the
//! first 200 the UAC receives are printed to stderr (to see what an SBC sends).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use relay_sip::{Message, Method, StdHeader, Uri};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::msg::{self, DialogIds, Ids};
use super::transport::{connect, stream_io};

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Where the UAC sends its INVITEs (the SBC; or the UAS itself for a self-test).
    pub target: SocketAddr,
    /// The name the target's certificate must carry (an IP address or DNS name).
    pub server_name: String,
    /// The host of the Request-URI and To (the SBC's).
    pub target_host: String,
    /// The UAC's source address.
    pub uac_bind: IpAddr,
    /// Where the UAS listens (`None`: no UAS in this process).
    pub uas_listen: Option<SocketAddr>,
    /// The CA the SBC's certificate chains to.
    pub ca: PathBuf,
    /// The UAS's certificate and key.
    pub uas_cert: PathBuf,
    /// The UAS's key.
    pub uas_key: PathBuf,
    /// Persistent TLS connections the UAC spreads calls over.
    pub connections: usize,
    /// Offered calls per second (`None`: closed loop).
    pub rate: Option<f64>,
    /// Calls in progress at most.
    pub max_outstanding: usize,
    /// From ACK to BYE.
    pub hold: Duration,
    /// Before the measurement window.
    pub warmup: Duration,
    /// The measurement window.
    pub duration: Duration,
    /// A call's bound for each of its transactions.
    pub call_timeout: Duration,
    /// After the window, for the calls in progress.
    pub drain: Duration,
    /// The called number's prefix (the call's index follows).
    pub callee_prefix: String,
    /// Print `MEASURE start` / `MEASURE end` on stdout as the window opens and closes.
    pub markers: bool,
    /// Acknowledge every TCP segment at once (`TCP_QUICKACK` after each read) instead of
    /// the kernel's delayed ACK: a diagnosis of a peer that waits for ACKs (Nagle).
    pub quickack: bool,
}

impl LoadConfig {
    /// A self-test on loopback: the UAC calls the UAS at `127.0.0.1:port` directly.
    pub fn self_test(port: u16, ca: PathBuf, cert: PathBuf, key: PathBuf) -> LoadConfig {
        let at: SocketAddr = ([127, 0, 0, 1], port).into();
        LoadConfig {
            target: at,
            server_name: "127.0.0.1".into(),
            target_host: "127.0.0.1".into(),
            uac_bind: at.ip(),
            uas_listen: Some(at),
            ca,
            uas_cert: cert,
            uas_key: key,
            connections: 2,
            rate: None,
            max_outstanding: 50,
            hold: Duration::ZERO,
            warmup: Duration::from_millis(500),
            duration: Duration::from_secs(2),
            call_timeout: Duration::from_secs(5),
            drain: Duration::from_secs(3),
            callee_prefix: "+4930".into(),
            markers: false,
            quickack: false,
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    /// Length of the measurement window, seconds.
    pub window_s: f64,
    /// Calls completed (200 to BYE) inside the window.
    pub completed_in_window: u64,
    /// `completed_in_window / window_s`.
    pub calls_per_s: f64,
    /// Calls started over the whole run.
    pub started: u64,
    /// Calls completed over the whole run.
    pub completed: u64,
    /// Failures by cause (`INVITE 503`, `BYE 481`, `timeout`, `connection closed`).
    pub failed: BTreeMap<String, u64>,
    /// Open loop: calls not placed because `max_outstanding` were in progress.
    pub not_placed: u64,
    /// INVITE -> 200 of the calls answered in the window: 50th, 90th, 99th, 99.9th
    /// percentile and maximum, milliseconds.
    pub invite_to_200_ms: [f64; 5],
    /// Of those: from the UAC's INVITE to the SBC's INVITE at the UAS (same percentiles).
    pub invite_forwarded_ms: [f64; 5],
    /// And from the UAS's 200 to the SBC's 200 at the UAC (data-plane programming included).
    pub answer_forwarded_ms: [f64; 5],
    /// INVITEs, ACKs and BYEs the UAS received.
    pub uas_invites: u64,
    /// ACKs at the UAS.
    pub uas_acks: u64,
    /// BYEs at the UAS.
    pub uas_byes: u64,
    /// Calls whose both keys were replaced by the SBC.
    pub rekeyed: u64,
    /// Calls where a key crossed the SBC unchanged (either direction).
    pub key_passed_through: u64,
}

impl Report {
    /// All failures.
    pub fn failures(&self) -> u64 {
        self.failed.values().sum()
    }

    /// The summary lines a person reads.
    pub fn summary(&self) -> String {
        let p = &self.invite_to_200_ms;
        let mut s = format!(
            "completed {} calls in {:.1} s: {:.0} calls/s (started {}, completed {}, failed {}{})\n\
             INVITE->200 ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\n\
             of which INVITE at the UAS after p50 {:.2} p99 {:.2}; its 200 at the UAC after p50 {:.2} p99 {:.2}\n\
             UAS saw {} INVITE, {} ACK, {} BYE; keys re-keyed both ways on {} calls, passed through on {}",
            self.completed_in_window,
            self.window_s,
            self.calls_per_s,
            self.started,
            self.completed,
            self.failures(),
            if self.not_placed > 0 {
                format!(", not placed (cap) {}", self.not_placed)
            } else {
                String::new()
            },
            p[0],
            p[1],
            p[2],
            p[3],
            p[4],
            self.invite_forwarded_ms[0],
            self.invite_forwarded_ms[2],
            self.answer_forwarded_ms[0],
            self.answer_forwarded_ms[2],
            self.uas_invites,
            self.uas_acks,
            self.uas_byes,
            self.rekeyed,
            self.key_passed_through
        );
        for (cause, n) in &self.failed {
            s.push_str(&format!("\n  failed: {cause}: {n}"));
        }
        s
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Inviting,
    Confirmed,
    Byeing,
}

#[derive(Debug)]
struct Call {
    index: u64,
    conn: usize,
    ids: DialogIds,
    request_uri: Uri,
    remote_target: Option<Uri>,
    route: Vec<String>,
    invite_branch: String,
    phase: Phase,
    invited: Instant,
    deadline: Instant,
}

/// Keys of one call as each end saw them.
#[derive(Debug, Default)]
struct Keys {
    uac_offered: String,
    uas_answered: Option<String>,
    passed: bool,
    /// When the UAS received the SBC's INVITE and answered it.
    uas_at: Option<Instant>,
}

struct Conn {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    via_host: String,
    contact_host: String,
}

/// What a hold run is told to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldStep {
    /// Place the calls (after the connections are up).
    Calls,
    /// End them.
    Hangup,
}

struct Engine {
    cfg: LoadConfig,
    conns: Vec<Conn>,
    calls: HashMap<String, Call>,
    keys: HashMap<u64, Keys>,
    ids: Ids,
    rr: usize,
    next_index: u64,
    outstanding: usize,
    window: (Instant, Instant),
    stopped: bool,
    hold_forever: bool,
    held: Vec<String>,
    confirmed: u64,
    latencies_us: Vec<u32>,
    forward_us: Vec<u32>,
    answer_us: Vec<u32>,
    report: Report,
    slot_freed: Rc<Notify>,
    confirmed_notify: Rc<Notify>,
}

type Shared = Rc<RefCell<Engine>>;

impl Engine {
    fn fail(&mut self, cause: String) {
        *self.report.failed.entry(cause).or_default() += 1;
    }

    fn end_call(&mut self, call_id: &str) -> Option<Call> {
        let call = self.calls.remove(call_id)?;
        self.keys.remove(&call.index);
        self.outstanding -= 1;
        self.slot_freed.notify_one();
        Some(call)
    }

    fn send(&self, conn: usize, m: &Message) {
        let _ = self.conns[conn].tx.send(m.to_bytes());
    }

    fn start_call(&mut self, now: Instant) {
        if self.conns.is_empty() {
            return;
        }
        let index = self.next_index;
        self.next_index += 1;
        let conn = self.rr % self.conns.len();
        self.rr += 1;
        let c = &self.conns[conn];
        let callee = format!("{}{index:09}", self.cfg.callee_prefix);
        let request_uri = Uri::parse(&format!(
            "sip:{callee}@{};transport=tls",
            sip_host_port(&self.cfg.target_host, self.cfg.target.port())
        ))
        .expect("a SIP URI");
        let ids = DialogIds {
            call_id: format!("{}@{}", self.ids.hex(), c.contact_host),
            from: format!(
                "<sip:+4940{index:09}@{}>;tag={}",
                c.contact_host,
                self.ids.hex()
            ),
            to: format!("<sip:{callee}@{}>", self.cfg.target_host),
        };
        let branch = self.ids.hex();
        let mut m = msg::request(
            Method::Invite,
            &request_uri,
            &c.via_host,
            &branch,
            &ids,
            1,
            &[],
        );
        msg::push(
            &mut m,
            StdHeader::Contact,
            format!("<sip:+4940{index:09}@{};transport=tls>", c.via_host),
        );
        msg::push(&mut m, StdHeader::ContentType, "application/sdp");
        let key = msg::fresh_key();
        let port = 20_000 + ((index % 20_000) as u16) * 2;
        m.body = msg::sdp(&self.cfg.uac_bind.to_string(), port, index, "1", &key);
        self.send(conn, &m);
        if self.cfg.uas_listen.is_some() {
            self.keys.insert(
                index,
                Keys {
                    uac_offered: key,
                    ..Keys::default()
                },
            );
        }
        self.calls.insert(
            ids.call_id.clone(),
            Call {
                index,
                conn,
                ids,
                request_uri,
                remote_target: None,
                route: Vec::new(),
                invite_branch: branch,
                phase: Phase::Inviting,
                invited: now,
                deadline: now + self.cfg.call_timeout,
            },
        );
        self.outstanding += 1;
        self.report.started += 1;
    }

    fn in_dialog(&mut self, call_id: &str, method: Method, cseq: u32) -> Option<(usize, Message)> {
        let branch = self.ids.hex();
        let call = self.calls.get(call_id)?;
        let uri = call
            .remote_target
            .clone()
            .unwrap_or_else(|| call.request_uri.clone());
        let m = msg::request(
            method,
            &uri,
            &self.conns[call.conn].via_host,
            &branch,
            &call.ids,
            cseq,
            &call.route,
        );
        Some((call.conn, m))
    }

    fn send_bye(&mut self, call_id: &str, now: Instant) {
        let Some((conn, m)) = self.in_dialog(call_id, Method::Bye, 2) else {
            return;
        };
        if let Some(call) = self.calls.get_mut(call_id) {
            call.phase = Phase::Byeing;
            call.deadline = now + self.cfg.call_timeout;
        }
        self.send(conn, &m);
    }

    /// A message on UAC connection `conn`.
    fn on_uac(&mut self, conn: usize, m: Message, now: Instant, me: &Shared) {
        let Ok(call_id) = m.call_id().map(str::to_owned) else {
            return;
        };
        if m.is_request() {
            // The SBC ends the call (or asks OPTIONS): answer 200; a BYE ends the call.
            if m.method() == Some(&Method::Ack) {
                return;
            }
            if let Some(r) = msg::response(&m, 200, "OK", Some("uac")) {
                self.send(conn, &r);
            }
            if m.method() == Some(&Method::Bye) && self.end_call(&call_id).is_some() {
                self.fail("BYE from the SBC".into());
            }
            return;
        }
        let (Some(status), Ok(cseq)) = (m.status(), m.cseq()) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&call_id) else {
            return;
        };
        match (cseq.method, status) {
            (Method::Invite, 100..=199) => {}
            (Method::Invite, 200..=299) => {
                if call.index == 0 && std::env::var_os("SIP_BENCH_SHOW").is_some() {
                    eprintln!(
                        "first 200 at the UAC:\n{}",
                        String::from_utf8_lossy(&m.to_bytes())
                    );
                }
                if call.phase != Phase::Inviting {
                    return; // a retransmitted 200: our ACK went on a reliable transport
                }
                if now >= self.window.0 && now < self.window.1 {
                    let us = |d: Duration| d.as_micros().min(u128::from(u32::MAX)) as u32;
                    self.latencies_us.push(us(now.duration_since(call.invited)));
                    if let Some(at) = self.keys.get(&call.index).and_then(|k| k.uas_at) {
                        self.forward_us
                            .push(us(at.saturating_duration_since(call.invited)));
                        self.answer_us.push(us(now.saturating_duration_since(at)));
                    }
                }
                if let Some(to) = m.headers.get(StdHeader::To) {
                    call.ids.to = to.to_owned();
                }
                call.remote_target = match m.contact() {
                    Ok(Some(relay_sip::Contact::Addresses(a))) => a.first().map(|n| n.uri.clone()),
                    _ => None,
                };
                call.route = m
                    .record_routes()
                    .unwrap_or_default()
                    .iter()
                    .rev()
                    .map(|n| n.to_string())
                    .collect();
                call.phase = Phase::Confirmed;
                let index = call.index;
                if let (Some(k), Some((_, _, answered))) =
                    (self.keys.get_mut(&index), msg::first_crypto(&m.body))
                {
                    if k.uas_answered.as_deref() == Some(answered.as_str()) {
                        k.passed = true;
                    }
                    if k.passed {
                        self.report.key_passed_through += 1;
                    } else if k.uas_answered.is_some() {
                        self.report.rekeyed += 1;
                    }
                }
                if let Some((conn, ack)) = self.in_dialog(&call_id, Method::Ack, 1) {
                    self.send(conn, &ack);
                }
                self.confirmed += 1;
                if self.hold_forever {
                    if let Some(call) = self.calls.get_mut(&call_id) {
                        call.deadline = now + Duration::from_secs(365 * 86_400);
                    }
                    self.held.push(call_id);
                    self.confirmed_notify.notify_one();
                } else if self.cfg.hold.is_zero() {
                    self.send_bye(&call_id, now);
                } else {
                    let me = me.clone();
                    let hold = self.cfg.hold;
                    tokio::task::spawn_local(async move {
                        tokio::time::sleep(hold).await;
                        me.borrow_mut().send_bye(&call_id, Instant::now());
                    });
                }
            }
            (Method::Invite, _) => {
                // A failure: ACK it (same branch, the response's To), and count it.
                let mut ack = msg::request(
                    Method::Ack,
                    &call.request_uri,
                    &self.conns[call.conn].via_host,
                    &call.invite_branch,
                    &DialogIds {
                        to: m
                            .headers
                            .get(StdHeader::To)
                            .unwrap_or(&call.ids.to)
                            .to_owned(),
                        ..call.ids.clone()
                    },
                    1,
                    &[],
                );
                ack.body.clear();
                let conn = call.conn;
                self.send(conn, &ack);
                self.end_call(&call_id);
                self.fail(format!("INVITE {status}"));
            }
            (Method::Bye, 100..=199) => {}
            (Method::Bye, 200..=299) => {
                // The call was found above: it ends here.
                self.end_call(&call_id);
                self.report.completed += 1;
                if now >= self.window.0 && now < self.window.1 {
                    self.report.completed_in_window += 1;
                }
            }
            (Method::Bye, _) => {
                self.end_call(&call_id);
                self.fail(format!("BYE {status}"));
            }
            _ => {}
        }
    }

    /// A message on a UAS connection (from the SBC); responses go back on `tx`.
    fn on_uas(&mut self, tx: &mpsc::UnboundedSender<Vec<u8>>, local: SocketAddr, m: Message) {
        let Some(method) = m.method().cloned() else {
            return;
        };
        let reply = |r: Option<Message>| {
            if let Some(r) = r {
                let _ = tx.send(r.to_bytes());
            }
        };
        match method {
            Method::Invite => {
                self.report.uas_invites += 1;
                if self.report.uas_invites == 1 && std::env::var_os("SIP_BENCH_SHOW").is_some() {
                    eprintln!(
                        "first INVITE at the UAS:\n{}",
                        String::from_utf8_lossy(&m.to_bytes())
                    );
                }
                let tag = self.ids.hex();
                let Some(mut r) = msg::response(&m, 200, "OK", Some(&tag)) else {
                    return;
                };
                let offered = msg::first_crypto(&m.body);
                let index = m
                    .request_uri()
                    .and_then(Uri::as_sip)
                    .and_then(|u| u.user())
                    .and_then(|u| u.strip_prefix(self.cfg.callee_prefix.as_str()))
                    .and_then(|n| n.parse::<u64>().ok());
                let key = msg::fresh_key();
                if let Some(k) = index.and_then(|i| self.keys.get_mut(&i)) {
                    if offered.as_ref().map(|o| o.2.as_str()) == Some(k.uac_offered.as_str()) {
                        k.passed = true;
                    }
                    k.uas_answered = Some(key.clone());
                    k.uas_at = Some(Instant::now());
                }
                for rr in m.headers.get_all(StdHeader::RecordRoute) {
                    msg::push(&mut r, StdHeader::RecordRoute, rr.to_owned());
                }
                let host = sip_host_port(&local.ip().to_string(), local.port());
                msg::push(
                    &mut r,
                    StdHeader::Contact,
                    format!("<sip:uas@{host};transport=tls>"),
                );
                msg::push(&mut r, StdHeader::ContentType, "application/sdp");
                let tag = offered.map_or_else(|| "1".to_owned(), |o| o.0);
                let port = 40_000 + ((index.unwrap_or(0) % 10_000) as u16) * 2;
                r.body = msg::sdp(
                    &local.ip().to_string(),
                    port,
                    index.unwrap_or(0),
                    &tag,
                    &key,
                );
                reply(Some(r));
            }
            Method::Ack => self.report.uas_acks += 1,
            Method::Bye => {
                self.report.uas_byes += 1;
                reply(msg::response(&m, 200, "OK", None));
            }
            Method::Cancel | Method::Options | Method::Update | Method::Info => {
                reply(msg::response(&m, 200, "OK", Some("uas")));
            }
            _ => reply(msg::response(&m, 405, "Method Not Allowed", Some("uas"))),
        }
    }

    /// Calls past their deadline fail as "timeout".
    fn sweep(&mut self, now: Instant) {
        let late: Vec<String> = self
            .calls
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in late {
            if let Some(c) = self.end_call(&id) {
                let what = match c.phase {
                    Phase::Inviting => "timeout (no final response to INVITE)",
                    Phase::Confirmed => "timeout (confirmed, no BYE sent)",
                    Phase::Byeing => "timeout (no response to BYE)",
                };
                self.fail(what.into());
            }
        }
    }

    fn connection_lost(&mut self, conn: usize, why: &str) {
        let lost: Vec<String> = self
            .calls
            .iter()
            .filter(|(_, c)| c.conn == conn)
            .map(|(id, _)| id.clone())
            .collect();
        if !lost.is_empty() && !self.stopped {
            eprintln!("sip-bench: UAC connection {conn} closed: {why}");
        }
        for id in lost {
            self.end_call(&id);
            self.fail("connection closed".into());
        }
    }
}

fn sip_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn uas_task(engine: Shared, listener: TcpListener, acceptor: TlsAcceptor, quickack: bool) {
    tokio::task::spawn_local(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let Ok(local) = tcp.local_addr() else {
                continue;
            };
            let quick = if quickack {
                tcp.as_fd().try_clone_to_owned().ok()
            } else {
                None
            };
            let acceptor = acceptor.clone();
            let engine = engine.clone();
            tokio::task::spawn_local(async move {
                let Ok(Ok(tls)) =
                    tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                else {
                    return;
                };
                let (tx, rx) = mpsc::unbounded_channel();
                let reply = tx.clone();
                stream_io(tls, quick, rx, |m| {
                    engine.borrow_mut().on_uas(&reply, local, m)
                })
                .await;
            });
        }
    });
}

struct Setup {
    engine: Shared,
    connector: TlsConnector,
}

async fn setup(cfg: &LoadConfig, hold_forever: bool) -> Result<Setup> {
    let now = Instant::now();
    let engine = Rc::new(RefCell::new(Engine {
        cfg: cfg.clone(),
        conns: Vec::new(),
        calls: HashMap::new(),
        keys: HashMap::new(),
        ids: Ids::new(),
        rr: 0,
        next_index: 0,
        outstanding: 0,
        window: (now + cfg.warmup, now + cfg.warmup + cfg.duration),
        stopped: false,
        hold_forever,
        held: Vec::new(),
        confirmed: 0,
        latencies_us: Vec::new(),
        forward_us: Vec::new(),
        answer_us: Vec::new(),
        report: Report::default(),
        slot_freed: Rc::new(Notify::new()),
        confirmed_notify: Rc::new(Notify::new()),
    }));
    if let Some(at) = cfg.uas_listen {
        let listener = TcpListener::bind(at)
            .await
            .with_context(|| format!("UAS listening on {at}"))?;
        let acceptor = TlsAcceptor::from(super::pki::server_config(&cfg.uas_cert, &cfg.uas_key)?);
        uas_task(engine.clone(), listener, acceptor, cfg.quickack);
    }
    let connector = TlsConnector::from(super::pki::client_config(&cfg.ca)?);
    for i in 0..cfg.connections {
        let (tls, local, quick) = connect(cfg, &connector).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let host = sip_host_port(&local.ip().to_string(), local.port());
        engine.borrow_mut().conns.push(Conn {
            tx,
            via_host: host.clone(),
            contact_host: local.ip().to_string(),
        });
        let e = engine.clone();
        tokio::task::spawn_local(async move {
            let why = stream_io(tls, quick, rx, |m| {
                let me = e.clone();
                e.borrow_mut().on_uac(i, m, Instant::now(), &me);
            })
            .await;
            e.borrow_mut().connection_lost(i, &why);
        });
    }
    // The sweeper.
    let e = engine.clone();
    tokio::task::spawn_local(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            e.borrow_mut().sweep(Instant::now());
        }
    });
    Ok(Setup { engine, connector })
}

fn percentiles(mut v: Vec<u32>) -> [f64; 5] {
    if v.is_empty() {
        return [0.0; 5];
    }
    v.sort_unstable();
    let at = |q: f64| {
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        f64::from(v[i]) / 1000.0
    };
    [at(0.5), at(0.9), at(0.99), at(0.999), at(1.0)]
}

fn marker(cfg: &LoadConfig, what: &str) {
    if cfg.markers {
        println!("MEASURE {what}");
        let _ = std::io::stdout().flush();
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Runs the load and returns what it measured.
pub fn run(cfg: &LoadConfig) -> Result<Report> {
    let rt = runtime()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let Setup { engine, .. } = setup(cfg, false).await?;
        let start = Instant::now();
        {
            let mut e = engine.borrow_mut();
            e.window = (start + cfg.warmup, start + cfg.warmup + cfg.duration);
        }
        let (w0, w1) = engine.borrow().window;
        let slot = engine.borrow().slot_freed.clone();
        let c = cfg.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep_until(w0.into()).await;
            marker(&c, "start");
            tokio::time::sleep_until(w1.into()).await;
            marker(&c, "end");
        });
        match cfg.rate {
            None => loop {
                let now = Instant::now();
                if now >= w1 {
                    break;
                }
                {
                    let mut e = engine.borrow_mut();
                    while e.outstanding < cfg.max_outstanding {
                        e.start_call(now);
                    }
                }
                tokio::select! {
                    _ = slot.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            },
            Some(rate) => {
                let mut tick = tokio::time::interval(Duration::from_millis(1));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let mut offered = 0u64;
                loop {
                    tick.tick().await;
                    let now = Instant::now();
                    if now >= w1 {
                        break;
                    }
                    let due = (now.duration_since(start).as_secs_f64() * rate) as u64;
                    let mut e = engine.borrow_mut();
                    while offered < due {
                        offered += 1;
                        if e.outstanding < cfg.max_outstanding {
                            e.start_call(now);
                        } else {
                            e.report.not_placed += 1;
                        }
                    }
                }
            }
        }
        engine.borrow_mut().stopped = true;
        let drain_until = Instant::now() + cfg.drain;
        while engine.borrow().outstanding > 0 && Instant::now() < drain_until {
            tokio::select! {
                _ = slot.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        let mut e = engine.borrow_mut();
        let left = e.outstanding as u64;
        if left > 0 {
            *e.report
                .failed
                .entry("still in progress at the end".into())
                .or_default() += left;
        }
        let window = (w1 - w0).as_secs_f64();
        e.report.window_s = window;
        e.report.calls_per_s = e.report.completed_in_window as f64 / window;
        e.report.invite_to_200_ms = percentiles(std::mem::take(&mut e.latencies_us));
        e.report.invite_forwarded_ms = percentiles(std::mem::take(&mut e.forward_us));
        e.report.answer_forwarded_ms = percentiles(std::mem::take(&mut e.answer_us));
        e.conns.clear();
        Ok(e.report.clone())
    })
}

/// What a hold run reached.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HoldReport {
    /// TLS connections open at the first step (working and idle).
    pub connections: usize,
    /// Calls confirmed and held at the second step.
    pub held: u64,
    /// Calls ended cleanly after `Hangup`.
    pub completed: u64,
    /// Failures by cause.
    pub failed: BTreeMap<String, u64>,
}

/// A memory run: `cfg.connections` working connections plus `idle` idle ones are opened and
/// `READY connections N` is printed; at [`HoldStep::Calls`] from `steps`, `calls` calls are
/// placed (at most `cfg.max_outstanding` setting up at once) and held, and `READY calls N`
/// is printed once all are confirmed (or after `cfg.call_timeout` per batch); at
/// [`HoldStep::Hangup`] every held call gets its BYE, then the run ends.
pub fn hold(
    cfg: &LoadConfig,
    idle: usize,
    calls: u64,
    mut steps: mpsc::UnboundedReceiver<HoldStep>,
) -> Result<HoldReport> {
    let rt = runtime()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let Setup { engine, connector } = setup(cfg, true).await?;
        let mut idle_conns = Vec::new();
        for _ in 0..idle {
            let (tls, _, _) = connect(cfg, &connector).await?;
            idle_conns.push(tls);
        }
        let connections = cfg.connections + idle_conns.len();
        println!("READY connections {connections}");
        let _ = std::io::stdout().flush();
        if steps.recv().await != Some(HoldStep::Calls) {
            return Err(anyhow!("hold: no Calls step"));
        }
        let slot = engine.borrow().slot_freed.clone();
        let confirmed = engine.borrow().confirmed_notify.clone();
        let mut placed = 0u64;
        let mut last_progress = Instant::now();
        loop {
            let (held, failed, setting_up) = {
                let e = engine.borrow();
                (
                    e.held.len() as u64,
                    e.report.failures(),
                    e.outstanding - e.held.len(),
                )
            };
            if held + failed >= calls {
                break;
            }
            if last_progress.elapsed() > cfg.call_timeout * 2 {
                return Err(anyhow!("hold: stuck at {held} held calls, {failed} failed"));
            }
            {
                let mut e = engine.borrow_mut();
                let mut room = cfg.max_outstanding.saturating_sub(setting_up);
                while room > 0 && placed < calls {
                    e.start_call(Instant::now());
                    placed += 1;
                    room -= 1;
                }
            }
            tokio::select! {
                _ = confirmed.notified() => last_progress = Instant::now(),
                _ = slot.notified() => last_progress = Instant::now(),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        let held = engine.borrow().held.len() as u64;
        println!("READY calls {held}");
        let _ = std::io::stdout().flush();
        if steps.recv().await != Some(HoldStep::Hangup) {
            return Err(anyhow!("hold: no Hangup step"));
        }
        {
            let mut e = engine.borrow_mut();
            let ids = std::mem::take(&mut e.held);
            let now = Instant::now();
            for id in ids {
                e.send_bye(&id, now);
            }
        }
        let until = Instant::now() + cfg.call_timeout;
        while engine.borrow().outstanding > 0 && Instant::now() < until {
            tokio::select! {
                _ = slot.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        let mut e = engine.borrow_mut();
        e.stopped = true;
        let left = e.outstanding as u64;
        if left > 0 {
            *e.report
                .failed
                .entry("still in progress at the end".into())
                .or_default() += left;
        }
        e.conns.clear();
        drop(idle_conns);
        Ok(HoldReport {
            connections,
            held,
            completed: e.report.completed,
            failed: e.report.failed.clone(),
        })
    })
}
