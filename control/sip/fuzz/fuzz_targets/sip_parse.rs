//! Fuzzes the SIP parser as datagrams and as a chunked stream: `cargo fuzz run sip_parse`
//! (from control/sip).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    relay_sip::fuzzing::sip_parse_input(data);
});
