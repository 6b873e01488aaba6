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
    let path = testdata_dir().join(file);
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["transcribe", "--threads", "1", "--grammar", MENU])
        .arg(&path)
        .output()
        .expect("run hotline");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            (v["text"].as_str().unwrap_or("").to_string(), v["open_text"].as_str().unwrap_or("").to_string())
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
