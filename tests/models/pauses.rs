//! Callers pause in the middle of an answer: the real sphinx4 recording of
//! a 15-digit number read in three groups ("1 0 0 0 1 … 9 0 2 1 0 … 0 1 8 0
//! 3", about 1.3 s between groups). Each group alone is too short for the
//! step, so the call holds it for the menu's `incomplete_timeout` (2 s by
//! default) and hears the next group with it: one number, not three
//! reprompts or a number made up to the step's length.
use std::process::Command;

use testkit::testdata::testdata_dir;

const RECORDING: &str = "sphinx4/digits_10001-90210-01803.wav";
const NUMBER: &str = "100019021001803";

const DIALPLAN: &str = r#"
[operator]
extension = "100"

[menus.main]
prompt = "Press 1 to give your customer number."

[menus.main.options.customer]
phrases = ["customer number"]
dtmf = "1"
transfer = "200"

[menus.main.options.customer.collect]
variable = "customer"
prompt = "Please say your fifteen digit customer number."
min_digits = 15
max_digits = 15
"#;

#[test]
fn a_number_read_in_groups_is_heard_as_one_answer_in_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("customers.toml");
    std::fs::write(&plan, DIALPLAN).unwrap();
    // The key at 0.5 s; the number from 6 s, after the step's question.
    const LEAD_MS: u64 = 6_000;
    let timeline = super::replay_recording(&plan, RECORDING, LEAD_MS, &["--dtmf", "1@0.5"]);
    let events: Vec<serde_json::Value> = timeline.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // The three groups, as the recording has them (sphinx4 TRANSCRIPTS).
    let (first_starts, last_ends) = (LEAD_MS + 800, LEAD_MS + 8_000);
    let first = events.iter().find(|e| e["type"] == "utterance").expect(&timeline);
    let span = (first["start_ms"].as_u64().unwrap(), first["end_ms"].as_u64().unwrap());
    assert!(
        span.0.abs_diff(first_starts) < 400 && span.1.abs_diff(last_ends) < 400,
        "the number is one answer, from the first group to the last: {span:?}\n{timeline}"
    );
    // Nothing was said to the caller between the groups.
    let first_t = first["t_ms"].as_u64().unwrap();
    assert!(
        !events
            .iter()
            .any(|e| e["type"] == "prompt" && e["t_ms"].as_u64() > Some(1_000) && e["t_ms"].as_u64() < Some(first_t)),
        "the caller was cut off:\n{timeline}"
    );
}

/// `transcribe --grammar digits:15` hears the file as a call would: one
/// line with the whole number (it printed three lines before, two of them
/// numbers made up by repeating one group to fifteen digits).
#[test]
fn transcribe_joins_the_groups_as_a_call_does() {
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["transcribe", "--grammar", "digits:15"])
        .arg(testdata_dir().join(RECORDING))
        .output()
        .expect("run hotline");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert_eq!(lines[0]["text"], NUMBER, "{stdout}");
}

/// A group read alone to a longer step is no answer, whatever the digit
/// search makes of it: with the wait turned off (`incomplete_timeout = 0`)
/// each group is heard alone, and none is read as a number the caller
/// never said.
#[test]
fn one_group_is_not_made_up_to_the_steps_length() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("customers.toml");
    std::fs::write(&plan, DIALPLAN.replace("[menus.main]\n", "[menus.main]\nincomplete_timeout = 0\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["transcribe", "--grammar"])
        .arg(format!("main/customer@{}", plan.display()))
        .arg(testdata_dir().join(RECORDING))
        .arg(testdata_dir().join("sphinx4/digits_10001-90210-01803_narrowband.wav"))
        .output()
        .expect("run hotline");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().count(), 6, "three groups in each file, heard apart:\n{stdout}");
    for line in stdout.lines() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(line["text"], "", "a number the caller did not say: {line}");
    }
}
