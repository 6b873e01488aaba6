//! Menus, their options and actions, and which menus a caller can reach.
use std::collections::{BTreeSet, VecDeque};

use super::values::{check_extension, context};
use super::*;

pub(in crate::dialplan) struct Validator<'a, 'r, 's> {
    pub(in crate::dialplan) cx: &'a Context<'a>,
    pub(in crate::dialplan) rep: &'r mut Reporter<'s>,
    /// The language callers speak (the dialplan's).
    pub(in crate::dialplan) language: crate::asr::Language,
    pub(in crate::dialplan) menu_ids: &'a [&'a str],
    pub(in crate::dialplan) globals: &'a [GlobalIntent],
    /// The slots compiled so far (all of them once menus are checked).
    pub(in crate::dialplan) slots: &'a [Slot],
    /// Every `[slots.NAME]` written, valid or not.
    pub(in crate::dialplan) slot_names: &'a [String],
}

impl Validator<'_, '_, '_> {
    /// Checks one set of menu settings (each set once, so a bad value in
    /// `[defaults]` is reported once, not once per menu).
    pub(super) fn settings(&mut self, s: &RawMenuSettings) -> Settings {
        let timeout_s = self.seconds(s.no_input_timeout.as_ref(), "no_input_timeout", TIMEOUT_RANGE_S);
        let incomplete_s = self.seconds(s.incomplete_timeout.as_ref(), "incomplete_timeout", INCOMPLETE_RANGE_S);
        Settings {
            barge_in: s.barge_in.as_ref().map(|b| b.value),
            globals: s.globals.as_ref().map(|b| b.value),
            spoken_keys: s.spoken_keys.as_ref().map(|b| b.value),
            timeout_s,
            incomplete_s,
            no_input_retries: self.retries(s.no_input_retries.as_ref(), "no_input_retries"),
            no_match_retries: self.retries(s.no_match_retries.as_ref(), "no_match_retries"),
            escalation: s.escalation.as_ref().map(|e| self.action(e, None, "escalation")),
        }
    }

    pub(super) fn menu(&mut self, m: &RawMenu, defaults: &Settings, operator: &Transfer) -> Menu {
        let id = &m.id.value;
        let own = self.settings(&m.settings);
        let barge_in = own.barge_in.or(defaults.barge_in).unwrap_or(true);
        let globals_on = own.globals.or(defaults.globals).unwrap_or(true);
        let spoken_keys = own.spoken_keys.or(defaults.spoken_keys).unwrap_or(true);
        let timeout_s = own.timeout_s.or(defaults.timeout_s).unwrap_or(DEFAULT_NO_INPUT_TIMEOUT_S);
        let incomplete_s = own.incomplete_s.or(defaults.incomplete_s).unwrap_or(DEFAULT_INCOMPLETE_TIMEOUT_S);
        let max_no_input = own.no_input_retries.or(defaults.no_input_retries).unwrap_or(DEFAULT_NO_INPUT_RETRIES);
        let max_no_match = own.no_match_retries.or(defaults.no_match_retries).unwrap_or(DEFAULT_NO_MATCH_RETRIES);
        // An escalation with errors has been reported; the operator stands in
        // so the rest of the menu can still be checked.
        let escalation = own
            .escalation
            .or_else(|| defaults.escalation.clone())
            .flatten()
            .unwrap_or_else(|| Action::Transfer(operator.clone()));

        let prompt = match &m.prompt {
            Some(p) => self.prompt(p, "prompt"),
            None => {
                self.rep.error(
                    &m.id.span,
                    format!("menu `{id}` has no `prompt`"),
                    Some("add `prompt = \"...\"` listing the choices".into()),
                );
                Prompt::default()
            }
        };

        let options: Vec<MenuOption> = m.options.iter().filter_map(|o| self.option(o, &m.slots)).collect();
        if m.options.is_empty() && !m.options_malformed {
            self.rep.error(
                &m.id.span,
                format!("menu `{id}` has no options"),
                Some(format!("add `[menus.{id}.options.NAME]` sections")),
            );
        }
        self.check_clashes(m, globals_on, spoken_keys);

        let active_globals: Vec<&GlobalIntent> = if globals_on { self.globals.iter().collect() } else { Vec::new() };
        let choices: Vec<(String, Option<char>)> =
            options.iter().map(|o| (o.phrases.first().cloned().unwrap_or_default(), o.dtmf)).collect();
        let agent = active_globals
            .iter()
            .find(|g| g.kind == GlobalKind::Operator)
            .map(|agent| (agent.phrases.first().cloned().unwrap_or_default(), agent.dtmf));
        let list = choices_sentence(&choices, agent.as_ref());
        let generated = |lead: &str| Prompt { text: format!("{lead} {list}"), wav: None };
        let no_input_prompt = match &m.no_input_prompt {
            Some(p) => self.prompt(p, "no_input_prompt"),
            None => generated("Sorry, I didn't hear anything."),
        };
        let no_match_prompt = match &m.no_match_prompt {
            Some(p) => self.prompt(p, "no_match_prompt"),
            None => generated("Sorry, I didn't understand."),
        };
        if let Some(reason) = self.cx.tts_unavailable {
            if m.no_input_prompt.is_none() || m.no_match_prompt.is_none() {
                self.rep.warning(
                    &m.id.span,
                    format!(
                        "the generated reprompts of menu `{id}` need text-to-speech, which is unavailable ({reason})"
                    ),
                    Some("give `no_input_prompt` and `no_match_prompt` a `wav`".into()),
                );
            }
        }

        Menu {
            id: id.clone(),
            prompt,
            no_input_prompt,
            no_match_prompt,
            barge_in,
            no_input_timeout_ms: (timeout_s * 1000.0).round() as u64,
            incomplete_timeout_ms: (incomplete_s * 1000.0).round() as u64,
            max_no_input,
            max_no_match,
            escalation,
            options,
            globals: globals_on,
            spoken_keys,
        }
    }

    fn seconds(&mut self, v: Option<&At<f64>>, name: &str, (lo, hi): (f64, f64)) -> Option<f64> {
        let At { value, span } = v?;
        if (lo..=hi).contains(value) {
            Some(*value)
        } else {
            self.rep.error(span, format!("`{name}` must be {lo} to {hi} seconds, found {value}"), None);
            None
        }
    }

    fn retries(&mut self, v: Option<&At<i64>>, name: &str) -> Option<u32> {
        let At { value, span } = v?;
        if (0..=MAX_RETRIES).contains(value) {
            Some(*value as u32)
        } else {
            self.rep.error(span, format!("`{name}` must be 0 to {MAX_RETRIES}, found {value}"), None);
            None
        }
    }

    pub(in crate::dialplan) fn prompt(&mut self, p: &RawPrompt, what: &str) -> Prompt {
        let text = p.text.as_ref().map(|t| t.value.trim().to_string()).unwrap_or_default();
        if let Some(t) = &p.text {
            if text.is_empty() {
                self.rep.error(&t.span, format!("`{what}` text is empty"), None);
            }
            let menu_prompt = matches!(what, "prompt" | "no_input_prompt" | "no_match_prompt");
            self.check_references(t, !menu_prompt);
        }
        let wav = p.wav.as_ref().map(|w| {
            let path = self.cx.dir.join(&w.value);
            if w.value.trim().is_empty() {
                self.rep.error(&w.span, format!("`{what}` wav path is empty"), None);
            } else if !path.is_file() {
                self.rep.error(
                    &w.span,
                    format!("prompt file `{}` not found", path.display()),
                    Some("WAV paths are relative to the dialplan's folder".into()),
                );
            } else if let Err(e) = hound::WavReader::open(&path) {
                self.rep.error(
                    &w.span,
                    format!("prompt file `{}` is not a readable WAV file: {e}", path.display()),
                    None,
                );
            }
            path
        });
        if p.text.is_none() && p.wav.is_none() {
            self.rep.error(&p.span, format!("`{what}` needs `text`, `wav` or both"), None);
        }
        if wav.is_none() && !text.is_empty() {
            if let Some(reason) = self.cx.tts_unavailable {
                self.rep.warning(
                    &p.span,
                    format!(
                        "`{what}` has only text and will be spoken by text-to-speech, which is unavailable ({reason})"
                    ),
                    Some("add a `wav` recording of it".into()),
                );
            }
        }
        Prompt { text, wav }
    }

    fn option(&mut self, o: &RawOption, menu_slots: &RawSlotRefs) -> Option<MenuOption> {
        check_name(&o.intent, "intent name", self.rep);
        let phrases = match &o.phrases {
            Some(p) => phrase_list(p, self.rep),
            None => {
                self.rep.error(
                    &o.intent.span,
                    format!("option `{}` has no `phrases`", o.intent.value),
                    Some("list what callers say for it, e.g. `phrases = [\"billing\"]`".into()),
                );
                Vec::new()
            }
        };
        let dtmf = self.key_of(&o.intent, o.dtmf.as_ref(), "option");
        let slots = self.option_slots(o, menu_slots);
        let phrases = expand_phrases(&phrases, &slots.uses);
        let action = self.action(&o.action, o.collect.as_ref(), "option")?;
        Some(MenuOption { intent: o.intent.value.clone(), phrases, dtmf, action, slots })
    }

    /// One of `goto`, `transfer`, `say`, optionally after a `collect`.
    fn action(&mut self, a: &RawAction, collect: Option<&RawCollect>, what: &str) -> Option<Action> {
        let given: Vec<&str> =
            [("goto", a.goto.is_some()), ("transfer", a.transfer.is_some()), ("say", a.say.is_some())]
                .into_iter()
                .filter_map(|(k, set)| set.then_some(k))
                .collect();
        if given.len() > 1 {
            self.rep.error(
                &a.span,
                format!("{what} has more than one action: {}", given.join(", ")),
                Some("keep exactly one of `goto`, `transfer`, `say`".into()),
            );
            return None;
        }
        if let Some(ctx) = a.context.as_ref().filter(|_| a.transfer.is_none()) {
            self.rep.error(&ctx.span, "`context` only applies to `transfer`", None);
        }
        if let Some(then) = a.then.as_ref().filter(|_| a.say.is_none()) {
            self.rep.error(&then.span, "`then` only applies to `say`", None);
        }
        let last = if let Some(target) = &a.goto {
            self.menu_ref(target, if what == "escalation" { "escalation" } else { "goto" }).map(Action::Goto)
        } else if let Some(ext) = &a.transfer {
            let ok = check_extension(ext, "extension", self.rep);
            let context = context(a.context.as_ref(), self.rep);
            ok.then(|| Action::Transfer(Transfer { extension: ext.value.clone(), context }))
        } else if let Some(say) = &a.say {
            let message = self.prompt(say, "say");
            let then = match &a.then {
                None => Some(AfterSay::Return),
                Some(t) if t.value == THEN_RETURN => Some(AfterSay::Return),
                Some(t) if t.value == THEN_HANGUP => Some(AfterSay::Hangup),
                Some(t) => self.menu_ref(t, "then").map(AfterSay::Goto),
            };
            then.map(|then| Action::Say { message, then })
        } else {
            let help = if collect.is_some() {
                "after `collect`, add `goto`, `transfer` or `say` to say what happens with the digits"
            } else {
                "add one of `goto = \"menu\"`, `transfer = \"extension\"`, `say = \"...\"`"
            };
            self.rep.error(&a.span, format!("{what} has no action"), Some(help.into()));
            None
        };
        match collect {
            Some(c) => {
                let collect = self.collect(c);
                Some(Action::Collect(Collect { then: Box::new(last?), ..collect? }))
            }
            None => last,
        }
    }

    fn menu_ref(&mut self, target: &At<String>, key: &str) -> Option<String> {
        if self.menu_ids.contains(&target.value.as_str()) {
            return Some(target.value.clone());
        }
        let mut help = did_you_mean(&target.value, self.menu_ids.iter().copied());
        if key == "then" && help.is_none() {
            help = did_you_mean(&target.value, [THEN_RETURN, THEN_HANGUP]);
        }
        if key == "escalation" && help.is_none() && did_you_mean(&target.value, ["operator", "agent"]).is_some() {
            help = Some("escalation transfers to `[operator]` by default: leave `escalation` out".into());
        }
        let help = help.or_else(|| Some(format!("menus are: {}", self.menu_ids.join(", "))));
        let what = match key {
            "then" => "`then` target",
            "escalation" => "escalation target",
            _ => "`goto` target",
        };
        self.rep.error(&target.span, format!("unknown {what}: no menu `{}`", target.value), help);
        None
    }
}

/// Checked menu settings; `None` = not given (or invalid and reported).
pub(super) struct Settings {
    barge_in: Option<bool>,
    globals: Option<bool>,
    spoken_keys: Option<bool>,
    timeout_s: Option<f64>,
    incomplete_s: Option<f64>,
    no_input_retries: Option<u32>,
    no_match_retries: Option<u32>,
    /// `Some(None)`: given but invalid.
    escalation: Option<Option<Action>>,
}

/// Menus an action can lead to.
fn targets(action: &Action) -> Vec<&str> {
    match action {
        Action::Goto(m) | Action::Say { then: AfterSay::Goto(m), .. } => vec![m],
        Action::Collect(c) => targets(&c.then),
        Action::Say { .. } | Action::Transfer(_) => Vec::new(),
    }
}

pub(super) fn unreachable_menus(raw: &[RawMenu], menus: &BTreeMap<String, Menu>, start: &str, rep: &mut Reporter) {
    let mut seen = BTreeSet::from([start]);
    let mut queue = VecDeque::from([start]);
    while let Some(id) = queue.pop_front() {
        let Some(menu) = menus.get(id) else { continue };
        let actions = menu.options.iter().map(|o| &o.action).chain([&menu.escalation]);
        for to in actions.flat_map(targets) {
            if seen.insert(to) {
                queue.push_back(to);
            }
        }
    }
    for m in raw.iter().filter(|m| !seen.contains(m.id.value.as_str())) {
        rep.warning(
            &m.id.span,
            format!("menu `{}` is unreachable: no `goto` leads to it from `{start}`", m.id.value),
            None,
        );
    }
}
