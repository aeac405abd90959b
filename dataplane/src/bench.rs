//! `relay-dataplane bench`: relay throughput on one core with many concurrent streams.
//!
//! Two looping `net_ring` ports. Untimed, a generator fills port A's ring with fresh frames
//! (SRTP protected with each stream's caller key, or plain RTP), streams picked at random so
//! the flow table and contexts are touched as a million real calls would touch them. Timed,
//! the relay drains port A: receive, look up, re-key (or not), rewrite, transmit on port B.
//! Port B's ring is emptied untimed. Only the relay's work is on the clock, and only for
//! established streams: every stream's first packet goes through untimed beforehand.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use relay_srtp::{Context, ContextConfig, MasterKey, SdesKey, Suite};

use crate::dpdk::{Burst, DpdkError, Eal, Mbuf, PktMbufPool, Port, BURST_SIZE};
use crate::relay::{PortAddr, Received, Relay, RelayConfig, RxChecksum, Verdict};
use crate::session::{CallSpec, CryptoSpec, LegSpec, MediaSpec, RtcpMode, SessionsFile};
use crate::wire::{write_udp_with, UdpEndpoints};

/// One measurement's result.
#[derive(Clone, Debug)]
pub struct BenchResult {
    /// Concurrent streams (calls, each relaying leg a to leg b).
    pub streams: u32,
    /// SRTP re-key (AES_CM_128_HMAC_SHA1_80 in and out) or plain RTP.
    pub srtp: bool,
    /// Packets relayed in the timed phases.
    pub packets: u64,
    /// Relayed packets per second, over all timed rounds.
    pub pps: f64,
    /// Each timed round: relayed packets per second, and the reference measured right after
    /// it (if one was given), so ratios compare runs seconds apart on a shared machine.
    pub rounds: Vec<(f64, Option<f64>)>,
    /// Resident memory added per stream once every stream has carried a packet (its SSRC
    /// known to both contexts, its headers built, its peer latched), bytes: what an
    /// established call costs.
    pub bytes_per_stream: f64,
    /// Of that, what installing the calls added, before any packet.
    pub bytes_per_stream_installed: f64,
}

const PORTS_PER_IP: u32 = 30_000;

/// Where the bench's streams come from (the generator, leg a's peer) and go to (leg b's).
const CALLER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 200, 1), 5004);
const CALLEE: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 19, 200, 1), 6000);
/// The caller's key number for [`bench_key`] (the generator protects with it); the callee's
/// is 3, the two-way calls' return directions 5 and 7.
const CALLER_KEY: u8 = 1;

/// The bench's AES_CM_128_HMAC_SHA1_80 key number `k`: master key `[k; 16]`, salt `[k + 1; 14]`.
fn bench_key(k: u8) -> SdesKey {
    let suite = Suite::AesCm128HmacSha1_80;
    SdesKey::new(MasterKey::new(suite, &[k; 16], &[k + 1; 14]).expect("lengths"))
}

/// A refused sessions document or call, as the bench's error.
fn refused(e: crate::session::SessionError) -> DpdkError {
    DpdkError::InvalidArgument(e.to_string())
}

/// The process's resident memory: ordinary pages (including transparent huge pages) and
/// pages of the reserved hugepage pool, which the resident set size leaves out (a heap on
/// `glibc.malloc.hugetlb=2` lives there).
fn resident_bytes() -> u64 {
    let (ordinary, reserved) = resident_parts();
    ordinary + reserved
}

/// The resident bytes on ordinary pages and on the reserved hugepage pool.
fn resident_parts() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    (kib("VmRSS:") * 1024, kib("HugetlbPages:") * 1024)
}

fn local(i: u32, side: u32) -> SocketAddrV4 {
    let ip = i / PORTS_PER_IP;
    let port = 2 * (i % PORTS_PER_IP) + side + 2000;
    let base = if side == 0 {
        [198, 18, 0, 0]
    } else {
        [198, 19, 0, 0]
    };
    SocketAddrV4::new(
        Ipv4Addr::new(base[0], base[1], (ip / 250) as u8, (ip % 250 + 1) as u8),
        port as u16,
    )
}

/// What to measure.
#[derive(Clone, Copy, Debug)]
pub struct BenchCase {
    /// Concurrent streams.
    pub streams: u32,
    /// SRTP re-key (else plain RTP).
    pub srtp: bool,
    /// Packets relayed in the timed phases.
    pub packets: u64,
    /// Run the relay's staged prefetch before each burst (as the worker does); off only to
    /// measure what it is worth.
    pub prefetch: bool,
    /// Hand the relay one frame at a time ([`Relay::process`]) instead of the burst
    /// ([`Relay::process_burst`], as the worker does); only to measure what the burst path
    /// is worth.
    pub per_packet: bool,
    /// Timed rounds the packets are split into, with the reference measured after each.
    pub rounds: u32,
    /// Treat port B as a NIC that completes UDP checksums (the relay leaves them to it and
    /// flags the mbufs; the ring does not complete them, so its frames carry the pseudo-header
    /// sum): what the relay costs on such a NIC.
    pub checksum_offload: bool,
}

impl BenchResult {
    /// The median round's packets per second.
    pub fn median_pps(&self) -> f64 {
        median(self.rounds.iter().map(|r| r.0).collect())
    }

    /// The median, lowest and highest of the rounds' ratios to their references.
    pub fn ratios(&self) -> Option<(f64, f64, f64)> {
        let ratios: Vec<f64> = self
            .rounds
            .iter()
            .filter_map(|&(pps, reference)| Some(pps / reference?))
            .collect();
        let lo = ratios.iter().copied().reduce(f64::min)?;
        let hi = ratios.iter().copied().reduce(f64::max)?;
        Some((median(ratios), lo, hi))
    }
}

/// The CPU the figures come from: its model, online count and the flags that matter for
/// them (machines differ between sessions), from `/proc/cpuinfo`.
pub fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.split(':').next().map(str::trim) == Some(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let flags = field("flags");
    let have: Vec<&str> = [
        "aes",
        "pclmulqdq",
        "vaes",
        "vpclmulqdq",
        "sha_ni",
        "avx2",
        "avx512f",
        "avx512bw",
        "avx512vl",
        "hypervisor",
    ]
    .into_iter()
    .filter(|f| flags.split_whitespace().any(|x| x == *f))
    .collect();
    let cpus = info.lines().filter(|l| l.starts_with("processor")).count();
    // (Like `relay_bench::machine::cpu`, which the data plane does not link.)
    format!(
        "cpu: {} (family {} model {}), {cpus} online; flags: {}",
        field("model name"),
        field("cpu family"),
        field("model"),
        have.join(" ")
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Measures relaying `case.packets` packets over `case.streams` concurrent streams, in
/// `case.rounds` timed rounds; after each, untimed, `reference` measures what the round is
/// compared with.
pub fn run<'eal>(
    eal: &'eal Eal,
    pool: PktMbufPool<'eal>,
    a: &Port<'eal>,
    b: &Port<'eal>,
    case: BenchCase,
    mut reference: impl FnMut() -> Option<f64>,
) -> Result<BenchResult, DpdkError> {
    let BenchCase {
        streams,
        srtp,
        packets,
        prefetch,
        per_packet,
        rounds,
        checksum_offload,
    } = case;
    let per_round = packets.div_ceil(u64::from(rounds.max(1)));
    let mut timed_rounds = Vec::new();
    let (mut round_relayed, mut round_busy) = (0u64, Duration::ZERO);
    let _ = eal;
    let mut relay = bench_relay(a.id(), b.id(), streams, checksum_offload)?;
    let caller_key = bench_key(CALLER_KEY);
    // The callers' sending contexts (SRTP) and each stream's next sequence number. The
    // generator shares the relay's core, so its own state competes for the relay's caches,
    // which a generator on another core (memif, a NIC) would not. Where no stream's sequence
    // numbers wrap within the run (its rollover counter stays 0), one context protects every
    // stream: it keeps one SSRC's state and starts each packet's afresh at ROC 0, which is
    // what the relay expects. Only with few streams (which wrap, and fit in cache anyway) does
    // every stream get a context of its own.
    let shared_caller = packets / u64::from(streams) + 1 < u64::from(u16::MAX);
    let mut callers: Vec<Context> = match (srtp, shared_caller) {
        (false, _) => Vec::new(),
        (true, true) => vec![Context::new(
            &caller_key,
            ContextConfig {
                max_ssrcs: 1,
                ..ContextConfig::default()
            },
        )],
        (true, false) => (0..streams)
            .map(|_| Context::new(&caller_key, ContextConfig::default()))
            .collect(),
    };
    let mut seqs = vec![0u16; streams as usize];
    // After the generator's own state, so that only the relay's is counted.
    let before = resident_bytes();
    for i in 0..streams {
        // Every call has its own contexts, as real calls do, even though the keys repeat here.
        relay
            .add_call(&call_spec(i, srtp, false))
            .map_err(refused)?;
    }
    let per_stream =
        |before: u64| resident_bytes().saturating_sub(before) as f64 / f64::from(streams);
    let bytes_per_stream_installed = per_stream(before);
    let mut bytes_per_stream = bytes_per_stream_installed;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut relayed = 0u64;
    let mut busy = Duration::ZERO;
    let (mut gen, mut rx, mut out) = (Burst::new(), Burst::new(), Burst::new());
    let mut rtp = [0u8; 172];
    let (_, hz) = eal.tsc();
    let t0 = eal.tsc().0;
    // Untimed first: one packet of every stream, in order, so the timed rounds measure
    // established calls (latched peers, built headers, known SSRCs), as a relay carrying calls
    // of minutes does; without it, at 1M streams and 3M packets a third of the packets timed
    // would be some stream's first.
    let mut warmed = 0usize;
    while relayed < packets {
        let warming = warmed < streams as usize;
        let mut round = 0u64;
        // Untimed: fill port A's ring (up to 512 frames) with fresh frames.
        let mut filled = 0;
        while filled < 512 {
            while !gen.is_full() {
                let s = if warming {
                    if warmed == streams as usize {
                        break;
                    }
                    warmed += 1;
                    warmed - 1
                } else {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    (rng % u64::from(streams)) as usize
                };
                let Some(mut m) = pool.alloc() else { break };
                let seq = seqs[s];
                seqs[s] = seq.wrapping_add(1);
                rtp[0] = 0x80;
                rtp[2..4].copy_from_slice(&seq.to_be_bytes());
                rtp[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
                rtp[8..12].copy_from_slice(&(s as u32).to_be_bytes());
                let room = 172 + if srtp { 10 } else { 0 };
                let ends = UdpEndpoints {
                    src_mac: [2, 0, 0, 0, 0, 0x10],
                    dst_mac: [2, 0, 0, 0, 0, 0x0a],
                    vlan: None,
                    src: CALLER.into(),
                    dst: local(s as u32, 0).into(),
                };
                let Some(buf) = m.append((ends.header_len() + room) as u16) else {
                    break;
                };
                let ctx = if shared_caller {
                    callers.first_mut()
                } else {
                    callers.get_mut(s)
                };
                write_udp_with(buf, &ends, room, |p| {
                    p[..172].copy_from_slice(&rtp);
                    if let Some(c) = ctx {
                        let _ = c.protect_rtp(p, 172);
                    }
                });
                let _ = gen.push(m);
            }
            let sent = a.tx_burst(0, &mut gen);
            filled += sent;
            if sent == 0 {
                break;
            }
        }
        gen.clear();
        // Timed: the relay drains port A into port B.
        let start = Instant::now();
        loop {
            if a.rx_burst(0, &mut rx) == 0 {
                break;
            }
            let now_ns = ((eal.tsc().0 - t0) as f64 * 1e9 / hz as f64) as u64;
            if prefetch {
                rx.prefetch_headers();
            }
            if per_packet {
                if prefetch {
                    relay.prefetch_burst(
                        &crate::dpdk::CpuPrefetch,
                        (0..rx.len()).map(|i| rx.packet(i)),
                    );
                }
                for mut m in rx.drain() {
                    let len = m.len();
                    let v = relay.process(a.id(), m.data_and_tailroom_mut(), len, now_ns);
                    round += u64::from(queue_forwarded(m, v, &mut out));
                }
            } else {
                let mut verdicts = [Verdict::Consumed; BURST_SIZE];
                {
                    let mut frames: [Received<'_>; BURST_SIZE] = Default::default();
                    let mut n = 0;
                    for (r, (frame, len, _, _)) in frames.iter_mut().zip(rx.frames_mut()) {
                        *r = Received {
                            port: a.id(),
                            frame,
                            len,
                            checksum: RxChecksum::Unknown,
                        };
                        n += 1;
                    }
                    if prefetch {
                        relay.process_burst_hinted(
                            &crate::dpdk::CpuPrefetch,
                            &mut frames[..n],
                            now_ns,
                            &mut verdicts[..n],
                        );
                    } else {
                        relay.process_burst(&mut frames[..n], now_ns, &mut verdicts[..n]);
                    }
                }
                for (m, v) in rx.drain().zip(verdicts) {
                    round += u64::from(queue_forwarded(m, v, &mut out));
                }
            }
            b.tx_burst(0, &mut out);
            out.clear();
        }
        if warming && warmed == streams as usize {
            bytes_per_stream = per_stream(before);
        }
        if !warming {
            let took = start.elapsed();
            busy += took;
            relayed += round;
            round_busy += took;
            round_relayed += round;
        }
        // Untimed: empty port B's ring.
        while b.rx_burst(0, &mut rx) > 0 {
            rx.clear();
        }
        if round_relayed >= per_round || (relayed >= packets && round_relayed > 0) {
            let pps = round_relayed as f64 / round_busy.as_secs_f64();
            timed_rounds.push((pps, reference()));
            (round_relayed, round_busy) = (0, Duration::ZERO);
        }
        if relay.stats.forwarded == 0 && relay.stats.rx > 10_000 {
            return Err(DpdkError::InvalidArgument(format!(
                "nothing relayed: drops {:?}",
                relay.stats.drops
            )));
        }
    }
    Ok(BenchResult {
        streams,
        srtp,
        packets: relayed,
        pps: relayed as f64 / busy.as_secs_f64(),
        rounds: timed_rounds,
        bytes_per_stream,
        bytes_per_stream_installed,
    })
}

/// The relay the bench measures: ports A and B with an address per [`PORTS_PER_IP`] streams,
/// and the static neighbour the relayed packets go to.
fn bench_relay(a: u16, b: u16, streams: u32, checksum_offload: bool) -> Result<Relay, DpdkError> {
    let ips = streams.div_ceil(PORTS_PER_IP);
    let mut ports = Vec::new();
    for ip in 0..ips {
        for (side, port, mac) in [
            (0u32, a, [2, 0, 0, 0, 0, 0x0a]),
            (1, b, [2, 0, 0, 0, 0, 0x0b]),
        ] {
            let addr = *local(ip * PORTS_PER_IP, side).ip();
            ports.push(PortAddr {
                port,
                mac,
                ipv4: addr,
                prefix_len: 16,
                gateway: None,
                vlan: None,
                udp_checksum_offload: checksum_offload && side == 1,
                ..PortAddr::default()
            });
        }
    }
    let mut relay = Relay::new(ports, RelayConfig::default());
    relay
        .install(
            &SessionsFile::from_json(
                r#"{"version":1,"neighbours":[{"ip":"198.19.200.1","mac":"02:00:00:00:00:20"}]}"#,
            )
            .map_err(refused)?,
        )
        .map_err(refused)?;
    Ok(relay)
}

/// The bench's call `i`: leg a at [`local`]`(i, 0)` from [`CALLER`], leg b at `local(i, 1)`
/// to [`CALLEE`], AES_CM_128_HMAC_SHA1_80 keys ([`bench_key`]) when `srtp`. One-way (what
/// [`run`] relays: a stream from a to b, SRTP in and out): leg a receives with the caller's
/// key, leg b sends with the callee's, so a call is one stream and two contexts. Two-way:
/// every leg also sends and receives the other way, each direction with its own key: two
/// streams and four contexts, as a real SRTP call holds.
fn call_spec(i: u32, srtp: bool, two_way: bool) -> CallSpec {
    let key = |k: u8| {
        srtp.then(|| CryptoSpec {
            suite: Suite::AesCm128HmacSha1_80.name().into(),
            key: bench_key(k).to_inline(),
        })
    };
    let leg = |side: u32, remote: SocketAddrV4, receive: Option<u8>, send: Option<u8>| LegSpec {
        local: local(i, side).into(),
        remote: Some(remote.into()),
        strict_source: false,
        receive: receive.and_then(key),
        send: send.and_then(key),
        clock_rate: 8000,
        resume_receive: Vec::new(),
        resume_send: Vec::new(),
    };
    let back = |k: u8| two_way.then_some(k);
    CallSpec {
        id: format!("b{i}"),
        media: vec![MediaSpec {
            rtcp: RtcpMode::Mux,
            a: leg(0, CALLER, Some(CALLER_KEY), back(5)),
            b: leg(1, CALLEE, back(7), Some(3)),
        }],
    }
}

/// Resident memory per stream that installing `streams` streams' calls adds to a relay of
/// their own (the calls of `call_spec`; two-way calls carry two streams each). The relay
/// needs no EAL, so [`memory_in_fresh_process`] runs this in a process of its own: in the
/// bench's process, memory freed by earlier measurements would be reused and not show.
pub fn memory_per_stream(streams: u32, srtp: bool, two_way: bool) -> Result<f64, DpdkError> {
    let mut relay = bench_relay(0, 1, streams, false)?;
    let calls = if two_way {
        streams.div_ceil(2)
    } else {
        streams
    };
    let before = resident_parts();
    for i in 0..calls {
        relay
            .add_call(&call_spec(i, srtp, two_way))
            .map_err(refused)?;
    }
    let streams = f64::from(if two_way { 2 * calls } else { calls });
    let after = resident_parts();
    let reserved = after.1.saturating_sub(before.1) as f64 / streams;
    if reserved > 0.0 {
        eprintln!("of which on the reserved hugepage pool: {reserved:.0} bytes per stream");
    }
    Ok((after.0 + after.1).saturating_sub(before.0 + before.1) as f64 / streams)
}

/// [`memory_per_stream`] in a fresh process: this binary's hidden `bench-memory` subcommand.
pub fn memory_in_fresh_process(streams: u32, srtp: bool, two_way: bool) -> Result<f64, DpdkError> {
    let exe = std::env::current_exe().map_err(|e| DpdkError::InvalidArgument(e.to_string()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["bench-memory", "--streams", &streams.to_string()]);
    if srtp {
        cmd.arg("--srtp");
    }
    if two_way {
        cmd.arg("--two-way");
    }
    let out = cmd
        .output()
        .map_err(|e| DpdkError::InvalidArgument(format!("bench-memory: {e}")))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| {
            DpdkError::InvalidArgument(format!(
                "bench-memory failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        })
}

/// Puts a forwarded frame into `out` (checksum offload flagged, length set); true if queued.
#[inline]
fn queue_forwarded<'eal>(mut m: Mbuf<'eal>, v: Verdict, out: &mut Burst<'eal>) -> bool {
    let Verdict::Forward { len, offload, .. } = v else {
        return false;
    };
    if let Some(o) = offload {
        m.request_udp_checksum(o.l2_len, o.l3_len, o.ipv6);
    }
    m.set_len(len) && out.push(m).is_ok()
}

/// The memory reference for the many-streams rows: nanoseconds per random 64-byte read from
/// a table of `bytes`, 32 reads prefetched ahead (into level 2) as the relay's staged
/// prefetch does (so misses overlap as much as this machine lets them). At 1M streams the
/// relay's state is this large and a packet reads some 10 (RTP) to 25 (SRTP) lines of it.
pub fn random_line_ns(bytes: usize) -> f64 {
    let lines = (bytes / 64).max(1);
    let table = vec![1u64; lines * 8];
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % lines as u64) as usize * 8
    };
    let reads = 4_000_000usize;
    let mut acc = 0u64;
    let start = Instant::now();
    let mut batch = [0usize; 32];
    for _ in 0..reads / 32 {
        for slot in &mut batch {
            *slot = next();
            crate::dpdk::prefetch_l2(&table[*slot]);
        }
        for &i in &batch {
            acc = acc.wrapping_add(table[i]);
        }
    }
    std::hint::black_box(acc);
    start.elapsed().as_nanos() as f64 / reads as f64
}

/// `dpdk-testpmd` macswap forwarding on two net_ring ports, one forwarding core (lcore 1):
/// packets forwarded per second, summed over both ports.
pub fn testpmd_macswap_pps() -> Result<f64, DpdkError> {
    let out = std::process::Command::new("timeout")
        .args([
            "-s",
            "INT",
            "7",
            "dpdk-testpmd",
            "--no-huge",
            "-m",
            "1024",
            "--no-pci",
            "--no-shconf",
            "-l",
            "0,1",
            "--log-level=error",
        ])
        .args([
            "--vdev=net_ring0",
            "--vdev=net_ring1",
            "--",
            "--forward-mode=macswap",
            "--tx-first",
            "--txpkts=214",
            "--stats-period=2",
            "--no-flush-rx",
            "--total-num-mbufs=8192",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            DpdkError::InvalidArgument(format!("running dpdk-testpmd (package dpdk): {e}"))
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The last stats period's Rx-pps of each port.
    let rates: Vec<f64> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Rx-pps:"))
        .filter_map(|r| r.split_whitespace().next()?.parse().ok())
        .collect();
    if rates.len() < 2 {
        return Err(DpdkError::InvalidArgument(format!(
            "no Rx-pps in dpdk-testpmd output:\n{text}"
        )));
    }
    Ok(rates[rates.len() - 2..].iter().sum())
}

/// The SRTP engine's burst re-key rate (AES_CM_128_HMAC_SHA1_80, 172-byte RTP) on this core,
/// on packets prepared as the relay's are in [`run`]: 512 fresh ones at a time off the clock
/// (the relay's receive ring), then re-keyed in bursts of 32 on the clock. (Until 2026-12-02
/// all 200,000 were made first and re-keyed from memory, a handicap the relay's frames, fresh
/// in cache, did not have.)
pub fn engine_rekey_pps() -> f64 {
    use relay_srtp::{rekey_rtp_burst, Context, ContextConfig, MasterKey, SdesKey, Suite};
    /// Packets made at a time: what the relay's timed loop finds in its receive ring.
    const CHUNK: usize = 512;
    const BURST: usize = 32;
    let suite = Suite::AesCm128HmacSha1_80;
    let ka = SdesKey::new(MasterKey::new(suite, &[1; 16], &[2; 14]).expect("lengths"));
    let kb = SdesKey::new(MasterKey::new(suite, &[3; 16], &[4; 14]).expect("lengths"));
    let n = 200_000usize;
    let mut tx = Context::new(&ka, ContextConfig::default());
    let (mut rx, mut out) = (
        Context::new(&ka, ContextConfig::default()),
        Context::new(&kb, ContextConfig::default()),
    );
    let mut bufs = vec![[0u8; 256]; CHUNK];
    let lens = [182usize; BURST];
    let mut results = [Ok(0); BURST];
    let (mut timed, mut failed) = (Duration::ZERO, 0usize);
    let mut made = 0usize;
    while made < n {
        let k = CHUNK.min(n - made);
        for (i, b) in bufs[..k].iter_mut().enumerate() {
            *b = [0u8; 256];
            b[0] = 0x80;
            b[2..4].copy_from_slice(&((made + i) as u16).to_be_bytes());
            b[8..12].copy_from_slice(&7u32.to_be_bytes());
            tx.protect_rtp(b, 172).expect("protect");
        }
        let start = Instant::now();
        for chunk in bufs[..k].chunks_mut(BURST) {
            let m = chunk.len();
            let mut views: [&mut [u8]; BURST] = Default::default();
            for (v, b) in views.iter_mut().zip(chunk.iter_mut()) {
                *v = &mut b[..];
            }
            rekey_rtp_burst(
                &mut rx,
                &mut out,
                &mut views[..m],
                &lens[..m],
                &mut results[..m],
            );
            failed += results[..m].iter().filter(|r| r.is_err()).count();
        }
        timed += start.elapsed();
        made += k;
    }
    assert_eq!(failed, 0, "the engine refused packets it had protected");
    n as f64 / timed.as_secs_f64()
}

/// Bytes one G.711 SRTP packet (20 ms, AES_CM_128_HMAC_SHA1_80) takes on an Ethernet link:
/// 12 RTP + 160 payload + 10 tag + 8 UDP + 20 IPv4 + 14 Ethernet + 4 FCS + 8 preamble and
/// start delimiter + 12 inter-frame gap.
pub const G711_SRTP_WIRE_BYTES: f64 = 248.0;

/// What a worker core's `pps` means for G.711 SRTP: concurrent calls per core (a call is two
/// streams of 50 packets/s), and the worker cores a one-armed relay needs to keep up with a
/// 10, 25 and 100 GbE link full of such media (every packet received on the link is sent
/// back on it, so one direction's line rate is what the cores relay).
pub fn g711_capacity(pps: f64) -> String {
    let calls = pps / 100.0;
    let link = |gbps: f64| gbps * 1e9 / (G711_SRTP_WIRE_BYTES * 8.0);
    let cores = |gbps: f64| link(gbps) / pps;
    format!(
        "G.711 SRTP: {calls:.0} concurrent calls per worker core; worker cores for line rate (one-armed, {:.2}/{:.2}/{:.1} Mpps): 10 GbE {:.1}, 25 GbE {:.1}, 100 GbE {:.1}",
        link(10.0) / 1e6,
        link(25.0) / 1e6,
        link(100.0) / 1e6,
        cores(10.0),
        cores(25.0),
        cores(100.0)
    )
}

#[cfg(test)]
mod capacity_tests {
    use super::*;

    #[test]
    fn g711_line_rate_and_calls() {
        // 10 GbE of 248-byte frames: 5.04 Mpps; at 2.52 Mpps a core, two cores.
        let line = g711_capacity(2.52e6);
        assert!(
            line.starts_with("G.711 SRTP: 25200 concurrent calls per worker core"),
            "{line}"
        );
        assert!(
            line.contains("10 GbE 2.0, 25 GbE 5.0, 100 GbE 20.0"),
            "{line}"
        );
        assert!(line.contains("(one-armed, 5.04/12.60/50.4 Mpps)"), "{line}");
    }
}
