//! Installing, modifying and removing calls: each call's media pairs go into the per-call
//! state and their local addresses into the flow table, both directions at once.

use std::net::{IpAddr, SocketAddr};

use relay_srtp::{Context, ContextConfig};

use super::{CallStats, Keyed, LegParts, Media, PortAddr, Receiving, Relay, Sending, STATIC};
use crate::flows::{FlowRef, MAX_MEDIA};
use relay_session::{parse_mac, CallSpec, LegSpec, RtcpMode, SessionError, SessionsFile};

impl Relay {
    /// Installs a sessions document: static neighbours, then calls.
    pub fn install(&mut self, doc: &SessionsFile) -> Result<(), SessionError> {
        for n in &doc.neighbours {
            self.neighbours.insert(n.ip, (parse_mac(&n.mac)?, STATIC));
            self.neighbour_gen += 1;
        }
        for call in &doc.calls {
            self.add_call(call)?;
        }
        Ok(())
    }

    fn port_of(&self, ip: IpAddr) -> Option<&PortAddr> {
        self.ports.iter().find(|p| p.owns(ip))
    }

    fn make_leg(
        &self,
        call: &str,
        spec: &LegSpec,
        (mut old_rx, mut old_tx): (Keyed, Keyed),
    ) -> Result<LegParts, SessionError> {
        if self.port_of(spec.local.ip()).is_none() {
            return Err(SessionError::NotLocal(spec.local.ip()));
        }
        let ctx_config = ContextConfig {
            replay_window: self.config.replay_window,
            ..ContextConfig::default()
        };
        // Keeping a key keeps its context, and so its ROC and replay window (RFC 3711 3.3.1);
        // a new key starts a fresh context.
        let context = |c: &Option<relay_session::CryptoSpec>,
                       old: &mut Keyed,
                       resume: &[relay_session::StreamPosition]|
         -> Result<Keyed, SessionError> {
            match c {
                None => Ok(None),
                Some(c) => {
                    let key = c.parse(call)?;
                    match old.take() {
                        Some(kept) if kept.is_for(&key) => Ok(Some(kept)),
                        _ => {
                            let mut ctx = Context::new(&key, ctx_config.clone());
                            // A stream carried over a restart goes on at its ROC.
                            for p in resume {
                                ctx.resume((*p).into());
                            }
                            Ok(Some(Box::new(ctx)))
                        }
                    }
                }
            }
        };
        let receive = context(&spec.receive, &mut old_rx, &spec.resume_receive)?;
        let send = context(&spec.send, &mut old_tx, &spec.resume_send)?;
        let clock_rate = spec.clock_rate.max(1);
        Ok(LegParts {
            receiving: Receiving {
                strict: spec.strict_source,
                receive,
                clock_per_ns: ((u128::from(clock_rate) << 40) / 1_000_000_000) as u64,
                remote: spec.remote.map(Into::into),
                ..Receiving::default()
            },
            sending: Sending {
                send,
                ..Sending::default()
            },
            local: spec.local,
        })
    }

    fn local_addrs(spec: &CallSpec) -> Vec<(SocketAddr, usize, u8, bool)> {
        let mut out = Vec::new();
        for (i, m) in spec.media.iter().enumerate() {
            for (side, leg) in [(0u8, &m.a), (1u8, &m.b)] {
                out.push((leg.local, i, side, false));
                if m.rtcp == RtcpMode::PortPlusOne {
                    out.push((
                        SocketAddr::new(leg.local.ip(), leg.local.port().wrapping_add(1)),
                        i,
                        side,
                        true,
                    ));
                }
            }
        }
        out
    }

    /// Installs a call (both directions of every media pair at once).
    pub fn add_call(&mut self, spec: &CallSpec) -> Result<(), SessionError> {
        if self.calls.contains_key(spec.id.as_str()) {
            return Err(SessionError::CallExists(spec.id.clone()));
        }
        self.insert_call(spec, Vec::new())
    }

    fn insert_call(
        &mut self,
        spec: &CallSpec,
        mut old_media: Vec<Option<Media>>,
    ) -> Result<(), SessionError> {
        let addrs = Self::local_addrs(spec);
        for (i, (a, ..)) in addrs.iter().enumerate() {
            if self.flows.contains((*a).into()) || addrs[..i].iter().any(|(b, ..)| b == a) {
                return Err(SessionError::AddressInUse(*a));
            }
        }
        let mut built = Vec::with_capacity(spec.media.len());
        for (i, m) in spec.media.iter().enumerate() {
            let (old_a, old_b) = match old_media.get_mut(i).and_then(Option::as_mut) {
                Some(old) => (old.take_contexts(0), old.take_contexts(1)),
                None => ((None, None), (None, None)),
            };
            built.push(Media::new(
                self.make_leg(&spec.id, &m.a, old_a)?,
                self.make_leg(&spec.id, &m.b, old_b)?,
                m.rtcp,
            ));
        }
        let new_slots = built.len().saturating_sub(self.free.len());
        if self.media.len() + new_slots > MAX_MEDIA as usize {
            return Err(SessionError::WorkerFull(spec.id.clone()));
        }
        let mut slots = super::CallSlots::new();
        for m in built {
            let slot = match self.free.pop() {
                Some(s) => {
                    self.media[s as usize] = m;
                    s
                }
                None => {
                    self.media.push(m);
                    (self.media.len() - 1) as u32
                }
            };
            slots.push(slot);
        }
        for (addr, i, side, rtcp_port) in addrs {
            self.flows
                .insert(addr.into(), FlowRef::new(slots[i], side, rtcp_port));
        }
        self.calls.insert(spec.id.as_str().into(), slots);
        for m in &spec.media {
            for leg in [&m.a, &m.b] {
                if let Some(remote) = leg.remote {
                    self.resolve_ahead(leg.local, remote.ip());
                }
            }
        }
        Ok(())
    }

    fn take_call(&mut self, id: &str) -> Result<Vec<Option<Media>>, SessionError> {
        let slots = self
            .calls
            .remove(id)
            .ok_or_else(|| SessionError::NoSuchCall(id.to_owned()))?;
        let mut media = Vec::with_capacity(slots.len());
        for s in slots {
            let m = std::mem::replace(&mut self.media[s as usize], Media::vacant());
            let m = m.live.then_some(m);
            if let Some(m) = &m {
                for local in m.locals.map(SocketAddr::from) {
                    self.flows.remove(local.into());
                    self.flows
                        .remove(SocketAddr::new(local.ip(), local.port().wrapping_add(1)).into());
                }
            }
            self.free.push(s);
            media.push(m);
        }
        Ok(media)
    }

    /// Removes a call; returns its final counters.
    pub fn remove_call(&mut self, id: &str) -> Result<CallStats, SessionError> {
        let media = self.take_call(id)?;
        Ok(CallStats {
            id: id.to_owned(),
            media: media
                .into_iter()
                .flatten()
                .map(|m| [m.leg_stats(0), m.leg_stats(1)])
                .collect(),
        })
    }

    /// Replaces a call's media (re-INVITE): legs whose key is unchanged keep their SRTP
    /// context (ROC, replay window); changed keys start fresh contexts. On error the old call
    /// stays as it was.
    pub fn modify_call(&mut self, spec: &CallSpec) -> Result<(), SessionError> {
        let own = self
            .calls
            .get(spec.id.as_str())
            .ok_or_else(|| SessionError::NoSuchCall(spec.id.clone()))?;
        // Check everything first, so a refused change leaves the call as it was.
        let addrs = Self::local_addrs(spec);
        for (i, (a, ..)) in addrs.iter().enumerate() {
            let taken_by_other = self
                .flows
                .get((*a).into())
                .is_some_and(|f| !own.contains(&f.media()));
            if taken_by_other || addrs[..i].iter().any(|(b, ..)| b == a) {
                return Err(SessionError::AddressInUse(*a));
            }
        }
        for m in &spec.media {
            for leg in [&m.a, &m.b] {
                if self.port_of(leg.local.ip()).is_none() {
                    return Err(SessionError::NotLocal(leg.local.ip()));
                }
                for c in [&leg.receive, &leg.send].into_iter().flatten() {
                    c.parse(&spec.id)?;
                }
            }
        }
        let old = self.take_call(&spec.id)?;
        self.insert_call(spec, old)
    }

    /// The ids of the installed calls.
    pub fn call_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.calls.keys().map(|k| k.to_string()).collect();
        ids.sort();
        ids
    }

    /// A call's counters.
    pub fn call_stats(&self, id: &str) -> Option<CallStats> {
        let slots = self.calls.get(id)?;
        Some(CallStats {
            id: id.to_owned(),
            media: slots
                .iter()
                .map(|&s| &self.media[s as usize])
                .filter(|m| m.live)
                .map(|m| [m.leg_stats(0), m.leg_stats(1)])
                .collect(),
        })
    }

    /// Number of installed media pairs.
    pub fn media_count(&self) -> usize {
        self.media.len() - self.free.len()
    }
}
