//! Whisper's log-mel frontend, computed the way the model was trained:
//! 16 kHz, 25 ms periodic Hann window (n_fft 400), 10 ms hop, centred frames
//! with reflect padding, power spectrum, 80 Slaney-style mel filters
//! (librosa's `filters.mel(sr=16000, n_fft=400, n_mels=80)`), then
//! `log10(max(x, 1e-10))`, clamped to 8 (i.e. 80 dB) below the loudest value
//! and scaled with `(x + 4) / 4`.
use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

pub const SAMPLE_RATE: usize = 16_000;
pub const N_FFT: usize = 400;
pub const HOP: usize = 160;
pub const N_MELS: usize = 80;
/// Frequency bins of one frame (n_fft / 2 + 1).
pub const N_BINS: usize = N_FFT / 2 + 1;
/// Frames of the window Whisper was trained on (30 s).
pub const FULL_FRAMES: usize = 3000;

/// A log-mel spectrogram, row-major `[N_MELS][frames]` (the model's layout).
#[derive(Debug, Clone)]
pub struct LogMel {
    pub data: Vec<f32>,
    pub frames: usize,
}

impl LogMel {
    pub fn at(&self, mel: usize, frame: usize) -> f32 {
        self.data[mel * self.frames + frame]
    }
}

pub struct MelFrontend {
    /// `[N_MELS][N_BINS]`.
    filters: Vec<f32>,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl Default for MelFrontend {
    fn default() -> Self {
        Self::new()
    }
}

impl MelFrontend {
    pub fn new() -> Self {
        let window = (0..N_FFT)
            .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos())
            .map(|w| w as f32)
            .collect();
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
        MelFrontend { filters: slaney_mel_filters(), window, fft }
    }

    /// Filter weight of mel band `mel` at FFT bin `bin`.
    pub fn filter(&self, mel: usize, bin: usize) -> f32 {
        self.filters[mel * N_BINS + bin]
    }

    /// Log-mel of `samples` (16 kHz) after appending zeros up to
    /// `total_samples` (no padding when it is smaller). Whisper pads the
    /// audio, not the features, so the silence frames look exactly like the
    /// ones it saw in training. Frames = total length / hop.
    pub fn log_mel(&self, samples: &[f32], total_samples: usize) -> LogMel {
        let len = samples.len().max(total_samples).max(1);
        let frames = (len / HOP).max(1);
        let pad = N_FFT / 2;
        // Centred frames with reflect padding (torch.stft(center=True)).
        let padded_len = len + 2 * pad;
        let sample_at = |i: isize| -> f32 {
            // Index into the zero-extended signal of length `len`.
            let get = |j: usize| samples.get(j).copied().unwrap_or(0.0);
            let n = len as isize;
            let mut j = i - pad as isize;
            if n == 1 {
                return get(0);
            }
            // Reflect without repeating the edge sample; folding twice covers
            // signals shorter than the padding.
            while j < 0 || j >= n {
                if j < 0 {
                    j = -j;
                }
                if j >= n {
                    j = 2 * (n - 1) - j;
                }
            }
            get(j as usize)
        };
        debug_assert!(padded_len >= N_FFT);
        let mut frame = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0f32; N_BINS];
        let mut out = vec![0f32; N_MELS * frames];
        for t in 0..frames {
            let start = (t * HOP) as isize;
            for (k, v) in frame.iter_mut().enumerate() {
                *v = sample_at(start + k as isize) * self.window[k];
            }
            // Lengths are fixed by construction, so processing cannot fail.
            if self.fft.process_with_scratch(&mut frame, &mut spectrum, &mut scratch).is_err() {
                continue;
            }
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for m in 0..N_MELS {
                let row = &self.filters[m * N_BINS..(m + 1) * N_BINS];
                let e: f32 = row.iter().zip(&power).map(|(w, p)| w * p).sum();
                out[m * frames + t] = e.max(1e-10).log10();
            }
        }
        let max = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for v in &mut out {
            *v = (v.max(max - 8.0) + 4.0) / 4.0;
        }
        LogMel { data: out, frames }
    }
}

/// Slaney mel scale: linear below 1 kHz, logarithmic above.
fn hz_to_mel(f: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if f >= min_log_hz {
        min_log_mel + (f / min_log_hz).ln() / logstep
    } else {
        f / f_sp
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if m >= min_log_mel {
        min_log_hz * (logstep * (m - min_log_mel)).exp()
    } else {
        f_sp * m
    }
}

/// librosa.filters.mel(sr=16000, n_fft=400, n_mels=80, htk=False,
/// norm="slaney"): triangles on the Slaney scale, each scaled to unit area.
fn slaney_mel_filters() -> Vec<f32> {
    let fmax = SAMPLE_RATE as f64 / 2.0;
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(fmax));
    let mel_f: Vec<f64> = (0..N_MELS + 2).map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (N_MELS + 1) as f64)).collect();
    let fft_freqs: Vec<f64> = (0..N_BINS).map(|k| k as f64 * fmax / (N_BINS - 1) as f64).collect();
    let mut w = vec![0f32; N_MELS * N_BINS];
    for m in 0..N_MELS {
        let enorm = 2.0 / (mel_f[m + 2] - mel_f[m]);
        let (d0, d1) = (mel_f[m + 1] - mel_f[m], mel_f[m + 2] - mel_f[m + 1]);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - mel_f[m]) / d0;
            let upper = (mel_f[m + 2] - f) / d1;
            w[m * N_BINS + k] = (lower.min(upper).max(0.0) * enorm) as f32;
        }
    }
    w
}
