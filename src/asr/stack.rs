//! The loaded speech stack: one VAD model and one recogniser pool for the
//! whole process, shared by every call.
use std::sync::Arc;

use super::models::{ModelPaths, WhisperModelName};
use super::second_pass::{CombineRules, SecondPass};
use super::sherpa::{SherpaWhisper, WhisperOptions};
use super::silero::{SileroModel, SileroVad};
use super::speed::AtSpeed;
use super::whisper::{GrammarOptions, GrammarWhisper, Padding, SECOND_PASS_CONTEXT_MS};
use super::{AsrError, EndpointConfig, Recognizer, RecognizerPool};

#[derive(Debug, Clone)]
pub struct SpeechConfig {
    pub models: ModelPaths,
    pub endpoint: EndpointConfig,
    /// Which recogniser serves the calls.
    pub engine: Engine,
    /// Options of the grammar-constrained recogniser (the default engine).
    pub grammar: GrammarOptions,
    /// Options of sherpa-onnx's open decoder (kept for comparison).
    pub whisper: WhisperOptions,
    /// Recognition threads (0 = one per core).
    pub threads: usize,
    /// Utterances that may wait for a thread before calls degrade.
    pub queue: usize,
    /// A stronger grammar recogniser for the answers the first one is
    /// unsure of (see [`super::second_pass`]); None = one pass.
    pub second_pass: Option<SecondPassConfig>,
}

#[derive(Debug, Clone)]
pub struct SecondPassConfig {
    /// A stronger model; None = the first model itself, hearing the
    /// utterance at another `speed` (no second model in memory).
    pub model: Option<SecondModel>,
    /// How much faster the second pass hears the utterance (1 = as said).
    pub speed: f32,
    /// Confidence below which it is asked, and which its answer must reach.
    pub clear: f32,
}

#[derive(Debug, Clone)]
pub struct SecondModel {
    pub name: WhisperModelName,
    pub models: ModelPaths,
    pub grammar: GrammarOptions,
}

/// The second model a configuration without one gets after `first`:
/// Whisper base, which hears the unsure answers of tiny.en again (README,
/// "A second pass"); none after base itself.
pub fn default_second_model(first: WhisperModelName) -> Option<WhisperModelName> {
    Some(WhisperModelName::Base).filter(|&m| m != first)
}

impl SecondPassConfig {
    /// The default second pass after `first`: [`default_second_model`]
    /// with [`SECOND_PASS_CONTEXT_MS`] of context, for the answers below
    /// the dialplans' default `accept`.
    pub fn default_after(first: WhisperModelName, grammar: &GrammarOptions) -> Option<Self> {
        let second = default_second_model(first)?;
        Some(Self::new(first, grammar, Some(second), SECOND_PASS_CONTEXT_MS, 1.0, crate::dialplan::DEFAULT_ACCEPT))
    }

    /// The second pass after `first` (with its `grammar` options): `second`
    /// with `context_ms` around the utterance, or, when it names `first`
    /// itself or nothing, the first model again; heard at `speed`.
    pub fn new(
        first: WhisperModelName,
        grammar: &GrammarOptions,
        second: Option<WhisperModelName>,
        context_ms: u32,
        speed: f32,
        clear: f32,
    ) -> Self {
        let model = second.filter(|&m| m != first).map(|m| SecondModel {
            name: m,
            models: ModelPaths::for_whisper(m),
            grammar: GrammarOptions { padding: Padding::Utterance { margin_ms: context_ms }, ..grammar.clone() },
        });
        SecondPassConfig { model, speed, clear }
    }
}

impl Default for SpeechConfig {
    fn default() -> Self {
        SpeechConfig {
            models: ModelPaths::default_location(),
            endpoint: EndpointConfig::default(),
            engine: Engine::Grammar,
            grammar: GrammarOptions::default(),
            whisper: WhisperOptions::default(),
            threads: 0,
            queue: 64,
            second_pass: SecondPassConfig::default_after(WhisperModelName::default(), &GrammarOptions::default()),
        }
    }
}

/// The recogniser behind every call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Engine {
    /// Whisper on `ort` scoring the phrases the menu allows; open decoding
    /// for the record and the text-matcher fallback.
    Grammar,
    /// sherpa-onnx's Whisper, open decoding only.
    Sherpa,
}

pub struct SpeechStack {
    pub vad_model: Arc<SileroModel>,
    pub recognizer: Arc<dyn Recognizer>,
    pub pool: RecognizerPool,
    pub endpoint: EndpointConfig,
}

impl SpeechStack {
    pub fn load(cfg: &SpeechConfig) -> Result<Self, AsrError> {
        let vad_model = SileroModel::load(&cfg.models.silero_vad)?;
        // One model in memory for all calls: the pool's threads share it.
        let mut recognizer: Arc<dyn Recognizer> = match cfg.engine {
            Engine::Grammar => Arc::new(GrammarWhisper::load(&cfg.models, cfg.grammar.clone())?),
            Engine::Sherpa => Arc::new(SherpaWhisper::load(&cfg.models, &cfg.whisper)?),
        };
        if let Some(second) = &cfg.second_pass {
            let mut strong: Arc<dyn Recognizer> = match &second.model {
                Some(m) => Arc::new(GrammarWhisper::load(&m.models, m.grammar.clone())?),
                None => Arc::clone(&recognizer),
            };
            if second.speed != 1.0 {
                strong = Arc::new(AtSpeed::new(strong, second.speed));
            }
            let rules = CombineRules { clear: second.clear, reject_margin: cfg.grammar.reject_margin };
            recognizer = Arc::new(SecondPass::new(recognizer, strong, rules));
        }
        let pool = RecognizerPool::new(Arc::clone(&recognizer), cfg.threads, cfg.queue);
        Ok(SpeechStack { vad_model, recognizer, pool, endpoint: cfg.endpoint.clone() })
    }

    /// A fresh voice detector for one call.
    pub fn detector(&self) -> SileroVad {
        SileroVad::new(Arc::clone(&self.vad_model), self.endpoint.clone())
    }
}
