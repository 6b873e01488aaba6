//! Stored calls read back, from any store: `records export` copies them,
//! `record-test` makes replay cases of them, `learn` counts what callers
//! said. All three walk the store the same way here; each parses the
//! record's JSON into the fields it needs.
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{open_reader, sql, StoreError};
use crate::call::Event;

/// Longest JSON line read from a `.jsonl` store; a record is a few
/// kilobytes (at most [`super::MAX_EVENTS`] events), so a longer line is
/// not a record and is not held in memory.
pub const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// Where a record was read from, for messages that name it.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordAt {
    /// A `.jsonl` store's line (1-based).
    Line(usize),
    /// A SQL store's call.
    Call(String),
}

impl std::fmt::Display for RecordAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordAt::Line(n) => write!(f, "line {n}"),
            RecordAt::Call(id) => write!(f, "call {id}"),
        }
    }
}

/// One stored call as JSON: the line a `.jsonl` store holds, or a SQL row
/// written as that same line (see `records export`).
#[derive(Debug)]
pub struct StoredJson {
    pub at: RecordAt,
    /// When the call started; None when the line does not say (it is not
    /// a call record).
    pub start_unix_ms: Option<u64>,
    /// None when the line was longer than [`MAX_LINE_BYTES`] (dropped).
    pub json: Option<String>,
}

/// Hands `each` every finished call of the store at `path` that started at
/// or after `since_unix_ms`, oldest first (SQL stores) or in file order
/// (JSON lines), one at a time: a day of calls is never held whole. A line
/// whose start cannot be read is handed over too, for the caller's parser
/// to report or skip. `each` may stop the walk (false). Reads only: a
/// server may be writing meanwhile.
pub fn for_each_stored(
    path: &Path,
    since_unix_ms: u64,
    mut each: impl FnMut(StoredJson) -> bool,
) -> Result<(), StoreError> {
    if let Some(mut db) = open_reader(path)? {
        let mut failed = None;
        sql::for_each_call(&mut db, since_unix_ms, |stored| {
            let at = RecordAt::Call(stored.call_id.clone());
            let start_unix_ms = Some(stored.start_unix_ms);
            match serde_json::to_string(&stored) {
                Ok(json) => each(StoredJson { at, start_unix_ms, json: Some(json) }),
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        })?;
        return failed.map_or(Ok(()), |e| Err(e.into()));
    }
    let io = |source| StoreError::Io { path: path.to_path_buf(), source };
    let mut reader = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let Some(whole) = read_bounded_line(&mut reader, &mut line).map_err(io)? else { break };
        let at = RecordAt::Line(number);
        if !whole {
            if !each(StoredJson { at, start_unix_ms: None, json: None }) {
                break;
            }
            continue;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        #[derive(Deserialize)]
        struct Start {
            start_unix_ms: u64,
        }
        let start_unix_ms = serde_json::from_slice::<Start>(&line).ok().map(|s| s.start_unix_ms);
        if start_unix_ms.is_some_and(|s| s < since_unix_ms) {
            continue;
        }
        let json = String::from_utf8_lossy(&line).into_owned();
        if !each(StoredJson { at, start_unix_ms, json: Some(json) }) {
            break;
        }
    }
    Ok(())
}

/// Reads one line into `line` (without its newline), keeping at most
/// [`MAX_LINE_BYTES`]: `Some(true)` a whole line, `Some(false)` a line too
/// long (its rest is consumed and dropped), `None` end of file.
fn read_bounded_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    let n = reader.by_ref().take(MAX_LINE_BYTES as u64 + 1).read_until(b'\n', line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        return Ok(Some(true));
    }
    if line.len() <= MAX_LINE_BYTES {
        return Ok(Some(true)); // the last line, without a newline
    }
    line.clear();
    let mut rest = Vec::new();
    loop {
        rest.clear();
        let n = reader.by_ref().take(64 * 1024).read_until(b'\n', &mut rest)?;
        if n == 0 || rest.last() == Some(&b'\n') {
            return Ok(Some(false));
        }
    }
}

/// One stored call, the fields a replay needs.
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
    #[error("{}: {at}: not a call record: {source}", .path.display())]
    NotARecord { path: PathBuf, at: RecordAt, source: serde_json::Error },
    #[error("{}: {at}: longer than {} MiB, not a call record", .path.display(), MAX_LINE_BYTES >> 20)]
    TooLong { path: PathBuf, at: RecordAt },
}

/// Calls of the store at `path` that started at or after `since_unix_ms`,
/// each handed to `each`; the first record that is not a call stops the
/// read with an error naming it. Returns how many.
pub fn for_each_recorded_call(
    path: &Path,
    since_unix_ms: u64,
    mut each: impl FnMut(RecordedCall),
) -> Result<usize, ReadCallsError> {
    let mut n = 0;
    let mut bad = None;
    for_each_stored(path, since_unix_ms, |stored| {
        let parsed =
            match stored.json {
                None => Err(ReadCallsError::TooLong { path: path.to_path_buf(), at: stored.at }),
                Some(json) => serde_json::from_str::<RecordedCall>(&json)
                    .map_err(|source| ReadCallsError::NotARecord { path: path.to_path_buf(), at: stored.at, source }),
            };
        match parsed {
            Ok(call) => {
                each(call);
                n += 1;
                true
            }
            Err(e) => {
                bad = Some(e);
                false
            }
        }
    })?;
    bad.map_or(Ok(n), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_is_dropped_unread_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.jsonl");
        let good = r#"{"call_id":"a","start_unix_ms":5,"events":[]}"#;
        let huge = "x".repeat(MAX_LINE_BYTES + 10);
        std::fs::write(&path, format!("{good}\n\n{huge}\n{good}\n")).unwrap();
        let mut seen = Vec::new();
        for_each_stored(&path, 0, |s| {
            seen.push((s.at, s.json.map(|j| j.len())));
            true
        })
        .unwrap();
        assert_eq!(
            seen,
            [(RecordAt::Line(1), Some(good.len())), (RecordAt::Line(3), None), (RecordAt::Line(4), Some(good.len()))],
            "blank lines are skipped, the long one is handed over without its text"
        );
        let err = for_each_recorded_call(&path, 0, |_| {}).unwrap_err();
        assert!(err.to_string().ends_with("calls.jsonl: line 3: longer than 8 MiB, not a call record"), "{err}");
        assert_eq!(for_each_recorded_call(&path, 6, |_| {}).unwrap_err().to_string(), err.to_string());
    }
}
