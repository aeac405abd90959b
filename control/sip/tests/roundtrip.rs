//! Property tests: generated messages and SDPs survive writing and parsing unchanged, and
//! arbitrary bytes never make a parser panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use relay_sip::sdp::{
    Attribute, Connection, Crypto, CryptoSuite, Direction, IceAttribute, IceKind, KeyParam,
    KeySalt, Lifetime, MediaDescription, Mki, Origin, Proto, Rtcp, SessionDescription,
    SessionParam, Text, Timing, Word,
};
use relay_sip::{
    parse_datagram, Header, HeaderName, Host, Limits, Message, Method, NameAddr, Param, Params,
    SipUri, StartLine, StatusLine, StdHeader, StreamDecoder, Transport, Uri, Via,
};

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.!%*_+`'~-]{0,10}"
}

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,6}[a-z0-9](\\.[a-z][a-z0-9]{0,6}){0,2}"
            .prop_map(|s| Host::parse(&s).unwrap()),
        any::<u32>().prop_map(|a| Host::from(IpAddr::V4(Ipv4Addr::from(a)))),
        any::<u128>().prop_map(|a| Host::from(IpAddr::V6(Ipv6Addr::from(a)))),
    ]
}

fn sip_uri() -> impl Strategy<Value = SipUri> {
    (
        any::<bool>(),
        proptest::option::of("[a-zA-Z0-9._+-]{1,12}"),
        host(),
        proptest::option::of(any::<u16>()),
        proptest::collection::vec(
            (
                "[a-z][a-z0-9-]{0,8}",
                proptest::option::of("[a-zA-Z0-9.]{1,8}"),
            ),
            0..4,
        ),
    )
        .prop_map(|(secure, user, host, port, params)| {
            let mut u = SipUri::new(secure, host, port);
            u.set_user(user.as_deref()).unwrap();
            for (n, v) in params {
                u.set_param(&n, v.as_deref()).unwrap();
            }
            u
        })
}

fn params() -> impl Strategy<Value = Params> {
    proptest::collection::vec((token(), proptest::option::of(token())), 0..3).prop_map(|ps| {
        let mut out = Params::new();
        for (n, v) in ps {
            out.set(Param::new(&n, v.as_deref()).unwrap());
        }
        out
    })
}

fn name_addr() -> impl Strategy<Value = NameAddr> {
    (
        proptest::option::of("[ -~\u{e4}\u{20ac}]{0,16}"),
        sip_uri(),
        params(),
    )
        .prop_map(|(display_name, uri, params)| NameAddr {
            display_name,
            uri: Uri::Sip(uri),
            params,
        })
}

fn via() -> impl Strategy<Value = Via> {
    (
        prop_oneof![
            Just(Transport::Udp),
            Just(Transport::Tcp),
            Just(Transport::Tls),
            Just(Transport::Wss)
        ],
        host(),
        proptest::option::of(any::<u16>()),
        "z9hG4bK[a-zA-Z0-9]{1,16}",
        any::<bool>(),
    )
        .prop_map(|(transport, host, port, branch, rport)| {
            let mut params = Params::new();
            params.set(Param::new("branch", Some(&branch)).unwrap());
            if rport {
                params.set(Param::new("rport", None).unwrap());
            }
            Via {
                transport,
                host,
                port,
                params,
            }
        })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Invite),
        Just(Method::Bye),
        Just(Method::Options),
        Just(Method::Refer),
        Just(Method::Update),
        "[A-Z]{3,10}".prop_map(|m| Method::parse(&m).unwrap()),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        any::<bool>(),
        method(),
        sip_uri(),
        (100u16..700, "[A-Za-z][A-Za-z ]{0,20}"),
        proptest::collection::vec(via(), 1..4),
        (name_addr(), name_addr()),
        (
            "[a-zA-Z0-9.-]{1,20}(@[a-z.]{1,10})?",
            0u32..(1 << 31),
            0u8..=255,
        ),
        proptest::collection::vec(("X-[A-Za-z]{1,10}", "[!-~]([ -~\u{fc}]{0,20}[!-~])?"), 0..4),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(
            |(
                is_request,
                method,
                ruri,
                (code, reason),
                vias,
                (from, to),
                (call_id, seq, mf),
                extra,
                body,
            )| {
                let start = if is_request {
                    StartLine::Request(relay_sip::RequestLine {
                        method: method.clone(),
                        uri: Uri::Sip(ruri),
                    })
                } else {
                    StartLine::Response(StatusLine::new(code, reason.trim_end()).unwrap())
                };
                let mut m = Message {
                    start,
                    headers: Default::default(),
                    body,
                };
                let mut push = |name: HeaderName, value: String| {
                    m.headers.push(Header::new(name, value).unwrap());
                };
                // Several Vias share a line sometimes, as comma-separated values.
                let (first, rest) = vias.split_at(1);
                push(StdHeader::Via.into(), first[0].to_string());
                if !rest.is_empty() {
                    let joined: Vec<String> = rest.iter().map(|v| v.to_string()).collect();
                    push(StdHeader::Via.into(), joined.join(", "));
                }
                push(StdHeader::From.into(), from.to_string());
                push(StdHeader::To.into(), to.to_string());
                push(StdHeader::CallId.into(), call_id);
                push(StdHeader::CSeq.into(), format!("{seq} {method}"));
                if is_request {
                    push(StdHeader::MaxForwards.into(), mf.to_string());
                }
                for (n, v) in extra {
                    push(HeaderName::parse(&n).unwrap(), v);
                }
                if !m.body.is_empty() {
                    push(
                        StdHeader::ContentType.into(),
                        "application/octet-stream".into(),
                    );
                }
                m
            },
        )
}

proptest! {
    #[test]
    fn messages_round_trip(m in message()) {
        let bytes = m.to_bytes();
        let parsed = Message::parse(&bytes, &Limits::default()).unwrap();
        prop_assert_eq!(&parsed, &m);
        // And through the stream decoder, split anywhere.
        let mut d = StreamDecoder::new(Limits::default());
        let split = bytes.len() / 3;
        d.push(&bytes[..split]);
        prop_assert_eq!(d.next_frame().unwrap(), None);
        d.push(&bytes[split..]);
        match d.next_frame().unwrap() {
            Some(relay_sip::Frame::Message(got)) => prop_assert_eq!(&*got, &m),
            other => prop_assert!(false, "{:?}", other),
        }
        // Typed values print to text that parses back to them.
        for v in m.vias().unwrap() {
            prop_assert_eq!(Via::parse(&v.to_string()).unwrap(), v);
        }
        let from = m.from_addr().unwrap();
        prop_assert_eq!(NameAddr::parse(&from.to_string()).unwrap(), from);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_datagram(&data, &Limits::default());
        let _ = SessionDescription::parse(&data, &Limits::default());
        let mut d = StreamDecoder::new(Limits::default());
        d.push(&data);
        while let Ok(Some(_)) = d.next_frame() {}
    }

    #[test]
    fn sdps_round_trip(sd in session()) {
        let bytes = sd.to_bytes();
        let parsed = SessionDescription::parse(&bytes, &Limits::default()).unwrap();
        prop_assert_eq!(parsed, sd);
    }
}

fn word() -> impl Strategy<Value = Word> {
    "[a-zA-Z0-9][a-zA-Z0-9.-]{0,8}".prop_map(|s| Word::new(&s).unwrap())
}

fn text() -> impl Strategy<Value = Text> {
    "[ -~\u{e9}]{1,20}".prop_map(|s| Text::new(&s).unwrap())
}

fn crypto() -> impl Strategy<Value = Crypto> {
    (
        1u32..1000,
        prop_oneof![
            Just(CryptoSuite::AesCm128HmacSha1_80),
            Just(CryptoSuite::AesCm128HmacSha1_32),
            Just(CryptoSuite::Aes256CmHmacSha1_80),
            Just(CryptoSuite::AeadAes128Gcm),
        ],
        any::<u8>(),
        proptest::option::of(prop_oneof![
            (0u8..=48).prop_map(Lifetime::PowerOfTwo),
            (1u64..1 << 40).prop_map(Lifetime::Packets)
        ]),
        proptest::option::of((0u64..256, 1u8..=4).prop_map(|(value, len)| Mki { value, len })),
        proptest::collection::vec(
            prop_oneof![
                (0u8..=24).prop_map(SessionParam::Kdr),
                (64u32..100_000).prop_map(SessionParam::Wsh),
                Just(SessionParam::UnencryptedSrtcp),
            ],
            0..3,
        ),
    )
        .prop_map(|(tag, suite, fill, lifetime, mki, session_params)| {
            let len = suite.key_salt_len().unwrap();
            Crypto {
                tag,
                suite,
                keys: vec![KeyParam {
                    key_salt: KeySalt::new((0..len).map(|i| fill.wrapping_add(i as u8)).collect()),
                    lifetime,
                    mki,
                }],
                session_params,
            }
        })
}

fn attribute() -> impl Strategy<Value = Attribute> {
    prop_oneof![
        crypto().prop_map(Attribute::Crypto),
        (any::<u16>(), proptest::option::of(any::<u32>())).prop_map(|(port, a)| Attribute::Rtcp(
            Rtcp {
                port,
                address: a.map(|a| relay_sip::sdp::Address::Ip(IpAddr::V4(Ipv4Addr::from(a)))),
            }
        )),
        Just(Attribute::RtcpMux),
        prop_oneof![
            Just(Direction::SendRecv),
            Just(Direction::SendOnly),
            Just(Direction::RecvOnly),
            Just(Direction::Inactive)
        ]
        .prop_map(Attribute::Direction),
        (
            prop_oneof![
                Just(IceKind::IceUfrag),
                Just(IceKind::IcePwd),
                Just(IceKind::Candidate)
            ],
            text()
        )
            .prop_map(|(kind, v)| Attribute::Ice(IceAttribute {
                kind,
                value: Some(v)
            })),
        Just(Attribute::Ice(IceAttribute {
            kind: IceKind::IceLite,
            value: None
        })),
        ("x-[a-z]{1,8}", proptest::option::of(text())).prop_map(|(n, value)| Attribute::Other {
            name: Word::new(&n).unwrap(),
            value,
        }),
    ]
}

fn media() -> impl Strategy<Value = MediaDescription> {
    (
        prop_oneof![Just("audio"), Just("video")],
        any::<u16>(),
        prop_oneof![
            Just(Proto::RtpAvp),
            Just(Proto::RtpSavp),
            Just(Proto::UdpTlsRtpSavpf)
        ],
        proptest::collection::vec(0u8..128, 1..6),
        proptest::option::of(any::<u32>()),
        proptest::collection::vec(attribute(), 0..8),
    )
        .prop_map(
            |(media, port, proto, formats, conn, attributes)| MediaDescription {
                media: Word::new(media).unwrap(),
                port,
                port_count: None,
                proto,
                formats: formats
                    .iter()
                    .map(|f| Word::new(&f.to_string()).unwrap())
                    .collect(),
                information: None,
                connection: conn.map(|a| Connection::new(IpAddr::V4(Ipv4Addr::from(a)))),
                bandwidths: Vec::new(),
                encryption_key: None,
                attributes,
            },
        )
}

fn session() -> impl Strategy<Value = SessionDescription> {
    (
        word(),
        any::<u64>(),
        any::<u64>(),
        any::<u128>(),
        text(),
        any::<u32>(),
        (any::<u32>(), any::<u32>()),
        proptest::collection::vec(attribute(), 0..4),
        proptest::collection::vec(media(), 0..4),
    )
        .prop_map(
            |(username, id, version, o_addr, name, c, (start, stop), attributes, media)| {
                SessionDescription {
                    origin: Origin {
                        username,
                        session_id: id,
                        session_version: version,
                        address: relay_sip::sdp::Address::Ip(IpAddr::V6(Ipv6Addr::from(o_addr))),
                    },
                    session_name: name,
                    information: None,
                    uri: None,
                    emails: Vec::new(),
                    phones: Vec::new(),
                    connection: Some(Connection::new(IpAddr::V4(Ipv4Addr::from(c)))),
                    bandwidths: Vec::new(),
                    timings: vec![Timing {
                        start: u64::from(start),
                        stop: u64::from(stop),
                        repeats: Vec::new(),
                    }],
                    time_zones: None,
                    encryption_key: None,
                    attributes,
                    media,
                }
            },
        )
}
