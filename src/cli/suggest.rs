//! `hotline suggest --records calls.db`: what callers said that the
//! dialplans did not understand at once, grouped, with a proposed change
//! and its evidence for each group (see `docs/learning.md`).
//!
//! The report goes to stdout (a table and each suggestion's evidence, or
//! `--format json`). Nothing is written without `--apply`, which adds the
//! proposed phrases to the dialplan files in place and refuses a file that
//! would not check clean. Exit 0 done; 1 the records could not be read or
//! a change could not be applied; 2 bad arguments or dialplans.
use std::path::PathBuf;

use crate::dialplan::CheckOptions;
use crate::learn::{self, ApplyError, LearnError};
use crate::records::export::parse_since;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The call records: `calls.db` (SQLite) or a `.jsonl` file.
    #[arg(long)]
    pub records: PathBuf,
    /// The folder of the dialplans the calls ran.
    #[arg(long, default_value = "dialplans")]
    pub dialplan: PathBuf,
    /// Only calls that started at or after this UTC date or time
    /// (`2026-12-01` or `2026-12-01T08:00:00Z`).
    #[arg(long)]
    pub since: Option<String>,
    /// Groups with fewer callers than this get "nothing to do".
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub min_count: u32,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also recognise the kept caller audio (`keep_audio_dir`) again, with
    /// each menu's grammar before and after the change (loads the models).
    #[arg(long)]
    pub rehear: bool,
    /// Add the proposed phrases to the dialplan files (comments and layout
    /// kept), after checking the result as `hotline check` does.
    #[arg(long)]
    pub apply: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

/// Why `hotline suggest` stopped.
#[derive(Debug, thiserror::Error)]
pub enum SuggestError {
    #[error("--since: {0}")]
    Since(String),
    #[error(transparent)]
    Learn(#[from] LearnError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("--rehear: the speech models could not be loaded: {0}")]
    Models(crate::asr::AsrError),
}

impl SuggestError {
    /// 2: the arguments or dialplans are wrong; 1: the records could not be
    /// read or a change could not be made.
    pub fn exit_code(&self) -> u8 {
        match self {
            SuggestError::Since(_) | SuggestError::Learn(LearnError::Dialplans { .. }) => super::error::BAD_INPUT,
            _ => super::error::FAILED,
        }
    }
}

pub fn run(args: Args) -> Result<u8, SuggestError> {
    let since = args.since.as_deref().map(parse_since).transpose().map_err(SuggestError::Since)?.unwrap_or(0);
    let opts = learn::Options {
        records: args.records,
        dialplan_dir: args.dialplan,
        since_unix_ms: since,
        min_count: args.min_count as usize,
    };
    let stack = match args.rehear {
        true => Some(crate::asr::SpeechStack::load(&Default::default()).map_err(SuggestError::Models)?),
        false => None,
    };
    let (report, plans) = learn::suggest(&opts, stack.as_ref())?;
    let shown = match args.format {
        Format::Table => learn::report::text(&report),
        Format::Json => learn::report::json(&report),
    };
    if !super::print_line(shown.trim_end()) {
        return Ok(0);
    }
    if !args.apply {
        return Ok(0);
    }
    // The same checks as `hotline check` (default config: tiny.en).
    let renderer = crate::prompts::PromptRenderer::new(
        &crate::asr::models::ModelPaths::default_location(),
        crate::prompts::default_cache_dir(),
    );
    let check = CheckOptions {
        tts_unavailable: renderer.tts_status().err().map(|e| e.to_string()),
        recognizer_model: Some(Default::default()),
    };
    for (path, edits) in learn::edits(&report, &plans) {
        learn::apply::apply_to_file(&path, &edits, &check)?;
        for e in &edits {
            tracing::info!(file = %path.display(), menu = %e.menu, option = %e.option, phrase = %e.phrase, "phrase added");
        }
    }
    Ok(0)
}
