//! SDP offer/answer through the B2BUA (RFC 3264, RFC 4568): every RTP m-line is anchored in
//! the data plane, each leg gets its own fresh SDES keys, and the answer that reaches the
//! offerer carries the data plane's address and exactly one `a=crypto`.
//!
//! For a call from leg a (the offerer) to leg b:
//!
//! * [`anchor_offer`] turns a's offer into the offer sent to b: `c=` and `m=` point at the data
//!   plane's leg-b ports, every `a=crypto` is replaced by fresh keys of b's trunk's suites
//!   (the keys the relay will send to b with), `RTP/AVP` and `RTP/SAVP` follow b's trunk's
//!   media policy, ICE attributes are removed (media bypass is out of scope), and codecs,
//!   direction and other attributes pass unchanged. It also picks the offerer's crypto (the
//!   first `a=crypto` whose suite a's trunk accepts) and makes the key the relay will send to
//!   a with, so that every later answer to a is the same.
//! * [`anchor_answer`] turns b's answer into the answer sent to a and into the data plane's
//!   media pairs (`relay_session::MediaSpec`): what a sends is received with a's key and sent
//!   to b with the relay's key for b, and the other way round.
//!
//! Topology hiding: what one side's SDP says about its endpoint does not reach the other side.
//! The origin's username and the session name become `-`, the session's and media's `i=`,
//! `u=`, `e=`, `p=` and `k=` lines and `a=tool` are dropped, and the origin and connection
//! addresses are the data plane's. `a=ssrc` (and its `cname:`) passes: the relay forwards SSRCs
//! and RTCP unchanged (a stream's SDES CNAME is in its RTCP anyway), and endpoints need the
//! SSRCs to tell streams apart.
//!
//! SDES semantics (RFC 4568 section 6.1): the key in an `a=crypto` line is the one its
//! *sender* encrypts with. So the relay's keys appear in the SDP it sends, and the peers'
//! keys are taken from the SDP they send.
//!
//! RTCP: multiplexed (RFC 5761) on a pair only when a offered `a=rtcp-mux` and b accepted it;
//! otherwise on port + 1 on both legs (the data plane's media pair has one mode for both).

use std::net::{IpAddr, SocketAddr};

use relay_session::{CryptoSpec, LegSpec, MediaSpec, RtcpMode};
use relay_sip::sdp::{
    Address, Attribute, Connection, Crypto, Direction, MediaDescription, Proto, SessionDescription,
};
use relay_srtp::{MasterKey, SdesKey, Suite};

use crate::config::{MediaPolicy, Profile, TrunkConfig};
use crate::ports::{PortError, PortPair};

/// Why an offer cannot be relayed (answered 488 Not Acceptable Here with a Warning).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OfferError {
    /// An RTP m-line without an `a=crypto` of a suite the trunk accepts, where SRTP is
    /// mandatory.
    #[error("no acceptable crypto on m-line {0}")]
    NoAcceptableCrypto(usize),
    /// SRTP offered to a trunk whose media policy is plain RTP.
    #[error("SRTP offered on m-line {0} to a plain RTP trunk")]
    SrtpNotAllowed(usize),
    /// An m-line's connection address is missing or not an IP address.
    #[error("m-line {0} has no usable connection address")]
    NoAddress(usize),
    /// No m-line to anchor.
    #[error("no media")]
    NoMedia,
    /// The data plane has no free ports.
    #[error("{0}")]
    Ports(#[from] PortError),
}

/// Why an answer cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// The answer has another number of m-lines than the offer.
    #[error("answer has {got} m-lines, offer had {offered}")]
    LineCount {
        /// Offered.
        offered: usize,
        /// Answered.
        got: usize,
    },
    /// An SRTP answer without exactly one `a=crypto` whose tag was offered.
    #[error("m-line {0}: no answered crypto matching the offer")]
    Crypto(usize),
    /// Plain RTP answered where SRTP was offered to an SRTP-mandatory trunk.
    #[error("m-line {0}: plain RTP answered to an SRTP offer")]
    NotSrtp(usize),
    /// An m-line's connection address is missing or not an IP address.
    #[error("m-line {0} has no usable connection address")]
    NoAddress(usize),
}

/// Where fresh SDES keys come from.
pub trait KeySource {
    /// A new random master key and salt for `suite`.
    fn fresh(&mut self, suite: Suite) -> SdesKey;
}

/// Keys from the operating system's random source.
#[derive(Debug, Default)]
pub struct OsKeys;

impl KeySource for OsKeys {
    fn fresh(&mut self, suite: Suite) -> SdesKey {
        // getrandom does not fail on a booted Linux; a relay without randomness must not
        // make keys at all.
        SdesKey::new(MasterKey::random(suite).expect("the OS random source"))
    }
}

/// One anchored m-line, as offered.
#[derive(Clone, Debug)]
struct OfferedLine {
    /// The ports; `None` for an m-line passed on rejected (port 0).
    pair: Option<PortPair>,
    /// Where a receives this m-line's media.
    a_remote: Option<SocketAddr>,
    /// The offerer's crypto: its tag, and the key a sends with (`None`: plain RTP).
    a_crypto: Option<(u32, CryptoSpec)>,
    /// The key the relay sends to a with, answered under the same tag and suite.
    a_send: Option<CryptoSpec>,
    /// The offer's protocol towards a.
    a_proto: Proto,
    /// Whether a offered rtcp-mux.
    a_mux: bool,
    /// The relay's keys offered to b, by tag.
    b_offered: Vec<(u32, CryptoSpec)>,
}

/// What the B2BUA keeps of a relayed offer until the answer.
#[derive(Clone, Debug)]
pub struct OfferedMedia {
    lines: Vec<OfferedLine>,
}

impl OfferedMedia {
    /// The port pairs the offer holds (to release when the call ends).
    pub fn pairs(&self) -> impl Iterator<Item = PortPair> + '_ {
        self.lines.iter().filter_map(|l| l.pair)
    }

    /// The worker the call's media is placed on.
    pub fn worker(&self) -> Option<usize> {
        self.pairs().next().map(|p| p.worker)
    }

    /// The suites of the relay's leg towards a, per anchored line (for the record).
    pub fn a_suites(&self) -> Vec<Option<String>> {
        self.lines
            .iter()
            .filter(|l| l.pair.is_some())
            .map(|l| l.a_send.as_ref().map(|c| c.suite.clone()))
            .collect()
    }
}

/// The answer for a, and the data plane's media pairs.
#[derive(Clone, Debug)]
pub struct AnsweredMedia {
    /// The answer to send to a.
    pub answer: SessionDescription,
    /// One pair per anchored m-line.
    pub media: Vec<MediaSpec>,
    /// The suites used towards b, per anchored line.
    pub b_suites: Vec<Option<String>>,
}

fn suite_of(c: &Crypto) -> Option<Suite> {
    c.suite.name().parse().ok()
}

/// The key-params of `c`'s first key, as the data-plane schema carries them.
fn crypto_spec(c: &Crypto) -> Option<CryptoSpec> {
    let suite = suite_of(c)?;
    let text = c.to_string();
    let params = text.split(' ').nth(2)?.split(';').next()?;
    // Checks what the data plane will check, so a bad key is refused here, not there.
    SdesKey::parse_inline(suite, params).ok()?;
    Some(CryptoSpec {
        suite: suite.name().to_owned(),
        key: params.to_owned(),
    })
}

fn fresh_crypto(
    keys: &mut dyn KeySource,
    suite: Suite,
    tag: u32,
    profile: Profile,
) -> (Crypto, CryptoSpec) {
    let mut key = keys.fresh(suite);
    if profile == Profile::Teams {
        // Microsoft's SBC requirements write the lifetime as 2^31.
        key.lifetime_log2 = Some(31);
    }
    let inline = zeroize::Zeroizing::new(key.to_inline());
    let crypto = Crypto::parse(&format!("{tag} {} {}", suite.name(), inline.as_str()))
        .expect("a key this crate wrote parses");
    let spec = CryptoSpec {
        suite: suite.name().to_owned(),
        key: inline.to_string(),
    };
    (crypto, spec)
}

fn media_address(sdp: &SessionDescription, i: usize) -> Option<IpAddr> {
    sdp.media_connection(i).and_then(|c| c.address.ip())
}

/// The attributes that pass through the relay: not crypto (replaced), not ICE (no media
/// bypass), not rtcp (the relay's RTCP port is the RTP port + 1), not rtcp-mux (decided per
/// pair).
fn passed(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|a| {
            !matches!(
                a,
                Attribute::Crypto(_) | Attribute::Ice(_) | Attribute::Rtcp(_) | Attribute::RtcpMux
            ) && !reveals_endpoint(a)
        })
        .cloned()
        .collect()
}

/// An attribute that names the endpoint's software (topology hiding, see the module docs).
fn reveals_endpoint(a: &Attribute) -> bool {
    a.name().eq_ignore_ascii_case("tool")
}

/// The session part of the SDP sent to the other side: the data plane's address, and
/// nothing about the endpoint (see the module docs).
fn session_towards(sdp: &SessionDescription, address: IpAddr, version: u64) -> SessionDescription {
    let mut out = sdp.clone();
    out.origin.username = relay_sip::sdp::Word::new("-").expect("a word");
    out.origin.address = Address::Ip(address);
    out.origin.session_version = version;
    out.session_name = relay_sip::sdp::Text::new("-").expect("a text");
    out.information = None;
    out.uri = None;
    out.emails.clear();
    out.phones.clear();
    out.encryption_key = None;
    out.connection = Some(Connection::new(address));
    out.attributes
        .retain(|a| !a.is_ice() && !reveals_endpoint(a));
    out.media.clear();
    out
}

/// Drops each media line's `i=` and `k=` (topology hiding; keys travel only in `a=crypto`).
fn hide_media_details(out: &mut SessionDescription) {
    for m in &mut out.media {
        m.information = None;
        m.encryption_key = None;
    }
}

fn rejected_line(m: &MediaDescription) -> MediaDescription {
    let mut r = m.clone();
    r.port = 0;
    r.connection = None;
    r.attributes = passed(&m.attributes);
    r
}

/// Rewrites a's `offer` for b (see the module docs). `allocate` gives the ports of each
/// anchored m-line: `None` for the first, the worker of the first for the others. On an
/// error, the caller gives back every pair `allocate` handed out for this offer.
pub fn anchor_offer(
    offer: &SessionDescription,
    a_trunk: &TrunkConfig,
    b_trunk: &TrunkConfig,
    keys: &mut dyn KeySource,
    allocate: &mut dyn FnMut(Option<usize>) -> Result<PortPair, PortError>,
) -> Result<(SessionDescription, OfferedMedia), OfferError> {
    let mut out = session_towards(offer, b_trunk.media_address, offer.origin.session_version);
    let mut lines = Vec::new();
    let mut worker = None;
    // Check every line before taking any port.
    let mut plan = Vec::new();
    for (i, m) in offer.media.iter().enumerate() {
        if m.port == 0 || !m.proto.is_rtp() {
            plan.push(None);
            continue;
        }
        let a_remote = SocketAddr::new(
            media_address(offer, i).ok_or(OfferError::NoAddress(i))?,
            m.port,
        );
        let srtp = m.proto.is_srtp();
        let a_crypto = if srtp {
            let chosen = m
                .cryptos()
                .filter(|c| suite_of(c).is_some_and(|s| a_trunk.suites.contains(&s)))
                .find_map(|c| crypto_spec(c).map(|spec| (c.tag, spec)));
            match (chosen, a_trunk.media_policy) {
                (Some(c), MediaPolicy::SrtpMandatory | MediaPolicy::SrtpOptional) => Some(c),
                (_, MediaPolicy::Rtp) => return Err(OfferError::SrtpNotAllowed(i)),
                (None, _) => return Err(OfferError::NoAcceptableCrypto(i)),
            }
        } else {
            if a_trunk.media_policy == MediaPolicy::SrtpMandatory {
                return Err(OfferError::NoAcceptableCrypto(i));
            }
            None
        };
        plan.push(Some((a_remote, a_crypto)));
    }
    if plan.iter().all(Option::is_none) {
        return Err(OfferError::NoMedia);
    }
    for (m, planned) in offer.media.iter().zip(plan) {
        let Some((a_remote, a_crypto)) = planned else {
            out.media.push(rejected_line(m));
            lines.push(OfferedLine {
                pair: None,
                a_remote: None,
                a_crypto: None,
                a_send: None,
                a_proto: m.proto.clone(),
                a_mux: false,
                b_offered: Vec::new(),
            });
            continue;
        };
        let pair = allocate(worker)?;
        worker = Some(pair.worker);
        let a_send = a_crypto.as_ref().map(|(tag, spec)| {
            let suite: Suite = spec.suite.parse().expect("chosen from known suites");
            fresh_crypto(keys, suite, *tag, a_trunk.profile).1
        });
        let mut b_line = m.clone();
        b_line.port = pair.b.port();
        b_line.port_count = None;
        b_line.connection = None;
        b_line.encryption_key = None;
        b_line.attributes = passed(&m.attributes);
        if m.rtcp_mux() {
            b_line.attributes.push(Attribute::RtcpMux);
        }
        let mut b_offered = Vec::new();
        match b_trunk.media_policy {
            MediaPolicy::Rtp => b_line.proto = Proto::RtpAvp,
            MediaPolicy::SrtpMandatory | MediaPolicy::SrtpOptional => {
                b_line.proto = Proto::RtpSavp;
                let suites: &[Suite] = if b_trunk.profile == Profile::Teams {
                    &b_trunk.suites[..1.min(b_trunk.suites.len())]
                } else {
                    &b_trunk.suites
                };
                for (n, &suite) in suites.iter().enumerate() {
                    let (crypto, spec) = fresh_crypto(keys, suite, n as u32 + 1, b_trunk.profile);
                    b_line.attributes.push(Attribute::Crypto(crypto));
                    b_offered.push((n as u32 + 1, spec));
                }
            }
        }
        out.media.push(b_line);
        lines.push(OfferedLine {
            pair: Some(pair),
            a_remote: Some(a_remote),
            a_crypto,
            a_send,
            a_proto: m.proto.clone(),
            a_mux: m.rtcp_mux(),
            b_offered,
        });
    }
    hide_media_details(&mut out);
    Ok((out, OfferedMedia { lines }))
}

/// Turns b's `answer` into the answer for a and the data plane's media pairs.
pub fn anchor_answer(
    answer: &SessionDescription,
    offered: &OfferedMedia,
    a_trunk: &TrunkConfig,
    b_trunk: &TrunkConfig,
    version: u64,
) -> Result<AnsweredMedia, AnswerError> {
    if answer.media.len() != offered.lines.len() {
        return Err(AnswerError::LineCount {
            offered: offered.lines.len(),
            got: answer.media.len(),
        });
    }
    let mut out = session_towards(answer, a_trunk.media_address, version);
    let mut media = Vec::new();
    let mut b_suites = Vec::new();
    for (i, (m, line)) in answer.media.iter().zip(&offered.lines).enumerate() {
        let Some(pair) = line.pair else {
            out.media.push(rejected_line(m));
            continue;
        };
        if m.port == 0 {
            // b rejected it: so does a's answer; its ports are released with the call.
            let mut r = rejected_line(m);
            r.proto = line.a_proto.clone();
            out.media.push(r);
            continue;
        }
        let b_remote = SocketAddr::new(
            media_address(answer, i).ok_or(AnswerError::NoAddress(i))?,
            m.port,
        );
        let (b_receive, b_send) = if line.b_offered.is_empty() {
            (None, None)
        } else if !m.proto.is_srtp() {
            if b_trunk.media_policy == MediaPolicy::SrtpMandatory {
                return Err(AnswerError::NotSrtp(i));
            }
            (None, None)
        } else {
            let mut answered = m.cryptos();
            let c = answered.next().ok_or(AnswerError::Crypto(i))?;
            if answered.next().is_some() {
                return Err(AnswerError::Crypto(i));
            }
            let (_, ours) = line
                .b_offered
                .iter()
                .find(|(tag, spec)| {
                    *tag == c.tag && suite_of(c).is_some_and(|s| s.name() == spec.suite)
                })
                .ok_or(AnswerError::Crypto(i))?;
            (
                Some(crypto_spec(c).ok_or(AnswerError::Crypto(i))?),
                Some(ours.clone()),
            )
        };
        let mux = line.a_mux && m.rtcp_mux();
        let mut a_line = m.clone();
        a_line.port = line.pair.map_or(0, |p| p.a.port());
        a_line.port_count = None;
        a_line.proto = line.a_proto.clone();
        a_line.connection = None;
        a_line.encryption_key = None;
        a_line.attributes = passed(&m.attributes);
        if a_trunk.profile == Profile::Teams {
            // Hold towards Teams is a=inactive, never sendonly/recvonly with a null address.
            if matches!(
                m.direction(),
                Some(Direction::SendOnly | Direction::RecvOnly)
            ) {
                a_line
                    .attributes
                    .retain(|a| !matches!(a, Attribute::Direction(_)));
                a_line
                    .attributes
                    .push(Attribute::Direction(Direction::Inactive));
            }
        }
        if mux {
            a_line.attributes.push(Attribute::RtcpMux);
        }
        if let (Some((tag, _)), Some(send)) = (&line.a_crypto, &line.a_send) {
            // Exactly one a=crypto in every answer (Teams hangs up on more).
            let c = Crypto::parse(&format!("{tag} {} {}", send.suite, send.key))
                .expect("a key this crate wrote parses");
            a_line.attributes.push(Attribute::Crypto(c));
        }
        out.media.push(a_line);
        b_suites.push(b_send.as_ref().map(|c: &CryptoSpec| c.suite.clone()));
        media.push(MediaSpec {
            rtcp: if mux {
                RtcpMode::Mux
            } else {
                RtcpMode::PortPlusOne
            },
            a: LegSpec {
                local: pair.a,
                remote: line.a_remote,
                strict_source: false,
                receive: line.a_crypto.as_ref().map(|(_, c)| c.clone()),
                send: line.a_send.clone(),
                clock_rate: clock_rate(m),
                resume_receive: Vec::new(),
                resume_send: Vec::new(),
            },
            b: LegSpec {
                local: pair.b,
                remote: Some(b_remote),
                strict_source: false,
                receive: b_receive,
                send: b_send,
                clock_rate: clock_rate(m),
                resume_receive: Vec::new(),
                resume_send: Vec::new(),
            },
        });
    }
    hide_media_details(&mut out);
    Ok(AnsweredMedia {
        answer: out,
        media,
        b_suites,
    })
}

/// The RTP clock rate of an m-line's first format: its `a=rtpmap`, else 8000 (the static
/// audio payload types of RFC 3551 that telephony uses: 0, 8, 9 (whose clock is 8000 despite
/// G.722's 16 kHz sampling), 18).
fn clock_rate(m: &MediaDescription) -> u32 {
    let Some(first) = m.formats.first() else {
        return 8000;
    };
    m.attributes
        .iter()
        .find_map(|a| match a {
            Attribute::Other {
                name,
                value: Some(v),
            } if name.as_str() == "rtpmap" => {
                let v = v.as_str();
                let (pt, rest) = v.split_once(' ')?;
                (pt == first.as_str()).then(|| rest.split('/').nth(1)?.parse().ok())?
            }
            _ => None,
        })
        .unwrap_or(8000)
}

/// Keys that stay what they were: for a re-offer, the relay's keys of the running call are
/// offered again (by suite, in the order given), so the streams keep their rollover counters
/// and replay windows; a suite with no running key gets a fresh one from `fresh`.
pub struct ReplayKeys<'a> {
    keys: Vec<SdesKey>,
    fresh: &'a mut dyn KeySource,
}

impl<'a> ReplayKeys<'a> {
    /// Replays `keys` (relay send keys of the running call), falling back to `fresh`.
    pub fn new(keys: Vec<SdesKey>, fresh: &'a mut dyn KeySource) -> ReplayKeys<'a> {
        ReplayKeys { keys, fresh }
    }
}

impl std::fmt::Debug for ReplayKeys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReplayKeys({} keys, <redacted>)", self.keys.len())
    }
}

impl KeySource for ReplayKeys<'_> {
    fn fresh(&mut self, suite: Suite) -> SdesKey {
        match self.keys.iter().position(|k| k.master.suite() == suite) {
            Some(i) => {
                let mut k = self.keys.remove(i);
                // The lifetime is written again by the profile's rule.
                k.lifetime_log2 = None;
                k
            }
            None => self.fresh.fresh(suite),
        }
    }
}

impl OfferedMedia {
    /// The media of a call restored after a restart: only its ports are known.
    pub fn restored(pairs: Vec<PortPair>) -> OfferedMedia {
        OfferedMedia {
            lines: pairs
                .into_iter()
                .map(|p| OfferedLine {
                    pair: Some(p),
                    a_remote: None,
                    a_crypto: None,
                    a_send: None,
                    a_proto: Proto::RtpAvp,
                    a_mux: false,
                    b_offered: Vec::new(),
                })
                .collect(),
        }
    }
}
