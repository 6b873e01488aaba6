//! Spoken numbers → digits, and reading a digit string out of an utterance.
//!
//! Callers read account numbers digit by digit ("four five one two", "four
//! oh one"), in pairs ("forty five twelve") or with "double"; Whisper writes
//! them as words, as numerals ("4512", "4,512", "9-9-9-9") or mixed. All of
//! these become one token per digit so the matcher and the digit collector
//! see a single form.
use super::normalize::{clean_tokens, is_filler};
use super::numbers_zh;

fn unit_value(word: &str) -> Option<u64> {
    Some(match word {
        "zero" => 0,
        "one" => 1,
        "two" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        _ => return None,
    })
}

fn teen_value(word: &str) -> Option<u64> {
    Some(match word {
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        "thirteen" => 13,
        "fourteen" => 14,
        "fifteen" => 15,
        "sixteen" => 16,
        "seventeen" => 17,
        "eighteen" => 18,
        "nineteen" => 19,
        _ => return None,
    })
}

fn tens_value(word: &str) -> Option<u64> {
    Some(match word {
        "twenty" => 20,
        "thirty" => 30,
        "forty" | "fourty" => 40,
        "fifty" => 50,
        "sixty" => 60,
        "seventy" => 70,
        "eighty" => 80,
        "ninety" => 90,
        _ => return None,
    })
}

fn is_digit_string(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit())
}

/// "oh" and "o" mean zero only next to other digits ("four oh one");
/// elsewhere they are an interjection.
fn is_oh(token: &str) -> bool {
    token == "oh" || token == "o"
}

fn starts_number(token: &str) -> bool {
    numbers_zh::starts_number(token)
        || is_digit_string(token)
        || unit_value(token).is_some()
        || teen_value(token).is_some()
        || tens_value(token).is_some()
}

/// Reads "twenty", "twenty five", "fifteen", "seven" at `tokens[i..]`:
/// (value, tokens used).
fn read_below_hundred(tokens: &[String], i: usize) -> Option<(u64, usize)> {
    let word = tokens.get(i)?.as_str();
    if let Some(tens) = tens_value(word) {
        if let Some(unit) = tokens.get(i + 1).and_then(|t| unit_value(t)).filter(|u| *u > 0) {
            return Some((tens + unit, 2));
        }
        return Some((tens, 1));
    }
    teen_value(word).or_else(|| unit_value(word)).map(|v| (v, 1))
}

/// Reads one spoken number word group at `tokens[i..]`: "seven", "forty
/// five", "one hundred and five", "two thousand twenty". Two units in a
/// row are two numbers ("one two" is 1, 2), as callers reading digits mean.
fn read_number_words(tokens: &[String], i: usize) -> Option<(u64, usize)> {
    let (mut value, mut used) = read_below_hundred(tokens, i)?;
    let word_at = |k: usize| tokens.get(k).map(String::as_str);
    if word_at(i + used) == Some("hundred") && value > 0 && value < 100 {
        value *= 100;
        used += 1;
        used += read_remainder(tokens, i + used, &mut value, 99);
    }
    if word_at(i + used) == Some("thousand") && value > 0 && value < 1000 {
        value *= 1000;
        used += 1;
        // "two thousand five hundred", "two thousand and twenty"
        let and = usize::from(word_at(i + used) == Some("and"));
        if let Some((hundreds, n)) = read_below_hundred(tokens, i + used + and) {
            if word_at(i + used + and + n) == Some("hundred") && hundreds > 0 && hundreds < 10 {
                value += hundreds * 100;
                used += and + n + 1;
            }
        }
        used += read_remainder(tokens, i + used, &mut value, 99);
    }
    Some((value, used))
}

/// After "hundred"/"thousand": an optional "and" and a number below 100.
fn read_remainder(tokens: &[String], i: usize, value: &mut u64, max: u64) -> usize {
    let and = usize::from(tokens.get(i).map(String::as_str) == Some("and"));
    match read_below_hundred(tokens, i + and) {
        Some((rest, n)) if rest > 0 && rest <= max => {
            *value += rest;
            and + n
        }
        _ => 0,
    }
}

fn push_digits(out: &mut Vec<String>, digits: &str) {
    out.extend(digits.chars().map(String::from));
}

/// Replaces number words and numerals by one token per digit: "four five
/// one two" and "4512" → `4 5 1 2`; "forty five" → `4 5`; "double five" →
/// `5 5`; "oh" between digits → `0`. Other tokens pass through.
pub(crate) fn words_to_digits(tokens: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i].as_str();
        let next = tokens.get(i + 1).map(String::as_str);
        let repeat = match token {
            "double" => 2,
            "triple" => 3,
            _ => 0,
        };
        if repeat > 0 {
            if let Some(digit) = next.and_then(single_digit) {
                for _ in 0..repeat {
                    out.push(digit.to_string());
                }
                i += 2;
                continue;
            }
        }
        if let Some(digits) = numeral(token) {
            push_digits(&mut out, digits);
            i += 1;
            continue;
        }
        if let Some((digits, used)) = numbers_zh::read(tokens, i) {
            push_digits(&mut out, &digits);
            i += used;
            continue;
        }
        if let Some((value, used)) = read_number_words(tokens, i) {
            push_digits(&mut out, &value.to_string());
            i += used;
            continue;
        }
        if is_oh(token) {
            let after_digit = out.last().is_some_and(|t| is_digit_string(t));
            let before_digit = next.is_some_and(|t| starts_number(t) || is_oh(t) || t == "double" || t == "triple");
            if after_digit || before_digit {
                out.push("0".to_string());
                i += 1;
                continue;
            }
        }
        out.push(token.to_string());
        i += 1;
    }
    out
}

/// The digits of a numeral: "4512", or an ordinal Whisper writes for a
/// number word ("6th" for "six").
fn numeral(token: &str) -> Option<&str> {
    let digits = ["st", "nd", "rd", "th"].iter().find_map(|suffix| token.strip_suffix(suffix)).unwrap_or(token);
    is_digit_string(digits).then_some(digits)
}

fn single_digit(token: &str) -> Option<char> {
    if token.len() == 1 && is_digit_string(token) {
        return token.chars().next();
    }
    if is_oh(token) {
        return Some('0');
    }
    unit_value(token).and_then(|v| char::from_digit(v as u32, 10))
}

/// Words Whisper writes for a digit the caller said on its own ("for" for
/// four). Only trusted when everything else in the utterance is digits.
fn homophone_digit(token: &str) -> Option<char> {
    Some(match token {
        "won" => '1',
        "to" | "too" => '2',
        "for" | "fore" => '4',
        "ate" => '8',
        _ => return None,
    })
}

/// Words that frame a digit string without changing it: "my number is …",
/// "press …", "extension …".
fn is_digit_carrier(token: &str) -> bool {
    matches!(
        token,
        "press"
            | "dial"
            | "enter"
            | "number"
            | "numbers"
            | "digit"
            | "digits"
            | "is"
            | "it's"
            | "its"
            | "it"
            | "that's"
            | "was"
            | "my"
            | "the"
            | "and"
            | "then"
            | "so"
            | "account"
            | "pin"
            | "code"
            | "extension"
            | "option"
            | "oh"
            | "o"
    )
}

/// The digit string a caller said, or `None` when the utterance has words
/// other than digits and their framing ("my number is", "press").
///
/// "4 5 1 2.", "four five one two", "4512", "forty five twelve", "four oh
/// one", "double five" all work; "Go forward 10 meters." is `None`.
pub fn parse_digits(text: &str) -> Option<String> {
    let tokens: Vec<String> = clean_tokens(text).into_iter().filter(|t| !is_filler(t)).collect();
    let tokens = words_to_digits(&tokens);
    let mut digits = String::new();
    let mut homophones = 0;
    for token in &tokens {
        if is_digit_string(token) {
            digits.push_str(token);
        } else if let Some(digit) = homophone_digit(token) {
            digits.push(digit);
            homophones += 1;
        } else if !is_digit_carrier(token) && !numbers_zh::is_digit_carrier(token) {
            return None;
        }
    }
    if digits.is_empty() || (homophones == tokens.len() && tokens.len() > 1) {
        // "to for" alone is more likely words than the digits 2 4.
        return None;
    }
    Some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits_of(text: &str) -> String {
        let tokens: Vec<String> = text.split_whitespace().map(String::from).collect();
        words_to_digits(&tokens).join(" ")
    }

    #[test]
    fn number_words_become_single_digits() {
        assert_eq!(digits_of("four five one two"), "4 5 1 2");
        assert_eq!(digits_of("4512"), "4 5 1 2");
        assert_eq!(digits_of("forty five twelve"), "4 5 1 2");
        assert_eq!(digits_of("twenty"), "2 0");
        assert_eq!(digits_of("one twenty"), "1 2 0");
        assert_eq!(digits_of("twenty twenty"), "2 0 2 0");
        assert_eq!(digits_of("nineteen eighty four"), "1 9 8 4");
        assert_eq!(digits_of("one hundred"), "1 0 0");
        assert_eq!(digits_of("one hundred and five"), "1 0 5");
        assert_eq!(digits_of("two thousand five hundred"), "2 5 0 0");
        assert_eq!(digits_of("two thousand and twenty"), "2 0 2 0");
        assert_eq!(digits_of("double five"), "5 5");
        assert_eq!(digits_of("triple oh seven"), "0 0 0 7");
        assert_eq!(digits_of("zero"), "0");
        assert_eq!(digits_of("6th"), "6");
        assert_eq!(digits_of("the 2nd option"), "the 2 option");
        assert_eq!(digits_of("th"), "th");
    }

    #[test]
    fn oh_is_zero_only_among_digits() {
        assert_eq!(digits_of("four oh one"), "4 0 1");
        assert_eq!(digits_of("oh four"), "0 4");
        assert_eq!(digits_of("nine oh two one oh"), "9 0 2 1 0");
        assert_eq!(digits_of("oh billing"), "oh billing");
    }

    #[test]
    fn other_words_pass_through() {
        assert_eq!(digits_of("go forward 10 meters"), "go forward 1 0 meters");
        assert_eq!(digits_of("press one for billing"), "press 1 for billing");
        assert_eq!(digits_of("someone"), "someone");
        assert_eq!(digits_of("hundred"), "hundred");
        assert_eq!(digits_of("double trouble"), "double trouble");
    }

    #[test]
    fn parse_digits_reads_whisper_and_spoken_forms() {
        for (text, want) in [
            ("4 5 1 2.", "4512"),
            ("4512", "4512"),
            ("four five one two", "4512"),
            ("Four, five, one, two.", "4512"),
            ("9 9 9 9", "9999"),
            ("9-9-9-9", "9999"),
            ("4,512", "4512"),
            ("forty five twelve", "4512"),
            ("one zero zero zero one nine oh two one oh", "1000190210"),
            ("My number is 4 5 1 2.", "4512"),
            ("Press 1.", "1"),
            ("Um, 4512.", "4512"),
            ("double five one", "551"),
            ("For.", "4"),
            ("4 for 1 2", "4412"),
            ("Zero.", "0"),
            ("(555) 123-4567", "5551234567"),
        ] {
            assert_eq!(parse_digits(text).as_deref(), Some(want), "{text:?}");
        }
    }

    #[test]
    fn parse_digits_rejects_words() {
        for text in
            ["Go forward 10 meters.", "Billing.", "", "[Music]", "Take.", "I don't know", "to for", "Oh.", "press"]
        {
            assert_eq!(parse_digits(text), None, "{text:?}");
        }
    }
}
