//! URIs: SIP and SIPS URIs parsed to their parts (RFC 3261 section 19.1), tel and other
//! schemes kept whole after a character check.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::SyntaxError;
use crate::scan::{is_alphanum, is_escaped_text, is_reserved, is_unreserved};

/// A URI as found in a Request-URI or a name-addr.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Uri {
    /// `sip:` or `sips:`.
    Sip(SipUri),
    /// `tel:` (RFC 3966), kept as written after the scheme.
    Tel(OpaqueUri),
    /// Any other scheme (an `absoluteURI`), kept as written after the scheme.
    Other(OpaqueUri),
}

impl Uri {
    /// Parses a URI, refusing whitespace, control characters and malformed escapes.
    pub fn parse(s: &str) -> Result<Uri, SyntaxError> {
        let (scheme, rest) = s.split_once(':').ok_or(SyntaxError)?;
        //= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
        //# scheme         =  ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
        let sb = scheme.as_bytes();
        if sb.is_empty()
            || !sb[0].is_ascii_alphabetic()
            || !sb
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b))
        {
            return Err(SyntaxError);
        }
        if scheme.eq_ignore_ascii_case("sip") {
            SipUri::parse_after_scheme(false, rest).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("sips") {
            SipUri::parse_after_scheme(true, rest).map(Uri::Sip)
        } else {
            // absoluteURI = scheme ":" ( hier-part / opaque-part ), all of it uric.
            if rest.is_empty() || !is_escaped_text(rest, |b| is_unreserved(b) || is_reserved(b)) {
                return Err(SyntaxError);
            }
            let opaque = OpaqueUri {
                scheme: scheme.to_owned(),
                rest: rest.to_owned(),
            };
            Ok(if scheme.eq_ignore_ascii_case("tel") {
                Uri::Tel(opaque)
            } else {
                Uri::Other(opaque)
            })
        }
    }

    /// The SIP or SIPS URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Tel(o) | Uri::Other(o) => write!(f, "{}:{}", o.scheme, o.rest),
        }
    }
}

/// A URI of a scheme this crate does not take apart.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpaqueUri {
    scheme: String,
    rest: String,
}

impl OpaqueUri {
    /// The scheme as written.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Everything after `scheme:`.
    pub fn rest(&self) -> &str {
        &self.rest
    }
}

/// A host: a domain name or an IP address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Host(HostRepr);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum HostRepr {
    Domain(String),
    Ip(IpAddr),
}

impl Host {
    /// Parses `hostname / IPv4address / IPv6reference` (IPv6 in brackets).
    //= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
    //# host             =  hostname / IPv4address / IPv6reference
    //# hostname         =  *( domainlabel "." ) toplabel [ "." ]
    //# domainlabel      =  alphanum
    //#                     / alphanum *( alphanum / "-" ) alphanum
    //# toplabel         =  ALPHA / ALPHA *( alphanum / "-" ) alphanum
    pub fn parse(s: &str) -> Result<Host, SyntaxError> {
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            return inner
                .parse::<Ipv6Addr>()
                .map(|a| Host(HostRepr::Ip(IpAddr::V6(a))))
                .map_err(|_| SyntaxError);
        }
        if let Ok(a) = s.parse::<Ipv4Addr>() {
            return Ok(Host(HostRepr::Ip(IpAddr::V4(a))));
        }
        if is_hostname(s) {
            Ok(Host(HostRepr::Domain(s.to_owned())))
        } else {
            Err(SyntaxError)
        }
    }

    /// The address, if the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.0 {
            HostRepr::Ip(a) => Some(a),
            HostRepr::Domain(_) => None,
        }
    }

    /// The domain name as written, if the host is one.
    pub fn domain(&self) -> Option<&str> {
        match &self.0 {
            HostRepr::Domain(d) => Some(d),
            HostRepr::Ip(_) => None,
        }
    }
}

impl From<IpAddr> for Host {
    fn from(a: IpAddr) -> Self {
        Host(HostRepr::Ip(a))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            HostRepr::Domain(d) => f.write_str(d),
            HostRepr::Ip(IpAddr::V4(a)) => a.fmt(f),
            HostRepr::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

pub(crate) fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = s.split('.').collect();
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b.iter().all(|&c| is_alphanum(c) || c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    labels.iter().all(|l| label_ok(l))
        && labels
            .last()
            .is_some_and(|t| t.as_bytes()[0].is_ascii_alphabetic())
}

/// `host [ ":" port ]`.
pub(crate) fn parse_hostport(s: &str) -> Result<(Host, Option<u16>), SyntaxError> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']').ok_or(SyntaxError)?;
        match &s[end + 1..] {
            "" => (&s[..=end], None),
            p => (&s[..=end], Some(p.strip_prefix(':').ok_or(SyntaxError)?)),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) => Some(parse_port(p).ok_or(SyntaxError)?),
        None => None,
    };
    Ok((Host::parse(host)?, port))
}

pub(crate) fn parse_port(p: &str) -> Option<u16> {
    crate::scan::parse_digits(p).and_then(|n| u16::try_from(n).ok())
}

//= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
//# user             =  1*( unreserved / escaped / user-unreserved )
//# user-unreserved  =  "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
fn is_user_char(b: u8) -> bool {
    is_unreserved(b) || b"&=+$,;?/".contains(&b)
}

//= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
//# password         =  *( unreserved / escaped /
//#                     "&" / "=" / "+" / "$" / "," )
fn is_password_char(b: u8) -> bool {
    is_unreserved(b) || b"&=+$,".contains(&b)
}

//= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
//# paramchar         =  param-unreserved / unreserved / escaped
//# param-unreserved  =  "[" / "]" / "/" / ":" / "&" / "+" / "$"
fn is_param_char(b: u8) -> bool {
    is_unreserved(b) || b"[]/:&+$".contains(&b)
}

//= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
//# hnv-unreserved  =  "[" / "]" / "/" / "?" / ":" / "+" / "$"
fn is_hnv_char(b: u8) -> bool {
    is_unreserved(b) || b"[]/?:+$".contains(&b)
}

/// A SIP or SIPS URI. Parts are kept escaped as written: RFC 3261 compares them unescaped,
/// which is for the caller to do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SipUri {
    secure: bool,
    user: Option<String>,
    password: Option<String>,
    host: Host,
    port: Option<u16>,
    params: Vec<(String, Option<String>)>,
    headers: Vec<(String, String)>,
}

impl SipUri {
    /// A `sip:` (or `sips:`) URI of just a host and port.
    pub fn new(secure: bool, host: Host, port: Option<u16>) -> SipUri {
        SipUri {
            secure,
            user: None,
            password: None,
            host,
            port,
            params: Vec::new(),
            headers: Vec::new(),
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
    //# SIP-URI          =  "sip:" [ userinfo ] hostport
    //#                     uri-parameters [ headers ]
    //# userinfo         =  ( user / telephone-subscriber ) [ ":" password ] "@"
    fn parse_after_scheme(secure: bool, s: &str) -> Result<SipUri, SyntaxError> {
        // No part of a SIP URI may hold an unescaped "@" but the userinfo delimiter.
        let (userinfo, rest) = match s.split_once('@') {
            Some((u, r)) if !r.contains('@') => (Some(u), r),
            Some(_) => return Err(SyntaxError),
            None => (None, s),
        };
        let (user, password) = match userinfo {
            Some(ui) => {
                let (user, password) = match ui.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (ui, None),
                };
                if user.is_empty() || !is_escaped_text(user, is_user_char) {
                    return Err(SyntaxError);
                }
                if let Some(p) = password {
                    if !is_escaped_text(p, is_password_char) {
                        return Err(SyntaxError);
                    }
                }
                (Some(user.to_owned()), password.map(str::to_owned))
            }
            None => (None, None),
        };
        let (rest, headers_part) = match rest.split_once('?') {
            Some((r, h)) => (r, Some(h)),
            None => (rest, None),
        };
        let mut parts = rest.split(';');
        let (host, port) = parse_hostport(parts.next().unwrap_or(""))?;
        let mut params = Vec::new();
        for p in parts {
            let (name, value) = match p.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (p, None),
            };
            if name.is_empty() || !is_escaped_text(name, is_param_char) {
                return Err(SyntaxError);
            }
            if let Some(v) = value {
                if v.is_empty() || !is_escaped_text(v, is_param_char) {
                    return Err(SyntaxError);
                }
            }
            params.push((name.to_owned(), value.map(str::to_owned)));
        }
        let mut headers = Vec::new();
        if let Some(h) = headers_part {
            //= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
            //# headers         =  "?" header *( "&" header )
            //# header          =  hname "=" hvalue
            for pair in h.split('&') {
                let (name, value) = pair.split_once('=').ok_or(SyntaxError)?;
                if name.is_empty()
                    || !is_escaped_text(name, is_hnv_char)
                    || !is_escaped_text(value, is_hnv_char)
                {
                    return Err(SyntaxError);
                }
                headers.push((name.to_owned(), value.to_owned()));
            }
        }
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    /// Whether this is a `sips:` URI.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The user part, escaped as written.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Sets (or with `None` removes) the user part, given in its escaped form.
    pub fn set_user(&mut self, user: Option<&str>) -> Result<(), SyntaxError> {
        if let Some(u) = user {
            if u.is_empty() || !is_escaped_text(u, is_user_char) {
                return Err(SyntaxError);
            }
        }
        self.user = user.map(str::to_owned);
        if self.user.is_none() {
            self.password = None;
        }
        Ok(())
    }

    /// The password, escaped as written (RFC 3261 advises against its use).
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Replaces the host.
    pub fn set_host(&mut self, host: Host) {
        self.host = host;
    }

    /// The port, if given.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Sets or removes the port.
    pub fn set_port(&mut self, port: Option<u16>) {
        self.port = port;
    }

    /// The first URI parameter called `name` (case-insensitive): `Some(None)` for one
    /// without a value, as `lr`.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The URI parameters in order.
    pub fn params(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.params.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }

    /// Sets the parameter `name` (replacing any of that name) to `value`.
    pub fn set_param(&mut self, name: &str, value: Option<&str>) -> Result<(), SyntaxError> {
        if name.is_empty() || !is_escaped_text(name, is_param_char) {
            return Err(SyntaxError);
        }
        if let Some(v) = value {
            if v.is_empty() || !is_escaped_text(v, is_param_char) {
                return Err(SyntaxError);
            }
        }
        let entry = (name.to_owned(), value.map(str::to_owned));
        match self
            .params
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(i) => {
                self.params[i] = entry;
                let mut seen = 0;
                self.params.retain(|(n, _)| {
                    if n.eq_ignore_ascii_case(name) {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.params.push(entry),
        }
        Ok(())
    }

    /// Removes every parameter called `name`, returning how many there were.
    pub fn remove_param(&mut self, name: &str) -> usize {
        let before = self.params.len();
        self.params.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        before - self.params.len()
    }

    /// The `?name=value` headers, escaped as written.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Whether the URI has `?` headers (not allowed in a Request-URI).
    pub fn has_headers(&self) -> bool {
        !self.headers.is_empty()
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for (n, v) in &self.params {
            write!(f, ";{n}")?;
            if let Some(v) = v {
                write!(f, "={v}")?;
            }
        }
        for (i, (n, v)) in self.headers.iter().enumerate() {
            write!(f, "{}{n}={v}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri {
        match Uri::parse(s).unwrap() {
            Uri::Sip(u) => u,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rfc4475_unusual_userinfo() {
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.1.2
        //= type=test
        //# The Request-URI contains unusual, but legal, characters.
        let u = sip("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com");
        assert_eq!(
            u.user(),
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(
            u.password(),
            Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        );
        assert_eq!(u.host().domain(), Some("example.com"));
    }

    #[test]
    fn escapes_and_params_kept_as_written() {
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.1.3
        //= type=test
        //# Note that the "name" uri-parameter has a value of "value%41",
        //# which is NOT equivalent to "valueA".
        let u = sip("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31");
        assert_eq!(u.user(), Some("cal%6Cer"));
        assert_eq!(u.param("%6C%72"), Some(None));
        assert_eq!(u.param("n%61me"), Some(Some("v%61lue%25%34%31")));
        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user(), Some("user;par=u%40example.net"));
    }

    #[test]
    fn hosts_and_ports() {
        let u = sip("sips:[2001:db8::10]:5061;transport=tls");
        assert_eq!(u.host().ip(), Some("2001:db8::10".parse().unwrap()));
        assert_eq!(u.port(), Some(5061));
        assert!(u.is_secure());
        assert_eq!(u.to_string(), "sips:[2001:db8::10]:5061;transport=tls");
        for bad in [
            "sip:",
            "sip:@example.com",
            "sip:a@b@example.com",
            "sip:example.com:70000",
            "sip:example.com:",
            "sip:exa mple.com",
            "sip:-bad.example.com",
            "sip:10.0.0.256",
            "sip:[::1",
            "sip:[::1]5060",
            "sip:user@example.com;",
            "sip:user@example.com;a=",
            "sip:user@example.com?",
            "sip:user@example.com%",
            "sip:us%2ger@example.com",
            "sip:user@exa<mple.com",
            "<sip:user@example.com>",
            "sip:user@example.com>",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn other_schemes() {
        assert!(matches!(
            Uri::parse("tel:+1-201-555-0123").unwrap(),
            Uri::Tel(_)
        ));
        let u = Uri::parse("soap.beep://192.0.2.103:3002").unwrap();
        assert!(matches!(&u, Uri::Other(o) if o.scheme() == "soap.beep"));
        assert_eq!(u.to_string(), "soap.beep://192.0.2.103:3002");
        assert!(Uri::parse("urn:a b").is_err());
        assert!(Uri::parse("1urn:x").is_err());
        assert!(Uri::parse("noscheme").is_err());
    }

    #[test]
    fn setters_validate() {
        let mut u = sip("sip:alice@example.com");
        assert!(u.set_param("transport", Some("tls")).is_ok());
        assert!(u.set_param("lr", None).is_ok());
        assert!(u.set_param("transport", Some("tcp")).is_ok());
        assert_eq!(u.to_string(), "sip:alice@example.com;transport=tcp;lr");
        assert!(u.set_param("x", Some("a\r\n")).is_err());
        assert!(u.set_user(Some("bad@user")).is_err());
        u.set_host(Host::from(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))));
        u.set_port(Some(5060));
        assert_eq!(u.to_string(), "sip:alice@192.0.2.1:5060;transport=tcp;lr");
        assert_eq!(u.remove_param("LR"), 1);
    }
}
