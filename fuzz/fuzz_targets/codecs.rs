//! Every transport's media codec, any messages in any order.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hotline::fuzzing::fuzz_codecs(data));
