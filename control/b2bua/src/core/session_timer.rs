//! Session timers (RFC 4028), per leg, as a B2BUA keeps them: each dialog has its own
//! session interval and refresher.
//!
//! * Leg a (we are its UAS): if its INVITE asks for a timer and it supports the extension,
//!   the 200 carries `Session-Expires: N;refresher=uac` and `Require: timer`; a itself
//!   refreshes (re-INVITE or UPDATE), and a session it lets expire is ended.
//! * Leg b (we are its UAC): our INVITE offers `Session-Expires` with `Supported: timer`; if
//!   b's 200 makes us the refresher, we send an UPDATE without an offer every half interval;
//!   if it makes b the refresher, a session b lets expire is ended.
//!
//! An interval below our `Min-SE` gets 422 with our `Min-SE` (section 6).

use relay_sip::Refresher;

use super::*;

/// The smallest session interval we accept (RFC 4028 section 5: at least 90 s).
pub const MIN_SE: u32 = 90;

/// A leg's session timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionTimer {
    /// The session interval, seconds.
    pub interval: u32,
    /// Whether we refresh (else the peer does, and we watch).
    pub we_refresh: bool,
    /// Bumped on every refresh, so that older timers are ignored.
    pub generation: u32,
}

fn leg_index(leg: Leg) -> usize {
    if leg == Leg::A {
        0
    } else {
        1
    }
}

impl B2bua {
    /// Checks a's INVITE: `Err(422 response extras)` if its interval is below our Min-SE, else
    /// the timer leg a gets (if it asked for one and supports the extension).
    pub(super) fn session_timer_of_request(req: &Message) -> Result<Option<SessionTimer>, ()> {
        let Ok(Some(se)) = req.session_expires() else {
            return Ok(None);
        };
        //= https://www.rfc-editor.org/rfc/rfc4028#section-8.1
        //# If the value of the Session-Expires header field is
        //# lower than the Min-SE value (if present), the UAS MUST reject the request
        //# with a 422 response.
        if se.delta < MIN_SE {
            return Err(());
        }
        let supports = req
            .supported()
            .is_ok_and(|s| s.iter().any(|t| t.as_str().eq_ignore_ascii_case("timer")));
        if !supports {
            return Ok(None);
        }
        Ok(Some(SessionTimer {
            interval: se.delta,
            we_refresh: se.refresher() == Some(Refresher::Uas),
            generation: 0,
        }))
    }

    /// The headers our 200 to a carries for its timer.
    pub(super) fn session_timer_headers(t: &SessionTimer) -> [(StdHeader, String); 2] {
        let who = if t.we_refresh { "uas" } else { "uac" };
        [
            (
                StdHeader::SessionExpires,
                format!("{};refresher={who}", t.interval),
            ),
            (StdHeader::Require, "timer".to_owned()),
        ]
    }

    /// b's 2xx to our INVITE: the timer of leg b, if b took part.
    pub(super) fn session_timer_of_response(resp: &Message) -> Option<SessionTimer> {
        let se = resp.session_expires().ok().flatten()?;
        Some(SessionTimer {
            interval: se.delta.max(MIN_SE),
            // Without a refresher parameter in a 2xx, the UAC (we) refreshes (section 7.2).
            we_refresh: se.refresher() != Some(Refresher::Uas),
            generation: 0,
        })
    }

    /// (Re)starts `leg`'s timer: a refresh at half the interval if we refresh, else the end
    /// of the session a little before it expires (section 10).
    pub(super) fn arm_session_timer(
        &mut self,
        key: CallKey,
        leg: Leg,
        now_ns: u64,
        out: &mut Vec<Action>,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(t) = call.session_timers[leg_index(leg)].as_mut() else {
            return;
        };
        t.generation += 1;
        let secs = u64::from(t.interval);
        let at = if t.we_refresh {
            now_ns + secs * 1_000_000_000 / 2
        } else {
            //= https://www.rfc-editor.org/rfc/rfc4028#section-10
            //# the BYE SHOULD be sent
            //# before the session expires.  It is RECOMMENDED that the BYE be sent
            //# at max(32, SE/3) seconds
            now_ns + (secs - (secs / 3).max(32).min(secs)) * 1_000_000_000
        };
        out.push(Action::Timer {
            key: TimerKey::SessionTimer(key, leg, t.generation),
            at_ns: at,
        });
    }

    /// A session timer fired.
    pub(super) fn session_timer_fired(
        &mut self,
        key: CallKey,
        leg: Leg,
        generation: u32,
        now_ns: u64,
        out: &mut Vec<Action>,
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let Some(t) = call.session_timers[leg_index(leg)] else {
            return;
        };
        if t.generation != generation || !matches!(call.phase, Phase::Confirmed | Phase::Answered) {
            return;
        }
        if t.we_refresh {
            // An UPDATE without an offer in the leg's dialog (section 9).
            let mut call = self.calls.remove(&key).expect("present above");
            let branch = ids::branch(self.ids.as_mut());
            let trunk = if leg == Leg::A {
                call.a.trunk
            } else {
                call.b.trunk
            };
            let via = self.via(trunk);
            let contact = self.contact(trunk, None);
            let product = self.config.product.clone();
            let dialog = if leg == Leg::A {
                &mut call.a
            } else {
                &mut call.b
            };
            let mut u = dialog_request(dialog, Method::Update, &via, &branch, &product);
            add(&mut u, StdHeader::Contact, contact);
            add(
                &mut u,
                StdHeader::SessionExpires,
                format!("{};refresher=uac", t.interval),
            );
            add(&mut u, StdHeader::Supported, "timer");
            out.push(Action::Send {
                to: dialog.to.clone(),
                message: u,
            });
            self.calls.insert(key, call);
            self.arm_session_timer(key, leg, now_ns, out);
        } else {
            // The peer let the session expire.
            let mut call = self.calls.remove(&key).expect("present above");
            for l in [Leg::A, Leg::B] {
                self.bye_with_reason(
                    &mut call,
                    l,
                    Some("SIP;cause=408;text=\"session timer expired\""),
                    out,
                );
            }
            call.phase = Phase::Ending;
            self.end(
                call,
                408,
                "session timer expired",
                EndedBy::Relay,
                now_ns,
                out,
            );
        }
    }

    /// A refresh (re-INVITE or UPDATE) from `leg` succeeded: its timer starts again.
    pub(super) fn session_refreshed(
        &mut self,
        key: CallKey,
        leg: Leg,
        now_ns: u64,
        out: &mut Vec<Action>,
    ) {
        if self
            .calls
            .get(&key)
            .is_some_and(|c| c.session_timers[leg_index(leg)].is_some_and(|t| !t.we_refresh))
        {
            self.arm_session_timer(key, leg, now_ns, out);
        }
    }
}
