//! Forged, truncated and garbage input never panics and never changes a context's state:
//! after any amount of junk, the genuine stream goes on decrypting, and its replays are
//! still refused.

use proptest::prelude::*;
use relay_srtp::{Context, ContextConfig, MasterKey, Mki, SdesKey, SrtpError, Suite};

const SSRC: u32 = 0xdead_beef;

fn rtp(seq: u16, payload: usize) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 1];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend((0..payload).map(|i| (i as u8) ^ (seq as u8)));
    p
}

fn rtcp(n: u8) -> Vec<u8> {
    let mut p = vec![0x80, 200, 0, 6];
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[n; 20]);
    p
}

fn suite() -> impl Strategy<Value = Suite> {
    proptest::sample::select(Suite::ALL.to_vec())
}

fn keyed(suite: Suite, mki: bool) -> SdesKey {
    let mut key = SdesKey::new(
        MasterKey::new(
            suite,
            &vec![0x42; suite.key_len()],
            &vec![0x24; suite.salt_len()],
        )
        .unwrap(),
    );
    if mki {
        key.mki = Some(Mki {
            value: 0xabcd,
            len: 2,
        });
    }
    key
}

/// A sender and receiver pair that has already exchanged `n` packets across the wrap.
fn established(suite: Suite, mki: bool, n: u16) -> (Context, Context, Vec<Vec<u8>>) {
    let key = keyed(suite, mki);
    let (mut tx, mut rx) = (
        Context::new(&key, ContextConfig::default()),
        Context::new(&key, ContextConfig::default()),
    );
    let mut sent = Vec::new();
    for i in 0..n {
        let plain = rtp(65_500u16.wrapping_add(i), 40);
        let mut buf = plain.clone();
        buf.resize(plain.len() + 32, 0);
        let len = tx.protect_rtp(&mut buf, plain.len()).unwrap();
        buf.truncate(len);
        let mut copy = buf.clone();
        rx.unprotect_rtp(&mut copy).unwrap();
        sent.push(buf);
    }
    (tx, rx, sent)
}

/// The receiver still works: the next genuine packet decrypts and an old one is a replay.
fn still_healthy(tx: &mut Context, rx: &mut Context, sent: &[Vec<u8>], next_seq: u16) {
    let plain = rtp(next_seq, 33);
    let mut buf = plain.clone();
    buf.resize(plain.len() + 32, 0);
    let len = tx.protect_rtp(&mut buf, plain.len()).unwrap();
    let n = rx
        .unprotect_rtp(&mut buf[..len])
        .expect("genuine packet after junk");
    assert_eq!(&buf[..n], &plain[..]);
    let mut old = sent.last().unwrap().clone();
    assert_eq!(rx.unprotect_rtp(&mut old), Err(SrtpError::Replayed));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn garbage_is_refused_without_state_change(suite in suite(), mki in any::<bool>(),
                                               junk in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..20)) {
        let (mut tx, mut rx, sent) = established(suite, mki, 50);
        let roc = rx.roc(SSRC);
        for mut j in junk {
            let _ = rx.unprotect_rtp(&mut j.clone());
            let _ = rx.unprotect_rtcp(&mut j);
        }
        prop_assert_eq!(rx.roc(SSRC), roc);
        still_healthy(&mut tx, &mut rx, &sent, 65_500u16.wrapping_add(50));
    }

    #[test]
    fn every_truncation_and_bit_flip_is_refused(suite in suite(), mki in any::<bool>(), flip in 0usize..2000) {
        let (mut tx, mut rx, sent) = established(suite, mki, 40);
        // A genuine packet the receiver has not seen yet, then damaged copies of it.
        let plain = rtp(65_500u16.wrapping_add(40), 60);
        let mut buf = plain.clone();
        buf.resize(plain.len() + 32, 0);
        let len = tx.protect_rtp(&mut buf, plain.len()).unwrap();
        let genuine = buf[..len].to_vec();
        for cut in 0..genuine.len() {
            let mut short = genuine[..cut].to_vec();
            prop_assert!(rx.unprotect_rtp(&mut short).is_err(), "truncated to {} accepted", cut);
        }
        let mut flipped = genuine.clone();
        let bit = flip % (8 * flipped.len());
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(rx.unprotect_rtp(&mut flipped).is_err(), "bit {} flipped accepted", bit);
        // The untouched packet still decrypts: nothing above moved the state.
        let mut ok = genuine.clone();
        let n = rx.unprotect_rtp(&mut ok).unwrap();
        prop_assert_eq!(&ok[..n], &plain[..]);
        still_healthy(&mut tx, &mut rx, &sent, 65_500u16.wrapping_add(41));
    }

    #[test]
    fn srtcp_truncations_and_flips(suite in suite(), flip in 0usize..2000) {
        let key = keyed(suite, false);
        let (mut tx, mut rx) = (Context::new(&key, ContextConfig::default()), Context::new(&key, ContextConfig::default()));
        let plain = rtcp(1);
        let mut buf = plain.clone();
        buf.resize(plain.len() + 40, 0);
        let len = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
        let genuine = buf[..len].to_vec();
        for cut in 0..genuine.len() {
            prop_assert!(rx.unprotect_rtcp(&mut genuine[..cut].to_vec()).is_err());
        }
        let mut flipped = genuine.clone();
        let bit = flip % (8 * flipped.len());
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(rx.unprotect_rtcp(&mut flipped).is_err());
        let mut ok = genuine.clone();
        let n = rx.unprotect_rtcp(&mut ok).unwrap();
        prop_assert_eq!(&ok[..n], &plain[..]);
    }

    #[test]
    fn protect_never_panics(suite in suite(), data in proptest::collection::vec(any::<u8>(), 0..100), room in 0usize..40, rtcp_mode in any::<bool>()) {
        let mut ctx = Context::new(&keyed(suite, true), ContextConfig::default());
        let mut buf = data.clone();
        buf.resize(data.len() + room, 0);
        let _ = if rtcp_mode { ctx.protect_rtcp(&mut buf, data.len()) } else { ctx.protect_rtp(&mut buf, data.len()) };
        let _ = ctx.protect_rtp(&mut buf, data.len() + room + 1);
    }
}

#[test]
fn protecting_the_same_sequence_number_twice_is_refused() {
    // Reusing an index would reuse keystream: the sender refuses, like libsrtp.
    for suite in Suite::ALL {
        let mut tx = Context::new(&keyed(suite, false), ContextConfig::default());
        let plain = rtp(7, 20);
        let mut buf = plain.clone();
        buf.resize(plain.len() + 32, 0);
        tx.protect_rtp(&mut buf, plain.len()).unwrap();
        let mut again = plain.clone();
        again.resize(plain.len() + 32, 0);
        assert_eq!(
            tx.protect_rtp(&mut again, plain.len()),
            Err(SrtpError::Replayed),
            "{suite}"
        );
    }
}

#[test]
fn key_lifetime_is_enforced() {
    let mut key = keyed(Suite::AesCm128HmacSha1_80, false);
    key.lifetime_log2 = Some(3); // 8 packets
    let mut tx = Context::new(&key, ContextConfig::default());
    for seq in 0..8u16 {
        let plain = rtp(seq, 10);
        let mut buf = plain.clone();
        buf.resize(plain.len() + 32, 0);
        tx.protect_rtp(&mut buf, plain.len()).unwrap();
    }
    let plain = rtp(8, 10);
    let mut buf = plain.clone();
    buf.resize(plain.len() + 32, 0);
    assert_eq!(
        tx.protect_rtp(&mut buf, plain.len()),
        Err(SrtpError::KeyExpired)
    );
}

#[test]
fn a_new_key_starts_at_roc_zero_and_a_kept_key_keeps_the_roc() {
    let (tx, rx, _) = established(Suite::AesCm128HmacSha1_80, false, 100);
    assert_eq!((tx.roc(SSRC), rx.roc(SSRC)), (Some(1), Some(1)));
    // Re-key (re-INVITE with a new key): a fresh context, ROC 0 again.
    let fresh = Context::new(
        &keyed(Suite::AeadAes128Gcm, false),
        ContextConfig::default(),
    );
    assert_eq!(fresh.roc(SSRC), None);
}

#[test]
fn a_larger_replay_window_accepts_older_packets() {
    let key = keyed(Suite::AesCm128HmacSha1_80, false);
    for (window, accepted) in [(128u32, false), (1024, true)] {
        let config = ContextConfig {
            replay_window: window,
            ..ContextConfig::default()
        };
        let (mut tx, mut rx) = (
            Context::new(&key, config.clone()),
            Context::new(&key, config),
        );
        let mut held = None;
        for seq in 0..600u16 {
            let plain = rtp(seq, 8);
            let mut buf = plain.clone();
            buf.resize(plain.len() + 32, 0);
            let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
            buf.truncate(n);
            if seq == 100 {
                held = Some(buf); // delivered 499 packets late
            } else {
                rx.unprotect_rtp(&mut buf).unwrap();
            }
        }
        let result = rx.unprotect_rtp(&mut held.unwrap());
        assert_eq!(result.is_ok(), accepted, "window {window}: {result:?}");
    }
}

/// A context carried over a restart by its stream positions keeps authenticating a stream
/// that has already wrapped its 16-bit sequence number (ROC 1), and a fresh context without
/// them does not.
#[test]
fn a_resumed_context_continues_a_stream_past_the_sequence_wrap() {
    use relay_srtp::{Context, ContextConfig, MasterKey, SdesKey, Suite};
    let key = SdesKey::new(MasterKey::new(Suite::AesCm128HmacSha1_80, &[7; 16], &[9; 14]).unwrap());
    let packet = |seq: u16| {
        let mut p = vec![0u8; 200];
        p[0] = 0x80;
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        p
    };
    let (mut tx, mut rx) = (
        Context::new(&key, ContextConfig::default()),
        Context::new(&key, ContextConfig::default()),
    );
    // 70 000 packets: the stream wraps once (ROC 1 from packet 65 536 on).
    let mut last = Vec::new();
    for i in 0..70_000u32 {
        let mut p = packet(i as u16);
        let n = tx.protect_rtp(&mut p, 172).unwrap();
        p.truncate(n);
        rx.unprotect_rtp(&mut p.clone()).unwrap();
        last = p;
    }
    let _ = last;
    let positions = rx.positions();
    assert_eq!(positions.len(), 1);
    assert_eq!(
        (positions[0].roc, positions[0].seq),
        (1, (69_999u32 & 0xffff) as u16)
    );
    // The next packets, to a resumed context and to a fresh one.
    let mut resumed = Context::new(&key, ContextConfig::default());
    resumed.resume(positions[0]);
    let mut fresh = Context::new(&key, ContextConfig::default());
    for i in 70_000..70_010u32 {
        let mut p = packet(i as u16);
        let n = tx.protect_rtp(&mut p, 172).unwrap();
        p.truncate(n);
        assert!(resumed.unprotect_rtp(&mut p.clone()).is_ok(), "packet {i}");
        assert!(
            fresh.unprotect_rtp(&mut p.clone()).is_err(),
            "a fresh context guesses ROC 0"
        );
    }
    // The sending side resumes too: its packets carry on where the old sender stopped.
    let mut tx2 = Context::new(&key, ContextConfig::default());
    tx2.resume(tx.positions()[0]);
    let mut p = packet(70_010u32 as u16);
    let n = tx2.protect_rtp(&mut p, 172).unwrap();
    p.truncate(n);
    assert!(resumed.unprotect_rtp(&mut p).is_ok());
}
