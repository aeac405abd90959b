//! A hostile corpus: oversized, malformed and abusive inputs must be refused with the
//! right error (and so the right response status), and nothing may panic.

use relay_sip::sdp::{AttributeKind, CryptoError, SdpError, SessionDescription};
use relay_sip::{
    parse_datagram, Datagram, Frame, Limits, Message, ParseError, StdHeader, StreamDecoder,
};

const OPTIONS: &str = "OPTIONS sip:sbc.example.com SIP/2.0\r\n\
    Via: SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bK776asdhds\r\n\
    Max-Forwards: 70\r\n\
    To: <sip:sbc.example.com>\r\n\
    From: <sip:teams.example.com>;tag=1928301774\r\n\
    Call-ID: a84b4c76e66710\r\n\
    CSeq: 63104 OPTIONS\r\n\
    Content-Length: 0\r\n\r\n";

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n";

fn dgram(b: &[u8]) -> Result<Message, ParseError> {
    match parse_datagram(b, &Limits::default())? {
        Datagram::Message(m) => Ok(*m),
        Datagram::KeepAlive => panic!("keep-alive"),
    }
}

/// OPTIONS with the line starting `name:` replaced (or removed if `with` is empty).
fn edit(name: &str, with: &str) -> Vec<u8> {
    let mut out = String::new();
    for line in OPTIONS.split_inclusive("\r\n") {
        if line.starts_with(name) {
            out.push_str(with);
        } else {
            out.push_str(line);
        }
    }
    out.into_bytes()
}

fn insert_before_length(extra: &str) -> Vec<u8> {
    OPTIONS
        .replace("Content-Length:", &format!("{extra}Content-Length:"))
        .into_bytes()
}

fn expect(input: &[u8], want: ParseError, status: u16) {
    let got = dgram(input);
    assert_eq!(got.as_ref().err(), Some(&want), "{got:?}");
    assert_eq!(want.status(), status);
    // The reason phrase is made of fixed words, never of the input.
    let reason = want.reason();
    assert!(!reason.contains("sbc.example.com") && !reason.contains("EVIL"));
}

#[test]
fn baseline_parses() {
    let m = dgram(OPTIONS.as_bytes()).unwrap();
    assert_eq!(m.status(), None);
}

#[test]
fn oversized() {
    let big = format!(
        "{}X-Pad: {}\r\n\r\n",
        OPTIONS.trim_end(),
        "a".repeat(70 * 1024)
    );
    expect(big.as_bytes(), ParseError::MessageTooLarge, 513);
    expect(
        &insert_before_length(&format!("X-Long: {}\r\n", "b".repeat(5000))),
        ParseError::HeaderValueTooLong,
        400,
    );
    expect(
        &insert_before_length(&format!("X-{}: 1\r\n", "N".repeat(40))),
        ParseError::HeaderNameTooLong,
        400,
    );
    expect(
        &insert_before_length(&"X-H: EVIL\r\n".repeat(100)),
        ParseError::TooManyHeaders,
        513,
    );
    let long_uri = OPTIONS.replace(
        "OPTIONS sip:sbc.example.com",
        &format!("OPTIONS sip:{}@sbc.example.com", "u".repeat(300)),
    );
    expect(long_uri.as_bytes(), ParseError::UriTooLong, 414);
    expect(
        &insert_before_length(&"Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\n".repeat(70)),
        ParseError::TooManyVias,
        483,
    );
    let commas = format!("Via: {}\r\n", vec!["SIP/2.0/UDP h"; 80].join(","));
    expect(&insert_before_length(&commas), ParseError::TooManyVias, 483);
    // A folded value grows line by line and is still bounded.
    let folded = format!("X-Fold: a\r\n{}", " b\r\n".repeat(3000));
    expect(
        &insert_before_length(&folded),
        ParseError::HeaderValueTooLong,
        400,
    );
}

#[test]
fn bad_content_length() {
    for (value, want, status) in [
        ("-1", ParseError::BadHeader(StdHeader::ContentLength), 400),
        ("five", ParseError::BadHeader(StdHeader::ContentLength), 400),
        ("0x10", ParseError::BadHeader(StdHeader::ContentLength), 400),
        ("1 1", ParseError::BadHeader(StdHeader::ContentLength), 400),
        ("+5", ParseError::BadHeader(StdHeader::ContentLength), 400),
        ("16385", ParseError::BodyTooLarge, 413),
        ("18446744073709551616", ParseError::BodyTooLarge, 413),
        ("10", ParseError::BodyTruncated, 400),
    ] {
        expect(
            &edit("Content-Length", &format!("Content-Length: {value}\r\n")),
            want,
            status,
        );
    }
    expect(
        &insert_before_length("l: 0\r\n"),
        ParseError::DuplicateHeader(StdHeader::ContentLength),
        400,
    );
    // On a stream a missing Content-Length loses the framing.
    let mut d = StreamDecoder::new(Limits::default());
    d.push(&edit("Content-Length", ""));
    assert_eq!(d.next_frame(), Err(ParseError::MissingContentLength));
}

#[test]
fn missing_headers() {
    for (prefix, h) in [
        ("Via", StdHeader::Via),
        ("Max-Forwards", StdHeader::MaxForwards),
        ("To", StdHeader::To),
        ("From", StdHeader::From),
        ("Call-ID", StdHeader::CallId),
        ("CSeq", StdHeader::CSeq),
    ] {
        expect(&edit(prefix, ""), ParseError::MissingHeader(h), 400);
    }
    expect(
        &edit("CSeq", "CSeq: 1 INVITE\r\n"),
        ParseError::CSeqMethodMismatch,
        400,
    );
    expect(
        &edit("CSeq", "CSeq: 1 options\r\n"),
        ParseError::CSeqMethodMismatch,
        400,
    );
}

#[test]
fn bytes_that_do_not_belong() {
    let mut bad = OPTIONS.as_bytes().to_vec();
    let at = OPTIONS.find("a84b").unwrap();
    bad[at] = 0xff;
    expect(&bad, ParseError::NotUtf8, 400);
    expect(
        &edit("Call-ID", "Call-ID: a\0b\r\n"),
        ParseError::ControlCharacter,
        400,
    );
    expect(
        &edit("Call-ID", "Call-ID: a\x1bb\r\n"),
        ParseError::ControlCharacter,
        400,
    );
    expect(
        &edit("Call-ID", "Call-ID: a\rb\r\n"),
        ParseError::BadLineEnding,
        400,
    );
    expect(
        OPTIONS.replace("\r\n", "\n").as_bytes(),
        ParseError::Unterminated,
        400,
    );
    expect(
        OPTIONS.replacen("\r\n", "\n", 1).as_bytes(),
        ParseError::BadLineEnding,
        400,
    );
    // A body is opaque: any bytes are fine there.
    let body = [0u8, 0xff, b'\r', 0x7f];
    let mut m = OPTIONS
        .replace("Content-Length: 0", "Content-Length: 4")
        .into_bytes();
    m.extend_from_slice(&body);
    assert_eq!(dgram(&m).unwrap().body, body);
    // Header injection through a builder is impossible.
    let req = dgram(OPTIONS.as_bytes()).unwrap();
    assert!(Message::response_to(&req, 200, "OK\r\nVia: x").is_err());
    assert!(relay_sip::Header::new(StdHeader::Subject, "x\r\nVia: y").is_err());
}

#[test]
fn huge_and_bad_sdp() {
    let l = Limits::default();
    let huge = format!("{SDP}{}", "a=x-pad:yyyyyyyyyyyyyyyy\r\n".repeat(2000));
    assert_eq!(
        SessionDescription::parse(huge.as_bytes(), &l),
        Err(SdpError::TooLarge)
    );
    assert_eq!(SdpError::TooLarge.status(), 413);
    // In a message, the body limit refuses it first.
    let msg = format!(
        "{}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{huge}",
        OPTIONS.trim_end_matches("Content-Length: 0\r\n\r\n"),
        huge.len()
    );
    expect(msg.as_bytes(), ParseError::BodyTooLarge, 413);
    let many_lines = format!("{SDP}{}", "a=x\r\n".repeat(600));
    assert_eq!(
        SessionDescription::parse(many_lines.as_bytes(), &l),
        Err(SdpError::TooManyLines)
    );
    let key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
    for (line, want) in [
        (
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%%%%".to_owned(),
            CryptoError::BadBase64,
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^99"),
            CryptoError::BadLifetime,
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|1:200"),
            CryptoError::BadMki,
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|99999999999999999999999:4"),
            CryptoError::BadMki,
        ),
        (
            format!("a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{key}"),
            CryptoError::WrongKeyLength,
        ),
        (
            format!("a=crypto:99999999999 AES_CM_128_HMAC_SHA1_80 inline:{key}"),
            CryptoError::BadTag,
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 key:{key}"),
            CryptoError::NotInline,
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key} WSH=1"),
            CryptoError::BadSessionParam,
        ),
        (
            format!(
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}",
                "QUFB".repeat(1000)
            ),
            CryptoError::BadBase64,
        ),
        (
            format!(
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 {}",
                vec![format!("inline:{key}"); 20].join(";")
            ),
            CryptoError::TooManyKeys,
        ),
        ("a=crypto:1".to_owned(), CryptoError::Malformed),
    ] {
        let sdp = format!("{SDP}{line}\r\n");
        let mut limits = Limits::default();
        limits.max_sdp_line_len = 8192;
        assert_eq!(
            SessionDescription::parse(sdp.as_bytes(), &limits),
            Err(SdpError::BadCrypto(want)),
            "{line}"
        );
    }
    assert_eq!(
        SessionDescription::parse(format!("{SDP}a=rtcp:x\r\n").as_bytes(), &l),
        Err(SdpError::BadAttribute(AttributeKind::Rtcp))
    );
}

#[test]
fn abusive_streams() {
    // Slow loris: header bytes without end. The buffer stops at one maximum message.
    let mut d = StreamDecoder::new(Limits::default());
    let line = b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut taken = 0;
    let mut result = Ok(None);
    for _ in 0..2000 {
        taken += d.push(line);
        result = d.next_frame();
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(ParseError::MessageTooLarge));
    assert!(taken <= Limits::default().max_message_size);
    // A flood of keep-alives is answered one by one and buffers nothing.
    let mut d = StreamDecoder::new(Limits::default());
    d.push(&b"\r\n\r\n".repeat(1000));
    let mut pings = 0;
    while let Ok(Some(Frame::Ping)) = d.next_frame() {
        pings += 1;
    }
    assert_eq!(pings, 1000);
    assert_eq!(d.buffered(), 0);
    // A bad message between good ones is skipped; the good ones still arrive.
    let bad = String::from_utf8(edit("CSeq", "CSeq: x\r\n")).unwrap();
    let mut d = StreamDecoder::new(Limits::default());
    d.push(format!("{OPTIONS}{bad}{OPTIONS}").as_bytes());
    let frames: Vec<_> = std::iter::from_fn(|| d.next_frame().unwrap()).collect();
    assert_eq!(frames.len(), 3);
    assert!(matches!(
        &frames[1],
        Frame::Invalid(ParseError::BadHeader(StdHeader::CSeq), r) if r.cseq() == Some("x")
    ));
}

#[test]
fn deep_and_wide_values() {
    let deep = format!("Retry-After: 5 {}{}\r\n", "(".repeat(500), ")".repeat(500));
    expect(
        &insert_before_length(&deep),
        ParseError::BadHeader(StdHeader::RetryAfter),
        400,
    );
    let params = format!("To: <sip:a@b>{}\r\n", ";p".repeat(1000));
    assert!(
        dgram(&edit("To", &params)).is_ok(),
        "many parameters, within the value limit"
    );
    let params = format!("To: <sip:a@b>{}\r\n", ";p".repeat(3000));
    expect(&edit("To", &params), ParseError::HeaderValueTooLong, 400);
    let contacts = format!("Contact: {}\r\n", vec!["<sip:a@b>"; 300].join(","));
    assert!(dgram(&insert_before_length(&contacts)).is_ok());
    expect(
        &insert_before_length("Contact: *, <sip:a@b>\r\n"),
        ParseError::BadHeader(StdHeader::Contact),
        400,
    );
    expect(
        &insert_before_length("Contact: *\r\nContact: <sip:a@b>\r\n"),
        ParseError::BadHeader(StdHeader::Contact),
        400,
    );
    expect(
        &insert_before_length("Session-Expires: 99999999999\r\n"),
        ParseError::BadHeader(StdHeader::SessionExpires),
        400,
    );
    expect(
        &insert_before_length("Require: 100rel,,timer\r\n"),
        ParseError::BadHeader(StdHeader::Require),
        400,
    );
    expect(
        &insert_before_length("Refer-To: <sip:a@b\r\n"),
        ParseError::BadHeader(StdHeader::ReferTo),
        400,
    );
    expect(
        &insert_before_length("Reason: SIP;cause=99999999\r\n"),
        ParseError::BadHeader(StdHeader::Reason),
        400,
    );
}
