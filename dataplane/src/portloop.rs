//! The port loop: a generator, a forwarder and a sink on two DPDK ports.
//!
//! ```text
//!  generator --tx--> port A --(loops back)--> rx: forwarder --tx--> port B --(loops back)--> rx: sink
//! ```
//! With `net_ringN` virtual devices each port loops its transmissions back to its own receive
//! queue, so the whole path runs in one process with no NIC. The generator writes numbered
//! UDP/IPv4 frames whose payload is a pattern derived from the number; the forwarder rewrites
//! the Ethernet addresses to port B's and a next hop's (as the relay will) and moves each mbuf to port B without copying;
//! the sink checks every frame's checksums, number and payload byte for byte.
//!
//! The loop is bounded both in packets and in time.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use crate::dpdk::{Burst, DpdkError, Eal, PktMbufPool, Port, PortStats};
use crate::wire::{parse_udp_checked, write_udp_with, UdpEndpoints};

/// What the port loop sends.
#[derive(Debug, Clone)]
pub struct PortLoopConfig {
    /// Frames to generate.
    pub packets: u64,
    /// UDP payload bytes per frame (at least 8, for the frame number).
    pub payload_len: usize,
    /// Give up after this long even if frames are missing.
    pub time_limit: Duration,
}

impl Default for PortLoopConfig {
    fn default() -> Self {
        // 172 bytes of UDP payload: a 12-byte RTP header and 20 ms of G.711.
        PortLoopConfig {
            packets: 1_000_000,
            payload_len: 172,
            time_limit: Duration::from_secs(30),
        }
    }
}

/// What the port loop saw.
#[derive(Debug, Clone, Default)]
pub struct PortLoopReport {
    /// Frames the generator handed to port A.
    pub generated: u64,
    /// Frames the forwarder received on A and handed to port B.
    pub forwarded: u64,
    /// Bytes forwarded.
    pub forwarded_bytes: u64,
    /// Frames the forwarder dropped because port B's transmit ring was full.
    pub dropped_tx_full: u64,
    /// Frames the sink received on B.
    pub received: u64,
    /// Received frames whose checksums, number and payload were all as generated.
    pub verified: u64,
    /// Received frames that were malformed or carried other bytes than generated.
    pub corrupt: u64,
    /// Received frames whose number was not the next expected one.
    pub out_of_order: u64,
    /// Time from the first generated frame to the last received one.
    pub elapsed: Duration,
    /// Port A's device counters.
    pub port_a: PortStats,
    /// Port B's device counters.
    pub port_b: PortStats,
}

impl PortLoopReport {
    /// Frames forwarded per second over the run.
    pub fn forwarded_pps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.forwarded as f64 / secs
        } else {
            0.0
        }
    }
}

/// The forwarder's next hop on port B, as the relay would have resolved it by ARP.
pub const NEXT_HOP_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

const SRC: &str = "198.18.0.1:40000";
const DST: &str = "198.19.0.1:50000";

/// The payload byte at `offset` of frame `seq`: bytes 0..8 are the number, then a pattern.
fn pattern_byte(seq: u64, offset: usize) -> u8 {
    (seq as usize).wrapping_mul(31).wrapping_add(offset) as u8
}

fn fill_payload(payload: &mut [u8], seq: u64) {
    payload[..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in payload.iter_mut().enumerate().skip(8) {
        *b = pattern_byte(seq, i);
    }
}

fn payload_matches(payload: &[u8], seq: u64, len: usize) -> bool {
    payload.len() == len
        && payload[..8] == seq.to_be_bytes()
        && payload
            .iter()
            .enumerate()
            .skip(8)
            .all(|(i, &b)| b == pattern_byte(seq, i))
}

/// Runs the loop over ports `a` and `b` (each must loop its transmissions back to itself).
pub fn run<'eal>(
    eal: &'eal Eal,
    pool: PktMbufPool<'eal>,
    a: &Port<'eal>,
    b: &Port<'eal>,
    config: &PortLoopConfig,
) -> Result<PortLoopReport, DpdkError> {
    let _ = eal;
    let payload_len = config.payload_len.max(8);
    let (mac_a, mac_b) = (a.mac(), b.mac());
    let ends = UdpEndpoints {
        src_mac: [0x02, 0, 0, 0, 0, 0x01],
        dst_mac: mac_a.0,
        vlan: None,
        src: SRC
            .parse::<SocketAddrV4>()
            .expect("constant address")
            .into(),
        dst: DST
            .parse::<SocketAddrV4>()
            .expect("constant address")
            .into(),
    };
    let frame_len = u16::try_from(ends.header_len() + payload_len).map_err(|_| {
        DpdkError::InvalidArgument(format!("payload of {payload_len} bytes is too large"))
    })?;

    let mut report = PortLoopReport::default();
    let (mut gen, mut fwd_in, mut fwd_out, mut sink) =
        (Burst::new(), Burst::new(), Burst::new(), Burst::new());
    let mut next_seq = 0u64; // next number the generator writes
    let mut expected = 0u64; // next number the sink expects
    let start = Instant::now();
    let deadline = start + config.time_limit;
    let mut last_rx = start;

    loop {
        // Generator: top the burst up with fresh numbered frames, send what port A takes.
        while next_seq < config.packets && !gen.is_full() {
            let Some(mut m) = pool.alloc() else { break };
            let Some(buf) = m.append(frame_len) else {
                break;
            };
            let seq = next_seq;
            let written = write_udp_with(buf, &ends, payload_len, |p| fill_payload(p, seq));
            debug_assert_eq!(written, Some(usize::from(frame_len)));
            if gen.push(m).is_err() {
                break;
            }
            next_seq += 1;
        }
        report.generated += a.tx_burst(0, &mut gen) as u64;

        // Forwarder: A -> B, rewriting the Ethernet addresses in place (zero copy).
        if a.rx_burst(0, &mut fwd_in) > 0 {
            for mut m in fwd_in.drain() {
                let data = m.data_mut();
                data[0..6].copy_from_slice(&NEXT_HOP_MAC);
                data[6..12].copy_from_slice(&mac_b.0);
                report.forwarded_bytes += data.len() as u64;
                // fwd_out is emptied every round and fwd_in holds at most a burst.
                let _ = fwd_out.push(m);
            }
            let sent = b.tx_burst(0, &mut fwd_out);
            report.forwarded += sent as u64;
            report.dropped_tx_full += fwd_out.len() as u64;
            fwd_out.clear();
        }

        // Sink: check every frame on B.
        let n = b.rx_burst(0, &mut sink);
        if n > 0 {
            last_rx = Instant::now();
            for i in 0..sink.len() {
                report.received += 1;
                match parse_udp_checked(sink.packet(i)) {
                    Ok((e, payload)) if payload.len() >= 8 => {
                        let seq = u64::from_be_bytes(payload[..8].try_into().expect("8 bytes"));
                        if seq != expected {
                            report.out_of_order += 1;
                        }
                        expected = seq + 1;
                        let addressed = e.dst_mac == NEXT_HOP_MAC && e.src_mac == mac_b.0;
                        if addressed && payload_matches(payload, seq, payload_len) {
                            report.verified += 1;
                        } else {
                            report.corrupt += 1;
                        }
                    }
                    _ => report.corrupt += 1,
                }
            }
            sink.clear();
        }

        let done = next_seq == config.packets
            && gen.is_empty()
            && report.received + report.dropped_tx_full >= report.generated;
        let now = Instant::now();
        if done || now >= deadline {
            break;
        }
        // Frames lost inside a device would otherwise keep us waiting until the deadline.
        if next_seq == config.packets && gen.is_empty() && now - last_rx > Duration::from_secs(1) {
            break;
        }
    }
    report.elapsed = last_rx - start;
    report.port_a = a.stats()?;
    report.port_b = b.stats()?;
    Ok(report)
}
