//! The built-in callers: the cloud side places calls over SIP/TLS (mutual TLS, SDES
//! AES_CM_128_HMAC_SHA1_80, as Teams does) to the operator side through the appliance; the
//! operator side answers with RTP or SRTP as its trunk's policy says. Both sides are written
//! on our own SIP stack (`relay_testsupport::sip_peer`: relay-sip over rustls).
//!
//! Call `i` is started `i / cps` seconds into the run. When it is answered, both legs send
//! media for the run's duration ([`crate::media`]); then half the calls are hung up by the
//! cloud side and half by the operator side, each after the media's grace period, and the
//! other side answers the BYE. One thread runs the signalling of both sides (an event loop
//! over the two peers' messages); the media runs on a small tokio runtime.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use relay_bench::sipload::msg::{self, Ids};
use relay_sip::{Message, Method, StdHeader};
use relay_srtp::{CryptoAttribute, SdesKey};
use relay_testsupport::netns::Netns;
use relay_testsupport::pki::Leaf;
use relay_testsupport::sip_peer::{self, ConnId, Dialog, Received, SipPeer};
use relay_testsupport::topology::{self, SbcTopology};

use crate::media::{self, Direction, LegMedia, LegResult};

/// The cloud side's SIP address (its proxy, as Teams' would be).
pub const CLOUD_SIP: SocketAddr = SocketAddr::new(IpAddr::V4(topology::ALICE), 5061);
/// The operator side's SIP address.
pub const OPERATOR_SIP: SocketAddr = SocketAddr::new(IpAddr::V4(topology::BOB), 5061);
/// The SBC's SIP/TLS listener on the cloud side.
pub const SBC_CLOUD_SIP: SocketAddr =
    SocketAddr::new(IpAddr::V4(topology::SBC_ALICE_SIGNALLING), 5061);
const CLOUD_MEDIA_PORT: u16 = 40_000;
const OPERATOR_MEDIA_PORT: u16 = 50_000;
/// Longest wait for any answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Calls to place.
    pub calls: u32,
    /// Media per call.
    pub duration: Duration,
    /// New calls per second.
    pub cps: f64,
    /// Whether the operator side answers SRTP (else plain RTP).
    pub operator_srtp: bool,
}

/// Who hung up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The cloud side (the caller).
    Cloud,
    /// The operator side.
    Operator,
}

/// How one call went.
#[derive(Debug)]
pub struct CallOutcome {
    /// Its index in the run.
    pub index: u32,
    /// The number called.
    pub number: String,
    /// Whether it was answered.
    pub answered: bool,
    /// Why it failed (the final status, or a timeout), if it did.
    pub failure: Option<String>,
    /// Who sent the BYE.
    pub hung_up_by: Option<Side>,
    /// Whether the BYE was answered 200 and the other side got its BYE.
    pub ended_cleanly: bool,
    /// The cloud leg's media (sent cloud -> operator; received operator -> cloud).
    pub cloud: LegResult,
    /// The operator leg's media.
    pub operator: LegResult,
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Waiting,
    Calling,
    Talking,
    HangingUp,
    Done,
}

struct Call {
    index: u32,
    number: String,
    phase: Phase,
    dialog: Dialog,
    cloud_key: String,
    invite_at: Instant,
    media_end: Option<Instant>,
    operator: Option<OperatorLeg>,
    hangup_by: Side,
    bye_answered: bool,
    bye_received: bool,
    failure: Option<String>,
    media: Vec<tokio::task::JoinHandle<std::io::Result<(Side, LegResult)>>>,
}

/// The operator side's view of a call: the INVITE it got and what it answered.
struct OperatorLeg {
    invite: Received,
    /// The relay's media address and key for the operator leg (from the INVITE).
    relay: (SocketAddr, Option<SdesKey>),
    /// The operator's own key (in its answer), if SRTP.
    own_key: Option<String>,
    bye: Option<Dialog>,
}

/// The media address, port and first key of an SDP body.
fn media_of(body: &[u8]) -> Result<(SocketAddr, Option<SdesKey>)> {
    let text = std::str::from_utf8(body).context("SDP is not UTF-8")?;
    let mut address = None;
    let mut port = None;
    let mut key = None;
    for line in text.lines().map(str::trim_end) {
        if let Some(c) = line.strip_prefix("c=IN IP4 ") {
            address = Some(c.parse::<IpAddr>().context("c= address")?);
        } else if let Some(m) = line.strip_prefix("m=audio ") {
            port = m.split(' ').next().and_then(|p| p.parse::<u16>().ok());
        } else if let Some(c) = line.strip_prefix("a=crypto:") {
            if key.is_none() {
                key = Some(
                    CryptoAttribute::parse(c)
                        .map_err(|e| anyhow!("a=crypto: {e}"))?
                        .key,
                );
            }
        }
    }
    let (Some(address), Some(port)) = (address, port) else {
        return Err(anyhow!("SDP without c= or m=audio"));
    };
    Ok((SocketAddr::new(address, port), key))
}

fn sdp(ip: IpAddr, port: u16, key: Option<&str>) -> Vec<u8> {
    let proto = if key.is_some() { "RTP/SAVP" } else { "RTP/AVP" };
    let mut s = format!(
        "v=0\r\no=- {port} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} {proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    );
    if let Some(k) = key {
        s.push_str(&format!(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k}|2^31\r\n"
        ));
    }
    s.into_bytes()
}

fn sdes(inline: &str) -> Result<SdesKey> {
    SdesKey::parse_inline(
        relay_srtp::Suite::AesCm128HmacSha1_80,
        &format!("inline:{inline}"),
    )
    .map_err(|e| anyhow!("our own key: {e}"))
}

fn bind(ns: &Netns, addr: SocketAddr) -> Result<UdpSocket> {
    ns.enter(|| UdpSocket::bind(addr))?
        .with_context(|| format!("binding {addr} in {}", ns.name()))
}

/// The cloud and operator sides, ready to place calls.
pub struct Sides<'a> {
    net: &'a SbcTopology,
    cloud: SipPeer,
    cloud_conn: Option<ConnId>,
    cloud_client: Arc<rustls::ClientConfig>,
    operator: SipPeer,
    /// Tells every media task that the run was stopped.
    media_stop: tokio::sync::watch::Sender<bool>,
}

impl<'a> Sides<'a> {
    /// Starts both sides' SIP/TLS listeners (before the appliance, so that its first
    /// OPTIONS find them up).
    pub fn listen(
        net: &'a SbcTopology,
        ca: &std::path::Path,
        cloud: &Leaf,
        operator: &Leaf,
    ) -> Result<Sides<'a>> {
        let cloud_server = sip_peer::mutual_tls_server(&cloud.certificate, &cloud.key, ca)?;
        let operator_server =
            sip_peer::mutual_tls_server(&operator.certificate, &operator.key, ca)?;
        let cloud_peer = SipPeer::listen(&net.alice, "cloud", CLOUD_SIP, cloud_server)?;
        let operator_peer = SipPeer::listen(&net.bob, "operator", OPERATOR_SIP, operator_server)?;
        Ok(Sides {
            net,
            cloud: cloud_peer,
            cloud_conn: None,
            cloud_client: sip_peer::mutual_tls_client(&cloud.certificate, &cloud.key, ca)?,
            operator: operator_peer,
            media_stop: tokio::sync::watch::channel(false).0,
        })
    }

    /// Connects the cloud side to the SBC (once relay-control is up).
    pub fn connect(&mut self) -> Result<()> {
        let conn = self.cloud.connect(
            &self.net.alice,
            SBC_CLOUD_SIP,
            "sbc.test",
            self.cloud_client.clone(),
        )?;
        self.cloud_conn = Some(conn);
        Ok(())
    }

    fn conn(&self) -> Result<ConnId> {
        self.cloud_conn
            .ok_or_else(|| anyhow!("the cloud side is not connected"))
    }

    /// Places the plan's calls and waits for them to end (or for `stop`, which hangs up
    /// every call and starts no more); what each call did.
    pub fn run(
        &mut self,
        plan: &Plan,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Vec<CallOutcome>> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let mut ids = Ids::new();
        let t0 = Instant::now();
        let mut calls: Vec<Call> = (0..plan.calls)
            .map(|i| {
                let number = format!("+493020{i:05}");
                Ok(Call {
                    index: i,
                    dialog: Dialog::new(
                        &mut ids,
                        "198.18.10.2",
                        "+4930100",
                        &format!("<sip:{number}@sbc.test;user=phone>"),
                        &format!("sip:{number}@sbc.test:5061;user=phone;transport=tls"),
                    )?,
                    number,
                    phase: Phase::Waiting,
                    cloud_key: msg::fresh_key(),
                    invite_at: t0 + Duration::from_secs_f64(f64::from(i) / plan.cps),
                    media_end: None,
                    operator: None,
                    hangup_by: if i % 2 == 0 {
                        Side::Cloud
                    } else {
                        Side::Operator
                    },
                    bye_answered: false,
                    bye_received: false,
                    failure: None,
                    media: Vec::new(),
                })
            })
            .collect::<Result<_>>()?;
        let by_cloud_id: HashMap<String, usize> = calls
            .iter()
            .map(|c| (c.dialog.ids.call_id.clone(), c.index as usize))
            .collect();
        let by_number: HashMap<String, usize> = calls
            .iter()
            .map(|c| (c.number.clone(), c.index as usize))
            .collect();
        let mut by_operator_id: HashMap<String, usize> = HashMap::new();
        let deadline = t0
            + Duration::from_secs_f64(f64::from(plan.calls) / plan.cps)
            + plan.duration
            + ANSWER_TIMEOUT * 2;
        let mut last_progress = Instant::now();
        loop {
            let now = Instant::now();
            let stopping = stop.load(Ordering::Relaxed);
            if stopping && !*self.media_stop.borrow() {
                let _ = self.media_stop.send(true);
            }
            if calls.iter().all(|c| c.phase == Phase::Done) {
                break;
            }
            if now > deadline {
                for c in calls.iter_mut().filter(|c| c.phase != Phase::Done) {
                    c.failure
                        .get_or_insert_with(|| "no end within the run's time".into());
                    c.phase = Phase::Done;
                }
                break;
            }
            for c in calls.iter_mut() {
                match c.phase {
                    Phase::Waiting if stopping => {
                        c.failure = Some("not placed (stopped)".into());
                        c.phase = Phase::Done;
                    }
                    Phase::Waiting if now >= c.invite_at => {
                        let offer = sdp(
                            CLOUD_SIP.ip(),
                            CLOUD_MEDIA_PORT + 2 * c.index as u16,
                            Some(&c.cloud_key),
                        );
                        let invite = c.dialog.invite(
                            &mut ids,
                            "<sip:+4930100@198.18.10.2:5061;transport=tls>",
                            offer,
                        );
                        self.cloud.send(self.conn()?, &invite)?;
                        c.invite_at = now;
                        c.phase = Phase::Calling;
                    }
                    Phase::Calling if now > c.invite_at + ANSWER_TIMEOUT => {
                        c.failure = Some("no answer (timeout)".into());
                        c.phase = Phase::Done;
                    }
                    Phase::Talking => {
                        let end = c.media_end.expect("set when answered");
                        if stopping && now + media::GRACE < end {
                            c.media_end = Some(now);
                        } else if now >= end + media::GRACE {
                            self.hang_up(c, &mut ids)?;
                        }
                    }
                    Phase::HangingUp if c.bye_answered && c.bye_received => c.phase = Phase::Done,
                    _ => {}
                }
            }
            // Signalling from both sides.
            while let Some(r) = self.cloud.poll(Duration::ZERO) {
                self.on_cloud(r, &mut calls, &by_cloud_id, &mut ids, &runtime, plan)?;
            }
            while let Some(r) = self.operator.poll(Duration::ZERO) {
                self.on_operator(r, &mut calls, &by_number, &mut by_operator_id, plan)?;
            }
            if last_progress.elapsed() >= Duration::from_secs(1) {
                last_progress = Instant::now();
                progress(&Progress::of(&calls, t0));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        progress(&Progress::of(&calls, t0));
        let mut outcomes = Vec::new();
        for c in calls {
            let mut cloud = LegResult::default();
            let mut operator = LegResult::default();
            for h in c.media {
                let (side, r) = runtime
                    .block_on(h)
                    .map_err(|e| anyhow!("a media task failed: {e}"))??;
                match side {
                    Side::Cloud => cloud = r,
                    Side::Operator => operator = r,
                }
            }
            outcomes.push(CallOutcome {
                index: c.index,
                number: c.number,
                answered: c.media_end.is_some(),
                failure: c.failure,
                hung_up_by: c.media_end.map(|_| c.hangup_by),
                ended_cleanly: c.bye_answered && c.bye_received,
                cloud,
                operator,
            });
        }
        Ok(outcomes)
    }

    fn hang_up(&mut self, c: &mut Call, ids: &mut Ids) -> Result<()> {
        match c.hangup_by {
            Side::Cloud => {
                let bye = c.dialog.request(ids, Method::Bye);
                self.cloud.send(self.conn()?, &bye)?;
            }
            Side::Operator => {
                let op = c
                    .operator
                    .as_mut()
                    .ok_or_else(|| anyhow!("no operator leg"))?;
                let d = op
                    .bye
                    .as_mut()
                    .ok_or_else(|| anyhow!("no operator dialog"))?;
                let bye = d.request(ids, Method::Bye);
                self.operator.send(op.invite.conn, &bye)?;
            }
        }
        c.phase = Phase::HangingUp;
        Ok(())
    }

    fn on_cloud(
        &mut self,
        r: Received,
        calls: &mut [Call],
        by_id: &HashMap<String, usize>,
        ids: &mut Ids,
        runtime: &tokio::runtime::Runtime,
        plan: &Plan,
    ) -> Result<()> {
        let Some(&i) = r.msg.call_id().ok().and_then(|id| by_id.get(id)) else {
            return Ok(());
        };
        let c = &mut calls[i];
        match (r.msg.method(), r.msg.status()) {
            (Some(Method::Bye), _) => {
                self.cloud.respond(&r, 200, "OK", None, None, None)?;
                c.bye_received = true;
            }
            (Some(_), _) => {
                self.cloud.respond(&r, 200, "OK", None, None, None)?;
            }
            (None, Some(status)) => {
                let method = r.msg.cseq().map(|c| c.method).ok();
                if method == Some(Method::Bye) {
                    c.bye_answered = status == 200;
                    if status != 200 {
                        c.failure = Some(format!("BYE answered {status}"));
                    }
                } else if method == Some(Method::Invite) && c.phase == Phase::Calling {
                    if status < 200 {
                        return Ok(());
                    }
                    if status >= 300 {
                        c.failure = Some(format!("{status} {}", reason(&r.msg)));
                        c.phase = Phase::Done;
                        return Ok(());
                    }
                    c.dialog.established(&r.msg);
                    self.cloud.send(self.conn()?, &c.dialog.ack(ids))?;
                    self.start_media(c, &r.msg, runtime, plan)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Both legs' media, once the cloud side has the answer (the operator side answered
    /// before it).
    fn start_media(
        &mut self,
        c: &mut Call,
        answer: &Message,
        runtime: &tokio::runtime::Runtime,
        plan: &Plan,
    ) -> Result<()> {
        let (cloud_remote, relay_cloud_key) = media_of(&answer.body)?;
        let op = c
            .operator
            .as_ref()
            .ok_or_else(|| anyhow!("call {} answered before the operator side saw it", c.number))?;
        let end = Instant::now() + plan.duration;
        c.media_end = Some(end);
        c.phase = Phase::Talking;
        let cloud = LegMedia {
            socket: bind(
                &self.net.alice,
                SocketAddr::new(CLOUD_SIP.ip(), CLOUD_MEDIA_PORT + 2 * c.index as u16),
            )?,
            remote: cloud_remote,
            send_key: Some(sdes(&c.cloud_key)?),
            receive_key: relay_cloud_key,
            call: c.index,
            dir: Direction::CloudToOperator,
            end,
            stop: self.media_stop.subscribe(),
        };
        let operator = LegMedia {
            socket: bind(
                &self.net.bob,
                SocketAddr::new(OPERATOR_SIP.ip(), OPERATOR_MEDIA_PORT + 2 * c.index as u16),
            )?,
            remote: op.relay.0,
            send_key: op.own_key.as_deref().map(sdes).transpose()?,
            receive_key: op.relay.1.clone(),
            call: c.index,
            dir: Direction::OperatorToCloud,
            end,
            stop: self.media_stop.subscribe(),
        };
        c.media
            .push(runtime.spawn(async move { media::run(cloud).await.map(|r| (Side::Cloud, r)) }));
        c.media.push(
            runtime.spawn(async move { media::run(operator).await.map(|r| (Side::Operator, r)) }),
        );
        Ok(())
    }

    fn on_operator(
        &mut self,
        r: Received,
        calls: &mut [Call],
        by_number: &HashMap<String, usize>,
        by_id: &mut HashMap<String, usize>,
        plan: &Plan,
    ) -> Result<()> {
        let call_id = r.msg.call_id().unwrap_or_default().to_owned();
        match (r.msg.method(), r.msg.status()) {
            (Some(Method::Invite), _) if !by_id.contains_key(&call_id) => {
                let user = r
                    .msg
                    .request_uri()
                    .and_then(|u| u.as_sip())
                    .and_then(|u| u.user())
                    .unwrap_or_default()
                    .to_owned();
                let Some(&i) = by_number.get(&user) else {
                    self.operator
                        .respond(&r, 404, "Not Found", Some("op"), None, None)?;
                    return Ok(());
                };
                by_id.insert(call_id, i);
                let c = &mut calls[i];
                let relay = media_of(&r.msg.body)?;
                let own_key = plan.operator_srtp.then(msg::fresh_key);
                let port = OPERATOR_MEDIA_PORT + 2 * c.index as u16;
                let answer = sdp(OPERATOR_SIP.ip(), port, own_key.as_deref());
                let contact = format!(
                    "<sip:{}@{}:5061;transport=tls>",
                    c.number,
                    OPERATOR_SIP.ip()
                );
                let tag = format!("op{}", c.index);
                self.operator
                    .respond(&r, 180, "Ringing", Some(&tag), Some(&contact), None)?;
                self.operator
                    .respond(&r, 200, "OK", Some(&tag), Some(&contact), Some(&answer))?;
                let bye = Dialog {
                    ids: msg::DialogIds {
                        call_id: r.msg.call_id().unwrap_or_default().to_owned(),
                        from: format!(
                            "{};tag={tag}",
                            r.msg.headers.get(StdHeader::To).unwrap_or_default()
                        ),
                        to: r
                            .msg
                            .headers
                            .get(StdHeader::From)
                            .unwrap_or_default()
                            .to_owned(),
                    },
                    target: sip_peer::contact_uri(&r.msg)
                        .ok_or_else(|| anyhow!("an INVITE without Contact"))?,
                    via_host: format!("{}:5061", OPERATOR_SIP.ip()),
                    cseq: 100,
                };
                c.operator = Some(OperatorLeg {
                    invite: r,
                    relay,
                    own_key,
                    bye: Some(bye),
                });
            }
            (Some(Method::Ack), _) => {}
            (Some(Method::Bye), _) => {
                self.operator.respond(&r, 200, "OK", None, None, None)?;
                if let Some(&i) = by_id.get(&call_id) {
                    calls[i].bye_received = true;
                }
            }
            (Some(_), _) => {
                self.operator.respond(&r, 200, "OK", None, None, None)?;
            }
            (None, Some(status)) => {
                if let Some(&i) = by_id.get(&call_id) {
                    if r.msg.cseq().is_ok_and(|c| c.method == Method::Bye) {
                        calls[i].bye_answered = status == 200;
                        if status != 200 {
                            calls[i].failure = Some(format!("BYE answered {status}"));
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn reason(m: &Message) -> String {
    sip_peer::first_line(m)
        .split_whitespace()
        .skip(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where the run stands, for the live lines.
#[derive(Debug, Default)]
pub struct Progress {
    /// Seconds since the first call.
    pub elapsed_s: f64,
    /// Calls placed so far.
    pub placed: usize,
    /// Calls with media flowing.
    pub talking: usize,
    /// Calls over.
    pub done: usize,
    /// Calls that failed.
    pub failed: usize,
}

impl Progress {
    fn of(calls: &[Call], t0: Instant) -> Progress {
        Progress {
            elapsed_s: t0.elapsed().as_secs_f64(),
            placed: calls.iter().filter(|c| c.phase != Phase::Waiting).count(),
            talking: calls.iter().filter(|c| c.phase == Phase::Talking).count(),
            done: calls.iter().filter(|c| c.phase == Phase::Done).count(),
            failed: calls.iter().filter(|c| c.failure.is_some()).count(),
        }
    }
}

/// Shared flag set by SIGINT/SIGTERM.
pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    Ok(stop)
}
