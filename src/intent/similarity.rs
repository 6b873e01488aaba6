//! How alike two words are, in [0, 1], tuned to Whisper's slips.
//!
//! Exact words score 1. Below that, each kind of evidence has its own
//! ceiling from [`MatchWeights`](super::matcher::MatchWeights): a plural
//! ("billings"), a sound-alike ("for"/"four"), an abbreviation
//! ("tech"/"technical"), a misspelling-like slip ("building"/"billing").
//! Short words get no fuzzy credit: "go" and "no" are one letter apart and
//! mean opposite things.
use strsim::{jaro_winkler, normalized_levenshtein};

use super::matcher::MatchWeights;
use super::phonetic::{phonetic_key, syllable_count};

/// One word with what comparing it needs, computed once.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Word {
    pub text: String,
    /// Without a plural / possessive ending: "billings" → "billing".
    pub stem: String,
    pub key: String,
    pub syllables: usize,
    pub is_digit: bool,
    /// Function and framing words ("the", "my", "press", "question") count
    /// less: they say little about which option the caller wants.
    pub is_function: bool,
    /// Made of two neighbouring words read as one.
    pub is_joined: bool,
    /// For a joined word: where the second word starts in `text`.
    pub split: usize,
    pub chars: usize,
}

impl Word {
    pub fn new(text: &str) -> Word {
        Word {
            text: text.to_string(),
            stem: stem(text).to_string(),
            key: phonetic_key(text),
            syllables: syllable_count(text),
            is_digit: !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()),
            is_function: is_function_word(text),
            is_joined: false,
            split: 0,
            chars: text.chars().count(),
        }
    }

    /// Two neighbouring words read as one ("a gent" → "agent").
    pub fn joined(a: &str, b: &str) -> Word {
        let mut word = Word::new(&format!("{a}{b}"));
        word.is_function = false;
        word.is_joined = true;
        word.split = a.len();
        word
    }
}

impl Word {
    /// This word is one of the two words `joined` was made of.
    fn is_part_of(&self, joined: &Word) -> bool {
        joined.is_joined && (joined.text[..joined.split] == self.text || joined.text[joined.split..] == self.text)
    }
}

fn stem(word: &str) -> &str {
    if let Some(base) = word.strip_suffix("'s") {
        return base;
    }
    if word.len() > 3 && word.ends_with('s') && !word.ends_with("ss") {
        return &word[..word.len() - 1];
    }
    word
}

fn is_function_word(word: &str) -> bool {
    matches!(
        word,
        "a" | "an"
            | "the"
            | "to"
            | "of"
            | "for"
            | "in"
            | "at"
            | "by"
            | "with"
            | "from"
            | "and"
            | "or"
            | "my"
            | "me"
            | "i"
            | "i'm"
            | "i've"
            | "it"
            | "it's"
            | "is"
            | "am"
            | "are"
            | "be"
            | "was"
            | "this"
            | "that"
            | "your"
            | "you"
            | "our"
            | "some"
            | "any"
            | "what"
            | "what's"
            | "how"
            | "when"
            | "where"
            | "do"
            | "does"
            | "can"
            | "get"
            | "have"
            | "has"
            | "need"
            | "want"
            | "know"
            | "check"
            | "question"
            | "questions"
            | "about"
            | "regarding"
            | "calling"
            | "call"
            | "press"
            | "option"
            | "just"
            | "so"
            | "well"
            | "like"
            // Mandarin, one character each: of, (aspect), is, I, you, at,
            // have, (measure word).
            | "的"
            | "了"
            | "是"
            | "我"
            | "你"
            | "在"
            | "有"
            | "个"
    )
}

/// Similarity of an utterance word `u` and a phrase word `p`.
pub(crate) fn word_similarity(u: &Word, p: &Word, weights: &MatchWeights) -> f32 {
    if u.text == p.text {
        return 1.0;
    }
    let sound_alike = !u.key.is_empty() && u.key == p.key && u.syllables == p.syllables;
    let phonetic = if !sound_alike {
        0.0
    } else if u.key.len() >= 2 {
        weights.phonetic
    } else {
        // One-consonant keys ("T" for to/too/two/tea) are weak evidence.
        weights.phonetic_short
    };
    if u.is_digit || p.is_digit {
        // "for" may be 4, but "5" is never "6", and two words never make
        // a digit ("for a" sounds like "four" too).
        return if (u.is_digit && p.is_digit) || u.is_joined || p.is_joined { 0.0 } else { phonetic };
    }
    if u.stem == p.stem {
        return weights.plural;
    }
    if u.is_part_of(p) || p.is_part_of(u) {
        // "technical" against "technical help" read as one word says
        // nothing about "help".
        return 0.0;
    }
    let (short, long) = if u.chars <= p.chars { (u, p) } else { (p, u) };
    if short.chars < weights.min_fuzzy_chars {
        return phonetic;
    }
    let mut best = phonetic;
    // Abbreviations are single words: "technical" starts "technicalsupport"
    // but does not say "support".
    if !long.is_joined && long.text.starts_with(short.text.as_str()) {
        best = best.max(weights.prefix);
    }
    // Quick reject: "go" vs "goodbye"-sized gaps are never slips.
    if (short.chars as f32) < 0.5 * long.chars as f32 {
        return best;
    }
    let spelling = 0.5 * jaro_winkler(&u.text, &p.text) + 0.5 * normalized_levenshtein(&u.text, &p.text);
    let sound = normalized_levenshtein(&u.key, &p.key);
    let evidence = (0.6 * spelling + 0.4 * sound) as f32;
    if evidence >= weights.fuzzy_floor {
        let t = (evidence - weights.fuzzy_floor) / (1.0 - weights.fuzzy_floor);
        best = best.max(weights.fuzzy_min + t * (weights.fuzzy_max - weights.fuzzy_min));
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(u: &str, p: &str) -> f32 {
        word_similarity(&Word::new(u), &Word::new(p), &MatchWeights::default())
    }

    #[test]
    fn exact_and_plural() {
        assert_eq!(sim("billing", "billing"), 1.0);
        assert!(sim("billings", "billing") >= 0.9);
        assert!(sim("hours", "hour") >= 0.9);
    }

    #[test]
    fn slips_score_in_the_middle() {
        for (heard, said) in [
            ("building", "billing"),
            ("for", "4"),
            ("to", "2"),
            ("now", "no"),
            ("of", "off"),
            ("tech", "technical"),
            ("balanse", "balance"),
            ("opening", "openning"),
        ] {
            let s = sim(heard, said);
            assert!((0.5..0.95).contains(&s), "{heard} vs {said}: {s}");
        }
    }

    #[test]
    fn different_words_do_not_match() {
        for (a, b) in [
            ("go", "no"),
            ("on", "off"),
            ("in", "on"),
            ("yes", "this"),
            ("5", "6"),
            ("weather", "repeat"),
            ("pizza", "billing"),
            ("left", "right"),
            ("up", "stop"),
            ("go", "goodbye"),
            ("agent", "urgent"),
        ] {
            let s = sim(a, b);
            assert!(s < 0.5, "{a} vs {b}: {s}");
        }
    }
}
