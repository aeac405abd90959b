//! What a response to a refused message needs, salvaged from its raw bytes, and the error
//! response built from it.
//!
//! The parser returns only a [`ParseError`] for a message it refuses, yet RFC 3261 wants
//! most refused requests answered (400, 413, 414, 416, 483, 505, 513), and an answer must
//! copy the request's Via, From, To, Call-ID and CSeq to reach the client transaction.
//! [`Refused::salvage`] takes those five fields back out of the bytes, best effort and
//! under the same bounds as the parser, and [`Refused::error_response`] builds the answer.
//!
//! What is salvaged is held to the rules the parser applies to every header value: UTF-8,
//! no control characters but HTAB (so no CR or LF that could end a line early and inject a
//! header), at most [`Limits::max_header_value_len`] bytes after unfolding, a name of at
//! most [`Limits::max_header_name_len`] bytes. A line that breaks one of them is left out,
//! never repaired, so nothing the parser would refuse as unsafe is echoed. Lines may end
//! in a bare LF here (the parser refuses those): the response is written with CRLF, so a
//! client with sloppy line endings still learns why it was refused.

use crate::error::{BuildError, ParseError};
use crate::header::{Header, HeaderName, Headers, StdHeader};
use crate::limits::Limits;
use crate::message::{Message, StartLine, StatusLine};
use crate::scan::{is_header_text, is_token_str};
use crate::uri::Host;
use crate::values::{Method, NameAddr};

/// The longest method token kept from a refused start line (RFC 4475's extension method
/// `!interesting-Method0123456789_*+\`.%indeed'~` is 43 bytes).
const MAX_METHOD_LEN: usize = 64;

/// What a response needs from a message the parser refused: whether it is a request (and
/// its method), and its raw Via, From, To, Call-ID and CSeq values.
///
/// Built only by [`Refused::salvage`], so every value it holds has passed the checks the
/// module docs list. A field that was missing or unsafe is `None` (or, for Via, left out).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refused {
    method: Option<Method>,
    vias: Vec<String>,
    from: Option<String>,
    to: Option<String>,
    call_id: Option<String>,
    cseq: Option<String>,
}

/// A header field being gathered across folded lines.
struct Field {
    which: StdHeader,
    value: String,
    /// A continuation line was unsafe: the whole field is dropped.
    poisoned: bool,
}

impl Refused {
    /// Salvages what a response needs from `data`, the bytes of a refused message (or the
    /// start of them: a header section that never ended, say). Never fails and never
    /// panics; looks at no more than [`Limits::max_message_size`] bytes, and only at the
    /// header section.
    pub fn salvage(data: &[u8], limits: &Limits) -> Refused {
        let data = &data[..data.len().min(limits.max_message_size)];
        let head = match head_end(data) {
            Some(end) => &data[..end],
            // No empty line: keep the complete lines only, the last may be cut short.
            None => match data.iter().rposition(|&b| b == b'\n') {
                Some(i) => &data[..i],
                None => &[][..],
            },
        };
        let mut out = Refused::default();
        let mut lines = head
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        out.method = lines.next().and_then(request_method);
        let mut field: Option<Field> = None;
        for line in lines {
            let text = std::str::from_utf8(line).ok().filter(|t| is_header_text(t));
            if line.first().is_some_and(|b| matches!(b, b' ' | b'\t')) {
                //= https://www.rfc-editor.org/rfc/rfc3261#section-7.3.1
                //# Header fields can be extended over multiple lines by preceding each
                //# extra line with at least one SP or horizontal tab (HT).
                if let Some(f) = field.as_mut() {
                    match text.map(|t| t.trim_matches([' ', '\t'])) {
                        Some(more)
                            if f.value.len() + 1 + more.len() <= limits.max_header_value_len =>
                        {
                            if !more.is_empty() {
                                if !f.value.is_empty() {
                                    f.value.push(' ');
                                }
                                f.value.push_str(more);
                            }
                        }
                        _ => f.poisoned = true,
                    }
                }
                continue;
            }
            if let Some(f) = field.take() {
                out.keep(f, limits);
            }
            field = text.and_then(|t| start_field(t, limits));
        }
        if let Some(f) = field.take() {
            out.keep(f, limits);
        }
        out
    }

    fn keep(&mut self, f: Field, limits: &Limits) {
        if f.poisoned || f.value.is_empty() || f.value.len() > limits.max_header_value_len {
            return;
        }
        let slot = match f.which {
            StdHeader::Via => {
                // A response copies every Via; more than the parser allows are not kept.
                if self.vias.len() < limits.max_vias {
                    self.vias.push(f.value);
                }
                return;
            }
            StdHeader::From => &mut self.from,
            StdHeader::To => &mut self.to,
            StdHeader::CallId => &mut self.call_id,
            _ => &mut self.cseq,
        };
        // A single-valued field given twice (refused as Duplicate...): the first one.
        if slot.is_none() {
            *slot = Some(f.value);
        }
    }

    /// Whether the start line looked like a request.
    pub fn is_request(&self) -> bool {
        self.method.is_some()
    }

    /// The request's method, if the start line looked like a request.
    pub fn method(&self) -> Option<&Method> {
        self.method.as_ref()
    }

    /// The Via values salvaged, in order (one per header field line).
    pub fn vias(&self) -> &[String] {
        &self.vias
    }

    /// The From value.
    pub fn from(&self) -> Option<&str> {
        self.from.as_deref()
    }

    /// The To value.
    pub fn to(&self) -> Option<&str> {
        self.to.as_deref()
    }

    /// The Call-ID value.
    pub fn call_id(&self) -> Option<&str> {
        self.call_id.as_deref()
    }

    /// The CSeq value.
    pub fn cseq(&self) -> Option<&str> {
        self.cseq.as_deref()
    }

    /// Whether [`Refused::error_response`] can build an answer: a request other than ACK
    /// with Via, From, To, Call-ID and CSeq.
    pub fn is_answerable(&self) -> bool {
        self.check().is_ok()
    }

    fn check(&self) -> Result<(), BuildError> {
        match &self.method {
            None => return Err(BuildError::NotARequest),
            // ACK is never answered (RFC 3261 section 17.1.1.3).
            Some(Method::Ack) => return Err(BuildError::AckHasNoResponse),
            Some(_) => {}
        }
        if self.vias.is_empty() {
            return Err(BuildError::MissingHeader(StdHeader::Via));
        }
        for (h, v) in [
            (StdHeader::From, &self.from),
            (StdHeader::To, &self.to),
            (StdHeader::CallId, &self.call_id),
            (StdHeader::CSeq, &self.cseq),
        ] {
            if v.is_none() {
                return Err(BuildError::MissingHeader(h));
            }
        }
        Ok(())
    }

    /// The response to the refused request: [`ParseError::status`] with
    /// [`ParseError::reason`] as its reason phrase (fixed words naming the problem, never
    /// input), the salvaged Via, From, To, Call-ID and CSeq copied as RFC 3261 section
    /// 8.2.6.2 says, `to_tag` added to a To without a tag, and a Warning (code 399) from
    /// `warn_agent` repeating the problem for the peer's logs. `warn_agent` is our host
    /// name or a pseudonym token; anything else leaves the Warning out.
    ///
    /// Errs when there is nothing to answer: not a request, an ACK, or a field missing.
    ///
    //= https://www.rfc-editor.org/rfc/rfc3261#section-8.2.6.2
    //# The From field of the response MUST equal the From header field of
    //# the request.  The Call-ID header field of the response MUST equal the
    //# Call-ID header field of the request.  The CSeq header field of the
    //# response MUST equal the CSeq field of the request.
    pub fn error_response(
        &self,
        error: ParseError,
        warn_agent: &str,
        to_tag: &str,
    ) -> Result<Message, BuildError> {
        self.check()?;
        if !is_token_str(to_tag) {
            return Err(BuildError::BadTag);
        }
        let reason = error.reason();
        let status = StatusLine::new(error.status(), &reason)?;
        let mut headers = Headers::new();
        for v in &self.vias {
            headers.push(Header::new_unchecked(StdHeader::Via.into(), v.clone()));
        }
        let field = |h: StdHeader, v: &Option<String>| {
            Header::new_unchecked(HeaderName::from(h), v.clone().unwrap_or_default())
        };
        headers.push(field(StdHeader::From, &self.from));
        let to = self.to.clone().unwrap_or_default();
        //= https://www.rfc-editor.org/rfc/rfc3261#section-8.2.6.2
        //# However, if the To header field in the request did not contain a tag, the URI
        //# in the To header field in the response MUST equal the URI in the To header
        //# field; additionally, the UAS MUST add a tag to the To header field in the
        //# response
        let to = if has_tag(&to) {
            to
        } else {
            format!("{to};tag={to_tag}")
        };
        headers.push(Header::new_unchecked(StdHeader::To.into(), to));
        headers.push(field(StdHeader::CallId, &self.call_id));
        headers.push(field(StdHeader::CSeq, &self.cseq));
        if Host::parse(warn_agent).is_ok() || is_token_str(warn_agent) {
            //= https://www.rfc-editor.org/rfc/rfc3261#section-20.43
            //# warning-value  =  warn-code SP warn-agent SP warn-text
            headers.push(Header::new_unchecked(
                StdHeader::Warning.into(),
                format!("399 {warn_agent} \"{reason}\""),
            ));
        }
        Ok(Message {
            start: StartLine::Response(status),
            headers,
            body: Vec::new(),
        })
    }
}

/// Whether a To value carries a tag: by the grammar when it parses, else by looking for
/// `tag=` after the URI (a malformed To is refused, but still copied).
fn has_tag(to: &str) -> bool {
    if let Ok(n) = NameAddr::parse(to) {
        return n.tag().is_some();
    }
    let params = to.rfind('>').map_or(to, |i| &to[i..]);
    params
        .split(';')
        .skip(1)
        .any(|p| p.trim_start().to_ascii_lowercase().starts_with("tag"))
}

/// The end of the header section: the first empty line, whether ended by CRLF or LF.
fn head_end(data: &[u8]) -> Option<usize> {
    let crlf = data.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = data.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The method of a start line that looks like a request: `token SP ... SIP/`, not a
/// Status-Line, UTF-8 and without control characters.
fn request_method(line: &[u8]) -> Option<Method> {
    let line = std::str::from_utf8(line)
        .ok()
        .filter(|l| is_header_text(l))?;
    if line
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        return None;
    }
    let (method, rest) = line.split_once(' ')?;
    if method.len() > MAX_METHOD_LEN || !rest.to_ascii_uppercase().contains("SIP/") {
        return None;
    }
    Method::parse(method).ok()
}

/// The start of a header field line, if it is one of the five a response copies.
fn start_field(line: &str, limits: &Limits) -> Option<Field> {
    let (name, value) = line.split_once(':')?;
    let name = name.trim_end_matches([' ', '\t']);
    if name.len() > limits.max_header_name_len {
        return None;
    }
    let which = HeaderName::parse(name)?.std()?;
    if !matches!(
        which,
        StdHeader::Via | StdHeader::From | StdHeader::To | StdHeader::CallId | StdHeader::CSeq
    ) {
        return None;
    }
    let value = value.trim_matches([' ', '\t']);
    Some(Field {
        which,
        value: value.to_owned(),
        poisoned: value.len() > limits.max_header_value_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_datagram, Frame, StreamDecoder};

    const INVITE: &str = "INVITE sip:bob@sbc.example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n\
        v: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1\r\n\
        Max-Forwards: 70\r\n\
        To: <sip:bob@sbc.example.com>\r\n\
        f: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
        i: a84b4c76e66710\r\n\
        CSeq: 314159 INVITE\r\n\
        Content-Length: 0\r\n\r\n";

    fn salvage(s: &[u8]) -> Refused {
        Refused::salvage(s, &Limits::default())
    }

    fn text(m: &Message) -> String {
        String::from_utf8(m.to_bytes()).unwrap()
    }

    #[test]
    fn the_five_fields_come_back_as_written() {
        let r = salvage(INVITE.as_bytes());
        assert_eq!(r.method(), Some(&Method::Invite));
        assert_eq!(
            r.vias(),
            [
                "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds",
                "SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1"
            ]
        );
        assert_eq!(
            r.from(),
            Some("\"Alice\" <sip:alice@example.com>;tag=1928301774")
        );
        assert_eq!(r.to(), Some("<sip:bob@sbc.example.com>"));
        assert_eq!(r.call_id(), Some("a84b4c76e66710"));
        assert_eq!(r.cseq(), Some("314159 INVITE"));
        assert!(r.is_answerable());
    }

    #[test]
    fn the_response_names_the_problem_in_fixed_words() {
        let bad = INVITE.replace("CSeq: 314159 INVITE", "CSeq: 314159 BYE");
        let e = parse_datagram(bad.as_bytes(), &Limits::default()).unwrap_err();
        assert_eq!(e, ParseError::CSeqMethodMismatch);
        let r = salvage(bad.as_bytes());
        let m = r.error_response(e, "sbc.example.com", "t1").unwrap();
        let t = text(&m);
        assert!(t.starts_with("SIP/2.0 400 CSeq Method Mismatch\r\n"), "{t}");
        assert!(t.contains("\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1\r\n"), "{t}");
        assert!(
            t.contains("\r\nTo: <sip:bob@sbc.example.com>;tag=t1\r\n"),
            "{t}"
        );
        assert!(t.contains("\r\nCSeq: 314159 BYE\r\n"), "{t}");
        assert!(
            t.contains("\r\nWarning: 399 sbc.example.com \"CSeq Method Mismatch\"\r\n"),
            "{t}"
        );
        assert!(t.ends_with("Content-Length: 0\r\n\r\n"), "{t}");
        // The response is itself a valid message (its CSeq is the request's as written).
        let back = Message::parse(&m.to_bytes(), &Limits::default()).unwrap();
        assert_eq!(back.status(), Some(400));
        assert_eq!(back.to_addr().unwrap().tag(), Some("t1"));
    }

    #[test]
    fn statuses_follow_the_error() {
        let l = Limits::default();
        let huge_uri = INVITE.replace("sip:bob@", &format!("sip:{}@", "b".repeat(300)));
        let huge_len = INVITE.replace("Content-Length: 0", "Content-Length: 99999999999");
        let scheme = INVITE.replace("INVITE sip:bob@", "INVITE xmpp:bob@");
        let version = INVITE.replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia");
        let hops = INVITE.replace(
            "Max-Forwards",
            &format!(
                "{}Max-Forwards",
                "Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKx\r\n".repeat(70)
            ),
        );
        let name = INVITE.replace(
            "Max-Forwards",
            &format!("X-{}: 1\r\nMax-Forwards", "n".repeat(40)),
        );
        let many = INVITE.replace(
            "Max-Forwards",
            &format!("{}Max-Forwards", "X-A: 1\r\n".repeat(100)),
        );
        for (msg, status, reason) in [
            (huge_uri, 414, "Request-URI Too Long"),
            (huge_len, 413, "Request Entity Too Large"),
            (scheme, 416, "Unsupported URI Scheme"),
            (version, 505, "Version Not Supported"),
            (hops, 483, "Too Many Hops"),
            (name, 400, "Header Name Too Long"),
            (many, 513, "Too Many Header Fields"),
        ] {
            let e = parse_datagram(msg.as_bytes(), &l).unwrap_err();
            let m = salvage(msg.as_bytes())
                .error_response(e, "relay", "x")
                .unwrap();
            assert_eq!(m.status(), Some(status), "{reason}");
            let t = text(&m);
            assert!(
                t.starts_with(&format!("SIP/2.0 {status} {reason}\r\n")),
                "{t}"
            );
        }
    }

    #[test]
    fn nothing_unsafe_is_echoed() {
        // A control character, a byte that is not UTF-8, an over-long value: each line is
        // left out, so the request cannot be answered through it.
        for (from, to) in [
            ("i: a84b4c76e66710", "i: a84b4c76\u{1}e66710"),
            ("i: a84b4c76e66710", "i: a84b4c76\u{7f}e66710"),
            ("i: a84b4c76e66710", "i: a84b4c76\re66710"),
            ("CSeq: 314159 INVITE", "CSeq: 314159 INVITE\u{85}"),
        ] {
            let bad = INVITE.replace(from, to);
            let r = salvage(bad.as_bytes());
            assert!(!r.is_answerable(), "{to:?}");
            assert!(matches!(
                r.error_response(ParseError::ControlCharacter, "relay", "x"),
                Err(BuildError::MissingHeader(_))
            ));
        }
        let mut bytes = INVITE.as_bytes().to_vec();
        let at = INVITE.find("a84b").unwrap();
        bytes[at] = 0xff;
        let r = salvage(&bytes);
        assert_eq!(r.call_id(), None);
        let long = INVITE.replace("a84b4c76e66710", &"c".repeat(5000));
        assert_eq!(salvage(long.as_bytes()).call_id(), None);
        // An unsafe line elsewhere does not stop the answer; it is not echoed either.
        let subject = INVITE.replace(
            "Max-Forwards: 70",
            "Subject: \u{1b}[31mred\r\nMax-Forwards: 70",
        );
        let r = salvage(subject.as_bytes());
        let m = r
            .error_response(ParseError::ControlCharacter, "relay", "x")
            .unwrap();
        assert!(!text(&m).contains('\u{1b}'));
        assert!(text(&m).contains("400 Control Character in Header"));
        // A folded continuation with a control character drops the whole field.
        let folded = INVITE.replace("i: a84b4c76e66710", "i: a84b4c76e66710\r\n \u{0}x");
        assert_eq!(salvage(folded.as_bytes()).call_id(), None);
        let folded = INVITE.replace("i: a84b4c76e66710", "i: a84b4c76e66710\r\n\tmore");
        assert_eq!(
            salvage(folded.as_bytes()).call_id(),
            Some("a84b4c76e66710 more")
        );
    }

    #[test]
    fn what_is_not_answered() {
        let e = ParseError::BadStartLine;
        // Responses, ACKs and garbage.
        let response = INVITE.replace("INVITE sip:bob@sbc.example.com SIP/2.0", "SIP/2.0 200 OK");
        assert_eq!(
            salvage(response.as_bytes()).error_response(e, "relay", "x"),
            Err(BuildError::NotARequest)
        );
        let ack = INVITE.replace("INVITE sip", "ACK sip");
        assert_eq!(
            salvage(ack.as_bytes()).error_response(e, "relay", "x"),
            Err(BuildError::AckHasNoResponse)
        );
        for junk in [
            &b""[..],
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"\r\n\r\n",
            b"INVITE",
        ] {
            let r = salvage(junk);
            assert!(!r.is_answerable(), "{junk:?}");
        }
        // Each missing field is named.
        for (line, h) in [
            ("To: <sip:bob@sbc.example.com>\r\n", StdHeader::To),
            (
                "f: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n",
                StdHeader::From,
            ),
            ("i: a84b4c76e66710\r\n", StdHeader::CallId),
            ("CSeq: 314159 INVITE\r\n", StdHeader::CSeq),
        ] {
            let bad = INVITE.replace(line, "");
            let e = parse_datagram(bad.as_bytes(), &Limits::default()).unwrap_err();
            assert_eq!(e, ParseError::MissingHeader(h));
            assert_eq!(
                salvage(bad.as_bytes()).error_response(e, "relay", "x"),
                Err(BuildError::MissingHeader(h))
            );
        }
        let no_via = INVITE
            .replace(
                "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n",
                "",
            )
            .replace("v: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1\r\n", "");
        assert_eq!(
            salvage(no_via.as_bytes()).error_response(e, "relay", "x"),
            Err(BuildError::MissingHeader(StdHeader::Via))
        );
        // A bad tag or agent.
        let r = salvage(INVITE.as_bytes());
        assert_eq!(r.error_response(e, "relay", "a b"), Err(BuildError::BadTag));
        let m = r.error_response(e, "not an agent\"", "x").unwrap();
        assert!(m.headers.get(StdHeader::Warning).is_none());
    }

    #[test]
    fn tags_folding_duplicates_and_bare_lf() {
        let tagged = INVITE.replace(
            "To: <sip:bob@sbc.example.com>",
            "To: <sip:bob@sbc.example.com>;TAG=abc",
        );
        let m = salvage(tagged.as_bytes())
            .error_response(ParseError::BadHeaderName, "relay", "x")
            .unwrap();
        assert_eq!(
            m.headers.get(StdHeader::To),
            Some("<sip:bob@sbc.example.com>;TAG=abc")
        );
        // A malformed To with something like a tag keeps it; one without gets ours.
        for (to, want) in [
            (
                "To: <sip:bob@sbc.example.com;tag=1",
                "<sip:bob@sbc.example.com;tag=1",
            ),
            (
                "To: <sip:bob@sbc.example.com",
                "<sip:bob@sbc.example.com;tag=x",
            ),
        ] {
            let broken = INVITE.replace("To: <sip:bob@sbc.example.com>", to);
            let m = salvage(broken.as_bytes())
                .error_response(ParseError::BadHeader(StdHeader::To), "relay", "x")
                .unwrap();
            assert_eq!(m.headers.get(StdHeader::To), Some(want));
        }
        let dup = INVITE.replace("i: a84b4c76e66710", "i: first\r\nCall-ID: second");
        assert_eq!(salvage(dup.as_bytes()).call_id(), Some("first"));
        let lf = INVITE.replace("\r\n", "\n");
        let r = salvage(lf.as_bytes());
        assert!(r.is_answerable());
        assert_eq!(r.cseq(), Some("314159 INVITE"));
        // A header section that never ends: the complete lines count.
        let cut = &INVITE[..INVITE.find("Content-Length").unwrap() + 3];
        assert!(salvage(cut.as_bytes()).is_answerable());
        // The body is never read.
        let body = format!("{INVITE}Via: SIP/2.0/UDP evil;branch=z9hG4bKe\r\n");
        assert_eq!(salvage(body.as_bytes()).vias().len(), 2);
    }

    #[test]
    fn bounded_by_the_limits() {
        let limits = Limits {
            max_message_size: 200,
            max_vias: 2,
            ..Limits::default()
        };
        let vias = INVITE.replace(
            "Max-Forwards",
            &format!(
                "{}Max-Forwards",
                "Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKx\r\n".repeat(5)
            ),
        );
        let r = Refused::salvage(
            vias.as_bytes(),
            &Limits {
                max_vias: 2,
                ..Limits::default()
            },
        );
        assert_eq!(r.vias().len(), 2);
        // Only the first max_message_size bytes are looked at.
        let r = Refused::salvage(INVITE.as_bytes(), &limits);
        assert_eq!(r.cseq(), None);
        assert!(r.vias().len() <= 2);
        // Names over the limit are skipped.
        let long_name = INVITE.replace("CSeq:", &format!("CSeq{}:", " ".repeat(40)));
        assert_eq!(salvage(long_name.as_bytes()).cseq(), Some("314159 INVITE"));
    }

    #[test]
    fn the_stream_decoder_hands_the_salvage_over() {
        let bad = INVITE.replace("CSeq: 314159 INVITE", "CSeq: x");
        let mut d = StreamDecoder::new(Limits::default());
        d.push(format!("{bad}{INVITE}").as_bytes());
        match d.next_frame() {
            Ok(Some(Frame::Invalid(e, r))) => {
                assert_eq!(e, ParseError::BadHeader(StdHeader::CSeq));
                assert_eq!(r.cseq(), Some("x"));
                assert!(r.is_answerable());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(d.next_frame(), Ok(Some(Frame::Message(_)))));
        // Framing lost: what the header section held is kept for one last answer.
        let huge = INVITE.replace("Content-Length: 0", "Content-Length: 99999999");
        let mut d = StreamDecoder::new(Limits::default());
        assert!(d.refused().is_none());
        d.push(huge.as_bytes());
        assert_eq!(d.next_frame(), Err(ParseError::BodyTooLarge));
        let r = d.refused().unwrap();
        assert_eq!(r.call_id(), Some("a84b4c76e66710"));
        let m = r
            .error_response(ParseError::BodyTooLarge, "relay", "x")
            .unwrap();
        assert_eq!(m.status(), Some(413));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic generator: mutations of the INVITE and random junk.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let limits = Limits {
            max_message_size: 512,
            max_header_value_len: 40,
            ..Limits::default()
        };
        for _ in 0..3000 {
            let mut data = INVITE.as_bytes().to_vec();
            for _ in 0..(next() % 8) {
                let i = (next() as usize) % data.len();
                match next() % 4 {
                    0 => data[i] = next() as u8,
                    1 => data.insert(i, b"\r\n: ;\t\0\xc3"[(next() % 7) as usize]),
                    2 => {
                        data.remove(i);
                    }
                    _ => data.truncate(i),
                }
                if data.is_empty() {
                    break;
                }
            }
            for l in [&Limits::default(), &limits] {
                let r = Refused::salvage(&data, l);
                for v in r
                    .vias()
                    .iter()
                    .map(String::as_str)
                    .chain(r.from())
                    .chain(r.to())
                    .chain(r.call_id())
                    .chain(r.cseq())
                {
                    assert!(is_header_text(v) && v.len() <= l.max_header_value_len);
                }
                if let Ok(m) = r.error_response(ParseError::BadStartLine, "relay", "x") {
                    // Whatever was echoed reads back as header fields of one message.
                    let bytes = m.to_bytes();
                    let head = &bytes[..bytes.len() - 4];
                    assert!(!head.windows(4).any(|w| w == b"\r\n\r\n"));
                    assert!(!head
                        .iter()
                        .any(|&b| b < 0x20 && !matches!(b, b'\r' | b'\n' | b'\t')));
                }
            }
        }
    }
}
