//! The parser tests of RFC 4475 (SIP Torture Test Messages), section 3.1 and the parts of
//! 3.3 and 3.4 that are about syntax, written out with LF for CRLF. Each message is parsed
//! as the UDP datagram the RFC says it arrived in; a refused one must be refused with the
//! right error.

use crate::{
    parse_datagram, Contact, Datagram, Limits, Message, Method, ParseError, StdHeader, Transport,
    Uri,
};

fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

fn parse_bytes(b: &[u8]) -> Result<Message, ParseError> {
    parse_with(b, &Limits::default())
}

fn parse_with(b: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    match parse_datagram(b, limits)? {
        Datagram::Message(m) => Ok(*m),
        Datagram::KeepAlive => panic!("keep-alive"),
    }
}

fn parse(s: &str) -> Result<Message, ParseError> {
    parse_bytes(&crlf(s))
}

/// Parsing, writing and parsing again gives the same message.
fn round_trips(m: &Message) {
    let again = parse_bytes(&m.to_bytes()).expect("canonical form parses");
    assert_eq!(&again, m);
}

const SDP_150: &str = "v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
";

#[test]
fn wsinv() {
    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.1.1
    //= type=test
    //# All elements should treat this as a well-formed request.
    let m = parse(
        r#"INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : "J Rosenberg \\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : 150
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \"\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.3
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
"#,
    )
    .unwrap();
    assert_eq!(m.method(), Some(&Method::Invite));
    let ruri = m.request_uri().unwrap().as_sip().unwrap();
    assert_eq!(ruri.param("unknownparam"), Some(None));
    assert_eq!(m.to_addr().unwrap().tag(), Some("1918181833n"));
    let from = m.from_addr().unwrap();
    assert_eq!(from.display_name.as_deref(), Some(r#"J Rosenberg \""#));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(m.max_forwards().unwrap(), Some(68));
    assert_eq!(m.cseq().unwrap().seq, 9);
    let vias = m.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].branch(), Some("390skdjuw"));
    assert_eq!(vias[1].transport, Transport::Tcp);
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(m.headers.get(StdHeader::Subject), Some(""));
    let ext = |n: &str| m.headers.get(crate::HeaderName::parse(n).unwrap());
    assert_eq!(
        ext("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(ext("UnknownHeaderWithUnusualValue"), Some(";;,,;;,;"));
    let Some(Contact::Addresses(c)) = m.contact().unwrap() else {
        panic!("contact")
    };
    assert_eq!(c[0].display_name.as_deref(), Some(r#"Quoted string """#));
    assert_eq!(c[0].params.get("newparam"), Some(Some("newvalue")));
    assert_eq!(c[0].params.get("secondparam"), Some(None));
    assert_eq!(c[0].params.get("q"), Some(Some("0.33")));
    assert_eq!(m.routes().unwrap().len(), 1);
    assert_eq!(m.body.len(), 150);
    assert!(crate::sdp::SessionDescription::parse(&m.body, &Limits::default()).is_ok());
    round_trips(&m);
}

/// RFC 4475 section 3.1.1.2, with the To display name as written (NUL, BEL and DEL
/// escaped by quoted-pairs) or with letters in their place.
fn intmeth(to_display: &str) -> Vec<u8> {
    let mut s = String::from(
        "!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\n\
         Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\n",
    );
    s.push_str(&format!(
        "To: \"{to_display}\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>\n"
    ));
    s.push_str(
        "From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"\u{440}\u{430}\u{431}\u{43e}\u{442}\u{430}\u{44e}\u{449}\u{438}\u{439}\";tag=_token~1'+`*%!-.\n\
         Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\n\
         CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\n\
         Max-Forwards: 255\n\
         extensionHeader-!.%*+_`'~:\u{feff}\u{5927}\u{505c}\u{96fb}\n\
         Content-Length: 0\n\n",
    );
    crlf(&s)
}

#[test]
fn intmeth_wide_range_of_valid_characters() {
    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.1.2
    //= type=test
    //# This message exercises a wider range of characters in several key
    //# syntactic elements than implementations usually see.
    let m = parse_bytes(&intmeth("BEL:\\a NUL:\\b DEL:\\c")).unwrap();
    let Some(Method::Extension(t)) = m.method() else {
        panic!("method")
    };
    assert_eq!(t.as_str(), "!interesting-Method0123456789_*+`.%indeed'~");
    let ruri = m.request_uri().unwrap().as_sip().unwrap();
    assert_eq!(
        ruri.user(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK-.!%66*_+`'~"));
    let from = m.from_addr().unwrap();
    assert_eq!(
        from.display_name.as_deref(),
        Some("token1~` token2'+_ token3*%!.-")
    );
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    assert_eq!(
        from.params
            .iter()
            .next()
            .unwrap()
            .value_unquoted()
            .as_deref(),
        Some("\u{440}\u{430}\u{431}\u{43e}\u{442}\u{430}\u{44e}\u{449}\u{438}\u{439}")
    );
    assert_eq!(
        m.call_id().unwrap(),
        "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    );
    assert_eq!(m.max_forwards().unwrap(), Some(255));
    round_trips(&m);
}

#[test]
fn intmeth_control_characters_in_quoted_pairs_are_refused() {
    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.1.2
    //= type=test
    //# o  The To header field value's quoted string contains quoted-pair
    //#    expansions, including a quoted NULL character.
    // Deliberately stricter than the RFC: see the crate documentation.
    assert_eq!(
        parse_bytes(&intmeth("BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f")).unwrap_err(),
        ParseError::ControlCharacter
    );
}

#[test]
fn esc01_escapes() {
    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.1.3
    //= type=test
    //# A parser must accept this as a well-formed message.
    let m = parse(&format!(
        "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0
To: sip:%75se%72@example.com
From: <sip:I%20have%20spaces@example.net>;tag=938
Max-Forwards: 87
i: esc01.239409asdfakjkn23onasd0-3234
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw
C: application/sdp
Contact:
  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
Content-Length: 150

{SDP_150}"
    ))
    .unwrap();
    let ruri = m.request_uri().unwrap().as_sip().unwrap();
    assert_eq!(ruri.user(), Some("sips%3Auser%40example.com"));
    assert_eq!(ruri.host().domain(), Some("example.net"));
    assert!(m.content_type().unwrap().unwrap().is_sdp());
    round_trips(&m);
}

#[test]
fn escnull_escaped_nulls_in_uris() {
    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.1.4
    //= type=test
    //# The message is well formed - parsers must accept this
    //# message.
    let m = parse(
        "REGISTER sip:example.com SIP/2.0
To: sip:null-%00-null@example.com
From: sip:null-%00-null@example.com;tag=839923423
Max-Forwards: 70
Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
Contact: <sip:%00@host5.example.com>
Contact: <sip:%00%00@host5.example.com>
L:0

",
    )
    .unwrap();
    let Some(Contact::Addresses(c)) = m.contact().unwrap() else {
        panic!("contact")
    };
    assert_eq!(c.len(), 2);
    assert_eq!(c[1].uri.as_sip().unwrap().user(), Some("%00%00"));
    round_trips(&m);
}

#[test]
fn esc02_percent_not_an_escape() {
    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.1.5
    //= type=test
    //# o  This message has two Contact header field values, not three.
    let m = parse(
        r#"RE%47IST%45R sip:registrar.example.com SIP/2.0
To: "%Z%45" <sip:resource@example.com>
From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23
Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234
CSeq: 29344 RE%47IST%45R
Max-Forwards: 70
Contact: <sip:alias1@host1.example.com>
C%6Fntact: <sip:alias2@host2.example.com>
Contact: <sip:alias3@host3.example.com>
l: 0

"#,
    )
    .unwrap();
    assert!(matches!(m.method(), Some(Method::Extension(_))));
    assert_eq!(m.to_addr().unwrap().display_name.as_deref(), Some("%Z%45"));
    let Some(Contact::Addresses(c)) = m.contact().unwrap() else {
        panic!("contact")
    };
    assert_eq!(c.len(), 2);
    round_trips(&m);
}

#[test]
fn lwsdisp_no_lws_before_laquot() {
    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.1.6
    //= type=test
    //# Elements should
    //# accept this request as well formed.
    let m = parse(
        "OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: caller<sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: lwsdisp.1234abcd@funky.example.com
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw
l: 0

",
    )
    .unwrap();
    assert_eq!(
        m.from_addr().unwrap().display_name.as_deref(),
        Some("caller")
    );
    round_trips(&m);
}

fn longreq() -> String {
    let long = "long".repeat(20);
    let name = "name".repeat(25);
    let caller = "amazinglylongcallername".repeat(5);
    let mut vias = String::new();
    for (i, n) in [
        "Via", "v", "V", "Via", "ViA", "VIa", "VIA", "via", "viA", "vIa", "vIA", "V ", "v ", "V  ",
        "v  ", "Via ", "Via  ",
    ]
    .iter()
    .enumerate()
    {
        vias.push_str(&format!("{n}: SIP/2.0/TCP sip{}.example.com\n", 33 - i));
    }
    for i in (1..=16).rev() {
        vias.push_str(&format!("Via: SIP/2.0/TCP sip{i}.example.com\n"));
    }
    format!(
        "INVITE sip:user@example.com SIP/2.0
To: \"I have a user name of {ext} proportion\"<sip:user@example.com:6000;unknownparam1=very{long}value;long{name}=shortvalue;very{long}ParameterNameWithNoValue>
F: sip:{caller}@example.net;tag={tag}424;unknownheaderparam{name}=unknowheaderparam{value};unknownValuelessparam{pn}
Call-ID: longreq.one{really}longcallid
CSeq: 3882340 INVITE
Unknown-{ll}-Name: unknown-{long}-value; unknown-{long}-parameter-name = unknown-{long}-parameter-value
{vias}Via: SIP/2.0/TCP host.example.com;received=192.0.2.5;branch=very{biglong}branchvalue
Max-Forwards: 70
Contact: <sip:{caller}@host5.example.net>
Content-Type: application/sdp
l: 150

{SDP_150}",
        ext = "extreme".repeat(10),
        tag = "1298".repeat(37),
        value = "value".repeat(15),
        pn = "paramname".repeat(10),
        really = "really".repeat(20),
        ll = "Long".repeat(20),
        biglong = "long".repeat(50),
    )
}

#[test]
fn longreq_long_values() {
    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.1.7
    //= type=test
    //# This well-formed request contains header fields with many values and
    //# values that are very long.
    // The 93-byte extension header name is over the default limit of 32...
    assert_eq!(
        parse(&longreq()).unwrap_err(),
        ParseError::HeaderNameTooLong
    );
    // ...and everything else is within the defaults.
    let limits = Limits {
        max_header_name_len: 128,
        ..Limits::default()
    };
    let m = parse_with(&crlf(&longreq()), &limits).unwrap();
    assert_eq!(m.vias().unwrap().len(), 34);
    let to = m.to_addr().unwrap().uri;
    assert_eq!(to.as_sip().unwrap().port(), Some(6000));
    assert_eq!(to.as_sip().unwrap().params().count(), 3);
    assert_eq!(m.from_addr().unwrap().params.len(), 3);
    assert_eq!(
        m.vias().unwrap()[33].received(),
        Some("192.0.2.5".parse().unwrap())
    );
    let again = parse_with(&m.to_bytes(), &limits).unwrap();
    assert_eq!(again, m);
}

const DBLREQ: &str = "REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=43251j3j324
Max-Forwards: 8
I: dblreq.0ha0isndaksdj99sdfafnl3lk233412
Contact: sip:j.user@host.example.com
CSeq: 8 REGISTER
Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492
Content-Length: 0


INVITE sip:joe@example.com SIP/2.0
t: sip:joe@example.com
From: sip:caller@example.net;tag=141334
Max-Forwards: 8
Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234
Content-Type: application/sdp
Content-Length: 150

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.15
s=-
c=IN IP4 192.0.2.15
t=0 0
m=audio 49217 RTP/AVP 0 12
m =video 3227 RTP/AVP 31
a=rtpmap:31 LPC
";

#[test]
fn dblreq_extra_octets_in_datagram() {
    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.1.8
    //= type=test
    //# A SIP element receiving this datagram would handle the REGISTER
    //# request normally and ignore the extra bits that look like an INVITE
    //# request.
    let m = parse(DBLREQ).unwrap();
    assert_eq!(m.method(), Some(&Method::Register));
    assert!(m.body.is_empty());
    let strict = Limits {
        discard_datagram_trailing_octets: false,
        ..Limits::default()
    };
    assert_eq!(
        parse_with(&crlf(DBLREQ), &strict).unwrap_err(),
        ParseError::TrailingOctets
    );
}

#[test]
fn semiuri_and_transports() {
    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.1.9
    //= type=test
    //# The Request-URI will parse so that the user part is
    //# "user;par=u@example.net".
    let m = parse(
        "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Call-ID: semiuri.0ha0isndaksdj
CSeq: 8 OPTIONS
Accept: application/sdp, application/pkcs7-mime,
        multipart/mixed, multipart/signed,
        message/sip, message/sipfrag
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw
l: 0

",
    )
    .unwrap();
    let ruri = m.request_uri().unwrap().as_sip().unwrap();
    assert_eq!(ruri.user(), Some("user;par=u%40example.net"));
    round_trips(&m);

    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.1.10
    //= type=test
    //# Parsers must accept this message as well formed.
    let m = parse(
        "OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: <sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID:  transports.kijh4akdnaqjkwendsasfdj
Accept: application/sdp
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee
l: 0

",
    )
    .unwrap();
    let t: Vec<_> = m.vias().unwrap().into_iter().map(|v| v.transport).collect();
    assert_eq!(t[1], Transport::Sctp);
    assert_eq!(t[3].as_str(), "UNKNOWN");
    round_trips(&m);
}

#[test]
fn mpart01_binary_body() {
    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.1.11
    //= type=test
    //# Parsers must accept this message as well formed, even if the
    //# application above the parser does not support multipart/signed.
    let mut body = b"--7a9cbec02ceef655\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\nHello\r\n--7a9cbec02ceef655\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n".to_vec();
    body.extend((0..=255u8).chain([0, 0, b'\r', b'\n', 0xff]));
    body.extend_from_slice(b"\r\n--7a9cbec02ceef655--\r\n");
    let mut msg = crlf(&format!(
        "MESSAGE sip:kumiko@example.org SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport
Max-Forwards: 70
Route: <sip:127.0.0.1:5080>
Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813gvYjcBUaZngQmXc9WNZSDNGCzA+fWl9MEUHWIZo1CeJebdY/XlgKeTa0Olvq0rt70Q5jiSfbqMJmQFteeivUhkMWYUA=
Contact: <sip:fluffy@127.0.0.1:5070>
To: <sip:kumiko@example.org>
From: <sip:fluffy@example.com>;tag=2fb0dcc9
Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..
CSeq: 1 MESSAGE
Content-Transfer-Encoding: binary
Content-Type: multipart/mixed;boundary=7a9cbec02ceef655
Date: Sat, 15 Oct 2005 04:44:56 GMT
User-Agent: SIPimp.org/0.2.5 (curses)
Content-Length: {}

",
        body.len()
    ));
    msg.extend_from_slice(&body);
    let m = parse_bytes(&msg).unwrap();
    assert_eq!(m.body, body);
    assert_eq!(m.top_via().unwrap().rport(), Some(None));
    round_trips(&m);
}

#[test]
fn unreason_and_noreason() {
    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.1.12
    //= type=test
    //# This response is well formed.  A parser must accept this
    //# message.
    let reason = "= 2**3 * 5**2 \u{43d}\u{43e} \u{441}\u{442}\u{43e} \u{434}\u{435}\u{432}\u{44f}\u{43d}\u{43e}\u{441}\u{442}\u{43e} \u{434}\u{435}\u{432}\u{44f}\u{442}\u{44c} - \u{43f}\u{440}\u{43e}\u{441}\u{442}\u{43e}\u{435}";
    let m = parse(&format!(
        "SIP/2.0 200 {reason}
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Call-ID: unreason.1234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: 154
Content-Type: application/sdp
Contact: <sip:user@host198.example.com>

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.198
s=-
c=IN IP4 192.0.2.198
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
"
    ))
    .unwrap();
    assert_eq!(m.status(), Some(200));
    let crate::StartLine::Response(s) = &m.start else {
        panic!("response")
    };
    assert_eq!(s.reason(), reason);
    round_trips(&m);

    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.1.13
    //= type=test
    //# This well-formed response contains no reason phrase.  A parser must
    //# accept this message.
    let noreason = "SIP/2.0 100 
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: noreason.asndj203insdf99223ndf
CSeq: 35 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>

";
    let m = parse(noreason).unwrap();
    assert_eq!(m.status(), Some(100));
    round_trips(&m);
    // Without the SP after the code the Status-Line is malformed.
    assert_eq!(
        parse(&noreason.replacen("100 \n", "100\n", 1)).unwrap_err(),
        ParseError::BadStartLine
    );
}

/// The RFC 4475 messages that must be refused, with the error this parser gives.
#[test]
fn invalid_messages() {
    let sdp = |ip: &str, t: &str| {
        format!(
            "v=0\no=mhandley 29739 7272939 IN IP4 {ip}\ns=-\nc=IN IP4 {ip}\nt={t}\nm=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n"
        )
    };
    let cases: Vec<(&str, String, ParseError)> = vec![
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.1
        //= type=test
        //# An element receiving this request should respond with a 400 Bad
        //# Request error.
        (
            "badinv01",
            format!(
                "INVITE sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=134161461246
Max-Forwards: 7
Call-ID: badinv01.0ha0isndaksdjasdf3234nas
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;;,;,,
Contact: \"Joe\" <sip:joe@example.org>;;;;
Content-Length: 152
Content-Type: application/sdp

{}",
                sdp("192.0.2.15", "0 0")
            ),
            ParseError::BadHeader(StdHeader::Via),
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.2
        //= type=test
        //# When sent over UDP (as this message ostensibly was), the receiving
        //# element should respond with a 400 Bad Request error.
        (
            "clerr",
            format!(
                "INVITE sip:user@example.com SIP/2.0
Max-Forwards: 80
To: sip:j.user@example.com
From: sip:caller@example.net;tag=93942939o2
Contact: <sip:caller@hungry.example.net>
Call-ID: clerr.0ha0isndaksdjweiafasdk3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523
Content-Type: application/sdp
Content-Length: 9999

{}",
                sdp("192.0.2.155", "0 0")
            ),
            ParseError::BodyTruncated,
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.3
        //= type=test
        //# An element receiving this message should respond with an error.
        (
            "ncl",
            format!(
                "INVITE sip:user@example.com SIP/2.0
Max-Forwards: 254
To: sip:j.user@example.com
From: sip:caller@example.net;tag=32394234
Call-ID: ncl.0ha0isndaksdj2193423r542w35
CSeq: 0 INVITE
Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw
Contact: <sip:caller@example53.example.net>
Content-Type: application/sdp
Content-Length: -999

{}",
                sdp("192.0.2.53", "0 0")
            ),
            ParseError::BadHeader(StdHeader::ContentLength),
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.4
        //= type=test
        //# An element receiving this request should respond with a 400 Bad
        //# Request due to the CSeq error.
        (
            "scalar02",
            format!(
                "REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3
To: <sip:user@example.com>
From: <sip:user@example.com>;tag=239232jh3
CSeq: 36893488147419103232 REGISTER
Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32
Max-Forwards: 300
Expires: 1{}
Contact: <sip:user@host129.example.com>
  ;expires=280297596632815
Content-Length: 0

",
                "0".repeat(100)
            ),
            ParseError::BadHeader(StdHeader::CSeq),
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.5
        //= type=test
        //# An element receiving this response will simply discard it.
        (
            "scalarlg",
            "SIP/2.0 503 Service Unavailable
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129
To: <sip:user@example.com>
From: <sip:other@example.net>;tag=2easdjfejw
CSeq: 9292394834772304023312 OPTIONS
Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r
Retry-After: 949302838503028349304023988
Warning: 1812 overture \"In Progress\"
Content-Length: 0

"
            .to_owned(),
            ParseError::BadHeader(StdHeader::CSeq),
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.6
        //= type=test
        //# An element receiving this request should return a 400
        //# Bad Request error.
        (
            "quotbal",
            format!(
                "INVITE sip:user@example.com SIP/2.0
To: \"Mr. J. User <sip:j.user@example.com>
From: sip:caller@example.net;tag=93334
Max-Forwards: 10
Call-ID: quotbal.aksdj
Contact: <sip:caller@host59.example.net>
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234
Content-Type: application/sdp
Content-Length: 152

{}",
                sdp("192.0.2.15", "0 0")
            ),
            ParseError::BadHeader(StdHeader::To),
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.7
        //= type=test
        //# It is reasonable always to reject a request with this error with a
        //# 400 Bad Request.
        (
            "ltgtruri",
            format!(
                "INVITE <sip:user@example.com> SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=39291
Max-Forwards: 23
Call-ID: ltgtruri.1@192.0.2.5
CSeq: 1 INVITE
Via: SIP/2.0/UDP 192.0.2.5
Contact: <sip:caller@host5.example.net>
Content-Type: application/sdp
Content-Length: 159

{}",
                sdp("192.0.2.5", "3149328700 0")
            ),
            ParseError::BadRequestUri,
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.8
        //= type=test
        //# An element receiving this request should respond with a 400 Bad
        //# Request.
        (
            "lwsruri",
            format!(
                "INVITE sip:user@example.com; lr SIP/2.0
To: sip:user@example.com;tag=3xfe-9921883-z9f
From: sip:caller@example.net;tag=231413434
Max-Forwards: 5
Call-ID: lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423
CSeq: 2130706432 INVITE
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKkdjuw2395
Contact: <sip:caller@host1.example.net>
Content-Type: application/sdp
Content-Length: 159

{}",
                sdp("192.0.2.1", "3149328700 0")
            ),
            ParseError::BadStartLine,
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.9
        //= type=test
        //# It is acceptable to reject this request as malformed.
        (
            "lwsstart",
            format!(
                "INVITE  sip:user@example.com  SIP/2.0
Max-Forwards: 8
To: sip:user@example.com
From: sip:caller@example.net;tag=8814
Call-ID: lwsstart.dfknq234oi243099adsdfnawe3@example.com
CSeq: 1893884 INVITE
Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw3923
Contact: <sip:caller@host1.example.net>
Content-Type: application/sdp
Content-Length: 150

{SDP_150}"
            ),
            ParseError::BadStartLine,
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.10
        //= type=test
        //# It is acceptable to reject this request as malformed.
        (
            "trws",
            "OPTIONS sip:remote-target@example.com SIP/2.0  
Via: SIP/2.0/TCP host1.examle.com;branch=z9hG4bK299342093
To: <sip:remote-target@example.com>
From: <sip:local-resource@example.com>;tag=329429089
Call-ID: trws.oicu34958239neffasdhr2345r
Accept: application/sdp
CSeq: 238923 OPTIONS
Max-Forwards: 70
Content-Length: 0

"
            .to_owned(),
            ParseError::BadStartLine,
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.11
        //= type=test
        //# It is acceptable for an element to reject this request with a 400 Bad
        //# Request.
        (
            "escruri",
            format!(
                "INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=341518
Max-Forwards: 7
Contact: <sip:caller@host39923.example.net>
Call-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5
CSeq: 149209342 INVITE
Via: SIP/2.0/UDP host-of-the-hour.example.com;branch=z9hG4bKkdjuw
Content-Type: application/sdp
Content-Length: 150

{SDP_150}"
            ),
            ParseError::BadRequestUri,
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.13
        //= type=test
        //# It is reasonable for an element receiving this request to respond
        //# with a 400 Bad Request.
        (
            "regbadct",
            "REGISTER sip:example.com SIP/2.0
To: sip:user@example.com
From: sip:user@example.com;tag=998332
Max-Forwards: 70
Call-ID: regbadct.k345asrl3fdbv@10.0.0.1
CSeq: 1 REGISTER
Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw
Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E
l: 0

"
            .to_owned(),
            ParseError::BadHeader(StdHeader::Contact),
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.14
        //= type=test
        //# It
        //# is reasonable to reject this request with a 400 Bad Request response.
        (
            "badaspec",
            "OPTIONS sip:user@example.org SIP/2.0
Via: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234
Max-Forwards: 70
From: \"Bell, Alexander\" <sip:a.g.bell@example.com>;tag=433423
To: \"Watson, Thomas\" < sip:t.watson@example.org >
Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3
Accept: application/sdp
CSeq: 3923239 OPTIONS
l: 0

"
            .to_owned(),
            ParseError::BadHeader(StdHeader::To),
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.15
        //= type=test
        //# It is reasonable always to reject this kind of error with a 400 Bad
        //# Request response.
        (
            "baddn",
            "OPTIONS sip:t.watson@example.org SIP/2.0
Via:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw
Max-Forwards:      70
From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43
To:      Watson, Thomas <sip:t.watson@example.org>
Call-ID: baddn.31415@c.example.com
Accept: application/sdp
CSeq:    3923239 OPTIONS
l: 0

"
            .to_owned(),
            ParseError::BadHeader(StdHeader::To),
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.16
        //= type=test
        //# The element should respond to the request with a 505 Version Not
        //# Supported error.
        (
            "badvers",
            "OPTIONS sip:t.watson@example.org SIP/7.0
Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw
Max-Forwards:     70
From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe
To:      T. Watson <sip:t.watson@example.org>
Call-ID: badvers.31417@c.example.com
CSeq:    1 OPTIONS
l: 0

"
            .to_owned(),
            ParseError::UnsupportedVersion,
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.17
        //= type=test
        //# Any element receiving this request will
        //# respond with a 400 Bad Request.
        (
            "mismatch01",
            "OPTIONS sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=34525
Max-Forwards: 6
Call-ID: mismatch01.dj0234sxdfl3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw
l: 0

"
            .to_owned(),
            ParseError::CSeqMethodMismatch,
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.18
        //= type=test
        //# A 400 Bad Request is also acceptable
        (
            "mismatch02",
            "NEWMETHOD sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=34525
Max-Forwards: 6
Call-ID: mismatch02.dj0234sxdfl3
CSeq: 8 INVITE
Contact: <sip:caller@host.example.net>
Via: SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw
Content-Type: application/sdp
l: 138

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.1
c=IN IP4 192.0.2.1
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
"
            .to_owned(),
            ParseError::CSeqMethodMismatch,
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.19
        //= type=test
        //# This response has a response code larger than 699.  An element
        //# receiving this response should simply drop it.
        (
            "bigcode",
            "SIP/2.0 4294967301 better not break the receiver
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i
CSeq: 353494 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>

"
            .to_owned(),
            ParseError::BadStatusCode,
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.3.1
        //= type=test
        //# 3.3.1.  Missing Required Header Fields
        (
            "insuf",
            format!(
                "INVITE sip:user@example.com SIP/2.0
CSeq: 193942 INVITE
Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf
Content-Type: application/sdp
l: 152

{}",
                sdp("192.0.2.95", "0 0")
            ),
            ParseError::MissingHeader(StdHeader::To),
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.3.2
        //= type=test
        //# 3.3.2.  Request-URI with Unknown Scheme
        (
            "unkscm",
            "OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=384
Max-Forwards: 3
Call-ID: unkscm.nasdfasser0q239nwsdfasdkl34
CSeq: 3923423 OPTIONS
Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234
Content-Length: 0

"
            .to_owned(),
            ParseError::UnsupportedUriScheme,
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.3.3
        //= type=test
        //# 3.3.3.  Request-URI with Known but Atypical Scheme
        (
            "novelsc",
            "OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=384
Max-Forwards: 3
Call-ID: novelsc.asdfasser0q239nwsdfasdkl34
CSeq: 3923423 OPTIONS
Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234
Content-Length: 0

"
            .to_owned(),
            ParseError::UnsupportedUriScheme,
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.3.8
        //= type=test
        //# 3.3.8.  Multiple Values in Single Value Required Fields
        (
            "multi01",
            format!(
                "INVITE sip:user@company.com SIP/2.0
Contact: <sip:caller@host25.example.net>
Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw
Max-Forwards: 70
CSeq: 5 INVITE
Call-ID: multi01.98asdh@192.0.2.1
CSeq: 59 INVITE
Call-ID: multi01.98asdh@192.0.2.2
From: sip:caller@example.com;tag=3413415
To: sip:user@example.com
To: sip:other@example.net
From: sip:caller@example.net;tag=2923420123
Content-Type: application/sdp
l: 154
Contact: <sip:caller@host36.example.net>
Max-Forwards: 5

{}
",
                sdp("192.0.2.25", "0 0")
            ),
            ParseError::DuplicateHeader(StdHeader::To),
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.3.9
        //= type=test
        //# 3.3.9.  Multiple Content-Length Values
        (
            "mcl01",
            "OPTIONS sip:user@example.com SIP/2.0
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bK293423
To: sip:user@example.com
From: sip:other@example.net;tag=3923942
Call-ID: mcl01.fhn2323orihawfdoa3o4r52o3irsdf
CSeq: 15932 OPTIONS
Content-Length: 13
Max-Forwards: 60
Content-Length: 5
Content-Type: text/plain

There's no way to know how many octets are supposed to be here.
"
            .to_owned(),
            ParseError::DuplicateHeader(StdHeader::ContentLength),
        ),
        //= https://www.rfc-editor.org/rfc/rfc4475#section-3.4.1
        //= type=test
        //# 3.4.1.  INVITE with RFC 2543 Syntax
        // Refused: this SBC takes RFC 3261 requests only (Max-Forwards is mandatory).
        (
            "inv2543",
            "INVITE sip:UserB@example.com SIP/2.0
Via: SIP/2.0/UDP iftgw.example.com
From: <sip:+13035551111@ift.client.example.net;user=phone>
Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>
To: sip:+16505552222@ss1.example.net;user=phone
Call-ID: inv2543.1717@ift.client.example.com
CSeq: 56 INVITE
Content-Type: application/sdp

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.5
s=-
c=IN IP4 192.0.2.5
t=0 0
m=audio 49217 RTP/AVP 0
"
            .to_owned(),
            ParseError::MissingHeader(StdHeader::MaxForwards),
        ),
    ];
    for (name, text, want) in cases {
        let got = parse(&text);
        assert_eq!(got.as_ref().err(), Some(&want), "{name}: {got:?}");
    }
    assert_eq!(ParseError::UnsupportedVersion.status(), 505);
    assert_eq!(ParseError::UnsupportedUriScheme.status(), 416);
    assert_eq!(ParseError::BadHeader(StdHeader::CSeq).status(), 400);
    assert_eq!(
        ParseError::BadHeader(StdHeader::CSeq).reason(),
        "Malformed CSeq Header"
    );
}

/// RFC 4475 messages that are well formed but wrong at a layer above the parser: the
/// parser accepts them and gives the layer above what it needs to decide.
#[test]
fn semantically_odd_but_well_formed() {
    let accept = |s: &str| parse(s).unwrap_or_else(|e| panic!("{e:?} in\n{s}"));

    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.1.2.12
    //= type=test
    //# An element wishing
    //# to be liberal in what it accepts could ignore this value altogether
    //# if it wasn't going to use the Date header field anyway.
    accept(
        "INVITE sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=2234923
Max-Forwards: 70
Call-ID: baddate.239423mnsadf3j23lj42--sedfnm234
CSeq: 1392934 INVITE
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw
Date: Fri, 01 Jan 2010 16:00:00 EST
Contact: <sip:caller@host5.example.net>
Content-Type: application/sdp
Content-Length: 150

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.5
s=-
c=IN IP4 192.0.2.5
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
",
    );

    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.2.1
    //= type=test
    //# A parser must not break when
    //# receiving this message.
    let m = accept(
        "OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK
Accept: application/sdp
Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n
CSeq: 8 OPTIONS
l: 0

",
    );
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK"));

    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.3.5
    //= type=test
    //# 3.3.5.  Proxy-Require and Require
    let m = accept(
        "OPTIONS sip:user@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.net;tag=242etr
Max-Forwards: 6
Call-ID: bext01.0ha0isndaksdj
Require: nothingSupportsThis, nothingSupportsThisEither
Proxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis
CSeq: 8 OPTIONS
Via: SIP/2.0/TLS fold-and-staple.example.com;branch=z9hG4bKkdjuw
Content-Length: 0

",
    );
    let unsupported = m.unsupported_requirements(&["timer", "100rel"]).unwrap();
    assert_eq!(unsupported.len(), 2);
    assert_eq!(unsupported[1].as_str(), "nothingSupportsThisEither");

    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.3.12
    //= type=test
    //# 3.3.12.  REGISTER with a Contact Header Parameter
    let m = accept(
        "REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw
Max-Forwards: 70
From: sip:watson@example.com;tag=DkfVgjkrtMwaerKKpe
To: sip:watson@example.com
Call-ID: cparam01.70710@saturn.example.com
CSeq: 2 REGISTER
Contact: sip:+19725552222@gw1.example.net;unknownparam
l: 0

",
    );
    let Some(Contact::Addresses(c)) = m.contact().unwrap() else {
        panic!("contact")
    };
    assert!(c[0].params.contains("unknownparam"));

    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.3.13
    //= type=test
    //# 3.3.13.  REGISTER with a url-parameter
    let m = accept(
        "REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw
Max-Forwards: 70
From: sip:watson@example.com;tag=838293
To: sip:watson@example.com
Call-ID: cparam02.70710@saturn.example.com
CSeq: 3 REGISTER
Contact: <sip:+19725552222@gw1.example.net;unknownparam>
l: 0

",
    );
    let Some(Contact::Addresses(c)) = m.contact().unwrap() else {
        panic!("contact")
    };
    assert_eq!(c[0].uri.as_sip().unwrap().param("unknownparam"), Some(None));

    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.3.4
    //= type=test
    //# 3.3.4.  Unknown URI Schemes in Header Fields
    let m = accept(
        "REGISTER sip:example.com SIP/2.0
To: isbn:2983792873
From: <http://www.example.com>;tag=3234233
Call-ID: unksm2.daksdj@hyphenated-host.example.com
CSeq: 234902 REGISTER
Max-Forwards: 70
Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw
Contact: <name:John_Smith>
l: 0

",
    );
    assert!(matches!(m.to_addr().unwrap().uri, Uri::Other(_)));

    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.3.6
    //= type=test
    //# 3.3.6.  Unknown Content-Type
    let m = accept(
        "INVITE sip:user@example.com SIP/2.0
Contact: <sip:caller@host5.example.net>
To: sip:j.user@example.com
From: sip:caller@example.net;tag=8392034
Max-Forwards: 70
Call-ID: invut.0ha0isndaksdjadsfij34n23d
CSeq: 235448 INVITE
Via: SIP/2.0/UDP somehost.example.com;branch=z9hG4bKkdjuw
Content-Type: application/unknownformat
Content-Length: 40

<audio>
 <pcmu port=\"443\"/>
</audio>
",
    );
    assert!(!m.content_type().unwrap().unwrap().is_sdp());

    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.3.7
    //= type=test
    //# 3.3.7.  Unknown Authorization Scheme
    accept(
        "REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=87321hj23128
Max-Forwards: 8
Call-ID: regaut01.0ha0isndaksdj
CSeq: 9338 REGISTER
Via: SIP/2.0/TCP 192.0.2.253;branch=z9hG4bKkdjuw
Authorization: NoOneKnowsThisScheme opaque-data=here
Content-Length:0

",
    );

    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.3.10
    //= type=test
    //# 3.3.10.  200 OK Response with Broadcast Via Header Field Value
    let m = accept(
        "SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23
Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: 154
Content-Type: application/sdp
Contact: <sip:user@host28.example.com>

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.198
s=-
c=IN IP4 192.0.2.198
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
",
    );
    assert_eq!(m.vias().unwrap().len(), 2);

    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.3.11
    //= type=test
    //# 3.3.11.  Max-Forwards of Zero
    let m = accept(
        "OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=3ghsd41
Call-ID: zeromf.jfasdlfnm2o2l43r5u0asdfas
CSeq: 39234321 OPTIONS
Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw2349i
Max-Forwards: 0
Content-Length: 0

",
    );
    assert_eq!(m.max_forwards().unwrap(), Some(0));

    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.3.14
    //= type=test
    //# 3.3.14.  REGISTER with a URL Escaped Header
    accept(
        "REGISTER sip:example.com SIP/2.0
To: sip:user@example.com
From: sip:user@example.com;tag=8
Max-Forwards: 70
Call-ID: regescrt.k345asrl3fdbv@192.0.2.1
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
M: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>
L:0

",
    );

    //= https://www.rfc-editor.org/rfc/rfc4475#section-3.3.15
    //= type=test
    //# 3.3.15.  Unacceptable Accept Offering
    accept(
        "INVITE sip:user@example.com SIP/2.0
To: sip:j_user@example.com
Contact: <sip:caller@host15.example.net>
From: sip:caller@example.net;tag=234
Max-Forwards: 5
Call-ID: sdp01.ndaksdj9342dasdd
Accept: text/nobodyKnowsThis
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw
Content-Length: 150
Content-Type: application/sdp

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.5
s=-
c=IN IP4 192.0.2.5
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
",
    );
}
