//! relay-srtp against Debian's libsrtp2, for every suite: packets protected by one are
//! unprotected by the other, SRTP and SRTCP, across a sequence number wrap with packets
//! reordered around it, with and without MKI, and re-keyed between two libsrtp legs.

use relay_bench::libsrtp::{self, Op};
use relay_bench::rtp::{rtcp_packet, rtp_packet, RtpShape};
use relay_srtp::{rekey_rtp, Context, ContextConfig, MasterKey, Mki, SdesKey, SrtpError, Suite};

const SSRC: u32 = 0x1234_5678;
/// Starts 136 packets before the wrap and ends 164 after it.
const FIRST_SEQ: u16 = 65_400;
const PACKETS: usize = 300;

fn key(suite: Suite, mki: Option<Mki>) -> SdesKey {
    SdesKey {
        master: MasterKey::random(suite).unwrap(),
        lifetime_log2: None,
        mki,
    }
}

/// RTP packets crossing 65535 -> 0, in sending order with late packets around the wrap:
/// 65535 and 65533 arrive after 0, 1 and 2.
fn rtp_stream() -> Vec<Vec<u8>> {
    let mut packets: Vec<Vec<u8>> = (0..PACKETS)
        .map(|i| {
            let seq = FIRST_SEQ.wrapping_add(i as u16);
            let shape = RtpShape {
                csrcs: (i % 3) as u8,
                extension_words: if i % 5 == 0 { 2 } else { 0 },
                payload: [160, 20, 0, 1, 317][i % 5],
            };
            rtp_packet(seq, SSRC, shape)
        })
        .collect();
    let wrap = (0..PACKETS)
        .find(|&i| FIRST_SEQ.wrapping_add(i as u16) == 0)
        .unwrap();
    packets.swap(wrap - 1, wrap + 2);
    packets.swap(wrap - 3, wrap + 1);
    packets
}

fn seq_of(p: &[u8]) -> u16 {
    u16::from_be_bytes([p[2], p[3]])
}

fn ours(key: &SdesKey) -> Context {
    Context::new(key, ContextConfig::default())
}

fn protect_all(ctx: &mut Context, packets: &[Vec<u8>], rtcp: bool) -> Vec<Vec<u8>> {
    packets
        .iter()
        .map(|p| {
            let mut buf = p.clone();
            buf.resize(p.len() + 64, 0);
            let n = if rtcp {
                ctx.protect_rtcp(&mut buf, p.len())
            } else {
                ctx.protect_rtp(&mut buf, p.len())
            }
            .unwrap_or_else(|e| panic!("protect failed: {e}"));
            buf.truncate(n);
            buf
        })
        .collect()
}

fn suites_and_mki() -> Vec<(Suite, Option<Mki>)> {
    let mut cases: Vec<_> = Suite::ALL.into_iter().map(|s| (s, None)).collect();
    cases.push((
        Suite::AesCm128HmacSha1_80,
        Some(Mki {
            value: 0x0102,
            len: 2,
        }),
    ));
    cases.push((Suite::AeadAes128Gcm, Some(Mki { value: 7, len: 1 })));
    cases
}

#[test]
fn libsrtp_protects_relay_unprotects_srtp_across_the_wrap() {
    let plain = rtp_stream();
    for (suite, mki) in suites_and_mki() {
        let key = key(suite, mki);
        let protected = libsrtp::run(Op::Protect, false, &key, &plain).unwrap();
        let mut rx = ours(&key);
        for (p, out) in plain.iter().zip(&protected) {
            assert_eq!(
                out.status,
                0,
                "{suite}: libsrtp refused to protect seq {}",
                seq_of(p)
            );
            let mut packet = out.packet.clone();
            let n = rx
                .unprotect_rtp(&mut packet)
                .unwrap_or_else(|e| panic!("{suite} mki {mki:?}: seq {} failed: {e}", seq_of(p)));
            assert_eq!(&packet[..n], &p[..], "{suite}: seq {}", seq_of(p));
        }
        assert_eq!(rx.roc(SSRC), Some(1), "{suite}: ROC advanced once");
        // Replays inside the window are refused as replays, older ones as too old.
        for out in protected.iter().rev().take(3) {
            let mut packet = out.packet.clone();
            assert_eq!(
                rx.unprotect_rtp(&mut packet),
                Err(SrtpError::Replayed),
                "{suite}"
            );
        }
        for out in protected.iter().take(3) {
            let mut packet = out.packet.clone();
            assert_eq!(
                rx.unprotect_rtp(&mut packet),
                Err(SrtpError::TooOld),
                "{suite}"
            );
        }
    }
}

#[test]
fn relay_protects_libsrtp_unprotects_srtp_across_the_wrap() {
    let plain = rtp_stream();
    for (suite, mki) in suites_and_mki() {
        let key = key(suite, mki);
        let protected = protect_all(&mut ours(&key), &plain, false);
        let unprotected = libsrtp::run(Op::Unprotect, false, &key, &protected).unwrap();
        for (p, out) in plain.iter().zip(&unprotected) {
            assert_eq!(
                out.status,
                0,
                "{suite} mki {mki:?}: libsrtp rejected seq {}",
                seq_of(p)
            );
            assert_eq!(&out.packet, p, "{suite}: seq {}", seq_of(p));
        }
    }
}

#[test]
fn srtcp_both_ways() {
    let plain: Vec<Vec<u8>> = (0..60)
        .map(|n| rtcp_packet(n, SSRC, (n % 4) as u8))
        .collect();
    for (suite, mki) in suites_and_mki() {
        let key = key(suite, mki);
        // libsrtp -> relay
        let protected = libsrtp::run(Op::Protect, true, &key, &plain).unwrap();
        let mut rx = ours(&key);
        for (p, out) in plain.iter().zip(&protected) {
            assert_eq!(out.status, 0, "{suite}");
            assert_eq!(
                out.packet.len(),
                p.len() + rx.srtcp_overhead(),
                "{suite}: SRTCP overhead"
            );
            let mut packet = out.packet.clone();
            let n = rx
                .unprotect_rtcp(&mut packet)
                .unwrap_or_else(|e| panic!("{suite} mki {mki:?}: {e}"));
            assert_eq!(&packet[..n], &p[..], "{suite}");
        }
        let mut again = protected[10].packet.clone();
        assert_eq!(
            rx.unprotect_rtcp(&mut again),
            Err(SrtpError::Replayed),
            "{suite}"
        );
        // relay -> libsrtp
        let ours_protected = protect_all(&mut ours(&key), &plain, true);
        let unprotected = libsrtp::run(Op::Unprotect, true, &key, &ours_protected).unwrap();
        for (p, out) in plain.iter().zip(&unprotected) {
            assert_eq!(
                out.status, 0,
                "{suite} mki {mki:?}: libsrtp rejected our SRTCP"
            );
            assert_eq!(&out.packet, p, "{suite}");
        }
    }
}

#[test]
fn relay_rekeys_between_two_libsrtp_legs() {
    let plain = rtp_stream();
    // Each suite in, a different one out, so the tag length changes in both directions.
    let suites = Suite::ALL;
    for (i, &suite_in) in suites.iter().enumerate() {
        let suite_out = suites[(i + 1) % suites.len()];
        let (key_in, key_out) = (key(suite_in, None), key(suite_out, None));
        let from_caller = libsrtp::run(Op::Protect, false, &key_in, &plain).unwrap();
        let (mut inbound, mut outbound) = (ours(&key_in), ours(&key_out));
        let relayed: Vec<Vec<u8>> = from_caller
            .iter()
            .map(|out| {
                let mut buf = out.packet.clone();
                buf.resize(out.packet.len() + 32, 0);
                let n = rekey_rtp(&mut inbound, &mut outbound, &mut buf, out.packet.len())
                    .unwrap_or_else(|e| panic!("{suite_in} -> {suite_out}: {e}"));
                buf.truncate(n);
                buf
            })
            .collect();
        let at_callee = libsrtp::run(Op::Unprotect, false, &key_out, &relayed).unwrap();
        for (p, out) in plain.iter().zip(&at_callee) {
            assert_eq!(
                out.status,
                0,
                "{suite_in} -> {suite_out}: seq {}",
                seq_of(p)
            );
            assert_eq!(&out.packet, p);
        }
    }
}

#[test]
fn forgeries_among_genuine_packets_change_nothing() {
    let plain = rtp_stream();
    for suite in Suite::ALL {
        let key = key(suite, None);
        let protected = libsrtp::run(Op::Protect, false, &key, &plain).unwrap();
        let mut rx = ours(&key);
        for (i, out) in protected.iter().enumerate() {
            // Before each genuine packet: a copy with a flipped bit, and one claiming a
            // sequence number far ahead (which would move the ROC if it were believed).
            let mut flipped = out.packet.clone();
            let at = (i * 7) % flipped.len();
            flipped[at] ^= 0x40;
            let mut ahead = out.packet.clone();
            ahead[2] ^= 0x80;
            for mut forged in [flipped, ahead] {
                let before = rx.roc(SSRC);
                assert!(
                    rx.unprotect_rtp(&mut forged).is_err(),
                    "{suite}: forgery accepted"
                );
                assert_eq!(rx.roc(SSRC), before, "{suite}: forgery moved the ROC");
            }
            let mut packet = out.packet.clone();
            let n = rx
                .unprotect_rtp(&mut packet)
                .unwrap_or_else(|e| panic!("{suite} packet {i}: {e}"));
            assert_eq!(&packet[..n], &plain[i][..]);
        }
    }
}
