//! Audio plumbing: PCM buffers, G.711, resampling and WAV files.
//!
//! Everything in hotline moves audio in 20 ms frames of signed 16-bit mono
//! PCM; the speech models want 16 kHz, telephone legs carry 8 kHz.
pub mod g711;
pub(crate) mod resample;
pub(crate) mod wav;

pub use resample::{resample, ResampleError, StreamResampler};
pub use wav::{read_wav, write_wav, Audio, WavError};

/// The unit of audio everywhere in hotline.
pub const FRAME_MS: u32 = 20;

/// Sample rate the speech models run at.
pub const MODEL_RATE: u32 = 16_000;

/// Samples in one 20 ms frame at `rate`.
pub fn frame_samples(rate: u32) -> usize {
    (rate as usize) * FRAME_MS as usize / 1000
}

/// Milliseconds covered by `samples` at `rate`.
pub fn samples_to_ms(samples: usize, rate: u32) -> u64 {
    samples as u64 * 1000 / rate as u64
}

pub fn i16_to_f32(samples: &[i16]) -> Vec<f32> {
    samples.iter().map(|&s| s as f32 / 32768.0).collect()
}

pub fn f32_to_i16(samples: &[f32]) -> Vec<i16> {
    samples.iter().map(|&s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16).collect()
}

/// Root-mean-square level of a buffer, in dBFS (-inf for digital silence).
pub fn rms_dbfs(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return f32::NEG_INFINITY;
    }
    let mean_sq = samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32;
    10.0 * mean_sq.log10()
}

/// What a phone line does to 16 kHz speech: down to 8 kHz, G.711 µ-law,
/// back up to 16 kHz for the models.
pub fn phone_band(samples_16k: &[f32]) -> Vec<f32> {
    // Both rates are fixed telephone rates, which rubato always accepts.
    const RATES_OK: &str = "8 and 16 kHz are valid resampling rates";
    let narrow = resample(samples_16k, 16_000, 8_000).expect(RATES_OK);
    let coded = g711::ulaw_decode_all(&g711::ulaw_encode_all(&f32_to_i16(&narrow)));
    resample(&i16_to_f32(&coded), 8_000, 16_000).expect(RATES_OK)
}
