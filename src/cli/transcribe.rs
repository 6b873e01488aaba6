//! `hotline transcribe FILE...`: one JSON line per utterance.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::asr::models::{ModelPaths, WhisperModelName};
use crate::asr::{
    AsrError, Grammar, Recognition, RecognitionError, SpeechConfig, SpeechStack, Utterance, VadEvent, VoiceDetector,
};
use crate::audio::{read_wav, MODEL_RATE};
use crate::intent::{parse_digits, Candidate, TextMatcher};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// WAV files (16-bit PCM, 8-48 kHz, mono or stereo).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Recognition threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Whisper model: whisper-tiny.en or whisper-base (a folder of the models folder).
    #[arg(long, default_value_t = WhisperModelName::default())]
    pub model: WhisperModelName,
    /// Silence (ms) that ends an utterance.
    #[arg(long, default_value_t = 500)]
    pub min_silence_ms: u64,
    /// Recognise against a grammar, as a menu would: `digits` (any length),
    /// `digits:N-M` or `digits:N`, a comma-separated phrase list
    /// (`yes,no,stop,go`), `MENU@dialplan.toml` (a menu as callers are
    /// heard in it) or `MENU/OPTION@dialplan.toml` (that option's `collect`
    /// step).
    #[arg(long)]
    pub grammar: Option<String>,
}

#[derive(Serialize)]
struct GrammarLine<'a> {
    file: &'a str,
    start_ms: u64,
    end_ms: u64,
    /// The chosen option's label or the digits, decided as a call decides
    /// (see `as_a_call_decides`); empty when nothing fits.
    text: &'a str,
    confidence: f32,
    open_text: &'a str,
    /// The decoder prompt by token name: the language the recogniser
    /// listened for (`<|zh|>` for a dialplan with `language = "zh"`).
    #[serde(skip_serializing_if = "str::is_empty")]
    prompt: &'a str,
    /// Slot values the sentence names for the chosen option (`MENU@file`
    /// grammars whose options take slots), found as a call finds them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    slots: BTreeMap<String, String>,
    /// The words the slots were read from when they are not `open_text`:
    /// the sentence the recogniser found the option in, and the details it
    /// put back where the transcript misheard them ("4 Queen of Clubs").
    #[serde(skip_serializing_if = "Option::is_none")]
    sentence: Option<&'a str>,
    decode_ms: u64,
}

#[derive(Serialize)]
struct Line<'a> {
    file: &'a str,
    start_ms: u64,
    end_ms: u64,
    text: &'a str,
    decode_ms: u64,
}

pub use grammar_spec::GrammarSpecError;

/// Why `hotline transcribe` transcribed nothing.
#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    /// Exit 2.
    #[error("--grammar: {0}")]
    Grammar(#[from] GrammarSpecError),
    /// The speech models did not load: exit 1.
    #[error(transparent)]
    Models(AsrError),
    /// The recogniser could not ready the grammar: exit 1.
    #[error("--grammar: {0}")]
    Prepare(AsrError),
}

impl TranscribeError {
    pub fn exit_code(&self) -> u8 {
        match self {
            TranscribeError::Grammar(_) => super::error::BAD_INPUT,
            TranscribeError::Models(_) | TranscribeError::Prepare(_) => super::error::FAILED,
        }
    }
}

/// Exit codes: 0 all files transcribed, 2 some file could not be read (each
/// said on stderr; the others are still transcribed), and the codes of
/// [`TranscribeError`].
pub fn run(args: Args) -> Result<u8, TranscribeError> {
    let spec = args.grammar.as_deref().map(grammar_spec::parse).transpose()?.unwrap_or_default();
    let mut cfg =
        SpeechConfig { threads: args.threads, models: ModelPaths::for_whisper(args.model), ..Default::default() };
    cfg.endpoint.min_silence_ms = args.min_silence_ms;
    let heard = Heard { spec, min_speech_ms: cfg.endpoint.min_speech_ms, with_grammar: args.grammar.is_some() };
    match args.grammar {
        // With a grammar, unsure answers get the second pass a call gives them.
        Some(_) => cfg.second_pass = crate::asr::SecondPassConfig::default_after(args.model, &cfg.grammar),
        // Free transcription of whole sentences is sherpa-onnx's Whisper
        // (beam-free but with its tuned padding, 9-14 % WER on read
        // speech); the grammar recogniser is for what a menu allows.
        None => {
            cfg.engine = crate::asr::Engine::Sherpa;
            cfg.second_pass = None;
        }
    }
    let stack = SpeechStack::load(&cfg).map_err(TranscribeError::Models)?;
    // As the server does when a dialplan goes into service: the grammar's
    // one-time preparation must not count in the first file's decode_ms.
    stack.recognizer.prepare(&heard.spec.grammar).map_err(TranscribeError::Prepare)?;
    let mut code = 0;
    for file in &args.files {
        if let Err(source) = transcribe_file(&stack, file, &heard) {
            // Said now, as the others go on: the one line this file gets.
            let failure = FileFailure { path: file.clone(), source };
            super::error::print_error(&failure, super::error::BAD_INPUT);
            code = super::error::BAD_INPUT;
        }
    }
    Ok(code)
}

/// One file that could not be transcribed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", .path.display())]
struct FileFailure {
    path: PathBuf,
    source: FileError,
}

#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error(transparent)]
    Wav(#[from] crate::audio::WavError),
    #[error(transparent)]
    Asr(#[from] AsrError),
    #[error(transparent)]
    Resample(#[from] crate::audio::ResampleError),
}

fn transcribe_file(stack: &SpeechStack, file: &std::path::Path, heard: &Heard) -> Result<(), FileError> {
    let audio = read_wav(file)?;
    if let Some(ch) = audio.downmixed_from {
        eprintln!("hotline: {}: {ch} channels averaged to mono", file.display());
    }
    let samples = audio.to_f32_at(MODEL_RATE)?;
    let mut vad = stack.detector();
    let mut events = vad.accept(&samples);
    events.extend(vad.flush());
    if let Some(reason) = events.iter().find_map(|e| match e {
        VadEvent::Failed { reason } => Some(reason.clone()),
        _ => None,
    }) {
        return Err(AsrError::from(RecognitionError::VoiceDetection(reason)).into());
    }
    let grammar = &heard.spec.grammar;
    // Queue every utterance first so the pool decodes them in parallel.
    let mut pending = Vec::new();
    for ev in events {
        if let VadEvent::Utterance(u) = ev {
            let rx = stack.pool.submit(Arc::clone(&u.samples), Arc::clone(grammar));
            pending.push((u, rx));
        }
    }
    let name = file.display().to_string();
    // Words a call could not act on yet, waiting for the next utterance as
    // a call waits for the caller to go on (`incomplete_timeout`).
    let mut held: Option<(Utterance, Recognition)> = None;
    for (u, rx) in pending {
        let mut rec = match rx {
            Ok(rx) => rx.blocking_recv().unwrap_or_else(|_| Err(RecognitionError::WorkerStopped.into())),
            // The queue is full: decode this one here rather than lose it.
            Err(_) => stack.recognizer.recognize(&u.samples, grammar),
        }?;
        let mut u = u;
        if let Some((before, before_rec)) = held.take() {
            // As in a call: the detector tells speech has resumed once it
            // has heard `min_speech_ms` of it.
            let resumed_ms = u.start_ms + heard.min_speech_ms;
            let joined =
                (resumed_ms < before.end_ms + heard.spec.incomplete_ms).then(|| before.followed_by(&u)).flatten();
            match joined {
                Some(joined) => {
                    rec = stack.recognizer.recognize(&joined.samples, grammar)?;
                    u = joined;
                }
                None => {
                    if !print_recognition(&name, &before, &before_rec, heard) {
                        return Ok(());
                    }
                }
            }
        }
        if heard.with_grammar && heard.spec.incomplete_ms > 0 && heard.leaves_answer_open(&rec) {
            held = Some((u, rec));
            continue;
        }
        if !print_recognition(&name, &u, &rec, heard) {
            return Ok(());
        }
    }
    if let Some((u, rec)) = held {
        print_recognition(&name, &u, &rec, heard);
    }
    Ok(())
}

/// What `--grammar` listens for, and how a call would treat the answers.
struct Heard {
    spec: grammar_spec::Spec,
    /// Speech the detector needs to hear before it tells speech resumed.
    min_speech_ms: u64,
    with_grammar: bool,
}

impl Heard {
    /// As a call decides whether the caller may go on (see
    /// [`crate::call::leaves_answer_open`]).
    fn leaves_answer_open(&self, rec: &Recognition) -> bool {
        let (chosen, confidence) = as_a_call_decides(rec, &self.spec.grammar);
        let sure = match self.spec.grammar.choices.iter().any(|c| c.label == chosen) {
            _ if chosen.is_empty() => None,
            true => Some(confidence),
            false => Some(1.0), // digits: taken as they are
        };
        crate::call::leaves_answer_open(sure, self.spec.slots.contains_key(&chosen), self.spec.thresholds)
    }
}

/// Prints one line; false when stdout is gone.
fn print_recognition(name: &str, u: &Utterance, rec: &Recognition, heard: &Heard) -> bool {
    let json = if heard.with_grammar {
        let (chosen, confidence) = as_a_call_decides(rec, &heard.spec.grammar);
        let uses = heard.spec.slots.get(&chosen).map_or(&[][..], Vec::as_slice);
        let slots = crate::call::slot_values(rec.slot_text(), uses).into_iter().collect();
        serde_json::to_string(&GrammarLine {
            file: name,
            start_ms: u.start_ms,
            end_ms: u.end_ms,
            text: &chosen,
            confidence,
            open_text: &rec.text,
            prompt: &rec.prompt,
            slots,
            sentence: rec.sentence.as_deref(),
            decode_ms: rec.decode_ms,
        })
    } else {
        serde_json::to_string(&Line {
            file: name,
            start_ms: u.start_ms,
            end_ms: u.end_ms,
            text: &rec.text,
            decode_ms: rec.decode_ms,
        })
    };
    super::print_line(&json.expect("plain struct serialises"))
}

/// The answer a call would take from `rec`: the recogniser's choice, else
/// the text matcher's pick among the grammar's phrases (the same function
/// the call machine uses), else digits read from the transcript when the
/// grammar asks for digits. Empty when nothing fits.
fn as_a_call_decides(rec: &Recognition, grammar: &Grammar) -> (String, f32) {
    let candidates: Vec<Candidate> =
        grammar.choices.iter().map(|c| Candidate { intent: c.label.clone(), phrases: c.phrases.clone() }).collect();
    if let Some(s) = crate::intent::understand(rec, &candidates, &TextMatcher::default()) {
        return (s.intent, s.confidence);
    }
    let digits =
        grammar.digits.and_then(|(min, max)| parse_digits(&rec.text).filter(|d| (min..=max).contains(&d.len())));
    match digits {
        Some(d) => (d, rec.confidence),
        None => (String::new(), rec.confidence),
    }
}

/// The `--grammar` argument.
mod grammar_spec {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use crate::dialplan::{SlotUse, Thresholds, DEFAULT_ACCEPT, DEFAULT_CONFIRM, DEFAULT_INCOMPLETE_TIMEOUT_S};

    use crate::asr::whisper::MAX_DIGITS;
    use crate::asr::{Grammar, GrammarChoice};
    use crate::call::NoSuchPlace;
    use crate::dialplan::Diagnostic;

    /// A `--grammar` that names nothing to listen for.
    #[derive(Debug, thiserror::Error)]
    pub enum GrammarSpecError {
        #[error("{spec:?} names no phrase; use `digits`, `digits:N-M`, `a,b,c` or `MENU@dialplan.toml`")]
        NoPhrase { spec: String },
        #[error("digits:{range}: {part:?} is not a number")]
        NotANumber { range: String, part: String },
        #[error("digits:{range}: need 1 <= N <= M <= {MAX_DIGITS}")]
        BadRange { range: String },
        #[error("{} does not pass `hotline check`:\n{}", .path.display(), errors_per_line(.diagnostics))]
        InvalidDialplan { path: PathBuf, diagnostics: Vec<Diagnostic> },
        #[error("{}: {source}", .path.display())]
        NoSuchPlace { path: PathBuf, source: NoSuchPlace },
    }

    /// The errors among `diagnostics` (warnings do not stop a grammar), one a line.
    fn errors_per_line(diagnostics: &[Diagnostic]) -> String {
        let errors: Vec<String> = diagnostics.iter().filter(|d| d.is_error()).map(|d| d.to_string()).collect();
        errors.join("\n")
    }

    /// A parsed `--grammar`: what to listen for, the slots each option of
    /// a dialplan menu takes, and how long a call there waits for a caller
    /// to go on with an unfinished answer.
    pub struct Spec {
        pub grammar: Arc<Grammar>,
        pub slots: HashMap<String, Vec<SlotUse>>,
        /// The dialplan's, for `MENU@file`; the defaults otherwise.
        pub thresholds: Thresholds,
        pub incomplete_ms: u64,
    }

    impl Default for Spec {
        fn default() -> Spec {
            Spec::of(Grammar::default())
        }
    }

    impl Spec {
        /// A grammar with no dialplan behind it: default thresholds and wait.
        fn of(grammar: Grammar) -> Spec {
            Spec {
                grammar: Arc::new(grammar),
                slots: HashMap::new(),
                thresholds: Thresholds { accept: DEFAULT_ACCEPT, confirm: DEFAULT_CONFIRM },
                incomplete_ms: (DEFAULT_INCOMPLETE_TIMEOUT_S * 1000.0) as u64,
            }
        }
    }

    pub fn parse(spec: &str) -> Result<Spec, GrammarSpecError> {
        match spec.split_once('@') {
            Some((menu, file)) => menu_from_dialplan(menu.trim(), Path::new(file.trim())),
            None => grammar(spec).map(Spec::of),
        }
    }

    fn grammar(spec: &str) -> Result<Grammar, GrammarSpecError> {
        let spec = spec.trim();
        if spec == "digits" {
            return Ok(Grammar { digits: Some((1, MAX_DIGITS)), ..Default::default() });
        }
        if let Some(range) = spec.strip_prefix("digits:") {
            return digits(range).map(|d| Grammar { digits: Some(d), ..Default::default() });
        }
        let choices: Vec<GrammarChoice> = spec
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| GrammarChoice::new(p, vec![p.to_string()]))
            .collect();
        if choices.is_empty() {
            return Err(GrammarSpecError::NoPhrase { spec: spec.to_string() });
        }
        Ok(Grammar { choices, ..Default::default() })
    }

    fn digits(range: &str) -> Result<(usize, usize), GrammarSpecError> {
        let num = |s: &str| -> Result<usize, GrammarSpecError> {
            s.trim()
                .parse::<usize>()
                .map_err(|_| GrammarSpecError::NotANumber { range: range.to_string(), part: s.to_string() })
        };
        let (min, max) = match range.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(range)?, num(range)?),
        };
        if min == 0 || min > max || max > MAX_DIGITS {
            return Err(GrammarSpecError::BadRange { range: range.to_string() });
        }
        Ok((min, max))
    }

    /// `MENU@FILE` or `MENU/OPTION@FILE`: the grammar a call listens with in
    /// that menu, or in that option's `collect` step, of a dialplan that
    /// passes `hotline check`.
    fn menu_from_dialplan(at: &str, file: &Path) -> Result<Spec, GrammarSpecError> {
        let plan = crate::dialplan::load(file)
            .map_err(|diagnostics| GrammarSpecError::InvalidDialplan { path: file.to_path_buf(), diagnostics })?;
        let (menu, option) = match at.split_once('/') {
            Some((menu, option)) => (menu.trim(), Some(option.trim())),
            None => (at, None),
        };
        let grammar = crate::call::grammar_at(&plan, menu, option)
            .map_err(|source| GrammarSpecError::NoSuchPlace { path: file.to_path_buf(), source })?;
        // A collect step's answer is a value itself; a menu's options may take slots.
        let slots = if option.is_none() { crate::call::option_slots(&plan, menu) } else { HashMap::new() };
        let incomplete_ms = plan.menus[menu].incomplete_timeout_ms;
        Ok(Spec { grammar: Arc::new(grammar), slots, thresholds: plan.thresholds, incomplete_ms })
    }

    #[cfg(test)]
    mod tests {
        use super::GrammarSpecError;
        use crate::asr::Grammar;

        fn parse(spec: &str) -> Result<Grammar, GrammarSpecError> {
            super::parse(spec).map(|s| (*s.grammar).clone())
        }

        fn error(spec: &str) -> String {
            parse(spec).err().map(|e| e.to_string()).unwrap_or_default()
        }

        #[test]
        fn parses_grammar_specs() {
            assert_eq!(parse("digits:4").unwrap().digits, Some((4, 4)));
            assert_eq!(parse("digits:2-5").unwrap().digits, Some((2, 5)));
            assert!(parse("digits").unwrap().digits.is_some());
            assert!(parse("digits:5-2").is_err());
            let g = parse("yes, no,stop").unwrap();
            assert_eq!(g.choices.iter().map(|c| c.label.as_str()).collect::<Vec<_>>(), ["yes", "no", "stop"]);
            assert!(parse(" , ").is_err());
        }

        #[test]
        fn reads_a_menu_or_a_step_from_a_dialplan() {
            let plan = "dialplans/hotline.toml";
            let g = parse(&format!("main@{plan}")).unwrap();
            let labels: Vec<&str> = g.choices.iter().map(|c| c.label.as_str()).collect();
            assert_eq!(labels[..2], ["billing", "technical_support"]);
            assert!(labels.contains(&"agent"), "globals are active in the main menu: {labels:?}");
            assert_eq!(g.digits, None);
            let step = parse(&format!("main/account_balance@{plan}")).unwrap();
            assert_eq!(step.digits, Some((6, 10)));
            let step = parse(&format!("tech_support/report_outage@{plan}")).unwrap();
            assert_eq!(
                step.choices.iter().take(3).map(|c| c.label.as_str()).collect::<Vec<_>>(),
                ["internet", "tv", "phone"]
            );
            assert!(error(&format!("other@{plan}")).contains("no menu `other` (menus: billing, main, tech_support)"));
            assert!(error(&format!("main/nothing@{plan}")).contains("menu `main` has no option `nothing`"));
            assert!(error(&format!("main/billing@{plan}")).contains("has no `collect` step"));
            let broken = error("main@tests/fixtures/dialplans/broken.toml");
            assert!(
                broken.contains("does not pass `hotline check`") && broken.contains("broken.toml:5:13"),
                "{broken}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{as_a_call_decides, grammar_spec};
    use crate::asr::Recognition;

    fn heard(text: &str, choice: Option<&str>) -> Recognition {
        Recognition { text: text.into(), choice: choice.map(str::to_string), confidence: 0.3, ..Default::default() }
    }

    /// When the recogniser rejects an utterance, a call still reads its
    /// transcript with the text matcher: so does `transcribe --grammar`.
    #[test]
    fn a_rejected_utterance_falls_back_to_the_text_matcher_as_in_a_call() {
        let menu = grammar_spec::parse("main@dialplans/hotline.toml").unwrap().grammar;
        let (chosen, confidence) = as_a_call_decides(&heard("I have a question about billing please", None), &menu);
        assert_eq!(chosen, "billing");
        assert!(confidence > 0.5, "{confidence}");
        // Words of no option: at best a guess below any dialplan's `confirm`.
        assert!(as_a_call_decides(&heard("what's the weather like", None), &menu).1 < 0.35);
        assert_eq!(as_a_call_decides(&heard("anything", Some("billing")), &menu), ("billing".into(), 0.3));
        let digits = grammar_spec::parse("digits:4").unwrap().grammar;
        assert_eq!(as_a_call_decides(&heard("one two three four", None), &digits).0, "1234");
        assert_eq!(as_a_call_decides(&heard("one two", None), &digits).0, "");
    }
}
