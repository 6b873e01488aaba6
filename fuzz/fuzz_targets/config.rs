//! The server config parser on mutated configs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hotline::fuzzing::fuzz_config(data));
