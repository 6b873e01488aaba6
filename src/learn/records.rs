//! Reading stored calls back for learning: each call's id, dialplan and
//! the call machine's events, from SQLite, PostgreSQL or JSON lines (the stores of
//! [`crate::records`]).
//!
//! Only the fields learning needs are read, and a record that does not
//! parse (one from another hotline version, a torn line) is skipped and
//! counted, never fatal: one bad record must not hide a day of good ones.
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::records::recorded::for_each_stored;
use crate::records::StoreError;

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

/// Hands `each` every call of the store at `path` that started at or
/// after `since_unix_ms`, oldest first, one at a time (a day of calls is
/// never held whole); `each` may stop the walk (false). Returns how many
/// records could not be understood and were skipped.
pub fn for_each_call(
    path: &Path,
    since_unix_ms: u64,
    mut each: impl FnMut(RecordedCall) -> bool,
) -> Result<usize, StoreError> {
    let mut skipped = 0;
    for_each_stored(path, since_unix_ms, |stored| {
        match stored.json.as_deref().map(serde_json::from_str::<RecordedCall>) {
            // A record that does not say when it started counts as the
            // oldest: read only when every call is asked for.
            Some(Ok(call)) if call.start_unix_ms < since_unix_ms => return true,
            Some(Ok(call)) => return each(call),
            Some(Err(e)) => tracing::debug!(at = %stored.at, error = %e, "record skipped"),
            None => tracing::debug!(at = %stored.at, "over-long line skipped"),
        }
        skipped += 1;
        true
    })?;
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_or_oversized_line_is_skipped_and_the_rest_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.jsonl");
        let good = r#"{"call_id":"a","start_unix_ms":5,"dialplan":"d","events":[{"type":"no_match","t_ms":1,"menu":"main","text":"x"},{"type":"barge_in","t_ms":2}]}"#;
        let huge = "x".repeat(crate::records::recorded::MAX_LINE_BYTES + 10);
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

    #[test]
    fn a_record_without_its_start_is_read_only_when_every_call_is_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.jsonl");
        std::fs::write(&path, "{\"call_id\":\"b\",\"dialplan\":\"d\",\"events\":[]}\n").unwrap();
        let count = |since| {
            let mut n = 0;
            let skipped = for_each_call(&path, since, |_| {
                n += 1;
                true
            })
            .unwrap();
            (n, skipped)
        };
        assert_eq!(count(0), (1, 0));
        assert_eq!(count(6), (0, 0), "--since leaves it out, and it is not an unreadable record");
    }
}
