//! The relay-logic test harness, after quinn's `tests/util.rs` `Pair`: a [`Harness`] holds a
//! relay (two ports, static neighbours) and a clock; [`Harness::add`] installs a call built
//! from a short [`Call`] description and returns its two [`Peers`], each with the SRTP
//! contexts the call's keys give it, so a test reads as "the caller sends, the relay forwards,
//! the callee opens".
//!
//! The network: port 0 (198.18.0.1/24, 2001:2::1/64, gateway 198.18.0.254, untagged) faces the
//! caller at 198.18.0.10 / 2001:2::10; port 1 (198.19.0.1/24, 2001:2:0:1::1/64, VLAN 42) faces
//! the callee at 198.19.0.20 / 2001:2:0:1::20. Those and the gateway are static neighbours.

#![allow(dead_code, unreachable_pub)] // Each test file uses a different part.

use std::net::SocketAddr;

use relay_proto::relay::{PortAddr, Relay, RelayConfig, Verdict};
use relay_proto::wire;
use relay_session::{CallSpec, CryptoSpec, LegSpec, MediaSpec, RtcpMode, SessionsFile};
use relay_srtp::{Context, ContextConfig, MasterKey, SdesKey, SrtpError, Suite};

pub const RELAY_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const PORT1_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
pub const CALLER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
pub const CALLEE_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x20];
pub const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The relay of these tests; `offload`: port 1's NIC completes UDP checksums.
fn relay_with_offload(offload: bool) -> Relay {
    let ports = vec![
        PortAddr {
            port: 0,
            mac: RELAY_MAC,
            ipv4: "198.18.0.1".parse().unwrap(),
            prefix_len: 24,
            gateway: Some("198.18.0.254".parse().unwrap()),
            vlan: None,
            ipv6: Some("2001:2::1".parse().unwrap()),
            prefix6_len: 64,
            gateway6: None,
            udp_checksum_offload: false,
        },
        PortAddr {
            port: 1,
            mac: PORT1_MAC,
            ipv4: "198.19.0.1".parse().unwrap(),
            prefix_len: 24,
            gateway: None,
            vlan: Some(42),
            ipv6: Some("2001:2:0:1::1".parse().unwrap()),
            prefix6_len: 64,
            gateway6: None,
            udp_checksum_offload: offload,
        },
    ];
    let mut r = Relay::new(ports, RelayConfig::default());
    let doc = SessionsFile::from_json(
        r#"{"version":1,"neighbours":[{"ip":"198.18.0.10","mac":"02:00:00:00:00:10"},{"ip":"198.19.0.20","mac":"02:00:00:00:00:20"},{"ip":"198.18.0.254","mac":"02:00:00:00:00:fe"},{"ip":"2001:2::10","mac":"02:00:00:00:00:10"},{"ip":"2001:2:0:1::20","mac":"02:00:00:00:00:20"}]}"#,
    )
    .unwrap();
    r.install(&doc).unwrap();
    r
}

/// A key of `suite` made of `seed` bytes (salt `seed ^ 0x5a`).
pub fn key(suite: Suite, seed: u8) -> SdesKey {
    SdesKey::new(
        MasterKey::new(
            suite,
            &vec![seed; suite.key_len()],
            &vec![seed ^ 0x5a; suite.salt_len()],
        )
        .unwrap(),
    )
}

fn crypto(k: &SdesKey) -> Option<CryptoSpec> {
    Some(CryptoSpec {
        suite: k.master.suite().name().into(),
        key: k.to_inline(),
    })
}

/// An RTP packet: sequence `seq`, timestamp `160 * seq`, `payload` bytes that depend on `seq`.
pub fn rtp(seq: u16, payload: usize) -> Vec<u8> {
    let mut p = vec![0x80, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x1122_3344u32.to_be_bytes());
    p.extend((0..payload).map(|i| (i as u8) ^ (seq as u8)));
    p
}

/// A frame from `src` to `dst` carrying `payload`, with 64 bytes of room to grow.
pub fn frame(src_mac: [u8; 6], src: &str, dst: &str, payload: &[u8]) -> (Vec<u8>, usize) {
    frame_between(src_mac, addr(src), addr(dst), payload)
}

/// [`frame`] with parsed addresses.
pub fn frame_between(
    src_mac: [u8; 6],
    s: SocketAddr,
    d: SocketAddr,
    payload: &[u8],
) -> (Vec<u8>, usize) {
    let at = if s.is_ipv4() { 42 } else { 62 };
    let mut buf = vec![0u8; at + payload.len() + 64];
    buf[at..at + payload.len()].copy_from_slice(payload);
    let l2 = wire::L2Out {
        src: src_mac,
        dst: RELAY_MAC,
        vlan: None,
    };
    let n = wire::emit_udp(&mut buf, at, payload.len(), &l2, s, d).unwrap();
    (buf, n)
}

/// `plain` protected as SRTP by `ctx`.
pub fn protect(ctx: &mut Context, plain: &[u8]) -> Vec<u8> {
    let mut b = plain.to_vec();
    b.resize(plain.len() + 32, 0);
    let n = ctx.protect_rtp(&mut b, plain.len()).unwrap();
    b.truncate(n);
    b
}

/// The port, datagram and payload of a forwarded frame, checked to be valid UDP with a
/// right checksum (no port of [`Harness::new`] offloads checksums).
pub fn forwarded(v: Verdict, buf: &[u8]) -> (u16, wire::Udp, Vec<u8>) {
    let Verdict::Forward { port, len, offload } = v else {
        panic!("not forwarded: {v:?}")
    };
    assert_eq!(offload, None, "no port offloads checksums here");
    let u = wire::parse_udp(&buf[..len]).expect("valid output frame");
    assert!(wire::udp_checksum_ok(&buf[..len], &u));
    (port, u, buf[u.payload..u.payload + u.payload_len].to_vec())
}

/// The relay, its clock, and the calls' peers.
pub struct Harness {
    /// The relay under test.
    pub relay: Relay,
    /// The time passed to the relay with each frame.
    pub now_ns: u64,
}

impl Harness {
    /// The relay of the network above, no calls, at time 0.
    pub fn new() -> Harness {
        Harness {
            relay: relay_with_offload(false),
            now_ns: 0,
        }
    }

    /// [`Harness::new`] with port 1's NIC completing UDP checksums.
    pub fn with_offload() -> Harness {
        Harness {
            relay: relay_with_offload(true),
            now_ns: 0,
        }
    }

    /// Installs `call` (it must be accepted) and returns its peers.
    pub fn add(&mut self, call: &Call) -> Peers {
        self.relay.add_call(&call.spec()).unwrap();
        call.peers()
    }

    /// Runs `buf[..len]` received on `port` through the relay at the harness's time.
    pub fn process(&mut self, port: u16, buf: &mut [u8], len: usize) -> Verdict {
        self.relay.process(port, buf, len, self.now_ns)
    }
}

/// One leg of a [`Call`]: the relay's local address, the peer's address in SDP, and the keys
/// of what the relay receives from and sends to the peer.
#[derive(Clone)]
pub struct Leg {
    pub local: SocketAddr,
    pub peer: Option<SocketAddr>,
    pub receive: Option<SdesKey>,
    pub send: Option<SdesKey>,
    pub strict: bool,
}

impl Leg {
    fn spec(&self) -> LegSpec {
        LegSpec {
            local: self.local,
            remote: self.peer,
            strict_source: self.strict,
            receive: self.receive.as_ref().and_then(crypto),
            send: self.send.as_ref().and_then(crypto),
            clock_rate: 8000,
            resume_receive: Vec::new(),
            resume_send: Vec::new(),
        }
    }
}

/// A call of one media pair, from a short description. [`Call::new`] is the common shape:
/// leg a at 198.18.0.1:40000 with the caller 198.18.0.10:5004 in its SDP, leg b at
/// 198.19.0.1:40002 with the callee 198.19.0.20:6000, plain RTP, RTCP muxed; the builder
/// methods change one thing each.
#[derive(Clone)]
pub struct Call {
    pub id: String,
    pub a: Leg,
    pub b: Leg,
    pub rtcp: RtcpMode,
}

impl Call {
    pub fn new(id: &str) -> Call {
        let leg = |local: &str, peer: &str| Leg {
            local: addr(local),
            peer: Some(addr(peer)),
            receive: None,
            send: None,
            strict: false,
        };
        Call {
            id: id.into(),
            a: leg("198.18.0.1:40000", "198.18.0.10:5004"),
            b: leg("198.19.0.1:40002", "198.19.0.20:6000"),
            rtcp: RtcpMode::Mux,
        }
    }

    /// SRTP from the caller with `from_caller` (key seed 1) and to the callee with
    /// `to_callee` (key seed 2); `None` is plain RTP.
    pub fn srtp(mut self, from_caller: Option<Suite>, to_callee: Option<Suite>) -> Call {
        self.a.receive = from_caller.map(|s| key(s, 1));
        self.b.send = to_callee.map(|s| key(s, 2));
        self
    }

    /// Leg a's local address and the caller's address in SDP.
    pub fn a(mut self, local: &str, peer: Option<&str>) -> Call {
        self.a.local = addr(local);
        self.a.peer = peer.map(addr);
        self
    }

    /// Leg b's local address and the callee's address in SDP.
    pub fn b(mut self, local: &str, peer: Option<&str>) -> Call {
        self.b.local = addr(local);
        self.b.peer = peer.map(addr);
        self
    }

    /// Leg a's keys: what the relay receives from the caller, what it sends it.
    pub fn a_keys(mut self, receive: Option<&SdesKey>, send: Option<&SdesKey>) -> Call {
        self.a.receive = receive.cloned();
        self.a.send = send.cloned();
        self
    }

    /// Leg b's keys: what the relay receives from the callee, what it sends it.
    pub fn b_keys(mut self, receive: Option<&SdesKey>, send: Option<&SdesKey>) -> Call {
        self.b.receive = receive.cloned();
        self.b.send = send.cloned();
        self
    }

    /// Strict source on leg a.
    pub fn a_strict(mut self) -> Call {
        self.a.strict = true;
        self
    }

    pub fn rtcp(mut self, mode: RtcpMode) -> Call {
        self.rtcp = mode;
        self
    }

    /// The call as the control plane would install it.
    pub fn spec(&self) -> CallSpec {
        CallSpec {
            id: self.id.clone(),
            media: vec![MediaSpec {
                rtcp: self.rtcp,
                a: self.a.spec(),
                b: self.b.spec(),
            }],
        }
    }

    /// Fresh peers for the call's keys.
    pub fn peers(&self) -> Peers {
        let peer = |leg: &Leg, mac, port, default: &str| Peer {
            mac,
            addr: leg.peer.unwrap_or_else(|| addr(default)),
            relay: leg.local,
            port,
            tx: leg
                .receive
                .as_ref()
                .map(|k| Context::new(k, ContextConfig::default())),
            rx: leg
                .send
                .as_ref()
                .map(|k| Context::new(k, ContextConfig::default())),
        };
        Peers {
            caller: peer(&self.a, CALLER_MAC, 0, "198.18.0.10:5004"),
            callee: peer(&self.b, CALLEE_MAC, 1, "198.19.0.20:6000"),
        }
    }
}

/// The two ends of a call.
pub struct Peers {
    /// On leg a, behind port 0.
    pub caller: Peer,
    /// On leg b, behind port 1.
    pub callee: Peer,
}

/// One end of a call: where it sends from and to, and its SRTP contexts (if its leg is keyed).
pub struct Peer {
    pub mac: [u8; 6],
    /// Where it sends from (its SDP address, else a default one on its subnet).
    pub addr: SocketAddr,
    /// The relay's address it sends to.
    pub relay: SocketAddr,
    /// The relay port it is behind.
    pub port: u16,
    /// Protects what it sends (the relay's receiving key of its leg).
    pub tx: Option<Context>,
    /// Opens what it receives (the relay's sending key of its leg).
    pub rx: Option<Context>,
}

impl Peer {
    /// `plain` as this peer puts it on the wire: protected if it sends SRTP.
    pub fn seal(&mut self, plain: &[u8]) -> Vec<u8> {
        match &mut self.tx {
            Some(c) => protect(c, plain),
            None => plain.to_vec(),
        }
    }

    /// RTP packet `seq` with `len` bytes of payload, sealed, in a frame to the relay:
    /// (frame buffer, frame length, the plain packet).
    pub fn send(&mut self, seq: u16, len: usize) -> (Vec<u8>, usize, Vec<u8>) {
        let plain = rtp(seq, len);
        let sealed = self.seal(&plain);
        let (buf, n) = frame_between(self.mac, self.addr, self.relay, &sealed);
        (buf, n, plain)
    }

    /// What the relay forwarded to this peer, opened: unprotected if it receives SRTP.
    pub fn open(&mut self, mut payload: Vec<u8>) -> Result<Vec<u8>, SrtpError> {
        if let Some(c) = &mut self.rx {
            let n = c.unprotect_rtp(&mut payload)?;
            payload.truncate(n);
        }
        Ok(payload)
    }
}
