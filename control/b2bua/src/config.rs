//! What the B2BUA core needs to know of the deployment: trunks, their peers and media
//! policy, and the routes between them. `relay-control` builds it from `control.toml`.

use std::net::{IpAddr, SocketAddr};

use relay_sip::Transport;
use relay_srtp::Suite;

/// How a trunk's media is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaPolicy {
    /// RTP/SAVP with SDES only; an offer without acceptable crypto gets 488.
    SrtpMandatory,
    /// SDES if the peer offers it, plain RTP otherwise; offers to the trunk are RTP/SAVP.
    SrtpOptional,
    /// Plain RTP (RTP/AVP) only.
    Rtp,
}

/// Rules a trunk's far end imposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Plain RFC 3261.
    Generic,
    /// Microsoft Teams Direct Routing: Contact with our FQDN, E.164 numbers with
    /// `user=phone`, `X-MS-SBC`, exactly one `a=crypto` in answers, `|2^31` key lifetimes,
    /// rtcp-mux, hold as `a=inactive`.
    Teams,
}

/// One peer of a trunk, in priority order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport.
    pub transport: Transport,
}

/// One trunk: the cloud side or an operator side.
#[derive(Clone, Debug)]
pub struct TrunkConfig {
    /// Its name (routes and records use it).
    pub name: String,
    /// Its peers, in priority order: calls to the trunk go to the first, then on 408, 503
    /// or 504 (or no answer) to the next.
    pub peers: Vec<PeerConfig>,
    /// Addresses requests from this trunk arrive from (the peers' resolved addresses).
    pub source_addresses: Vec<IpAddr>,
    /// The host we put in Via, Contact and From towards this trunk (our FQDN for TLS
    /// trunks: Teams answers 403 to an address).
    pub local_host: String,
    /// Our signalling address and port towards this trunk (Via sent-by and Contact port).
    pub local_signalling: SocketAddr,
    /// The data-plane address this trunk's media uses.
    pub media_address: IpAddr,
    /// Media protection.
    pub media_policy: MediaPolicy,
    /// SRTP suites in order of preference.
    pub suites: Vec<Suite>,
    /// The far end's rules.
    pub profile: Profile,
    /// Send OPTIONS to the trunk's peers (health); always on for Teams.
    pub options_ping: bool,
}

/// Calls from trunk `from` whose called number starts with `prefix` go to trunk `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The trunk calls arrive from (index into [`B2buaConfig::trunks`]).
    pub from: usize,
    /// The number prefix (empty: any).
    pub prefix: String,
    /// The trunk they go to.
    pub to: usize,
}

/// The B2BUA's configuration.
#[derive(Clone, Debug)]
pub struct B2buaConfig {
    /// Trunks.
    pub trunks: Vec<TrunkConfig>,
    /// Routes, first match wins.
    pub routes: Vec<Route>,
    /// Calls in progress at most; beyond, new INVITEs get 503 with Retry-After.
    pub max_calls: usize,
    /// RFC 3261 T1 (RTT estimate), nanoseconds: 500 ms.
    pub t1_ns: u64,
    /// How long a client INVITE waits for a final response (Timer B, 64*T1) before the
    /// trunk's next peer is tried.
    pub invite_timeout_ns: u64,
    /// `User-Agent`/`Server` value.
    pub product: String,
    /// How often every trunk peer gets an OPTIONS (Teams demotes an SBC silent for three
    /// minutes and wants one at least every 60 s).
    pub options_interval_ns: u64,
    /// A call whose media stopped for this long is ended (BYE to both legs).
    pub media_timeout_ns: u64,
    /// The same for a call on hold (a leg offered sendonly, recvonly or inactive).
    pub hold_timeout_ns: u64,
    /// How often a call's media counters are read.
    pub media_check_ns: u64,
}

impl B2buaConfig {
    /// The route for a call from trunk `from` to `number`.
    pub fn route(&self, from: usize, number: &str) -> Option<usize> {
        self.routes
            .iter()
            .find(|r| r.from == from && number.starts_with(&r.prefix))
            .map(|r| r.to)
    }

    /// The trunk a request from `source` belongs to.
    pub fn trunk_of(&self, source: IpAddr) -> Option<usize> {
        self.trunks
            .iter()
            .position(|t| t.source_addresses.contains(&source))
    }
}
