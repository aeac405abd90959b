//! SIP messages: start line, header fields, body, typed accessors and the response
//! builder of RFC 3261 section 8.2.6.

use crate::error::{BuildError, ParseError};
use crate::header::{Header, HeaderName, Headers, StdHeader};
use crate::limits::Limits;
use crate::scan::{is_escaped_text, is_reserved, is_token_str, is_unreserved};
use crate::uri::Uri;
use crate::values::{
    check_call_id, parse_max_forwards, parse_option_tags, CSeq, Contact, MediaType, Method,
    NameAddr, Reason, RetryAfter, SessionExpires, Token, Via,
};

/// A Request-Line without its version (always SIP/2.0).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestLine {
    /// The method.
    pub method: Method,
    /// The Request-URI.
    pub uri: Uri,
}

/// A Status-Line without its version (always SIP/2.0).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StatusLine {
    code: u16,
    reason: String,
}

impl StatusLine {
    /// A status line, if `code` is in 100..=699 and `reason` a valid Reason-Phrase.
    ///
    //= https://www.rfc-editor.org/rfc/rfc3261#section-25.1
    //# Reason-Phrase   =  *(reserved / unreserved / escaped
    //#                    / UTF8-NONASCII / UTF8-CONT / SP / HTAB)
    pub fn new(code: u16, reason: &str) -> Result<StatusLine, BuildError> {
        if !(100..=699).contains(&code) {
            return Err(BuildError::BadStatusCode);
        }
        if !is_reason_phrase(reason) {
            return Err(BuildError::BadReasonPhrase);
        }
        Ok(StatusLine {
            code,
            reason: reason.to_owned(),
        })
    }

    /// The status code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The reason phrase.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

pub(crate) fn is_reason_phrase(s: &str) -> bool {
    is_escaped_text(s, |b| {
        is_reserved(b) || is_unreserved(b) || b == b' ' || b == b'\t' || b >= 0x80
    })
}

/// The first line of a message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StartLine {
    /// A request.
    Request(RequestLine),
    /// A response.
    Response(StatusLine),
}

/// A SIP request or response.
///
/// A parsed message has passed every check of the parser: its start line, the header
/// fields a request or response must carry, and every header field with a typed accessor
/// here, so those accessors do not fail on it. A message built or changed by hand is only
/// as valid as what was put in; [`Message::validate`] checks it again.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Message {
    /// The start line.
    pub start: StartLine,
    /// The header fields, Content-Length excepted (it is `body.len()`).
    pub headers: Headers,
    /// The body.
    pub body: Vec<u8>,
}

/// Header fields that may appear once only.
const SINGLE: [StdHeader; 9] = [
    StdHeader::To,
    StdHeader::From,
    StdHeader::CSeq,
    StdHeader::CallId,
    StdHeader::MaxForwards,
    StdHeader::ContentType,
    StdHeader::SessionExpires,
    StdHeader::RetryAfter,
    StdHeader::ReferTo,
];

impl Message {
    /// A request with no header fields and no body.
    pub fn request(method: Method, uri: Uri) -> Message {
        Message {
            start: StartLine::Request(RequestLine { method, uri }),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Parses one complete message held in `data`, with datagram rules (RFC 3261 section
    /// 18.3): Content-Length may be missing, in which case the body runs to the end.
    pub fn parse(data: &[u8], limits: &Limits) -> Result<Message, ParseError> {
        crate::parse::parse_complete(data, limits)
    }

    /// The method, for a request.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request(r) => Some(&r.method),
            StartLine::Response(_) => None,
        }
    }

    /// The Request-URI, for a request.
    pub fn request_uri(&self) -> Option<&Uri> {
        match &self.start {
            StartLine::Request(r) => Some(&r.uri),
            StartLine::Response(_) => None,
        }
    }

    /// The status code, for a response.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Request(_) => None,
            StartLine::Response(s) => Some(s.code),
        }
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request(_))
    }

    /// The value of the single-valued field `h`, refusing a second one.
    fn single(&self, h: StdHeader) -> Result<Option<&str>, ParseError> {
        let mut it = self.headers.get_all(h);
        let first = it.next();
        if it.next().is_some() {
            return Err(ParseError::DuplicateHeader(h));
        }
        Ok(first)
    }

    fn required(&self, h: StdHeader) -> Result<&str, ParseError> {
        self.single(h)?.ok_or(ParseError::MissingHeader(h))
    }

    /// Every Via value, top first, over all Via header fields.
    pub fn vias(&self) -> Result<Vec<Via>, ParseError> {
        let mut out = Vec::new();
        for v in self.headers.get_all(StdHeader::Via) {
            out.extend(Via::parse_list(v).map_err(|_| ParseError::BadHeader(StdHeader::Via))?);
        }
        Ok(out)
    }

    /// The topmost Via value.
    pub fn top_via(&self) -> Result<Via, ParseError> {
        let v = self
            .headers
            .get(StdHeader::Via)
            .ok_or(ParseError::MissingHeader(StdHeader::Via))?;
        Via::parse_list(v)
            .ok()
            .and_then(|l| l.into_iter().next())
            .ok_or(ParseError::BadHeader(StdHeader::Via))
    }

    fn name_addr(&self, h: StdHeader) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.required(h)?).map_err(|_| ParseError::BadHeader(h))
    }

    /// The From value.
    pub fn from_addr(&self) -> Result<NameAddr, ParseError> {
        self.name_addr(StdHeader::From)
    }

    /// The To value.
    pub fn to_addr(&self) -> Result<NameAddr, ParseError> {
        self.name_addr(StdHeader::To)
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Result<&str, ParseError> {
        let v = self.required(StdHeader::CallId)?;
        check_call_id(v).map_err(|_| ParseError::BadHeader(StdHeader::CallId))?;
        Ok(v)
    }

    /// The CSeq.
    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        CSeq::parse(self.required(StdHeader::CSeq)?)
            .map_err(|_| ParseError::BadHeader(StdHeader::CSeq))
    }

    /// The Max-Forwards value, if present.
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        self.single(StdHeader::MaxForwards)?
            .map(|v| {
                parse_max_forwards(v).map_err(|_| ParseError::BadHeader(StdHeader::MaxForwards))
            })
            .transpose()
    }

    /// The Contact values over all Contact header fields, if any.
    pub fn contact(&self) -> Result<Option<Contact>, ParseError> {
        let bad = ParseError::BadHeader(StdHeader::Contact);
        let mut out: Option<Contact> = None;
        for v in self.headers.get_all(StdHeader::Contact) {
            let c = Contact::parse(v).map_err(|_| bad)?;
            out = Some(match (out, c) {
                (None, c) => c,
                (Some(Contact::Addresses(mut a)), Contact::Addresses(b)) => {
                    a.extend(b);
                    Contact::Addresses(a)
                }
                // "*" stands alone (RFC 3261 section 10.2.2).
                _ => return Err(bad),
            });
        }
        Ok(out)
    }

    /// The Content-Type, if present.
    pub fn content_type(&self) -> Result<Option<MediaType>, ParseError> {
        self.single(StdHeader::ContentType)?
            .map(|v| MediaType::parse(v).map_err(|_| ParseError::BadHeader(StdHeader::ContentType)))
            .transpose()
    }

    fn option_tags(&self, h: StdHeader) -> Result<Vec<Token>, ParseError> {
        let mut out = Vec::new();
        for v in self.headers.get_all(h) {
            out.extend(parse_option_tags(v).map_err(|_| ParseError::BadHeader(h))?);
        }
        Ok(out)
    }

    /// The option tags of every Require header field.
    pub fn require(&self) -> Result<Vec<Token>, ParseError> {
        self.option_tags(StdHeader::Require)
    }

    /// The option tags of every Supported header field.
    pub fn supported(&self) -> Result<Vec<Token>, ParseError> {
        self.option_tags(StdHeader::Supported)
    }

    /// The Require option tags not in `supported`: a UAS answers 420 (Bad Extension)
    /// listing them in Unsupported when there are any (RFC 3261 section 8.2.2.3).
    pub fn unsupported_requirements(&self, supported: &[&str]) -> Result<Vec<Token>, ParseError> {
        Ok(self
            .require()?
            .into_iter()
            .filter(|t| !supported.iter().any(|s| s.eq_ignore_ascii_case(t.as_str())))
            .collect())
    }

    /// The Session-Expires value, if present.
    pub fn session_expires(&self) -> Result<Option<SessionExpires>, ParseError> {
        self.single(StdHeader::SessionExpires)?
            .map(|v| {
                SessionExpires::parse(v)
                    .map_err(|_| ParseError::BadHeader(StdHeader::SessionExpires))
            })
            .transpose()
    }

    /// The Reason values over all Reason header fields.
    pub fn reasons(&self) -> Result<Vec<Reason>, ParseError> {
        let mut out = Vec::new();
        for v in self.headers.get_all(StdHeader::Reason) {
            out.extend(
                Reason::parse_list(v).map_err(|_| ParseError::BadHeader(StdHeader::Reason))?,
            );
        }
        Ok(out)
    }

    /// The Retry-After value, if present.
    pub fn retry_after(&self) -> Result<Option<RetryAfter>, ParseError> {
        self.single(StdHeader::RetryAfter)?
            .map(|v| RetryAfter::parse(v).map_err(|_| ParseError::BadHeader(StdHeader::RetryAfter)))
            .transpose()
    }

    /// The Refer-To value, if present.
    pub fn refer_to(&self) -> Result<Option<NameAddr>, ParseError> {
        self.single(StdHeader::ReferTo)?
            .map(|v| NameAddr::parse(v).map_err(|_| ParseError::BadHeader(StdHeader::ReferTo)))
            .transpose()
    }

    fn route_set(&self, h: StdHeader) -> Result<Vec<NameAddr>, ParseError> {
        let mut out = Vec::new();
        for v in self.headers.get_all(h) {
            out.extend(NameAddr::parse_list(v).map_err(|_| ParseError::BadHeader(h))?);
        }
        Ok(out)
    }

    /// The Route values over all Route header fields, in order.
    pub fn routes(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.route_set(StdHeader::Route)
    }

    /// The Record-Route values over all Record-Route header fields, in order.
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.route_set(StdHeader::RecordRoute)
    }

    /// Checks what the parser checks after the start line: the header fields a request
    /// or response must carry, single-valued fields appearing once, every typed field's
    /// grammar, the Via count and the CSeq method.
    pub fn validate(&self, limits: &Limits) -> Result<(), ParseError> {
        for h in SINGLE {
            self.single(h)?;
        }
        //= https://www.rfc-editor.org/rfc/rfc3261#section-8.1.1
        //# A valid SIP request formulated by a UAC MUST, at a minimum, contain
        //# the following header fields: To, From, CSeq, Call-ID, Max-Forwards,
        //# and Via; all of these header fields are mandatory in all SIP
        //# requests.
        let vias = self.vias()?;
        if vias.is_empty() {
            return Err(ParseError::MissingHeader(StdHeader::Via));
        }
        if vias.len() > limits.max_vias {
            return Err(ParseError::TooManyVias);
        }
        self.to_addr()?;
        self.from_addr()?;
        self.call_id()?;
        let cseq = self.cseq()?;
        let max_forwards = self.max_forwards()?;
        if let StartLine::Request(r) = &self.start {
            if max_forwards.is_none() {
                return Err(ParseError::MissingHeader(StdHeader::MaxForwards));
            }
            //= https://www.rfc-editor.org/rfc/rfc3261#section-8.1.1.5
            //# The method MUST match that of the request.
            if cseq.method != r.method {
                return Err(ParseError::CSeqMethodMismatch);
            }
        }
        self.contact()?;
        self.content_type()?;
        self.require()?;
        self.supported()?;
        self.option_tags(StdHeader::ProxyRequire)?;
        self.option_tags(StdHeader::Unsupported)?;
        self.session_expires()?;
        self.reasons()?;
        self.retry_after()?;
        self.refer_to()?;
        self.routes()?;
        self.record_routes()?;
        Ok(())
    }

    /// Builds the response to `request` that RFC 3261 section 8.2.6.2 describes: the Via
    /// fields in order, From, To, Call-ID and CSeq copied, and no body. The caller adds the
    /// To tag ([`Message::add_to_tag`]) and whatever else the response needs.
    pub fn response_to(request: &Message, code: u16, reason: &str) -> Result<Message, BuildError> {
        let method = request.method().ok_or(BuildError::NotARequest)?;
        if *method == Method::Ack {
            return Err(BuildError::AckHasNoResponse);
        }
        let status = StatusLine::new(code, reason)?;
        let mut headers = Headers::new();
        //= https://www.rfc-editor.org/rfc/rfc3261#section-8.2.6.2
        //# The Via header field values in the response MUST equal the Via
        //# header field values in the request and MUST maintain the same
        //# ordering.
        let mut copied_via = false;
        for h in request.headers.iter() {
            if h.name().std() == Some(StdHeader::Via) {
                headers.push(h.clone());
                copied_via = true;
            }
        }
        if !copied_via {
            return Err(BuildError::MissingHeader(StdHeader::Via));
        }
        //= https://www.rfc-editor.org/rfc/rfc3261#section-8.2.6.2
        //# The From field of the response MUST equal the From header field of
        //# the request.  The Call-ID header field of the response MUST equal the
        //# Call-ID header field of the request.  The CSeq header field of the
        //# response MUST equal the CSeq field of the request.
        for h in [
            StdHeader::From,
            StdHeader::To,
            StdHeader::CallId,
            StdHeader::CSeq,
        ] {
            let v = request.headers.get(h).ok_or(BuildError::MissingHeader(h))?;
            headers.push(Header::new_unchecked(HeaderName::from(h), v.to_owned()));
        }
        //= https://www.rfc-editor.org/rfc/rfc3261#section-8.2.6.1
        //# When a 100 (Trying) response is generated, any Timestamp header field
        //# present in the request MUST be copied into this 100 (Trying)
        //# response.
        if code == 100 {
            if let Some(t) = request.headers.get(StdHeader::Timestamp) {
                headers.push(Header::new_unchecked(
                    StdHeader::Timestamp.into(),
                    t.to_owned(),
                ));
            }
        }
        Ok(Message {
            start: StartLine::Response(status),
            headers,
            body: Vec::new(),
        })
    }

    /// Adds `;tag=tag` to the To field, which must have none yet.
    ///
    //= https://www.rfc-editor.org/rfc/rfc3261#section-8.2.6.2
    //# However, if the To header field in the request did not contain a tag, the URI
    //# in the To header field in the response MUST equal the URI in the To header
    //# field; additionally, the UAS MUST add a tag to the To header field in the
    //# response
    pub fn add_to_tag(&mut self, tag: &str) -> Result<(), BuildError> {
        if !is_token_str(tag) {
            return Err(BuildError::BadTag);
        }
        let to = self
            .headers
            .get(StdHeader::To)
            .ok_or(BuildError::MissingHeader(StdHeader::To))?;
        let parsed = NameAddr::parse(to).map_err(|_| BuildError::MissingHeader(StdHeader::To))?;
        if parsed.tag().is_some() {
            return Err(BuildError::ToTagPresent);
        }
        // Appending keeps the value as the requester wrote it; in both the name-addr and
        // the bare addr-spec form a trailing ";tag=" is a header parameter.
        let value = format!("{to};tag={tag}");
        self.headers
            .set(Header::new_unchecked(StdHeader::To.into(), value));
        Ok(())
    }
}
