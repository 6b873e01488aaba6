//! Table tests for [`TextMatcher`]: what callers say (in the form Whisper
//! writes it) against realistic menus, with the confidence band each answer
//! must land in. The bands are the matcher's calibration contract:
//! exact ≥ 0.9, clear slips 0.5 ..< 0.9, out-of-menu < 0.35.
use std::time::Instant;

use super::{Candidate, CompiledCandidates, IntentMatcher, TextMatcher};

fn candidate(intent: &str, phrases: &[&str]) -> Candidate {
    Candidate { intent: intent.to_string(), phrases: phrases.iter().map(|p| p.to_string()).collect() }
}

/// The global intents every menu of the example hotline carries.
fn globals() -> Vec<Candidate> {
    vec![
        candidate("agent", &["agent", "operator", "representative", "human", "talk to a person"]),
        candidate("repeat", &["repeat", "say that again", "repeat that"]),
        candidate("back", &["back", "go back", "previous menu"]),
        candidate("main_menu", &["main menu", "start over"]),
        candidate("goodbye", &["goodbye", "bye", "hang up", "that's all"]),
    ]
}

/// A customer-service main menu plus globals.
fn service_menu() -> Vec<Candidate> {
    let mut menu = vec![
        candidate("billing", &["billing", "bills", "payment", "pay my bill", "invoice"]),
        candidate("technical_support", &["technical support", "technical help", "my internet is not working"]),
        candidate("account_balance", &["account balance", "balance", "how much do I owe"]),
        candidate("opening_hours", &["opening hours", "when are you open", "hours"]),
    ];
    menu.extend(globals());
    menu
}

/// The same menu where each option can also be chosen by saying its key.
fn numbered_menu() -> Vec<Candidate> {
    let mut menu = vec![
        candidate("billing", &["billing", "one"]),
        candidate("technical_support", &["technical support", "two"]),
        candidate("account_balance", &["account balance", "three"]),
        candidate("opening_hours", &["opening hours", "four"]),
    ];
    menu.extend(globals());
    menu
}

/// One intent per word that real recordings in `speech_commands` exist for.
pub(super) fn command_menu() -> Vec<Candidate> {
    [
        "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "zero", "one", "two", "three", "four",
        "five", "six", "seven", "eight", "nine",
    ]
    .iter()
    .map(|w| candidate(w, &[w]))
    .collect()
}

/// What the matcher must answer for one utterance.
enum Expect {
    /// This intent wins with a confidence in [min, max).
    Intent(&'static str, f32, f32),
    /// No intent reaches this confidence.
    Below(f32),
}
use Expect::{Below, Intent};

const EXACT: f32 = 0.9;
const SLIP_MIN: f32 = 0.5;
const SLIP_MAX: f32 = 0.9;
const OUT_OF_MENU: f32 = 0.35;
const ABOVE_ONE: f32 = 1.000_1;

fn check_table(menu: &[Candidate], table: &[(&str, Expect)]) {
    let matcher = TextMatcher::default();
    let compiled = CompiledCandidates::new(menu);
    let mut failures = Vec::new();
    for (text, expect) in table {
        let result = matcher.match_intent(text, menu);
        assert_eq!(result, matcher.match_compiled(text, &compiled), "compiled and plain matching differ for {text:?}");
        let best = result.best.as_ref();
        let ok = match expect {
            Intent(intent, min, max) => {
                best.is_some_and(|b| b.intent == *intent && b.confidence >= *min && b.confidence < *max)
            }
            Below(limit) => best.is_none_or(|b| b.confidence < *limit),
        };
        if let (Some(best), Some(runner)) = (&result.best, &result.runner_up) {
            assert_ne!(best.intent, runner.intent, "{text:?}");
            assert!(runner.confidence <= best.confidence, "{text:?}: runner-up above best");
        }
        if !ok {
            let all: Vec<String> = matcher
                .score_all(text, &compiled)
                .iter()
                .take(4)
                .map(|s| format!("{}={:.3}", s.intent, s.confidence))
                .collect();
            let want = match expect {
                Intent(intent, min, max) => format!("{intent} in [{min}, {max})"),
                Below(limit) => format!("nothing >= {limit}"),
            };
            failures.push(format!("{text:?}: want {want}, got [{}]", all.join(", ")));
        }
    }
    assert!(failures.is_empty(), "{} of {} utterances wrong:\n{}", failures.len(), table.len(), failures.join("\n"));
}

#[test]
fn service_menu_exact_answers_act() {
    check_table(
        &service_menu(),
        &[
            ("Billing.", Intent("billing", EXACT, ABOVE_ONE)),
            ("billing", Intent("billing", EXACT, ABOVE_ONE)),
            ("BILLING!", Intent("billing", EXACT, ABOVE_ONE)),
            ("Billing, please.", Intent("billing", EXACT, ABOVE_ONE)),
            ("Um, billing.", Intent("billing", EXACT, ABOVE_ONE)),
            ("Billing. Billing.", Intent("billing", EXACT, ABOVE_ONE)),
            ("Payment.", Intent("billing", EXACT, ABOVE_ONE)),
            ("I'd like to pay my bill.", Intent("billing", EXACT, ABOVE_ONE)),
            ("Technical support.", Intent("technical_support", EXACT, ABOVE_ONE)),
            ("Technical support, please.", Intent("technical_support", EXACT, ABOVE_ONE)),
            ("My internet is not working.", Intent("technical_support", EXACT, ABOVE_ONE)),
            ("Account balance.", Intent("account_balance", EXACT, ABOVE_ONE)),
            ("How much do I owe?", Intent("account_balance", EXACT, ABOVE_ONE)),
            ("Opening hours.", Intent("opening_hours", EXACT, ABOVE_ONE)),
            ("When are you open?", Intent("opening_hours", EXACT, ABOVE_ONE)),
            ("What are your opening hours?", Intent("opening_hours", 0.85, ABOVE_ONE)),
            ("Agent.", Intent("agent", EXACT, ABOVE_ONE)),
            ("I'd like to talk to an agent, please.", Intent("agent", EXACT, ABOVE_ONE)),
            ("Can I speak to a representative?", Intent("agent", EXACT, ABOVE_ONE)),
            ("Operator!", Intent("agent", EXACT, ABOVE_ONE)),
            ("Talk to a person.", Intent("agent", EXACT, ABOVE_ONE)),
            ("A human, please.", Intent("agent", EXACT, ABOVE_ONE)),
            ("Repeat.", Intent("repeat", EXACT, ABOVE_ONE)),
            ("Can you repeat that?", Intent("repeat", EXACT, ABOVE_ONE)),
            ("Could you say that again?", Intent("repeat", EXACT, ABOVE_ONE)),
            ("Go back.", Intent("back", EXACT, ABOVE_ONE)),
            ("Main menu.", Intent("main_menu", EXACT, ABOVE_ONE)),
            ("Start over.", Intent("main_menu", EXACT, ABOVE_ONE)),
            ("Goodbye.", Intent("goodbye", EXACT, ABOVE_ONE)),
            ("Bye bye.", Intent("goodbye", EXACT, ABOVE_ONE)),
            ("That's all, thank you.", Intent("goodbye", EXACT, ABOVE_ONE)),
        ],
    );
}

#[test]
fn service_menu_sentences_around_a_phrase() {
    check_table(
        &service_menu(),
        &[
            ("I have a question about my bill.", Intent("billing", SLIP_MIN, ABOVE_ONE)),
            ("I'm calling about billing.", Intent("billing", EXACT, ABOVE_ONE)),
            ("I need technical support for my router.", Intent("technical_support", 0.75, ABOVE_ONE)),
            ("What's my account balance?", Intent("account_balance", 0.85, ABOVE_ONE)),
            ("Balance of my account.", Intent("account_balance", SLIP_MIN, ABOVE_ONE)),
            ("Let me talk to an operator.", Intent("agent", EXACT, ABOVE_ONE)),
            // Half of "main menu" and half of "previous menu": a tie, so
            // the caller is asked again rather than guessed at.
            ("Menu.", Below(0.45)),
        ],
    );
}

#[test]
fn service_menu_recognition_slips_confirm_or_act() {
    check_table(
        &service_menu(),
        &[
            ("Building.", Intent("billing", SLIP_MIN, SLIP_MAX)),
            ("Bill and.", Intent("billing", SLIP_MIN, SLIP_MAX)),
            ("Billings.", Intent("billing", 0.85, ABOVE_ONE)),
            ("Billy.", Intent("billing", SLIP_MIN, SLIP_MAX)),
            ("A gent.", Intent("agent", SLIP_MIN, SLIP_MAX)),
            ("Agents.", Intent("agent", 0.85, ABOVE_ONE)),
            ("Tech support.", Intent("technical_support", SLIP_MIN, SLIP_MAX)),
            // Half a phrase: worth a "did you mean …?", not an action.
            ("Technical.", Intent("technical_support", 0.45, 0.6)),
            ("Opening ours.", Intent("opening_hours", SLIP_MIN, SLIP_MAX)),
            ("Open hours.", Intent("opening_hours", SLIP_MIN, SLIP_MAX)),
            // One word exact, the other one letter off: acting is right,
            // but the score stays below an exact answer.
            ("Account balanse.", Intent("account_balance", SLIP_MIN, 0.95)),
            ("Good bye.", Intent("goodbye", SLIP_MIN, ABOVE_ONE)),
            ("Main men you.", Intent("main_menu", SLIP_MIN, 0.95)),
            ("Represent a tive.", Intent("agent", SLIP_MIN, SLIP_MAX)),
            ("Reap eat.", Intent("repeat", SLIP_MIN, SLIP_MAX)),
        ],
    );
}

#[test]
fn service_menu_out_of_menu_matches_nothing() {
    check_table(
        &service_menu(),
        &[
            ("", Below(OUT_OF_MENU)),
            ("   ", Below(OUT_OF_MENU)),
            ("[Music]", Below(OUT_OF_MENU)),
            ("[BLANK_AUDIO]", Below(OUT_OF_MENU)),
            ("(upbeat music)", Below(OUT_OF_MENU)),
            ("Thank you.", Below(OUT_OF_MENU)),
            ("Um.", Below(OUT_OF_MENU)),
            ("you", Below(OUT_OF_MENU)),
            ("Pizza.", Below(OUT_OF_MENU)),
            ("What's the weather like?", Below(OUT_OF_MENU)),
            ("What's the weather like today?", Below(OUT_OF_MENU)),
            ("I'd like to order a pizza.", Below(OUT_OF_MENU)),
            ("Take.", Below(OUT_OF_MENU)),
            ("Go forward 10 meters.", Below(OUT_OF_MENU)),
            ("The quick brown fox jumps over the lazy dog.", Below(OUT_OF_MENU)),
            ("My dog ate my homework.", Below(OUT_OF_MENU)),
            ("And so, my fellow Americans, ask not what your country can do for you.", Below(OUT_OF_MENU)),
            ("Ten of clubs.", Below(OUT_OF_MENU)),
            ("Hello?", Below(OUT_OF_MENU)),
            ("I don't know.", Below(OUT_OF_MENU)),
            ("4512", Below(OUT_OF_MENU)),
            ("Yes.", Below(OUT_OF_MENU)),
            ("No, no.", Below(OUT_OF_MENU)),
            ("Cheese.", Below(OUT_OF_MENU)),
            ("Seven.", Below(OUT_OF_MENU)),
        ],
    );
}

#[test]
fn numbered_menu_understands_keys_said_aloud() {
    check_table(
        &numbered_menu(),
        &[
            ("One.", Intent("billing", EXACT, ABOVE_ONE)),
            ("1", Intent("billing", EXACT, ABOVE_ONE)),
            ("Press 1.", Intent("billing", EXACT, ABOVE_ONE)),
            ("Option two.", Intent("technical_support", EXACT, ABOVE_ONE)),
            ("Number three, please.", Intent("account_balance", 0.85, ABOVE_ONE)),
            ("4.", Intent("opening_hours", EXACT, ABOVE_ONE)),
            ("For.", Intent("opening_hours", SLIP_MIN, SLIP_MAX)),
            ("To.", Intent("technical_support", SLIP_MIN, SLIP_MAX)),
            ("Won.", Intent("billing", SLIP_MIN, SLIP_MAX)),
            ("Billing.", Intent("billing", EXACT, ABOVE_ONE)),
            ("Nine.", Below(OUT_OF_MENU)),
            ("I want to go for a walk.", Below(OUT_OF_MENU)),
            ("Talk to someone.", Below(OUT_OF_MENU)),
            ("12", Below(0.7)),
        ],
    );
}

#[test]
fn command_words_and_their_homophone_slips() {
    check_table(
        &command_menu(),
        &[
            ("Yes.", Intent("yes", EXACT, ABOVE_ONE)),
            ("Yes, yes.", Intent("yes", EXACT, ABOVE_ONE)),
            ("No.", Intent("no", EXACT, ABOVE_ONE)),
            ("No, no.", Intent("no", EXACT, ABOVE_ONE)),
            ("Up.", Intent("up", EXACT, ABOVE_ONE)),
            ("Down.", Intent("down", EXACT, ABOVE_ONE)),
            ("Left.", Intent("left", EXACT, ABOVE_ONE)),
            ("Right.", Intent("right", EXACT, ABOVE_ONE)),
            ("On.", Intent("on", EXACT, ABOVE_ONE)),
            ("Off.", Intent("off", EXACT, ABOVE_ONE)),
            ("Stop.", Intent("stop", EXACT, ABOVE_ONE)),
            ("Go.", Intent("go", EXACT, ABOVE_ONE)),
            ("Zero.", Intent("zero", EXACT, ABOVE_ONE)),
            ("0", Intent("zero", EXACT, ABOVE_ONE)),
            ("One.", Intent("one", EXACT, ABOVE_ONE)),
            ("Two.", Intent("two", EXACT, ABOVE_ONE)),
            ("3", Intent("three", EXACT, ABOVE_ONE)),
            ("Four.", Intent("four", EXACT, ABOVE_ONE)),
            ("Five.", Intent("five", EXACT, ABOVE_ONE)),
            ("Six.", Intent("six", EXACT, ABOVE_ONE)),
            ("Seven.", Intent("seven", EXACT, ABOVE_ONE)),
            ("8", Intent("eight", EXACT, ABOVE_ONE)),
            ("Nine.", Intent("nine", EXACT, ABOVE_ONE)),
            ("9 9 9 9", Intent("nine", EXACT, ABOVE_ONE)),
            // Whisper's homophone slips on one-word answers.
            ("Of.", Intent("off", SLIP_MIN, SLIP_MAX)),
            ("Now.", Intent("no", SLIP_MIN, SLIP_MAX)),
            ("Know.", Intent("no", SLIP_MIN, SLIP_MAX)),
            ("For.", Intent("four", SLIP_MIN, SLIP_MAX)),
            ("To.", Intent("two", SLIP_MIN, SLIP_MAX)),
            ("Too.", Intent("two", SLIP_MIN, SLIP_MAX)),
            ("Write.", Intent("right", SLIP_MIN, SLIP_MAX)),
            ("Won.", Intent("one", SLIP_MIN, SLIP_MAX)),
            ("Stops.", Intent("stop", 0.85, ABOVE_ONE)),
            // Not commands.
            ("Take.", Below(OUT_OF_MENU)),
            ("[Music]", Below(OUT_OF_MENU)),
            ("Cheese.", Below(OUT_OF_MENU)),
            ("Hello.", Below(OUT_OF_MENU)),
            ("What's the weather like?", Below(OUT_OF_MENU)),
            // Several commands at once: never enough to act on.
            ("4512", Below(0.7)),
            ("Go forward 10 meters.", Below(0.7)),
            ("Yes. No.", Below(0.7)),
        ],
    );
}

#[test]
fn shared_phrase_is_a_tie_and_never_acts() {
    let menu = vec![
        candidate("savings", &["account", "savings account"]),
        candidate("checking", &["account", "checking account"]),
    ];
    let result = TextMatcher::default().match_intent("Account.", &menu);
    let best = result.best.expect("a tie still names a best intent");
    let runner = result.runner_up.expect("and a runner-up");
    assert!(best.confidence < 0.8 && best.confidence >= 0.5, "{best:?}");
    assert_eq!(best.intent, "savings", "ties keep candidate order");
    assert_eq!(runner.intent, "checking");

    let clear = TextMatcher::default().match_intent("Savings account.", &menu);
    assert_eq!(clear.best.as_ref().map(|b| b.intent.as_str()), Some("savings"));
    assert!(clear.best.unwrap().confidence >= EXACT);
}

#[test]
fn same_intent_from_several_candidates_is_reported_once() {
    let menu =
        vec![candidate("agent", &["agent"]), candidate("agent", &["operator"]), candidate("billing", &["billing"])];
    let result = TextMatcher::default().match_intent("Operator.", &menu);
    assert_eq!(result.best.as_ref().map(|b| b.intent.as_str()), Some("agent"));
    assert!(result.runner_up.is_none_or(|r| r.intent != "agent"));
}

#[test]
fn degenerate_candidates_do_not_panic() {
    let matcher = TextMatcher::default();
    assert_eq!(matcher.match_intent("billing", &[]), Default::default());
    let odd = vec![candidate("empty", &[]), candidate("punct", &["?!", ""]), candidate("polite", &["thank you"])];
    let result = matcher.match_intent("billing", &odd);
    assert!(result.best.is_none(), "{result:?}");
    // A phrase that is only politeness is kept as written but an utterance
    // of only politeness is nothing (Whisper writes "Thank you." for silence).
    assert!(matcher.match_intent("Thank you.", &odd).best.is_none());
}

#[test]
fn matching_is_well_under_a_millisecond() {
    let menu = {
        let mut menu = service_menu();
        menu.extend(command_menu().into_iter().take(11));
        menu
    };
    assert!(menu.len() >= 20);
    let matcher = TextMatcher::default();
    let compiled = CompiledCandidates::new(&menu);
    let utterances = [
        "I'd like to talk to an agent, please.",
        "Building.",
        "What's the weather like today?",
        "4512",
        "Tech support.",
    ];
    let rounds = 200;
    let start = Instant::now();
    for _ in 0..rounds {
        for text in utterances {
            std::hint::black_box(matcher.match_compiled(text, &compiled));
        }
    }
    let per_match = start.elapsed() / (rounds * utterances.len() as u32);
    // Test builds are barely optimised; release is several times faster.
    assert!(per_match.as_micros() < 1000, "{per_match:?} per utterance");
    let start = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(matcher.match_intent("Building.", &menu));
    }
    let uncompiled = start.elapsed() / rounds;
    eprintln!("{} candidates: {per_match:?} per compiled match, {uncompiled:?} compiling included", menu.len());
    assert!(uncompiled.as_micros() < 2000, "{uncompiled:?} per uncompiled match");
}
