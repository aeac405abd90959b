//! The B2BUA: SIP messages and time in, [`Action`]s out (send a message, program the data
//! plane, set a timer, record the end of a call). No sockets, no TLS, no clock.
//!
//! A call from trunk X to trunk Y is two dialogs: we are the UAS of leg a (X's INVITE) and
//! the UAC of leg b (our INVITE to Y's first peer). Leg b gets a new Call-ID, new tags, its
//! own CSeq space and our Via (RFC 3261 section 16 does not apply: this is not a proxy).
//!
//! Header rule, leg a to leg b: the caller's and the called user parts and the caller's
//! display name are carried over (From, To and the Request-URI are rebuilt around them with
//! our host and the peer's); `P-Asserted-Identity` is carried; Via, Route, Record-Route,
//! Contact, Call-ID, CSeq, tags, Max-Forwards (decremented), User-Agent, Allow, Supported and
//! the body's headers are the B2BUA's own; every other header field is dropped. Responses
//! carry their status code and reason phrase across; their header fields are rebuilt the
//! same way. A Teams trunk also gets `X-MS-SBC` and `user=phone` on E.164 numbers.
//!
//! Data-plane programming comes before the message it guards: [`Action::Program`] carries
//! the actions to run once the data plane accepted the change (`then`); if it refused, the
//! shell calls [`B2bua::program_failed`] instead, and the answer never leaves.

use std::collections::HashMap;
use std::net::SocketAddr;

use relay_session::{CallSpec, MediaSpec};
use relay_sip::sdp::SessionDescription;
use relay_sip::{HeaderName, Limits, Message, Method, StdHeader, Transport, Uri};

mod ending;
pub mod health;
mod invite;
pub mod persist;
pub(crate) mod refer;
pub(crate) mod reinvite;
mod response;
pub mod session_timer;

use crate::call::{
    add, dialog_request, set, set_sdp, Call, CallKey, Destination, Dialog, FlowId, Leg, Phase,
    ALLOW,
};
use crate::config::{B2buaConfig, Profile};
use crate::ids::{self, IdSource, OUR_BRANCH_MARK};
use crate::media::{anchor_answer, anchor_offer, KeySource, OfferError};
use crate::ports::PortAllocator;

/// A flow a message arrived on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    /// The shell's identifier of the connection or UDP association.
    pub id: FlowId,
    /// Its transport.
    pub transport: Transport,
    /// The peer's address.
    pub remote: SocketAddr,
}

/// A timer the shell sets and hands back.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TimerKey {
    /// No final response from b to INVITE attempt `1` of call `0` (Timer B).
    InviteTimeout(CallKey, u32),
    /// Resend what [`B2bua`] keeps under this id (UDP retransmissions).
    Retransmit(u64),
    /// Time to send OPTIONS to peer `1` of trunk `0`.
    OptionsPing(usize, usize),
    /// No answer to the OPTIONS of this branch.
    OptionsTimeout(String),
    /// Time to check that call `0` still has media.
    MediaCheck(CallKey),
    /// The transfer target of call `0` did not answer in time.
    TransferTimeout(CallKey),
    /// Call `0`'s session timer on leg `1` (generation `2`): refresh or expiry (RFC 4028).
    SessionTimer(CallKey, Leg, u32),
}

/// A change to the data plane.
#[derive(Clone, Debug)]
pub enum ProgramOp {
    /// Install a call.
    Add(CallSpec),
    /// Replace a call's media.
    Modify(CallSpec),
    /// Remove a call (its final counters go into its record).
    Remove(String),
}

/// Who ended a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndedBy {
    /// Leg a (BYE or CANCEL from the caller).
    Caller,
    /// Leg b (BYE or a failure response from the callee's side).
    Callee,
    /// The B2BUA itself (timeout, data plane failure, bad answer).
    Relay,
}

/// The end of a call, for its record. Holds personal data (numbers): records are encrypted
/// by the CDR store, and logs must mask them.
#[derive(Clone, Debug)]
pub struct CallEnd {
    /// The call's data-plane id.
    pub dataplane_id: String,
    /// Leg a's trunk name.
    pub a_trunk: String,
    /// Leg b's trunk name.
    pub b_trunk: String,
    /// Leg a's Call-ID.
    pub a_call_id: String,
    /// Leg b's Call-ID.
    pub b_call_id: String,
    /// The caller.
    pub caller: String,
    /// The called number.
    pub callee: String,
    /// When the INVITE arrived.
    pub setup_ns: u64,
    /// When b answered.
    pub answer_ns: Option<u64>,
    /// When it ended.
    pub end_ns: u64,
    /// Who ended it.
    pub ended_by: EndedBy,
    /// The final status towards a (200 for an answered call).
    pub status: u16,
    /// Why, in words.
    pub reason: String,
    /// For a call restored after a restart: its setup and answer times, Unix ms (its
    /// `setup_ns` and `answer_ns` are then meaningless).
    pub restored_times: Option<(i64, Option<i64>)>,
    /// SRTP suites towards a and b per stream (`None`: plain RTP).
    pub suites: Vec<(Option<String>, Option<String>)>,
}

/// What the shell does.
#[derive(Clone, Debug)]
pub enum Action {
    /// Send a message.
    Send {
        /// Where.
        to: Destination,
        /// What.
        message: Message,
    },
    /// Program the data plane, then run `then` (or call [`B2bua::program_failed`]).
    Program {
        /// The call.
        call: CallKey,
        /// The change.
        op: ProgramOp,
        /// What follows once the data plane accepted it.
        then: Vec<Action>,
    },
    /// Call [`B2bua::on_timer`] with `key` at `at_ns`.
    Timer {
        /// The timer.
        key: TimerKey,
        /// When.
        at_ns: u64,
    },
    /// A call ended: write its record.
    Ended(Box<CallEnd>),
    /// Keep this record of a confirmed call until [`Action::Forget`] (so the call survives a
    /// restart of this process).
    Persist(Box<persist::PersistedCall>),
    /// The call with this data-plane id ended: its kept record goes.
    Forget(String),
    /// Read the call's counters from the data plane and hand them to [`B2bua::on_media`].
    QueryMedia {
        /// The call.
        call: CallKey,
        /// Its id in the data plane.
        dataplane_id: String,
    },
}

/// A UDP retransmission in progress (RFC 3261 section 17, Timers A, E, G).
#[derive(Clone, Debug)]
struct Retransmit {
    to: Destination,
    message: Message,
    interval_ns: u64,
    until_ns: u64,
    /// Stops when this call's phase is past it (2xx to a: on ACK).
    call: Option<CallKey>,
}

/// A call in progress as operators see it.
#[derive(Clone, Debug)]
pub struct CallSummary {
    /// Its data-plane id.
    pub dataplane_id: String,
    /// Leg a's trunk.
    pub a_trunk: String,
    /// Leg b's trunk.
    pub b_trunk: String,
    /// The caller (personal data: mask before showing or logging).
    pub caller: String,
    /// The callee (personal data).
    pub callee: String,
    /// Where it is.
    pub phase: Phase,
    /// On hold.
    pub held: bool,
    /// When its INVITE arrived.
    pub setup_ns: u64,
}

/// Counters for metrics.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// INVITEs that started a call.
    pub calls_attempted: u64,
    /// Calls answered.
    pub calls_answered: u64,
    /// Calls that failed, by final status.
    pub calls_failed: HashMap<u16, u64>,
    /// Requests refused before a call existed (4xx/5xx by status).
    pub refused: HashMap<u16, u64>,
}

/// The B2BUA.
pub struct B2bua {
    config: B2buaConfig,
    ports: PortAllocator,
    ids: Box<dyn IdSource + Send>,
    keys: Box<dyn KeySource + Send>,
    calls: HashMap<CallKey, Call>,
    next_key: CallKey,
    /// a's INVITE branch -> call (CANCEL, retransmissions).
    by_a_branch: HashMap<String, CallKey>,
    /// Our INVITE branch towards b -> call (responses).
    by_b_branch: HashMap<String, CallKey>,
    /// The wall clock (Unix ms) at time 0, for records kept over a restart.
    wall_ms_at_zero: i64,
    /// OPTIONS in flight: branch -> (trunk, peer, sent at).
    pings: HashMap<String, (usize, usize, u64)>,
    /// Each trunk peer's health from its OPTIONS answers.
    health: HashMap<(usize, usize), health::PeerHealth>,
    /// Our INVITE branch of a transfer's new leg -> call.
    by_transfer_branch: HashMap<String, CallKey>,
    /// Our re-INVITE/UPDATE branch -> call (responses to relayed offers).
    by_reoffer_branch: HashMap<String, CallKey>,
    /// (Call-ID, our tag) -> call and leg, for in-dialog requests.
    dialogs: HashMap<(String, String), (CallKey, Leg)>,
    retransmits: HashMap<u64, Retransmit>,
    next_retransmit: u64,
    /// Counters for metrics.
    pub counters: Counters,
}

impl std::fmt::Debug for B2bua {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("B2bua")
            .field("calls", &self.calls.len())
            .finish_non_exhaustive()
    }
}

/// The final responses to a failed INVITE after which the next peer of the trunk is tried.
const FAIL_OVER: [u16; 3] = [408, 503, 504];

/// RFC 3261 T2: the longest retransmission interval of non-INVITE requests and 2xx.
const T2_NS: u64 = 4_000_000_000;

fn user_of(uri: &Uri) -> String {
    match uri {
        Uri::Sip(s) => s.user().unwrap_or_default().to_owned(),
        Uri::Tel(t) => t.rest().split(';').next().unwrap_or_default().to_owned(),
        Uri::Other(o) => o.rest().to_owned(),
    }
}

fn status_reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        420 => "Bad Extension",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

impl B2bua {
    /// A B2BUA over `config`, placing media with `ports`.
    pub fn new(
        config: B2buaConfig,
        ports: PortAllocator,
        ids: Box<dyn IdSource + Send>,
        keys: Box<dyn KeySource + Send>,
    ) -> B2bua {
        B2bua {
            config,
            ports,
            ids,
            keys,
            calls: HashMap::new(),
            next_key: 1,
            by_a_branch: HashMap::new(),
            by_b_branch: HashMap::new(),
            by_reoffer_branch: HashMap::new(),
            by_transfer_branch: HashMap::new(),
            pings: HashMap::new(),
            wall_ms_at_zero: 0,
            health: HashMap::new(),
            dialogs: HashMap::new(),
            retransmits: HashMap::new(),
            next_retransmit: 1,
            counters: Counters::default(),
        }
    }

    /// Takes a new configuration (SIGHUP) with the same trunks in the same order: calls in
    /// progress keep their dialogs and media; new calls follow the new settings.
    pub fn reconfigure(&mut self, config: B2buaConfig) {
        debug_assert_eq!(config.trunks.len(), self.config.trunks.len());
        self.config = config;
    }

    /// The configuration.
    pub fn config(&self) -> &B2buaConfig {
        &self.config
    }

    /// Calls in progress.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// The calls in progress, for operators (`relayctl calls`).
    pub fn call_summaries(&self) -> Vec<CallSummary> {
        let mut v: Vec<CallSummary> = self
            .calls
            .values()
            .map(|c| CallSummary {
                dataplane_id: c.dataplane_id.clone(),
                a_trunk: self.config.trunks[c.a.trunk].name.clone(),
                b_trunk: self.config.trunks[c.b.trunk].name.clone(),
                caller: c.caller.clone(),
                callee: c.callee.clone(),
                phase: c.phase,
                held: c.held,
                setup_ns: c.setup_ns,
            })
            .collect();
        v.sort_by_key(|c| c.setup_ns);
        v
    }

    /// Media ports in use.
    pub fn ports_in_use(&self) -> usize {
        self.ports.in_use()
    }

    /// A message arrived on `flow`.
    pub fn on_message(&mut self, flow: &Flow, message: Message, now_ns: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if message.is_request() {
            self.on_request(flow, message, now_ns, &mut out);
        } else {
            self.on_response(message, now_ns, &mut out);
        }
        out
    }

    /// A malformed request arrived on `flow`: answer it (the parser's status) if it can be.
    pub fn reject_malformed(
        flow: &Flow,
        request: &Message,
        status: u16,
        reason: &str,
    ) -> Option<Action> {
        let response = Message::response_to(request, status, reason).ok()?;
        Some(Action::Send {
            to: Destination::Flow(flow.id),
            message: response,
        })
    }

    fn via(&self, trunk: usize) -> String {
        let t = &self.config.trunks[trunk];
        let transport = t
            .peers
            .first()
            .map_or(Transport::Udp, |p| p.transport.clone());
        format!(
            "SIP/2.0/{transport} {}:{}",
            t.local_host,
            t.local_signalling.port()
        )
    }

    fn contact(&self, trunk: usize, user: Option<&str>) -> String {
        let t = &self.config.trunks[trunk];
        let transport = t
            .peers
            .first()
            .map_or(Transport::Udp, |p| p.transport.clone());
        let user = user.map(|u| format!("{u}@")).unwrap_or_default();
        let scheme = "sip";
        format!(
            "<{scheme}:{user}{}:{};transport={}>",
            t.local_host,
            t.local_signalling.port(),
            transport.as_str().to_ascii_lowercase()
        )
    }

    fn respond(
        &mut self,
        flow: &Flow,
        request: &Message,
        code: u16,
        extra: &[(StdHeader, String)],
        out: &mut Vec<Action>,
    ) {
        let Ok(mut r) = Message::response_to(request, code, status_reason(code)) else {
            return;
        };
        if code > 100 && request.to_addr().is_ok_and(|t| t.tag().is_none()) {
            let tag = ids::tag(self.ids.as_mut());
            let _ = r.add_to_tag(&tag);
        }
        for (h, v) in extra {
            add(&mut r, *h, v.clone());
        }
        add(&mut r, StdHeader::Server, self.config.product.clone());
        if code >= 300 {
            *self.counters.refused.entry(code).or_default() += 1;
        }
        out.push(Action::Send {
            to: Destination::Flow(flow.id),
            message: r,
        });
    }

    pub(super) fn on_request(
        &mut self,
        flow: &Flow,
        req: Message,
        now_ns: u64,
        out: &mut Vec<Action>,
    ) {
        let method = req.method().cloned().expect("a request");
        let has_to_tag = req.to_addr().is_ok_and(|t| t.tag().is_some());
        match method {
            Method::Ack => self.on_ack(&req, now_ns, out),
            Method::Cancel => self.on_cancel(flow, &req, now_ns, out),
            Method::Invite if !has_to_tag => self.on_invite(flow, req, now_ns, out),
            Method::Bye => self.on_bye(flow, &req, now_ns, out),
            Method::Options if !has_to_tag => {
                let extra = [
                    (StdHeader::Allow, ALLOW.to_owned()),
                    (StdHeader::Accept, "application/sdp".to_owned()),
                ];
                self.respond(flow, &req, 200, &extra, out);
            }
            Method::Refer if has_to_tag => match self.dialog_of(&req) {
                Some((key, leg)) => self.on_refer(flow, req, leg, key, now_ns, out),
                None => self.respond(flow, &req, 481, &[], out),
            },
            Method::Invite | Method::Update if has_to_tag => match self.dialog_of(&req) {
                Some((key, leg)) => self.on_reoffer(flow, req, leg, key, now_ns, out),
                None => self.respond(flow, &req, 481, &[], out),
            },
            _ if has_to_tag => {
                if self.dialog_of(&req).is_some() {
                    // re-INVITE, UPDATE, INFO, REFER... within a dialog: not yet relayed.
                    self.respond(
                        flow,
                        &req,
                        501,
                        &[(StdHeader::Allow, ALLOW.to_owned())],
                        out,
                    );
                } else {
                    self.respond(flow, &req, 481, &[], out);
                }
            }
            _ => self.respond(
                flow,
                &req,
                405,
                &[(StdHeader::Allow, ALLOW.to_owned())],
                out,
            ),
        }
    }

    pub(super) fn dialog_of(&self, req: &Message) -> Option<(CallKey, Leg)> {
        let call_id = req.call_id().ok()?;
        let to = req.to_addr().ok()?;
        let tag = to.tag()?;
        self.dialogs
            .get(&(call_id.to_owned(), tag.to_owned()))
            .copied()
    }
}

/// The reason phrase of a response.
trait StartReason {
    fn start_reason(&self) -> String;
}

impl StartReason for Message {
    fn start_reason(&self) -> String {
        match &self.start {
            relay_sip::StartLine::Response(s) => s.reason().to_owned(),
            relay_sip::StartLine::Request(_) => String::new(),
        }
    }
}
