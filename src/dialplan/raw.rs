//! Stage one: the TOML text as the admin wrote it, every value with its span.
//!
//! Read from a `toml_edit` document rather than through serde: serde stops at
//! the first unknown key or wrong type, while an admin wants every mistake of
//! an edit reported at once. Each table reader remembers the keys it asked
//! for, so whatever is left over is an unknown key, reported with a
//! did-you-mean against the keys that table knows.
use std::ops::Range;

use toml_edit::{ImDocument, Item, TableLike, Value};

use super::diagnostic::{did_you_mean, Reporter};

/// A value and where it was written (byte range in the source).
#[derive(Debug, Clone, PartialEq)]
pub struct At<T> {
    pub value: T,
    pub span: Range<usize>,
}

#[derive(Debug, Default)]
pub struct RawDialplan {
    pub start: Option<At<String>>,
    pub language: Option<At<String>>,
    pub operator: Option<RawTransfer>,
    pub thresholds: RawThresholds,
    pub defaults: RawMenuSettings,
    pub globals: Vec<RawGlobal>,
    pub messages: Vec<(At<String>, At<String>)>,
    pub slots: Vec<RawSlot>,
    pub menus: Vec<RawMenu>,
}

/// A named list of phrases: `small = ["small", "twelve ounce"]`.
pub type PhraseList = (At<String>, At<Vec<At<String>>>);

/// `[slots.NAME]`: a detail options can ask for.
#[derive(Debug)]
pub struct RawSlot {
    pub name: At<String>,
    pub kind: Option<At<String>>,
    /// `[slots.NAME.values]`: value name -> phrases, in the order written.
    pub values: Option<At<Vec<PhraseList>>>,
    pub prompt: Option<RawPrompt>,
    pub min_digits: Option<At<i64>>,
    pub max_digits: Option<At<i64>>,
}

/// `slots` and `optional_slots` of a menu or an option.
#[derive(Debug, Default)]
pub struct RawSlotRefs {
    pub required: Option<At<Vec<At<String>>>>,
    pub optional: Option<At<Vec<At<String>>>>,
}

#[derive(Debug, Default)]
pub struct RawThresholds {
    pub accept: Option<At<f64>>,
    pub confirm: Option<At<f64>>,
}

#[derive(Debug)]
pub struct RawTransfer {
    /// The `[operator]` header (or key) for "missing extension" errors.
    pub span: Range<usize>,
    pub extension: Option<At<String>>,
    pub context: Option<At<String>>,
}

/// Menu settings that `[defaults]` provides and each menu may override.
#[derive(Debug, Default)]
pub struct RawMenuSettings {
    pub barge_in: Option<At<bool>>,
    /// Seconds.
    pub no_input_timeout: Option<At<f64>>,
    /// Seconds.
    pub incomplete_timeout: Option<At<f64>>,
    pub no_input_retries: Option<At<i64>>,
    pub no_match_retries: Option<At<i64>>,
    pub globals: Option<At<bool>>,
    pub spoken_keys: Option<At<bool>>,
    pub escalation: Option<RawAction>,
}

#[derive(Debug)]
pub struct RawMenu {
    pub id: At<String>,
    pub prompt: Option<RawPrompt>,
    pub no_input_prompt: Option<RawPrompt>,
    pub no_match_prompt: Option<RawPrompt>,
    pub settings: RawMenuSettings,
    pub options: Vec<RawOption>,
    /// Slots every option of the menu takes.
    pub slots: RawSlotRefs,
    /// `options` exists but is not a table (already reported).
    pub options_malformed: bool,
}

/// `"text"` or `{ text = "...", wav = "file.wav" }`.
#[derive(Debug, Clone)]
pub struct RawPrompt {
    pub span: Range<usize>,
    pub text: Option<At<String>>,
    pub wav: Option<At<String>>,
}

#[derive(Debug)]
pub struct RawOption {
    pub intent: At<String>,
    pub phrases: Option<At<Vec<At<String>>>>,
    pub dtmf: Option<At<String>>,
    pub collect: Option<RawCollect>,
    pub action: RawAction,
    pub slots: RawSlotRefs,
    pub confirm: Option<At<bool>>,
    pub read_back: Option<At<String>>,
}

/// The action keys shared by options and `escalation`.
#[derive(Debug, Default)]
pub struct RawAction {
    /// Where "no action" / "two actions" errors point.
    pub span: Range<usize>,
    pub goto: Option<At<String>>,
    pub transfer: Option<At<String>>,
    pub context: Option<At<String>>,
    pub say: Option<RawPrompt>,
    pub then: Option<At<String>>,
}

#[derive(Debug)]
pub struct RawCollect {
    pub span: Range<usize>,
    pub variable: Option<At<String>>,
    pub prompt: Option<RawPrompt>,
    pub min_digits: Option<At<i64>>,
    pub max_digits: Option<At<i64>>,
    pub confirm: Option<At<bool>>,
    /// `[...collect.choices.NAME]`: the step takes one of these instead of
    /// digits. `span` is the `choices` key.
    pub choices: Option<At<Vec<RawSlotChoice>>>,
}

/// One value a `collect` step can take: `[...collect.choices.internet]`.
#[derive(Debug)]
pub struct RawSlotChoice {
    pub value: At<String>,
    pub phrases: Option<At<Vec<At<String>>>>,
    pub dtmf: Option<At<String>>,
}

#[derive(Debug)]
pub struct RawGlobal {
    pub name: At<String>,
    pub enabled: Option<At<bool>>,
    pub phrases: Option<At<Vec<At<String>>>>,
    pub dtmf: Option<At<String>>,
}

/// Parses the text. `Err` holds the span and message of a TOML syntax error;
/// `Ok` may still have added diagnostics (unknown keys, wrong types) to `rep`.
pub fn parse(source: &str, rep: &mut Reporter) -> Result<RawDialplan, (Range<usize>, String)> {
    let doc = ImDocument::parse(source).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        // toml_edit puts the reason and what was expected on separate lines.
        let message = e.message().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
        (span, format!("invalid TOML: {message}"))
    })?;
    let root_table = doc.as_table();
    let mut root = TableReader::new(root_table, 0..0, "the top level");
    let mut raw = RawDialplan { start: root.string(rep, "start"), ..Default::default() };
    if let Some(mut t) = root.table(rep, "operator") {
        raw.operator = Some(RawTransfer {
            span: t.span.clone(),
            extension: t.string(rep, "extension"),
            context: t.string(rep, "context"),
        });
        t.finish(rep);
    }
    raw.language = root.string(rep, "language");
    if let Some(mut t) = root.table(rep, "thresholds") {
        raw.thresholds = RawThresholds { accept: t.float(rep, "accept"), confirm: t.float(rep, "confirm") };
        t.finish(rep);
    }
    if let Some(mut t) = root.table(rep, "defaults") {
        raw.defaults = menu_settings(&mut t, rep);
        t.finish(rep);
    }
    if let Some(mut t) = root.table(rep, "globals") {
        for name in super::validate::GLOBAL_NAMES {
            if let Some(mut g) = t.table(rep, name) {
                raw.globals.push(RawGlobal {
                    name: At { value: name.to_string(), span: g.span.clone() },
                    enabled: g.bool(rep, "enabled"),
                    phrases: g.string_list(rep, "phrases"),
                    dtmf: g.dtmf(rep, "dtmf"),
                });
                g.finish(rep);
            }
        }
        t.finish(rep);
    }
    if let Some(mut t) = root.table(rep, "messages") {
        for name in super::validate::MESSAGE_NAMES {
            if let Some(text) = t.string(rep, name) {
                raw.messages.push((At { value: name.to_string(), span: text.span.clone() }, text));
            }
        }
        t.finish(rep);
    }
    if let Some(mut slots) = root.table(rep, "slots") {
        for (name, mut t) in slots.entries(rep) {
            raw.slots.push(RawSlot {
                kind: t.string(rep, "kind"),
                values: t.table(rep, "values").map(|mut v| {
                    let span = v.span.clone();
                    At { value: v.phrase_lists(rep), span }
                }),
                prompt: t.prompt(rep, "prompt"),
                min_digits: t.integer(rep, "min_digits"),
                max_digits: t.integer(rep, "max_digits"),
                name,
            });
            t.finish(rep);
        }
        slots.finish(rep);
    }
    if let Some(mut menus) = root.table(rep, "menus") {
        for (id, mut m) in menus.entries(rep) {
            let mut menu = RawMenu {
                prompt: m.prompt(rep, "prompt"),
                no_input_prompt: m.prompt(rep, "no_input_prompt"),
                no_match_prompt: m.prompt(rep, "no_match_prompt"),
                settings: menu_settings(&mut m, rep),
                options: Vec::new(),
                slots: slot_refs(&mut m, rep),
                options_malformed: m.table.get("options").is_some_and(|i| !i.is_table_like()),
                id,
            };
            if let Some(mut options) = m.table(rep, "options") {
                for (intent, mut o) in options.entries(rep) {
                    let phrases = o.string_list(rep, "phrases");
                    let dtmf = o.dtmf(rep, "dtmf");
                    let collect = o.table(rep, "collect").map(|mut c| {
                        let collect = RawCollect {
                            span: c.span.clone(),
                            variable: c.string(rep, "variable"),
                            prompt: c.prompt(rep, "prompt"),
                            min_digits: c.integer(rep, "min_digits"),
                            max_digits: c.integer(rep, "max_digits"),
                            confirm: c.bool(rep, "confirm"),
                            choices: c.table(rep, "choices").map(|mut t| {
                                let span = t.span.clone();
                                let values = t
                                    .entries(rep)
                                    .into_iter()
                                    .map(|(value, mut v)| {
                                        let choice = RawSlotChoice {
                                            phrases: v.string_list(rep, "phrases"),
                                            dtmf: v.dtmf(rep, "dtmf"),
                                            value,
                                        };
                                        v.finish(rep);
                                        choice
                                    })
                                    .collect();
                                t.finish(rep);
                                At { value: values, span }
                            }),
                        };
                        c.finish(rep);
                        collect
                    });
                    let action = action(&mut o, rep, intent.span.clone());
                    let slots = slot_refs(&mut o, rep);
                    let confirm = o.bool(rep, "confirm");
                    let read_back = o.string(rep, "read_back");
                    o.finish(rep);
                    menu.options.push(RawOption { intent, phrases, dtmf, collect, action, slots, confirm, read_back });
                }
                options.finish(rep);
            }
            m.finish(rep);
            raw.menus.push(menu);
        }
        menus.finish(rep);
    }
    root.finish(rep);
    Ok(raw)
}

fn menu_settings(t: &mut TableReader, rep: &mut Reporter) -> RawMenuSettings {
    RawMenuSettings {
        barge_in: t.bool(rep, "barge_in"),
        no_input_timeout: t.float(rep, "no_input_timeout"),
        incomplete_timeout: t.float(rep, "incomplete_timeout"),
        no_input_retries: t.integer(rep, "no_input_retries"),
        no_match_retries: t.integer(rep, "no_match_retries"),
        globals: t.bool(rep, "globals"),
        spoken_keys: t.bool(rep, "spoken_keys"),
        escalation: t.table(rep, "escalation").map(|mut e| {
            let span = e.span.clone();
            let a = action(&mut e, rep, span);
            e.finish(rep);
            a
        }),
    }
}

fn slot_refs(t: &mut TableReader, rep: &mut Reporter) -> RawSlotRefs {
    RawSlotRefs { required: t.string_list(rep, "slots"), optional: t.string_list(rep, "optional_slots") }
}

fn action(t: &mut TableReader, rep: &mut Reporter, span: Range<usize>) -> RawAction {
    RawAction {
        span,
        goto: t.string(rep, "goto"),
        transfer: t.string(rep, "transfer"),
        context: t.string(rep, "context"),
        say: t.prompt(rep, "say"),
        then: t.string(rep, "then"),
    }
}

/// Reads keys of one table and reports the ones nobody asked for.
struct TableReader<'d> {
    table: &'d dyn TableLike,
    /// Where problems with the table as a whole point (its header or key).
    span: Range<usize>,
    what: String,
    known: Vec<&'static str>,
    /// Tables whose keys are names chosen by the admin (menus, options).
    open: bool,
}

impl<'d> TableReader<'d> {
    fn new(table: &'d dyn TableLike, span: Range<usize>, what: impl Into<String>) -> Self {
        TableReader { table, span, what: what.into(), known: Vec::new(), open: false }
    }

    /// The item under `key` and the best span for it (value, else key).
    fn get(&mut self, key: &'static str) -> Option<(&'d Item, Range<usize>)> {
        self.known.push(key);
        let (k, item) = self.table.get_key_value(key)?;
        let span = item.span().or_else(|| k.span()).unwrap_or_else(|| self.span.clone());
        Some((item, span))
    }

    fn key_span(&self, key: &str) -> Range<usize> {
        self.table.key(key).and_then(|k| k.span()).unwrap_or_else(|| self.span.clone())
    }

    fn wrong_type(&self, rep: &mut Reporter, key: &str, expected: &str, item: &Item, span: &Range<usize>) {
        rep.error(span, format!("`{key}` must be {expected}, found {}", item.type_name()), None);
    }

    fn string(&mut self, rep: &mut Reporter, key: &'static str) -> Option<At<String>> {
        let (item, span) = self.get(key)?;
        match item.as_str() {
            Some(s) => Some(At { value: s.to_string(), span }),
            None => {
                self.wrong_type(rep, key, "a string", item, &span);
                None
            }
        }
    }

    /// A key on the phone: `"1"`, `"*"`, or the bare number `1`.
    fn dtmf(&mut self, rep: &mut Reporter, key: &'static str) -> Option<At<String>> {
        let (item, span) = self.get(key)?;
        match (item.as_str(), item.as_integer()) {
            (Some(s), _) => Some(At { value: s.to_string(), span }),
            (None, Some(i)) => Some(At { value: i.to_string(), span }),
            _ => {
                self.wrong_type(rep, key, "a key such as \"1\" or \"*\"", item, &span);
                None
            }
        }
    }

    fn bool(&mut self, rep: &mut Reporter, key: &'static str) -> Option<At<bool>> {
        let (item, span) = self.get(key)?;
        match item.as_bool() {
            Some(b) => Some(At { value: b, span }),
            None => {
                self.wrong_type(rep, key, "true or false", item, &span);
                None
            }
        }
    }

    fn integer(&mut self, rep: &mut Reporter, key: &'static str) -> Option<At<i64>> {
        let (item, span) = self.get(key)?;
        match item.as_integer() {
            Some(i) => Some(At { value: i, span }),
            None => {
                self.wrong_type(rep, key, "a whole number", item, &span);
                None
            }
        }
    }

    fn float(&mut self, rep: &mut Reporter, key: &'static str) -> Option<At<f64>> {
        let (item, span) = self.get(key)?;
        match (item.as_float(), item.as_integer()) {
            (Some(f), _) => Some(At { value: f, span }),
            (None, Some(i)) => Some(At { value: i as f64, span }),
            _ => {
                self.wrong_type(rep, key, "a number", item, &span);
                None
            }
        }
    }

    fn string_list(&mut self, rep: &mut Reporter, key: &'static str) -> Option<At<Vec<At<String>>>> {
        let (item, span) = self.get(key)?;
        let Some(array) = item.as_array() else {
            self.wrong_type(rep, key, "a list of strings", item, &span);
            return None;
        };
        Some(strings_of(array, key, span, rep))
    }

    /// A table whose keys are names chosen by the admin, each a list of
    /// phrases: `small = ["small", "twelve ounce"]`.
    fn phrase_lists(&mut self, rep: &mut Reporter) -> Vec<PhraseList> {
        self.open = true;
        let mut out = Vec::new();
        for (name, item) in self.table.iter() {
            let key_span = self.key_span(name);
            let span = item.span().unwrap_or_else(|| key_span.clone());
            let name = At { value: name.to_string(), span: key_span };
            match item.as_array() {
                Some(array) => out.push((name, strings_of(array, "phrases", span, rep))),
                None => rep.error(
                    &span,
                    format!(
                        "value `{}` in {} must be a list of phrases, found {}",
                        name.value,
                        self.what,
                        item.type_name()
                    ),
                    Some(format!("e.g. `{} = [\"{}\", \"another way to say it\"]`", name.value, name.value)),
                ),
            }
        }
        out
    }
}

/// What a table the admin wrote as something else should look like, for
/// the tables whose shape is easy to get wrong (`choices = ["a", "b"]`).
fn expected_table_shape(key: &str) -> Option<String> {
    let example = match key {
        "choices" => {
            "one table per value under the `collect`: `[menus.main.options.outage.collect.choices.internet]` \
             then `phrases = [\"internet\", \"broadband\"]` and `dtmf = \"1\"`"
        }
        "values" => "`[slots.size.values]` then one line per value: `small = [\"small\", \"twelve ounce\"]`",
        "options" => {
            "one table per option: `[menus.main.options.billing]` then `phrases = [\"billing\"]`, `dtmf = \"1\"`"
        }
        "slots" => "one table per slot: `[slots.size.values]` then `small = [\"small\"]`",
        "menus" => "one table per menu: `[menus.main]` then `prompt = \"...\"`",
        _ => return None,
    };
    Some(format!("expected {example}"))
}

/// The strings of a TOML array; anything else in it is reported.
fn strings_of(array: &toml_edit::Array, key: &str, span: Range<usize>, rep: &mut Reporter) -> At<Vec<At<String>>> {
    {
        let mut values = Vec::new();
        for v in array.iter() {
            let vspan = v.span().unwrap_or_else(|| span.clone());
            match v {
                Value::String(s) => values.push(At { value: s.value().clone(), span: vspan }),
                other => rep.error(&vspan, format!("`{key}` must list strings, found {}", other.type_name()), None),
            }
        }
        At { value: values, span }
    }
}

impl<'d> TableReader<'d> {
    fn prompt(&mut self, rep: &mut Reporter, key: &'static str) -> Option<RawPrompt> {
        let (item, span) = self.get(key)?;
        if let Some(s) = item.as_str() {
            return Some(RawPrompt { span: span.clone(), text: Some(At { value: s.to_string(), span }), wav: None });
        }
        let Some(table) = item.as_table_like() else {
            self.wrong_type(rep, key, "a text or a table with `text` and/or `wav`", item, &span);
            return None;
        };
        let mut t = TableReader::new(table, self.key_span(key), format!("`{key}`"));
        let prompt = RawPrompt { span: t.span.clone(), text: t.string(rep, "text"), wav: t.string(rep, "wav") };
        t.finish(rep);
        Some(prompt)
    }

    fn table(&mut self, rep: &mut Reporter, key: &'static str) -> Option<TableReader<'d>> {
        let (item, span) = self.get(key)?;
        match item.as_table_like() {
            Some(t) => Some(TableReader::new(t, self.key_span(key), format!("`{key}`"))),
            None if item.is_array_of_tables() => {
                // `[[menus.main.options]]` is the other common TOML idiom.
                let help = format!("name each entry: `[...{key}.NAME]` instead of `[[...{key}]]`");
                rep.error(
                    &span,
                    format!("`{key}` must be a table of named entries, found array of tables"),
                    Some(help),
                );
                None
            }
            None => {
                let message = format!("`{key}` must be a table, found {}", item.type_name());
                rep.error(&span, message, expected_table_shape(key));
                None
            }
        }
    }

    /// Every entry of a table whose keys are names (menu ids, intents), in
    /// the order written; entries that are not tables are reported.
    fn entries(&mut self, rep: &mut Reporter) -> Vec<(At<String>, TableReader<'d>)> {
        self.open = true;
        let mut out = Vec::new();
        for (name, item) in self.table.iter() {
            let key_span = self.key_span(name);
            match item.as_table_like() {
                Some(t) => out.push((
                    At { value: name.to_string(), span: key_span.clone() },
                    TableReader::new(t, key_span, format!("`{name}`")),
                )),
                None => {
                    let span = item.span().unwrap_or(key_span);
                    rep.error(
                        &span,
                        format!("`{name}` in {} must be a table, found {}", self.what, item.type_name()),
                        None,
                    );
                }
            }
        }
        out
    }

    fn finish(self, rep: &mut Reporter) {
        if self.open {
            return;
        }
        for (key, _) in self.table.iter() {
            if self.known.contains(&key) {
                continue;
            }
            let help = did_you_mean(key, self.known.iter().copied())
                .or_else(|| Some(format!("known keys here: {}", self.known.join(", "))));
            rep.error(&self.key_span(key), format!("unknown key `{key}` in {}", self.what), help);
        }
    }
}
