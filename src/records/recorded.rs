//! Stored calls read back for what happened in them: the call machine's
//! events and the kept audio, from either store (`hotline record-test`
//! makes replay cases of them).
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{open_reader, sql, StoreError};
use crate::call::Event;

/// One stored call, the fields a replay needs; read from a `.jsonl` line
/// or a SQL row (both are the same JSON, see `records export`).
#[derive(Debug, Clone, Deserialize)]
pub struct RecordedCall {
    pub call_id: String,
    pub start_unix_ms: u64,
    #[serde(default)]
    pub dialplan: Option<String>,
    #[serde(default)]
    pub dialplan_version: Option<String>,
    /// How the call ended (`completed`, `transferred`, `caller_hung_up`, ...).
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub events: Vec<Event>,
    /// The call had more events than a record keeps; the path is cut short.
    #[serde(default)]
    pub events_truncated: bool,
    /// The caller's audio as WAV, when `keep_audio_dir` was set.
    #[serde(default)]
    pub audio_file: Option<PathBuf>,
}

/// Why the stored calls could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadCallsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}: {source}", .path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: line {line}: not a call record: {source}", .path.display())]
    Line { path: PathBuf, line: usize, source: serde_json::Error },
    #[error("{}: call {call_id}: not a call record: {source}", .path.display())]
    Row { path: PathBuf, call_id: String, source: serde_json::Error },
}

/// Calls of the store at `path` that started at or after `since_unix_ms`,
/// oldest first (SQL stores) or in file order (JSON lines), each handed to
/// `each`. Reads only: a server may be writing meanwhile. Returns how many.
pub fn for_each_recorded_call(
    path: &Path,
    since_unix_ms: u64,
    mut each: impl FnMut(RecordedCall),
) -> Result<usize, ReadCallsError> {
    match open_reader(path)? {
        Some(mut db) => {
            let mut bad = None;
            let n = sql::for_each_call(&mut db, since_unix_ms, |stored| {
                // The row is the JSON line a `.jsonl` store writes: one parser for both.
                let parsed = serde_json::to_string(&stored).and_then(|json| serde_json::from_str(&json));
                match parsed {
                    Ok(call) => {
                        each(call);
                        true
                    }
                    Err(source) => {
                        bad = Some(ReadCallsError::Row { path: path.to_path_buf(), call_id: stored.call_id, source });
                        false
                    }
                }
            })?;
            bad.map_or(Ok(n), Err)
        }
        None => {
            let read = |source| ReadCallsError::Read { path: path.to_path_buf(), source };
            let file = std::fs::File::open(path).map_err(read)?;
            let mut n = 0;
            for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
                let line = line.map_err(read)?;
                if line.trim().is_empty() {
                    continue;
                }
                let call: RecordedCall = serde_json::from_str(&line).map_err(|source| ReadCallsError::Line {
                    path: path.to_path_buf(),
                    line: index + 1,
                    source,
                })?;
                if call.start_unix_ms >= since_unix_ms {
                    each(call);
                    n += 1;
                }
            }
            Ok(n)
        }
    }
}
