//! Replays of calls built from real recordings, through the real speech
//! stack (Silero VAD, Whisper tiny.en).
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::*;
use crate::asr::{SpeechConfig, SpeechStack};
use crate::audio::{f32_to_i16, resample, write_wav};
use crate::call::test_support::test_dialplan;

fn speech() -> &'static SpeechStack {
    static STACK: OnceLock<SpeechStack> = OnceLock::new();
    STACK.get_or_init(|| {
        SpeechStack::load(&SpeechConfig { threads: 1, ..Default::default() })
            .expect("speech models (run scripts/setup)")
    })
}

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata").join(rel)
}

fn clip16k(rel: &str) -> Vec<f32> {
    read_wav(&testdata(rel)).expect("test clip").to_f32_at(16_000).unwrap()
}

fn silence(ms: u64) -> Vec<f32> {
    vec![0.0; (ms * 16) as usize]
}

/// A caller leg at telephone rate (8 kHz) from 16 kHz pieces.
fn telephone(parts: &[Vec<f32>]) -> Audio {
    let wide: Vec<f32> = parts.concat();
    Audio { rate: 8_000, samples: f32_to_i16(&resample(&wide, 16_000, 8_000).unwrap()), downmixed_from: None }
}

/// Where speech begins in a clip: the first of five 10 ms windows in a row
/// within 20 dB of the clip's loudest window (a lone click does not count).
fn onset_ms(samples: &[f32]) -> u64 {
    let levels: Vec<f32> = samples.chunks(160).map(crate::audio::rms_dbfs).collect();
    let peak = levels.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let loud: Vec<bool> = levels.iter().map(|&l| l > peak - 20.0).collect();
    loud.windows(5).position(|w| w.iter().all(|&x| x)).expect("the clip has speech") as u64 * 10
}

fn matcher() -> Arc<dyn IntentMatcher> {
    Arc::new(crate::intent::TextMatcher::default())
}

#[test]
fn speech_during_a_barge_in_prompt_stops_it_at_the_onset() {
    let word = clip16k("speech_commands/go_022cd682_nohash_0.wav");
    let onset = 2_000 + onset_ms(&word);
    let audio = telephone(&[silence(2_000), word, silence(1_000)]);
    // The welcome prompt plays for 6 s, so the caller speaks over it.
    let events = replay_call(
        Arc::new(test_dialplan()),
        matcher(),
        speech(),
        &audio,
        &[],
        &|_| 6_000,
        &ReplayOptions { max_ms: 12_000 },
    )
    .unwrap();
    let barge_in = events
        .iter()
        .find_map(|e| match e {
            Event::BargeIn { t_ms } => Some(*t_ms),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no barge-in in:\n{}", timeline_json(&events)));
    assert!(barge_in.abs_diff(onset) <= 300, "barge-in at {barge_in} ms, speech onset at {onset} ms");
    // The utterance was recognised after the barge-in, on the call clock.
    let utterance = events.iter().find_map(|e| match e {
        Event::Utterance { start_ms, t_ms, .. } => Some((*start_ms, *t_ms)),
        _ => None,
    });
    let (start, t) = utterance.unwrap_or_else(|| panic!("no utterance in:\n{}", timeline_json(&events)));
    assert!(start.abs_diff(onset) <= 300 && t > barge_in, "utterance {start}..{t}, onset {onset}");
}

/// Keys 3, 4 5 1 2 #, 1: balance, account number, confirmed, transferred.
fn balance_keys() -> Vec<(char, u64)> {
    let mut keys = vec![('3', 1_500)];
    keys.extend("4512#".chars().enumerate().map(|(i, k)| (k, 7_000 + 400 * i as u64)));
    keys.push(('1', 12_000));
    keys
}

#[test]
fn key_driven_calls_replay_identically_and_fast() {
    // Real kitchen noise under the whole call, well below speech level.
    let noise: Vec<f32> = clip16k("noise/doing_the_dishes.wav").iter().take(16_000 * 20).map(|s| s * 0.05).collect();
    let audio = telephone(&[noise]);
    let plan = Arc::new(test_dialplan());
    let run = || {
        replay_call(
            Arc::clone(&plan),
            matcher(),
            speech(),
            &audio,
            &balance_keys(),
            &prompt_duration_ms,
            &ReplayOptions::default(),
        )
        .unwrap()
    };
    speech(); // load the models before timing
    let first = run();
    let started = Instant::now();
    let second = run();
    let elapsed = started.elapsed();
    assert_eq!(timeline_json(&first), timeline_json(&second));
    let expected =
        Expectation::parse("expect = [\"intent:main/balance\", \"collect:account=4512\", \"transfer:3000\"]", false)
            .unwrap();
    check_expectations(&first, &expected).unwrap();
    let call_ms = match first.last() {
        Some(Event::Transfer { t_ms, .. }) => *t_ms,
        other => panic!("call should end with the transfer, ended with {other:?}"),
    };
    assert!(
        elapsed.as_millis() * 5 < call_ms as u128,
        "replaying a {call_ms} ms call took {elapsed:?}: not much faster than real time"
    );
}

#[test]
fn silence_plays_out_to_the_operator() {
    let audio = telephone(&[silence(1_000)]);
    let events = replay_call(
        Arc::new(test_dialplan()),
        matcher(),
        speech(),
        &audio,
        &[],
        &prompt_duration_ms,
        &ReplayOptions::default(),
    )
    .unwrap();
    let expected = Expectation::parse(
        "expect = [\"prompt:main\", \"no_input\", \"no_input\", \"no_input\", \"transfer:1000\"]",
        false,
    )
    .unwrap();
    check_expectations(&events, &expected).unwrap();
}

#[test]
fn a_directory_of_calls_is_replayed_against_its_expectations() {
    let dir = tempfile::tempdir().unwrap();
    let quiet = f32_to_i16(&resample(&silence(2_000), 16_000, 8_000).unwrap());
    for name in ["balance", "wrong", "no_expectation"] {
        write_wav(&dir.path().join(format!("{name}.wav")), 8_000, &quiet).unwrap();
    }
    let keys = |keys: &[(char, u64)]| -> String {
        keys.iter().map(|(k, t)| format!("\"{k}@{}\"", *t as f64 / 1000.0)).collect::<Vec<_>>().join(", ")
    };
    std::fs::write(
        dir.path().join("balance.expect.toml"),
        format!("dtmf = [{}]\nexpect = [\"collect:account=4512\", \"transfer:3000\"]\n", keys(&balance_keys())),
    )
    .unwrap();
    std::fs::write(dir.path().join("wrong.expect.toml"), "dtmf = [\"2@1\"]\nexpect = [\"transfer:9999\"]\n").unwrap();
    let mut out = Vec::new();
    let summary = replay_dir(
        dir.path(),
        Arc::new(test_dialplan()),
        matcher(),
        speech(),
        &prompt_duration_ms,
        &ReplayOptions::default(),
        &mut out,
    )
    .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(summary, DirSummary { passed: 1, failed: 1, skipped: 1 }, "{out}");
    assert!(out.contains("ok   balance.wav"), "{out}");
    assert!(out.contains("FAIL wrong.wav: step 1 of 1 \"transfer:9999\" not found"), "{out}");
    assert!(out.trim_end().ends_with("1 passed, 1 failed"), "{out}");
}

/// Keys enter the account number, a real spoken "yes" confirms the
/// read-back: the speech path decides the call.
#[test]
fn a_spoken_yes_confirms_the_account_number() {
    let yes = clip16k("speech_commands/yes_105a0eea_nohash_0.wav");
    // The read-back starts at 8.6 s and lasts about 2.5 s; answer after it.
    let audio = telephone(&[silence(11_500), yes, silence(500)]);
    let keys: Vec<(char, u64)> = balance_keys().into_iter().filter(|&(_, t)| t < 12_000).collect();
    let events = replay_call(
        Arc::new(test_dialplan()),
        matcher(),
        speech(),
        &audio,
        &keys,
        &prompt_duration_ms,
        &ReplayOptions::default(),
    )
    .unwrap();
    let expected =
        Expectation::parse("expect = [\"intent:balance\", \"collect:account=4512\", \"transfer:3000\"]", false)
            .unwrap();
    check_expectations(&events, &expected).unwrap();
    assert!(events.iter().any(|e| matches!(e, Event::Collect { confirmed: true, .. })), "{}", timeline_json(&events));
}
