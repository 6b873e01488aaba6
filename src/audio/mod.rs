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

/// How far a line's loudest stretches stand above its quietest, in dB: an
/// estimate of the signal-to-noise ratio of an utterance that carries some
/// of the line before and after the speech (the detector's speech pad).
/// The quietest tenth of its 20 ms frames is the line's noise, the loudest
/// tenth the speech. Capped at [`SNR_CAP_DB`], which is also what digital
/// silence around clear speech gives; too short a buffer to tell the two
/// apart gives the cap, so it is judged as a quiet line.
pub fn line_snr_db(samples_16k: &[f32]) -> f32 {
    let frame = frame_samples(MODEL_RATE);
    let mut powers: Vec<f32> =
        samples_16k.chunks_exact(frame).map(|f| f.iter().map(|s| s * s).sum::<f32>() / frame as f32).collect();
    if powers.len() < 10 {
        return SNR_CAP_DB;
    }
    powers.sort_by(f32::total_cmp);
    let tenth = powers.len() / 10;
    let mean = |p: &[f32]| p.iter().sum::<f32>() / p.len() as f32;
    let noise = mean(&powers[..tenth]);
    let speech = mean(&powers[powers.len() - tenth..]);
    if speech <= 0.0 {
        return SNR_CAP_DB;
    }
    (10.0 * (speech / noise.max(1e-12)).log10()).min(SNR_CAP_DB)
}

/// The highest [`line_snr_db`]: beyond it a line is as good as silent.
pub const SNR_CAP_DB: f32 = 60.0;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// 1 s of a steady 440 Hz "voice" at `level` between `pad_ms` of
    /// `noise` amplitude on each side and under it.
    fn utterance(level: f32, noise: f32, pad_ms: usize) -> Vec<f32> {
        let pad = pad_ms * 16;
        let mut seed = 1u32;
        (0..16_000 + 2 * pad)
            .map(|i| {
                // A small LCG: white noise, the same on every run.
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let hiss = noise * ((seed >> 8) as f32 / (1 << 24) as f32 * 2.0 - 1.0);
                let speaking = (pad..pad + 16_000).contains(&i);
                let tone =
                    if speaking { level * (i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin() } else { 0.0 };
                tone + hiss
            })
            .collect()
    }

    #[test]
    fn a_line_snr_is_the_speech_over_the_hiss_around_it() {
        // Tone power 0.125 (0.5 amplitude); uniform hiss of amplitude a has
        // power a²/3: 0.05 → 21.8 dB below the tone, 0.2 → 9.7 dB (the
        // loudest frames carry the hiss too: 10.2 dB).
        let clear = line_snr_db(&utterance(0.5, 0.05, 200));
        let noisy = line_snr_db(&utterance(0.5, 0.2, 200));
        assert!((20.8..22.8).contains(&clear), "{clear}");
        assert!((9.2..11.2).contains(&noisy), "{noisy}");
        assert!(line_snr_db(&utterance(0.01, 0.2, 200)) < 1.0, "hiss alone stands at 0 dB");
    }

    #[test]
    fn digital_silence_and_short_buffers_count_as_a_quiet_line() {
        assert_eq!(line_snr_db(&utterance(0.5, 0.0, 200)), SNR_CAP_DB);
        assert_eq!(line_snr_db(&vec![0.0; 16_000]), SNR_CAP_DB);
        assert_eq!(line_snr_db(&utterance(0.5, 0.2, 0)[..3000]), SNR_CAP_DB, "under ten frames");
        assert_eq!(line_snr_db(&[]), SNR_CAP_DB);
    }
}
