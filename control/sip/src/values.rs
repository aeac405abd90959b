//! Typed header field values: Via, name-addr (From, To, Contact, Refer-To, Route), CSeq,
//! Content-Type, Session-Expires, Reason, Retry-After, option tags, Call-ID and
//! Max-Forwards.
//!
//! Every type parses from the (unfolded, trimmed) value of one header field or one
//! comma-separated element of it, and prints back to a value that parses to an equal
//! value. Fields are public where every value of their type prints as valid syntax; free
//! text is checked again when it becomes a [`crate::Header`].

use std::fmt;

use crate::error::SyntaxError;
use crate::scan::{
    is_token, is_token_str, is_word, parse_digits, quote, split_commas, unquote, Params, Scanner,
};
use crate::uri::{parse_port, Host, Uri};

/// A `token` (RFC 3261 section 25.1): a non-empty run of letters, digits and
/// `-.!%*_+`'~`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(String);

impl Token {
    /// `s`, if it is a token.
    pub fn new(s: &str) -> Result<Token, SyntaxError> {
        if is_token_str(s) {
            Ok(Token(s.to_owned()))
        } else {
            Err(SyntaxError)
        }
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! methods {
    ($($variant:ident => $name:literal,)*) => {
        /// A request method. Methods are case-sensitive (RFC 3261 section 7.1): `invite`
        /// is an extension method, not INVITE.
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum Method {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
            /// Any other token.
            Extension(Token),
        }

        impl Method {
            /// Parses a method token.
            pub fn parse(s: &str) -> Result<Method, SyntaxError> {
                Ok(match s {
                    $($name => Method::$variant,)*
                    _ => Method::Extension(Token::new(s)?),
                })
            }

            /// The method as written on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Method::$variant => $name,)*
                    Method::Extension(t) => t.as_str(),
                }
            }
        }
    };
}

methods! {
    Invite => "INVITE",
    Ack => "ACK",
    Bye => "BYE",
    Cancel => "CANCEL",
    Options => "OPTIONS",
    Register => "REGISTER",
    Prack => "PRACK",
    Subscribe => "SUBSCRIBE",
    Notify => "NOTIFY",
    Publish => "PUBLISH",
    Info => "INFO",
    Refer => "REFER",
    Message => "MESSAGE",
    Update => "UPDATE",
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transport in a Via's `sent-protocol`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// SCTP.
    Sctp,
    /// TLS over SCTP.
    TlsSctp,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket (RFC 7118).
    Wss,
    /// Any other token (RFC 4475 section 3.1.1.10 sends `UNKNOWN`).
    Other(Token),
}

impl Transport {
    /// Parses a transport token; the known ones in any case.
    pub fn parse(s: &str) -> Result<Transport, SyntaxError> {
        const KNOWN: [(&str, Transport); 7] = [
            ("UDP", Transport::Udp),
            ("TCP", Transport::Tcp),
            ("TLS", Transport::Tls),
            ("SCTP", Transport::Sctp),
            ("TLS-SCTP", Transport::TlsSctp),
            ("WS", Transport::Ws),
            ("WSS", Transport::Wss),
        ];
        for (name, t) in KNOWN {
            if s.eq_ignore_ascii_case(name) {
                return Ok(t);
            }
        }
        Token::new(s).map(Transport::Other)
    }

    /// The transport as written in a Via.
    pub fn as_str(&self) -> &str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::TlsSctp => "TLS-SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other(t) => t.as_str(),
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads `host [ COLON port ]` at the cursor, as in a Via `sent-by`.
fn sent_by(sc: &mut Scanner<'_>) -> Result<(Host, Option<u16>), SyntaxError> {
    let host = if sc.peek() == Some(b'[') {
        let t = sc.take_while(|b| b != b']');
        if !sc.eat(b']') {
            return Err(SyntaxError);
        }
        format!("{t}]")
    } else {
        sc.take_while(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            .to_owned()
    };
    let host = Host::parse(&host)?;
    let port = if sc.eat_sep(b':') {
        Some(parse_port(sc.take_while(|b| b.is_ascii_digit())).ok_or(SyntaxError)?)
    } else {
        None
    };
    Ok((host, port))
}

/// One Via value.
///
//= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
//# via-parm          =  sent-protocol LWS sent-by *( SEMI via-params )
//# via-params        =  via-ttl / via-maddr
//#                      / via-received / via-branch
//#                      / via-extension
//# sent-protocol     =  protocol-name SLASH protocol-version
//#                      SLASH transport
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Via {
    /// The transport (the protocol is always SIP/2.0).
    pub transport: Transport,
    /// The `sent-by` host.
    pub host: Host,
    /// The `sent-by` port.
    pub port: Option<u16>,
    /// The parameters (branch, received, rport, ...), in order.
    pub params: Params,
}

impl Via {
    /// Parses one Via value (one element of a comma-separated Via header field).
    pub fn parse(s: &str) -> Result<Via, SyntaxError> {
        let mut sc = Scanner::new(s);
        let name = sc.token().ok_or(SyntaxError)?;
        if !sc.eat_sep(b'/') {
            return Err(SyntaxError);
        }
        let version = sc.token().ok_or(SyntaxError)?;
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" || !sc.eat_sep(b'/') {
            return Err(SyntaxError);
        }
        let transport = Transport::parse(sc.token().ok_or(SyntaxError)?)?;
        if !sc.skip_ws() {
            return Err(SyntaxError);
        }
        let (host, port) = sent_by(&mut sc)?;
        let params = Params::parse(&mut sc).ok_or(SyntaxError)?;
        sc.skip_ws();
        if !sc.is_empty() {
            return Err(SyntaxError);
        }
        let via = Via {
            transport,
            host,
            port,
            params,
        };
        via.check_params()?;
        Ok(via)
    }

    /// Parses every Via value in one header field value.
    pub fn parse_list(s: &str) -> Result<Vec<Via>, SyntaxError> {
        split_commas(s).into_iter().map(Via::parse).collect()
    }

    fn check_params(&self) -> Result<(), SyntaxError> {
        for p in self.params.iter() {
            let name = p.name().to_ascii_lowercase();
            let ok = match (name.as_str(), p.value()) {
                //= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
                //# via-branch        =  "branch" EQUAL token
                ("branch", Some(v)) => is_token_str(v),
                ("branch", None) => false,
                //= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
                //# via-received      =  "received" EQUAL (IPv4address / IPv6address)
                // RFC 5118 section 4.5: some write the IPv6 address in brackets; take both.
                ("received", Some(v)) => v
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok(),
                ("received", None) => false,
                //= https://www.rfc-editor.org/rfc/rfc3581#section-3
                //# response-port = "rport" [EQUAL 1*DIGIT]
                ("rport", Some(v)) => parse_port(v).is_some(),
                //= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
                //# ttl               =  1*3DIGIT ; 0 to 255
                ("ttl", v) => v.and_then(parse_digits).is_some_and(|n| n <= 255),
                ("maddr", v) => v.is_some_and(|v| Host::parse(v).is_ok()),
                _ => true,
            };
            if !ok {
                return Err(SyntaxError);
            }
        }
        Ok(())
    }

    /// The branch parameter (the transaction identifier, RFC 3261 section 8.1.1.7).
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }

    /// The received parameter (RFC 3261 section 18.2.1).
    pub fn received(&self) -> Option<std::net::IpAddr> {
        self.params
            .get("received")
            .flatten()
            .and_then(|v| v.trim_start_matches('[').trim_end_matches(']').parse().ok())
    }

    /// The rport parameter (RFC 3581): `Some(None)` when asked for, `Some(Some(port))`
    /// when filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params.get("rport").map(|v| v.and_then(parse_port))
    }

    /// The ttl parameter.
    pub fn ttl(&self) -> Option<u8> {
        self.params
            .get("ttl")
            .flatten()
            .and_then(parse_digits)
            .and_then(|n| u8::try_from(n).ok())
    }

    /// The maddr parameter.
    pub fn maddr(&self) -> Option<Host> {
        self.params
            .get("maddr")
            .flatten()
            .and_then(|v| Host::parse(v).ok())
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// A `name-addr` or `addr-spec` with its header parameters, as in From, To, Contact,
/// Route, Record-Route and Refer-To.
///
//= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
//# name-addr      =  [ display-name ] LAQUOT addr-spec RAQUOT
//# addr-spec      =  SIP-URI / SIPS-URI / absoluteURI
//# display-name   =  *(token LWS)/ quoted-string
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NameAddr {
    /// The display name, unquoted.
    pub display_name: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// The header parameters (tag, expires, q, ...).
    pub params: Params,
}

impl NameAddr {
    /// A bare URI with no display name or parameters.
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display_name: None,
            uri,
            params: Params::new(),
        }
    }

    /// Parses one value.
    pub fn parse(s: &str) -> Result<NameAddr, SyntaxError> {
        let mut sc = Scanner::new(s);
        // A display name is tokens or a quoted string; a scheme is followed by ":",
        // which no token holds, so one look past the first token tells the forms apart.
        let mut probe = sc.clone();
        let first = probe.take_while(is_token);
        let is_addr_spec = !first.is_empty() && probe.peek() == Some(b':');
        let (display_name, uri) = if is_addr_spec {
            //= https://www.rfc-editor.org/rfc/rfc3261#section-20.10
            //# If the URI is not enclosed in angle brackets, any semicolon-delimited
            //# parameters are header-parameters, not URI parameters.
            let text = sc.take_while(|b| b != b';' && b != b' ' && b != b'\t');
            // Section 20.10: a URI with a comma, question mark or semicolon MUST be in
            // angle brackets (RFC 4475 section 3.1.2.13).
            if text.contains(['?', ',']) {
                return Err(SyntaxError);
            }
            (None, Uri::parse(text)?)
        } else {
            let display = if sc.peek() == Some(b'"') {
                Some(unquote(sc.quoted_string().ok_or(SyntaxError)?))
            } else {
                let mut words = Vec::new();
                loop {
                    sc.skip_ws();
                    if sc.peek() == Some(b'<') {
                        break;
                    }
                    // RFC 4475 section 3.1.1.6: a token straight before "<" is accepted.
                    words.push(sc.token().ok_or(SyntaxError)?);
                }
                (!words.is_empty()).then(|| words.join(" "))
            };
            sc.skip_ws();
            if !sc.eat(b'<') {
                return Err(SyntaxError);
            }
            let text = sc.take_while(|b| b != b'>');
            if !sc.eat(b'>') {
                return Err(SyntaxError);
            }
            (display, Uri::parse(text)?)
        };
        let params = Params::parse(&mut sc).ok_or(SyntaxError)?;
        sc.skip_ws();
        if !sc.is_empty() {
            return Err(SyntaxError);
        }
        Ok(NameAddr {
            display_name,
            uri,
            params,
        })
    }

    /// Parses a comma-separated list (Contact, Route, Record-Route).
    pub fn parse_list(s: &str) -> Result<Vec<NameAddr>, SyntaxError> {
        split_commas(s).into_iter().map(NameAddr::parse).collect()
    }

    /// The tag parameter (RFC 3261 section 19.3).
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display_name {
            write!(f, "{} ", quote(d))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// A Contact header field value: `*` or a list of addresses.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Contact {
    /// `Contact: *` (REGISTER only, RFC 3261 section 10.2.2).
    Wildcard,
    /// One or more addresses.
    Addresses(Vec<NameAddr>),
}

impl Contact {
    /// Parses one Contact header field value.
    pub fn parse(s: &str) -> Result<Contact, SyntaxError> {
        if s == "*" {
            Ok(Contact::Wildcard)
        } else {
            NameAddr::parse_list(s).map(Contact::Addresses)
        }
    }
}

/// A CSeq value.
///
//= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
//# CSeq  =  "CSeq" HCOLON 1*DIGIT LWS Method
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CSeq {
    /// The sequence number, below 2**31.
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl CSeq {
    /// Parses a CSeq value.
    pub fn parse(s: &str) -> Result<CSeq, SyntaxError> {
        let mut sc = Scanner::new(s);
        let digits = sc.take_while(|b| b.is_ascii_digit());
        //= https://www.rfc-editor.org/rfc/rfc3261#section-8.1.1.5
        //# The sequence number value MUST be expressible as a 32-bit unsigned integer
        //# and MUST be less than 2**31.
        let seq = parse_digits(digits)
            .filter(|&n| n < 1 << 31)
            .ok_or(SyntaxError)? as u32;
        if !sc.skip_ws() {
            return Err(SyntaxError);
        }
        let method = Method::parse(sc.rest())?;
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// A Content-Type value.
///
//= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
//# media-type     =  m-type SLASH m-subtype *(SEMI m-parameter)
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MediaType {
    /// The type, e.g. `application`.
    pub ty: Token,
    /// The subtype, e.g. `sdp`.
    pub subtype: Token,
    /// The parameters.
    pub params: Params,
}

impl MediaType {
    /// Parses a media type.
    pub fn parse(s: &str) -> Result<MediaType, SyntaxError> {
        let mut sc = Scanner::new(s);
        let ty = Token::new(sc.token().ok_or(SyntaxError)?)?;
        if !sc.eat_sep(b'/') {
            return Err(SyntaxError);
        }
        let subtype = Token::new(sc.token().ok_or(SyntaxError)?)?;
        let params = Params::parse(&mut sc).ok_or(SyntaxError)?;
        sc.skip_ws();
        //# m-parameter    =  m-attribute EQUAL m-value
        if !sc.is_empty() || params.iter().any(|p| p.value().is_none()) {
            return Err(SyntaxError);
        }
        Ok(MediaType {
            ty,
            subtype,
            params,
        })
    }

    /// Whether this is `application/sdp`.
    pub fn is_sdp(&self) -> bool {
        self.ty.as_str().eq_ignore_ascii_case("application")
            && self.subtype.as_str().eq_ignore_ascii_case("sdp")
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.ty, self.subtype, self.params)
    }
}

/// Parses a comma-separated list of option tags (Require, Supported, Unsupported,
/// Proxy-Require). An empty value is an empty list, as Supported allows.
pub fn parse_option_tags(s: &str) -> Result<Vec<Token>, SyntaxError> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    split_commas(s).into_iter().map(Token::new).collect()
}

/// Parses `delta-seconds` into a `u32`.
fn delta_seconds(s: &str) -> Result<u32, SyntaxError> {
    parse_digits(s)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(SyntaxError)
}

/// Who refreshes a session timer (RFC 4028).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refresher {
    /// The UAC refreshes.
    Uac,
    /// The UAS refreshes.
    Uas,
}

/// A Session-Expires value (RFC 4028 section 4).
///
//= https://www.rfc-editor.org/rfc/rfc4028#section-4
//# Session-Expires  =  ("Session-Expires" / "x") HCOLON delta-seconds
//#                     *(SEMI se-params)
//# se-params        =  refresher-param / generic-param
//# refresher-param  =  "refresher" EQUAL  ("uas" / "uac")
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionExpires {
    /// The session interval in seconds.
    pub delta: u32,
    /// The parameters, refresher among them.
    pub params: Params,
}

impl SessionExpires {
    /// Parses a Session-Expires value.
    pub fn parse(s: &str) -> Result<SessionExpires, SyntaxError> {
        let mut sc = Scanner::new(s);
        let delta = delta_seconds(sc.take_while(|b| b.is_ascii_digit()))?;
        let params = Params::parse(&mut sc).ok_or(SyntaxError)?;
        sc.skip_ws();
        if !sc.is_empty() {
            return Err(SyntaxError);
        }
        let se = SessionExpires { delta, params };
        if se.params.contains("refresher") && se.refresher().is_none() {
            return Err(SyntaxError);
        }
        Ok(se)
    }

    /// The refresher parameter.
    pub fn refresher(&self) -> Option<Refresher> {
        match self.params.get("refresher").flatten() {
            Some(v) if v.eq_ignore_ascii_case("uac") => Some(Refresher::Uac),
            Some(v) if v.eq_ignore_ascii_case("uas") => Some(Refresher::Uas),
            _ => None,
        }
    }
}

impl fmt::Display for SessionExpires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.delta, self.params)
    }
}

/// One Reason value (RFC 3326).
///
//= https://www.rfc-editor.org/rfc/rfc3326#section-2
//# Reason            =  "Reason" HCOLON reason-value *(COMMA reason-value)
//# reason-value      =  protocol *(SEMI reason-params)
//# protocol          =  "SIP" / "Q.850" / token
//# reason-params     =  protocol-cause / reason-text
//#                      / reason-extension
//# protocol-cause    =  "cause" EQUAL cause
//# cause             =  1*DIGIT
//# reason-text       =  "text" EQUAL quoted-string
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reason {
    /// `SIP`, `Q.850` or another token.
    pub protocol: Token,
    /// The parameters, cause and text among them.
    pub params: Params,
}

impl Reason {
    /// Parses one Reason value.
    pub fn parse(s: &str) -> Result<Reason, SyntaxError> {
        let mut sc = Scanner::new(s);
        let protocol = Token::new(sc.token().ok_or(SyntaxError)?)?;
        let params = Params::parse(&mut sc).ok_or(SyntaxError)?;
        sc.skip_ws();
        if !sc.is_empty() {
            return Err(SyntaxError);
        }
        let r = Reason { protocol, params };
        if (r.params.contains("cause") && r.cause().is_none())
            || r.params
                .get("text")
                .is_some_and(|v| !v.is_some_and(|v| v.starts_with('"')))
        {
            return Err(SyntaxError);
        }
        Ok(r)
    }

    /// Parses every Reason value in one header field value.
    pub fn parse_list(s: &str) -> Result<Vec<Reason>, SyntaxError> {
        split_commas(s).into_iter().map(Reason::parse).collect()
    }

    /// The cause parameter (a SIP status code or a Q.850 cause value).
    pub fn cause(&self) -> Option<u16> {
        self.params
            .get("cause")
            .flatten()
            .and_then(parse_digits)
            .and_then(|n| u16::try_from(n).ok())
    }

    /// The text parameter, unquoted.
    pub fn text(&self) -> Option<String> {
        self.params.get("text").flatten().map(unquote)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.protocol, self.params)
    }
}

/// A Retry-After value.
///
//= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
//# Retry-After  =  "Retry-After" HCOLON delta-seconds
//#                 [ comment ] *( SEMI retry-param )
//# retry-param  =  ("duration" EQUAL delta-seconds)
//#                 / generic-param
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RetryAfter {
    /// Seconds to wait.
    pub delta: u32,
    /// The comment, with its parentheses, as written.
    pub comment: Option<Comment>,
    /// The parameters, duration among them.
    pub params: Params,
}

/// A `comment` (RFC 3261 section 25.1): parenthesised text, nesting allowed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Comment(String);

impl Comment {
    /// Deepest nesting accepted.
    const MAX_DEPTH: usize = 8;

    /// Reads a comment at the cursor.
    //# comment  =  LPAREN *(ctext / quoted-pair / comment) RPAREN
    fn scan(sc: &mut Scanner<'_>) -> Option<Comment> {
        let rest = sc.rest();
        let b = rest.as_bytes();
        if b.first() != Some(&b'(') {
            return None;
        }
        let (mut depth, mut i) = (0usize, 0usize);
        while i < b.len() {
            match b[i] {
                b'(' => {
                    depth += 1;
                    if depth > Self::MAX_DEPTH {
                        return None;
                    }
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        sc.advance(i + 1);
                        return Some(Comment(rest[..=i].to_owned()));
                    }
                }
                b'\\' => i += 1,
                _ => {}
            }
            i += 1;
        }
        None
    }

    /// The comment, parentheses included.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl RetryAfter {
    /// Parses a Retry-After value.
    pub fn parse(s: &str) -> Result<RetryAfter, SyntaxError> {
        let mut sc = Scanner::new(s);
        let delta = delta_seconds(sc.take_while(|b| b.is_ascii_digit()))?;
        sc.skip_ws();
        let comment = if sc.peek() == Some(b'(') {
            Some(Comment::scan(&mut sc).ok_or(SyntaxError)?)
        } else {
            None
        };
        let params = Params::parse(&mut sc).ok_or(SyntaxError)?;
        sc.skip_ws();
        if !sc.is_empty() {
            return Err(SyntaxError);
        }
        let r = RetryAfter {
            delta,
            comment,
            params,
        };
        if r.params.contains("duration") && r.duration().is_none() {
            return Err(SyntaxError);
        }
        Ok(r)
    }

    /// The duration parameter.
    pub fn duration(&self) -> Option<u32> {
        self.params
            .get("duration")
            .flatten()
            .and_then(|v| delta_seconds(v).ok())
    }
}

impl fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.delta)?;
        if let Some(c) = &self.comment {
            write!(f, " {}", c.0)?;
        }
        write!(f, "{}", self.params)
    }
}

/// Checks a Call-ID value.
///
//= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
//# callid   =  word [ "@" word ]
pub fn check_call_id(s: &str) -> Result<(), SyntaxError> {
    let (a, b) = match s.split_once('@') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let word = |w: &str| !w.is_empty() && w.bytes().all(is_word);
    if word(a) && b.is_none_or(word) {
        Ok(())
    } else {
        Err(SyntaxError)
    }
}

/// Parses a Max-Forwards value (`1*DIGIT`, at most 255).
pub fn parse_max_forwards(s: &str) -> Result<u8, SyntaxError> {
    parse_digits(s)
        .and_then(|n| u8::try_from(n).ok())
        .ok_or(SyntaxError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_lws_everywhere() {
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.1.1
        //= type=test
        //# o  LWS between colons, semicolons, header field values, and other
        //#    fields.
        let v = Via::parse("SIP  /   2.0  /UDP     192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, Transport::Udp);
        assert_eq!(v.branch(), Some("390skdjuw"));
        let v =
            Via::parse("SIP  /    2.0   / UDP  192.168.255.111   ; branch= z9hG4bK30239").unwrap();
        assert_eq!(v.branch(), Some("z9hG4bK30239"));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP 192.168.255.111;branch=z9hG4bK30239"
        );
    }

    #[test]
    fn via_params() {
        let v = Via::parse(
            "SIP/2.0/TLS [2001:db8::1]:5061;rport=5062;received=192.0.2.9;branch=z9hG4bKx;ttl=16;maddr=224.2.0.1",
        )
        .unwrap();
        assert_eq!(v.port, Some(5061));
        assert_eq!(v.rport(), Some(Some(5062)));
        assert_eq!(v.received(), Some("192.0.2.9".parse().unwrap()));
        assert_eq!(v.ttl(), Some(16));
        assert!(v.maddr().is_some());
        assert_eq!(
            Via::parse("SIP/2.0/UDP h;rport").unwrap().rport(),
            Some(None)
        );
        for bad in [
            "SIP/2.0/UDP",
            "SIP/2.0/UDP 192.0.2.15;;,;,,",
            "SIP/2.0/UDP h;branch",
            "SIP/2.0/UDP h;received=example.com",
            "SIP/2.0/UDP h;rport=99999",
            "SIP/2.0/UDP h;ttl=256",
            "SIP/3.0/UDP h",
            "SIP/2.0/UDP h:port",
            "SIP/2.0/UDP h extra",
            "SIP/2.0 UDP h",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Via::parse_list("SIP/2.0/UDP a, SIP/2.0/TCP b")
                .unwrap()
                .len(),
            2
        );
        assert!(Via::parse_list("SIP/2.0/UDP a,").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com>  ;  tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(n.display_name.as_deref(), Some(r#"J Rosenberg \""#));
        assert_eq!(n.tag(), Some("98asjd8"));
        let n =
            NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(n.tag(), Some("1918181833n"));
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display_name.as_deref(), Some("caller"));
        let n =
            NameAddr::parse("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>").unwrap();
        assert_eq!(
            n.display_name.as_deref(),
            Some("token1~` token2'+_ token3*%!.-")
        );
        // Bare addr-spec: the parameter belongs to the header, not the URI.
        let n = NameAddr::parse("sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert!(n.params.contains("unknownparam"));
        assert_eq!(n.uri.as_sip().unwrap().params().count(), 0);
        let n = NameAddr::parse("<sip:+19725552222@gw1.example.net;unknownparam>").unwrap();
        assert!(n.params.is_empty());
        assert!(NameAddr::parse("isbn:2983792873").is_ok());
        for bad in [
            r#""Mr. J. User <sip:j.user@example.com>"#,
            r#""Watson, Thomas" < sip:t.watson@example.org >"#,
            "Watson, Thomas <sip:t.watson@example.org>",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            r#""Joe" <sip:joe@example.org>;;;;"#,
            "<sip:a@example.com",
            "<sip:a@example.com> junk",
            "",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scalars() {
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.4
        //= type=test
        //# o  The CSeq sequence number is >2**32-1.
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_err());
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert_eq!(CSeq::parse("0009 INVITE").unwrap().seq, 9);
        assert!(CSeq::parse("1INVITE").is_err());
        assert!(CSeq::parse("1 INVITE x").is_err());
        assert!(parse_max_forwards("300").is_err());
        assert_eq!(parse_max_forwards("0068"), Ok(68));
        assert!(check_call_id("intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{").is_ok());
        assert!(check_call_id("a@b@c").is_err());
        assert!(check_call_id("a b").is_err());
    }

    #[test]
    fn other_values() {
        let se = SessionExpires::parse("1800;refresher=uac").unwrap();
        assert_eq!((se.delta, se.refresher()), (1800, Some(Refresher::Uac)));
        assert!(SessionExpires::parse("1800;refresher=me").is_err());
        let r = Reason::parse_list(r#"Q.850;cause=16;text="Terminated", SIP;cause=200"#).unwrap();
        assert_eq!(r[0].cause(), Some(16));
        assert_eq!(r[0].text().as_deref(), Some("Terminated"));
        assert!(Reason::parse("SIP;cause=x").is_err());
        let ra = RetryAfter::parse("18000 (in (a) meeting);duration=3600").unwrap();
        assert_eq!(ra.duration(), Some(3600));
        assert_eq!(ra.to_string(), "18000 (in (a) meeting);duration=3600");
        assert!(RetryAfter::parse("949302838503028349304023988").is_err());
        assert!(RetryAfter::parse("5 (unclosed").is_err());
        let deep = format!("5 {}{}", "(".repeat(20), ")".repeat(20));
        assert!(RetryAfter::parse(&deep).is_err());
        assert!(MediaType::parse("application/sdp").unwrap().is_sdp());
        assert!(MediaType::parse("multipart/mixed;boundary=7a9cbec02ceef655").is_ok());
        assert!(MediaType::parse("application/sdp;x").is_err());
        assert_eq!(parse_option_tags("").unwrap().len(), 0);
        assert_eq!(parse_option_tags("100rel, timer").unwrap().len(), 2);
        assert!(parse_option_tags("100rel,").is_err());
        assert_eq!(Contact::parse("*").unwrap(), Contact::Wildcard);
    }
}
