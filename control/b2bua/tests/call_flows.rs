//! Call flows through the B2BUA core, sans I/O: SIP text in, actions out, time passed in.
//! Leg a is an SRTP trunk (Teams-like), leg b an operator trunk; each test plays both peers.

use std::net::SocketAddr;

use relay_b2bua::config::{B2buaConfig, MediaPolicy, PeerConfig, Profile, Route, TrunkConfig};
use relay_b2bua::ids::CountingIds;
use relay_b2bua::media::OsKeys;
use relay_b2bua::ports::PortAllocator;
use relay_b2bua::{Action, B2bua, Destination, EndedBy, Flow, ProgramOp, TimerKey};
use relay_proto::rss::{Placement, SOFTWARE_RETA_SIZE};
use relay_session::{CallSpec, RtcpMode};
use relay_sip::sdp::{Attribute, SessionDescription};
use relay_sip::{Limits, Message, StdHeader, Transport};
use relay_srtp::{MasterKey, SdesKey, Suite};

const ALICE: &str = "198.18.10.2:5061";
const BOB_1: &str = "198.18.20.2";
const BOB_2: &str = "198.18.20.3";

fn trunk(
    name: &str,
    peers: &[&str],
    transport: Transport,
    local: &str,
    media: &str,
    policy: MediaPolicy,
) -> TrunkConfig {
    TrunkConfig {
        name: name.into(),
        peers: peers
            .iter()
            .map(|h| PeerConfig {
                host: (*h).into(),
                port: if transport == Transport::Udp {
                    5060
                } else {
                    5061
                },
                transport: transport.clone(),
            })
            .collect(),
        source_addresses: peers.iter().map(|h| h.parse().unwrap()).collect(),
        local_host: "sbc.test".into(),
        local_signalling: local.parse().unwrap(),
        media_address: media.parse().unwrap(),
        media_policy: policy,
        suites: vec![Suite::AesCm128HmacSha1_80, Suite::AeadAes128Gcm],
        profile: Profile::Generic,
        options_ping: true,
    }
}

fn b2bua(b_transport: Transport, b_policy: MediaPolicy) -> B2bua {
    let config = B2buaConfig {
        trunks: vec![
            trunk(
                "alice",
                &["198.18.10.2"],
                Transport::Tls,
                "198.18.10.1:5061",
                "198.18.10.10",
                MediaPolicy::SrtpMandatory,
            ),
            trunk(
                "bob",
                &[BOB_1, BOB_2],
                b_transport,
                "198.18.20.1:5061",
                "198.18.20.10",
                b_policy,
            ),
        ],
        routes: vec![Route {
            from: 0,
            prefix: "+49".into(),
            to: 1,
        }],
        max_calls: 10,
        t1_ns: 500_000_000,
        invite_timeout_ns: 32_000_000_000,
        product: "relay-test".into(),
        options_interval_ns: 30_000_000_000,
        media_timeout_ns: 20_000_000_000,
        hold_timeout_ns: 600_000_000_000,
        media_check_ns: 5_000_000_000,
    };
    let mut placement = Placement::new(2);
    placement.add_address("198.18.10.10".parse().unwrap(), SOFTWARE_RETA_SIZE);
    placement.add_address("198.18.20.10".parse().unwrap(), SOFTWARE_RETA_SIZE);
    let ports = PortAllocator::new(placement, 20_000, 40_000, 1_000_000_000);
    B2bua::new(
        config,
        ports,
        Box::new(CountingIds::default()),
        Box::new(OsKeys),
    )
}

fn alice_flow() -> Flow {
    Flow {
        id: 1,
        transport: Transport::Tls,
        remote: ALICE.parse().unwrap(),
    }
}

fn parse(text: &str) -> Message {
    Message::parse(text.replace('\n', "\r\n").as_bytes(), &Limits::default())
        .unwrap_or_else(|e| panic!("{e:?}: {text}"))
}

fn key(suite: Suite) -> String {
    SdesKey::new(MasterKey::random(suite).unwrap()).to_inline()
}

fn sdp(ip: &str, port: u16, proto: &str, cryptos: &[(u32, Suite, &str)], extra: &str) -> String {
    let mut s = format!(
        "v=0\no=- 1 1 IN IP4 {ip}\ns=-\nc=IN IP4 {ip}\nt=0 0\nm=audio {port} {proto} 0 8 101\na=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\na=sendrecv\n"
    );
    for (tag, suite, k) in cryptos {
        s.push_str(&format!("a=crypto:{tag} {} {k}\n", suite.name()));
    }
    s.push_str(extra);
    s
}

fn with_body(head: &str, body: &str) -> Message {
    let body = body.replace('\n', "\r\n");
    let text = format!(
        "{head}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    Message::parse(
        text.replace("\r\n", "\n").replace('\n', "\r\n").as_bytes(),
        &Limits::default(),
    )
    .unwrap()
}

fn invite(branch: &str, number: &str, body: &str) -> Message {
    let head = format!(
        "INVITE sip:{number}@sbc.test:5061;transport=tls SIP/2.0\r\n\
Via: SIP/2.0/TLS 198.18.10.2:5061;branch=z9hG4bK{branch}\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:+4930111@alice.test>;tag=a1\r\n\
To: <sip:{number}@sbc.test>\r\n\
Call-ID: call-{branch}@alice.test\r\n\
CSeq: 10 INVITE\r\n\
Contact: <sip:alice@198.18.10.2:5061;transport=tls>\r\n"
    );
    with_body(&head, body)
}

fn sends(actions: &[Action]) -> Vec<(Destination, Message)> {
    let mut out = Vec::new();
    for a in actions {
        match a {
            Action::Send { to, message } => out.push((to.clone(), message.clone())),
            Action::Program { then, .. } => out.extend(sends(then)),
            _ => {}
        }
    }
    out
}

fn programs(actions: &[Action]) -> Vec<ProgramOp> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Program { op, .. } => Some(op.clone()),
            _ => None,
        })
        .collect()
}

fn ended(actions: &[Action]) -> Vec<relay_b2bua::CallEnd> {
    let mut out = Vec::new();
    for a in actions {
        match a {
            Action::Ended(e) => out.push((**e).clone()),
            Action::Program { then, .. } => out.extend(ended(then)),
            _ => {}
        }
    }
    out
}

fn status(m: &Message) -> u16 {
    m.status().unwrap_or(0)
}

/// b's response to our INVITE `inv`, with `code` and optionally an SDP body.
fn response(inv: &Message, code: u16, reason: &str, to_tag: &str, body: Option<&str>) -> Message {
    let mut r = Message::response_to(inv, code, reason).unwrap();
    if inv.to_addr().unwrap().tag().is_none() {
        r.add_to_tag(to_tag).unwrap();
    }
    r.headers.push(
        relay_sip::Header::new(StdHeader::Contact, format!("<sip:bob@{BOB_1}:5060>")).unwrap(),
    );
    if let Some(b) = body {
        r.headers
            .push(relay_sip::Header::new(StdHeader::ContentType, "application/sdp").unwrap());
        r.body = b.replace('\n', "\r\n").into_bytes();
    }
    r
}

fn bob_flow() -> Flow {
    Flow {
        id: 2,
        transport: Transport::Udp,
        remote: format!("{BOB_1}:5060").parse().unwrap(),
    }
}

fn the_invite_to_b(actions: &[Action]) -> Message {
    sends(actions)
        .into_iter()
        .find(|(to, m)| {
            matches!(to, Destination::Peer { .. })
                && m.method().is_some_and(|m| m.as_str() == "INVITE")
        })
        .expect("an INVITE to b")
        .1
}

fn installed(actions: &[Action]) -> CallSpec {
    match programs(actions).into_iter().next() {
        Some(ProgramOp::Add(spec)) => spec,
        other => panic!("expected an Add, got {other:?}"),
    }
}

#[test]
fn an_srtp_call_to_a_plain_rtp_trunk_is_anchored_with_fresh_keys_and_ended_by_bye() {
    let mut sbc = b2bua(Transport::Udp, MediaPolicy::Rtp);
    let alice_key = key(Suite::AesCm128HmacSha1_80);
    let offer = sdp(
        "198.18.10.2",
        4000,
        "RTP/SAVP",
        &[(1, Suite::AesCm128HmacSha1_80, &alice_key)],
        "a=rtcp-mux\na=ice-ufrag:abcd\n",
    );
    let out = sbc.on_message(&alice_flow(), invite("1", "+4930999", &offer), 0);
    let to_a = sends(&out);
    assert_eq!(status(&to_a[0].1), 100);
    let inv = the_invite_to_b(&out);
    // The far leg is a new dialog with our identifiers; the users are carried.
    assert_ne!(inv.call_id().unwrap(), "call-1@alice.test");
    assert!(inv
        .headers
        .get(StdHeader::From)
        .unwrap()
        .contains("\"Alice\" <sip:+4930111@sbc.test>"));
    assert_eq!(inv.max_forwards().unwrap(), Some(69));
    assert!(inv
        .top_via()
        .unwrap()
        .branch()
        .unwrap()
        .starts_with("z9hG4bKrly"));
    let b_offer = SessionDescription::parse(&inv.body, &Limits::default()).unwrap();
    let m = &b_offer.media[0];
    assert_eq!(
        m.proto.as_str(),
        "RTP/AVP",
        "plain RTP towards the operator trunk"
    );
    assert_eq!(m.cryptos().count(), 0);
    assert!(!m.attributes.iter().any(Attribute::is_ice), "ICE stripped");
    assert_eq!(
        b_offer.media_connection(0).unwrap().address.ip(),
        Some("198.18.20.10".parse().unwrap())
    );
    // A timer guards the INVITE, and over UDP it is retransmitted.
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Timer {
            key: TimerKey::InviteTimeout(..),
            ..
        }
    )));
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Timer {
            key: TimerKey::Retransmit(_),
            ..
        }
    )));

    let ringing = sbc.on_message(&bob_flow(), response(&inv, 180, "Ringing", "b1", None), 1);
    let r = sends(&ringing);
    assert_eq!(r.len(), 1);
    assert_eq!(status(&r[0].1), 180);
    let a_tag = r[0].1.to_addr().unwrap().tag().unwrap().to_owned();

    let answer = sdp(BOB_1, 6000, "RTP/AVP", &[], "");
    let ok = sbc.on_message(
        &bob_flow(),
        response(&inv, 200, "OK", "b1", Some(&answer)),
        2,
    );
    // The data plane is programmed first; the 200 to a follows it.
    let spec = installed(&ok);
    let then = match &ok
        .iter()
        .find(|a| matches!(a, Action::Program { .. }))
        .unwrap()
    {
        Action::Program { then, .. } => sends(then),
        _ => unreachable!(),
    };
    let ok_to_a = &then
        .iter()
        .find(|(to, _)| *to == Destination::Flow(1))
        .unwrap()
        .1;
    assert_eq!(status(ok_to_a), 200);
    assert_eq!(ok_to_a.to_addr().unwrap().tag(), Some(a_tag.as_str()));
    let ack_to_b = sends(&ok)
        .into_iter()
        .find(|(_, m)| m.method().is_some_and(|m| m.as_str() == "ACK"))
        .unwrap()
        .1;
    assert_eq!(
        ack_to_b.request_uri().unwrap().to_string(),
        format!("sip:bob@{BOB_1}:5060")
    );
    let a_answer = SessionDescription::parse(&ok_to_a.body, &Limits::default()).unwrap();
    let am = &a_answer.media[0];
    assert_eq!(am.proto.as_str(), "RTP/SAVP");
    let cryptos: Vec<_> = am.cryptos().collect();
    assert_eq!(cryptos.len(), 1, "exactly one a=crypto in the answer");
    assert_eq!(cryptos[0].tag, 1);
    assert!(
        !am.rtcp_mux(),
        "b did not accept rtcp-mux, so neither does a's answer"
    );
    assert_eq!(
        a_answer.media_connection(0).unwrap().address.ip(),
        Some("198.18.10.10".parse().unwrap())
    );

    // The media pair: a's key received from a, a fresh key sent to a; plain towards b.
    assert_eq!(spec.media.len(), 1);
    let pair = &spec.media[0];
    assert_eq!(pair.rtcp, RtcpMode::PortPlusOne);
    assert_eq!(pair.a.receive.as_ref().unwrap().key, alice_key);
    let sent_to_a = pair.a.send.as_ref().unwrap();
    assert_ne!(sent_to_a.key, alice_key);
    assert!(
        cryptos[0].to_string().contains(&sent_to_a.key),
        "the answer carries the key the relay sends with"
    );
    assert_eq!(pair.a.remote, Some("198.18.10.2:4000".parse().unwrap()));
    assert_eq!(pair.a.local.port(), am.port);
    assert_eq!(
        pair.b.remote,
        Some(format!("{BOB_1}:6000").parse().unwrap())
    );
    assert_eq!(pair.b.local.port(), m.port);
    assert!(pair.b.receive.is_none() && pair.b.send.is_none());

    // a's ACK, then BYE from a: BYE to b, the data plane call removed, the call recorded.
    let ack = parse(&format!(
        "ACK sip:sbc.test:5061;transport=tls SIP/2.0\nVia: SIP/2.0/TLS 198.18.10.2:5061;branch=z9hG4bKack1\nMax-Forwards: 70\nFrom: <sip:+4930111@alice.test>;tag=a1\nTo: <sip:+4930999@sbc.test>;tag={a_tag}\nCall-ID: call-1@alice.test\nCSeq: 10 ACK\nContent-Length: 0\n\n"
    ));
    let acked = sbc.on_message(&alice_flow(), ack, 3);
    assert!(
        matches!(&acked[..], [Action::Persist(_)]),
        "the confirmed call is kept: {acked:?}"
    );
    let bye = parse(&format!(
        "BYE sip:sbc.test:5061;transport=tls SIP/2.0\nVia: SIP/2.0/TLS 198.18.10.2:5061;branch=z9hG4bKbye1\nMax-Forwards: 70\nFrom: <sip:+4930111@alice.test>;tag=a1\nTo: <sip:+4930999@sbc.test>;tag={a_tag}\nCall-ID: call-1@alice.test\nCSeq: 11 BYE\nReason: Q.850;cause=16;text=\"normal\"\nContent-Length: 0\n\n"
    ));
    let out = sbc.on_message(&alice_flow(), bye, 4_000_000_000);
    let msgs = sends(&out);
    assert!(msgs
        .iter()
        .any(|(to, m)| *to == Destination::Flow(1) && status(m) == 200));
    let bye_b = &msgs
        .iter()
        .find(|(to, _)| matches!(to, Destination::Peer { .. }))
        .unwrap()
        .1;
    assert_eq!(bye_b.method().unwrap().as_str(), "BYE");
    assert_eq!(bye_b.call_id().unwrap(), inv.call_id().unwrap());
    assert_eq!(bye_b.to_addr().unwrap().tag(), Some("b1"));
    assert!(matches!(&programs(&out)[..], [ProgramOp::Remove(id)] if *id == spec.id));
    let end = &ended(&out)[0];
    assert_eq!(end.ended_by, EndedBy::Caller);
    assert_eq!((end.status, end.reason.as_str()), (200, "normal"));
    assert_eq!(end.callee, "+4930999");
    assert!(end.answer_ns.is_some());
    assert_eq!(sbc.active_calls(), 0);
    assert_eq!(sbc.ports_in_use(), 0, "ports back (in quarantine)");
}

#[test]
fn srtp_on_both_legs_gets_a_key_per_leg_and_direction() {
    let mut sbc = b2bua(Transport::Tls, MediaPolicy::SrtpMandatory);
    let alice_key = key(Suite::AesCm128HmacSha1_80);
    let offer = sdp(
        "198.18.10.2",
        4000,
        "RTP/SAVP",
        &[
            (
                3,
                Suite::AesCm256HmacSha1_80,
                &key(Suite::AesCm256HmacSha1_80),
            ),
            (4, Suite::AesCm128HmacSha1_80, &alice_key),
        ],
        "a=rtcp-mux\n",
    );
    let out = sbc.on_message(&alice_flow(), invite("2", "+4930999", &offer), 0);
    let inv = the_invite_to_b(&out);
    let b_offer = SessionDescription::parse(&inv.body, &Limits::default()).unwrap();
    let offered: Vec<_> = b_offer.media[0]
        .cryptos()
        .map(|c| (c.tag, c.suite.name().to_owned()))
        .collect();
    assert_eq!(
        offered,
        [
            (1, "AES_CM_128_HMAC_SHA1_80".into()),
            (2, "AEAD_AES_128_GCM".into())
        ]
    );
    assert!(b_offer.media[0].rtcp_mux());
    let bob_key = key(Suite::AeadAes128Gcm);
    let answer = sdp(
        BOB_1,
        6000,
        "RTP/SAVP",
        &[(2, Suite::AeadAes128Gcm, &bob_key)],
        "a=rtcp-mux\n",
    );
    let out = sbc.on_message(
        &bob_flow(),
        response(&inv, 200, "OK", "b2", Some(&answer)),
        1,
    );
    let spec = installed(&out);
    let pair = &spec.media[0];
    assert_eq!(pair.rtcp, RtcpMode::Mux);
    // a chose tag 4 (the first suite its trunk accepts); b answered tag 2.
    assert_eq!(pair.a.receive.as_ref().unwrap().key, alice_key);
    assert_eq!(pair.b.receive.as_ref().unwrap().key, bob_key);
    assert_eq!(pair.b.send.as_ref().unwrap().suite, "AEAD_AES_128_GCM");
    let keys = [&pair.a.receive, &pair.a.send, &pair.b.receive, &pair.b.send]
        .map(|k| k.as_ref().unwrap().key.clone());
    for i in 0..4 {
        for j in i + 1..4 {
            assert_ne!(keys[i], keys[j], "four different keys");
        }
    }
    let ok_to_a = sends(&out)
        .into_iter()
        .find(|(to, m)| *to == Destination::Flow(1) && status(m) == 200)
        .unwrap()
        .1;
    let a_answer = SessionDescription::parse(&ok_to_a.body, &Limits::default()).unwrap();
    let c: Vec<_> = a_answer.media[0].cryptos().collect();
    assert_eq!(
        (c.len(), c[0].tag, c[0].suite.name()),
        (1, 4, "AES_CM_128_HMAC_SHA1_80")
    );
    assert!(a_answer.media[0].rtcp_mux());
    // The record names both legs' suites.
    let a_tag = ok_to_a.to_addr().unwrap().tag().unwrap().to_owned();
    let bye = parse(&format!(
        "BYE sip:sbc.test:5061;transport=tls SIP/2.0\nVia: SIP/2.0/TLS 198.18.10.2:5061;branch=z9hG4bKbye2\nMax-Forwards: 70\nFrom: <sip:+4930111@alice.test>;tag=a1\nTo: <sip:+4930999@sbc.test>;tag={a_tag}\nCall-ID: call-2@alice.test\nCSeq: 11 BYE\nContent-Length: 0\n\n"
    ));
    let out = sbc.on_message(&alice_flow(), bye, 2);
    assert_eq!(
        ended(&out)[0].suites,
        [(
            Some("AES_CM_128_HMAC_SHA1_80".to_owned()),
            Some("AEAD_AES_128_GCM".to_owned())
        )]
    );
}

/// What an SDP says about its endpoint, in a form `sdp()` can splice in: the origin's user
/// and session name, `i=`/`u=`/`e=`/`p=` lines and `a=tool`.
fn identifying(sdp: &str, who: &str) -> String {
    sdp.replace("o=- ", &format!("o={who} "))
        .replace(
            "s=-\n",
            &format!("s={who}'s call\ni=desk phone of {who}\nu=http://{who}.example/\ne={who}@example.com\np=+49 30 {who}\n"),
        )
        .replace("t=0 0\n", &format!("t=0 0\na=tool:{who}-softphone 1.0\n"))
        .replace("a=sendrecv\n", &format!("i={who}'s microphone\na=sendrecv\na=ssrc:1234 cname:{who}@example.com\n"))
}

#[test]
fn sdp_says_nothing_about_the_endpoint_on_the_other_side() {
    let mut sbc = b2bua(Transport::Tls, MediaPolicy::SrtpMandatory);
    let offer = identifying(
        &sdp(
            "198.18.10.2",
            4000,
            "RTP/SAVP",
            &[(
                1,
                Suite::AesCm128HmacSha1_80,
                &key(Suite::AesCm128HmacSha1_80),
            )],
            "",
        ),
        "alice",
    );
    let out = sbc.on_message(&alice_flow(), invite("th", "+4930999", &offer), 0);
    let inv = the_invite_to_b(&out);
    let body = String::from_utf8_lossy(&inv.body).into_owned();
    let answer = identifying(
        &sdp(
            BOB_1,
            6000,
            "RTP/SAVP",
            &[(
                1,
                Suite::AesCm128HmacSha1_80,
                &key(Suite::AesCm128HmacSha1_80),
            )],
            "",
        ),
        "bob",
    );
    let out = sbc.on_message(
        &bob_flow(),
        response(&inv, 200, "OK", "b2", Some(&answer)),
        1,
    );
    let ok_to_a = sends(&out)
        .into_iter()
        .find(|(to, m)| *to == Destination::Flow(1) && status(m) == 200)
        .unwrap()
        .1;
    let back = String::from_utf8_lossy(&ok_to_a.body).into_owned();
    for (sent, who) in [(&body, "alice"), (&back, "bob")] {
        for line in sent.lines() {
            // (Keys are random base64: "bob" may well stand in one.)
            let hidden = line.starts_with("o=-")
                || line.starts_with("a=ssrc:1234 cname:")
                || line.starts_with("a=crypto:");
            assert!(
                hidden || !line.contains(who),
                "{who} shows in {line:?}:\n{sent}"
            );
            for kind in ["i=", "u=", "e=", "p=", "k=", "a=tool"] {
                assert!(!line.starts_with(kind), "{line:?} passed:\n{sent}");
            }
        }
        assert!(sent.contains("s=-\r\n"), "{sent}");
        // SSRCs pass: the relay forwards them, and endpoints need them.
        assert!(
            sent.contains(&format!("a=ssrc:1234 cname:{who}@example.com")),
            "{sent}"
        );
    }
}

#[test]
fn an_offer_without_acceptable_crypto_gets_488_and_takes_no_ports() {
    let mut sbc = b2bua(Transport::Udp, MediaPolicy::Rtp);
    for body in [
        sdp("198.18.10.2", 4000, "RTP/AVP", &[], ""),
        sdp(
            "198.18.10.2",
            4000,
            "RTP/SAVP",
            &[],
            "a=crypto:1 F8_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\n",
        ),
    ] {
        let out = sbc.on_message(&alice_flow(), invite("3", "+4930999", &body), 0);
        let r = sends(&out);
        assert_eq!(status(&r[0].1), 488, "{body}");
        assert!(r[0].1.headers.get(StdHeader::Warning).is_some());
    }
    assert_eq!(sbc.ports_in_use(), 0);
    assert_eq!(sbc.active_calls(), 0);
}

#[test]
fn requests_that_cannot_be_served_get_their_status() {
    let mut sbc = b2bua(Transport::Udp, MediaPolicy::Rtp);
    let offer = sdp(
        "198.18.10.2",
        4000,
        "RTP/SAVP",
        &[(
            1,
            Suite::AesCm128HmacSha1_80,
            &key(Suite::AesCm128HmacSha1_80),
        )],
        "",
    );
    // No route for the number.
    let out = sbc.on_message(&alice_flow(), invite("4", "+1555", &offer), 0);
    assert_eq!(status(&sends(&out)[0].1), 404);
    // An unknown source.
    let stranger = Flow {
        id: 9,
        transport: Transport::Tls,
        remote: "198.18.99.9:5061".parse::<SocketAddr>().unwrap(),
    };
    let out = sbc.on_message(&stranger, invite("5", "+4930999", &offer), 0);
    assert_eq!(status(&sends(&out)[0].1), 403);
    // Max-Forwards 0.
    let mut hop = invite("6", "+4930999", &offer);
    hop.headers
        .set(relay_sip::Header::new(StdHeader::MaxForwards, "0").unwrap());
    assert_eq!(
        status(&sends(&sbc.on_message(&alice_flow(), hop, 0))[0].1),
        483
    );
    // An extension we do not support.
    let mut req = invite("7", "+4930999", &offer);
    req.headers
        .push(relay_sip::Header::new(StdHeader::Require, "foo, 100rel").unwrap());
    let r = sends(&sbc.on_message(&alice_flow(), req, 0));
    assert_eq!(status(&r[0].1), 420);
    assert_eq!(
        r[0].1.headers.get(StdHeader::Unsupported),
        Some("foo, 100rel")
    );
    // Our own INVITE coming back: a loop.
    let out = sbc.on_message(&alice_flow(), invite("8", "+4930999", &offer), 0);
    let mut looped = the_invite_to_b(&out);
    looped.headers.set(
        relay_sip::Header::new(
            StdHeader::Via,
            format!(
                "SIP/2.0/TLS 198.18.10.2:5061;branch=z9hG4bKx, {}",
                looped.headers.get(StdHeader::Via).unwrap()
            ),
        )
        .unwrap(),
    );
    looped.start = relay_sip::StartLine::Request(relay_sip::RequestLine {
        method: relay_sip::Method::Invite,
        uri: relay_sip::Uri::parse("sip:+4930999@sbc.test").unwrap(),
    });
    assert_eq!(
        status(&sends(&sbc.on_message(&alice_flow(), looped, 0))[0].1),
        482
    );
    // A BYE for no dialog; an unknown method; OPTIONS.
    let bye = parse("BYE sip:sbc.test SIP/2.0\nVia: SIP/2.0/TLS 198.18.10.2:5061;branch=z9hG4bKb9\nMax-Forwards: 70\nFrom: <sip:a@alice.test>;tag=x\nTo: <sip:b@sbc.test>;tag=nope\nCall-ID: nothing\nCSeq: 1 BYE\nContent-Length: 0\n\n");
    assert_eq!(
        status(&sends(&sbc.on_message(&alice_flow(), bye, 0))[0].1),
        481
    );
    let options = parse("OPTIONS sip:sbc.test SIP/2.0\nVia: SIP/2.0/TLS 198.18.10.2:5061;branch=z9hG4bKo1\nMax-Forwards: 70\nFrom: <sip:ping@alice.test>;tag=x\nTo: <sip:sbc.test>\nCall-ID: ping1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n");
    let r = sends(&sbc.on_message(&alice_flow(), options, 0));
    assert_eq!(status(&r[0].1), 200);
    assert!(r[0]
        .1
        .headers
        .get(StdHeader::Allow)
        .unwrap()
        .contains("INVITE"));
    let subscribe = parse("SUBSCRIBE sip:sbc.test SIP/2.0\nVia: SIP/2.0/TLS 198.18.10.2:5061;branch=z9hG4bKs1\nMax-Forwards: 70\nFrom: <sip:a@alice.test>;tag=x\nTo: <sip:sbc.test>\nCall-ID: s1\nCSeq: 1 SUBSCRIBE\nContent-Length: 0\n\n");
    assert_eq!(
        status(&sends(&sbc.on_message(&alice_flow(), subscribe, 0))[0].1),
        405
    );
}

#[test]
fn cancel_before_the_answer_ends_both_legs() {
    let mut sbc = b2bua(Transport::Udp, MediaPolicy::Rtp);
    let offer = sdp(
        "198.18.10.2",
        4000,
        "RTP/SAVP",
        &[(
            1,
            Suite::AesCm128HmacSha1_80,
            &key(Suite::AesCm128HmacSha1_80),
        )],
        "",
    );
    let out = sbc.on_message(&alice_flow(), invite("9", "+4930999", &offer), 0);
    let inv = the_invite_to_b(&out);
    sbc.on_message(&bob_flow(), response(&inv, 180, "Ringing", "b9", None), 1);
    let cancel = parse("CANCEL sip:+4930999@sbc.test:5061;transport=tls SIP/2.0\nVia: SIP/2.0/TLS 198.18.10.2:5061;branch=z9hG4bK9\nMax-Forwards: 70\nFrom: \"Alice\" <sip:+4930111@alice.test>;tag=a1\nTo: <sip:+4930999@sbc.test>\nCall-ID: call-9@alice.test\nCSeq: 10 CANCEL\nContent-Length: 0\n\n");
    let out = sbc.on_message(&alice_flow(), cancel, 2);
    let msgs = sends(&out);
    let codes: Vec<u16> = msgs
        .iter()
        .filter(|(to, _)| *to == Destination::Flow(1))
        .map(|(_, m)| status(m))
        .collect();
    assert_eq!(codes, [200, 487], "200 to the CANCEL, 487 to the INVITE");
    let to_b = &msgs
        .iter()
        .find(|(to, _)| matches!(to, Destination::Peer { .. }))
        .unwrap()
        .1;
    assert_eq!(to_b.method().unwrap().as_str(), "CANCEL");
    assert_eq!(
        to_b.top_via().unwrap().branch(),
        inv.top_via().unwrap().branch()
    );
    assert_eq!(ended(&out)[0].status, 487);
    // b's 487 is ACKed; a 200 that raced the CANCEL is ACKed and hung up.
    let out = sbc.on_message(
        &bob_flow(),
        response(
            &inv,
            200,
            "OK",
            "b9",
            Some(&sdp(BOB_1, 6000, "RTP/AVP", &[], "")),
        ),
        3,
    );
    let methods: Vec<String> = sends(&out)
        .iter()
        .map(|(_, m)| m.method().unwrap().as_str().to_owned())
        .collect();
    assert_eq!(methods, ["ACK", "BYE"]);
    assert!(programs(&out).is_empty(), "no media for a cancelled call");
    assert_eq!(sbc.ports_in_use(), 0);
}

#[test]
fn a_503_from_the_first_peer_fails_over_and_a_603_does_not() {
    let mut sbc = b2bua(Transport::Udp, MediaPolicy::Rtp);
    let offer = sdp(
        "198.18.10.2",
        4000,
        "RTP/SAVP",
        &[(
            1,
            Suite::AesCm128HmacSha1_80,
            &key(Suite::AesCm128HmacSha1_80),
        )],
        "",
    );
    let out = sbc.on_message(&alice_flow(), invite("10", "+4930999", &offer), 0);
    let first = the_invite_to_b(&out);
    let out = sbc.on_message(
        &bob_flow(),
        response(&first, 503, "Service Unavailable", "x", None),
        1,
    );
    let msgs = sends(&out);
    assert_eq!(msgs[0].1.method().unwrap().as_str(), "ACK");
    let (to, second) = &msgs[1];
    assert_eq!(*to, Destination::Peer { trunk: 1, peer: 1 });
    assert_eq!(
        second.request_uri().unwrap().to_string(),
        format!("sip:+4930999@{BOB_2}:5060")
    );
    assert!(
        !msgs.iter().any(|(to, _)| *to == Destination::Flow(1)),
        "a hears nothing of the failover"
    );
    // A decline from the second peer ends the call.
    let out = sbc.on_message(&bob_flow(), response(second, 603, "Decline", "y", None), 2);
    let to_a: Vec<u16> = sends(&out)
        .iter()
        .filter(|(to, _)| *to == Destination::Flow(1))
        .map(|(_, m)| status(m))
        .collect();
    assert_eq!(to_a, [603]);
    let end = &ended(&out)[0];
    assert_eq!((end.status, end.ended_by), (603, EndedBy::Callee));
    assert_eq!(sbc.ports_in_use(), 0);
}

#[test]
fn no_answer_times_out_with_408_after_every_peer() {
    let mut sbc = b2bua(Transport::Tls, MediaPolicy::SrtpOptional);
    let offer = sdp(
        "198.18.10.2",
        4000,
        "RTP/SAVP",
        &[(
            1,
            Suite::AesCm128HmacSha1_80,
            &key(Suite::AesCm128HmacSha1_80),
        )],
        "",
    );
    let out = sbc.on_message(&alice_flow(), invite("11", "+4930999", &offer), 0);
    let timer = |out: &[Action]| {
        out.iter()
            .find_map(|a| match a {
                Action::Timer {
                    key: key @ TimerKey::InviteTimeout(..),
                    at_ns,
                } => Some((key.clone(), *at_ns)),
                _ => None,
            })
            .unwrap()
    };
    let (k1, at1) = timer(&out);
    let out = sbc.on_timer(k1, at1);
    assert_eq!(sends(&out)[0].0, Destination::Peer { trunk: 1, peer: 1 });
    let (k2, at2) = timer(&out);
    let out = sbc.on_timer(k2, at2);
    let to_a: Vec<u16> = sends(&out)
        .iter()
        .filter(|(to, _)| *to == Destination::Flow(1))
        .map(|(_, m)| status(m))
        .collect();
    assert_eq!(to_a, [408]);
    assert_eq!(ended(&out)[0].ended_by, EndedBy::Relay);
}

#[test]
fn a_data_plane_refusal_turns_the_answer_into_500_and_hangs_up_b() {
    let mut sbc = b2bua(Transport::Udp, MediaPolicy::Rtp);
    let offer = sdp(
        "198.18.10.2",
        4000,
        "RTP/SAVP",
        &[(
            1,
            Suite::AesCm128HmacSha1_80,
            &key(Suite::AesCm128HmacSha1_80),
        )],
        "",
    );
    let out = sbc.on_message(&alice_flow(), invite("12", "+4930999", &offer), 0);
    let inv = the_invite_to_b(&out);
    let out = sbc.on_message(
        &bob_flow(),
        response(
            &inv,
            200,
            "OK",
            "b12",
            Some(&sdp(BOB_1, 6000, "RTP/AVP", &[], "")),
        ),
        1,
    );
    let key = match out
        .iter()
        .find(|a| matches!(a, Action::Program { .. }))
        .unwrap()
    {
        Action::Program { call, .. } => *call,
        _ => unreachable!(),
    };
    let out = sbc.program_failed(key, "no such port", 2);
    let msgs = sends(&out);
    assert!(msgs
        .iter()
        .any(|(to, m)| matches!(to, Destination::Peer { .. })
            && m.method().is_some_and(|m| m.as_str() == "BYE")));
    assert!(msgs
        .iter()
        .any(|(to, m)| *to == Destination::Flow(1) && status(m) == 500));
    assert_eq!(ended(&out)[0].status, 500);
    assert_eq!(sbc.active_calls(), 0);
}

/// Sets up an SRTP-to-SRTP call and returns the B2BUA, b's INVITE, the installed spec and
/// a's To tag.
fn confirmed_srtp_call(alice_key: &str, bob_key: &str) -> (B2bua, Message, CallSpec, String) {
    let mut sbc = b2bua(Transport::Tls, MediaPolicy::SrtpMandatory);
    let offer = sdp(
        "198.18.10.2",
        4000,
        "RTP/SAVP",
        &[(1, Suite::AesCm128HmacSha1_80, alice_key)],
        "",
    );
    let inv = the_invite_to_b(&sbc.on_message(&alice_flow(), invite("20", "+4930999", &offer), 0));
    let answer = sdp(
        BOB_1,
        6000,
        "RTP/SAVP",
        &[(1, Suite::AesCm128HmacSha1_80, bob_key)],
        "",
    );
    let out = sbc.on_message(
        &bob_flow(),
        response(&inv, 200, "OK", "b20", Some(&answer)),
        1,
    );
    let spec = installed(&out);
    let ok = sends(&out)
        .into_iter()
        .find(|(to, m)| *to == Destination::Flow(1) && status(m) == 200)
        .unwrap()
        .1;
    let a_tag = ok.to_addr().unwrap().tag().unwrap().to_owned();
    let ack = parse(&format!("ACK sip:sbc.test:5061;transport=tls SIP/2.0\nVia: SIP/2.0/TLS 198.18.10.2:5061;branch=z9hG4bKack20\nMax-Forwards: 70\nFrom: <sip:+4930111@alice.test>;tag=a1\nTo: <sip:+4930999@sbc.test>;tag={a_tag}\nCall-ID: call-20@alice.test\nCSeq: 10 ACK\nContent-Length: 0\n\n"));
    sbc.on_message(&alice_flow(), ack, 2);
    (sbc, inv, spec, a_tag)
}

fn crypto_keys(m: &Message) -> Vec<String> {
    let sdp = SessionDescription::parse(&m.body, &Limits::default()).unwrap();
    sdp.media[0]
        .cryptos()
        .map(|c| c.to_string().split(' ').nth(2).unwrap().to_owned())
        .collect()
}

#[test]
fn hold_and_resume_by_re_invite_keep_every_key_and_re_keying_changes_one() {
    let (alice_key, bob_key) = (
        key(Suite::AesCm128HmacSha1_80),
        key(Suite::AesCm128HmacSha1_80),
    );
    let (mut sbc, inv, spec, a_tag) = confirmed_srtp_call(&alice_key, &bob_key);
    let relay_to_b = spec.media[0].b.send.as_ref().unwrap().key.clone();
    let relay_to_a = spec.media[0].a.send.as_ref().unwrap().key.clone();
    // alice holds: a=sendonly, same key.
    let hold = with_body(
        &format!("INVITE sip:sbc.test:5061;transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 198.18.10.2:5061;branch=z9hG4bKre1\r\nMax-Forwards: 70\r\nFrom: <sip:+4930111@alice.test>;tag=a1\r\nTo: <sip:+4930999@sbc.test>;tag={a_tag}\r\nCall-ID: call-20@alice.test\r\nCSeq: 11 INVITE\r\nContact: <sip:alice@198.18.10.2:5061;transport=tls>\r\n"),
        &sdp("198.18.10.2", 4000, "RTP/SAVP", &[(1, Suite::AesCm128HmacSha1_80, &alice_key)], "").replace("a=sendrecv", "a=sendonly"),
    );
    let out = sbc.on_message(&alice_flow(), hold, 3);
    let (to, reinv) = sends(&out).into_iter().next().unwrap();
    assert!(matches!(to, Destination::Peer { trunk: 1, .. }));
    assert_eq!(reinv.method().unwrap().as_str(), "INVITE");
    assert_eq!(
        reinv.call_id().unwrap(),
        inv.call_id().unwrap(),
        "in b's dialog"
    );
    assert_eq!(reinv.to_addr().unwrap().tag(), Some("b20"));
    assert!(reinv.cseq().unwrap().seq > inv.cseq().unwrap().seq);
    let b_sdp = SessionDescription::parse(&reinv.body, &Limits::default()).unwrap();
    assert_eq!(
        b_sdp.media[0].direction(),
        Some(relay_sip::sdp::Direction::SendOnly)
    );
    assert_eq!(
        b_sdp.media[0].port,
        spec.media[0].b.local.port(),
        "the same port"
    );
    assert!(
        crypto_keys(&reinv).contains(&relay_to_b),
        "the relay's running key towards b"
    );
    // bob answers recvonly with his same key.
    let answer = sdp(
        BOB_1,
        6000,
        "RTP/SAVP",
        &[(1, Suite::AesCm128HmacSha1_80, &bob_key)],
        "",
    )
    .replace("a=sendrecv", "a=recvonly");
    let mut ok = response(&reinv, 200, "OK", "b20", Some(&answer));
    ok.headers.set(
        relay_sip::Header::new(StdHeader::To, reinv.headers.get(StdHeader::To).unwrap()).unwrap(),
    );
    let out = sbc.on_message(&bob_flow(), ok, 4);
    // Same media: nothing to program; the ACK to b and the 200 to a go out.
    assert!(
        programs(&out).is_empty(),
        "unchanged keys and addresses: {:?}",
        programs(&out)
    );
    let msgs = sends(&out);
    assert_eq!(msgs[0].1.method().unwrap().as_str(), "ACK");
    let to_a = &msgs
        .iter()
        .find(|(to, _)| *to == Destination::Flow(1))
        .unwrap()
        .1;
    assert_eq!(status(to_a), 200);
    assert_eq!(
        crypto_keys(to_a),
        std::slice::from_ref(&relay_to_a),
        "the relay's running key towards a, once"
    );
    let a_sdp = SessionDescription::parse(&to_a.body, &Limits::default()).unwrap();
    assert_eq!(
        a_sdp.media[0].direction(),
        Some(relay_sip::sdp::Direction::RecvOnly)
    );

    // bob re-keys: his new key is installed (a new context at ROC 0), the others stay.
    let bob_new = key(Suite::AesCm128HmacSha1_80);
    let rekey = with_body(
        &format!("INVITE sip:sbc.test:5061;transport=tls SIP/2.0\r\nVia: SIP/2.0/UDP {BOB_1}:5060;branch=z9hG4bKre2\r\nMax-Forwards: 70\r\nFrom: <sip:+4930999@{BOB_1}>;tag=b20\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@{BOB_1}:5060>\r\n", inv.headers.get(StdHeader::From).unwrap(), inv.call_id().unwrap()),
        &sdp(BOB_1, 6000, "RTP/SAVP", &[(1, Suite::AesCm128HmacSha1_80, &bob_new)], ""),
    );
    let out = sbc.on_message(&bob_flow(), rekey, 5);
    let (to, to_alice) = sends(&out).into_iter().next().unwrap();
    assert_eq!(to, Destination::Flow(1), "in a's dialog, on a's connection");
    assert_eq!(to_alice.call_id().unwrap(), "call-20@alice.test");
    assert_eq!(to_alice.to_addr().unwrap().tag(), Some("a1"));
    assert!(crypto_keys(&to_alice).contains(&relay_to_a));
    let mut ok = Message::response_to(&to_alice, 200, "OK").unwrap();
    ok.headers.push(
        relay_sip::Header::new(
            StdHeader::Contact,
            "<sip:alice@198.18.10.2:5061;transport=tls>",
        )
        .unwrap(),
    );
    ok.headers
        .push(relay_sip::Header::new(StdHeader::ContentType, "application/sdp").unwrap());
    ok.body = sdp(
        "198.18.10.2",
        4000,
        "RTP/SAVP",
        &[(1, Suite::AesCm128HmacSha1_80, &alice_key)],
        "",
    )
    .replace('\n', "\r\n")
    .into_bytes();
    let out = sbc.on_message(&alice_flow(), ok, 6);
    let modified = match &programs(&out)[..] {
        [ProgramOp::Modify(s)] => s.clone(),
        other => panic!("{other:?}"),
    };
    let m = &modified.media[0];
    assert_eq!(m.b.receive.as_ref().unwrap().key, bob_new, "bob's new key");
    assert_eq!(m.a.receive.as_ref().unwrap().key, alice_key);
    assert_eq!(m.a.send.as_ref().unwrap().key, relay_to_a);
    assert_eq!(m.b.send.as_ref().unwrap().key, relay_to_b);
    assert_eq!(
        (m.a.local, m.b.local),
        (spec.media[0].a.local, spec.media[0].b.local)
    );
    let to_bob = sends(&out)
        .into_iter()
        .find(|(to, _)| *to == Destination::Flow(2))
        .map(|(_, m)| m);
    let to_bob = to_bob.expect("the 200 goes back to bob on his flow");
    assert_eq!(status(&to_bob), 200);
    assert_eq!(crypto_keys(&to_bob), [relay_to_b]);
}

fn counters(packets: u64) -> relay_session::stats::CallCounters {
    let mut c = relay_session::stats::CallCounters {
        id: "x".into(),
        media: vec![Default::default()],
    };
    c.media[0].a.rx_packets = packets;
    c.media[0].b.rx_packets = packets;
    c
}

#[test]
fn options_keep_each_peers_health_and_calls_avoid_a_peer_that_is_down() {
    let mut sbc = b2bua(Transport::Udp, MediaPolicy::Rtp);
    let timers: Vec<TimerKey> = sbc
        .start(0)
        .into_iter()
        .filter_map(|a| match a {
            Action::Timer { key, .. } => Some(key),
            _ => None,
        })
        .collect();
    assert_eq!(
        timers,
        [
            TimerKey::OptionsPing(0, 0),
            TimerKey::OptionsPing(1, 0),
            TimerKey::OptionsPing(1, 1)
        ]
    );
    let out = sbc.on_timer(TimerKey::OptionsPing(1, 0), 1_000);
    let (to, ping) = sends(&out).into_iter().next().unwrap();
    assert_eq!(to, Destination::Peer { trunk: 1, peer: 0 });
    assert_eq!(ping.method().unwrap().as_str(), "OPTIONS");
    assert!(ping.headers.get(StdHeader::Contact).is_some());
    assert!(out.iter().any(|a| matches!(a, Action::Timer { key: TimerKey::OptionsPing(1, 0), at_ns } if *at_ns == 1_000 + 30_000_000_000)));
    let mut ok = Message::response_to(&ping, 200, "OK").unwrap();
    ok.add_to_tag("p").unwrap();
    sbc.on_message(&bob_flow(), ok, 5_001_000);
    // The second peer never answers.
    let out = sbc.on_timer(TimerKey::OptionsPing(1, 1), 2_000);
    let timeout = out
        .iter()
        .find_map(|a| match a {
            Action::Timer {
                key: k @ TimerKey::OptionsTimeout(_),
                ..
            } => Some(k.clone()),
            _ => None,
        })
        .unwrap();
    sbc.on_timer(timeout, 32_000_002_000);
    let health: std::collections::HashMap<_, _> = sbc.health().into_iter().collect();
    let (p0, p1) = (&health[&(1, 0)], &health[&(1, 1)]);
    assert_eq!((p0.up, p0.rtt_ns), (Some(true), Some(5_000_000)));
    assert_eq!((p1.up, p1.timeouts), (Some(false), 1));

    // Peer 0 down, peer 1 up: a new call goes to peer 1 first.
    let ping0 = sends(&sbc.on_timer(TimerKey::OptionsPing(1, 0), 40_000_000_000))
        .remove(0)
        .1;
    sbc.on_message(
        &bob_flow(),
        Message::response_to(&ping0, 503, "Service Unavailable").unwrap(),
        40_000_000_100,
    );
    let ping1 = sends(&sbc.on_timer(TimerKey::OptionsPing(1, 1), 40_000_000_000))
        .remove(0)
        .1;
    sbc.on_message(
        &bob_flow(),
        Message::response_to(&ping1, 200, "OK").unwrap(),
        40_000_000_200,
    );
    let offer = sdp(
        "198.18.10.2",
        4000,
        "RTP/SAVP",
        &[(
            1,
            Suite::AesCm128HmacSha1_80,
            &key(Suite::AesCm128HmacSha1_80),
        )],
        "",
    );
    let out = sbc.on_message(
        &alice_flow(),
        invite("30", "+4930999", &offer),
        41_000_000_000,
    );
    let first = sends(&out)
        .into_iter()
        .find(|(to, _)| matches!(to, Destination::Peer { .. }))
        .unwrap();
    assert_eq!(first.0, Destination::Peer { trunk: 1, peer: 1 });
}

#[test]
fn a_call_without_media_is_ended_and_a_held_call_waits_for_its_hold_timeout() {
    let (alice_key, bob_key) = (
        key(Suite::AesCm128HmacSha1_80),
        key(Suite::AesCm128HmacSha1_80),
    );
    let (mut sbc, _inv, spec, a_tag) = confirmed_srtp_call(&alice_key, &bob_key);
    // Media checks read the data plane's counters; moving counters keep the call.
    let out = sbc.on_timer(TimerKey::MediaCheck(1), 5_000_000_000);
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::QueryMedia { dataplane_id, .. } if *dataplane_id == spec.id)));
    assert!(sbc
        .on_media(1, Some(&counters(100)), 5_000_000_000)
        .is_empty());
    assert!(sbc
        .on_media(1, Some(&counters(200)), 10_000_000_000)
        .is_empty());
    assert!(
        sbc.on_media(1, Some(&counters(200)), 29_000_000_000)
            .is_empty(),
        "19 s silent: not yet"
    );
    let out = sbc.on_media(1, Some(&counters(200)), 30_000_000_001);
    let byes: Vec<_> = sends(&out)
        .into_iter()
        .filter(|(_, m)| m.method().is_some_and(|m| m.as_str() == "BYE"))
        .collect();
    assert_eq!(byes.len(), 2, "BYE to both legs");
    assert!(byes.iter().all(|(_, m)| m
        .headers
        .get(StdHeader::Reason)
        .unwrap()
        .contains("media timeout")));
    assert!(matches!(&programs(&out)[..], [ProgramOp::Remove(_)]));
    let end = &ended(&out)[0];
    assert_eq!(
        (end.reason.as_str(), end.ended_by),
        ("media timeout", EndedBy::Relay)
    );

    // A held call (alice sent sendonly) is kept past the media timeout.
    let (mut sbc, _inv, _spec, a_tag2) = confirmed_srtp_call(&alice_key, &bob_key);
    let _ = a_tag;
    let hold = with_body(
        &format!("INVITE sip:sbc.test:5061;transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 198.18.10.2:5061;branch=z9hG4bKre9\r\nMax-Forwards: 70\r\nFrom: <sip:+4930111@alice.test>;tag=a1\r\nTo: <sip:+4930999@sbc.test>;tag={a_tag2}\r\nCall-ID: call-20@alice.test\r\nCSeq: 11 INVITE\r\nContact: <sip:alice@198.18.10.2:5061;transport=tls>\r\n"),
        &sdp("198.18.10.2", 4000, "RTP/SAVP", &[(1, Suite::AesCm128HmacSha1_80, &alice_key)], "").replace("a=sendrecv", "a=inactive"),
    );
    sbc.on_message(&alice_flow(), hold, 3);
    assert!(
        sbc.on_media(1, Some(&counters(0)), 100_000_000_000)
            .is_empty(),
        "held: 100 s silent is fine"
    );
    let out = sbc.on_media(1, Some(&counters(0)), 700_000_000_000);
    assert_eq!(
        ended(&out)[0].reason,
        "media timeout",
        "past the hold timeout"
    );
}

/// Leg b is a Teams trunk (calls from the operator side to Teams).
fn teams_b2bua() -> B2bua {
    let mut teams = trunk(
        "teams",
        &[BOB_1, BOB_2],
        Transport::Tls,
        "198.18.20.1:5061",
        "198.18.20.10",
        MediaPolicy::SrtpMandatory,
    );
    teams.profile = Profile::Teams;
    teams.local_host = "sbc.example.com".into();
    teams.suites = vec![Suite::AesCm128HmacSha1_80];
    let mut operator = trunk(
        "operator",
        &["198.18.10.2"],
        Transport::Tls,
        "198.18.10.1:5061",
        "198.18.10.10",
        MediaPolicy::SrtpOptional,
    );
    operator.local_host = "198.18.10.1".into();
    let config = B2buaConfig {
        trunks: vec![operator, teams],
        routes: vec![Route {
            from: 0,
            prefix: String::new(),
            to: 1,
        }],
        max_calls: 10,
        t1_ns: 500_000_000,
        invite_timeout_ns: 32_000_000_000,
        product: "relay-test".into(),
        options_interval_ns: 60_000_000_000,
        media_timeout_ns: 20_000_000_000,
        hold_timeout_ns: 600_000_000_000,
        media_check_ns: 5_000_000_000,
    };
    let mut placement = Placement::new(1);
    placement.add_address("198.18.10.10".parse().unwrap(), 0);
    placement.add_address("198.18.20.10".parse().unwrap(), 0);
    B2bua::new(
        config,
        PortAllocator::new(placement, 20_000, 40_000, 1_000),
        Box::new(CountingIds::default()),
        Box::new(OsKeys),
    )
}

#[test]
fn the_teams_profile_follows_microsofts_sbc_rules() {
    let mut sbc = teams_b2bua();
    // An operator call with plain RTP (SRTP optional there) to a Teams number.
    let offer = sdp("198.18.10.2", 4000, "RTP/AVP", &[], "a=rtcp-mux\n");
    let out = sbc.on_message(&alice_flow(), invite("40", "+4930999", &offer), 0);
    let inv = the_invite_to_b(&out);
    assert_eq!(
        inv.request_uri().unwrap().to_string(),
        format!("sip:+4930999@{BOB_1}:5061;transport=tls;user=phone")
    );
    assert_eq!(
        inv.headers.get(StdHeader::Contact),
        Some("<sip:sbc.example.com:5061;transport=tls>"),
        "our FQDN, never an address"
    );
    assert!(inv
        .headers
        .get(StdHeader::From)
        .unwrap()
        .contains("@sbc.example.com"));
    assert!(inv
        .headers
        .get(StdHeader::To)
        .unwrap()
        .contains(";user=phone"));
    assert!(inv
        .headers
        .iter()
        .any(|h| h.name().as_str().eq_ignore_ascii_case("X-MS-SBC")));
    let offered = SessionDescription::parse(&inv.body, &Limits::default()).unwrap();
    let cryptos: Vec<String> = offered.media[0].cryptos().map(|c| c.to_string()).collect();
    assert_eq!(cryptos.len(), 1, "{cryptos:?}");
    assert!(
        cryptos[0].starts_with("1 AES_CM_128_HMAC_SHA1_80 inline:")
            && cryptos[0].ends_with("|2^31"),
        "{cryptos:?}"
    );
    assert_eq!(offered.media[0].proto.as_str(), "RTP/SAVP");
    assert!(offered.media[0].rtcp_mux());
    // Teams answers; the operator side gets plain RTP back.
    let teams_key = key(Suite::AesCm128HmacSha1_80);
    let answer = sdp(
        BOB_1,
        6000,
        "RTP/SAVP",
        &[(1, Suite::AesCm128HmacSha1_80, &format!("{teams_key}|2^31"))],
        "a=rtcp-mux\n",
    );
    let out = sbc.on_message(
        &Flow {
            id: 2,
            transport: Transport::Tls,
            remote: format!("{BOB_1}:5061").parse().unwrap(),
        },
        response(&inv, 200, "OK", "t1", Some(&answer)),
        1,
    );
    let spec = installed(&out);
    assert_eq!(
        spec.media[0].b.receive.as_ref().unwrap().key,
        format!("{teams_key}|2^31")
    );
    assert!(
        spec.media[0].a.send.is_none() && spec.media[0].a.receive.is_none(),
        "plain towards the operator"
    );
    assert_eq!(spec.media[0].rtcp, RtcpMode::Mux);
    // OPTIONS towards Teams carry our FQDN Contact and X-MS-SBC.
    let ping = sends(&sbc.on_timer(TimerKey::OptionsPing(1, 0), 2))
        .remove(0)
        .1;
    assert_eq!(
        ping.headers.get(StdHeader::Contact),
        Some("<sip:sbc.example.com:5061;transport=tls>")
    );
    assert!(ping
        .headers
        .iter()
        .any(|h| h.name().as_str().eq_ignore_ascii_case("X-MS-SBC")));
}

#[test]
fn answers_towards_teams_carry_one_crypto_and_hold_as_inactive() {
    // Teams calls out: leg a is the Teams trunk.
    let mut teams = trunk(
        "teams",
        &["198.18.10.2"],
        Transport::Tls,
        "198.18.10.1:5061",
        "198.18.10.10",
        MediaPolicy::SrtpMandatory,
    );
    teams.profile = Profile::Teams;
    teams.suites = vec![Suite::AesCm128HmacSha1_80];
    let operator = trunk(
        "operator",
        &[BOB_1],
        Transport::Udp,
        "198.18.20.1:5061",
        "198.18.20.10",
        MediaPolicy::Rtp,
    );
    let config = B2buaConfig {
        trunks: vec![teams, operator],
        routes: vec![Route {
            from: 0,
            prefix: String::new(),
            to: 1,
        }],
        max_calls: 10,
        t1_ns: 500_000_000,
        invite_timeout_ns: 32_000_000_000,
        product: "relay-test".into(),
        options_interval_ns: 60_000_000_000,
        media_timeout_ns: 20_000_000_000,
        hold_timeout_ns: 600_000_000_000,
        media_check_ns: 5_000_000_000,
    };
    let mut placement = Placement::new(1);
    placement.add_address("198.18.10.10".parse().unwrap(), 0);
    placement.add_address("198.18.20.10".parse().unwrap(), 0);
    let mut sbc = B2bua::new(
        config,
        PortAllocator::new(placement, 20_000, 40_000, 1_000),
        Box::new(CountingIds::default()),
        Box::new(OsKeys),
    );
    // Teams offers two suites; the answer has exactly one a=crypto, with |2^31.
    let offer = sdp(
        "198.18.10.2",
        4000,
        "RTP/SAVP",
        &[
            (
                1,
                Suite::AesCm128HmacSha1_80,
                &key(Suite::AesCm128HmacSha1_80),
            ),
            (
                2,
                Suite::AesCm128HmacSha1_32,
                &key(Suite::AesCm128HmacSha1_32),
            ),
        ],
        "",
    );
    let inv = the_invite_to_b(&sbc.on_message(&alice_flow(), invite("41", "+4930999", &offer), 0));
    // The operator puts the call on hold in its answer (sendonly): Teams hears a=inactive.
    let answer = sdp(BOB_1, 6000, "RTP/AVP", &[], "").replace("a=sendrecv", "a=sendonly");
    let out = sbc.on_message(
        &bob_flow(),
        response(&inv, 200, "OK", "o1", Some(&answer)),
        1,
    );
    let ok = sends(&out)
        .into_iter()
        .find(|(to, m)| *to == Destination::Flow(1) && status(m) == 200)
        .unwrap()
        .1;
    let a = SessionDescription::parse(&ok.body, &Limits::default()).unwrap();
    let c: Vec<String> = a.media[0].cryptos().map(|c| c.to_string()).collect();
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(
        c[0].starts_with("1 AES_CM_128_HMAC_SHA1_80 ") && c[0].ends_with("|2^31"),
        "{c:?}"
    );
    assert_eq!(
        a.media[0].direction(),
        Some(relay_sip::sdp::Direction::Inactive)
    );
    assert_eq!(
        a.media_connection(0).unwrap().address.ip(),
        Some("198.18.10.10".parse().unwrap()),
        "never c=0.0.0.0"
    );
}

#[test]
fn an_unreachable_peer_is_marked_down_and_its_call_moves_to_the_next_peer() {
    let mut sbc = b2bua(Transport::Tls, MediaPolicy::Rtp);
    let offer = sdp(
        "198.18.10.2",
        4000,
        "RTP/SAVP",
        &[(
            1,
            Suite::AesCm128HmacSha1_80,
            &key(Suite::AesCm128HmacSha1_80),
        )],
        "",
    );
    let out = sbc.on_message(&alice_flow(), invite("50", "+4930999", &offer), 0);
    assert_eq!(
        sends(&out)
            .into_iter()
            .find(|(to, _)| matches!(to, Destination::Peer { .. }))
            .unwrap()
            .0,
        Destination::Peer { trunk: 1, peer: 0 }
    );
    let out = sbc.peer_unreachable(1, 0, 10);
    let (to, second) = sends(&out).into_iter().next().unwrap();
    assert_eq!(to, Destination::Peer { trunk: 1, peer: 1 });
    assert_eq!(second.method().unwrap().as_str(), "INVITE");
    let health: std::collections::HashMap<_, _> = sbc.health().into_iter().collect();
    assert_eq!(health[&(1, 0)].up, Some(false));
    // The second is unreachable too: a hears 503.
    let out = sbc.peer_unreachable(1, 1, 20);
    let to_a: Vec<u16> = sends(&out)
        .iter()
        .filter(|(to, _)| *to == Destination::Flow(1))
        .map(|(_, m)| status(m))
        .collect();
    assert_eq!(to_a, [503]);
    assert_eq!(sbc.active_calls(), 0);
}

#[test]
fn over_udp_the_200_to_a_is_resent_until_its_ack_even_after_a_ringing_b() {
    let mut sbc = b2bua(Transport::Udp, MediaPolicy::Rtp);
    let udp_alice = Flow {
        id: 1,
        transport: Transport::Udp,
        remote: "198.18.10.2:5060".parse().unwrap(),
    };
    let offer = sdp(
        "198.18.10.2",
        4000,
        "RTP/SAVP",
        &[(
            1,
            Suite::AesCm128HmacSha1_80,
            &key(Suite::AesCm128HmacSha1_80),
        )],
        "",
    );
    let inv = the_invite_to_b(&sbc.on_message(&udp_alice, invite("60", "+4930999", &offer), 0));
    sbc.on_message(&bob_flow(), response(&inv, 180, "Ringing", "b60", None), 1);
    let out = sbc.on_message(
        &bob_flow(),
        response(
            &inv,
            200,
            "OK",
            "b60",
            Some(&sdp(BOB_1, 6000, "RTP/AVP", &[], "")),
        ),
        2,
    );
    let then = match out
        .iter()
        .find(|a| matches!(a, Action::Program { .. }))
        .unwrap()
    {
        Action::Program { then, .. } => then.clone(),
        _ => unreachable!(),
    };
    let (timer, at) = then
        .iter()
        .find_map(|a| match a {
            Action::Timer {
                key: k @ TimerKey::Retransmit(_),
                at_ns,
            } => Some((k.clone(), *at_ns)),
            _ => None,
        })
        .expect("a retransmission of the 200");
    let again = sbc.on_timer(timer, at);
    let resent: Vec<u16> = sends(&again)
        .iter()
        .filter(|(to, _)| *to == Destination::Flow(1))
        .map(|(_, m)| status(m))
        .collect();
    assert_eq!(resent, [200], "the 200 again, though b had rung");
    let (next, at2) = again
        .iter()
        .find_map(|a| match a {
            Action::Timer {
                key: k @ TimerKey::Retransmit(_),
                at_ns,
            } => Some((k.clone(), *at_ns)),
            _ => None,
        })
        .expect("and again later");
    assert_eq!(at2 - at, 1_000_000_000, "doubling from T1");
    // The INVITE to b is not resent any more (b answered).
    assert!(!sends(&again)
        .iter()
        .any(|(to, m)| matches!(to, Destination::Peer { .. }) && m.is_request()));
    let ok = sends(&then)
        .into_iter()
        .find(|(_, m)| status(m) == 200)
        .unwrap()
        .1;
    let a_tag = ok.to_addr().unwrap().tag().unwrap().to_owned();
    let ack = parse(&format!("ACK sip:sbc.test SIP/2.0\nVia: SIP/2.0/UDP 198.18.10.2:5060;branch=z9hG4bKack60\nMax-Forwards: 70\nFrom: <sip:+4930111@alice.test>;tag=a1\nTo: <sip:+4930999@sbc.test>;tag={a_tag}\nCall-ID: call-60@alice.test\nCSeq: 10 ACK\nContent-Length: 0\n\n"));
    let acked = sbc.on_message(&udp_alice, ack, 3);
    assert!(
        acked.iter().any(|a| matches!(a, Action::Persist(_))),
        "a confirmed call is kept for a restart"
    );
    assert!(
        sends(&sbc.on_timer(next, at2)).is_empty(),
        "stopped by the ACK"
    );
}

#[test]
fn an_invite_without_offer_gets_the_offer_in_the_200_and_the_answer_in_the_ack() {
    let mut sbc = b2bua(Transport::Udp, MediaPolicy::Rtp);
    let head = "INVITE sip:+4930999@sbc.test:5061;transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 198.18.10.2:5061;branch=z9hG4bK70\r\nMax-Forwards: 70\r\nFrom: <sip:+4930111@alice.test>;tag=a1\r\nTo: <sip:+4930999@sbc.test>\r\nCall-ID: call-70@alice.test\r\nCSeq: 10 INVITE\r\nContact: <sip:alice@198.18.10.2:5061;transport=tls>\r\nContent-Length: 0\r\n\r\n";
    let out = sbc.on_message(
        &alice_flow(),
        Message::parse(head.as_bytes(), &Limits::default()).unwrap(),
        0,
    );
    let inv = the_invite_to_b(&out);
    assert!(inv.body.is_empty(), "no offer towards b either");
    assert_eq!(sbc.ports_in_use(), 0);
    // b offers plain RTP in its 200.
    let b_offer = sdp(BOB_1, 6000, "RTP/AVP", &[], "");
    let out = sbc.on_message(
        &bob_flow(),
        response(&inv, 200, "OK", "b70", Some(&b_offer)),
        1,
    );
    let msgs = sends(&out);
    assert!(
        !msgs
            .iter()
            .any(|(_, m)| m.method().is_some_and(|m| m.as_str() == "ACK")),
        "b's ACK waits for a's answer"
    );
    assert!(
        programs(&out).is_empty(),
        "nothing to install before the answer"
    );
    let ok = &msgs
        .iter()
        .find(|(to, m)| *to == Destination::Flow(1) && status(m) == 200)
        .unwrap()
        .1;
    let to_a = SessionDescription::parse(&ok.body, &Limits::default()).unwrap();
    assert_eq!(
        to_a.media[0].proto.as_str(),
        "RTP/SAVP",
        "a's trunk is SRTP-mandatory: our offer is SRTP"
    );
    let offered_tag = to_a.media[0].cryptos().next().unwrap().tag;
    // a answers in its ACK.
    let alice_key = key(Suite::AesCm128HmacSha1_80);
    let a_tag = ok.to_addr().unwrap().tag().unwrap().to_owned();
    let ack = with_body(
        &format!("ACK sip:sbc.test:5061;transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 198.18.10.2:5061;branch=z9hG4bKack70\r\nMax-Forwards: 70\r\nFrom: <sip:+4930111@alice.test>;tag=a1\r\nTo: <sip:+4930999@sbc.test>;tag={a_tag}\r\nCall-ID: call-70@alice.test\r\nCSeq: 10 ACK\r\n"),
        &sdp("198.18.10.2", 4000, "RTP/SAVP", &[(offered_tag, Suite::AesCm128HmacSha1_80, &alice_key)], ""),
    );
    let out = sbc.on_message(&alice_flow(), ack, 2);
    let spec = installed(&out);
    let pair = &spec.media[0];
    assert_eq!(pair.a.receive.as_ref().unwrap().key, alice_key);
    assert!(pair.a.send.is_some() && pair.b.send.is_none() && pair.b.receive.is_none());
    assert_eq!(pair.a.remote, Some("198.18.10.2:4000".parse().unwrap()));
    assert_eq!(
        pair.b.remote,
        Some(format!("{BOB_1}:6000").parse().unwrap())
    );
    // Then b's ACK, with the answer.
    let ack_b = sends(&out)
        .into_iter()
        .find(|(_, m)| m.method().is_some_and(|m| m.as_str() == "ACK"))
        .unwrap()
        .1;
    let answer = SessionDescription::parse(&ack_b.body, &Limits::default()).unwrap();
    assert_eq!(answer.media[0].proto.as_str(), "RTP/AVP");
    assert_eq!(answer.media[0].port, pair.b.local.port());
    assert_eq!(sbc.ports_in_use(), 2);
}

#[test]
fn a_call_the_data_plane_lost_is_installed_again_where_its_streams_stood() {
    let (alice_key, bob_key) = (
        key(Suite::AesCm128HmacSha1_80),
        key(Suite::AesCm128HmacSha1_80),
    );
    let (mut sbc, _inv, spec, _a_tag) = confirmed_srtp_call(&alice_key, &bob_key);
    let mut c = counters(500);
    let at = |roc, seq| relay_session::StreamPosition {
        ssrc: 0x1234,
        roc,
        seq,
        srtcp_next: 9,
    };
    c.media[0].a.srtp_receive = vec![at(1, 70)];
    c.media[0].b.srtp_send = vec![at(1, 70)];
    c.media[0].b.srtp_receive = vec![at(2, 5)];
    c.media[0].a.srtp_send = vec![at(2, 5)];
    assert!(sbc.on_media(1, Some(&c), 5_000_000_000).is_empty());
    // The data plane answers that it does not know the call: it restarted.
    let out = sbc.on_media(1, None, 7_000_000_000);
    let again = match &programs(&out)[..] {
        [ProgramOp::Add(s)] => s.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(again.id, spec.id);
    let m = &again.media[0];
    assert_eq!(
        (m.a.local, m.b.local),
        (spec.media[0].a.local, spec.media[0].b.local)
    );
    assert_eq!(m.a.receive, spec.media[0].a.receive, "the same keys");
    assert_eq!(
        (m.a.resume_receive[0].roc, m.a.resume_receive[0].seq),
        (1, 70)
    );
    assert_eq!((m.b.resume_send[0].roc, m.b.resume_send[0].seq), (1, 70));
    assert_eq!((m.b.resume_receive[0].roc, m.a.resume_send[0].roc), (2, 2));
    assert!(sends(&out).is_empty(), "the call goes on: no BYE");
}

#[test]
fn a_refer_from_teams_connects_the_other_party_to_the_target_and_notifies() {
    let mut sbc = teams_b2bua();
    let teams_flow = Flow {
        id: 2,
        transport: Transport::Tls,
        remote: format!("{BOB_1}:5061").parse().unwrap(),
    };
    let offer = sdp("198.18.10.2", 4000, "RTP/AVP", &[], "a=rtcp-mux\n");
    let inv = the_invite_to_b(&sbc.on_message(&alice_flow(), invite("80", "+4930999", &offer), 0));
    let teams_key = format!("{}|2^31", key(Suite::AesCm128HmacSha1_80));
    let answer = sdp(
        BOB_1,
        6000,
        "RTP/SAVP",
        &[(1, Suite::AesCm128HmacSha1_80, &teams_key)],
        "a=rtcp-mux\n",
    );
    let out = sbc.on_message(
        &teams_flow,
        response(&inv, 200, "OK", "t80", Some(&answer)),
        1,
    );
    let spec = installed(&out);
    let a_tag = sends(&out)
        .into_iter()
        .find(|(to, m)| *to == Destination::Flow(1) && status(m) == 200)
        .unwrap()
        .1
        .to_addr()
        .unwrap()
        .tag()
        .unwrap()
        .to_owned();
    sbc.on_message(&alice_flow(), parse(&format!("ACK sip:sbc.test SIP/2.0\nVia: SIP/2.0/TLS 198.18.10.2:5061;branch=z9hG4bKack80\nMax-Forwards: 70\nFrom: <sip:+4930111@alice.test>;tag=a1\nTo: <sip:+4930999@sbc.test>;tag={a_tag}\nCall-ID: call-80@alice.test\nCSeq: 10 ACK\nContent-Length: 0\n\n")), 2);

    // Teams transfers the call to +4930777.
    let refer = parse(&format!(
        "REFER sip:sbc.example.com:5061;transport=tls SIP/2.0\nVia: SIP/2.0/TLS {BOB_1}:5061;branch=z9hG4bKref1\nMax-Forwards: 70\nFrom: {}\nTo: {}\nCall-ID: {}\nCSeq: 5 REFER\nContact: <sip:{BOB_1}:5061;transport=tls>\nRefer-To: <sip:+4930777@{BOB_1};user=phone>\nReferred-By: <sip:+4930999@{BOB_1};user=phone>\nContent-Length: 0\n\n",
        inv.headers.get(StdHeader::To).unwrap().to_owned() + ";tag=t80",
        inv.headers.get(StdHeader::From).unwrap(),
        inv.call_id().unwrap()
    ));
    let out = sbc.on_message(&teams_flow, refer, 3);
    let msgs = sends(&out);
    assert_eq!(status(&msgs[0].1), 202);
    let notify = &msgs[1].1;
    assert_eq!(notify.method().unwrap().as_str(), "NOTIFY");
    assert_eq!(
        notify.call_id().unwrap(),
        inv.call_id().unwrap(),
        "in the referrer's dialog"
    );
    assert_eq!(
        String::from_utf8_lossy(&notify.body),
        "SIP/2.0 100 Trying\r\n"
    );
    let (to, target_inv) = msgs[2].clone();
    assert!(matches!(to, Destination::Peer { trunk: 1, .. }));
    assert!(target_inv
        .request_uri()
        .unwrap()
        .to_string()
        .starts_with("sip:+4930777@"));
    assert_ne!(
        target_inv.call_id().unwrap(),
        inv.call_id().unwrap(),
        "a new dialog"
    );
    assert!(target_inv.headers.get(StdHeader::ReferredBy).is_some());
    let offered = SessionDescription::parse(&target_inv.body, &Limits::default()).unwrap();
    assert_eq!(
        offered.media[0].port,
        spec.media[0].b.local.port(),
        "the same relay port"
    );
    let new_send_key = offered.media[0]
        .cryptos()
        .next()
        .unwrap()
        .to_string()
        .split(' ')
        .nth(2)
        .unwrap()
        .to_owned();
    assert_ne!(
        new_send_key,
        spec.media[0].b.send.as_ref().unwrap().key,
        "a fresh key for the new peer"
    );

    // The target answers from another address with its own key.
    let target_key = format!("{}|2^31", key(Suite::AesCm128HmacSha1_80));
    let t_answer = sdp(
        BOB_2,
        7000,
        "RTP/SAVP",
        &[(1, Suite::AesCm128HmacSha1_80, &target_key)],
        "a=rtcp-mux\n",
    );
    let out = sbc.on_message(
        &teams_flow,
        response(&target_inv, 200, "OK", "z1", Some(&t_answer)),
        4,
    );
    let modified = match &programs(&out)[..] {
        [ProgramOp::Modify(s)] => s.clone(),
        other => panic!("{other:?}"),
    };
    let m = &modified.media[0];
    assert_eq!(m.b.remote, Some(format!("{BOB_2}:7000").parse().unwrap()));
    assert_eq!(m.b.receive.as_ref().unwrap().key, target_key);
    assert_eq!(m.b.send.as_ref().unwrap().key, new_send_key);
    assert_eq!(
        (m.a.local, m.a.remote),
        (spec.media[0].a.local, spec.media[0].a.remote),
        "the other party's leg untouched"
    );
    let then: Vec<String> = sends(&out)
        .iter()
        .map(|(_, m)| {
            m.method()
                .map(|x| x.as_str().to_owned())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        then,
        ["ACK", "NOTIFY", "BYE"],
        "ACK the target, tell the referrer, hang it up"
    );
    let done = sends(&out)[1].1.clone();
    assert_eq!(String::from_utf8_lossy(&done.body), "SIP/2.0 200 OK\r\n");
    // The target now is leg b: its BYE ends the call.
    let bye = parse(&format!(
        "BYE sip:sbc.example.com:5061;transport=tls SIP/2.0\nVia: SIP/2.0/TLS {BOB_2}:5061;branch=z9hG4bKzbye\nMax-Forwards: 70\nFrom: {};tag=z1\nTo: {}\nCall-ID: {}\nCSeq: 1 BYE\nContent-Length: 0\n\n",
        target_inv.headers.get(StdHeader::To).unwrap(),
        target_inv.headers.get(StdHeader::From).unwrap(),
        target_inv.call_id().unwrap()
    ));
    let out = sbc.on_message(&teams_flow, bye, 5);
    assert!(matches!(&programs(&out)[..], [ProgramOp::Remove(_)]));
    assert_eq!(ended(&out)[0].callee, "+4930777");
}

#[test]
fn an_update_without_offer_refreshes_the_session_locally() {
    let (alice_key, bob_key) = (
        key(Suite::AesCm128HmacSha1_80),
        key(Suite::AesCm128HmacSha1_80),
    );
    let (mut sbc, _inv, _spec, a_tag) = confirmed_srtp_call(&alice_key, &bob_key);
    let update = parse(&format!("UPDATE sip:sbc.test:5061;transport=tls SIP/2.0\nVia: SIP/2.0/TLS 198.18.10.2:5061;branch=z9hG4bKupd1\nMax-Forwards: 70\nFrom: <sip:+4930111@alice.test>;tag=a1\nTo: <sip:+4930999@sbc.test>;tag={a_tag}\nCall-ID: call-20@alice.test\nCSeq: 12 UPDATE\nContact: <sip:alice@198.18.10.2:5061;transport=tls>\nContent-Length: 0\n\n"));
    let out = sbc.on_message(&alice_flow(), update, 10);
    let msgs = sends(&out);
    assert_eq!(msgs.len(), 1, "answered here, not relayed: {msgs:?}");
    assert_eq!(
        (msgs[0].0.clone(), status(&msgs[0].1)),
        (Destination::Flow(1), 200)
    );
    assert!(programs(&out).is_empty());
}

#[test]
fn session_timers_are_kept_per_leg() {
    let mut sbc = b2bua(Transport::Udp, MediaPolicy::Rtp);
    let offer = sdp(
        "198.18.10.2",
        4000,
        "RTP/SAVP",
        &[(
            1,
            Suite::AesCm128HmacSha1_80,
            &key(Suite::AesCm128HmacSha1_80),
        )],
        "",
    );
    // Too short an interval: 422 with our Min-SE.
    let mut short = invite("90", "+4930999", &offer);
    short
        .headers
        .push(relay_sip::Header::new(StdHeader::SessionExpires, "30").unwrap());
    let r = sends(&sbc.on_message(&alice_flow(), short, 0));
    assert_eq!(status(&r[0].1), 422);
    assert_eq!(r[0].1.headers.get(StdHeader::MinSe), Some("90"));

    let mut inv_a = invite("91", "+4930999", &offer);
    inv_a
        .headers
        .push(relay_sip::Header::new(StdHeader::Supported, "timer").unwrap());
    inv_a
        .headers
        .push(relay_sip::Header::new(StdHeader::SessionExpires, "600").unwrap());
    let inv = the_invite_to_b(&sbc.on_message(&alice_flow(), inv_a, 0));
    assert_eq!(inv.headers.get(StdHeader::SessionExpires), Some("1800"));
    let mut ok = response(
        &inv,
        200,
        "OK",
        "b91",
        Some(&sdp(BOB_1, 6000, "RTP/AVP", &[], "")),
    );
    ok.headers
        .push(relay_sip::Header::new(StdHeader::SessionExpires, "1800;refresher=uac").unwrap());
    let out = sbc.on_message(&bob_flow(), ok, 1_000);
    let to_a = sends(&out)
        .into_iter()
        .find(|(to, m)| *to == Destination::Flow(1) && status(m) == 200)
        .unwrap()
        .1;
    assert_eq!(
        to_a.headers.get(StdHeader::SessionExpires),
        Some("600;refresher=uac"),
        "a refreshes"
    );
    assert_eq!(to_a.headers.get(StdHeader::Require), Some("timer"));
    let timers: Vec<(TimerKey, u64)> = out
        .iter()
        .filter_map(|a| match a {
            Action::Timer {
                key: k @ TimerKey::SessionTimer(..),
                at_ns,
            } => Some((k.clone(), *at_ns)),
            _ => None,
        })
        .collect();
    assert_eq!(timers.len(), 2, "{timers:?}");
    let (a_timer, a_at) = timers
        .iter()
        .find(|(k, _)| matches!(k, TimerKey::SessionTimer(_, relay_b2bua::Leg::A, _)))
        .cloned()
        .unwrap();
    let (b_timer, b_at) = timers
        .iter()
        .find(|(k, _)| matches!(k, TimerKey::SessionTimer(_, relay_b2bua::Leg::B, _)))
        .cloned()
        .unwrap();
    assert_eq!(
        b_at,
        1_000 + 900_000_000_000,
        "we refresh b at half its interval"
    );
    assert_eq!(
        a_at,
        1_000 + 400_000_000_000,
        "a's session ends at SE - SE/3 unless refreshed"
    );
    // Our refresh towards b: an UPDATE without an offer.
    let out = sbc.on_timer(b_timer, b_at);
    let (to, update) = sends(&out).remove(0);
    assert!(matches!(to, Destination::Peer { .. }));
    assert_eq!(update.method().unwrap().as_str(), "UPDATE");
    assert!(update.body.is_empty());
    // a refreshes by UPDATE: its timer starts again, so the old one does nothing.
    let a_tag = to_a.to_addr().unwrap().tag().unwrap().to_owned();
    let refresh = parse(&format!("UPDATE sip:sbc.test SIP/2.0\nVia: SIP/2.0/TLS 198.18.10.2:5061;branch=z9hG4bKupd9\nMax-Forwards: 70\nFrom: <sip:+4930111@alice.test>;tag=a1\nTo: <sip:+4930999@sbc.test>;tag={a_tag}\nCall-ID: call-91@alice.test\nCSeq: 11 UPDATE\nSession-Expires: 600;refresher=uac\nContent-Length: 0\n\n"));
    let ack = parse(&format!("ACK sip:sbc.test SIP/2.0\nVia: SIP/2.0/TLS 198.18.10.2:5061;branch=z9hG4bKack91\nMax-Forwards: 70\nFrom: <sip:+4930111@alice.test>;tag=a1\nTo: <sip:+4930999@sbc.test>;tag={a_tag}\nCall-ID: call-91@alice.test\nCSeq: 10 ACK\nContent-Length: 0\n\n"));
    sbc.on_message(&alice_flow(), ack, 2_000);
    let out = sbc.on_message(&alice_flow(), refresh, 300_000_000_000);
    assert_eq!(status(&sends(&out)[0].1), 200);
    let (a_timer2, a_at2) = out
        .iter()
        .find_map(|a| match a {
            Action::Timer {
                key: k @ TimerKey::SessionTimer(..),
                at_ns,
            } => Some((k.clone(), *at_ns)),
            _ => None,
        })
        .unwrap();
    assert!(
        sbc.on_timer(a_timer, a_at).is_empty(),
        "an old timer is ignored"
    );
    // a stops refreshing: the call is ended on both legs.
    let out = sbc.on_timer(a_timer2, a_at2);
    let byes = sends(&out)
        .iter()
        .filter(|(_, m)| m.method().is_some_and(|m| m.as_str() == "BYE"))
        .count();
    assert_eq!(byes, 2);
    assert_eq!(ended(&out)[0].reason, "session timer expired");
}
