//! `srtp-bench`: SRTP engine throughput on one core, next to references measured in the same
//! run: (a) Debian's libsrtp2 and (b) DPDK's ipsec_mb crypto device through
//! `dpdk-test-crypto-perf` (cipher-then-auth, aes-ctr + sha1-hmac, 10-byte digest, 172-byte
//! buffers, burst 32). Every figure is printed with its ratio to (b); for re-key, (b) is half
//! the crypto-perf rate, because one re-key is two such operations.
//!
//! Packets are 172 bytes of RTP (12-byte header + 160 bytes of G.711, 20 ms). Each timed pass
//! uses fresh packets (replay protection would refuse repeats) prepared outside the timing.
//!
//! The packets of a pass are prepared `--chunk` at a time off the clock and then processed.
//! crypto-perf takes each burst's 32 operations from its mempool's per-core cache and puts
//! them back after, so it encrypts the same few buffers again and again, hot in cache. The
//! engine needs fresh packets (replay protection refuses repeats), so the closest it comes is
//! a chunk prepared just before: 8,192 by default (2 MB at this stride, in levels 2 and 3).
//! A chunk of the whole pass streams every packet from memory, as this bench did before
//! 2026-12-02.
//!
//! A figure is taken in `--rounds` rounds, each the reference then the engine, one after the
//! other: on a shared host the rate a core's vector units give moves by a third from one second
//! to the next (while a scalar loop's stays within 5%: presumably another tenant's load on the
//! same physical core), and both sides feel it alike only when measured close together. A
//! round is one run of the reference (5 million operations) and one timed pass of each of the
//! engine's operations (a million packets; the burst re-key first, nearest the reference):
//! one each, so that neither side is the best of several tries. Each round gives a ratio;
//! printed are the median rate and the median of the rounds' ratios with their range.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use relay_bench::libsrtp;
use relay_bench::machine::{self, median};
use relay_bench::rtp::{rtp_packet, RtpShape};
use relay_srtp::{rekey_rtp, Context, ContextConfig, MasterKey, SdesKey, Suite};

const STRIDE: usize = 256;
const RTP_LEN: usize = 172;
const BURST: usize = 32;

/// The engine's operations `srtp-bench` times.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Op {
    Protect,
    Unprotect,
    Rekey,
    ProtectBurst,
    UnprotectBurst,
    RekeyBurst,
}

impl Op {
    const ALL: [Op; 6] = [
        Op::Protect,
        Op::Unprotect,
        Op::Rekey,
        Op::ProtectBurst,
        Op::UnprotectBurst,
        Op::RekeyBurst,
    ];

    /// The row's name.
    fn label(self) -> &'static str {
        match self {
            Op::Protect => "protect",
            Op::Unprotect => "unprotect",
            Op::Rekey => "rekey",
            Op::ProtectBurst => "protect burst32",
            Op::UnprotectBurst => "unprotect burst32",
            Op::RekeyBurst => "rekey burst32",
        }
    }

    /// Operations of the reference per packet: a re-key is two.
    fn reference_ops(self) -> f64 {
        match self {
            Op::Rekey | Op::RekeyBurst => 2.0,
            _ => 1.0,
        }
    }
}

#[derive(Parser)]
#[command(about = "SRTP engine throughput against libsrtp2 and DPDK's ipsec_mb crypto device")]
struct Args {
    /// Packets per timed pass.
    #[arg(long, default_value_t = 1_000_000)]
    packets: usize,
    /// Packets prepared (off the clock) and then processed at a time: the default keeps them
    /// in cache, as the reference's reused buffers are; --chunk equal to --packets streams
    /// the whole pass from memory.
    #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u64).range(1..))]
    chunk: u64,
    /// Timed passes per figure and round; the best is the round's figure (one, as the
    /// reference's one run a round, by default).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    passes: u64,
    /// Rounds per suite, each the reference then the engine; medians are reported.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: u32,
    /// Only these operations (comma-separated or the option repeated); default all. One
    /// alone, e.g. `rekey-burst`, makes a quick figure or a profile of just that.
    #[arg(long, value_delimiter = ',', value_enum)]
    ops: Vec<Op>,
    /// Only these suites (SDES names, comma-separated or the option repeated); default all.
    #[arg(long, value_delimiter = ',')]
    suite: Vec<String>,
    /// Skip the dpdk-test-crypto-perf reference.
    #[arg(long)]
    no_dpdk: bool,
    /// Skip the libsrtp2 reference.
    #[arg(long)]
    no_libsrtp: bool,
    /// CPU to pin this process to (the crypto-perf worker runs on lcore 1).
    #[arg(long, default_value_t = 1)]
    cpu: usize,
    /// Write every row (suite, operation, packets/s, ratio to the reference) here as JSON too.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// One printed row, for `--json`.
#[derive(serde::Serialize)]
struct Row {
    suite: &'static str,
    operation: String,
    /// The median over the rounds.
    packets_per_s: f64,
    /// To ipsec_mb's rate for as many operations measured in the same round, the median over
    /// the rounds (`None` without the reference).
    ratio: Option<f64>,
    /// The lowest and highest of the rounds' ratios (for the reference's own rows: its
    /// lowest and highest rate over its median).
    ratio_min: Option<f64>,
    ratio_max: Option<f64>,
    rounds: u32,
}

impl Row {
    /// Prints the row (the range as "lo-hi" followed by `unit`) and keeps it for `--json`.
    fn emit(self, unit: &str, rows: &mut Vec<Row>) {
        println!(
            "{:<26} {:<19} {:>12.0} {:>8} {:>13}",
            self.suite,
            self.operation,
            self.packets_per_s,
            self.ratio.map_or("-".to_owned(), |r| format!("{r:.2}x")),
            self.ratio_min
                .zip(self.ratio_max)
                .map_or("-".to_owned(), |(lo, hi)| format!("{lo:.2}-{hi:.2}{unit}")),
        );
        rows.push(self);
    }
}

/// Packets in a flat buffer, each at a fixed stride with room to grow.
struct Packets {
    buf: Vec<u8>,
    lens: Vec<usize>,
}

impl Packets {
    /// `n` plain packets, the first with sequence number `first` (wrapping at 2^16, so the
    /// ROC advances over a long pass).
    fn plain(first: usize, n: usize) -> Packets {
        let mut buf = vec![0u8; n * STRIDE];
        for i in 0..n {
            let p = rtp_packet(
                (first + i) as u16,
                0xcafe_babe,
                RtpShape {
                    payload: RTP_LEN - 12,
                    ..RtpShape::default()
                },
            );
            buf[i * STRIDE..i * STRIDE + p.len()].copy_from_slice(&p);
        }
        Packets {
            buf,
            lens: vec![RTP_LEN; n],
        }
    }

    /// Calls `f` with each run of up to [`BURST`] packets as slices: each the packet's bytes
    /// (`trim`) or its whole stride (room to grow), with the packets' lengths.
    fn for_each_burst(&mut self, trim: bool, mut f: impl FnMut(&mut [&mut [u8]], &[usize])) {
        for (bufs, lens) in self
            .buf
            .chunks_mut(BURST * STRIDE)
            .zip(self.lens.chunks(BURST))
        {
            let mut views: [&mut [u8]; BURST] = Default::default();
            for ((v, chunk), &len) in views.iter_mut().zip(bufs.chunks_mut(STRIDE)).zip(lens) {
                *v = if trim { &mut chunk[..len] } else { chunk };
            }
            f(&mut views[..lens.len()], lens);
        }
    }

    /// [`Packets::plain`] protected by `sender`, which carries on from the previous chunk.
    fn protected(first: usize, n: usize, sender: &mut Context) -> Packets {
        let mut p = Packets::plain(first, n);
        for (i, len) in p.lens.iter_mut().enumerate() {
            *len = sender
                .protect_rtp(&mut p.buf[i * STRIDE..(i + 1) * STRIDE], *len)
                .expect("protect");
        }
        p
    }
}

fn key(suite: Suite, seed: u8) -> SdesKey {
    let k: Vec<u8> = (0..suite.key_len())
        .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
        .collect();
    let s: Vec<u8> = (0..suite.salt_len()).map(|i| seed ^ (i as u8)).collect();
    SdesKey::new(MasterKey::new(suite, &k, &s).expect("lengths"))
}

/// How a figure's packets are fed: `n` a pass, prepared `chunk` at a time off the clock.
#[derive(Clone, Copy)]
struct Feed {
    passes: usize,
    n: usize,
    chunk: usize,
}

impl Feed {
    /// Best packets-per-second over the passes. Each pass starts from `setup` (its contexts);
    /// for each chunk, `prepare` makes fresh packets off the clock, then `op` is timed on them.
    fn best_rate<S, T>(
        self,
        mut setup: impl FnMut() -> S,
        mut prepare: impl FnMut(&mut S, usize, usize) -> T,
        mut op: impl FnMut(&mut S, T),
    ) -> f64 {
        (0..self.passes)
            .map(|_| {
                let mut state = setup();
                let mut timed = Duration::ZERO;
                let mut first = 0;
                while first < self.n {
                    let len = self.chunk.min(self.n - first);
                    let input = prepare(&mut state, first, len);
                    let t = Instant::now();
                    op(&mut state, input);
                    timed += t.elapsed();
                    first += len;
                }
                self.n as f64 / timed.as_secs_f64()
            })
            .fold(0.0, f64::max)
    }
}

/// The rates of the operations measured in one round, in the order of [`Op::ALL`].
type Figures = Vec<(Op, f64)>;

fn measure(suite: Suite, feed: Feed, ops: &[Op]) -> Figures {
    let (ka, kb) = (key(suite, 1), key(suite, 2));
    let context = |k: &SdesKey| Context::new(k, ContextConfig::default());
    // A sender's packets, and contexts that receive (and re-send) them.
    let receiver = || (context(&ka), context(&ka));
    let rekeyer = || (context(&ka), context(&ka), context(&kb));
    let plain = |_: &mut _, first, n| Packets::plain(first, n);
    // The burst re-key first: the figure the targets are about, measured closest to the
    // round's reference.
    let rekey_burst = ops.contains(&Op::RekeyBurst).then(|| {
        feed.best_rate(
            rekeyer,
            |(sender, ..), first, n| Packets::protected(first, n, sender),
            |(_, rx, tx), mut p| {
                let mut results = [Ok(0); BURST];
                p.for_each_burst(false, |views, lens| {
                    relay_srtp::rekey_rtp_burst(rx, tx, views, lens, &mut results[..lens.len()])
                });
            },
        )
    });
    let protect = ops.contains(&Op::Protect).then(|| {
        feed.best_rate(
            || context(&ka),
            plain,
            |tx, mut p: Packets| {
                for (i, len) in p.lens.iter().enumerate() {
                    tx.protect_rtp(&mut p.buf[i * STRIDE..(i + 1) * STRIDE], *len)
                        .expect("protect");
                }
            },
        )
    });
    let unprotect = ops.contains(&Op::Unprotect).then(|| {
        feed.best_rate(
            receiver,
            |(sender, _), first, n| Packets::protected(first, n, sender),
            |(_, rx), mut p| {
                for (i, len) in p.lens.iter().enumerate() {
                    rx.unprotect_rtp(&mut p.buf[i * STRIDE..i * STRIDE + len])
                        .expect("unprotect");
                }
            },
        )
    });
    let rekey = ops.contains(&Op::Rekey).then(|| {
        feed.best_rate(
            rekeyer,
            |(sender, ..), first, n| Packets::protected(first, n, sender),
            |(_, rx, tx), mut p| {
                for (i, len) in p.lens.iter().enumerate() {
                    rekey_rtp(rx, tx, &mut p.buf[i * STRIDE..(i + 1) * STRIDE], *len)
                        .expect("rekey");
                }
            },
        )
    });
    let protect_burst = ops.contains(&Op::ProtectBurst).then(|| {
        feed.best_rate(
            || context(&ka),
            plain,
            |tx, mut p: Packets| {
                let mut results = [Ok(0); BURST];
                p.for_each_burst(false, |views, lens| {
                    tx.protect_rtp_burst(views, lens, &mut results[..lens.len()])
                });
            },
        )
    });
    let unprotect_burst = ops.contains(&Op::UnprotectBurst).then(|| {
        feed.best_rate(
            receiver,
            |(sender, _), first, n| Packets::protected(first, n, sender),
            |(_, rx), mut p| {
                let mut results = [Ok(0); BURST];
                p.for_each_burst(true, |views, lens| {
                    rx.unprotect_rtp_burst(views, &mut results[..lens.len()])
                });
            },
        )
    });
    let rates = [
        protect,
        unprotect,
        rekey,
        protect_burst,
        unprotect_burst,
        rekey_burst,
    ];
    Op::ALL
        .into_iter()
        .zip(rates)
        .filter_map(|(op, rate)| Some((op, rate?)))
        .collect()
}

/// `dpdk-test-crypto-perf` with the ipsec_mb device: operations per second.
fn crypto_perf(suite: Suite) -> Result<f64> {
    let key_sz = suite.key_len().to_string();
    let mut cmd = Command::new("dpdk-test-crypto-perf");
    cmd.args([
        "--no-huge",
        "-m",
        "1024",
        "--no-pci",
        "--no-shconf",
        "-l",
        "0,1",
        "--log-level=error",
        "--vdev",
        "crypto_aesni_mb",
        "--",
    ]);
    cmd.args([
        "--ptest",
        "throughput",
        "--devtype",
        "crypto_aesni_mb",
        "--total-ops",
        "5000000",
        "--burst-sz",
        "32",
        "--pool-sz",
        "8192",
        "--buffer-sz",
        "172",
    ]);
    if suite.is_aead() {
        cmd.args([
            "--optype",
            "aead",
            "--aead-algo",
            "aes-gcm",
            "--aead-op",
            "encrypt",
            "--aead-key-sz",
            &key_sz,
            "--aead-iv-sz",
            "12",
            "--aead-aad-sz",
            "12",
            "--digest-sz",
            "16",
        ]);
    } else {
        cmd.args([
            "--optype",
            "cipher-then-auth",
            "--cipher-algo",
            "aes-ctr",
            "--cipher-op",
            "encrypt",
            "--cipher-key-sz",
            &key_sz,
            "--cipher-iv-sz",
            "16",
        ]);
        cmd.args([
            "--auth-algo",
            "sha1-hmac",
            "--auth-op",
            "generate",
            "--auth-key-sz",
            "20",
            "--digest-sz",
            &suite.srtp_tag_len().to_string(),
        ]);
    }
    let out = cmd
        .output()
        .context("running dpdk-test-crypto-perf (package dpdk-dev)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The result row: lcore, buf size, burst, enqueued, dequeued, failed enq, failed deq, MOps, Gbps, cycles.
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() == 10 && cols[1] == "172" && cols[2] == "32" {
            let mops: f64 = cols[7].parse()?;
            return Ok(mops * 1e6);
        }
    }
    bail!(
        "no result row in dpdk-test-crypto-perf output:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    )
}

/// libsrtp2's protect/unprotect/re-key rates through `srtp_ref bench`.
fn libsrtp_rates(suite: Suite, n: usize) -> Result<(f64, f64, f64)> {
    let out = Command::new(libsrtp::srtp_ref_path()?)
        .args(["bench", suite.name(), &n.to_string()])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |op: &str| -> Result<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(op).map(|v| v.trim().parse::<f64>()))
            .with_context(|| format!("srtp_ref printed no {op} rate: {text}"))?
            .map_err(Into::into)
    };
    Ok((get("protect ")?, get("unprotect ")?, get("rekey ")?))
}

fn pin_to(cpu: usize) {
    // taskset is the least invasive way to pin without unsafe code in this crate.
    let pid = std::process::id().to_string();
    let _ = Command::new("taskset")
        .args(["-cp", &cpu.to_string(), &pid])
        .output();
}

fn main() -> Result<()> {
    let args = Args::parse();
    let suites: Vec<Suite> = if args.suite.is_empty() {
        vec![
            Suite::AesCm128HmacSha1_80,
            Suite::AesCm128HmacSha1_32,
            Suite::AesCm256HmacSha1_80,
            Suite::AesCm256HmacSha1_32,
            Suite::AeadAes128Gcm,
            Suite::AeadAes256Gcm,
        ]
    } else {
        args.suite
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()?
    };
    let ops = if args.ops.is_empty() {
        Op::ALL.to_vec()
    } else {
        args.ops.clone()
    };
    pin_to(args.cpu);
    println!("CPU: {} (pinned to cpu {})", machine::cpu(), args.cpu);
    println!(
        "{} packets of {RTP_LEN} bytes per pass, prepared {} at a time off the clock; best of {} \
         passes; median of {} rounds (reference, then engine)",
        args.packets, args.chunk, args.passes, args.rounds
    );
    println!(
        "{:<26} {:<19} {:>12} {:>8} {:>13}",
        "suite", "operation", "packets/s", "vs (b)", "rounds' range"
    );
    println!(
        "(rounds' range: the lowest and highest of the rounds' ratios, x; for (b) itself, its \
         lowest and highest rate over its median, m)"
    );
    let mut rows = Vec::new();
    for suite in suites {
        let mut references = Vec::new();
        let mut rounds = Vec::new();
        for _ in 0..args.rounds {
            if !args.no_dpdk {
                references.push(crypto_perf(suite)?);
            }
            rounds.push(measure(
                suite,
                Feed {
                    passes: args.passes as usize,
                    n: args.packets,
                    chunk: args.chunk as usize,
                },
                &ops,
            ));
        }
        if !references.is_empty() {
            // Each round's ratio to itself is 1: the range column shows the reference's own
            // spread instead, as its rounds' lowest and highest rate over the median.
            let halves: Vec<f64> = references.iter().map(|r| r / 2.0).collect();
            for (op, rates) in [
                ("(b) ipsec_mb op", &references),
                ("(b) 2 ops = rekey", &halves),
            ] {
                let m = median(rates);
                let lo = rates.iter().copied().fold(f64::INFINITY, f64::min) / m;
                let hi = rates.iter().copied().fold(0.0, f64::max) / m;
                Row {
                    suite: suite.name(),
                    operation: op.to_owned(),
                    packets_per_s: m,
                    ratio: Some(1.0),
                    ratio_min: Some(lo),
                    ratio_max: Some(hi),
                    rounds: args.rounds,
                }
                .emit("m", &mut rows);
            }
        }
        // Rates of the rounds, each with its round's reference rate for as many operations.
        let mut row = |op: &str, rates: &[f64], per_op: f64| {
            let ratios: Vec<f64> = rates
                .iter()
                .zip(&references)
                .map(|(rate, r)| rate / (r / per_op))
                .collect();
            let (ratio, lo, hi) = if ratios.is_empty() {
                (None, None, None)
            } else {
                (
                    Some(median(&ratios)),
                    ratios.iter().copied().reduce(f64::min),
                    ratios.iter().copied().reduce(f64::max),
                )
            };
            Row {
                suite: suite.name(),
                operation: op.to_owned(),
                packets_per_s: median(rates),
                ratio,
                ratio_min: lo,
                ratio_max: hi,
                rounds: args.rounds,
            }
            .emit("x", &mut rows);
        };
        for (i, &(op, _)) in rounds[0].iter().enumerate() {
            let rates: Vec<f64> = rounds.iter().map(|f| f[i].1).collect();
            row(op.label(), &rates, op.reference_ops());
        }
        if !args.no_libsrtp {
            // libsrtp once per suite, against the median reference.
            let (p, u, k) = libsrtp_rates(suite, args.packets)?;
            let reference = (!references.is_empty()).then(|| median(&references));
            for (op, rate, per_op) in [
                ("(a) libsrtp protect", p, 1.0),
                ("(a) libsrtp unprot", u, 1.0),
                ("(a) libsrtp rekey", k, 2.0),
            ] {
                Row {
                    suite: suite.name(),
                    operation: op.to_owned(),
                    packets_per_s: rate,
                    ratio: reference.map(|r| rate / (r / per_op)),
                    ratio_min: None,
                    ratio_max: None,
                    rounds: 1,
                }
                .emit("x", &mut rows);
            }
        }
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
