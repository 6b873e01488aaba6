//! Minimal digit and yes/no readers so the call machine can be built and
//! tested; the full versions (number words, "double four", fillers) live
//! with the text matcher.

/// Digits spoken or written in `text` ("four five one two", "4512",
/// "oh nine"), or `None` when anything else was said.
pub fn parse_digits(text: &str) -> Option<String> {
    let mut digits = String::new();
    for word in text.split(|c: char| c.is_whitespace() || c == ',' || c == '-' || c == '.') {
        let word = word.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
        if word.is_empty() {
            continue;
        }
        if word.chars().all(|c| c.is_ascii_digit()) {
            digits.push_str(&word);
            continue;
        }
        let d = match word.as_str() {
            "zero" | "oh" | "o" => '0',
            "one" => '1',
            "two" | "to" | "too" => '2',
            "three" => '3',
            "four" | "for" => '4',
            "five" => '5',
            "six" => '6',
            "seven" => '7',
            "eight" => '8',
            "nine" => '9',
            _ => return None,
        };
        digits.push(d);
    }
    (!digits.is_empty()).then_some(digits)
}

/// `Some(true)` for yes, `Some(false)` for no, `None` otherwise.
pub fn parse_yes_no(text: &str) -> Option<bool> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'').to_lowercase())
        .collect();
    let yes = words.iter().any(|w| matches!(w.as_str(), "yes" | "yeah" | "yep" | "correct" | "right" | "sure"));
    let no = words.iter().any(|w| matches!(w.as_str(), "no" | "nope" | "wrong" | "not"));
    match (yes, no) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_digits_and_answers() {
        assert_eq!(parse_digits("Four five, one two."), Some("4512".into()));
        assert_eq!(parse_digits("4512"), Some("4512".into()));
        assert_eq!(parse_digits("billing please"), None);
        assert_eq!(parse_yes_no("Yes."), Some(true));
        assert_eq!(parse_yes_no("No, that's wrong"), Some(false));
        assert_eq!(parse_yes_no("billing"), None);
    }
}
