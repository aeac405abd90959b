//! Transfer (REFER, RFC 3515), as Teams Direct Routing uses it: a leg asks us to connect the
//! other party to a new target. We answer 202, tell the referrer how it goes by NOTIFY
//! (`message/sipfrag`, RFC 3515 section 2.4.4), and place a new INVITE to the Refer-To target
//! through the referring leg's trunk, offering the other party's media on the same relay
//! ports (with a fresh key for the new peer). When the target answers, the data plane's
//! call is modified to the new peer, the new dialog replaces the referrer's, the referrer
//! hears `200 OK` and gets a BYE. If the target fails, the referrer hears its status and the
//! call stays as it was.

use super::*;
use crate::media::ReplayKeys;
use crate::ports::PortPair;

/// A transfer in progress.
#[derive(Debug)]
pub(crate) struct Transfer {
    /// The leg that sent the REFER (it is replaced).
    pub(crate) leg: Leg,
    /// The new leg's dialog.
    pub(crate) dialog: Dialog,
    /// The new leg's INVITE.
    pub(crate) invite: Message,
    /// What was offered to it (oriented: the other party is the offerer).
    pub(crate) offered: crate::media::OfferedMedia,
}

fn flip(p: PortPair) -> PortPair {
    PortPair {
        worker: p.worker,
        a: p.b,
        b: p.a,
    }
}

fn index(l: Leg) -> usize {
    if l == Leg::A {
        0
    } else {
        1
    }
}

impl B2bua {
    /// A REFER from `leg` of call `key`.
    pub(super) fn on_refer(
        &mut self,
        flow: &Flow,
        req: Message,
        leg: Leg,
        key: CallKey,
        now_ns: u64,
        out: &mut Vec<Action>,
    ) {
        let Some(mut call) = self.calls.remove(&key) else {
            return self.respond(flow, &req, 481, &[], out);
        };
        let target = req.refer_to().ok().flatten();
        let other_sdp = call.sdp_from[index(leg.other())].clone();
        let (Some(target), Some(other_sdp)) = (target, other_sdp) else {
            self.calls.insert(key, call);
            return self.respond(flow, &req, 400, &[], out);
        };
        if call.phase != Phase::Confirmed || call.transfer.is_some() || call.reoffer.is_some() {
            self.calls.insert(key, call);
            return self.respond(flow, &req, 491, &[], out);
        }
        let user = target
            .uri
            .as_sip()
            .and_then(|u| u.user())
            .unwrap_or_default()
            .to_owned();
        if user.is_empty() {
            self.calls.insert(key, call);
            return self.respond(flow, &req, 400, &[], out);
        }
        //= https://www.rfc-editor.org/rfc/rfc3515#section-2.4.2
        //# A successful REFER request will result in one
        //# or more NOTIFY requests.
        self.respond(flow, &req, 202, &[], out);
        self.notify(
            &mut call,
            leg,
            "SIP/2.0 100 Trying",
            "active;expires=60",
            out,
        );

        // The other party's media offered to the target, on the same ports.
        let (this_trunk, other_trunk) = match leg {
            Leg::A => (call.a.trunk, call.b.trunk),
            Leg::B => (call.b.trunk, call.a.trunk),
        };
        let o_cfg = self.config.trunks[other_trunk].clone();
        let t_cfg = self.config.trunks[this_trunk].clone();
        // Keep the key towards the other party (its stream continues), a new one for the target.
        let running: Vec<relay_srtp::SdesKey> = call
            .installed
            .iter()
            .flatten()
            .filter_map(|m| {
                let c = if leg == Leg::A { &m.b.send } else { &m.a.send };
                let c = c.as_ref()?;
                relay_srtp::SdesKey::parse_inline(c.suite.parse().ok()?, &c.key).ok()
            })
            .collect();
        let mut pairs = call
            .offered
            .pairs()
            .map(|p| if leg == Leg::B { p } else { flip(p) })
            .collect::<Vec<_>>()
            .into_iter();
        let anchored = {
            let mut keys = ReplayKeys::new(running, self.keys.as_mut());
            let mut allocate = |_: Option<usize>| {
                pairs
                    .next()
                    .ok_or(crate::ports::PortError::NotLocal(o_cfg.media_address))
            };
            anchor_offer(&other_sdp, &o_cfg, &t_cfg, &mut keys, &mut allocate)
        };
        let (offer, offered) = match anchored {
            Ok(x) => x,
            Err(e) => {
                let _ = e;
                self.notify(
                    &mut call,
                    leg,
                    "SIP/2.0 488 Not Acceptable Here",
                    "terminated;reason=noresource",
                    out,
                );
                self.calls.insert(key, call);
                return;
            }
        };
        // The new leg: a new dialog towards the referring leg's trunk.
        let peer_index = (0..t_cfg.peers.len())
            .find(|&p| !self.avoid_peer(this_trunk, p))
            .unwrap_or(0);
        let peer = t_cfg.peers[peer_index].clone();
        let teams = t_cfg.profile == Profile::Teams;
        let phone = if teams && user.starts_with('+') {
            ";user=phone"
        } else {
            ""
        };
        let mut uri = relay_sip::SipUri::new(
            false,
            relay_sip::Host::parse(&peer.host).expect("checked at start-up"),
            Some(peer.port),
        );
        let _ = uri.set_user(Some(&user));
        if peer.transport != Transport::Udp {
            let _ = uri.set_param(
                "transport",
                Some(&peer.transport.as_str().to_ascii_lowercase()),
            );
        }
        if teams && user.starts_with('+') {
            let _ = uri.set_param("user", Some("phone"));
        }
        let party = if leg == Leg::A {
            call.callee.clone()
        } else {
            call.caller.clone()
        };
        let tag = ids::tag(self.ids.as_mut());
        let mut dialog = Dialog {
            trunk: this_trunk,
            to: Destination::Peer {
                trunk: this_trunk,
                peer: peer_index,
            },
            transport: peer.transport.clone(),
            call_id: ids::call_id(self.ids.as_mut(), &t_cfg.local_host),
            local: format!("<sip:{party}@{}>;tag={tag}", t_cfg.local_host),
            local_tag: tag,
            remote: format!("<sip:{user}@{}{phone}>", peer.host),
            remote_target: Some(Uri::Sip(uri)),
            cseq: 0,
        };
        let branch = ids::branch(self.ids.as_mut());
        let via = self.via(this_trunk);
        let mut m = dialog_request(
            &mut dialog,
            Method::Invite,
            &via,
            &branch,
            &self.config.product,
        );
        add(&mut m, StdHeader::Contact, self.contact(this_trunk, None));
        add(&mut m, StdHeader::Allow, ALLOW);
        if let Some(by) = req.headers.get(StdHeader::ReferredBy) {
            add(&mut m, StdHeader::ReferredBy, by.to_owned());
        }
        if teams {
            add(
                &mut m,
                HeaderName::parse("X-MS-SBC").expect("a token"),
                self.config.product.clone(),
            );
        }
        set_sdp(&mut m, &offer);
        out.push(Action::Send {
            to: dialog.to.clone(),
            message: m.clone(),
        });
        out.push(Action::Timer {
            key: TimerKey::TransferTimeout(key),
            at_ns: now_ns + self.config.invite_timeout_ns,
        });
        self.by_transfer_branch.insert(branch, key);
        self.dialogs.insert(
            (dialog.call_id.clone(), dialog.local_tag.clone()),
            (key, leg),
        );
        call.transfer = Some(Transfer {
            leg,
            dialog,
            invite: m,
            offered,
        });
        self.calls.insert(key, call);
    }

    /// A NOTIFY of the transfer's progress in `leg`'s dialog (RFC 3515 section 2.4.4).
    fn notify(
        &mut self,
        call: &mut Call,
        leg: Leg,
        sipfrag: &str,
        state: &str,
        out: &mut Vec<Action>,
    ) {
        let branch = ids::branch(self.ids.as_mut());
        let trunk = if leg == Leg::A {
            call.a.trunk
        } else {
            call.b.trunk
        };
        let via = self.via(trunk);
        let product = self.config.product.clone();
        let dialog = if leg == Leg::A {
            &mut call.a
        } else {
            &mut call.b
        };
        let mut n = dialog_request(dialog, Method::Notify, &via, &branch, &product);
        add(&mut n, StdHeader::Event, "refer");
        add(
            &mut n,
            HeaderName::parse("Subscription-State").expect("a token"),
            state.to_owned(),
        );
        add(
            &mut n,
            StdHeader::ContentType,
            "message/sipfrag;version=2.0",
        );
        n.body = format!("{sipfrag}\r\n").into_bytes();
        out.push(Action::Send {
            to: dialog.to.clone(),
            message: n,
        });
    }

    /// The transfer target's response.
    pub(super) fn on_transfer_response(
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
        let Some(mut t) = call.transfer.take() else {
            self.calls.insert(key, call);
            return;
        };
        self.by_transfer_branch.retain(|_, k| *k != key);
        if let Some(tag) = resp.to_addr().ok().and_then(|n| n.tag().map(str::to_owned)) {
            t.dialog.set_remote_tag(&tag);
        }
        if let Ok(Some(relay_sip::Contact::Addresses(a))) = resp.contact() {
            if let Some(first) = a.first() {
                t.dialog.remote_target = Some(first.uri.clone());
            }
        }
        let leg = t.leg;
        let (this_trunk, other_trunk) = match leg {
            Leg::A => (call.a.trunk, call.b.trunk),
            Leg::B => (call.b.trunk, call.a.trunk),
        };
        let answered = (code < 300)
            .then(|| SessionDescription::parse(&resp.body, &Limits::default()).ok())
            .flatten()
            .and_then(|answer| {
                anchor_answer(
                    &answer,
                    &t.offered,
                    &self.config.trunks[other_trunk],
                    &self.config.trunks[this_trunk],
                    call.sdp_version,
                )
                .ok()
                .map(|a| (answer, a))
            });
        let Some((answer, answered)) = answered else {
            // Failed (or an unusable answer): the referrer hears it; the call stays.
            if code < 300 {
                let ack = self.transfer_ack(&mut t.dialog, &t.invite);
                out.push(Action::Send {
                    to: t.dialog.to.clone(),
                    message: ack,
                });
                let by = self.transfer_bye(&mut t.dialog);
                out.push(Action::Send {
                    to: t.dialog.to.clone(),
                    message: by,
                });
            } else {
                let ack = response::ack_of_failure(&t.invite, resp);
                out.push(Action::Send {
                    to: t.dialog.to.clone(),
                    message: ack,
                });
            }
            self.dialogs
                .remove(&(t.dialog.call_id.clone(), t.dialog.local_tag.clone()));
            let status = if code < 300 { 488 } else { code };
            self.notify(
                &mut call,
                leg,
                &format!("SIP/2.0 {status} {}", status_reason(status)),
                "terminated;reason=noresource",
                out,
            );
            self.calls.insert(key, call);
            return;
        };
        // The target answered: media to it, then its ACK, the referrer's NOTIFY and BYE.
        let media: Vec<MediaSpec> = answered
            .media
            .into_iter()
            .map(|mut m| {
                if leg == Leg::A {
                    std::mem::swap(&mut m.a, &mut m.b);
                }
                m
            })
            .collect();
        let ack = self.transfer_ack(&mut t.dialog, &t.invite);
        let mut then = vec![Action::Send {
            to: t.dialog.to.clone(),
            message: ack,
        }];
        self.notify(
            &mut call,
            leg,
            "SIP/2.0 200 OK",
            "terminated;reason=noresource",
            &mut then,
        );
        self.bye(&mut call, leg, &mut then);
        // The new dialog replaces the referrer's.
        let old = match leg {
            Leg::A => std::mem::replace(&mut call.a, t.dialog),
            Leg::B => std::mem::replace(&mut call.b, t.dialog),
        };
        self.dialogs.remove(&(old.call_id, old.local_tag));
        if leg == Leg::A {
            call.caller = t
                .invite
                .to_addr()
                .ok()
                .and_then(|n| n.uri.as_sip().and_then(|u| u.user().map(str::to_owned)))
                .unwrap_or_default();
        } else {
            call.callee = t
                .invite
                .to_addr()
                .ok()
                .and_then(|n| n.uri.as_sip().and_then(|u| u.user().map(str::to_owned)))
                .unwrap_or_default();
        }
        call.sdp_from[index(leg)] = Some(answer);
        match self.program(&call, media.clone()) {
            Some(op) => {
                call.installed = Some(media);
                out.push(Action::Program {
                    call: key,
                    op,
                    then,
                });
            }
            None => out.extend(then),
        }
        let _ = now_ns;
        self.calls.insert(key, call);
        self.persist(key, out);
    }

    /// The transfer target did not answer in time: the referrer hears 408.
    pub(super) fn transfer_timeout(&mut self, key: CallKey, out: &mut Vec<Action>) {
        let Some(mut call) = self.calls.remove(&key) else {
            return;
        };
        if let Some(t) = call.transfer.take() {
            self.by_transfer_branch.retain(|_, k| *k != key);
            self.dialogs
                .remove(&(t.dialog.call_id.clone(), t.dialog.local_tag.clone()));
            self.notify(
                &mut call,
                t.leg,
                "SIP/2.0 408 Request Timeout",
                "terminated;reason=timeout",
                out,
            );
        }
        self.calls.insert(key, call);
    }

    fn transfer_ack(&mut self, dialog: &mut Dialog, invite: &Message) -> Message {
        let branch = ids::branch(self.ids.as_mut());
        let via = self.via(dialog.trunk);
        let mut ack = dialog_request(dialog, Method::Ack, &via, &branch, &self.config.product);
        set(
            &mut ack,
            StdHeader::CSeq,
            format!("{} ACK", invite.cseq().map_or(1, |c| c.seq)),
        );
        ack
    }

    fn transfer_bye(&mut self, dialog: &mut Dialog) -> Message {
        let branch = ids::branch(self.ids.as_mut());
        let via = self.via(dialog.trunk);
        dialog_request(dialog, Method::Bye, &via, &branch, &self.config.product)
    }
}
