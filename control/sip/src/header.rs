//! Header field names (with the compact forms normalised) and the ordered header list.

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::error::SyntaxError;
use crate::scan::{is_header_text, is_token_str};

macro_rules! std_headers {
    ($($variant:ident => $name:literal $(, $compact:literal)?;)*) => {
        /// A header field this crate knows by name, so that compact forms can be expanded,
        /// names written in their usual spelling, and errors say which field was at fault.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum StdHeader {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl StdHeader {
            /// Every known header field.
            pub const ALL: &'static [StdHeader] = &[$(StdHeader::$variant),*];

            /// The long name in its usual spelling.
            pub fn name(self) -> &'static str {
                match self {
                    $(StdHeader::$variant => $name,)*
                }
            }

            /// The compact form, for those that have one.
            pub fn compact(self) -> Option<char> {
                match self {
                    $($(StdHeader::$variant => Some($compact),)?)*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        }
    };
}

//= https://www.rfc-editor.org/rfc/rfc3261#section-7.3.3
//# Compact form
//# SIP provides a mechanism to represent common header field names in an
//# abbreviated form.
// Compact forms from RFC 3261 section 20 (i m e l c f s k t v), RFC 6665 (o u), RFC 3515
// (r), RFC 4028 (x), RFC 3892 (b), RFC 3841 (a j d) and RFC 8224 (y).
std_headers! {
    Accept => "Accept";
    AcceptContact => "Accept-Contact", 'a';
    AcceptEncoding => "Accept-Encoding";
    AcceptLanguage => "Accept-Language";
    AlertInfo => "Alert-Info";
    Allow => "Allow";
    AllowEvents => "Allow-Events", 'u';
    AuthenticationInfo => "Authentication-Info";
    Authorization => "Authorization";
    CallId => "Call-ID", 'i';
    CallInfo => "Call-Info";
    Contact => "Contact", 'm';
    ContentDisposition => "Content-Disposition";
    ContentEncoding => "Content-Encoding", 'e';
    ContentLanguage => "Content-Language";
    ContentLength => "Content-Length", 'l';
    ContentType => "Content-Type", 'c';
    CSeq => "CSeq";
    Date => "Date";
    ErrorInfo => "Error-Info";
    Event => "Event", 'o';
    Expires => "Expires";
    From => "From", 'f';
    HistoryInfo => "History-Info";
    Identity => "Identity", 'y';
    InReplyTo => "In-Reply-To";
    MaxForwards => "Max-Forwards";
    MimeVersion => "MIME-Version";
    MinExpires => "Min-Expires";
    MinSe => "Min-SE";
    Organization => "Organization";
    PAssertedIdentity => "P-Asserted-Identity";
    PPreferredIdentity => "P-Preferred-Identity";
    Path => "Path";
    Priority => "Priority";
    Privacy => "Privacy";
    ProxyAuthenticate => "Proxy-Authenticate";
    ProxyAuthorization => "Proxy-Authorization";
    ProxyRequire => "Proxy-Require";
    RAck => "RAck";
    Reason => "Reason";
    RecordRoute => "Record-Route";
    ReferTo => "Refer-To", 'r';
    ReferredBy => "Referred-By", 'b';
    RejectContact => "Reject-Contact", 'j';
    Replaces => "Replaces";
    ReplyTo => "Reply-To";
    RequestDisposition => "Request-Disposition", 'd';
    Require => "Require";
    RetryAfter => "Retry-After";
    Route => "Route";
    RSeq => "RSeq";
    Server => "Server";
    SessionExpires => "Session-Expires", 'x';
    Subject => "Subject", 's';
    Supported => "Supported", 'k';
    Timestamp => "Timestamp";
    To => "To", 't';
    Unsupported => "Unsupported";
    UserAgent => "User-Agent";
    Via => "Via", 'v';
    Warning => "Warning";
    WwwAuthenticate => "WWW-Authenticate";
}

impl StdHeader {
    /// The known header called `name` (long or compact form, any case).
    pub fn lookup(name: &str) -> Option<StdHeader> {
        if let [c] = name.as_bytes() {
            let c = char::from(c.to_ascii_lowercase());
            return StdHeader::ALL
                .iter()
                .copied()
                .find(|h| h.compact() == Some(c));
        }
        StdHeader::ALL
            .iter()
            .copied()
            .find(|h| h.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for StdHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A header field name: a [`StdHeader`] (compact forms expanded) or an extension name kept
/// as written. Names compare without regard to case (RFC 3261 section 7.3.1).
#[derive(Clone, Debug)]
pub struct HeaderName(Repr);

#[derive(Clone, Debug)]
enum Repr {
    Std(StdHeader),
    Ext(Box<str>),
}

impl HeaderName {
    /// Parses a field name: a token, with compact forms of known fields expanded.
    pub fn parse(name: &str) -> Option<HeaderName> {
        if !is_token_str(name) {
            return None;
        }
        Some(match StdHeader::lookup(name) {
            Some(h) => HeaderName(Repr::Std(h)),
            None => HeaderName(Repr::Ext(name.into())),
        })
    }

    /// The name as written on the wire: the long form for known fields.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Std(h) => h.name(),
            Repr::Ext(s) => s,
        }
    }

    /// The known field this is, if any.
    pub fn std(&self) -> Option<StdHeader> {
        match self.0 {
            Repr::Std(h) => Some(h),
            Repr::Ext(_) => None,
        }
    }
}

impl From<StdHeader> for HeaderName {
    fn from(h: StdHeader) -> Self {
        HeaderName(Repr::Std(h))
    }
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str().eq_ignore_ascii_case(other.as_str())
    }
}

impl Eq for HeaderName {}

impl Hash for HeaderName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for b in self.as_str().bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header field: a name and its value, unfolded and trimmed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    name: HeaderName,
    value: String,
}

impl Header {
    /// A header field, if `value` has no control characters but HTAB (so no CR or LF that
    /// could end the line) and no surrounding whitespace.
    pub fn new(
        name: impl Into<HeaderName>,
        value: impl Into<String>,
    ) -> Result<Header, SyntaxError> {
        let value = value.into();
        if !is_header_text(&value) || value.trim_matches([' ', '\t']).len() != value.len() {
            return Err(SyntaxError);
        }
        Ok(Header {
            name: name.into(),
            value,
        })
    }

    /// Built by the parser from text already checked.
    pub(crate) fn new_unchecked(name: HeaderName, value: String) -> Header {
        Header { name, value }
    }

    /// The field name.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// The field value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// The header fields of a message, in order. Content-Length is not kept here: it is the
/// body's length, written by the serializer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// No header fields.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// The value of the first field called `name`.
    pub fn get(&self, name: impl Into<HeaderName>) -> Option<&str> {
        let name = name.into();
        self.0.iter().find(|h| h.name == name).map(|h| h.value())
    }

    /// The values of every field called `name`, in order.
    pub fn get_all(&self, name: impl Into<HeaderName>) -> impl Iterator<Item = &str> {
        let name = name.into();
        self.0
            .iter()
            .filter(move |h| h.name == name)
            .map(|h| h.value())
    }

    /// How many fields are called `name`.
    pub fn count(&self, name: impl Into<HeaderName>) -> usize {
        self.get_all(name).count()
    }

    /// Appends a field. A Content-Length field is dropped: the serializer writes it.
    pub fn push(&mut self, header: Header) {
        if header.name.std() != Some(StdHeader::ContentLength) {
            self.0.push(header);
        }
    }

    /// Replaces every field called like `header` with it, at the first one's place (or at
    /// the end).
    pub fn set(&mut self, header: Header) {
        match self.0.iter().position(|h| h.name == header.name) {
            Some(i) => {
                let name = header.name.clone();
                self.0[i] = header;
                let mut first = true;
                self.0.retain(|h| {
                    if h.name == name {
                        std::mem::replace(&mut first, false)
                    } else {
                        true
                    }
                });
            }
            None => self.push(header),
        }
    }

    /// Removes every field called `name`, returning how many there were.
    pub fn remove(&mut self, name: impl Into<HeaderName>) -> usize {
        let name = name.into();
        let before = self.0.len();
        self.0.retain(|h| h.name != name);
        before - self.0.len()
    }

    /// All fields in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_forms_expand() {
        //= https://www.rfc-editor.org/rfc/rfc3261#section-7.3.3
        //= type=test
        //# Compact form
        for (c, long) in [
            ("i", "Call-ID"),
            ("m", "Contact"),
            ("e", "Content-Encoding"),
            ("l", "Content-Length"),
            ("c", "Content-Type"),
            ("f", "From"),
            ("s", "Subject"),
            ("k", "Supported"),
            ("t", "To"),
            ("v", "Via"),
            ("o", "Event"),
            ("u", "Allow-Events"),
            ("r", "Refer-To"),
            ("x", "Session-Expires"),
            ("b", "Referred-By"),
        ] {
            assert_eq!(HeaderName::parse(c).unwrap().as_str(), long);
            assert_eq!(HeaderName::parse(&c.to_uppercase()).unwrap().as_str(), long);
        }
        assert_eq!(HeaderName::parse("cALL-id").unwrap().as_str(), "Call-ID");
        assert_eq!(HeaderName::parse("X-Foo").unwrap().as_str(), "X-Foo");
        assert_eq!(
            HeaderName::parse("X-Foo").unwrap(),
            HeaderName::parse("x-foo").unwrap()
        );
        assert!(HeaderName::parse("C%6Fntact").unwrap().std().is_none());
        assert!(HeaderName::parse("Bad Name").is_none());
        assert!(HeaderName::parse("").is_none());
    }

    #[test]
    fn header_values_cannot_break_lines() {
        assert!(Header::new(StdHeader::Subject, "a\r\nVia: x").is_err());
        assert!(Header::new(StdHeader::Subject, "nul\0").is_err());
        assert!(Header::new(StdHeader::Subject, " padded").is_err());
        assert!(Header::new(StdHeader::Subject, "tab\tok").is_ok());
        assert!(Header::new(StdHeader::Subject, "").is_ok());
    }

    #[test]
    fn set_replaces_in_place() {
        let mut h = Headers::new();
        h.push(Header::new(StdHeader::Via, "a").unwrap());
        h.push(Header::new(StdHeader::To, "b").unwrap());
        h.push(Header::new(StdHeader::Via, "c").unwrap());
        h.set(Header::new(StdHeader::Via, "d").unwrap());
        let v: Vec<_> = h.iter().map(|h| h.value()).collect();
        assert_eq!(v, ["d", "b"]);
        h.push(Header::new(StdHeader::ContentLength, "5").unwrap());
        assert_eq!(h.len(), 2);
    }
}
