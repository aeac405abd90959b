//! `cdr-bench`: durable CDR records per second with group commit, and the time to purge one
//! day of records, each next to a reference measured in the same run on the same directory:
//! the disk's own `fdatasync` rate (one small append per sync: the ceiling for one record per
//! commit), and the time to read and decrypt the same day (what the purge's statistics fold
//! has to do anyway).

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

fn main() -> Result<()> {
    let args = Args::parse();
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

    // Reference: fdatasync per small append.
    let syncs = {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(tmp.path().join("fsync.ref"))?;
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < run_for {
            f.write_all(&[0u8; 700])?;
            f.sync_data()?;
            n += 1;
        }
        n as f64 / start.elapsed().as_secs_f64()
    };
    println!("(ref) fdatasync of a 700-byte append          {syncs:>12.0} /s   1.00x");

    let clock = Arc::new(FixedClock(AtomicI64::new(T0)));
    let store = Arc::new(CdrStore::open(config.clone(), clock.clone())?);
    let next = Arc::new(AtomicU64::new(0));
    for threads in [1, args.threads] {
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
        let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
        println!(
            "durable records (write() returns), {threads:>3} thread(s) {rate:>12.0} /s   {:.2}x",
            rate / syncs
        );
    }

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

    // Reference: read and decrypt that day.
    let day = relay_control::cdr::day_of(day_start);
    let grant = Access::new(&config.dir).grant(
        "bench",
        "cdr-bench",
        Duration::from_secs(3600),
        day_start,
    )?;
    let start = Instant::now();
    let read = CdrReader::open(&config.dir, &kek, &grant)?.read_day(&day)?;
    let read_time = start.elapsed();
    assert_eq!(read.records.len() as u64, args.records);
    drop(read);
    println!(
        "(ref) read + decrypt the day                  {:>12.2} s    1.00x",
        read_time.as_secs_f64()
    );

    clock.0.store(day_start + 30 * 86_400_000, Ordering::SeqCst);
    let start = Instant::now();
    let report = store.purge_now()?;
    let purge_time = start.elapsed();
    assert!(report.days_purged.contains(&day));
    println!(
        "purge the day (fold stats, shred key, delete)  {:>12.2} s    {:.2}x  ({} records folded)",
        purge_time.as_secs_f64(),
        purge_time.as_secs_f64() / read_time.as_secs_f64(),
        report.records_folded
    );
    Ok(())
}
