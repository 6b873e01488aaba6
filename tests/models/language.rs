//! A dialplan's language reaching Whisper: the multilingual model decodes a
//! real recording after the prompt of the language asked for, and
//! `hotline transcribe --grammar MENU@dialplan` hands it the dialplan's.
//! No Mandarin recordings exist in the test data, so nothing here measures
//! how well Mandarin is heard: only that it is asked for and decodes.
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use hotline::asr::models::{ModelPaths, WhisperModelName};
use hotline::asr::whisper::{GrammarOptions, GrammarWhisper};
use hotline::asr::{Grammar, GrammarChoice, Language, Recognizer};
use hotline::audio::{read_wav, MODEL_RATE};
use testkit::recordings as data;

const ZH_PROMPT: &str = "<|startoftranscript|><|zh|><|transcribe|><|notimestamps|>";

fn base() -> &'static GrammarWhisper {
    static M: OnceLock<GrammarWhisper> = OnceLock::new();
    M.get_or_init(|| {
        GrammarWhisper::load(&ModelPaths::for_whisper(WhisperModelName::Base), GrammarOptions::default())
            .expect("whisper-base loads (run scripts/setup)")
    })
}

fn jfk() -> PathBuf {
    data::default_testdata().join("whisper_jfk/jfk.wav")
}

fn jfk_samples() -> Vec<f32> {
    read_wav(&jfk()).expect("jfk.wav").to_f32_at(MODEL_RATE).expect("16 kHz")
}

fn zh() -> Language {
    Language::from_code("zh").unwrap()
}

#[test]
fn base_decodes_a_real_recording_after_the_prompt_of_the_grammars_language() {
    let samples = jfk_samples();
    let d = base().recognize_detailed(&samples, &Grammar { language: zh(), ..Default::default() }).expect("decodes");
    assert_eq!(base().model().meta.prompt_text(&d.prompt), ZH_PROMPT);
    assert_eq!(d.recognition.prompt, ZH_PROMPT);
    assert!(!d.recognition.text.trim().is_empty(), "no text at all from 11 s of speech");
    // The same recogniser, shared by every dialplan, still decodes the next
    // utterance in English when its grammar says so.
    let en = base().recognize(&samples, &Grammar::default()).expect("decodes");
    assert_eq!(en.prompt, "<|startoftranscript|><|en|><|transcribe|><|notimestamps|>");
    assert!(data::normalise(&en.text).contains("my fellow americans"), "{:?}", en.text);
}

#[test]
fn base_scores_a_mandarin_menu_and_mandarin_digits_on_real_audio() {
    let samples = data::phone_band(&jfk_samples()[..3 * MODEL_RATE as usize]);
    let choice =
        |label: &str, phrases: &[&str]| GrammarChoice::new(label, phrases.iter().map(|p| p.to_string()).collect());
    let menu = Grammar {
        choices: vec![choice("billing", &["账单", "查话费"]), choice("support", &["技术支持"])],
        language: zh(),
        ..Default::default()
    };
    let r = base().recognize(&samples, &menu).expect("a Mandarin menu is scored");
    assert_eq!(r.prompt, ZH_PROMPT);
    assert!((0.0..=1.0).contains(&r.confidence), "{r:?}");
    let digit = Grammar { digits: Some((1, 1)), language: zh(), ..Default::default() };
    let r = base().recognize(&samples, &digit).expect("Mandarin digits are scored");
    assert!(r.choice.as_deref().is_none_or(|d| d.len() == 1 && d.chars().all(|c| c.is_ascii_digit())), "{r:?}");
}

#[test]
fn the_english_only_model_refuses_another_language_instead_of_guessing() {
    let tiny = GrammarWhisper::load(&ModelPaths::for_whisper(WhisperModelName::TinyEn), GrammarOptions::default())
        .expect("tiny.en loads (run scripts/setup)");
    let err = tiny.recognize(&jfk_samples(), &Grammar { language: zh(), ..Default::default() }).unwrap_err();
    assert!(err.to_string().contains("\"zh\""), "{err}");
}

fn transcribe(model: &str) -> (String, String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["transcribe", "--model", model, "--grammar", "main@dialplans/examples/mandarin.toml"])
        .arg(jfk())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run hotline");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (text(&out.stdout), text(&out.stderr), out.status.code().unwrap_or(-1))
}

#[test]
fn transcribe_with_a_mandarin_dialplan_decodes_in_mandarin() {
    let (stdout, stderr, code) = transcribe("whisper-base");
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect();
    assert!(!lines.is_empty(), "no utterance found in jfk.wav: {stderr}");
    for line in &lines {
        assert_eq!(line["prompt"], ZH_PROMPT, "{line}");
    }
    // tiny.en hears English only: the menu cannot be readied, and says why.
    let (stdout, stderr, code) = transcribe("whisper-tiny.en");
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("English only") && stderr.contains("\"zh\""), "{stderr}");
}
