//! The generator: its ports and state kept across trials, and one trial (paced or flat
//! out, then a drain) with what it offered and what came back.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context as _};
use relay_dataplane::dpdk::{Burst, Eal, Mbuf, PktMbufPool, Port, PortConfig};
use relay_gen::send::{Codec, Sender};
use relay_gen::streams::{by_destination, StreamPlan};
use relay_gen::verify::{Receiver, Report};
use relay_proto::wire;
use rustc_hash::FxHashMap;

/// Packets made and sent together at most.
const BURST: usize = 32;

/// Where the generator's frames go in and out.
pub(crate) struct Ports<'a> {
    /// The DPDK port that sends to the relay.
    pub(crate) tx: &'a str,
    /// The DPDK port the relayed packets arrive on (may be `tx`).
    pub(crate) rx: &'a str,
    /// The relay port's MAC address.
    pub(crate) relay_mac: [u8; 6],
    /// Open every N-th packet of a stream.
    pub(crate) verify_every: u16,
    /// Attack packets mixed in per stream packet (0: none); see [`Attack`].
    pub(crate) flood: u8,
}

/// The kinds of attack packet a flooded trial mixes in, in turn: what a relay on the open
/// internet gets from scanners and from someone who knows a call's addresses but not its
/// key. Neither may cost the established streams a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Attack {
    /// A stream's packet sent to the port after its own, where the relay has no flow:
    /// dropped at the flow lookup.
    UnknownFlow,
    /// A stream's next packet with its authentication tag changed, sent just before the
    /// real one: dropped after the relay checked the tag (for plain RTP, where there is
    /// no tag, it is sent to an unknown flow instead).
    ForgedTag,
}

/// The generator's ports and state, kept across trials (the streams' sequence numbers and
/// the verifier's SRTP contexts go on from one trial to the next, as the relay's do).
pub(crate) struct Generator<'eal> {
    eal: &'eal Eal,
    pool: PktMbufPool<'eal>,
    tx: Port<'eal>,
    rx: Option<Port<'eal>>,
    pub(crate) plans: Vec<StreamPlan>,
    sender: Sender,
    receiver: Receiver,
    by_dst: FxHashMap<SocketAddr, usize>,
    l2: wire::L2Out,
    every: u16,
    flood: u8,
    attacks_made: u64,
    next_stream: usize,
    pub(crate) other_frames: u64,
    /// The clock's origin (TSC) and rate.
    t0: u64,
    hz: u64,
}

/// What one trial offered and what came back.
pub(crate) struct TrialResult {
    /// Packets the pacing meant to send (the port refusing some is loss at that rate: the
    /// relay could not take them).
    pub(crate) intended: u64,
    /// Packets the port took.
    pub(crate) offered: u64,
    /// The verifier's report for this trial (counts of this trial only).
    pub(crate) report: Report,
    /// Seconds spent sending.
    pub(crate) seconds: f64,
    /// Packets the schedule called for that the generator itself did not make in time
    /// (paced trials only): the trial then says nothing about the relay at that rate.
    pub(crate) shortfall: u64,
    /// Attack packets the port took (none come back).
    pub(crate) attacks: u64,
}

impl TrialResult {
    /// Loss at the intended rate: packets meant and not delivered, over packets meant.
    pub(crate) fn loss_ratio(&self) -> f64 {
        if self.intended == 0 {
            0.0
        } else {
            self.intended.saturating_sub(self.report.delivered) as f64 / self.intended as f64
        }
    }

    /// The generator fell more than 1% behind its schedule.
    pub(crate) fn generator_limited(&self) -> bool {
        self.shortfall * 100 > self.intended + self.shortfall
    }
}

impl<'eal> Generator<'eal> {
    /// Opens the ports (the mbuf pool, both ports started) for the streams of `plans`.
    pub(crate) fn open(
        eal: &'eal Eal,
        ports: &Ports<'_>,
        plans: Vec<StreamPlan>,
        codec: Codec,
    ) -> anyhow::Result<Self> {
        let relay_mac = ports.relay_mac;
        let pool = PktMbufPool::create(
            eal,
            "gen",
            16_383,
            256,
            PktMbufPool::default_data_room(),
            eal.socket_id(),
        )
        .context("the mbuf pool")?;
        let open = |name: &str| -> anyhow::Result<Port<'eal>> {
            let id = Port::id_by_name(eal, name).with_context(|| format!("port {name}"))?;
            Port::open(eal, id, &PortConfig::default(), pool)
                .with_context(|| format!("port {name}"))
        };
        let tx = open(ports.tx)?;
        let rx = if ports.rx == ports.tx {
            None
        } else {
            Some(open(ports.rx)?)
        };
        if plans
            .iter()
            .any(|p| p.from.is_ipv4() != p.to_relay.is_ipv4())
        {
            bail!("a stream mixes IPv4 and IPv6 addresses");
        }
        let l2 = wire::L2Out {
            src: tx.mac().0,
            dst: relay_mac,
            vlan: None,
        };
        let (t0, hz) = eal.tsc();
        Ok(Generator {
            eal,
            pool,
            tx,
            rx,
            sender: Sender::with_ssrc_seed(&plans, codec, ssrc_seed()),
            receiver: Receiver::new(&plans),
            by_dst: by_destination(&plans),
            plans,
            l2,
            every: ports.verify_every.max(1),
            flood: ports.flood,
            attacks_made: 0,
            next_stream: 0,
            other_frames: 0,
            t0,
            hz,
        })
    }

    fn now_ns(&self) -> u64 {
        let tsc = self.eal.tsc().0;
        ((tsc - self.t0) as u128 * 1_000_000_000 / u128::from(self.hz)) as u64
    }

    /// Offers `rate` packets per second (0: flat out) over all streams for `seconds` (or
    /// until `limit` packets), then receives for `drain_ms` more.
    pub(crate) fn trial(
        &mut self,
        rate: f64,
        seconds: f64,
        limit: u64,
        drain_ms: u64,
    ) -> anyhow::Result<TrialResult> {
        self.receiver.reset_latency();
        let before = self.receiver.report(0);
        let start = self.now_ns();
        let send_for = Duration::from_secs_f64(seconds).as_nanos() as u64;
        let gap_ns = if rate > 0.0 { 1e9 / rate } else { 0.0 };
        let (mut out, mut inb) = (Burst::new(), Burst::new());
        // Packets are made a burst at a time (their tags computed together), then framed.
        let max = self.sender.max_packet_len();
        let mut made = vec![0u8; BURST * max];
        let (mut intended, mut offered, mut attacks) = (0u64, 0u64, 0u64);
        let mut last_sent = start;
        loop {
            let now = self.now_ns();
            let elapsed = now - start;
            if elapsed < send_for && intended < limit {
                let due = if gap_ns > 0.0 {
                    ((elapsed as f64 / gap_ns) as u64)
                        .saturating_sub(intended)
                        .min(32)
                } else {
                    32
                };
                // Room in the burst for each packet's attack packets too.
                let per_burst = BURST / (1 + usize::from(self.flood));
                let k = (due.min(limit - intended) as usize).min(per_burst);
                let mut streams = [0usize; BURST];
                for s in &mut streams[..k] {
                    *s = self.next_stream;
                    self.next_stream = (self.next_stream + 1) % self.plans.len();
                }
                let mut lens = [0usize; BURST];
                {
                    let mut outs: [&mut [u8]; BURST] = Default::default();
                    for (o, c) in outs.iter_mut().zip(made.chunks_mut(max)) {
                        *o = c;
                    }
                    self.sender
                        .next_burst(&streams[..k], now, &mut outs[..k], &mut lens[..k])?;
                }
                // Which frames of the burst are attack packets (the port takes a prefix).
                let mut is_attack = [false; BURST];
                for ((&s, &len), packet) in streams[..k].iter().zip(&lens).zip(made.chunks(max)) {
                    // Made but not sent for want of a buffer: lost at a paced rate.
                    intended += 1;
                    let p = &self.plans[s];
                    for _ in 0..self.flood {
                        let kind = if self.attacks_made.is_multiple_of(2) || p.send_key.is_none() {
                            Attack::UnknownFlow
                        } else {
                            Attack::ForgedTag
                        };
                        self.attacks_made += 1;
                        let mut dst = p.to_relay;
                        let mut forged = [0u8; 1500];
                        let forged = &mut forged[..len];
                        forged.copy_from_slice(&packet[..len]);
                        match kind {
                            Attack::UnknownFlow => dst.set_port(dst.port().wrapping_add(1)),
                            Attack::ForgedTag => forged[len - 1] ^= 0x5a,
                        }
                        if let Some(m) = frame(&self.pool, &self.l2, forged, p.from, dst)? {
                            is_attack[out.len()] = true;
                            let _ = out.push(m);
                        }
                    }
                    let Some(m) = frame(&self.pool, &self.l2, &packet[..len], p.from, p.to_relay)?
                    else {
                        continue;
                    };
                    // (The burst holds BURST_SIZE >= BURST mbufs and starts empty.)
                    let _ = out.push(m);
                }
                let built = out.len();
                let taken = self.tx.tx_burst(0, &mut out);
                let attacks_taken = is_attack[..taken].iter().filter(|a| **a).count() as u64;
                let attacks_left = is_attack[taken..built].iter().filter(|a| **a).count();
                attacks += attacks_taken;
                offered += taken as u64 - attacks_taken;
                // What the port did not take is dropped here: at a paced rate it counts as
                // lost (the relay could not take it); flat out it was never meant.
                if gap_ns == 0.0 {
                    intended -= (out.len() - attacks_left) as u64;
                }
                out.clear();
                last_sent = now;
            } else if now > last_sent + drain_ms * 1_000_000 {
                break;
            }
            let rx = self.rx.as_ref().unwrap_or(&self.tx);
            if rx.rx_burst(0, &mut inb) > 0 {
                let now = self.now_ns();
                for i in 0..inb.len() {
                    let frame = inb.packet_mut(i);
                    let Ok(u) = wire::parse_udp(frame) else {
                        self.other_frames += 1;
                        continue;
                    };
                    let Some(&stream) = self.by_dst.get(&u.dst) else {
                        self.other_frames += 1;
                        continue;
                    };
                    let payload = &mut frame[u.payload..u.payload + u.payload_len];
                    let seq = payload
                        .get(2..4)
                        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
                    // Staggered by stream: with many streams and few packets each per trial
                    // (a million streams at under 1 Mpps), every trial still opens a sample.
                    if (usize::from(seq) + stream) % usize::from(self.every) == 0 {
                        self.receiver.receive(stream, payload, now);
                    } else {
                        self.receiver.receive_unopened(stream, payload);
                    }
                }
                inb.clear();
            }
        }
        Ok(TrialResult::new(
            &before,
            &self.receiver.report(0),
            Tally {
                intended,
                offered,
                attacks,
                start,
                last_sent,
                send_for,
                gap_ns,
                missed: 0,
            },
        ))
    }
}

/// What a trial's send loop counted (times on the generator's clock, nanoseconds).
pub(crate) struct Tally {
    pub(crate) intended: u64,
    pub(crate) offered: u64,
    pub(crate) attacks: u64,
    pub(crate) start: u64,
    pub(crate) last_sent: u64,
    pub(crate) send_for: u64,
    /// Nanoseconds between packets; 0 flat out.
    pub(crate) gap_ns: f64,
    /// Packets the generator itself failed to receive (counted against its schedule).
    pub(crate) missed: u64,
}

impl TrialResult {
    /// The trial's result: the verifier's counts between `before` and `after`, and what
    /// the send loop counted.
    pub(crate) fn new(before: &Report, after: &Report, t: Tally) -> TrialResult {
        // What the schedule called for over the time spent sending.
        let scheduled = if t.gap_ns > 0.0 {
            (((t.last_sent - t.start).min(t.send_for)) as f64 / t.gap_ns) as u64
        } else {
            t.intended
        };
        let counts = after.counts.since(&before.counts);
        let delivered = counts.fresh + counts.reordered;
        TrialResult {
            intended: t.intended,
            offered: t.offered,
            report: Report {
                sent: t.offered,
                delivered,
                lost: t.offered.saturating_sub(delivered),
                counts,
                latency_ns: after.latency_ns,
            },
            seconds: (t.last_sent.saturating_sub(t.start)).max(1) as f64 / 1e9,
            shortfall: scheduled.saturating_sub(t.intended) + t.missed,
            attacks: t.attacks,
        }
    }
}

/// One frame of `payload` from `from` to `to` in a buffer of `pool` (`None`: the pool is
/// empty, the packet is lost).
fn frame<'eal>(
    pool: &PktMbufPool<'eal>,
    l2: &wire::L2Out,
    payload: &[u8],
    from: SocketAddr,
    to: SocketAddr,
) -> anyhow::Result<Option<Mbuf<'eal>>> {
    let Some(mut m) = pool.alloc() else {
        return Ok(None);
    };
    let at = if to.is_ipv4() { 42 } else { 62 };
    let len = payload.len();
    let Some(buf) = m.append((at + len + 64) as u16) else {
        bail!("mbufs too small for {} bytes", at + len);
    };
    buf[at..at + len].copy_from_slice(payload);
    let n = wire::emit_udp(buf, at, len, l2, from, to).context("building a frame")?;
    m.truncate(n as u16);
    Ok(Some(m))
}

/// Differs from run to run (time and process), so a second run against the same relay
/// sends under new SSRCs.
fn ssrc_seed() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() ^ d.as_secs() as u32);
    nanos ^ std::process::id().rotate_left(16)
}
