//! A recorded call as a replay case: its kept caller audio (`NAME.wav`)
//! and an expectation file (`NAME.expect.toml`, the `hotline replay
//! --expect` format) holding the keys the caller pressed, with their times
//! into the audio, and the path the call took. `hotline replay` over the
//! folder then replays every case and checks it; the admin edits the
//! expectation to say what should have happened instead.
//!
//! The path is what a dialplan decides: the menus entered (`prompt:MENU`,
//! once per change of menu, so reprompts and confirmations do not make it
//! brittle), the intents chosen (`intent:MENU/NAME`), values collected
//! (`collect:VARIABLE=VALUE`) and how the call left the bot
//! (`transfer:EXTENSION`, or `hangup` when the bot ended it). A caller
//! hanging up is not a step: a replay cannot hang up, it goes on in silence.
use std::path::{Path, PathBuf};

use super::audio::file_stem;
use super::recorded::RecordedCall;
use super::Outcome;
use crate::call::Event;

/// What a made case is; `expectation` is the text of its `.expect.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayCase {
    /// File stem of both files: the call id, made safe for a file name.
    pub name: String,
    /// The kept caller audio to copy.
    pub audio: PathBuf,
    pub expectation: String,
}

/// Why a call cannot become a case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotACase {
    #[error("no caller audio was kept (set keep_audio_dir in the server config)")]
    NoAudio,
    #[error("its caller audio {} is gone", .0.display())]
    AudioGone(PathBuf),
}

/// Why a case could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteCaseError {
    #[error("{} exists (--force overwrites it)", .0.display())]
    Exists(PathBuf),
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// The files a written case consists of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenCase {
    pub wav: PathBuf,
    pub expectation: PathBuf,
}

impl ReplayCase {
    /// The case of `call`; its kept audio is looked for as recorded, and a
    /// relative path also next to the records (`records_dir`).
    pub fn of_call(call: &RecordedCall, records_dir: &Path) -> Result<ReplayCase, NotACase> {
        let recorded = call.audio_file.as_ref().ok_or(NotACase::NoAudio)?;
        let audio = [recorded.clone(), records_dir.join(recorded)]
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| NotACase::AudioGone(recorded.clone()))?;
        Ok(ReplayCase { name: file_stem(&call.call_id), audio, expectation: expectation_text(call) })
    }

    /// Writes `NAME.wav` and `NAME.expect.toml` into `dir` (created when
    /// missing). Existing files are kept unless `force`: an admin's edited
    /// expectation is never lost to a rerun.
    pub fn write(&self, dir: &Path, force: bool) -> Result<WrittenCase, WriteCaseError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| WriteCaseError::Io { path, source }
        };
        let written = WrittenCase {
            wav: dir.join(format!("{}.wav", self.name)),
            expectation: dir.join(format!("{}.expect.toml", self.name)),
        };
        if !force {
            // The JSON spelling of an expectation counts too: replay reads either.
            let json = dir.join(format!("{}.expect.json", self.name));
            let existing = [&written.wav, &written.expectation, &json].into_iter().find(|p| p.exists()).cloned();
            if let Some(existing) = existing {
                return Err(WriteCaseError::Exists(existing));
            }
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        std::fs::copy(&self.audio, &written.wav).map_err(io(&written.wav))?;
        std::fs::write(&written.expectation, &self.expectation).map_err(io(&written.expectation))?;
        Ok(written)
    }
}

/// The steps of the path `call` took, in the `--expect` step syntax.
pub fn path_steps(call: &RecordedCall) -> Vec<String> {
    let mut steps: Vec<String> = Vec::new();
    let mut menu: Option<&str> = None;
    for event in &call.events {
        let step = match event {
            Event::Prompt { menu: m, .. } if menu != Some(m.as_str()) => {
                menu = Some(m);
                format!("prompt:{m}")
            }
            Event::Intent { menu, intent, .. } => format!("intent:{menu}/{intent}"),
            Event::Collect { variable, value, .. } => format!("collect:{variable}={value}"),
            Event::Transfer { extension, .. } => format!("transfer:{extension}"),
            _ => continue,
        };
        // A read-back confirmed reports its value again: one step.
        if steps.last() != Some(&step) {
            steps.push(step);
        }
    }
    if call.outcome.as_deref() == Some(Outcome::Completed.as_str()) {
        steps.push("hangup".into());
    }
    steps
}

/// The keys the caller pressed, `KEY@SECONDS` into the kept audio.
///
/// A DTMF event's `t_ms` counts from the start of the call, and so does
/// the kept audio (its WAV is padded with the silence before the caller's
/// first frame and through pauses, `records::audio`): the time needs no
/// shifting.
pub fn dtmf_keys(call: &RecordedCall) -> Vec<String> {
    call.events
        .iter()
        .filter_map(|e| match e {
            Event::Dtmf { t_ms, digit } => Some(format!("{digit}@{}.{:03}", t_ms / 1000, t_ms % 1000)),
            _ => None,
        })
        .collect()
}

/// The `.expect.toml` text of `call`: where it came from and what the
/// caller said as comments, then `dtmf` and `expect`.
pub fn expectation_text(call: &RecordedCall) -> String {
    let mut text = format!("# Replay case of call {}", one_line(&call.call_id));
    if let Some(plan) = &call.dialplan {
        text.push_str(&format!(", dialplan {}", one_line(plan)));
        if let Some(version) = &call.dialplan_version {
            text.push_str(&format!(" (version {})", one_line(version)));
        }
    }
    text.push_str(
        ".\n# `expect` is the path the call took; edit it to say what should happen.\n\
         # Replay: hotline replay --dialplan DIALPLAN.toml FOLDER/\n",
    );
    if call.events_truncated {
        text.push_str("# The record kept only the call's first events: the path ends early.\n");
    }
    for event in &call.events {
        if let Event::Utterance { start_ms, text: words, confidence, .. } = event {
            text.push_str(&format!(
                "# {}.{} s: the caller said {} ({confidence:.2})\n",
                start_ms / 1000,
                start_ms % 1000 / 100,
                quoted(&one_line(words))
            ));
        }
    }
    text.push_str(&format!("dtmf = {}\n", toml_list(&dtmf_keys(call))));
    text.push_str(&format!("expect = {}\n", toml_list(&path_steps(call))));
    text
}

/// `["a", "b"]`, each entry quoted and escaped as TOML wants.
fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quoted(s)).collect();
    format!("[{}]", quoted.join(", "))
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Recorded text made safe for a comment line: no line breaks or controls.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests;
