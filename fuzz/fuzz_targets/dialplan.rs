//! The dialplan checker on mutated dialplans.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hotline::fuzzing::fuzz_dialplan(data));
