//! Runs a voice detector for a call on the driver's thread, turning what it
//! hears into the machine's inputs: for drivers that go through audio in
//! order without waiting (replay, the machine's tests). The live server
//! scores windows on the batched detector thread instead
//! (`server::session::voice`).
use super::{Call, Input};
use crate::asr::VoiceDetector;
use crate::audio::MODEL_RATE;

pub struct VoiceFeed<D> {
    detector: D,
    /// Call time of the first sample the detector heard.
    origin: Option<u64>,
}

impl<D: VoiceDetector> VoiceFeed<D> {
    pub fn new(detector: D) -> Self {
        VoiceFeed { detector, origin: None }
    }

    /// Runs the detector over `samples` (16 kHz, ending at call time
    /// `now`) and returns what the machine must be told. Nothing is run
    /// once the call no longer hears speech.
    pub fn hear(&mut self, call: &Call, now: u64, samples: &[f32]) -> Vec<Input> {
        let duration = samples.len() as u64 * 1000 / MODEL_RATE as u64;
        let origin = *self.origin.get_or_insert(now.saturating_sub(duration));
        if !call.hears_speech() {
            return Vec::new();
        }
        self.detector.set_prompt_playing(call.prompt_playing());
        self.detector.accept(samples).into_iter().map(|e| Input::Voice(e.on_call_clock(origin))).collect()
    }

    /// `Output::ForgetUtterance`.
    pub fn forget_utterance(&mut self) {
        self.detector.end_utterance();
    }
}
