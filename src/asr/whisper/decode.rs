//! Decoding on top of one encoded utterance: the shared prompt prefix, open
//! greedy decoding (for logging and the fallback text matcher) and the
//! digit-constrained beam search used by `collect` actions.
use super::model::{log_softmax_at, log_sum_exp, AudioFeatures, KvCache, WhisperModel};
use crate::asr::{AsrError, RecognitionError};

/// Digits as words, by value.
pub const NUMBER_WORDS: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

/// Mandarin digits as said on the phone, by value: 幺 for one and 两 for
/// two besides 一 and 二.
pub const MANDARIN_DIGITS: [&[&str]; 10] =
    [&["零"], &["一", "幺"], &["二", "两"], &["三"], &["四"], &["五"], &["六"], &["七"], &["八"], &["九"]];

/// The decoded prompt (`<|startoftranscript|><|notimestamps|>`, with the
/// language and task between them for a multilingual model), shared by all
/// hypotheses of one utterance.
pub struct Prefix {
    pub cache: KvCache,
    /// Log-probabilities of the first text token (after the prompt).
    pub first: Vec<f32>,
    /// Probability of `<|nospeech|>` at the start-of-transcript position.
    pub no_speech_prob: f32,
    /// Tokens the prefix occupies in the cache.
    pub len: usize,
    /// The prompt decoded: start of transcript, language, task.
    pub prompt: Vec<u32>,
}

/// Decodes `prompt` (see [`WhisperModel::prompt_for`]) over `audio`.
pub fn prefix(model: &WhisperModel, audio: &AudioFeatures, prompt: &[u32]) -> Result<Prefix, AsrError> {
    let m = &model.meta;
    if prompt.is_empty() {
        return Err(RecognitionError::EmptyPrompt.into());
    }
    let (logits, cache) = model.decode(audio, prompt, &model.empty_cache(1), 0)?;
    // Whisper reads "nobody speaks" at the start-of-transcript position.
    let sot_row = logits.row(0, 0);
    let no_speech_prob = log_softmax_at(sot_row, &[m.no_speech])[0].exp();
    let row = logits.row(0, prompt.len() - 1);
    let lse = log_sum_exp(row);
    Ok(Prefix {
        cache,
        first: row.iter().map(|x| x - lse).collect(),
        no_speech_prob,
        len: prompt.len(),
        prompt: prompt.to_vec(),
    })
}

/// What Whisper hears without a grammar.
#[derive(Debug, Clone, Default)]
pub struct OpenResult {
    pub tokens: Vec<u32>,
    /// Log-probability of each token, then of the end when it was reached.
    pub token_logprobs: Vec<f32>,
    pub text: String,
    /// Sum of token log-probabilities including `<|endoftext|>`.
    pub logprob: f32,
    pub no_speech_prob: f32,
}

/// Greedy decoding with Whisper's usual suppressions (sound tags, special
/// tokens, a blank start) and repetition guards: a phrase repeated a third
/// time ends the transcript, so "9 9 9 9 9" loops stop early, and so does
/// a sentence that (nearly) repeats an earlier one, which is left out.
/// `first_sentence` stops at the end of the first sentence or when the first
/// token comes again: in a menu only that much is compared with the grammar,
/// and each further token costs a decoder call.
pub fn open_greedy(
    model: &WhisperModel,
    audio: &AudioFeatures,
    prefix: &Prefix,
    max_tokens: usize,
    first_sentence: bool,
) -> Result<OpenResult, AsrError> {
    let sentence_end: Vec<u32> = [".", "!", "?"].iter().filter_map(|p| model.tokenizer.id_of(p.as_bytes())).collect();
    let m = &model.meta;
    let text_vocab = m.eot as usize; // ids below eot are text
    let mut suppress = vec![false; m.n_vocab];
    for &t in &m.non_speech_tokens {
        if let Some(s) = suppress.get_mut(t as usize) {
            *s = true;
        }
    }
    for s in suppress.iter_mut().skip(text_vocab + 1) {
        *s = true;
    }
    // A multilingual table has an empty token: writing it says nothing.
    for (id, s) in suppress.iter_mut().enumerate().take(text_vocab) {
        *s |= model.tokenizer.token_bytes(id as u32).is_some_and(<[u8]>::is_empty);
    }
    let blank = model.tokenizer_blank();
    let max_tokens = max_tokens.min(m.n_text_ctx - prefix.len - 1);
    let mut tokens: Vec<u32> = Vec::new();
    let mut token_logprobs = Vec::new();
    let mut logprob = 0.0f32;
    let mut cache = prefix.cache.clone();
    let mut row: Vec<f32> = prefix.first.clone();
    // The sentences finished so far, as plain words, to tell a new one
    // from a copy of an earlier one; and where the current one starts.
    let mut said: Vec<String> = Vec::new();
    let mut sentence_start = 0;
    loop {
        let pick = row
            .iter()
            .enumerate()
            .filter(|&(i, _)| !suppress[i] && !(tokens.is_empty() && (i as u32 == m.eot || Some(i as u32) == blank)))
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, &lp)| (i as u32, lp));
        let Some((tok, lp)) = pick else { break };
        logprob += lp;
        token_logprobs.push(lp);
        if tok == m.eot {
            break;
        }
        tokens.push(tok);
        let sentence_done =
            first_sentence && tokens.len() > 1 && (sentence_end.contains(&tok) || Some(&tok) == tokens.first());
        if sentence_done && Some(&tok) == tokens.first() && !sentence_end.contains(&tok) {
            // The start of a loop, not speech: its probability stays in
            // `token_logprobs` as the end of the first phrase.
            tokens.pop();
            break;
        }
        if tokens.len() >= max_tokens || repeats(&tokens) || sentence_done {
            break;
        }
        if sentence_end.contains(&tok) {
            let sentence = plain_words(model, &tokens[sentence_start..]);
            if said_before(&said, &sentence) {
                // Whisper reading the same sentence again into the silence
                // after it: the copy says nothing new, and each of its
                // tokens costs a decoder call.
                tokens.truncate(sentence_start);
                token_logprobs.truncate(sentence_start);
                logprob = token_logprobs.iter().sum();
                break;
            }
            said.push(sentence);
            sentence_start = tokens.len();
        }
        let (logits, next) = model.decode(audio, &[tok], &cache, prefix.len + tokens.len() - 1)?;
        cache = next;
        let r = logits.row(0, 0);
        let lse = log_sum_exp(r);
        row = r.iter().map(|x| x - lse).collect();
    }
    let text = model.tokenizer.decode(&tokens).trim().to_string();
    Ok(OpenResult { tokens, token_logprobs, text, logprob, no_speech_prob: prefix.no_speech_prob })
}

impl OpenResult {
    /// Log-probability of the first thing said: the tokens up to the first
    /// end of phrase (punctuation, the end, or the first token again, as in
    /// "9 9 9"), including that end. This is what a grammar phrase is
    /// compared with, since phrases are scored the same way.
    pub fn first_phrase_logprob(&self, ends: &EndTokens) -> f32 {
        let mut lp = 0.0;
        for (i, (&t, &p)) in self.tokens.iter().zip(&self.token_logprobs).enumerate() {
            lp += p;
            if i > 0 && (ends.is_end(t) || Some(&t) == self.tokens.first()) {
                return lp;
            }
        }
        // Ended by <|endoftext|> (its probability is the last entry) or cut.
        lp + self.token_logprobs.get(self.tokens.len()).copied().unwrap_or(0.0)
    }
}

/// Tokens that close a spoken phrase: the end of text and punctuation.
pub struct EndTokens {
    pub tokens: Vec<u32>,
    /// The same without the comma: the ends of a digit string, which
    /// Whisper writes as "4, 5, 1, 2." (a comma there means more digits).
    pub final_tokens: Vec<u32>,
}

impl EndTokens {
    pub fn new(model: &WhisperModel) -> Self {
        let id = |p: &str| model.tokenizer.id_of(p.as_bytes());
        let mut final_tokens = vec![model.meta.eot];
        final_tokens.extend([".", "!", "?", "...", " ..."].into_iter().filter_map(id));
        let mut tokens = final_tokens.clone();
        tokens.extend(id(","));
        EndTokens { tokens, final_tokens }
    }

    pub fn is_end(&self, t: u32) -> bool {
        self.tokens.contains(&t)
    }

    /// log P(phrase ends here) from one row of log-probabilities, where
    /// repeating the phrase's `first` token also counts as an end.
    pub fn end_logprob(&self, row: &[f32], first: u32) -> f32 {
        let mut lps: Vec<f32> = self.tokens.iter().map(|&t| row[t as usize]).collect();
        lps.push(row[first as usize]);
        log_sum_exp(&lps)
    }
}

/// Whether `sentence` is, all but a letter or two in ten, one of the
/// sentences `said` before it: "just a small espresso thanks" twice.
fn said_before(said: &[String], sentence: &str) -> bool {
    const SAME: f64 = 0.8;
    !sentence.is_empty() && said.iter().any(|earlier| strsim::normalized_levenshtein(earlier, sentence) >= SAME)
}

/// The words of `tokens` in lower case, without punctuation.
fn plain_words(model: &WhisperModel, tokens: &[u32]) -> String {
    let text = model.tokenizer.decode(tokens).to_lowercase();
    let kept: String = text.chars().filter(|c| c.is_alphanumeric() || c.is_whitespace()).collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// True when the sequence ends with the same 1–8 token phrase three times.
fn repeats(tokens: &[u32]) -> bool {
    (1..=8).any(|n| {
        tokens.len() >= 3 * n && {
            let end = tokens.len();
            let a = &tokens[end - n..];
            a == &tokens[end - 2 * n..end - n] && a == &tokens[end - 3 * n..end - 2 * n]
        }
    })
}

/// Tokens a digit string may be written with.
pub struct DigitVocab {
    /// (token, digits it adds).
    pub digits: Vec<(u32, usize)>,
    /// "," "." and their spaced forms: Whisper writes "4, 5, 1, 2."
    pub punct: Vec<u32>,
}

impl DigitVocab {
    pub fn new(model: &WhisperModel) -> Self {
        let mut digits = Vec::new();
        let mut punct = Vec::new();
        for id in 0..model.meta.eot {
            let Some(b) = model.tokenizer.token_bytes(id) else { continue };
            let body = b.strip_prefix(b" ").unwrap_or(b);
            if !body.is_empty() && body.iter().all(|c| c.is_ascii_digit()) {
                digits.push((id, body.len()));
            } else if matches!(b, b"," | b"." | b"-") {
                punct.push(id);
            }
        }
        DigitVocab { digits, punct }
    }
}

#[derive(Debug, Clone)]
pub struct DigitHypothesis {
    pub digits: String,
    pub logprob: f32,
}

#[derive(Clone)]
struct Beam {
    tokens: Vec<u32>,
    ndigits: usize,
    logprob: f32,
    last_punct: bool,
}

/// Beam search whose next tokens can only be digits, separators or the end
/// (once `min..=max` digits are written), so a loop like "nine nine nine…"
/// cannot happen and the length always fits the `collect` action.
/// Returns finished hypotheses, best first.
pub fn digits_beam(
    model: &WhisperModel,
    audio: &AudioFeatures,
    prefix: &Prefix,
    vocab: &DigitVocab,
    ends: &EndTokens,
    (min, max): (usize, usize),
    width: usize,
) -> Result<Vec<DigitHypothesis>, AsrError> {
    let mut alive = vec![Beam { tokens: Vec::new(), ndigits: 0, logprob: 0.0, last_punct: true }];
    let mut rows: Vec<Vec<f32>> = vec![prefix.first.clone()];
    let mut cache = prefix.cache.clone();
    let mut finished: Vec<(Beam, f32)> = Vec::new();
    // Separators at most once between digits: 2 * max + 1 tokens is enough.
    let max_steps = (2 * max + 1).min(model.meta.n_text_ctx - prefix.len - 1);
    for step in 0..=max_steps {
        let mut cands: Vec<(usize, u32, f32)> = Vec::new();
        for (b, beam) in alive.iter().enumerate() {
            let row = &rows[b];
            if beam.ndigits >= min {
                // A full-length string may also end in a repeat loop.
                let mut end_lps: Vec<f32> = ends.final_tokens.iter().map(|&t| row[t as usize]).collect();
                if let (Some(&f), true) = (beam.tokens.first(), beam.ndigits == max) {
                    end_lps.push(row[f as usize]);
                }
                let end = log_sum_exp(&end_lps);
                finished.push((beam.clone(), beam.logprob + end));
            }
            if step == max_steps {
                continue;
            }
            for &(t, n) in &vocab.digits {
                if beam.ndigits + n <= max {
                    cands.push((b, t, beam.logprob + row[t as usize]));
                }
            }
            if !beam.last_punct {
                for &t in &vocab.punct {
                    cands.push((b, t, beam.logprob + row[t as usize]));
                }
            }
        }
        cands.sort_by(|a, b| b.2.total_cmp(&a.2));
        cands.truncate(width);
        let best_done = finished.iter().map(|f| f.1).fold(f32::NEG_INFINITY, f32::max);
        // Scores only fall as tokens are added: stop when nothing alive can win.
        if cands.is_empty() || cands[0].2 < best_done {
            break;
        }
        let parents: Vec<usize> = cands.iter().map(|c| c.0).collect();
        let tokens: Vec<u32> = cands.iter().map(|c| c.1).collect();
        let offset = prefix.len + step;
        let reordered = model.select_rows(&cache, &parents);
        let (logits, next) = model.decode(audio, &tokens, &reordered, offset)?;
        cache = next;
        alive = cands
            .iter()
            .map(|&(p, t, lp)| {
                let parent = &alive[p];
                let n = vocab.digits.iter().find(|d| d.0 == t).map_or(0, |d| d.1);
                let mut tokens = parent.tokens.clone();
                tokens.push(t);
                Beam { tokens, ndigits: parent.ndigits + n, logprob: lp, last_punct: n == 0 }
            })
            .collect();
        rows = (0..alive.len())
            .map(|b| {
                let r = logits.row(b, 0);
                let lse = log_sum_exp(r);
                r.iter().map(|x| x - lse).collect()
            })
            .collect();
    }
    finished.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut out: Vec<DigitHypothesis> = Vec::new();
    for (beam, lp) in finished {
        let digits: String = model.tokenizer.decode(&beam.tokens).chars().filter(|c| c.is_ascii_digit()).collect();
        let digits = loop_unit(&digits, min).to_string();
        // Different spellings of the same digits are one answer.
        if let Some(h) = out.iter_mut().find(|h| h.digits == digits) {
            h.logprob = log_sum_exp(&[h.logprob, lp]);
        } else {
            out.push(DigitHypothesis { digits, logprob: lp });
        }
    }
    out.sort_by(|a, b| b.logprob.total_cmp(&a.logprob));
    Ok(out)
}

/// Whisper that has run out of audio repeats what it heard ("1, 2, 3, 4,
/// 1, 2, 3, 4"), so a string made of one part said several times is that
/// part, if it is still long enough for the `collect` action.
fn loop_unit(digits: &str, min: usize) -> &str {
    let n = digits.len();
    (min.max(1)..=n / 2)
        .filter(|&k| n.is_multiple_of(k))
        .map(|k| &digits[..k])
        .find(|unit| unit.repeat(n / unit.len()) == digits)
        .unwrap_or(digits)
}

#[cfg(test)]
mod tests {
    use super::{loop_unit, repeats};

    #[test]
    fn a_repeated_digit_string_is_read_once() {
        assert_eq!(loop_unit("12341234", 1), "1234");
        assert_eq!(loop_unit("123412341234", 4), "1234");
        assert_eq!(loop_unit("00000000", 4), "0000");
        assert_eq!(loop_unit("90909090", 4), "9090");
        // Too short for the action: kept as written.
        assert_eq!(loop_unit("4545", 3), "4545");
        assert_eq!(loop_unit("45124513", 1), "45124513");
        assert_eq!(loop_unit("", 1), "");
    }

    #[test]
    fn repetition_guard_sees_loops() {
        assert!(repeats(&[7, 7, 7]));
        assert!(repeats(&[1, 2, 3, 4, 3, 4, 3, 4]));
        assert!(!repeats(&[7, 7]));
        assert!(!repeats(&[1, 2, 3, 4, 5]));
    }
}
