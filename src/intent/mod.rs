//! From recognised words to the caller's intent.
//!
//! [`IntentMatcher`] is the seam where an NLU model can replace the text
//! matcher; the call machine only sees [`MatchResult`]. [`TextMatcher`] is
//! the word-level matcher (normalisation, fuzzy and phonetic similarity,
//! numbers); [`parse_digits`] and [`parse_yes_no`] read digit strings and
//! confirmations.

pub(crate) mod matcher;
#[cfg(test)]
mod matcher_tests;
pub(crate) mod normalize;
mod numbers;
pub(crate) mod phonetic;
#[cfg(test)]
mod recorded_tests;
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
