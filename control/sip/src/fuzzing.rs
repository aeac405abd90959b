//! The bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs`), kept here so that
//! `tests/fuzz_corpus.rs` replays the corpus on stable Rust in CI.
//!
//! Beyond "no panic", each checks what must hold for every input the parsers accept:
//! every typed accessor succeeds on a parsed message, the canonical form parses back to
//! an equal value, the stream decoder never holds more than one maximum message nor gets
//! stuck, and every error's reason phrase is a valid Reason-Phrase.

use crate::sdp::SessionDescription;
use crate::{
    parse_datagram, Datagram, Frame, Limits, Message, ParseError, Refused, StatusLine,
    StreamDecoder,
};

/// Limits for parsing a canonical form again: writing expands compact header names, adds
/// a Content-Length a datagram may have lacked, and may lengthen an IPv6 literal or a
/// base64 key, so it may not fit the original limits.
fn relaxed(l: &Limits) -> Limits {
    Limits {
        max_message_size: l.max_message_size * 2 + 1024,
        // The longest long form of a compact name is 19 bytes (Request-Disposition).
        max_header_name_len: l.max_header_name_len.max(32),
        max_headers: l.max_headers + 1,
        max_uri_len: l.max_uri_len * 2,
        max_sdp_line_len: l.max_sdp_line_len * 2,
        max_body_size: l.max_body_size * 2,
        ..l.clone()
    }
}

fn check_error(e: ParseError) {
    assert!(
        StatusLine::new(e.status(), &e.reason()).is_ok(),
        "{e:?} gives an unusable response"
    );
}

/// The answer to a refused message, when one can be built, is one message whose header
/// section holds no control character but its CRLFs and no empty line before its end:
/// nothing salvaged from the input can break a line or end the header section early.
fn check_refused(refused: &Refused, e: ParseError) {
    let Ok(response) = refused.error_response(e, "fuzz.example", "fuzz") else {
        return;
    };
    assert_eq!(response.status(), Some(e.status()));
    let bytes = response.to_bytes();
    let head = bytes
        .strip_suffix(b"\r\n\r\n")
        .expect("ends with an empty line");
    assert!(
        !head.windows(4).any(|w| w == b"\r\n\r\n"),
        "an early empty line"
    );
    for (i, &b) in head.iter().enumerate() {
        let line_end = (b == b'\r' && head.get(i + 1) == Some(&b'\n'))
            || (b == b'\n' && i > 0 && head[i - 1] == b'\r');
        assert!(
            line_end || b == b'\t' || (b >= 0x20 && b != 0x7f),
            "control character {b:#x} in an answer"
        );
    }
}

fn check_message(m: &Message, limits: &Limits) {
    let relaxed = relaxed(limits);
    m.validate(&relaxed).expect("a parsed message validates");
    m.vias().expect("vias");
    m.top_via().expect("top via");
    m.from_addr().expect("from");
    m.to_addr().expect("to");
    m.call_id().expect("call-id");
    m.cseq().expect("cseq");
    m.max_forwards().expect("max-forwards");
    m.contact().expect("contact");
    m.require().expect("require");
    m.supported().expect("supported");
    m.session_expires().expect("session-expires");
    m.reasons().expect("reason");
    m.retry_after().expect("retry-after");
    m.refer_to().expect("refer-to");
    m.routes().expect("route");
    m.record_routes().expect("record-route");
    let again = Message::parse(&m.to_bytes(), &relaxed).expect("the canonical form parses");
    assert_eq!(&again, m, "the canonical form parses to the same message");
    if m.content_type()
        .expect("content-type")
        .is_some_and(|t| t.is_sdp())
    {
        sdp_parse_input(&m.body);
    }
    if m.is_request() && m.method() != Some(&crate::Method::Ack) {
        let mut r = Message::response_to(m, 200, "OK").expect("response to a parsed request");
        if r.to_addr().expect("to").tag().is_none() {
            r.add_to_tag("fuzz").expect("add tag");
        }
        let back = Message::parse(&r.to_bytes(), &relaxed).expect("the response parses");
        assert_eq!(back, r);
    }
}

/// Feeds `data` to the SIP parser. Byte 0 picks the mode: even for one datagram, odd for
/// a stream pushed in chunks of `(byte0 >> 1) + 1` bytes; bit 7 selects small limits so
/// that the limit checks are reached quickly.
pub fn sip_parse_input(data: &[u8]) {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let limits = if selector & 0x80 != 0 {
        Limits {
            max_message_size: 1024,
            max_headers: 12,
            max_header_name_len: 12,
            max_header_value_len: 128,
            max_uri_len: 48,
            max_body_size: 256,
            max_vias: 3,
            max_sdp_lines: 16,
            max_sdp_line_len: 64,
            max_media_sections: 2,
            discard_datagram_trailing_octets: selector & 0x40 != 0,
        }
    } else {
        Limits::default()
    };
    if selector & 1 == 0 {
        match parse_datagram(input, &limits) {
            Ok(Datagram::Message(m)) => check_message(&m, &limits),
            Ok(Datagram::KeepAlive) => {}
            Err(e) => {
                check_error(e);
                check_refused(&Refused::salvage(input, &limits), e);
            }
        }
        return;
    }
    let chunk = usize::from((selector & 0x7f) >> 1) + 1;
    let mut decoder = StreamDecoder::new(limits.clone());
    let mut rest = input;
    loop {
        let n = decoder.push(&rest[..chunk.min(rest.len())]);
        rest = &rest[n..];
        let mut progressed = n > 0;
        loop {
            match decoder.next_frame() {
                Ok(Some(Frame::Message(m))) => check_message(&m, &limits),
                Ok(Some(Frame::Invalid(e, refused))) => {
                    check_error(e);
                    check_refused(&refused, e);
                }
                Ok(Some(Frame::Ping | Frame::Pong)) => {}
                Ok(None) => break,
                Err(e) => {
                    check_error(e);
                    check_refused(decoder.refused().expect("salvaged on failure"), e);
                    assert_eq!(decoder.next_frame(), Err(e), "errors are sticky");
                    assert_eq!(decoder.push(b"x"), 0, "a failed decoder takes no bytes");
                    return;
                }
            }
            progressed = true;
        }
        assert!(decoder.buffered() <= limits.max_message_size);
        if rest.is_empty() {
            return;
        }
        assert!(
            progressed,
            "decoder stuck with {} bytes",
            decoder.buffered()
        );
    }
}

/// Feeds `data` to the SDP parser; an accepted SDP must survive writing and parsing.
pub fn sdp_parse_input(data: &[u8]) {
    let limits = Limits::default();
    match SessionDescription::parse(data, &limits) {
        Ok(sd) => {
            let again = SessionDescription::parse(&sd.to_bytes(), &relaxed(&limits))
                .expect("the canonical SDP parses");
            assert_eq!(
                again, sd,
                "the canonical SDP parses to the same description"
            );
        }
        Err(e) => {
            let status = e.status();
            assert!(status == 400 || status == 413);
        }
    }
}
