//! Responses from leg b: provisional (with early media), answers, failures, and the ACKs.

use super::*;

impl B2bua {
    pub(super) fn on_response(&mut self, resp: Message, now_ns: u64, out: &mut Vec<Action>) {
        let Ok(top) = resp.top_via() else { return };
        let Some(branch) = top.branch() else { return };
        let Ok(cseq) = resp.cseq() else { return };
        let code = resp.status().unwrap_or(500);
        if cseq.method == Method::Invite {
            if let Some(&key) = self.by_transfer_branch.get(branch) {
                return self.on_transfer_response(key, &resp, now_ns, out);
            }
        }
        if matches!(cseq.method, Method::Invite | Method::Update) {
            if let Some(&key) = self.by_reoffer_branch.get(branch) {
                return self.on_reoffer_response(key, &resp, now_ns, out);
            }
        }
        if cseq.method == Method::Options {
            return self.pong(branch, code, now_ns);
        }
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
                    message: ack_of_failure(&call.b_invite, &resp),
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
                if call.b_final && call.late_offer.is_some() {
                    // b repeats its 200 while a has not answered the offer yet.
                    self.calls.insert(key, call);
                    return;
                }
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
                if call.offerless && !call.cancelled && call.phase == Phase::Calling {
                    // b's 200 carries the offer: it goes to a; b's ACK waits for a's answer.
                    call.b_final = true;
                    return self.late_offer(call, &resp, now_ns, out);
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
                    message: ack_of_failure(&call.b_invite, &resp),
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
    pub(super) fn answer_for_a(
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
        call.sdp_from[1] = Some(answer);
        call.b_suites = answered.b_suites;
        Ok(Some((answered.answer, answered.media)))
    }

    pub(super) fn response_to_a(
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
            if let Some(t) = &call.session_timers[0] {
                for (h, v) in Self::session_timer_headers(t) {
                    add(&mut r, h, v);
                }
            }
        }
        if let Some(sdp) = sdp {
            set_sdp(&mut r, sdp);
        }
        r
    }

    pub(super) fn program(&self, call: &Call, media: Vec<MediaSpec>) -> Option<ProgramOp> {
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

    pub(super) fn provisional(
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

    pub(super) fn answered(
        &mut self,
        mut call: Call,
        resp: &Message,
        now_ns: u64,
        out: &mut Vec<Action>,
    ) {
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
        self.watch_media(call.key, now_ns, out);
        call.session_timers[1] = Self::session_timer_of_response(resp);
        let mut then = Vec::new();
        self.ok_to_a(&mut call, now_ns, &mut then);
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
        let key = call.key;
        self.calls.insert(key, call);
        self.arm_session_timer(key, Leg::A, now_ns, out);
        self.arm_session_timer(key, Leg::B, now_ns, out);
    }

    pub(super) fn ack_success(&mut self, call: &mut Call) -> Message {
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

    /// The call is answered: the 200 to a (with `a_answer`), retransmitted over UDP until a's
    /// ACK (RFC 3261 section 13.3.1.4).
    fn ok_to_a(&mut self, call: &mut Call, now_ns: u64, out: &mut Vec<Action>) {
        call.phase = Phase::Answered;
        call.answer_ns = Some(now_ns);
        call.media_seen = (0, now_ns);
        self.counters.calls_answered += 1;
        let r = self.response_to_a(call, 200, "OK", call.a_answer.as_ref());
        call.a_last_response = Some(r.clone());
        out.push(Action::Send {
            to: Destination::Flow(call.a_flow),
            message: r.clone(),
        });
        if call.a.transport == Transport::Udp {
            let (t1, to) = (self.config.t1_ns, Destination::Flow(call.a_flow));
            self.retransmit(to, r, t1, now_ns, now_ns + 64 * t1, Some(call.key), out);
        }
    }

    /// b's 200 to an INVITE without an offer holds b's offer: it is anchored (b the offerer)
    /// and sent to a in our 200; a's ACK will answer it ([`B2bua::late_answer`]).
    fn late_offer(&mut self, mut call: Call, resp: &Message, now_ns: u64, out: &mut Vec<Action>) {
        call.sdp_from[1] = SessionDescription::parse(&resp.body, &Limits::default()).ok();
        let a_cfg = self.config.trunks[call.a.trunk].clone();
        let b_cfg = self.config.trunks[call.b.trunk].clone();
        let offer =
            SessionDescription::parse(&resp.body, &Limits::default()).map_err(|e| e.to_string());
        let mut taken = Vec::new();
        let ports = &mut self.ports;
        let anchored = offer.and_then(|offer| {
            let mut allocate = |worker: Option<usize>| {
                let pair =
                    ports.allocate_for(worker, a_cfg.media_address, b_cfg.media_address, now_ns)?;
                taken.push(pair);
                // Oriented with b as the offerer.
                Ok(crate::ports::PortPair {
                    worker: pair.worker,
                    a: pair.b,
                    b: pair.a,
                })
            };
            anchor_offer(&offer, &b_cfg, &a_cfg, self.keys.as_mut(), &mut allocate)
                .map_err(|e| e.to_string())
        });
        call.offered = crate::media::OfferedMedia::restored(taken.clone());
        let (to_a, offered) = match anchored {
            Ok(x) => x,
            Err(e) => {
                let ack = self.ack_success(&mut call);
                out.push(Action::Send {
                    to: call.b.to.clone(),
                    message: ack,
                });
                self.bye(&mut call, Leg::B, out);
                self.final_to_a(&mut call, 488, out);
                self.end(
                    call,
                    488,
                    &format!("offer in the 200: {e}"),
                    EndedBy::Relay,
                    now_ns,
                    out,
                );
                return;
            }
        };
        call.late_offer = Some(offered);
        call.a_answer = Some(to_a);
        self.ok_to_a(&mut call, now_ns, out);
        self.calls.insert(call.key, call);
    }

    /// a's ACK answers b's offer: the media is installed, then b gets its ACK with the
    /// answer.
    pub(super) fn late_answer(
        &mut self,
        key: CallKey,
        ack: &Message,
        now_ns: u64,
        out: &mut Vec<Action>,
    ) {
        let Some(mut call) = self.calls.remove(&key) else {
            return;
        };
        let Some(offered) = call.late_offer.take() else {
            self.calls.insert(key, call);
            return;
        };
        call.phase = Phase::Confirmed;
        call.sdp_from[0] = SessionDescription::parse(&ack.body, &Limits::default()).ok();
        let a_cfg = &self.config.trunks[call.a.trunk];
        let b_cfg = &self.config.trunks[call.b.trunk];
        let answered = SessionDescription::parse(&ack.body, &Limits::default())
            .map_err(|e| e.to_string())
            .and_then(|answer| {
                anchor_answer(&answer, &offered, b_cfg, a_cfg, 1).map_err(|e| e.to_string())
            });
        let answered = match answered {
            Ok(a) => a,
            Err(e) => {
                // No usable answer in the ACK: the call cannot carry media.
                let ack_b = self.ack_success(&mut call);
                out.push(Action::Send {
                    to: call.b.to.clone(),
                    message: ack_b,
                });
                self.bye(&mut call, Leg::B, out);
                self.bye(&mut call, Leg::A, out);
                self.end(
                    call,
                    488,
                    &format!("answer in the ACK: {e}"),
                    EndedBy::Relay,
                    now_ns,
                    out,
                );
                return;
            }
        };
        let media: Vec<MediaSpec> = answered
            .media
            .into_iter()
            .map(|mut m| {
                std::mem::swap(&mut m.a, &mut m.b);
                m
            })
            .collect();
        call.b_suites = media
            .iter()
            .map(|m| m.b.send.as_ref().map(|c| c.suite.clone()))
            .collect();
        let mut ack_b = self.ack_success(&mut call);
        set_sdp(&mut ack_b, &answered.answer);
        let then = vec![Action::Send {
            to: call.b.to.clone(),
            message: ack_b,
        }];
        let op = ProgramOp::Add(CallSpec {
            id: call.dataplane_id.clone(),
            media: media.clone(),
        });
        call.installed = Some(media);
        out.push(Action::Program {
            call: key,
            op,
            then,
        });
        self.watch_media(key, now_ns, out);
        self.calls.insert(key, call);
        self.persist(key, out);
    }
}

/// The ACK of a non-2xx final response to `invite`: the INVITE's top Via, Request-URI, From,
/// Call-ID and CSeq number, the response's To (RFC 3261 section 17.1.1.3).
pub(super) fn ack_of_failure(invite: &Message, resp: &Message) -> Message {
    let mut ack = Message::request(
        Method::Ack,
        invite.request_uri().cloned().expect("a request"),
    );
    if let Some(v) = invite.headers.get(StdHeader::Via) {
        add(
            &mut ack,
            StdHeader::Via,
            v.split(',').next().unwrap_or(v).trim().to_owned(),
        );
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
