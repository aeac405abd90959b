//! A sessions file for a throughput run: `n` one-way streams (a call each, RTCP muxed),
//! leg a's peer sending to the relay and the relay sending on to leg b's peer, SRTP with a
//! fresh random key per leg or plain RTP. `relay-gen sessions` writes it; the relay loads it
//! with `run --sessions`, the generator with `run`/`ndr --sessions`.
//!
//! Addresses (all in 198.18.0.0/15): the relay's leg-a addresses are 198.18.0.1 and the
//! ones after it, leg b's 198.19.0.1 on; each address carries [`STREAMS_PER_ADDRESS`]
//! streams on even ports from 6000, so the relay's ports need
//! [`Layout::relay_addresses`] consecutive addresses each (`--port ...,addrs=N`). Leg a's
//! peer is one address (198.18.128.10), a port per stream from 10000; leg b's peers are
//! 198.19.128.1 on, a UDP port per stream, so the generator knows each relayed packet's
//! stream by where it was sent.
//!
//! Leg a's ports are two arithmetic progressions that advance together (the peer's by 1,
//! the relay's by 2), both above pktgen-dpdk's default ports (1234 and 5678): pktgen's
//! range mode then makes exactly these flows (`relay-gen pktgen-flows`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use relay_session::{CallSpec, CryptoSpec, LegSpec, MediaSpec, NeighbourSpec, RtcpMode};
use relay_session::{SessionsFile, SCHEMA_VERSION};
use relay_srtp::{MasterKey, SdesKey, Suite};

/// Streams on one relay address (each on an even port from [`RELAY_FIRST_PORT`], the odd
/// one after it free for RTCP, as a relay without muxing would need).
pub const STREAMS_PER_ADDRESS: u32 = 29_000;

/// The relay's first port on each address.
pub const RELAY_FIRST_PORT: u16 = 6000;

/// Leg a's peer's first port (one per stream).
pub const PEER_A_FIRST_PORT: u16 = 10_000;

/// Streams per port range of leg a's peer (ports 10000 to 64999).
const STREAMS_PER_PEER_A: u32 = 55_000;

/// Streams per peer address of leg b (ports 1024 to 61023).
const STREAMS_PER_PEER: u32 = 60_000;

/// The generator's MAC addresses the relay's neighbour entries name: its sending port
/// (leg a's peer) and its receiving port (leg b's peers).
pub const PEER_MACS: [&str; 2] = ["02:00:00:00:00:10", "02:00:00:00:00:20"];

/// How the streams of a synthetic sessions file are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Streams (calls).
    pub streams: u32,
}

impl Layout {
    /// Consecutive addresses each relay port needs from its first (198.18.0.1 and
    /// 198.19.0.1).
    pub fn relay_addresses(&self) -> u32 {
        self.streams.div_ceil(STREAMS_PER_ADDRESS).max(1)
    }

    /// The relay's address of stream `i` on leg a (`side` 0) or leg b (1).
    pub fn relay_local(&self, i: u32, side: u8) -> SocketAddr {
        let ip = i / STREAMS_PER_ADDRESS + 1;
        let port = u32::from(RELAY_FIRST_PORT) + 2 * (i % STREAMS_PER_ADDRESS);
        let net = if side == 0 { 18 } else { 19 };
        SocketAddrV4::new(
            Ipv4Addr::new(198, net, (ip >> 8) as u8, ip as u8),
            port as u16,
        )
        .into()
    }

    /// Leg a's peer (the generator's sending address) of stream `i`.
    pub fn peer_a(&self, i: u32) -> SocketAddr {
        let port = u32::from(PEER_A_FIRST_PORT) + i % STREAMS_PER_PEER_A;
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 128, 10), port as u16).into()
    }

    /// Leg b's peer (where the relay sends stream `i`).
    pub fn peer_b(&self, i: u32) -> SocketAddr {
        let ip = i / STREAMS_PER_PEER + 1;
        SocketAddrV4::new(
            Ipv4Addr::new(198, 19, 128 + (ip >> 8) as u8, ip as u8),
            (1024 + i % STREAMS_PER_PEER) as u16,
        )
        .into()
    }
}

/// The sessions file of `layout`: SRTP with `suites` (leg a's inbound, leg b's outbound:
/// fresh random keys for every leg, as a B2BUA gives) or plain RTP with `None`.
pub fn sessions(layout: Layout, suites: Option<(Suite, Suite)>) -> SessionsFile {
    let crypto = |suite: Suite| {
        let key = SdesKey::new(MasterKey::random(suite).expect("a suite's own lengths"));
        CryptoSpec {
            suite: suite.name().into(),
            key: key.to_inline(),
        }
    };
    let leg = |local, remote, receive, send| LegSpec {
        local,
        remote: Some(remote),
        strict_source: false,
        receive,
        send,
        clock_rate: 8000,
        resume_receive: Vec::new(),
        resume_send: Vec::new(),
    };
    let calls = (0..layout.streams)
        .map(|i| CallSpec {
            id: format!("s{i}"),
            media: vec![MediaSpec {
                rtcp: RtcpMode::Mux,
                a: leg(
                    layout.relay_local(i, 0),
                    layout.peer_a(i),
                    suites.map(|(inbound, _)| crypto(inbound)),
                    None,
                ),
                b: leg(
                    layout.relay_local(i, 1),
                    layout.peer_b(i),
                    None,
                    suites.map(|(_, outbound)| crypto(outbound)),
                ),
            }],
        })
        .collect();
    let mut neighbours = vec![NeighbourSpec {
        ip: IpAddr::V4(Ipv4Addr::new(198, 18, 128, 10)),
        mac: PEER_MACS[0].into(),
    }];
    let peers_b = layout.streams.div_ceil(STREAMS_PER_PEER).max(1);
    neighbours.extend((0..peers_b).map(|p| NeighbourSpec {
        ip: layout.peer_b(p * STREAMS_PER_PEER).ip(),
        mac: PEER_MACS[1].into(),
    }));
    SessionsFile {
        version: SCHEMA_VERSION,
        neighbours,
        calls,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::streams::{by_destination, plan};

    #[test]
    fn every_stream_has_its_own_addresses_and_keys() {
        let layout = Layout { streams: 70_001 };
        assert_eq!(layout.relay_addresses(), 3);
        let file = sessions(
            layout,
            Some((Suite::AesCm128HmacSha1_80, Suite::AeadAes128Gcm)),
        );
        // The file goes through JSON as the relay and the generator read it.
        let file = SessionsFile::from_json(&serde_json::to_string(&file).unwrap()).unwrap();
        let plans = plan(&file).unwrap();
        assert_eq!(plans.len(), 70_001);
        let locals: HashSet<SocketAddr> = plans
            .iter()
            .flat_map(|p| [p.to_relay, p.relay_out])
            .collect();
        assert_eq!(locals.len(), 2 * 70_001);
        assert_eq!(by_destination(&plans).len(), 70_001);
        let last = &plans[70_000];
        assert_eq!(last.to_relay, "198.18.0.3:30000".parse().unwrap());
        assert_eq!(last.relay_out, "198.19.0.3:30000".parse().unwrap());
        assert_eq!(last.to_peer, "198.19.128.2:11024".parse().unwrap());
        let keys: HashSet<String> = file
            .calls
            .iter()
            .take(100)
            .flat_map(|c| [&c.media[0].a.receive, &c.media[0].b.send])
            .map(|k| k.as_ref().unwrap().key.clone())
            .collect();
        assert_eq!(keys.len(), 200, "every leg has a fresh key");
        assert_eq!(
            plans[0].receive_key.as_ref().unwrap().master.suite(),
            Suite::AeadAes128Gcm
        );
        // Every peer address of leg b has a neighbour entry.
        for p in &plans {
            assert!(file.neighbours.iter().any(|n| n.ip == p.to_peer.ip()));
        }
    }

    #[test]
    fn plain_rtp_has_no_keys() {
        let file = sessions(Layout { streams: 10 }, None);
        assert!(!file.has_keys());
        assert_eq!(Layout { streams: 10 }.relay_addresses(), 1);
    }
}
