//! SDP (RFC 4566) parsing and writing, with the attributes an SBC rewrites typed:
//! `a=crypto` ([`Crypto`], RFC 4568), `a=rtcp` (RFC 3605), `a=rtcp-mux` (RFC 5761),
//! direction attributes (RFC 3264) and ICE attributes (RFC 8839), which
//! [`Attribute::is_ice`] picks out so that a rewriter can strip them.
//!
//! The parser is strict and bounded: the size limit is [`Limits::max_body_size`], line
//! count and length and the number of media sections have their own limits; fields are
//! separated by single spaces; lines come in the order RFC 4566 section 5 gives (`v`, `o`,
//! `s` first, session lines before the first `m=`, each media section's lines after its
//! `m=`); a type letter it does not know makes it refuse the whole description, as the
//! RFC requires. Lines may end in CRLF or, as the RFC asks parsers to tolerate, LF;
//! [`SessionDescription::to_bytes`] writes CRLF.

mod attribute;
pub use attribute::{Attribute, Direction, IceAttribute, IceKind, Rtcp};
mod crypto;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use crypto::{
    Crypto, CryptoError, CryptoSuite, FecOrder, KeyParam, KeySalt, Lifetime, Mki, SessionParam,
};

use crate::error::SyntaxError;
use crate::limits::Limits;
use crate::uri::is_hostname;

/// Free text for an SDP field: anything but NUL, CR and LF (RFC 4566 `byte-string`), and
/// not empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Text(String);

impl Text {
    /// `s`, if it can stand in an SDP line.
    pub fn new(s: &str) -> Result<Text, SyntaxError> {
        if s.is_empty() || s.contains(['\0', '\r', '\n']) {
            Err(SyntaxError)
        } else {
            Ok(Text(s.to_owned()))
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A word: non-empty text without whitespace, for fields separated by spaces.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Word(String);

impl Word {
    /// `s`, if it is non-empty visible text without whitespace.
    pub fn new(s: &str) -> Result<Word, SyntaxError> {
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Err(SyntaxError)
        } else {
            Ok(Word(s.to_owned()))
        }
    }

    /// The word.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

//= https://www.rfc-editor.org/rfc/rfc4566#section-9
//# token-char =          %x21 / %x23-27 / %x2A-2B / %x2D-2E / %x30-39
//#                       / %x41-5A / %x5E-7E
fn is_token_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x27 | 0x2a..=0x2b | 0x2d..=0x2e | 0x30..=0x39 | 0x41..=0x5a | 0x5e..=0x7e)
}

fn token(s: &str) -> Option<Word> {
    (!s.is_empty() && s.bytes().all(is_token_char)).then(|| Word(s.to_owned()))
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An SDP line type (the letter before `=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LineType {
    /// `v=` protocol version.
    V,
    /// `o=` origin.
    O,
    /// `s=` session name.
    S,
    /// `i=` information.
    I,
    /// `u=` URI.
    U,
    /// `e=` email.
    E,
    /// `p=` phone.
    P,
    /// `c=` connection.
    C,
    /// `b=` bandwidth.
    B,
    /// `t=` timing.
    T,
    /// `r=` repeat.
    R,
    /// `z=` time zones.
    Z,
    /// `k=` encryption key.
    K,
    /// `a=` attribute.
    A,
    /// `m=` media.
    M,
}

impl LineType {
    fn from_letter(b: u8) -> Option<LineType> {
        Some(match b {
            b'v' => LineType::V,
            b'o' => LineType::O,
            b's' => LineType::S,
            b'i' => LineType::I,
            b'u' => LineType::U,
            b'e' => LineType::E,
            b'p' => LineType::P,
            b'c' => LineType::C,
            b'b' => LineType::B,
            b't' => LineType::T,
            b'r' => LineType::R,
            b'z' => LineType::Z,
            b'k' => LineType::K,
            b'a' => LineType::A,
            b'm' => LineType::M,
            _ => return None,
        })
    }

    /// The letter.
    pub fn letter(self) -> char {
        match self {
            LineType::V => 'v',
            LineType::O => 'o',
            LineType::S => 's',
            LineType::I => 'i',
            LineType::U => 'u',
            LineType::E => 'e',
            LineType::P => 'p',
            LineType::C => 'c',
            LineType::B => 'b',
            LineType::T => 't',
            LineType::R => 'r',
            LineType::Z => 'z',
            LineType::K => 'k',
            LineType::A => 'a',
            LineType::M => 'm',
        }
    }
}

impl fmt::Display for LineType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=", self.letter())
    }
}

/// An attribute this crate types, for errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttributeKind {
    /// `a=rtcp`.
    Rtcp,
    /// `a=rtcp-mux`.
    RtcpMux,
    /// `a=sendrecv`, `a=sendonly`, `a=recvonly`, `a=inactive`.
    Direction,
    /// An ICE attribute.
    Ice,
    /// Any attribute's name or value.
    Generic,
}

/// Why an SDP was refused. Like [`crate::ParseError`], it never carries input bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// Larger than [`Limits::max_body_size`].
    #[error("SDP too large")]
    TooLarge,
    /// More lines than [`Limits::max_sdp_lines`].
    #[error("too many SDP lines")]
    TooManyLines,
    /// A line longer than [`Limits::max_sdp_line_len`].
    #[error("SDP line too long")]
    LineTooLong,
    /// More media sections than [`Limits::max_media_sections`].
    #[error("too many SDP media sections")]
    TooManyMedia,
    /// Not UTF-8.
    #[error("SDP not UTF-8")]
    NotUtf8,
    /// A control character other than HTAB (or a CR not ending a line).
    #[error("control character in SDP")]
    ControlCharacter,
    /// A line that is not `<letter>=<value>`, or an empty line before the end.
    #[error("malformed SDP line")]
    MalformedLine,
    /// A type letter RFC 4566 does not define.
    #[error("unknown SDP line type")]
    UnknownType,
    /// A line where RFC 4566 section 5 does not allow it, or repeated where only one may be.
    #[error("misplaced {0} line")]
    Misplaced(LineType),
    /// A mandatory line is missing.
    #[error("missing {0} line")]
    Missing(LineType),
    /// A line whose value breaks its grammar.
    #[error("malformed {0} line")]
    BadValue(LineType),
    /// `v=` other than 0.
    #[error("unsupported SDP version")]
    BadVersion,
    /// A media section with no `c=` of its own or at session level.
    #[error("media without connection address")]
    MissingConnection,
    /// A typed attribute with a bad value (or a value where it takes none).
    #[error("malformed attribute")]
    BadAttribute(AttributeKind),
    /// A bad `a=crypto`.
    #[error("malformed crypto attribute: {0}")]
    BadCrypto(CryptoError),
}

impl SdpError {
    /// The status of the response to an offer refused for this reason: 413 when too
    /// large, 400 otherwise (RFC 3261 section 21.4).
    pub fn status(self) -> u16 {
        match self {
            SdpError::TooLarge => 413,
            _ => 400,
        }
    }
}

/// `IP4` or `IP6`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrType {
    /// IPv4.
    Ip4,
    /// IPv6.
    Ip6,
}

impl AddrType {
    fn parse(s: &str) -> Option<AddrType> {
        match s {
            "IP4" => Some(AddrType::Ip4),
            "IP6" => Some(AddrType::Ip6),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            AddrType::Ip4 => "IP4",
            AddrType::Ip6 => "IP6",
        }
    }
}

/// A unicast address or domain name in `o=`, `c=` or `a=rtcp`, with its address type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// An IP address (its family gives the address type).
    Ip(IpAddr),
    /// A fully qualified domain name.
    Domain(AddrType, Word),
}

impl Address {
    fn parse(addr_type: &str, s: &str) -> Option<Address> {
        let ty = AddrType::parse(addr_type)?;
        let ip = match ty {
            AddrType::Ip4 => s.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
            AddrType::Ip6 => s.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        };
        match ip {
            Some(ip) => Some(Address::Ip(ip)),
            None if is_hostname(s) => Some(Address::Domain(ty, Word(s.to_owned()))),
            None => None,
        }
    }

    /// `IP4` or `IP6`.
    pub fn addr_type(&self) -> AddrType {
        match self {
            Address::Ip(IpAddr::V4(_)) => AddrType::Ip4,
            Address::Ip(IpAddr::V6(_)) => AddrType::Ip6,
            Address::Domain(t, _) => *t,
        }
    }

    /// The IP address, if this is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Address::Ip(a) => Some(*a),
            Address::Domain(..) => None,
        }
    }
}

impl fmt::Display for Address {
    /// `IN <addrtype> <address>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IN {} ", self.addr_type().as_str())?;
        match self {
            Address::Ip(a) => write!(f, "{a}"),
            Address::Domain(_, d) => write!(f, "{d}"),
        }
    }
}

/// Parses `<nettype> <addrtype> <address>`: only `IN` is accepted.
fn net_address(net: &str, ty: &str, addr: &str) -> Option<Address> {
    (net == "IN").then_some(())?;
    Address::parse(ty, addr)
}

/// `o=`.
///
//= https://www.rfc-editor.org/rfc/rfc4566#section-5.2
//# o=<username> <sess-id> <sess-version> <nettype> <addrtype>
//#   <unicast-address>
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The username (`-` when none).
    pub username: Word,
    /// The session id.
    pub session_id: u64,
    /// The session version, raised with each change (RFC 3264 section 8).
    pub session_version: u64,
    /// The originator's address.
    pub address: Address,
}

/// `c=`.
///
//= https://www.rfc-editor.org/rfc/rfc4566#section-5.7
//# c=<nettype> <addrtype> <connection-address>
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Connection {
    /// The address.
    pub address: Address,
    /// Multicast TTL (IPv4 only).
    pub ttl: Option<u8>,
    /// Number of multicast addresses.
    pub count: Option<u32>,
}

impl Connection {
    /// A unicast connection to `ip`.
    pub fn new(ip: IpAddr) -> Connection {
        Connection {
            address: Address::Ip(ip),
            ttl: None,
            count: None,
        }
    }

    fn parse(v: &str) -> Option<Connection> {
        let f: Vec<&str> = v.split(' ').collect();
        let [net, ty, addr] = f[..] else { return None };
        let mut parts = addr.split('/');
        let address = net_address(net, ty, parts.next()?)?;
        let suffix: Vec<&str> = parts.collect();
        let (ttl, count) = match (address.addr_type(), &suffix[..]) {
            (_, []) => (None, None),
            (AddrType::Ip4, [t]) => (Some(u8::try_from(number(t)?).ok()?), None),
            (AddrType::Ip4, [t, n]) => (
                Some(u8::try_from(number(t)?).ok()?),
                Some(u32::try_from(number(n)?).ok()?),
            ),
            (AddrType::Ip6, [n]) => (None, Some(u32::try_from(number(n)?).ok()?)),
            _ => return None,
        };
        Some(Connection {
            address,
            ttl,
            count,
        })
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.address)?;
        if let Some(t) = self.ttl {
            write!(f, "/{t}")?;
        }
        if let Some(n) = self.count {
            write!(f, "/{n}")?;
        }
        Ok(())
    }
}

/// `b=<bwtype>:<bandwidth>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Bandwidth {
    /// `AS`, `CT`, `TIAS`, ...
    pub bwtype: Word,
    /// The value (kbit/s for AS and CT).
    pub bandwidth: u64,
}

impl Bandwidth {
    fn parse(v: &str) -> Option<Bandwidth> {
        let (t, n) = v.split_once(':')?;
        Some(Bandwidth {
            bwtype: token(t)?,
            bandwidth: number(n)?,
        })
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.bwtype, self.bandwidth)
    }
}

/// `t=` with its `r=` lines.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Timing {
    /// Start time (NTP seconds), 0 for unbounded.
    pub start: u64,
    /// Stop time (NTP seconds), 0 for unbounded.
    pub stop: u64,
    /// `r=` values, as written.
    pub repeats: Vec<Text>,
}

/// The transport protocol of an `m=` line.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// `RTP/AVP` (RFC 3551).
    RtpAvp,
    /// `RTP/AVPF` (RFC 4585).
    RtpAvpf,
    /// `RTP/SAVP` (RFC 3711).
    RtpSavp,
    /// `RTP/SAVPF` (RFC 5124).
    RtpSavpf,
    /// `UDP/TLS/RTP/SAVP` (RFC 5764).
    UdpTlsRtpSavp,
    /// `UDP/TLS/RTP/SAVPF` (RFC 5764).
    UdpTlsRtpSavpf,
    /// `udptl` (T.38).
    Udptl,
    /// Any other `token *("/" token)`.
    Other(Word),
}

impl Proto {
    const KNOWN: [(&'static str, Proto); 7] = [
        ("RTP/AVP", Proto::RtpAvp),
        ("RTP/AVPF", Proto::RtpAvpf),
        ("RTP/SAVP", Proto::RtpSavp),
        ("RTP/SAVPF", Proto::RtpSavpf),
        ("UDP/TLS/RTP/SAVP", Proto::UdpTlsRtpSavp),
        ("UDP/TLS/RTP/SAVPF", Proto::UdpTlsRtpSavpf),
        ("udptl", Proto::Udptl),
    ];

    fn parse(s: &str) -> Option<Proto> {
        if let Some((_, p)) = Self::KNOWN.iter().find(|(n, _)| *n == s) {
            return Some(p.clone());
        }
        s.split('/')
            .all(|t| token(t).is_some())
            .then(|| Proto::Other(Word(s.to_owned())))
    }

    /// The protocol as written.
    pub fn as_str(&self) -> &str {
        match self {
            Proto::Other(w) => w.as_str(),
            p => Self::KNOWN
                .iter()
                .find(|(_, k)| k == p)
                .map_or("", |(n, _)| n),
        }
    }

    /// Whether media formats are RTP payload types.
    pub fn is_rtp(&self) -> bool {
        let s = self.as_str();
        s.starts_with("RTP/") || s.contains("/RTP/")
    }

    /// Whether this is an SRTP profile.
    pub fn is_srtp(&self) -> bool {
        self.is_rtp() && self.as_str().contains("/SAVP")
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `m=` section.
///
//= https://www.rfc-editor.org/rfc/rfc4566#section-5.14
//# m=<media> <port>/<number of ports> <proto> <fmt> ...
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, `image`, `application`, ...
    pub media: Word,
    /// The transport port (0 rejects or disables the stream).
    pub port: u16,
    /// The number of ports, when given.
    pub port_count: Option<u16>,
    /// The transport protocol.
    pub proto: Proto,
    /// The formats (RTP payload types for RTP profiles), at least one.
    pub formats: Vec<Word>,
    /// `i=`.
    pub information: Option<Text>,
    /// `c=`, if this section has its own.
    pub connection: Option<Connection>,
    /// `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `k=` (obsolete).
    pub encryption_key: Option<Text>,
    /// `a=` lines, in order.
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    fn parse(v: &str) -> Option<MediaDescription> {
        let f: Vec<&str> = v.split(' ').collect();
        if f.len() < 4 {
            return None;
        }
        let media = token(f[0])?;
        let (port, port_count) = match f[1].split_once('/') {
            Some((p, n)) => (p, Some(u16::try_from(number(n)?).ok().filter(|&n| n > 0)?)),
            None => (f[1], None),
        };
        let port = u16::try_from(number(port)?).ok()?;
        let proto = Proto::parse(f[2])?;
        let formats = f[3..]
            .iter()
            .map(|s| token(s))
            .collect::<Option<Vec<_>>>()?;
        //= https://www.rfc-editor.org/rfc/rfc3551#section-6
        //# Payload type values in the range 96-127 are dynamic
        if proto.is_rtp()
            && !formats
                .iter()
                .all(|f| number(f.as_str()).is_some_and(|n| n <= 127))
        {
            return None;
        }
        Some(MediaDescription {
            media,
            port,
            port_count,
            proto,
            formats,
            information: None,
            connection: None,
            bandwidths: Vec::new(),
            encryption_key: None,
            attributes: Vec::new(),
        })
    }

    /// The direction attribute of this section, if it has one.
    pub fn direction(&self) -> Option<Direction> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Direction(d) => Some(*d),
            _ => None,
        })
    }

    /// The `a=crypto` attributes, in order.
    pub fn cryptos(&self) -> impl Iterator<Item = &Crypto> {
        self.attributes.iter().filter_map(|a| match a {
            Attribute::Crypto(c) => Some(c),
            _ => None,
        })
    }

    /// Whether `a=rtcp-mux` is present.
    pub fn rtcp_mux(&self) -> bool {
        self.attributes.contains(&Attribute::RtcpMux)
    }

    /// The `a=rtcp` attribute, if present.
    pub fn rtcp(&self) -> Option<&Rtcp> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Rtcp(r) => Some(r),
            _ => None,
        })
    }
}

/// A session description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`.
    pub origin: Origin,
    /// `s=` (`-` or a space when there is no name).
    pub session_name: Text,
    /// `i=`.
    pub information: Option<Text>,
    /// `u=`.
    pub uri: Option<Text>,
    /// `e=` lines.
    pub emails: Vec<Text>,
    /// `p=` lines.
    pub phones: Vec<Text>,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines with their `r=` lines, at least one.
    pub timings: Vec<Timing>,
    /// `z=`.
    pub time_zones: Option<Text>,
    /// Session-level `k=` (obsolete).
    pub encryption_key: Option<Text>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// The media sections, in order.
    pub media: Vec<MediaDescription>,
}

/// Sets an optional single field, refusing a second one.
fn once<T>(slot: &mut Option<T>, v: T, ty: LineType) -> Result<(), SdpError> {
    if slot.is_some() {
        return Err(SdpError::Misplaced(ty));
    }
    *slot = Some(v);
    Ok(())
}

impl SessionDescription {
    /// Parses an SDP body.
    pub fn parse(data: &[u8], limits: &Limits) -> Result<SessionDescription, SdpError> {
        if data.len() > limits.max_body_size {
            return Err(SdpError::TooLarge);
        }
        let text = std::str::from_utf8(data).map_err(|_| SdpError::NotUtf8)?;
        //= https://www.rfc-editor.org/rfc/rfc4566#section-5
        //# The sequence CRLF (0x0d0a) is used to end a record, although parsers
        //# SHOULD be tolerant and also accept records terminated with a single
        //# newline character.
        let mut lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        while lines.last() == Some(&"") {
            lines.pop();
        }
        if lines.len() > limits.max_sdp_lines {
            return Err(SdpError::TooManyLines);
        }
        let mut parsed = Vec::with_capacity(lines.len());
        for line in lines {
            if line.len() > limits.max_sdp_line_len {
                return Err(SdpError::LineTooLong);
            }
            if line.chars().any(|c| c.is_control() && c != '\t') {
                return Err(SdpError::ControlCharacter);
            }
            //= https://www.rfc-editor.org/rfc/rfc4566#section-5
            //# An SDP session description consists of a number of lines of text of
            //# the form:
            //#
            //#    <type>=<value>
            //#
            //# where <type> MUST be exactly one case-significant character and
            //# <value> is structured text whose format depends on <type>.
            let b = line.as_bytes();
            if b.len() < 2 || b[1] != b'=' || !b[0].is_ascii_lowercase() {
                return Err(SdpError::MalformedLine);
            }
            //= https://www.rfc-editor.org/rfc/rfc4566#section-5
            //# An SDP parser MUST completely ignore any session description
            //# that contains a type letter that it does not understand.
            let ty = LineType::from_letter(b[0]).ok_or(SdpError::UnknownType)?;
            parsed.push((ty, &line[2..]));
        }
        Self::from_lines(&parsed, limits)
    }

    fn from_lines(
        lines: &[(LineType, &str)],
        limits: &Limits,
    ) -> Result<SessionDescription, SdpError> {
        use LineType as L;
        let mut it = lines.iter().copied();
        //= https://www.rfc-editor.org/rfc/rfc4566#section-5
        //# Some lines in each description are REQUIRED and some are OPTIONAL,
        //# but all MUST appear in exactly the order given here
        match it.next() {
            Some((L::V, "0")) => {}
            Some((L::V, _)) => return Err(SdpError::BadVersion),
            _ => return Err(SdpError::Missing(L::V)),
        }
        let origin = match it.next() {
            Some((L::O, v)) => parse_origin(v).ok_or(SdpError::BadValue(L::O))?,
            _ => return Err(SdpError::Missing(L::O)),
        };
        let session_name = match it.next() {
            Some((L::S, v)) => Text::new(v).map_err(|_| SdpError::BadValue(L::S))?,
            _ => return Err(SdpError::Missing(L::S)),
        };
        let mut sd = SessionDescription {
            origin,
            session_name,
            information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            timings: Vec::new(),
            time_zones: None,
            encryption_key: None,
            attributes: Vec::new(),
            media: Vec::new(),
        };
        let text = |ty, v: &str| Text::new(v).map_err(|_| SdpError::BadValue(ty));
        for (ty, v) in it {
            if ty == L::M {
                if sd.timings.is_empty() {
                    return Err(SdpError::Missing(L::T));
                }
                if sd.media.len() >= limits.max_media_sections {
                    return Err(SdpError::TooManyMedia);
                }
                sd.media
                    .push(MediaDescription::parse(v).ok_or(SdpError::BadValue(L::M))?);
                continue;
            }
            if let Some(m) = sd.media.last_mut() {
                //= https://www.rfc-editor.org/rfc/rfc4566#section-5
                //# Media description, if present
                //#    m=  (media name and transport address)
                //#    i=* (media title)
                //#    c=* (connection information -- optional if included at
                //#         session level)
                //#    b=* (zero or more bandwidth information lines)
                //#    k=* (encryption key)
                //#    a=* (zero or more media attribute lines)
                match ty {
                    L::I => once(&mut m.information, text(ty, v)?, ty)?,
                    // More than one c= in a section is for layered multicast, which a
                    // unicast relay has no use for.
                    L::C => once(
                        &mut m.connection,
                        Connection::parse(v).ok_or(SdpError::BadValue(ty))?,
                        ty,
                    )?,
                    L::B => m
                        .bandwidths
                        .push(Bandwidth::parse(v).ok_or(SdpError::BadValue(ty))?),
                    L::K => once(&mut m.encryption_key, text(ty, v)?, ty)?,
                    L::A => m.attributes.push(Attribute::parse(v)?),
                    _ => return Err(SdpError::Misplaced(ty)),
                }
                continue;
            }
            match ty {
                L::I => once(&mut sd.information, text(ty, v)?, ty)?,
                L::U => once(&mut sd.uri, text(ty, v)?, ty)?,
                L::E => sd.emails.push(text(ty, v)?),
                L::P => sd.phones.push(text(ty, v)?),
                L::C => once(
                    &mut sd.connection,
                    Connection::parse(v).ok_or(SdpError::BadValue(ty))?,
                    ty,
                )?,
                L::B => sd
                    .bandwidths
                    .push(Bandwidth::parse(v).ok_or(SdpError::BadValue(ty))?),
                L::T => sd
                    .timings
                    .push(parse_timing(v).ok_or(SdpError::BadValue(ty))?),
                L::R => sd
                    .timings
                    .last_mut()
                    .ok_or(SdpError::Misplaced(ty))?
                    .repeats
                    .push(text(ty, v)?),
                L::Z => once(&mut sd.time_zones, text(ty, v)?, ty)?,
                L::K => once(&mut sd.encryption_key, text(ty, v)?, ty)?,
                L::A => sd.attributes.push(Attribute::parse(v)?),
                _ => return Err(SdpError::Misplaced(ty)),
            }
        }
        if sd.timings.is_empty() {
            return Err(SdpError::Missing(L::T));
        }
        //= https://www.rfc-editor.org/rfc/rfc4566#section-5.7
        //# A session description MUST contain either at least one "c=" field in
        //# each media description or a single "c=" field at the session level.
        if sd.connection.is_none() && sd.media.iter().any(|m| m.connection.is_none()) {
            return Err(SdpError::MissingConnection);
        }
        Ok(sd)
    }

    /// The direction in force for media section `i`: its own attribute, else the
    /// session's, else sendrecv (RFC 3264 section 5.1).
    pub fn media_direction(&self, i: usize) -> Option<Direction> {
        let m = self.media.get(i)?;
        Some(
            m.direction()
                .or_else(|| {
                    self.attributes.iter().find_map(|a| match a {
                        Attribute::Direction(d) => Some(*d),
                        _ => None,
                    })
                })
                .unwrap_or(Direction::SendRecv),
        )
    }

    /// The connection in force for media section `i`: its own, else the session's.
    pub fn media_connection(&self, i: usize) -> Option<&Connection> {
        let m = self.media.get(i)?;
        m.connection.as_ref().or(self.connection.as_ref())
    }

    /// Writes the description with CRLF line endings, in the order of RFC 4566 section 5.
    /// (There is no `Display`: the wire form holds SDES keys, and a `{}` in a log line
    /// should not print them. `Debug` redacts them.)
    pub fn to_bytes(&self) -> Vec<u8> {
        Wire(self).to_string().into_bytes()
    }
}

fn parse_origin(v: &str) -> Option<Origin> {
    let f: Vec<&str> = v.split(' ').collect();
    let [user, id, version, net, ty, addr] = f[..] else {
        return None;
    };
    Some(Origin {
        username: Word::new(user).ok()?,
        session_id: number(id)?,
        session_version: number(version)?,
        address: net_address(net, ty, addr)?,
    })
}

fn parse_timing(v: &str) -> Option<Timing> {
    let (start, stop) = v.split_once(' ')?;
    Some(Timing {
        start: number(start)?,
        stop: number(stop)?,
        repeats: Vec::new(),
    })
}

/// The wire form of a description.
struct Wire<'a>(&'a SessionDescription);

impl fmt::Display for Wire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sd = self.0;
        let o = &sd.origin;
        write!(
            f,
            "v=0\r\no={} {} {} {}\r\ns={}\r\n",
            o.username, o.session_id, o.session_version, o.address, sd.session_name
        )?;
        if let Some(i) = &sd.information {
            write!(f, "i={i}\r\n")?;
        }
        if let Some(u) = &sd.uri {
            write!(f, "u={u}\r\n")?;
        }
        for e in &sd.emails {
            write!(f, "e={e}\r\n")?;
        }
        for p in &sd.phones {
            write!(f, "p={p}\r\n")?;
        }
        if let Some(c) = &sd.connection {
            write!(f, "c={c}\r\n")?;
        }
        for b in &sd.bandwidths {
            write!(f, "b={b}\r\n")?;
        }
        for t in &sd.timings {
            write!(f, "t={} {}\r\n", t.start, t.stop)?;
            for r in &t.repeats {
                write!(f, "r={r}\r\n")?;
            }
        }
        if let Some(z) = &sd.time_zones {
            write!(f, "z={z}\r\n")?;
        }
        if let Some(k) = &sd.encryption_key {
            write!(f, "k={k}\r\n")?;
        }
        for a in &sd.attributes {
            write!(f, "a={a}\r\n")?;
        }
        for m in &sd.media {
            write!(f, "m={} {}", m.media, m.port)?;
            if let Some(n) = m.port_count {
                write!(f, "/{n}")?;
            }
            write!(f, " {}", m.proto)?;
            for fmt in &m.formats {
                write!(f, " {fmt}")?;
            }
            f.write_str("\r\n")?;
            if let Some(i) = &m.information {
                write!(f, "i={i}\r\n")?;
            }
            if let Some(c) = &m.connection {
                write!(f, "c={c}\r\n")?;
            }
            for b in &m.bandwidths {
                write!(f, "b={b}\r\n")?;
            }
            if let Some(k) = &m.encryption_key {
                write!(f, "k={k}\r\n")?;
            }
            for a in &m.attributes {
                write!(f, "a={a}\r\n")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
