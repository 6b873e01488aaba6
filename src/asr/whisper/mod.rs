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
//! - [`score`]: phrase scoring.
pub mod decode;
pub mod graph;
pub mod mel;
pub mod model;
pub mod score;
pub mod tokens;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use self::decode::{DigitVocab, EndTokens, OpenResult};
use self::mel::{LogMel, FULL_FRAMES, HOP};
use self::model::{log_sum_exp, WhisperModel};
use self::score::CompiledChoices;
use super::models::ModelPaths;
use super::{AsrError, Grammar, Recognition, Recognizer};

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
}

impl Default for GrammarOptions {
    fn default() -> Self {
        GrammarOptions {
            padding: Padding::Utterance { margin_ms: 500 },
            reject_margin: 4.0,
            no_speech_threshold: 0.6,
            silence_logprob: -4.5,
            beam_width: 4,
        }
    }
}

/// Grammars compiled to token sequences, kept for the menus in use.
const COMPILED_CACHE: usize = 64;
/// Longest transcript open decoding writes (tokens).
const MAX_OPEN_TOKENS: usize = 120;
/// Longest digit string a grammar may ask for.
pub const MAX_DIGITS: usize = 32;

pub struct GrammarWhisper {
    model: WhisperModel,
    opts: GrammarOptions,
    digit_vocab: DigitVocab,
    ends: EndTokens,
    compiled: Mutex<VecDeque<(Vec<super::GrammarChoice>, Arc<CompiledChoices>)>>,
}

/// Everything one utterance produced, for callers that want more than a
/// [`Recognition`] (the transcribe CLI, the bench).
#[derive(Debug, Clone)]
pub struct Detailed {
    pub recognition: Recognition,
    pub open: OpenResult,
    /// Best grammar answer before rejection, and its log-probability.
    pub best: Option<(String, f32)>,
}

impl GrammarWhisper {
    pub fn load(paths: &ModelPaths, opts: GrammarOptions) -> Result<Self, AsrError> {
        let model = WhisperModel::load(paths)?;
        let digit_vocab = DigitVocab::new(&model);
        let ends = EndTokens::new(&model);
        Ok(GrammarWhisper { model, opts, digit_vocab, ends, compiled: Mutex::new(VecDeque::new()) })
    }

    pub fn model(&self) -> &WhisperModel {
        &self.model
    }

    pub fn options(&self) -> &GrammarOptions {
        &self.opts
    }

    pub fn set_options(&mut self, opts: GrammarOptions) {
        self.opts = opts;
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

    fn compiled(&self, grammar: &Grammar) -> Result<Arc<CompiledChoices>, AsrError> {
        let mut cache = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = cache.iter().find(|(k, _)| *k == grammar.choices) {
            return Ok(Arc::clone(c));
        }
        let c = Arc::new(CompiledChoices::new(&self.model, &grammar.choices)?);
        if cache.len() >= COMPILED_CACHE {
            cache.pop_front();
        }
        cache.push_back((grammar.choices.clone(), Arc::clone(&c)));
        Ok(c)
    }

    pub fn end_tokens(&self) -> &EndTokens {
        &self.ends
    }

    pub fn recognize_detailed(&self, samples: &[f32], grammar: &Grammar) -> Result<Detailed, AsrError> {
        let t0 = Instant::now();
        if samples.is_empty() {
            return Ok(Detailed { recognition: Recognition::default(), open: OpenResult::default(), best: None });
        }
        let mel = self.features(samples);
        let audio = self.model.encode(&mel)?;
        let prefix = decode::prefix(&self.model, &audio)?;
        // Open decoding is for the call record: a few tokens per second.
        let budget = (8 + samples.len() * 6 / mel::SAMPLE_RATE).min(MAX_OPEN_TOKENS);
        let open = decode::open_greedy(&self.model, &audio, &prefix, budget, !grammar.is_open())?;
        let open_text = super::sherpa::clean_transcript(&open.text);
        let open_lp = open.first_phrase_logprob(&self.ends);
        let silent_if = |lp: f32| prefix.no_speech_prob > self.opts.no_speech_threshold && lp < self.opts.silence_logprob;

        // Candidates: (answer, log-probability), options first.
        let mut answers: Vec<(String, f32)> = Vec::new();
        if !grammar.choices.is_empty() {
            let compiled = self.compiled(grammar)?;
            for s in compiled.score(&self.model, &audio, &prefix, &self.ends)? {
                answers.push((s.label, s.logprob));
            }
        }
        if let Some((min, max)) = grammar.digits {
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
            answers.extend(hyps.into_iter().map(|h| (h.digits, h.logprob)));
        }
        let best = answers.iter().max_by(|a, b| a.1.total_cmp(&b.1)).cloned();
        let (choice, confidence) = match &best {
            None => (None, if silent_if(open_lp) { 0.0 } else { 1.0 - prefix.no_speech_prob }),
            Some((answer, lp)) => {
                let all: Vec<f32> = answers.iter().map(|a| a.1).collect();
                let confidence = (lp - log_sum_exp(&all)).exp();
                let out_of_grammar = *lp < open_lp - self.opts.reject_margin;
                if silent_if(*lp) || out_of_grammar {
                    (None, confidence)
                } else {
                    (Some(answer.clone()), confidence)
                }
            }
        };
        let text = if silent_if(open_lp) { String::new() } else { open_text };
        let recognition =
            Recognition { text, choice, confidence, decode_ms: t0.elapsed().as_millis() as u64 };
        Ok(Detailed { recognition, open, best })
    }
}

impl Recognizer for GrammarWhisper {
    fn recognize(&self, samples: &[f32], grammar: &Grammar) -> Result<Recognition, AsrError> {
        self.recognize_detailed(samples, grammar).map(|d| d.recognition)
    }
}
