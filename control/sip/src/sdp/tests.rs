use super::*;

fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

fn parse(s: &str) -> Result<SessionDescription, SdpError> {
    SessionDescription::parse(&crlf(s), &Limits::default())
}

const RFC4566_EXAMPLE: &str = "v=0
o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5
s=SDP Seminar
i=A Seminar on the session description protocol
u=http://www.example.com/seminars/sdp.pdf
e=j.doe@example.com (Jane Doe)
c=IN IP4 224.2.17.12/127
t=2873397496 2873404696
a=recvonly
m=audio 49170 RTP/AVP 0
m=video 51372 RTP/AVP 99
a=rtpmap:99 h263-1998/90000
";

#[test]
fn rfc4566_example() {
    //= https://www.rfc-editor.org/rfc/rfc4566#section-5
    //= type=test
    //# An example SDP description is:
    let sd = parse(RFC4566_EXAMPLE).unwrap();
    assert_eq!(sd.origin.username.as_str(), "jdoe");
    assert_eq!(sd.origin.session_id, 2890844526);
    let c = sd.connection.as_ref().unwrap();
    assert_eq!(c.ttl, Some(127));
    assert_eq!(c.address.ip(), Some("224.2.17.12".parse().unwrap()));
    assert_eq!(sd.media.len(), 2);
    assert_eq!(sd.media[1].proto, Proto::RtpAvp);
    assert_eq!(sd.media_direction(0), Some(Direction::RecvOnly));
    assert_eq!(sd.to_bytes(), crlf(RFC4566_EXAMPLE));
    // LF line endings are tolerated too.
    assert_eq!(
        SessionDescription::parse(RFC4566_EXAMPLE.as_bytes(), &Limits::default()).unwrap(),
        sd
    );
}

const TEAMS_OFFER: &str = "v=0
o=- 0 0 IN IP4 52.112.0.1
s=session
c=IN IP4 52.112.0.1
b=CT:10000000
t=0 0
m=audio 49152 RTP/SAVP 104 9 111 18 0 8 97 101 13 118
c=IN IP4 52.112.0.1
a=rtcp:49153
a=ice-ufrag:Xy2l
a=ice-pwd:9lrvEHsYmDJNyhvM5pMjkfF2
a=candidate:1 1 UDP 2130706431 52.112.0.1 49152 typ host
a=candidate:1 2 UDP 2130705918 52.112.0.1 49153 typ host
a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31|1:1
a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31
a=sendrecv
a=rtpmap:104 SILK/16000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=rtcp-mux
a=ptime:20
";

#[test]
fn offer_with_sdes_and_ice_can_be_rewritten() {
    let mut sd = parse(TEAMS_OFFER).unwrap();
    let m = &sd.media[0];
    assert!(m.proto.is_srtp());
    assert_eq!(m.rtcp().unwrap().port, 49153);
    assert!(m.rtcp_mux());
    assert_eq!(m.cryptos().count(), 2);
    assert_eq!(m.attributes.iter().filter(|a| a.is_ice()).count(), 4);
    assert_eq!(sd.to_bytes(), crlf(TEAMS_OFFER));

    // What a relay does: its own address and port, no ICE, its own key.
    let relay: IpAddr = "203.0.113.5".parse().unwrap();
    sd.connection = Some(Connection::new(relay));
    let m = &mut sd.media[0];
    m.connection = None;
    m.port = 40000;
    m.attributes.retain(|a| !a.is_ice());
    m.attributes
        .retain(|a| !matches!(a, Attribute::Crypto(c) if c.tag != 2));
    for a in &mut m.attributes {
        match a {
            Attribute::Crypto(c) => {
                c.keys = vec![KeyParam {
                    key_salt: KeySalt::new(vec![0x42; 30]),
                    lifetime: None,
                    mki: None,
                }]
            }
            Attribute::Rtcp(r) => r.port = 40001,
            _ => {}
        }
    }
    let out = String::from_utf8(sd.to_bytes()).unwrap();
    assert!(out.contains("c=IN IP4 203.0.113.5\r\nb=CT:10000000"));
    assert!(out.contains("m=audio 40000 RTP/SAVP 104"));
    assert!(!out.contains("candidate") && !out.contains("ice-"));
    assert!(out.contains(
        "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC\r\n"
    ));
    assert_eq!(
        SessionDescription::parse(out.as_bytes(), &Limits::default()).unwrap(),
        sd
    );
}

#[test]
fn debug_hides_secrets() {
    let sd = parse(TEAMS_OFFER).unwrap();
    let dbg = format!("{sd:?}");
    assert!(
        !dbg.contains("9lrvEHsYmDJNyhvM5pMjkfF2"),
        "ice-pwd in Debug"
    );
    assert!(!dbg.contains("WVNfX19z"), "key in Debug");
    assert!(dbg.contains("redacted"));
}

#[test]
fn rfc4475_bodies() {
    // The SDP of RFC 4475 section 3.1.1.1 and its kin.
    let sd = parse(
        "v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.3
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
",
    )
    .unwrap();
    assert_eq!(sd.media[0].formats.len(), 2);
    // Section 3.1.1.8's trailing INVITE carries "m =video", which is malformed.
    assert_eq!(
        parse("v=0\no=- 1 1 IN IP4 192.0.2.15\ns=-\nc=IN IP4 192.0.2.15\nt=0 0\nm =video 3227 RTP/AVP 31\n"),
        Err(SdpError::MalformedLine)
    );
    // Section 3.1.2.18's body has no s= and no t=.
    assert_eq!(
        parse("v=0\no=mhandley 29739 7272939 IN IP4 192.0.2.1\nc=IN IP4 192.0.2.1\nm=audio 49217 RTP/AVP 0 12\n"),
        Err(SdpError::Missing(LineType::S))
    );
}

#[test]
fn refusals() {
    let base = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n";
    let with = |extra: &str| parse(&format!("{base}{extra}"));
    let cases: Vec<(String, SdpError)> = vec![
        ("v=1\n".into(), SdpError::BadVersion),
        (
            "o=- 1 1 IN IP4 192.0.2.1\n".into(),
            SdpError::Missing(LineType::V),
        ),
        ("v=0\ns=-\n".into(), SdpError::Missing(LineType::O)),
        (
            "v=0\no=- 1 1 IN IP4 192.0.2.1\nt=0 0\n".into(),
            SdpError::Missing(LineType::S),
        ),
        (
            "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nm=audio 1 RTP/AVP 0\n".into(),
            SdpError::Missing(LineType::T),
        ),
        (
            "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\nm=audio 1 RTP/AVP 0\n".into(),
            SdpError::MissingConnection,
        ),
        (
            "v=0\no=- x 1 IN IP4 192.0.2.1\ns=-\nt=0 0\n".into(),
            SdpError::BadValue(LineType::O),
        ),
        (
            "v=0\no=- 1 1 ATM NSAP x\ns=-\nt=0 0\n".into(),
            SdpError::BadValue(LineType::O),
        ),
        (
            "v=0\no=- 1 1 IN IP4 ::1\ns=-\nt=0 0\n".into(),
            SdpError::BadValue(LineType::O),
        ),
        (
            "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=\nt=0 0\n".into(),
            SdpError::BadValue(LineType::S),
        ),
        (
            "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nr=1 2\nt=0 0\n".into(),
            SdpError::Misplaced(LineType::R),
        ),
    ];
    for (sdp, want) in cases {
        assert_eq!(parse(&sdp), Err(want), "{sdp}");
    }
    for (extra, want) in [
        ("x=unknown\n", SdpError::UnknownType),
        ("A=upper\n", SdpError::MalformedLine),
        ("a\n", SdpError::MalformedLine),
        ("\na=x\n", SdpError::MalformedLine),
        ("v=0\n", SdpError::Misplaced(LineType::V)),
        ("c=IN IP4 192.0.2.2\n", SdpError::Misplaced(LineType::C)),
        (
            "m=audio 1 RTP/AVP 0\nt=0 0\n",
            SdpError::Misplaced(LineType::T),
        ),
        (
            "m=audio 1 RTP/AVP 0\nc=IN IP4 1.2.3.4\nc=IN IP4 1.2.3.4\n",
            SdpError::Misplaced(LineType::C),
        ),
        ("m=audio 70000 RTP/AVP 0\n", SdpError::BadValue(LineType::M)),
        ("m=audio 1 RTP/AVP\n", SdpError::BadValue(LineType::M)),
        ("m=audio 1 RTP/AVP 128\n", SdpError::BadValue(LineType::M)),
        ("m=audio  1 RTP/AVP 0\n", SdpError::BadValue(LineType::M)),
        ("m=audio 1/0 RTP/AVP 0\n", SdpError::BadValue(LineType::M)),
        (
            "m=image 1 udptl t38\nc=IN IP6 192.0.2.1\n",
            SdpError::BadValue(LineType::C),
        ),
        ("b=AS\n", SdpError::BadValue(LineType::B)),
        ("a=rtcp\n", SdpError::BadAttribute(AttributeKind::Rtcp)),
        (
            "a=rtcp:99999\n",
            SdpError::BadAttribute(AttributeKind::Rtcp),
        ),
        (
            "a=rtcp:9 IN IP4\n",
            SdpError::BadAttribute(AttributeKind::Rtcp),
        ),
        (
            "a=rtcp-mux:1\n",
            SdpError::BadAttribute(AttributeKind::RtcpMux),
        ),
        (
            "a=sendrecv:x\n",
            SdpError::BadAttribute(AttributeKind::Direction),
        ),
        ("a=ice-ufrag\n", SdpError::BadAttribute(AttributeKind::Ice)),
        ("a=ice-lite:1\n", SdpError::BadAttribute(AttributeKind::Ice)),
        ("a=x:\n", SdpError::BadAttribute(AttributeKind::Generic)),
        ("a=:x\n", SdpError::BadAttribute(AttributeKind::Generic)),
        ("a=crypto\n", SdpError::BadCrypto(CryptoError::Malformed)),
        (
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=\n",
            SdpError::BadCrypto(CryptoError::WrongKeyLength),
        ),
        ("a=x\0y\n", SdpError::ControlCharacter),
        ("a=x\ry\n", SdpError::ControlCharacter),
    ] {
        assert_eq!(with(extra), Err(want), "{extra:?}");
    }
    assert_eq!(
        SessionDescription::parse(b"v=0\xff", &Limits::default()),
        Err(SdpError::NotUtf8)
    );
}

#[test]
fn limits() {
    let base = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n";
    let l = Limits::default();
    let huge = format!("{base}{}", "a=x\n".repeat(l.max_body_size / 4));
    assert_eq!(parse(&huge), Err(SdpError::TooLarge));
    let many = format!("{base}{}", "a=x\n".repeat(l.max_sdp_lines));
    assert_eq!(parse(&many), Err(SdpError::TooManyLines));
    let long = format!("{base}a=x:{}\n", "y".repeat(l.max_sdp_line_len));
    assert_eq!(parse(&long), Err(SdpError::LineTooLong));
    let media = format!(
        "{base}{}",
        "m=audio 1 RTP/AVP 0\n".repeat(l.max_media_sections + 1)
    );
    assert_eq!(parse(&media), Err(SdpError::TooManyMedia));
    assert!(parse(&format!(
        "{base}{}",
        "m=audio 1 RTP/AVP 0\n".repeat(l.max_media_sections)
    ))
    .is_ok());
}

#[test]
fn addresses_and_misc_lines() {
    let sd = parse(
        "v=0
o=alice 1 2 IN IP6 2001:db8::1
s= 
p=+1 617 555-6011
c=IN IP6 ff15::101/3
b=AS:128
t=0 0
r=7d 1h 0 25h
z=2882844526 -1h
k=prompt
a=tool:x
m=audio 5004/2 RTP/AVP 0
i=voice
c=IN IP4 host.example.com
b=TIAS:64000
k=prompt
a=rtcp:5010 IN IP6 2001:db8::2
m=image 0 udptl t38
m=application 9 UDP/BFCP *
",
    )
    .unwrap();
    assert_eq!(sd.session_name.as_str(), " ");
    assert_eq!(sd.connection.as_ref().unwrap().count, Some(3));
    assert_eq!(sd.timings[0].repeats.len(), 1);
    assert_eq!(sd.media[0].port_count, Some(2));
    assert!(matches!(
        sd.media[0].connection.as_ref().unwrap().address,
        Address::Domain(AddrType::Ip4, _)
    ));
    assert_eq!(sd.media[1].proto, Proto::Udptl);
    assert!(matches!(sd.media[2].proto, Proto::Other(_)));
    assert_eq!(sd.media_connection(1), sd.connection.as_ref());
    let again = SessionDescription::parse(&sd.to_bytes(), &Limits::default()).unwrap();
    assert_eq!(again, sd);
}
