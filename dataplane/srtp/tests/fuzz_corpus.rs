//! Replays the fuzz corpus (and a few thousand generated inputs) through the fuzz target's
//! body, so CI exercises it on stable Rust without libFuzzer.

use std::fs;
use std::path::Path;

#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/unprotect");
    let mut count = 0;
    for entry in fs::read_dir(&dir).expect("corpus directory") {
        let data = fs::read(entry.expect("entry").path()).expect("corpus file");
        relay_srtp::fuzzing::unprotect_input(&data);
        count += 1;
    }
    assert!(count > 0, "empty corpus in {}", dir.display());
    // Deterministic pseudo-random inputs of every length up to 300 bytes.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in 0..3000usize {
        let data: Vec<u8> = (0..len % 300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        relay_srtp::fuzzing::unprotect_input(&data);
    }
}
