//! Slots in a call: the sentence that chose an option fills the details it
//! names ("a large latte"), the call asks only for the required ones still
//! missing (by voice or keys, as a choice or digit step), then reads the
//! whole request back once when the dialplan or a middling confidence asks
//! for it. At the read-back the caller can correct one detail ("no,
//! medium"); corrections are bounded, then the menu's escalation runs.
use crate::dialplan::slots::substitute;
use crate::dialplan::{MenuOption, OptionSlots, SlotKind, SlotUse};
use crate::intent::normalize::normalize_tokens;

use super::*;

/// Corrections at one read-back before the caller is escalated.
pub const MAX_CORRECTIONS: u32 = 2;
/// Longest number taken from a sentence as a quantity.
const NUMBER_DIGITS: usize = 6;

/// An option being filled in.
#[derive(Debug, Clone)]
pub(super) struct Request {
    pub intent: String,
    pub action: Action,
    pub slots: OptionSlots,
    /// Slot name -> value, in the order they were filled.
    pub values: Vec<(String, String)>,
    /// Read the request back before acting.
    pub confirm: bool,
    /// The slot whose question is being asked.
    pub asking: Option<String>,
    pub corrections: u32,
}

impl Call {
    /// The caller chose an option that takes slots: fill what `heard`
    /// names (`heard_is_sentence`: the recogniser's sentence, not the
    /// transcript), then ask for the rest.
    pub(super) fn start_request(
        &mut self,
        now: u64,
        option: &MenuOption,
        heard: &str,
        heard_is_sentence: bool,
        unsure: bool,
        out: &mut Vec<Output>,
    ) {
        let values = extract(heard, &option.slots.uses);
        for (slot, value) in &values {
            let heard = heard_is_sentence.then(|| heard.to_string());
            out.push(Output::Event(Event::Slot { t_ms: now, slot: slot.clone(), value: value.clone(), heard }));
        }
        self.filling = Some(Request {
            intent: option.intent.clone(),
            action: option.action.clone(),
            slots: option.slots.clone(),
            values,
            confirm: option.slots.confirm || unsure,
            asking: None,
            corrections: 0,
        });
        self.continue_request(now, out);
    }

    /// Asks for the next missing required slot, or reads back, or acts.
    pub(super) fn continue_request(&mut self, now: u64, out: &mut Vec<Output>) {
        let Some(request) = self.filling.as_mut() else { return };
        let missing =
            request.slots.uses.iter().find(|u| u.required && !request.values.iter().any(|(n, _)| *n == u.slot.name));
        if let Some(slot_use) = missing.cloned() {
            request.asking = Some(slot_use.slot.name.clone());
            let collect = self.slot_question(&slot_use);
            self.reset_counters();
            self.state = State::Collect { collect: collect.clone(), digits: String::new() };
            return self.play_collect_prompt(now, &collect, out);
        }
        request.asking = None;
        if request.confirm {
            self.state = State::ConfirmRequest;
            return self.play_read_back(now, out);
        }
        self.finish_request(now, false, out);
    }

    /// A value answered the question the request asked: `true` when it
    /// was taken here.
    pub(super) fn slot_answered(&mut self, now: u64, variable: &str, value: &str, out: &mut Vec<Output>) -> bool {
        let Some(request) = self.filling.as_mut().filter(|r| r.asking.as_deref() == Some(variable)) else {
            return false;
        };
        request.values.retain(|(n, _)| n != variable);
        request.values.push((variable.to_string(), value.to_string()));
        out.push(Output::Event(Event::Slot { t_ms: now, slot: variable.into(), value: value.into(), heard: None }));
        self.continue_request(now, out);
        true
    }

    /// The caller's answer to the read-back: yes acts; a detail corrects
    /// it and is read back again; anything else is a no-match.
    pub(super) fn answer_read_back(&mut self, now: u64, result: &Recognition, out: &mut Vec<Output>) {
        let Some(request) = self.filling.as_mut() else { return };
        let corrections: Vec<(String, String)> = extract(result.slot_text(), &request.slots.uses)
            .into_iter()
            .filter(|(slot, value)| !request.values.iter().any(|(n, v)| n == slot && v == value))
            .collect();
        if corrections.is_empty() {
            return match self.yes_no(result) {
                Some(true) => self.finish_request(now, true, out),
                Some(false) => self.no_match_event(now, result.text.clone(), out),
                None => self.speech_global_or_no_match(now, result, out),
            };
        }
        request.corrections += 1;
        if request.corrections > MAX_CORRECTIONS {
            return self.escalate(now, out);
        }
        for (slot, value) in corrections {
            request.values.retain(|(n, _)| *n != slot);
            request.values.push((slot.clone(), value.clone()));
            out.push(Output::Event(Event::Slot { t_ms: now, slot, value, heard: None }));
        }
        self.play_read_back(now, out);
    }

    pub(super) fn play_read_back(&mut self, now: u64, out: &mut Vec<Output>) {
        let Some(request) = &self.filling else { return };
        let summary = match &request.slots.read_back {
            Some(template) => render(template, request),
            None => default_summary(request),
        };
        let text = capitalised(&wording::fill(&self.plan.messages.confirm_request, &summary));
        let keys = if self.degraded { format!(" {}", wording::YES_NO_KEYS) } else { String::new() };
        let barge_in = self.barge_in_here();
        self.play(now, wording::text_prompt(&format!("{text}{keys}")), barge_in, out);
    }

    /// The request is complete: its values travel as variables, then the
    /// option's action runs.
    pub(super) fn finish_request(&mut self, now: u64, confirmed: bool, out: &mut Vec<Output>) {
        let Some(request) = self.filling.take() else { return };
        for (slot, value) in request.values {
            out.push(Output::Event(Event::Collect {
                t_ms: now,
                variable: slot.clone(),
                value: value.clone(),
                confirmed,
            }));
            self.set_variable(&slot, value);
        }
        self.reset_counters();
        self.state = State::Menu;
        self.run_action(now, request.action, out);
    }

    /// The question for one slot, as a choice or digit step.
    fn slot_question(&self, slot_use: &SlotUse) -> Collect {
        let slot = &slot_use.slot;
        let request = self.filling.as_ref();
        let text = request.map_or_else(|| slot.prompt.text.clone(), |r| render(&slot.prompt.text, r));
        let (choices, min_digits, max_digits) = match &slot.kind {
            SlotKind::Choice(values) => (values.clone(), 1, 1),
            SlotKind::YesNo => (yes_no_values(self.plan.language), 1, 1),
            SlotKind::Digits { min, max } => (Vec::new(), *min, *max),
            SlotKind::Number => (Vec::new(), 1, NUMBER_DIGITS),
        };
        Collect {
            variable: slot.name.clone(),
            prompt: Prompt { text, wav: slot.prompt.wav.clone() },
            min_digits,
            max_digits,
            choices,
            // The request is read back as a whole, if at all.
            confirm: false,
            then: Box::new(Action::Goto(self.menu.clone())),
        }
    }
}

fn yes_no_values(language: crate::asr::Language) -> Vec<crate::dialplan::SlotChoice> {
    wording::yes_no_choices(language)
        .into_iter()
        .zip(['1', '2'])
        .map(|(c, key)| crate::dialplan::SlotChoice { value: c.label, phrases: c.phrases, dtmf: Some(key) })
        .collect()
}

/// A template with `{slot}` and `{option}` filled from the request; a slot
/// not filled is left out.
fn render(template: &str, request: &Request) -> String {
    let text = substitute(template, &|name| {
        if name == crate::dialplan::slots::OPTION_PLACEHOLDER {
            return wording::spoken_name(&request.intent);
        }
        request.values.iter().find(|(n, _)| n == name).map(|(n, v)| spoken_value(request, n, v)).unwrap_or_default()
    });
    text.split_whitespace().collect::<Vec<_>>().join(" ").replace(" ,", ",").replace(" ?", "?")
}

/// "large iced latte": the filled values in slot order, then the option.
fn default_summary(request: &Request) -> String {
    let mut words: Vec<String> = request
        .slots
        .uses
        .iter()
        .filter_map(|u| request.values.iter().find(|(n, _)| *n == u.slot.name))
        .map(|(n, v)| spoken_value(request, n, v))
        .collect();
    words.push(wording::spoken_name(&request.intent));
    words.join(" ")
}

/// A value as the caller hears it: a choice by its first phrase.
fn spoken_value(request: &Request, slot: &str, value: &str) -> String {
    let kind = request.slots.uses.iter().find(|u| u.slot.name == slot).map(|u| &u.slot.kind);
    match kind {
        Some(SlotKind::Choice(values)) => values
            .iter()
            .find(|c| c.value == value)
            .and_then(|c| c.phrases.first().cloned())
            .unwrap_or_else(|| value.to_string()),
        Some(SlotKind::Digits { .. }) => wording::spaced_digits(value),
        _ => value.to_string(),
    }
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The slot values a sentence names: for a choice slot, the value whose
/// phrase is found in the words (the longest phrase wins, and words used by
/// one value are not used again, so "iced coffee" is not also "coffee");
/// for a number, the first number; for digits, a run of digits of an
/// allowed length. Yes/no slots are only filled by asking.
pub fn extract(text: &str, uses: &[SlotUse]) -> Vec<(String, String)> {
    let words = normalize_tokens(text);
    let mut used = vec![false; words.len()];
    let mut found: Vec<(String, String)> = Vec::new();
    let mut matches: Vec<(usize, usize, &str, &str)> = Vec::new(); // (len, start, slot, value)
    for u in uses {
        let SlotKind::Choice(values) = &u.slot.kind else { continue };
        for v in values {
            for phrase in &v.phrases {
                let p = normalize_tokens(phrase);
                if p.is_empty() || p.len() > words.len() {
                    continue;
                }
                for start in 0..=words.len() - p.len() {
                    if words[start..start + p.len()] == p[..] {
                        matches.push((p.len(), start, &u.slot.name, &v.value));
                    }
                }
            }
        }
    }
    matches.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (len, start, slot, value) in matches {
        if found.iter().any(|(s, _)| s == slot) || used[start..start + len].iter().any(|u| *u) {
            continue;
        }
        used[start..start + len].iter_mut().for_each(|u| *u = true);
        found.push((slot.to_string(), value.to_string()));
    }
    for u in uses {
        let digits = |min: usize, max: usize| digit_run(&words, &used, min, max);
        let value = match &u.slot.kind {
            SlotKind::Number => digits(1, NUMBER_DIGITS),
            SlotKind::Digits { min, max } => digits(*min, *max),
            SlotKind::Choice(_) | SlotKind::YesNo => None,
        };
        if let Some(value) = value {
            found.push((u.slot.name.clone(), value));
        }
    }
    // In the order the option lists its slots.
    found.sort_by_key(|(slot, _)| uses.iter().position(|u| u.slot.name == *slot));
    found
}

/// The first run of digit words not used by a choice, if its length fits.
fn digit_run(words: &[String], used: &[bool], min: usize, max: usize) -> Option<String> {
    let is_digits = |i: usize| !used[i] && !words[i].is_empty() && words[i].chars().all(|c| c.is_ascii_digit());
    let start = (0..words.len()).find(|&i| is_digits(i))?;
    let run: String = (start..words.len()).take_while(|&i| is_digits(i)).map(|i| words[i].as_str()).collect();
    (min..=max).contains(&run.len()).then_some(run)
}
