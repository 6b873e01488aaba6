//! The words the call machine composes itself: keys-only menus for callers
//! whose speech cannot be recognised, read-backs, confirmation questions.
use crate::asr::GrammarChoice;
use crate::dialplan::{Action, Collect, Dialplan, GlobalIntent, Menu, Messages, Prompt, SlotChoice};

/// Fills the first `{}` of a message; a message without a placeholder gets
/// the value appended, so an admin's edit can never swallow it.
pub fn fill(template: &str, value: &str) -> String {
    if template.contains("{}") {
        template.replacen("{}", value, 1)
    } else {
        format!("{} {}", template.trim_end(), value)
    }
}

/// Intent names as a caller hears them (`main_menu` -> "main menu").
pub fn spoken_name(intent: &str) -> String {
    intent.replace(['_', '-'], " ")
}

/// Digits read back one by one: "4512" -> "4 5 1 2".
pub fn spaced_digits(digits: &str) -> String {
    let mut s = String::with_capacity(digits.len() * 2);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push(c);
    }
    s
}

/// Added to yes/no questions when only keys work.
pub const YES_NO_KEYS: &str = "Press 1 for yes or 2 for no.";

/// A menu as keys only: "For billing, press 1. For agent, press 0."
/// `None` when nothing in the menu can be reached by a key.
pub fn keys_only_menu(menu: &Menu, globals: &[GlobalIntent]) -> Option<Prompt> {
    let options = menu.options.iter().map(|o| (spoken_name(&o.intent), o.dtmf));
    keys_only(options, if menu.globals { globals } else { &[] })
}

/// A choice step as keys only: "For internet, press 1. For TV, press 2."
/// `None` when none of its values has a key.
pub fn keys_only_choices(collect: &Collect, globals: &[GlobalIntent]) -> Option<Prompt> {
    keys_only(collect.choices.iter().map(|c| (spoken_value(c), c.dtmf)), globals)
}

/// "For NAME, press KEY." for every entry with a key, then the globals';
/// `None` when no entry has a key.
fn keys_only(entries: impl Iterator<Item = (String, Option<char>)>, globals: &[GlobalIntent]) -> Option<Prompt> {
    let sentence = |(name, key): (String, Option<char>)| key.map(|k| format!("For {name}, press {}.", key_name(k)));
    let mut parts: Vec<String> = entries.filter_map(sentence).collect();
    if parts.is_empty() {
        return None;
    }
    parts.extend(globals.iter().map(|g| (spoken_name(&g.intent), g.dtmf)).filter_map(sentence));
    Some(Prompt { text: parts.join(" "), wav: None })
}

/// A choice as the caller hears it: its first phrase ("TV").
fn spoken_value(choice: &SlotChoice) -> String {
    choice.phrases.first().cloned().unwrap_or_else(|| spoken_name(&choice.value))
}

fn key_name(k: char) -> String {
    match k {
        '*' => "star".into(),
        '#' => "pound".into(),
        other => other.to_string(),
    }
}

pub fn confirm_intent_prompt(messages: &Messages, intent: &str, keys_only: bool) -> Prompt {
    with_key_hint(fill(&messages.confirm_intent, &spoken_name(intent)), keys_only)
}

/// The read-back of a collect step's answer, with `messages.confirm_digits`:
/// digits one by one, a choice by its first phrase.
pub fn read_back_prompt(messages: &Messages, collect: &Collect, value: &str, keys_only: bool) -> Prompt {
    let heard = match collect.choices.iter().find(|c| c.value == value) {
        Some(choice) => spoken_value(choice),
        None => spaced_digits(value),
    };
    with_key_hint(fill(&messages.confirm_digits, &heard), keys_only)
}

fn with_key_hint(text: String, keys_only: bool) -> Prompt {
    let text = if keys_only { format!("{text} {YES_NO_KEYS}") } else { text };
    Prompt { text, wav: None }
}

pub fn text_prompt(text: &str) -> Prompt {
    Prompt { text: text.to_string(), wav: None }
}

/// Every prompt a call of `plan` can play whose words are known before the
/// call: menus with their retries, `collect` and `say` steps, the keys-only
/// menus, and the machine's own fixed messages. (Read-backs and "did you
/// mean" questions depend on what the caller said.) The server renders
/// them when the dialplan goes into service, so no caller waits for them.
pub fn static_prompts(plan: &Dialplan) -> Vec<Prompt> {
    let m = &plan.messages;
    let mut out: Vec<Prompt> =
        [&m.transferring, &m.transfer_failed, &m.goodbye, &m.dtmf_only].map(|t| text_prompt(t)).into();
    for menu in plan.menus.values() {
        out.extend([&menu.prompt, &menu.no_input_prompt, &menu.no_match_prompt].map(Prompt::clone));
        out.extend(keys_only_menu(menu, &plan.globals));
        let mut actions: Vec<&Action> = menu.options.iter().map(|o| &o.action).chain([&menu.escalation]).collect();
        while let Some(action) = actions.pop() {
            match action {
                Action::Say { message, .. } => out.push(message.clone()),
                Action::Collect(c) => {
                    out.push(c.prompt.clone());
                    out.extend(keys_only_choices(c, if menu.globals { &plan.globals } else { &[] }));
                    actions.push(&c.then);
                }
                Action::Goto(_) | Action::Transfer(_) => {}
            }
        }
    }
    let mut unique: Vec<Prompt> = Vec::with_capacity(out.len());
    for p in out {
        if !unique.contains(&p) && (p.wav.is_some() || !p.text.trim().is_empty()) {
            unique.push(p);
        }
    }
    unique
}

/// The grammar of a yes/no question.
pub fn yes_no_choices(language: crate::asr::Language) -> Vec<GrammarChoice> {
    let choice =
        |label: &str, phrases: &[&str]| GrammarChoice::new(label, phrases.iter().map(|p| p.to_string()).collect());
    if language.code() == "zh" {
        return vec![
            choice("yes", &["是", "是的", "对", "对的", "没错"]),
            choice("no", &["不", "不是", "不对", "不要"]),
        ];
    }
    vec![
        choice("yes", &["yes", "yeah", "yep", "correct", "that's right"]),
        choice("no", &["no", "nope", "wrong", "that's wrong"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_back_and_placeholders() {
        assert_eq!(spaced_digits("4512"), "4 5 1 2");
        assert_eq!(fill("I heard {}. Is that right?", "4 5 1 2"), "I heard 4 5 1 2. Is that right?");
        assert_eq!(fill("Did you mean", "billing"), "Did you mean billing");
        assert_eq!(spoken_name("main_menu"), "main menu");
    }
}
