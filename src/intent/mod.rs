//! From recognised words to the caller's intent.
//!
//! [`IntentMatcher`] is the seam where an NLU model can replace the text
//! matcher; the call machine only sees [`MatchResult`]. [`TextMatcher`] is
//! the word-level matcher (normalisation, fuzzy and phonetic similarity,
//! numbers); [`parse_digits`] and [`parse_yes_no`] read digit strings and
//! confirmations. Text without spaces (Mandarin) is read one character per
//! word (see [`script`]).

#[cfg(test)]
mod mandarin_tests;
pub(crate) mod matcher;
#[cfg(test)]
mod matcher_tests;
pub(crate) mod normalize;
mod numbers;
mod numbers_zh;
pub(crate) mod phonetic;
#[cfg(test)]
mod recorded_tests;
pub mod script;
mod similarity;
mod yes_no;

pub use matcher::{CompiledCandidates, MatchWeights, TextMatcher};
pub use normalize::{normalize, parse_digits, parse_yes_no};

/// One thing the caller can ask for in the current menu.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub intent: String,
    pub phrases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub intent: String,
    /// In [0, 1].
    pub confidence: f32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MatchResult {
    pub best: Option<Scored>,
    pub runner_up: Option<Scored>,
}

pub trait IntentMatcher: Send + Sync {
    fn match_intent(&self, text: &str, candidates: &[Candidate]) -> MatchResult;
}

/// What an utterance chose among `candidates`: the recogniser's own choice
/// when it made one (with its confidence), else the best match of its open
/// transcript by `matcher`. Calls and `hotline transcribe --grammar` both
/// decide with this, so an admin sees what a caller would get.
pub fn understand(
    result: &crate::asr::Recognition,
    candidates: &[Candidate],
    matcher: &dyn IntentMatcher,
) -> Option<Scored> {
    if let Some(label) = result.choice.as_deref() {
        return Some(Scored { intent: label.to_string(), confidence: result.confidence });
    }
    if candidates.is_empty() {
        return None;
    }
    let best = matcher.match_intent(&result.text, candidates).best?;
    Some(Scored { confidence: best.confidence.clamp(0.0, 1.0), ..best })
}
