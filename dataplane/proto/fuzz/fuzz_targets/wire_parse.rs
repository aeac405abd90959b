//! Fuzzes every wire parser on arbitrary bytes: `cargo fuzz run wire_parse` (from dataplane/proto).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    relay_proto::fuzzing::wire_parse(data);
});
