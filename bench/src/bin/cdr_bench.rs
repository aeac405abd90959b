//! `cdr-bench`: durable CDR records per second with group commit, the time to read and decrypt
//! one day of records, and the time to purge that day. Writes are a ratio to a reference
//! measured in the same run on the same directory: the disk's own `fdatasync` rate (one small
//! append per sync: the ceiling for one record per commit). The read is records per second; the
//! purge (statistics folded as records were written, so: merge the checkpoints, destroy the
//! key, delete the segments) is a time, and a ratio to the read. The CPU's model and flags are
//! printed first: AES-GCM speed depends on AES-NI, PCLMULQDQ and VAES.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;
use relay_control::cdr::access::Access;
use relay_control::cdr::{
    CallRecord, CdrConfig, CdrReader, CdrStore, Clock, EndReason, EndedBy, Kek, LegRecord,
    MediaRecord, SCHEMA_VERSION,
};

#[derive(Parser)]
#[command(
    about = "CDR store: durable records/s and purge time, against fdatasync and read references"
)]
struct Args {
    /// Directory on the disk to measure (a temporary directory inside it is used and removed).
    #[arg(long, default_value = "/var/tmp")]
    dir: PathBuf,
    /// Seconds per throughput measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Writer threads for the group-commit measurement (calls ending at the same time).
    #[arg(long, default_value_t = 64)]
    threads: usize,
    /// Records in the day that is purged.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
}

struct FixedClock(AtomicI64);

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

const T0: i64 = 1_795_780_800_000; // 2026-11-27T12:00:00Z

fn record(n: u64, end_ms: i64) -> CallRecord {
    CallRecord {
        version: SCHEMA_VERSION,
        record_id: format!("r{n:012}"),
        legs: vec![
            LegRecord {
                call_id: format!("{n:016x}@teams.invalid"),
                from_uri: format!("sip:+4930{:07}@teams.invalid", n % 10_000_000),
                to_uri: "sip:+4940123456@operator.invalid".into(),
                from_number: Some(format!("+4930{:07}", n % 10_000_000)),
                to_number: Some("+4940123456".into()),
                trunk: "teams".into(),
                peer: "198.18.5.1:5061".into(),
            },
            LegRecord {
                call_id: format!("op-{n:016x}"),
                from_uri: format!("sip:+4930{:07}@relay.invalid", n % 10_000_000),
                to_uri: "sip:+4940123456@operator.invalid".into(),
                from_number: Some(format!("+4930{:07}", n % 10_000_000)),
                to_number: Some("+4940123456".into()),
                trunk: "operator".into(),
                peer: "198.19.5.1:5060".into(),
            },
        ],
        setup_ms: end_ms - 200_000,
        answer_ms: Some(end_ms - 180_000),
        end_ms,
        ended_by: EndedBy::Caller,
        end_reason: EndReason::Normal,
        media: (0..2)
            .map(|leg| MediaRecord {
                leg,
                codec: Some("PCMA/8000".into()),
                srtp_suite: Some("AES_CM_128_HMAC_SHA1_80".into()),
                packets: 9000,
                bytes: 1_548_000,
                lost: n % 7,
                jitter_ms: (n % 30) as f64,
                auth_failures: 0,
                replay_drops: 0,
            })
            .collect(),
    }
}

/// CPU seconds (user + system, all threads) this process has used: the read figures also
/// give it, as it depends less than wall time on what else runs on the machine. From
/// `/proc/self/stat` in clock ticks (100 per second on Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<()> {
    let args = Args::parse();
    println!("cpu: {}", relay_bench::machine::cpu());
    std::fs::create_dir_all(&args.dir)?;
    let tmp = tempfile::tempdir_in(&args.dir)?;
    let kek = tmp.path().join("cdr.kek");
    Kek::generate(&kek)?;
    let mut config = CdrConfig::new(tmp.path().join("store"), &kek);
    config.max_batch = 1024;
    let run_for = Duration::from_secs(args.seconds);
    println!(
        "directory: {} (filesystem of {})",
        tmp.path().display(),
        args.dir.display()
    );

    // The disk's fdatasync rate drifts on a shared machine, so the reference and the
    // single writer alternate in one-second slices and each figure sums its slices.
    let mut reference = OpenOptions::new()
        .create(true)
        .append(true)
        .open(tmp.path().join("fsync.ref"))?;
    let mut fsync_slice = || -> Result<(u64, f64)> {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs(1) {
            reference.write_all(&[0u8; 700])?;
            reference.sync_data()?;
            n += 1;
        }
        Ok((n, start.elapsed().as_secs_f64()))
    };
    let clock = Arc::new(FixedClock(AtomicI64::new(T0)));
    let store = Arc::new(CdrStore::open(config.clone(), clock.clone())?);
    let next = Arc::new(AtomicU64::new(0));
    let write_slice = |threads: usize, run_for: Duration| -> (u64, f64) {
        let done = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (store, next, done) = (store.clone(), next.clone(), done.clone());
                std::thread::spawn(move || {
                    while start.elapsed() < run_for {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        store.write(&record(n, T0)).expect("durable write");
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("writer");
        }
        (done.load(Ordering::Relaxed), start.elapsed().as_secs_f64())
    };
    // Warm-up: the day's key, segment list and first segment are made once.
    write_slice(1, Duration::from_millis(200));
    let (mut ref_n, mut ref_t, mut one_n, mut one_t) = (0, 0.0, 0, 0.0);
    for _ in 0..run_for.as_secs().max(1) {
        let (n, t) = fsync_slice()?;
        (ref_n, ref_t) = (ref_n + n, ref_t + t);
        let (n, t) = write_slice(1, Duration::from_secs(1));
        (one_n, one_t) = (one_n + n, one_t + t);
    }
    let syncs = ref_n as f64 / ref_t;
    println!("(ref) fdatasync of a 700-byte append          {syncs:>12.0} /s   1.00x");
    let rate = one_n as f64 / one_t;
    println!(
        "durable records (write() returns),   1 thread(s) {rate:>12.0} /s   {:.2}x  (interleaved with the reference)",
        rate / syncs
    );
    let threads = args.threads;
    let (n, t) = write_slice(threads, run_for);
    let rate = n as f64 / t;
    println!(
        "durable records (write() returns), {threads:>3} thread(s) {rate:>12.0} /s   {:.2}x",
        rate / syncs
    );

    // Purge the throughput run's day first, so the timed purge below handles one day only.
    clock.0.store(T0 + 30 * 86_400_000, Ordering::SeqCst);
    store.purge_now()?;

    // One day of records for the purge: queued without waiting, group-committed in batches.
    let day_start = T0 + 31 * 86_400_000;
    clock.0.store(day_start, Ordering::SeqCst);
    let start = Instant::now();
    for n in 0..args.records {
        loop {
            match store.submit(&record(
                1_000_000_000 + n,
                day_start + (n % 3_600_000) as i64,
            )) {
                Ok(()) => break,
                Err(relay_control::cdr::CdrError::QueueFull(_)) => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    while store.metrics().waiting > 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let fill = start.elapsed();
    println!(
        "queued records (submit()), one day of {}    {:>12.0} /s   {:.2}x",
        args.records,
        args.records as f64 / fill.as_secs_f64(),
        args.records as f64 / fill.as_secs_f64() / syncs
    );

    // Read and decrypt that day.
    let day = relay_control::cdr::day_of(day_start);
    let grant =
        Access::open(&config)?.grant("bench", "cdr-bench", Duration::from_secs(3600), day_start)?;
    let reader = CdrReader::open(&config, &grant)?;
    // In memory: every record of the day in a Vec (what the first version's `read_day` did).
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let read = reader.read_day(&day)?;
    let (read_time, read_cpu) = (start.elapsed(), cpu_seconds() - cpu);
    assert_eq!(read.records.len() as u64, args.records);
    assert!(read.findings.is_empty(), "{:?}", read.findings);
    drop(read);
    println!(
        "read + decrypt the day into memory (read_day) {:>12.2} s    {:.0} records/s  (cpu {read_cpu:.2} s)",
        read_time.as_secs_f64(),
        args.records as f64 / read_time.as_secs_f64()
    );
    // Streaming: each record decrypted, authenticated, decoded and handed over (what
    // `relayctl` does, filtering as it goes).
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let mut seen = 0u64;
    let mut answered = 0u64;
    let findings = reader.visit_day(&day, &mut |r| {
        seen += 1;
        answered += u64::from(r.answered());
    })?;
    let (visit_time, visit_cpu) = (start.elapsed(), cpu_seconds() - cpu);
    assert_eq!(seen, args.records);
    assert_eq!(answered, args.records);
    assert!(findings.is_empty(), "{findings:?}");
    println!(
        "read + decrypt the day, streaming (visit_day) {:>12.2} s    {:.0} records/s  (cpu {visit_cpu:.2} s)",
        visit_time.as_secs_f64(),
        args.records as f64 / visit_time.as_secs_f64()
    );

    clock.0.store(day_start + 30 * 86_400_000, Ordering::SeqCst);
    let start = Instant::now();
    let report = store.purge_now()?;
    let purge_time = start.elapsed();
    assert!(report.days_purged.contains(&day));
    println!(
        "purge the day (merge stats, shred key, delete) {:>11.2} s    {:.2}x of the read  ({} records folded, {} decrypted)",
        purge_time.as_secs_f64(),
        purge_time.as_secs_f64() / read_time.as_secs_f64(),
        report.records_folded,
        report.records_decrypted
    );
    Ok(())
}
