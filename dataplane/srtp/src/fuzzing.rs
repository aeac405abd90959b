//! The body of the `unprotect` fuzz target (`fuzz/fuzz_targets/unprotect.rs`), kept here so
//! a plain test can replay the corpus on stable Rust in CI.

use crate::{Context, ContextConfig, MasterKey, Mki, SdesKey, SrtpError, Suite};

/// Feeds `data` to an established receiving context as SRTP or SRTCP and checks that the
/// context is unharmed. Byte 0 picks the suite, the mode and whether an MKI is used.
///
/// Panics only if the engine misbehaves: a panic inside it, a forgery accepted, or state
/// changed by a packet that was refused.
pub fn unprotect_input(data: &[u8]) {
    let Some((&selector, packet)) = data.split_first() else {
        return;
    };
    let suite = Suite::ALL[usize::from(selector) % Suite::ALL.len()];
    let rtcp = selector & 0x40 != 0;
    let mut key = SdesKey::new(
        MasterKey::new(
            suite,
            &[0x5a; 32][..suite.key_len()],
            &[0xa5; 14][..suite.salt_len()],
        )
        .expect("lengths"),
    );
    if selector & 0x80 != 0 {
        key.mki = Some(Mki {
            value: 0x0102,
            len: 2,
        });
    }
    let mut tx = Context::new(&key, ContextConfig::default());
    let mut rx = Context::new(&key, ContextConfig::default());
    let ssrc = 0x0bad_cafe_u32;
    let send = |tx: &mut Context, seq: u16| -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[7; 20]);
        let len = p.len();
        p.resize(len + 64, 0);
        let n = tx.protect_rtp(&mut p, len).expect("protect");
        p.truncate(n);
        p
    };
    let mut first = send(&mut tx, 65_535);
    rx.unprotect_rtp(&mut first).expect("genuine");
    let roc = rx.roc(ssrc);

    let mut fuzzed = packet.to_vec();
    let result = if rtcp {
        rx.unprotect_rtcp(&mut fuzzed)
    } else {
        rx.unprotect_rtp(&mut fuzzed)
    };
    if result.is_err() {
        assert_eq!(rx.roc(ssrc), roc, "a refused packet changed the ROC");
    }
    // The genuine stream continues whatever happened (an accepted fuzz packet would have to
    // carry a valid tag, which the fuzzer cannot forge).
    assert!(result.is_err() || packet == &first[..], "forgery accepted");
    let mut next = send(&mut tx, 0);
    assert!(
        rx.unprotect_rtp(&mut next).is_ok(),
        "genuine packet refused after fuzz input"
    );
    let mut replay = first.clone();
    assert!(matches!(
        rx.unprotect_rtp(&mut replay),
        Err(SrtpError::Replayed)
    ));
}
