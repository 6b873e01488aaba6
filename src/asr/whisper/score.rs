//! Whisper as a scorer of the phrases a menu allows: every surface form of
//! every phrase is teacher-forced after the shared prompt, and an option's
//! score is the log-sum-exp of its forms.
use super::decode::{EndTokens, Prefix, NUMBER_WORDS};
use super::model::{log_sum_exp, AudioFeatures, KvCache, Logits, WhisperModel};
use crate::asr::{AsrError, GrammarChoice};

/// Rows of a decoder call. With the rewritten decoder graph a row costs
/// little beyond the call itself (~0.4 ms a row, ~4 ms a call), so the most
/// plausible forms go in one call, and forms still within reach of the best
/// of them in the next ones.
pub const ROWS_PER_CALL: usize = 16;
/// Never teacher-force more forms than this for one utterance …
pub const MAX_ROWS: usize = 48;
/// … nor in more decoder calls than this.
const MAX_CALLS: usize = 4;
/// A form whose first token is this far (nats) below the best finished
/// form cannot matter: its score only falls from there.
pub const PRUNE_NATS: f32 = 4.0;

/// The ways Whisper may write `phrase`: capitalised and lower case, and
/// single digits both as numerals and as words. Final punctuation is not a
/// form of its own: it is part of how a phrase ends (see `EndTokens`).
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
    // Mandarin is written without the space an English transcript starts
    // with; both are tried, as either may open the text.
    let unspaced = crate::intent::script::has_unspaced(&base);
    let mut forms = Vec::new();
    for w in words {
        let cap = capitalise(&w);
        let bare = unspaced.then(|| w.clone());
        for f in [format!(" {cap}"), format!(" {}", w.to_lowercase())].into_iter().chain(bare) {
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
    /// (option index, form text, tokens).
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
                    if !t.is_empty() && !forms.iter().any(|(_, _, x)| *x == t) {
                        forms.push((i, f, t));
                    }
                }
            }
        }
        Ok(CompiledChoices { forms, labels: choices.iter().map(|c| c.label.clone()).collect() })
    }

    pub fn form_count(&self) -> usize {
        self.forms.len()
    }

    /// Scores every option: log P(form, then an end of phrase | audio),
    /// log-sum-exp over its forms. Forms pruned without a decoder row count
    /// with an upper bound (their first tokens' score), so confidences stay
    /// on the cautious side.
    pub fn score(
        &self,
        model: &WhisperModel,
        audio: &AudioFeatures,
        prefix: &Prefix,
        ends: &EndTokens,
    ) -> Result<Vec<OptionScore>, AsrError> {
        Ok(self.options(&self.score_forms(model, audio, prefix, ends, true)?))
    }

    /// Scores every option on audio where nobody speaks: how much Whisper
    /// expects each phrase *a priori*. Every form gets a decoder row (no
    /// pruning), since these scores are subtracted, not compared.
    pub fn score_prior(
        &self,
        model: &WhisperModel,
        audio: &AudioFeatures,
        prefix: &Prefix,
        ends: &EndTokens,
    ) -> Result<Vec<OptionScore>, AsrError> {
        Ok(self.options(&self.score_forms(model, audio, prefix, ends, false)?))
    }

    /// log P(form, then an end of phrase | audio) for every form, in order;
    /// with `prune`, hopeless forms keep an upper bound of their score.
    ///
    /// Forms are decoded best bound first. A decoded row also bounds every
    /// form that shares its first tokens: " A small latte" can score no
    /// better than " A" followed by " small", and the row for " A large
    /// latte" holds both. Slot phrases make many forms that share their
    /// opening ("a {size} latte", "a {size} mocha"); bounded by their first
    /// token alone, the forms left over when the row limit is reached would
    /// all look as likely as " A", and every option would tie.
    fn score_forms(
        &self,
        model: &WhisperModel,
        audio: &AudioFeatures,
        prefix: &Prefix,
        ends: &EndTokens,
        prune: bool,
    ) -> Result<Vec<f32>, AsrError> {
        let eot = model.meta.eot;
        // Until a form is scored: an upper bound of its score.
        let mut form_scores: Vec<f32> = self.forms.iter().map(|(_, _, t)| prefix.first[t[0] as usize]).collect();
        let mut scored = vec![false; self.forms.len()];
        // Tokens each bound accounts for: a form's first `known[i]` tokens.
        let mut known = vec![1; self.forms.len()];
        let mut best_done = f32::NEG_INFINITY;
        let mut done = 0;
        let mut calls = 0;
        let mut tiled: Option<KvCache> = None;
        let max_rows = if prune { MAX_ROWS } else { self.forms.len() };
        while done < max_rows && (!prune || calls < MAX_CALLS) {
            let mut waiting: Vec<usize> = (0..self.forms.len()).filter(|&i| !scored[i]).collect();
            waiting.sort_by(|&a, &b| form_scores[b].total_cmp(&form_scores[a]));
            let rows = ROWS_PER_CALL.min(max_rows - done);
            let mut chunk: Vec<usize> = Vec::with_capacity(rows);
            for &i in &waiting {
                if chunk.len() == rows || (prune && form_scores[i] < best_done - PRUNE_NATS) {
                    break;
                }
                // When pruning, one row per known opening: decoding it
                // bounds its siblings a token further, and the rows go to
                // other openings (" Americano", not twenty " A ..." forms).
                let opening = &self.forms[i].2[..known[i].min(self.forms[i].2.len())];
                if prune && chunk.iter().any(|&c| self.forms[c].2.starts_with(opening)) {
                    continue;
                }
                chunk.push(i);
            }
            if chunk.is_empty() {
                break;
            }
            calls += 1;
            done += chunk.len();
            // Input = the form's tokens; position j predicts token j+1, the
            // last position predicts the end of the phrase.
            let width = chunk.iter().map(|&i| self.forms[i].2.len()).max().unwrap_or(1);
            let mut input = Vec::with_capacity(chunk.len() * width);
            for &i in &chunk {
                let t = &self.forms[i].2;
                input.extend_from_slice(t);
                input.extend(std::iter::repeat_n(eot, width - t.len()));
            }
            if tiled.as_ref().is_none_or(|c| c.batch != chunk.len()) {
                tiled = Some(model.select_rows(&prefix.cache, &vec![0; chunk.len()]));
            }
            let Some(cache) = tiled.as_ref() else { break };
            let (logits, _) = model.decode(audio, &input, cache, prefix.len)?;
            for &i in &chunk {
                scored[i] = true;
            }
            for (b, &i) in chunk.iter().enumerate() {
                let row = DecodedRow::new(&logits, b, &self.forms[i].2, form_scores[i]);
                let s = row.ended_after(row.tokens.len(), ends);
                form_scores[i] = s;
                best_done = best_done.max(s);
                for (u, (_, _, other)) in self.forms.iter().enumerate() {
                    if scored[u] {
                        continue;
                    }
                    let shared = row.tokens.iter().zip(other).take_while(|(a, b)| a == b).count();
                    if shared == 0 {
                        continue;
                    }
                    if shared == other.len() {
                        // The other form is this one cut short: its score is here.
                        let s = row.ended_after(shared, ends);
                        form_scores[u] = s;
                        scored[u] = true;
                        best_done = best_done.max(s);
                    } else if shared + 1 > known[u] {
                        form_scores[u] = form_scores[u].min(row.followed_by(shared, other[shared]));
                        known[u] = shared + 1;
                    }
                }
            }
        }
        Ok(form_scores)
    }

    fn options(&self, form_scores: &[f32]) -> Vec<OptionScore> {
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
        out
    }
}

/// One teacher-forced row of a decoder call: log P of each of its
/// prefixes, and what its logits say about other continuations.
struct DecodedRow<'a> {
    logits: &'a Logits,
    b: usize,
    tokens: &'a [u32],
    /// `prefix[k]` = log P(tokens[..k + 1] | audio).
    prefix: Vec<f32>,
    /// log-sum-exp of the logits at each position.
    norm: Vec<f32>,
}

impl<'a> DecodedRow<'a> {
    fn new(logits: &'a Logits, b: usize, tokens: &'a [u32], first: f32) -> DecodedRow<'a> {
        let norm: Vec<f32> = (0..tokens.len()).map(|j| log_sum_exp(logits.row(b, j))).collect();
        let mut prefix = vec![first];
        for j in 1..tokens.len() {
            let last = prefix[j - 1];
            prefix.push(last + logits.row(b, j - 1)[tokens[j] as usize] - norm[j - 1]);
        }
        DecodedRow { logits, b, tokens, prefix, norm }
    }

    /// log P(the first `k` tokens, then an end of phrase | audio), k ≥ 1.
    /// An end is a final token, or the phrase's first token said again.
    fn ended_after(&self, k: usize, ends: &EndTokens) -> f32 {
        // The ends' log-sum-exp over raw logits, less the row's norm.
        self.prefix[k - 1] + ends.end_logprob(self.logits.row(self.b, k - 1), self.tokens[0]) - self.norm[k - 1]
    }

    /// log P(the first `k` tokens, then `next` | audio), k ≥ 1.
    fn followed_by(&self, k: usize, next: u32) -> f32 {
        self.prefix[k - 1] + self.logits.row(self.b, k - 1)[next as usize] - self.norm[k - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::surface_forms;

    #[test]
    fn forms_cover_case_period_and_numerals() {
        assert_eq!(surface_forms("billing"), [" Billing", " billing"]);
        let five = surface_forms("five");
        assert!(five.contains(&" 5".to_string()) && five.contains(&" Five".to_string()));
        assert_eq!(surface_forms("Talk to an agent."), [" Talk to an agent", " talk to an agent"]);
        assert!(surface_forms("3").contains(&" three".to_string()));
        assert!(surface_forms("  ").is_empty());
    }
}
