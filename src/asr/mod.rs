//! Speech recognition: finding utterances (VAD) and turning them into words.
//!
//! Both sit behind traits so a streaming model or another engine can drop in:
//! - [`VoiceDetector`]: per call, fed 16 kHz audio, reports speech start and
//!   finished utterances (sans-IO: the caller owns the clock). Its
//!   endpointing (`endpoint`) is pure; the network that scores windows is
//!   Silero (`silero`), batched across calls on the server (`vad_worker`).
//! - [`Recognizer`]: shared by all calls, blocking and CPU-bound; it runs on
//!   the bounded thread pool in `pool`, never on async workers.
use std::sync::Arc;

pub mod endpoint;
mod error;
pub mod language;
pub mod models;
pub(crate) mod pool;
pub(crate) mod runtime;
pub mod second_pass;
pub mod sherpa;
pub mod silero;
pub mod speed;
pub(crate) mod stack;
pub mod vad_worker;
pub mod whisper;

pub use error::{AsrError, ModelError, RecognitionError};
pub use language::Language;
pub use pool::{PoolError, RecognizerPool};
pub use runtime::RuntimeError;
pub use stack::{default_second_model, Engine, SecondModel, SecondPassConfig, SpeechConfig, SpeechStack};

/// What the voice detector reports, in call time (ms since the first sample
/// it was given).
#[derive(Debug, Clone)]
pub enum VadEvent {
    /// The caller started speaking (used for barge-in).
    SpeechStart { at_ms: u64 },
    /// The caller stopped speaking: the utterance, 16 kHz.
    Utterance(Utterance),
    /// The caller has been quiet for a moment: the utterance so far, so its
    /// recognition can start before the quiet is long enough to act on
    /// (see [`VadEvent::Pause`]). At most once per stretch of quiet.
    Lull(Utterance),
    /// The quiet after a [`VadEvent::Lull`] reached `pause_ms` (not yet
    /// `min_silence_ms`): an answer to the words before it may be acted on.
    Pause { at_ms: u64 },
    /// Speech went on after a [`VadEvent::Lull`]: the utterance is not over.
    Resume { at_ms: u64 },
    /// The detector stopped working (its network failed). Reported once;
    /// after it the detector hears nothing, so the call must stop waiting
    /// for speech (keys, then a human) instead of reprompting into silence.
    Failed { reason: String },
}

impl VadEvent {
    /// The event with its times moved from the detector's clock (ms since
    /// the first sample it heard) to the call's: `origin` is the call time
    /// of that first sample.
    pub fn on_call_clock(self, origin: u64) -> VadEvent {
        let shift = |u: Utterance| Utterance { start_ms: u.start_ms + origin, end_ms: u.end_ms + origin, ..u };
        match self {
            VadEvent::SpeechStart { at_ms } => VadEvent::SpeechStart { at_ms: at_ms + origin },
            VadEvent::Utterance(u) => VadEvent::Utterance(shift(u)),
            VadEvent::Lull(u) => VadEvent::Lull(shift(u)),
            VadEvent::Pause { at_ms } => VadEvent::Pause { at_ms: at_ms + origin },
            VadEvent::Resume { at_ms } => VadEvent::Resume { at_ms: at_ms + origin },
            failed @ VadEvent::Failed { .. } => failed,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Utterance {
    pub start_ms: u64,
    pub end_ms: u64,
    /// 16 kHz mono samples in [-1, 1), padded as the endpointing config says.
    pub samples: Arc<Vec<f32>>,
}

/// Longest audio two utterances heard as one may make: the detector's own
/// cut-off for one utterance, well inside Whisper's 30 s window.
pub const MAX_JOINED_MS: u64 = 20_000;

impl Utterance {
    /// This utterance and `next` as one, for a caller who paused in the
    /// middle of an answer. Each keeps its padding of call audio, so the
    /// pause between them is heard as a short one (keeping it as long as it
    /// was, in digital silence, did no better on FSDD digits read in
    /// groups). `None` when together they would be longer than
    /// [`MAX_JOINED_MS`].
    pub fn followed_by(&self, next: &Utterance) -> Option<Utterance> {
        let len = self.samples.len() + next.samples.len();
        if len as u64 > MAX_JOINED_MS * crate::audio::MODEL_RATE as u64 / 1000 {
            return None;
        }
        let mut samples = Vec::with_capacity(len);
        samples.extend_from_slice(&self.samples);
        samples.extend_from_slice(&next.samples);
        Some(Utterance { start_ms: self.start_ms, end_ms: next.end_ms, samples: Arc::new(samples) })
    }
}

/// Endpointing: when speech starts and when an utterance is over.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointConfig {
    /// Speech probability above which a window counts as speech while a
    /// prompt plays: speech there stops the prompt (barge-in), so line
    /// noise must not reach it.
    pub threshold: f32,
    /// The same while no prompt plays and the caller has the floor. Lower:
    /// a false start there costs a rejected recognition, a missed word costs
    /// the caller a retry, and noisy lines lose most words to the detector.
    pub listening_threshold: f32,
    /// Silence that ends an utterance.
    pub min_silence_ms: u64,
    /// Shorter silence after which a menu answer that is already clear can
    /// be acted on without waiting for `min_silence_ms` (0 = off). Its
    /// recognition starts up to [`PAUSE_HEAD_START_MS`] earlier. Silence
    /// is counted in the detector's 32 ms windows, so a value between two
    /// multiples of 32 acts like the next one up.
    pub pause_ms: u64,
    /// Shorter bursts are ignored (clicks, breaths).
    pub min_speech_ms: u64,
    /// Audio kept before the onset and after the end of speech.
    pub speech_pad_ms: u64,
    /// An utterance is cut here even if the caller keeps talking.
    pub max_utterance_ms: u64,
    /// Start the detector's network afresh when a prompt ends and the
    /// caller has the floor (unless they are already speaking). Its
    /// recurrent state learns the line's noise as background while the
    /// prompt plays, which keeps noise from barging in but, after a few
    /// seconds of a noisy line, also hides the quiet answer that follows:
    /// at 6 dB SNR it missed a third of the words said after a greeting.
    pub restart_when_listening: bool,
}

/// How much sooner than `pause_ms` the words before a pause go to the
/// recogniser (at most half the pause). Recognising a menu answer takes
/// 30–60 ms on an idle server, so starting it early means the answer is
/// usually ready the moment the pause is long enough to act on, instead of
/// that much later; the price is a wasted recognition when the caller goes
/// on speaking in between. Two 32 ms windows: with three (the words handed
/// over after 96 ms of quiet instead of 128) the recogniser saw less of the
/// word's fading end, and spoken digits at 12 dB SNR were taken early half
/// as often.
pub const PAUSE_HEAD_START_MS: u64 = 64;

impl EndpointConfig {
    /// Quiet after which the words so far are handed to the recogniser
    /// ([`VadEvent::Lull`]); None when early answers are off.
    pub fn lull_ms(&self) -> Option<u64> {
        (self.pause_ms > 0 && self.pause_ms < self.min_silence_ms)
            .then(|| self.pause_ms - PAUSE_HEAD_START_MS.min(self.pause_ms / 2))
    }
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            threshold: 0.5,
            listening_threshold: 0.4,
            min_silence_ms: 500,
            // Six 32 ms windows. (200 meant seven, 224 ms: in 21 read
            // sentences through the phone band both find the same three
            // pauses inside a sentence; 160 finds six.)
            pause_ms: 192,
            min_speech_ms: 100,
            speech_pad_ms: 200,
            max_utterance_ms: 20_000,
            restart_when_listening: true,
        }
    }
}

pub trait VoiceDetector: Send {
    /// Feeds 16 kHz samples; returns what happened in them.
    fn accept(&mut self, samples: &[f32]) -> Vec<VadEvent>;
    /// End of audio: closes an utterance still open.
    fn flush(&mut self) -> Vec<VadEvent>;
    /// The listener acted on a pause: forget the utterance in progress, so
    /// it is not reported again when the silence gets long enough.
    fn end_utterance(&mut self) {}
    /// Whether a prompt is playing to the caller now (see
    /// `EndpointConfig::threshold` and `listening_threshold`).
    fn set_prompt_playing(&mut self, _playing: bool) {}
}

/// What the recogniser may expect to hear. Empty = open transcription.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grammar {
    /// Options a caller can choose by voice: label (intent name) and phrases.
    pub choices: Vec<GrammarChoice>,
    /// A digit string of this many digits is expected (collect actions).
    pub digits: Option<(usize, usize)>,
    /// The language the caller speaks (the dialplan's): the recogniser
    /// decodes in it, so one recogniser serves dialplans of several.
    pub language: Language,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GrammarChoice {
    pub label: String,
    pub phrases: Vec<String>,
    /// The details a sentence choosing this option may also name: one list
    /// of phrases per slot ("small", "medium", "large"). The recogniser puts
    /// a detail the transcript misheard back where the audio says it (see
    /// [`Recognition::sentence`]); which slot gets which value is read from
    /// those words afterwards.
    pub details: Vec<Vec<String>>,
    /// The choice's key said aloud ("three" for key 3, where the menu says
    /// "press 3 for …"): heard as the whole answer only, never inside a
    /// sentence, where "two lattes, please" names a quantity, not key 2.
    pub key_words: Vec<String>,
}

impl GrammarChoice {
    /// An option without details.
    pub fn new(label: impl Into<String>, phrases: Vec<String>) -> GrammarChoice {
        GrammarChoice { label: label.into(), phrases, details: Vec::new(), key_words: Vec::new() }
    }
}

impl Grammar {
    pub fn is_open(&self) -> bool {
        self.choices.is_empty() && self.digits.is_none()
    }
}

/// The recogniser's answer for one utterance.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Recognition {
    /// What was said, decoded freely (may be empty for noise).
    pub text: String,
    /// When a grammar was given: the label of the chosen choice, or the
    /// digit string; `None` when the utterance fits nothing in the grammar.
    pub choice: Option<String>,
    /// Confidence of `choice` in [0, 1] (1 for open text without a score).
    pub confidence: f32,
    /// Time spent decoding.
    pub decode_ms: u64,
    /// The decoder prompt the words were decoded after, by token name
    /// (`<|startoftranscript|><|zh|><|transcribe|><|notimestamps|>`): which
    /// language the recogniser listened for. Empty when the engine does not
    /// say.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub prompt: String,
    /// When `choice` was found inside a sentence: that sentence as the
    /// recogniser scored it, with the option's phrase in place of what the
    /// transcript had there ("a grande latte" for "a Grand Lothé"). Also,
    /// when the chosen option has details: the words with the details the
    /// audio preferred put in ("queen of clubs" for "queen of close").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentence: Option<String>,
    /// Every menu option's score when `choice` was decided among the
    /// options as a whole-utterance answer, so a second recogniser's scores
    /// can be combined with them (see [`second_pass`]). None for digit
    /// strings, sentences and open text.
    #[serde(skip)]
    pub scores: Option<OptionScores>,
}

/// How a grammar recogniser scored each option of a menu for one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionScores {
    /// In the grammar's option order.
    pub options: Vec<OptionScore>,
    /// log P(the free transcript's first phrase | audio): an option far
    /// below it means the caller said something else.
    pub open_logprob: f32,
    /// The model's silence rule held (it heard no speech): its scores are
    /// not evidence of an option.
    pub silent: bool,
    /// The evidence (nats) an option needs to count at all
    /// (`min_evidence`).
    pub quiet_floor: f32,
    /// The evidence (nats) an option needs on this line to be acted on at
    /// once: more on a noisy one (`noisy_evidence`).
    pub line_floor: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OptionScore {
    pub label: String,
    /// log P(option | audio).
    pub logprob: f32,
    /// What options are ranked by: the log-probability plus the correction
    /// for the model's prior preference.
    pub rank: f32,
    /// How much the audio raised the option over a quiet line (nats).
    pub evidence: f32,
}

impl Recognition {
    /// The words a chosen option's slot values are read from: the sentence
    /// the audio confirmed when there is one, else the transcript.
    pub fn slot_text(&self) -> &str {
        self.sentence.as_deref().unwrap_or(&self.text)
    }
}

pub trait Recognizer: Send + Sync {
    /// Recognises one utterance (16 kHz). Blocking, CPU-bound.
    fn recognize(&self, samples: &[f32], grammar: &Grammar) -> Result<Recognition, AsrError>;

    /// Readies whatever recognising with `grammar` needs (compiled phrases,
    /// their priors) ahead of the first caller. Blocking, CPU-bound.
    fn prepare(&self, _grammar: &Grammar) -> Result<(), AsrError> {
        Ok(())
    }
}
