//! Unfinished answers: words the call cannot act on yet are held for the
//! menu's `incomplete_timeout_ms`, and a caller who goes on within it is
//! heard with them instead of being cut off by a reprompt.
use super::*;

const WAIT: u64 = 2_000;

/// The test dialplan with unfinished answers held for 2 s (the default).
fn holding(vad: LoudnessVad) -> Harness {
    let mut plan = test_dialplan();
    for menu in plan.menus.values_mut() {
        menu.incomplete_timeout_ms = WAIT;
    }
    let mut h = Harness::with_plan(plan, vad);
    h.send(Input::Start);
    h.played(3_000);
    h
}

fn samples_heard(h: &Harness) -> usize {
    h.last_utterance.as_ref().expect("a recognition request").samples.len()
}

/// "I'd like to … pay my bill": the first words alone name nothing. The
/// caller hears no "Sorry" while pausing, and what follows is recognised
/// together with them, as one answer.
#[test]
fn a_caller_who_pauses_mid_answer_is_heard_as_one_answer() {
    let mut h = holding(LoudnessVad::new());
    assert_eq!(h.speak(400), s(&["recognize 1"]));
    let first = samples_heard(&h);
    let start_ms = h.last_utterance.as_ref().unwrap().start_ms;
    assert!(h.recognized("I'd like to", None, 0.0).is_empty(), "no reprompt while the caller may go on");
    assert!(h.call.next_deadline().is_some(), "a timer runs while the words are held");

    assert_eq!(h.speak(300), s(&["recognize 2"]), "the caller went on within the wait");
    let joined = h.last_utterance.clone().unwrap();
    assert_eq!(joined.start_ms, start_ms, "heard from the first words on");
    assert!(samples_heard(&h) > first, "{} samples, the first words alone had {first}", samples_heard(&h));
    let t = h.now;
    let out = h.recognized("I'd like to pay my bill", Some("billing"), 0.95);
    assert_eq!(
        out[..2],
        s(&[&format!("{t} utterance 'I'd like to pay my bill'"), &format!("{t} intent main/billing Speech 0.95")])
    );
    assert!(!out.iter().any(|l| l.contains("no-match")), "{out:?}");
}

/// A caller who does not go on gets the answer the words deserve, once
/// the wait is over: here a no-match, at the end of speech + 2 s.
#[test]
fn unfinished_words_are_answered_when_the_caller_stays_quiet() {
    let mut h = holding(LoudnessVad::new());
    h.speak(400);
    let end_ms = h.last_utterance.as_ref().unwrap().end_ms;
    assert!(h.recognized("mumble", None, 0.0).is_empty());
    assert_eq!(h.call.next_deadline(), Some(end_ms + WAIT));
    let out = h.tick_to_deadline();
    assert_eq!(
        out[..2],
        s(&[&format!("{} utterance 'mumble'", end_ms + WAIT), &format!("{} no-match main 'mumble'", end_ms + WAIT)])
    );
}

/// "Did you mean billing?" is a question the caller would have to answer:
/// it waits as a no-match does, and is asked if nothing follows.
#[test]
fn a_question_waits_for_the_caller_too() {
    let mut h = holding(LoudnessVad::new());
    h.speak(400);
    assert!(h.recognized("bill", Some("billing"), 0.6).is_empty());
    let out = h.tick_to_deadline();
    assert_eq!(out.last().map(String::as_str), Some("play 2 Did you mean billing?"));
}

/// A clear answer is acted on at the end of the utterance, as before: only
/// answers the call cannot act on wait.
#[test]
fn a_clear_answer_does_not_wait() {
    let mut h = holding(LoudnessVad::new());
    h.speak(400);
    let t = h.now;
    assert_eq!(h.recognized("billing", Some("billing"), 0.95), billing_chosen_by_speech(t));
}

/// A key pressed while words are held answers the question; the words are
/// dropped and never answered later.
#[test]
fn a_key_drops_the_held_words() {
    let mut h = holding(LoudnessVad::new());
    h.speak(400);
    h.recognized("mumble", None, 0.0);
    let out = h.at(h.now + 200, Input::Dtmf('2'));
    assert!(out.iter().any(|l| l.ends_with("intent main/support Dtmf 1.00")), "{out:?}");
    h.played(2_000);
    assert!(h.call.is_finished(), "transferred");
    assert!(!h.transfers.is_empty());
}

/// An account number read in groups ("4 5 … 1 2"): the first group is too
/// short for the step, so it waits, and the second is heard with it.
#[test]
fn a_number_read_in_groups_is_one_answer() {
    let mut h = holding(LoudnessVad::new());
    h.speak(400);
    h.recognized("balance", Some("balance"), 0.95);
    h.audio(2_000, false); // the question plays (audio keeps the detector's clock)
    h.played(0);
    h.speak(600);
    assert_eq!(h.last_grammar.as_ref().unwrap().digits, Some((4, 8)));
    let out = h.recognized("4 5", Some("45"), 0.95);
    assert!(out.is_empty(), "two digits of at least four: the caller goes on: {out:?}");
    let first = samples_heard(&h);
    h.speak(600);
    assert!(samples_heard(&h) > first, "the second group is heard with the first");
    let t = h.now;
    let out = h.recognized("4 5 1 2", Some("4512"), 0.95);
    assert_eq!(
        out,
        s(&[
            &format!("{t} utterance '4 5 1 2'"),
            &format!("{t} prompt main: I heard 4 5 1 2. Is that right?"),
            "play 3 I heard 4 5 1 2. Is that right?",
        ])
    );
}

/// Early answers at a pause hear the held words too: "um … billing"
/// is acted on at the pause.
#[test]
fn an_early_answer_hears_the_held_words() {
    let mut h = holding(LoudnessVad::with_pause(100));
    h.audio(300, true);
    h.audio(100, false);
    assert!(h.recognized("um", None, 0.0).is_empty(), "early and unclear: waits for the end");
    h.audio(300, false);
    let first = samples_heard(&h);
    assert!(h.recognized("um", None, 0.0).is_empty(), "held");
    h.audio(300, true);
    assert_eq!(h.audio(100, false), s(&["recognize 3"]));
    assert!(samples_heard(&h) > first, "the early request carries the held words");
    let out = h.recognized("um billing", Some("billing"), 0.95);
    assert!(out.iter().any(|l| l.ends_with("intent main/billing Speech 0.95")), "{out:?}");
}

/// The caller goes on before the first words are even recognised (a busy
/// recogniser): the answer in flight is superseded by one for both pieces,
/// not by the second piece alone.
#[test]
fn speech_before_the_first_words_are_recognised_is_heard_with_them() {
    let mut h = holding(LoudnessVad::new());
    assert_eq!(h.speak(400), s(&["recognize 1"]));
    let first = samples_heard(&h);
    assert_eq!(h.speak(300), s(&["recognize 2"]));
    assert!(samples_heard(&h) > first, "the second request carries the first words");
    let stale = h.send(Input::Recognized {
        request: 1,
        result: Recognition { text: "I'd like to".into(), ..Default::default() },
    });
    assert!(stale.is_empty(), "the first answer is stale: {stale:?}");
    let out = h.recognized("I'd like to pay my bill", Some("billing"), 0.95);
    assert!(out.iter().any(|l| l.ends_with("intent main/billing Speech 0.95")), "{out:?}");
}
