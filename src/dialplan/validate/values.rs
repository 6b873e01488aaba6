//! Checks of single values that every part of a dialplan shares: names,
//! extensions and contexts, DTMF keys, phrase lists.
use super::*;

/// Extensions and contexts are handed to the PBX as they are: a dialable
/// name of 1-32 characters from `0-9 A-Z a-z * # + - _ .`, no spaces.
pub(super) fn valid_dial_string(s: &str) -> bool {
    (1..=32).contains(&s.chars().count())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | '#' | '+' | '-' | '_' | '.'))
}

pub(super) fn check_extension(ext: &At<String>, what: &str, rep: &mut Reporter) -> bool {
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

pub(super) fn context(ctx: Option<&At<String>>, rep: &mut Reporter) -> Option<String> {
    let ctx = ctx?;
    check_extension(ctx, "context", rep);
    Some(ctx.value.clone())
}

/// Menu ids, intent and variable names: letters, digits, `_`, `-`.
pub(in crate::dialplan) fn check_name(name: &At<String>, what: &str, rep: &mut Reporter) {
    let ok = !name.value.is_empty()
        && name.value.len() <= 64
        && name.value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        rep.error(&name.span, format!("bad {what} `{}`: use letters, digits, `_` and `-`", name.value), None);
    }
}

pub(in crate::dialplan) fn dtmf_key(d: &At<String>, rep: &mut Reporter) -> Option<char> {
    let mut chars = d.value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => Some(c),
        _ => {
            rep.error(&d.span, format!("bad DTMF key `{}`", d.value), Some("use one of 0-9, * or #".into()));
            None
        }
    }
}

pub(in crate::dialplan) fn phrase_list(phrases: &At<Vec<At<String>>>, rep: &mut Reporter) -> Vec<String> {
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
pub(in crate::dialplan) fn normalise(phrase: &str) -> String {
    phrase.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ")
}
