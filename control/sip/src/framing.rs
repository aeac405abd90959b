//! Framing: a stream decoder for TCP and TLS, and datagram parsing for UDP.
//!
//! Neither does I/O. The shell reads into [`StreamDecoder::push`], takes frames from
//! [`StreamDecoder::next_frame`] until it returns `Ok(None)`, and answers keep-alive pings
//! with a CRLF itself.

use crate::error::ParseError;
use crate::limits::Limits;
use crate::message::Message;
use crate::parse::{build, find_head_end, is_crlf_keepalive, parse_complete, split_head, RawHead};
use crate::refused::Refused;

/// What a UDP datagram held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Datagram {
    /// A message.
    Message(Box<Message>),
    /// Only CRLFs: a keep-alive some UAs send over UDP, needing no answer.
    KeepAlive,
}

/// Parses one UDP datagram. STUN keep-alives (RFC 5626 section 4.4.2) are for the shell to
/// tell apart first: their first byte is 0 or 1, which no SIP message starts with.
pub fn parse_datagram(data: &[u8], limits: &Limits) -> Result<Datagram, ParseError> {
    if is_crlf_keepalive(data) {
        return Ok(Datagram::KeepAlive);
    }
    parse_complete(data, limits).map(|m| Datagram::Message(Box::new(m)))
}

/// What a stream yielded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete, valid message.
    Message(Box<Message>),
    /// A message whose extent was known (a sound header section with a Content-Length)
    /// but that failed a later check. Its bytes were skipped and the stream goes on; a
    /// request deserves the response [`ParseError::status`] names, which
    /// [`Refused::error_response`] builds from what was salvaged of it.
    Invalid(ParseError, Box<Refused>),
    /// A double CRLF: the peer's keep-alive ping, to be answered with a single CRLF.
    ///
    //= https://www.rfc-editor.org/rfc/rfc5626#section-3.5.1
    //# The client periodically sends a double-CRLF (the "ping") then waits to
    //# receive a single CRLF (the "pong").
    Ping,
    /// A single CRLF between messages: a pong to our ping (or stray padding, which RFC
    /// 3261 section 7.5 says to ignore).
    Pong,
}

/// Splits a TCP or TLS byte stream into SIP messages by Content-Length.
///
/// The buffer never holds more than [`Limits::max_message_size`] bytes. An `Err` from
/// [`StreamDecoder::next_frame`] means the framing is lost: the shell closes the
/// connection (after a response, if it can build one from [`StreamDecoder::refused`]),
/// and the decoder returns the same error from then on.
#[derive(Debug)]
pub struct StreamDecoder {
    limits: Limits,
    buf: Vec<u8>,
    /// Where to resume looking for the end of the header section.
    scanned: usize,
    /// The parsed header section of a message whose body is still arriving, with the
    /// offset of its body.
    pending: Option<(RawHead, usize)>,
    failed: Option<ParseError>,
    /// What was salvaged of the message that lost the framing.
    refused: Option<Box<Refused>>,
}

impl StreamDecoder {
    /// A decoder with an empty buffer.
    pub fn new(limits: Limits) -> StreamDecoder {
        StreamDecoder {
            limits,
            buf: Vec::new(),
            scanned: 0,
            pending: None,
            failed: None,
            refused: None,
        }
    }

    /// Appends as much of `data` as fits and returns how much that was. When it is less
    /// than `data.len()`, take frames out and push the rest.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.spare_capacity());
        self.buf.extend_from_slice(&data[..n]);
        n
    }

    /// Bytes buffered and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// How many more bytes [`StreamDecoder::push`] would take now.
    pub fn spare_capacity(&self) -> usize {
        if self.failed.is_some() {
            return 0;
        }
        self.limits.max_message_size.saturating_sub(self.buf.len())
    }

    /// After an `Err` from [`StreamDecoder::next_frame`], what could be salvaged of the
    /// message that lost the framing (the header section so far), for a last answer
    /// before the connection closes.
    pub fn refused(&self) -> Option<&Refused> {
        self.refused.as_deref()
    }

    fn fail(&mut self, e: ParseError) -> Result<Option<Frame>, ParseError> {
        self.failed = Some(e);
        self.refused = Some(Box::new(Refused::salvage(&self.buf, &self.limits)));
        self.buf = Vec::new();
        self.pending = None;
        Err(e)
    }

    fn consume(&mut self, n: usize) {
        self.buf.drain(..n);
        self.scanned = 0;
    }

    /// The next frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ParseError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.pending.is_none() {
            //= https://www.rfc-editor.org/rfc/rfc3261#section-7.5
            //# Implementations processing SIP messages over stream-oriented
            //# transports MUST ignore any CRLF appearing before the start-line
            if self.buf.starts_with(b"\r\n\r\n") {
                self.consume(4);
                return Ok(Some(Frame::Ping));
            }
            if self.buf.starts_with(b"\r\n") {
                // "\r\n\r" may yet become a ping.
                if self.buf.len() == 3 && self.buf[2] == b'\r' {
                    return Ok(None);
                }
                self.consume(2);
                return Ok(Some(Frame::Pong));
            }
            if self.buf == b"\r" {
                return Ok(None);
            }
            let end = match find_head_end(&self.buf, self.scanned) {
                Some(end) => end,
                None => {
                    // Refuse binary garbage (a TLS ClientHello on a TCP port, say) early
                    // rather than after buffering a whole message's worth of it.
                    if self.buf[self.scanned..]
                        .iter()
                        .any(|&b| b < 0x20 && !matches!(b, b'\r' | b'\n' | b'\t') || b == 0x7f)
                    {
                        return self.fail(ParseError::ControlCharacter);
                    }
                    if self.buf.len() >= self.limits.max_message_size {
                        return self.fail(ParseError::MessageTooLarge);
                    }
                    self.scanned = self.buf.len().saturating_sub(3);
                    return Ok(None);
                }
            };
            let raw = match split_head(&self.buf[..end], &self.limits) {
                Ok(raw) => raw,
                Err(e) => return self.fail(e),
            };
            //= https://www.rfc-editor.org/rfc/rfc3261#section-20.14
            //# If a stream-based protocol (such as TCP) is used as transport, the
            //# header field MUST be used.
            let Some(len) = raw.content_length else {
                return self.fail(ParseError::MissingContentLength);
            };
            let body_at = end + 4;
            if body_at + len > self.limits.max_message_size {
                return self.fail(ParseError::MessageTooLarge);
            }
            self.pending = Some((raw, body_at));
        }
        let Some((raw, body_at)) = self.pending.take() else {
            return Ok(None);
        };
        let len = raw.content_length.unwrap_or(0);
        if self.buf.len() < body_at + len {
            self.pending = Some((raw, body_at));
            return Ok(None);
        }
        let body = self.buf[body_at..body_at + len].to_vec();
        let frame = match build(raw, body, &self.limits) {
            Ok(m) => Frame::Message(Box::new(m)),
            Err(e) => Frame::Invalid(
                e,
                Box::new(Refused::salvage(&self.buf[..body_at], &self.limits)),
            ),
        };
        self.consume(body_at + len);
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str = "OPTIONS sip:sbc.example.com SIP/2.0\r\n\
        Via: SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bK776asdhds\r\n\
        Max-Forwards: 70\r\n\
        To: <sip:sbc.example.com>\r\n\
        From: <sip:teams.example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710\r\n\
        CSeq: 63104 OPTIONS\r\n\
        Content-Length: 4\r\n\r\nbody";

    fn drain(d: &mut StreamDecoder) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(f) = d.next_frame().unwrap() {
            out.push(f);
        }
        out
    }

    #[test]
    fn keepalives_between_messages() {
        let input = format!("\r\n\r\n{OPTIONS}\r\n{OPTIONS}\r\n\r\n");
        let mut d = StreamDecoder::new(Limits::default());
        assert_eq!(d.push(input.as_bytes()), input.len());
        let frames = drain(&mut d);
        assert_eq!(frames.len(), 5, "{frames:?}");
        assert_eq!(frames[0], Frame::Ping);
        assert!(matches!(&frames[1], Frame::Message(m) if m.body == b"body"));
        assert_eq!(frames[2], Frame::Pong);
        assert!(matches!(&frames[3], Frame::Message(_)));
        assert_eq!(frames[4], Frame::Ping);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn byte_at_a_time() {
        // A lone CRLF is reported as a pong at once, so that a pong is never held back;
        // the price is that a ping split between reads counts as two pongs.
        let input = format!("{OPTIONS}\r\n{OPTIONS}");
        let mut d = StreamDecoder::new(Limits::default());
        let mut frames = Vec::new();
        for b in input.as_bytes() {
            assert_eq!(d.push(&[*b]), 1);
            frames.extend(drain(&mut d));
        }
        assert_eq!(frames.len(), 3, "{frames:?}");
        assert!(matches!(&frames[0], Frame::Message(m) if m.body == b"body"));
        assert_eq!(frames[1], Frame::Pong);
        assert!(matches!(&frames[2], Frame::Message(_)));
    }

    #[test]
    fn pipelined_in_one_push() {
        let input = OPTIONS.repeat(3);
        let mut d = StreamDecoder::new(Limits::default());
        assert_eq!(d.push(input.as_bytes()), input.len());
        assert_eq!(drain(&mut d).len(), 3);
    }

    #[test]
    fn invalid_message_is_skipped() {
        let bad = OPTIONS.replace("CSeq: 63104 OPTIONS", "CSeq: 63104 INVITE");
        let mut d = StreamDecoder::new(Limits::default());
        d.push(format!("{bad}{OPTIONS}").as_bytes());
        let frames = drain(&mut d);
        assert!(matches!(
            &frames[0],
            Frame::Invalid(ParseError::CSeqMethodMismatch, r) if r.is_answerable()
        ));
        assert!(matches!(frames[1], Frame::Message(_)));
    }

    #[test]
    fn framing_errors_are_sticky() {
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.3
        //= type=test
        //# If a request like this arrives over TCP, the framing error is not
        //# recoverable, and the connection should be closed.
        let mut d = StreamDecoder::new(Limits::default());
        d.push(
            OPTIONS
                .replace("Content-Length: 4", "Content-Length: -4")
                .as_bytes(),
        );
        let e = ParseError::BadHeader(crate::StdHeader::ContentLength);
        assert_eq!(d.next_frame(), Err(e));
        assert_eq!(d.next_frame(), Err(e));
        assert_eq!(d.push(b"more"), 0);

        let mut d = StreamDecoder::new(Limits::default());
        d.push(OPTIONS.replace("Content-Length: 4\r\n", "").as_bytes());
        assert_eq!(d.next_frame(), Err(ParseError::MissingContentLength));

        let mut d = StreamDecoder::new(Limits::default());
        d.push(&[0x16, 0x03, 0x01, 0x02, 0x00]);
        assert_eq!(d.next_frame(), Err(ParseError::ControlCharacter));
    }

    #[test]
    fn buffer_is_bounded() {
        let limits = Limits {
            max_message_size: 1024,
            ..Limits::default()
        };
        let mut d = StreamDecoder::new(limits.clone());
        let junk = vec![b'a'; 4096];
        assert_eq!(d.push(&junk), 1024);
        assert_eq!(d.next_frame(), Err(ParseError::MessageTooLarge));
        let mut d = StreamDecoder::new(limits.clone());
        d.push(
            OPTIONS
                .replace("Content-Length: 4", "Content-Length: 1000")
                .as_bytes(),
        );
        assert_eq!(d.next_frame(), Err(ParseError::MessageTooLarge));
    }

    #[test]
    fn datagrams() {
        let l = Limits::default();
        assert_eq!(parse_datagram(b"\r\n\r\n", &l), Ok(Datagram::KeepAlive));
        assert_eq!(parse_datagram(b"\r\n", &l), Ok(Datagram::KeepAlive));
        assert!(matches!(
            parse_datagram(OPTIONS.as_bytes(), &l),
            Ok(Datagram::Message(_))
        ));
        assert_eq!(parse_datagram(b"", &l), Err(ParseError::Unterminated));
        let short = OPTIONS.replace("Content-Length: 4", "Content-Length: 9");
        assert_eq!(
            parse_datagram(short.as_bytes(), &l),
            Err(ParseError::BodyTruncated)
        );
        let long = format!("{OPTIONS}trailing");
        assert!(parse_datagram(long.as_bytes(), &l).is_ok());
        let strict = Limits {
            discard_datagram_trailing_octets: false,
            ..Limits::default()
        };
        assert_eq!(
            parse_datagram(long.as_bytes(), &strict),
            Err(ParseError::TrailingOctets)
        );
        let no_len = OPTIONS.replace("Content-Length: 4\r\n", "");
        match parse_datagram(no_len.as_bytes(), &l) {
            Ok(Datagram::Message(m)) => assert_eq!(m.body, b"body"),
            other => panic!("{other:?}"),
        }
    }
}
