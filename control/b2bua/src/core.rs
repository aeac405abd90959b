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
            dialogs: HashMap::new(),
            retransmits: HashMap::new(),
            next_retransmit: 1,
            counters: Counters::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &B2buaConfig {
        &self.config
    }

    /// Calls in progress.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
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

    fn on_request(&mut self, flow: &Flow, req: Message, now_ns: u64, out: &mut Vec<Action>) {
        let method = req.method().cloned().expect("a request");
        let has_to_tag = req.to_addr().is_ok_and(|t| t.tag().is_some());
        match method {
            Method::Ack => self.on_ack(&req, now_ns),
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

    fn dialog_of(&self, req: &Message) -> Option<(CallKey, Leg)> {
        let call_id = req.call_id().ok()?;
        let to = req.to_addr().ok()?;
        let tag = to.tag()?;
        self.dialogs
            .get(&(call_id.to_owned(), tag.to_owned()))
            .copied()
    }

    fn on_invite(&mut self, flow: &Flow, req: Message, now_ns: u64, out: &mut Vec<Action>) {
        let Ok(top) = req.top_via() else { return };
        let branch = top.branch().unwrap_or_default().to_owned();
        if let Some(&key) = self.by_a_branch.get(&branch) {
            // A retransmission: answer it again.
            if let Some(r) = self.calls.get(&key).and_then(|c| c.a_last_response.clone()) {
                out.push(Action::Send {
                    to: Destination::Flow(flow.id),
                    message: r,
                });
            }
            return;
        }
        // Cheap checks first: overload, origin, hops, loops, extensions.
        if self.calls.len() >= self.config.max_calls {
            return self.respond(flow, &req, 503, &[(StdHeader::RetryAfter, "5".into())], out);
        }
        let Some(a_trunk) = self.config.trunk_of(flow.remote.ip()) else {
            return self.respond(flow, &req, 403, &[], out);
        };
        let hops = req.max_forwards().ok().flatten().unwrap_or(70);
        //= https://www.rfc-editor.org/rfc/rfc3261#section-16.3
        //# If the request does not contain a Max-Forwards header field, this check is
        //# passed.  If the request contains a Max-Forwards header field with a field value
        //# greater than zero, the check is passed.
        if hops == 0 {
            return self.respond(flow, &req, 483, &[], out);
        }
        let ours = |v: &relay_sip::Via| {
            v.branch()
                .is_some_and(|b| b.starts_with(&format!("{}{OUR_BRANCH_MARK}", ids::BRANCH_COOKIE)))
                && self
                    .config
                    .trunks
                    .iter()
                    .any(|t| v.host.to_string() == t.local_host)
        };
        if req.vias().is_ok_and(|vs| vs.iter().any(ours)) {
            return self.respond(flow, &req, 482, &[], out);
        }
        //= https://www.rfc-editor.org/rfc/rfc3261#section-8.2.2.3
        //# If a UAS does not understand an option-tag listed in a Require header field, it
        //# MUST respond by generating a response with status code 420 (Bad Extension).
        if let Ok(unknown) = req.unsupported_requirements(&[]) {
            if !unknown.is_empty() {
                let list: Vec<&str> = unknown.iter().map(|t| t.as_str()).collect();
                return self.respond(
                    flow,
                    &req,
                    420,
                    &[(StdHeader::Unsupported, list.join(", "))],
                    out,
                );
            }
        }
        let Some(request_uri) = req.request_uri().cloned() else {
            return;
        };
        let callee = user_of(&request_uri);
        let Some(b_trunk) = self.config.route(a_trunk, &callee) else {
            return self.respond(flow, &req, 404, &[], out);
        };
        if self.config.trunks[b_trunk].peers.is_empty() {
            return self.respond(flow, &req, 503, &[], out);
        }
        // The offer: INVITE without SDP (offer in 200, answer in ACK) is not relayed yet.
        let is_sdp = req
            .content_type()
            .ok()
            .flatten()
            .is_some_and(|t| t.is_sdp());
        let offer = if is_sdp {
            SessionDescription::parse(&req.body, &Limits::default())
        } else {
            return self.respond(
                flow,
                &req,
                488,
                &[(
                    StdHeader::Warning,
                    "399 relay \"an offer is required in the INVITE\"".into(),
                )],
                out,
            );
        };
        let offer = match offer {
            Ok(o) => o,
            Err(e) => {
                return self.respond(
                    flow,
                    &req,
                    488,
                    &[(StdHeader::Warning, format!("399 relay \"{e}\""))],
                    out,
                );
            }
        };
        let a_cfg = self.config.trunks[a_trunk].clone();
        let b_cfg = self.config.trunks[b_trunk].clone();
        let mut taken = Vec::new();
        let ports = &mut self.ports;
        let mut allocate = |worker: Option<usize>| {
            let pair = match worker {
                None => ports.allocate(a_cfg.media_address, b_cfg.media_address, now_ns),
                Some(w) => ports.allocate_on(w, a_cfg.media_address, b_cfg.media_address, now_ns),
            }?;
            taken.push(pair);
            Ok(pair)
        };
        let anchored = anchor_offer(&offer, &a_cfg, &b_cfg, self.keys.as_mut(), &mut allocate);
        let (b_offer, offered) = match anchored {
            Ok(x) => x,
            Err(e) => {
                for p in taken {
                    self.ports.release(p, now_ns);
                }
                let code = if matches!(e, OfferError::Ports(_)) {
                    503
                } else {
                    488
                };
                return self.respond(
                    flow,
                    &req,
                    code,
                    &[(StdHeader::Warning, format!("399 relay \"{e}\""))],
                    out,
                );
            }
        };
        self.counters.calls_attempted += 1;
        // 100 Trying, then the call.
        self.respond(flow, &req, 100, &[], out);
        let key = self.next_key;
        self.next_key += 1;
        let from = req.from_addr().expect("parsed");
        let caller = user_of(&from.uri);
        let a_local_tag = ids::tag(self.ids.as_mut());
        let to_value = req
            .headers
            .get(StdHeader::To)
            .unwrap_or_default()
            .to_owned();
        let a = Dialog {
            trunk: a_trunk,
            to: Destination::Flow(flow.id),
            transport: flow.transport.clone(),
            call_id: req.call_id().unwrap_or_default().to_owned(),
            local: format!("{to_value};tag={a_local_tag}"),
            local_tag: a_local_tag,
            remote: req
                .headers
                .get(StdHeader::From)
                .unwrap_or_default()
                .to_owned(),
            remote_target: req.contact().ok().flatten().and_then(|c| match c {
                relay_sip::Contact::Addresses(a) => a.first().map(|n| n.uri.clone()),
                relay_sip::Contact::Wildcard => None,
            }),
            cseq: 0,
        };
        let b_call_id = ids::call_id(self.ids.as_mut(), &b_cfg.local_host);
        let b_local_tag = ids::tag(self.ids.as_mut());
        let peer = &b_cfg.peers[0];
        let teams = b_cfg.profile == Profile::Teams;
        let phone = |user: &str| {
            if teams && user.starts_with('+') {
                ";user=phone"
            } else {
                ""
            }
        };
        let display = from
            .display_name
            .as_ref()
            .map(|d| format!("\"{}\" ", d.replace(['"', '\\'], "")))
            .unwrap_or_default();
        let b = Dialog {
            trunk: b_trunk,
            to: Destination::Peer {
                trunk: b_trunk,
                peer: 0,
            },
            transport: peer.transport.clone(),
            call_id: b_call_id,
            local: format!(
                "{display}<sip:{caller}@{}{}>;tag={b_local_tag}",
                b_cfg.local_host,
                phone(&caller)
            ),
            local_tag: b_local_tag,
            remote: format!("<sip:{callee}@{}{}>", peer.host, phone(&callee)),
            remote_target: None,
            cseq: 0,
        };
        let dataplane_id = format!("c{}", self.ids.hex(8));
        let mut call = Call {
            key,
            dataplane_id,
            phase: Phase::Calling,
            a,
            b,
            a_invite: req,
            a_flow: flow.id,
            a_last_response: None,
            b_invite: Message::request(Method::Invite, request_uri),
            b_peer: 0,
            b_attempt: 0,
            b_offer,
            offered,
            a_answer: None,
            b_suites: Vec::new(),
            installed: None,
            cancelled: false,
            b_provisional: false,
            b_final: false,
            caller,
            callee,
            setup_ns: now_ns,
            answer_ns: None,
            sdp_version: 1,
        };
        self.by_a_branch.insert(branch, key);
        self.dialogs.insert(
            (call.a.call_id.clone(), call.a.local_tag.clone()),
            (key, Leg::A),
        );
        self.dialogs.insert(
            (call.b.call_id.clone(), call.b.local_tag.clone()),
            (key, Leg::B),
        );
        self.send_invite(&mut call, hops - 1, now_ns, out);
        self.calls.insert(key, call);
    }

    /// Sends (or re-sends, to the next peer) the INVITE of leg b.
    fn send_invite(&mut self, call: &mut Call, hops: u8, now_ns: u64, out: &mut Vec<Action>) {
        let b_cfg = &self.config.trunks[call.b.trunk];
        let peer = &b_cfg.peers[call.b_peer];
        let teams = b_cfg.profile == Profile::Teams;
        let mut uri = relay_sip::SipUri::new(
            false,
            relay_sip::Host::parse(&peer.host).expect("configured hosts are checked at start-up"),
            Some(peer.port),
        );
        let _ = uri.set_user(Some(&call.callee));
        if peer.transport != Transport::Udp {
            let _ = uri.set_param(
                "transport",
                Some(&peer.transport.as_str().to_ascii_lowercase()),
            );
        }
        if teams && call.callee.starts_with('+') {
            let _ = uri.set_param("user", Some("phone"));
        }
        call.b.to = Destination::Peer {
            trunk: call.b.trunk,
            peer: call.b_peer,
        };
        call.b.transport = peer.transport.clone();
        call.b.remote_target = Some(Uri::Sip(uri));
        call.b.remote = format!(
            "<sip:{}@{}{}>",
            call.callee,
            peer.host,
            if teams && call.callee.starts_with('+') {
                ";user=phone"
            } else {
                ""
            }
        );
        let branch = ids::branch(self.ids.as_mut());
        let via = self.via(call.b.trunk);
        let mut m = dialog_request(
            &mut call.b,
            Method::Invite,
            &via,
            &branch,
            &self.config.product,
        );
        set(&mut m, StdHeader::MaxForwards, hops.to_string());
        add(&mut m, StdHeader::Contact, self.contact(call.b.trunk, None));
        add(&mut m, StdHeader::Allow, ALLOW);
        if let Some(pai) = call.a_invite.headers.get(StdHeader::PAssertedIdentity) {
            add(&mut m, StdHeader::PAssertedIdentity, pai.to_owned());
        }
        if teams {
            add(
                &mut m,
                HeaderName::parse("X-MS-SBC").expect("a token"),
                self.config.product.clone(),
            );
        }
        set_sdp(&mut m, &call.b_offer);
        call.b_attempt += 1;
        call.b_provisional = false;
        self.by_b_branch.insert(branch, call.key);
        call.b_invite = m.clone();
        out.push(Action::Send {
            to: call.b.to.clone(),
            message: m.clone(),
        });
        out.push(Action::Timer {
            key: TimerKey::InviteTimeout(call.key, call.b_attempt),
            at_ns: now_ns + self.config.invite_timeout_ns,
        });
        if call.b.transport == Transport::Udp {
            // Timer A: retransmit until a response, doubling from T1.
            self.retransmit(
                call.b.to.clone(),
                m,
                self.config.t1_ns,
                now_ns,
                now_ns + self.config.invite_timeout_ns,
                Some(call.key),
                out,
            );
        }
    }

    /// Resends `message` to `to` at `interval_ns` after `now_ns`, doubling up to T2, until
    /// `until_ns` or until the call's state stops it.
    #[allow(clippy::too_many_arguments)]
    fn retransmit(
        &mut self,
        to: Destination,
        message: Message,
        interval_ns: u64,
        now_ns: u64,
        until_ns: u64,
        call: Option<CallKey>,
        out: &mut Vec<Action>,
    ) -> u64 {
        let id = self.next_retransmit;
        self.next_retransmit += 1;
        out.push(Action::Timer {
            key: TimerKey::Retransmit(id),
            at_ns: now_ns + interval_ns,
        });
        self.retransmits.insert(
            id,
            Retransmit {
                to,
                message,
                interval_ns,
                until_ns,
                call,
            },
        );
        id
    }

    /// A timer the shell set fired.
    pub fn on_timer(&mut self, key: TimerKey, now_ns: u64) -> Vec<Action> {
        let mut out = Vec::new();
        match key {
            TimerKey::Retransmit(id) => {
                let Some(mut r) = self.retransmits.remove(&id) else {
                    return out;
                };
                let stop = r.call.and_then(|k| self.calls.get(&k)).is_none_or(|c| {
                    // INVITE to b: until any response; 2xx to a: until ACK.
                    c.b_provisional || c.b_final && c.phase != Phase::Answered
                });
                if stop || now_ns >= r.until_ns {
                    return out;
                }
                out.push(Action::Send {
                    to: r.to.clone(),
                    message: r.message.clone(),
                });
                r.interval_ns = (r.interval_ns * 2).min(T2_NS);
                out.push(Action::Timer {
                    key: TimerKey::Retransmit(id),
                    at_ns: now_ns + r.interval_ns,
                });
                self.retransmits.insert(id, r);
            }
            TimerKey::InviteTimeout(key, attempt) => {
                let Some(mut call) = self.calls.remove(&key) else {
                    return out;
                };
                if call.b_attempt == attempt && !call.b_final && call.phase == Phase::Calling {
                    if call.b_provisional {
                        self.cancel_b(&mut call, &mut out);
                    }
                    self.fail_over_or_end(
                        call,
                        408,
                        "no final response",
                        EndedBy::Relay,
                        now_ns,
                        &mut out,
                    );
                    return out;
                }
                self.calls.insert(key, call);
            }
        }
        out
    }

    fn cancel_b(&mut self, call: &mut Call, out: &mut Vec<Action>) {
        let invite = &call.b_invite;
        let mut c = Message::request(
            Method::Cancel,
            invite.request_uri().cloned().expect("a request"),
        );
        for h in [
            StdHeader::Via,
            StdHeader::From,
            StdHeader::To,
            StdHeader::CallId,
        ] {
            if let Some(v) = invite.headers.get(h) {
                add(&mut c, h, v.to_owned());
            }
        }
        add(&mut c, StdHeader::MaxForwards, "70");
        add(&mut c, StdHeader::CSeq, format!("{} CANCEL", call.b.cseq));
        out.push(Action::Send {
            to: call.b.to.clone(),
            message: c,
        });
    }

    /// Tries b's trunk's next peer if `status` allows, else ends the call with `status`
    /// towards a.
    fn fail_over_or_end(
        &mut self,
        mut call: Call,
        status: u16,
        reason: &str,
        by: EndedBy,
        now_ns: u64,
        out: &mut Vec<Action>,
    ) {
        let peers = self.config.trunks[call.b.trunk].peers.len();
        if FAIL_OVER.contains(&status)
            && !call.cancelled
            && call.b_peer + 1 < peers
            && call.phase == Phase::Calling
        {
            call.b_peer += 1;
            call.b_final = false;
            let hops = call
                .a_invite
                .max_forwards()
                .ok()
                .flatten()
                .unwrap_or(70)
                .saturating_sub(1)
                .max(1);
            self.send_invite(&mut call, hops, now_ns, out);
            self.calls.insert(call.key, call);
            return;
        }
        self.final_to_a(&mut call, status, out);
        self.end(call, status, reason, by, now_ns, out);
    }

    fn final_to_a(&mut self, call: &mut Call, status: u16, out: &mut Vec<Action>) {
        if call.cancelled
            || call
                .a_last_response
                .as_ref()
                .is_some_and(|r| r.status().is_some_and(|s| s >= 200))
        {
            return;
        }
        let Ok(mut r) = Message::response_to(&call.a_invite, status, status_reason(status)) else {
            return;
        };
        let _ = r.add_to_tag(&call.a.local_tag);
        add(&mut r, StdHeader::Server, self.config.product.clone());
        call.a_last_response = Some(r.clone());
        *self.counters.calls_failed.entry(status).or_default() += 1;
        out.push(Action::Send {
            to: Destination::Flow(call.a_flow),
            message: r,
        });
    }

    /// Ends `call`: removes it from the data plane if it was installed, gives its ports back
    /// after their quarantine, and records it.
    fn end(
        &mut self,
        call: Call,
        status: u16,
        reason: &str,
        by: EndedBy,
        now_ns: u64,
        out: &mut Vec<Action>,
    ) {
        for p in call.offered.pairs() {
            self.ports.release(p, now_ns);
        }
        self.by_a_branch.retain(|_, k| *k != call.key);
        self.by_b_branch.retain(|_, k| *k != call.key);
        self.dialogs.retain(|_, (k, _)| *k != call.key);
        let suites = call
            .offered
            .a_suites()
            .into_iter()
            .enumerate()
            .map(|(i, a)| (a, call.b_suites.get(i).cloned().flatten()))
            .collect();
        let end = Action::Ended(Box::new(CallEnd {
            dataplane_id: call.dataplane_id.clone(),
            a_trunk: self.config.trunks[call.a.trunk].name.clone(),
            b_trunk: self.config.trunks[call.b.trunk].name.clone(),
            a_call_id: call.a.call_id.clone(),
            b_call_id: call.b.call_id.clone(),
            caller: call.caller.clone(),
            callee: call.callee.clone(),
            setup_ns: call.setup_ns,
            answer_ns: call.answer_ns,
            end_ns: now_ns,
            ended_by: by,
            status,
            reason: reason.to_owned(),
            suites,
        }));
        if call.installed.is_some() {
            out.push(Action::Program {
                call: call.key,
                op: ProgramOp::Remove(call.dataplane_id.clone()),
                then: vec![end],
            });
        } else {
            out.push(end);
        }
    }

    fn on_response(&mut self, resp: Message, now_ns: u64, out: &mut Vec<Action>) {
        let Ok(top) = resp.top_via() else { return };
        let Some(branch) = top.branch() else { return };
        let Ok(cseq) = resp.cseq() else { return };
        let code = resp.status().unwrap_or(500);
        if cseq.method != Method::Invite {
            // BYE and CANCEL responses need nothing more (their retransmissions stop).
            self.retransmits.retain(|_, r| {
                r.message
                    .top_via()
                    .ok()
                    .and_then(|v| v.branch().map(str::to_owned))
                    .as_deref()
                    != Some(branch)
            });
            return;
        }
        let Some(&key) = self.by_b_branch.get(branch) else {
            return;
        };
        let Some(mut call) = self.calls.remove(&key) else {
            return;
        };
        if call
            .b_invite
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned))
            .as_deref()
            != Some(branch)
        {
            // A late response to an earlier attempt (another peer): ACK a final one.
            if code >= 300 {
                out.push(Action::Send {
                    to: call.b.to.clone(),
                    message: self.ack_failure(&call, &resp),
                });
            }
            self.calls.insert(key, call);
            return;
        }
        let to_tag = resp.to_addr().ok().and_then(|t| t.tag().map(str::to_owned));
        if let Some(tag) = &to_tag {
            if code > 100 && code < 300 {
                call.b.set_remote_tag(tag);
            }
        }
        if let Ok(Some(relay_sip::Contact::Addresses(addrs))) = resp.contact() {
            if let Some(first) = addrs.first() {
                if code < 300 {
                    call.b.remote_target = Some(first.uri.clone());
                }
            }
        }
        match code {
            100 => {
                call.b_provisional = true;
                self.calls.insert(key, call);
            }
            101..=199 => {
                call.b_provisional = true;
                if call.cancelled {
                    self.cancel_b(&mut call, out);
                    self.calls.insert(key, call);
                    return;
                }
                self.provisional(call, &resp, code, now_ns, out);
            }
            200..=299 => {
                if call.b_final {
                    // A retransmitted 200: ACK it again.
                    let ack = self.ack_success(&mut call);
                    out.push(Action::Send {
                        to: call.b.to.clone(),
                        message: ack,
                    });
                    self.calls.insert(key, call);
                    return;
                }
                call.b_final = true;
                let ack = self.ack_success(&mut call);
                out.push(Action::Send {
                    to: call.b.to.clone(),
                    message: ack,
                });
                if call.cancelled || call.phase == Phase::Ending {
                    // a gave up while b answered: end b's dialog too.
                    self.bye(&mut call, Leg::B, out);
                    self.calls.insert(key, call);
                    return;
                }
                self.answered(call, &resp, now_ns, out);
            }
            _ => {
                call.b_final = true;
                out.push(Action::Send {
                    to: call.b.to.clone(),
                    message: self.ack_failure(&call, &resp),
                });
                if call.cancelled || call.phase == Phase::Ending {
                    // The 487 to our CANCEL: the call already ended towards a.
                    return;
                }
                let reason = resp.start_reason();
                self.fail_over_or_end(call, code, &reason, EndedBy::Callee, now_ns, out);
            }
        }
    }

    /// b's answer (in a 18x or 200) for a, and the data plane's media; `None` (and the call
    /// failed) if it is unusable.
    fn answer_for_a(
        &mut self,
        call: &mut Call,
        resp: &Message,
    ) -> Result<Option<(SessionDescription, Vec<MediaSpec>)>, String> {
        let has_sdp = resp
            .content_type()
            .ok()
            .flatten()
            .is_some_and(|t| t.is_sdp())
            && !resp.body.is_empty();
        if !has_sdp {
            return Ok(None);
        }
        let answer =
            SessionDescription::parse(&resp.body, &Limits::default()).map_err(|e| e.to_string())?;
        let a_cfg = &self.config.trunks[call.a.trunk];
        let b_cfg = &self.config.trunks[call.b.trunk];
        let answered = anchor_answer(&answer, &call.offered, a_cfg, b_cfg, call.sdp_version)
            .map_err(|e| e.to_string())?;
        call.b_suites = answered.b_suites;
        Ok(Some((answered.answer, answered.media)))
    }

    fn response_to_a(
        &self,
        call: &Call,
        code: u16,
        reason: &str,
        sdp: Option<&SessionDescription>,
    ) -> Message {
        let mut r = Message::response_to(&call.a_invite, code, reason)
            .or_else(|_| Message::response_to(&call.a_invite, code, status_reason(code)))
            .expect("a's INVITE was parsed");
        let _ = r.add_to_tag(&call.a.local_tag);
        add(&mut r, StdHeader::Contact, self.contact(call.a.trunk, None));
        add(&mut r, StdHeader::Server, self.config.product.clone());
        if (200..300).contains(&code) {
            add(&mut r, StdHeader::Allow, ALLOW);
        }
        if let Some(sdp) = sdp {
            set_sdp(&mut r, sdp);
        }
        r
    }

    fn program(&self, call: &Call, media: Vec<MediaSpec>) -> Option<ProgramOp> {
        let spec = CallSpec {
            id: call.dataplane_id.clone(),
            media: media.clone(),
        };
        match &call.installed {
            None => Some(ProgramOp::Add(spec)),
            Some(old) if *old != media => Some(ProgramOp::Modify(spec)),
            Some(_) => None,
        }
    }

    fn provisional(
        &mut self,
        mut call: Call,
        resp: &Message,
        code: u16,
        now_ns: u64,
        out: &mut Vec<Action>,
    ) {
        let reason = resp.start_reason();
        match self.answer_for_a(&mut call, resp) {
            Err(e) => {
                // An unusable early answer: ignore its media, keep waiting for the final.
                let _ = e;
                let r = self.response_to_a(&call, code, &reason, None);
                call.a_last_response = Some(r.clone());
                out.push(Action::Send {
                    to: Destination::Flow(call.a_flow),
                    message: r,
                });
                self.calls.insert(call.key, call);
            }
            Ok(None) => {
                let r = self.response_to_a(&call, code, &reason, call.a_answer.as_ref());
                call.a_last_response = Some(r.clone());
                out.push(Action::Send {
                    to: Destination::Flow(call.a_flow),
                    message: r,
                });
                self.calls.insert(call.key, call);
            }
            Ok(Some((answer, media))) => {
                // Early media: the streams are installed before the 18x with the answer
                // reaches a.
                let r = self.response_to_a(&call, code, &reason, Some(&answer));
                call.a_answer = Some(answer);
                call.a_last_response = Some(r.clone());
                let send = Action::Send {
                    to: Destination::Flow(call.a_flow),
                    message: r,
                };
                match self.program(&call, media.clone()) {
                    Some(op) => {
                        call.installed = Some(media);
                        out.push(Action::Program {
                            call: call.key,
                            op,
                            then: vec![send],
                        });
                    }
                    None => out.push(send),
                }
                let _ = now_ns;
                self.calls.insert(call.key, call);
            }
        }
    }

    fn answered(&mut self, mut call: Call, resp: &Message, now_ns: u64, out: &mut Vec<Action>) {
        let media = match self.answer_for_a(&mut call, resp) {
            Ok(Some((answer, media))) => {
                call.a_answer = Some(answer);
                Some(media)
            }
            Ok(None) if call.installed.is_some() => call.installed.clone(),
            Ok(None) => None,
            Err(_) => None,
        };
        let Some(media) = media else {
            // No usable answer: end both legs.
            self.bye(&mut call, Leg::B, out);
            self.final_to_a(&mut call, 502, out);
            self.end(
                call,
                502,
                "unusable answer from the callee",
                EndedBy::Relay,
                now_ns,
                out,
            );
            return;
        };
        call.phase = Phase::Answered;
        call.answer_ns = Some(now_ns);
        self.counters.calls_answered += 1;
        let r = self.response_to_a(&call, 200, "OK", call.a_answer.as_ref());
        call.a_last_response = Some(r.clone());
        let mut then = vec![Action::Send {
            to: Destination::Flow(call.a_flow),
            message: r.clone(),
        }];
        if call.a.transport == Transport::Udp {
            // The 2xx is retransmitted until a's ACK (RFC 3261 section 13.3.1.4).
            self.retransmit(
                Destination::Flow(call.a_flow),
                r,
                self.config.t1_ns,
                now_ns,
                now_ns + 64 * self.config.t1_ns,
                Some(call.key),
                &mut then,
            );
        }
        match self.program(&call, media.clone()) {
            Some(op) => {
                call.installed = Some(media);
                out.push(Action::Program {
                    call: call.key,
                    op,
                    then,
                });
            }
            None => out.extend(then),
        }
        self.calls.insert(call.key, call);
    }

    fn ack_success(&mut self, call: &mut Call) -> Message {
        let branch = ids::branch(self.ids.as_mut());
        let via = self.via(call.b.trunk);
        let mut ack = dialog_request(
            &mut call.b,
            Method::Ack,
            &via,
            &branch,
            &self.config.product,
        );
        set(&mut ack, StdHeader::CSeq, format!("{} ACK", call.b.cseq));
        ack
    }

    /// The ACK of a non-2xx final response: the INVITE's Via, Request-URI and CSeq number,
    /// the response's To (RFC 3261 section 17.1.1.3).
    fn ack_failure(&self, call: &Call, resp: &Message) -> Message {
        let invite = &call.b_invite;
        let mut ack = Message::request(
            Method::Ack,
            invite.request_uri().cloned().expect("a request"),
        );
        if let Ok(top) = invite.top_via() {
            let _ = top;
            if let Some(v) = invite.headers.get(StdHeader::Via) {
                add(
                    &mut ack,
                    StdHeader::Via,
                    v.split(',').next().unwrap_or(v).trim().to_owned(),
                );
            }
        }
        add(&mut ack, StdHeader::MaxForwards, "70");
        for h in [StdHeader::From, StdHeader::CallId] {
            if let Some(v) = invite.headers.get(h) {
                add(&mut ack, h, v.to_owned());
            }
        }
        if let Some(to) = resp.headers.get(StdHeader::To) {
            add(&mut ack, StdHeader::To, to.to_owned());
        }
        let n = invite.cseq().map_or(1, |c| c.seq);
        add(&mut ack, StdHeader::CSeq, format!("{n} ACK"));
        ack
    }

    fn bye(&mut self, call: &mut Call, leg: Leg, out: &mut Vec<Action>) {
        let branch = ids::branch(self.ids.as_mut());
        let trunk = match leg {
            Leg::A => call.a.trunk,
            Leg::B => call.b.trunk,
        };
        let via = self.via(trunk);
        let product = self.config.product.clone();
        let dialog = match leg {
            Leg::A => &mut call.a,
            Leg::B => &mut call.b,
        };
        let m = dialog_request(dialog, Method::Bye, &via, &branch, &product);
        out.push(Action::Send {
            to: dialog.to.clone(),
            message: m,
        });
    }

    fn on_ack(&mut self, req: &Message, _now_ns: u64) {
        if let Some((key, Leg::A)) = self.dialog_of(req) {
            if let Some(call) = self.calls.get_mut(&key) {
                if call.phase == Phase::Answered {
                    call.phase = Phase::Confirmed;
                }
            }
        }
    }

    fn on_cancel(&mut self, flow: &Flow, req: &Message, now_ns: u64, out: &mut Vec<Action>) {
        let branch = req
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned))
            .unwrap_or_default();
        let Some(&key) = self.by_a_branch.get(&branch) else {
            return self.respond(flow, req, 481, &[], out);
        };
        self.respond(flow, req, 200, &[], out);
        let Some(mut call) = self.calls.remove(&key) else {
            return;
        };
        if call.phase != Phase::Calling || call.cancelled {
            self.calls.insert(key, call);
            return;
        }
        //= https://www.rfc-editor.org/rfc/rfc3261#section-9.2
        //# the UAS core generates a 487 (Request Terminated) response to the INVITE
        self.final_to_a(&mut call, 487, out);
        call.cancelled = true;
        call.phase = Phase::Ending;
        if call.b_provisional {
            self.cancel_b(&mut call, out);
        }
        // Media and ports go now; leg b is cleaned up when its final response comes.
        let pairs: Vec<_> = call.offered.pairs().collect();
        let record = CallEnd {
            dataplane_id: call.dataplane_id.clone(),
            a_trunk: self.config.trunks[call.a.trunk].name.clone(),
            b_trunk: self.config.trunks[call.b.trunk].name.clone(),
            a_call_id: call.a.call_id.clone(),
            b_call_id: call.b.call_id.clone(),
            caller: call.caller.clone(),
            callee: call.callee.clone(),
            setup_ns: call.setup_ns,
            answer_ns: None,
            end_ns: now_ns,
            ended_by: EndedBy::Caller,
            status: 487,
            reason: "cancelled".into(),
            suites: call
                .offered
                .a_suites()
                .into_iter()
                .map(|a| (a, None))
                .collect(),
        };
        let end = Action::Ended(Box::new(record));
        if call.installed.take().is_some() {
            out.push(Action::Program {
                call: key,
                op: ProgramOp::Remove(call.dataplane_id.clone()),
                then: vec![end],
            });
        } else {
            out.push(end);
        }
        for p in pairs {
            self.ports.release(p, now_ns);
        }
        self.by_a_branch.remove(&branch);
        self.calls.insert(key, call);
    }

    fn on_bye(&mut self, flow: &Flow, req: &Message, now_ns: u64, out: &mut Vec<Action>) {
        let Some((key, leg)) = self.dialog_of(req) else {
            return self.respond(flow, req, 481, &[], out);
        };
        self.respond(flow, req, 200, &[], out);
        let Some(mut call) = self.calls.remove(&key) else {
            return;
        };
        if call.phase == Phase::Ending {
            // The other side's BYE crossed ours: the call is already over.
            return;
        }
        if leg == Leg::B && call.phase == Phase::Calling {
            // b hung up an early dialog: fail a's INVITE.
            self.final_to_a(&mut call, 487, out);
        } else {
            self.bye(&mut call, leg.other(), out);
        }
        let by = match leg {
            Leg::A => EndedBy::Caller,
            Leg::B => EndedBy::Callee,
        };
        let reason = req
            .reasons()
            .ok()
            .and_then(|r| r.first().and_then(|r| r.text()))
            .unwrap_or_else(|| "BYE".into());
        self.end(call, 200, &reason, by, now_ns, out);
    }

    /// The data plane refused a change [`Action::Program`] asked for; the actions that were
    /// to follow were not run.
    pub fn program_failed(&mut self, key: CallKey, why: &str, now_ns: u64) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(mut call) = self.calls.remove(&key) else {
            return out;
        };
        call.installed = None;
        if call.b_final || call.b_provisional {
            if call.b_final {
                self.bye(&mut call, Leg::B, &mut out);
            } else {
                self.cancel_b(&mut call, &mut out);
            }
        }
        if call.phase == Phase::Answered || call.phase == Phase::Confirmed {
            // a never got the 200 (it was to follow the programming).
            call.a_last_response = None;
        }
        self.final_to_a(&mut call, 500, &mut out);
        self.end(
            call,
            500,
            &format!("data plane: {why}"),
            EndedBy::Relay,
            now_ns,
            &mut out,
        );
        out
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
