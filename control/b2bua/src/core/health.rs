//! Trunk health by OPTIONS (RFC 3261 section 11), and media timeouts.
//!
//! Every peer of every trunk gets an OPTIONS each `options_interval_ns`; a response below
//! 500 marks it up with the round-trip time, a 5xx or 6xx or no response within 32 s marks
//! it down. New calls skip peers that are down while another is up.
//!
//! A confirmed call's media counters are read from the data plane each `media_check_ns`;
//! a call whose packet count has not moved for `media_timeout_ns` (`hold_timeout_ns` while a
//! leg holds it) is ended with a BYE to both legs carrying `Reason: SIP;cause=408;text="media
//! timeout"` (RFC 3326).

use super::*;

/// What the B2BUA knows of one trunk peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerHealth {
    /// Up (answered), down (5xx/6xx or silent), or not asked yet.
    pub up: Option<bool>,
    /// The last OPTIONS round trip.
    pub rtt_ns: Option<u64>,
    /// When `up` last changed.
    pub since_ns: u64,
    /// OPTIONS sent.
    pub sent: u64,
    /// OPTIONS unanswered.
    pub timeouts: u64,
}

/// How long an OPTIONS may go unanswered (Timer F, 64*T1 with T1 = 500 ms).
const PING_TIMEOUT_NS: u64 = 32_000_000_000;

impl B2bua {
    /// The first actions: an OPTIONS to every trunk peer, spread over the first second.
    pub fn start(&mut self, now_ns: u64) -> Vec<Action> {
        let mut out = Vec::new();
        let peers: Vec<(usize, usize)> = self
            .config
            .trunks
            .iter()
            .enumerate()
            .filter(|(_, tr)| tr.options_ping)
            .flat_map(|(t, tr)| (0..tr.peers.len()).map(move |p| (t, p)))
            .collect();
        let n = peers.len().max(1) as u64;
        for (i, (t, p)) in peers.into_iter().enumerate() {
            out.push(Action::Timer {
                key: TimerKey::OptionsPing(t, p),
                at_ns: now_ns + i as u64 * 1_000_000_000 / n,
            });
        }
        out
    }

    /// Each trunk peer's health: ((trunk, peer), health).
    pub fn health(&self) -> Vec<((usize, usize), PeerHealth)> {
        let mut v: Vec<_> = self.health.iter().map(|(k, h)| (*k, h.clone())).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    /// Whether peer `peer` of `trunk` is known to be down while another of its peers is not.
    pub(super) fn avoid_peer(&self, trunk: usize, peer: usize) -> bool {
        let down = |p: usize| self.health.get(&(trunk, p)).and_then(|h| h.up) == Some(false);
        down(peer) && (0..self.config.trunks[trunk].peers.len()).any(|p| !down(p))
    }

    pub(super) fn ping(&mut self, trunk: usize, peer: usize, now_ns: u64, out: &mut Vec<Action>) {
        let Some(p) = self
            .config
            .trunks
            .get(trunk)
            .and_then(|t| t.peers.get(peer))
            .cloned()
        else {
            return;
        };
        let t = &self.config.trunks[trunk];
        let mut uri = relay_sip::SipUri::new(
            false,
            relay_sip::Host::parse(&p.host).expect("configured hosts are checked at start-up"),
            Some(p.port),
        );
        if p.transport != Transport::Udp {
            let _ = uri.set_param(
                "transport",
                Some(&p.transport.as_str().to_ascii_lowercase()),
            );
        }
        let branch = ids::branch(self.ids.as_mut());
        let tag = ids::tag(self.ids.as_mut());
        let call_id = ids::call_id(self.ids.as_mut(), &t.local_host);
        let mut m = Message::request(Method::Options, Uri::Sip(uri));
        add(
            &mut m,
            StdHeader::Via,
            format!("{};branch={branch};rport", self.via(trunk)),
        );
        add(&mut m, StdHeader::MaxForwards, "70");
        add(
            &mut m,
            StdHeader::From,
            format!("<sip:ping@{}>;tag={tag}", t.local_host),
        );
        add(&mut m, StdHeader::To, format!("<sip:{}>", p.host));
        add(&mut m, StdHeader::CallId, call_id);
        add(&mut m, StdHeader::CSeq, "1 OPTIONS");
        add(&mut m, StdHeader::Contact, self.contact(trunk, None));
        add(&mut m, StdHeader::UserAgent, self.config.product.clone());
        if t.profile == Profile::Teams {
            add(
                &mut m,
                HeaderName::parse("X-MS-SBC").expect("a token"),
                self.config.product.clone(),
            );
        }
        out.push(Action::Send {
            to: Destination::Peer { trunk, peer },
            message: m,
        });
        self.pings.insert(branch.clone(), (trunk, peer, now_ns));
        self.health.entry((trunk, peer)).or_default().sent += 1;
        out.push(Action::Timer {
            key: TimerKey::OptionsTimeout(branch),
            at_ns: now_ns + PING_TIMEOUT_NS,
        });
        out.push(Action::Timer {
            key: TimerKey::OptionsPing(trunk, peer),
            at_ns: now_ns + self.config.options_interval_ns,
        });
    }

    fn mark(&mut self, trunk: usize, peer: usize, up: bool, now_ns: u64) {
        let h = self.health.entry((trunk, peer)).or_default();
        if h.up != Some(up) {
            h.up = Some(up);
            h.since_ns = now_ns;
        }
    }

    pub(super) fn pong(&mut self, branch: &str, code: u16, now_ns: u64) {
        if code < 200 {
            return;
        }
        let Some((trunk, peer, sent)) = self.pings.remove(branch) else {
            return;
        };
        self.mark(trunk, peer, code < 500, now_ns);
        if let Some(h) = self.health.get_mut(&(trunk, peer)) {
            h.rtt_ns = Some(now_ns.saturating_sub(sent));
        }
    }

    pub(super) fn ping_timeout(&mut self, branch: &str, now_ns: u64) {
        if let Some((trunk, peer, _)) = self.pings.remove(branch) {
            self.mark(trunk, peer, false, now_ns);
            self.health.entry((trunk, peer)).or_default().timeouts += 1;
        }
    }

    /// Starts the media watch of an answered call.
    pub(super) fn watch_media(&self, key: CallKey, now_ns: u64, out: &mut Vec<Action>) {
        out.push(Action::Timer {
            key: TimerKey::MediaCheck(key),
            at_ns: now_ns + self.config.media_check_ns,
        });
    }

    pub(super) fn media_check(&mut self, key: CallKey, now_ns: u64, out: &mut Vec<Action>) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if !matches!(call.phase, Phase::Answered | Phase::Confirmed) || call.installed.is_none() {
            return;
        }
        out.push(Action::QueryMedia {
            call: key,
            dataplane_id: call.dataplane_id.clone(),
        });
        self.watch_media(key, now_ns, out);
    }

    /// The data plane's counters of `call` (`None`: it does not know the call any more).
    pub fn on_media(
        &mut self,
        key: CallKey,
        counters: Option<&relay_session::stats::CallCounters>,
        now_ns: u64,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(call) = self.calls.get_mut(&key) else {
            return out;
        };
        let Some(counters) = counters else {
            // The data plane does not know the call: it restarted. Install the call again,
            // each SRTP stream where it last stood (its rollover counter and highest
            // sequence number), so streams past the sequence wrap keep authenticating.
            return self.reinstall(key, now_ns);
        };
        call.last_counters = Some(counters.clone());
        let packets: u64 = counters
            .media
            .iter()
            .map(|m| m.a.rx_packets + m.b.rx_packets)
            .sum();
        if packets != call.media_seen.0 {
            call.media_seen = (packets, now_ns);
            return out;
        }
        let limit = if call.held {
            self.config.hold_timeout_ns
        } else {
            self.config.media_timeout_ns
        };
        if now_ns.saturating_sub(call.media_seen.1) < limit {
            return out;
        }
        let mut call = self.calls.remove(&key).expect("present above");
        for leg in [Leg::A, Leg::B] {
            self.bye_with_reason(
                &mut call,
                leg,
                Some("SIP;cause=408;text=\"media timeout\""),
                &mut out,
            );
        }
        call.phase = Phase::Ending;
        self.end(call, 408, "media timeout", EndedBy::Relay, now_ns, &mut out);
        out
    }
}

impl B2bua {
    /// The shell could not reach peer `peer` of `trunk` (connection refused, handshake
    /// failed): the peer is down, its OPTIONS fail now, and calls waiting on it without any
    /// response move to the next peer as after a 503 (RFC 3263 section 4.3).
    pub fn peer_unreachable(&mut self, trunk: usize, peer: usize, now_ns: u64) -> Vec<Action> {
        let mut out = Vec::new();
        self.mark(trunk, peer, false, now_ns);
        self.pings
            .retain(|_, (t, p, _)| !(*t == trunk && *p == peer));
        let stuck: Vec<CallKey> = self
            .calls
            .values()
            .filter(|c| {
                c.phase == Phase::Calling
                    && !c.b_provisional
                    && !c.b_final
                    && c.b.to == Destination::Peer { trunk, peer }
            })
            .map(|c| c.key)
            .collect();
        for key in stuck {
            if let Some(call) = self.calls.remove(&key) {
                self.fail_over_or_end(
                    call,
                    503,
                    "peer unreachable",
                    EndedBy::Relay,
                    now_ns,
                    &mut out,
                );
            }
        }
        out
    }

    /// Installs `key`'s media again after the data plane lost it, with the stream positions
    /// it last reported; a call whose keys this process does not hold (taken back after a
    /// restart of relay-control) cannot be, and is ended.
    fn reinstall(&mut self, key: CallKey, now_ns: u64) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(call) = self.calls.get_mut(&key) else {
            return out;
        };
        let media = call.installed.clone().unwrap_or_default();
        if media.is_empty() {
            let mut call = self.calls.remove(&key).expect("present above");
            call.installed = None;
            for leg in [Leg::A, Leg::B] {
                self.bye_with_reason(
                    &mut call,
                    leg,
                    Some("SIP;cause=500;text=\"media lost\""),
                    &mut out,
                );
            }
            call.phase = Phase::Ending;
            self.end(
                call,
                500,
                "media lost with the data plane",
                EndedBy::Relay,
                now_ns,
                &mut out,
            );
            return out;
        }
        let mut media = media;
        if let Some(last) = &call.last_counters {
            for (m, c) in media.iter_mut().zip(&last.media) {
                m.a.resume_receive = c.a.srtp_receive.clone();
                m.a.resume_send = c.a.srtp_send.clone();
                m.b.resume_receive = c.b.srtp_receive.clone();
                m.b.resume_send = c.b.srtp_send.clone();
            }
        }
        call.media_seen = (call.media_seen.0, now_ns);
        out.push(Action::Program {
            call: key,
            op: ProgramOp::Add(CallSpec {
                id: call.dataplane_id.clone(),
                media,
            }),
            then: Vec::new(),
        });
        out
    }
}
