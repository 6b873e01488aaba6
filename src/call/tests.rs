//! The call machine, input by input, with exact output sequences.
use std::sync::Arc;

use super::test_support::{test_dialplan, LoudnessVad};
use super::*;

/// Drives one call and renders outputs as short lines, events with their
/// time, so a test reads like the call's transcript.
struct Harness {
    call: Call,
    /// The scripted voice detector, run outside the machine as a driver does.
    voice: VoiceFeed<LoudnessVad>,
    now: u64,
    last_play: Option<PlaybackId>,
    last_request: Option<u64>,
    last_grammar: Option<Arc<Grammar>>,
    /// The audio of the last recognition request.
    last_utterance: Option<Utterance>,
    transfers: Vec<(Transfer, Vec<(String, String)>)>,
}

fn line(o: &Output) -> String {
    match o {
        Output::Play { id, prompt, barge_in } => {
            format!("play {id}{} {}", if *barge_in { "" } else { " (no barge-in)" }, prompt.text)
        }
        Output::StopPlayback => "stop".into(),
        Output::ForgetUtterance => "forget utterance".into(),
        Output::Recognize { request, .. } => format!("recognize {request}"),
        Output::Transfer { target, variables } => {
            let vars: Vec<String> = variables.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("transfer {} [{}]", target.extension, vars.join(","))
        }
        Output::Hangup { reason } => format!("hangup ({reason})"),
        Output::Event(e) => match e {
            Event::Prompt { t_ms, menu, text } => format!("{t_ms} prompt {menu}: {text}"),
            Event::Utterance { t_ms, text, .. } => format!("{t_ms} utterance '{text}'"),
            Event::Intent { t_ms, menu, intent, confidence, source } => {
                format!("{t_ms} intent {menu}/{intent} {source:?} {confidence:.2}")
            }
            Event::NoMatch { t_ms, menu, text } => format!("{t_ms} no-match {menu} '{text}'"),
            Event::NoInput { t_ms, menu } => format!("{t_ms} no-input {menu}"),
            Event::Dtmf { t_ms, digit } => format!("{t_ms} dtmf {digit}"),
            Event::Collect { t_ms, variable, value, confirmed } => {
                format!("{t_ms} collect {variable}={value} confirmed={confirmed}")
            }
            Event::Slot { t_ms, slot, value, heard: None } => format!("{t_ms} slot {slot}={value}"),
            Event::Slot { t_ms, slot, value, heard: Some(heard) } => format!("{t_ms} slot {slot}={value} in '{heard}'"),
            Event::BargeIn { t_ms } => format!("{t_ms} barge-in"),
            Event::Degraded { t_ms, .. } => format!("{t_ms} degraded"),
            Event::Transfer { t_ms, extension, context } => format!("{t_ms} transferred {extension} {context:?}"),
            Event::TransferFailed { t_ms, reason } => format!("{t_ms} transfer-failed {reason}"),
            Event::Hangup { t_ms, reason } => format!("{t_ms} hung-up ({reason})"),
        },
    }
}

const MENU_PROMPT: &str = "Welcome. Say billing, support, balance or hours.";
const BILLING_PROMPT: &str = "Billing. Say payments or refunds.";
const HOLD: &str = "Please hold while I transfer you.";

impl Harness {
    /// The labels of the options the last recognition request listened for.
    fn grammar_labels(&self) -> Vec<String> {
        let grammar = self.last_grammar.as_ref().expect("a recognition request");
        grammar.choices.iter().map(|c| c.label.clone()).collect()
    }

    fn with_vad(vad: LoudnessVad) -> Harness {
        Harness::with_plan(test_dialplan(), vad)
    }

    fn with_plan(plan: Dialplan, vad: LoudnessVad) -> Harness {
        let call = Call::new(Arc::new(plan), Arc::new(crate::intent::TextMatcher::default()));
        Harness {
            call,
            voice: VoiceFeed::new(vad),
            now: 0,
            last_play: None,
            last_request: None,
            last_grammar: None,
            last_utterance: None,
            transfers: Vec::new(),
        }
    }

    fn started() -> Harness {
        Harness::started_with(LoudnessVad::new())
    }

    fn started_with(vad: LoudnessVad) -> Harness {
        let mut h = Harness::with_vad(vad);
        let out = h.send(Input::Start);
        assert_eq!(out, [format!("0 prompt main: {MENU_PROMPT}"), format!("play 1 {MENU_PROMPT}")]);
        h
    }

    fn send(&mut self, input: Input) -> Vec<String> {
        let outputs = self.call.handle(self.now, input);
        for o in &outputs {
            match o {
                Output::Play { id, .. } => self.last_play = Some(*id),
                Output::Recognize { request, grammar, utterance } => {
                    self.last_request = Some(*request);
                    self.last_grammar = Some(Arc::clone(grammar));
                    self.last_utterance = Some(utterance.clone());
                }
                Output::Transfer { target, variables } => self.transfers.push((target.clone(), variables.clone())),
                Output::ForgetUtterance => self.voice.forget_utterance(),
                _ => {}
            }
        }
        // Told to the detector, not part of what the caller experiences.
        outputs.iter().filter(|o| !matches!(o, Output::ForgetUtterance)).map(line).collect()
    }

    fn at(&mut self, t: u64, input: Input) -> Vec<String> {
        self.now = t;
        self.send(input)
    }

    /// The PBX reports that the last prompt finished, `after` ms from now.
    fn played(&mut self, after: u64) -> Vec<String> {
        self.now += after;
        let id = self.last_play.expect("something was played");
        self.send(Input::PlaybackFinished(id))
    }

    /// `ms` of loud audio then 400 ms of silence, in 20 ms frames.
    fn speak(&mut self, ms: u64) -> Vec<String> {
        let mut lines = self.audio(ms, true);
        lines.extend(self.audio(400, false));
        lines
    }

    /// `ms` of loud audio or of silence, in 20 ms frames.
    fn audio(&mut self, ms: u64, loud: bool) -> Vec<String> {
        self.audio_at(ms, if loud { 0.3 } else { 0.0 })
    }

    /// `ms` of a square wave of amplitude `level`, in 20 ms frames.
    fn audio_at(&mut self, ms: u64, level: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for _ in 0..ms / 20 {
            let frame: Vec<f32> = (0..320).map(|n| if n % 2 == 0 { level } else { -level }).collect();
            self.now += 20;
            for input in self.voice.hear(&self.call, self.now, &frame) {
                lines.extend(self.send(input));
            }
        }
        lines
    }

    fn recognized(&mut self, text: &str, choice: Option<&str>, confidence: f32) -> Vec<String> {
        let request = self.last_request.expect("a recognition was requested");
        let result =
            Recognition { text: text.into(), choice: choice.map(String::from), confidence, ..Default::default() };
        self.send(Input::Recognized { request, result })
    }

    fn tick_to_deadline(&mut self) -> Vec<String> {
        self.now = self.call.next_deadline().expect("a timer is running");
        self.send(Input::Tick)
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The outputs of "billing" recognised at 0.95 in the main menu at `t`.
fn billing_chosen_by_speech(t: u64) -> Vec<String> {
    s(&[
        &format!("{t} utterance 'billing'"),
        &format!("{t} intent main/billing Speech 0.95"),
        &format!("{t} prompt billing: {BILLING_PROMPT}"),
        &format!("play 2 (no barge-in) {BILLING_PROMPT}"),
    ])
}

#[test]
fn billing_by_key_stops_the_prompt() {
    let mut h = Harness::started();
    let out = h.at(1_000, Input::Dtmf('1'));
    assert_eq!(
        out,
        s(&[
            "1000 dtmf 1",
            "stop",
            "1000 intent main/billing Dtmf 1.00",
            &format!("1000 prompt billing: {BILLING_PROMPT}"),
            &format!("play 2 (no barge-in) {BILLING_PROMPT}"),
        ])
    );
    assert_eq!(h.call.current_menu(), "billing");
}

#[test]
fn agent_from_a_sub_menu_by_voice() {
    let mut h = Harness::started();
    h.at(500, Input::Dtmf('1'));
    h.played(2_000);
    let out = h.speak(300);
    assert_eq!(out, s(&["recognize 1"]));
    assert_eq!(h.grammar_labels(), ["payments", "refunds", "agent", "repeat", "back", "main_menu", "goodbye"]);
    let t = h.now;
    let out = h.recognized("I want a human", Some("agent"), 0.95);
    assert_eq!(
        out,
        s(&[
            &format!("{t} utterance 'I want a human'"),
            &format!("{t} intent billing/agent Speech 0.95"),
            &format!("{t} prompt billing: {HOLD}"),
            &format!("play 3 (no barge-in) {HOLD}"),
        ])
    );
    assert!(!h.call.is_finished(), "the caller hears the announcement first");
    let out = h.played(2_000);
    // The option chosen on the way travels too: the agent sees "billing".
    assert_eq!(
        out,
        s(&[&format!("{} transferred 1000 Some(\"agents\")", t + 2_000), "transfer 1000 [option=billing]"])
    );
    assert!(h.call.is_finished());
    assert_eq!(h.call.next_deadline(), None);
}

/// The detector listens harder once the caller has the floor than while a
/// prompt plays: a quiet voice (or line noise) at a level that must not
/// barge in on the greeting is heard as speech after it.
#[test]
fn quiet_speech_does_not_barge_in_but_is_heard_after_the_prompt() {
    let mut h = Harness::started();
    let quiet = 0.05; // -26 dBFS: between the two detector thresholds
    assert!(h.audio_at(600, quiet).is_empty(), "no barge-in on the greeting");
    h.audio(600, false);
    h.played(1_000);
    let mut out = h.audio_at(600, quiet);
    out.extend(h.audio(400, false));
    assert_eq!(out, s(&["recognize 1"]), "heard once the caller has the floor");
}

/// A caller who said a clear menu answer is served at the pause, without
/// waiting for the full end-of-utterance silence.
#[test]
fn a_clear_answer_at_a_pause_is_acted_on_at_once() {
    let mut h = Harness::started_with(LoudnessVad::with_pause(100));
    h.played(3_000);
    h.audio(300, true);
    assert_eq!(h.audio(100, false), s(&["recognize 1"]), "the pause asks for an early answer");
    let t = h.now;
    let out = h.recognized("billing", Some("billing"), 0.95);
    assert_eq!(out, billing_chosen_by_speech(t));
    // The rest of the silence brings no second recognition of the same words.
    assert!(h.audio(400, false).is_empty());
}

/// Recognition starts at the lull, before the pause is long enough to act
/// on: a clear answer that is back early waits for the pause, so a caller
/// who merely drew breath is not cut off.
#[test]
fn an_answer_back_before_the_pause_is_acted_on_at_the_pause() {
    let mut h = Harness::started_with(LoudnessVad::with_lull_and_pause(100, 200));
    h.played(3_000);
    h.audio(300, true);
    assert_eq!(h.audio(100, false), s(&["recognize 1"]), "the lull starts recognition");
    assert!(h.recognized("billing", Some("billing"), 0.95).is_empty(), "not acted on before the pause");
    let out = h.audio(100, false);
    let t = h.now;
    assert_eq!(out, billing_chosen_by_speech(t), "acted on the moment the pause is long enough");
    assert!(h.audio(400, false).is_empty(), "no second recognition of the same words");
}

/// A clear early answer is dropped when the caller goes on speaking before
/// the pause is long enough: the whole utterance decides.
#[test]
fn speech_between_the_lull_and_the_pause_drops_a_clear_early_answer() {
    let mut h = Harness::started_with(LoudnessVad::with_lull_and_pause(100, 200));
    h.played(3_000);
    h.audio(300, true);
    assert_eq!(h.audio(100, false), s(&["recognize 1"]));
    assert!(h.recognized("billing", Some("billing"), 0.95).is_empty());
    assert!(h.audio(60, false).is_empty());
    assert!(h.audio(200, true).is_empty(), "the caller goes on: nothing acted on");
    assert_eq!(h.audio(100, false), s(&["recognize 2"]), "the next lull asks again");
    let out = h.recognized("billing support", Some("support"), 0.95);
    assert!(out.is_empty(), "{out:?}");
    let out = h.audio(100, false);
    assert!(out.iter().any(|l| l.contains("intent main/support")), "{out:?}");
    assert!(!out.iter().any(|l| l.contains("main/billing")), "{out:?}");
}

/// An answer that is not clear at the pause (here: between the thresholds)
/// waits for the end of the utterance, as without pauses.
#[test]
fn an_unclear_answer_at_a_pause_waits_for_the_end() {
    let mut h = Harness::started_with(LoudnessVad::with_pause(100));
    h.played(3_000);
    h.audio(300, true);
    assert_eq!(h.audio(100, false), s(&["recognize 1"]));
    assert!(h.recognized("bill", Some("billing"), 0.6).is_empty(), "no question yet: the caller may go on");
    assert_eq!(h.audio(200, false), s(&["recognize 2"]), "the utterance's end asks again");
    let out = h.recognized("bill", Some("billing"), 0.6);
    assert_eq!(out.last().map(String::as_str), Some("play 2 Did you mean billing?"));
}

/// Speech after the pause means the caller was not done: the early answer
/// is dropped even if it arrives later and looks clear.
#[test]
fn speech_after_a_pause_drops_the_early_answer() {
    let mut h = Harness::started_with(LoudnessVad::with_pause(100));
    h.played(3_000);
    h.audio(300, true);
    assert_eq!(h.audio(100, false), s(&["recognize 1"]));
    h.audio(200, true);
    assert!(h.recognized("billing", Some("billing"), 0.95).is_empty(), "stale after the caller went on");
    assert_eq!(h.audio(300, false), s(&["recognize 2"]), "a pause again; the end waits for that answer");
    let out = h.recognized("billing support", Some("support"), 0.95);
    assert!(out.iter().any(|l| l.contains("intent main/support")), "{out:?}");
}

/// When the utterance ends before the early answer is back (a busy
/// recogniser), the same request stands for the whole utterance: nothing
/// is recognised twice, and its answer is used as a final one.
#[test]
fn the_end_of_the_utterance_reuses_the_early_request() {
    let mut h = Harness::started_with(LoudnessVad::with_pause(100));
    h.played(3_000);
    h.audio(300, true);
    assert_eq!(h.audio(100, false), s(&["recognize 1"]));
    assert!(h.audio(300, false).is_empty(), "no second recognition of the same words");
    let out = h.recognized("bill", Some("billing"), 0.6);
    assert_eq!(out.last().map(String::as_str), Some("play 2 Did you mean billing?"), "treated as the final answer");
}

/// A call with early answers, chosen "balance" by voice: the account
/// number step (4 to 8 digits) is listening.
fn at_account_number_step() -> Harness {
    let mut h = Harness::started_with(LoudnessVad::with_pause(100));
    h.played(3_000);
    h.audio(300, true);
    h.audio(100, false);
    h.recognized("balance", Some("balance"), 0.95);
    h.played(2_000);
    h
}

/// Spoken digits are answered at the pause once the string is as long as
/// the step takes: nothing more can follow, so the read-back comes without
/// the end-of-utterance wait.
#[test]
fn a_complete_digit_string_is_read_back_at_the_pause() {
    let mut h = at_account_number_step();
    h.audio(1_500, true);
    assert_eq!(h.audio(100, false), s(&["recognize 2"]), "the pause asks for an early answer");
    assert_eq!(h.last_grammar.as_ref().unwrap().digits, Some((4, 8)));
    let t = h.now;
    let out = h.recognized("4 5 1 2 3 4 5 6", Some("45123456"), 0.95);
    assert_eq!(
        out,
        s(&[
            &format!("{t} utterance '4 5 1 2 3 4 5 6'"),
            &format!("{t} prompt main: I heard 4 5 1 2 3 4 5 6. Is that right?"),
            "play 3 I heard 4 5 1 2 3 4 5 6. Is that right?",
        ])
    );
    assert!(h.audio(400, false).is_empty(), "no second recognition of the same digits");
}

/// A digit string shorter than the step's longest may go on after the
/// pause ("4 5 1 2 … 7 8"), so it waits for the end of the utterance, as
/// does a long one the recogniser is unsure of, or one the open transcript
/// reads shorter (the digit search can repeat the words so far up to a
/// length the step takes).
#[test]
fn a_digit_string_that_may_go_on_waits_for_the_end() {
    for (text, digits, confidence) in
        [("4512", "4512", 0.95), ("45123456", "45123456", 0.6), ("4 5 1 2", "45124512", 0.95)]
    {
        let mut h = at_account_number_step();
        h.audio(1_200, true);
        assert_eq!(h.audio(100, false), s(&["recognize 2"]));
        assert!(h.recognized(text, Some(digits), confidence).is_empty(), "{digits}: the caller may go on");
        assert_eq!(h.audio(300, false), s(&["recognize 3"]), "{digits}: the utterance's end asks again");
        let out = h.recognized(text, Some(digits), confidence);
        assert!(out.last().is_some_and(|l| l.ends_with("Is that right?")), "{digits}: {out:?}");
    }
}

/// A one-digit step: the digit the recogniser chose is acted on at the
/// pause from the `confirm` threshold (0.5 here) up, even when Whisper's
/// open transcript writes it as another word ("A." for 8): the end of the
/// utterance would take the same digit, later. Less sure digits, and words
/// it found no digit in, wait for the end.
#[test]
fn a_single_digit_is_taken_at_the_pause_whatever_the_transcript() {
    for (choice, confidence, at_pause) in
        [(Some("8"), 0.95, true), (Some("8"), 0.6, true), (Some("8"), 0.4, false), (None, 0.0, false)]
    {
        let mut plan = test_dialplan();
        let balance = plan.menus.get_mut("main").unwrap().options.iter_mut().find(|o| o.intent == "balance").unwrap();
        let Action::Collect(collect) = &mut balance.action else { panic!("balance collects") };
        (collect.min_digits, collect.max_digits) = (1, 1);
        let mut h = Harness::with_plan(plan, LoudnessVad::with_pause(100));
        h.send(Input::Start);
        h.played(3_000);
        h.audio(300, true);
        h.audio(100, false);
        h.recognized("balance", Some("balance"), 0.95);
        h.played(2_000);

        h.audio(400, true);
        assert_eq!(h.audio(100, false), s(&["recognize 2"]), "the pause asks for an early answer");
        let out = h.recognized("A.", choice, confidence);
        if at_pause {
            assert!(out.last().is_some_and(|l| l.ends_with("I heard 8. Is that right?")), "{out:?}");
            assert!(h.audio(400, false).is_empty(), "no second recognition of the same digit");
        } else {
            assert!(out.is_empty(), "{choice:?} at {confidence}: waits for the end, {out:?}");
            assert_eq!(h.audio(300, false), s(&["recognize 3"]), "the utterance's end asks again");
        }
    }
}

#[test]
fn between_thresholds_the_machine_asks_and_acts_on_yes() {
    let mut h = Harness::started();
    h.played(3_000);
    h.speak(300);
    let t = h.now;
    let out = h.recognized("bill", Some("billing"), 0.6);
    assert_eq!(
        out,
        s(&[
            &format!("{t} utterance 'bill'"),
            &format!("{t} prompt main: Did you mean billing?"),
            "play 2 Did you mean billing?",
        ])
    );
    h.played(1_000);
    assert_eq!(h.speak(200), s(&["recognize 2"]));
    assert_eq!(h.grammar_labels(), ["yes", "no"]);
    let t = h.now;
    let out = h.recognized("Yes.", None, 1.0);
    assert_eq!(
        out,
        s(&[
            &format!("{t} utterance 'Yes.'"),
            &format!("{t} intent main/billing Speech 0.60"),
            &format!("{t} prompt billing: {BILLING_PROMPT}"),
            &format!("play 3 (no barge-in) {BILLING_PROMPT}"),
        ])
    );
}

#[test]
fn a_no_to_did_you_mean_is_a_no_match_and_keys_answer_too() {
    let mut h = Harness::started();
    h.played(3_000);
    h.speak(300);
    h.recognized("bill", Some("billing"), 0.6);
    h.played(1_000);
    // Key 2 = no.
    let t = h.now + 100;
    let out = h.at(t, Input::Dtmf('2'));
    assert_eq!(
        out,
        s(&[
            &format!("{t} dtmf 2"),
            &format!("{t} no-match main 'key 2'"),
            &format!(
                "{t} prompt main: Sorry, I did not get that. Say billing, support, balance or hours, or press 1 to 4."
            ),
            "play 3 Sorry, I did not get that. Say billing, support, balance or hours, or press 1 to 4.",
        ])
    );
    // Below `confirm`: straight to no-match.
    h.played(1_000);
    h.speak(300);
    let out = h.recognized("bill", Some("billing"), 0.3);
    assert!(out[1].ends_with("no-match main 'bill'"), "{out:?}");
    // Asked again, key 1 = yes.
    h.played(1_000);
    h.speak(300);
    h.recognized("bill", Some("billing"), 0.7);
    let out = h.at(h.now + 50, Input::Dtmf('1'));
    assert!(out.iter().any(|l| l.ends_with("intent main/billing Dtmf 0.70")), "{out:?}");
}

#[test]
fn account_number_by_keys_with_pound_and_read_back() {
    let mut h = Harness::started();
    h.at(200, Input::Dtmf('3'));
    h.played(3_000);
    for (i, k) in "4512".chars().enumerate() {
        let out = h.at(4_000 + i as u64 * 300, Input::Dtmf(k));
        assert_eq!(out, [format!("{} dtmf {k}", 4_000 + i as u64 * 300)]);
        assert_eq!(h.call.next_deadline(), Some(h.now + INTER_DIGIT_MS), "inter-digit timer");
    }
    let out = h.at(5_500, Input::Dtmf('#'));
    assert_eq!(
        out,
        s(&[
            "5500 dtmf #",
            "5500 prompt main: I heard 4 5 1 2. Is that right?",
            "play 3 I heard 4 5 1 2. Is that right?"
        ])
    );
    h.played(2_000);
    let out = h.at(8_000, Input::Dtmf('1'));
    assert_eq!(
        out,
        s(&[
            "8000 dtmf 1",
            "8000 collect account=4512 confirmed=true",
            &format!("8000 prompt main: {HOLD}"),
            &format!("play 4 (no barge-in) {HOLD}"),
        ])
    );
    h.played(1_500);
    let variables = vec![("option".to_string(), "balance".to_string()), ("account".into(), "4512".into())];
    assert_eq!(h.transfers, [(super::test_support::transfer("3000"), variables.clone())]);
    assert_eq!(h.call.variables(), variables);
}

#[test]
fn account_number_by_voice_with_read_back_and_yes() {
    let mut h = Harness::started();
    h.played(3_000);
    h.speak(300);
    h.recognized("balance", Some("balance"), 0.9);
    h.played(2_000);
    h.speak(1_200);
    assert_eq!(h.last_grammar.as_ref().unwrap().digits, Some((4, 8)));
    let t = h.now;
    let out = h.recognized("four five one two", None, 1.0);
    assert_eq!(
        out,
        s(&[
            &format!("{t} utterance 'four five one two'"),
            &format!("{t} prompt main: I heard 4 5 1 2. Is that right?"),
            "play 3 I heard 4 5 1 2. Is that right?",
        ])
    );
    h.played(2_000);
    h.speak(300);
    let t = h.now;
    let out = h.recognized("yes", Some("yes"), 0.97);
    assert_eq!(out[1], format!("{t} collect account=4512 confirmed=true"));
    h.played(1_000);
    assert_eq!(h.transfers[0].0.extension, "3000");
}

const SERVICE_PROMPT: &str = "Which service is down: internet, TV or phone?";

/// The caller said "outage" in the main menu and was asked which service.
fn at_service_step() -> Harness {
    let mut h = Harness::started();
    h.played(3_000);
    h.speak(300);
    let out = h.recognized("outage", Some("outage"), 0.9);
    assert_eq!(out.last().unwrap(), &format!("play 2 {SERVICE_PROMPT}"));
    h.played(2_000);
    h
}

#[test]
fn a_service_said_clearly_is_taken_and_travels_with_the_transfer() {
    let mut h = at_service_step();
    h.speak(400);
    assert_eq!(h.grammar_labels(), ["internet", "tv", "phone", "agent", "repeat", "back", "main_menu", "goodbye"]);
    assert_eq!(h.last_grammar.as_ref().unwrap().digits, None, "a choice step does not listen for digits");
    let t = h.now;
    let out = h.recognized("Television.", Some("tv"), 0.93);
    assert_eq!(
        out,
        s(&[
            &format!("{t} utterance 'Television.'"),
            &format!("{t} collect service=tv confirmed=false"),
            &format!("{t} prompt main: {HOLD}"),
            &format!("play 3 (no barge-in) {HOLD}"),
        ])
    );
    h.played(1_500);
    assert_eq!(h.transfers[0].0.extension, "4000");
    assert_eq!(h.transfers[0].1, [("option".to_string(), "outage".to_string()), ("service".into(), "tv".into())]);
}

#[test]
fn a_service_the_recogniser_is_unsure_of_is_read_back() {
    // "TV" heard with a confidence between the two thresholds; the caller
    // answers the read-back.
    let read_back_answered = |answer: &str| {
        let mut h = at_service_step();
        h.speak(400);
        let t = h.now;
        let out = h.recognized("TV", Some("tv"), 0.6);
        assert_eq!(
            out[1..],
            s(&[&format!("{t} prompt main: I heard TV. Is that right?"), "play 3 I heard TV. Is that right?"])
        );
        h.played(1_500);
        h.speak(300);
        let t = h.now;
        (h.recognized(answer, Some(answer), 0.95), t)
    };
    let (out, t) = read_back_answered("yes");
    assert_eq!(out[1], format!("{t} collect service=tv confirmed=true"));
    // A no asks the question again instead.
    let (out, t) = read_back_answered("no");
    assert_eq!(
        out[1..],
        s(&[
            &format!("{t} no-match main 'no'"),
            &format!("{t} prompt main: {SERVICE_PROMPT}"),
            &format!("play 4 {SERVICE_PROMPT}")
        ])
    );
}

#[test]
fn a_service_by_key_and_a_key_that_is_not_a_choice() {
    let mut h = Harness::started();
    h.at(500, Input::Dtmf('5'));
    h.played(2_000);
    let out = h.at(h.now + 500, Input::Dtmf('9'));
    assert_eq!(out[1], format!("{} no-match main 'key 9'", h.now));
    assert_eq!(out.last().unwrap(), &format!("play 3 {SERVICE_PROMPT}"));
    let out = h.at(h.now + 500, Input::Dtmf('3'));
    assert_eq!(out[2], format!("{} collect service=phone confirmed=false", h.now));
    // The operator's key still works in the step.
    let mut h = Harness::started();
    h.at(500, Input::Dtmf('5'));
    let out = h.at(1_000, Input::Dtmf('0'));
    assert!(out.iter().any(|l| l.ends_with("intent main/agent Dtmf 1.00")), "{out:?}");
}

#[test]
fn words_that_name_no_service_are_a_no_match_or_a_global() {
    let mut h = at_service_step();
    h.speak(400);
    let t = h.now;
    let out = h.recognized("my fridge is broken", None, 0.9);
    assert_eq!(out[1], format!("{t} no-match main 'my fridge is broken'"));
    h.played(2_000);
    h.speak(400);
    let t = h.now;
    let out = h.recognized("a human please", Some("agent"), 0.95);
    assert_eq!(out[1], format!("{t} intent main/agent Speech 0.95"));
    // Without the recogniser's choice, the text names the service.
    let mut h = at_service_step();
    h.speak(400);
    let out = h.recognized("my broadband is down", None, 0.9);
    assert!(out.iter().any(|l| l.ends_with("collect service=internet confirmed=false")), "{out:?}");
}

#[test]
fn without_speech_a_service_is_offered_as_keys() {
    let mut h = at_service_step();
    h.speak(400);
    let request = h.last_request.unwrap();
    let out = h.send(Input::RecognitionFailed { request, reason: "recogniser crashed".into() });
    let keys =
        "For internet, press 1. For TV, press 2. For phone, press 3. For agent, press 0. For repeat, press star.";
    assert_eq!(out.last().unwrap(), &format!("play 4 {keys}"));
    h.played(4_000);
    let out = h.at(h.now + 500, Input::Dtmf('1'));
    assert_eq!(out[1], format!("{} collect service=internet confirmed=false", h.now));
}

#[test]
fn a_clear_service_at_a_pause_is_taken_at_once() {
    let mut h = Harness::started_with(LoudnessVad::with_lull_and_pause(100, 200));
    h.played(3_000);
    h.at(h.now, Input::Dtmf('5'));
    h.played(2_000);
    h.audio(400, true);
    let out = h.audio(100, false);
    assert_eq!(out, s(&["recognize 1"]), "asked at the lull");
    let out = h.recognized("Internet.", Some("internet"), 0.95);
    assert!(out.is_empty(), "held until the pause: {out:?}");
    let out = h.audio(100, false);
    assert!(out.iter().any(|l| l.ends_with("collect service=internet confirmed=false")), "{out:?}");
}

#[test]
fn too_few_digits_then_the_inter_digit_timeout() {
    let mut h = Harness::started();
    h.at(100, Input::Dtmf('3'));
    h.played(1_000);
    h.at(2_000, Input::Dtmf('4'));
    h.at(2_200, Input::Dtmf('5'));
    // 5 s after the last key the entry ends; two digits are too few.
    let out = h.tick_to_deadline();
    assert_eq!(out[0], "7200 no-match main '45'");
    assert_eq!(out[2], "play 3 Please say or key in your account number, then press pound.");
    // Eight keys end the entry without pound.
    h.played(1_000);
    let mut last = Vec::new();
    for (i, k) in "12345678".chars().enumerate() {
        last = h.at(9_000 + i as u64 * 100, Input::Dtmf(k));
    }
    assert!(last.iter().any(|l| l.ends_with("I heard 1 2 3 4 5 6 7 8. Is that right?")), "{last:?}");
}

#[test]
fn no_input_reprompts_then_escalates_to_the_operator() {
    let mut h = Harness::started();
    h.played(3_000);
    assert_eq!(h.call.next_deadline(), Some(8_000));
    let reprompt = "Sorry, I did not hear you. Say billing, support, balance or hours, or press 1 to 4.";
    assert_eq!(
        h.tick_to_deadline(),
        s(&["8000 no-input main", &format!("8000 prompt main: {reprompt}"), &format!("play 2 {reprompt}")])
    );
    h.played(4_000);
    assert_eq!(h.tick_to_deadline()[0], "17000 no-input main");
    h.played(4_000);
    assert_eq!(
        h.tick_to_deadline(),
        s(&["26000 no-input main", &format!("26000 prompt main: {HOLD}"), &format!("play 4 (no barge-in) {HOLD}")])
    );
    h.played(1_000);
    assert_eq!(h.transfers[0].0.extension, "1000");
}

#[test]
fn no_match_reprompts_then_escalates() {
    let mut h = Harness::started();
    h.played(3_000);
    for round in 0..3 {
        h.speak(300);
        let out = h.recognized("banana split", None, 1.0);
        assert!(out[1].ends_with("no-match main 'banana split'"), "{out:?}");
        if round < 2 {
            assert!(out[3].starts_with("play") && out[3].contains("Sorry, I did not get that"), "{out:?}");
            h.played(3_000);
        } else {
            assert_eq!(out[3], format!("play {} (no barge-in) {HOLD}", h.last_play.unwrap()));
        }
    }
}

#[test]
fn speech_barges_in_only_where_the_menu_allows_it() {
    let mut h = Harness::started();
    // Main menu allows barge-in: the prompt stops as soon as speech starts.
    h.now = 1_000;
    let out = h.speak(300);
    assert_eq!(out, s(&["stop", "1100 barge-in", "recognize 1"]));
    h.recognized("billing", None, 1.0);
    // Billing does not: speech during its prompt is dropped.
    let out = h.speak(300);
    assert!(out.is_empty(), "{out:?}");
    h.played(500);
    assert_eq!(h.speak(300), s(&["recognize 2"]));
    let out = h.recognized("refunds please", None, 1.0);
    assert!(out[1].ends_with("intent billing/refunds Speech 1.00"), "{out:?}");
}

/// What the caller hears at `t` when speech cannot be used: the notice,
/// then the main menu's question as keys.
fn keys_instead_of_speech(t: &dyn std::fmt::Display) -> Vec<String> {
    let keys = "For billing, press 1. For support, press 2. For balance, press 3. For outage, press 5. For hours, press 4. For agent, press 0. For repeat, press star.";
    s(&[
        &format!("{t} degraded"),
        &format!("{t} prompt main: Sorry, speech recognition is not available. Please use your keypad."),
        "play 2 Sorry, speech recognition is not available. Please use your keypad.",
        &format!("{t} prompt main: {keys}"),
        &format!("play 3 {keys}"),
    ])
}

#[test]
fn recogniser_failure_switches_to_keys_and_keys_still_work() {
    let mut h = Harness::started();
    h.played(3_000);
    h.speak(300);
    let t = h.now;
    let request = h.last_request.unwrap();
    let out = h.send(Input::RecognitionFailed { request, reason: "pool overloaded".into() });
    assert_eq!(out, keys_instead_of_speech(&t));
    assert!(h.call.is_degraded());
    h.played(5_000);
    assert!(h.speak(500).is_empty(), "speech is ignored from now on");
    let out = h.at(h.now + 100, Input::Dtmf('1'));
    assert!(out.iter().any(|l| l.ends_with("intent main/billing Dtmf 1.00")), "{out:?}");
    assert!(out.last().unwrap().contains("For payments, press 1. For refunds, press 2."), "{out:?}");
    // Silence keeps being answered and ends with the operator.
    h.played(3_000);
    assert!(h.tick_to_deadline()[0].ends_with("no-input billing"));
    h.played(3_000);
    let out = h.tick_to_deadline();
    assert!(out.last().unwrap().ends_with(HOLD), "{out:?}");
    h.played(1_000);
    assert_eq!(h.transfers[0].0.extension, "1000");
}

/// A voice detector that breaks mid-call must not leave the caller hearing
/// "I did not hear you" into silence: the call says speech is off, offers
/// the question as keys, and keys then work.
#[test]
fn a_failed_voice_detector_switches_the_call_to_keys() {
    let mut h = Harness::started_with(LoudnessVad::failing_after(300));
    h.played(500);
    let out = h.audio(600, false);
    let t = out[0].split(' ').next().unwrap().to_string();
    assert_eq!(out, keys_instead_of_speech(&t));
    assert!(h.call.is_degraded());
    h.played(5_000);
    let out = h.at(h.now + 100, Input::Dtmf('1'));
    assert!(out.iter().any(|l| l.ends_with("intent main/billing Dtmf 1.00")), "{out:?}");
}

#[test]
fn a_busy_recogniser_costs_one_answer_and_speech_comes_back() {
    let mut h = Harness::started();
    h.played(3_000);
    h.speak(300);
    let t = h.now;
    let request = h.last_request.unwrap();
    let out = h.send(Input::RecognitionRefused { request, reason: "recogniser overloaded".into() });
    assert_eq!(out, keys_instead_of_speech(&t));
    assert!(!h.call.is_degraded(), "speech stays on");
    h.played(5_000);
    assert_eq!(h.speak(300), s(&["recognize 2"]), "the next utterance is recognised");
    let out = h.recognized("billing", None, 1.0);
    assert!(out[1].ends_with("intent main/billing Speech 1.00"), "{out:?}");
}

#[test]
fn refusals_in_a_row_switch_the_call_to_keys() {
    let mut h = Harness::started();
    h.played(3_000);
    for n in 1..=MAX_REFUSALS {
        h.speak(300);
        let request = h.last_request.unwrap();
        let out = h.send(Input::RecognitionRefused { request, reason: "recogniser overloaded".into() });
        assert!(out[0].ends_with("degraded"), "{out:?}");
        assert_eq!(h.call.is_degraded(), n == MAX_REFUSALS, "after {n} refusals");
        h.played(5_000);
    }
    assert!(h.speak(500).is_empty(), "speech is ignored from now on");
    // A refusal of a request nobody waits for changes nothing.
    let mut h = Harness::started();
    h.played(3_000);
    h.speak(300);
    let request = h.last_request.unwrap();
    h.at(h.now + 100, Input::Dtmf('9'));
    assert!(h.send(Input::RecognitionRefused { request, reason: "x".into() }).is_empty());
}

#[test]
fn a_recogniser_that_never_answers_degrades_the_call() {
    let mut h = Harness::started();
    h.played(3_000);
    h.speak(300);
    // The utterance ended 100 ms before `speak` stopped feeding silence.
    assert_eq!(h.call.next_deadline(), Some(h.now - 100 + RECOGNITION_TIMEOUT_MS));
    let out = h.tick_to_deadline();
    assert!(out[0].ends_with("degraded") && out.len() == 5, "{out:?}");
}

#[test]
fn transfer_failure_apologises_and_returns_then_gives_up_politely() {
    let mut h = Harness::started();
    h.at(100, Input::Dtmf('2'));
    h.played(1_000);
    assert!(h.call.is_finished());
    let out = h.at(5_000, Input::TransferFailed { reason: "busy".into() });
    assert_eq!(
        out,
        s(&[
            "5000 transfer-failed busy",
            "5000 prompt main: Sorry, the transfer failed.",
            "play 3 (no barge-in) Sorry, the transfer failed.",
            &format!("5000 prompt main: {MENU_PROMPT}"),
            &format!("play 4 {MENU_PROMPT}"),
        ])
    );
    assert!(!h.call.is_finished());
    h.at(6_000, Input::Dtmf('2'));
    h.played(1_000);
    let out = h.at(9_000, Input::TransferFailed { reason: "busy".into() });
    assert_eq!(
        out,
        s(&[
            "9000 transfer-failed busy",
            "9000 prompt main: Sorry, the transfer failed.",
            "play 6 (no barge-in) Sorry, the transfer failed.",
            "9000 prompt main: Goodbye.",
            "play 7 (no barge-in) Goodbye.",
        ])
    );
    assert_eq!(h.played(2_000), s(&["11000 hung-up (transfer failed twice)", "hangup (transfer failed twice)"]));
    assert!(h.call.is_finished());
}

#[test]
fn caller_hangs_up_mid_prompt() {
    let mut h = Harness::started();
    assert_eq!(h.at(700, Input::Hangup), s(&["700 hung-up (caller hung up)"]));
    assert!(h.call.is_finished());
    assert_eq!(h.call.next_deadline(), None);
    assert!(h.at(800, Input::Dtmf('1')).is_empty());
    assert!(h.played(100).is_empty());
}

#[test]
fn stale_results_are_ignored() {
    let mut h = Harness::started();
    h.played(3_000);
    h.speak(300);
    let first = h.last_request.unwrap();
    h.speak(300);
    let stale = Recognition {
        text: "support".into(),
        choice: Some("support".into()),
        confidence: 0.99,
        decode_ms: 5,
        ..Default::default()
    };
    assert!(h.send(Input::Recognized { request: first, result: stale }).is_empty());
    let out = h.recognized("billing", Some("billing"), 0.99);
    assert!(out[1].ends_with("intent main/billing Speech 0.99"), "{out:?}");
}

#[test]
fn empty_results_cost_one_retry_in_a_row_not_more() {
    let mut h = Harness::started();
    h.played(3_000);
    let floor = h.now;
    h.speak(300);
    let out = h.recognized("", None, 0.0);
    assert!(out[1].ends_with("no-match main ''"), "{out:?}");
    h.played(3_000);
    let floor_again = h.now;
    assert!(floor_again > floor);
    h.speak(300);
    let out = h.recognized("", None, 0.0);
    assert_eq!(out.len(), 1, "second empty result in a row is ignored: {out:?}");
    // ...and does not extend the wait for a real answer.
    assert_eq!(h.call.next_deadline(), Some(floor_again + 5_000));
}

#[test]
fn hours_message_returns_to_the_menu_and_globals_work() {
    let mut h = Harness::started();
    h.at(100, Input::Dtmf('4'));
    let out = h.played(2_000);
    assert_eq!(out, s(&[&format!("2100 prompt main: {MENU_PROMPT}"), &format!("play 3 {MENU_PROMPT}")]));
    // billing, then "back" by voice returns to main.
    h.at(2_200, Input::Dtmf('1'));
    h.played(2_000);
    h.speak(300);
    let out = h.recognized("go back", None, 1.0);
    assert!(out.last().unwrap().ends_with(MENU_PROMPT), "{out:?}");
    // repeat by key replays the current prompt; goodbye hangs up.
    let out = h.at(h.now + 10, Input::Dtmf('*'));
    assert!(out.last().unwrap().ends_with(MENU_PROMPT), "{out:?}");
    h.played(1_000);
    h.speak(300);
    h.recognized("bye", None, 1.0);
    let out = h.played(500);
    assert_eq!(out.last().unwrap(), "hangup (caller said goodbye)");
}

/// A playback report that never comes must not leave the caller in silence.
#[test]
fn missing_playback_reports_do_not_stall_the_call() {
    let mut h = Harness::started();
    let guard = h.call.next_deadline().unwrap();
    assert!(guard <= PLAYBACK_GRACE_MS + 100 * MENU_PROMPT.len() as u64);
    let out = h.tick_to_deadline();
    assert!(out.is_empty());
    assert_eq!(h.call.next_deadline(), Some(guard + 5_000), "no-input timer runs");
}

/// Found by the call-machine property test: the caller speaks again while
/// the first utterance is being recognised; it comes back empty, and the
/// no-match prompt replaces the speech timer. Once that prompt ended the
/// machine still believed the speech timer ran, and if the audio then
/// stopped (a stalled stream) no timer ran at all.
#[test]
fn speech_that_outlasts_a_reprompt_keeps_a_timer_running() {
    let mut h = Harness::started();
    h.played(1_000);
    h.speak(300);
    assert!(h.last_request.is_some());
    h.audio(300, true);
    let out = h.recognized("", None, 0.0);
    assert!(out.iter().any(|l| l.contains("no-match main")), "{out:?}");
    h.played(100);
    let out = h.tick_to_deadline();
    assert!(out.iter().any(|l| l.contains("no-input main")), "the stalled caller is prompted again: {out:?}");
}

// Random input sequences (never a panic, never silence without a timer, a
// silent caller's call ends): `fuzzing::tests::call_machine_never_leaves_a_caller_stuck`.

#[test]
fn a_key_pressed_while_speaking_wins_over_the_words() {
    let mut h = Harness::started();
    h.played(3_000);
    // Speech starts, the caller presses 1 before it ends: the key acts and
    // the utterance is dropped (it would otherwise be taken as an answer to
    // the billing menu the caller has not heard yet).
    h.audio(200, true);
    let out = h.at(h.now, Input::Dtmf('1'));
    assert!(out.iter().any(|l| l.ends_with("intent main/billing Dtmf 1.00")), "{out:?}");
    let out = h.speak(0);
    assert!(!out.iter().any(|l| l.starts_with("recognize")), "{out:?}");
}

/// What the server readies at load time is every grammar a call actually
/// listens with: each menu, each collect step, and the yes/no questions.
#[test]
fn prepared_grammars_cover_every_state_a_call_listens_in() {
    for plan in [test_dialplan(), crate::dialplan::load(std::path::Path::new("dialplans/hotline.toml")).unwrap()] {
        let plan = Arc::new(plan);
        let prepared = grammars(&plan);
        let mut call = Call::new(Arc::clone(&plan), Arc::new(crate::intent::TextMatcher::default()));
        let mut listened = Vec::new();
        for (id, menu) in &plan.menus {
            call.menu = id.clone();
            call.state = State::Menu;
            listened.push(call.grammar());
            for option in &menu.options {
                if let Action::Collect(c) = &option.action {
                    call.state = State::Collect { collect: c.clone(), digits: String::new() };
                    listened.push(call.grammar());
                }
            }
            let target = Target::Action(menu.escalation.clone());
            call.state = State::ConfirmIntent(Chosen { intent: "x".into(), target, confidence: 0.5 });
            listened.push(call.grammar());
        }
        assert!(listened.iter().any(|g| g.digits.is_some()), "{}: no collect step seen", plan.name);
        for g in &listened {
            assert!(prepared.contains(g), "{}: {g:?} is not prepared", plan.name);
        }
        assert!(prepared.iter().all(|g| listened.contains(g)), "{}: prepares grammars no call uses", plan.name);
    }
}

/// "Press 3 for your balance": a caller who says "three" (or "press three",
/// "option three") means key 3. The recogniser hears each option's key
/// said aloud as a whole answer, kept apart from the phrases it looks for
/// inside sentences.
#[test]
fn keys_said_aloud_are_listened_for_as_whole_answers() {
    let mut plan = test_dialplan();
    let key_words = |plan: &Dialplan, label: &str| {
        let grammar = grammar_at(plan, "main", None).unwrap();
        grammar.choices.iter().find(|c| c.label == label).unwrap().key_words.clone()
    };
    assert_eq!(key_words(&plan, "balance"), ["three", "press three", "option three", "number three"]);
    assert_eq!(key_words(&plan, "agent")[0], "zero", "a global's key too");
    assert!(key_words(&plan, "repeat").is_empty(), "`*` is no digit");
    let balance = grammar_at(&plan, "main", None).unwrap().choices.into_iter().find(|c| c.label == "balance").unwrap();
    assert!(!balance.phrases.iter().any(|p| p == "three"), "not looked for inside sentences");

    // A phrase the admin wrote wins over another option's key.
    let main = plan.menus.get_mut("main").unwrap();
    main.options.iter_mut().find(|o| o.intent == "hours").unwrap().phrases.push("Three".into());
    assert_eq!(key_words(&plan, "balance"), ["press three", "option three", "number three"], "\"three\" is `hours`");
    assert_eq!(key_words(&plan, "billing")[0], "one");

    plan.menus.get_mut("main").unwrap().spoken_keys = false;
    let grammar = grammar_at(&plan, "main", None).unwrap();
    assert!(grammar.choices.iter().all(|c| c.key_words.is_empty()), "turned off");
}

#[path = "slot_tests.rs"]
mod slot_tests;

#[path = "incomplete_tests.rs"]
mod incomplete_tests;
