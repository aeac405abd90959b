//! What a confirmed call needs to go on after `relay-control` restarts (or is killed): its
//! two dialogs, its ports and its data-plane id, so that a BYE from either side, a
//! re-INVITE or a media timeout still ends or changes it properly. The media itself lives
//! in the data plane and is not touched by a control-plane restart.
//!
//! Never SRTP keys: the data plane holds them, and a re-INVITE after a restart offers fresh
//! ones. The shell keeps these records only while the call lasts (`Action::Persist`,
//! `Action::Forget`); they hold the call's numbers, like the call itself.

use serde::{Deserialize, Serialize};

use super::*;
use crate::media::OfferedMedia;
use crate::ports::PortPair;

/// The version of [`PersistedCall`] this build writes.
pub const PERSIST_VERSION: u32 = 1;

/// One leg's dialog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedDialog {
    /// The trunk's name.
    pub trunk: String,
    /// The Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// Our From value.
    pub local: String,
    /// The peer's value, with its tag.
    pub remote: String,
    /// The peer's Contact.
    pub remote_target: Option<String>,
    /// Our last CSeq.
    pub cseq: u32,
}

/// A confirmed call, as kept while it lasts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedCall {
    /// [`PERSIST_VERSION`].
    pub version: u32,
    /// The call's data-plane id (also the record's name).
    pub dataplane_id: String,
    /// Leg a.
    pub a: PersistedDialog,
    /// Leg b, and which peer of its trunk it went to.
    pub b: PersistedDialog,
    /// The peer of b's trunk.
    pub b_peer: usize,
    /// Ports: (worker, leg a's RTP address, leg b's RTP address) per anchored stream.
    pub ports: Vec<(usize, SocketAddr, SocketAddr)>,
    /// The caller and callee (for the call's record).
    pub caller: String,
    /// The callee.
    pub callee: String,
    /// When the INVITE arrived and when it was answered, Unix milliseconds.
    pub setup_unix_ms: i64,
    /// When it was answered.
    pub answer_unix_ms: Option<i64>,
    /// SRTP suites towards a and b per stream.
    pub suites: Vec<(Option<String>, Option<String>)>,
    /// On hold.
    pub held: bool,
}

fn dialog_of_record(
    d: &PersistedDialog,
    trunk: usize,
    to: Destination,
    transport: Transport,
) -> Option<Dialog> {
    Some(Dialog {
        trunk,
        to,
        transport,
        call_id: d.call_id.clone(),
        local_tag: d.local_tag.clone(),
        local: d.local.clone(),
        remote: d.remote.clone(),
        remote_target: match &d.remote_target {
            Some(t) => Some(Uri::parse(t).ok()?),
            None => None,
        },
        cseq: d.cseq,
    })
}

impl B2bua {
    /// The record of call `key` once it is confirmed (`None` before).
    pub(super) fn persisted(&self, key: CallKey, unix_ms_at_zero: i64) -> Option<PersistedCall> {
        let c = self.calls.get(&key)?;
        let dialog = |d: &Dialog| PersistedDialog {
            trunk: self.config.trunks[d.trunk].name.clone(),
            call_id: d.call_id.clone(),
            local_tag: d.local_tag.clone(),
            local: d.local.clone(),
            remote: d.remote.clone(),
            remote_target: d.remote_target.as_ref().map(|u| u.to_string()),
            cseq: d.cseq,
        };
        let ms = |ns: u64| unix_ms_at_zero + (ns / 1_000_000) as i64;
        let (setup_unix_ms, answer_unix_ms) = c
            .restored_times
            .unwrap_or((ms(c.setup_ns), c.answer_ns.map(ms)));
        Some(PersistedCall {
            version: PERSIST_VERSION,
            dataplane_id: c.dataplane_id.clone(),
            a: dialog(&c.a),
            b: dialog(&c.b),
            b_peer: c.b_peer,
            ports: c.offered.pairs().map(|p| (p.worker, p.a, p.b)).collect(),
            caller: c.caller.clone(),
            callee: c.callee.clone(),
            setup_unix_ms,
            answer_unix_ms,
            suites: c
                .installed
                .iter()
                .flatten()
                .map(|m| {
                    (
                        m.a.send.as_ref().map(|s| s.suite.clone()),
                        m.b.send.as_ref().map(|s| s.suite.clone()),
                    )
                })
                .collect(),
            held: c.held,
        })
    }

    /// Takes back a call kept over a restart; `unix_ms_at_zero` is the wall clock at this
    /// process's time 0. Refused (`false`) if its trunks are no longer configured. In-dialog
    /// requests to leg a go to its Contact (its connection is gone).
    pub fn restore(
        &mut self,
        p: &PersistedCall,
        unix_ms_at_zero: i64,
        now_ns: u64,
    ) -> Option<Vec<Action>> {
        if p.version != PERSIST_VERSION {
            return None;
        }
        let find = |name: &str| self.config.trunks.iter().position(|t| t.name == name);
        let (Some(at), Some(bt)) = (find(&p.a.trunk), find(&p.b.trunk)) else {
            return None;
        };
        let bp = self.config.trunks[bt].peers.get(p.b_peer).cloned()?;
        let a_transport = self.config.trunks[at]
            .peers
            .first()
            .map_or(Transport::Udp, |x| x.transport.clone());
        let a = dialog_of_record(&p.a, at, Destination::Target { trunk: at }, a_transport)?;
        let b = dialog_of_record(
            &p.b,
            bt,
            Destination::Peer {
                trunk: bt,
                peer: p.b_peer,
            },
            bp.transport,
        )?;
        let key = self.next_key;
        self.next_key += 1;
        let pairs: Vec<PortPair> = p
            .ports
            .iter()
            .map(|&(worker, a, b)| PortPair { worker, a, b })
            .collect();
        for pair in &pairs {
            self.ports.claim(*pair);
        }
        let ns = |ms: i64| (ms - unix_ms_at_zero).max(0) as u64 * 1_000_000;
        let call = Call {
            key,
            dataplane_id: p.dataplane_id.clone(),
            phase: Phase::Confirmed,
            a,
            b,
            a_invite: Message::request(
                Method::Invite,
                Uri::parse("sip:restored.invalid").expect("a URI"),
            ),
            a_flow: 0,
            a_last_response: None,
            b_invite: Message::request(
                Method::Invite,
                Uri::parse("sip:restored.invalid").expect("a URI"),
            ),
            b_peer: p.b_peer,
            b_attempt: 1,
            b_offer: SessionDescription::parse(
                b"v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",
                &Limits::default(),
            )
            .expect("a minimal SDP"),
            offered: OfferedMedia::restored(pairs),
            a_answer: None,
            b_suites: p.suites.iter().map(|(_, b)| b.clone()).collect(),
            reoffer: None,
            restored_suites: p.suites.clone(),
            restored_times: Some((p.setup_unix_ms, p.answer_unix_ms)),
            offerless: false,
            late_offer: None,
            sdp_from: [None, None],
            session_timers: [None, None],
            transfer: None,
            media_seen: (0, now_ns),
            held: p.held,
            last_counters: None,
            installed: Some(Vec::new()),
            cancelled: false,
            b_provisional: true,
            b_final: true,
            caller: p.caller.clone(),
            callee: p.callee.clone(),
            setup_ns: ns(p.setup_unix_ms),
            answer_ns: p.answer_unix_ms.map(ns),
            sdp_version: 100,
        };
        self.dialogs.insert(
            (call.a.call_id.clone(), call.a.local_tag.clone()),
            (key, Leg::A),
        );
        self.dialogs.insert(
            (call.b.call_id.clone(), call.b.local_tag.clone()),
            (key, Leg::B),
        );
        self.calls.insert(key, call);
        let mut out = Vec::new();
        self.watch_media(key, now_ns, &mut out);
        Some(out)
    }

    /// Sets the wall clock (Unix milliseconds) at this process's time 0, for records kept
    /// over a restart.
    pub fn set_wall_clock(&mut self, unix_ms_at_zero: i64) {
        self.wall_ms_at_zero = unix_ms_at_zero;
    }

    /// Keeps call `key`'s record (after it is confirmed or changed).
    pub(super) fn persist(&self, key: CallKey, out: &mut Vec<Action>) {
        if let Some(p) = self.persisted(key, self.wall_ms_at_zero) {
            out.push(Action::Persist(Box::new(p)));
        }
    }
}
