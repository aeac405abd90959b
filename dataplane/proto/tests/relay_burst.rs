//! The burst path equals the frame-by-frame path: [`Relay::process_burst`] over any cut of a
//! mixed stream of frames gives the verdicts, bytes, counters and call statistics that
//! [`Relay::process`] gives frame by frame, with the staged prefetch done inside the burst
//! ([`Relay::process_burst_hinted`]) or not.

mod util;

use proptest::prelude::*;
use relay_proto::relay::{CacheHint, Received, RxChecksum, Verdict};
use relay_session::RtcpMode;
use relay_srtp::Suite;
use util::*;

/// The calls both relays carry: every kind of leg the stages tell apart.
fn calls() -> Vec<Call> {
    let cm = Some(Suite::AesCm128HmacSha1_80);
    let cm32 = Some(Suite::AesCm128HmacSha1_32);
    let gcm = Some(Suite::AeadAes128Gcm);
    let mut calls = vec![
        Call::new("cm-cm").srtp(cm, cm32),
        Call::new("cm-plain").srtp(cm, None),
        Call::new("plain-cm").srtp(None, cm),
        Call::new("gcm-cm").srtp(gcm, cm),
        Call::new("cm-gcm").srtp(cm32, gcm).a_strict(),
        Call::new("plain-plain").rtcp(RtcpMode::Mux),
    ];
    for (i, c) in calls.iter_mut().enumerate() {
        let port = 40_000 + 4 * i as u16;
        *c = c
            .clone()
            .a(&format!("198.18.0.1:{port}"), Some("198.18.0.10:5004"))
            .b(
                &format!("198.19.0.1:{}", port + 2),
                Some("198.19.0.20:6000"),
            );
    }
    calls
}

/// What one frame of the stream is.
#[derive(Clone, Debug)]
enum Event {
    /// The next RTP packet of call `.0`'s caller, `.1` payload bytes.
    Fresh(usize, usize),
    /// A frame sent earlier, again.
    Again(usize),
    /// A frame sent earlier with one bit flipped at a position chosen by `.1`.
    Flipped(usize, usize),
    /// Call `.0`'s next RTP packet from another source address.
    Elsewhere(usize),
    /// An RTCP receiver report on call `.0`'s RTP port (multiplexed).
    Rtcp(usize),
    /// A frame to a port with no call.
    Unknown,
}

fn events() -> impl Strategy<Value = Vec<Event>> {
    proptest::collection::vec(
        prop_oneof![
            10 => (0usize..6, 0usize..400).prop_map(|(c, n)| Event::Fresh(c, n)),
            2 => (0usize..40).prop_map(Event::Again),
            2 => (0usize..40, any::<usize>()).prop_map(|(k, at)| Event::Flipped(k, at)),
            1 => (0usize..6).prop_map(Event::Elsewhere),
            1 => (0usize..6).prop_map(Event::Rtcp),
            1 => Just(Event::Unknown),
        ],
        1..200,
    )
}

/// The frames of `events`, as the peers of `calls` put them on the wire.
fn frames(calls: &[Call], events: &[Event]) -> Vec<(Vec<u8>, usize)> {
    let mut peers: Vec<Peers> = calls.iter().map(Call::peers).collect();
    let mut seqs = vec![65_530u16; calls.len()];
    let mut out: Vec<(Vec<u8>, usize)> = Vec::new();
    for e in events {
        let earlier = |k: usize| out.get(out.len().saturating_sub(1 + k % 8)).cloned();
        match *e {
            Event::Fresh(c, n) => {
                let (buf, len, _) = peers[c].caller.send(seqs[c], n);
                seqs[c] = seqs[c].wrapping_add(1);
                out.push((buf, len));
            }
            Event::Again(k) => {
                if let Some(f) = earlier(k) {
                    out.push(f);
                }
            }
            Event::Flipped(k, at) => {
                if let Some((mut buf, len)) = earlier(k) {
                    // Past the Ethernet header, so the frame still reaches the relay.
                    let at = 14 + at % (len - 14);
                    buf[at] ^= 1 << (at % 8);
                    out.push((buf, len));
                }
            }
            Event::Elsewhere(c) => {
                let p = &mut peers[c].caller;
                let sealed = p.seal(&rtp(seqs[c], 80));
                seqs[c] = seqs[c].wrapping_add(1);
                out.push(frame_between(
                    p.mac,
                    addr("198.18.0.11:5004"),
                    p.relay,
                    &sealed,
                ));
            }
            Event::Rtcp(c) => {
                let p = &mut peers[c].caller;
                let mut rr = vec![0x80, 201, 0, 1, 0x11, 0x22, 0x33, 0x44];
                let len = rr.len();
                if let Some(ctx) = &mut p.tx {
                    rr.resize(len + 64, 0);
                    let n = ctx.protect_rtcp(&mut rr, len).unwrap();
                    rr.truncate(n);
                }
                out.push(frame_between(p.mac, p.addr, p.relay, &rr));
            }
            Event::Unknown => out.push(frame(
                CALLER_MAC,
                "198.18.0.10:5004",
                "198.18.0.1:39990",
                &rtp(1, 20),
            )),
        }
    }
    out
}

fn relay(calls: &[Call]) -> Harness {
    let mut h = Harness::new();
    for c in calls {
        h.add(c);
    }
    h.now_ns = 5_000_000_000;
    h
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn burst_path_equals_frame_by_frame(events in events(), cuts in proptest::collection::vec(1usize..40, 1..20)) {
        let calls = calls();
        let input = frames(&calls, &events);
        let (mut one, mut burst, mut hinted) = (relay(&calls), relay(&calls), relay(&calls));
        let hints = LineCount::default();

        let mut want: Vec<(Verdict, Vec<u8>)> = Vec::new();
        for (buf, len) in &input {
            let mut b = buf.clone();
            let v = one.process(0, &mut b, *len);
            want.push((v, out_bytes(v, &b)));
        }

        // The burst path without hints, and with the staged prefetch done inside it (whose
        // flows it reuses): both give what the frame-by-frame path gives.
        for (h, with_hints) in [(&mut burst, false), (&mut hinted, true)] {
            let mut got: Vec<(Verdict, Vec<u8>)> = Vec::new();
            let mut rest = &input[..];
            let mut cut = cuts.iter().cycle();
            while !rest.is_empty() {
                let n = (*cut.next().unwrap()).min(rest.len());
                let (chunk, tail) = rest.split_at(n);
                rest = tail;
                let mut bufs: Vec<Vec<u8>> = chunk.iter().map(|(b, _)| b.clone()).collect();
                let mut verdicts = vec![Verdict::Consumed; n];
                {
                    let mut received: Vec<Received<'_>> = bufs
                        .iter_mut()
                        .zip(chunk)
                        .map(|(b, (_, len))| Received { port: 0, frame: &mut b[..], len: *len, checksum: RxChecksum::Unknown })
                        .collect();
                    if with_hints {
                        h.relay.process_burst_hinted(&hints, &mut received, h.now_ns, &mut verdicts);
                    } else {
                        h.relay.process_burst(&mut received, h.now_ns, &mut verdicts);
                    }
                }
                for (v, b) in verdicts.iter().zip(&bufs) {
                    got.push((*v, out_bytes(*v, b)));
                }
            }
            prop_assert_eq!(&got, &want, "hints: {}", with_hints);
            prop_assert_eq!(format!("{:?}", h.relay.stats), format!("{:?}", one.relay.stats));
            for c in &calls {
                prop_assert_eq!(
                    format!("{:?}", h.relay.call_stats(&c.id)),
                    format!("{:?}", one.relay.call_stats(&c.id))
                );
            }
        }
        // The hinted run did prefetch: every frame of a known flow hints at least its flow
        // table entry.
        let known = want.iter().filter(|(v, _)| matches!(v, Verdict::Forward { .. })).count();
        prop_assert!(hints.0.get() >= known, "{} hints for {} forwarded", hints.0.get(), known);
    }
}

/// A hint that counts the lines it is given.
#[derive(Default)]
struct LineCount(std::cell::Cell<usize>);

impl CacheHint for LineCount {
    fn line(&self, _addr: *const u8) {
        self.0.set(self.0.get() + 1);
    }
}

/// What a verdict sends: the frame's first `len` bytes, or nothing.
fn out_bytes(v: Verdict, buf: &[u8]) -> Vec<u8> {
    match v {
        Verdict::Forward { len, .. } | Verdict::Reply { len } => buf[..len].to_vec(),
        _ => Vec::new(),
    }
}
