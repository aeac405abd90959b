//! `control.toml`: what `relay-control` reads at start-up (and on SIGHUP). Every error names
//! the key at fault and what to do; nothing is guessed.
//!
//! ```toml
//! [sbc]
//! fqdn = "sbc.example.com"                 # in Via, Contact, our certificate's SAN
//! dataplane_socket = "/run/relay/dataplane.sock"
//! media_ports = "20000-59999"              # even ports only are used (RTCP on +1)
//! max_calls = 10000
//!
//! [tls]                                    # needed when a listener or trunk uses TLS
//! certificate = "/etc/relay/tls/fullchain.pem"   # the full chain is sent
//! private_key = "/etc/relay/tls/key.pem"         # mode 0600
//!
//! [cdr]                                    # optional: no records without it
//! dir = "/var/lib/relay/cdr"
//! kek = "/etc/relay/cdr.kek"
//!
//! [limits]                                 # optional: these are the defaults
//! max_connections = 1000                   # inbound TCP/TLS connections at once
//! max_connections_per_source = 32          # ... from one IP address
//! max_tls_handshakes = 64                  # TLS handshakes in progress at once
//! tls_handshake_timeout_s = 10
//! message_timeout_s = 10                   # a message must arrive whole within this
//! idle_timeout_s = 900                     # a connection silent this long is closed; 0: never
//! invites_per_second = 200                 # new INVITEs from everyone (then 503)
//! invites_per_second_per_source = 50       # ... from one IP address
//! requests_per_second = 1000              # other new requests outside a dialog (then 503)
//! requests_per_second_per_source = 100     # ... from one IP address
//! retry_after_s = 5                        # in those 503s
//! error_responses_per_second = 200         # answers to malformed requests
//! max_udp_flows = 100000                    # SIP-over-UDP peers kept (address and port)
//! max_udp_flows_per_source = 256
//!
//! [[listen]]
//! transport = "tls"                        # tls, tcp or udp
//! address = "198.18.10.1:5061"
//!
//! [[trunk]]
//! name = "teams"
//! profile = "teams"                        # or "generic"
//! peers = [{ host = "sip.pstnhub.microsoft.com", port = 5061, transport = "tls" }]
//! signalling_address = "198.18.10.1:5061"  # ours towards this trunk: one of the listeners
//! media_address = "198.18.10.10"           # a data-plane address
//! media_policy = "srtp_mandatory"          # srtp_mandatory, srtp_optional or rtp
//! suites = ["AES_CM_128_HMAC_SHA1_80"]
//! trust_store = "/etc/relay/tls/teams-roots.pem"  # CAs the trunk's certificates chain to
//!
//! [[route]]
//! from = "teams"
//! to = "operator"
//! prefix = "+49"                           # optional
//! ```

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use relay_b2bua::config::{B2buaConfig, MediaPolicy, PeerConfig, Profile, Route, TrunkConfig};
use relay_sip::Transport;
use relay_srtp::Suite;
use serde::Deserialize;

/// A configuration that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {key}: {problem}")]
pub struct ConfigError {
    /// The file.
    pub path: String,
    /// The key at fault (`trunk[1].media_address`).
    pub key: String,
    /// What is wrong and how to fix it.
    pub problem: String,
}

/// The transports SIP is offered on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SipTransport {
    /// SIP over TLS (TLS 1.2 and 1.3).
    Tls,
    /// SIP over TCP.
    Tcp,
    /// SIP over UDP (RFC 3261 timers).
    Udp,
}

impl SipTransport {
    /// The Via transport.
    pub fn sip(self) -> Transport {
        match self {
            SipTransport::Tls => Transport::Tls,
            SipTransport::Tcp => Transport::Tcp,
            SipTransport::Udp => Transport::Udp,
        }
    }
}

/// `[sbc]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SbcSection {
    /// Our FQDN.
    pub fqdn: String,
    /// The data plane's control socket.
    pub dataplane_socket: PathBuf,
    /// Media port range, `FIRST-LAST`.
    #[serde(default = "default_ports")]
    pub media_ports: String,
    /// Calls at most.
    #[serde(default = "default_max_calls")]
    pub max_calls: usize,
    /// Seconds a freed media port stays unused.
    #[serde(default = "default_quarantine")]
    pub port_quarantine_s: u64,
    /// Seconds a call may wait for a final response before the next peer is tried.
    #[serde(default = "default_invite_timeout")]
    pub invite_timeout_s: u64,
    /// The admin socket `relayctl calls` and `relayctl trunks` read (mode 0600).
    #[serde(default = "default_admin_socket")]
    pub admin_socket: PathBuf,
    /// Where calls in progress are kept to survive a restart (mode 0700).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Where Prometheus scrapes `GET /metrics` (a local address; none: no endpoint).
    pub metrics: Option<SocketAddr>,
    /// Seconds between OPTIONS to each trunk peer (at most 60 for Teams).
    #[serde(default = "default_options_interval")]
    pub options_interval_s: u64,
    /// Seconds without media after which a call is ended.
    #[serde(default = "default_media_timeout")]
    pub media_timeout_s: u64,
    /// The same for a call on hold.
    #[serde(default = "default_hold_timeout")]
    pub hold_timeout_s: u64,
}

fn default_state_dir() -> PathBuf {
    "/var/lib/relay/control".into()
}
fn default_admin_socket() -> PathBuf {
    "/run/relay/control.sock".into()
}
fn default_options_interval() -> u64 {
    30
}
fn default_media_timeout() -> u64 {
    60
}
fn default_hold_timeout() -> u64 {
    3600
}

fn default_ports() -> String {
    "20000-59999".into()
}
fn default_max_calls() -> usize {
    10_000
}
fn default_quarantine() -> u64 {
    30
}
fn default_invite_timeout() -> u64 {
    32
}

/// `[tls]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain, leaf first.
    pub certificate: PathBuf,
    /// PEM private key (mode 0600).
    pub private_key: PathBuf,
}

/// `[cdr]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdrSection {
    /// The store directory.
    pub dir: PathBuf,
    /// The key-encryption key.
    pub kek: PathBuf,
    /// The day-key directory: outside `dir` (a backup of `dir` then holds no key); default
    /// `<dir>-keys`, as `relayctl --keys`.
    #[serde(default)]
    pub keys: Option<PathBuf>,
}

/// `[[listen]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenSection {
    /// The transport.
    pub transport: SipTransport,
    /// The address and port.
    pub address: SocketAddr,
}

/// A peer of a trunk.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSection {
    /// Host name or address.
    pub host: String,
    /// Port (default 5061 for TLS, 5060 otherwise).
    pub port: Option<u16>,
    /// Transport.
    pub transport: SipTransport,
}

/// `[[trunk]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkSection {
    /// Its name.
    pub name: String,
    /// `generic` or `teams`.
    #[serde(default = "default_profile")]
    pub profile: String,
    /// Peers in priority order.
    pub peers: Vec<PeerSection>,
    /// Addresses requests from the trunk come from (default: the peers' addresses).
    #[serde(default)]
    pub source_addresses: Vec<IpAddr>,
    /// Our signalling address towards the trunk (one of the listeners).
    pub signalling_address: SocketAddr,
    /// The data-plane address its media uses.
    pub media_address: IpAddr,
    /// `srtp_mandatory`, `srtp_optional` or `rtp`.
    pub media_policy: String,
    /// SRTP suites in order of preference.
    #[serde(default = "default_suites")]
    pub suites: Vec<String>,
    /// PEM CA bundle the trunk's TLS certificates must chain to.
    pub trust_store: Option<PathBuf>,
    /// Require a client certificate from this trunk's peers (mutual TLS).
    #[serde(default)]
    pub verify_client: bool,
    /// The name its servers' certificates carry (default: the peer's host).
    pub tls_server_name: Option<String>,
    /// Send OPTIONS to the trunk's peers for their health (default true; Teams needs it).
    #[serde(default = "default_true")]
    pub options_ping: bool,
    /// The host we put in Via and Contact towards the trunk (default: `sbc.fqdn` for TLS
    /// trunks, which Teams requires, else the signalling address). Set it to the signalling
    /// address for peers that cannot resolve our FQDN.
    pub local_host: Option<String>,
}

fn default_true() -> bool {
    true
}
fn default_profile() -> String {
    "generic".into()
}
fn default_suites() -> Vec<String> {
    vec!["AES_CM_128_HMAC_SHA1_80".into()]
}

/// `[[route]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    /// Trunk calls come from.
    pub from: String,
    /// Trunk they go to.
    pub to: String,
    /// Called-number prefix.
    #[serde(default)]
    pub prefix: String,
}

/// `[limits]`: what the shell lets peers ask of it before a message reaches the B2BUA.
/// Each refusal is counted and logged (see `shell::limits`). Every key is optional.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Inbound TCP and TLS connections open at once; more are closed on accept.
    pub max_connections: usize,
    /// Inbound connections open at once from one IP address.
    pub max_connections_per_source: usize,
    /// TLS handshakes in progress at once; a connection over it is closed on accept.
    pub max_tls_handshakes: usize,
    /// Seconds a TLS handshake may take.
    pub tls_handshake_timeout_s: u64,
    /// Seconds a message may take to arrive whole from its first byte, and an inbound
    /// connection to deliver its first message (or keep-alive) once it is open.
    pub message_timeout_s: u64,
    /// Seconds a connection may send nothing, not even a keep-alive, before it is closed
    /// (0: never). Our answers to a caller go on the connection its INVITE came in on, so
    /// keep this above the longest call for peers that send no keep-alives or OPTIONS.
    pub idle_timeout_s: u64,
    /// New INVITEs (no To tag) admitted per second from all sources together; the
    /// bucket holds one second's worth. Over it: 503 with Retry-After.
    pub invites_per_second: u32,
    /// New INVITEs admitted per second from one IP address.
    pub invites_per_second_per_source: u32,
    /// Other new requests outside a dialog (no To tag; OPTIONS, REGISTER, MESSAGE, SUBSCRIBE,
    /// ...; never ACK or CANCEL) admitted per second from all sources together; over it: 503
    /// with Retry-After. A trunk peer's OPTIONS are a few a minute.
    pub requests_per_second: u32,
    /// The same from one IP address.
    pub requests_per_second_per_source: u32,
    /// The Retry-After of those 503s, in seconds.
    pub retry_after_s: u32,
    /// Answers to malformed requests per second, all sources together: they go to the
    /// source address of a UDP datagram, which may be forged.
    pub error_responses_per_second: u32,
    /// SIP-over-UDP flows (peer address and port) kept at once; a datagram from a new one
    /// over it is dropped. UDP flows have no end, so this bounds what forged sources cost.
    pub max_udp_flows: usize,
    /// The same from one IP address (ports).
    pub max_udp_flows_per_source: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            // A trunking SBC talks to few peers over few connections; 1000 also stays
            // below the usual soft limit of 1024 open files.
            max_connections: 1000,
            max_connections_per_source: 32,
            max_tls_handshakes: 64,
            tls_handshake_timeout_s: 10,
            message_timeout_s: 10,
            idle_timeout_s: 900,
            invites_per_second: 200,
            invites_per_second_per_source: 50,
            requests_per_second: 1000,
            requests_per_second_per_source: 100,
            retry_after_s: 5,
            error_responses_per_second: 200,
            // A trunk peer uses one or a few ports; 100,000 flows are a few tens of MB.
            max_udp_flows: 100_000,
            max_udp_flows_per_source: 256,
        }
    }
}

impl LimitsSection {
    fn check(&self) -> Result<(), (String, String)> {
        let at_least_one = [
            ("max_connections", self.max_connections as u64),
            (
                "max_connections_per_source",
                self.max_connections_per_source as u64,
            ),
            ("max_tls_handshakes", self.max_tls_handshakes as u64),
            ("max_udp_flows", self.max_udp_flows as u64),
            (
                "max_udp_flows_per_source",
                self.max_udp_flows_per_source as u64,
            ),
            ("tls_handshake_timeout_s", self.tls_handshake_timeout_s),
            ("message_timeout_s", self.message_timeout_s),
            ("invites_per_second", u64::from(self.invites_per_second)),
            (
                "invites_per_second_per_source",
                u64::from(self.invites_per_second_per_source),
            ),
            ("requests_per_second", u64::from(self.requests_per_second)),
            (
                "requests_per_second_per_source",
                u64::from(self.requests_per_second_per_source),
            ),
            (
                "error_responses_per_second",
                u64::from(self.error_responses_per_second),
            ),
        ];
        for (key, v) in at_least_one {
            if v == 0 {
                return Err((
                    format!("limits.{key}"),
                    "must be at least 1 (leave it out for the default)".into(),
                ));
            }
        }
        if self.max_connections_per_source > self.max_connections {
            return Err((
                "limits.max_connections_per_source".into(),
                format!(
                    "{} is above limits.max_connections ({})",
                    self.max_connections_per_source, self.max_connections
                ),
            ));
        }
        for (key, per_source, total_key, total) in [
            (
                "invites_per_second_per_source",
                self.invites_per_second_per_source,
                "invites_per_second",
                self.invites_per_second,
            ),
            (
                "requests_per_second_per_source",
                self.requests_per_second_per_source,
                "requests_per_second",
                self.requests_per_second,
            ),
        ] {
            if per_source > total {
                return Err((
                    format!("limits.{key}"),
                    format!("{per_source} is above limits.{total_key} ({total})"),
                ));
            }
        }
        for (key, v) in [
            ("tls_handshake_timeout_s", self.tls_handshake_timeout_s),
            ("message_timeout_s", self.message_timeout_s),
            ("idle_timeout_s", self.idle_timeout_s),
        ] {
            if v > 86_400 {
                return Err((
                    format!("limits.{key}"),
                    "must be at most 86400 (a day)".into(),
                ));
            }
        }
        Ok(())
    }
}

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// `[sbc]`.
    pub sbc: SbcSection,
    /// `[tls]`.
    pub tls: Option<TlsSection>,
    /// `[cdr]`.
    pub cdr: Option<CdrSection>,
    /// `[limits]`.
    #[serde(default)]
    pub limits: LimitsSection,
    /// `[[listen]]`.
    #[serde(default)]
    pub listen: Vec<ListenSection>,
    /// `[[trunk]]`.
    #[serde(default)]
    pub trunk: Vec<TrunkSection>,
    /// `[[route]]`.
    #[serde(default)]
    pub route: Vec<RouteSection>,
}

/// A checked configuration, ready for the shell and the B2BUA.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The file as read.
    pub file: ControlConfig,
    /// The B2BUA's configuration (peers resolved).
    pub b2bua: B2buaConfig,
    /// The media port range.
    pub media_ports: (u16, u16),
}

impl ControlConfig {
    /// Reads, parses and checks `path`.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: shown.clone(),
            key: "(file)".into(),
            problem: format!("cannot read it: {e}"),
        })?;
        let file: ControlConfig = toml::from_str(&text).map_err(|e| ConfigError {
            path: shown.clone(),
            key: "(syntax)".into(),
            problem: e.to_string().trim().to_owned(),
        })?;
        file.check(&shown)
    }

    /// Checks a parsed file; `path` names it in errors.
    pub fn check(self, path: &str) -> Result<Settings, ConfigError> {
        let fail = |key: String, problem: String| ConfigError {
            path: path.to_owned(),
            key,
            problem,
        };
        if self.sbc.options_interval_s == 0
            || self.sbc.media_timeout_s == 0
            || self.sbc.hold_timeout_s < self.sbc.media_timeout_s
        {
            return Err(fail("sbc.options_interval_s".into(), "options_interval_s and media_timeout_s must be above 0, hold_timeout_s at least media_timeout_s".into()));
        }
        if self.trunk.iter().any(|t| t.profile == "teams") && self.sbc.options_interval_s > 60 {
            return Err(fail("sbc.options_interval_s".into(), "Teams wants an OPTIONS at least every 60 s (it demotes an SBC silent for three minutes): set 60 or less".into()));
        }
        if self.sbc.fqdn.is_empty() || relay_sip::Host::parse(&self.sbc.fqdn).is_err() {
            return Err(fail(
                "sbc.fqdn".into(),
                "must be a host name, e.g. sbc.example.com".into(),
            ));
        }
        let media_ports = parse_range(&self.sbc.media_ports).ok_or_else(|| {
            fail(
                "sbc.media_ports".into(),
                "must be FIRST-LAST with 1024 <= FIRST < LAST <= 65534, e.g. \"20000-59999\""
                    .into(),
            )
        })?;
        self.limits
            .check()
            .map_err(|(key, problem)| fail(key, problem))?;
        if self.listen.is_empty() {
            return Err(fail(
                "listen".into(),
                "add at least one [[listen]] with transport and address".into(),
            ));
        }
        let uses_tls = self.listen.iter().any(|l| l.transport == SipTransport::Tls)
            || self
                .trunk
                .iter()
                .any(|t| t.peers.iter().any(|p| p.transport == SipTransport::Tls));
        match (&self.tls, uses_tls) {
            (None, true) => {
                return Err(fail(
                    "tls".into(),
                    "a listener or peer uses TLS: add [tls] with certificate and private_key"
                        .into(),
                ))
            }
            (Some(tls), _) => {
                readable(&tls.certificate).map_err(|p| fail("tls.certificate".into(), p))?;
                readable(&tls.private_key).map_err(|p| fail("tls.private_key".into(), p))?;
                let mode = std::fs::metadata(&tls.private_key)
                    .map(|m| m.permissions().mode())
                    .unwrap_or(0);
                if mode & 0o077 != 0 {
                    return Err(fail(
                        "tls.private_key".into(),
                        format!(
                            "{} is readable by group or others (mode {:o}): run `chmod 600 {}`",
                            tls.private_key.display(),
                            mode & 0o777,
                            tls.private_key.display()
                        ),
                    ));
                }
            }
            (None, false) => {}
        }
        if self.trunk.is_empty() {
            return Err(fail(
                "trunk".into(),
                "add at least two [[trunk]] sections and a [[route]] between them".into(),
            ));
        }
        let mut trunks = Vec::new();
        for (i, t) in self.trunk.iter().enumerate() {
            let key = |k: &str| format!("trunk[{i}] ({}).{k}", t.name);
            if t.name.is_empty() || self.trunk[..i].iter().any(|o| o.name == t.name) {
                return Err(fail(key("name"), "must be set and unique".into()));
            }
            let profile = match t.profile.as_str() {
                "generic" => Profile::Generic,
                "teams" => Profile::Teams,
                other => {
                    return Err(fail(
                        key("profile"),
                        format!("{other:?}: use \"generic\" or \"teams\""),
                    ))
                }
            };
            let media_policy = match t.media_policy.as_str() {
                "srtp_mandatory" => MediaPolicy::SrtpMandatory,
                "srtp_optional" => MediaPolicy::SrtpOptional,
                "rtp" => MediaPolicy::Rtp,
                other => {
                    return Err(fail(
                        key("media_policy"),
                        format!("{other:?}: use srtp_mandatory, srtp_optional or rtp"),
                    ))
                }
            };
            let mut suites = Vec::new();
            for s in &t.suites {
                suites.push(s.parse::<Suite>().map_err(|_| {
                    fail(
                        key("suites"),
                        format!(
                            "unknown suite {s:?} (e.g. AES_CM_128_HMAC_SHA1_80, AEAD_AES_128_GCM)"
                        ),
                    )
                })?);
            }
            if suites.is_empty() && media_policy != MediaPolicy::Rtp {
                return Err(fail(
                    key("suites"),
                    "an SRTP trunk needs at least one suite".into(),
                ));
            }
            if profile == Profile::Teams {
                if media_policy != MediaPolicy::SrtpMandatory
                    || suites.first() != Some(&Suite::AesCm128HmacSha1_80)
                {
                    return Err(fail(key("media_policy"), "a Teams trunk needs media_policy = \"srtp_mandatory\" with AES_CM_128_HMAC_SHA1_80 first in suites".into()));
                }
                if !t.options_ping {
                    return Err(fail(key("options_ping"), "Teams demotes an SBC that sends no OPTIONS for three minutes: leave options_ping on".into()));
                }
                if t.peers.iter().any(|p| p.transport != SipTransport::Tls) {
                    return Err(fail(
                        key("peers"),
                        "Teams Direct Routing speaks SIP over TLS only: set transport = \"tls\""
                            .into(),
                    ));
                }
            }
            if t.peers.is_empty() {
                return Err(fail(
                    key("peers"),
                    "list at least one peer { host, port, transport }".into(),
                ));
            }
            let mut peers = Vec::new();
            let mut sources = t.source_addresses.clone();
            for (j, p) in t.peers.iter().enumerate() {
                if relay_sip::Host::parse(&p.host).is_err() {
                    return Err(fail(
                        format!("{}[{j}].host", key("peers")),
                        format!("{:?} is not a host name or address", p.host),
                    ));
                }
                let port = p.port.unwrap_or(if p.transport == SipTransport::Tls {
                    5061
                } else {
                    5060
                });
                if t.source_addresses.is_empty() {
                    match (p.host.as_str(), port).to_socket_addrs() {
                        Ok(addrs) => sources.extend(addrs.map(|a| a.ip())),
                        Err(e) => {
                            return Err(fail(
                                format!("{}[{j}].host", key("peers")),
                                format!(
                                "cannot resolve {}: {e}; set source_addresses to start without it",
                                p.host
                            ),
                            ))
                        }
                    }
                }
                if p.transport == SipTransport::Tls && t.trust_store.is_none() {
                    return Err(fail(key("trust_store"), "a TLS trunk needs the PEM bundle of the CAs its certificates chain to (Microsoft's roots change: they are never built in)".into()));
                }
                peers.push(PeerConfig {
                    host: p.host.clone(),
                    port,
                    transport: p.transport.sip(),
                });
            }
            if let Some(store) = &t.trust_store {
                readable(store).map_err(|p| fail(key("trust_store"), p))?;
            }
            if !self
                .listen
                .iter()
                .any(|l| l.address == t.signalling_address)
            {
                return Err(fail(
                    key("signalling_address"),
                    format!(
                        "{} is not the address of any [[listen]]",
                        t.signalling_address
                    ),
                ));
            }
            trunks.push(TrunkConfig {
                name: t.name.clone(),
                peers,
                source_addresses: sources,
                local_host: match &t.local_host {
                    Some(h) if profile == Profile::Teams && *h != self.sbc.fqdn => {
                        return Err(fail(key("local_host"), "a Teams trunk must see our FQDN (sbc.fqdn) in Contact: Teams answers 403 to an address".into()))
                    }
                    Some(h) if relay_sip::Host::parse(h).is_err() => {
                        return Err(fail(key("local_host"), format!("{h:?} is not a host name or address")))
                    }
                    Some(h) => h.clone(),
                    None if profile == Profile::Teams || t.peers.iter().any(|p| p.transport == SipTransport::Tls) => self.sbc.fqdn.clone(),
                    None => t.signalling_address.ip().to_string(),
                },
                local_signalling: t.signalling_address,
                media_address: t.media_address,
                media_policy,
                suites,
                profile,
                options_ping: t.options_ping,
            });
        }
        let mut routes = Vec::new();
        for (i, r) in self.route.iter().enumerate() {
            let find = |name: &str, k: &str| {
                self.trunk
                    .iter()
                    .position(|t| t.name == name)
                    .ok_or_else(|| {
                        fail(
                            format!("route[{i}].{k}"),
                            format!("no trunk named {name:?}"),
                        )
                    })
            };
            routes.push(Route {
                from: find(&r.from, "from")?,
                prefix: r.prefix.clone(),
                to: find(&r.to, "to")?,
            });
        }
        if routes.is_empty() {
            return Err(fail(
                "route".into(),
                "add a [[route]] with from and to trunk names".into(),
            ));
        }
        let b2bua = B2buaConfig {
            trunks,
            routes,
            max_calls: self.sbc.max_calls,
            t1_ns: 500_000_000,
            invite_timeout_ns: self.sbc.invite_timeout_s * 1_000_000_000,
            product: format!("relay-control/{}", env!("CARGO_PKG_VERSION")),
            options_interval_ns: self.sbc.options_interval_s * 1_000_000_000,
            media_timeout_ns: self.sbc.media_timeout_s * 1_000_000_000,
            hold_timeout_ns: self.sbc.hold_timeout_s * 1_000_000_000,
            media_check_ns: (self.sbc.media_timeout_s * 1_000_000_000 / 4)
                .clamp(1_000_000_000, 10_000_000_000),
        };
        Ok(Settings {
            file: self,
            b2bua,
            media_ports,
        })
    }
}

fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-')?;
    let (a, b): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (1024 <= a && a < b && b <= 65_534).then_some((a, b))
}

fn readable(path: &Path) -> Result<(), String> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> String {
        r#"
[sbc]
fqdn = "sbc.test"
dataplane_socket = "/run/relay/dataplane.sock"

[[listen]]
transport = "udp"
address = "198.18.10.1:5060"

[[trunk]]
name = "a"
peers = [{ host = "198.18.10.2", transport = "udp" }]
signalling_address = "198.18.10.1:5060"
media_address = "198.18.10.10"
media_policy = "rtp"

[[trunk]]
name = "b"
peers = [{ host = "198.18.20.2", port = 5070, transport = "udp" }, { host = "198.18.20.3", transport = "udp" }]
signalling_address = "198.18.10.1:5060"
media_address = "198.18.20.10"
media_policy = "srtp_optional"
suites = ["AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80"]

[[route]]
from = "a"
to = "b"
"#
        .into()
    }

    fn check(text: &str) -> Result<Settings, ConfigError> {
        toml::from_str::<ControlConfig>(text)
            .map_err(|e| ConfigError {
                path: "t".into(),
                key: "(syntax)".into(),
                problem: e.to_string(),
            })?
            .check("t")
    }

    #[test]
    fn a_valid_file_becomes_the_b2bua_configuration() {
        let s = check(&base()).unwrap();
        assert_eq!(s.media_ports, (20_000, 59_999));
        let b = &s.b2bua.trunks[1];
        assert_eq!(b.peers[0].port, 5070);
        assert_eq!(b.peers[1].port, 5060);
        assert_eq!(b.suites, [Suite::AeadAes128Gcm, Suite::AesCm128HmacSha1_80]);
        assert_eq!(
            b.source_addresses,
            [
                "198.18.20.2".parse::<IpAddr>().unwrap(),
                "198.18.20.3".parse().unwrap()
            ]
        );
        assert_eq!(
            b.local_host, "198.18.10.1",
            "plain trunks are addressed by IP"
        );
        assert_eq!(s.b2bua.route(0, "+4930"), Some(1));
    }

    #[test]
    fn each_error_names_the_key_and_the_fix() {
        for (from, to, key, says) in [
            (
                "media_policy = \"rtp\"",
                "media_policy = \"maybe\"",
                "trunk[0] (a).media_policy",
                "use srtp_mandatory",
            ),
            (
                "fqdn = \"sbc.test\"",
                "fqdn = \"\"",
                "sbc.fqdn",
                "host name",
            ),
            (
                "to = \"b\"",
                "to = \"c\"",
                "route[0].to",
                "no trunk named \"c\"",
            ),
            (
                "media_address = \"198.18.10.10\"",
                "media_address = \"nope\"",
                "(syntax)",
                "invalid",
            ),
            (
                "suites = [\"AEAD_AES_128_GCM\", \"AES_CM_128_HMAC_SHA1_80\"]",
                "suites = [\"ROT13\"]",
                "trunk[1] (b).suites",
                "unknown suite",
            ),
            (
                "signalling_address = \"198.18.10.1:5060\"\nmedia_address = \"198.18.20.10\"",
                "signalling_address = \"198.18.10.9:5060\"\nmedia_address = \"198.18.20.10\"",
                "trunk[1] (b).signalling_address",
                "not the address of any [[listen]]",
            ),
            (
                "transport = \"udp\"\naddress",
                "transport = \"tls\"\naddress",
                "tls",
                "add [tls]",
            ),
            (
                "[sbc]",
                "[sbc]\ncolour = \"blue\"",
                "(syntax)",
                "unknown field",
            ),
            (
                "[[listen]]",
                "[limits]\nmax_connections = 0\n\n[[listen]]",
                "limits.max_connections",
                "at least 1",
            ),
            (
                "[[listen]]",
                "[limits]\nmax_connections = 10\nmax_connections_per_source = 11\n\n[[listen]]",
                "limits.max_connections_per_source",
                "above limits.max_connections",
            ),
            (
                "[[listen]]",
                "[limits]\ninvites_per_second_per_source = 1000\n\n[[listen]]",
                "limits.invites_per_second_per_source",
                "above limits.invites_per_second",
            ),
            (
                "[[listen]]",
                "[limits]\nidle_timeout_s = 100000\n\n[[listen]]",
                "limits.idle_timeout_s",
                "at most 86400",
            ),
            (
                "[[listen]]",
                "[limits]\nmax_calls = 5\n\n[[listen]]",
                "(syntax)",
                "unknown field",
            ),
        ] {
            let text = base().replacen(from, to, 1);
            assert_ne!(text, base(), "{from}");
            let e = check(&text).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.problem.contains(says), "{e}");
        }
    }

    #[test]
    fn limits_have_safe_defaults_and_can_be_set_one_by_one() {
        let s = check(&base()).unwrap();
        assert_eq!(s.file.limits, LimitsSection::default());
        let text = base().replacen(
            "[[listen]]",
            "[limits]\nmax_connections_per_source = 4\nidle_timeout_s = 0\n\n[[listen]]",
            1,
        );
        let l = check(&text).unwrap().file.limits;
        assert_eq!(l.max_connections_per_source, 4);
        assert_eq!(l.idle_timeout_s, 0, "0 turns the idle timeout off");
        assert_eq!(l.max_connections, LimitsSection::default().max_connections);
    }

    #[test]
    fn a_teams_trunk_must_follow_microsofts_rules() {
        let text = base().replace("name = \"b\"", "name = \"b\"\nprofile = \"teams\"");
        let e = check(&text).unwrap_err();
        assert!(e.problem.contains("srtp_mandatory"), "{e}");
    }

    #[test]
    fn a_private_key_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, "x").unwrap();
        std::fs::write(&key, "x").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = format!(
            "{}\n[tls]\ncertificate = {:?}\nprivate_key = {:?}\n",
            base(),
            cert,
            key
        );
        let e = check(&text).unwrap_err();
        assert_eq!(e.key, "tls.private_key");
        assert!(e.problem.contains("chmod 600"), "{e}");
    }
}

#[cfg(test)]
mod sample_tests {
    use super::*;

    /// `docs/control.toml.sample` is a valid file once its paths exist (and without DNS:
    /// its peers' addresses are given).
    #[test]
    fn the_sample_configuration_checks() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/control.toml.sample"
        ))
        .unwrap();
        for (name, mode) in [
            ("fullchain.pem", 0o644),
            ("key.pem", 0o600),
            ("teams-roots.pem", 0o644),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, "x").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            text = text.replace(&format!("/etc/relay/tls/{name}"), p.to_str().unwrap());
        }
        text = text.replace(
            "profile = \"teams\"",
            "profile = \"teams\"\nsource_addresses = [\"52.112.0.1\"]",
        );
        text = text.replace(
            "name = \"operator\"",
            "name = \"operator\"\nsource_addresses = [\"10.1.0.20\", \"10.1.0.21\"]",
        );
        let s = toml::from_str::<ControlConfig>(&text)
            .unwrap()
            .check("sample")
            .unwrap();
        let teams = &s.b2bua.trunks[0];
        assert_eq!(teams.profile, Profile::Teams);
        assert_eq!(teams.local_host, "sbc.example.com");
        assert_eq!(teams.peers.len(), 3);
        assert_eq!(s.b2bua.route(1, "+4930123"), Some(0));
        assert_eq!(s.b2bua.route(1, "+3312"), None);
    }
}
