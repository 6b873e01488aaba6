//! Recogniser text → the plain word form the matcher compares.
//!
//! Whisper writes "I'd like to talk to an agent, please.", "Billing.",
//! `[Music]`, "4512" or "No, no."; admins write phrases like "talk to a
//! person". Both go through [`normalize`], so a phrase and what a caller
//! said meet in one form: lowercase words, no punctuation, no sound tags,
//! no fillers or politeness, one token per digit, no echoed repeats.
//! Text without spaces between words (Mandarin) is one token per character
//! (see `script`), so everything after works on it unchanged.
use super::numbers::words_to_digits;
use super::script::is_unspaced;

pub use super::numbers::parse_digits;
pub use super::yes_no::parse_yes_no;

/// Words kept from one utterance. A caller's turn is a few seconds of
/// speech; Whisper loops can produce hundreds of words, which add nothing
/// but cost.
pub const MAX_TOKENS: usize = 64;

/// Characters of input looked at; comfortably more than [`MAX_TOKENS`] words.
const MAX_CHARS: usize = 2_000;

/// A sound tag ("[BLANK_AUDIO]", "(upbeat music)") is short; a bracket not
/// closed within this many characters is treated as stray punctuation.
const MAX_TAG_CHARS: usize = 40;

/// Sounds and politeness that carry no choice. "oh" is not here: between
/// digits it means zero (see `numbers`), elsewhere [`normalize`] drops it.
const FILLER_WORDS: &[&str] = &[
    "um", "umm", "uh", "uhh", "uhm", "er", "erm", "ah", "ahh", "hmm", "hm", "mm", "mmm", "eh", "please", "pls",
    "thanks", "kindly", "嗯", "呃", "啊", "哦", "请", "吧", "呢", "吗",
];

/// Lead-ins that wrap a request ("I'd like to …", "can you …", "talk to …").
/// Longest first so "i'd like to" wins over "i'd like".
const FILLER_PHRASES: &[&[&str]] = &[
    &["i", "am", "calling", "about"],
    // Mandarin, one token per character: "我想要" (I'd like), "帮我" (help
    // me), "麻烦" (would you mind), "一下" (softens a verb: "查一下").
    &["我", "想", "要"],
    &["i", "would", "like", "to"],
    &["put", "me", "through", "to"],
    &["i'm", "calling", "about"],
    &["i'm", "calling", "for"],
    &["i'm", "calling", "to"],
    &["i", "would", "like"],
    &["i'd", "like", "to"],
    &["i'd", "love", "to"],
    &["i", "want", "to"],
    &["i", "need", "to"],
    &["connect", "me", "to"],
    &["connect", "me", "with"],
    &["transfer", "me", "to"],
    &["thank", "you"],
    &["i'd", "like"],
    &["i", "wanna"],
    &["我", "想"],
    &["我", "要"],
    &["帮", "我"],
    &["麻", "烦"],
    &["谢", "谢"],
    &["你", "好"],
    &["一", "下"],
    &["can", "i"],
    &["could", "i"],
    &["may", "i"],
    &["can", "you"],
    &["could", "you"],
    &["would", "you"],
    &["let", "me"],
    &["talk", "to"],
    &["talk", "with"],
    &["speak", "to"],
    &["speak", "with"],
];

/// Longest run (in tokens) that [`collapse_repeats`] looks for.
const MAX_REPEAT_NGRAM: usize = 4;

pub(crate) fn is_filler(token: &str) -> bool {
    FILLER_WORDS.contains(&token)
}

/// Lowercase words of `text`: punctuation becomes a space (apostrophes
/// inside words stay: "i'd", "what's"), sound tags in brackets such as
/// "[Music]" or "(laughs)" are dropped, and digits grouped with "," or "."
/// ("4,512") join. A character of a script without spaces (Chinese) is a
/// word of its own; full-width digits ("１２") are plain ones. At most
/// [`MAX_TOKENS`] words.
pub(crate) fn clean_tokens(text: &str) -> Vec<String> {
    let chars: Vec<char> = without_sound_tags(text);
    let mut cleaned = String::with_capacity(chars.len());
    for (i, &c) in chars.iter().enumerate() {
        let prev = if i > 0 { chars[i - 1] } else { ' ' };
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        if is_unspaced(c) {
            cleaned.push(' ');
            cleaned.push(c);
            cleaned.push(' ');
        } else if c.is_alphanumeric() {
            cleaned.extend(c.to_lowercase());
        } else if c == '\'' && prev.is_alphanumeric() && next.is_alphanumeric() {
            cleaned.push('\'');
        } else if (c == ',' || c == '.') && prev.is_ascii_digit() && next.is_ascii_digit() {
            // "4,512" and "10.5" are one numeral.
        } else {
            cleaned.push(' ');
        }
    }
    cleaned.split_whitespace().take(MAX_TOKENS).map(String::from).collect()
}

/// Text without bracketed sound tags ("[Music]", "(upbeat music)",
/// "[BLANK_AUDIO]"); curly apostrophes become straight ones. Brackets that
/// hold digits are kept ("(555) 123-4567" is a phone number).
fn without_sound_tags(text: &str) -> Vec<char> {
    let chars: Vec<char> = text.chars().take(MAX_CHARS).map(plain_char).collect();
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let close = match chars[i] {
            '[' => Some(']'),
            '(' => Some(')'),
            '{' => Some('}'),
            '<' => Some('>'),
            _ => None,
        };
        if let Some(close) = close {
            if let Some(len) = chars[i + 1..].iter().take(MAX_TAG_CHARS).position(|&c| c == close) {
                let inner = &chars[i + 1..i + 1 + len];
                if !inner.iter().any(|c| c.is_ascii_digit()) {
                    out.push(' ');
                    i += len + 2;
                    continue;
                }
            }
            // An unclosed bracket or a numeric group: keep the words, lose the bracket.
            out.push(' ');
            i += 1;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Curly apostrophes as straight ones, full-width digits and Chinese
/// punctuation as their plain forms ("４５１２", "，", "。").
fn plain_char(c: char) -> char {
    match c {
        '\u{2019}' | '\u{2018}' => '\'',
        '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
        '，' | '、' => ',',
        '。' => '.',
        '？' => '?',
        '！' => '!',
        _ => c,
    }
}

/// Removes lead-in phrases and filler words.
fn without_fillers(tokens: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    'scan: while i < tokens.len() {
        for phrase in FILLER_PHRASES {
            let end = i + phrase.len();
            if end <= tokens.len() && tokens[i..end].iter().zip(phrase.iter()).all(|(t, p)| t == p) {
                i = end;
                continue 'scan;
            }
        }
        if !is_filler(&tokens[i]) {
            out.push(tokens[i].clone());
        }
        i += 1;
    }
    out
}

fn is_digit_token(token: &str) -> bool {
    token.bytes().all(|b| b.is_ascii_digit())
}

/// Drops immediate repeats of a word or short phrase ("no no", "billing
/// billing billing", "thank you thank you"): Whisper echoes short answers
/// and loops on noise. Digits are never collapsed: "9 9 9 9" is four
/// nines.
pub(crate) fn collapse_repeats(tokens: &mut Vec<String>) {
    for n in 1..=MAX_REPEAT_NGRAM {
        let mut i = 0;
        while i + 2 * n <= tokens.len() {
            let (first, second) = (&tokens[i..i + n], &tokens[i + n..i + 2 * n]);
            if first == second && !first.iter().any(|t| is_digit_token(t)) {
                tokens.drain(i + n..i + 2 * n);
            } else {
                i += 1;
            }
        }
    }
}

/// The words of `text` as the matcher sees them, as a token list.
pub(crate) fn normalize_tokens(text: &str) -> Vec<String> {
    let tokens = without_fillers(&clean_tokens(text));
    let mut tokens: Vec<String> = words_to_digits(&tokens).into_iter().filter(|t| t != "oh" && t != "o").collect();
    collapse_repeats(&mut tokens);
    tokens
}

/// Normalises recogniser output or an admin's phrase: lowercase, no
/// punctuation (apostrophes inside words stay), no sound tags, fillers and
/// politeness removed, numbers as one digit per token, echoed repeats
/// collapsed; words joined by single spaces.
///
/// `"I'd like to talk to an agent, please."` → `"an agent"`,
/// `"Four five one two."` → `"4 5 1 2"`, `"[Music]"` → `""`.
pub fn normalize(text: &str) -> String {
    normalize_tokens(text).join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whisper_outputs_normalise_to_plain_words() {
        for (text, want) in [
            ("Billing.", "billing"),
            ("BILLING!", "billing"),
            ("I'd like to talk to an agent, please.", "an agent"),
            ("I would like to speak with someone.", "someone"),
            ("Um, uh, technical support?", "technical support"),
            ("Can you repeat that?", "repeat that"),
            ("What's the weather like?", "what's the weather like"),
            ("Press 1.", "press 1"),
            ("press one", "press 1"),
            ("9 9 9 9", "9 9 9 9"),
            ("4512", "4 5 1 2"),
            ("four five one two", "4 5 1 2"),
            ("Four, oh, one.", "4 0 1"),
            ("Oh, billing.", "billing"),
            ("Go forward 10 meters.", "go forward 1 0 meters"),
            ("No, no.", "no"),
            ("Billing, billing, billing.", "billing"),
            ("Thank you. Thank you.", ""),
            ("[Music]", ""),
            ("[BLANK_AUDIO]", ""),
            ("(upbeat music) Billing", "billing"),
            ("\u{266a} \u{266a}", ""),
            ("I\u{2019}m calling about my bill", "my bill"),
            ("", ""),
            ("   ", ""),
            ("Take.", "take"),
            ("double five", "5 5"),
            ("Main-menu", "main menu"),
            ("'em", "em"),
        ] {
            assert_eq!(normalize(text), want, "{text:?}");
        }
    }

    #[test]
    fn content_words_survive() {
        // "like", "help", "talk" on their own are not lead-ins.
        assert_eq!(normalize("I like it"), "i like it");
        assert_eq!(normalize("help"), "help");
        assert_eq!(normalize("talk"), "talk");
        assert_eq!(normalize("I need help"), "i need help");
        assert_eq!(normalize("opening hours"), "opening hours");
    }

    #[test]
    fn repeats_of_phrases_collapse_but_digits_do_not() {
        assert_eq!(normalize("main menu main menu"), "main menu");
        assert_eq!(normalize("yes yes yes"), "yes");
        assert_eq!(normalize("1 2 1 2"), "1 2 1 2");
        assert_eq!(normalize("five five"), "5 5");
    }

    #[test]
    fn output_is_bounded() {
        let long = "billing account ".repeat(1000);
        assert!(normalize_tokens(&long).len() <= MAX_TOKENS);
        let many = "one two three four ".repeat(1000);
        assert_eq!(normalize_tokens(&many).len(), MAX_TOKENS);
        let unclosed = "[".repeat(MAX_CHARS / 2) + "billing";
        assert_eq!(normalize(&unclosed), "billing");
    }
}
