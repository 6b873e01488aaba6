//! Open transcription with Whisper (tiny.en or base) through sherpa-onnx.
use std::time::Instant;

use sherpa_onnx::{OfflineRecognizer, OfflineRecognizerConfig, OfflineWhisperModelConfig};

use super::models::{require, ModelPaths};
use super::{AsrError, Grammar, ModelError, Recognition, RecognitionError, Recognizer};

/// Whisper (int8) decoding freely. Knows no grammar: a grammar's
/// choice is left to the intent matcher downstream.
pub struct SherpaWhisper {
    recognizer: OfflineRecognizer,
}

#[derive(Debug, Clone)]
pub struct WhisperOptions {
    /// Zero feature frames (10 ms each) appended after the speech; the
    /// encoder cost grows with it. 0 = sherpa-onnx default (1000),
    /// 3000 = the full 30 s window.
    pub tail_paddings: i32,
    pub num_threads: i32,
}

impl Default for WhisperOptions {
    fn default() -> Self {
        WhisperOptions { tail_paddings: 0, num_threads: 1 }
    }
}

impl SherpaWhisper {
    pub fn load(paths: &ModelPaths, opts: &WhisperOptions) -> Result<Self, AsrError> {
        for p in [&paths.whisper_encoder, &paths.whisper_decoder, &paths.whisper_tokens] {
            require(p)?;
        }
        let s = |p: &std::path::Path| Some(p.to_string_lossy().into_owned());
        let mut c = OfflineRecognizerConfig::default();
        c.model_config.whisper = OfflineWhisperModelConfig {
            encoder: s(&paths.whisper_encoder),
            decoder: s(&paths.whisper_decoder),
            language: Some("en".into()),
            task: Some("transcribe".into()),
            tail_paddings: if opts.tail_paddings > 0 { opts.tail_paddings } else { -1 },
            enable_token_timestamps: false,
            enable_segment_timestamps: false,
        };
        c.model_config.tokens = s(&paths.whisper_tokens);
        c.model_config.num_threads = opts.num_threads.max(1);
        c.model_config.provider = Some("cpu".into());
        c.decoding_method = Some("greedy_search".into());
        let recognizer = OfflineRecognizer::create(&c).ok_or_else(|| {
            ModelError::Engine(paths.whisper_encoder.parent().unwrap_or(paths.whisper_encoder.as_path()).to_path_buf())
        })?;
        Ok(SherpaWhisper { recognizer })
    }
}

impl Recognizer for SherpaWhisper {
    fn recognize(&self, samples: &[f32], grammar: &Grammar) -> Result<Recognition, AsrError> {
        // Its language is fixed when it loads; decoding another language's
        // speech as English would only produce wrong words.
        if !grammar.language.is_english() {
            return Err(RecognitionError::EnglishOnlyEngine(grammar.language.code().to_string()).into());
        }
        let t0 = Instant::now();
        let stream = self.recognizer.create_stream();
        stream.accept_waveform(16_000, samples);
        self.recognizer.decode(&stream);
        let raw = stream.get_result().map(|r| r.text).unwrap_or_default();
        Ok(Recognition {
            text: clean_transcript(&raw),
            choice: None,
            confidence: 1.0,
            decode_ms: t0.elapsed().as_millis() as u64,
            prompt: String::new(),
            sentence: None,
            scores: None,
        })
    }
}

/// What an IVR should do with Whisper's output before using it: drop
/// non-speech tags (`[Music]`, `(wind blowing)`, `[BLANK_AUDIO]`) and
/// collapse repeat loops (`9 9 9 9` -> `9`, `down down down` -> `down`).
pub fn clean_transcript(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut depth = 0i32;
    for ch in raw.chars() {
        match ch {
            '[' | '(' => depth += 1,
            ']' | ')' => depth = (depth - 1).max(0),
            _ if depth == 0 => out.push(ch),
            _ => {}
        }
    }
    let words: Vec<&str> = out.split_whitespace().collect();
    let norm = |s: &str| s.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
    let mut kept: Vec<&str> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let mut j = i + 1;
        while j < words.len() && norm(words[j]) == norm(words[i]) {
            j += 1;
        }
        // Three or more in a row is a decoding loop: keep one. Two can be
        // real speech ("no no", "nine nine").
        if j - i >= 3 {
            kept.push(words[j - 1]);
        } else {
            kept.extend_from_slice(&words[i..j]);
        }
        i = j;
    }
    kept.join(" ")
}

#[cfg(test)]
mod tests {
    use super::clean_transcript;

    #[test]
    fn cleans_tags_and_loops() {
        assert_eq!(clean_transcript(" [Music]"), "");
        assert_eq!(clean_transcript(" (wind blowing) Yes."), "Yes.");
        assert_eq!(clean_transcript("down down down down"), "down");
        assert_eq!(clean_transcript("9 9 9 9 9."), "9.");
        assert_eq!(clean_transcript("No, no."), "No, no.");
        assert_eq!(clean_transcript("Press 1."), "Press 1.");
    }
}
