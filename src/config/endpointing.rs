//! `[endpointing]`: when the detector counts sound as speech and when an
//! utterance is over (most of the caller's wait for an answer).
use super::problems::Problems;
use super::raw::RawEndpointing;
use crate::asr::EndpointConfig;
use crate::dialplan::At;

pub(super) fn validate(raw: &RawEndpointing, problems: &mut Problems) -> EndpointConfig {
    let default = EndpointConfig::default();
    let ms = |v: u64| v as i64;
    // The silence that ends an utterance is the largest part of the
    // caller's wait; too short and a pause between digits splits them.
    let min_silence =
        problems.int_in("endpointing.min_silence_ms", &raw.min_silence_ms, ms(default.min_silence_ms), 100..=5_000);
    // 0 turns early answers off; a pause as long as the end silence
    // would never come first.
    let pause = problems.int_in("endpointing.pause_ms", &raw.pause_ms, ms(default.pause_ms), 0..=min_silence - 50);
    let min_speech =
        problems.int_in("endpointing.min_speech_ms", &raw.min_speech_ms, ms(default.min_speech_ms), 0..=2_000);
    let speech_pad =
        problems.int_in("endpointing.speech_pad_ms", &raw.speech_pad_ms, ms(default.speech_pad_ms), 0..=1_000);
    let max_utterance = problems.int_in(
        "endpointing.max_utterance_ms",
        &raw.max_utterance_ms,
        ms(default.max_utterance_ms),
        1_000..=30_000,
    );
    let mut probability = |key: &str, value: &Option<At<f64>>, default: f32| match value {
        None => default,
        Some(t) if (0.05..=0.95).contains(&t.value) => t.value as f32,
        Some(t) => {
            problems.field(&t.span, key, format!("{} is out of range 0.05..=0.95", t.value));
            default
        }
    };
    let threshold = probability("endpointing.threshold", &raw.threshold, default.threshold);
    let listening_threshold =
        probability("endpointing.listening_threshold", &raw.listening_threshold, default.listening_threshold);
    EndpointConfig {
        threshold,
        listening_threshold,
        min_silence_ms: min_silence as u64,
        pause_ms: pause as u64,
        min_speech_ms: min_speech as u64,
        speech_pad_ms: speech_pad as u64,
        max_utterance_ms: max_utterance as u64,
        restart_when_listening: raw.restart_when_listening.as_ref().map_or(default.restart_when_listening, |f| f.value),
    }
}
