//! The message parser: header section split into lines and fields (phase 1), then start
//! line and typed fields checked (phase 2).
//!
//! Phase 1 settles the message's extent; its errors leave a stream without framing.
//! Phase 2 errors refuse one message whose extent is known, so a stream can skip it.

use crate::error::ParseError;
use crate::header::{Header, HeaderName, Headers, StdHeader};
use crate::limits::Limits;
use crate::message::{is_reason_phrase, Message, RequestLine, StartLine, StatusLine};
use crate::scan::parse_digits;
use crate::uri::Uri;
use crate::values::Method;

/// The header section split into its start line and fields.
#[derive(Debug)]
pub(crate) struct RawHead {
    start: String,
    headers: Headers,
    /// The Content-Length value, if the field was present.
    pub(crate) content_length: Option<usize>,
}

/// Finds the empty line ending the header section: the offset of the `\r\n\r\n`.
pub(crate) fn find_head_end(data: &[u8], from: usize) -> Option<usize> {
    data.get(from..)?
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + from)
}

/// Phase 1: `head` is everything before the `\r\n\r\n` that ends the header section.
pub(crate) fn split_head(head: &[u8], limits: &Limits) -> Result<RawHead, ParseError> {
    let text = std::str::from_utf8(head).map_err(|_| ParseError::NotUtf8)?;
    //= https://www.rfc-editor.org/rfc/rfc3261#section-7
    //# The start-line, each message-header line, and the empty line MUST be
    //# terminated by a carriage-return line-feed sequence (CRLF).
    // Lines end in CRLF; a lone CR or LF, or any other control character but HTAB, is
    // refused here once so that nothing below meets one.
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        match c {
            '\r' if bytes.get(i + 1) != Some(&b'\n') => return Err(ParseError::BadLineEnding),
            '\n' if i == 0 || bytes[i - 1] != b'\r' => return Err(ParseError::BadLineEnding),
            '\r' | '\n' | '\t' => {}
            c if c.is_control() => return Err(ParseError::ControlCharacter),
            _ => {}
        }
    }
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or_default().to_owned();
    let mut fields: Vec<(HeaderName, String)> = Vec::new();
    let mut content_length = None;
    for line in lines {
        //= https://www.rfc-editor.org/rfc/rfc3261#section-7.3.1
        //# Header fields can be extended over multiple lines by preceding each
        //# extra line with at least one SP or horizontal tab (HT).
        if line.starts_with([' ', '\t']) {
            let (_, value) = fields.last_mut().ok_or(ParseError::BadStartLine)?;
            let more = line.trim_matches([' ', '\t']);
            if !more.is_empty() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(more);
            }
            if value.len() > limits.max_header_value_len {
                return Err(ParseError::HeaderValueTooLong);
            }
            continue;
        }
        //= https://www.rfc-editor.org/rfc/rfc3261#section-7.3.1
        //# header-name HCOLON header-value
        // HCOLON = *( SP / HTAB ) ":" SWS
        let (name, value) = line.split_once(':').ok_or(ParseError::BadHeaderName)?;
        let name = name.trim_end_matches([' ', '\t']);
        if name.len() > limits.max_header_name_len {
            return Err(ParseError::HeaderNameTooLong);
        }
        let name = HeaderName::parse(name).ok_or(ParseError::BadHeaderName)?;
        let value = value.trim_matches([' ', '\t']);
        if value.len() > limits.max_header_value_len {
            return Err(ParseError::HeaderValueTooLong);
        }
        if fields.len() >= limits.max_headers {
            return Err(ParseError::TooManyHeaders);
        }
        fields.push((name, value.to_owned()));
    }
    let mut headers = Headers::new();
    for (name, value) in fields {
        if name.std() == Some(StdHeader::ContentLength) {
            //= https://www.rfc-editor.org/rfc/rfc3261#section-20.14
            //# Content-Length  =  ( "Content-Length" / "l" ) HCOLON 1*DIGIT
            if content_length.is_some() {
                return Err(ParseError::DuplicateHeader(StdHeader::ContentLength));
            }
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::BadHeader(StdHeader::ContentLength));
            }
            match parse_digits(&value) {
                Some(n) if n <= limits.max_body_size as u64 => content_length = Some(n as usize),
                _ => return Err(ParseError::BodyTooLarge),
            }
        } else {
            headers.push(Header::new_unchecked(name, value));
        }
    }
    Ok(RawHead {
        start,
        headers,
        content_length,
    })
}

/// `SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT`: only 2.0 is supported.
fn check_version(v: &str) -> Result<(), ParseError> {
    let rest = match v.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("SIP/") => &v[4..],
        _ => return Err(ParseError::BadStartLine),
    };
    if rest == "2.0" {
        return Ok(());
    }
    match rest.split_once('.') {
        Some((a, b))
            if !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit()) =>
        {
            //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.16
            //# The element should respond to the request with a 505 Version Not
            //# Supported error.
            Err(ParseError::UnsupportedVersion)
        }
        _ => Err(ParseError::BadStartLine),
    }
}

fn parse_start_line(line: &str, limits: &Limits) -> Result<StartLine, ParseError> {
    if line
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        //= https://www.rfc-editor.org/rfc/rfc3261#section-7.2
        //# Status-Line  =  SIP-Version SP Status-Code SP Reason-Phrase CRLF
        let (version, rest) = line.split_once(' ').ok_or(ParseError::BadStartLine)?;
        check_version(version)?;
        let code = rest.get(..3).ok_or(ParseError::BadStatusCode)?;
        if !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::BadStatusCode);
        }
        let reason = match rest.as_bytes().get(3) {
            Some(b' ') => &rest[4..],
            // RFC 4475 section 3.1.1.13: the SP after the code is required.
            None => return Err(ParseError::BadStartLine),
            Some(_) => return Err(ParseError::BadStatusCode),
        };
        let code: u16 = code.parse().map_err(|_| ParseError::BadStatusCode)?;
        if !(100..=699).contains(&code) {
            return Err(ParseError::BadStatusCode);
        }
        if !is_reason_phrase(reason) {
            return Err(ParseError::BadReasonPhrase);
        }
        let status = StatusLine::new(code, reason).map_err(|_| ParseError::BadReasonPhrase)?;
        return Ok(StartLine::Response(status));
    }
    //= https://www.rfc-editor.org/rfc/rfc3261#section-7.1
    //# A Request-Line contains a method name, a Request-URI, and the
    //# protocol version separated by a single space (SP) character.
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::BadStartLine);
    };
    let method = Method::parse(method).map_err(|_| ParseError::BadMethod)?;
    check_version(version)?;
    if uri.len() > limits.max_uri_len {
        return Err(ParseError::UriTooLong);
    }
    let uri = Uri::parse(uri).map_err(|_| ParseError::BadRequestUri)?;
    match &uri {
        //= https://www.rfc-editor.org/rfc/rfc3261#section-8.2.2.1
        //# If the Request-URI uses a scheme not supported by the UAS, it SHOULD
        //# reject the request with a 416 (Unsupported URI Scheme) response.
        Uri::Other(_) => return Err(ParseError::UnsupportedUriScheme),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.11
        //# It is acceptable for an element to reject this request with a 400 Bad
        //# Request.
        Uri::Sip(s) if s.has_headers() => return Err(ParseError::BadRequestUri),
        _ => {}
    }
    Ok(StartLine::Request(RequestLine { method, uri }))
}

/// Phase 2: the start line and typed fields of a message whose extent is known.
pub(crate) fn build(raw: RawHead, body: Vec<u8>, limits: &Limits) -> Result<Message, ParseError> {
    let start = parse_start_line(&raw.start, limits)?;
    let msg = Message {
        start,
        headers: raw.headers,
        body,
    };
    msg.validate(limits)?;
    Ok(msg)
}

/// Whether `data` is nothing but CRLF pairs: a keep-alive.
pub(crate) fn is_crlf_keepalive(data: &[u8]) -> bool {
    !data.is_empty() && data.len().is_multiple_of(2) && data.chunks(2).all(|c| c == b"\r\n")
}

/// Parses a whole message with datagram rules.
pub(crate) fn parse_complete(data: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    if data.len() > limits.max_message_size {
        return Err(ParseError::MessageTooLarge);
    }
    let end = find_head_end(data, 0).ok_or(ParseError::Unterminated)?;
    let raw = split_head(&data[..end], limits)?;
    let rest = &data[end + 4..];
    //= https://www.rfc-editor.org/rfc/rfc3261#section-18.3
    //# In the case of message-oriented transports (such as UDP), if the
    //# message has a Content-Length header field, the message body is
    //# assumed to contain that many bytes.  Any additional bytes in the
    //# transport packet beyond the end of the body MUST be discarded.  If
    //# the transport packet ends before the end of the message body, this is
    //# considered an error.
    let body = match raw.content_length {
        Some(n) if rest.len() < n => return Err(ParseError::BodyTruncated),
        Some(n) if rest.len() > n && !limits.discard_datagram_trailing_octets => {
            return Err(ParseError::TrailingOctets)
        }
        Some(n) => &rest[..n],
        // Without Content-Length (optional on datagrams) the body is the rest.
        None if rest.len() > limits.max_body_size => return Err(ParseError::BodyTooLarge),
        None => rest,
    };
    build(raw, body.to_vec(), limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> Result<RawHead, ParseError> {
        split_head(s.as_bytes(), &Limits::default())
    }

    #[test]
    fn folding_unfolds_to_one_space() {
        let h = head("OPTIONS sip:a@b SIP/2.0\r\nSubject: a\r\n  b\r\n\tc\r\nX: \r\n y").unwrap();
        assert_eq!(h.headers.get(StdHeader::Subject), Some("a b c"));
        assert_eq!(h.headers.get(HeaderName::parse("x").unwrap()), Some("y"));
    }

    #[test]
    fn line_and_byte_refusals() {
        assert_eq!(head("A\nB").unwrap_err(), ParseError::BadLineEnding);
        assert_eq!(head("A\rB").unwrap_err(), ParseError::BadLineEnding);
        assert_eq!(
            head("A\r\nX: a\0b").unwrap_err(),
            ParseError::ControlCharacter
        );
        assert_eq!(
            head("A\r\nX: \u{85}").unwrap_err(),
            ParseError::ControlCharacter
        );
        assert_eq!(
            split_head(b"A\r\nX: \xff", &Limits::default()).unwrap_err(),
            ParseError::NotUtf8
        );
        assert_eq!(
            head("A\r\n folded start").unwrap_err(),
            ParseError::BadStartLine
        );
        assert_eq!(
            head("A\r\nno colon").unwrap_err(),
            ParseError::BadHeaderName
        );
        assert_eq!(
            head("A\r\nBad Name: x").unwrap_err(),
            ParseError::BadHeaderName
        );
        assert_eq!(head("A\r\n: x").unwrap_err(), ParseError::BadHeaderName);
    }

    #[test]
    fn content_length_rules() {
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.3
        //= type=test
        //# This request has a negative value for Content-Length.
        for bad in ["-999", "five", "1 2", "0x10", ""] {
            assert_eq!(
                head(&format!("A\r\nl: {bad}")).unwrap_err(),
                ParseError::BadHeader(StdHeader::ContentLength),
                "{bad}"
            );
        }
        assert_eq!(
            head("A\r\nContent-Length: 13\r\nl: 5").unwrap_err(),
            ParseError::DuplicateHeader(StdHeader::ContentLength)
        );
        assert_eq!(
            head("A\r\nContent-Length: 99999999999999999999999999").unwrap_err(),
            ParseError::BodyTooLarge
        );
        assert_eq!(head("A\r\nL:0").unwrap().content_length, Some(0));
    }

    #[test]
    fn start_lines() {
        let l = Limits::default();
        let p = |s: &str| parse_start_line(s, &l);
        assert!(matches!(p("SIP/2.0 100 "), Ok(StartLine::Response(s)) if s.reason().is_empty()));
        assert_eq!(p("SIP/2.0 100").unwrap_err(), ParseError::BadStartLine);
        assert_eq!(
            p("SIP/2.0 4294967301 x").unwrap_err(),
            ParseError::BadStatusCode
        );
        assert_eq!(p("SIP/2.0 099 x").unwrap_err(), ParseError::BadStatusCode);
        assert_eq!(p("SIP/2.0 700 x").unwrap_err(), ParseError::BadStatusCode);
        assert_eq!(
            p("SIP/2.0 200 <bad>").unwrap_err(),
            ParseError::BadReasonPhrase
        );
        assert_eq!(
            p("SIP/3.0 200 OK").unwrap_err(),
            ParseError::UnsupportedVersion
        );
        assert_eq!(
            p("INVITE sip:a@b SIP/7.0").unwrap_err(),
            ParseError::UnsupportedVersion
        );
        assert_eq!(
            p("INVITE sip:a@b SIP/2").unwrap_err(),
            ParseError::BadStartLine
        );
        assert_eq!(
            p("INVITE sip:a@b HTTP/1.1").unwrap_err(),
            ParseError::BadStartLine
        );
        assert_eq!(
            p("INV(TE sip:a@b SIP/2.0").unwrap_err(),
            ParseError::BadMethod
        );
        assert_eq!(
            p("INVITE  sip:a@b SIP/2.0").unwrap_err(),
            ParseError::BadStartLine
        );
        assert_eq!(
            p("INVITE sip:a@b SIP/2.0 ").unwrap_err(),
            ParseError::BadStartLine
        );
        assert_eq!(p("").unwrap_err(), ParseError::BadStartLine);
        let long = format!("INVITE sip:{}@b SIP/2.0", "a".repeat(300));
        assert_eq!(p(&long).unwrap_err(), ParseError::UriTooLong);
        assert!(p("INVITE tel:+15551234 SIP/2.0").is_ok());
        assert!(p("invite sip:a@b sip/2.0").is_ok());
    }
}
