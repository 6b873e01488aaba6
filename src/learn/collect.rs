//! What each caller said in a menu, and what came of it: acted on, not
//! understood, confirmed or refused at "Did you mean …?", or undone at
//! once ("back", "main menu", an operator request, a hang-up).
//!
//! Read from the call machine's events as recorded (see
//! [`crate::call::Event`]): an utterance is followed by the event its
//! words led to; in a menu that is an `intent`, a `no_match`, or the
//! "Did you mean …?" prompt, whose yes (an `intent`) or no (a `no_match`)
//! follows the next utterance.
use std::path::PathBuf;

use super::records::{RecordedCall, RecordedEvent};
use crate::dialplan::{Action, Dialplan, GlobalKind};

/// An option acted on and then undone within this long counts as a
/// misunderstanding: the caller did not want it.
pub const UNDO_WINDOW_MS: u64 = 10_000;

/// One utterance a caller said in a menu.
#[derive(Debug, Clone, PartialEq)]
pub struct Heard {
    pub dialplan: String,
    pub menu: String,
    pub call_id: String,
    /// What the recogniser heard, as recorded (the open transcript).
    pub text: String,
    /// The confidence the call decided with.
    pub confidence: f32,
    /// Which of the call's utterances this is (0 = its first, counting
    /// every utterance the call recognised).
    pub index: usize,
    pub fate: Fate,
    /// The option of this menu the caller chose next in the call (by
    /// speech or keys), when this utterance did not get them there.
    pub then: Option<String>,
    /// The caller's audio, when the server kept it.
    pub audio_file: Option<PathBuf>,
}

/// What came of an utterance.
#[derive(Debug, Clone, PartialEq)]
pub enum Fate {
    /// Acted on (an option or a global) and not undone.
    Acted {
        intent: String,
    },
    NoMatch,
    /// "Did you mean …?" answered yes: the caller meant `intent`.
    Confirmed {
        intent: String,
    },
    /// "Did you mean …?" answered no, or not answered.
    Refused,
    /// Acted on, then undone at once by `by` (a global intent or `hang-up`).
    Undone {
        intent: String,
        by: String,
    },
}

impl Fate {
    /// Whether the caller's words failed them (worth learning from).
    pub fn is_trouble(&self) -> bool {
        !matches!(self, Fate::Acted { .. })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Fate::Acted { .. } => "acted",
            Fate::NoMatch => "no_match",
            Fate::Confirmed { .. } => "confirmed",
            Fate::Refused => "refused",
            Fate::Undone { .. } => "undone",
        }
    }
}

/// The menu utterances of `call`, classified against its dialplan `plan`.
pub fn heard_in(call: &RecordedCall, plan: &Dialplan) -> Vec<Heard> {
    let mut walk = Walk {
        call,
        plan,
        out: Vec::new(),
        pending: None,
        confirming: None,
        acted: None,
        in_step: None,
        utterances: 0,
    };
    for event in &call.events {
        walk.step(event);
    }
    walk.out
}

/// An utterance as recorded.
struct Said {
    text: String,
    confidence: f32,
    index: usize,
}

struct Walk<'a> {
    call: &'a RecordedCall,
    plan: &'a Dialplan,
    out: Vec<Heard>,
    /// An utterance whose outcome has not been recorded yet.
    pending: Option<Said>,
    /// The utterance (index in `out`) whose "Did you mean …?" is asked.
    confirming: Option<usize>,
    /// The last utterance acted on as an option, when, and whether that
    /// option went to another menu: undoable.
    acted: Option<(usize, u64, bool)>,
    /// In an option's collect or slot step (of this menu): the words
    /// answer that step, not the menu.
    in_step: Option<String>,
    /// Utterances seen so far in the call.
    utterances: usize,
}

impl Walk<'_> {
    fn step(&mut self, event: &RecordedEvent) {
        match event {
            RecordedEvent::Utterance { text, confidence, .. } => {
                self.utterances += 1;
                // Words said in a collect step or as the yes/no of a
                // confirmation are not menu requests; silence is not words.
                if self.in_step.is_none() && self.confirming.is_none() && !text.trim().is_empty() {
                    self.pending =
                        Some(Said { text: text.clone(), confidence: *confidence, index: self.utterances - 1 });
                }
            }
            RecordedEvent::Intent { t_ms, menu, intent, source } => self.on_intent(*t_ms, menu, intent, source),
            RecordedEvent::NoMatch { menu, .. } => {
                if let Some(i) = self.confirming.take() {
                    self.out[i].fate = Fate::Refused;
                } else if let Some(said) = self.pending.take() {
                    self.push(menu, said, Fate::NoMatch);
                }
            }
            RecordedEvent::Prompt { menu, .. } => {
                // A prompt of another menu: the step is over (a `goto`).
                if self.in_step.as_ref().is_some_and(|m| m != menu) {
                    self.in_step = None;
                }
                // Words followed by a question rather than an action or a
                // no-match: the machine asks "Did you mean …?".
                if let Some(said) = self.pending.take() {
                    self.push(menu, said, Fate::Refused);
                    self.confirming = Some(self.out.len() - 1);
                }
            }
            RecordedEvent::Collect { .. } => self.in_step = None,
            RecordedEvent::Hangup { t_ms, reason } => {
                // Hanging up after a message or a transfer is how calls
                // end; hanging up on the menu an option led to is not.
                if let (true, Some((i, at, true))) = (reason == "caller hung up", self.acted.take()) {
                    self.undo(i, at, *t_ms, "hang-up");
                }
            }
            // Anything else right after words (speech switched off, say)
            // means they were not taken as a menu request.
            RecordedEvent::Other => self.pending = None,
        }
    }

    fn on_intent(&mut self, t_ms: u64, menu: &str, intent: &str, source: &str) {
        let option = self.plan.menus.get(menu).and_then(|m| m.options.iter().find(|o| o.intent == intent));
        let global = self.plan.globals.iter().find(|g| g.intent == intent).filter(|_| option.is_none());
        let undoes =
            global.is_some_and(|g| matches!(g.kind, GlobalKind::Back | GlobalKind::MainMenu | GlobalKind::Operator));
        if let (true, Some((i, at, _))) = (undoes, self.acted) {
            self.undo(i, at, t_ms, intent);
        }
        self.acted = None;
        let index = if let Some(i) = self.confirming.take() {
            self.out[i].fate = Fate::Confirmed { intent: intent.to_string() };
            self.pending = None;
            Some(i)
        } else if let Some(said) = self.pending.take().filter(|_| source == "speech") {
            self.push(menu, said, Fate::Acted { intent: intent.to_string() });
            Some(self.out.len() - 1)
        } else {
            None
        };
        if let Some(option) = option {
            // Earlier words in this menu that did not get the caller here:
            // this is what they were after.
            for (j, h) in self.out.iter_mut().enumerate() {
                if Some(j) != index && h.menu == menu && h.then.is_none() && h.fate.is_trouble() {
                    h.then = Some(intent.to_string());
                }
            }
            if let Some(i) = index {
                self.acted = Some((i, t_ms, matches!(option.action, Action::Goto(_))));
            }
            let step = matches!(option.action, Action::Collect(_)) || !option.slots.is_empty();
            self.in_step = step.then(|| menu.to_string());
        }
    }

    fn undo(&mut self, i: usize, acted_at: u64, now: u64, by: &str) {
        if now.saturating_sub(acted_at) > UNDO_WINDOW_MS {
            return;
        }
        if let Some(h) = self.out.get_mut(i) {
            if let Fate::Acted { intent } | Fate::Confirmed { intent } = &h.fate {
                h.fate = Fate::Undone { intent: intent.clone(), by: by.to_string() };
            }
        }
    }

    fn push(&mut self, menu: &str, said: Said, fate: Fate) {
        self.out.push(Heard {
            dialplan: self.plan.name.clone(),
            menu: menu.to_string(),
            call_id: self.call.call_id.clone(),
            text: said.text,
            confidence: said.confidence,
            index: said.index,
            fate,
            then: None,
            audio_file: self.call.audio_file.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RecordedEvent as E;

    const PLAN: &str = r#"
start = "main"
[operator]
extension = "100"
[menus.main]
prompt = "Billing or hours?"
[menus.main.options.billing]
phrases = ["invoices"]
dtmf = "1"
goto = "billing"
[menus.main.options.hours]
phrases = ["hours"]
dtmf = "2"
say = "Nine to five."
then = "return"
[menus.main.options.account]
phrases = ["account"]
dtmf = "3"
goto = "billing"
[menus.main.options.account.collect]
variable = "number"
prompt = "Your number?"
min_digits = 4
max_digits = 6
[menus.billing]
prompt = "Pay or question?"
[menus.billing.options.pay]
phrases = ["pay"]
dtmf = "1"
transfer = "200"
"#;

    fn plan() -> Dialplan {
        let (plan, diagnostics) = crate::dialplan::check_bytes(std::path::Path::new("d.toml"), PLAN.as_bytes());
        plan.unwrap_or_else(|| panic!("{diagnostics:?}"))
    }

    fn said(t_ms: u64, text: &str, confidence: f32) -> E {
        E::Utterance { t_ms, start_ms: 0, end_ms: 0, text: text.into(), confidence }
    }
    fn prompt(t_ms: u64, menu: &str) -> E {
        E::Prompt { t_ms, menu: menu.into() }
    }
    fn intent(t_ms: u64, menu: &str, intent: &str, source: &str) -> E {
        E::Intent { t_ms, menu: menu.into(), intent: intent.into(), source: source.into() }
    }
    fn no_match(t_ms: u64, menu: &str) -> E {
        E::NoMatch { t_ms, menu: menu.into() }
    }

    #[test]
    fn each_utterance_knows_its_place_among_the_calls_utterances() {
        let call = RecordedCall {
            call_id: "c".into(),
            start_unix_ms: 0,
            dialplan: Some("d".into()),
            audio_file: None,
            events: vec![
                said(1_000, "", 0.0), // noise: not a request, still an utterance of the call
                no_match(1_000, "main"),
                said(3_000, "ours", 0.6),
                prompt(3_100, "main"),
                said(5_000, "no", 0.9),
                no_match(5_100, "main"),
                said(8_000, "hours", 0.95),
                intent(8_100, "main", "hours", "speech"),
            ],
        };
        let places: Vec<(String, usize)> = heard_in(&call, &plan()).into_iter().map(|h| (h.text, h.index)).collect();
        assert_eq!(places, [("ours".into(), 1), ("hours".into(), 3)]);
    }

    fn fates(events: Vec<E>) -> Vec<(String, Fate, Option<String>)> {
        let call = RecordedCall {
            call_id: "c".into(),
            start_unix_ms: 0,
            dialplan: Some("d".into()),
            audio_file: None,
            events,
        };
        heard_in(&call, &plan()).into_iter().map(|h| (h.text, h.fate, h.then)).collect()
    }

    #[test]
    fn a_no_match_then_a_key_says_which_option_was_meant() {
        let got = fates(vec![
            prompt(0, "main"),
            said(3_000, "billing", 0.2),
            no_match(3_100, "main"),
            prompt(3_100, "main"),
            E::Other,
            intent(6_000, "main", "billing", "dtmf"),
            prompt(6_000, "billing"),
        ]);
        assert_eq!(got, [("billing".into(), Fate::NoMatch, Some("billing".into()))]);
    }

    #[test]
    fn digits_said_in_a_collect_step_are_not_menu_requests() {
        let got = fates(vec![
            prompt(0, "main"),
            intent(2_000, "main", "account", "dtmf"),
            prompt(2_000, "main"), // Your number?
            said(5_000, "one two", 0.4),
            no_match(5_000, "main"),
            prompt(5_000, "main"),
            said(8_000, "1 2 3 4", 0.9),
            E::Collect { t_ms: 8_000 },
            prompt(8_000, "billing"),
            said(10_000, "paying", 0.3),
            no_match(10_000, "billing"),
        ]);
        assert_eq!(got, [("paying".into(), Fate::NoMatch, None)]);
    }

    #[test]
    fn a_confirmation_answered_yes_or_no_is_recorded_as_such() {
        let got = fates(vec![
            prompt(0, "main"),
            said(3_000, "bill in", 0.6),
            prompt(3_100, "main"), // Did you mean billing?
            said(5_000, "yes", 0.9),
            intent(5_100, "main", "billing", "speech"),
            prompt(5_100, "billing"),
        ]);
        assert_eq!(got, [("bill in".into(), Fate::Confirmed { intent: "billing".into() }, None)]);
        let got = fates(vec![
            prompt(0, "main"),
            said(3_000, "ours", 0.6),
            prompt(3_100, "main"),
            said(5_000, "no", 0.9),
            no_match(5_100, "main"),
            prompt(5_100, "main"),
            said(8_000, "hours", 0.95),
            intent(8_100, "main", "hours", "speech"),
        ]);
        assert_eq!(
            got,
            [
                ("ours".into(), Fate::Refused, Some("hours".into())),
                ("hours".into(), Fate::Acted { intent: "hours".into() }, None)
            ]
        );
    }

    #[test]
    fn an_option_undone_at_once_is_trouble_and_a_late_change_of_mind_is_not() {
        let undo = |back_at: u64| {
            fates(vec![
                prompt(0, "main"),
                said(3_000, "bills", 0.9),
                intent(3_100, "main", "billing", "speech"),
                prompt(3_100, "billing"),
                intent(back_at, "billing", "back", "dtmf"),
                prompt(back_at, "main"),
                intent(back_at + 2_000, "main", "hours", "dtmf"),
            ])
        };
        assert_eq!(
            undo(6_000),
            [("bills".into(), Fate::Undone { intent: "billing".into(), by: "back".into() }, Some("hours".into()))]
        );
        assert_eq!(
            undo(3_100 + UNDO_WINDOW_MS + 1),
            [("bills".into(), Fate::Acted { intent: "billing".into() }, None)]
        );
        let hung_up = |option: &str| {
            fates(vec![
                said(3_000, "bills", 0.9),
                intent(3_100, "main", option, "speech"),
                E::Hangup { t_ms: 4_000, reason: "caller hung up".into() },
            ])
        };
        let undone = Fate::Undone { intent: "billing".into(), by: "hang-up".into() };
        assert_eq!(hung_up("billing"), [("bills".into(), undone, None)], "left the menu it led to at once");
        assert_eq!(
            hung_up("hours"),
            [("bills".into(), Fate::Acted { intent: "hours".into() }, None)],
            "a message heard, then goodbye: what the caller wanted"
        );
    }
}
