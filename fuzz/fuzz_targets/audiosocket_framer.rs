//! The AudioSocket framer: the same frames whatever the reads.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hotline::fuzzing::fuzz_audiosocket_framer(data));
