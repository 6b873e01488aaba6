//! Stage two: raw TOML values -> the compiled [`Dialplan`], every problem
//! reported, defaults filled in.
//!
//! Validation never stops at the first problem: each check reports and moves
//! on, and the compiled dialplan is only handed out when no error was found.
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Range;
use std::path::Path;

use super::diagnostic::{did_you_mean, Reporter};
use super::model::*;
use super::raw::{At, RawAction, RawCollect, RawDialplan, RawMenu, RawMenuSettings, RawOption, RawPrompt, RawSlotRefs};
pub(super) use super::reprompt::choices_sentence;
use super::slots::expand_phrases;

/// Section names under `[globals]`, also the intent names in timelines.
pub const GLOBAL_NAMES: [&str; 5] = ["agent", "repeat", "back", "main_menu", "goodbye"];
/// Keys of `[messages]`, named like the fields of [`Messages`].
pub const MESSAGE_NAMES: [&str; 7] =
    ["confirm_intent", "confirm_digits", "dtmf_only", "transferring", "transfer_failed", "goodbye", "confirm_request"];

pub const DEFAULT_ACCEPT: f32 = 0.85;
pub const DEFAULT_CONFIRM: f32 = 0.45;
/// A silent caller is asked twice (prompt, one reprompt), each followed by
/// this wait, then handed to a human: silent callers are often ones who
/// cannot or will not talk to a machine, and they hang up long before a
/// third round.
pub const DEFAULT_NO_INPUT_TIMEOUT_S: f64 = 5.0;
pub const DEFAULT_NO_INPUT_RETRIES: u32 = 1;
/// A caller who speaks but is not understood gets more tries: each
/// reprompt says exactly what works.
pub const DEFAULT_NO_MATCH_RETRIES: u32 = 2;
/// Limits that keep a caller from waiting forever in one menu.
const TIMEOUT_RANGE_S: (f64, f64) = (1.0, 60.0);
const MAX_RETRIES: i64 = 10;
pub(super) const MAX_DIGITS: i64 = 32;
pub(super) const DEFAULT_MIN_DIGITS: usize = 1;
pub(super) const DEFAULT_MAX_DIGITS: usize = 16;
/// `then` words of `say` that are not menu ids.
const THEN_RETURN: &str = "return";
const THEN_HANGUP: &str = "hangup";

fn default_global(kind: GlobalKind) -> GlobalIntent {
    let (intent, phrases, dtmf): (&str, &[&str], Option<char>) = match kind {
        GlobalKind::Operator => (
            "agent",
            &[
                "agent",
                "operator",
                "human",
                "representative",
                "someone",
                "a person",
                "a real person",
                "talk to someone",
                "speak to a person",
            ],
            Some('0'),
        ),
        GlobalKind::Repeat => ("repeat", &["repeat", "say again", "repeat that", "say that again"], Some('*')),
        GlobalKind::Back => ("back", &["back", "go back", "previous", "previous menu"], Some('#')),
        GlobalKind::MainMenu => ("main_menu", &["main menu", "start over", "beginning"], None),
        GlobalKind::Goodbye => ("goodbye", &["goodbye", "bye", "hang up", "that's all"], None),
    };
    GlobalIntent { kind, intent: intent.into(), phrases: phrases.iter().map(|p| p.to_string()).collect(), dtmf }
}

fn global_kind(name: &str) -> Option<GlobalKind> {
    Some(match name {
        "agent" => GlobalKind::Operator,
        "repeat" => GlobalKind::Repeat,
        "back" => GlobalKind::Back,
        "main_menu" => GlobalKind::MainMenu,
        "goodbye" => GlobalKind::Goodbye,
        _ => return None,
    })
}

pub fn default_messages() -> Messages {
    Messages {
        confirm_intent: "Did you mean {}?".into(),
        confirm_digits: "I heard {}. Is that right?".into(),
        dtmf_only: "Sorry, speech recognition is not available right now. Please use your keypad.".into(),
        transferring: "Please hold while I transfer you.".into(),
        transfer_failed: "Sorry, the transfer failed.".into(),
        goodbye: "Thank you for calling. Goodbye.".into(),
        confirm_request: "{}, right?".into(),
    }
}

/// What validation needs besides the raw values.
pub struct Context<'a> {
    pub name: String,
    pub source: &'a Path,
    /// Folder prompt WAV paths are relative to.
    pub dir: &'a Path,
    pub version: String,
    /// Some(reason): text-only prompts get a warning that TTS is unavailable.
    pub tts_unavailable: Option<&'a str>,
    /// The server's recogniser, when known: a language it cannot hear is
    /// an error.
    pub recognizer_model: Option<crate::asr::models::WhisperModelName>,
}

/// The start of the file, for problems that have no place of their own.
const TOP: Range<usize> = 0..0;

pub fn compile(raw: RawDialplan, cx: &Context, rep: &mut Reporter) -> Option<Dialplan> {
    let thresholds = thresholds(&raw, rep);
    let operator = match &raw.operator {
        Some(op) => {
            let extension = match &op.extension {
                Some(ext) => {
                    check_extension(ext, "extension", rep);
                    ext.value.clone()
                }
                None => {
                    rep.error(
                        &op.span,
                        "`[operator]` has no `extension`",
                        Some("add `extension = \"100\"` (the operators' extension)".into()),
                    );
                    String::new()
                }
            };
            Transfer { extension, context: context(op.context.as_ref(), rep) }
        }
        None => {
            rep.error(
                &TOP,
                "no `[operator]` section: callers who ask for a person, and menus whose retries run out, have nowhere to go",
                Some("add `[operator]` with `extension = \"...\"`".into()),
            );
            Transfer { extension: String::new(), context: None }
        }
    };
    let globals = globals(&raw, rep);
    let messages = messages(&raw, rep);

    let menu_ids: Vec<&str> = raw.menus.iter().map(|m| m.id.value.as_str()).collect();
    for m in &raw.menus {
        check_name(&m.id, "menu id", rep);
        if m.id.value == THEN_RETURN || m.id.value == THEN_HANGUP {
            rep.error(&m.id.span, format!("`{}` cannot be a menu id: it is a keyword of `then`", m.id.value), None);
        }
    }
    let start = raw.start.clone().unwrap_or(At { value: "main".into(), span: TOP });
    if raw.menus.is_empty() {
        rep.error(
            &TOP,
            "the dialplan has no menus",
            Some("add a `[menus.main]` section with a `prompt` and `options`".into()),
        );
    } else if !menu_ids.contains(&start.value.as_str()) {
        let message = if raw.start.is_some() {
            format!("start menu `{}` does not exist", start.value)
        } else {
            "no start menu: there is no `[menus.main]` and `start` does not name another menu".to_string()
        };
        let help = did_you_mean(&start.value, menu_ids.iter().copied())
            .or_else(|| Some(format!("menus are: {}", menu_ids.join(", "))));
        rep.error(&start.span, message, help);
    }

    let slot_names: Vec<String> = raw.slots.iter().map(|s| s.name.value.clone()).collect();
    let slots = Validator { cx, rep, menu_ids: &menu_ids, globals: &globals, slots: &[], slot_names: &slot_names }
        .compile_slots(&raw.slots);
    let mut v = Validator { cx, rep, menu_ids: &menu_ids, globals: &globals, slots: &slots, slot_names: &slot_names };
    let defaults = v.settings(&raw.defaults);
    let mut menus = BTreeMap::new();
    for m in &raw.menus {
        let menu = v.menu(m, &defaults, &operator);
        menus.insert(m.id.value.clone(), menu);
    }
    if menu_ids.contains(&start.value.as_str()) {
        unreachable_menus(&raw.menus, &menus, &start.value, rep);
    }

    if rep.has_errors() {
        return None;
    }
    Some(Dialplan {
        name: cx.name.clone(),
        source: cx.source.to_path_buf(),
        version: cx.version.clone(),
        start_menu: start.value,
        language: super::language::language(raw.language.as_ref(), cx.recognizer_model, rep),
        operator,
        thresholds,
        menus,
        globals,
        messages,
    })
}

fn thresholds(raw: &RawDialplan, rep: &mut Reporter) -> Thresholds {
    let mut get = |v: &Option<At<f64>>, name: &str, default: f32| match v {
        Some(At { value, span }) if !(0.0..=1.0).contains(value) => {
            rep.error(span, format!("`{name}` must be between 0 and 1, found {value}"), None);
            default
        }
        Some(At { value, .. }) => *value as f32,
        None => default,
    };
    let accept = get(&raw.thresholds.accept, "accept", DEFAULT_ACCEPT);
    let confirm = get(&raw.thresholds.confirm, "confirm", DEFAULT_CONFIRM);
    if confirm > accept {
        let span = raw.thresholds.confirm.as_ref().or(raw.thresholds.accept.as_ref()).map_or(TOP, |a| a.span.clone());
        rep.error(
            &span,
            format!("`confirm` ({confirm}) must not be above `accept` ({accept})"),
            Some("between `confirm` and `accept` the caller is asked \"did you mean ...?\"".into()),
        );
    }
    Thresholds { accept, confirm }
}

fn globals(raw: &RawDialplan, rep: &mut Reporter) -> Vec<GlobalIntent> {
    let mut out = Vec::new();
    for name in GLOBAL_NAMES {
        let kind = global_kind(name).expect("GLOBAL_NAMES and global_kind agree");
        let mut g = default_global(kind);
        if let Some(over) = raw.globals.iter().find(|g| g.name.value == name) {
            if over.enabled.as_ref().is_some_and(|e| !e.value) {
                continue;
            }
            if let Some(phrases) = &over.phrases {
                g.phrases = phrase_list(phrases, rep);
            }
            if let Some(d) = &over.dtmf {
                g.dtmf = if d.value.is_empty() { None } else { dtmf_key(d, rep) };
            }
        }
        out.push(g);
    }
    out
}

fn messages(raw: &RawDialplan, rep: &mut Reporter) -> Messages {
    let mut m = default_messages();
    for (key, text) in &raw.messages {
        let read_out = match key.value.as_str() {
            "confirm_intent" => Some("intent's words"),
            "confirm_digits" => Some("digits"),
            "confirm_request" => Some("option and its slots"),
            _ => None,
        };
        if let Some(what) = read_out.filter(|_| !text.value.contains("{}")) {
            rep.error(&text.span, format!("`{}` must contain `{{}}`, where the {what} are read out", key.value), None);
        }
        if text.value.trim().is_empty() {
            rep.error(&text.span, format!("`{}` is empty", key.value), None);
        }
        let slot = match key.value.as_str() {
            "confirm_intent" => &mut m.confirm_intent,
            "confirm_digits" => &mut m.confirm_digits,
            "dtmf_only" => &mut m.dtmf_only,
            "transferring" => &mut m.transferring,
            "transfer_failed" => &mut m.transfer_failed,
            "confirm_request" => &mut m.confirm_request,
            _ => &mut m.goodbye,
        };
        *slot = text.value.clone();
    }
    m
}

/// Extensions and contexts are handed to the PBX as they are: a dialable
/// name of 1-32 characters from `0-9 A-Z a-z * # + - _ .`, no spaces.
fn valid_dial_string(s: &str) -> bool {
    (1..=32).contains(&s.chars().count())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | '#' | '+' | '-' | '_' | '.'))
}

fn check_extension(ext: &At<String>, what: &str, rep: &mut Reporter) -> bool {
    if valid_dial_string(&ext.value) {
        return true;
    }
    rep.error(
        &ext.span,
        format!("bad {what} `{}`", ext.value),
        Some("use 1-32 characters from 0-9, A-Z, a-z, * # + - _ . and no spaces".into()),
    );
    false
}

fn context(ctx: Option<&At<String>>, rep: &mut Reporter) -> Option<String> {
    let ctx = ctx?;
    check_extension(ctx, "context", rep);
    Some(ctx.value.clone())
}

/// Menu ids, intent and variable names: letters, digits, `_`, `-`.
pub(super) fn check_name(name: &At<String>, what: &str, rep: &mut Reporter) {
    let ok = !name.value.is_empty()
        && name.value.len() <= 64
        && name.value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        rep.error(&name.span, format!("bad {what} `{}`: use letters, digits, `_` and `-`", name.value), None);
    }
}

pub(super) fn dtmf_key(d: &At<String>, rep: &mut Reporter) -> Option<char> {
    let mut chars = d.value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => Some(c),
        _ => {
            rep.error(&d.span, format!("bad DTMF key `{}`", d.value), Some("use one of 0-9, * or #".into()));
            None
        }
    }
}

pub(super) fn phrase_list(phrases: &At<Vec<At<String>>>, rep: &mut Reporter) -> Vec<String> {
    if phrases.value.is_empty() {
        rep.error(
            &phrases.span,
            "`phrases` is empty",
            Some("list what callers say for this, e.g. [\"billing\", \"pay my bill\"]".into()),
        );
    }
    let mut out = Vec::new();
    for p in &phrases.value {
        let text = p.value.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            rep.error(&p.span, "empty phrase", None);
        } else {
            out.push(text);
        }
    }
    out
}

/// How two phrases are compared for ambiguity: case and spacing ignored.
pub(super) fn normalise(phrase: &str) -> String {
    phrase.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(super) struct Validator<'a, 'r, 's> {
    pub(super) cx: &'a Context<'a>,
    pub(super) rep: &'r mut Reporter<'s>,
    pub(super) menu_ids: &'a [&'a str],
    pub(super) globals: &'a [GlobalIntent],
    /// The slots compiled so far (all of them once menus are checked).
    pub(super) slots: &'a [Slot],
    /// Every `[slots.NAME]` written, valid or not.
    pub(super) slot_names: &'a [String],
}

impl Validator<'_, '_, '_> {
    /// Checks one set of menu settings (each set once, so a bad value in
    /// `[defaults]` is reported once, not once per menu).
    fn settings(&mut self, s: &RawMenuSettings) -> Settings {
        let timeout_s = s.no_input_timeout.as_ref().and_then(|At { value, span }| {
            if (TIMEOUT_RANGE_S.0..=TIMEOUT_RANGE_S.1).contains(value) {
                Some(*value)
            } else {
                let (lo, hi) = TIMEOUT_RANGE_S;
                self.rep.error(span, format!("`no_input_timeout` must be {lo} to {hi} seconds, found {value}"), None);
                None
            }
        });
        Settings {
            barge_in: s.barge_in.as_ref().map(|b| b.value),
            globals: s.globals.as_ref().map(|b| b.value),
            timeout_s,
            no_input_retries: self.retries(s.no_input_retries.as_ref(), "no_input_retries"),
            no_match_retries: self.retries(s.no_match_retries.as_ref(), "no_match_retries"),
            escalation: s.escalation.as_ref().map(|e| self.action(e, None, "escalation")),
        }
    }

    fn menu(&mut self, m: &RawMenu, defaults: &Settings, operator: &Transfer) -> Menu {
        let id = &m.id.value;
        let own = self.settings(&m.settings);
        let barge_in = own.barge_in.or(defaults.barge_in).unwrap_or(true);
        let globals_on = own.globals.or(defaults.globals).unwrap_or(true);
        let timeout_s = own.timeout_s.or(defaults.timeout_s).unwrap_or(DEFAULT_NO_INPUT_TIMEOUT_S);
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
        self.check_clashes(m, globals_on);

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
            max_no_input,
            max_no_match,
            escalation,
            options,
            globals: globals_on,
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

    pub(super) fn prompt(&mut self, p: &RawPrompt, what: &str) -> Prompt {
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
struct Settings {
    barge_in: Option<bool>,
    globals: Option<bool>,
    timeout_s: Option<f64>,
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

fn unreachable_menus(raw: &[RawMenu], menus: &BTreeMap<String, Menu>, start: &str, rep: &mut Reporter) {
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
