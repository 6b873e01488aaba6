//! Silero VAD (v5/v6 ONNX) on `ort`, with our own endpointing.
//!
//! One [`SileroModel`] (one ONNX session) serves every call; each call keeps
//! only its recurrent state and a little audio in a [`SileroVad`]. Running
//! the network takes a fraction of a millisecond per 32 ms window, so the
//! session sits behind a mutex instead of being copied per call.
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use ort::session::Session;
use ort::value::Tensor;

use super::{AsrError, EndpointConfig, ModelError, RecognitionError, Utterance, VadEvent, VoiceDetector};

const RATE: u64 = 16_000;
/// Samples per network step at 16 kHz (fixed by the model).
const WINDOW: usize = 512;
/// Samples of the previous window the v5/v6 model sees in front of each one.
const CONTEXT: usize = 64;
const STATE_LEN: usize = 2 * 128;

pub struct SileroModel {
    session: Mutex<Session>,
}

impl SileroModel {
    pub fn load(path: &std::path::Path) -> Result<Arc<Self>, AsrError> {
        let session = super::runtime::session(path)?;
        let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        if names != ["input", "state", "sr"] {
            return Err(ModelError::Unexpected {
                path: path.to_path_buf(),
                what: format!("not a Silero VAD v5/v6 model (inputs {names:?})"),
            }
            .into());
        }
        Ok(Arc::new(SileroModel { session: Mutex::new(session) }))
    }

    /// Speech probability of one window; updates `state`.
    fn step(&self, input: &[f32], state: &mut [f32; STATE_LEN]) -> Result<f32, AsrError> {
        let fail = |source: ort::Error| AsrError::from(RecognitionError::Runtime { stage: "silero vad", source });
        let x = Tensor::from_array(([1usize, input.len()], input.to_vec())).map_err(fail)?;
        let s = Tensor::from_array(([2usize, 1, 128], state.to_vec())).map_err(fail)?;
        let sr = Tensor::from_array(([1usize], vec![RATE as i64])).map_err(fail)?;
        // A poisoned lock only means another call panicked mid-step; the
        // session itself holds no per-call state.
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let out = session.run(ort::inputs!["input" => x, "state" => s, "sr" => sr]).map_err(fail)?;
        let (_, prob) = out["output"].try_extract_tensor::<f32>().map_err(fail)?;
        let (_, new_state) = out["stateN"].try_extract_tensor::<f32>().map_err(fail)?;
        if new_state.len() == STATE_LEN {
            state.copy_from_slice(new_state);
        }
        Ok(prob.first().copied().unwrap_or(0.0))
    }
}

/// Per-call voice detector.
pub struct SileroVad {
    model: Arc<SileroModel>,
    cfg: EndpointConfig,
    state: [f32; STATE_LEN],
    /// Last CONTEXT samples of the previous window, then the new window.
    input: Vec<f32>,
    /// Samples not yet forming a whole window.
    pending: Vec<f32>,
    /// Recent audio: the padding before an onset, or the whole utterance.
    history: VecDeque<f32>,
    /// Absolute sample index of history[0].
    history_start: u64,
    /// Absolute index of the next sample to be processed by the network.
    processed: u64,
    speech: Option<Speech>,
    /// Set once the network failed: the failure is reported once as
    /// [`VadEvent::Failed`] and the detector then reports nothing more.
    failed: Option<String>,
    /// A prompt is playing: speech must clear the barge-in threshold.
    prompt_playing: bool,
}

struct Speech {
    start: u64,
    /// Samples of speech seen (to tell clicks from words).
    voiced: u64,
    announced: bool,
    silence_since: Option<u64>,
    /// A lull was reported for the current stretch of silence.
    lull: bool,
    /// The current stretch of silence reached `pause_ms`.
    paused: bool,
}

impl SileroVad {
    pub fn new(model: Arc<SileroModel>, cfg: EndpointConfig) -> Self {
        SileroVad {
            model,
            cfg,
            state: [0.0; STATE_LEN],
            input: vec![0.0; CONTEXT],
            pending: Vec::new(),
            history: VecDeque::new(),
            history_start: 0,
            processed: 0,
            speech: None,
            failed: None,
            prompt_playing: false,
        }
    }

    fn ms(&self, samples: u64) -> u64 {
        samples * 1000 / RATE
    }

    fn samples(ms: u64) -> u64 {
        ms * RATE / 1000
    }

    fn window(&mut self, window: &[f32], events: &mut Vec<VadEvent>) {
        if self.failed.is_some() {
            return;
        }
        self.input.truncate(CONTEXT);
        self.input.extend_from_slice(window);
        let prob = match self.model.step(&self.input, &mut self.state) {
            Ok(p) => p,
            Err(e) => {
                let reason = e.to_string();
                self.failed = Some(reason.clone());
                self.speech = None;
                events.push(VadEvent::Failed { reason });
                return;
            }
        };
        let ctx_start = self.input.len() - CONTEXT;
        self.input.drain(..ctx_start);
        let win_start = self.processed;
        self.processed += window.len() as u64;
        let now = self.processed;
        let cfg = self.cfg.clone();
        let threshold = if self.prompt_playing { cfg.threshold } else { cfg.listening_threshold };
        // Hysteresis: once in speech, only a clearly lower probability
        // counts as silence. Listening harder changes when speech starts,
        // not when it ends: a lower end threshold would keep the caller
        // waiting a window longer after most words.
        let silence_threshold = (cfg.threshold - 0.15).min(threshold - 0.05).max(0.01);

        match self.speech.as_mut() {
            None if prob >= threshold => {
                self.speech = Some(Speech {
                    start: win_start,
                    voiced: window.len() as u64,
                    announced: false,
                    silence_since: None,
                    lull: false,
                    paused: false,
                });
            }
            None => {}
            Some(sp) => {
                if prob >= threshold {
                    sp.voiced += window.len() as u64;
                    sp.silence_since = None;
                    if sp.lull {
                        (sp.lull, sp.paused) = (false, false);
                        events.push(VadEvent::Resume { at_ms: win_start * 1000 / RATE });
                    }
                } else if prob < silence_threshold && sp.silence_since.is_none() {
                    sp.silence_since = Some(win_start);
                }
            }
        }
        let Some(sp) = self.speech.as_mut() else {
            self.trim_idle_history();
            return;
        };
        let min_speech = Self::samples(cfg.min_speech_ms);
        if !sp.announced && sp.voiced >= min_speech {
            sp.announced = true;
            events.push(VadEvent::SpeechStart { at_ms: sp.start * 1000 / RATE });
        }
        let too_long = now - sp.start >= Self::samples(cfg.max_utterance_ms);
        let ended = sp.silence_since.filter(|&s| now - s >= Self::samples(cfg.min_silence_ms));
        if ended.is_none() && !too_long {
            let (Some(quiet_since), Some(lull_ms), true) = (sp.silence_since, cfg.lull_ms(), sp.voiced >= min_speech)
            else {
                return;
            };
            let quiet = now - quiet_since;
            if !sp.lull && quiet >= Self::samples(lull_ms) {
                sp.lull = true;
                let start = sp.start;
                events.push(VadEvent::Lull(self.utterance(start, quiet_since)));
            }
            let Some(sp) = self.speech.as_mut() else { return };
            if sp.lull && !sp.paused && quiet >= Self::samples(cfg.pause_ms) {
                sp.paused = true;
                events.push(VadEvent::Pause { at_ms: now * 1000 / RATE });
            }
            return;
        }
        let speech_end = ended.unwrap_or(now);
        let (start, voiced) = (sp.start, sp.voiced);
        self.speech = None;
        if voiced >= min_speech {
            events.push(VadEvent::Utterance(self.utterance(start, speech_end)));
        }
        self.trim_idle_history();
    }

    /// The audio from `start` to `speech_end`, padded as configured.
    fn utterance(&self, start: u64, speech_end: u64) -> Utterance {
        let pad = Self::samples(self.cfg.speech_pad_ms);
        let from = start.saturating_sub(pad).max(self.history_start);
        let to = (speech_end + pad).min(self.history_start + self.history.len() as u64).max(from);
        let samples: Vec<f32> = self
            .history
            .range((from - self.history_start) as usize..(to - self.history_start) as usize)
            .copied()
            .collect();
        Utterance { start_ms: self.ms(start), end_ms: self.ms(speech_end), samples: Arc::new(samples) }
    }

    /// Outside speech, keep just enough audio for the padding before an onset.
    /// (`history` may already hold samples past `processed`: they stay.)
    fn trim_idle_history(&mut self) {
        if self.speech.is_some() {
            return;
        }
        let keep_from = self.processed.saturating_sub(Self::samples(self.cfg.speech_pad_ms) + WINDOW as u64);
        if keep_from > self.history_start {
            let drop = ((keep_from - self.history_start) as usize).min(self.history.len());
            self.history.drain(..drop);
            self.history_start += drop as u64;
        }
    }
}

impl VoiceDetector for SileroVad {
    fn accept(&mut self, samples: &[f32]) -> Vec<VadEvent> {
        let mut events = Vec::new();
        if self.failed.is_some() {
            return events;
        }
        self.history.extend(samples.iter().copied());
        self.pending.extend_from_slice(samples);
        let mut offset = 0;
        while self.pending.len() - offset >= WINDOW {
            let w: Vec<f32> = self.pending[offset..offset + WINDOW].to_vec();
            self.window(&w, &mut events);
            offset += WINDOW;
        }
        self.pending.drain(..offset);
        events
    }

    fn flush(&mut self) -> Vec<VadEvent> {
        let mut events = Vec::new();
        if self.failed.is_some() {
            return events;
        }
        // Pad the tail to a whole window, then close any open utterance as
        // if the caller had gone silent.
        if !self.pending.is_empty() {
            let mut w = std::mem::take(&mut self.pending);
            let real = w.len();
            w.resize(WINDOW, 0.0);
            self.history.extend(std::iter::repeat_n(0.0, WINDOW - real));
            self.window(&w, &mut events);
        }
        if let Some(sp) = self.speech.as_mut() {
            if sp.silence_since.is_none() {
                sp.silence_since = Some(self.processed);
            }
            let gap = Self::samples(self.cfg.min_silence_ms) as usize + WINDOW;
            let silence = vec![0.0; WINDOW];
            let mut fed = 0;
            while self.speech.is_some() && fed < gap {
                self.history.extend(silence.iter().copied());
                self.window(&silence, &mut events);
                fed += WINDOW;
            }
        }
        events
    }

    fn set_prompt_playing(&mut self, playing: bool) {
        self.prompt_playing = playing;
    }

    fn end_utterance(&mut self) {
        self.speech = None;
        self.trim_idle_history();
    }
}
