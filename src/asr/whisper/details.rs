//! An option's details inside a sentence, judged by the audio.
//!
//! A sentence that names an option often names its details too ("two large
//! lattes with oat milk"), and the transcript mishears them as it mishears
//! options: "queen of close" for "queen of clubs", "free large lattes" for
//! "three". Slot values are read from the words, so a misheard detail is
//! asked for again or, when the slot is optional, lost. So each slot's
//! phrases are put in place of the span of the words they are most like, as
//! options' phrases are (see [`super::sentence`]), and Whisper scores each
//! sentence. A value goes in by the options' own rule: its sentence must
//! reach half the posterior against the slot's other phrases and the words
//! as they stand, these handicapped by the same
//! [`SentenceOptions::none_margin`].
use super::decode::{EndTokens, Prefix};
use super::model::{log_sum_exp, AudioFeatures, WhisperModel};
use super::sentence::{bare, best_of_each, best_span, score_rows, substitute, SentenceOptions};
use crate::asr::AsrError;
use crate::intent::script::{join_units, units};

/// Sentences scored for one answer's details, the words as they stand
/// included: one decoder call.
const MAX_ROWS: usize = 16;
/// Rows each slot gets before the best-aligned of all take the rest, so a
/// slot with many phrases does not crowd out the others.
const PER_SLOT_FIRST: usize = 4;

/// One slot phrase put in place of a span of the words.
#[derive(Debug, Clone, PartialEq)]
struct Candidate {
    /// Index of the slot's phrase list.
    slot: usize,
    start: usize,
    len: usize,
    phrase: Vec<String>,
    text: String,
    alignment: f64,
}

/// `text` (the words an answer's slots are read from) with each detail the
/// audio prefers put in, or None when none is. `lead` is what Whisper
/// writes before the first word (a space in English); the span `keep`
/// (first word, words: the option's own phrase) is left as it is.
#[allow(clippy::too_many_arguments)]
pub fn put_in_details(
    model: &WhisperModel,
    audio: &AudioFeatures,
    prefix: &Prefix,
    ends: &EndTokens,
    text: &str,
    lead: &str,
    keep: Option<(usize, usize)>,
    details: &[Vec<String>],
    opts: SentenceOptions,
) -> Result<Option<String>, AsrError> {
    let words = units(text);
    if words.len() < 2 {
        return Ok(None);
    }
    // The best-aligned, each slot's best few among them.
    let candidates =
        best_of_each(candidates(&words, details, keep), MAX_ROWS - 1, PER_SLOT_FIRST, |c| (c.slot, c.alignment));
    if candidates.is_empty() {
        return Ok(None);
    }
    let limit = model.meta.n_text_ctx - prefix.len - 1;
    let mut rows: Vec<Vec<u32>> = Vec::with_capacity(candidates.len() + 1);
    for t in std::iter::once(text).chain(candidates.iter().map(|c| c.text.as_str())) {
        let mut tokens = model.tokenizer.encode(&format!("{lead}{t}"))?;
        tokens.truncate(limit);
        rows.push(tokens);
    }
    let scores = score_rows(model, audio, prefix, ends, &rows)?;
    let scored: Vec<(f32, &Candidate)> = scores[1..].iter().copied().zip(&candidates).collect();
    Ok(apply(&words, chosen(&scored, scores[0] - opts.none_margin, details.len())))
}

/// For each slot whose phrases are not already in the words, each phrase
/// in place of the span outside `keep` most like it.
fn candidates(words: &[&str], details: &[Vec<String>], keep: Option<(usize, usize)>) -> Vec<Candidate> {
    let outside_keep = |start: usize, len: usize| keep.is_none_or(|(k, n)| start + len <= k || start >= k + n);
    let bare_words: Vec<String> = words.iter().map(|w| bare(w)).collect();
    // Said anywhere, the option's own phrase included ("a large latte" as
    // the option's form): the slot has its value.
    let said = |phrase: &[String]| !phrase.is_empty() && bare_words.windows(phrase.len()).any(|w| w == phrase);
    let mut out: Vec<Candidate> = Vec::new();
    for (slot, phrases) in details.iter().enumerate() {
        let phrases: Vec<Vec<String>> =
            phrases.iter().map(|p| units(p).into_iter().map(bare).filter(|w| !w.is_empty()).collect()).collect();
        if phrases.iter().any(|p| said(p)) {
            continue;
        }
        // Whisper writes a number it hears as a numeral itself: numerals
        // only tell that the number was said.
        for phrase in phrases.into_iter().filter(|p| !p.iter().all(|w| w.chars().all(|c| c.is_ascii_digit()))) {
            let Some((start, len, alignment)) = best_span(words, &phrase, outside_keep) else { continue };
            let text = substitute(words, start, len, &phrase);
            if !out.iter().any(|c| c.slot == slot && c.text == text) {
                out.push(Candidate { slot, start, len, phrase, text, alignment });
            }
        }
    }
    out
}

/// Each slot's best candidate, when its sentence has half the posterior
/// against the slot's others and the words as they stand (`as_is`, already
/// handicapped).
fn chosen<'a>(scored: &[(f32, &'a Candidate)], as_is: f32, slots: usize) -> Vec<(f32, &'a Candidate)> {
    let mut out = Vec::new();
    for slot in 0..slots {
        let mine: Vec<(f32, &Candidate)> = scored.iter().copied().filter(|(_, c)| c.slot == slot).collect();
        let Some(&(best, c)) = mine.iter().max_by(|a, b| a.0.total_cmp(&b.0)) else { continue };
        let all: Vec<f32> = mine.iter().map(|(s, _)| *s).chain([as_is]).collect();
        if best - log_sum_exp(&all) >= 0.5f32.ln() {
            out.push((best, c));
        }
    }
    out
}

/// The words with the chosen phrases put in, the best-scoring first where
/// two would take the same words; None when there is none.
fn apply(words: &[&str], mut chosen: Vec<(f32, &Candidate)>) -> Option<String> {
    chosen.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut taken: Vec<&Candidate> = Vec::new();
    for (_, c) in chosen {
        if taken.iter().all(|t| c.start + c.len <= t.start || c.start >= t.start + t.len) {
            taken.push(c);
        }
    }
    if taken.is_empty() {
        return None;
    }
    // Right to left, so the words before each span keep their places.
    taken.sort_by_key(|c| std::cmp::Reverse(c.start));
    let mut text = join_units(words);
    for c in taken {
        let now = units(&text);
        text = substitute(&now, c.start, c.len, &c.phrase);
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phrases(list: &[&str]) -> Vec<String> {
        list.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_misheard_value_is_tried_where_it_sounds_alike() {
        let words = units("4, Queen of Close.");
        let suits = phrases(&["clubs", "hearts", "spades", "diamonds"]);
        let cs = candidates(&words, &[suits], Some((1, 1)));
        let texts: Vec<&str> = cs.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["4, Queen of Clubs."]);
    }

    #[test]
    fn a_slot_already_said_and_the_options_own_words_are_left_alone() {
        let sizes = phrases(&["small", "medium", "large"]);
        let milks = phrases(&["whole milk", "oat milk"]);
        // The size is said as it is; "full milk" may be "whole milk".
        let words = units("a large latte with full milk");
        let cs = candidates(&words, &[sizes.clone(), milks], Some((2, 1)));
        assert!(cs.iter().all(|c| c.slot == 1), "{cs:?}");
        assert!(cs.iter().any(|c| c.text == "a large latte with whole milk"), "{cs:?}");
        // The option's phrase is not a place for a detail: "lodge" there
        // would be the option, not a size.
        let words = units("a lodge please");
        assert!(candidates(&words, std::slice::from_ref(&sizes), Some((1, 1))).is_empty());
        assert!(!candidates(&words, std::slice::from_ref(&sizes), None).is_empty());
        // A size inside the option's own phrase ("a large latte") is said.
        let words = units("a large latte with full milk");
        assert!(candidates(&words, &[sizes], Some((0, 3))).is_empty());
    }

    #[test]
    fn a_value_needs_half_the_posterior_against_the_words_as_they_stand() {
        let c = |slot: usize, start: usize| Candidate {
            slot,
            start,
            len: 1,
            phrase: vec!["x".into()],
            text: String::new(),
            alignment: 0.6,
        };
        let (a, b, d) = (c(0, 0), c(0, 0), c(1, 2));
        // Slot 0: two values split the audio; slot 1: clearly said.
        let scored = [(-10.0, &a), (-10.2, &b), (-9.0, &d)];
        let picked = chosen(&scored, -10.0, 2);
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].1.slot, 1);
    }

    #[test]
    fn values_go_in_right_to_left_and_never_over_each_other() {
        let words = units("free large lattes with full milk");
        let three =
            Candidate { slot: 0, start: 0, len: 1, phrase: vec!["three".into()], text: String::new(), alignment: 0.7 };
        let whole = Candidate {
            slot: 1,
            start: 4,
            len: 2,
            phrase: vec!["whole".into(), "milk".into()],
            text: String::new(),
            alignment: 0.6,
        };
        let over =
            Candidate { slot: 2, start: 5, len: 1, phrase: vec!["oat".into()], text: String::new(), alignment: 0.5 };
        let text = apply(&words, vec![(-5.0, &three), (-4.0, &whole), (-6.0, &over)]);
        assert_eq!(text.as_deref(), Some("three large lattes with whole milk"));
        assert_eq!(apply(&words, Vec::new()), None);
    }
}
