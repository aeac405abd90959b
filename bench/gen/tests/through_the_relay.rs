//! The generator's send side and verifier around the relay's own core (`relay-proto`'s
//! `Relay`, fed frames as a worker feeds it): a relay that works gives a clean report, and
//! each deliberately broken relay path (not re-keyed, re-keyed with the wrong key, altered,
//! duplicated, reordered beyond the window, dropped) is caught as what it is.

use relay_gen::send::{Codec, Sender};
use relay_gen::streams::{by_destination, plan, StreamPlan};
use relay_gen::verify::{Receiver, Report};
use relay_proto::relay::{PortAddr, Relay, RelayConfig, Verdict};
use relay_proto::wire;
use relay_session::SessionsFile;

const RELAY_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const GEN_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
/// Leg a receives AES_CM_128_HMAC_SHA1_80, leg b sends AEAD_AES_128_GCM.
const KEY_A: &str = "inline:YUJDZGVmZ2hpSktMbW9QUXJzVHVWd3l6MTIzNDU2";
const KEY_B: &str = "inline:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHA==";
const OTHER_KEY_B: &str = "inline:HBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQ==";

/// One SRTP call (and, with `plain`, one RTP call) with leg b's sending key `key_b`.
fn sessions(key_b: &str, plain: bool) -> SessionsFile {
    let srtp = format!(
        r#"{{"id":"srtp","media":[{{"rtcp":"mux",
        "a":{{"local":"198.18.0.1:40000","remote":"198.18.0.10:5004","clock_rate":8000,
             "receive":{{"suite":"AES_CM_128_HMAC_SHA1_80","key":"{KEY_A}"}}}},
        "b":{{"local":"198.19.0.1:40002","remote":"198.19.0.20:6000","clock_rate":8000,
             "send":{{"suite":"AEAD_AES_128_GCM","key":"{key_b}"}}}}}}]}}"#
    );
    let rtp = r#"{"id":"rtp","media":[{"rtcp":"mux",
        "a":{"local":"198.18.0.1:40004","remote":"198.18.0.10:5006","clock_rate":8000},
        "b":{"local":"198.19.0.1:40006","remote":"198.19.0.20:6002","clock_rate":8000}}]}"#;
    let calls = if plain { format!("{srtp},{rtp}") } else { srtp };
    SessionsFile::from_json(&format!(
        r#"{{"version":1,"neighbours":[{{"ip":"198.18.0.10","mac":"02:00:00:00:00:10"}},{{"ip":"198.19.0.20","mac":"02:00:00:00:00:20"}}],"calls":[{calls}]}}"#
    ))
    .unwrap()
}

fn relay(doc: &SessionsFile) -> Relay {
    let port = |port: u16, ip: &str| PortAddr {
        port,
        mac: RELAY_MAC,
        ipv4: ip.parse().unwrap(),
        prefix_len: 24,
        ..PortAddr::default()
    };
    let mut r = Relay::new(
        vec![port(0, "198.18.0.1"), port(1, "198.19.0.1")],
        RelayConfig::default(),
    );
    r.install(doc).unwrap();
    r
}

/// A relay path as a test makes it: what reaches the verifier of packet `i` of stream `s`
/// (the relay's output), or nothing, or more.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Path {
    Working,
    NotRekeyed,
    WrongKey,
    Altered,
    Duplicated,
    ReorderedWithinWindow,
    ReorderedBeyondWindow,
    Dropped,
}

/// The packet the broken paths pick on.
const VICTIM: u64 = 5;
const PACKETS: u64 = 300;

/// Sends `PACKETS` per stream through a relay broken as `path` says, and verifies.
fn run(path: Path, plain: bool) -> (Vec<StreamPlan>, Report) {
    run_on(path, plain, 0)
}

/// [`run`] with the broken path on stream `victim` (1: the plain RTP call).
fn run_on(path: Path, plain: bool, victim: usize) -> (Vec<StreamPlan>, Report) {
    run_sampled(path, plain, victim, 1)
}

/// [`run_on`] opening only every `every`-th packet of a stream (the rest placed by their
/// RTP sequence numbers, as `relay-gen --verify-every` does).
fn run_sampled(path: Path, plain: bool, victim: usize, every: u64) -> (Vec<StreamPlan>, Report) {
    let doc = sessions(KEY_B, plain);
    let plans = plan(&doc).unwrap();
    let mut relay = relay(&if path == Path::WrongKey {
        sessions(OTHER_KEY_B, plain)
    } else {
        doc.clone()
    });
    let mut sender = Sender::new(&plans, Codec::G711);
    let mut receiver = Receiver::new(&plans);
    let by_dst = by_destination(&plans);
    let mut held: Option<(usize, Vec<u8>, u64)> = None;
    let deliver = |receiver: &mut Receiver, stream: usize, out: &mut Vec<u8>, t: u64| {
        let seq = u64::from(u16::from_be_bytes([out[2], out[3]]));
        if seq % every == 0 {
            receiver.receive(stream, out, t);
        } else {
            receiver.receive_unopened(stream, out);
        }
    };
    let mut now = 1_000_000_000u64;
    for n in 0..PACKETS {
        for (s, p) in plans.iter().enumerate() {
            now += 20_000;
            let mut pkt = vec![0u8; sender.max_packet_len()];
            let len = sender.next(s, now, &mut pkt).unwrap();
            pkt.truncate(len);
            // The frame the generator puts on the wire.
            let mut frame = vec![0u8; 42 + len + 64];
            frame[42..42 + len].copy_from_slice(&pkt);
            let l2 = wire::L2Out {
                src: GEN_MAC,
                dst: RELAY_MAC,
                vlan: None,
            };
            let flen = wire::emit_udp(&mut frame, 42, len, &l2, p.from, p.to_relay).unwrap();
            let Verdict::Forward { len: out_len, .. } = relay.process(0, &mut frame, flen, now)
            else {
                panic!("the relay did not forward packet {n} of stream {s}");
            };
            let u = wire::parse_udp(&frame[..out_len]).unwrap();
            let stream = by_dst[&u.dst];
            let mut out = frame[u.payload..u.payload + u.payload_len].to_vec();
            let arrive = now + 50_000;
            if n == VICTIM && s == victim {
                match path {
                    Path::NotRekeyed => out = pkt.clone(),
                    Path::Altered => *out.last_mut().unwrap() ^= 1,
                    Path::Duplicated => deliver(&mut receiver, stream, &mut out.clone(), arrive),
                    Path::ReorderedWithinWindow | Path::ReorderedBeyondWindow => {
                        held = Some((stream, out, arrive));
                        continue;
                    }
                    Path::Dropped => continue,
                    Path::Working | Path::WrongKey => {}
                }
            }
            if path == Path::NotRekeyed && s == victim {
                out = pkt.clone();
            }
            deliver(&mut receiver, stream, &mut out, arrive);
            let release = match path {
                Path::ReorderedWithinWindow => VICTIM + 3,
                Path::ReorderedBeyondWindow => VICTIM + 200,
                _ => u64::MAX,
            };
            if n == release && s == victim {
                if let Some((stream, mut late, t)) = held.take() {
                    deliver(&mut receiver, stream, &mut late, t);
                }
            }
        }
    }
    let report = receiver.report(sender.sent());
    (plans, report)
}

#[test]
fn a_working_relay_gives_a_clean_report_with_latencies() {
    let (plans, r) = run(Path::Working, true);
    assert_eq!(plans.len(), 2);
    assert!(r.clean(), "{r:?}");
    assert_eq!(r.sent, 2 * PACKETS);
    assert_eq!(r.delivered, 2 * PACKETS);
    assert_eq!(r.counts.fresh, 2 * PACKETS);
    // 50 µs from send to receive in this model, to the histogram's precision.
    assert!(
        (49_000..=51_000).contains(&r.latency_ns[0]),
        "{:?}",
        r.latency_ns
    );
    assert!(r.latency_ns[4] >= r.latency_ns[0]);
}

#[test]
fn output_that_was_not_rekeyed_fails_verification() {
    let (_, r) = run(Path::NotRekeyed, false);
    assert_eq!(r.counts.auth_failed, PACKETS);
    assert_eq!(r.lost, PACKETS);
    assert!(!r.clean());
}

#[test]
fn output_rekeyed_with_the_wrong_key_fails_verification() {
    let (_, r) = run(Path::WrongKey, false);
    assert_eq!(r.counts.auth_failed, PACKETS);
    assert_eq!(r.delivered, 0);
}

#[test]
fn an_altered_packet_fails_verification_and_counts_as_lost() {
    let (_, r) = run(Path::Altered, false);
    assert_eq!(r.counts.auth_failed, 1);
    assert_eq!(r.lost, 1);
    assert_eq!(r.counts.fresh, PACKETS - 1);
}

#[test]
fn an_altered_plain_rtp_payload_is_caught_by_the_stamp() {
    // Stream 0 is SRTP; make the plain stream the victim by running plain only through
    // the checks of the stamp: alter the last byte of a plain packet.
    let doc = sessions(KEY_B, true);
    let plans = plan(&doc).unwrap();
    let mut sender = Sender::new(&plans, Codec::G711);
    let mut receiver = Receiver::new(&plans);
    let mut pkt = vec![0u8; sender.max_packet_len()];
    let len = sender.next(1, 7, &mut pkt).unwrap();
    pkt.truncate(len);
    *pkt.last_mut().unwrap() ^= 0x40;
    assert_eq!(
        receiver.receive(1, &mut pkt, 9),
        relay_gen::verify::Outcome::Altered
    );
    // And a packet of stream 1 arriving on stream 0's port is misrouted, not accepted.
    let mut other = vec![0u8; sender.max_packet_len()];
    let len = sender.next(1, 8, &mut other).unwrap();
    other.truncate(len);
    let mut receiver = Receiver::new(&plans[1..]);
    assert_eq!(
        receiver.receive(0, &mut other, 9),
        relay_gen::verify::Outcome::Misrouted
    );
}

#[test]
fn a_duplicate_is_counted_and_not_delivered_twice() {
    let (_, r) = run(Path::Duplicated, false);
    assert_eq!(r.counts.duplicates, 1);
    assert_eq!(r.delivered, PACKETS);
    assert_eq!(r.lost, 0);
    assert!(!r.clean());
}

#[test]
fn reordering_within_the_window_is_delivered_and_beyond_it_is_late() {
    let (_, r) = run(Path::ReorderedWithinWindow, false);
    assert_eq!(r.counts.reordered, 1);
    assert_eq!(r.lost, 0);
    assert!(r.clean(), "{r:?}");
    let (_, r) = run(Path::ReorderedBeyondWindow, false);
    assert_eq!(r.counts.late, 1);
    assert_eq!(r.lost, 1);
    assert!(!r.clean());
}

#[test]
fn a_dropped_packet_is_lost() {
    let (_, r) = run(Path::Dropped, false);
    assert_eq!(r.lost, 1);
    assert_eq!(r.delivered, PACKETS - 1);
    assert!((r.loss_ratio() - 1.0 / PACKETS as f64).abs() < 1e-12);
}

#[test]
fn plain_rtp_paths_are_judged_by_the_stamp_alone() {
    // Stream 1 is the plain RTP call: no SRTP replay window, only the verifier's own.
    let (_, r) = run_on(Path::Duplicated, true, 1);
    assert_eq!(r.counts.duplicates, 1);
    assert_eq!(r.lost, 0);
    let (_, r) = run_on(Path::ReorderedBeyondWindow, true, 1);
    assert_eq!((r.counts.late, r.lost), (1, 1));
    let (_, r) = run_on(Path::ReorderedWithinWindow, true, 1);
    assert_eq!((r.counts.reordered, r.lost), (1, 0));
    let (_, r) = run_on(Path::Altered, true, 1);
    assert_eq!((r.counts.altered, r.lost), (1, 1));
    let (_, r) = run_on(Path::Dropped, true, 1);
    assert_eq!(r.lost, 1);
}

#[test]
fn a_written_capture_replays_through_the_relay_clean() {
    use pcap_file::pcap::PcapReader;
    let doc = sessions(KEY_B, true);
    let plans = plan(&doc).unwrap();
    let mut bytes = Vec::new();
    let ends = relay_gen::capture::Ends {
        src_mac: GEN_MAC,
        dst_mac: RELAY_MAC,
    };
    let per_stream = 50;
    let n = relay_gen::capture::write(
        &mut bytes,
        &plans,
        Codec::G711,
        per_stream,
        std::time::Duration::from_micros(20),
        ends,
    )
    .unwrap();
    assert_eq!(n, 2 * per_stream);
    // Replayed as a tool would: each frame to the relay as it is in the capture.
    let mut relay = relay(&doc);
    let mut receiver = Receiver::new(&plans);
    let by_dst = by_destination(&plans);
    let mut reader = PcapReader::new(&bytes[..]).unwrap();
    let mut frames = 0;
    while let Some(p) = reader.next_packet() {
        let p = p.unwrap();
        let t = p.timestamp.as_nanos() as u64;
        let mut frame = p.data.to_vec();
        let len = frame.len();
        frame.resize(len + 64, 0);
        let Verdict::Forward { len: out_len, .. } = relay.process(0, &mut frame, len, t) else {
            panic!("frame {frames} not forwarded");
        };
        let u = wire::parse_udp(&frame[..out_len]).unwrap();
        let mut out = frame[u.payload..u.payload + u.payload_len].to_vec();
        receiver.receive(by_dst[&u.dst], &mut out, t + 1_000);
        frames += 1;
    }
    let r = receiver.report(n);
    assert!(r.clean(), "{r:?}");
    assert_eq!(r.delivered, n);
}

#[test]
fn a_sampled_run_places_the_unopened_packets_by_their_sequence_numbers() {
    // Every 10th packet opened: packet 5, the victim, is one of the unopened.
    let (_, r) = run_sampled(Path::Working, true, 0, 10);
    assert!(r.clean(), "{r:?}");
    assert_eq!(r.delivered, 2 * PACKETS);
    let (_, r) = run_sampled(Path::Duplicated, true, 0, 10);
    assert_eq!((r.counts.duplicates, r.lost), (1, 0));
    let (_, r) = run_sampled(Path::Dropped, true, 0, 10);
    assert_eq!(r.lost, 1);
    let (_, r) = run_sampled(Path::ReorderedBeyondWindow, true, 0, 10);
    assert_eq!((r.counts.late, r.lost), (1, 1));
    // What it cannot see: an unopened packet's tag. The opened sample still checks them.
    let (_, r) = run_sampled(Path::WrongKey, false, 0, 10);
    assert_eq!(r.counts.auth_failed, PACKETS / 10);
    assert!(!r.clean());
}

#[test]
fn unopened_sequence_numbers_are_extended_across_the_16_bit_wrap() {
    let doc = sessions(KEY_B, true);
    let plans = plan(&doc).unwrap();
    let mut receiver = Receiver::new(&plans);
    let header = |seq: u16| {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p
    };
    use relay_gen::verify::Outcome;
    for seq in [65_534u16, 65_535, 0, 1, 2] {
        assert_eq!(
            receiver.receive_unopened(1, &header(seq)),
            Outcome::Fresh,
            "{seq}"
        );
    }
    assert_eq!(
        receiver.receive_unopened(1, &header(65_535)),
        Outcome::Duplicate
    );
    assert_eq!(
        receiver.receive_unopened(1, &header(65_533)),
        Outcome::Reordered
    );
    assert_eq!(receiver.receive_unopened(1, &header(60_000)), Outcome::Late);
    assert_eq!(receiver.receive_unopened(9, &header(3)), Outcome::Misrouted);
    assert_eq!(receiver.receive_unopened(1, &[0x80; 5]), Outcome::Malformed);
}

#[test]
fn a_burst_of_packets_equals_the_packets_one_by_one() {
    // Streams 0 (AES-CM in) and 1 (plain), in an irregular order, bursts of several sizes.
    let doc = sessions(KEY_B, true);
    let plans = plan(&doc).unwrap();
    let (mut one, mut many) = (
        Sender::new(&plans, Codec::G711),
        Sender::new(&plans, Codec::G711),
    );
    let order: Vec<usize> = (0..200).map(|i| (i * 7 / 3) % 2).collect();
    let mut at = 0;
    for size in [1usize, 5, 32, 17, 2, 32, 32, 32, 32, 15].iter().cycle() {
        if at >= order.len() {
            break;
        }
        let streams = &order[at..(at + size).min(order.len())];
        at += streams.len();
        let mut bufs: Vec<Vec<u8>> = streams
            .iter()
            .map(|_| vec![0u8; many.max_packet_len()])
            .collect();
        let mut outs: Vec<&mut [u8]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
        let mut lens = vec![0usize; streams.len()];
        many.next_burst(streams, 42, &mut outs, &mut lens).unwrap();
        for ((&s, b), &len) in streams.iter().zip(&bufs).zip(&lens) {
            let mut want = vec![0u8; one.max_packet_len()];
            let n = one.next(s, 42, &mut want).unwrap();
            assert_eq!(len, n);
            assert_eq!(&b[..len], &want[..n]);
        }
    }
    assert_eq!(one.sent(), many.sent());
}
