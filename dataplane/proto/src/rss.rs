//! Flow steering and call placement for several worker cores: which worker a frame to a local
//! UDP port reaches, and which worker owns a call.
//!
//! Ports run RSS hashing only the UDP destination port (`RTE_ETH_RSS_NONFRAG_IPV4_UDP |
//! RTE_ETH_RSS_NONFRAG_IPV6_UDP | RTE_ETH_RSS_L4_DST_ONLY`) with [`RSS_KEY`], and a
//! redirection table (RETA) whose entry `i` names queue [`reta_queue`]`(i, queues)`. Worker `w`
//! polls queue `w` of every port. Ports without RSS spread frames by software dispatch: the
//! worker that receives a frame hashes its destination port the same way, over a table of
//! [`SOFTWARE_RETA_SIZE`] entries, and hands it to its owner. Either way [`queue_for_port`]
//! tells in advance where frames to a port go, and [`Placement::place`] installs a call on the
//! worker that all of its ports, RTP and RTCP, map to. Every stream's state is then owned by
//! exactly one core.
//!
//! # RTP and RTCP on `p` and `p + 1` land together
//!
//! RFC 3550 section 11 puts RTCP on the RTP port plus one, and RTP on an even port. The
//! Toeplitz hash is linear: `hash(p) ^ hash(p ^ 1)` is the 32-bit window of the key that starts
//! at the port's lowest bit (bit 15 of the 16-bit input, so key bits 15..=46). The RETA index
//! is the hash's low bits, so with Microsoft's example key `p` and `p + 1` never share a
//! worker when there are 2 or 4 (measured: every even port). [`RSS_KEY`] is that key with bits
//! 38..=46 cleared, so the low 9 bits of that window are zero and an even `p` and `p + 1` share
//! every RETA entry index below [`RETA_SPAN`] = 512, whatever the table size (the tables of
//! 512 or more entries are programmed to repeat every 512 entries, [`reta_queue`]). The price:
//! the worker of a port depends on its upper bits only (blocks of 512 to 2048 consecutive
//! ports share a worker), so it is the port allocator, which places calls with this module,
//! that spreads calls over workers, not the hash. An odd RTP port (RFC 3550 allows it) is
//! placed only if its `p + 1` maps to the same worker; [`Placement::place`] refuses it
//! otherwise, so no call is ever installed half-reachable.
//!
//! The software hash must match the NIC's; it is the Toeplitz function of Microsoft's RSS
//! specification, checked below against its published vectors. Whether a NIC hashes exactly the
//! 2-byte destination port under `L4_DST_ONLY` must be confirmed per NIC model (it is the
//! documented input set of Intel's i40e and ice); IPv4 and IPv6 hash the same input there.

use std::net::{IpAddr, SocketAddr};

use relay_session::{CallSpec, RtcpMode};

/// Microsoft's example RSS key (40 bytes), against which the published verification vectors
/// are computed.
pub const MICROSOFT_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// The RETA entries within which an even port and the next odd port always agree.
pub const RETA_SPAN: u16 = 512;

/// The key bits that must be zero for `p` and `p ^ 1` to share the low `log2(RETA_SPAN)` bits
/// of the hash: the low bits of the window at input bit 15, key bits `47 - 9 ..= 46`.
const ZEROED_KEY_BITS: std::ops::RangeInclusive<usize> = 38..=46;

/// The RSS key programmed into every port: [`MICROSOFT_KEY`] with bits 38..=46 cleared.
pub const RSS_KEY: [u8; 40] = {
    let mut key = MICROSOFT_KEY;
    let mut bit = *ZEROED_KEY_BITS.start();
    while bit <= *ZEROED_KEY_BITS.end() {
        key[bit / 8] &= !(0x80 >> (bit % 8));
        bit += 1;
    }
    key
};

/// The Toeplitz hash of `input` under `key`.
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let mut result = 0u32;
    // The 32-bit window of the key starting at the current input bit.
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    let mut next_key_bit = 32;
    for &byte in input {
        for bit in (0..8).rev() {
            if byte & (1 << bit) != 0 {
                result ^= window;
            }
            let k = key
                .get(next_key_bit / 8)
                .map_or(0, |b| (b >> (7 - next_key_bit % 8)) & 1);
            window = (window << 1) | u32::from(k);
            next_key_bit += 1;
        }
    }
    result
}

/// The redirection table size assumed for ports without RSS, whose packets the receiving
/// worker hands to the owning worker itself (software dispatch) by the same hash.
pub const SOFTWARE_RETA_SIZE: u16 = 128;

/// The queue a port's redirection table entry `entry` names, with `queues` queues: the table
/// repeats every [`RETA_SPAN`] entries, so that only the low bits [`RSS_KEY`] makes equal for
/// `p` and `p + 1` choose the queue.
pub fn reta_queue(entry: u16, queues: u16) -> u16 {
    (entry % RETA_SPAN) % queues.max(1)
}

/// The receive queue (= worker index) of packets to local UDP port `port`, with a
/// redirection table of `reta_size` entries (programmed by [`reta_queue`]) over `queues`
/// queues. A port without a table (`reta_size` 0) or with one queue delivers to queue 0.
pub fn queue_for_port(port: u16, reta_size: u16, queues: u16) -> u16 {
    if queues <= 1 || reta_size == 0 {
        return 0;
    }
    let hash = toeplitz(&RSS_KEY, &port.to_be_bytes());
    // NICs index the table with the hash's low bits; tables are powers of two.
    let entry = (hash % u32::from(reta_size)) as u16;
    reta_queue(entry, queues)
}

/// Why a call cannot be placed on one worker.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlacementError {
    /// Two of the call's local ports (RTP or RTCP, either leg) reach different workers.
    Split {
        /// The call.
        call: String,
        /// The port that disagrees.
        port: u16,
        /// The worker it reaches.
        worker: usize,
        /// The worker the call's earlier ports reach.
        owner: usize,
        /// Whether `port` is an RTCP port (`port_plus_one`).
        rtcp: bool,
    },
    /// A local address is not one of the relay's.
    NotLocal(IpAddr),
    /// An RTCP port `p + 1` past 65535.
    NoRtcpPort(SocketAddr),
}

impl std::fmt::Display for PlacementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlacementError::Split {
                call,
                port,
                worker,
                owner,
                rtcp,
            } => write!(
                f,
                "call {call}: local {} port {port} maps to worker {worker} but its other ports map to worker {owner}; pick local ports that map to one worker{}",
                if *rtcp { "RTCP" } else { "RTP" },
                if *rtcp { " (an even RTP port always takes its RTCP port + 1 with it)" } else { "" }
            ),
            PlacementError::NotLocal(ip) => {
                write!(f, "local address {ip} is not an address of any relay port")
            }
            PlacementError::NoRtcpPort(addr) => {
                write!(f, "local address {addr} has no RTCP port + 1 (past 65535)")
            }
        }
    }
}

impl std::error::Error for PlacementError {}

/// Where calls go: the workers, and per local address the redirection table its port
/// steers by (the NIC's with RSS, [`SOFTWARE_RETA_SIZE`] with software dispatch, none with one
/// worker).
#[derive(Clone, Debug)]
pub struct Placement {
    workers: u16,
    tables: Vec<(IpAddr, u16)>,
}

impl Placement {
    /// A placement over `workers` workers and no addresses yet.
    pub fn new(workers: u16) -> Placement {
        Placement {
            workers: workers.max(1),
            tables: Vec::new(),
        }
    }

    /// Frames to local address `ip` are steered by a table of `reta_size` entries.
    pub fn add_address(&mut self, ip: IpAddr, reta_size: u16) {
        self.tables.push((ip, reta_size));
    }

    /// The number of workers.
    pub fn workers(&self) -> u16 {
        self.workers
    }

    /// The worker that frames to `local` reach, or `None` if it is not one of the relay's
    /// addresses.
    pub fn worker_for(&self, local: SocketAddr) -> Option<usize> {
        let (_, reta_size) = self.tables.iter().find(|(ip, _)| *ip == local.ip())?;
        Some(usize::from(queue_for_port(
            local.port(),
            *reta_size,
            self.workers,
        )))
    }

    /// The worker that owns `call`: the one every local port of the call reaches, RTP and, with
    /// `port_plus_one`, RTCP, on both legs of every media pair. A call with none (no media)
    /// goes to worker 0.
    pub fn place(&self, call: &CallSpec) -> Result<usize, PlacementError> {
        let mut owner = None;
        for m in &call.media {
            for leg in [&m.a, &m.b] {
                let mut ports = vec![(leg.local, false)];
                if m.rtcp == RtcpMode::PortPlusOne {
                    let rtcp = leg
                        .local
                        .port()
                        .checked_add(1)
                        .ok_or(PlacementError::NoRtcpPort(leg.local))?;
                    ports.push((SocketAddr::new(leg.local.ip(), rtcp), true));
                }
                for (local, rtcp) in ports {
                    let worker = self
                        .worker_for(local)
                        .ok_or(PlacementError::NotLocal(local.ip()))?;
                    match owner {
                        None => owner = Some(worker),
                        Some(o) if o != worker => {
                            return Err(PlacementError::Split {
                                call: call.id.clone(),
                                port: local.port(),
                                worker,
                                owner: o,
                                rtcp,
                            })
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        Ok(owner.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use relay_session::{LegSpec, MediaSpec};

    #[test]
    fn microsoft_rss_verification_vectors() {
        // "Verifying the RSS Hash Calculation", IPv4 with TCP/UDP ports:
        // destination address, source address, destination port, source port in that order.
        type Case = ([u8; 4], [u8; 4], u16, u16, u32, u32);
        let cases: [Case; 2] = [
            (
                [161, 142, 100, 80],
                [66, 9, 149, 187],
                1766,
                2794,
                0x323e_8fc2,
                0x51cc_c178,
            ),
            (
                [65, 69, 140, 83],
                [199, 92, 111, 2],
                4739,
                14230,
                0xd718_262a,
                0xc626_b0ea,
            ),
        ];
        for (dst, src, dport, sport, ip_only, with_ports) in cases {
            let mut input = Vec::new();
            input.extend_from_slice(&src);
            input.extend_from_slice(&dst);
            assert_eq!(toeplitz(&MICROSOFT_KEY, &input), ip_only);
            input.extend_from_slice(&sport.to_be_bytes());
            input.extend_from_slice(&dport.to_be_bytes());
            assert_eq!(toeplitz(&MICROSOFT_KEY, &input), with_ports);
        }
    }

    #[test]
    fn the_relay_key_is_microsofts_with_nine_bits_cleared() {
        let differing: Vec<usize> = (0..320)
            .filter(|&bit| {
                let mask = 0x80 >> (bit % 8);
                RSS_KEY[bit / 8] & mask != MICROSOFT_KEY[bit / 8] & mask
            })
            .collect();
        // Only bits that were set can differ, and all of them lie in the cleared range.
        assert!(differing.iter().all(|b| ZEROED_KEY_BITS.contains(b)));
        assert!(ZEROED_KEY_BITS
            .clone()
            .all(|bit| RSS_KEY[bit / 8] & (0x80 >> (bit % 8)) == 0));
    }

    #[test]
    fn microsofts_key_splits_rtp_from_rtcp_and_ours_does_not() {
        // The defect this key fixes: with 2 workers, p and p+1 always differed.
        let ms_queue = |port: u16| toeplitz(&MICROSOFT_KEY, &port.to_be_bytes()) % 128 % 2;
        assert!((0..=u16::MAX - 1)
            .step_by(2)
            .all(|p| ms_queue(p) != ms_queue(p + 1)));
        for reta in [64, 128, 256, 512, 1024, 2048, 4096] {
            for queues in 2..=16 {
                for p in (0..=u16::MAX - 1).step_by(2) {
                    assert_eq!(
                        queue_for_port(p, reta, queues),
                        queue_for_port(p + 1, reta, queues),
                        "port {p}, reta {reta}, {queues} queues"
                    );
                }
            }
        }
    }

    #[test]
    fn ports_spread_over_queues() {
        for (reta, queues) in [(128, 2), (128, 4), (512, 4), (2048, 8), (128, 3)] {
            let mut counts = vec![0u32; usize::from(queues)];
            for port in (16_384u16..65_534).step_by(2) {
                counts[usize::from(queue_for_port(port, reta, queues))] += 1;
            }
            let fair = 24_575 / u32::from(queues);
            assert!(
                counts.iter().all(|&c| c > fair / 2),
                "reta {reta}, {queues} queues: {counts:?}"
            );
        }
        assert_eq!(queue_for_port(12345, 512, 1), 0);
        assert_eq!(queue_for_port(12345, 0, 4), 0);
    }

    /// What a NIC does with the table [`reta_queue`] programs: index it by the hash's low bits.
    fn nic_queue(port: u16, reta_size: u16, queues: u16) -> u16 {
        let hash = toeplitz(&RSS_KEY, &port.to_be_bytes());
        reta_queue((hash & u32::from(reta_size - 1)) as u16, queues)
    }

    fn leg(ip: IpAddr, port: u16) -> LegSpec {
        LegSpec {
            local: SocketAddr::new(ip, port),
            remote: None,
            strict_source: false,
            receive: None,
            send: None,
            clock_rate: 8000,
            resume_receive: Vec::new(),
            resume_send: Vec::new(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Placement and steering agree for `p` and `p + 1` of every installed call, for any
        /// worker count 2-8, table sizes of NICs and of software dispatch, and both families.
        #[test]
        fn placement_and_steering_agree_for_rtp_and_rtcp(
            workers in 2u16..=8,
            reta_log2 in 6u32..=11,
            ports in proptest::collection::vec((1024u16..65_000, 1024u16..65_000, any::<bool>(), any::<bool>()), 1..4),
        ) {
            let reta = 1u16 << reta_log2;
            let v4: IpAddr = "198.18.0.1".parse().unwrap();
            let v6: IpAddr = "2001:2::1".parse().unwrap();
            let mut placement = Placement::new(workers);
            placement.add_address(v4, reta);
            placement.add_address(v6, SOFTWARE_RETA_SIZE);
            let media: Vec<MediaSpec> = ports
                .iter()
                .map(|&(a, b, six, mux)| MediaSpec {
                    rtcp: if mux { RtcpMode::Mux } else { RtcpMode::PortPlusOne },
                    a: leg(v4, a),
                    b: leg(if six { v6 } else { v4 }, b),
                })
                .collect();
            let call = CallSpec { id: "c".into(), media };
            match placement.place(&call) {
                Ok(owner) => {
                    for m in &call.media {
                        for l in [&m.a, &m.b] {
                            let table = if l.local.ip() == v4 { reta } else { SOFTWARE_RETA_SIZE };
                            let mut steered = vec![l.local.port()];
                            if m.rtcp == RtcpMode::PortPlusOne {
                                steered.push(l.local.port() + 1);
                            }
                            for p in steered {
                                prop_assert_eq!(usize::from(nic_queue(p, table, workers)), owner);
                                prop_assert_eq!(placement.worker_for(SocketAddr::new(l.local.ip(), p)), Some(owner));
                            }
                        }
                    }
                }
                Err(PlacementError::Split { port, worker, owner, .. }) => {
                    // Refused only if two of its ports really reach different workers.
                    prop_assert_ne!(worker, owner);
                    prop_assert!(call.media.iter().any(|m| [&m.a, &m.b].iter().any(|l| l.local.port() == port || l.local.port() + 1 == port)));
                }
                Err(e) => prop_assert!(false, "{e}"),
            }
            // An even port and its RTCP port are never split.
            for &(a, ..) in &ports {
                let even = a & !1;
                prop_assert_eq!(
                    placement.worker_for(SocketAddr::new(v4, even)),
                    placement.worker_for(SocketAddr::new(v4, even + 1))
                );
            }
        }
    }

    #[test]
    fn an_odd_rtp_port_whose_rtcp_port_lands_elsewhere_is_refused() {
        let v4: IpAddr = "198.18.0.1".parse().unwrap();
        let mut placement = Placement::new(2);
        placement.add_address(v4, SOFTWARE_RETA_SIZE);
        let odd = (1025u16..65_000)
            .step_by(2)
            .find(|&p| queue_for_port(p, 128, 2) != queue_for_port(p + 1, 128, 2))
            .expect("some odd port crosses a block boundary");
        let call = |rtcp| CallSpec {
            id: "odd".into(),
            media: vec![MediaSpec {
                rtcp,
                a: leg(v4, odd),
                b: leg(v4, odd),
            }],
        };
        let err = placement.place(&call(RtcpMode::PortPlusOne)).unwrap_err();
        assert!(
            matches!(err, PlacementError::Split { rtcp: true, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("RTCP port"), "{err}");
        assert!(placement.place(&call(RtcpMode::Mux)).is_ok());
        let elsewhere = CallSpec {
            media: vec![MediaSpec {
                rtcp: RtcpMode::Mux,
                a: leg("198.18.9.9".parse().unwrap(), 4000),
                b: leg(v4, 4000),
            }],
            ..call(RtcpMode::Mux)
        };
        assert_eq!(
            placement.place(&elsewhere),
            Err(PlacementError::NotLocal("198.18.9.9".parse().unwrap()))
        );
    }
}
