//! Reading stored calls back for learning: each call's id, dialplan and
//! the call machine's events, from SQLite, PostgreSQL or JSON lines (the stores of
//! [`crate::records`]).
//!
//! Only the fields learning needs are read, and an event or line that does
//! not parse (a record from another hotline version, a torn line) is
//! skipped and counted, never fatal: one bad record must not hide a day of
//! good ones.
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::records::{open_reader, sql, StoreError};

/// Longest JSON line read from a `.jsonl` store; a record is a few
/// kilobytes (at most [`crate::records::MAX_EVENTS`] events), so a longer
/// line is not a record and is skipped rather than held in memory.
pub const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// One stored call, as learning sees it.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordedCall {
    pub call_id: String,
    #[serde(default)]
    pub start_unix_ms: u64,
    pub dialplan: Option<String>,
    #[serde(default)]
    pub audio_file: Option<PathBuf>,
    #[serde(default)]
    pub events: Vec<RecordedEvent>,
}

/// The events of [`crate::call::Event`] that say what a caller said and
/// what came of it; the rest are [`RecordedEvent::Other`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RecordedEvent {
    Prompt {
        t_ms: u64,
        menu: String,
    },
    Utterance {
        t_ms: u64,
        #[serde(default)]
        start_ms: u64,
        #[serde(default)]
        end_ms: u64,
        text: String,
        confidence: f32,
    },
    Intent {
        t_ms: u64,
        menu: String,
        intent: String,
        source: String,
    },
    NoMatch {
        t_ms: u64,
        menu: String,
    },
    Collect {
        t_ms: u64,
    },
    Hangup {
        t_ms: u64,
        reason: String,
    },
    #[serde(other)]
    Other,
}

/// Why the records could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Hands `each` every call of the store at `path` that started at or
/// after `since_unix_ms`, oldest first, one at a time (a day of calls is
/// never held whole); `each` may stop the walk (false). Returns how many
/// lines or events could not be understood and were skipped.
pub fn for_each_call(
    path: &Path,
    since_unix_ms: u64,
    mut each: impl FnMut(RecordedCall) -> bool,
) -> Result<usize, ReadError> {
    let mut skipped = 0;
    match open_reader(path)? {
        Some(mut db) => {
            sql::for_each_call(&mut db, since_unix_ms, |stored| {
                let mut events = Vec::with_capacity(stored.events.len());
                for raw in &stored.events {
                    match serde_json::from_str::<RecordedEvent>(raw.get()) {
                        Ok(e) => events.push(e),
                        Err(_) => skipped += 1,
                    }
                }
                each(RecordedCall {
                    call_id: stored.call_id,
                    start_unix_ms: stored.start_unix_ms,
                    dialplan: stored.dialplan,
                    audio_file: stored.audio_file,
                    events,
                })
            })?;
        }
        None => {
            let io = |source| ReadError::Io { path: path.to_path_buf(), source };
            let mut reader = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
            let mut line = Vec::new();
            loop {
                line.clear();
                let complete = read_bounded_line(&mut reader, &mut line).map_err(io)?;
                if line.is_empty() && complete.is_none() {
                    break;
                }
                if complete == Some(false) {
                    skipped += 1;
                    continue;
                }
                match serde_json::from_slice::<RecordedCall>(&line) {
                    Ok(call) if call.start_unix_ms >= since_unix_ms => {
                        if !each(call) {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) if line.iter().all(u8::is_ascii_whitespace) => {}
                    Err(_) => skipped += 1,
                }
            }
        }
    }
    Ok(skipped)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_or_oversized_line_is_skipped_and_the_rest_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.jsonl");
        let good = r#"{"call_id":"a","start_unix_ms":5,"dialplan":"d","events":[{"type":"no_match","t_ms":1,"menu":"main","text":"x"},{"type":"barge_in","t_ms":2}]}"#;
        let huge = "x".repeat(MAX_LINE_BYTES + 10);
        std::fs::write(&path, format!("{good}\n{{\"call_id\":\n{huge}\n{good}")).unwrap();
        let read = |since| {
            let mut calls = Vec::new();
            let skipped = for_each_call(&path, since, |c| {
                calls.push(c);
                true
            })
            .unwrap();
            (calls, skipped)
        };
        let (calls, skipped) = read(0);
        assert_eq!(calls.len(), 2, "both whole records are read");
        assert_eq!(skipped, 2, "the torn and the oversized line are counted");
        assert_eq!(calls[0].events[1], RecordedEvent::Other);
        assert!(read(6).0.is_empty(), "--since filters");
    }
}
