//! The real recordings in `../shared/testdata`, and what tests and
//! benchmarks do with them: telephone-band simulation, noise mixing and
//! word-error scoring.
use std::path::{Path, PathBuf};

/// `$HOTLINE_TESTDATA`, else `../shared/testdata` beside the source tree.
pub fn testdata_dir() -> PathBuf {
    std::env::var_os("HOTLINE_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata"))
}

/// One recording of a source folder and its transcript.
#[derive(Debug, Clone)]
pub struct TranscribedRecording {
    pub path: PathBuf,
    /// Lower-case words as spoken (`oh` for a spoken zero).
    pub text: String,
    pub speaker: String,
}

/// The clips of one source folder (`fsdd`, `speech_commands`, ...) from its
/// `TRANSCRIPTS.tsv`.
pub fn clips(data: &Path, source: &str) -> std::io::Result<Vec<TranscribedRecording>> {
    let dir = data.join(source);
    let tsv = std::fs::read_to_string(dir.join("TRANSCRIPTS.tsv"))?;
    Ok(tsv
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut f = line.split('\t');
            let (file, text, speaker) = (f.next()?, f.next()?, f.next()?);
            Some(TranscribedRecording { path: dir.join(file), text: text.to_string(), speaker: speaker.to_string() })
        })
        .collect())
}

/// Adds `noise` (looped, starting at an offset derived from `seed`) to
/// `speech` at the given signal-to-noise ratio in dB.
pub fn mix_noise(speech: &[f32], noise: &[f32], snr_db: f32, seed: u64) -> Vec<f32> {
    if noise.is_empty() {
        return speech.to_vec();
    }
    let power = |s: &[f32]| s.iter().map(|x| x * x).sum::<f32>() / s.len().max(1) as f32;
    let offset = (seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1) >> 33) as usize % noise.len();
    let segment: Vec<f32> = (0..speech.len()).map(|i| noise[(offset + i) % noise.len()]).collect();
    let (ps, pn) = (power(speech), power(&segment));
    if pn == 0.0 {
        return speech.to_vec();
    }
    let gain = (ps / (pn * 10f32.powf(snr_db / 10.0))).sqrt();
    speech.iter().zip(&segment).map(|(s, n)| (s + gain * n).clamp(-1.0, 1.0)).collect()
}

const UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 8] = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];

/// Words for scoring: lower case, no punctuation, no non-speech tags, and
/// numbers compared digit by digit whether written as words or numerals
/// ("ten of clubs" and "10 of clubs" both become "1 0 of clubs").
pub fn scoring_words(text: &str) -> Vec<String> {
    let cleaned = hotline::asr::sherpa::clean_transcript(text).to_lowercase();
    let raw: Vec<String> = cleaned
        .split(|c: char| c.is_whitespace() || c == '-' || c == ',')
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'').to_string())
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let w = raw[i].as_str();
        let number = if let Some(n) = UNITS.iter().position(|u| *u == w) {
            Some(n.to_string())
        } else if w == "oh" {
            Some("0".to_string())
        } else if let Some(t) = TENS.iter().position(|u| *u == w) {
            // "twenty one" -> 21
            let unit = raw.get(i + 1).and_then(|n| UNITS[1..10].iter().position(|u| u == n));
            if let Some(u) = unit {
                i += 1;
                Some(format!("{}{}", t + 2, u + 1))
            } else {
                Some(format!("{}0", t + 2))
            }
        } else if w.chars().all(|c| c.is_ascii_digit()) {
            Some(w.to_string())
        } else {
            None
        };
        match number {
            Some(digits) => out.extend(digits.chars().map(|c| c.to_string())),
            None => out.push(w.to_string()),
        }
        i += 1;
    }
    out
}

/// Word-level edit distance between reference and hypothesis, and the
/// reference length: WER = errors / words.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let r = scoring_words(reference);
    let h = scoring_words(hypothesis);
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(rw != hw)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    (prev[h.len()], r.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_digit_by_digit() {
        assert_eq!(scoring_words("Ten of clubs."), ["1", "0", "of", "clubs"]);
        assert_eq!(scoring_words("10 of clubs"), ["1", "0", "of", "clubs"]);
        assert_eq!(scoring_words("nine oh two"), ["9", "0", "2"]);
        assert_eq!(scoring_words("twenty one [Music]"), ["2", "1"]);
        assert_eq!(word_errors("ten of clubs", "10 of clubs."), (0, 4));
        assert_eq!(word_errors("go forward ten meters", "Go forward 10 meters."), (0, 5));
        assert_eq!(word_errors("yes", "Yes. Yes."), (1, 1));
        assert_eq!(word_errors("one two", ""), (2, 2));
    }

    #[test]
    fn noise_is_mixed_at_the_requested_level() {
        let speech: Vec<f32> = (0..16000).map(|i| 0.3 * (i as f32 * 0.1).sin()).collect();
        let noise: Vec<f32> = (0..5000).map(|i| ((i * 7919 % 200) as f32 / 100.0 - 1.0) * 0.2).collect();
        let mixed = mix_noise(&speech, &noise, 6.0, 3);
        let diff: Vec<f32> = mixed.iter().zip(&speech).map(|(m, s)| m - s).collect();
        let snr = hotline::audio::rms_dbfs(&speech) - hotline::audio::rms_dbfs(&diff);
        assert!((snr - 6.0).abs() < 0.2, "snr {snr}");
    }
}
