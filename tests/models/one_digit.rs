//! A one-digit step ("say the line number, from zero to nine") takes the
//! recogniser's digit at the caller's first short pause, as a menu takes a
//! clear option, even when Whisper's open transcript writes the lone digit
//! as another word. Real FSDD recordings whose transcript, in a call, is
//! "tool" (2), "Please" (3), "My" (9) and "You" (0): each waited for the
//! 500 ms end of the utterance before, which then took the same digit.

const DIALPLAN: &str = r#"
[operator]
extension = "100"

[menus.main]
prompt = "Press 1 to choose a line."

[menus.main.options.line]
phrases = ["line"]
dtmf = "1"
transfer = "200"

[menus.main.options.line.collect]
variable = "line"
prompt = "Say the line number, from zero to nine."
min_digits = 1
max_digits = 1
confirm = false
"#;

/// The detector's pause (`[endpointing] pause_ms`, 192 ms) and one 32 ms
/// window more; the end of an utterance comes after 500 ms.
const AT_THE_PAUSE_MS: u64 = 192 + 32;

#[test]
fn a_lone_spoken_digit_is_taken_at_the_pause_whatever_the_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("lines.toml");
    std::fs::write(&plan, DIALPLAN).unwrap();
    let clips = [("2_george_2", "2"), ("3_nicolas_0", "3"), ("9_jackson_4", "9"), ("0_nicolas_4", "0")];
    let mut at_pause = Vec::new();
    for (clip, digit) in clips {
        // The key at 0.5 s; the digit from 6 s, after the step's question.
        let timeline = super::replay_recording(&plan, &format!("fsdd/{clip}.wav"), 6_000, &["--dtmf", "1@0.5"]);
        let events: Vec<serde_json::Value> = timeline.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let utterance = events.iter().find(|e| e["type"] == "utterance").expect(&timeline);
        let collected = events.iter().find(|e| e["type"] == "collect").expect(&timeline);
        assert_eq!(collected["value"], digit, "{clip}: the digit said\n{timeline}");
        let waited = collected["t_ms"].as_u64().unwrap() - utterance["end_ms"].as_u64().unwrap();
        eprintln!("{clip}: heard {} and took {digit} {waited} ms after speech", utterance["text"]);
        if waited <= AT_THE_PAUSE_MS {
            at_pause.push(clip);
        }
    }
    // All four on the development machine; one may fall below the
    // `confirm` threshold on another CPU's arithmetic and wait.
    assert!(at_pause.len() >= 3, "taken at the pause: {at_pause:?}");
}
