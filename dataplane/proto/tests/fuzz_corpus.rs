//! Replays the fuzz corpus (and a few thousand generated inputs) through the fuzz targets'
//! bodies, so CI exercises them on stable Rust without libFuzzer.

use std::fs;
use std::path::{Path, PathBuf};

use relay_proto::fuzzing;

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Deterministic pseudo-random bytes (xorshift64).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as u8
    }
}

/// Every corpus file, then random inputs of every length up to 300 bytes, then the seeds with
/// a few bytes changed (which reach further than random bytes do).
fn inputs(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus(target);
    let mut all: Vec<Vec<u8>> = fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| fs::read(e.expect("entry").path()).expect("corpus file"))
        .collect();
    assert!(all.len() >= 24, "corpus too small in {}", dir.display());
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    all.extend((0..3000usize).map(|len| (0..len % 300).map(|_| noise.next()).collect()));
    let seeds = fuzzing::seeds();
    for i in 0..3000usize {
        let mut input = seeds[i % seeds.len()].1.clone();
        for _ in 0..1 + i % 3 {
            let at = usize::from(noise.next()) * input.len() / 256;
            input[at] ^= noise.next() | 1;
        }
        all.push(input);
    }
    all
}

#[test]
fn wire_parse_corpus_replays_cleanly() {
    for input in inputs("wire_parse") {
        fuzzing::wire_parse(&input);
    }
}

#[test]
fn relay_process_corpus_replays_cleanly() {
    for input in inputs("relay_process") {
        fuzzing::relay_process(&input);
    }
}

/// The corpus files are the seeds as written: a seed changed without the corpus being
/// rewritten fails here.
#[test]
fn corpus_matches_the_seeds() {
    for (name, input) in fuzzing::seeds() {
        let file = |target: &str| fs::read(corpus(target).join(&name)).ok();
        assert_eq!(file("relay_process").as_deref(), Some(&input[..]), "{name}");
        assert_eq!(file("wire_parse").as_deref(), Some(&input[1..]), "{name}");
    }
}

/// Writes the corpus from the seeds (`cargo test -p relay-proto --test fuzz_corpus --
/// --ignored`); `wire_parse` gets the frames without the selector byte.
#[test]
#[ignore]
fn write_corpus() {
    for (name, input) in fuzzing::seeds() {
        for (target, data) in [("relay_process", &input[..]), ("wire_parse", &input[1..])] {
            fs::create_dir_all(corpus(target)).unwrap();
            fs::write(corpus(target).join(&name), data).unwrap();
        }
    }
}

/// The seeds reach past the parsers: forwarded, answered, consumed and dropped deep in the
/// relay, so mutations of them exercise every part of it.
#[test]
fn seeds_reach_every_verdict() {
    use relay_proto::relay::{DropReason, Verdict};
    let expected = [
        ("srtp4", "forward"),
        ("srtp4_vlan", "forward"),
        ("srtcp4_mux", "forward"),
        ("rtp6_plain", "forward"),
        ("rtcp6_port_plus_one", "forward"),
        ("rtp6_from_callee_vlan", "drop no_destination"),
        ("rtp4_to_srtp_unresolved", "hold"),
        ("rtp4_unknown_flow", "drop unknown_flow"),
        ("arp_request", "reply"),
        ("arp_reply_vlan", "consumed"),
        ("echo4", "reply"),
        ("echo6", "reply"),
        ("ns6", "reply"),
        ("ns6_dad", "reply"),
        ("na6_vlan", "consumed"),
        ("srtp4_vlan_cut33", "drop truncated"),
    ];
    let seeds = fuzzing::seeds();
    for (name, want) in expected {
        let (_, input) = seeds.iter().find(|(n, _)| n == name).expect(name);
        let mut relay = fuzzing::fuzz_relay();
        let frame = &input[1..];
        let mut buf = frame.to_vec();
        buf.resize(frame.len() + 128, 0);
        let got = match relay.process(u16::from(input[0] & 1), &mut buf, frame.len(), 1) {
            Verdict::Forward { .. } => "forward".to_string(),
            Verdict::Hold { .. } => "hold".to_string(),
            Verdict::Reply { .. } => "reply".to_string(),
            Verdict::Consumed => "consumed".to_string(),
            Verdict::Drop(r) => format!("drop {}", DropReason::name(r)),
        };
        assert_eq!(got, want, "{name}");
    }
}
