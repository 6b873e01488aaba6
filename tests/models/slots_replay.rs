//! One real spoken sentence chooses an option and fills its slot, through
//! `hotline replay`: pocketsphinx's "go forward ten meters" (a real
//! recording) against a dialplan built from the words it contains.
use std::process::Command;

use hotline::audio::{f32_to_i16, read_wav, write_wav};
use testkit::testdata::testdata_dir;

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
    let timeline = replay(&plan, "pocketsphinx/goforward.wav");
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

/// A card table's line: the suit is a required slot of every card.
const CARDS: &str = r#"
[operator]
extension = "100"

[slots.suit]
prompt = "Which suit?"

[slots.suit.values]
clubs = ["clubs"]
hearts = ["hearts"]
spades = ["spades"]
diamonds = ["diamonds"]

[menus.main]
prompt = "Which card?"
slots = ["suit"]

[menus.main.options.queen]
phrases = ["queen"]
dtmf = "1"
transfer = "201"

[menus.main.options.king]
phrases = ["king"]
dtmf = "2"
transfer = "202"

[menus.main.options.ten]
phrases = ["ten"]
dtmf = "3"
transfer = "203"

[menus.main.options.seven]
phrases = ["seven"]
dtmf = "4"
transfer = "204"
"#;

/// `hotline replay` of one real recording said as a call against `plan`
/// (the caller waits a second, says it, then waits on the line): the JSON
/// timeline.
fn replay(plan: &std::path::Path, recording: &str) -> String {
    super::replay_recording(plan, recording, 1_000, &[])
}

/// Through the phone band Whisper writes this real "four queen of clubs" as
/// "4 Queen of Cloves" (and, resampled another way, "ten of clubs" as "10
/// of close."): the words alone name no suit, and the call would ask "Which
/// suit?". The audio says "clubs", and the recogniser puts it back.
#[test]
fn a_detail_the_transcript_mishears_is_taken_from_the_audio() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("cards.toml");
    std::fs::write(&plan, CARDS).unwrap();
    let mut misheard = 0;
    for (recording, card) in [("pocketsphinx/cards_001.wav", "ten"), ("pocketsphinx/cards_002.wav", "queen")] {
        let timeline = replay(&plan, recording);
        let intent = format!(r#""intent":"{card}""#);
        assert!(timeline.contains(&intent), "{recording}: no {intent} in\n{timeline}");
        assert!(timeline.contains(r#""slot":"suit","value":"clubs""#), "{recording}: no suit in\n{timeline}");
        assert!(!timeline.contains("Which suit"), "{recording}: asked again\n{timeline}");
        let transcript = timeline
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["type"] == "utterance")
            .and_then(|e| e["text"].as_str().map(str::to_lowercase))
            .unwrap_or_default();
        if !transcript.contains("clubs") {
            misheard += 1;
            // The record says which words the suit was read from.
            assert!(timeline.contains(r#""heard":""#), "{recording}: no `heard` in\n{timeline}");
        }
    }
    assert!(misheard >= 1, "no recording was misheard: the test shows nothing");
}

/// Real sentences that name an option but no size, quantity or suit: the
/// details are looked for where words sound alike ("still" / "small",
/// "for" / "four"), and the audio turns each down.
#[test]
fn a_detail_not_said_is_not_put_in() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("sized.toml");
    std::fs::write(
        &plan,
        r#"
[operator]
extension = "100"

[slots.size.values]
small = ["small"]
medium = ["medium"]
large = ["large"]

[slots.suit.values]
clubs = ["clubs"]
hearts = ["hearts"]
spades = ["spades"]

[slots.count]
kind = "number"

[menus.main]
prompt = "Yes?"
optional_slots = ["size", "suit", "count"]

[menus.main.options.game]
phrases = ["game"]
dtmf = "1"
transfer = "201"

[menus.main.options.respectable]
phrases = ["respectable"]
dtmf = "2"
transfer = "202"

[menus.main.options.dashwood]
phrases = ["dashwood"]
dtmf = "3"
transfer = "203"
"#,
    )
    .unwrap();
    for (recording, option) in [
        ("cmu_arctic/arctic_a0010.wav", "game"),
        ("pocketsphinx/librivox_sense_and_sensibility_0920.wav", "respectable"),
        ("pocketsphinx/librivox_sense_and_sensibility_0870.wav", "dashwood"),
    ] {
        let timeline = replay(&plan, recording);
        let intent = format!(r#""intent":"{option}""#);
        assert!(timeline.contains(&intent), "{recording}: no {intent} in\n{timeline}");
        assert!(!timeline.contains(r#""type":"slot""#), "{recording}: a detail not said\n{timeline}");
    }
}

/// `transcribe` shows the words the suit was read from, so an admin sees
/// why `clubs` was filled although the transcript says otherwise.
#[test]
fn transcribe_shows_the_words_a_detail_was_read_from() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("cards.toml");
    std::fs::write(&plan, CARDS).unwrap();
    // Through the phone band, as a call hears it.
    let speech = read_wav(&testdata_dir().join("pocketsphinx/cards_002.wav")).expect("testdata");
    let narrow = hotline::audio::phone_band(&speech.to_f32_at(16_000).unwrap());
    let wav = dir.path().join("cards_002.wav");
    write_wav(&wav, 16_000, &f32_to_i16(&narrow)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["transcribe", "--threads", "1", "--grammar"])
        .arg(format!("main@{}", plan.display()))
        .arg(&wav)
        .output()
        .expect("run hotline");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let line: serde_json::Value = serde_json::from_str(stdout.lines().next().expect("one utterance")).unwrap();
    assert_eq!(line["text"], "queen", "{line}");
    assert_eq!(line["slots"]["suit"], "clubs", "{line}");
    let sentence = line["sentence"].as_str().unwrap_or_default().to_lowercase();
    assert!(sentence.contains("clubs"), "{line}");
    assert!(!line["open_text"].as_str().unwrap_or_default().to_lowercase().contains("clubs"), "{line}");
}
