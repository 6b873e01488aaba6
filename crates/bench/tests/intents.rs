//! `hotline bench intents --dialplan`: real recordings played as whole calls
//! against the shipped benchmark dialplan, through Silero VAD, the grammar
//! recogniser and the call machine. The figures must be plausible, so a
//! broken link anywhere in that pipeline fails here.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use hotline::asr::{EndpointConfig, SpeechConfig, SpeechStack};
use hotline::call::Event;
use hotline::intent::{IntentMatcher, TextMatcher};
use hotline_bench::calls::{CallBench, CallTally, Expected, Verdict};
use testkit::recordings::{self as data, TestUtterance, COMMAND_WORDS};
use testkit::testdata::testdata_dir;

fn bench_dialplan() -> PathBuf {
    shipped("words.toml")
}

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dialplans/bench").join(name)
}

fn speech() -> &'static SpeechStack {
    static S: OnceLock<SpeechStack> = OnceLock::new();
    S.get_or_init(|| {
        SpeechStack::load(&SpeechConfig { threads: 1, ..Default::default() }).expect("speech stack (run scripts/setup)")
    })
}

fn bench() -> CallBench<'static> {
    bench_of(&bench_dialplan())
}

fn bench_of(path: &Path) -> CallBench<'static> {
    let dialplan = hotline::dialplan::load(path).expect("benchmark dialplan is valid");
    let matcher: Arc<dyn IntentMatcher> = Arc::new(TextMatcher::default());
    CallBench::new(Arc::new(dialplan), matcher, speech()).expect("bench")
}

fn transfer_of(events: &[Event]) -> Option<&str> {
    events.iter().find_map(|e| match e {
        Event::Transfer { extension, .. } => Some(extension.as_str()),
        _ => None,
    })
}

#[test]
fn real_words_digits_and_noise_as_calls() {
    let bench = bench();
    let testdata = testdata_dir();
    let commands = data::speech_commands_phone(&testdata, 1).expect("speech commands");
    let endpoint = EndpointConfig::default();

    // One real speaker per menu word, each through 8 kHz µ-law.
    let mut words = CallTally::default();
    for (n, word) in COMMAND_WORDS.iter().enumerate() {
        let clip = commands.iter().find(|c| c.truth == *word).expect("a recording of every menu word");
        let intent = bench.intent_for_word(word).expect("every command word is a start-menu option");
        let outcome = bench.run(clip, &Expected::Intent(intent), None).expect("call runs");
        if outcome.verdict == Verdict::AtOnce {
            // Acting means taking the option's path: transfers 201..210,
            // except `go`, which first collects a digit nobody says here.
            if *word != "go" {
                assert_eq!(transfer_of(&outcome.events), Some(format!("{}", 201 + n).as_str()), "{}", clip.name);
            }
            assert!(!outcome.latencies.is_empty(), "{}: acted without a timed utterance", clip.name);
        }
        for l in &outcome.latencies {
            // Acted on at the pause (a clear answer) or at the end of the
            // utterance, never later.
            let within = |ms: u64| l.endpoint_ms >= ms as f64 && l.endpoint_ms <= ms as f64 + 100.0;
            assert!(within(endpoint.pause_ms) || within(endpoint.min_silence_ms), "{}: endpoint wait {l:?}", clip.name);
            assert!(l.decision_ms > 0.0 && l.decision_ms < 15_000.0, "{}: decision time {l:?}", clip.name);
        }
        words.add(&outcome);
    }
    assert_eq!(words.calls, 10);
    assert!(words.at_once >= 7, "only {} of 10 clean menu words acted on at once", words.at_once);
    assert_eq!(words.wrong_actions, 0, "a clean menu word led to the wrong action");

    // FSDD digits in the collect step: the digit travels with the transfer.
    let fsdd = data::fsdd_test(&testdata, 1).expect("fsdd");
    let mut digits = CallTally::default();
    for d in ["3", "5", "8"] {
        let word = data::DIGIT_WORDS[d.parse::<usize>().unwrap()];
        let clip = fsdd.iter().find(|c| c.truth == word).expect("an FSDD recording of the digit");
        let outcome = bench.run(clip, &Expected::Digits(d.into()), None).expect("call runs");
        if outcome.verdict == Verdict::AtOnce {
            assert!(outcome.events.iter().any(|e| matches!(e, Event::Collect { value, .. } if value == d)));
            assert_eq!(transfer_of(&outcome.events), Some("210"), "{}", clip.name);
        }
        digits.add(&outcome);
    }
    assert!(digits.at_once >= 2, "only {} of 3 FSDD digits collected right", digits.at_once);

    // Silence and real background noise never act or transfer.
    let tracks = data::noise_tracks(&testdata).expect("noise");
    let mut quiet = data::noise_clips(&tracks, 2, 1500);
    quiet.push(TestUtterance { name: "silence".into(), samples: vec![0.0; 16_000], truth: String::new() });
    for clip in &quiet {
        let outcome = bench.run(clip, &Expected::OutOfMenu, None).expect("call runs");
        assert_eq!(outcome.verdict, Verdict::Rejected, "{}: {:?}", clip.name, outcome.events);
        assert_eq!(transfer_of(&outcome.events), None, "{}", clip.name);
    }
}

/// "For your account balance, press 3": real callers who say "three"
/// instead are transferred as if they had pressed it, and the menu's other
/// words (the command words, some close to digits) are not taken for keys.
#[test]
fn real_digits_said_for_keys_choose_the_keys_options() {
    let keys_menu = bench_of(&shipped("keys.toml"));
    let commands = data::speech_commands_phone(&testdata_dir(), 1).expect("speech commands");
    let mut keys = CallTally::default();
    for (d, word) in data::DIGIT_WORDS.iter().enumerate() {
        let clip = commands.iter().find(|c| c.truth == *word).expect("a recording of every digit");
        let intent = keys_menu.intent_for_spoken_key(word).expect("every key is an option");
        let outcome = keys_menu.run(clip, &Expected::Intent(intent), None).expect("call runs");
        // Transferred where the key leads, or asked again; never elsewhere.
        let extension = if d == 0 { "100".to_string() } else { format!("20{d}") };
        let transfer = transfer_of(&outcome.events);
        assert!(transfer.is_none() || transfer == Some(extension.as_str()), "{}: {transfer:?}", clip.name);
        keys.add(&outcome);
    }
    assert!(keys.at_once >= 8, "only {} of 10 digits said for keys acted on at once", keys.at_once);

    let mut others = CallTally::default();
    for word in COMMAND_WORDS {
        assert_eq!(keys_menu.intent_for_spoken_key(word), None);
        let clip = commands.iter().find(|c| c.truth == word).expect("a recording of every command word");
        others.add(&keys_menu.run(clip, &Expected::OutOfMenu, None).expect("call runs"));
    }
    assert!(others.false_accepts <= 1, "{} of 10 command words acted on as keys", others.false_accepts);
    // Where the menu does not take keys said aloud, digits are no keys.
    assert_eq!(bench().intent_for_spoken_key("three"), None);
}

#[test]
fn out_of_menu_speech_is_scored_as_a_false_accept_when_acted_on() {
    let bench = bench();
    // "yes" is a menu word; played as out-of-menu speech, acting on it is
    // exactly what the false-accept column counts.
    let commands = data::speech_commands_phone(&testdata_dir(), 1).expect("speech commands");
    let yes = commands.iter().find(|c| c.truth == "yes").expect("a yes");
    let outcome = bench.run(yes, &Expected::OutOfMenu, None).expect("call runs");
    assert!(matches!(outcome.verdict, Verdict::FalseAccept | Verdict::Asked), "{:?}", outcome.events);
    // Too long for a bench clip: an error naming the clip, no panic.
    let long = TestUtterance { name: "long.wav".into(), samples: vec![0.0; 16_000 * 31], truth: "yes".into() };
    let err = bench.run(&long, &Expected::Intent("yes".into()), None).unwrap_err();
    assert!(err.contains("long.wav"), "{err}");
}

#[test]
fn cli_prints_the_call_table_for_the_shipped_dialplan() {
    let exe = env!("CARGO_BIN_EXE_hotline-bench");
    let (plan, diagnostics) = hotline::dialplan::load_with_warnings(&bench_dialplan());
    assert!(plan.is_some(), "the shipped benchmark dialplan has errors: {diagnostics:?}");
    let out = Command::new(exe)
        .args(["intents", "--every", "200", "--dialplan"])
        .arg(bench_dialplan())
        .output()
        .expect("hotline-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("| set | noise | calls | correct at once | confirmed |"), "{stdout}");
    for row in ["| Speech Commands words", "| FSDD digits", "| out of menu"] {
        let line = stdout.lines().find(|l| l.starts_with(row)).unwrap_or_else(|| panic!("no {row} row in\n{stdout}"));
        assert!(!line.contains("| 0 |"), "no calls in {line}");
        // Spoken words are recognised, so they have a latency (noise and
        // silence may have none).
        if !row.contains("out of menu") {
            assert!(!line.trim_end().ends_with("— |"), "no latency in {line}");
        }
    }
    let bad = Command::new(exe)
        .args(["intents", "--dialplan", "no/such/dialplan.toml"])
        .output()
        .expect("hotline-bench runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no/such/dialplan.toml"));
}

/// The recogniser table (`bench intents` without `--dialplan`): every set at
/// every noise level, and the best-scoring answer is right at least as often
/// as the recogniser accepts the right answer (it is the ceiling of any
/// rejection rule, and the README quotes it as such).
#[test]
fn cli_prints_the_recogniser_table() {
    let out = Command::new(env!("CARGO_BIN_EXE_hotline-bench"))
        .args(["intents", "--every", "100"])
        .output()
        .expect("hotline-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let pct = |cell: &str| -> Option<f64> { cell.trim().strip_suffix(" %")?.parse().ok() };
    for set in ["FSDD digits", "Speech Commands via µ-law", "Speech Commands at 16 kHz", "out-of-grammar"] {
        for noise in ["clean", "12 dB", "6 dB"] {
            let cells: Vec<&str> = stdout
                .lines()
                .find(|l| l.starts_with(&format!("| {set}")) && l.contains(&format!("| {noise} |")))
                .unwrap_or_else(|| panic!("no {set} / {noise} row in\n{stdout}"))
                .split('|')
                .map(str::trim)
                .collect();
            // "", set, noise, clips, open, no priors, constrained, best, p50, p95, CPU, "".
            assert_eq!(cells.len(), 12, "{cells:?}");
            assert!(cells[10].parse::<u64>().is_ok_and(|ms| ms > 0), "no CPU time in {cells:?}");
            assert!(cells[3].parse::<usize>().is_ok_and(|n| n > 0), "no clips in {cells:?}");
            let accepted = pct(cells[6]).unwrap_or_else(|| panic!("no accuracy in {cells:?}"));
            if set == "out-of-grammar" {
                assert_eq!(cells[7], "—", "{cells:?}");
            } else {
                let best = pct(cells[7]).unwrap_or_else(|| panic!("no best-scoring column in {cells:?}"));
                assert!(best >= accepted, "{cells:?}");
            }
        }
    }
}

/// The model and the encoder's context are chosen on the command line, and
/// `--clean-only` prints one clean row per phone-band set.
#[test]
fn cli_compares_models_and_contexts() {
    let out = Command::new(env!("CARGO_BIN_EXE_hotline-bench"))
        .args(["intents", "--every", "100", "--model", "whisper-base", "--context-ms", "1000", "--clean-only"])
        .output()
        .expect("hotline-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Model: whisper-base") && stdout.contains("encoder context 1000 ms"), "{stdout}");
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| set")).collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    assert!(rows.iter().all(|r| r.contains("| clean |") && !r.contains("16 kHz")), "{stdout}");
    let bad = Command::new(env!("CARGO_BIN_EXE_hotline-bench")).args(["intents", "--model", "tiny"]).output().unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("\"whisper-tiny.en\" | \"whisper-base\""));
}
