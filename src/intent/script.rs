//! Scripts written without spaces between words (Chinese, Japanese kana).
//!
//! The matcher, the number reader and the phrase finder all work on words.
//! In Mandarin there are none to split on: "我想查一下账单" is one run of
//! characters. Each such character is taken as a word of its own, so that
//! a phrase ("账单") is found inside a sentence as a run of characters, and
//! a slip costs one character, as a slip of one word does in English. Text
//! in spaced scripts is split on whitespace, and at a hyphen inside a word.

/// A character of a script that puts no spaces between words: CJK
/// ideographs (Han) and Japanese kana.
pub fn is_unspaced(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF     // hiragana, katakana
        | 0x3400..=0x4DBF   // CJK extension A
        | 0x4E00..=0x9FFF   // CJK unified ideographs
        | 0xF900..=0xFAFF   // CJK compatibility ideographs
        | 0x20000..=0x2FA1F // CJK extensions B and later
    ) || c == '〇'
}

/// Whether `text` holds any character of an unspaced script.
pub fn has_unspaced(text: &str) -> bool {
    text.chars().any(is_unspaced)
}

/// The words of `text`: whitespace-separated words, with every unspaced
/// character a word of its own and the parts of a hyphenated word apart.
/// Punctuation stays attached to the word before it ("单。"), or to the
/// first word when it leads.
pub fn units(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        let mut start = 0;
        // Whether the current unit already holds a letter or digit.
        let mut has_content = false;
        for (i, c) in word.char_indices() {
            let starts_new = if is_unspaced(c) {
                has_content
            } else if c.is_alphanumeric() {
                has_content && word[start..i].chars().rev().find(|c| c.is_alphanumeric()).is_some_and(is_unspaced)
            } else {
                false
            };
            if starts_new {
                out.push(&word[start..i]);
                start = i;
            }
            if c.is_alphanumeric() || is_unspaced(c) {
                has_content = true;
            }
        }
        out.push(&word[start..]);
    }
    out.into_iter().flat_map(hyphen_parts).collect()
}

/// The parts of a hyphenated word, each a unit with its hyphen kept at its
/// end ("medium-", "moa"), so that [`join_units`] writes the word back
/// whole. Whisper writes a word it mishears as such a run ("a medium-moa"
/// for "a medium mocha", "ice-wat-ace" for "iced lattes"): as parts, a
/// phrase can be put in place of some of them.
fn hyphen_parts(unit: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = unit.char_indices().collect();
    let mut parts = Vec::new();
    let mut start = 0;
    for w in chars.windows(3) {
        let [(_, before), (i, '-'), (_, after)] = w else { continue };
        if before.is_alphanumeric() && after.is_alphanumeric() {
            parts.push(&unit[start..i + 1]);
            start = i + 1;
        }
    }
    parts.push(&unit[start..]);
    parts
}

/// Whether `unit` is the first part of a hyphenated word (see
/// [`hyphen_parts`]): the next unit follows it without a space.
fn joins_next(unit: &str) -> bool {
    let mut rev = unit.chars().rev();
    rev.next() == Some('-') && rev.next().is_some_and(char::is_alphanumeric)
}

/// Words joined back into text: with a space between two words of spaced
/// scripts, none where either side is an unspaced character or after the
/// hyphen inside a word.
pub fn join_units<S: AsRef<str>>(units: &[S]) -> String {
    let mut out = String::new();
    let mut glued = false;
    for (i, unit) in units.iter().enumerate() {
        let unit = unit.as_ref();
        let first_unspaced = unit.chars().find(|c| c.is_alphanumeric()).is_some_and(is_unspaced);
        if i > 0 && !(glued || first_unspaced) {
            out.push(' ');
        }
        out.push_str(unit);
        glued = unit.chars().rev().find(|c| c.is_alphanumeric()).is_some_and(is_unspaced) || joins_next(unit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspaced_text_splits_into_characters_and_joins_back() {
        assert_eq!(units("我想查一下账单。"), ["我", "想", "查", "一", "下", "账", "单。"]);
        assert_eq!(units("Can I get a mocha, please?"), ["Can", "I", "get", "a", "mocha,", "please?"]);
        assert_eq!(units("我要iPhone 15"), ["我", "要", "iPhone", "15"]);
        assert_eq!(join_units(&units("我想查一下账单。")), "我想查一下账单。");
        assert_eq!(join_units(&units("a house coffee please")), "a house coffee please");
        assert_eq!(units("a medium-moa, please"), ["a", "medium-", "moa,", "please"]);
        assert_eq!(join_units(&units("Pre-large ice-wat-ace.")), "Pre-large ice-wat-ace.");
        assert_eq!(units("well - yes -no"), ["well", "-", "yes", "-no"], "only a hyphen inside a word parts it");
        assert_eq!(join_units(&units("well - yes -no")), "well - yes -no");
        assert_eq!(join_units(&["我", "要", "iPhone", "15"]), "我要iPhone 15");
        assert!(has_unspaced("账单") && !has_unspaced("billing, 4512"));
    }
}
