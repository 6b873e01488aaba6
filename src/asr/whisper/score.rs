//! Whisper as a scorer of the phrases a menu allows: every surface form of
//! every phrase is teacher-forced after the shared prompt, and an option's
//! score is the log-sum-exp of its forms.
use super::decode::Prefix;
use super::model::{log_sum_exp, AudioFeatures, WhisperModel};
use crate::asr::{AsrError, GrammarChoice};

/// Hypotheses per decoder call. The sherpa-onnx export takes a full
/// 448-position self-attention cache per row (2.75 MB for K and V each), so a
/// batch of 16 moves ~90 MB per call; this bounds memory per utterance.
pub const BATCH: usize = 16;

const NUMBER_WORDS: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

/// The ways Whisper may write `phrase`: capitalised with and without a final
/// period, lower case, and single digits both as numerals and as words.
pub fn surface_forms(phrase: &str) -> Vec<String> {
    let base: String = phrase.split_whitespace().collect::<Vec<_>>().join(" ");
    let base = base.trim_end_matches(['.', '!', '?', ',']).to_string();
    if base.is_empty() {
        return Vec::new();
    }
    let mut words = vec![base.clone()];
    let lower = base.to_lowercase();
    if let Some(d) = NUMBER_WORDS.iter().position(|w| *w == lower || (lower == "oh" && *w == "zero")) {
        words.push(d.to_string());
    } else if lower.len() == 1 && lower.chars().all(|c| c.is_ascii_digit()) {
        words.push(NUMBER_WORDS[(lower.as_bytes()[0] - b'0') as usize].to_string());
    }
    let mut forms = Vec::new();
    for w in words {
        let cap = capitalise(&w);
        for f in [format!(" {cap}."), format!(" {cap}"), format!(" {}", w.to_lowercase())] {
            if !forms.contains(&f) {
                forms.push(f);
            }
        }
    }
    forms
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// One scored option of the grammar.
#[derive(Debug, Clone)]
pub struct OptionScore {
    pub label: String,
    /// log-sum-exp over its forms of log P(form + end | audio).
    pub logprob: f32,
    /// The form that scored best (for logging).
    pub best_form: String,
}

/// Tokenised forms of a grammar, built once per grammar and reusable.
pub struct CompiledChoices {
    /// (option index, form text, tokens ending with `<|endoftext|>`).
    forms: Vec<(usize, String, Vec<u32>)>,
    labels: Vec<String>,
}

impl CompiledChoices {
    pub fn new(model: &WhisperModel, choices: &[GrammarChoice]) -> Result<Self, AsrError> {
        let mut forms = Vec::new();
        for (i, c) in choices.iter().enumerate() {
            for p in &c.phrases {
                for f in surface_forms(p) {
                    let mut t = model.tokenizer.encode(&f)?;
                    // Bound the decode length: dialplan phrases are short.
                    t.truncate(model.meta.n_text_ctx / 4);
                    t.push(model.meta.eot);
                    forms.push((i, f, t));
                }
            }
        }
        Ok(CompiledChoices { forms, labels: choices.iter().map(|c| c.label.clone()).collect() })
    }

    pub fn form_count(&self) -> usize {
        self.forms.len()
    }

    /// Scores every option; options without any form get -inf.
    pub fn score(
        &self,
        model: &WhisperModel,
        audio: &AudioFeatures,
        prefix: &Prefix,
    ) -> Result<Vec<OptionScore>, AsrError> {
        let eot = model.meta.eot;
        let mut form_scores = vec![0f32; self.forms.len()];
        // Forms of one token (just the end) need no decoder call.
        let mut pending = Vec::new();
        for (i, (_, _, toks)) in self.forms.iter().enumerate() {
            form_scores[i] = prefix.first[toks[0] as usize];
            if toks.len() > 1 {
                pending.push(i);
            }
        }
        // Similar lengths together waste less padding.
        pending.sort_by_key(|&i| self.forms[i].2.len());
        let mut tiled: Option<(usize, super::model::KvCache)> = None;
        for chunk in pending.chunks(BATCH) {
            // Input = every token but the last; position j predicts token j+1.
            let width = chunk.iter().map(|&i| self.forms[i].2.len() - 1).max().unwrap_or(1);
            let mut input = Vec::with_capacity(chunk.len() * width);
            for &i in chunk {
                let t = &self.forms[i].2;
                input.extend_from_slice(&t[..t.len() - 1]);
                input.extend(std::iter::repeat_n(eot, width - (t.len() - 1)));
            }
            if tiled.as_ref().is_none_or(|(n, _)| *n != chunk.len()) {
                tiled = Some((chunk.len(), model.select_rows(&prefix.cache, &vec![0; chunk.len()])));
            }
            let cache = &tiled.as_ref().map(|t| &t.1).ok_or_else(|| AsrError::Failed("no cache".into()))?;
            let (logits, _) = model.decode(audio, &input, cache, prefix.len)?;
            for (b, &i) in chunk.iter().enumerate() {
                let t = &self.forms[i].2;
                for j in 1..t.len() {
                    let row = logits.row(b, j - 1);
                    form_scores[i] += row[t[j] as usize] - log_sum_exp(row);
                }
            }
        }
        let mut out: Vec<OptionScore> = self
            .labels
            .iter()
            .map(|l| OptionScore { label: l.clone(), logprob: f32::NEG_INFINITY, best_form: String::new() })
            .collect();
        let mut best_form = vec![f32::NEG_INFINITY; self.labels.len()];
        for (i, (opt, text, _)) in self.forms.iter().enumerate() {
            let s = form_scores[i];
            out[*opt].logprob = log_sum_exp(&[out[*opt].logprob, s]);
            if s > best_form[*opt] {
                best_form[*opt] = s;
                out[*opt].best_form = text.trim().to_string();
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::surface_forms;

    #[test]
    fn forms_cover_case_period_and_numerals() {
        assert_eq!(surface_forms("billing"), [" Billing.", " Billing", " billing"]);
        let five = surface_forms("five");
        assert!(five.contains(&" 5.".to_string()) && five.contains(&" Five.".to_string()));
        assert!(surface_forms("3").contains(&" three".to_string()));
        assert!(surface_forms("  ").is_empty());
    }
}
