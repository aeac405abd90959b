//! Replays the fuzz corpora (and some thousands of generated and mutated inputs) through
//! the fuzz targets' bodies, so CI exercises them on stable Rust without libFuzzer.

use std::fs;
use std::path::Path;

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let out: Vec<Vec<u8>> = files
        .iter()
        .map(|p| fs::read(p).expect("corpus file"))
        .collect();
    assert!(out.len() >= 10, "corpus {} too small", dir.display());
    out
}

/// A deterministic xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to the grammars, for insertions.
const INTERESTING: &[u8] = b"\r\n \t:;,=<>\"\\@%/[]?*0129aZ\x00\x7f\xff";

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut d = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(d.len() + 1);
        match rng.below(6) {
            0 if !d.is_empty() => {
                let i = at.min(d.len() - 1);
                d[i] ^= 1 << rng.below(8);
            }
            1 => d.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            2 if at < d.len() => {
                d.remove(at);
            }
            3 => d.truncate(at),
            4 if !d.is_empty() => {
                // Repeat a slice: long values, many headers, many lines.
                let start = rng.below(d.len());
                let end = (start + rng.below(64)).min(d.len());
                let piece = d[start..end].repeat(1 + rng.below(40));
                d.splice(at.min(d.len())..at.min(d.len()), piece);
            }
            _ => {
                let i = rng.below(d.len() + 1);
                d.splice(i..i, b"\r\n".iter().copied());
            }
        }
    }
    d
}

/// `RELAY_SIP_FUZZ_MUTATIONS` raises the number of mutated inputs for a longer local run;
/// `RELAY_SIP_FUZZ_SEED` changes the generator's seed.
fn replay(name: &str, target: fn(&[u8]), mutations: usize) {
    let mutations = std::env::var("RELAY_SIP_FUZZ_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(mutations);
    let seeds = corpus(name);
    for s in &seeds {
        target(s);
    }
    let seed = std::env::var("RELAY_SIP_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15_u64);
    let mut rng = Rng(seed | 1);
    for _ in 0..mutations {
        let seed = &seeds[rng.below(seeds.len())];
        target(&mutate(&mut rng, seed));
    }
    for len in 0..1000usize {
        let data: Vec<u8> = (0..len % 300).map(|_| rng.next() as u8).collect();
        target(&data);
    }
}

#[test]
fn sip_parse_corpus_replays_cleanly() {
    replay("sip_parse", relay_sip::fuzzing::sip_parse_input, 4000);
}

#[test]
fn sdp_parse_corpus_replays_cleanly() {
    replay("sdp_parse", relay_sip::fuzzing::sdp_parse_input, 4000);
}

/// The corpus keeps valid seeds (so that mutations start from deep inside the grammar),
/// and they stay valid.
#[test]
fn corpus_seeds_that_must_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let limits = relay_sip::Limits::default();
    for name in [
        "dgram-invite-teams",
        "dgram-options",
        "dgram-response-503",
        "dgram-refer-compact",
        "dgram-rfc4475-wsinv",
        "dgram-rfc4475-escnull",
        "dgram-rfc4475-noreason",
        "dgram-trailing",
    ] {
        let data = fs::read(dir.join("sip_parse").join(name)).expect(name);
        match relay_sip::parse_datagram(&data[1..], &limits) {
            Ok(relay_sip::Datagram::Message(m)) => {
                if m.content_type().unwrap().is_some_and(|t| t.is_sdp()) {
                    relay_sip::sdp::SessionDescription::parse(&m.body, &limits).expect(name);
                }
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    for name in [
        "teams-sdes-ice",
        "rfc4566-example",
        "rfc4475-body",
        "misc-lines",
        "fec-key",
        "gcm",
        "lf-only",
    ] {
        let data = fs::read(dir.join("sdp_parse").join(name)).expect(name);
        relay_sip::sdp::SessionDescription::parse(&data, &limits).expect(name);
    }
}
