//! The fuzz bodies as property tests on every `cargo test`: proptest hands
//! each one random bytes, a fixed number of times from a fixed seed, so a
//! run is repeatable (`PROPTEST_CASES` and `PROPTEST_RNG_SEED` change that
//! for a longer or different run; `cargo fuzz` goes further, see
//! `docs/fuzzing.md`). Below them, the inputs that once broke a promise.
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

use super::*;

/// `cases` runs from a fixed seed, unless the environment asks otherwise.
fn config(cases: u32) -> ProptestConfig {
    let from_env = ProptestConfig::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() { from_env.cases } else { cases };
    let rng_seed = match from_env.rng_seed {
        RngSeed::Random => RngSeed::Fixed(0x6f74_6c69_6e65),
        chosen => chosen,
    };
    // Failures are kept as named regression tests below, not in files.
    ProptestConfig { cases, rng_seed, failure_persistence: None, ..from_env }
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

proptest! {
    #![proptest_config(config(400))]

    /// Replaces the hand-written garbage loop of `pbx::transport` (4 codecs
    /// × 3000 messages, no assertion but "no panic"): all five codecs now,
    /// with bounds on what each message yields.
    #[test]
    fn codecs_never_panic_and_yield_bounded_events(data in bytes(2048)) {
        fuzz_codecs(&data);
    }

    #[test]
    fn audiosocket_framer_gives_the_same_frames_whatever_the_reads(data in bytes(512)) {
        fuzz_audiosocket_framer(&data);
    }

    #[test]
    fn esl_reader_gives_the_same_messages_whatever_the_reads(data in bytes(512)) {
        fuzz_esl(&data);
    }

    #[test]
    fn http_head_parser_takes_any_bytes(data in bytes(512)) {
        fuzz_http_head(&data);
    }
}

proptest! {
    // Dialplans and configs are checked whole (a WAV prompt is read), so
    // fewer cases of them.
    #![proptest_config(config(150))]

    #[test]
    fn dialplan_errors_point_into_the_text(data in bytes(64)) {
        fuzz_dialplan(&data);
    }

    #[test]
    fn config_errors_point_into_the_text(data in bytes(64)) {
        fuzz_config(&data);
    }

    #[test]
    fn wav_reader_takes_truncated_and_mutated_recordings(data in bytes(64)) {
        let mut e = Entropy::new(&data);
        let seeds = real_wavs();
        let seed: &Vec<u8> = e.pick(&seeds);
        fuzz_wav(&mutate_wav(&mut e, seed));
    }
}

proptest! {
    #![proptest_config(config(60))]

    /// Replaces the hand-written loop of `call::tests` (60 calls of up to
    /// 250 inputs): the same inputs and more (any key, any confidence,
    /// inputs before the start, a PBX that never reports playback), and the
    /// same promises checked after every input.
    #[test]
    fn call_machine_never_leaves_a_caller_stuck(data in bytes(3000)) {
        fuzz_call(&data);
    }
}

/// Small real recordings: 8 kHz digits and 16 kHz commands.
fn real_wavs() -> Vec<Vec<u8>> {
    // As testkit::testdata::testdata_dir, which unit tests cannot use.
    let dir = std::env::var_os("HOTLINE_TESTDATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata"));
    ["fsdd/0_jackson_0.wav", "speech_commands/go_b737ee80_nohash_1.wav"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}")))
        .collect()
}

#[test]
fn real_wavs_read_as_they_are() {
    for wav in real_wavs() {
        fuzz_wav(&wav);
        assert!(crate::audio::wav::parse_wav(&wav, Some("wav")).is_ok());
    }
}

/// Found by `config_errors_point_into_the_text`: the column
/// of a syntax error counted bytes, so after accented letters it pointed
/// past the end of the line (and a span inside a letter would panic).
#[test]
fn config_error_columns_count_characters() {
    let text = "[esl]\naddress = \"éééééééééé\u{1}\"\n";
    let err = crate::config::ServerConfig::from_toml_str(text, None, &|_| None).unwrap_err();
    assert!(err.0[0].to_string().starts_with("config:2:22: "), "{err}");
}
