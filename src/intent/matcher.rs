//! The text matcher: scores a normalised utterance against every phrase of
//! the menu's options and global intents.
//!
//! A phrase's score blends how much of the phrase was heard (phrase
//! coverage) with how much of what was heard the phrase explains
//! (utterance coverage), word by word (see `similarity`) so slips
//! still count. A phrase heard word for word inside the utterance scores
//! high however much else was said; an exact utterance scores 1.
//!
//! Calibration (held by the table tests in `matcher_tests`, and checked on
//! real Whisper output for 412 recorded command words in `recorded_tests`):
//! - the utterance is one of the phrases → ≥ 0.9;
//! - a clear slip ("building" for "billing", "a gent", "tech support") →
//!   0.5 ..< 0.9, so the call machine acts or asks "did you mean …?";
//! - words of no option ("what's the weather like", "pizza", `[Music]`) →
//!   < 0.35 for every intent.
//!
//! Dialplan thresholds around accept ≈ 0.85 and confirm ≈ 0.45 fit these:
//! a word heard only as a sound-alike ("of" for off, which real callers
//! also say for "up") then scores 0.7–0.8 and is confirmed, not acted on.
//! When the two best intents score close together, both are lowered: a
//! near tie is a reason to confirm, not to act.
use super::normalize::{clean_tokens, normalize_tokens};
use super::numbers::words_to_digits;
use super::similarity::{word_similarity, Word};
use super::{Candidate, IntentMatcher, MatchResult, Scored};

/// The knobs of [`TextMatcher`]. The defaults are calibrated as the module
/// documentation says; change them together with the table tests.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchWeights {
    /// Words whose phonetic keys (two sounds or more) and syllable counts
    /// are equal.
    pub phonetic: f32,
    /// Words whose one-sound keys are equal ("to" and 2).
    pub phonetic_short: f32,
    /// Same word but for a plural / possessive "s".
    pub plural: f32,
    /// One word starts the other ("tech" / "technical").
    pub prefix: f32,
    /// Words shorter than this get no spelling-based credit.
    pub min_fuzzy_chars: usize,
    /// Blended spelling/sound similarity below which two words are unrelated.
    pub fuzzy_floor: f32,
    /// Score at the floor and for identical spelling; in between linear.
    pub fuzzy_min: f32,
    pub fuzzy_max: f32,
    /// Factor on a match of two words read as one ("a gent" → "agent").
    pub joined: f32,
    /// Weight of function and framing words ("the", "my", "press") in coverage.
    pub function_word: f32,
    /// Score of a phrase heard word for word inside a longer utterance
    /// before utterance coverage adds to it.
    pub contained_base: f32,
    /// An utterance word matched at least this well counts as fully
    /// explained, so a slip's doubt is counted once (in phrase coverage),
    /// not twice.
    pub explained_at: f32,
    /// Exponent on utterance coverage: below 1 forgives extra words.
    pub utterance_exponent: f32,
    /// Factor when the phrase's words were heard in another order.
    pub unordered: f32,
    /// Intents closer than this are a near tie …
    pub tie_margin: f32,
    /// … and an exact tie multiplies both scores by this.
    pub tie_factor: f32,
    /// Intents scoring below this are not reported at all.
    pub min_report: f32,
}

impl Default for MatchWeights {
    fn default() -> Self {
        MatchWeights {
            phonetic: 0.8,
            phonetic_short: 0.7,
            plural: 0.95,
            prefix: 0.75,
            min_fuzzy_chars: 4,
            fuzzy_floor: 0.7,
            fuzzy_min: 0.5,
            fuzzy_max: 0.85,
            joined: 0.85,
            function_word: 0.3,
            contained_base: 0.6,
            explained_at: 0.5,
            utterance_exponent: 0.5,
            unordered: 0.9,
            tie_margin: 0.15,
            tie_factor: 0.7,
            min_report: 0.05,
        }
    }
}

/// Word-level intent matcher: phrases, fuzzy and phonetic similarity,
/// numbers. See the module documentation for its calibration.
#[derive(Debug, Clone, Default)]
pub struct TextMatcher {
    pub weights: MatchWeights,
}

/// A menu's candidates prepared once: normalised phrases, phonetic keys.
/// Build it when a menu is entered (or the dialplan is loaded) and match
/// many utterances against it with [`TextMatcher::match_compiled`].
#[derive(Debug, Clone)]
pub struct CompiledCandidates {
    intents: Vec<String>,
    /// Distinct phrase words and joined neighbour pairs; phrases refer to
    /// them by index so each is compared with an utterance word once.
    vocabulary: Vec<Word>,
    phrases: Vec<CompiledPhrase>,
}

#[derive(Debug, Clone)]
struct CompiledPhrase {
    intent: usize,
    /// Vocabulary index per word.
    words: Vec<usize>,
    /// Vocabulary index of `words[i]` + `words[i + 1]` read as one word,
    /// `None` where either is a digit.
    pairs: Vec<Option<usize>>,
}

impl CompiledCandidates {
    pub fn new(candidates: &[Candidate]) -> CompiledCandidates {
        let mut compiled = CompiledCandidates { intents: Vec::new(), vocabulary: Vec::new(), phrases: Vec::new() };
        for candidate in candidates {
            let intent = match compiled.intents.iter().position(|i| *i == candidate.intent) {
                Some(index) => index,
                None => {
                    compiled.intents.push(candidate.intent.clone());
                    compiled.intents.len() - 1
                }
            };
            for phrase in &candidate.phrases {
                let mut tokens = normalize_tokens(phrase);
                if tokens.is_empty() {
                    // A phrase made only of politeness ("thank you") is
                    // still what the admin wants matched.
                    tokens = words_to_digits(&clean_tokens(phrase));
                }
                if tokens.is_empty() {
                    continue;
                }
                let words: Vec<usize> = tokens.iter().map(|t| compiled.intern(Word::new(t))).collect();
                let pairs = tokens
                    .windows(2)
                    .map(|w| {
                        let digits = w.iter().any(|t| t.bytes().all(|b| b.is_ascii_digit()));
                        (!digits).then(|| compiled.intern(Word::joined(&w[0], &w[1])))
                    })
                    .collect();
                compiled.phrases.push(CompiledPhrase { intent, words, pairs });
            }
        }
        compiled
    }

    /// Index of `word` in the vocabulary, added if new. A joined "good bye"
    /// stays apart from a plain "goodbye": they are compared differently.
    fn intern(&mut self, word: Word) -> usize {
        if let Some(index) = self.vocabulary.iter().position(|w| *w == word) {
            return index;
        }
        self.vocabulary.push(word);
        self.vocabulary.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty()
    }
}

/// The utterance's words and neighbour pairs, with a lazily filled table of
/// similarities against the vocabulary.
struct Heard<'a> {
    words: Vec<Word>,
    /// `pairs[j]` is `words[j]` + `words[j + 1]`; `None` where a digit is involved.
    pairs: Vec<Option<Word>>,
    vocabulary: &'a [Word],
    weights: &'a MatchWeights,
    /// Row per utterance unit (words then pairs), column per vocabulary word.
    table: Vec<f32>,
}

impl<'a> Heard<'a> {
    fn new(tokens: &[String], vocabulary: &'a [Word], weights: &'a MatchWeights) -> Heard<'a> {
        let words: Vec<Word> = tokens.iter().map(|t| Word::new(t)).collect();
        let pairs: Vec<Option<Word>> = words
            .windows(2)
            .map(|w| (!w[0].is_digit && !w[1].is_digit).then(|| Word::joined(&w[0].text, &w[1].text)))
            .collect();
        let units = words.len() + pairs.len();
        Heard { words, pairs, vocabulary, weights, table: vec![f32::NAN; units * vocabulary.len()] }
    }

    fn unit(&self, unit: usize) -> Option<&Word> {
        if unit < self.words.len() {
            Some(&self.words[unit])
        } else {
            self.pairs[unit - self.words.len()].as_ref()
        }
    }

    fn similarity(&mut self, unit: usize, vocab: usize) -> f32 {
        let cell = unit * self.vocabulary.len() + vocab;
        if self.table[cell].is_nan() {
            self.table[cell] = match self.unit(unit) {
                Some(word) => word_similarity(word, &self.vocabulary[vocab], self.weights),
                None => 0.0,
            };
        }
        self.table[cell]
    }

    fn word_sim(&mut self, j: usize, vocab: usize) -> f32 {
        self.similarity(j, vocab)
    }

    fn pair_sim(&mut self, j: usize, vocab: usize) -> f32 {
        self.similarity(self.words.len() + j, vocab)
    }
}

impl TextMatcher {
    pub fn new(weights: MatchWeights) -> TextMatcher {
        TextMatcher { weights }
    }

    /// Every intent's calibrated score for `text`, best first (ties broken
    /// by candidate order); intents below `min_report` are left out.
    pub fn score_all(&self, text: &str, candidates: &CompiledCandidates) -> Vec<Scored> {
        let tokens = normalize_tokens(text);
        if tokens.is_empty() || candidates.is_empty() {
            return Vec::new();
        }
        let mut heard = Heard::new(&tokens, &candidates.vocabulary, &self.weights);
        let mut raw = vec![0.0f32; candidates.intents.len()];
        for phrase in &candidates.phrases {
            let score = self.phrase_score(&mut heard, phrase, &candidates.vocabulary);
            raw[phrase.intent] = raw[phrase.intent].max(score);
        }
        let mut order: Vec<usize> = (0..raw.len()).collect();
        order.sort_by(|&a, &b| raw[b].total_cmp(&raw[a]).then(a.cmp(&b)));

        let factor = match (order.first(), order.get(1)) {
            (Some(&best), Some(&second)) => self.tie_factor(raw[best] - raw[second]),
            _ => 1.0,
        };
        order
            .into_iter()
            .map(|i| Scored { intent: candidates.intents[i].clone(), confidence: (raw[i] * factor).clamp(0.0, 1.0) })
            .filter(|s| s.confidence >= self.weights.min_report)
            .collect()
    }

    /// Like [`IntentMatcher::match_intent`], with the candidates prepared once.
    pub fn match_compiled(&self, text: &str, candidates: &CompiledCandidates) -> MatchResult {
        let mut scored = self.score_all(text, candidates).into_iter();
        MatchResult { best: scored.next(), runner_up: scored.next() }
    }

    /// 1 for a clear winner, down to `tie_factor` for an exact tie.
    fn tie_factor(&self, gap: f32) -> f32 {
        let w = &self.weights;
        if w.tie_margin <= 0.0 || gap >= w.tie_margin {
            return 1.0;
        }
        w.tie_factor + (1.0 - w.tie_factor) * (gap.max(0.0) / w.tie_margin)
    }

    fn weight(&self, word: &Word) -> f32 {
        if word.is_function {
            self.weights.function_word
        } else {
            1.0
        }
    }

    fn phrase_score(&self, heard: &mut Heard, phrase: &CompiledPhrase, vocabulary: &[Word]) -> f32 {
        let n = heard.words.len();
        let m = phrase.words.len();
        let joined = self.weights.joined;

        // Phrase coverage, and where in the utterance each phrase word was heard.
        let mut covered = 0.0;
        let mut total = 0.0;
        let mut positions: Vec<(usize, usize)> = Vec::with_capacity(m);
        for (i, &vocab) in phrase.words.iter().enumerate() {
            let mut best = 0.0f32;
            let mut at = 0;
            for j in 0..n {
                let mut s = heard.word_sim(j, vocab);
                if j + 1 < n {
                    s = s.max(joined * heard.pair_sim(j, vocab));
                }
                // This word and a neighbour read together as one heard word.
                for pair in [i.checked_sub(1).and_then(|k| phrase.pairs[k]), phrase.pairs.get(i).copied().flatten()]
                    .into_iter()
                    .flatten()
                {
                    s = s.max(joined * heard.word_sim(j, pair));
                }
                if s > best {
                    best = s;
                    at = j;
                }
            }
            let weight = self.weight(&vocabulary[vocab]);
            covered += weight * best;
            total += weight;
            if best > 0.0 && !vocabulary[vocab].is_function {
                positions.push((i, at));
            }
        }
        if total <= 0.0 {
            return 0.0;
        }
        let phrase_coverage = covered / total;

        // Utterance coverage: how much of what was said this phrase explains.
        let mut explained = 0.0;
        let mut said = 0.0;
        for j in 0..n {
            let mut best = 0.0f32;
            for (i, &vocab) in phrase.words.iter().enumerate() {
                best = best.max(heard.word_sim(j, vocab));
                if j + 1 < n {
                    best = best.max(joined * heard.pair_sim(j, vocab));
                }
                if j > 0 {
                    best = best.max(joined * heard.pair_sim(j - 1, vocab));
                }
                if let Some(Some(pair)) = phrase.pairs.get(i) {
                    best = best.max(joined * heard.word_sim(j, *pair));
                }
            }
            let weight = self.weight(&heard.words[j]);
            explained += weight * (best / self.weights.explained_at.max(f32::EPSILON)).min(1.0);
            said += weight;
        }
        let utterance_coverage = if said > 0.0 { explained / said } else { 0.0 };
        let extra_words = utterance_coverage.powf(self.weights.utterance_exponent);

        if contains_sequence(&heard.words, &phrase.words, vocabulary) {
            let base = self.weights.contained_base;
            return base + (1.0 - base) * extra_words;
        }
        let in_order = positions.windows(2).all(|w| w[0].1 <= w[1].1);
        let order = if in_order { 1.0 } else { self.weights.unordered };
        phrase_coverage * extra_words * order
    }
}

/// The phrase's words appear word for word, in order and adjacent, in the utterance.
fn contains_sequence(heard: &[Word], phrase: &[usize], vocabulary: &[Word]) -> bool {
    let m = phrase.len();
    m > 0
        && heard.len() >= m
        && heard.windows(m).any(|window| window.iter().zip(phrase).all(|(w, &v)| w.text == vocabulary[v].text))
}

/// `best` is `None` when no intent scored at least `min_report` (nothing
/// recognisable was said); `runner_up` is the second intent, for "did you
/// mean … or …?".
impl IntentMatcher for TextMatcher {
    fn match_intent(&self, text: &str, candidates: &[Candidate]) -> MatchResult {
        self.match_compiled(text, &CompiledCandidates::new(candidates))
    }
}
