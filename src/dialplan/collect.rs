//! `collect` steps: digits, or one of a few values, gathered before an
//! option's action.
use super::model::*;
use super::raw::{At, RawCollect, RawSlotChoice};
use super::validate::*;

impl Validator<'_, '_, '_> {
    pub(super) fn collect(&mut self, c: &RawCollect) -> Option<Collect> {
        let variable = match &c.variable {
            Some(v) => {
                check_name(v, "variable name", self.rep);
                v.value.clone()
            }
            None => {
                self.rep.error(
                    &c.span,
                    "`collect` has no `variable`",
                    Some("name what is collected, e.g. `variable = \"account_number\"`".into()),
                );
                return None;
            }
        };
        let bound = |this: &mut Self, v: &Option<At<i64>>, name: &str, default: usize| match v {
            Some(At { value, span }) if !(1..=MAX_DIGITS).contains(value) => {
                this.rep.error(span, format!("`{name}` must be 1 to {MAX_DIGITS}, found {value}"), None);
                None
            }
            Some(At { value, .. }) => Some(*value as usize),
            None => Some(default),
        };
        let min_digits = bound(self, &c.min_digits, "min_digits", DEFAULT_MIN_DIGITS);
        let max_digits = bound(self, &c.max_digits, "max_digits", DEFAULT_MAX_DIGITS.max(min_digits.unwrap_or(0)));
        let (min_digits, max_digits) = (min_digits?, max_digits?);
        let choices = match &c.choices {
            Some(list) => {
                for (given, name) in [(&c.min_digits, "min_digits"), (&c.max_digits, "max_digits")] {
                    if let Some(v) = given {
                        self.rep.error(
                            &v.span,
                            format!("`{name}` does not apply to a `collect` with `choices`"),
                            Some("a step takes digits or one of its choices: remove one of them".into()),
                        );
                    }
                }
                self.slot_choices(list)
            }
            None => Vec::new(),
        };
        if choices.is_empty() && min_digits > max_digits {
            let span = c.min_digits.as_ref().map_or(c.span.clone(), |m| m.span.clone());
            self.rep.error(&span, format!("`min_digits` ({min_digits}) is above `max_digits` ({max_digits})"), None);
        }
        let prompt = match &c.prompt {
            Some(p) => self.prompt(p, "collect prompt"),
            None => {
                if let Some(reason) = self.cx.tts_unavailable {
                    self.rep.warning(
                        &c.span,
                        format!(
                            "the generated prompt of `collect` needs text-to-speech, which is unavailable ({reason})"
                        ),
                        Some("give `collect` a `prompt` with a `wav`".into()),
                    );
                }
                let what = variable.replace(['_', '-'], " ");
                let text = if choices.is_empty() {
                    format!("Please say or key in your {what}.")
                } else {
                    let list: Vec<(String, Option<char>)> =
                        choices.iter().map(|c| (c.phrases.first().cloned().unwrap_or_default(), c.dtmf)).collect();
                    format!("Which {what}? {}", choices_sentence(&list, None))
                };
                Prompt { text, wav: None }
            }
        };
        Some(Collect {
            variable,
            prompt,
            min_digits,
            max_digits,
            // A choice is read back only when the recogniser is unsure of
            // it, unless the admin asks for it always; digits always are.
            confirm: c.confirm.as_ref().map_or(choices.is_empty(), |b| b.value),
            choices,
            then: Box::new(Action::Goto(String::new())),
        })
    }

    /// The key of an option or a choice; a missing one is worth a warning,
    /// as callers who cannot speak could not choose it.
    pub(super) fn key_of(&mut self, name: &At<String>, dtmf: Option<&At<String>>, what: &str) -> Option<char> {
        if dtmf.is_none() {
            self.rep.warning(
                &name.span,
                format!(
                    "{what} `{}` has no `dtmf` key: callers who cannot speak to the bot cannot choose it",
                    name.value
                ),
                None,
            );
        }
        dtmf.and_then(|d| dtmf_key(d, self.rep))
    }

    /// The values of a choice step. Clashes between them, and with the
    /// global intents, are reported with the menu's (`check_clashes`).
    pub(super) fn slot_choices(&mut self, list: &At<Vec<RawSlotChoice>>) -> Vec<SlotChoice> {
        if list.value.is_empty() {
            let help = "add one `[...collect.choices.NAME]` table per value, with its `phrases` and `dtmf`";
            self.rep.error(&list.span, "`choices` is empty", Some(help.into()));
        }
        let mut out = Vec::new();
        for c in &list.value {
            check_name(&c.value, "choice name", self.rep);
            let phrases = match &c.phrases {
                Some(p) => phrase_list(p, self.rep),
                // The name itself: `internet`, `cable_tv` -> "cable tv".
                None => vec![c.value.value.replace(['_', '-'], " ")],
            };
            let dtmf = self.key_of(&c.value, c.dtmf.as_ref(), "choice");
            out.push(SlotChoice { value: c.value.value.clone(), phrases, dtmf });
        }
        out
    }
}
