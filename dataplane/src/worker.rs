//! The poll-mode worker loop: receive bursts on every port, run each frame through the
//! worker's [`Relay`], transmit bursts, apply control messages between bursts.
//!
//! Run to completion on one core; the only per-packet work is the relay's. Control messages
//! arrive on a crossbeam channel polled with `try_recv` (atomics, no syscall, no lock).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::dpdk::{Burst, Eal, Mbuf, PktMbufPool, Queue, RingConsumer, RingProducer, BURST_SIZE};
use crate::held::{self, HeldFrames};
use crate::relay::{CallStats, DropReason, Received, Relay, RxChecksum, Verdict, WorkerStats};
use crate::rss::{queue_for_port, SOFTWARE_RETA_SIZE};
use crate::session::{CallSpec, SessionError};
use crate::wire;

/// A request to a worker; the answer goes back on `reply`.
pub enum ControlMsg {
    /// Install a call.
    AddCall(CallSpec, Sender<Result<(), SessionError>>),
    /// Change a call (re-INVITE).
    ModifyCall(CallSpec, Sender<Result<(), SessionError>>),
    /// Remove a call; answers its final counters.
    RemoveCall(String, Sender<Result<CallStats, SessionError>>),
    /// The installed call ids.
    ListCalls(Sender<Vec<String>>),
    /// A call's counters.
    CallStats(String, Sender<Option<CallStats>>),
    /// The worker's counters.
    WorkerStats(Sender<WorkerStats>),
    /// A neighbour another worker learnt from the wire (no answer).
    Neighbour(IpAddr, [u8; 6]),
}

/// When the loop ends.
pub struct Limits<'a> {
    /// Set from a signal handler or the control thread.
    pub stop: &'a AtomicBool,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop once nothing was received for this long (after something was): for pcap runs.
    pub idle_exit: Option<Duration>,
}

/// How workers share ports and what they learn.
///
/// A port with RSS gives every worker its own receive queue and the NIC steers each packet to
/// the worker owning its stream. A port without RSS has a receive queue per worker if it can
/// (spread however the device spreads them) or one, polled by worker 0; a worker that receives
/// hands each UDP packet owned by another worker to it over a single-producer,
/// single-consumer ring, one per pair of workers (software dispatch), using the same hash of
/// the destination port ([`crate::rss::queue_for_port`] over
/// [`crate::rss::SOFTWARE_RETA_SIZE`] entries) by which calls are placed. Either way a
/// stream's state is only ever touched by its owner. ARP and neighbour discovery arrive at one
/// worker; what it learns reaches the others by message.
#[derive(Default)]
pub struct Handoff<'r, 'eal> {
    /// This worker's index.
    pub me: usize,
    /// Number of workers.
    pub workers: u16,
    /// Ports without RSS on which this worker receives (for everyone).
    pub dispatch_ports: Vec<u16>,
    /// Rings towards each worker, by worker index (`None` for itself and where not needed).
    pub to: Vec<Option<RingProducer<'r, 'eal>>>,
    /// Rings from the workers that hand packets to this one.
    pub from: Vec<RingConsumer<'r, 'eal>>,
    /// The other workers' control channels, for neighbours learnt here.
    pub peers: Vec<Sender<ControlMsg>>,
}

fn apply(relay: &mut Relay, msg: ControlMsg, now_ns: u64) {
    // A closed reply channel only means the requester gave up waiting.
    match msg {
        ControlMsg::AddCall(spec, reply) => {
            let _ = reply.send(relay.add_call(&spec));
        }
        ControlMsg::ModifyCall(spec, reply) => {
            let _ = reply.send(relay.modify_call(&spec));
        }
        ControlMsg::RemoveCall(id, reply) => {
            let _ = reply.send(relay.remove_call(&id));
        }
        ControlMsg::ListCalls(reply) => {
            let _ = reply.send(relay.call_ids());
        }
        ControlMsg::CallStats(id, reply) => {
            let _ = reply.send(relay.call_stats(&id));
        }
        ControlMsg::WorkerStats(reply) => {
            let _ = reply.send(relay.stats.clone());
        }
        ControlMsg::Neighbour(ip, mac) => relay.learn(ip, mac, now_ns),
    }
}

/// Runs the worker on the calling lcore over `queues` (one queue pair of each port it polls)
/// until `limits` say stop; then drains what is queued for transmission.
pub fn run<'eal>(
    eal: &'eal Eal,
    pool: PktMbufPool<'eal>,
    queues: &mut [Queue<'_, 'eal>],
    relay: &mut Relay,
    control: Option<&Receiver<ControlMsg>>,
    handoff: &mut Handoff<'_, 'eal>,
    limits: &Limits<'_>,
) {
    let (_, hz) = eal.tsc();
    let ns_per_tick = 1e9 / hz.max(1) as f64;
    let start = eal.tsc().0;
    let now_ns = || ((eal.tsc().0 - start) as f64 * ns_per_tick) as u64;
    let mut rx = Burst::new();
    let mut tx: Vec<Burst<'eal>> = queues.iter().map(|_| Burst::new()).collect();
    let mut to_workers: Vec<Burst<'eal>> = handoff.to.iter().map(|_| Burst::new()).collect();
    let mut held = HeldFrames::default();
    let ids: Vec<u16> = queues.iter().map(Queue::port_id).collect();
    let dispatch: Vec<bool> = ids
        .iter()
        .map(|id| handoff.dispatch_ports.contains(id))
        .collect();
    let mut last_rx_ns = None;
    let mut iterations = 0u64;

    // The previous round's start and whether it found packets: each round's time is added
    // to the run (and to the busy time, if it worked) when the next one starts.
    let mut round: Option<(u64, bool)> = None;
    loop {
        iterations += 1;
        let now = now_ns();
        if let Some((started, worked)) = round {
            let took = now.saturating_sub(started);
            relay.stats.run_ns += took;
            if worked {
                relay.stats.busy_ns += took;
            }
        }
        // Control first: a few messages per loop, so forwarding never pauses for long, and
        // applied before the packets that follow them (a neighbour another worker learnt
        // arrives here before the packets it handed over after learning it).
        if let Some(rx_ctl) = control {
            for _ in 0..8 {
                match rx_ctl.try_recv() {
                    Ok(msg) => apply(relay, msg, now),
                    Err(_) => break,
                }
            }
        }
        let mut received = 0;
        for pi in 0..queues.len() {
            received += queues[pi].rx_burst(&mut rx);
            if dispatch[pi] && handoff.workers > 1 {
                hand_over(&mut rx, ids[pi], handoff, &mut to_workers, relay);
            }
            rx.prefetch_headers();
            let mut out = Output {
                ids: &ids,
                queues,
                tx: &mut tx,
                held: &mut held,
            };
            forward_burst(relay, &mut rx, Some(pi), &mut out, now);
        }
        // Packets other workers received for this one.
        for ring in &mut handoff.from {
            received += ring.dequeue_burst(&mut rx);
            rx.prefetch_headers();
            let mut out = Output {
                ids: &ids,
                queues,
                tx: &mut tx,
                held: &mut held,
            };
            forward_burst(relay, &mut rx, None, &mut out, now);
        }
        let mut tx_full = 0u64;
        relay.drain_arp_requests(|port, frame| {
            let Some(oi) = ids.iter().position(|&p| p == port) else {
                return;
            };
            let Some(mut m) = pool.alloc() else { return };
            let Some(buf) = m.append(frame.len() as u16) else {
                return;
            };
            buf.copy_from_slice(frame);
            if tx[oi].is_full() {
                flush(&mut queues[oi], &mut tx[oi], &mut tx_full);
            }
            let _ = tx[oi].push(m);
        });
        for (q, burst) in queues.iter_mut().zip(tx.iter_mut()) {
            flush(q, burst, &mut tx_full);
        }
        relay.stats.drops[DropReason::TxFull.index()] += tx_full;
        // Neighbours learnt here, for the other workers (a full channel only delays them: the
        // next ARP or ND exchange tells them again).
        let peers = &handoff.peers;
        relay.drain_learnt(|ip, mac| {
            for p in peers {
                let _ = p.try_send(ControlMsg::Neighbour(ip, mac));
            }
        });
        if received > 0 {
            last_rx_ns = Some(now);
        }
        round = Some((now, received > 0));
        // Check the clocks and flags every 64 loops: cheap either way, but keep it off the
        // packet path.
        if iterations.is_multiple_of(64) {
            if limits.stop.load(Ordering::Relaxed) {
                break;
            }
            if limits.duration.is_some_and(|d| now >= d.as_nanos() as u64) {
                break;
            }
            if let (Some(idle), Some(last)) = (limits.idle_exit, last_rx_ns) {
                if now.saturating_sub(last) >= idle.as_nanos() as u64 {
                    break;
                }
            }
        }
    }
    // Held frames whose next hop answered go out with the rest; the others are given up
    // (counted), as if their time had run out.
    held.release(relay, u64::MAX, |relay, oi, m| {
        queue_for_tx(relay, m, &mut queues[oi], &mut tx[oi]);
    });
    for (q, burst) in queues.iter_mut().zip(tx.iter_mut()) {
        for _ in 0..100 {
            if burst.is_empty() {
                break;
            }
            q.tx_burst(burst);
        }
        flush(q, burst, &mut relay.stats.drops[DropReason::TxFull.index()]);
    }
}

/// Software dispatch: moves the UDP packets of `rx` that belong to other workers onto their
/// rings (a full ring drops and counts them); the rest stay in `rx`, in order.
fn hand_over<'eal>(
    rx: &mut Burst<'eal>,
    port: u16,
    handoff: &mut Handoff<'_, 'eal>,
    to_workers: &mut [Burst<'eal>],
    relay: &mut Relay,
) {
    let mut keep = Burst::new();
    for mut m in rx.drain() {
        let owner = wire::peek_udp_dst(m.data()).map_or(handoff.me, |dst| {
            usize::from(queue_for_port(
                dst.port(),
                SOFTWARE_RETA_SIZE,
                handoff.workers,
            ))
        });
        let out = match to_workers.get_mut(owner) {
            Some(out) if owner != handoff.me && handoff.to[owner].is_some() => out,
            _ => {
                // Ours (or nobody else's): `keep` has room, it only takes what `rx` held.
                let _ = keep.push(m);
                continue;
            }
        };
        m.set_rx_port(port);
        if let Err(m) = out.push(m) {
            drop(m);
            relay.stats.drops[DropReason::HandoffFull.index()] += 1;
        }
    }
    for (out, ring) in to_workers.iter_mut().zip(handoff.to.iter_mut()) {
        if let Some(ring) = ring {
            relay.stats.handed_over += ring.enqueue_burst(out) as u64;
            relay.stats.drops[DropReason::HandoffFull.index()] += out.len() as u64;
            out.clear();
        }
    }
    *rx = keep;
}

/// What the receiving NIC said of a frame's UDP checksum ([`Mbuf::rx_l4_checksum`]), for
/// the relay.
#[inline]
fn rx_checksum(flags: Option<(bool, bool)>) -> RxChecksum {
    match flags {
        None => RxChecksum::Unknown,
        Some((true, true)) => RxChecksum::Good,
        Some((true, false)) => RxChecksum::Bad,
        Some((false, _)) => RxChecksum::PayloadVerified,
    }
}

/// Where a worker's frames go out: its queues (one per port, `ids` their port ids), the
/// bursts being filled for them, and the frames held for a next hop's MAC.
struct Output<'o, 'q, 'eal> {
    ids: &'o [u16],
    queues: &'o mut [Queue<'q, 'eal>],
    tx: &'o mut [Burst<'eal>],
    held: &'o mut HeldFrames<'eal>,
}

/// Runs a received burst through the relay in one call (its SRTP tags computed together)
/// and queues what comes out for transmission, after the held frames whose next hop is now
/// known (the burst may have brought its answer). `arrived_on`: the index in `ids` of the
/// port the burst came from, or `None` to read each mbuf's own (handed over by another
/// worker; one no port of ours owns is dropped).
fn forward_burst<'eal>(
    relay: &mut Relay,
    rx: &mut Burst<'eal>,
    arrived_on: Option<usize>,
    out: &mut Output<'_, '_, 'eal>,
    now: u64,
) {
    let ids = out.ids;
    // Each mbuf's port (index in `ids`), or none; the frames stay in their mbufs.
    let mut ports = [None; BURST_SIZE];
    let mut verdicts = [Verdict::Consumed; BURST_SIZE];
    {
        let mut frames: [Received<'_>; BURST_SIZE] = Default::default();
        let mut n = 0;
        for (i, (frame, len, checksum, port)) in rx.frames_mut().enumerate() {
            let Some(pi) = arrived_on.or_else(|| ids.iter().position(|&p| p == port)) else {
                continue;
            };
            ports[i] = Some(pi);
            frames[n] = Received {
                port: ids[pi],
                frame,
                len,
                checksum: rx_checksum(checksum),
            };
            n += 1;
        }
        // The relay's staged prefetch of the burst's state, then the burst.
        relay.process_burst_hinted(
            &crate::dpdk::CpuPrefetch,
            &mut frames[..n],
            now,
            &mut verdicts[..n],
        );
    }
    if !out.held.is_empty() {
        let Output {
            queues, tx, held, ..
        } = out;
        held.release(relay, now, |relay, oi, m| {
            queue_for_tx(relay, m, &mut queues[oi], &mut tx[oi]);
        });
    }
    let mut verdict = verdicts.iter();
    for (m, port) in rx.drain().zip(ports) {
        match port {
            Some(pi) => {
                let v = *verdict.next().expect("one verdict per frame handed over");
                transmit(relay, m, v, pi, out, now);
            }
            None => relay.stats.drops[DropReason::NoRoute.index()] += 1,
        }
    }
}

/// Queues a frame the relay has handled for transmission as its verdict says (a forward,
/// or an answer on the port it came from), or holds it for its next hop's MAC; anything
/// else is dropped (already counted).
#[inline]
fn transmit<'eal>(
    relay: &mut Relay,
    mut m: Mbuf<'eal>,
    verdict: Verdict,
    pi: usize,
    out: &mut Output<'_, '_, 'eal>,
    now: u64,
) {
    let ids = out.ids;
    let (port, len, offload, next_hop) = match verdict {
        Verdict::Forward { port, len, offload } => (port, len, offload, None),
        Verdict::Hold {
            port,
            len,
            offload,
            next_hop,
        } => (port, len, offload, Some(next_hop)),
        Verdict::Reply { len } => (ids[pi], len, None, None),
        Verdict::Consumed | Verdict::Drop(_) => return,
    };
    let Some(oi) = ids.iter().position(|&p| p == port) else {
        relay.stats.drops[DropReason::NoRoute.index()] += 1;
        return;
    };
    if let Some(o) = offload {
        m.request_udp_checksum(o.l2_len, o.l3_len, o.ipv6);
    }
    if !m.set_len(len) {
        relay.stats.drops[DropReason::TooBig.index()] += 1;
        return;
    }
    match next_hop {
        // Held for a next hop whose answer came later in this burst: completed at once
        // (the frames after it, forwarded, are not to overtake it).
        Some(next_hop) if !held::complete(relay, &mut m, next_hop) => {
            out.held.hold(relay, m, oi, next_hop, now);
        }
        _ => queue_for_tx(relay, m, &mut out.queues[oi], &mut out.tx[oi]),
    }
}

/// Adds a frame to the burst for `queue`, transmitting the burst first if it is full.
#[inline]
fn queue_for_tx<'eal>(
    relay: &mut Relay,
    m: Mbuf<'eal>,
    queue: &mut Queue<'_, 'eal>,
    tx: &mut Burst<'eal>,
) {
    if tx.is_full() {
        flush(
            queue,
            tx,
            &mut relay.stats.drops[DropReason::TxFull.index()],
        );
    }
    if tx.push(m).is_err() {
        relay.stats.drops[DropReason::TxFull.index()] += 1;
    }
}

/// Transmits a burst; what the device does not take is dropped and counted in `tx_full`.
fn flush<'eal>(queue: &mut Queue<'_, 'eal>, burst: &mut Burst<'eal>, tx_full: &mut u64) {
    if burst.is_empty() {
        return;
    }
    queue.tx_burst(burst);
    if !burst.is_empty() {
        *tx_full += burst.len() as u64;
        burst.clear();
    }
}
