//! The call machine under any sequence of inputs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hotline::fuzzing::fuzz_call(data));
