//! Slots: details of a request ("a large latte") declared once under
//! `[slots.NAME]` and reused by options, and the `{name}` references in
//! phrases and prompts (see `docs/dialplan.md`, "Slots").
use std::ops::Range;

use super::diagnostic::did_you_mean;
use super::model::*;
use super::raw::{At, RawOption, RawSlot, RawSlotRefs};
use super::validate::{check_name, choices_sentence, phrase_list, Validator};

/// `{option}` in a prompt or read-back: the chosen option, as spoken.
pub const OPTION_PLACEHOLDER: &str = "option";
/// Values get keys 1 to 9 in the order written; more cannot be keyed.
const MAX_KEYED_VALUES: usize = 9;
/// A phrase like "a {size} {milk} latte" stands for every combination of
/// the values' phrases, up to this many; past it, each value's first
/// phrase only (the recogniser scores every phrase of a menu).
const MAX_EXPANSIONS: usize = 32;
const KINDS: [&str; 4] = ["choice", "digits", "number", "yes_no"];
const DEFAULT_MAX_DIGITS: usize = 16;

/// The `{name}` references of a text, with their byte offsets; `{}` (the
/// placeholder of `[messages]`) is not one.
pub fn placeholders(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(open) = text[rest..].find('{').map(|i| i + rest) {
        let Some(close) = text[open..].find('}').map(|i| i + open) else { break };
        let name = &text[open + 1..close];
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            out.push((open, name));
        }
        rest = close + 1;
    }
    out
}

/// Where in the file a placeholder at `offset` of a string value is: its
/// own column for a plain one-line string, else the string's start.
fn placeholder_span(text: &At<String>, offset: usize) -> Range<usize> {
    let plain = text.span.len() == text.value.len() + 2;
    let start = if plain { text.span.start + 1 + offset } else { text.span.start };
    start..start + 1
}

/// "What size?" from `size`, `milk_type` -> "milk type".
fn spoken(name: &str) -> String {
    name.replace(['_', '-'], " ")
}

impl Validator<'_, '_, '_> {
    /// Every `[slots.NAME]`, checked.
    pub(super) fn compile_slots(&mut self, raw: &[RawSlot]) -> Vec<Slot> {
        raw.iter().filter_map(|s| self.slot(s)).collect()
    }

    fn slot(&mut self, r: &RawSlot) -> Option<Slot> {
        check_name(&r.name, "slot name", self.rep);
        let name = r.name.value.clone();
        if name == OPTION_PLACEHOLDER {
            let help = "`{option}` and the variable `option` name the chosen option; pick another name";
            self.rep.error(&r.name.span, "`option` cannot be a slot name", Some(help.into()));
        }
        let kind_name = match (&r.kind, &r.values) {
            (Some(k), _) => k.value.as_str(),
            (None, Some(_)) => "choice",
            (None, None) => {
                let help =
                    format!("add `[slots.{name}.values]` with `small = [\"small\"]` lines, or `kind = \"digits\"`");
                self.rep.error(&r.name.span, format!("slot `{name}` has no `values` and no `kind`"), Some(help));
                return None;
            }
        };
        if let Some(k) = r.kind.as_ref().filter(|k| !KINDS.contains(&k.value.as_str())) {
            let help = did_you_mean(&k.value, KINDS).or_else(|| Some(format!("kinds are: {}", KINDS.join(", "))));
            self.rep.error(&k.span, format!("unknown slot kind `{}`", k.value), help);
            return None;
        }
        if kind_name != "digits" {
            for v in [&r.min_digits, &r.max_digits].into_iter().flatten() {
                self.rep.error(&v.span, "`min_digits` and `max_digits` only apply to `kind = \"digits\"`", None);
            }
        }
        if let (Some(values), true) = (&r.values, kind_name != "choice") {
            self.rep.error(&values.span, format!("`values` only apply to a choice slot, not `{kind_name}`"), None);
        }
        let kind = match kind_name {
            "choice" => SlotKind::Choice(self.slot_values(r)?),
            "digits" => {
                let min = self.digit_bound(r.min_digits.as_ref(), 1)?;
                let max = self.digit_bound(r.max_digits.as_ref(), DEFAULT_MAX_DIGITS.max(min))?;
                if min > max {
                    let span = r.min_digits.as_ref().map_or(r.name.span.clone(), |m| m.span.clone());
                    self.rep.error(&span, format!("`min_digits` ({min}) is above `max_digits` ({max})"), None);
                }
                SlotKind::Digits { min, max }
            }
            "number" => SlotKind::Number,
            _ => SlotKind::YesNo,
        };
        let prompt = match &r.prompt {
            Some(p) => self.prompt(p, "slot prompt"),
            None => Prompt { text: generated_question(&name, &kind), wav: None },
        };
        Some(Slot { name, kind, prompt })
    }

    fn digit_bound(&mut self, v: Option<&At<i64>>, default: usize) -> Option<usize> {
        match v {
            Some(At { value, span }) if !(1..=32).contains(value) => {
                self.rep.error(span, format!("digits must be 1 to 32, found {value}"), None);
                None
            }
            Some(At { value, .. }) => Some(*value as usize),
            None => Some(default),
        }
    }

    /// A choice slot's values, keyed 1 to 9 in the order written. Two
    /// values with one phrase could not be told apart.
    fn slot_values(&mut self, r: &RawSlot) -> Option<Vec<SlotChoice>> {
        let Some(values) = &r.values else {
            let help = format!("add `[slots.{}.values]` with one line per value: `small = [\"small\"]`", r.name.value);
            self.rep.error(&r.name.span, format!("choice slot `{}` has no `values`", r.name.value), Some(help));
            return None;
        };
        if values.value.is_empty() {
            self.rep.error(&values.span, format!("slot `{}` has no values", r.name.value), None);
        }
        let mut seen: Vec<(String, String)> = Vec::new();
        let mut out = Vec::new();
        for (i, (value, phrases)) in values.value.iter().enumerate() {
            check_name(value, "value name", self.rep);
            for p in &phrases.value {
                let n = super::validate::normalise(&p.value);
                match seen.iter().find(|(phrase, _)| *phrase == n) {
                    Some((_, owner)) => self.rep.error(
                        &p.span,
                        format!(
                            "phrase \"{}\" of value `{}` is also a phrase of value `{owner}`",
                            p.value, value.value
                        ),
                        Some("the caller's words would be ambiguous; keep the phrase in one value".into()),
                    ),
                    None => seen.push((n, value.value.clone())),
                }
            }
            if i == MAX_KEYED_VALUES {
                self.rep.warning(
                    &value.span,
                    format!(
                        "slot `{}` has more than {MAX_KEYED_VALUES} values: `{}` and later ones have no key",
                        r.name.value, value.value
                    ),
                    Some("callers who cannot speak cannot choose them".into()),
                );
            }
            let dtmf = char::from_digit(i as u32 + 1, 10).filter(|_| i < MAX_KEYED_VALUES);
            out.push(SlotChoice { value: value.value.clone(), phrases: phrase_list(phrases, self.rep), dtmf });
        }
        Some(out)
    }

    /// The slots of option `o`: its own `slots` / `optional_slots`, then
    /// the menu's; its `confirm` and `read_back`.
    pub(super) fn option_slots(&mut self, o: &RawOption, menu: &RawSlotRefs) -> OptionSlots {
        let mut uses: Vec<SlotUse> = Vec::new();
        let lists =
            [(&o.slots.required, true), (&o.slots.optional, false), (&menu.required, true), (&menu.optional, false)];
        for (list, required) in lists {
            for name in list.iter().flat_map(|l| &l.value) {
                let Some(slot) = self.slot_ref(name) else { continue };
                if uses.iter().any(|u| u.slot.name == slot.name) {
                    continue; // the option's own list wins over the menu's
                }
                uses.push(SlotUse { slot, required });
            }
        }
        let taken: Vec<&str> = uses.iter().map(|u| u.slot.name.as_str()).collect();
        for p in o.phrases.iter().flat_map(|p| &p.value) {
            self.check_phrase_references(p, &o.intent.value, &taken);
        }
        if let Some(text) = &o.read_back {
            self.check_references(text, true);
        }
        if uses.is_empty() {
            for (key, given) in
                [("confirm", o.confirm.as_ref().map(|c| &c.span)), ("read_back", o.read_back.as_ref().map(|r| &r.span))]
            {
                if let Some(span) = given {
                    let help = "they read back an option's slots: add `slots = [...]` or remove it";
                    self.rep.error(span, format!("`{key}` only applies to an option with slots"), Some(help.into()));
                }
            }
        }
        OptionSlots {
            uses,
            confirm: o.confirm.as_ref().is_some_and(|c| c.value),
            read_back: o.read_back.as_ref().map(|r| r.value.clone()),
        }
    }

    fn slot_ref(&mut self, name: &At<String>) -> Option<Slot> {
        if let Some(slot) = self.slots.iter().find(|s| s.name == name.value) {
            return Some(slot.clone());
        }
        let declared = self.slot_names.iter().map(String::as_str);
        if self.slot_names.contains(&name.value) {
            return None; // declared with errors, reported there
        }
        let help = did_you_mean(&name.value, declared)
            .or_else(|| Some(format!("declare it once as `[slots.{}]` with its `values`, or a `kind`", name.value)));
        self.rep.error(&name.span, format!("unknown slot `{}`", name.value), help);
        None
    }

    /// A phrase may name the option's own slots: "a {size} latte".
    fn check_phrase_references(&mut self, phrase: &At<String>, option: &str, taken: &[&str]) {
        for (offset, name) in placeholders(&phrase.value) {
            if taken.contains(&name) {
                continue;
            }
            let span = placeholder_span(phrase, offset);
            let (message, help) = if self.slot_names.iter().any(|s| s == name) {
                (
                    format!("phrase refers to slot `{name}`, which option `{option}` does not take"),
                    Some(format!("add \"{name}\" to the option's `slots` or `optional_slots`")),
                )
            } else {
                let known = taken.iter().copied().chain(self.slot_names.iter().map(String::as_str));
                (format!("unknown slot `{{{name}}}` in a phrase"), self.reference_help(name, known))
            };
            self.rep.error(&span, message, help);
        }
    }

    /// A prompt may name any slot and `{option}`, except a menu's own
    /// prompts, which are spoken before anything was chosen.
    pub(super) fn check_references(&mut self, text: &At<String>, after_choice: bool) {
        for (offset, name) in placeholders(&text.value) {
            let known = after_choice && (name == OPTION_PLACEHOLDER || self.slot_names.iter().any(|s| s == name));
            if known {
                continue;
            }
            let span = placeholder_span(text, offset);
            if !after_choice {
                let help = "a menu's prompts are spoken before the caller chose anything; name slots in slot prompts, `say` or `read_back`";
                self.rep.error(
                    &span,
                    format!("`{{{name}}}` in a menu prompt would be spoken literally"),
                    Some(help.into()),
                );
                continue;
            }
            let known = self.slot_names.iter().map(String::as_str).chain([OPTION_PLACEHOLDER]);
            let help = self.reference_help(name, known);
            self.rep.error(&span, format!("unknown slot `{{{name}}}`: it would be spoken literally"), help);
        }
    }

    fn reference_help<'n>(&self, name: &str, known: impl Iterator<Item = &'n str> + Clone) -> Option<String> {
        did_you_mean(name, known.clone()).or_else(|| {
            let list: Vec<&str> = known.collect();
            Some(if list.is_empty() {
                format!("no slots are declared; declare `[slots.{name}]` first")
            } else {
                format!("slots here: {}", list.join(", "))
            })
        })
    }
}

/// The question asked for a slot that has no `prompt`.
fn generated_question(name: &str, kind: &SlotKind) -> String {
    let what = spoken(name);
    match kind {
        SlotKind::Choice(values) => {
            let list: Vec<(String, Option<char>)> =
                values.iter().map(|v| (v.phrases.first().cloned().unwrap_or_default(), v.dtmf)).collect();
            format!("Which {what}? {}", choices_sentence(&list, None))
        }
        SlotKind::Digits { .. } => format!("Please say or key in the {what}."),
        SlotKind::Number => format!("How many? Please say or key in the {what}."),
        SlotKind::YesNo => format!("{}? Please say yes or no, or press 1 for yes or 2 for no.", capitalised(&what)),
    }
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// What a recogniser listens for, for an option whose phrases name slots:
/// each phrase with the slots left out ("a latte"), and with every
/// combination of the named choice slots' phrases ("a large latte"), or
/// their first phrases only when the combinations are too many.
pub fn expand_phrases(phrases: &[String], uses: &[SlotUse]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |p: String| {
        let p = p.split_whitespace().collect::<Vec<_>>().join(" ");
        if !p.is_empty() && !out.contains(&p) {
            out.push(p);
        }
    };
    for phrase in phrases {
        let refs = placeholders(phrase);
        if refs.is_empty() {
            push(phrase.clone());
            continue;
        }
        push(substitute(phrase, &|_| String::new()));
        for first_only in [false, true] {
            let combos = combinations(&refs, uses, first_only);
            if combos.len() <= MAX_EXPANSIONS {
                for combo in combos {
                    push(substitute(phrase, &|name| {
                        combo.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).unwrap_or_default()
                    }));
                }
                break;
            }
        }
    }
    out
}

/// Every assignment of phrases to the choice slots a phrase names.
fn combinations<'p>(refs: &[(usize, &'p str)], uses: &[SlotUse], first_only: bool) -> Vec<Vec<(&'p str, String)>> {
    let mut combos: Vec<Vec<(&str, String)>> = vec![Vec::new()];
    for (_, name) in refs {
        let Some(SlotKind::Choice(values)) = uses.iter().find(|u| u.slot.name == *name).map(|u| &u.slot.kind) else {
            continue; // digits and numbers cannot be listed
        };
        let phrases: Vec<&String> = if first_only {
            values.iter().filter_map(|v| v.phrases.first()).collect()
        } else {
            values.iter().flat_map(|v| &v.phrases).collect()
        };
        combos = combos
            .iter()
            .flat_map(|c| phrases.iter().map(move |p| [c.clone(), vec![(*name, p.to_string())]].concat()))
            .collect();
        if combos.len() > MAX_EXPANSIONS * 64 {
            break; // far too many already; the caller falls back to first phrases
        }
    }
    combos
}

/// `text` with each `{name}` replaced by `value(name)`.
pub fn substitute(text: &str, value: &dyn Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    for (offset, name) in placeholders(text) {
        out.push_str(&text[rest..offset]);
        out.push_str(&value(name));
        rest = offset + name.len() + 2;
    }
    out.push_str(&text[rest..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size() -> SlotUse {
        let value = |v: &str, phrases: &[&str]| SlotChoice {
            value: v.into(),
            phrases: phrases.iter().map(|p| p.to_string()).collect(),
            dtmf: None,
        };
        let kind = SlotKind::Choice(vec![value("small", &["small", "twelve ounce"]), value("large", &["large"])]);
        SlotUse { slot: Slot { name: "size".into(), kind, prompt: Prompt::default() }, required: true }
    }

    #[test]
    fn placeholders_are_named_braces() {
        assert_eq!(placeholders("a {size} {drink}, {} {bad name}"), [(2, "size"), (9, "drink")]);
        assert_eq!(substitute("What {size} {option}?", &|n| n.to_uppercase()), "What SIZE OPTION?");
    }

    #[test]
    fn phrases_with_slots_expand_to_every_value() {
        let phrases = vec!["a {size} latte".to_string(), "latte".to_string()];
        assert_eq!(
            expand_phrases(&phrases, &[size()]),
            ["a latte", "a small latte", "a twelve ounce latte", "a large latte", "latte"]
        );
    }
}
