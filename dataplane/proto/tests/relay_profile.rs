//! A profiling loop for the relay core alone (no DPDK, no generator on the clock):
//! `cargo test --release -p relay-proto --test relay_profile -- --ignored --nocapture`
//! under `perf record`. Not a check: benchmarks live in `relay-dataplane bench`.
//! `RELAY_PROFILE_CALLS` (default 1000), `RELAY_PROFILE_HOT=1` (frames in cache) and
//! `RELAY_PROFILE_PLAIN=1` (plain RTP) choose what is profiled.

mod util;

use relay_proto::relay::{Received, RxChecksum, Verdict};
use relay_srtp::Suite;
use util::*;

#[test]
#[ignore = "a profiling loop, not a check"]
fn srtp_rekey_burst_loop() {
    // `RELAY_PROFILE_CALLS=16` profiles the relay with all its state in cache: what its
    // instructions cost, apart from its memory.
    let call_count: usize = std::env::var("RELAY_PROFILE_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
        .clamp(8, 10_000);
    // `RELAY_PROFILE_HOT=1` copies each burst into the same 32 buffers first (off the clock),
    // as a NIC's receive ring reuses its buffers: the frames' own misses left out.
    let hot = std::env::var_os("RELAY_PROFILE_HOT").is_some();
    // 300,000 packets whatever the count (each call's sequence numbers stay below 2^16).
    let per_call = 300_000 / call_count;
    const REPEATS: usize = 8;
    // `RELAY_PROFILE_PLAIN=1` relays plain RTP both ways instead: the relay's own work alone.
    let plain = std::env::var_os("RELAY_PROFILE_PLAIN").is_some();
    let cm = Some(Suite::AesCm128HmacSha1_80).filter(|_| !plain);
    let calls: Vec<Call> = (0..call_count)
        .map(|i| {
            let port = 20_000 + 4 * i as u16;
            Call::new(&format!("c{i}"))
                .srtp(cm, cm)
                .a(&format!("198.18.0.1:{port}"), Some("198.18.0.10:5004"))
                .b(
                    &format!("198.19.0.1:{}", port + 2),
                    Some("198.19.0.20:6000"),
                )
        })
        .collect();
    let mut peers: Vec<Peers> = calls.iter().map(Call::peers).collect();
    // Round robin over the calls, as the benchmark's generator sends.
    let mut frames: Vec<(Vec<u8>, usize)> = Vec::with_capacity(call_count * per_call);
    for seq in 0..per_call {
        for p in peers.iter_mut() {
            let (buf, len, _) = p.caller.send(seq as u16, 160);
            frames.push((buf, len));
        }
    }
    // The same frames through fresh relays (same keys), only the relaying on the clock.
    let mut took = std::time::Duration::ZERO;
    for _ in 0..REPEATS {
        let mut h = Harness::new();
        for c in &calls {
            h.add(c);
        }
        h.now_ns = 5_000_000_000;
        let mut bufs: Vec<Vec<u8>> = frames.iter().map(|(b, _)| b.clone()).collect();
        let mut ring: Vec<Vec<u8>> = frames.iter().take(32).map(|(b, _)| b.clone()).collect();
        let mut forwarded = 0usize;
        for (chunk, bufs) in frames.chunks(32).zip(bufs.chunks_mut(32)) {
            let mut verdicts = [Verdict::Consumed; 32];
            let bufs = if hot {
                for (r, (b, _)) in ring.iter_mut().zip(chunk) {
                    r.copy_from_slice(b);
                }
                &mut ring[..chunk.len()]
            } else {
                bufs
            };
            let t = std::time::Instant::now();
            let mut received: [Received<'_>; 32] = Default::default();
            let mut n = 0;
            for (r, (b, (_, len))) in received.iter_mut().zip(bufs.iter_mut().zip(chunk)) {
                *r = Received {
                    port: 0,
                    frame: &mut b[..],
                    len: *len,
                    checksum: RxChecksum::Unknown,
                };
                n += 1;
            }
            h.relay
                .process_burst(&mut received[..n], h.now_ns, &mut verdicts[..n]);
            took += t.elapsed();
            forwarded += verdicts[..n]
                .iter()
                .filter(|v| matches!(v, Verdict::Forward { .. }))
                .count();
        }
        assert_eq!(forwarded, frames.len(), "every packet relayed");
    }
    eprintln!(
        "relay core, {}, {call_count} calls: {:.1} ns per packet",
        if plain { "plain RTP" } else { "SRTP re-key" },
        took.as_secs_f64() * 1e9 / (REPEATS * frames.len()) as f64
    );
}
