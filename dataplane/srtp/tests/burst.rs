//! The burst paths give exactly what the single-packet paths give, packet by packet: same
//! outputs, same errors (a duplicate inside a burst is a replay, a forgery fails alone), and
//! the same state afterwards.

use proptest::prelude::*;
use relay_srtp::{
    rekey_rtp, rekey_rtp_burst, Context, ContextConfig, MasterKey, SdesKey, SrtpError, Suite,
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
    let mut tx = Context::new(&key(suite, 1), ContextConfig::default());
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

    #[test]
    fn rekey_burst_equals_one_by_one(suite_in in suite(), suite_out in suite(), events in events(), start in any::<u16>(), burst in 1usize..40) {
        let packets = wire(suite_in, &events, start);
        let (mut in1, mut out1) = (Context::new(&key(suite_in, 1), ContextConfig::default()), Context::new(&key(suite_out, 2), ContextConfig::default()));
        let (mut in2, mut out2) = (Context::new(&key(suite_in, 1), ContextConfig::default()), Context::new(&key(suite_out, 2), ContextConfig::default()));
        for chunk in packets.chunks(burst) {
            let lens: Vec<usize> = chunk.iter().map(Vec::len).collect();
            let mut a: Vec<Vec<u8>> = chunk.iter().map(|p| { let mut v = p.clone(); v.resize(p.len() + 40, 0); v }).collect();
            let want: Vec<Result<usize, SrtpError>> = a.iter_mut().zip(&lens).map(|(p, &l)| rekey_rtp(&mut in1, &mut out1, p, l)).collect();
            let mut b: Vec<Vec<u8>> = chunk.iter().map(|p| { let mut v = p.clone(); v.resize(p.len() + 40, 0); v }).collect();
            let mut views: Vec<&mut [u8]> = b.iter_mut().map(|p| &mut p[..]).collect();
            let mut got = vec![Ok(0); chunk.len()];
            rekey_rtp_burst(&mut in2, &mut out2, &mut views, &lens, &mut got);
            prop_assert_eq!(&got, &want);
            for ((x, y), r) in a.iter().zip(&b).zip(&want) {
                if let Ok(n) = r {
                    prop_assert_eq!(&x[..*n], &y[..*n]);
                }
            }
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
