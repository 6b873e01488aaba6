//! `hotline replay --dialplan FILE CALL.wav [--dtmf KEY@SECONDS]... [--expect FILE]`
//! and `hotline replay --dialplan FILE DIR`: recorded calls through the real
//! speech stack and call machine on a virtual clock.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::asr::{AsrError, SpeechConfig, SpeechStack};
use crate::audio::{read_wav, ResampleError, WavError};
use crate::call::Event;
use crate::dialplan::{Dialplan, InvalidDialplan};
use crate::intent::IntentMatcher;
use crate::replay::{
    check_expectations, parse_dtmf, replay_call, replay_dir, timeline_json, DtmfError, ExpectFileError, Expectation,
    PromptTimer, ReplayOptions,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The dialplan to run the calls against.
    #[arg(long)]
    pub dialplan: PathBuf,
    /// The caller's side of a call (16-bit PCM WAV, 8-48 kHz), or a folder:
    /// every NAME.wav there with a NAME.expect.toml next to it is replayed
    /// and checked.
    pub input: PathBuf,
    /// A key the caller presses, KEY@SECONDS into the recording (e.g. 1@2.5).
    #[arg(long = "dtmf", value_name = "KEY@SECONDS")]
    pub dtmf: Vec<String>,
    /// Check the call's path against this file: `expect = ["intent:billing",
    /// "transfer:2000"]` (steps in order; others may come between) and
    /// optionally `dtmf = ["1@2.5"]`.
    #[arg(long)]
    pub expect: Option<PathBuf>,
    /// Stop a call that has not ended after this many seconds of call time.
    #[arg(long, default_value_t = 120)]
    pub max_seconds: u64,
}

/// Reads and validates a dialplan file.
pub type DialplanLoader = fn(&Path) -> Result<Dialplan, InvalidDialplan>;

/// Why `hotline replay` could not replay (exit 2): an input it was given,
/// or the speech models.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Dialplan(#[from] InvalidDialplan),
    #[error(
        "{}: a folder takes its keys and expectations from each call's .expect.toml, not --dtmf/--expect",
        .0.display()
    )]
    FolderWithKeys(PathBuf),
    #[error("{}: {source}", .path.display())]
    Folder { path: PathBuf, source: std::io::Error },
    #[error("{}: no NAME.wav with a NAME.expect.toml next to it", .0.display())]
    EmptyFolder(PathBuf),
    #[error("{}: {source}", .path.display())]
    Audio { path: PathBuf, source: WavError },
    #[error("{}: {source}", .path.display())]
    Resample { path: PathBuf, source: ResampleError },
    #[error(transparent)]
    Expectation(#[from] ExpectFileError),
    #[error("--dtmf {spec:?}: {source}")]
    Dtmf { spec: String, source: DtmfError },
    #[error(transparent)]
    Speech(AsrError),
}

/// `hotline replay`: the dialplan from its TOML file, the text matcher as
/// the fallback behind the recogniser.
pub fn run_cli(args: Args) -> Result<u8, ReplayError> {
    run(args, crate::dialplan::load_reported, Arc::new(crate::intent::TextMatcher::default()))
}

/// Exit codes: 0 replayed (and every expectation held), 1 an expectation
/// failed (said on stderr as `FAIL ...`); errors (an input could not be
/// used or the speech stack did not load) exit 2.
pub fn run(args: Args, load: DialplanLoader, matcher: Arc<dyn IntentMatcher>) -> Result<u8, ReplayError> {
    replay(args, load, matcher).map(|held| if held { 0 } else { 1 })
}

fn replay(args: Args, load: DialplanLoader, matcher: Arc<dyn IntentMatcher>) -> Result<bool, ReplayError> {
    let dialplan = Arc::new(load(&args.dialplan)?);
    let opts = ReplayOptions { max_ms: args.max_seconds.saturating_mul(1000) };
    if args.input.is_dir() {
        if !args.dtmf.is_empty() || args.expect.is_some() {
            return Err(ReplayError::FolderWithKeys(args.input));
        }
        let speech = load_speech()?;
        let mut stdout = std::io::stdout().lock();
        let timer = PromptTimer::from_environment();
        let prompt_ms = |p: &crate::dialplan::Prompt| timer.duration_ms(p);
        let summary = replay_dir(&args.input, dialplan, matcher, &speech, &prompt_ms, &opts, &mut stdout)
            .map_err(|source| ReplayError::Folder { path: args.input.clone(), source })?;
        if summary.passed + summary.failed == 0 {
            return Err(ReplayError::EmptyFolder(args.input));
        }
        return Ok(summary.failed == 0);
    }
    let audio = read_wav(&args.input).map_err(|source| ReplayError::Audio { path: args.input.clone(), source })?;
    let expectation = args.expect.as_deref().map(Expectation::load).transpose()?;
    let mut keys = Vec::with_capacity(args.dtmf.len());
    for spec in &args.dtmf {
        keys.push(parse_dtmf(spec).map_err(|source| ReplayError::Dtmf { spec: spec.clone(), source })?);
    }
    if let Some(e) = &expectation {
        keys.extend(e.dtmf.iter().copied());
    }
    let speech = load_speech()?;
    let timer = PromptTimer::from_environment();
    let prompt_ms = |p: &crate::dialplan::Prompt| timer.duration_ms(p);
    let events = replay_call(dialplan, matcher, &speech, &audio, &keys, &prompt_ms, &opts)
        .map_err(|source| ReplayError::Resample { path: args.input.clone(), source })?;
    super::print_line(timeline_json(&events).trim_end());
    if !matches!(events.last(), Some(Event::Transfer { .. } | Event::Hangup { .. })) {
        eprintln!("hotline: note: the call had not ended after {} s of call time", args.max_seconds);
    }
    let Some(expectation) = expectation else { return Ok(true) };
    match check_expectations(&events, &expectation) {
        Ok(()) => {
            eprintln!("ok: {} steps matched", expectation.steps.len());
            Ok(true)
        }
        Err(mismatch) => {
            eprintln!("FAIL {}: {mismatch}", args.input.display());
            Ok(false)
        }
    }
}

fn load_speech() -> Result<SpeechStack, ReplayError> {
    // Replay decodes on its own thread; the pool only needs to exist.
    SpeechStack::load(&SpeechConfig { threads: 1, ..Default::default() }).map_err(ReplayError::Speech)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::test_support::test_dialplan;

    fn load_test_dialplan(path: &Path) -> Result<Dialplan, InvalidDialplan> {
        if path.ends_with("missing.toml") {
            return Err(InvalidDialplan { path: path.to_path_buf(), diagnostics: Vec::new() });
        }
        Ok(test_dialplan())
    }

    /// The code `main` exits with for this outcome.
    fn exit_code(outcome: Result<u8, ReplayError>) -> u8 {
        outcome.unwrap_or_else(|e| crate::cli::CliError::from(e).exit_code())
    }

    fn args(input: &Path, dtmf: &[&str], expect: Option<PathBuf>) -> Args {
        Args {
            dialplan: PathBuf::from("hotline.toml"),
            input: input.to_path_buf(),
            dtmf: dtmf.iter().map(|s| s.to_string()).collect(),
            expect,
            max_seconds: 60,
        }
    }

    #[test]
    fn exit_codes_follow_the_expectation() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("call.wav");
        crate::audio::write_wav(&wav, 8_000, &vec![0i16; 8_000]).unwrap();
        let good = dir.path().join("good.expect.toml");
        std::fs::write(&good, "expect = [\"intent:support\", \"transfer:2000\"]\n").unwrap();
        let bad = dir.path().join("bad.expect.toml");
        std::fs::write(&bad, "expect = [\"transfer:2100\"]\n").unwrap();
        let m = || -> Arc<dyn IntentMatcher> { Arc::new(crate::intent::TextMatcher::default()) };
        assert_eq!(exit_code(run(args(&wav, &["2@0.5"], Some(good)), load_test_dialplan, m())), 0);
        assert_eq!(exit_code(run(args(&wav, &["2@0.5"], Some(bad)), load_test_dialplan, m())), 1);
        assert_eq!(exit_code(run(args(&wav, &["22@0.5"], None), load_test_dialplan, m())), 2);
        assert_eq!(exit_code(run(args(&dir.path().join("nope.wav"), &[], None), load_test_dialplan, m())), 2);
        let mut missing = args(&wav, &[], None);
        missing.dialplan = PathBuf::from("missing.toml");
        assert_eq!(exit_code(run(missing, load_test_dialplan, m())), 2);
    }
}
