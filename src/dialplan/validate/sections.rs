//! The dialplan-wide sections: `[operator]`, `[thresholds]`, `[globals]`
//! and `[messages]`, each with its defaults.
use super::values::{check_extension, context};
use super::*;

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

/// `[operator]`: where callers who ask for a person, and menus whose
/// retries run out, are transferred.
pub(super) fn operator(raw: &RawDialplan, rep: &mut Reporter) -> Transfer {
    match &raw.operator {
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
    }
}

pub(super) fn thresholds(raw: &RawDialplan, rep: &mut Reporter) -> Thresholds {
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

pub(super) fn globals(raw: &RawDialplan, rep: &mut Reporter) -> Vec<GlobalIntent> {
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

pub(super) fn messages(raw: &RawDialplan, rep: &mut Reporter) -> Messages {
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
