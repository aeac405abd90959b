//! Fuzzes the SDP parser and writer: `cargo fuzz run sdp_parse` (from control/sip).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    relay_sip::fuzzing::sdp_parse_input(data);
});
