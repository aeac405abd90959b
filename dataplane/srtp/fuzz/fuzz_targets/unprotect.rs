//! Fuzzes SRTP/SRTCP unprotect: `cargo fuzz run unprotect` (from dataplane/srtp).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    relay_srtp::fuzzing::unprotect_input(data);
});
