//! What the caller meant: grammars for the recogniser, intents from
//! recognised words or keys, yes/no and digit answers.
use super::*;
use crate::dialplan::{MenuOption, SlotKind, SlotUse, Thresholds};

impl Call {
    pub(super) fn globals_active(&self) -> bool {
        self.current_menu_def().is_some_and(|m| m.globals)
    }

    pub(super) fn active_globals(&self) -> impl Iterator<Item = &GlobalIntent> {
        globals_in(&self.plan, self.current_menu_def())
    }

    pub(super) fn grammar(&self) -> Grammar {
        let grammar = match (&self.state, self.current_menu_def()) {
            (State::Menu, Some(menu)) => menu_grammar(&self.plan, menu),
            (State::Menu, None) => Grammar::default(),
            (State::Collect { collect, .. }, menu) => collect_grammar(&self.plan, menu, collect),
            (State::ConfirmRequest, _) => self.read_back_grammar(),
            _ => yes_no_grammar(self.plan.language),
        };
        // Every utterance of the call is decoded in the dialplan's language.
        Grammar { language: self.plan.language, ..grammar }
    }

    /// The answer to a read-back: yes or no, where a "no" may correct a
    /// detail ("no, medium"); the recogniser listens for the request's
    /// details after it as it does after an option.
    fn read_back_grammar(&self) -> Grammar {
        let mut grammar = yes_no_grammar(self.plan.language);
        let Some(request) = &self.filling else { return grammar };
        let details = detail_phrases(&request.slots.uses, self.plan.language);
        for no in grammar.choices.iter_mut().filter(|c| c.label == "no") {
            no.details = details.clone();
        }
        grammar
    }

    /// Resolves an intent label to what it does in the current menu.
    pub(super) fn resolve(&self, intent: &str, confidence: f32, menu_options: bool) -> Option<Chosen> {
        let option =
            menu_options.then(|| self.current_option(intent)).flatten().map(|o| Target::Action(o.action.clone()));
        let target =
            option.or_else(|| self.active_globals().find(|g| g.intent == intent).map(|g| Target::Global(g.kind)))?;
        Some(Chosen { intent: intent.to_string(), target, confidence })
    }

    /// The current menu's option `intent` asks for slots.
    pub(super) fn takes_slots(&self, intent: &str) -> bool {
        self.current_option(intent).is_some_and(|o| !o.slots.is_empty())
    }

    /// The current menu's option `intent`, if it has one.
    pub(super) fn current_option(&self, intent: &str) -> Option<&MenuOption> {
        self.current_menu_def()?.options.iter().find(|o| o.intent == intent)
    }

    pub(super) fn choice_by_key(&self, key: char) -> Option<Chosen> {
        let option = self
            .current_menu_def()
            .and_then(|m| m.options.iter().find(|o| o.dtmf == Some(key)))
            .map(|o| (o.intent.clone(), Target::Action(o.action.clone())));
        let (intent, target) = option.or_else(|| self.global_by_key(key))?;
        Some(Chosen { intent, target, confidence: 1.0 })
    }

    pub(super) fn global_by_key(&self, key: char) -> Option<(String, Target)> {
        self.active_globals().find(|g| g.dtmf == Some(key)).map(|g| (g.intent.clone(), Target::Global(g.kind)))
    }

    pub(super) fn candidates(&self, menu_options: bool) -> Vec<Candidate> {
        let options = menu_options
            .then(|| self.current_menu_def())
            .flatten()
            .into_iter()
            .flat_map(|m| m.options.iter())
            .map(|o| Candidate { intent: o.intent.clone(), phrases: o.phrases.clone() });
        let globals = self.active_globals().map(|g| Candidate { intent: g.intent.clone(), phrases: g.phrases.clone() });
        options.chain(globals).collect()
    }

    /// The intent in `result` (the recogniser's own choice, else the text
    /// matched against the candidates), with its confidence.
    pub(super) fn intent_of(&self, result: &Recognition, menu_options: bool) -> Option<Chosen> {
        let best = crate::intent::understand(result, &self.candidates(menu_options), self.matcher.as_ref())?;
        self.resolve(&best.intent, best.confidence, menu_options)
    }

    pub(super) fn interpret_menu_speech(&mut self, now: u64, result: &Recognition, out: &mut Vec<Output>) {
        let thresholds = self.plan.thresholds;
        // What a chosen option's slots are filled from.
        self.heard = result.slot_text().to_string();
        self.heard_is_sentence = result.sentence.is_some();
        match self.intent_of(result, true) {
            Some(chosen) if chosen.confidence >= thresholds.accept => self.act(now, chosen, Source::Speech, out),
            // An option with slots is read back as a whole request instead
            // ("A large latte, right?"), once its slots are filled.
            Some(chosen) if chosen.confidence >= thresholds.confirm && self.takes_slots(&chosen.intent) => {
                self.act(now, chosen, Source::Speech, out)
            }
            Some(chosen) if chosen.confidence >= thresholds.confirm => {
                let question = wording::confirm_intent_prompt(&self.plan.messages, &chosen.intent, false);
                self.state = State::ConfirmIntent(chosen);
                let barge_in = self.barge_in_here();
                self.play(now, question, barge_in, out);
            }
            _ => self.no_match_event(now, result.text.clone(), out),
        }
    }

    /// In a question that is not a menu (yes/no, digits), a caller may
    /// still ask for a global ("operator", "repeat"), confidently.
    pub(super) fn speech_global_or_no_match(&mut self, now: u64, result: &Recognition, out: &mut Vec<Output>) {
        match self.intent_of(result, false) {
            Some(chosen) if chosen.confidence >= self.plan.thresholds.accept => {
                self.act(now, chosen, Source::Speech, out)
            }
            _ => self.no_match_event(now, result.text.clone(), out),
        }
    }

    pub(super) fn key_global_or_no_match(&mut self, now: u64, key: char, out: &mut Vec<Output>) {
        match self.global_by_key(key) {
            Some((intent, target)) => self.act(now, Chosen { intent, target, confidence: 1.0 }, Source::Dtmf, out),
            None => self.no_match_event(now, format!("key {key}"), out),
        }
    }

    /// Whether the call cannot act on these words yet: they name nothing
    /// it takes here, or only something it would have to ask about, or too
    /// few digits. A caller who paused mid-answer has said such words.
    pub(super) fn incomplete(&self, result: &Recognition) -> bool {
        let thresholds = self.plan.thresholds;
        let global = || self.intent_of(result, false).map(|c| c.confidence);
        let sure = match &self.state {
            State::Menu => {
                let chosen = self.intent_of(result, true);
                let takes_slots = chosen.as_ref().is_some_and(|c| self.takes_slots(&c.intent));
                return leaves_answer_open(chosen.map(|c| c.confidence), takes_slots, thresholds);
            }
            State::ConfirmIntent(_) | State::ConfirmValue { .. } => self.yes_no(result).map(|_| 1.0).or_else(global),
            State::Collect { collect, .. } if collect.takes_choice() => {
                self.slot_value_of(result, collect).map(|(_, c)| c).or_else(global)
            }
            State::Collect { collect, digits } => {
                if !digits.is_empty() {
                    return false; // keys pressed: speech does not add to them
                }
                self.digits_from(result, collect).map(|_| 1.0).or_else(global)
            }
            _ => return false,
        };
        leaves_answer_open(sure, false, thresholds)
    }

    pub(super) fn yes_no(&self, result: &Recognition) -> Option<bool> {
        match result.choice.as_deref() {
            Some("yes") => Some(true),
            Some("no") => Some(false),
            _ => parse_yes_no(&result.text),
        }
    }

    pub(super) fn digits_from(&self, result: &Recognition, collect: &Collect) -> Option<String> {
        let digits = match result.choice.as_deref() {
            Some(c) if !c.is_empty() && c.chars().all(|d| d.is_ascii_digit()) => Some(c.to_string()),
            _ => parse_digits(&result.text),
        }?;
        let max = collect.max_digits.min(DIGITS_LIMIT);
        (digits.len() >= collect.min_digits && digits.len() <= max).then_some(digits)
    }

    pub(super) fn finish_key_entry(&mut self, now: u64, out: &mut Vec<Output>) {
        let State::Collect { collect, digits } = self.state.clone() else { return };
        let max = collect.max_digits.min(DIGITS_LIMIT);
        if digits.len() >= collect.min_digits && digits.len() <= max && !digits.is_empty() {
            self.accept_value(now, collect, digits, out);
        } else {
            self.no_match_event(now, digits, out);
        }
    }

    /// A choice step's answer: its value and confidence, when the caller
    /// named one of the values (the recogniser's choice, else the text
    /// matched against the values).
    fn slot_value_of(&self, result: &Recognition, collect: &Collect) -> Option<(String, f32)> {
        let is_value = |label: &str| collect.choices.iter().any(|c| c.value == label);
        if let Some(label) = result.choice.as_deref() {
            return is_value(label).then(|| (label.to_string(), result.confidence));
        }
        let candidates: Vec<Candidate> = collect
            .choices
            .iter()
            .map(|c| Candidate { intent: c.value.clone(), phrases: c.phrases.clone() })
            .chain(self.candidates(false))
            .collect();
        let best = self.matcher.match_intent(&result.text, &candidates).best?;
        is_value(&best.intent).then(|| (best.intent, best.confidence.clamp(0.0, 1.0)))
    }

    /// Speech in a choice step: a clear value is taken, a fairly likely one
    /// is read back for a yes or no, anything else may be a global.
    pub(super) fn interpret_choice(&mut self, now: u64, collect: Collect, result: &Recognition, out: &mut Vec<Output>) {
        let thresholds = self.plan.thresholds;
        match self.slot_value_of(result, &collect) {
            Some((value, confidence)) if confidence >= thresholds.accept => self.accept_value(now, collect, value, out),
            Some((value, confidence)) if confidence >= thresholds.confirm => self.read_back(now, collect, value, out),
            _ => self.speech_global_or_no_match(now, result, out),
        }
    }

    pub(super) fn accept_value(&mut self, now: u64, collect: Collect, value: String, out: &mut Vec<Output>) {
        if collect.confirm {
            self.read_back(now, collect, value, out);
        } else {
            self.store(now, collect, value, false, out);
        }
    }

    /// "I heard …. Is that right?"
    fn read_back(&mut self, now: u64, collect: Collect, value: String, out: &mut Vec<Output>) {
        let question = wording::read_back_prompt(&self.plan.messages, &collect, &value, self.degraded);
        self.state = State::ConfirmValue { collect, value };
        let barge_in = self.barge_in_here();
        self.play(now, question, barge_in, out);
    }

    pub(super) fn value_confirmed(&mut self, now: u64, collect: Collect, value: String, out: &mut Vec<Output>) {
        self.store(now, collect, value, true, out);
    }

    pub(super) fn store(&mut self, now: u64, collect: Collect, value: String, confirmed: bool, out: &mut Vec<Output>) {
        if self.slot_answered(now, &collect.variable, &value, out) {
            return;
        }
        out.push(Output::Event(Event::Collect {
            t_ms: now,
            variable: collect.variable.clone(),
            value: value.clone(),
            confirmed,
        }));
        self.set_variable(&collect.variable, value);
        self.reset_counters();
        self.state = State::Menu;
        self.run_action(now, *collect.then, out);
    }
}

/// Every grammar a call of `plan` can listen with: each menu's options,
/// each `collect` step, and yes/no. The server readies the recogniser for
/// them when a dialplan goes into service, so no caller waits for that.
pub fn grammars(plan: &Dialplan) -> Vec<Grammar> {
    let mut out = vec![yes_no_grammar(plan.language)];
    for menu in plan.menus.values() {
        out.push(menu_grammar(plan, menu));
        let mut actions: Vec<&Action> = menu.options.iter().map(|o| &o.action).chain([&menu.escalation]).collect();
        while let Some(action) = actions.pop() {
            if let Action::Collect(c) = action {
                out.push(collect_grammar(plan, Some(menu), c));
                actions.push(&c.then);
            }
        }
    }
    let mut unique: Vec<Grammar> = Vec::with_capacity(out.len());
    for g in out {
        if !unique.contains(&g) {
            unique.push(g);
        }
    }
    unique
}

/// The global intents active in `menu` (none outside a menu).
fn globals_in<'a>(plan: &'a Dialplan, menu: Option<&Menu>) -> impl Iterator<Item = &'a GlobalIntent> + 'a {
    let on = menu.is_some_and(|m| m.globals);
    plan.globals.iter().filter(move |_| on)
}

fn global_choice(g: &GlobalIntent) -> GrammarChoice {
    GrammarChoice::new(g.intent.clone(), g.phrases.clone())
}

fn global_choices<'a>(plan: &'a Dialplan, menu: Option<&Menu>) -> impl Iterator<Item = GrammarChoice> + 'a {
    globals_in(plan, menu).map(global_choice)
}

/// The grammar a call listens with in `menu`, or in the `collect` step of
/// that menu's option `option`: what `hotline transcribe --grammar` uses, so
/// admins hear a menu exactly as callers' words are recognised in it.
pub fn grammar_at(plan: &Dialplan, menu: &str, option: Option<&str>) -> Result<Grammar, NoSuchPlace> {
    let Some(m) = plan.menus.get(menu) else {
        let menus = plan.menus.keys().cloned().collect();
        return Err(NoSuchPlace::Menu { menu: menu.to_string(), menus });
    };
    let Some(option) = option else { return Ok(menu_grammar(plan, m)) };
    let Some(o) = m.options.iter().find(|o| o.intent == option) else {
        let options = m.options.iter().map(|o| o.intent.clone()).collect();
        return Err(NoSuchPlace::Option { menu: menu.to_string(), option: option.to_string(), options });
    };
    match &o.action {
        Action::Collect(c) => Ok(collect_grammar(plan, Some(m), c)),
        _ => Err(NoSuchPlace::NoCollect { menu: menu.to_string(), option: option.to_string() }),
    }
}

/// A menu or option [`grammar_at`] was asked for that the dialplan does
/// not have; names the ones it does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoSuchPlace {
    #[error("no menu `{menu}` (menus: {})", .menus.join(", "))]
    Menu { menu: String, menus: Vec<String> },
    #[error("menu `{menu}` has no option `{option}` (options: {})", .options.join(", "))]
    Option { menu: String, option: String, options: Vec<String> },
    #[error("option `{option}` of menu `{menu}` has no `collect` step")]
    NoCollect { menu: String, option: String },
}

/// The slots each option of `menu` takes, by option name: what a sentence
/// choosing that option may also fill (see [`super::slot_values`]).
pub fn option_slots(plan: &Dialplan, menu: &str) -> std::collections::HashMap<String, Vec<crate::dialplan::SlotUse>> {
    let Some(m) = plan.menus.get(menu) else { return Default::default() };
    m.options.iter().filter(|o| !o.slots.is_empty()).map(|o| (o.intent.clone(), o.slots.uses.clone())).collect()
}

fn menu_grammar(plan: &Dialplan, menu: &Menu) -> Grammar {
    let options = menu.options.iter().map(|o| {
        let choice = GrammarChoice {
            details: detail_phrases(&o.slots.uses, plan.language),
            ..GrammarChoice::new(o.intent.clone(), o.phrases.clone())
        };
        (choice, o.dtmf)
    });
    let globals = globals_in(plan, Some(menu)).map(|g| (global_choice(g), g.dtmf));
    let mut keyed: Vec<(GrammarChoice, Option<char>)> = options.chain(globals).collect();
    if menu.spoken_keys {
        add_spoken_keys(&mut keyed, plan.language);
    }
    Grammar { choices: keyed.into_iter().map(|(c, _)| c).collect(), digits: None, language: plan.language }
}

/// Lets callers say each choice's key ("three" for key 3), unless a choice
/// has the word as a phrase already: what the admin wrote wins (`hotline
/// check` warns when that is another choice than the key's).
fn add_spoken_keys(keyed: &mut [(GrammarChoice, Option<char>)], language: crate::asr::Language) {
    let taken: Vec<String> = keyed.iter().flat_map(|(c, _)| &c.phrases).map(|p| crate::intent::normalize(p)).collect();
    for (choice, key) in keyed.iter_mut() {
        let Some(words) = key.and_then(|k| k.to_digit(10)).and_then(|d| language.key_phrases(d as usize)) else {
            continue;
        };
        choice.key_words = words.into_iter().filter(|w| !taken.contains(&crate::intent::normalize(w))).collect();
    }
}

/// What a caller says for each slot's value inside a sentence, for the
/// recogniser to listen for: a choice's phrases; for a quantity the number
/// words and numerals (in English), so that a number Whisper wrote ("4")
/// counts as said and a misheard one ("free") can be put back. Digit
/// strings and yes/no are only asked for.
fn detail_phrases(uses: &[SlotUse], language: crate::asr::Language) -> Vec<Vec<String>> {
    const NUMBER_WORDS: [&str; 10] = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];
    let phrases = |kind: &SlotKind| match kind {
        SlotKind::Choice(values) => Some(values.iter().flat_map(|v| v.phrases.iter().cloned()).collect()),
        SlotKind::Number if language.is_english() => {
            Some(NUMBER_WORDS.iter().map(|w| w.to_string()).chain((0..=20).map(|n| n.to_string())).collect())
        }
        SlotKind::Number | SlotKind::Digits { .. } | SlotKind::YesNo => None,
    };
    uses.iter().filter_map(|u| phrases(&u.slot.kind)).collect()
}

fn collect_grammar(plan: &Dialplan, menu: Option<&Menu>, collect: &Collect) -> Grammar {
    let values = collect.choices.iter().map(|c| GrammarChoice::new(c.value.clone(), c.phrases.clone()));
    let digits = (!collect.takes_choice()).then_some((collect.min_digits, collect.max_digits));
    Grammar { choices: values.chain(global_choices(plan, menu)).collect(), digits, language: plan.language }
}

fn yes_no_grammar(language: crate::asr::Language) -> Grammar {
    Grammar { choices: wording::yes_no_choices(language), language, ..Default::default() }
}

/// Whether an answer found with `confidence` (`None`: nothing found) is
/// one the call does not act on at once: below `accept` it would ask "Did
/// you mean …?", below `confirm` say it did not understand. An option with
/// slots from `confirm` up is an answer: its request is read back whole.
/// `hotline transcribe --grammar` holds utterances by the same rule.
pub fn leaves_answer_open(confidence: Option<f32>, takes_slots: bool, thresholds: Thresholds) -> bool {
    confidence.is_none_or(|c| c < thresholds.accept && !(takes_slots && c >= thresholds.confirm))
}
