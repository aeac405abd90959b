//! Just-in-time SIP traces in the CDR store: written only under a trace grant's id, sealed
//! (no message text or key on disk in the clear), readable only under a read grant, and
//! destroyed with the records of their day by the purge.

mod common;

use std::time::Duration;

use common::*;
use relay_control::cdr::access::GrantScope;
use relay_control::cdr::trace::{self, Direction, TraceEntry, TraceWriter};
use relay_control::cdr::{day_of, purge, CdrError, Kek};

const KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

fn invite(ts_ms: i64) -> TraceEntry {
    TraceEntry {
        ts_ms,
        direction: Direction::In,
        transport: "TLS".into(),
        peer: "198.18.10.2:5061".into(),
        text: format!(
            "INVITE sip:+4930200@sbc.test SIP/2.0\r\nCall-ID: trace-test-call\r\n\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^31\r\n"
        ),
    }
}

#[test]
fn traces_are_sealed_read_under_a_grant_and_purged_with_their_day() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path());
    let access = access(&config);
    let trace_grant = access
        .grant_scoped(
            "tester",
            "TICKET-7 one-way audio",
            Duration::from_secs(600),
            GrantScope::Trace,
            T0,
        )
        .unwrap();
    let mut writer = TraceWriter::open(&config).unwrap();
    for n in 0..3 {
        writer.append(&trace_grant.id, &invite(T0 + n)).unwrap();
    }
    drop(writer);

    // Nothing readable on disk: not the Call-ID, not the number, not the key.
    for f in all_files(tmp.path()) {
        let data = std::fs::read(&f).unwrap();
        let text = String::from_utf8_lossy(&data);
        for secret in ["trace-test-call", "+4930200", KEY] {
            assert!(!text.contains(secret), "{} holds {secret}", f.display());
        }
        if f.starts_with(config.dir.join("traces")) {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
    }

    // A trace grant does not read; a read grant does, and sees the keys redacted.
    let day = day_of(T0);
    let refused = trace::read(&config, &trace_grant, &day, &day).unwrap_err();
    assert!(matches!(refused, CdrError::NoGrant(_)), "{refused}");
    let read = trace::read(&config, &grant(&config), &day, &day).unwrap();
    assert!(read.findings.is_empty(), "{:?}", read.findings);
    assert_eq!(read.entries.len(), 3);
    for (id, e) in &read.entries {
        assert_eq!(id, &trace_grant.id);
        assert!(e.text.contains("Call-ID: trace-test-call"));
        assert!(
            e.text.contains("inline:<redacted>") && !e.text.contains(KEY),
            "{}",
            e.text
        );
    }
    // A trace grant is not a read grant for records either.
    assert!(access
        .require("tester", T0)
        .is_ok_and(|g| g.scope == GrantScope::Read));

    // 30 days on, the day is purged: the trace key and files are gone.
    let kek = Kek::load(&config.kek_file).unwrap();
    let report = purge(&config, &kek, T0 + 30 * DAY_MS).unwrap();
    assert_eq!(report.trace_days_purged, vec![day.clone()]);
    assert!(!config.dir.join("traces").join(&day).exists());
    assert!(!config
        .keys_dir
        .join("trace")
        .join(format!("{day}.key"))
        .exists());
    let later = access
        .grant(
            "tester",
            "after the purge",
            Duration::from_secs(600),
            T0 + 30 * DAY_MS,
        )
        .unwrap();
    let read = trace::read(&config, &later, &day, &day).unwrap();
    assert!(read.entries.is_empty());
}

#[test]
fn a_torn_last_frame_is_reported_and_the_rest_read() {
    let tmp = tempfile::tempdir().unwrap();
    let config = setup(tmp.path());
    let g = access(&config)
        .grant_scoped(
            "tester",
            "TICKET-8",
            Duration::from_secs(600),
            GrantScope::Trace,
            T0,
        )
        .unwrap();
    let mut writer = TraceWriter::open(&config).unwrap();
    writer.append(&g.id, &invite(T0)).unwrap();
    writer.append(&g.id, &invite(T0 + 1)).unwrap();
    drop(writer);
    let day = day_of(T0);
    let file = config
        .dir
        .join("traces")
        .join(&day)
        .join(format!("{}.trace", g.id));
    let len = std::fs::metadata(&file).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(len - 5).unwrap();
    let read = trace::read(&config, &grant(&config), &day, &day).unwrap();
    assert_eq!(read.entries.len(), 1);
    assert_eq!(read.findings.len(), 1, "{:?}", read.findings);
}
