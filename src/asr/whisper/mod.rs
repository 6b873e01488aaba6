//! Grammar-constrained recognition with Whisper on ONNX Runtime.
//!
//! In every menu the dialplan knows the few things a caller may say, so
//! instead of transcribing freely and fuzzy-matching the text afterwards,
//! Whisper *scores* the allowed phrases: the encoder runs once on the
//! utterance (not on 30 s of padding), then each phrase is teacher-forced
//! through the decoder. Digit strings use a beam search that can only write
//! digits. Open decoding still runs on every utterance, for the call record
//! and as the yardstick that rejects out-of-grammar speech.
//!
//! - [`mel`]: log-mel frontend; [`tokens`]: BPE table and encoder;
//! - [`model`]: the two ONNX graphs; [`decode`]: prefix, greedy, digit beam;
//! - [`score`]: phrase scoring; [`sentence`]: a phrase inside a longer
//!   utterance, scored in place in the whole sentence; `details`: the
//!   chosen option's slot values, put back where the transcript misheard
//!   them.
pub mod decode;
mod details;
pub mod graph;
pub mod mel;
pub mod model;
mod protobuf;
pub mod score;
pub mod sentence;
pub mod tokens;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use self::decode::{DigitVocab, EndTokens, OpenResult};
use self::mel::{LogMel, FULL_FRAMES, HOP};
use self::model::{log_sum_exp, WhisperModel};
use self::score::CompiledChoices;
use super::models::ModelPaths;
use super::{AsrError, Grammar, Language, OptionScore, OptionScores, Recognition, Recognizer};
use crate::intent::script::units;

/// How much audio the encoder sees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Padding {
    /// The utterance plus this much silence (ms): cost follows the speech.
    Utterance { margin_ms: u32 },
    /// Padded to Whisper's 30 s training window (for comparison).
    FullWindow,
}

#[derive(Debug, Clone)]
pub struct GrammarOptions {
    pub padding: Padding,
    /// Reject a grammar answer whose log-probability is this far (nats)
    /// below what Whisper transcribes freely.
    pub reject_margin: f32,
    /// Whisper's silence rule: no-speech probability above this *and* the
    /// best answer below `silence_logprob` means nothing was said. (On
    /// utterance-length input the no-speech probability alone is often high
    /// for short clear words.)
    pub no_speech_threshold: f32,
    pub silence_logprob: f32,
    /// Hypotheses kept by the digit beam search.
    pub beam_width: usize,
    /// Whisper's language model prefers some words whatever the audio ("1"
    /// over "on"). Each option's prior (its score on a line where nobody
    /// speaks) measures that preference; an option less expected than the
    /// most expected one gets the difference back, up to this many nats,
    /// before options are compared. Capped because the prior of a rare or
    /// long phrase is tiny and poorly measured: uncapped, "technical
    /// support" would outrank a clearly spoken "billing". 0 = off.
    pub max_prior_correction: f32,
    /// The audio must make the chosen option at least this much (nats) more
    /// likely than a quiet line does, or the answer is rejected: noise and
    /// out-of-menu words raise no option by much.
    pub min_evidence: f32,
    /// On a noisy line an option needs this much more evidence (nats) to
    /// be acted on at once; between the two floors the caller is asked
    /// "Did you mean …?". Noise lends out-of-menu words evidence a quiet
    /// line does not. The extra rises from nothing at [`QUIET_LINE_SNR_DB`]
    /// to all of it at [`NOISY_LINE_SNR_DB`], as the utterance's own audio
    /// measures the line ([`crate::audio::line_snr_db`]).
    pub noisy_evidence: f32,
    /// When no phrase fits the utterance as a whole, look for one inside
    /// the sentence the caller said (see [`sentence`]); None = off.
    pub sentences: Option<sentence::SentenceOptions>,
}

/// A line at least this clear (estimated SNR, dB) keeps `min_evidence`.
pub const QUIET_LINE_SNR_DB: f32 = 30.0;
/// A line this noisy or worse gets all of `noisy_evidence` on top.
pub const NOISY_LINE_SNR_DB: f32 = 15.0;

impl GrammarOptions {
    /// How much the audio must raise an option above a quiet line (nats)
    /// on a line with this estimated SNR ([`crate::audio::line_snr_db`]).
    pub fn evidence_floor(&self, snr_db: f32) -> f32 {
        let noisy = ((QUIET_LINE_SNR_DB - snr_db) / (QUIET_LINE_SNR_DB - NOISY_LINE_SNR_DB)).clamp(0.0, 1.0);
        self.min_evidence + noisy * self.noisy_evidence
    }

    /// The audio beyond the utterance the encoder sees (ms); the 30 s
    /// window counts as its whole length.
    pub fn context_ms(&self) -> u32 {
        match self.padding {
            Padding::Utterance { margin_ms } => margin_ms,
            Padding::FullWindow => (FULL_FRAMES * HOP / 16) as u32,
        }
    }
}

impl Default for GrammarOptions {
    fn default() -> Self {
        GrammarOptions {
            // 2 s beyond the utterance: over the phone band tiny.en then
            // accepts 92.2 % of command words instead of 89.8 % (500 ms),
            // for about a fifth more CPU; 4 s gains half a point more for
            // 40 % more again (README, "Context around the utterance").
            padding: Padding::Utterance { margin_ms: 2000 },
            reject_margin: 4.0,
            no_speech_threshold: 0.6,
            silence_logprob: -4.5,
            beam_width: 4,
            max_prior_correction: 4.0,
            min_evidence: 3.0,
            noisy_evidence: 2.0,
            // As far below the transcript as heard as the one-word path's
            // `reject_margin`: an option there is an even bet.
            sentences: Some(sentence::SentenceOptions { none_margin: 4.0 }),
        }
    }
}

/// Audio a second-pass recogniser's encoder sees beyond the utterance by
/// default (ms): Whisper base read one-word commands best with seconds of
/// context.
pub const SECOND_PASS_CONTEXT_MS: u32 = 4000;

/// Grammars compiled to token sequences, kept for the menus in use.
const COMPILED_CACHE: usize = 64;
/// Longest transcript open decoding writes (tokens).
const MAX_OPEN_TOKENS: usize = 120;
/// A choice of the whole utterance with less posterior than the dialplans'
/// default `accept` is also looked for inside the sentence.
const UNSURE: f32 = crate::dialplan::DEFAULT_ACCEPT;

/// The most an answer the audio barely raised above a noisy line is
/// trusted: between the dialplans' default `confirm` (0.45) and `accept`
/// (0.85), so the caller is asked "Did you mean …?".
pub const BARELY_RAISED: f32 = 0.65;

/// Longest digit string a grammar may ask for.
pub const MAX_DIGITS: usize = 32;

pub struct GrammarWhisper {
    model: WhisperModel,
    opts: GrammarOptions,
    digit_vocab: DigitVocab,
    ends: EndTokens,
    /// Keyed by language too: the priors are measured after its prompt.
    compiled: Mutex<VecDeque<(CompiledKey, Arc<Compiled>)>>,
}

type CompiledKey = (Vec<super::GrammarChoice>, Language);

/// A grammar ready to score: its forms, and each option's prior.
struct Compiled {
    choices: CompiledChoices,
    /// log P(option | a line where nobody speaks), in option order
    /// (zeros when priors are off).
    priors: Vec<f32>,
}

/// Length of the quiet lines the priors are measured on.
const PRIOR_AUDIO_MS: usize = 1000;
/// Their levels: digital silence, faint hiss (about -55 dBFS) and audible
/// hiss (about -35 dBFS). One line alone gives a noisy prior for rare words;
/// the mean of the three is steadier.
const PRIOR_NOISE_AMPLITUDES: [f32; 3] = [0.0, 0.003, 0.03];

/// A phone line with nobody on it: deterministic white noise of the given
/// amplitude through the telephone band (8 kHz µ-law), padded with silence
/// as the VAD pads an utterance.
fn quiet_line(amplitude: f32) -> Vec<f32> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let n = PRIOR_AUDIO_MS * mel::SAMPLE_RATE / 1000;
    let hiss: Vec<f32> = (0..n)
        .map(|_| {
            // xorshift64: the same priors on every machine.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            amplitude * ((state >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0)
        })
        .collect();
    let pad = vec![0.0; 300 * mel::SAMPLE_RATE / 1000];
    [pad.clone(), crate::audio::phone_band(&hiss), pad].concat()
}

/// Everything one utterance produced, for callers that want more than a
/// [`Recognition`] (the transcribe CLI, the bench).
#[derive(Debug, Clone)]
pub struct Detailed {
    pub recognition: Recognition,
    pub open: OpenResult,
    /// Best grammar answer before rejection.
    pub best: Option<BestAnswer>,
    /// The decoder prompt the utterance was decoded after (start of
    /// transcript, the language, the task); see [`model::ModelMeta::prompt_text`].
    pub prompt: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct BestAnswer {
    pub text: String,
    /// log P(answer | audio).
    pub logprob: f32,
    /// How much the audio raised it over its prior (nats); options only.
    pub evidence: Option<f32>,
}

impl GrammarWhisper {
    pub fn load(paths: &ModelPaths, opts: GrammarOptions) -> Result<Self, AsrError> {
        let model = WhisperModel::load(paths)?;
        let digit_vocab = DigitVocab::new(&model);
        let ends = EndTokens::new(&model);
        Ok(GrammarWhisper { model, opts, digit_vocab, ends, compiled: Mutex::new(VecDeque::new()) })
    }

    /// Each option's prior: its mean log-probability over the quiet lines.
    fn priors(&self, choices: &CompiledChoices, n_options: usize, prompt: &[u32]) -> Result<Vec<f32>, AsrError> {
        let mut sum = vec![0.0f32; n_options];
        for amplitude in PRIOR_NOISE_AMPLITUDES {
            for (acc, lp) in sum.iter_mut().zip(self.line_priors(choices, prompt, &quiet_line(amplitude))?) {
                *acc += lp / PRIOR_NOISE_AMPLITUDES.len() as f32;
            }
        }
        Ok(sum)
    }

    /// Each option's log-probability on one line with nobody speaking.
    fn line_priors(&self, choices: &CompiledChoices, prompt: &[u32], line: &[f32]) -> Result<Vec<f32>, AsrError> {
        let audio = self.model.encode(&self.features(line))?;
        let prefix = decode::prefix(&self.model, &audio, prompt)?;
        Ok(choices.score_prior(&self.model, &audio, &prefix, &self.ends)?.into_iter().map(|s| s.logprob).collect())
    }

    pub fn model(&self) -> &WhisperModel {
        &self.model
    }

    pub fn options(&self) -> &GrammarOptions {
        &self.opts
    }

    /// Changes the options; priors are measured again under them.
    pub fn set_options(&mut self, opts: GrammarOptions) {
        self.opts = opts;
        self.compiled.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The log-mel the encoder sees for `samples` (16 kHz).
    pub fn features(&self, samples: &[f32]) -> LogMel {
        let full = FULL_FRAMES * HOP;
        let samples = &samples[..samples.len().min(full)];
        let total = match self.opts.padding {
            Padding::FullWindow => full,
            Padding::Utterance { margin_ms } => {
                let want = samples.len() + margin_ms as usize * 16;
                // An even number of frames: the encoder halves the length.
                want.div_ceil(2 * HOP) * 2 * HOP
            }
        };
        self.model.mel.log_mel(samples, total.min(full))
    }

    fn compiled(&self, grammar: &[super::GrammarChoice], language: Language) -> Result<Arc<Compiled>, AsrError> {
        // What is compiled depends on the options' labels and phrases only:
        // the same menu with other details (a read-back's "no" with the
        // request's slots) is the same grammar to score.
        let same_phrases =
            |a: &super::GrammarChoice, b: &super::GrammarChoice| a.label == b.label && a.phrases == b.phrases;
        let is_key = |(choices, lang): &CompiledKey| {
            *lang == language
                && choices.len() == grammar.len()
                && choices.iter().zip(grammar).all(|(a, b)| same_phrases(a, b))
        };
        let lookup = || {
            let cache = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
            cache.iter().find(|(k, _)| is_key(k)).map(|(_, c)| Arc::clone(c))
        };
        if let Some(c) = lookup() {
            return Ok(c);
        }
        // Built outside the lock: the priors take a few decoder calls, and
        // other calls' menus should not wait for them.
        let choices = CompiledChoices::new(&self.model, grammar)?;
        let priors = if self.opts.max_prior_correction > 0.0 {
            self.priors(&choices, grammar.len(), &self.model.prompt_for(language)?)?
        } else {
            vec![0.0; grammar.len()]
        };
        let c = Arc::new(Compiled { choices, priors });
        let mut cache = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = cache.iter().find(|(k, _)| is_key(k)) {
            return Ok(Arc::clone(c));
        }
        if cache.len() >= COMPILED_CACHE {
            cache.pop_front();
        }
        cache.push_back(((grammar.to_vec(), language), Arc::clone(&c)));
        Ok(c)
    }

    pub fn end_tokens(&self) -> &EndTokens {
        &self.ends
    }

    pub fn recognize_detailed(&self, samples: &[f32], grammar: &Grammar) -> Result<Detailed, AsrError> {
        self.recognize_on_line(samples, grammar, None)
    }

    /// As [`Self::recognize_detailed`], with an option's evidence also
    /// measured against `background`, the caller's line with nobody
    /// speaking (as long as the utterance), at the cost of one more encoder
    /// run. Measured in the bench only (`bench intents --line-priors`): it
    /// did not lower false accepts in noise (README, "the line's own
    /// background"), so calls do not use it.
    pub fn recognize_on_line(
        &self,
        samples: &[f32],
        grammar: &Grammar,
        background: Option<&[f32]>,
    ) -> Result<Detailed, AsrError> {
        let t0 = Instant::now();
        // Before anything else: a language the model cannot decode fails
        // every utterance alike, silent ones included.
        let prompt = self.model.prompt_for(grammar.language)?;
        if samples.is_empty() {
            let recognition = Recognition { prompt: self.model.meta.prompt_text(&prompt), ..Default::default() };
            return Ok(Detailed { recognition, open: OpenResult::default(), best: None, prompt });
        }
        let mel = self.features(samples);
        let audio = self.model.encode(&mel)?;
        let prefix = decode::prefix(&self.model, &audio, &prompt)?;
        // Open decoding is for the call record: a few tokens per second.
        let budget = (8 + samples.len() * 6 / mel::SAMPLE_RATE).min(MAX_OPEN_TOKENS);
        let open = decode::open_greedy(&self.model, &audio, &prefix, budget, !grammar.is_open())?;
        let open_text = super::sherpa::clean_transcript(&open.text);
        let open_lp = open.first_phrase_logprob(&self.ends);
        let silent_if =
            |lp: f32| prefix.no_speech_prob > self.opts.no_speech_threshold && lp < self.opts.silence_logprob;

        // On a noisy line an option needs more evidence to be acted on at
        // once: noise lends out-of-menu words what a quiet line does not.
        // Not in a digit step, whose answers are taken as heard.
        let noisy_floor = if is_single_digit(grammar) {
            self.opts.min_evidence
        } else {
            self.opts.evidence_floor(crate::audio::line_snr_db(samples))
        };
        let mut options: Vec<Answer> = Vec::new();
        let choices = scored_choices(grammar);
        if !choices.is_empty() {
            // Keys said aloud only where the caller said no more than a key:
            // in "4 queen of clubs" the 4 is not key 4.
            let scored = match units(&open_text).len() <= KEY_ANSWER_MAX_WORDS {
                true => with_key_words(&choices),
                false => std::borrow::Cow::Borrowed(choices.as_ref()),
            };
            let compiled = self.compiled(&scored, grammar.language)?;
            let scores = compiled.choices.score(&self.model, &audio, &prefix, &self.ends)?;
            let top_prior = compiled.priors.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let line = match background.filter(|_| self.opts.max_prior_correction > 0.0) {
                Some(bg) => Some(self.line_priors(&compiled.choices, &prompt, bg)?),
                None => None,
            };
            for (i, (s, &prior)) in scores.into_iter().zip(&compiled.priors).enumerate() {
                let correction = (top_prior - prior).min(self.opts.max_prior_correction);
                // The audio must beat both: quiet lines and this line.
                let floor = line.as_ref().map_or(prior, |l| prior.max(l[i]));
                options.push(Answer {
                    text: s.label,
                    logprob: s.logprob,
                    rank: s.logprob + correction,
                    evidence: Some(s.logprob - floor),
                });
            }
        }
        let mut digits: Vec<Answer> = Vec::new();
        if let Some((min, max)) = grammar.digits.filter(|_| !is_single_digit(grammar)) {
            let (min, max) = (min.max(1), max.clamp(min.max(1), MAX_DIGITS));
            let hyps = decode::digits_beam(
                &self.model,
                &audio,
                &prefix,
                &self.digit_vocab,
                &self.ends,
                (min, max),
                self.opts.beam_width.max(1),
            )?;
            // Digit strings have no prior (over strings of several lengths
            // a prior favours the longest).
            digits.extend(hyps.into_iter().map(|h| Answer {
                text: h.digits,
                logprob: h.logprob,
                rank: h.logprob,
                evidence: None,
            }));
        }
        let decision = decide(&options, &digits);
        let silent = silent_if(decision.as_ref().map_or(open_lp, |d| d.answer.logprob));
        let best = decision.as_ref().map(|d| BestAnswer {
            text: d.answer.text.clone(),
            logprob: d.answer.logprob,
            evidence: d.answer.evidence,
        });
        let mut sentence_answer = None;
        let (choice, confidence) = match decision {
            None => (None, if silent { 0.0 } else { 1.0 - prefix.no_speech_prob }),
            Some(Decision { answer, confidence }) => {
                let longer_than_phrase = answer.logprob < open_lp - self.opts.reject_margin;
                let below =
                    |floor: f32| answer.evidence.is_some_and(|e| self.opts.max_prior_correction > 0.0 && e < floor);
                let out_of_grammar = longer_than_phrase || below(self.opts.min_evidence);
                // Raised enough for a quiet line, not for this one: asked
                // about ("Did you mean …?"), not acted on.
                let barely = |c: f32| if below(noisy_floor) { c.min(BARELY_RAISED) } else { c };
                if silent {
                    (None, confidence)
                } else if longer_than_phrase && !options.is_empty() && !silent_if(open_lp) {
                    // The caller said more than a phrase: look for one inside.
                    sentence_answer = self.find_in_sentence(&audio, &prefix, &open, &choices)?;
                    match &sentence_answer {
                        Some(s) => (Some(s.label.clone()), s.confidence),
                        None => (None, confidence),
                    }
                } else if out_of_grammar || fills_out_short_digits(&answer.text, &open_text, grammar) {
                    (None, confidence)
                } else if confidence < UNSURE && !options.is_empty() && units(&open_text).len() > 1 {
                    // The options scored alone fit a sentence about equally
                    // ("I'd like a large hot chocolate with milk, please"
                    // against "a large hot chocolate" and "a large tea"):
                    // scored in place inside it, the same option may be
                    // plain. Another option found there is not taken: where
                    // the two readings disagree, the first one stands.
                    sentence_answer = self
                        .find_in_sentence(&audio, &prefix, &open, &choices)?
                        .filter(|s| s.label == answer.text && s.confidence > confidence);
                    match &sentence_answer {
                        Some(s) => (Some(s.label.clone()), s.confidence),
                        None => (Some(answer.text.clone()), barely(confidence)),
                    }
                } else {
                    (Some(answer.text.clone()), barely(confidence))
                }
            }
        };
        let chosen = choice.as_ref().and_then(|label| choices.iter().find(|c| c.label == *label));
        let sentence = self.slot_words(&audio, &prefix, &open, chosen, sentence_answer.as_ref(), &open_text)?;
        // Scores another recogniser can combine with: a whole-utterance
        // choice among the menu's options (not a sentence, not digits).
        let priors_on = self.opts.max_prior_correction > 0.0;
        let scores = (digits.is_empty() && sentence_answer.is_none() && !options.is_empty()).then(|| OptionScores {
            options: options
                .iter()
                .map(|a| OptionScore {
                    label: a.text.clone(),
                    logprob: a.logprob,
                    rank: a.rank,
                    // Without priors there is no quiet line to compare with.
                    evidence: a.evidence.filter(|_| priors_on).unwrap_or(f32::INFINITY),
                })
                .collect(),
            open_logprob: open_lp,
            silent,
            quiet_floor: self.opts.min_evidence,
            line_floor: noisy_floor,
        });
        let best = sentence_answer.map(|s| BestAnswer { text: s.label, logprob: s.logprob, evidence: None }).or(best);
        let text = if silent_if(open_lp) { String::new() } else { open_text };
        let recognition = Recognition {
            text,
            choice,
            confidence,
            decode_ms: t0.elapsed().as_millis() as u64,
            prompt: self.model.meta.prompt_text(&prompt),
            sentence,
            scores,
        };
        Ok(Detailed { recognition, open, best, prompt })
    }
}

impl GrammarWhisper {
    /// The option named inside the whole sentence, when sentences are on.
    /// The open transcript may have stopped at the end of the first
    /// sentence; the sentence path reads on, since a caller's "Hi. A mocha,
    /// please." names the option in the second.
    fn find_in_sentence(
        &self,
        audio: &model::AudioFeatures,
        prefix: &decode::Prefix,
        open: &OpenResult,
        choices: &[super::GrammarChoice],
    ) -> Result<Option<sentence::SentenceAnswer>, AsrError> {
        let Some(opts) = self.opts.sentences else { return Ok(None) };
        let stopped_early = open.token_logprobs.len() == open.tokens.len();
        let whole;
        let open = if stopped_early {
            whole = decode::open_greedy(&self.model, audio, prefix, MAX_OPEN_TOKENS, false)?;
            &whole
        } else {
            open
        };
        sentence::find_in_sentence(&self.model, audio, prefix, &self.ends, open, choices, opts)
    }
}

impl GrammarWhisper {
    /// The words the chosen option's slot values are read from, when they
    /// are not the transcript as it stands: the sentence the option was
    /// found in, and either with the details the audio prefers put in.
    fn slot_words(
        &self,
        audio: &model::AudioFeatures,
        prefix: &decode::Prefix,
        open: &OpenResult,
        chosen: Option<&super::GrammarChoice>,
        found_in: Option<&sentence::SentenceAnswer>,
        transcript: &str,
    ) -> Result<Option<String>, AsrError> {
        let as_found = found_in.map(|s| s.sentence.clone());
        let (Some(opts), Some(chosen)) = (self.opts.sentences, chosen.filter(|c| !c.details.is_empty())) else {
            return Ok(as_found);
        };
        let (text, keep) = match found_in {
            Some(s) => (s.sentence.as_str(), Some(s.phrase_at)),
            None => (transcript, sentence::phrase_at(&crate::intent::script::units(transcript), &chosen.phrases)),
        };
        // Whisper starts an English transcript with a space, a Mandarin one
        // without: the sentences are scored as the transcript was written.
        let lead = if self.model.tokenizer.decode(&open.tokens).starts_with(' ') { " " } else { "" };
        let put =
            details::put_in_details(&self.model, audio, prefix, &self.ends, text, lead, keep, &chosen.details, opts)?;
        Ok(put.or(as_found))
    }
}

/// A single digit is one of ten words: scored as options, with their
/// priors, digits are read better than by the digit beam search.
fn is_single_digit(grammar: &Grammar) -> bool {
    matches!(grammar.digits, Some((min, 1)) if min <= 1)
}

/// The options Whisper looks for in `grammar`: its choices, and the ten
/// digits when it asks for one (in Mandarin: its digit words and the
/// numeral, which Whisper writes too).
fn scored_choices(grammar: &Grammar) -> std::borrow::Cow<'_, [super::GrammarChoice]> {
    let mut choices = std::borrow::Cow::Borrowed(grammar.choices.as_slice());
    if is_single_digit(grammar) {
        for (d, word) in decode::NUMBER_WORDS.iter().enumerate() {
            let label = d.to_string();
            let phrases = grammar.language.digit_words(d).unwrap_or_else(|| vec![word.to_string()]);
            if !choices.iter().any(|c| c.label == label) {
                choices.to_mut().push(super::GrammarChoice::new(label, phrases));
            }
        }
    }
    choices
}

/// Words in the open transcript up to which the utterance may be a key
/// said aloud ("Three.", "3, please", "press three"); longer, it is a
/// sentence, whose numbers are details ("three small teas").
const KEY_ANSWER_MAX_WORDS: usize = 2;

/// The choices as a short answer is scored against them: a choice's key
/// said aloud is one more of its phrases.
fn with_key_words(choices: &[super::GrammarChoice]) -> std::borrow::Cow<'_, [super::GrammarChoice]> {
    if choices.iter().all(|c| c.key_words.is_empty()) {
        return std::borrow::Cow::Borrowed(choices);
    }
    let whole = |c: &super::GrammarChoice| super::GrammarChoice {
        phrases: c.phrases.iter().chain(&c.key_words).cloned().collect(),
        ..c.clone()
    };
    std::borrow::Cow::Owned(choices.iter().map(whole).collect())
}

/// One candidate answer: an option of the menu or a digit string.
#[derive(Debug, Clone)]
struct Answer {
    text: String,
    /// log P(answer | audio).
    logprob: f32,
    /// What ranks answers of the same kind: the log-probability, plus the
    /// prior correction for options.
    rank: f32,
    /// How much the audio raised an option over its prior (nats).
    evidence: Option<f32>,
}

struct Decision<'a> {
    answer: &'a Answer,
    confidence: f32,
}

/// Whether a digit-string answer only lengthens what the open transcript
/// reads: the caller said fewer digits than the step takes ("9 0 2 1 0"
/// for 15), and the digit search, which can only answer with a length the
/// step takes, repeated the words it heard ("902109021090210"). Such an
/// answer is no answer: the caller may go on, or is asked again.
fn fills_out_short_digits(answer: &str, open_text: &str, grammar: &Grammar) -> bool {
    let Some((min, _)) = grammar.digits else { return false };
    let is_option = grammar.choices.iter().any(|c| c.label == answer);
    match crate::intent::parse_digits(open_text) {
        Some(heard) => !is_option && heard.len() < min && answer.len() > heard.len() && answer.starts_with(&heard),
        None => false,
    }
}

/// The best answer and how sure we are of it. Within a kind (menu options,
/// digit strings) the rank score decides; between the kinds' winners the
/// log-probability decides, as their priors are not comparable.
/// Confidence = the winner's kind's share of the probability × the softmax
/// of the rank scores within its kind.
fn decide<'a>(options: &'a [Answer], digits: &'a [Answer]) -> Option<Decision<'a>> {
    let lse = |xs: &[Answer], f: fn(&Answer) -> f32| log_sum_exp(&xs.iter().map(f).collect::<Vec<_>>());
    let raw_all = log_sum_exp(&[lse(options, |a| a.logprob), lse(digits, |a| a.logprob)]);
    let (kind, answer) = [options, digits]
        .into_iter()
        .filter_map(|kind| Some((kind, kind.iter().max_by(|a, b| a.rank.total_cmp(&b.rank))?)))
        .max_by(|a, b| a.1.logprob.total_cmp(&b.1.logprob))?;
    let share = (lse(kind, |a| a.logprob) - raw_all).exp();
    let within = (answer.rank - lse(kind, |a| a.rank)).exp();
    Some(Decision { answer, confidence: share * within })
}

impl Recognizer for GrammarWhisper {
    fn recognize(&self, samples: &[f32], grammar: &Grammar) -> Result<Recognition, AsrError> {
        self.recognize_detailed(samples, grammar).map(|d| d.recognition)
    }

    fn prepare(&self, grammar: &Grammar) -> Result<(), AsrError> {
        let choices = scored_choices(grammar);
        if !choices.is_empty() {
            self.compiled(&choices, grammar.language)?;
            self.compiled(&with_key_words(&choices), grammar.language)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{fills_out_short_digits, GrammarOptions, NOISY_LINE_SNR_DB, QUIET_LINE_SNR_DB};
    use crate::asr::Grammar;

    #[test]
    fn the_evidence_floor_rises_with_the_noise_on_the_line() {
        let opts = GrammarOptions { min_evidence: 3.0, noisy_evidence: 2.0, ..Default::default() };
        assert_eq!(opts.evidence_floor(crate::audio::SNR_CAP_DB), 3.0, "a quiet line keeps min_evidence");
        assert_eq!(opts.evidence_floor(QUIET_LINE_SNR_DB), 3.0);
        let halfway = (QUIET_LINE_SNR_DB + NOISY_LINE_SNR_DB) / 2.0;
        assert!((opts.evidence_floor(halfway) - 4.0).abs() < 1e-5);
        assert_eq!(opts.evidence_floor(NOISY_LINE_SNR_DB), 5.0);
        assert_eq!(opts.evidence_floor(0.0), 5.0, "no more than all of it");
        let off = GrammarOptions { noisy_evidence: 0.0, ..opts };
        assert_eq!(off.evidence_floor(0.0), 3.0);
    }

    #[test]
    fn a_digit_answer_that_only_repeats_a_shorter_transcript_is_no_answer() {
        let fifteen = Grammar { digits: Some((15, 15)), ..Default::default() };
        assert!(fills_out_short_digits("902109021090210", "90210", &fifteen));
        assert!(fills_out_short_digits("100019021090210", "10001 90210", &fifteen));
        // The transcript reads all fifteen, or other words: the search decides.
        assert!(!fills_out_short_digits("100019021001803", "10001 90210 01803", &fifteen));
        assert!(!fills_out_short_digits("100019021001803", "please hold on", &fifteen));
        // Digits the transcript does not begin: not a repetition of it.
        assert!(!fills_out_short_digits("451234", "9 9", &Grammar { digits: Some((6, 6)), ..Default::default() }));
    }
}
