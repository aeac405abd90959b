//! What the shell refuses before a message reaches the B2BUA, and the answers it sends for
//! what the parser refused: `[limits]` of `control.toml` (`crate::config::LimitsSection`).
//!
//! * Connections: inbound TCP/TLS connections at once, in total and per source address
//!   ([`ConnLimiter`]), and TLS handshakes in progress; over a limit the connection is
//!   closed on accept. Timeouts (handshake, a message that stays half-sent, a silent
//!   connection) are enforced by the transport tasks (`conn.rs`) with the durations here.
//! * New INVITEs per second, globally and per source address ([`NewRequestLimiter`], token
//!   buckets holding one second's worth), answered 503 with Retry-After by the transport
//!   task, before the message is queued to the B2BUA's task; other new requests outside a
//!   dialog (OPTIONS, REGISTER, MESSAGE, ...) the same, with their own rates.
//! * Malformed requests are answered with the parser's status ([`Shield::answer`]) from
//!   what [`relay_sip::Refused`] salvaged; such answers are themselves rate-limited, since
//!   on UDP they go to a source address that may be forged.
//!
//! Why the INVITE rate limit sits here and not in the core: it needs a clock and state per
//! source address, and its point is to turn a flood away before it costs the one task that
//! runs every call (the B2BUA's), so it runs in the transport tasks, which see the source
//! first. The core keeps the limit only it can judge, `max_calls` (503 when reached).
//!
//! Every refusal is counted in [`Counters`]; the shell logs them when they change (at most
//! once a minute) and when it stops. The log lines of single refusals (debug level) name
//! no address: the logs never name a peer except by the event loop's daily pseudonym
//! (`anon.rs`), and the counters say how much was refused.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use relay_b2bua::ids::{self, OsIds};
use relay_sip::{Header, Message, Method, ParseError, Refused, StdHeader};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::LimitsSection;

/// Per-source INVITE buckets kept at most; sources beyond share one bucket.
const MAX_TRACKED_SOURCES: usize = 16_384;

/// How long an admitted INVITE is remembered, so that its retransmissions pass without a
/// token: 64 * T1, the INVITE client transaction's timeout (RFC 3261 Timer B).
const REMEMBER_ADMITTED: Duration = Duration::from_secs(32);

macro_rules! counters {
    ($($name:ident: $doc:literal,)*) => {
        /// Refusals and answers, counted since start.
        #[derive(Debug, Default)]
        pub struct Counters {
            $(#[doc = $doc] pub $name: AtomicU64,)*
        }

        /// A copy of [`Counters`] at one moment.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct CountersSnapshot {
            $(#[doc = $doc] pub $name: u64,)*
        }

        impl Counters {
            /// The values now.
            pub fn snapshot(&self) -> CountersSnapshot {
                CountersSnapshot {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                }
            }
        }

        impl CountersSnapshot {
            /// Every counter with its name, for metrics.
            pub fn named(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)*]
            }
        }

        impl fmt::Display for CountersSnapshot {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut first = true;
                $(
                    if !first {
                        f.write_str(" ")?;
                    }
                    first = false;
                    write!(f, "{}={}", stringify!($name), self.$name)?;
                )*
                let _ = first;
                Ok(())
            }
        }
    };
}

counters! {
    malformed_answered: "Malformed requests answered with the parser's status.",
    malformed_unanswerable: "Malformed messages that could not be answered (responses, ACKs, garbage, or a field a response needs missing or unsafe).",
    error_responses_limited: "Answers to malformed requests not sent: over `error_responses_per_second`.",
    framing_lost: "Connections closed because their bytes lost the SIP framing.",
    connections_refused_total: "Connections closed on accept: over `max_connections`.",
    connections_refused_per_source: "Connections closed on accept: over `max_connections_per_source`.",
    tls_handshakes_refused: "Connections closed on accept: over `max_tls_handshakes`.",
    tls_handshakes_failed: "TLS handshakes that failed.",
    tls_handshakes_timed_out: "TLS handshakes over `tls_handshake_timeout_s`.",
    message_timeouts: "Connections closed with a message (or the first one) unfinished after `message_timeout_s`.",
    idle_timeouts: "Connections closed after `idle_timeout_s` of silence.",
    invites_refused_global: "New INVITEs answered 503: over `invites_per_second`.",
    invites_refused_per_source: "New INVITEs answered 503: over `invites_per_second_per_source`.",
    requests_refused_global: "Other new out-of-dialog requests answered 503: over `requests_per_second`.",
    requests_refused_per_source: "Other new out-of-dialog requests answered 503: over `requests_per_second_per_source`.",
    udp_flows_refused: "SIP datagrams dropped: from a new address and port over `max_udp_flows` or `max_udp_flows_per_source`.",
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A token bucket: `rate` tokens a second, holding at most `burst`.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `rate` a second holding one second's worth.
    pub fn per_second(rate: u32, now: Instant) -> TokenBucket {
        let rate = f64::from(rate.max(1));
        TokenBucket {
            rate,
            burst: rate,
            tokens: rate,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }

    /// Whether a token is there now (without taking it).
    pub fn ready(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= 1.0
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        if self.ready(now) {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket is full again (its owner has been quiet for a while).
    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }
}

/// Why a new request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateRefusal {
    /// Over the global rate (`invites_per_second`, `requests_per_second`).
    Global,
    /// Over the rate of one source (`..._per_source`).
    PerSource,
}

/// New requests per second (INVITEs, or the other out-of-dialog requests), globally and per
/// source address.
///
/// A source over its own rate is refused without taking a global token, so one flooding
/// source cannot use up everyone's rate. Retransmissions of an admitted INVITE (same
/// Call-ID and top Via branch, within Timer B) pass without a token: a 503 to one would
/// end a transaction the B2BUA has already taken on.
#[derive(Debug)]
pub struct NewRequestLimiter {
    global: TokenBucket,
    per_source_rate: u32,
    sources: HashMap<IpAddr, TokenBucket>,
    /// Shared by new sources while `sources` is full of active ones.
    overflow: TokenBucket,
    last_sweep: Instant,
    admitted: VecDeque<(Instant, String)>,
    admitted_keys: HashSet<String>,
    max_admitted: usize,
}

impl NewRequestLimiter {
    /// A limiter admitting `global` INVITEs a second, `per_source` from one address.
    pub fn new(global: u32, per_source: u32, now: Instant) -> NewRequestLimiter {
        NewRequestLimiter {
            global: TokenBucket::per_second(global, now),
            per_source_rate: per_source,
            sources: HashMap::new(),
            overflow: TokenBucket::per_second(per_source, now),
            last_sweep: now,
            admitted: VecDeque::new(),
            admitted_keys: HashSet::new(),
            // Every INVITE admitted within Timer B, up to a bound.
            max_admitted: (global as usize)
                .saturating_mul(REMEMBER_ADMITTED.as_secs() as usize)
                .clamp(256, 65_536),
        }
    }

    /// Admits or refuses a new INVITE from `source`; `key` names its transaction.
    pub fn check(&mut self, source: IpAddr, key: &str, now: Instant) -> Result<(), RateRefusal> {
        while let Some((at, _)) = self.admitted.front() {
            if now.saturating_duration_since(*at) < REMEMBER_ADMITTED {
                break;
            }
            if let Some((_, k)) = self.admitted.pop_front() {
                self.admitted_keys.remove(&k);
            }
        }
        if self.admitted_keys.contains(key) {
            return Ok(());
        }
        if !self.sources.contains_key(&source)
            && self.sources.len() >= MAX_TRACKED_SOURCES
            && now.saturating_duration_since(self.last_sweep) >= Duration::from_secs(1)
        {
            // At most once a second, forget the sources that have been quiet long enough
            // for their buckets to fill up again.
            self.last_sweep = now;
            self.sources.retain(|_, b| !b.is_full(now));
        }
        let rate = self.per_source_rate;
        let bucket =
            if self.sources.contains_key(&source) || self.sources.len() < MAX_TRACKED_SOURCES {
                self.sources
                    .entry(source)
                    .or_insert_with(|| TokenBucket::per_second(rate, now))
            } else {
                &mut self.overflow
            };
        if !bucket.ready(now) {
            return Err(RateRefusal::PerSource);
        }
        if !self.global.take(now) {
            return Err(RateRefusal::Global);
        }
        bucket.take(now);
        if self.admitted.len() >= self.max_admitted {
            if let Some((_, k)) = self.admitted.pop_front() {
                self.admitted_keys.remove(&k);
            }
        }
        self.admitted.push_back((now, key.to_owned()));
        self.admitted_keys.insert(key.to_owned());
        Ok(())
    }
}

/// Why a connection was refused on accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnRefusal {
    /// Over `max_connections`.
    Total,
    /// Over `max_connections_per_source`.
    PerSource,
}

#[derive(Debug, Default)]
struct ConnCounts {
    total: usize,
    per_source: HashMap<IpAddr, usize>,
}

/// Inbound connections open at once, in total and per source address.
#[derive(Debug)]
pub struct ConnLimiter {
    max_total: usize,
    max_per_source: usize,
    counts: Mutex<ConnCounts>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnPermit {
    limiter: Arc<ConnLimiter>,
    source: IpAddr,
}

impl ConnLimiter {
    /// A limiter for `max_total` connections, `max_per_source` from one address.
    pub fn new(max_total: usize, max_per_source: usize) -> Arc<ConnLimiter> {
        Arc::new(ConnLimiter {
            max_total,
            max_per_source,
            counts: Mutex::default(),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, ConnCounts> {
        // The counts stay consistent even if a holder panicked: each update is one step.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a place for a connection from `source`.
    pub fn admit(self: &Arc<Self>, source: IpAddr) -> Result<ConnPermit, ConnRefusal> {
        let mut c = self.counts();
        if c.total >= self.max_total {
            return Err(ConnRefusal::Total);
        }
        let n = c.per_source.entry(source).or_default();
        if *n >= self.max_per_source {
            return Err(ConnRefusal::PerSource);
        }
        *n += 1;
        c.total += 1;
        Ok(ConnPermit {
            limiter: self.clone(),
            source,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.counts().total
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut c = self.limiter.counts();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_source.get_mut(&self.source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_source.remove(&self.source);
            }
        }
    }
}

/// The shell's limits and counters, shared by the listeners and transport tasks.
#[derive(Debug)]
pub struct Shield {
    /// The parser's limits.
    pub sip: relay_sip::Limits,
    /// Seconds a TLS handshake may take.
    pub tls_handshake_timeout: Duration,
    /// How long a message may take to arrive whole (and an inbound connection its first).
    pub message_timeout: Duration,
    /// How long a connection may stay silent (`None`: for ever).
    pub idle_timeout: Option<Duration>,
    /// What was refused.
    pub counters: Counters,
    connections: Arc<ConnLimiter>,
    handshakes: Arc<Semaphore>,
    invites: Mutex<NewRequestLimiter>,
    requests: Mutex<NewRequestLimiter>,
    error_responses: Mutex<TokenBucket>,
    retry_after_s: u32,
    /// Our name in Warning header fields.
    warn_agent: String,
}

impl Shield {
    /// The shield for `[limits]`, with the parser's `sip` limits; `warn_agent` (our FQDN)
    /// signs the Warning of our answers.
    pub fn new(limits: &LimitsSection, sip: relay_sip::Limits, warn_agent: &str) -> Arc<Shield> {
        let now = Instant::now();
        Arc::new(Shield {
            sip,
            tls_handshake_timeout: Duration::from_secs(limits.tls_handshake_timeout_s),
            message_timeout: Duration::from_secs(limits.message_timeout_s),
            idle_timeout: (limits.idle_timeout_s > 0)
                .then(|| Duration::from_secs(limits.idle_timeout_s)),
            counters: Counters::default(),
            connections: ConnLimiter::new(
                limits.max_connections,
                limits.max_connections_per_source,
            ),
            handshakes: Arc::new(Semaphore::new(limits.max_tls_handshakes)),
            invites: Mutex::new(NewRequestLimiter::new(
                limits.invites_per_second,
                limits.invites_per_second_per_source,
                now,
            )),
            requests: Mutex::new(NewRequestLimiter::new(
                limits.requests_per_second,
                limits.requests_per_second_per_source,
                now,
            )),
            error_responses: Mutex::new(TokenBucket::per_second(
                limits.error_responses_per_second,
                now,
            )),
            retry_after_s: limits.retry_after_s,
            warn_agent: warn_agent.to_owned(),
        })
    }

    /// Admits an inbound connection from `source`, or counts the refusal.
    pub fn admit_connection(&self, source: IpAddr) -> Option<ConnPermit> {
        match self.connections.admit(source) {
            Ok(p) => Some(p),
            Err(why) => {
                Counters::bump(match why {
                    ConnRefusal::Total => &self.counters.connections_refused_total,
                    ConnRefusal::PerSource => &self.counters.connections_refused_per_source,
                });
                tracing::debug!(?why, "connection refused");
                None
            }
        }
    }

    /// A place for one TLS handshake, or the refusal counted.
    pub fn start_handshake(&self) -> Option<OwnedSemaphorePermit> {
        let permit = self.handshakes.clone().try_acquire_owned().ok();
        if permit.is_none() {
            Counters::bump(&self.counters.tls_handshakes_refused);
        }
        permit
    }

    /// Counts `counter` (one of [`Shield::counters`]).
    pub fn count(&self, counter: impl Fn(&Counters) -> &AtomicU64) {
        Counters::bump(counter(&self.counters));
    }

    /// The answer to a message the parser refused with `error`, from what was salvaged of
    /// it, or `None` (counted) when it cannot or may not be answered.
    pub fn answer(&self, error: ParseError, refused: &Refused) -> Option<Vec<u8>> {
        if !refused.is_answerable() {
            Counters::bump(&self.counters.malformed_unanswerable);
            tracing::debug!(status = error.status(), %error, "malformed SIP message dropped");
            return None;
        }
        let allowed = self
            .error_responses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(Instant::now());
        if !allowed {
            Counters::bump(&self.counters.error_responses_limited);
            return None;
        }
        let tag = ids::tag(&mut OsIds);
        match refused.error_response(error, &self.warn_agent, &tag) {
            Ok(response) => {
                Counters::bump(&self.counters.malformed_answered);
                tracing::debug!(status = error.status(), %error, "malformed SIP request answered");
                Some(response.to_bytes())
            }
            Err(_) => {
                Counters::bump(&self.counters.malformed_unanswerable);
                None
            }
        }
    }

    /// For a new request outside a dialog (no To tag; not ACK or CANCEL) over its rate, the
    /// 503 to send instead of passing it on; `None` for anything to pass on. INVITEs and the
    /// other methods have their own rates.
    pub fn refuse_over_rate(&self, message: &Message, source: IpAddr) -> Option<Vec<u8>> {
        let invite = match message.method() {
            Some(Method::Invite) => true,
            Some(Method::Ack | Method::Cancel) | None => return None,
            Some(_) => false,
        };
        if message.to_addr().is_ok_and(|t| t.tag().is_some()) {
            return None;
        }
        let branch = message
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned))
            .unwrap_or_default();
        let key = format!("{}\n{branch}", message.call_id().unwrap_or_default());
        let limiter = if invite {
            &self.invites
        } else {
            &self.requests
        };
        let verdict =
            limiter
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .check(source, &key, Instant::now());
        let why = verdict.err()?;
        Counters::bump(match (invite, why) {
            (true, RateRefusal::Global) => &self.counters.invites_refused_global,
            (true, RateRefusal::PerSource) => &self.counters.invites_refused_per_source,
            (false, RateRefusal::Global) => &self.counters.requests_refused_global,
            (false, RateRefusal::PerSource) => &self.counters.requests_refused_per_source,
        });
        tracing::debug!(?why, invite, "request over the rate answered 503");
        //= https://www.rfc-editor.org/rfc/rfc3261#section-21.5.4
        //# The server is temporarily unable to process the request due to a
        //# temporary overloading or maintenance of the server.  The server MAY
        //# indicate when the client should retry the request in a Retry-After
        //# header field.
        let mut response = Message::response_to(message, 503, "Service Unavailable").ok()?;
        response.add_to_tag(&ids::tag(&mut OsIds)).ok()?;
        for (h, v) in [
            (StdHeader::RetryAfter, self.retry_after_s.to_string()),
            (
                StdHeader::Warning,
                if invite {
                    format!("399 {} \"Call Rate Limit\"", self.warn_agent)
                } else {
                    format!("399 {} \"Request Rate Limit\"", self.warn_agent)
                },
            ),
        ] {
            if let Ok(h) = Header::new(h, v) {
                response.headers.push(h);
            }
        }
        Some(response.to_bytes())
    }
}

/// Logs the counters every `period` when they have changed.
pub fn spawn_reporter(shield: Arc<Shield>, period: Duration) {
    tokio::spawn(async move {
        let mut last = CountersSnapshot::default();
        loop {
            tokio::time::sleep(period).await;
            let now = shield.counters.snapshot();
            if now != last {
                tracing::info!(open_connections = shield.connections.open(), refusals = %now, "SIP limits");
                last = now;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([198, 18, 30, last])
    }

    #[test]
    fn token_buckets_refill_at_their_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::per_second(4, t0);
        for _ in 0..4 {
            assert!(b.take(t0));
        }
        assert!(!b.take(t0));
        assert!(!b.take(t0 + Duration::from_millis(200)));
        assert!(b.take(t0 + Duration::from_millis(260)));
        // Never more than one second's worth.
        let later = t0 + Duration::from_secs(100);
        assert!((0..4).all(|_| b.take(later)));
        assert!(!b.take(later));
    }

    #[test]
    fn a_flooding_source_does_not_use_up_the_global_rate() {
        let t0 = Instant::now();
        let mut l = NewRequestLimiter::new(10, 3, t0);
        for i in 0..3 {
            assert_eq!(l.check(ip(1), &format!("a{i}"), t0), Ok(()));
        }
        for i in 3..100 {
            assert_eq!(
                l.check(ip(1), &format!("a{i}"), t0),
                Err(RateRefusal::PerSource)
            );
        }
        // Seven global tokens are left for everyone else.
        for s in 2..9 {
            assert_eq!(l.check(ip(s), &format!("b{s}"), t0), Ok(()));
        }
        assert_eq!(l.check(ip(9), "c", t0), Err(RateRefusal::Global));
        // A second later both have refilled.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(l.check(ip(1), "d", t1), Ok(()));
        assert_eq!(l.check(ip(9), "e", t1), Ok(()));
    }

    #[test]
    fn retransmissions_of_an_admitted_invite_pass() {
        let t0 = Instant::now();
        let mut l = NewRequestLimiter::new(10, 1, t0);
        assert_eq!(l.check(ip(1), "call\nbranch", t0), Ok(()));
        assert_eq!(l.check(ip(1), "other", t0), Err(RateRefusal::PerSource));
        assert_eq!(l.check(ip(1), "call\nbranch", t0), Ok(()));
        assert_eq!(
            l.check(ip(1), "call\nbranch", t0 + Duration::from_millis(500)),
            Ok(())
        );
        // Forgotten after Timer B (and by then the source has its token back anyway).
        let late = t0 + REMEMBER_ADMITTED + Duration::from_secs(1);
        assert_eq!(l.check(ip(1), "other2", late), Ok(()));
        assert!(!l.admitted_keys.contains("call\nbranch"));
    }

    #[test]
    fn per_source_state_is_bounded() {
        let t0 = Instant::now();
        let mut l = NewRequestLimiter::new(1_000_000, 1, t0);
        for i in 0..MAX_TRACKED_SOURCES as u32 + 100 {
            let source = IpAddr::from((0xc612_0000u32 + i).to_be_bytes());
            let _ = l.check(source, &i.to_string(), t0);
        }
        assert_eq!(l.sources.len(), MAX_TRACKED_SOURCES);
        // New sources beyond share one bucket; a known source keeps its own.
        assert_eq!(
            l.check(IpAddr::from([198, 19, 255, 1]), "x", t0),
            Err(RateRefusal::PerSource)
        );
        // Once the quiet sources' buckets are full again they are forgotten.
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(l.check(IpAddr::from([198, 19, 255, 2]), "y", t1), Ok(()));
        assert_eq!(l.sources.len(), 1);
        assert!(l.admitted.len() <= l.max_admitted);
    }

    #[test]
    fn connections_are_counted_in_total_and_per_source() {
        let c = ConnLimiter::new(3, 2);
        let a1 = c.admit(ip(1)).unwrap();
        let _a2 = c.admit(ip(1)).unwrap();
        assert_eq!(c.admit(ip(1)).unwrap_err(), ConnRefusal::PerSource);
        let _b1 = c.admit(ip(2)).unwrap();
        assert_eq!(c.admit(ip(3)).unwrap_err(), ConnRefusal::Total);
        drop(a1);
        assert_eq!(c.open(), 2);
        let _c1 = c.admit(ip(3)).unwrap();
        assert_eq!(c.admit(ip(1)).unwrap_err(), ConnRefusal::Total);
    }

    const INVITE: &str = "INVITE sip:+4930123@198.18.30.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 198.18.30.2:5060;branch=z9hG4bKflood\r\n\
        Max-Forwards: 70\r\n\
        To: <sip:+4930123@198.18.30.1>\r\n\
        From: <sip:mallory@198.18.30.2>;tag=1\r\n\
        Call-ID: flood-1\r\n\
        CSeq: 1 INVITE\r\n\
        Content-Length: 0\r\n\r\n";

    fn shield(limits: LimitsSection) -> Arc<Shield> {
        Shield::new(&limits, relay_sip::Limits::default(), "sbc.test")
    }

    #[test]
    fn invites_over_the_rate_get_503_with_retry_after() {
        let s = shield(LimitsSection {
            invites_per_second: 5,
            invites_per_second_per_source: 2,
            retry_after_s: 7,
            ..LimitsSection::default()
        });
        let msg = |n: u32| {
            let text = INVITE.replace("flood-1", &format!("flood-{n}"));
            Message::parse(text.as_bytes(), &relay_sip::Limits::default()).unwrap()
        };
        assert!(s.refuse_over_rate(&msg(1), ip(2)).is_none());
        assert!(s.refuse_over_rate(&msg(2), ip(2)).is_none());
        let refused = s.refuse_over_rate(&msg(3), ip(2)).expect("over the rate");
        let r = Message::parse(&refused, &relay_sip::Limits::default()).unwrap();
        assert_eq!(r.status(), Some(503));
        assert_eq!(r.call_id(), Ok("flood-3"));
        assert_eq!(r.retry_after().unwrap().map(|v| v.delta), Some(7));
        assert!(r.to_addr().unwrap().tag().is_some());
        // A retransmission of an admitted one passes; OPTIONS have their own rate, and
        // in-dialog requests are never counted.
        assert!(s.refuse_over_rate(&msg(1), ip(2)).is_none());
        let options = INVITE.replace("INVITE", "OPTIONS");
        let options = Message::parse(options.as_bytes(), &relay_sip::Limits::default()).unwrap();
        assert!(s.refuse_over_rate(&options, ip(2)).is_none());
        let reinvite = INVITE.replace("+4930123@198.18.30.1>", "+4930123@198.18.30.1>;tag=2");
        let reinvite = Message::parse(reinvite.as_bytes(), &relay_sip::Limits::default()).unwrap();
        assert!(s.refuse_over_rate(&reinvite, ip(2)).is_none());
        let c = s.counters.snapshot();
        assert_eq!(c.invites_refused_per_source, 1);
        assert_eq!(c.invites_refused_global, 0);
    }

    #[test]
    fn malformed_requests_are_answered_within_the_rate() {
        let s = shield(LimitsSection {
            error_responses_per_second: 2,
            ..LimitsSection::default()
        });
        let bad = INVITE.replace("CSeq: 1 INVITE", "CSeq: x");
        let e = relay_sip::parse_datagram(bad.as_bytes(), &s.sip).unwrap_err();
        let refused = Refused::salvage(bad.as_bytes(), &s.sip);
        let answer = s.answer(e, &refused).expect("answered");
        let text = String::from_utf8(answer).unwrap();
        assert!(
            text.starts_with("SIP/2.0 400 Malformed CSeq Header\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Warning: 399 sbc.test \"Malformed CSeq Header\""),
            "{text}"
        );
        assert!(s.answer(e, &refused).is_some());
        assert!(s.answer(e, &refused).is_none(), "over the rate");
        let garbage = Refused::salvage(b"\x16\x03\x01garbage", &s.sip);
        assert!(s.answer(ParseError::ControlCharacter, &garbage).is_none());
        let c = s.counters.snapshot();
        assert_eq!(
            (
                c.malformed_answered,
                c.error_responses_limited,
                c.malformed_unanswerable
            ),
            (2, 1, 1)
        );
        assert!(c.to_string().contains("malformed_answered=2 "), "{c}");
    }

    #[test]
    fn other_out_of_dialog_requests_have_their_own_rate() {
        let s = shield(LimitsSection {
            requests_per_second: 10,
            requests_per_second_per_source: 3,
            ..LimitsSection::default()
        });
        let msg = |method: &str, n: u32| {
            let text = INVITE
                .replace("INVITE", method)
                .replace("flood-1", &format!("flood-{n}"));
            Message::parse(text.as_bytes(), &relay_sip::Limits::default()).unwrap()
        };
        for n in 0..3 {
            assert!(s.refuse_over_rate(&msg("OPTIONS", n), ip(2)).is_none());
        }
        let refused = s
            .refuse_over_rate(&msg("MESSAGE", 3), ip(2))
            .expect("over the rate");
        let r = Message::parse(&refused, &relay_sip::Limits::default()).unwrap();
        assert_eq!(r.status(), Some(503));
        assert!(r.retry_after().unwrap().is_some());
        // Another source, an INVITE, a CANCEL and an ACK from the flooding one still pass.
        assert!(s.refuse_over_rate(&msg("OPTIONS", 4), ip(3)).is_none());
        assert!(s.refuse_over_rate(&msg("INVITE", 5), ip(2)).is_none());
        assert!(s.refuse_over_rate(&msg("CANCEL", 5), ip(2)).is_none());
        assert!(s.refuse_over_rate(&msg("ACK", 6), ip(2)).is_none());
        let c = s.counters.snapshot();
        assert_eq!(c.requests_refused_per_source, 1);
        assert_eq!(c.invites_refused_per_source + c.invites_refused_global, 0);
    }
}
