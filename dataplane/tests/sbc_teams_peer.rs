//! The Teams Direct Routing profile against a scripted Teams written on our own SIP stack
//! (`relay_testsupport::sip_peer`: relay-sip over rustls), through relay-control and
//! relay-dataplane in network namespaces:
//!
//! ```text
//!  ns alice ("Teams")                ns sbc                              ns bob ("operator")
//!  teams1 198.18.10.2:5061  ─┐   198.18.10.1:5061  relay-control   198.18.20.1:5061  ─  operator 198.18.20.2:5061
//!  teams2 198.18.10.3:5061  ─┘   198.18.10.10  relay-dataplane     198.18.20.10
//! ```
//!
//! What Microsoft's SBC rules ask, checked on the wire as Teams would see it:
//! - OPTIONS to both Teams proxies on the configured interval, with `Contact:
//!   <sip:sbc.test:5061;transport=tls>` (our certificate's FQDN, never an address) and
//!   `X-MS-SBC`, over mutual TLS (the Teams peers refuse a connection without our client
//!   certificate).
//! - An operator call towards Teams: E.164 with `user=phone`, the FQDN Contact and
//!   `X-MS-SBC` on the INVITE, one `a=crypto` with `|2^31`; the first proxy answers 503 and
//!   the call fails over to the second.
//! - A Teams call towards the operator whose offer carries two `a=crypto` lines: the answer
//!   holds exactly one, written with `|2^31`.
//! - REFER from Teams: 202, NOTIFY with `message/sipfrag` progress, a new INVITE to the
//!   Refer-To target through the Teams trunk, the final NOTIFY and BYE to the referrer; the
//!   operator's leg stays up and its BYE ends the transferred call.
//! - Hold: a call Teams holds (re-INVITE with `a=inactive`) outlives the media timeout that
//!   ends a call without media beside it (the held call has the longer hold timeout).

mod sbc;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use relay_bench::sipload::msg::{self, DialogIds, Ids};
use relay_sip::{Message, Method, StdHeader};
use relay_testsupport::sip_peer::{self, contact_uri, ConnId, Dialog, Received, SipPeer};
use relay_testsupport::topology::{self, SbcTopology};
use relay_testsupport::{pki, skip_reason};

const TEAMS1: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 10, 2)), 5061);
const TEAMS2: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 10, 3)), 5061);
const OPERATOR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 20, 2)), 5061);
const SBC_TEAMS_SIDE: SocketAddr =
    SocketAddr::new(IpAddr::V4(topology::SBC_ALICE_SIGNALLING), 5061);
const SBC_OPERATOR_SIDE: SocketAddr =
    SocketAddr::new(IpAddr::V4(topology::SBC_BOB_SIGNALLING), 5061);
/// The Contact every request towards Teams must carry (the FQDN of our certificate).
const FQDN_CONTACT: &str = "<sip:sbc.test:5061;transport=tls>";
/// The scripted Teams' own Contact.
const TEAMS_CONTACT: &str = "<sip:+4930300@sip.teams.test:5061;transport=tls>";
/// `options_interval_s` in `sbc::control_toml`.
const OPTIONS_INTERVAL: Duration = Duration::from_secs(2);

fn trunks(ca: &Path) -> String {
    format!(
        r#"[[listen]]
transport = "tls"
address = "{SBC_TEAMS_SIDE}"

[[listen]]
transport = "tls"
address = "{SBC_OPERATOR_SIDE}"

[[trunk]]
name = "teams"
profile = "teams"
peers = [
  {{ host = "{t1}", port = 5061, transport = "tls" }},
  {{ host = "{t2}", port = 5061, transport = "tls" }},
]
tls_server_name = "sip.teams.test"
signalling_address = "{SBC_TEAMS_SIDE}"
media_address = "{teams_media}"
media_policy = "srtp_mandatory"
suites = ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"]
trust_store = "{ca}"
verify_client = true

[[trunk]]
name = "operator"
peers = [{{ host = "{op}", port = 5061, transport = "tls" }}]
signalling_address = "{SBC_OPERATOR_SIDE}"
local_host = "{op_local}"
media_address = "{op_media}"
media_policy = "srtp_mandatory"
trust_store = "{ca}"

[[route]]
from = "teams"
to = "operator"

[[route]]
from = "operator"
to = "teams"
"#,
        t1 = TEAMS1.ip(),
        t2 = TEAMS2.ip(),
        op = OPERATOR.ip(),
        op_local = topology::SBC_BOB_SIGNALLING,
        teams_media = topology::SBC_ALICE_MEDIA,
        op_media = topology::SBC_BOB_MEDIA,
        ca = ca.display(),
    )
}

/// The CA, the SBC (both signalling addresses and `sbc.test`), the Teams proxies (both
/// addresses and `sip.teams.test`) and the operator.
fn make_pki(dir: &Path) -> pki::Pki {
    let ip = |a: SocketAddr| a.ip();
    pki::make(
        dir,
        &[
            (
                "sbc",
                &[ip(SBC_TEAMS_SIDE), ip(SBC_OPERATOR_SIDE)],
                &["sbc.test"],
            ),
            ("teams", &[ip(TEAMS1), ip(TEAMS2)], &["sip.teams.test"]),
            ("operator", &[ip(OPERATOR)], &[]),
        ],
    )
}

fn header<'m>(m: &'m Message, name: &str) -> Option<&'m str> {
    m.headers
        .get(relay_sip::HeaderName::parse(name).expect("a header name"))
}

fn crypto_lines(m: &Message) -> Vec<String> {
    String::from_utf8_lossy(&m.body)
        .lines()
        .filter(|l| l.starts_with("a=crypto:"))
        .map(str::to_owned)
        .collect()
}

/// What Teams asks of every INVITE and OPTIONS from an SBC.
fn assert_teams_headers(m: &Message, what: &str) {
    let contact = m.headers.get(StdHeader::Contact).unwrap_or_default();
    assert!(
        contact.contains("sip:")
            && contact.contains("sbc.test:5061")
            && contact.contains("transport=tls"),
        "{what}: Contact {contact:?} is not our FQDN with transport=tls"
    );
    assert!(
        !contact.contains("198.18."),
        "{what}: Contact {contact:?} carries an address (Teams answers 403)"
    );
    assert!(header(m, "X-MS-SBC").is_some(), "{what}: no X-MS-SBC");
}

/// The offer or answer the SBC sends Teams: RTP/SAVP, one `a=crypto` with `|2^31`.
fn assert_teams_sdp(m: &Message, what: &str) {
    let body = String::from_utf8_lossy(&m.body);
    assert!(body.contains("RTP/SAVP"), "{what}: not RTP/SAVP:\n{body}");
    let cryptos = crypto_lines(m);
    assert_eq!(cryptos.len(), 1, "{what}: exactly one a=crypto:\n{body}");
    assert!(
        cryptos[0].contains("AES_CM_128_HMAC_SHA1_80") && cryptos[0].contains("|2^31"),
        "{what}: {:?} is not AES_CM_128_HMAC_SHA1_80 with |2^31",
        cryptos[0]
    );
}

/// The SDP a peer offers or answers: one audio line in `direction` with the given
/// `a=crypto` lines.
fn sdp_with(ip: IpAddr, port: u16, direction: &str, cryptos: &[String]) -> Vec<u8> {
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na={direction}\r\na=rtcp-mux\r\n"
    );
    for c in cryptos {
        s.push_str(c);
        s.push_str("\r\n");
    }
    s.into_bytes()
}

fn crypto(tag: u32, suite: &str) -> String {
    format!("a=crypto:{tag} {suite} inline:{}", msg::fresh_key())
}

const WAIT: Duration = sbc::WAIT;

/// OPTIONS from the SBC to both proxies: cadence, Contact, X-MS-SBC (over mutual TLS).
fn options_cadence(teams1: &SipPeer, teams2: &SipPeer) {
    for (peer, name) in [(teams1, "teams1"), (teams2, "teams2")] {
        let got = relay_testsupport::netns::wait_until(OPTIONS_INTERVAL * 8, || {
            let o = peer.options();
            (o.len() >= 3).then_some(o)
        })
        .unwrap_or_else(|| panic!("{name}: fewer than 3 OPTIONS in {:?}", OPTIONS_INTERVAL * 8));
        for o in &got {
            assert_teams_headers(&o.msg, &format!("OPTIONS to {name}"));
            assert_eq!(o.msg.headers.get(StdHeader::Contact), Some(FQDN_CONTACT));
        }
        for pair in got.windows(2) {
            let gap = pair[1].at - pair[0].at;
            assert!(
                gap >= OPTIONS_INTERVAL / 2 && gap <= OPTIONS_INTERVAL * 2,
                "{name}: OPTIONS {gap:?} apart, configured {OPTIONS_INTERVAL:?}"
            );
        }
    }
}

/// An operator call to Teams: teams1 answers 503, the call fails over to teams2, which
/// answers; the operator hangs up.
fn failover_call(
    net: &SbcTopology,
    operator: &mut SipPeer,
    teams1: &mut SipPeer,
    teams2: &mut SipPeer,
    op_client: &std::sync::Arc<rustls::ClientConfig>,
    ids: &mut Ids,
) {
    let conn = operator
        .connect(&net.bob, SBC_OPERATOR_SIDE, "sbc.test", op_client.clone())
        .unwrap();
    let mut d = Dialog::new(
        ids,
        &OPERATOR.ip().to_string(),
        "+4930100",
        "<sip:+4930200@198.18.20.1>",
        "sip:+4930200@198.18.20.1:5061;transport=tls",
    )
    .unwrap();
    let offer = sdp_with(
        OPERATOR.ip(),
        40_000,
        "sendrecv",
        &[crypto(1, "AES_CM_128_HMAC_SHA1_80")],
    );
    let invite = d.invite(ids, "<sip:+4930100@198.18.20.2:5061;transport=tls>", offer);
    operator.send(conn, &invite).unwrap();

    let first = teams1.expect_request(Method::Invite, WAIT).unwrap();
    check_invite_to_teams(&first.msg, "+4930200", "INVITE to teams1");
    teams1
        .respond(&first, 503, "Service Unavailable", Some("t1"), None, None)
        .unwrap();
    teams1.expect_request(Method::Ack, WAIT).unwrap();

    let second = teams2.expect_request(Method::Invite, WAIT).unwrap();
    check_invite_to_teams(&second.msg, "+4930200", "INVITE to teams2 (failover)");
    let teams_call_id = second.msg.call_id().unwrap().to_owned();
    let contact = "<sip:+4930200@198.18.10.3:5061;transport=tls>";
    teams2
        .respond(&second, 180, "Ringing", Some("t2"), Some(contact), None)
        .unwrap();
    let answer = sdp_with(
        TEAMS2.ip(),
        50_000,
        "sendrecv",
        &[crypto(1, "AES_CM_128_HMAC_SHA1_80")],
    );
    teams2
        .respond(&second, 200, "OK", Some("t2"), Some(contact), Some(&answer))
        .unwrap();
    teams2.expect_request(Method::Ack, WAIT).unwrap();

    let ok = operator
        .expect_final(&d.ids.call_id, Method::Invite, WAIT)
        .unwrap();
    assert_eq!(
        ok.msg.status(),
        Some(200),
        "the operator's call is answered"
    );
    assert_eq!(crypto_lines(&ok.msg).len(), 1, "the operator gets one key");
    d.established(&ok.msg);
    operator.send(conn, &d.ack(ids)).unwrap();

    let bye = d.request(ids, Method::Bye);
    operator.send(conn, &bye).unwrap();
    let teams_bye = teams2
        .expect(&format!("BYE for {teams_call_id}"), WAIT, |m| {
            m.method() == Some(&Method::Bye) && m.call_id().is_ok_and(|c| c == teams_call_id)
        })
        .unwrap();
    teams2
        .respond(&teams_bye, 200, "OK", None, None, None)
        .unwrap();
    let done = operator
        .expect_final(&d.ids.call_id, Method::Bye, WAIT)
        .unwrap();
    assert_eq!(done.msg.status(), Some(200));
}

fn check_invite_to_teams(m: &Message, number: &str, what: &str) {
    assert_teams_headers(m, what);
    let uri = m.request_uri().expect("a request").to_string();
    assert!(
        uri.contains(number) && uri.contains("user=phone"),
        "{what}: Request-URI {uri} is not E.164 with user=phone"
    );
    assert_teams_sdp(m, what);
}

/// A call from Teams (on `conn`) to the operator's `number`, answered: the Teams side's
/// dialog and the INVITE the operator got. Teams offers two keys; the answer must hold one.
fn teams_call(
    teams1: &mut SipPeer,
    conn: ConnId,
    operator: &mut SipPeer,
    ids: &mut Ids,
    number: &str,
) -> (Dialog, Received) {
    let mut d = Dialog::new(
        ids,
        "sip.teams.test",
        "+4930300",
        &format!("<sip:{number}@sbc.test;user=phone>"),
        &format!("sip:{number}@sbc.test:5061;user=phone;transport=tls"),
    )
    .unwrap();
    let offer = sdp_with(
        TEAMS1.ip(),
        52_000,
        "sendrecv",
        &[
            crypto(1, "AES_CM_128_HMAC_SHA1_80"),
            crypto(2, "AES_CM_128_HMAC_SHA1_32"),
        ],
    );
    let invite = d.invite(ids, TEAMS_CONTACT, offer);
    teams1.send(conn, &invite).unwrap();

    let op_invite = operator
        .expect(&format!("the INVITE for {number}"), WAIT, |m| {
            m.method() == Some(&Method::Invite)
                && m.request_uri()
                    .is_some_and(|u| u.to_string().contains(number))
        })
        .unwrap();
    let op_contact = format!("<sip:{number}@198.18.20.2:5061;transport=tls>");
    let answer = sdp_with(
        OPERATOR.ip(),
        42_000,
        "sendrecv",
        &[crypto(1, "AES_CM_128_HMAC_SHA1_80")],
    );
    operator
        .respond(
            &op_invite,
            200,
            "OK",
            Some("op"),
            Some(&op_contact),
            Some(&answer),
        )
        .unwrap();
    let op_call_id = op_invite.msg.call_id().unwrap().to_owned();
    operator
        .expect("the operator's ACK", WAIT, |m| {
            m.method() == Some(&Method::Ack) && m.call_id().is_ok_and(|c| c == op_call_id)
        })
        .unwrap();

    let ok = teams1
        .expect_final(&d.ids.call_id, Method::Invite, WAIT)
        .unwrap();
    assert_eq!(ok.msg.status(), Some(200), "the Teams call is answered");
    assert_teams_sdp(&ok.msg, "the answer to Teams (two keys offered)");
    d.established(&ok.msg);
    teams1.send(conn, &d.ack(ids)).unwrap();
    (d, op_invite)
}

/// A Teams call to the operator, then transferred by REFER to another Teams number; the
/// operator hangs up the transferred call.
fn call_and_refer(teams1: &mut SipPeer, conn: ConnId, operator: &mut SipPeer, ids: &mut Ids) {
    let (mut d, op_invite) = teams_call(teams1, conn, operator, ids, "+4930400");
    let op_call_id = op_invite.msg.call_id().unwrap().to_owned();

    // REFER to another Teams user (RFC 3515), as Teams does for a transfer.
    let mut refer = d.request(ids, Method::Refer);
    msg::push(&mut refer, StdHeader::Contact, TEAMS_CONTACT);
    msg::push(
        &mut refer,
        relay_sip::HeaderName::parse("Refer-To").unwrap(),
        "<sip:+4930500@sip.teams.test;user=phone>",
    );
    msg::push(
        &mut refer,
        relay_sip::HeaderName::parse("Referred-By").unwrap(),
        "<sip:+4930300@sip.teams.test;user=phone>",
    );
    teams1.send(conn, &refer).unwrap();
    let accepted = teams1
        .expect_final(&d.ids.call_id, Method::Refer, WAIT)
        .unwrap();
    assert_eq!(accepted.msg.status(), Some(202), "REFER is accepted");

    // The new INVITE reaches Teams (its first healthy proxy) for the Refer-To target.
    let new_invite = teams1
        .expect("the transfer's INVITE", WAIT, |m| {
            m.method() == Some(&Method::Invite)
                && m.request_uri()
                    .is_some_and(|u| u.to_string().contains("+4930500"))
        })
        .unwrap();
    check_invite_to_teams(&new_invite.msg, "+4930500", "the transfer's INVITE");
    let new_call_id = new_invite.msg.call_id().unwrap().to_owned();
    assert_ne!(new_call_id, d.ids.call_id, "the transfer is a new dialog");
    let target_contact = "<sip:+4930500@198.18.10.2:5061;transport=tls>";
    let target_answer = sdp_with(
        TEAMS1.ip(),
        54_000,
        "sendrecv",
        &[crypto(1, "AES_CM_128_HMAC_SHA1_80")],
    );
    teams1
        .respond(
            &new_invite,
            200,
            "OK",
            Some("target"),
            Some(target_contact),
            Some(&target_answer),
        )
        .unwrap();
    teams1.expect_request(Method::Ack, WAIT).unwrap();

    // NOTIFYs on the referrer's dialog: progress in message/sipfrag, ending with 200 OK.
    let deadline = Instant::now() + WAIT;
    let mut frags = Vec::new();
    while !frags.iter().any(|f: &String| f.starts_with("SIP/2.0 200")) {
        let left = deadline.saturating_duration_since(Instant::now());
        let notify = teams1
            .expect("a NOTIFY for the REFER", left, |m| {
                m.method() == Some(&Method::Notify) && m.call_id().is_ok_and(|c| c == d.ids.call_id)
            })
            .unwrap_or_else(|e| panic!("{e}; NOTIFY bodies so far: {frags:?}"));
        let ct = notify
            .msg
            .headers
            .get(StdHeader::ContentType)
            .unwrap_or_default();
        assert!(
            ct.starts_with("message/sipfrag"),
            "NOTIFY Content-Type {ct:?}"
        );
        assert_eq!(header(&notify.msg, "Event"), Some("refer"), "NOTIFY Event");
        frags.push(String::from_utf8_lossy(&notify.msg.body).trim().to_owned());
        teams1
            .respond(&notify, 200, "OK", None, None, None)
            .unwrap();
    }

    // The referrer's dialog ends; the operator's leg now talks to the transfer target.
    let bye = teams1
        .expect("BYE to the referrer", WAIT, |m| {
            m.method() == Some(&Method::Bye) && m.call_id().is_ok_and(|c| c == d.ids.call_id)
        })
        .unwrap();
    teams1.respond(&bye, 200, "OK", None, None, None).unwrap();

    let mut op = Dialog {
        ids: DialogIds {
            call_id: op_call_id.clone(),
            from: op_invite.msg.headers.get(StdHeader::To).unwrap().to_owned() + ";tag=op",
            to: op_invite
                .msg
                .headers
                .get(StdHeader::From)
                .unwrap()
                .to_owned(),
        },
        target: contact_uri(&op_invite.msg).expect("the SBC's Contact"),
        via_host: format!("{}:5061", OPERATOR.ip()),
        cseq: 100,
    };
    let op_bye = op.request(ids, Method::Bye);
    operator.send(op_invite.conn, &op_bye).unwrap();
    let target_bye = teams1
        .expect("BYE to the transfer target", WAIT, |m| {
            m.method() == Some(&Method::Bye) && m.call_id().is_ok_and(|c| c == new_call_id)
        })
        .unwrap();
    teams1
        .respond(&target_bye, 200, "OK", None, None, None)
        .unwrap();
    let done = operator
        .expect_final(&op_call_id, Method::Bye, WAIT)
        .unwrap();
    assert_eq!(
        done.msg.status(),
        Some(200),
        "the operator's BYE is answered"
    );
}

/// Starts a just-in-time SIP trace (`relayctl trace start`) and waits until relay-control
/// has picked the grant up; the trace grant's id.
fn start_trace(dir: &Path, app: &relay_testsupport::appliance::Appliance<'_>) -> String {
    let out = sbc::relayctl(
        dir,
        &[
            "trace",
            "start",
            "--reason",
            "TEAMS-1 failover diagnosis",
            "--ttl",
            "10m",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = text
        .split_whitespace()
        .nth(1)
        .expect("trace <id> until ...")
        .to_owned();
    relay_testsupport::netns::wait_until(WAIT, || {
        app.control_log().contains("SIP trace on").then_some(())
    })
    .expect("relay-control turns the trace on");
    id
}

fn stop_trace(dir: &Path, app: &relay_testsupport::appliance::Appliance<'_>, id: &str) {
    let out = sbc::relayctl(dir, &["trace", "stop", id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    relay_testsupport::netns::wait_until(WAIT, || {
        app.control_log().contains("SIP trace off").then_some(())
    })
    .expect("relay-control turns the trace off");
}

/// The trace holds the failover call (both proxies' INVITEs, the 503), keys redacted, and
/// nothing from after it was stopped (the transfer).
fn check_trace(dir: &Path) {
    let grant = sbc::relayctl(
        dir,
        &[
            "access",
            "grant",
            "--reason",
            "TEAMS-1 read the trace",
            "--ttl",
            "10m",
        ],
    );
    assert!(
        grant.status.success(),
        "{}",
        String::from_utf8_lossy(&grant.stderr)
    );
    let out = sbc::relayctl(dir, &["trace", "show"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for wanted in [
        "INVITE sip:+4930200@198.18.10.2",
        "INVITE sip:+4930200@198.18.10.3",
        "SIP/2.0 503 Service Unavailable",
        "X-MS-SBC",
        "inline:<redacted>",
    ] {
        assert!(text.contains(wanted), "the trace lacks {wanted:?}:\n{text}");
    }
    assert!(
        text.match_indices("inline:")
            .all(|(i, _)| text[i..].starts_with("inline:<redacted>")),
        "a key in the trace:\n{text}"
    );
    assert!(!text.contains("+4930500"), "traced after the stop:\n{text}");
    if std::env::var_os("SHOW_TRACE").is_some() {
        eprintln!("{text}");
    }
    let audit = sbc::relayctl(dir, &["audit", "show"]);
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.contains("trace show") && audit.contains("SIP trace"),
        "{audit}"
    );
}

#[test]
fn teams_direct_routing_profile_against_a_scripted_teams() {
    if let Some(why) = skip_reason(false) {
        eprintln!("skipped: {why}");
        return;
    }
    let net = SbcTopology::new().unwrap();
    net.alice
        .ip(&[
            "addr",
            "add",
            &format!("{}/24", TEAMS2.ip()),
            "dev",
            topology::ALICE_IF,
        ])
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = make_pki(&dir.join("pki"));
    let (teams, operator_leaf) = (&pki.leaves[1], &pki.leaves[2]);
    let teams_server =
        sip_peer::mutual_tls_server(&teams.certificate, &teams.key, &pki.ca).unwrap();
    let op_server =
        sip_peer::mutual_tls_server(&operator_leaf.certificate, &operator_leaf.key, &pki.ca)
            .unwrap();
    let mut teams1 = SipPeer::listen(&net.alice, "teams1", TEAMS1, teams_server.clone()).unwrap();
    let mut teams2 = SipPeer::listen(&net.alice, "teams2", TEAMS2, teams_server).unwrap();
    let mut operator = SipPeer::listen(&net.bob, "operator", OPERATOR, op_server).unwrap();
    let teams_client =
        sip_peer::mutual_tls_client(&teams.certificate, &teams.key, &pki.ca).unwrap();
    let op_client =
        sip_peer::mutual_tls_client(&operator_leaf.certificate, &operator_leaf.key, &pki.ca)
            .unwrap();

    let app = sbc::start_with(&net, dir, &pki, &trunks(&pki.ca));
    let mut ids = Ids::new();
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        options_cadence(&teams1, &teams2);
        let trace = start_trace(dir, &app);
        failover_call(
            &net,
            &mut operator,
            &mut teams1,
            &mut teams2,
            &op_client,
            &mut ids,
        );
        stop_trace(dir, &app, &trace);
        let conn = teams1
            .connect(&net.alice, SBC_TEAMS_SIDE, "sbc.test", teams_client.clone())
            .unwrap();
        call_and_refer(&mut teams1, conn, &mut operator, &mut ids);
        held_call_outlives_the_media_timeout(&mut teams1, conn, &mut operator, &mut ids);
        // Every call is gone from the SBC and the data plane.
        let calls = relay_testsupport::netns::wait_until(WAIT, || {
            let socket = dir.join("control.sock");
            let out = sbc::relayctl(dir, &["calls", "--admin-socket", socket.to_str().unwrap()]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            (out.status.success() && text.contains("0 active")).then_some(text)
        });
        assert!(calls.is_some(), "calls remain after the hang-ups");
        check_trace(dir);
    }));
    if let Err(panic) = run {
        eprintln!("{}", app.logs());
        std::panic::resume_unwind(panic);
    }
    assert!(app.stop(), "the appliance stops cleanly");
    // relay-control closed every connection properly: TLS close_notify, not a cut stream.
    for (peer, name) in [
        (&teams1, "teams1"),
        (&teams2, "teams2"),
        (&operator, "operator"),
    ] {
        let closes = relay_testsupport::netns::wait_until(WAIT, || {
            let c = peer.closes();
            (!c.is_empty()).then_some(c)
        })
        .unwrap_or_else(|| panic!("{name}: relay-control left its connections open"));
        assert!(closes.iter().all(|&(_, clean)| clean), "{name}: {closes:?}");
    }
}

/// `media_timeout_s` in `sbc::control_toml`; `hold_timeout_s` is left at its default (an hour).
const MEDIA_TIMEOUT: Duration = Duration::from_secs(8);

/// Two Teams calls without media: Teams puts one on hold (re-INVITE with `a=inactive`, passed
/// to the operator). The other is ended by the media timeout (BYE with a Reason on both
/// legs); the held one outlives it and is still up after, until Teams hangs up.
fn held_call_outlives_the_media_timeout(
    teams1: &mut SipPeer,
    conn: ConnId,
    operator: &mut SipPeer,
    ids: &mut Ids,
) {
    let started = Instant::now();
    let (mut held, held_op) = teams_call(teams1, conn, operator, ids, "+4930600");
    let (idle, idle_op) = teams_call(teams1, conn, operator, ids, "+4930700");
    let held_op_call_id = held_op.msg.call_id().unwrap().to_owned();

    let mut hold = held.request(ids, Method::Invite);
    msg::push(&mut hold, StdHeader::Contact, TEAMS_CONTACT);
    msg::push(&mut hold, StdHeader::ContentType, "application/sdp");
    hold.body = sdp_with(
        TEAMS1.ip(),
        52_000,
        "inactive",
        &[crypto(1, "AES_CM_128_HMAC_SHA1_80")],
    );
    teams1.send(conn, &hold).unwrap();
    let op_hold = operator
        .expect("the hold re-INVITE", WAIT, |m| {
            m.method() == Some(&Method::Invite) && m.call_id().is_ok_and(|c| c == held_op_call_id)
        })
        .unwrap();
    let body = String::from_utf8_lossy(&op_hold.msg.body).into_owned();
    assert!(
        body.contains("a=inactive"),
        "hold reaches the operator:\n{body}"
    );
    let answer = sdp_with(
        OPERATOR.ip(),
        42_000,
        "inactive",
        &[crypto(1, "AES_CM_128_HMAC_SHA1_80")],
    );
    operator
        .respond(
            &op_hold,
            200,
            "OK",
            None,
            Some("<sip:+4930600@198.18.20.2:5061;transport=tls>"),
            Some(&answer),
        )
        .unwrap();
    let ok = teams1
        .expect_final(&held.ids.call_id, Method::Invite, WAIT)
        .unwrap();
    assert_eq!(ok.msg.status(), Some(200), "hold is accepted");
    teams1.send(conn, &held.ack(ids)).unwrap();

    // The call that is not held ends by the media timeout, on both legs, with a Reason.
    let idle_op_call_id = idle_op.msg.call_id().unwrap().to_owned();
    let bound = MEDIA_TIMEOUT + WAIT;
    for (peer, call_id) in [
        (&mut *teams1, idle.ids.call_id.clone()),
        (&mut *operator, idle_op_call_id),
    ] {
        let bye = peer
            .expect(
                &format!("the media-timeout BYE for {call_id}"),
                bound,
                |m| m.method() == Some(&Method::Bye) && m.call_id().is_ok_and(|c| c == call_id),
            )
            .unwrap();
        let reason = bye.msg.headers.get(StdHeader::Reason).unwrap_or_default();
        assert!(reason.contains("media timeout"), "Reason {reason:?}");
        peer.respond(&bye, 200, "OK", None, None, None).unwrap();
    }
    assert!(
        started.elapsed() >= MEDIA_TIMEOUT,
        "the idle call ended after {:?}, before its media timeout",
        started.elapsed()
    );

    // The held call is past the media timeout and still up: no BYE on either leg.
    std::thread::sleep(Duration::from_secs(2));
    for (peer, call_id) in [
        (&mut *teams1, held.ids.call_id.clone()),
        (&mut *operator, held_op_call_id.clone()),
    ] {
        let bye = peer.expect(
            "no BYE for the held call",
            Duration::from_millis(100),
            |m| m.method() == Some(&Method::Bye) && m.call_id().is_ok_and(|c| c == call_id),
        );
        assert!(
            bye.is_err(),
            "the held call was ended: {:?}",
            bye.map(|b| sip_peer::first_line(&b.msg))
        );
    }

    // Teams hangs up the held call.
    let bye = held.request(ids, Method::Bye);
    teams1.send(conn, &bye).unwrap();
    let op_bye = operator
        .expect("BYE for the held call", WAIT, |m| {
            m.method() == Some(&Method::Bye) && m.call_id().is_ok_and(|c| c == held_op_call_id)
        })
        .unwrap();
    operator
        .respond(&op_bye, 200, "OK", None, None, None)
        .unwrap();
    let done = teams1
        .expect_final(&held.ids.call_id, Method::Bye, WAIT)
        .unwrap();
    assert_eq!(done.msg.status(), Some(200));
}
