//! `hotline record-test (--call ID... | --all) [--since DATE] [--out DIR]`:
//! recorded calls made into replay cases (the kept caller audio and an
//! expectation file of the path the call took) that `hotline replay
//! --dialplan FILE DIR` then checks against every dialplan change.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::records::{LocateError, RecordsLocation};
use crate::records::export::parse_since;
use crate::records::recorded::{for_each_recorded_call, ReadCallsError, RecordedCall};
use crate::records::replay_case::ReplayCase;

#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["call", "all"]))]
pub struct Args {
    /// The call to make a case of, by its call id (repeatable, or
    /// comma-separated).
    #[arg(long = "call", value_name = "ID", value_delimiter = ',')]
    pub call: Vec<String>,
    /// Every recorded call (with `--since`, those since then).
    #[arg(long)]
    pub all: bool,
    /// Only calls that started at or after this UTC date or time
    /// (`2026-12-01` or `2026-12-01T08:00:00Z`).
    #[arg(long)]
    pub since: Option<String>,
    /// Folder the cases are written to (created when missing).
    #[arg(long, default_value = "tests/calls")]
    pub out: PathBuf,
    /// Replace a case that exists (its WAV and expectation file).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub records: RecordsLocation,
}

/// Why `record-test` could not run.
#[derive(Debug, thiserror::Error)]
pub enum RecordTestError {
    #[error("--since: {0}")]
    Since(String),
    #[error(transparent)]
    Locate(#[from] LocateError),
    #[error(transparent)]
    Read(#[from] ReadCallsError),
}

impl RecordTestError {
    /// 2: the arguments or the config are wrong; 1: the records could not
    /// be read.
    pub fn exit_code(&self) -> u8 {
        match self {
            RecordTestError::Read(_) => super::error::FAILED,
            _ => super::error::BAD_INPUT,
        }
    }
}

/// Makes the cases; one `made` line per case on stdout, one line per call
/// skipped on stderr (naming it and why). Exit 0 when a case was made, 1
/// when none was.
pub fn run(args: Args) -> Result<u8, RecordTestError> {
    let since = args.since.as_deref().map(parse_since).transpose().map_err(RecordTestError::Since)?.unwrap_or(0);
    let records = args.records.path()?;
    let records_dir = records.parent().unwrap_or(Path::new("")).to_path_buf();
    let wanted: BTreeSet<&str> = args.call.iter().map(String::as_str).collect();
    let mut found: BTreeSet<String> = BTreeSet::new();
    let (mut made, mut skipped) = (0usize, 0usize);
    let mut each = |call: RecordedCall| {
        if !args.all && !wanted.contains(call.call_id.as_str()) {
            return;
        }
        found.insert(call.call_id.clone());
        let outcome = ReplayCase::of_call(&call, &records_dir)
            .map_err(|e| e.to_string())
            .and_then(|case| case.write(&args.out, args.force).map_err(|e| e.to_string()));
        match outcome {
            Ok(written) => {
                made += 1;
                super::print_line(&format!("made {} {}", written.wav.display(), written.expectation.display()));
            }
            Err(why) => {
                skipped += 1;
                eprintln!("call {}: skipped: {why}", call.call_id);
            }
        }
    };
    for_each_recorded_call(&records, since, &mut each)?;
    for id in wanted.iter().filter(|id| !found.contains(**id)) {
        skipped += 1;
        eprintln!("call {id}: skipped: not in {}", records.display());
    }
    eprintln!("{made} made, {skipped} skipped");
    Ok(if made > 0 { 0 } else { 1 })
}
