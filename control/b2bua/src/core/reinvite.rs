//! Offers within a confirmed call (re-INVITE, UPDATE) from either leg: hold and resume,
//! an address change, re-keying. The offer is re-anchored on the call's own ports with the
//! relay's running keys (so unchanged streams keep their rollover counters and replay
//! windows), sent to the other leg in its dialog, and its answer goes back once the data
//! plane has the new media.
//!
//! Limits of this version: one offer at a time per call (a second gets 491), the offer must
//! be in the request (a re-INVITE without SDP gets 488), no more m-lines than the call was
//! set up with, and on UDP the re-INVITE is not retransmitted.

use relay_srtp::SdesKey;

use super::*;
use crate::media::ReplayKeys;
use crate::ports::PortPair;

/// An offer in progress from leg `from`.
#[derive(Debug)]
pub(crate) struct Reoffer {
    /// Which leg offered.
    pub(crate) from: Leg,
    /// Its request (to answer).
    pub(crate) request: Message,
    /// The flow it came on.
    pub(crate) flow: FlowId,
    /// What was offered to the other leg.
    pub(crate) offered: crate::media::OfferedMedia,
    /// The branch of our request to the other leg.
    pub(crate) branch: String,
    /// Our request to the other leg (for the ACK of an INVITE).
    pub(crate) sent: Message,
}

fn flip(p: PortPair) -> PortPair {
    PortPair {
        worker: p.worker,
        a: p.b,
        b: p.a,
    }
}

fn key_of(spec: &Option<relay_session::CryptoSpec>) -> Option<SdesKey> {
    let c = spec.as_ref()?;
    SdesKey::parse_inline(c.suite.parse().ok()?, &c.key).ok()
}

impl B2bua {
    /// A re-INVITE or UPDATE from leg `from` of `call`.
    pub(super) fn on_reoffer(
        &mut self,
        flow: &Flow,
        req: Message,
        from: Leg,
        key: CallKey,
        now_ns: u64,
        out: &mut Vec<Action>,
    ) {
        let method = req.method().cloned().expect("a request");
        let Some(mut call) = self.calls.remove(&key) else {
            return self.respond(flow, &req, 481, &[], out);
        };
        let busy = call.reoffer.is_some()
            || call.phase != Phase::Confirmed && call.phase != Phase::Answered;
        if busy {
            //= https://www.rfc-editor.org/rfc/rfc3261#section-14.2
            //# A UAS that receives an INVITE on a dialog while an INVITE it had sent
            //# on that dialog is in progress MUST return a 491 (Request Pending)
            //# response to the received INVITE.
            self.calls.insert(key, call);
            return self.respond(flow, &req, 491, &[], out);
        }
        let is_sdp = req
            .content_type()
            .ok()
            .flatten()
            .is_some_and(|t| t.is_sdp())
            && !req.body.is_empty();
        if !is_sdp && req.body.is_empty() && method == Method::Update {
            // An UPDATE without an offer refreshes the session (RFC 4028 section 9, RFC 3311):
            // nothing changes; it is answered here and not relayed.
            let refreshed = call.phase == Phase::Confirmed;
            let timer = call.session_timers[if from == Leg::A { 0 } else { 1 }];
            self.calls.insert(key, call);
            let code = if refreshed { 200 } else { 491 };
            let mut extra = vec![(StdHeader::Contact, self.contact_for(key, from))];
            if let (true, Some(t)) = (refreshed, timer) {
                extra.extend(Self::session_timer_headers(&t));
                self.session_refreshed(key, from, now_ns, out);
            }
            return self.respond(flow, &req, code, &extra, out);
        }
        let offer = if is_sdp {
            SessionDescription::parse(&req.body, &Limits::default()).map_err(|e| e.to_string())
        } else {
            Err("an offer is required in the request".to_owned())
        };
        let (offerer_trunk, answerer_trunk) = match from {
            Leg::A => (call.a.trunk, call.b.trunk),
            Leg::B => (call.b.trunk, call.a.trunk),
        };
        let installed = call.installed.clone().unwrap_or_default();
        // The relay's running keys: towards the offerer, then towards the answerer, per stream.
        let mut running = Vec::new();
        for m in &installed {
            let (to_offerer, to_answerer) = match from {
                Leg::A => (&m.a.send, &m.b.send),
                Leg::B => (&m.b.send, &m.a.send),
            };
            running.extend(key_of(to_offerer));
            running.extend(key_of(to_answerer));
        }
        let mut pairs = call
            .offered
            .pairs()
            .map(|p| if from == Leg::A { p } else { flip(p) })
            .collect::<Vec<_>>()
            .into_iter();
        let o_cfg = self.config.trunks[offerer_trunk].clone();
        let a_cfg = self.config.trunks[answerer_trunk].clone();
        let anchored = offer.and_then(|offer| {
            let mut keys = ReplayKeys::new(running, self.keys.as_mut());
            let mut allocate = |_: Option<usize>| {
                pairs
                    .next()
                    .ok_or(crate::ports::PortError::NotLocal(o_cfg.media_address))
            };
            anchor_offer(&offer, &o_cfg, &a_cfg, &mut keys, &mut allocate)
                .map_err(|e| e.to_string())
        });
        let (to_other, offered) = match anchored {
            Ok(x) => x,
            Err(e) => {
                self.calls.insert(key, call);
                return self.respond(
                    flow,
                    &req,
                    488,
                    &[(StdHeader::Warning, format!("399 relay \"{e}\""))],
                    out,
                );
            }
        };
        // Our request in the other leg's dialog.
        let branch = ids::branch(self.ids.as_mut());
        let other = from.other();
        let trunk = match other {
            Leg::A => call.a.trunk,
            Leg::B => call.b.trunk,
        };
        let via = self.via(trunk);
        let contact = self.contact(trunk, None);
        let product = self.config.product.clone();
        let dialog = match other {
            Leg::A => &mut call.a,
            Leg::B => &mut call.b,
        };
        let mut m = dialog_request(dialog, method, &via, &branch, &product);
        add(&mut m, StdHeader::Contact, contact);
        add(&mut m, StdHeader::Allow, ALLOW);
        // Hold: the offerer stops sending or receiving (RFC 3264 section 8.4).
        call.held = to_other.media.iter().enumerate().any(|(i, _)| {
            matches!(
                to_other.media_direction(i),
                Some(
                    relay_sip::sdp::Direction::SendOnly
                        | relay_sip::sdp::Direction::RecvOnly
                        | relay_sip::sdp::Direction::Inactive
                )
            )
        });
        let mut to_other = to_other;
        call.sdp_version += 1;
        to_other.origin.session_version = call.sdp_version;
        set_sdp(&mut m, &to_other);
        out.push(Action::Send {
            to: dialog.to.clone(),
            message: m.clone(),
        });
        self.by_reoffer_branch.insert(branch.clone(), key);
        call.reoffer = Some(Reoffer {
            from,
            request: req,
            flow: flow.id,
            offered,
            branch,
            sent: m,
        });
        let _ = now_ns;
        self.calls.insert(key, call);
    }

    /// The other leg's response to a relayed offer.
    pub(super) fn on_reoffer_response(
        &mut self,
        key: CallKey,
        resp: &Message,
        now_ns: u64,
        out: &mut Vec<Action>,
    ) {
        let code = resp.status().unwrap_or(500);
        if code < 200 {
            return;
        }
        let Some(mut call) = self.calls.remove(&key) else {
            return;
        };
        let Some(re) = call.reoffer.take() else {
            self.calls.insert(key, call);
            return;
        };
        self.by_reoffer_branch.remove(&re.branch);
        let is_invite = re.request.method() == Some(&Method::Invite);
        let other = re.from.other();
        if is_invite {
            // The ACK in the other leg's dialog: for a 2xx a new transaction, otherwise the
            // INVITE's own (RFC 3261 sections 13.2.2.4 and 17.1.1.3).
            let ack = if code < 300 {
                let branch = ids::branch(self.ids.as_mut());
                let trunk = match other {
                    Leg::A => call.a.trunk,
                    Leg::B => call.b.trunk,
                };
                let via = self.via(trunk);
                let product = self.config.product.clone();
                let dialog = match other {
                    Leg::A => &mut call.a,
                    Leg::B => &mut call.b,
                };
                let mut ack = dialog_request(dialog, Method::Ack, &via, &branch, &product);
                let n = re.sent.cseq().map_or(dialog.cseq, |c| c.seq);
                set(&mut ack, StdHeader::CSeq, format!("{n} ACK"));
                ack
            } else {
                response::ack_of_failure(&re.sent, resp)
            };
            let to = match other {
                Leg::A => call.a.to.clone(),
                Leg::B => call.b.to.clone(),
            };
            out.push(Action::Send { to, message: ack });
        }
        let respond = |b: &Self, code: u16, reason: &str, sdp: Option<&SessionDescription>| {
            let mut r = Message::response_to(&re.request, code, reason)
                .or_else(|_| Message::response_to(&re.request, code, status_reason(code)))
                .expect("a parsed request");
            let trunk = match re.from {
                Leg::A => call.a.trunk,
                Leg::B => call.b.trunk,
            };
            add(&mut r, StdHeader::Contact, b.contact(trunk, None));
            add(&mut r, StdHeader::Server, b.config.product.clone());
            if let Some(s) = sdp {
                set_sdp(&mut r, s);
            }
            r
        };
        if code >= 300 {
            // The offer failed: the media stays as it was; the offerer hears why.
            let r = respond(self, code, &resp.start_reason(), None);
            out.push(Action::Send {
                to: Destination::Flow(re.flow),
                message: r,
            });
            self.calls.insert(key, call);
            return;
        }
        let (o_trunk, a_trunk) = match re.from {
            Leg::A => (call.a.trunk, call.b.trunk),
            Leg::B => (call.b.trunk, call.a.trunk),
        };
        let answered = SessionDescription::parse(&resp.body, &Limits::default())
            .map_err(|e| e.to_string())
            .and_then(|answer| {
                anchor_answer(
                    &answer,
                    &re.offered,
                    &self.config.trunks[o_trunk],
                    &self.config.trunks[a_trunk],
                    call.sdp_version,
                )
                .map_err(|e| e.to_string())
            });
        let answered = match answered {
            Ok(a) => a,
            Err(e) => {
                let r = respond(self, 488, "Not Acceptable Here", None);
                let _ = e;
                out.push(Action::Send {
                    to: Destination::Flow(re.flow),
                    message: r,
                });
                self.calls.insert(key, call);
                return;
            }
        };
        let leg_index = |l: Leg| if l == Leg::A { 0 } else { 1 };
        call.sdp_from[leg_index(re.from)] =
            SessionDescription::parse(&re.request.body, &Limits::default()).ok();
        call.sdp_from[leg_index(re.from.other())] =
            SessionDescription::parse(&resp.body, &Limits::default()).ok();
        let media: Vec<MediaSpec> = answered
            .media
            .into_iter()
            .map(|mut m| {
                if re.from == Leg::B {
                    std::mem::swap(&mut m.a, &mut m.b);
                }
                m
            })
            .collect();
        let r = respond(self, 200, "OK", Some(&answered.answer));
        let send = Action::Send {
            to: Destination::Flow(re.flow),
            message: r,
        };
        match self.program(&call, media.clone()) {
            Some(op) => {
                call.installed = Some(media);
                out.push(Action::Program {
                    call: key,
                    op,
                    then: vec![send],
                });
            }
            None => out.push(send),
        }
        let _ = now_ns;
        self.calls.insert(key, call);
        self.persist(key, out);
        self.session_refreshed(key, re.from, now_ns, out);
    }

    /// Our Contact towards `leg` of call `key`.
    fn contact_for(&self, key: CallKey, leg: Leg) -> String {
        let trunk =
            self.calls
                .get(&key)
                .map_or(0, |c| if leg == Leg::A { c.a.trunk } else { c.b.trunk });
        self.contact(trunk, None)
    }
}
