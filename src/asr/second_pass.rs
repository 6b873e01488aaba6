//! A second, stronger recogniser for the answers the first one is unsure
//! of. The fast model answers most utterances on its own; when it would
//! reject an answer or ask the caller to confirm it, the strong one (e.g.
//! Whisper base with seconds of context) scores the same utterance.
//!
//! Where both scored the menu's options for the utterance as a whole, their
//! scores are combined and the combination decides: two models that were
//! trained apart mishear different words, so an option both find likely is
//! surer than either model's answer alone. Otherwise (digit strings,
//! sentences) a clear answer from the strong one replaces the fast one's.
use std::sync::Arc;

use super::whisper::model::log_sum_exp;
use super::whisper::BARELY_RAISED;
use super::{AsrError, Grammar, OptionScores, Recognition, Recognizer};

pub struct SecondPass {
    fast: Arc<dyn Recognizer>,
    strong: Arc<dyn Recognizer>,
    rules: CombineRules,
}

/// When an answer is clear, and how two recognisers' scores are combined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CombineRules {
    /// Confidence below which the strong recogniser is asked, and which the
    /// combined (or the strong) answer must reach to replace the fast one's.
    pub clear: f32,
    /// A combined answer this far (nats, mean) below the free transcripts
    /// means the caller said something else (`reject_margin`).
    pub reject_margin: f32,
}

/// Each model's log-probabilities count this much in the combination. Two
/// whole log-probabilities (a product of the models) are over-confident:
/// tiny.en and base mishear many of the same clips, so their errors are not
/// independent; half of each (their mean) is under-confident and asks the
/// caller about answers both models agree on. Tried on every Speech
/// Commands and FSDD clip of the grammar bench (README, "A second pass"):
/// 0.5 gained almost nothing over the fast model alone; 1 acted on more
/// wrong answers and out-of-menu words (6 dB: 11 of 153 instead of 9);
/// 0.75 answered more at once than replacing the answer in every row.
const MODEL_WEIGHT: f32 = 0.75;

impl SecondPass {
    pub fn new(fast: Arc<dyn Recognizer>, strong: Arc<dyn Recognizer>, rules: CombineRules) -> Self {
        SecondPass { fast, strong, rules }
    }
}

fn is_clear(r: &Recognition, rules: &CombineRules) -> bool {
    r.choice.is_some() && r.confidence >= rules.clear
}

/// The answer of an utterance the fast recogniser was unsure of (`first`)
/// once the strong one has heard it too (`second`).
pub fn settle(first: Recognition, second: Recognition, rules: &CombineRules) -> Recognition {
    let decode_ms = first.decode_ms + second.decode_ms;
    let combined = match (&first.scores, &second.scores) {
        // Each model's silence rule stands: the pair does not answer a line
        // either of them heard no speech on.
        (Some(a), Some(b)) if !a.silent && !b.silent => combine(a, b, rules),
        _ => None,
    };
    let chosen = match combined {
        Some(Combined::Chosen { label, confidence }) if confidence >= rules.clear => {
            Recognition { choice: Some(label), confidence, ..first }
        }
        // Clear but for the noise on the line: the pair's answer is surer
        // than the fast one's, so it is the one the caller is asked about.
        Some(Combined::AskAbout { label, confidence }) => Recognition { choice: Some(label), confidence, ..first },
        // Both models heard an option, but not clearly enough together:
        // the caller is asked as the fast answer says.
        Some(Combined::Chosen { .. } | Combined::Unclear) => first,
        // Digit strings, sentences, other words, silence: an unclear second
        // answer changes nothing.
        Some(Combined::OtherWords) | None => {
            if is_clear(&second, rules) {
                second
            } else {
                first
            }
        }
    };
    Recognition { decode_ms, ..chosen }
}

/// What the combined scores say about one utterance.
#[derive(Debug, Clone, PartialEq)]
pub enum Combined {
    /// This option, with this confidence.
    Chosen { label: String, confidence: f32 },
    /// An option the pair would choose on a quiet line, which this noisy
    /// line's audio does not raise enough to act on at once: ask the caller.
    AskAbout { label: String, confidence: f32 },
    /// The audio does not raise the best option enough over a quiet line.
    Unclear,
    /// The best option is far below what both models transcribe freely:
    /// the caller said more than a phrase, or something else.
    OtherWords,
}

/// Combines two recognisers' scores of the same options (None when they
/// scored different options).
pub fn combine(a: &OptionScores, b: &OptionScores, rules: &CombineRules) -> Option<Combined> {
    let same_options =
        a.options.len() == b.options.len() && a.options.iter().zip(&b.options).all(|(x, y)| x.label == y.label);
    if !same_options || a.options.is_empty() {
        return None;
    }
    let ranks: Vec<f32> = a.options.iter().zip(&b.options).map(|(x, y)| MODEL_WEIGHT * (x.rank + y.rank)).collect();
    let (best, top) = ranks.iter().copied().enumerate().max_by(|x, y| x.1.total_cmp(&y.1))?;
    let (x, y) = (&a.options[best], &b.options[best]);
    let mean = |p: f32, q: f32| (p + q) / 2.0;
    if mean(x.logprob, y.logprob) < mean(a.open_logprob, b.open_logprob) - rules.reject_margin {
        return Some(Combined::OtherWords);
    }
    // Raised above a quiet line as much as each model asks of one answer
    // (their mean); on a noisy line, more to be acted on at once.
    let evidence = mean(x.evidence, y.evidence);
    if evidence < mean(a.quiet_floor, b.quiet_floor) {
        return Some(Combined::Unclear);
    }
    let confidence = (top - log_sum_exp(&ranks)).exp();
    let label = x.label.clone();
    if evidence < mean(a.line_floor, b.line_floor) && confidence >= rules.clear {
        return Some(Combined::AskAbout { label, confidence: confidence.min(BARELY_RAISED) });
    }
    Some(Combined::Chosen { label, confidence })
}

impl Recognizer for SecondPass {
    fn recognize(&self, samples: &[f32], grammar: &Grammar) -> Result<Recognition, AsrError> {
        let first = self.fast.recognize(samples, grammar)?;
        // Open transcription has nothing to confirm.
        if grammar.is_open() || is_clear(&first, &self.rules) {
            return Ok(first);
        }
        let second = self.strong.recognize(samples, grammar)?;
        Ok(settle(first, second, &self.rules))
    }

    fn prepare(&self, grammar: &Grammar) -> Result<(), AsrError> {
        self.fast.prepare(grammar)?;
        self.strong.prepare(grammar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::OptionScore;

    const RULES: CombineRules = CombineRules { clear: 0.85, reject_margin: 4.0 };

    /// Scores of a yes/no/agent menu: log-probabilities, evidence 5 nats.
    fn scores(logprobs: [f32; 3], open_logprob: f32) -> OptionScores {
        let options = ["yes", "no", "agent"]
            .iter()
            .zip(logprobs)
            .map(|(label, lp)| OptionScore { label: label.to_string(), logprob: lp, rank: lp, evidence: 5.0 })
            .collect();
        OptionScores { options, open_logprob, silent: false, quiet_floor: 3.0, line_floor: 3.0 }
    }

    fn confidence(s: &OptionScores) -> f32 {
        let ranks: Vec<f32> = s.options.iter().map(|o| o.rank).collect();
        let top = ranks.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        (top - log_sum_exp(&ranks)).exp()
    }

    #[test]
    fn two_models_that_lean_the_same_way_give_a_clear_answer() {
        // Each alone would ask "Did you mean yes?" (about 0.8).
        let (a, b) = (scores([-1.0, -2.5, -8.0], -1.0), scores([-0.8, -2.3, -9.0], -0.8));
        assert!(confidence(&a) < RULES.clear && confidence(&b) < RULES.clear);
        match combine(&a, &b, &RULES) {
            Some(Combined::Chosen { label, confidence }) => {
                assert_eq!(label, "yes");
                assert!(confidence >= RULES.clear, "{confidence}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn models_that_disagree_stay_unsure() {
        let (a, b) = (scores([-1.0, -2.0, -8.0], -1.0), scores([-2.0, -1.0, -9.0], -1.0));
        match combine(&a, &b, &RULES) {
            Some(Combined::Chosen { confidence, .. }) => assert!(confidence < RULES.clear, "{confidence}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn options_both_find_far_below_the_transcripts_are_other_words() {
        let (a, b) = (scores([-9.0, -12.0, -14.0], -2.0), scores([-8.0, -12.0, -14.0], -1.5));
        assert_eq!(combine(&a, &b, &RULES), Some(Combined::OtherWords));
    }

    #[test]
    fn an_option_the_audio_barely_raises_is_unclear() {
        let (mut a, mut b) = (scores([-1.0, -4.0, -8.0], -1.0), scores([-1.0, -4.0, -9.0], -1.0));
        a.options[0].evidence = 1.0;
        b.options[0].evidence = 4.0;
        assert_eq!(combine(&a, &b, &RULES), Some(Combined::Unclear));
    }

    #[test]
    fn a_noisy_line_asks_more_evidence_of_the_pair() {
        // Both models raise "yes" 5 nats: enough on a quiet line, not where
        // the line's noise raised each model's floor to 6.
        let (mut a, mut b) = (scores([-0.5, -4.0, -8.0], -0.5), scores([-0.5, -4.0, -9.0], -0.5));
        assert!(matches!(combine(&a, &b, &RULES), Some(Combined::Chosen { .. })));
        (a.line_floor, b.line_floor) = (6.0, 6.0);
        let asked = Some(Combined::AskAbout { label: "yes".into(), confidence: BARELY_RAISED });
        assert_eq!(combine(&a, &b, &RULES), asked);
        // Settled, the caller is asked about it even where the fast model
        // alone rejected the answer.
        let first = heard(None, 0.3, a.clone());
        let settled = settle(first, heard(None, 0.6, b.clone()), &RULES);
        assert_eq!((settled.choice.as_deref(), settled.confidence), (Some("yes"), BARELY_RAISED));
        // An answer not clear even on a quiet line is not made a question.
        for s in [&mut a, &mut b] {
            (s.options[1].logprob, s.options[1].rank) = (-0.6, -0.6);
        }
        assert!(matches!(combine(&a, &b, &RULES), Some(Combined::Chosen { confidence, .. }) if confidence < 0.85));
    }

    #[test]
    fn scores_of_different_menus_are_not_combined() {
        let a = scores([-1.0, -2.0, -8.0], -1.0);
        let mut b = a.clone();
        b.options[2].label = "billing".into();
        assert_eq!(combine(&a, &b, &RULES), None);
        b.options.pop();
        assert_eq!(combine(&a, &b, &RULES), None);
    }

    /// A recogniser's answer as `settle` receives it.
    fn heard(choice: Option<&str>, confidence: f32, scores: OptionScores) -> Recognition {
        Recognition { choice: choice.map(str::to_string), confidence, scores: Some(scores), ..Default::default() }
    }

    #[test]
    fn settle_acts_on_what_two_unsure_models_agree_on() {
        let first = heard(Some("yes"), 0.8, scores([-1.0, -2.5, -8.0], -1.0));
        let second = heard(Some("yes"), 0.8, scores([-0.8, -2.3, -9.0], -0.8));
        let settled = settle(first, second, &RULES);
        assert_eq!(settled.choice.as_deref(), Some("yes"));
        assert!(settled.confidence >= RULES.clear, "{}", settled.confidence);
    }

    #[test]
    fn a_line_either_model_heard_as_silence_is_not_answered_by_the_pair() {
        // Both lean to "yes", as above, but the fast model heard no speech.
        let mut quiet = scores([-1.0, -2.5, -8.0], -1.0);
        quiet.silent = true;
        let first = heard(None, 0.0, quiet.clone());
        let second = heard(Some("yes"), 0.8, scores([-0.8, -2.3, -9.0], -0.8));
        assert_eq!(settle(first.clone(), second, &RULES).choice, None, "the fast model's silence stands");
        // The strong model's own clear answer still counts: it is the
        // better judge of speech, and its own silence rule did not hold.
        let second = heard(Some("yes"), 0.95, scores([-0.1, -4.0, -9.0], -0.1));
        assert_eq!(settle(first, second.clone(), &RULES).choice.as_deref(), Some("yes"));
        // And a line the strong model calls silent gets no combined answer.
        let first = heard(Some("yes"), 0.8, scores([-1.0, -2.5, -8.0], -1.0));
        let second = heard(None, 0.0, OptionScores { silent: true, ..scores([-0.8, -2.3, -9.0], -0.8) });
        let settled = settle(first, second, &RULES);
        assert!(settled.confidence < RULES.clear, "asked as the fast answer says: {settled:?}");
    }
}
