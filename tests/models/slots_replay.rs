//! One real spoken sentence chooses an option and fills its slot, through
//! `hotline replay`: pocketsphinx's "go forward ten meters" (a real
//! recording) against a dialplan built from the words it contains.
use std::process::Command;

use hotline::audio::{f32_to_i16, read_wav, write_wav};
use testkit::testdata::testdata_dir;

const RATE: u32 = 8000;

const DIALPLAN: &str = r#"
[operator]
extension = "100"

[slots.distance]
kind = "number"

[slots.direction.values]
forward = ["forward", "ahead"]
back = ["back", "backward"]

[menus.main]
prompt = "Where to?"

[menus.main.options.go]
phrases = ["go {direction}", "go"]
dtmf = "1"
slots = ["direction", "distance"]
transfer = "200"

[menus.main.options.stop]
phrases = ["stop"]
dtmf = "2"
transfer = "300"
"#;

#[test]
fn a_real_sentence_fills_the_option_and_its_slots() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("robot.toml");
    std::fs::write(&plan, DIALPLAN).unwrap();
    // The caller waits a second, says the sentence, then waits on the line.
    let speech = read_wav(&testdata_dir().join("pocketsphinx/goforward.wav")).expect("testdata");
    let mut samples = vec![0i16; RATE as usize];
    samples.extend(f32_to_i16(&speech.to_f32_at(RATE).unwrap()));
    samples.extend(vec![0i16; 3 * RATE as usize]);
    let wav = dir.path().join("call.wav");
    write_wav(&wav, RATE, &samples).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["replay", "--max-seconds", "30", "--dialplan"])
        .arg(&plan)
        .arg(&wav)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run hotline");
    let timeline = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{timeline}\n{}", String::from_utf8_lossy(&out.stderr));
    for wanted in [
        r#""type":"intent""#,
        r#""intent":"go""#,
        r#""type":"slot","t_ms""#,
        r#""slot":"direction","value":"forward""#,
        r#""slot":"distance","value":"10""#,
        r#""type":"transfer""#,
        r#""extension":"200""#,
    ] {
        assert!(timeline.contains(wanted), "no {wanted} in the timeline:\n{timeline}");
    }
    // Nothing was asked: both slots came from the one sentence.
    assert!(!timeline.contains("Which direction"), "{timeline}");
}

/// `hotline transcribe --grammar MENU@file` reports what a call would take
/// from the same sentence: the option and the slot values it names.
#[test]
fn transcribe_with_a_menu_grammar_reports_the_slots_a_call_would_fill() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("robot.toml");
    std::fs::write(&plan, DIALPLAN).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .arg("transcribe")
        .arg("--grammar")
        .arg(format!("main@{}", plan.display()))
        .arg(testdata_dir().join("pocketsphinx/goforward.wav"))
        .output()
        .expect("run hotline");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let line: serde_json::Value = serde_json::from_str(stdout.lines().next().expect("one utterance")).unwrap();
    assert_eq!(line["text"], "go", "{line}");
    assert_eq!(line["slots"]["direction"], "forward", "{line}");
    assert_eq!(line["slots"]["distance"], "10", "{line}");
}
