//! Writing messages back to bytes, in one canonical form: long header names, `Name: value`
//! with one space, CRLF line endings, and a Content-Length equal to the body's length.

use std::fmt;

use crate::message::{Message, StartLine};

impl fmt::Display for StartLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartLine::Request(r) => write!(f, "{} {} SIP/2.0", r.method, r.uri),
            StartLine::Response(s) => write!(f, "SIP/2.0 {:03} {}", s.code(), s.reason()),
        }
    }
}

impl Message {
    /// Appends the message to `out`.
    ///
    //= https://www.rfc-editor.org/rfc/rfc3261#section-20.14
    //# The Content-Length header field indicates the size of the message-
    //# body, in decimal number of octets, sent to the recipient.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.start.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        for h in self.headers.iter() {
            out.extend_from_slice(h.name().as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
    }

    /// The message as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        self.write_to(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::{Limits, Message, Method, StdHeader};

    const INVITE: &str = "INVITE sip:+15551234567@sbc.example.com;user=phone SIP/2.0\r\n\
        v: SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bK74bf9\r\n\
        v: SIP/2.0/TLS 192.0.2.7:5061;branch=z9hG4bK1111;received=192.0.2.7\r\n\
        Max-Forwards: 70\r\n\
        f: \"Alice\" <sip:alice@teams.example.com>;tag=9fxced76sl\r\n\
        t: <sip:+15551234567@sbc.example.com;user=phone>\r\n\
        i: 3848276298220188511@teams.example.com\r\n\
        CSeq: 1 INVITE\r\n\
        Timestamp: 54\r\n\
        m: <sip:alice@192.0.2.1:5061;transport=tls>\r\n\
        c: application/sdp\r\n\
        l: 3\r\n\r\nv=0";

    #[test]
    fn canonical_form() {
        let m = Message::parse(INVITE.as_bytes(), &Limits::default()).unwrap();
        let text = String::from_utf8(m.to_bytes()).unwrap();
        assert!(
            text.starts_with("INVITE sip:+15551234567@sbc.example.com;user=phone SIP/2.0\r\nVia: ")
        );
        assert!(text.contains("\r\nCall-ID: 3848276298220188511@teams.example.com\r\n"));
        assert!(text.ends_with("Content-Type: application/sdp\r\nContent-Length: 3\r\n\r\nv=0"));
        assert_eq!(
            Message::parse(text.as_bytes(), &Limits::default()).unwrap(),
            m
        );
    }

    #[test]
    fn response_to_copies_what_8_2_6_2_says() {
        //= https://www.rfc-editor.org/rfc/rfc3261#section-8.2.6.2
        //= type=test
        //# The Via header field values in the response MUST equal the Via
        //# header field values in the request and MUST maintain the same
        //# ordering.
        let req = Message::parse(INVITE.as_bytes(), &Limits::default()).unwrap();
        let mut resp = Message::response_to(&req, 180, "Ringing").unwrap();
        let vias: Vec<_> = resp.headers.get_all(StdHeader::Via).collect();
        let req_vias: Vec<_> = req.headers.get_all(StdHeader::Via).collect();
        assert_eq!(vias, req_vias);
        for h in [
            StdHeader::From,
            StdHeader::To,
            StdHeader::CallId,
            StdHeader::CSeq,
        ] {
            assert_eq!(resp.headers.get(h), req.headers.get(h));
        }
        assert!(resp.headers.get(StdHeader::Timestamp).is_none());
        assert!(resp.headers.get(StdHeader::Contact).is_none());
        resp.add_to_tag("8321234356").unwrap();
        assert_eq!(resp.to_addr().unwrap().tag(), Some("8321234356"));
        assert_eq!(resp.add_to_tag("x"), Err(crate::BuildError::ToTagPresent));
        let bytes = resp.to_bytes();
        assert!(bytes.starts_with(b"SIP/2.0 180 Ringing\r\n"));
        let back = Message::parse(&bytes, &Limits::default()).unwrap();
        assert_eq!(back, resp);

        let trying = Message::response_to(&req, 100, "Trying").unwrap();
        assert_eq!(trying.headers.get(StdHeader::Timestamp), Some("54"));

        assert_eq!(
            Message::response_to(&req, 99, "x").unwrap_err(),
            crate::BuildError::BadStatusCode
        );
        assert_eq!(
            Message::response_to(&req, 200, "OK\r\nX: y").unwrap_err(),
            crate::BuildError::BadReasonPhrase
        );
        assert_eq!(
            Message::response_to(&resp, 200, "OK").unwrap_err(),
            crate::BuildError::NotARequest
        );
        let mut ack = req.clone();
        if let crate::StartLine::Request(r) = &mut ack.start {
            r.method = Method::Ack;
        }
        assert_eq!(
            Message::response_to(&ack, 200, "OK").unwrap_err(),
            crate::BuildError::AckHasNoResponse
        );
    }
}
