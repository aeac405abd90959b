//! A new call: a's INVITE checked, routed and anchored, and the INVITE of leg b.

use super::*;

impl B2bua {
    pub(super) fn on_invite(
        &mut self,
        flow: &Flow,
        req: Message,
        now_ns: u64,
        out: &mut Vec<Action>,
    ) {
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
        let a_timer = match Self::session_timer_of_request(&req) {
            Ok(t) => t,
            Err(()) => {
                let min_se = session_timer::MIN_SE.to_string();
                return self.respond(flow, &req, 422, &[(StdHeader::MinSe, min_se)], out);
            }
        };
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
        let a_cfg = self.config.trunks[a_trunk].clone();
        let b_cfg = self.config.trunks[b_trunk].clone();
        // An INVITE without an offer (some operator trunks): b's 200 will carry the offer.
        let offerless = !is_sdp && req.body.is_empty();
        let mut offer_seen = None;
        let (b_offer, offered) = if offerless {
            (
                empty_sdp(),
                crate::media::OfferedMedia::restored(Vec::new()),
            )
        } else {
            let offer = if is_sdp {
                SessionDescription::parse(&req.body, &Limits::default()).map_err(|e| e.to_string())
            } else {
                Err("the INVITE's body is not SDP".to_owned())
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
            let mut taken = Vec::new();
            let ports = &mut self.ports;
            let mut allocate = |worker: Option<usize>| {
                let pair =
                    ports.allocate_for(worker, a_cfg.media_address, b_cfg.media_address, now_ns)?;
                taken.push(pair);
                Ok(pair)
            };
            offer_seen = Some(offer.clone());
            match anchor_offer(&offer, &a_cfg, &b_cfg, self.keys.as_mut(), &mut allocate) {
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
        // The first peer, unless OPTIONS found it down while another is up.
        let first_peer = (0..b_cfg.peers.len())
            .find(|&p| !self.avoid_peer(b_trunk, p))
            .unwrap_or(0);
        let peer = &b_cfg.peers[first_peer];
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
                peer: first_peer,
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
            b_peer: first_peer,
            b_attempt: 0,
            b_offer,
            offered,
            a_answer: None,
            b_suites: Vec::new(),
            reoffer: None,
            restored_suites: Vec::new(),
            restored_times: None,
            offerless,
            late_offer: None,
            sdp_from: [offer_seen, None],
            session_timers: [a_timer, None],
            transfer: None,
            media_seen: (0, now_ns),
            held: false,
            last_counters: None,
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
    pub(super) fn send_invite(
        &mut self,
        call: &mut Call,
        hops: u8,
        now_ns: u64,
        out: &mut Vec<Action>,
    ) {
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
        // Session timers towards b (RFC 4028): offered, b decides who refreshes.
        add(&mut m, StdHeader::Supported, "timer");
        add(&mut m, StdHeader::SessionExpires, "1800");
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
        if !call.offerless {
            set_sdp(&mut m, &call.b_offer);
        }
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
}

/// A placeholder description for a call whose offer is still to come.
pub(super) fn empty_sdp() -> SessionDescription {
    SessionDescription::parse(
        b"v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",
        &Limits::default(),
    )
    .expect("a minimal SDP")
}
