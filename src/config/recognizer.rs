//! `[recognizer]`: the recognition threads and their queue, the Whisper
//! model(s), and how the grammar recogniser weighs menu options.
use super::problems::Problems;
use super::raw::RawRecognizer;
use crate::asr::models::WhisperModelName;
use crate::asr::speed::SPEEDS;
use crate::asr::whisper::{GrammarOptions, Padding, SECOND_PASS_CONTEXT_MS};
use crate::asr::SecondPassConfig;
use crate::dialplan::At;

/// `second_model = "none"`: no second pass.
const SECOND_MODEL_OFF: &str = "none";

/// The dialplans' default `accept`: below it the caller would be asked, so
/// that is where a second opinion is worth its CPU.
const SECOND_ACCEPT: f32 = crate::dialplan::DEFAULT_ACCEPT;

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
        noisy_evidence: nats("recognizer.noisy_evidence", &raw.noisy_evidence, grammar_default.noisy_evidence),
        max_prior_correction: nats(
            "recognizer.prior_correction",
            &raw.prior_correction,
            grammar_default.max_prior_correction,
        ),
        padding: Padding::Utterance { margin_ms: context_ms },
        ..grammar_default
    };
    let model = model_name(problems, "recognizer.model", &raw.model).unwrap_or_default();
    let second_model = match &raw.second_model {
        Some(v) if v.value == SECOND_MODEL_OFF => None,
        Some(_) => model_name(problems, "recognizer.second_model", &raw.second_model),
        // `second_speed` alone names the first model as the second pass.
        None if raw.second_speed.is_some() => None,
        None => crate::asr::default_second_model(model),
    };
    let second_accept = match &raw.second_accept {
        None => SECOND_ACCEPT,
        Some(v) if v.value > 0.0 && v.value <= 1.0 => v.value as f32,
        Some(v) => {
            problems.field(&v.span, "recognizer.second_accept", format!("{} is out of range 0 < x ≤ 1", v.value));
            SECOND_ACCEPT
        }
    };
    let second_speed = match &raw.second_speed {
        None => 1.0,
        Some(v) if SPEEDS.contains(&(v.value as f32)) => v.value as f32,
        Some(v) => {
            problems.field(&v.span, "recognizer.second_speed", format!("{} is out of range {SPEEDS:?}", v.value));
            1.0
        }
    };
    // The first model again is a second opinion only when it hears the
    // utterance at another speed; it keeps its own context.
    let other_model = second_model.filter(|&m| m != model);
    let on = second_model.is_some() || raw.second_speed.is_some();
    if on && other_model.is_none() && second_speed == 1.0 {
        let span = raw.second_speed.as_ref().map(|v| &v.span).or(raw.second_model.as_ref().map(|v| &v.span));
        problems.field(
            span.unwrap_or(&(0..0)),
            if raw.second_speed.is_some() { "recognizer.second_speed" } else { "recognizer.second_model" },
            "the first model at the same speed would hear the same thing twice: set `second_speed` (e.g. 1.1) or name another `second_model`",
        );
    }
    if let (None, Some(ms)) = (other_model, &raw.second_context_ms) {
        problems.field(
            &ms.span,
            "recognizer.second_context_ms",
            "is for a `second_model` other than the first; the first model keeps its `context_ms`",
        );
    }
    let second_pass = on
        .then(|| SecondPassConfig::new(model, &grammar, second_model, second_context_ms, second_speed, second_accept));
    Recognizer { threads, queue, model, second_pass, grammar }
}

/// A model folder name, `None` when absent or (reported) unknown.
fn model_name(problems: &mut Problems, field: &str, value: &Option<At<String>>) -> Option<WhisperModelName> {
    let v = value.as_ref()?;
    v.value.parse::<WhisperModelName>().map_err(|why| problems.field(&v.span, field, why.to_string())).ok()
}
