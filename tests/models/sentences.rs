//! Menu phrases inside real spoken sentences: the option is found where the
//! caller says it, and a sentence naming no option is not taken for one.
use std::process::Command;

use testkit::testdata::testdata_dir;

/// The options of `dialplans/bench/sentences.toml`'s menu: words of real
/// recorded sentences.
const MENU: &str = "playing,particular,again,forever,queen,five,forward,young,respectable,americans";

/// `hotline transcribe --grammar MENU` on one recording: each utterance's
/// chosen option ("" when rejected) and open transcript.
fn chosen(file: &str) -> Vec<(String, String)> {
    chosen_with(MENU, file).into_iter().map(|(c, _, open)| (c, open)).collect()
}

/// `hotline transcribe --grammar GRAMMAR` on one recording: each
/// utterance's chosen option, its confidence and the open transcript.
fn chosen_with(grammar: &str, file: &str) -> Vec<(String, f64, String)> {
    let path = testdata_dir().join(file);
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["transcribe", "--threads", "1", "--grammar", grammar])
        .arg(&path)
        .output()
        .expect("run hotline");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            (
                v["text"].as_str().unwrap_or("").to_string(),
                v["confidence"].as_f64().unwrap_or(0.0),
                v["open_text"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn an_option_is_found_inside_a_spoken_sentence() {
    for (file, option) in [
        ("pocketsphinx/goforward.wav", "forward"),
        ("pocketsphinx/librivox_sense_and_sensibility_0880.wav", "young"),
        // "God bless 'em, I hope I'll go on seeing them forever": the option
        // is in the second sentence the caller says.
        ("cmu_arctic/arctic_axb_a0006.wav", "forever"),
    ] {
        let heard = chosen(file);
        assert!(heard.iter().any(|(c, _)| c == option), "{file}: expected `{option}`, heard {heard:?}");
        assert!(heard.iter().all(|(c, _)| c.is_empty() || c == option), "{file}: {heard:?}");
    }
}

#[test]
fn a_sentence_naming_no_option_chooses_none() {
    for file in ["cmu_arctic/arctic_aew_a0001.wav", "cmu_arctic/arctic_axb_a0005.wav"] {
        let heard = chosen(file);
        assert!(heard.iter().all(|(c, _)| c.is_empty()), "{file}: {heard:?}");
    }
}

/// The same options, each also said with a size the way an ordering menu
/// writes them ("a {size} latte"): hundreds of phrase forms, most opening
/// with "a". A clearly said option must still be found, not lost among
/// forms the recogniser had no time to score.
#[test]
fn options_with_slot_phrases_are_still_found_inside_sentences() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("sized.toml");
    let mut toml = String::from(
        r#"[operator]
extension = "100"

[slots.size.values]
small = ["small", "twelve ounce", "short"]
medium = ["medium", "regular", "sixteen ounce", "grande"]
large = ["large", "twenty ounce", "venti", "big"]

[menus.main]
prompt = "What can I get you?"
slots = ["size"]
globals = false
"#,
    );
    for (key, word) in MENU.split(',').enumerate() {
        toml += &format!(
            "\n[menus.main.options.{word}]\nphrases = [\"{word}\", \"a {{size}} {word}\"]\ndtmf = \"{}\"\ntransfer = \"30{key}\"\n",
            key % 10
        );
    }
    std::fs::write(&plan, toml).unwrap();
    let grammar = format!("main@{}", plan.display());
    for (file, option) in [
        ("pocketsphinx/librivox_sense_and_sensibility_0880.wav", "young"),
        ("pocketsphinx/goforward.wav", "forward"),
        ("cmu_arctic/arctic_aew_a0002.wav", "particular"),
    ] {
        let heard = chosen_with(&grammar, file);
        assert!(
            heard.iter().any(|(c, confidence, _)| c == option && *confidence >= 0.85),
            "{file}: expected `{option}` acted on, heard {heard:?}"
        );
    }
    // And the sentence that names none is still not taken for one.
    let heard = chosen_with(&grammar, "cmu_arctic/arctic_aew_a0001.wav");
    assert!(heard.iter().all(|(c, confidence, _)| c.is_empty() || *confidence < 0.45), "{heard:?}");
}
