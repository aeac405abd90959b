//! Fuzzes a relay with calls installed on arbitrary frames: `cargo fuzz run relay_process`
//! (from dataplane/proto).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    relay_proto::fuzzing::relay_process(data);
});
