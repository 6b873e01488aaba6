//! Sample-rate conversion with rubato (FFT-based, anti-aliased).
use rubato::{FftFixedIn, FftFixedInOut, Resampler};

use super::wav::{MAX_RATE, MIN_RATE};

/// Why a buffer could not be resampled.
#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    /// Checked here rather than trusted: rubato divides by zero on a 0 Hz
    /// rate and allocates an FFT the size of the rate for coprime ones.
    #[error("cannot resample from {from} Hz to {to} Hz: hotline resamples between {MIN_RATE} and {MAX_RATE} Hz")]
    Rate { from: u32, to: u32 },
    #[error("cannot resample from {from} Hz to {to} Hz: {source}")]
    Setup { from: u32, to: u32, source: rubato::ResamplerConstructionError },
    #[error("resampling from {from} Hz to {to} Hz failed: {source}")]
    Process { from: u32, to: u32, source: rubato::ResampleError },
}

/// Resamples a whole buffer, compensating the resampler's delay so the
/// output lines up with the input in time.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, ResampleError> {
    if ![from, to].iter().all(|rate| (MIN_RATE..=MAX_RATE).contains(rate)) {
        return Err(ResampleError::Rate { from, to });
    }
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    const CHUNK: usize = 1024;
    let mut r = FftFixedIn::<f32>::new(from as usize, to as usize, CHUNK, 2, 1)
        .map_err(|source| ResampleError::Setup { from, to, source })?;
    let failed = |source| ResampleError::Process { from, to, source };
    let delay = r.output_delay();
    let expected = (samples.len() as u64 * to as u64 / from as u64) as usize;
    let mut out = Vec::with_capacity(expected + delay + CHUNK * 2);
    let mut pos = 0;
    while pos + CHUNK <= samples.len() {
        let block = r.process(&[&samples[pos..pos + CHUNK]], None).map_err(failed)?;
        out.extend(block.into_iter().next().into_iter().flatten());
        pos += CHUNK;
    }
    // Push the remainder, then zeros until the delayed tail has come out.
    let tail = &samples[pos..];
    // rubato rejects an empty partial chunk (when the length is a multiple
    // of CHUNK); there is nothing to push then.
    if !tail.is_empty() {
        let block = r.process_partial(Some(&[tail]), None).map_err(failed)?;
        out.extend(block.into_iter().next().into_iter().flatten());
    }
    while out.len() < expected + delay {
        let block = r.process_partial::<&[f32]>(None, None).map_err(failed)?;
        match block.into_iter().next() {
            Some(channel) if !channel.is_empty() => out.extend(channel),
            _ => break,
        }
    }
    out.drain(..delay.min(out.len()));
    out.truncate(expected);
    Ok(out)
}

/// Converts a live stream frame by frame (20 ms in, 20 ms out).
///
/// Introduces a fixed delay of a few milliseconds, which is irrelevant for
/// speech detection but means the first output frame starts with silence.
pub struct StreamResampler {
    inner: Option<FftFixedInOut<f32>>,
    pending: Vec<f32>,
    chunk_in: usize,
}

impl StreamResampler {
    pub fn new(from: u32, to: u32) -> Self {
        let chunk_in = super::frame_samples(from);
        let inner = (from != to).then(|| {
            FftFixedInOut::<f32>::new(from as usize, to as usize, chunk_in, 1)
                .expect("telephone rates (8/16/48 kHz) are valid for rubato")
        });
        let chunk_in = inner.as_ref().map_or(chunk_in, |r| r.input_frames_next());
        StreamResampler { inner, pending: Vec::new(), chunk_in }
    }

    /// Feeds any number of samples; returns whatever output is ready.
    pub fn push(&mut self, samples: &[f32]) -> Vec<f32> {
        let Some(r) = self.inner.as_mut() else {
            return samples.to_vec();
        };
        self.pending.extend_from_slice(samples);
        let mut out = Vec::new();
        while self.pending.len() >= self.chunk_in {
            let block: Vec<f32> = self.pending.drain(..self.chunk_in).collect();
            // A frame rubato rejects is dropped: the call hears a 20 ms gap
            // rather than ending.
            if let Ok(res) = r.process(&[&block], None) {
                out.extend(res.into_iter().next().into_iter().flatten());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{g711, rms_dbfs};

    fn tone(freq: f32, rate: u32, secs: f32, amp: f32) -> Vec<f32> {
        let n = (rate as f32 * secs) as usize;
        (0..n).map(|i| amp * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin()).collect()
    }

    /// Frequency estimate from zero crossings, away from the edges.
    fn frequency(samples: &[f32], rate: u32) -> f32 {
        let s = &samples[samples.len() / 10..samples.len() * 9 / 10];
        let crossings = s.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
        crossings as f32 / 2.0 / (s.len() as f32 / rate as f32)
    }

    #[test]
    fn tone_keeps_frequency_and_level_through_resampling() {
        let x = tone(1000.0, 16_000, 1.0, 0.5);
        let down = resample(&x, 16_000, 8_000).unwrap();
        assert_eq!(down.len(), 8_000);
        let up = resample(&down, 8_000, 16_000).unwrap();
        assert_eq!(up.len(), 16_000);
        for (sig, rate) in [(&down, 8_000), (&up, 16_000)] {
            let f = frequency(sig, rate);
            assert!((f - 1000.0).abs() < 5.0, "frequency {f} at {rate}");
            let level = rms_dbfs(&sig[sig.len() / 10..sig.len() * 9 / 10]);
            let want = rms_dbfs(&x);
            assert!((level - want).abs() < 0.5, "level {level} vs {want}");
        }
        // Aligned in time: the round trip correlates with the original.
        let dot: f32 = x.iter().zip(&up).map(|(a, b)| a * b).sum();
        let norm = (x.iter().map(|a| a * a).sum::<f32>() * up.iter().map(|b| b * b).sum::<f32>()).sqrt();
        assert!(dot / norm > 0.95, "correlation {}", dot / norm);
    }

    #[test]
    fn tone_keeps_frequency_and_level_through_ulaw() {
        let x = tone(1000.0, 8_000, 1.0, 0.3);
        let pcm = crate::audio::f32_to_i16(&x);
        let back = crate::audio::i16_to_f32(&g711::ulaw_decode_all(&g711::ulaw_encode_all(&pcm)));
        assert!((frequency(&back, 8_000) - 1000.0).abs() < 5.0);
        assert!((rms_dbfs(&back) - rms_dbfs(&x)).abs() < 0.3);
        let back_a = crate::audio::i16_to_f32(&g711::alaw_decode_all(&g711::alaw_encode_all(&pcm)));
        assert!((rms_dbfs(&back_a) - rms_dbfs(&x)).abs() < 0.3);
    }

    #[test]
    fn length_that_is_a_multiple_of_the_chunk_resamples() {
        let x: Vec<f32> = (0..2048).map(|i| 0.5 * (i as f32 * 0.1).sin()).collect();
        assert_eq!(resample(&x, 22_050, 16_000).unwrap().len(), 2048 * 16_000 / 22_050);
    }

    #[test]
    fn unusable_rate_is_an_error_naming_it_not_a_panic() {
        let x = tone(1000.0, 16_000, 0.1, 0.5);
        for (from, to) in [(0, 16_000), (16_000, 0), (16_000, 1_000_003), (7_999, 8_000)] {
            let err = resample(&x, from, to).expect_err("rate outside 8-48 kHz");
            assert!(err.to_string().contains(&format!("from {from} Hz to {to} Hz")), "{err}");
        }
    }

    #[test]
    fn stream_resampler_makes_20ms_frames() {
        let x = tone(1000.0, 8_000, 1.0, 0.5);
        let mut r = StreamResampler::new(8_000, 16_000);
        let mut out = Vec::new();
        for frame in x.chunks(160) {
            let o = r.push(frame);
            assert_eq!(o.len(), 320);
            out.extend(o);
        }
        assert!((frequency(&out, 16_000) - 1000.0).abs() < 5.0);
    }
}
