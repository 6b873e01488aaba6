//! The call state machine: sans-IO, time is an input.
//!
//! A [`Call`] is fed [`Input`]s with the current time (ms since the call
//! started) and answers with [`Output`]s. It knows nothing of sockets,
//! threads or clocks: the live server and `hotline replay` drive the same
//! machine, replay with a virtual clock.
//!
//! Audio goes in as 16 kHz frames; the machine runs the voice detector on
//! them, asks for recognition of finished utterances (`Output::Recognize`,
//! answered later with `Input::Recognized` or `Input::RecognitionFailed`),
//! and decides what the caller hears next.
use std::sync::Arc;

use crate::asr::{Grammar, Recognition, Utterance};
use crate::dialplan::{Prompt, Transfer};

/// Identifies one playback so its end can be matched to it.
pub type PlaybackId = u64;

/// The machine's API (implemented below):
///
/// ```text
/// Call::new(dialplan: Arc<Dialplan>, matcher: Arc<dyn IntentMatcher>,
///           vad: Box<dyn VoiceDetector>) -> Call
/// call.handle(now_ms: u64, input: Input) -> Vec<Output>
/// call.next_deadline() -> Option<u64>   // send Input::Tick at this time
/// call.is_finished() -> bool            // after Hangup / Transfer
/// ```
#[derive(Debug, Clone)]
pub enum Input {
    /// The call is connected: the machine plays the first menu's prompt.
    Start,
    /// 16 kHz mono caller audio, any length (normally one 20 ms frame).
    Audio(Vec<f32>),
    Dtmf(char),
    /// Answer to `Output::Recognize { request, .. }`.
    Recognized { request: u64, result: Recognition },
    /// The recogniser crashed or is overloaded: degrade to DTMF.
    RecognitionFailed { request: u64, reason: String },
    /// The PBX finished playing this prompt.
    PlaybackFinished(PlaybackId),
    /// Time passed (drives no-input timers).
    Tick,
    /// The transfer asked for in `Output::Transfer` did not happen.
    TransferFailed { reason: String },
    /// The caller hung up / the connection closed.
    Hangup,
}

#[derive(Debug, Clone)]
pub enum Output {
    Play { id: PlaybackId, prompt: Prompt, barge_in: bool },
    /// Barge-in: stop what is playing now and drop what is queued.
    StopPlayback,
    /// Recognise this utterance against this grammar; answer with
    /// `Input::Recognized` carrying the same request number.
    Recognize { request: u64, utterance: Utterance, grammar: Arc<Grammar> },
    /// Hand the caller to a human. Variables collected so far go along.
    Transfer { target: Transfer, variables: Vec<(String, String)> },
    Hangup { reason: String },
    /// Something worth logging / putting in the call record / timeline.
    Event(Event),
}

/// Timeline entries (`hotline replay` prints them as JSON lines).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Prompt { t_ms: u64, menu: String, text: String },
    Utterance { t_ms: u64, start_ms: u64, end_ms: u64, text: String, confidence: f32 },
    Intent { t_ms: u64, menu: String, intent: String, confidence: f32, source: Source },
    NoMatch { t_ms: u64, menu: String, text: String },
    NoInput { t_ms: u64, menu: String },
    Dtmf { t_ms: u64, digit: char },
    Collect { t_ms: u64, variable: String, value: String, confirmed: bool },
    BargeIn { t_ms: u64 },
    Degraded { t_ms: u64, reason: String },
    Transfer { t_ms: u64, extension: String, context: Option<String> },
    TransferFailed { t_ms: u64, reason: String },
    Hangup { t_ms: u64, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Speech,
    Dtmf,
}
