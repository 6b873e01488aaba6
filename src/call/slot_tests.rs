//! Options with slots: one sentence fills the option and its details, the
//! call asks only for what is missing, reads back once, takes a correction.
use super::*;

const ORDERS: &str = r#"
[operator]
extension = "100"

[slots.size.values]
small = ["small", "twelve ounce"]
medium = ["medium"]
large = ["large"]

[slots.quantity]
kind = "number"

[menus.main]
prompt = "What would you like?"

[menus.main.options.latte]
phrases = ["latte", "a {size} latte"]
dtmf = "1"
slots = ["size"]
optional_slots = ["quantity"]
transfer = "200"

[menus.main.options.iced_latte]
phrases = ["iced latte"]
dtmf = "2"
slots = ["size"]
confirm = true
transfer = "300"
"#;

fn orders() -> Harness {
    orders_with(LoudnessVad::new())
}

fn orders_with(vad: LoudnessVad) -> Harness {
    let (plan, diagnostics) = crate::dialplan::check_bytes(std::path::Path::new("orders.toml"), ORDERS.as_bytes());
    let plan = plan.unwrap_or_else(|| panic!("{diagnostics:?}"));
    let mut h = Harness::with_plan(plan, vad);
    h.send(Input::Start);
    h.played(1_000);
    h
}

/// The caller says `text`; the recogniser picks `choice`.
fn say(h: &mut Harness, text: &str, choice: Option<&str>, confidence: f32) -> Vec<String> {
    h.speak(1_000);
    h.recognized(text, choice, confidence)
}

/// The caller says `text`; the recogniser picks `choice` and found it in
/// `sentence` (a phrase or details put back by the audio).
fn say_heard_as(h: &mut Harness, text: &str, choice: &str, sentence: &str) -> Vec<String> {
    h.speak(1_000);
    let request = h.last_request.expect("a recognition was requested");
    let result = Recognition {
        text: text.into(),
        choice: Some(choice.into()),
        confidence: 0.95,
        sentence: Some(sentence.into()),
        ..Default::default()
    };
    h.send(Input::Recognized { request, result })
}

#[test]
fn one_sentence_fills_the_option_and_its_slots_and_the_values_travel() {
    let mut h = orders();
    let out = say(&mut h, "Hi, can I get two large lattes, please?", Some("latte"), 0.95);
    assert!(out.contains(&format!("{} slot size=large", h.now)), "{out:#?}");
    assert!(out.contains(&format!("{} slot quantity=2", h.now)), "{out:#?}");
    assert!(out.iter().any(|l| l.ends_with(HOLD)), "no question asked, straight to the transfer: {out:#?}");
    h.played(2_000);
    let vars = &h.transfers[0].1;
    assert_eq!(
        vars,
        &[
            ("option".to_string(), "latte".to_string()),
            ("size".into(), "large".into()),
            ("quantity".into(), "2".into())
        ]
    );
}

#[test]
fn slots_are_read_from_the_sentence_the_recogniser_confirmed() {
    // Whisper wrote "Grand Lothé"; the recogniser found "a large latte"
    // in its place: the size comes from what the audio confirmed.
    let mut h = orders();
    let out = say_heard_as(&mut h, "A Grand Lothé with milk, please.", "latte", "A large latte with milk, please.");
    // The record says which words the size was read from.
    assert!(out.contains(&format!("{} slot size=large in 'A large latte with milk, please.'", h.now)), "{out:#?}");
    assert!(out.iter().any(|l| l.ends_with(HOLD)), "no question asked: {out:#?}");
}

#[test]
fn a_missing_slot_is_asked_for_and_can_be_keyed() {
    let mut h = orders();
    let out = say(&mut h, "a latte please", Some("latte"), 0.95);
    let question = "Which size? Press 1 for small, 2 for medium, or 3 for large, or just say what you need.";
    assert!(out.iter().any(|l| l.ends_with(question)), "{out:#?}");
    h.played(1_000);
    let out = h.send(Input::Dtmf('2'));
    assert!(out.iter().any(|l| l.ends_with("slot size=medium")), "{out:#?}");
    h.played(2_000);
    assert_eq!(h.transfers[0].1[1], ("size".to_string(), "medium".to_string()));
}

/// "No, make it a medium", written "No, make it a meeting": the recogniser
/// put the size back (its sentence), and the correction is read from that.
#[test]
fn a_correction_at_the_read_back_is_read_from_the_recognisers_sentence() {
    let mut h = orders();
    say(&mut h, "a twelve ounce iced latte", Some("iced_latte"), 0.95);
    h.played(1_000);
    let grammar = h.call.grammar();
    let no = grammar.choices.iter().find(|c| c.label == "no").expect("a yes/no question");
    assert!(no.details.iter().any(|d| d.iter().any(|p| p == "medium")), "{grammar:?}");
    let out = say_heard_as(&mut h, "No, make it a meeting.", "no", "No, make it a medium.");
    assert!(out.iter().any(|l| l.ends_with("slot size=medium")), "{out:#?}");
    assert!(out.iter().any(|l| l.ends_with("Medium iced latte, right?")), "{out:#?}");
}

#[test]
fn the_most_specific_phrase_wins_and_the_request_is_read_back_once_and_corrected() {
    let mut h = orders();
    // "iced latte" contains "latte": the longer phrase is the option, and
    // "twelve ounce" is one value, not "twelve" as a quantity.
    let out = say(&mut h, "a twelve ounce iced latte", Some("iced_latte"), 0.95);
    assert!(out.iter().any(|l| l.ends_with("slot size=small")), "{out:#?}");
    assert!(out.iter().any(|l| l.ends_with("Small iced latte, right?")), "{out:#?}");
    h.played(1_000);
    let out = say(&mut h, "no, medium", None, 0.9);
    assert!(out.iter().any(|l| l.ends_with("slot size=medium")), "{out:#?}");
    assert!(out.iter().any(|l| l.ends_with("Medium iced latte, right?")), "{out:#?}");
    h.played(1_000);
    let out = say(&mut h, "yes", Some("yes"), 0.95);
    assert!(out.iter().any(|l| l.ends_with("collect size=medium confirmed=true")), "{out:#?}");
    h.played(2_000);
    assert_eq!(h.transfers[0].0.extension, "300");
}

#[test]
fn a_middling_choice_is_confirmed_as_a_whole_request_not_asked_twice() {
    let mut h = orders();
    let out = say(&mut h, "large latte", Some("latte"), 0.6);
    assert!(!out.iter().any(|l| l.contains("Did you mean")), "{out:#?}");
    assert!(out.iter().any(|l| l.ends_with("Large latte, right?")), "{out:#?}");
}

#[test]
fn corrections_are_bounded_then_the_caller_is_escalated() {
    let mut h = orders();
    say(&mut h, "a small iced latte", Some("iced_latte"), 0.95);
    let mut last = Vec::new();
    for size in ["medium", "large", "small"] {
        h.played(1_000);
        last = say(&mut h, &format!("no, {size}"), None, 0.9);
    }
    assert!(last.iter().any(|l| l.ends_with(HOLD)), "the third correction goes to a person: {last:#?}");
    h.played(2_000);
    assert_eq!(h.transfers[0].0.extension, "100");
}

#[test]
fn the_recogniser_listens_for_each_options_details() {
    let (plan, diagnostics) = crate::dialplan::check_bytes(std::path::Path::new("orders.toml"), ORDERS.as_bytes());
    let plan = plan.unwrap_or_else(|| panic!("{diagnostics:?}"));
    let grammar = grammar_at(&plan, "main", None).unwrap();
    let latte = grammar.choices.iter().find(|c| c.label == "latte").unwrap();
    // The size's phrases, then the quantity as number words and numerals.
    assert_eq!(latte.details.len(), 2, "{:?}", latte.details);
    assert_eq!(latte.details[0], ["small", "twelve ounce", "medium", "large"]);
    assert!(latte.details[1].iter().any(|p| p == "three") && latte.details[1].iter().any(|p| p == "3"));
    let iced = grammar.choices.iter().find(|c| c.label == "iced_latte").unwrap();
    assert_eq!(iced.details.len(), 1);
    // Options without slots (the globals) have none.
    assert!(grammar
        .choices
        .iter()
        .filter(|c| c.label != "latte" && c.label != "iced_latte")
        .all(|c| c.details.is_empty()));
}

/// "A large latte … make it two": the caller paused after the option.
/// Acting at the pause would lose what follows, so an option whose details
/// are not all named yet waits for the end of the utterance.
#[test]
fn an_order_missing_details_is_not_cut_off_at_a_pause() {
    let mut h = orders_with(LoudnessVad::with_pause(100));
    h.audio(300, true);
    assert_eq!(h.audio(100, false), ["recognize 1"], "the pause asks for an early answer");
    let out = h.recognized("A large latte", Some("latte"), 0.95);
    assert!(out.is_empty(), "the quantity may follow: {out:#?}");
    assert!(h.audio(60, false).is_empty(), "not acted on at the pause");
    assert!(h.audio(300, true).is_empty(), "the caller goes on");
    assert_eq!(h.audio(300, false), ["recognize 2"], "the whole utterance is heard");
    let out = h.recognized("A large latte, make it two.", Some("latte"), 0.95);
    assert!(out.iter().any(|l| l.ends_with("slot size=large")), "{out:#?}");
    assert!(out.iter().any(|l| l.ends_with("slot quantity=2")), "{out:#?}");
}

/// When nothing follows, the answer held at the pause is the answer: the
/// end of the utterance acts on it without recognising the words again.
#[test]
fn an_order_held_at_a_pause_is_acted_on_at_the_end() {
    let mut h = orders_with(LoudnessVad::with_pause(100));
    h.audio(300, true);
    assert_eq!(h.audio(100, false), ["recognize 1"]);
    assert!(h.recognized("A large latte", Some("latte"), 0.95).is_empty());
    let out = h.audio(300, false);
    assert!(!out.iter().any(|l| l.starts_with("recognize")), "{out:#?}");
    assert!(out.iter().any(|l| l.ends_with("slot size=large")), "{out:#?}");
    assert!(out.iter().any(|l| l.ends_with(HOLD)), "{out:#?}");
}

/// Every detail named before the pause: nothing can follow, act at once.
#[test]
fn a_complete_order_is_acted_on_at_the_pause() {
    let mut h = orders_with(LoudnessVad::with_pause(100));
    h.audio(300, true);
    assert_eq!(h.audio(100, false), ["recognize 1"]);
    let out = h.recognized("Two large lattes", Some("latte"), 0.95);
    assert!(out.iter().any(|l| l.ends_with("slot quantity=2")), "{out:#?}");
    assert!(out.iter().any(|l| l.ends_with(HOLD)), "{out:#?}");
}
