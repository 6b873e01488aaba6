//! The WAV reader on any bytes (seed the corpus with real WAVs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hotline::fuzzing::fuzz_wav(data));
