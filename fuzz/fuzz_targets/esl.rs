//! The FreeSWITCH event-socket reader and event parser.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hotline::fuzzing::fuzz_esl(data));
