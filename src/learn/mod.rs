//! Learning from real calls (`hotline suggest`): what callers said that
//! the dialplan did not understand at once, grouped, each group with a
//! proposed change and its evidence, and `--apply` to make the changes.
//!
//! The steps, one module each: [`records`] reads the stored calls,
//! [`collect`] finds each menu utterance and what came of it, [`group`]
//! puts together what callers said alike, [`propose`] decides what to do
//! about each group and replays the change through the real matcher,
//! [`report`] shows it, [`apply`] edits the dialplan files.
use std::path::{Path, PathBuf};

use crate::dialplan::{Diagnostic, Dialplan};

pub mod apply;
pub mod collect;
pub mod group;
pub mod propose;
pub mod records;
pub mod rehear;
pub mod report;

pub use apply::{ApplyError, PhraseEdit};
pub use propose::{Proposal, Suggestion};
pub use report::Report;

/// Menu utterances kept for one report: the regression corpus is held in
/// memory, so a longer period is refused with a hint to narrow it.
pub const MAX_UTTERANCES: usize = 500_000;

/// What to learn from.
#[derive(Debug, Clone)]
pub struct Options {
    /// `calls.db` (SQLite) or `*.jsonl`.
    pub records: PathBuf,
    /// The folder of the dialplans the calls ran (`*.toml`, by file stem).
    pub dialplan_dir: PathBuf,
    pub since_unix_ms: u64,
    /// Groups with fewer callers get "nothing to do".
    pub min_count: usize,
}

/// Why the kept audio could not be recognised again.
pub type RehearError = crate::asr::AsrError;

#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    #[error(transparent)]
    Records(#[from] crate::records::StoreError),
    #[error("{}: the dialplans cannot be used:\n{}", .dir.display(), .diagnostics.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
    Dialplans { dir: PathBuf, diagnostics: Vec<Diagnostic> },
    #[error("{}: more than {MAX_UTTERANCES} utterances in menus; narrow the period with --since", .0.display())]
    TooMany(PathBuf),
    #[error("recognising the kept audio again: {0}")]
    Rehear(#[from] RehearError),
}

/// The report, and the dialplans it was made against. With a
/// `recognizer`, the kept audio is recognised again too ([`rehear`]).
pub fn suggest(
    opts: &Options,
    recognizer: Option<&crate::asr::SpeechStack>,
) -> Result<(Report, Vec<Dialplan>), LearnError> {
    let plans = load_plans(&opts.dialplan_dir)?;
    let mut heard = Vec::new();
    let (mut calls, mut without_plan, mut too_many) = (0, 0, false);
    let skipped = records::for_each_call(&opts.records, opts.since_unix_ms, |call| {
        calls += 1;
        let plan = call.dialplan.as_deref().and_then(|name| plans.iter().find(|p| p.name == name));
        match plan {
            Some(plan) => heard.extend(collect::heard_in(&call, plan)),
            None => without_plan += 1,
        }
        too_many = heard.len() > MAX_UTTERANCES;
        !too_many
    })?;
    if too_many {
        return Err(LearnError::TooMany(opts.records.clone()));
    }
    let groups = group::group(&heard);
    let mut suggestions = propose::propose(&groups, &heard, &plans, opts.min_count);
    let mut check = report::CHECK.to_string();
    if let Some(recognizer) = recognizer {
        rehear::rehear(recognizer, &mut suggestions, &groups, &heard, &plans)?;
        check.push_str(report::CHECK_AUDIO);
    }
    let report = Report {
        records: opts.records.display().to_string(),
        calls,
        utterances: heard.len(),
        calls_without_dialplan: without_plan,
        skipped,
        check,
        suggestions,
    };
    Ok((report, plans))
}

/// The phrase additions of `report`, per dialplan file.
pub fn edits(report: &Report, plans: &[Dialplan]) -> Vec<(PathBuf, Vec<PhraseEdit>)> {
    let mut out: Vec<(PathBuf, Vec<PhraseEdit>)> = Vec::new();
    for s in &report.suggestions {
        let Proposal::AddPhrase { option, phrase } = &s.proposal else { continue };
        let Some(plan) = plans.iter().find(|p| p.name == s.dialplan) else { continue };
        let edit = PhraseEdit { menu: s.menu.clone(), option: option.clone(), phrase: phrase.clone() };
        match out.iter_mut().find(|(p, _)| *p == plan.source) {
            Some((_, list)) => list.push(edit),
            None => out.push((plan.source.clone(), vec![edit])),
        }
    }
    out
}

/// Every valid dialplan of `dir`. An unreadable folder is an error; an
/// invalid file is too, since its calls could not be judged against it.
fn load_plans(dir: &Path) -> Result<Vec<Dialplan>, LearnError> {
    let (plans, diagnostics) = crate::dialplan::load_dir(dir);
    let errors: Vec<Diagnostic> = diagnostics.into_iter().filter(|d| d.is_error()).collect();
    if !errors.is_empty() || plans.is_empty() {
        let diagnostics = if errors.is_empty() {
            vec![Diagnostic {
                file: dir.to_path_buf(),
                line: 0,
                col: 0,
                severity: crate::dialplan::Severity::Error,
                message: "no dialplans (*.toml) in this folder".into(),
                help: None,
            }]
        } else {
            errors
        };
        return Err(LearnError::Dialplans { dir: dir.to_path_buf(), diagnostics });
    }
    Ok(plans)
}
