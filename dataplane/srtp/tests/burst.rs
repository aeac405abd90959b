//! The burst paths give exactly what the single-packet paths give, packet by packet: same
//! outputs, same errors (a duplicate inside a burst is a replay, a forgery fails alone), and
//! the same state afterwards.

use proptest::prelude::*;
use relay_srtp::{
    finish_rekey_rtp, rekey_rtp, rekey_rtp_burst, staged_tags, Context, ContextConfig, MasterKey,
    Mki, SdesKey, SrtpError, StagedRtp, Suite,
};

fn key(suite: Suite, seed: u8) -> SdesKey {
    SdesKey::new(
        MasterKey::new(
            suite,
            &vec![seed; suite.key_len()],
            &vec![seed ^ 0xff; suite.salt_len()],
        )
        .unwrap(),
    )
}

fn rtp(seq: u16, ssrc: u32, payload: usize) -> Vec<u8> {
    let mut p = vec![0x80, 0x60];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x10, 0]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..payload).map(|i| (i as u8).wrapping_mul(seq as u8 | 1)));
    p
}

/// What happens to each packet of a stream of events.
#[derive(Clone, Debug)]
enum Event {
    Fresh { payload: usize, ssrc_b: bool },
    Duplicate(usize),
    Forged(usize),
    Truncated(usize),
}

fn events() -> impl Strategy<Value = Vec<Event>> {
    proptest::collection::vec(
        prop_oneof![
            6 => (0usize..1100, any::<bool>()).prop_map(|(payload, ssrc_b)| Event::Fresh { payload, ssrc_b }),
            1 => (0usize..64).prop_map(Event::Duplicate),
            1 => (0usize..64).prop_map(Event::Forged),
            1 => (0usize..64).prop_map(Event::Truncated),
        ],
        1..150,
    )
}

/// Protected packets as a receiver would see them, built from `events`.
fn wire(suite: Suite, events: &[Event], start: u16) -> Vec<Vec<u8>> {
    wire_with_key(suite, 1, events, start)
}

/// [`key`], with a one-byte MKI if `mki`.
fn mki_key(suite: Suite, seed: u8, mki: bool) -> SdesKey {
    let mut k = key(suite, seed);
    if mki {
        k.mki = Some(Mki {
            value: u32::from(seed),
            len: 1,
        });
    }
    k
}

/// [`wire`] with the sender's key carrying an MKI if `mki`.
fn wire_with_mki(suite: Suite, mki: bool, events: &[Event], start: u16) -> Vec<Vec<u8>> {
    let mut tx = Context::new(&mki_key(suite, 1, mki), ContextConfig::default());
    wire_from(&mut tx, events, start)
}

/// [`wire`] with the sender keyed by `seed`.
fn wire_with_key(suite: Suite, seed: u8, events: &[Event], start: u16) -> Vec<Vec<u8>> {
    let mut tx = Context::new(&key(suite, seed), ContextConfig::default());
    wire_from(&mut tx, events, start)
}

/// The packets `tx` protects for `events`.
fn wire_from(tx: &mut Context, events: &[Event], start: u16) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut seq = start;
    for e in events {
        let pick = |k: usize| {
            out.get(out.len().saturating_sub(1 + k % 8))
                .filter(|p| !p.is_empty())
                .cloned()
        };
        match e {
            Event::Fresh { payload, ssrc_b } => {
                let plain = rtp(seq, if *ssrc_b { 0xbbbb } else { 0xaaaa }, *payload);
                seq = seq.wrapping_add(1);
                let mut buf = plain.clone();
                buf.resize(plain.len() + 32, 0);
                let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
                buf.truncate(n);
                out.push(buf);
            }
            Event::Duplicate(k) => {
                if let Some(p) = pick(*k) {
                    out.push(p);
                }
            }
            Event::Forged(k) => {
                if let Some(mut p) = pick(*k) {
                    let at = (k * 13) % p.len();
                    p[at] ^= 0x10;
                    out.push(p);
                }
            }
            Event::Truncated(k) => {
                if let Some(p) = pick(*k) {
                    out.push(p[..k % p.len()].to_vec());
                }
            }
        }
    }
    out
}

fn suite() -> impl Strategy<Value = Suite> {
    proptest::sample::select(Suite::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    #[test]
    fn unprotect_burst_equals_one_by_one(suite in suite(), events in events(), start in any::<u16>(), burst in 1usize..40) {
        let packets = wire(suite, &events, start);
        let mut single = Context::new(&key(suite, 1), ContextConfig::default());
        let mut bursty = Context::new(&key(suite, 1), ContextConfig::default());
        for chunk in packets.chunks(burst) {
            let mut a: Vec<Vec<u8>> = chunk.to_vec();
            let want: Vec<Result<usize, SrtpError>> = a.iter_mut().map(|p| single.unprotect_rtp(p)).collect();
            let mut b: Vec<Vec<u8>> = chunk.to_vec();
            let mut views: Vec<&mut [u8]> = b.iter_mut().map(|p| &mut p[..]).collect();
            let mut got = vec![Ok(0); chunk.len()];
            bursty.unprotect_rtp_burst(&mut views, &mut got);
            prop_assert_eq!(&got, &want);
            for ((x, y), r) in a.iter().zip(&b).zip(&want) {
                if let Ok(n) = r {
                    prop_assert_eq!(&x[..*n], &y[..*n]);
                }
            }
        }
        prop_assert_eq!(single.roc(0xaaaa), bursty.roc(0xaaaa));
        prop_assert_eq!(single.roc(0xbbbb), bursty.roc(0xbbbb));
    }

    /// `rekey_rtp` and `rekey_rtp_burst` (one pass for GCM to GCM) equal `unprotect_rtp`
    /// then `protect_rtp`: results, bytes and the state they leave, with or without MKIs,
    /// and with too little room for the outbound tag.
    #[test]
    fn rekey_equals_unprotect_then_protect(suite_in in suite(), suite_out in suite(), events in events(), start in any::<u16>(), burst in 1usize..40, mki in any::<(bool, bool)>(), room in prop_oneof![Just(40usize), 0usize..40]) {
        let packets = wire_with_mki(suite_in, mki.0, &events, start);
        let keys = || (Context::new(&mki_key(suite_in, 1, mki.0), ContextConfig::default()), Context::new(&mki_key(suite_out, 2, mki.1), ContextConfig::default()));
        let ((mut in1, mut out1), (mut in2, mut out2), (mut in3, mut out3)) = (keys(), keys(), keys());
        let padded = |p: &Vec<u8>| { let mut v = p.clone(); v.resize(p.len() + room, 0); v };
        for chunk in packets.chunks(burst) {
            let lens: Vec<usize> = chunk.iter().map(Vec::len).collect();
            let mut a: Vec<Vec<u8>> = chunk.iter().map(padded).collect();
            let want: Vec<Result<usize, SrtpError>> = a.iter_mut().zip(&lens).map(|(p, &l)| {
                let plain = in1.unprotect_rtp(&mut p[..l])?;
                out1.protect_rtp(p, plain)
            }).collect();
            let mut b: Vec<Vec<u8>> = chunk.iter().map(padded).collect();
            let mut views: Vec<&mut [u8]> = b.iter_mut().map(|p| &mut p[..]).collect();
            let mut got = vec![Ok(0); chunk.len()];
            rekey_rtp_burst(&mut in2, &mut out2, &mut views, &lens, &mut got);
            prop_assert_eq!(&got, &want);
            let mut c: Vec<Vec<u8>> = chunk.iter().map(padded).collect();
            let single: Vec<Result<usize, SrtpError>> = c.iter_mut().zip(&lens).map(|(p, &l)| rekey_rtp(&mut in3, &mut out3, p, l)).collect();
            prop_assert_eq!(&single, &want);
            for (((x, y), z), r) in a.iter().zip(&b).zip(&c).zip(&want) {
                if let Ok(n) = r {
                    prop_assert_eq!(&x[..*n], &y[..*n]);
                    prop_assert_eq!(&x[..*n], &z[..*n]);
                }
            }
        }
        for ssrc in [0xaaaa, 0xbbbb] {
            prop_assert_eq!(in1.roc(ssrc), in2.roc(ssrc));
            prop_assert_eq!(in1.roc(ssrc), in3.roc(ssrc));
            prop_assert_eq!(out1.roc(ssrc), out2.roc(ssrc));
            prop_assert_eq!(out1.roc(ssrc), out3.roc(ssrc));
        }
    }

    #[test]
    fn protect_burst_equals_one_by_one(suite in suite(), payloads in proptest::collection::vec(0usize..1200, 1..100), start in any::<u16>(), burst in 1usize..40, repeat in any::<bool>()) {
        let mut plain: Vec<Vec<u8>> = payloads.iter().enumerate().map(|(i, &n)| rtp(start.wrapping_add(i as u16), 0xaaaa, n)).collect();
        if repeat && plain.len() > 2 {
            // The same sequence number twice must be refused both ways.
            let dup = plain[1].clone();
            plain.push(dup);
        }
        let mut single = Context::new(&key(suite, 3), ContextConfig::default());
        let mut bursty = Context::new(&key(suite, 3), ContextConfig::default());
        for chunk in plain.chunks(burst) {
            let lens: Vec<usize> = chunk.iter().map(Vec::len).collect();
            let mut a: Vec<Vec<u8>> = chunk.iter().map(|p| { let mut v = p.clone(); v.resize(p.len() + 16, 0); v }).collect();
            let want: Vec<Result<usize, SrtpError>> = a.iter_mut().zip(&lens).map(|(p, &l)| single.protect_rtp(p, l)).collect();
            let mut b: Vec<Vec<u8>> = chunk.iter().map(|p| { let mut v = p.clone(); v.resize(p.len() + 16, 0); v }).collect();
            let mut views: Vec<&mut [u8]> = b.iter_mut().map(|p| &mut p[..]).collect();
            let mut got = vec![Ok(0); chunk.len()];
            bursty.protect_rtp_burst(&mut views, &lens, &mut got);
            prop_assert_eq!(&got, &want);
            for ((x, y), r) in a.iter().zip(&b).zip(&want) {
                if let Ok(n) = r {
                    prop_assert_eq!(&x[..*n], &y[..*n]);
                }
            }
        }
    }
}

/// Re-keys `packets[i]` (of stream `streams[i]`) in stages, as a relay does with a burst of
/// many streams' packets: every inbound tag together, finish in order, protect, every
/// outbound tag together, finish.
fn rekey_staged(
    pairs: &mut [(Context, Context)],
    streams: &[usize],
    packets: &mut [Vec<u8>],
    lens: &[usize],
    fused: bool,
) -> Vec<Result<usize, SrtpError>> {
    let n = packets.len();
    let mut results: Vec<Result<usize, SrtpError>> = vec![Ok(0); n];
    let mut staged_in: Vec<Option<StagedRtp>> = Vec::new();
    for i in 0..n {
        let (inb, _) = &pairs[streams[i]];
        match inb.stage_unprotect_rtp(&packets[i][..lens[i]]) {
            Ok(s) => staged_in.push(s),
            Err(e) => {
                results[i] = Err(e);
                staged_in.push(None);
            }
        }
    }
    let todo: Vec<usize> = (0..n).filter(|&i| staged_in[i].is_some()).collect();
    let mut tags = vec![[0u8; 20]; todo.len()];
    {
        let staged: Vec<(&Context, &StagedRtp, &[u8])> = todo
            .iter()
            .map(|&i| {
                (
                    &pairs[streams[i]].0,
                    staged_in[i].as_ref().unwrap(),
                    &packets[i][..lens[i]],
                )
            })
            .collect();
        staged_tags(&staged, &mut tags);
    }
    let mut staged_out: Vec<Option<StagedRtp>> = (0..n).map(|_| None).collect();
    for i in 0..n {
        if results[i].is_err() {
            continue;
        }
        let (inb, out) = &mut pairs[streams[i]];
        if let (true, Some(s)) = (fused, &staged_in[i]) {
            // Both halves in one call, the payload re-keyed in one pass.
            let t = todo.iter().position(|&j| j == i).unwrap();
            results[i] = finish_rekey_rtp(inb, s, &tags[t], out, &mut packets[i], lens[i])
                .and_then(|(plain, outbound)| match outbound? {
                    Some(s) => {
                        staged_out[i] = Some(s);
                        Ok(0)
                    }
                    None => out.protect_rtp(&mut packets[i], plain),
                });
            continue;
        }
        let plain = match &staged_in[i] {
            Some(s) => {
                let t = todo.iter().position(|&j| j == i).unwrap();
                inb.finish_unprotect_rtp(s, &mut packets[i][..lens[i]], &tags[t])
            }
            None => inb.unprotect_rtp(&mut packets[i][..lens[i]]),
        };
        results[i] =
            plain.and_then(
                |plain| match out.stage_protect_rtp(&mut packets[i], plain)? {
                    Some(s) => {
                        staged_out[i] = Some(s);
                        Ok(0)
                    }
                    None => out.protect_rtp(&mut packets[i], plain),
                },
            );
    }
    let todo: Vec<usize> = (0..n).filter(|&i| staged_out[i].is_some()).collect();
    let mut tags = vec![[0u8; 20]; todo.len()];
    {
        let staged: Vec<(&Context, &StagedRtp, &[u8])> = todo
            .iter()
            .map(|&i| {
                (
                    &pairs[streams[i]].1,
                    staged_out[i].as_ref().unwrap(),
                    &packets[i][..],
                )
            })
            .collect();
        staged_tags(&staged, &mut tags);
    }
    for (t, &i) in todo.iter().enumerate() {
        let s = staged_out[i].as_ref().unwrap();
        results[i] = Ok(s.finish_protect(&pairs[streams[i]].1, &mut packets[i], &tags[t]));
    }
    results
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    /// Three streams of mixed suites, their packets interleaved into bursts: staged re-keying
    /// gives exactly what `rekey_rtp` gives packet by packet (same bytes, same errors, the
    /// same ROCs after), whatever the burst boundaries.
    #[test]
    fn staged_rekey_of_many_streams_equals_one_by_one(
        suites in proptest::collection::vec((suite(), suite()), 3),
        events in proptest::collection::vec(events(), 3),
        starts in proptest::collection::vec(any::<u16>(), 3),
        order in proptest::collection::vec(0usize..3, 0..300),
        burst in 1usize..40,
        fused in any::<bool>(),
    ) {
        let mk = |s: usize, (a, b): (Suite, Suite)| (
            Context::new(&key(a, 1 + s as u8), ContextConfig::default()),
            Context::new(&key(b, 11 + s as u8), ContextConfig::default()),
        );
        let mut one: Vec<(Context, Context)> = suites.iter().enumerate().map(|(s, &p)| mk(s, p)).collect();
        let mut staged: Vec<(Context, Context)> = suites.iter().enumerate().map(|(s, &p)| mk(s, p)).collect();
        // Each stream's wire packets, taken in the interleaving `order` gives.
        let mut queues: Vec<std::collections::VecDeque<Vec<u8>>> = (0..3).map(|s| {
            wire_with_key(suites[s].0, 1 + s as u8, &events[s], starts[s]).into()
        }).collect();
        let mut mixed: Vec<(usize, Vec<u8>)> = Vec::new();
        for &s in &order {
            if let Some(p) = queues[s].pop_front() {
                mixed.push((s, p));
            }
        }
        for chunk in mixed.chunks(burst) {
            let streams: Vec<usize> = chunk.iter().map(|(s, _)| *s).collect();
            let lens: Vec<usize> = chunk.iter().map(|(_, p)| p.len()).collect();
            let room = |p: &Vec<u8>| { let mut v = p.clone(); v.resize(p.len() + 40, 0); v };
            let mut a: Vec<Vec<u8>> = chunk.iter().map(|(_, p)| room(p)).collect();
            let want: Vec<Result<usize, SrtpError>> = a.iter_mut().zip(&streams).zip(&lens)
                .map(|((p, &s), &l)| { let (i, o) = &mut one[s]; rekey_rtp(i, o, p, l) }).collect();
            let mut b: Vec<Vec<u8>> = chunk.iter().map(|(_, p)| room(p)).collect();
            let got = rekey_staged(&mut staged, &streams, &mut b, &lens, fused);
            prop_assert_eq!(&got, &want);
            for ((x, y), r) in a.iter().zip(&b).zip(&want) {
                if let Ok(n) = r {
                    prop_assert_eq!(&x[..*n], &y[..*n]);
                }
            }
        }
        for s in 0..3 {
            for ssrc in [0xaaaa, 0xbbbb] {
                prop_assert_eq!(one[s].0.roc(ssrc), staged[s].0.roc(ssrc));
                prop_assert_eq!(one[s].1.roc(ssrc), staged[s].1.roc(ssrc));
            }
        }
    }
}

/// A loop for profiling, not a test of speed (those are benchmarks): run with
/// `cargo test --release -p relay-srtp --test burst -- --ignored --nocapture protect_burst_loop`
/// under a profiler.
#[test]
#[ignore = "a profiling loop, not a check"]
fn protect_burst_loop() {
    // `RELAY_PROFILE_SUITE=AEAD_AES_128_GCM` (any suite name) profiles another suite.
    let suite = std::env::var("RELAY_PROFILE_SUITE")
        .ok()
        .and_then(|name| Suite::ALL.into_iter().find(|s| s.name() == name))
        .unwrap_or(Suite::AesCm128HmacSha1_80);
    let mut ctx = Context::new(&key(suite, 3), ContextConfig::default());
    let mut bufs: Vec<Vec<u8>> = (0..32).map(|_| vec![0u8; 200]).collect();
    let lens = [172usize; 32];
    let mut results = [Ok(0); 32];
    let template = rtp(0, 0xaaaa, 160);
    let mut seq = 0u16;
    let t = std::time::Instant::now();
    let rounds = 200_000;
    for _ in 0..rounds {
        for b in bufs.iter_mut() {
            b[..172].copy_from_slice(&template);
            b[2..4].copy_from_slice(&seq.to_be_bytes());
            seq = seq.wrapping_add(1);
        }
        let mut views: [&mut [u8]; 32] = Default::default();
        for (v, b) in views.iter_mut().zip(bufs.iter_mut()) {
            *v = &mut b[..];
        }
        ctx.protect_rtp_burst(&mut views, &lens, &mut results);
    }
    eprintln!(
        "{suite:?} protect burst: {:.1} ns per packet (with the packet copy)",
        t.elapsed().as_secs_f64() * 1e9 / f64::from(rounds * 32)
    );
}

/// `cargo test --release -p relay-srtp --test burst -- --ignored --nocapture unprotect_burst_loop`
/// under a profiler (`RELAY_PROFILE_SUITE` as for `protect_burst_loop`).
#[test]
#[ignore = "a profiling loop, not a check"]
fn unprotect_burst_loop() {
    let suite = std::env::var("RELAY_PROFILE_SUITE")
        .ok()
        .and_then(|name| Suite::ALL.into_iter().find(|s| s.name() == name))
        .unwrap_or(Suite::AesCm128HmacSha1_80);
    let mut tx = Context::new(&key(suite, 3), ContextConfig::default());
    let mut rx;
    let rounds = 20_000usize;
    // Every packet protected beforehand (fresh sequence numbers), copied in per burst.
    let mut wire: Vec<Vec<u8>> = Vec::with_capacity(rounds * 32);
    for seq in 0..rounds * 32 {
        let mut p = rtp(seq as u16, 0xaaaa, 160);
        let n = p.len();
        p.resize(n + 16, 0);
        let len = tx.protect_rtp(&mut p, n).unwrap();
        p.truncate(len);
        wire.push(p);
    }
    let mut bufs: Vec<Vec<u8>> = (0..32).map(|_| vec![0u8; 200]).collect();
    let mut results = [Ok(0); 32];
    // The same packets through fresh receivers, only the unprotecting on the clock.
    const REPEATS: usize = 10;
    let mut took = std::time::Duration::ZERO;
    for _ in 0..REPEATS {
        rx = Context::new(&key(suite, 3), ContextConfig::default());
        let t = std::time::Instant::now();
        for chunk in wire.chunks(32) {
            let mut views: [&mut [u8]; 32] = Default::default();
            for ((v, b), p) in views.iter_mut().zip(bufs.iter_mut()).zip(chunk) {
                b[..p.len()].copy_from_slice(p);
                *v = &mut b[..p.len()];
            }
            rx.unprotect_rtp_burst(&mut views, &mut results);
            assert!(results.iter().all(|r| r.is_ok()));
        }
        took += t.elapsed();
    }
    eprintln!(
        "{suite:?} unprotect burst: {:.1} ns per packet (with the packet copy)",
        took.as_secs_f64() * 1e9 / (REPEATS * rounds * 32) as f64
    );
}
