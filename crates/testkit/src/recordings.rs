//! The real recordings the recogniser is measured on, turned into the
//! utterances a call would deliver: 16 kHz, telephone band, optional noise.
use std::path::{Path, PathBuf};

use hotline::audio::{read_wav, MODEL_RATE};

/// Silence added on each side of a tightly trimmed clip, as the VAD's speech
/// padding would leave it (ms).
pub const PAD_MS: usize = 300;

/// A recorded utterance as a call would deliver it, with what was said.
#[derive(Debug, Clone)]
pub struct TestUtterance {
    pub name: String,
    /// 16 kHz samples.
    pub samples: Vec<f32>,
    /// What was said (lower-case word; digits as words), empty for noise.
    pub truth: String,
}

pub const DIGIT_WORDS: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
pub const COMMAND_WORDS: [&str; 10] = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"];

pub use crate::testdata::testdata_dir as default_testdata;
pub use hotline::audio::phone_band;

fn pad(samples: Vec<f32>) -> Vec<f32> {
    let n = PAD_MS * MODEL_RATE as usize / 1000;
    let mut out = vec![0.0; n];
    out.extend(samples);
    out.extend(std::iter::repeat_n(0.0, n));
    out
}

fn load_16k(path: &Path) -> Result<Vec<f32>, String> {
    let audio = read_wav(path).map_err(|e| format!("{}: {e}", path.display()))?;
    audio.to_f32_at(MODEL_RATE).map_err(|e| format!("{}: {e}", path.display()))
}

/// FSDD's test split (takes 0–4 of every digit and speaker): genuine 8 kHz
/// recordings, upsampled to 16 kHz and padded with silence.
/// `per_digit_speaker` limits the takes used (1..=5).
pub fn fsdd_test(testdata: &Path, takes: usize) -> Result<Vec<TestUtterance>, String> {
    let dir = testdata.join("fsdd");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            n.ends_with(".wav")
                && n.trim_end_matches(".wav")
                    .rsplit('_')
                    .next()
                    .and_then(|t| t.parse::<usize>().ok())
                    .is_some_and(|t| t < takes.min(5))
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let digit: usize = n[..1].parse().map_err(|_| format!("{n}: name does not start with a digit"))?;
            let samples = pad(load_16k(&dir.join(&n))?);
            Ok(TestUtterance { name: format!("fsdd/{n}"), samples, truth: DIGIT_WORDS[digit].to_string() })
        })
        .collect()
}

/// Speech Commands clips (transcripts from `TRANSCRIPTS.tsv`) through the
/// phone band. `every` keeps every n-th row (1 = all) for quick runs.
pub fn speech_commands_phone(testdata: &Path, every: usize) -> Result<Vec<TestUtterance>, String> {
    speech_commands(testdata, every, true)
}

/// The same Speech Commands clips at their recorded 16 kHz, not through the
/// phone band: shows what the band costs.
pub fn speech_commands_wideband(testdata: &Path, every: usize) -> Result<Vec<TestUtterance>, String> {
    speech_commands(testdata, every, false)
}

fn speech_commands(testdata: &Path, every: usize, phone: bool) -> Result<Vec<TestUtterance>, String> {
    let dir = testdata.join("speech_commands");
    let tsv = dir.join("TRANSCRIPTS.tsv");
    let text = std::fs::read_to_string(&tsv).map_err(|e| format!("{}: {e}", tsv.display()))?;
    let mut clips = Vec::new();
    for (i, line) in text.lines().skip(1).enumerate() {
        if i % every.max(1) != 0 {
            continue;
        }
        let mut cols = line.split('\t');
        let (Some(file), Some(word)) = (cols.next(), cols.next()) else {
            return Err(format!("{}:{}: expected `file<TAB>text`", tsv.display(), i + 2));
        };
        let recorded = load_16k(&dir.join(file))?;
        let samples = pad(if phone { phone_band(&recorded) } else { recorded });
        clips.push(TestUtterance { name: format!("speech_commands/{file}"), samples, truth: word.to_string() });
    }
    Ok(clips)
}

/// Folders of real read sentences (`TRANSCRIPTS.tsv` in each).
pub const SENTENCE_SOURCES: [&str; 3] = ["cmu_arctic", "pocketsphinx", "whisper_jfk"];

/// Every real sentence recording through the phone band, sorted by path;
/// `truth` is its transcript.
pub fn sentences_phone(testdata: &Path) -> Result<Vec<TestUtterance>, String> {
    let mut clips = Vec::new();
    for source in SENTENCE_SOURCES {
        let found = crate::testdata::clips(testdata, source)
            .map_err(|e| format!("{}: {e}", testdata.join(source).display()))?;
        for c in found {
            let samples = pad(phone_band(&load_16k(&c.path)?));
            clips.push(TestUtterance {
                name: format!("{source}/{}", c.path.file_name().unwrap_or_default().to_string_lossy()),
                samples,
                truth: c.text,
            });
        }
    }
    clips.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(clips)
}

/// The noise recordings through the phone band, 16 kHz, whole.
pub fn noise_tracks(testdata: &Path) -> Result<Vec<Vec<f32>>, String> {
    noise(testdata, true)
}

/// The noise recordings as recorded (16 kHz, whole), for the wideband clips.
pub fn noise_tracks_wideband(testdata: &Path) -> Result<Vec<Vec<f32>>, String> {
    noise(testdata, false)
}

fn noise(testdata: &Path, phone: bool) -> Result<Vec<Vec<f32>>, String> {
    let dir = testdata.join("noise");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    names.sort();
    names.iter().map(|p| load_16k(p).map(|s| if phone { phone_band(&s) } else { s })).collect()
}

/// `count` noise-only clips of `ms` each, cut from the tracks.
pub fn noise_clips(tracks: &[Vec<f32>], count: usize, ms: usize) -> Vec<TestUtterance> {
    let len = ms * MODEL_RATE as usize / 1000;
    let mut out = Vec::new();
    for i in 0..count {
        let Some(track) = tracks.get(i % tracks.len().max(1)) else { break };
        if track.len() < len {
            continue;
        }
        let start = (i / tracks.len().max(1) * len * 3) % (track.len() - len + 1);
        out.push(TestUtterance {
            name: format!("noise#{i}"),
            samples: track[start..start + len].to_vec(),
            truth: String::new(),
        });
    }
    out
}

fn power(x: &[f32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    x.iter().map(|s| s * s).sum::<f32>() / x.len() as f32
}

/// Mixes noise into a clip at `snr_db`, measured over the speech part
/// (samples within 20 dB of the clip's loudest 10 ms).
pub fn add_noise(clip: &TestUtterance, noise: &[f32], snr_db: f32, seed: usize) -> TestUtterance {
    let speech_power = active_power(&clip.samples);
    let n = clip.samples.len();
    if noise.len() < n || speech_power <= 0.0 {
        return clip.clone();
    }
    let start = (seed.wrapping_mul(7919) * 160) % (noise.len() - n + 1);
    let seg = &noise[start..start + n];
    let gain = (speech_power / power(seg).max(1e-12) / 10f32.powf(snr_db / 10.0)).sqrt();
    let samples = clip.samples.iter().zip(seg).map(|(s, z)| (s + gain * z).clamp(-1.0, 1.0)).collect();
    TestUtterance { name: format!("{}+{snr_db}dB", clip.name), samples, truth: clip.truth.clone() }
}

/// The line `add_noise` puts `clip` on, with nobody speaking: `len`
/// samples of the same track at the same level, from elsewhere in it (what
/// the caller's line carries before they speak).
pub fn line_noise(clip: &TestUtterance, noise: &[f32], snr_db: f32, seed: usize, len: usize) -> Vec<f32> {
    let speech_power = active_power(&clip.samples);
    let n = clip.samples.len();
    if noise.len() < n.max(len) || speech_power <= 0.0 {
        return vec![0.0; len];
    }
    let start = (seed.wrapping_mul(7919) * 160) % (noise.len() - n + 1);
    let gain = (speech_power / power(&noise[start..start + n]).max(1e-12) / 10f32.powf(snr_db / 10.0)).sqrt();
    let other = (start + noise.len() / 2) % (noise.len() - len + 1);
    noise[other..other + len].iter().map(|z| (gain * z).clamp(-1.0, 1.0)).collect()
}

fn active_power(x: &[f32]) -> f32 {
    let win = 160;
    let powers: Vec<f32> = x.chunks(win).map(power).collect();
    let max = powers.iter().copied().fold(0.0, f32::max);
    let active: Vec<f32> = powers.into_iter().filter(|&p| p > max / 100.0).collect();
    if active.is_empty() {
        0.0
    } else {
        active.iter().sum::<f32>() / active.len() as f32
    }
}

/// The label a transcript (or a chosen digit string) stands for: lower-case
/// word, numerals turned into digit words, punctuation dropped.
pub fn normalise(text: &str) -> String {
    let t: String =
        text.chars().filter(|c| c.is_alphanumeric() || c.is_whitespace()).collect::<String>().to_lowercase();
    t.split_whitespace()
        .map(|w| match w.parse::<usize>() {
            Ok(d) if d < 10 && w.len() == 1 => DIGIT_WORDS[d].to_string(),
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}
