//! `relay-gen pktgen-flows`: a sessions file's streams into the relay as one pktgen-dpdk
//! range, written as a Lua table for `bench/pktgen/rtp-range.lua`.
//!
//! pktgen's range mode builds its packets by stepping every ranged field together, one step
//! per packet (`pktgen-range.c` in pktgen-dpdk 23.03), so it can make the flows of a
//! sessions file exactly when they are two arithmetic progressions that advance together:
//! one source address and port `p0 + i * ps`, one relay address and port `q0 + i * qs`.
//! The stepping does not begin at the range's start but at pktgen's default ports (1234 and
//! 5678), wrapping to the maximum below the minimum: with both ranges above those defaults
//! the first packet is the last stream, then the first, the second, and so on, always
//! paired. `relay-gen sessions` lays its streams out so; anything else (and SRTP, which
//! pktgen cannot make) is refused with the way that works instead (`relay-gen pcap`).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use crate::streams::StreamPlan;

/// pktgen's range state starts at these ports (`pktgen-cmds.c`, the port defaults).
const PKTGEN_DEFAULT_PORTS: [u16; 2] = [1234, 5678];

/// pktgen caps a port range's increment.
const PKTGEN_MAX_PORT_INC: u16 = 64;

/// A UDP port range of pktgen's: `min`, `min + inc`, ... `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// The first stream's port.
    pub min: u16,
    /// The last stream's port.
    pub max: u16,
    /// The step between consecutive streams.
    pub inc: u16,
}

/// The streams into the relay as one pktgen range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeFlows {
    /// Streams (one packet of each per round of the range).
    pub streams: usize,
    /// Leg a's peer (pktgen's sending port's address).
    pub src_ip: Ipv4Addr,
    /// The relay's leg-a address.
    pub dst_ip: Ipv4Addr,
    /// Leg a's peer's ports.
    pub sport: PortRange,
    /// The relay's leg-a ports.
    pub dport: PortRange,
}

/// Why a sessions file is not one pktgen range.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FlowsError {
    /// Nothing to send.
    #[error("the sessions file has no streams")]
    Empty,
    /// pktgen sends fixed payloads: it cannot make SRTP.
    #[error("call {0} is SRTP, which pktgen cannot make: replay a `relay-gen pcap` capture with bench/pktgen/srtp-pcap.lua")]
    Srtp(String),
    /// pktgen's range mode here is IPv4.
    #[error("call {0} is not IPv4 on leg a")]
    NotIpv4(String),
    /// The streams come from more than one address or go to more than one relay address.
    #[error("the streams use more than one {0} address (pktgen ranges one of each here); use at most {1} streams of `relay-gen sessions`, or a `relay-gen pcap` capture")]
    ManyAddresses(&'static str, u32),
    /// The ports are not two progressions advancing together.
    #[error("the {0} ports are not one progression with a step of 1 to {PKTGEN_MAX_PORT_INC} (stream {1}): pktgen's range cannot make these flows; replay a `relay-gen pcap` capture")]
    NotProgression(&'static str, usize),
    /// A range starts at or below pktgen's default port, so the stepping would not pair.
    #[error("the {0} ports start at {1}, at or below pktgen's default port {2}: its range would not pair the ports (lay streams out with `relay-gen sessions`)")]
    BelowDefault(&'static str, u16, u16),
}

/// The streams of `plans` into the relay as one pktgen range.
pub fn range_flows(plans: &[StreamPlan]) -> Result<RangeFlows, FlowsError> {
    let first = plans.first().ok_or(FlowsError::Empty)?;
    let v4 = |p: &StreamPlan| match (p.from.ip(), p.to_relay.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Ok((s, d)),
        _ => Err(FlowsError::NotIpv4(p.call.clone())),
    };
    let (src_ip, dst_ip) = v4(first)?;
    let mut flows: Vec<(u16, u16)> = Vec::with_capacity(plans.len());
    for p in plans {
        if p.send_key.is_some() || p.receive_key.is_some() {
            return Err(FlowsError::Srtp(p.call.clone()));
        }
        let (s, d) = v4(p)?;
        if s != src_ip {
            return Err(FlowsError::ManyAddresses(
                "source",
                crate::synthetic::STREAMS_PER_ADDRESS,
            ));
        }
        if d != dst_ip {
            return Err(FlowsError::ManyAddresses(
                "relay",
                crate::synthetic::STREAMS_PER_ADDRESS,
            ));
        }
        flows.push((p.from.port(), p.to_relay.port()));
    }
    flows.sort_unstable();
    let progression = |name: &'static str, pick: fn(&(u16, u16)) -> u16| {
        let min = pick(&flows[0]);
        let inc = flows.get(1).map_or(1, |f| pick(f).wrapping_sub(min));
        if inc == 0 || inc > PKTGEN_MAX_PORT_INC {
            return Err(FlowsError::NotProgression(name, 1));
        }
        for (i, f) in flows.iter().enumerate() {
            if u32::from(pick(f)) != u32::from(min) + i as u32 * u32::from(inc) {
                return Err(FlowsError::NotProgression(name, i));
            }
        }
        let max = pick(&flows[flows.len() - 1]);
        // pktgen keeps ports in 16 bits: one step past the last must not wrap.
        if u32::from(max) + u32::from(inc) > u32::from(u16::MAX) {
            return Err(FlowsError::NotProgression(name, flows.len() - 1));
        }
        Ok(PortRange { min, max, inc })
    };
    let sport = progression("source", |f| f.0)?;
    let dport = progression("relay", |f| f.1)?;
    for (name, range, default) in [
        ("source", sport, PKTGEN_DEFAULT_PORTS[0]),
        ("relay", dport, PKTGEN_DEFAULT_PORTS[1]),
    ] {
        // The first step from the default must land below the minimum.
        if u32::from(default) + u32::from(range.inc) >= u32::from(range.min) {
            return Err(FlowsError::BelowDefault(name, range.min, default));
        }
    }
    Ok(RangeFlows {
        streams: flows.len(),
        src_ip,
        dst_ip,
        sport,
        dport,
    })
}

impl RangeFlows {
    /// The Lua table `bench/pktgen/rtp-range.lua` loads (`dofile`): the range, the relay's
    /// MAC address and the frame size of `udp_payload` bytes (with the 4-byte FCS, as
    /// pktgen counts sizes).
    pub fn to_lua(&self, relay_mac: &str, udp_payload: usize, source: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "-- Written by relay-gen pktgen-flows from {source}: the streams into the relay as one\n\
             -- pktgen range (bench/pktgen/rtp-range.lua reads it)."
        );
        let _ = writeln!(s, "return {{");
        let _ = writeln!(s, "  streams = {},", self.streams);
        let _ = writeln!(s, "  dst_mac = \"{relay_mac}\",");
        let _ = writeln!(s, "  src_ip = \"{}\",", self.src_ip);
        let _ = writeln!(s, "  dst_ip = \"{}\",", self.dst_ip);
        for (name, r) in [("sport", self.sport), ("dport", self.dport)] {
            let _ = writeln!(
                s,
                "  {name} = {{ min = {}, max = {}, inc = {} }},",
                r.min, r.max, r.inc
            );
        }
        let _ = writeln!(s, "  frame_size = {},", 14 + 20 + 8 + udp_payload + 4);
        let _ = writeln!(s, "}}");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::plan;
    use crate::synthetic::{sessions, Layout};
    use relay_srtp::Suite;

    fn rtp(n: u32) -> Vec<StreamPlan> {
        plan(&sessions(Layout { streams: n }, None)).unwrap()
    }

    #[test]
    fn synthetic_rtp_sessions_are_one_paired_range() {
        let f = range_flows(&rtp(512)).unwrap();
        assert_eq!(f.streams, 512);
        assert_eq!(f.src_ip, Ipv4Addr::new(198, 18, 128, 10));
        assert_eq!(f.dst_ip, Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(
            f.sport,
            PortRange {
                min: 10_000,
                max: 10_511,
                inc: 1
            }
        );
        assert_eq!(
            f.dport,
            PortRange {
                min: 6000,
                max: 6000 + 2 * 511,
                inc: 2
            }
        );
        let lua = f.to_lua("02:00:00:00:01:01", 172, "s.json");
        assert!(lua.contains("sport = { min = 10000, max = 10511, inc = 1 },"));
        assert!(lua.contains("frame_size = 218,"), "{lua}");
    }

    #[test]
    fn what_pktgen_cannot_make_is_refused() {
        let srtp = plan(&sessions(
            Layout { streams: 4 },
            Some((Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_80)),
        ))
        .unwrap();
        assert!(matches!(range_flows(&srtp), Err(FlowsError::Srtp(_))));
        assert_eq!(range_flows(&[]), Err(FlowsError::Empty));
        // More streams than one relay address carries.
        assert!(matches!(
            range_flows(&rtp(crate::synthetic::STREAMS_PER_ADDRESS + 1)),
            Err(FlowsError::ManyAddresses("relay", _))
        ));
        // A stream off the progression.
        let mut plans = rtp(8);
        plans[5].to_relay.set_port(7);
        assert!(matches!(
            range_flows(&plans),
            Err(FlowsError::BelowDefault(..) | FlowsError::NotProgression(..))
        ));
        let mut plans = rtp(8);
        plans[5].to_relay.set_port(6000 + 2 * 5 + 1);
        assert_eq!(
            range_flows(&plans),
            Err(FlowsError::NotProgression("relay", 5))
        );
        // Ports at pktgen's defaults would not pair.
        let mut plans = rtp(4);
        for (i, p) in plans.iter_mut().enumerate() {
            p.from.set_port(1000 + i as u16);
        }
        assert_eq!(
            range_flows(&plans),
            Err(FlowsError::BelowDefault("source", 1000, 1234))
        );
    }
}
