//! A compact Metaphone key: words that sound alike get the same key.
//!
//! Whisper's slips on short answers are mostly homophones ("four" → "for",
//! "no" → "now", "off" → "of", "write" → "right"); string distance misses
//! them, a sound key catches them. This follows Lawrence Philips' original
//! Metaphone rules, trimmed to what matters for English words in a phone
//! menu. Digits are keyed by a sound-alike spelling ("too" for 2, "won" for
//! 1) so the slips "to" → 2 and "for" → 4 meet their digit.
//!
//! Key alphabet: consonant letters, `0` for "th", `X` for "sh"/"ch", and the
//! word's first letter when it is a vowel.

/// Keys longer than this add nothing for matching menu words; the cap keeps
/// work bounded on nonsense input.
const MAX_KEY_LEN: usize = 10;

/// The phonetic key of one word (lowercase or not; apostrophes and other
/// non-letters are ignored). A word of digits is keyed digit by digit by
/// the digits' sound-alike spellings. Returns an empty key for input without letters or digits.
pub fn phonetic_key(word: &str) -> String {
    metaphone(&spelled(word))
}

/// Spoken syllables, estimated from vowel groups (a final silent "e" does
/// not count). Metaphone ignores vowels, so "main" and "menu" share the
/// key MN; a different syllable count tells them apart.
pub fn syllable_count(word: &str) -> usize {
    let letters: Vec<u8> =
        spelled(word).bytes().filter(u8::is_ascii_alphabetic).map(|b| b.to_ascii_lowercase()).collect();
    let vowel = |i: usize| matches!(letters[i], b'a' | b'e' | b'i' | b'o' | b'u') || (letters[i] == b'y' && i > 0);
    let mut count = 0;
    for i in 0..letters.len() {
        if vowel(i) && (i == 0 || !vowel(i - 1)) {
            count += 1;
        }
    }
    let n = letters.len();
    if count > 1 && n >= 2 && letters[n - 1] == b'e' && !vowel(n - 2) {
        count -= 1;
    }
    count
}

/// Digit strings as their sound-alike words, other words unchanged.
fn spelled(word: &str) -> std::borrow::Cow<'_, str> {
    if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) {
        return word.chars().filter_map(digit_word).collect::<Vec<_>>().join("").into();
    }
    word.into()
}

fn digit_word(c: char) -> Option<&'static str> {
    Some(match c {
        '0' => "zero",
        '1' => "won",
        '2' => "too",
        '3' => "three",
        '4' => "for",
        '5' => "five",
        '6' => "six",
        '7' => "seven",
        '8' => "eight",
        '9' => "nine",
        _ => return None,
    })
}

fn is_vowel(c: u8) -> bool {
    matches!(c, b'A' | b'E' | b'I' | b'O' | b'U')
}

fn is_front_vowel(c: u8) -> bool {
    matches!(c, b'E' | b'I' | b'Y')
}

fn metaphone(word: &str) -> String {
    let mut letters: Vec<u8> = word
        .chars()
        .filter(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_uppercase() as u8)
        .take(4 * MAX_KEY_LEN)
        .collect();
    // Doubled letters sound once ("billing" = "biling"), except CC ("accent").
    letters.dedup_by(|b, a| a == b && *a != b'C');
    if letters.is_empty() {
        return String::new();
    }

    // Silent or changed first letters.
    let mut start = 0;
    match (letters[0], letters.get(1).copied()) {
        (b'K', Some(b'N')) | (b'G', Some(b'N')) | (b'P', Some(b'N')) | (b'A', Some(b'E')) | (b'W', Some(b'R')) => {
            start = 1
        }
        (b'X', _) => letters[0] = b'S',
        (b'W', Some(b'H')) => {
            letters.remove(1);
        }
        _ => {}
    }

    let w = &letters;
    let at = |i: isize| -> u8 {
        if i < 0 {
            0
        } else {
            w.get(i as usize).copied().unwrap_or(0)
        }
    };
    let mut key = String::new();
    let mut i = start;
    while i < w.len() && key.len() < MAX_KEY_LEN {
        let c = w[i];
        let ii = i as isize;
        let prev = at(ii - 1);
        let next = at(ii + 1);
        let next2 = at(ii + 2);
        match c {
            b'A' | b'E' | b'I' | b'O' | b'U' => {
                if i == start {
                    key.push(c as char);
                }
            }
            b'B' => {
                // "dumb", "climb": silent B after M at the end.
                if !(prev == b'M' && i + 1 == w.len()) {
                    key.push('B');
                }
            }
            b'C' => {
                if next == b'I' && next2 == b'A' {
                    key.push('X');
                } else if next == b'H' {
                    key.push(if prev == b'S' { 'K' } else { 'X' });
                    i += 1;
                } else if is_front_vowel(next) {
                    if prev != b'S' {
                        key.push('S');
                    }
                } else {
                    key.push('K');
                }
            }
            b'D' => {
                if next == b'G' && is_front_vowel(next2) {
                    key.push('J');
                    i += 1;
                } else {
                    key.push('T');
                }
            }
            b'G' => {
                let silent_gh = next == b'H' && !(i + 2 >= w.len() || is_vowel(next2));
                let silent_gn =
                    next == b'N' && (i + 2 == w.len() || (next2 == b'E' && at(ii + 3) == b'D' && i + 4 == w.len()));
                if silent_gh || silent_gn {
                    // "eight", "night", "sign": no sound.
                } else if is_front_vowel(next) {
                    key.push('J');
                } else {
                    key.push('K');
                }
            }
            b'H' => {
                let after_modifier = matches!(prev, b'C' | b'S' | b'P' | b'T' | b'G');
                let between_vowel_and_consonant = is_vowel(prev) && !is_vowel(next);
                if !after_modifier && !between_vowel_and_consonant {
                    key.push('H');
                }
            }
            b'K' => {
                if prev != b'C' {
                    key.push('K');
                }
            }
            b'P' => {
                if next == b'H' {
                    key.push('F');
                    i += 1;
                } else {
                    key.push('P');
                }
            }
            b'Q' => key.push('K'),
            b'S' => {
                if next == b'H' {
                    key.push('X');
                    i += 1;
                } else if next == b'I' && (next2 == b'O' || next2 == b'A') {
                    key.push('X');
                } else {
                    key.push('S');
                }
            }
            b'T' => {
                if next == b'I' && (next2 == b'O' || next2 == b'A') {
                    key.push('X');
                } else if next == b'H' {
                    key.push('0');
                    i += 1;
                } else if !(next == b'C' && next2 == b'H') {
                    key.push('T');
                }
            }
            b'V' => key.push('F'),
            b'W' | b'Y' => {
                // Only a consonant before a vowel ("way", "yes"); "now", "day" end in a vowel sound.
                if is_vowel(next) {
                    key.push(c as char);
                }
            }
            b'X' => key.push_str("KS"),
            b'Z' => key.push('S'),
            other => key.push(other as char),
        }
        i += 1;
    }
    key.truncate(MAX_KEY_LEN);
    key
}

#[cfg(test)]
mod tests {
    use super::{phonetic_key, syllable_count};

    fn same(a: &str, b: &str) -> bool {
        phonetic_key(a) == phonetic_key(b)
    }

    #[test]
    fn whisper_homophone_slips_share_a_key() {
        for (said, heard) in [
            ("four", "for"),
            ("4", "for"),
            ("1", "won"),
            ("2", "to"),
            ("2", "too"),
            ("no", "now"),
            ("no", "know"),
            ("off", "of"),
            ("right", "write"),
            ("eight", "8"),
            ("night", "knight"),
            ("billing", "biling"),
            ("phone", "fone"),
            ("agent", "ajent"),
        ] {
            assert!(same(said, heard), "{said} ({}) vs {heard} ({})", phonetic_key(said), phonetic_key(heard));
        }
    }

    #[test]
    fn different_menu_words_get_different_keys() {
        let words = [
            "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "0", "1", "2", "3", "4", "5", "6",
            "7", "8", "9",
        ];
        for (i, a) in words.iter().enumerate() {
            for b in &words[i + 1..] {
                assert!(!same(a, b), "{a} and {b} both key to {}", phonetic_key(a));
            }
        }
    }

    #[test]
    fn known_keys() {
        assert_eq!(phonetic_key("billing"), "BLNK");
        assert_eq!(phonetic_key("building"), "BLTNK");
        assert_eq!(phonetic_key("thanks"), "0NKS");
        assert_eq!(phonetic_key("shop"), "XP");
        assert_eq!(phonetic_key("knight"), "NT");
        assert_eq!(phonetic_key("what's"), "WTS");
        assert_eq!(phonetic_key(""), "");
        assert_eq!(phonetic_key("!!"), "");
    }

    #[test]
    fn syllables() {
        for (word, n) in [
            ("no", 1),
            ("now", 1),
            ("write", 1),
            ("right", 1),
            ("eight", 1),
            ("three", 1),
            ("one", 1),
            ("7", 2),
            ("menu", 2),
            ("main", 1),
            ("agent", 2),
            ("opening", 3),
            ("yes", 1),
            ("", 0),
        ] {
            assert_eq!(syllable_count(word), n, "{word}");
        }
    }

    #[test]
    fn long_input_is_bounded() {
        let long = "supercalifragilistic".repeat(100);
        assert!(phonetic_key(&long).len() <= 10);
    }
}
