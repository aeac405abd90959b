//! Timers, retransmissions, failover, and the end of calls: CANCEL, BYE, failures.

use super::*;

impl B2bua {
    /// Resends `message` to `to` at `interval_ns` after `now_ns`, doubling up to T2, until
    /// `until_ns` or until the call's state stops it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn retransmit(
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
                let branch =
                    |m: &Message| m.top_via().ok().and_then(|v| v.branch().map(str::to_owned));
                let stop = r.call.and_then(|k| self.calls.get(&k)).is_none_or(|c| {
                    if r.message.is_request() {
                        // The INVITE to b (Timer A): until any response, and only for the
                        // attempt it belongs to (not an earlier peer's after failover).
                        c.b_provisional || c.b_final || branch(&c.b_invite) != branch(&r.message)
                    } else {
                        // The 2xx to a (RFC 3261 section 13.3.1.4): until a's ACK.
                        c.phase != Phase::Answered
                    }
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
            TimerKey::OptionsPing(trunk, peer) => self.ping(trunk, peer, now_ns, &mut out),
            TimerKey::OptionsTimeout(branch) => self.ping_timeout(&branch, now_ns),
            TimerKey::MediaCheck(key) => self.media_check(key, now_ns, &mut out),
            TimerKey::SessionTimer(key, leg, generation) => {
                self.session_timer_fired(key, leg, generation, now_ns, &mut out)
            }
            TimerKey::TransferTimeout(key) => {
                let pending = self.calls.get(&key).is_some_and(|c| c.transfer.is_some());
                if pending {
                    self.transfer_timeout(key, &mut out);
                }
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

    pub(super) fn cancel_b(&mut self, call: &mut Call, out: &mut Vec<Action>) {
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
    pub(super) fn fail_over_or_end(
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

    pub(super) fn final_to_a(&mut self, call: &mut Call, status: u16, out: &mut Vec<Action>) {
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
    pub(super) fn end(
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
        self.by_reoffer_branch.retain(|_, k| *k != call.key);
        self.by_transfer_branch.retain(|_, k| *k != call.key);
        self.dialogs.retain(|_, (k, _)| *k != call.key);
        // The suites as last installed (a re-INVITE may have changed them), else as offered.
        out.push(Action::Forget(call.dataplane_id.clone()));
        let end = Action::Ended(Box::new(self.call_end(&call, status, reason, by, now_ns)));
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

    pub(super) fn bye(&mut self, call: &mut Call, leg: Leg, out: &mut Vec<Action>) {
        self.bye_with_reason(call, leg, None, out);
    }

    /// A BYE in `leg`'s dialog, with a Reason header (RFC 3326) if given.
    pub(super) fn bye_with_reason(
        &mut self,
        call: &mut Call,
        leg: Leg,
        reason: Option<&str>,
        out: &mut Vec<Action>,
    ) {
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
        let mut m = dialog_request(dialog, Method::Bye, &via, &branch, &product);
        if let Some(r) = reason {
            add(&mut m, StdHeader::Reason, r.to_owned());
        }
        out.push(Action::Send {
            to: dialog.to.clone(),
            message: m,
        });
    }

    pub(super) fn on_ack(&mut self, req: &Message, _now_ns: u64, out: &mut Vec<Action>) {
        if let Some((key, Leg::A)) = self.dialog_of(req) {
            if self.calls.get(&key).is_some_and(|c| c.late_offer.is_some()) {
                return self.late_answer(key, req, _now_ns, out);
            }
            if let Some(call) = self.calls.get_mut(&key) {
                if call.phase == Phase::Answered {
                    call.phase = Phase::Confirmed;
                    self.persist(key, out);
                }
            }
        }
    }

    pub(super) fn on_cancel(
        &mut self,
        flow: &Flow,
        req: &Message,
        now_ns: u64,
        out: &mut Vec<Action>,
    ) {
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
        let record = self.call_end(&call, 487, "cancelled", EndedBy::Caller, now_ns);
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

    pub(super) fn on_bye(
        &mut self,
        flow: &Flow,
        req: &Message,
        now_ns: u64,
        out: &mut Vec<Action>,
    ) {
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

    /// The record of `call` ending now.
    pub(super) fn call_end(
        &self,
        call: &Call,
        status: u16,
        reason: &str,
        by: EndedBy,
        now_ns: u64,
    ) -> CallEnd {
        // The suites as last installed (a re-INVITE may have changed them), else as offered.
        let suites = match &call.installed {
            Some(media) if media.is_empty() && !call.restored_suites.is_empty() => {
                call.restored_suites.clone()
            }
            Some(media) => media
                .iter()
                .map(|m| {
                    (
                        m.a.send.as_ref().map(|c| c.suite.clone()),
                        m.b.send.as_ref().map(|c| c.suite.clone()),
                    )
                })
                .collect(),
            None => call
                .offered
                .a_suites()
                .into_iter()
                .enumerate()
                .map(|(i, a)| (a, call.b_suites.get(i).cloned().flatten()))
                .collect(),
        };
        CallEnd {
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
            restored_times: call.restored_times,
        }
    }
}
