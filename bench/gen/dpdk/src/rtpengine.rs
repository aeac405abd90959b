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
use relay_gen::verify::{Receiver, Report};
use relay_srtp::{MasterKey, SdesKey, Suite};

use crate::generator::TrialResult;
use crate::Trials;

/// The suite both legs use (the one the relay is measured with).
const SUITE: Suite = Suite::AesCm128HmacSha1_80;

/// Receive buffer of the generator's leg-b socket: a few milliseconds of packets at the
/// rates measured (the kernel caps it at `net.core.rmem_max`).
const RECEIVE_BUFFER: usize = 4 << 20;

/// The generator's side of a run against rtpengine.
pub(crate) struct UdpGenerator {
    pub(crate) plans: Vec<StreamPlan>,
    calls: Vec<CallIds>,
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
        let (a_addr, b_addr) = (tx.local_addr()?, rx.local_addr()?);
        let run = std::process::id();
        let mut plans = Vec::with_capacity(streams);
        let mut calls = Vec::with_capacity(streams);
        for i in 0..streams {
            let call = CallIds::new(run, i);
            let a_key = SdesKey::new(MasterKey::random(SUITE)?);
            let offer = ng::leg_sdp(a_addr, &a_key, 1);
            let towards_b = exchange(&ng, &format!("{run}-{i}-o"), "offer", &call, &offer)?;
            let towards_b = ng::media(&towards_b, SUITE)
                .with_context(|| format!("rtpengine's offer reply for call {i}"))?;
            let b_key = SdesKey::new(MasterKey::random(SUITE)?);
            let answer = ng::leg_sdp(b_addr, &b_key, towards_b.tag);
            let towards_a = exchange(&ng, &format!("{run}-{i}-a"), "answer", &call, &answer)?;
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
        let by_source = plans
            .iter()
            .enumerate()
            .map(|(i, p)| (p.relay_out, i))
            .collect::<HashMap<_, _>>();
        if by_source.len() != plans.len() {
            bail!("rtpengine gave two calls the same b-side address");
        }
        Ok(UdpGenerator {
            sender: Sender::new(&plans, codec),
            receiver: Receiver::new(&plans),
            plans,
            calls,
            tx,
            rx,
            ng,
            by_source,
            every: every.max(1),
            next_stream: 0,
            t0: Instant::now(),
            other: 0,
        })
    }

    /// Deletes the calls (best effort: a call rtpengine no longer knows is not an error).
    pub(crate) fn delete_calls(&self) {
        let run = std::process::id();
        for (i, call) in self.calls.iter().enumerate() {
            let cookie = format!("{run}-{i}-d");
            let _ = self.ng.send(&ng::request(&cookie, "delete", call, None));
            let mut buf = [0u8; 4096];
            let _ = self.ng.recv(&mut buf);
        }
    }

    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    /// Judges every datagram waiting on leg b's socket.
    fn receive_waiting(&mut self, buf: &mut [u8]) -> anyhow::Result<()> {
        loop {
            match self.rx.recv_from(buf) {
                Ok((n, from)) => {
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
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
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
        self.receiver.reset_latency();
        let before = self.receiver.report(0);
        let start = self.now_ns();
        let send_for = Duration::from_secs_f64(seconds).as_nanos() as u64;
        let gap_ns = 1e9 / rate.max(1.0);
        let mut packet = vec![0u8; self.sender.max_packet_len()];
        let mut inbound = vec![0u8; 2048];
        let (mut intended, mut offered) = (0u64, 0u64);
        let mut last_sent = start;
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
            } else if now > last_sent + drain_ms * 1_000_000 {
                break;
            }
            self.receive_waiting(&mut inbound)?;
        }
        let scheduled = (((last_sent - start).min(send_for)) as f64 / gap_ns) as u64;
        let after = self.receiver.report(0);
        let counts = after.counts.since(&before.counts);
        let delivered = counts.fresh + counts.reordered;
        Ok(TrialResult {
            intended,
            offered,
            report: Report {
                sent: offered,
                delivered,
                lost: offered.saturating_sub(delivered),
                counts,
                latency_ns: after.latency_ns,
            },
            seconds: (last_sent.saturating_sub(start)).max(1) as f64 / 1e9,
            shortfall: scheduled.saturating_sub(intended),
            attacks: 0,
        })
    }
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
