//! The HTTP request head parser of the listener.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hotline::fuzzing::fuzz_http_head(data));
