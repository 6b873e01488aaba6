//! Expected call paths for `hotline replay --expect` and directory mode.
//!
//! An expectation file (TOML, or JSON with the same fields):
//!
//! ```toml
//! # keys the caller presses: KEY@SECONDS into the recording
//! dtmf = ["3@2.5", "4@6", "5@6.4", "1@6.8", "2@7.2", "#@7.6"]
//! # steps that must appear in this order (others may come in between)
//! expect = ["intent:balance", "collect:account=4512", "transfer:3000"]
//! ```
//!
//! Steps: `intent:NAME` or `intent:MENU/NAME`, `transfer` or
//! `transfer:EXTENSION`, `collect:VARIABLE` or `collect:VARIABLE=VALUE`,
//! `prompt:MENU`, `dtmf:KEY`, `no_input`, `no_match`, `barge_in`,
//! `degraded`, `transfer_failed`, `hangup`.
use std::path::{Path, PathBuf};

use crate::call::Event;

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Intent { menu: Option<String>, intent: String },
    Transfer(Option<String>),
    Collect { variable: String, value: Option<String> },
    Prompt(String),
    Dtmf(char),
    NoInput,
    NoMatch,
    BargeIn,
    Degraded,
    TransferFailed,
    Hangup,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Expectation {
    pub steps: Vec<(String, Step)>,
    /// (key, ms into the recording)
    pub dtmf: Vec<(char, u64)>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectationFile {
    expect: Vec<String>,
    #[serde(default)]
    dtmf: Vec<String>,
}

/// An expectation file that cannot be used; names the file.
#[derive(Debug, thiserror::Error)]
pub enum ExpectFileError {
    #[error("{}: cannot read: {source}", .path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", .path.display())]
    Invalid { path: PathBuf, source: ExpectationError },
}

/// What is wrong with an expectation's text; names the entry.
#[derive(Debug, thiserror::Error)]
pub enum ExpectationError {
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("expect[{index}] {text:?}: {source}")]
    Step { index: usize, text: String, source: StepError },
    #[error("dtmf[{index}] {text:?}: {source}")]
    Dtmf { index: usize, text: String, source: DtmfError },
}

/// A step of `expect = [...]` that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("`{kind}` needs {what} after a colon")]
    NeedsArgument { kind: String, what: &'static str },
    #[error("`{kind}` takes no argument (got {argument:?})")]
    TakesNoArgument { kind: String, argument: String },
    #[error("{0:?} is not one key (0-9, *, #, A-D)")]
    NotAKey(String),
    #[error("unknown step `{0}` (known: {STEP_KINDS})")]
    Unknown(String),
}

/// A `KEY@SECONDS` that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    #[error("expected KEY@SECONDS, e.g. 1@2.5")]
    NoAt,
    #[error("{0:?} is not one key (0-9, *, #, A-D)")]
    NotAKey(String),
    #[error("{0:?} is not a number of seconds")]
    NotSeconds(String),
    #[error("{0:?} seconds is out of range (0 to 86400)")]
    OutOfRange(String),
}

/// The replayed call did not take the expected path: which step was not
/// found, and the whole timeline to see why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "step {number} of {steps} {step:?} not found{}; the timeline was:\n{timeline}",
    .after.as_ref().map(|a| format!(" after {a:?}")).unwrap_or_default()
)]
pub struct PathMismatch {
    /// 1-based.
    pub number: usize,
    pub steps: usize,
    pub step: String,
    /// The step before it, which was found.
    pub after: Option<String>,
    /// The timeline as JSON lines.
    pub timeline: String,
}

const STEP_KINDS: &str =
    "intent, transfer, collect, prompt, dtmf, no_input, no_match, barge_in, degraded, transfer_failed, hangup";

impl Expectation {
    /// Reads an expectation file; errors name the file and the entry.
    pub fn load(path: &Path) -> Result<Expectation, ExpectFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ExpectFileError::Read { path: path.to_path_buf(), source })?;
        let json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
        Expectation::parse(&text, json).map_err(|source| ExpectFileError::Invalid { path: path.to_path_buf(), source })
    }

    pub fn parse(text: &str, json: bool) -> Result<Expectation, ExpectationError> {
        let file: ExpectationFile = if json { serde_json::from_str(text)? } else { toml::from_str(text)? };
        let steps = file
            .expect
            .iter()
            .enumerate()
            .map(|(index, s)| {
                parse_step(s).map(|step| (s.clone(), step)).map_err(|source| ExpectationError::Step {
                    index,
                    text: s.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let dtmf = file
            .dtmf
            .iter()
            .enumerate()
            .map(|(index, s)| parse_dtmf(s).map_err(|source| ExpectationError::Dtmf { index, text: s.clone(), source }))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Expectation { steps, dtmf })
    }
}

fn parse_step(s: &str) -> Result<Step, StepError> {
    let (kind, arg) = match s.split_once(':') {
        Some((k, a)) => (k.trim(), Some(a.trim()).filter(|a| !a.is_empty())),
        None => (s.trim(), None),
    };
    let need = |what: &'static str| {
        arg.map(str::to_string).ok_or_else(|| StepError::NeedsArgument { kind: kind.to_string(), what })
    };
    let none = |step: Step| match arg {
        None => Ok(step),
        Some(a) => Err(StepError::TakesNoArgument { kind: kind.to_string(), argument: a.to_string() }),
    };
    match kind {
        "intent" => {
            let arg = need("an intent name")?;
            Ok(match arg.split_once('/') {
                Some((menu, intent)) => Step::Intent { menu: Some(menu.into()), intent: intent.into() },
                None => Step::Intent { menu: None, intent: arg },
            })
        }
        "transfer" => Ok(Step::Transfer(arg.map(String::from))),
        "collect" => {
            let arg = need("a variable name")?;
            Ok(match arg.split_once('=') {
                Some((variable, value)) => Step::Collect { variable: variable.into(), value: Some(value.into()) },
                None => Step::Collect { variable: arg, value: None },
            })
        }
        "prompt" => Ok(Step::Prompt(need("a menu name")?)),
        "dtmf" => {
            let arg = need("a key")?;
            let mut chars = arg.chars();
            match (chars.next(), chars.next()) {
                (Some(k), None) if is_key(k) => Ok(Step::Dtmf(k.to_ascii_uppercase())),
                _ => Err(StepError::NotAKey(arg)),
            }
        }
        "no_input" => none(Step::NoInput),
        "no_match" => none(Step::NoMatch),
        "barge_in" => none(Step::BargeIn),
        "degraded" => none(Step::Degraded),
        "transfer_failed" => none(Step::TransferFailed),
        "hangup" => none(Step::Hangup),
        other => Err(StepError::Unknown(other.to_string())),
    }
}

fn is_key(k: char) -> bool {
    matches!(k.to_ascii_uppercase(), '0'..='9' | '*' | '#' | 'A'..='D')
}

/// `KEY@SECONDS` (e.g. `1@2.5`) -> (key, milliseconds).
pub fn parse_dtmf(spec: &str) -> Result<(char, u64), DtmfError> {
    let (key, at) = spec.split_once('@').ok_or(DtmfError::NoAt)?;
    let mut chars = key.trim().chars();
    let key = match (chars.next(), chars.next()) {
        (Some(k), None) if is_key(k) => k.to_ascii_uppercase(),
        _ => return Err(DtmfError::NotAKey(key.to_string())),
    };
    let seconds: f64 = at.trim().parse().map_err(|_| DtmfError::NotSeconds(at.to_string()))?;
    if !seconds.is_finite() || !(0.0..=86_400.0).contains(&seconds) {
        return Err(DtmfError::OutOfRange(at.to_string()));
    }
    Ok((key, (seconds * 1000.0).round() as u64))
}

fn matches(step: &Step, event: &Event) -> bool {
    match (step, event) {
        (Step::Intent { menu, intent }, Event::Intent { menu: m, intent: i, .. }) => {
            i == intent && menu.as_ref().is_none_or(|menu| menu == m)
        }
        (Step::Transfer(ext), Event::Transfer { extension, .. }) => ext.as_ref().is_none_or(|e| e == extension),
        (Step::Collect { variable, value }, Event::Collect { variable: v, value: val, .. }) => {
            v == variable && value.as_ref().is_none_or(|value| value == val)
        }
        (Step::Prompt(menu), Event::Prompt { menu: m, .. }) => m == menu,
        (Step::Dtmf(k), Event::Dtmf { digit, .. }) => k == digit,
        (Step::NoInput, Event::NoInput { .. })
        | (Step::NoMatch, Event::NoMatch { .. })
        | (Step::BargeIn, Event::BargeIn { .. })
        | (Step::Degraded, Event::Degraded { .. })
        | (Step::TransferFailed, Event::TransferFailed { .. })
        | (Step::Hangup, Event::Hangup { .. }) => true,
        _ => false,
    }
}

/// Checks that the steps occur in order (a subsequence of the timeline).
pub fn check_expectations(events: &[Event], expectation: &Expectation) -> Result<(), PathMismatch> {
    let mut from = 0;
    for (n, (text, step)) in expectation.steps.iter().enumerate() {
        match events[from..].iter().position(|e| matches(step, e)) {
            Some(offset) => from += offset + 1,
            None => {
                return Err(PathMismatch {
                    number: n + 1,
                    steps: expectation.steps.len(),
                    step: text.clone(),
                    after: n.checked_sub(1).map(|before| expectation.steps[before].0.clone()),
                    timeline: super::timeline_json(events).trim_end().to_string(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Source;

    #[test]
    fn parses_steps_and_keys_with_clear_errors() {
        let e = Expectation::parse(
            "dtmf = [\"1@2.5\", \"#@3\"]\nexpect = [\"intent:main/billing\", \"transfer:2000\", \"collect:account=4512\", \"hangup\"]",
            false,
        )
        .unwrap();
        assert_eq!(e.dtmf, [('1', 2500), ('#', 3000)]);
        assert_eq!(e.steps[0].1, Step::Intent { menu: Some("main".into()), intent: "billing".into() });
        assert_eq!(e.steps[2].1, Step::Collect { variable: "account".into(), value: Some("4512".into()) });
        let err = Expectation::parse("expect = [\"intent:billing\", \"tranfer:2000\"]", false).unwrap_err().to_string();
        assert!(err.contains("expect[1] \"tranfer:2000\": unknown step `tranfer`"), "{err}");
        let err = Expectation::parse("expect = []\ndtmf = [\"12@1\"]", false).unwrap_err().to_string();
        assert!(err.contains("dtmf[0]"), "{err}");
        let err = Expectation::parse("expect = [\"hangup\"]\nextra = 1", false).unwrap_err().to_string();
        assert!(err.contains("unknown field `extra`"), "{err}");
        assert!(Expectation::parse("{\"expect\": [\"no_input\"]}", true).is_ok());
        assert!(parse_dtmf("1@-2").is_err());
        assert!(parse_dtmf("1@NaN").is_err());
    }

    #[test]
    fn steps_match_in_order_and_failures_say_which() {
        let events = vec![
            Event::Intent {
                t_ms: 10,
                menu: "main".into(),
                intent: "billing".into(),
                confidence: 1.0,
                source: Source::Dtmf,
            },
            Event::Transfer { t_ms: 20, extension: "2000".into(), context: None },
        ];
        let ok = Expectation::parse("expect = [\"intent:billing\", \"transfer:2000\"]", false).unwrap();
        assert_eq!(check_expectations(&events, &ok), Ok(()));
        let wrong_order = Expectation::parse("expect = [\"transfer:2000\", \"intent:billing\"]", false).unwrap();
        let err = check_expectations(&events, &wrong_order).unwrap_err().to_string();
        assert!(err.starts_with("step 2 of 2 \"intent:billing\" not found after \"transfer:2000\""), "{err}");
        assert!(err.contains("\"type\":\"transfer\""), "the timeline is shown: {err}");
    }
}
