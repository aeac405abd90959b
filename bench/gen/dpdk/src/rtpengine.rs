//! `relay-gen rtpengine`: the same SRTP streams re-keyed by rtpengine (Debian's
//! `rtpengine-daemon`, userspace), the relay a user would otherwise pick, over loopback UDP.
//! Calls are set up over rtpengine's ng protocol (`relay_gen::rtpengine`); the generator
//! then sends every stream's SRTP from one socket (leg a's peer) to rtpengine's a-side
//! ports and receives on another (leg b's peer), each relayed packet's stream known by
//! rtpengine's b-side port it came from, and judges it as the DPDK generator does. The
//! sockets are the kernel's, so the generator's own ceiling is lower than over DPDK: trials
//! it cannot keep to are marked generator-limited, as there.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use relay_gen::rtpengine::{self as ng, CallIds};
use relay_gen::send::{Codec, Sender};
use relay_gen::streams::StreamPlan;
use relay_gen::verify::Receiver;
use relay_srtp::{MasterKey, SdesKey, Suite};

use crate::generator::{Tally, TrialResult};
use crate::Trials;

/// The suite leg a sends with (the one the relay is measured with).
const SUITE: Suite = Suite::AesCm128HmacSha1_80;

/// The suite leg b chooses from rtpengine's offer. rtpengine offers leg b the offerer's own
/// suite with the offerer's own key (and every other suite with a fresh key), so packets of
/// that line could pass through without being opened: leg b takes the line with the same
/// cipher and hash and a fresh key, whose tag is cut to 32 bits. rtpengine then
/// authenticates, decrypts, encrypts and tags every packet, as the relay does.
const B_SUITE: Suite = Suite::AesCm128HmacSha1_32;

/// Receive buffer of the generator's leg-b socket: a few milliseconds of packets at the
/// rates measured (the kernel caps it at `net.core.rmem_max`).
const RECEIVE_BUFFER: usize = 4 << 20;

/// The generator's side of a run against rtpengine.
pub(crate) struct UdpGenerator {
    pub(crate) plans: Vec<StreamPlan>,
    calls: Vec<CallIds>,
    /// Sets of calls made so far (each trial has its own).
    generation: u32,
    streams: usize,
    codec: Codec,
    sender: Sender,
    receiver: Receiver,
    tx: UdpSocket,
    rx: UdpSocket,
    ng: UdpSocket,
    /// Each stream by rtpengine's b-side address (where its relayed packets come from).
    by_source: HashMap<SocketAddr, usize>,
    every: u16,
    next_stream: usize,
    t0: Instant,
    /// Datagrams from addresses that carry no stream.
    pub(crate) other: u64,
}

impl UdpGenerator {
    /// Sets up `streams` calls on the rtpengine whose ng port is `ng_addr`, media on `ip`.
    pub(crate) fn open(
        ng_addr: SocketAddr,
        ip: IpAddr,
        streams: usize,
        codec: Codec,
        every: u16,
    ) -> anyhow::Result<UdpGenerator> {
        let ng = UdpSocket::bind((ip, 0)).context("binding the ng socket")?;
        ng.connect(ng_addr)
            .with_context(|| format!("rtpengine's ng port {ng_addr}"))?;
        ng.set_read_timeout(Some(Duration::from_secs(2)))?;
        let tx = UdpSocket::bind((ip, 0)).context("binding leg a's socket")?;
        let rx = receive_socket(ip)?;
        let mut gen = UdpGenerator {
            plans: Vec::new(),
            calls: Vec::new(),
            generation: 0,
            streams,
            codec,
            sender: Sender::new(&[], codec),
            receiver: Receiver::new(&[]),
            tx,
            rx,
            ng,
            by_source: HashMap::new(),
            every: every.max(1),
            next_stream: 0,
            t0: Instant::now(),
            other: 0,
        };
        gen.renew_calls()?;
        Ok(gen)
    }

    /// Deletes the calls and sets up as many new ones, on new rtpengine ports: every trial
    /// starts on fresh calls. rtpengine carries an overload over: after a trial above its
    /// rate, some of its sockets stay backlogged and lose a share of every later trial's
    /// packets at rates it relayed cleanly before (seen at about 6%), so a search on the same
    /// calls would measure the order of its trials. The relay has no such memory.
    fn renew_calls(&mut self) -> anyhow::Result<()> {
        self.delete_calls();
        self.generation += 1;
        let run = format!("{}.{}", std::process::id(), self.generation);
        let (a_addr, b_addr) = (self.tx.local_addr()?, self.rx.local_addr()?);
        let mut plans = Vec::with_capacity(self.streams);
        let mut calls = Vec::with_capacity(self.streams);
        for i in 0..self.streams {
            let call = CallIds::new(&run, i);
            let a_key = SdesKey::new(MasterKey::random(SUITE)?);
            let offer = ng::leg_sdp(a_addr, &a_key, 1);
            let ng = &self.ng;
            let towards_b = exchange(ng, &format!("{run}-{i}-o"), "offer", &call, &offer)?;
            let towards_b = ng::media(&towards_b, B_SUITE)
                .with_context(|| format!("rtpengine's offer reply for call {i}"))?;
            if towards_b.key.to_inline() == a_key.to_inline() {
                bail!("rtpengine offers leg b leg a's own key on the {B_SUITE:?} line: it would not re-key");
            }
            let b_key = SdesKey::new(MasterKey::random(B_SUITE)?);
            let answer = ng::leg_sdp(b_addr, &b_key, towards_b.tag);
            let towards_a = exchange(ng, &format!("{run}-{i}-a"), "answer", &call, &answer)?;
            let towards_a = ng::media(&towards_a, SUITE)
                .with_context(|| format!("rtpengine's answer reply for call {i}"))?;
            plans.push(ng::stream(
                &call,
                a_addr,
                a_key,
                b_addr,
                towards_a.addr,
                towards_b,
            ));
            calls.push(call);
        }
        self.by_source = plans
            .iter()
            .enumerate()
            .map(|(i, p)| (p.relay_out, i))
            .collect::<HashMap<_, _>>();
        if self.by_source.len() != plans.len() {
            bail!("rtpengine gave two calls the same b-side address");
        }
        self.sender = Sender::new(&plans, self.codec);
        self.receiver = Receiver::new(&plans);
        self.plans = plans;
        self.calls = calls;
        self.next_stream = 0;
        Ok(())
    }

    /// Deletes the calls (best effort: a call rtpengine no longer knows is not an error).
    pub(crate) fn delete_calls(&mut self) {
        let run = format!("{}.{}", std::process::id(), self.generation);
        for (i, call) in self.calls.iter().enumerate() {
            let cookie = format!("{run}-{i}-d");
            let _ = self.ng.send(&ng::request(&cookie, "delete", call, None));
            let mut buf = [0u8; 4096];
            let _ = self.ng.recv(&mut buf);
        }
        self.calls.clear();
    }

    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    /// Judges every datagram waiting on leg b's socket; returns how many there were.
    fn receive_waiting(&mut self, buf: &mut [u8]) -> anyhow::Result<u64> {
        let mut received = 0;
        loop {
            match self.rx.recv_from(buf) {
                Ok((n, from)) => {
                    received += 1;
                    let Some(&stream) = self.by_source.get(&from) else {
                        self.other += 1;
                        continue;
                    };
                    let packet = &mut buf[..n];
                    let seq = packet
                        .get(2..4)
                        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
                    // Staggered by stream, as the DPDK generator samples.
                    if (usize::from(seq) + stream) % usize::from(self.every) == 0 {
                        let now = self.now_ns();
                        self.receiver.receive(stream, packet, now);
                    } else {
                        self.receiver.receive_unopened(stream, packet);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(received),
                Err(e) => return Err(e).context("receiving leg b's packets"),
            }
        }
    }
}

impl Trials for UdpGenerator {
    fn paced_trial(
        &mut self,
        rate: f64,
        seconds: f64,
        drain_ms: u64,
    ) -> anyhow::Result<TrialResult> {
        self.renew_calls()?;
        let before = self.receiver.report(0);
        let rx_port = self.rx.local_addr()?.port();
        let dropped_before = socket_drops(rx_port);
        let start = self.now_ns();
        let send_for = Duration::from_secs_f64(seconds).as_nanos() as u64;
        let gap_ns = 1e9 / rate.max(1.0);
        let mut packet = vec![0u8; self.sender.max_packet_len()];
        let mut inbound = vec![0u8; 2048];
        let (mut intended, mut offered) = (0u64, 0u64);
        let mut last_sent = start;
        // rtpengine's socket queues can hold a backlog well past the last packet sent: the
        // trial ends once nothing has come for `drain_ms` (at most 5 s), so what it sent
        // late is not counted in the next trial.
        let mut last_received = start;
        loop {
            let now = self.now_ns();
            let elapsed = now - start;
            if elapsed < send_for {
                let due = ((elapsed as f64 / gap_ns) as u64)
                    .saturating_sub(intended)
                    .min(32);
                for _ in 0..due {
                    let s = self.next_stream;
                    self.next_stream = (s + 1) % self.plans.len();
                    let len = self.sender.next(s, now, &mut packet)?;
                    intended += 1;
                    // A full socket buffer or queue is loss at this rate, as a port refusing
                    // a frame is for the DPDK generator.
                    match self.tx.send_to(&packet[..len], self.plans[s].to_relay) {
                        Ok(_) => offered += 1,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(e) if e.raw_os_error() == Some(105) => {} // ENOBUFS
                        Err(e) => return Err(e).context("sending leg a's packets"),
                    }
                }
                if due > 0 {
                    last_sent = now;
                }
            } else if now > last_sent.max(last_received) + drain_ms * 1_000_000
                || now > last_sent + 5_000_000_000
            {
                break;
            }
            if self.receive_waiting(&mut inbound)? > 0 {
                last_received = self.now_ns();
            }
        }
        Ok(TrialResult::new(
            &before,
            &self.receiver.report(0),
            Tally {
                intended,
                offered,
                attacks: 0,
                start,
                last_sent,
                send_for,
                gap_ns,
                // Packets our own socket dropped for want of room were the generator's
                // failing, not rtpengine's.
                missed: socket_drops(rx_port).saturating_sub(dropped_before),
            },
        ))
    }
}

/// Datagrams the kernel dropped on our UDP socket bound to `port` for want of room
/// (`/proc/net/udp`'s last column; 0 if it cannot be read).
fn socket_drops(port: u16) -> u64 {
    let mut total = 0;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                total += fields
                    .last()
                    .and_then(|d| d.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    total
}

/// Leg b's socket: non-blocking, with a large receive buffer.
fn receive_socket(ip: IpAddr) -> anyhow::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if ip.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_recv_buffer_size(RECEIVE_BUFFER)?;
    s.bind(&SocketAddr::new(ip, 0).into())
        .context("binding leg b's socket")?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// One ng request and its reply's SDP (three tries, two seconds each).
fn exchange(
    ng: &UdpSocket,
    cookie: &str,
    command: &str,
    call: &CallIds,
    sdp: &str,
) -> anyhow::Result<String> {
    let request = ng::request(cookie, command, call, Some(sdp));
    let mut buf = vec![0u8; 65_536];
    for _ in 0..3 {
        ng.send(&request)
            .context("sending to rtpengine's ng port")?;
        loop {
            match ng.recv(&mut buf) {
                Ok(n) => match ng::reply_sdp(cookie, &buf[..n]) {
                    // A late reply to an earlier request: keep waiting for ours.
                    Err(ng::NgError::NotOurReply) => continue,
                    Ok(Some(sdp)) => return Ok(sdp),
                    Ok(None) => bail!("rtpengine's {command} reply has no SDP"),
                    Err(e) => return Err(e).with_context(|| format!("rtpengine's {command}")),
                },
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) => {
                    return Err(e).context("rtpengine's ng port (is rtpengine running there?)")
                }
            }
        }
    }
    bail!(
        "rtpengine did not answer {command} for {} in 6 s",
        call.call_id
    )
}
