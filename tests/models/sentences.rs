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

/// An ordering line whose drinks are written as the docs show
/// (`"a {size} mocha"`), with a quantity. No real recordings of orders
/// exist here, so this is a path test with the Piper voice as the caller
/// (`hotline say`), not a figure of accuracy.
const ORDERS: &str = r#"
[operator]
extension = "100"

[slots.size.values]
small = ["small"]
medium = ["medium"]
large = ["large"]

[slots.milk.values]
oat = ["oat milk"]
skim = ["skim milk"]

[slots.quantity]
kind = "number"

[menus.main]
prompt = "What would you like?"
slots = ["size"]
optional_slots = ["milk", "quantity"]

[menus.main.options.americano]
phrases = ["americano", "a {size} americano"]
dtmf = "1"
transfer = "201"

[menus.main.options.macchiato]
phrases = ["macchiato", "a {size} macchiato"]
dtmf = "2"
transfer = "201"

[menus.main.options.mocha]
phrases = ["mocha", "a {size} mocha"]
dtmf = "3"
transfer = "201"

[menus.main.options.tea]
phrases = ["tea", "a {size} tea"]
dtmf = "4"
transfer = "201"
"#;

/// `text` spoken by the Piper voice as a caller's line would carry it
/// (`hotline say --rate 8000`), written to `dir/NAME.wav`.
fn spoken_by_piper(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let wav = dir.join(format!("{name}.wav"));
    let said = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["say", "--rate", "8000", "--text", text, "--out"])
        .arg(&wav)
        .arg("--cache")
        .arg(dir.join("cache"))
        .output()
        .expect("run hotline say");
    assert!(said.status.success(), "say {text:?}: {}", String::from_utf8_lossy(&said.stderr));
    wav
}

/// Orders for several say the drink in the plural, after a number where
/// the phrase has "a" ("three medium mochas" for `a {size} mocha`), and a
/// short one leaves Whisper repeating it on the silence after ("Three
/// small teas. Thank you." over and over). Each is looked for as said (the
/// phrase in the plural, the number in place of its "a"; the repeats read
/// once); before, only one of the three was found at once (Whisper wrote
/// "three medium-moak as", "I want to Maccados", and looped).
#[test]
fn orders_for_several_are_found_with_their_quantity() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("orders.toml");
    std::fs::write(&plan, ORDERS).unwrap();
    let orders = [
        ("Hi, can I get three medium mochas with skim milk.", "mocha", "3"),
        ("Hi, I want two macchiatos thank you.", "macchiato", "2"),
        ("Um, three small teas thank you.", "tea", "3"),
    ];
    let mut found = 0;
    let mut report = String::new();
    for (i, (text, option, quantity)) in orders.iter().enumerate() {
        let wav = spoken_by_piper(dir.path(), &format!("order{i}"), text);
        let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
            .args(["transcribe", "--threads", "1", "--grammar"])
            .arg(format!("main@{}", plan.display()))
            .arg(&wav)
            .output()
            .expect("run hotline");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|l| l["text"] != "")
            .unwrap_or_default();
        // Acted on at once (the dialplans' default `accept`), quantity kept.
        if line["text"] == *option && line["confidence"].as_f64().unwrap_or(0.0) >= 0.85 {
            assert_eq!(line["slots"]["quantity"], *quantity, "{text:?}: {line}");
            found += 1;
        }
        report.push_str(&format!("{text:?}: {stdout}\n"));
    }
    // Another CPU's arithmetic may tip one of them; two of three must hold.
    assert!(found >= 2, "{found} of 3 orders found at once:\n{report}");
}

/// Through the phone band Whisper writes "A medium mocha with almond milk,
/// thanks." as "I'm Edie Mocha with Almond Note.": scored alone, the
/// options' phrases fit that sentence about equally, and the best of them,
/// `mocha`, had 0.37 of the posterior (0.55 in another rendering), which a
/// call takes for no answer (or asks about). Scored in place inside the
/// sentence, mocha is plain. A sentence naming a drink the menu lacks is
/// still no answer. (The Piper voice as the caller: a path test.)
#[test]
fn an_option_the_phrases_alone_cannot_tell_apart_is_found_in_the_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("orders.toml");
    std::fs::write(&plan, ORDERS).unwrap();
    for (text, wanted) in [
        ("A medium mocha with almond milk, thanks.", Some("mocha")),
        ("Give me a large hot chocolate with skim milk, please.", None),
    ] {
        let wav = spoken_by_piper(dir.path(), "order", text);
        let heard = chosen_with(&format!("main@{}", plan.display()), wav.to_str().unwrap());
        let (option, confidence, open) = heard.iter().find(|(c, _, _)| !c.is_empty()).cloned().unwrap_or_default();
        match wanted {
            // Acted on at once (the dialplans' default `accept`).
            Some(w) => assert!(option == w && confidence >= 0.85, "{text:?}: {option} at {confidence} ({open:?})"),
            // Below the default `confirm`: not even asked about.
            None => assert!(confidence < 0.45, "{text:?}: {option} at {confidence} ({open:?})"),
        }
    }
}

/// Whisper reads a short utterance again into the silence after it ("and
/// so my fellow Americans. And so my fellow Americans. And"). The sentence
/// the option is found in, which the call record shows and slot values
/// are read from, holds what the caller said once.
#[test]
fn the_sentence_an_option_is_found_in_is_read_once() {
    let path = testdata_dir().join("whisper_jfk/jfk.wav");
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["transcribe", "--threads", "1", "--grammar", "sentences@dialplans/bench/sentences.toml"])
        .arg(&path)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run hotline");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let found = lines.iter().find(|v| v["text"] == "americans").unwrap_or_else(|| panic!("no `americans`: {stdout}"));
    let sentence = found["sentence"].as_str().expect("the sentence it was found in").to_lowercase();
    assert_eq!(sentence.matches("americans").count(), 1, "{sentence:?}");
}
