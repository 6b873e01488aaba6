//! `[recognizer]`: the recognition threads and their queue, the Whisper
//! model(s), and how the grammar recogniser weighs menu options.
use super::problems::Problems;
use super::raw::RawRecognizer;
use crate::asr::models::{ModelPaths, WhisperModelName};
use crate::asr::whisper::{GrammarOptions, Padding, SECOND_PASS_CONTEXT_MS};
use crate::asr::SecondPassConfig;
use crate::dialplan::At;

/// The dialplans' default `accept`: below it the caller would be asked, so
/// that is where a second opinion is worth its CPU.
const SECOND_ACCEPT: f32 = 0.85;

pub(super) struct Recognizer {
    pub threads: usize,
    pub queue: usize,
    pub model: WhisperModelName,
    pub second_pass: Option<SecondPassConfig>,
    pub grammar: GrammarOptions,
}

pub(super) fn validate(raw: &RawRecognizer, problems: &mut Problems) -> Recognizer {
    let threads = problems.int_in("recognizer.threads", &raw.threads, 0, 0..=64) as usize;
    let queue = problems.int_in("recognizer.queue", &raw.queue, 64, 1..=10_000) as usize;
    let grammar_default = GrammarOptions::default();
    // Audio the encoder sees beyond the utterance; Whisper reads words
    // better with a few seconds around them, at a cost in CPU.
    let context_default = i64::from(grammar_default.context_ms());
    let context_ms = problems.int_in("recognizer.context_ms", &raw.context_ms, context_default, 0..=25_000) as u32;
    let second_context_ms = problems.int_in(
        "recognizer.second_context_ms",
        &raw.second_context_ms,
        i64::from(SECOND_PASS_CONTEXT_MS),
        0..=25_000,
    ) as u32;
    // How sure the grammar recogniser must be that the caller said an
    // option (noisy lines: raise it) and how far it corrects for the
    // words Whisper prefers anyway.
    let mut nats = |key: &str, value: &Option<At<f64>>, default: f32| match value {
        None => default,
        Some(v) if (0.0..=20.0).contains(&v.value) => v.value as f32,
        Some(v) => {
            problems.field(&v.span, key, format!("{} is out of range 0..=20 (nats)", v.value));
            default
        }
    };
    let grammar = GrammarOptions {
        min_evidence: nats("recognizer.min_evidence", &raw.min_evidence, grammar_default.min_evidence),
        max_prior_correction: nats(
            "recognizer.prior_correction",
            &raw.prior_correction,
            grammar_default.max_prior_correction,
        ),
        padding: Padding::Utterance { margin_ms: context_ms },
        ..grammar_default
    };
    let model = model_name(problems, "recognizer.model", &raw.model).unwrap_or_default();
    let second_model = model_name(problems, "recognizer.second_model", &raw.second_model);
    let second_accept = match &raw.second_accept {
        None => SECOND_ACCEPT,
        Some(v) if v.value > 0.0 && v.value <= 1.0 => v.value as f32,
        Some(v) => {
            problems.field(&v.span, "recognizer.second_accept", format!("{} is out of range 0 < x ≤ 1", v.value));
            SECOND_ACCEPT
        }
    };
    let second_pass = second_model.map(|m| SecondPassConfig {
        models: ModelPaths::for_whisper(m),
        grammar: GrammarOptions { padding: Padding::Utterance { margin_ms: second_context_ms }, ..grammar.clone() },
        clear: second_accept,
    });
    Recognizer { threads, queue, model, second_pass, grammar }
}

/// A model folder name, `None` when absent or (reported) unknown.
fn model_name(problems: &mut Problems, field: &str, value: &Option<At<String>>) -> Option<WhisperModelName> {
    let v = value.as_ref()?;
    v.value.parse::<WhisperModelName>().map_err(|why| problems.field(&v.span, field, why.to_string())).ok()
}
