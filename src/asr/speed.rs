//! A recogniser hearing each utterance a little faster or slower. Whisper
//! mishears a word at one speed and not at another often enough that its
//! scores at two speeds, combined (see [`super::second_pass`]), are surer
//! than at one: a second opinion from the same model, at no cost in
//! memory.
use std::sync::Arc;

use super::{AsrError, Grammar, Recognition, RecognitionError, Recognizer};
use crate::audio::{resample, MODEL_RATE};

/// Speeds the config allows: beyond ±25 % words stop sounding like
/// themselves (and the resampler's rates stay in range).
pub const SPEEDS: std::ops::RangeInclusive<f32> = 0.8..=1.25;

pub struct AtSpeed {
    inner: Arc<dyn Recognizer>,
    /// The rate the utterance is resampled to and then played at 16 kHz:
    /// below 16 kHz it is heard faster (and higher).
    rate: u32,
}

impl AtSpeed {
    /// `speed` in [`SPEEDS`]: 1.1 hears every utterance 10 % faster.
    pub fn new(inner: Arc<dyn Recognizer>, speed: f32) -> Self {
        let speed = speed.clamp(*SPEEDS.start(), *SPEEDS.end());
        AtSpeed { inner, rate: (MODEL_RATE as f32 / speed).round() as u32 }
    }
}

impl Recognizer for AtSpeed {
    fn recognize(&self, samples: &[f32], grammar: &Grammar) -> Result<Recognition, AsrError> {
        let t0 = std::time::Instant::now();
        let faster = resample(samples, MODEL_RATE, self.rate).map_err(RecognitionError::from)?;
        let resample_ms = t0.elapsed().as_millis() as u64;
        let r = self.inner.recognize(&faster, grammar)?;
        Ok(Recognition { decode_ms: r.decode_ms + resample_ms, ..r })
    }

    fn prepare(&self, grammar: &Grammar) -> Result<(), AsrError> {
        self.inner.prepare(grammar)
    }
}
