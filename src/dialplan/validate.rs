//! Stage two: raw TOML values -> the compiled [`Dialplan`], every problem
//! reported, defaults filled in.
//!
//! Validation never stops at the first problem: each check reports and moves
//! on, and the compiled dialplan is only handed out when no error was found.
//! Split by concern: `sections` (the dialplan-wide `[operator]`,
//! `[thresholds]`, `[globals]`, `[messages]`), `menus` (menus, options and
//! their actions, and which menus can be reached), `values` (checks of
//! single values every part shares); slots and `collect` steps are
//! `super::slots` and `super::collect`.
mod menus;
mod sections;
mod values;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use super::diagnostic::{did_you_mean, Reporter};
use super::model::*;
use super::raw::{At, RawAction, RawCollect, RawDialplan, RawMenu, RawMenuSettings, RawOption, RawPrompt, RawSlotRefs};
pub(super) use super::reprompt::choices_sentence;
pub(super) use menus::Validator;
pub(super) use values::{check_name, dtmf_key, normalise, phrase_list};

use super::slots::expand_phrases;
use menus::unreachable_menus;
use sections::{globals, messages, operator, thresholds};

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
/// Silence after words the call cannot act on yet (nothing matched, a
/// question it would have to ask, too few digits) before it answers them.
/// Callers pause mid-sentence ("I'd like a … large latte") and between
/// groups of a number read aloud (1.3-1.4 s in the sphinx4 recording, and
/// the detector needs ~0.1 s to tell speech has resumed); answering
/// "Sorry?" at the usual end of an utterance cuts them off.
pub const DEFAULT_INCOMPLETE_TIMEOUT_S: f64 = 2.0;
/// Limits that keep a caller from waiting forever in one menu.
const TIMEOUT_RANGE_S: (f64, f64) = (1.0, 60.0);
const INCOMPLETE_RANGE_S: (f64, f64) = (0.0, 10.0);
const MAX_RETRIES: i64 = 10;
pub(super) const MAX_DIGITS: i64 = 32;
pub(super) const DEFAULT_MIN_DIGITS: usize = 1;
pub(super) const DEFAULT_MAX_DIGITS: usize = 16;
/// `then` words of `say` that are not menu ids.
const THEN_RETURN: &str = "return";
const THEN_HANGUP: &str = "hangup";

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
    let operator = operator(&raw, rep);
    let globals = globals(&raw, rep);
    let messages = messages(&raw, rep);
    let language = super::language::language(raw.language.as_ref(), cx.recognizer_model, rep);

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
    let slots =
        Validator { cx, rep, language, menu_ids: &menu_ids, globals: &globals, slots: &[], slot_names: &slot_names }
            .compile_slots(&raw.slots);
    let mut v =
        Validator { cx, rep, language, menu_ids: &menu_ids, globals: &globals, slots: &slots, slot_names: &slot_names };
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
        language,
        operator,
        thresholds,
        menus,
        globals,
        messages,
    })
}
