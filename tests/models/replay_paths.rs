//! Recorded calls against the shipped dialplan, through `hotline replay`:
//! the paths callers take by voice, by keys, and when things go wrong.
//!
//! Caller audio is built from the real recordings in ../shared/testdata
//! (FSDD digits, Speech Commands "yes", CMU ARCTIC sentences). Words no
//! recording holds ("billing", "agent", "account balance") are spoken by the
//! TTS voice: fine for testing paths, never used for accuracy figures.
use std::path::{Path, PathBuf};
use std::process::Command;

use hotline::asr::models::ModelPaths;
use hotline::audio::{read_wav, write_wav};
use hotline::dialplan::Prompt;
use hotline::prompts::{default_cache_dir, PromptRenderer};
use testkit::testdata::testdata_dir;

const RATE: u32 = 8000;

/// A caller's side of a call, assembled piece by piece at 8 kHz.
struct CallerAudio {
    samples: Vec<i16>,
    renderer: PromptRenderer,
}

impl CallerAudio {
    fn new() -> Self {
        let renderer = PromptRenderer::new(&ModelPaths::default_location(), default_cache_dir());
        CallerAudio { samples: Vec::new(), renderer }
    }

    fn silence_until(mut self, secs: f32) -> Self {
        let until = (secs * RATE as f32) as usize;
        assert!(
            until >= self.samples.len(),
            "speech overlaps: {} s already used",
            self.samples.len() as f32 / RATE as f32
        );
        self.samples.resize(until, 0);
        self
    }

    fn silence(mut self, secs: f32) -> Self {
        self.samples.extend(std::iter::repeat_n(0, (secs * RATE as f32) as usize));
        self
    }

    fn tts(mut self, text: &str) -> Self {
        let audio = self
            .renderer
            .render(&Prompt { text: text.into(), wav: None }, RATE)
            .expect("TTS voice (run scripts/setup)");
        self.samples.extend_from_slice(&audio);
        self
    }

    fn clip(mut self, relative: &str) -> Self {
        let a = read_wav(&testdata_dir().join(relative)).expect(relative);
        let x = a.to_f32_at(RATE).unwrap();
        self.samples.extend(hotline::audio::f32_to_i16(&x));
        self
    }

    /// Spoken digits from FSDD, 0.2 s apart so they stay one utterance.
    fn digits(mut self, clips: &[&str]) -> Self {
        for (i, c) in clips.iter().enumerate() {
            if i > 0 {
                self = self.silence(0.2);
            }
            self = self.clip(&format!("fsdd/{c}.wav"));
        }
        self
    }

    fn save(self, dir: &Path, name: &str, expect: &str) {
        write_wav(&dir.join(format!("{name}.wav")), RATE, &self.samples).unwrap();
        std::fs::write(dir.join(format!("{name}.expect.toml")), expect).unwrap();
    }
}

fn replay_dir(dir: &Path) -> (String, String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["replay", "--dialplan", "dialplans/hotline.toml"])
        .arg(dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run hotline");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn caller_paths_through_the_shipped_dialplan() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // Says "billing" over the welcome prompt: the prompt stops, billing menu.
    CallerAudio::new().silence(2.0).tts("Billing.").silence(4.0).save(
        d,
        "billing_by_voice",
        r#"expect = ["barge_in", "intent:main/billing", "prompt:billing"]"#,
    );
    // Presses 1 instead.
    CallerAudio::new().silence(4.0).save(
        d,
        "billing_by_keys",
        "dtmf = [\"1@1.5\"]\nexpect = [\"dtmf:1\", \"intent:main/billing\", \"prompt:billing\"]",
    );
    // Account balance: speaks the account number (real FSDD digits), hears
    // it read back, says a real "yes", and is put through with the number.
    CallerAudio::new()
        .silence(1.5)
        .tts("Account balance.")
        .silence_until(11.0)
        .digits(&["4_george_1", "5_jackson_2", "1_nicolas_3", "2_theo_4", "3_george_0", "6_jackson_1"])
        .silence_until(18.0)
        .clip("speech_commands/yes_1acc97de_nohash_0.wav")
        .silence(8.0)
        .save(
            d,
            "account_number_spoken",
            r#"expect = ["intent:main/account_balance", "collect:account_number=451236", "transfer:210"]"#,
        );
    // In a sub-menu (reached by keys), asks for a person in a whole
    // sentence; if the machine asks "did you mean agent?", a real "yes".
    CallerAudio::new()
        .silence(4.0)
        .tts("I want to talk to an agent.")
        .silence_until(8.5)
        .clip("speech_commands/yes_1acc97de_nohash_0.wav")
        .silence(6.0)
        .save(
        d,
        "agent_from_submenu",
        "dtmf = [\"2@1\"]\nexpect = [\"intent:main/technical_support\", \"intent:tech_support/agent\", \"transfer:100\"]",
    );
    // In the same sub-menu, reports an outage and names the service that is
    // down; the value travels with the transfer.
    CallerAudio::new()
        .silence(4.0)
        .tts("I want to report an outage.")
        .silence_until(9.0)
        .tts("Television.")
        .silence(6.0)
        .save(
            d,
            "outage_service_by_voice",
            "dtmf = [\"2@1\"]\nexpect = [\"intent:main/technical_support\", \"intent:tech_support/report_outage\", \"collect:service=tv\", \"transfer:340\"]",
        );
    // Says nothing: reprompted, then handed to a human.
    CallerAudio::new().silence(1.0).save(
        d,
        "no_input_escalates",
        r#"expect = ["no_input", "no_input", "transfer:100"]"#,
    );
    // Talks about something else entirely: guided reprompts, then a human.
    CallerAudio::new()
        .silence(2.0)
        .clip("cmu_arctic/arctic_a0010.wav")
        .silence(6.0)
        .clip("cmu_arctic/arctic_aew_a0003.wav")
        .silence(6.0)
        .clip("cmu_arctic/arctic_axb_a0006.wav")
        .silence(6.0)
        .save(d, "no_match_escalates", r#"expect = ["no_match", "no_match", "no_match", "transfer:100"]"#);

    let (stdout, stderr, code) = replay_dir(d);
    assert!(stdout.contains("7 passed, 0 failed"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(code, 0, "{stderr}");
}

/// The same recording replays to the same timeline, and a wrong expectation
/// fails with a non-zero exit.
#[test]
fn replay_is_deterministic_and_expectations_can_fail() {
    let dir = tempfile::tempdir().unwrap();
    let wav: PathBuf = dir.path().join("call.wav");
    CallerAudio::new().silence(2.0).tts("Technical support.").silence(5.0).save(
        dir.path(),
        "call",
        "expect = [\"transfer:999\"]",
    );
    let run = |expect: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotline"));
        cmd.args(["replay", "--dialplan", "dialplans/hotline.toml"]).arg(&wav).current_dir(env!("CARGO_MANIFEST_DIR"));
        if expect {
            cmd.arg("--expect").arg(dir.path().join("call.expect.toml"));
        }
        cmd.output().unwrap()
    };
    let (a, b) = (run(false), run(false));
    assert_eq!(a.status.code(), Some(0));
    let timeline = String::from_utf8_lossy(&a.stdout);
    assert!(timeline.contains(r#""intent":"technical_support""#), "{timeline}");
    assert_eq!(a.stdout, b.stdout, "two replays differ");
    let failed = run(true);
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("transfer:999"));
}

/// Replayed prompts last as long as their rendered audio, not an estimate
/// per character, so a silent caller's no-input comes exactly the menu's
/// timeout after the real end of the greeting.
#[test]
fn replay_times_prompts_by_their_rendered_audio() {
    let dir = tempfile::tempdir().unwrap();
    let greeting = "Thank you for calling. Say sales, or press 1. To talk to a person, say agent.";
    let plan = dir.path().join("timed.toml");
    let text = format!(
        "[operator]\nextension = \"100\"\n[menus.main]\nprompt = \"{greeting}\"\nno_input_timeout = 5\n\
         [menus.main.options.sales]\nphrases = [\"sales\"]\ndtmf = \"1\"\ntransfer = \"200\"\n"
    );
    std::fs::write(&plan, text).unwrap();
    let wav = dir.path().join("silent.wav");
    write_wav(&wav, RATE, &vec![0i16; RATE as usize]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["replay", "--max-seconds", "20", "--dialplan"])
        .arg(&plan)
        .arg(&wav)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run hotline");
    let timeline = String::from_utf8_lossy(&out.stdout);
    let renderer = PromptRenderer::new(&ModelPaths::default_location(), default_cache_dir());
    let spoken_ms = renderer.duration_ms(&Prompt { text: greeting.into(), wav: None }).expect("TTS voice");
    let no_input = format!(r#"{{"type":"no_input","t_ms":{},"#, spoken_ms + 5_000);
    assert!(timeline.contains(&no_input), "expected {no_input} (greeting renders to {spoken_ms} ms):\n{timeline}");
}

/// Told "press 1 for billing, 2 for technical support", callers say the
/// key instead, bare or framed as the prompt put it. The voice is the TTS
/// one (no recording says "option two"): the path, not accuracy.
#[test]
fn keys_said_aloud_bare_or_framed_choose_the_keys_option() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, said, intent) in [
        ("bare", "Four.", "opening_hours"),
        ("press", "Press one.", "billing"),
        ("option", "Option two.", "technical_support"),
        ("number", "Number one.", "billing"),
    ] {
        let expect = format!(r#"expect = ["intent:main/{intent}"]"#);
        CallerAudio::new().silence_until(12.0).tts(said).silence(4.0).save(d, name, &expect);
    }
    let (stdout, stderr, code) = replay_dir(d);
    assert!(stdout.contains("4 passed, 0 failed"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(code, 0, "{stderr}");
}
