//! Call records in SQLite (`call_records = "calls.db"`, the default): one
//! row per call in `calls`, one row per call-machine event in `events`, in
//! order. WAL mode, so readers (`hotline records export`, an admin's
//! `sqlite3`) never block the writer.
//!
//! The schema is versioned with SQLite's `user_version`: [`MIGRATIONS`]
//! holds every step from an empty file, each run once, in a transaction;
//! a database from a newer hotline is refused rather than guessed at.
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use super::{CallRecord, RecordStore, StoreError, TransferRecord};
use crate::call::{Event, Source};

/// Schema steps; `user_version` is how many have run. Append, never edit.
const MIGRATIONS: &[&str] = &[
    // 1: calls and their events.
    "CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        call_id TEXT NOT NULL,
        transport TEXT,
        channel TEXT,
        caller_id TEXT,
        dialplan TEXT,
        dialplan_version TEXT,
        audio_format TEXT,
        start_unix_ms INTEGER NOT NULL,
        end_unix_ms INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        outcome TEXT,
        transfer_reason TEXT,
        transfer_extension TEXT,
        transfer_context TEXT,
        transfer_method TEXT,
        transfer_result TEXT,
        hangup_cause TEXT NOT NULL,
        events_truncated INTEGER NOT NULL,
        audio_file TEXT
    );
    CREATE INDEX calls_by_start ON calls (start_unix_ms);
    CREATE INDEX calls_by_call_id ON calls (call_id);
    CREATE TABLE events (
        call INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        t_ms INTEGER NOT NULL,
        type TEXT NOT NULL,
        menu TEXT,
        text TEXT,
        confidence REAL,
        intent TEXT,
        source TEXT,
        latency_ms INTEGER,
        target TEXT,
        reason TEXT,
        data TEXT NOT NULL,
        PRIMARY KEY (call, seq)
    ) WITHOUT ROWID;",
];

/// Schema version this hotline writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// A writer waits this long for another process's lock (an admin's
/// long query) before the record counts as lost.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub struct SqliteStore {
    path: PathBuf,
    conn: Connection,
}

impl SqliteStore {
    /// Opens (creates) the database and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: path.to_path_buf(), source })?;
        }
        let sql = |source| StoreError::Sqlite { path: path.to_path_buf(), source };
        let mut conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        // journal_mode answers with a row, so it is queried, not executed.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(sql)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;").map_err(sql)?;
        migrate(&mut conn, path)?;
        Ok(SqliteStore { path: path.to_path_buf(), conn })
    }

    /// Opens an existing database for reading (export); never creates one.
    pub fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
        let sql = |source| StoreError::Sqlite { path: path.to_path_buf(), source };
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        Ok(conn)
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite { path: self.path.clone(), source }
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let sql = |source| StoreError::Sqlite { path: path.to_path_buf(), source };
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew { path: path.to_path_buf(), found, known: SCHEMA_VERSION });
    }
    for (done, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction().map_err(sql)?;
        tx.execute_batch(step).map_err(sql)?;
        tx.pragma_update(None, "user_version", done as i64 + 1).map_err(sql)?;
        tx.commit().map_err(sql)?;
    }
    Ok(())
}

impl RecordStore for SqliteStore {
    fn write(&mut self, record: &CallRecord) -> Result<(), StoreError> {
        let rows = event_rows(&record.events)?;
        let path = self.path.clone();
        let sql = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(sql)?;
        let transfer = record.transfer.as_ref();
        tx.execute(
            "INSERT INTO calls (call_id, transport, channel, caller_id, dialplan, dialplan_version, audio_format,
                start_unix_ms, end_unix_ms, duration_ms, outcome, transfer_reason, transfer_extension,
                transfer_context, transfer_method, transfer_result, hangup_cause, events_truncated, audio_file)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
            params![
                record.call_id,
                record.transport,
                record.channel,
                record.caller_id,
                record.dialplan,
                record.dialplan_version,
                record.audio_format,
                record.start_unix_ms as i64,
                record.end_unix_ms as i64,
                record.duration_ms as i64,
                record.outcome,
                record.transfer_reason,
                transfer.map(|t| &t.extension),
                transfer.map(|t| &t.context),
                transfer.map(|t| &t.method),
                transfer.map(|t| &t.result),
                record.hangup_cause,
                record.events_truncated,
                record.audio_file.as_ref().map(|p| p.to_string_lossy().into_owned()),
            ],
        )
        .map_err(sql)?;
        let call = tx.last_insert_rowid();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (call, seq, t_ms, type, menu, text, confidence, intent, source, latency_ms,
                        target, reason, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )
                .map_err(sql)?;
            for (seq, row) in rows.iter().enumerate() {
                insert
                    .execute(params![
                        call,
                        seq as i64,
                        row.t_ms as i64,
                        row.kind,
                        row.menu,
                        row.text,
                        row.confidence,
                        row.intent,
                        row.source,
                        row.latency_ms.map(|ms| ms as i64),
                        row.target,
                        row.reason,
                        row.data,
                    ])
                    .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    fn reopen(&mut self) -> Result<(), StoreError> {
        *self = SqliteStore::open(&self.path)?;
        Ok(())
    }

    fn prune(&mut self, cutoff_unix_ms: u64) -> Result<usize, StoreError> {
        self.conn
            .execute("DELETE FROM calls WHERE start_unix_ms < ?1", params![cutoff_unix_ms as i64])
            .map_err(|e| self.sql(e))
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// One row of `events`: the event's JSON (`data`, as in a JSONL record)
/// and the fields worth querying by, as columns.
#[derive(Debug, Default)]
struct EventRow {
    t_ms: u64,
    kind: String,
    menu: Option<String>,
    /// A prompt's text; the caller's words as heard (open transcript) for
    /// utterances and no-matches; the key of a DTMF event.
    text: Option<String>,
    confidence: Option<f32>,
    /// The intent acted on; on an utterance, the intent its words chose.
    intent: Option<String>,
    source: Option<&'static str>,
    /// End of the caller's speech to the action it led to (speech only).
    latency_ms: Option<u64>,
    /// Transfer extension (`context/extension` when a context is named).
    target: Option<String>,
    reason: Option<String>,
    data: String,
}

/// The rows of a call's events, in order. An intent chosen by speech is
/// also written onto the utterance that chose it, with the time from the
/// end of that speech to the action.
fn event_rows(events: &[Event]) -> Result<Vec<EventRow>, serde_json::Error> {
    let mut rows: Vec<EventRow> = Vec::with_capacity(events.len());
    let mut last_utterance: Option<(usize, u64)> = None;
    for e in events {
        // Stored as serialised, so an export gives back the very line a
        // .jsonl store writes (a `Value` would reorder keys and widen f32s).
        let data = serde_json::to_string(e)?;
        let kind = serde_json::from_str::<serde_json::Value>(&data)?["type"].as_str().unwrap_or_default().to_string();
        let mut row = EventRow { kind, data, ..EventRow::default() };
        match e {
            Event::Prompt { t_ms, menu, text } => {
                (row.t_ms, row.menu, row.text) = (*t_ms, Some(menu.clone()), Some(text.clone()));
            }
            Event::Utterance { t_ms, end_ms, text, confidence, .. } => {
                (row.t_ms, row.text, row.confidence) = (*t_ms, Some(text.clone()), Some(*confidence));
                last_utterance = Some((rows.len(), *end_ms));
            }
            Event::Intent { t_ms, menu, intent, confidence, source } => {
                row.t_ms = *t_ms;
                row.menu = Some(menu.clone());
                row.intent = Some(intent.clone());
                row.confidence = Some(*confidence);
                row.source = Some(source_name(*source));
                if let (Source::Speech, Some((at, end_ms))) = (source, last_utterance.take()) {
                    let latency = t_ms.saturating_sub(end_ms);
                    row.latency_ms = Some(latency);
                    if let Some(utterance) = rows.get_mut(at) {
                        utterance.intent = Some(intent.clone());
                        utterance.source = row.source;
                        utterance.latency_ms = Some(latency);
                    }
                }
            }
            Event::NoMatch { t_ms, menu, text } => {
                (row.t_ms, row.menu, row.text) = (*t_ms, Some(menu.clone()), Some(text.clone()));
            }
            Event::NoInput { t_ms, menu } => (row.t_ms, row.menu) = (*t_ms, Some(menu.clone())),
            Event::Dtmf { t_ms, digit } => (row.t_ms, row.text) = (*t_ms, Some(digit.to_string())),
            Event::Collect { t_ms, .. } | Event::Slot { t_ms, .. } | Event::BargeIn { t_ms } => row.t_ms = *t_ms,
            Event::Degraded { t_ms, reason }
            | Event::TransferFailed { t_ms, reason }
            | Event::Hangup { t_ms, reason } => {
                (row.t_ms, row.reason) = (*t_ms, Some(reason.clone()));
            }
            Event::Transfer { t_ms, extension, context } => {
                row.t_ms = *t_ms;
                row.target = Some(match context {
                    Some(c) => format!("{c}/{extension}"),
                    None => extension.clone(),
                });
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

fn source_name(source: Source) -> &'static str {
    match source {
        Source::Speech => "speech",
        Source::Dtmf => "dtmf",
    }
}

/// A stored call as its JSON line: the same fields, in the same order, as
/// a `.jsonl` record (see [`CallRecord`]), the events as stored.
#[derive(serde::Serialize)]
pub struct StoredCall {
    pub call_id: String,
    pub transport: Option<String>,
    pub channel: Option<String>,
    pub caller_id: Option<String>,
    pub start_unix_ms: u64,
    pub end_unix_ms: u64,
    pub duration_ms: u64,
    pub dialplan: Option<String>,
    pub dialplan_version: Option<String>,
    pub audio_format: Option<String>,
    pub outcome: Option<String>,
    pub transfer_reason: Option<String>,
    pub events: Vec<Box<serde_json::value::RawValue>>,
    pub events_truncated: bool,
    pub transfer: Option<TransferRecord>,
    pub hangup_cause: String,
    pub audio_file: Option<PathBuf>,
}

/// Calls that started at or after `since_unix_ms`, oldest first, each with
/// its events; `each` is called per call and may stop the walk (false).
pub fn for_each_call(
    conn: &Connection,
    path: &Path,
    since_unix_ms: u64,
    mut each: impl FnMut(StoredCall) -> bool,
) -> Result<usize, StoreError> {
    let sql = |source| StoreError::Sqlite { path: path.to_path_buf(), source };
    let mut calls = conn
        .prepare(
            "SELECT id, call_id, transport, channel, caller_id, start_unix_ms, end_unix_ms, duration_ms, dialplan,
                dialplan_version, audio_format, outcome, transfer_reason, transfer_extension, transfer_context,
                transfer_method, transfer_result, hangup_cause, events_truncated, audio_file
             FROM calls WHERE start_unix_ms >= ?1 ORDER BY start_unix_ms, id",
        )
        .map_err(sql)?;
    let mut events = conn.prepare("SELECT data FROM events WHERE call = ?1 ORDER BY seq").map_err(sql)?;
    let mut rows = calls.query(params![since_unix_ms as i64]).map_err(sql)?;
    let mut n = 0;
    while let Some(r) = rows.next().map_err(sql)? {
        let id: i64 = r.get(0).map_err(sql)?;
        let extension: Option<String> = r.get(13).map_err(sql)?;
        let transfer = match extension {
            Some(extension) => Some(TransferRecord {
                extension,
                context: r.get::<_, Option<String>>(14).map_err(sql)?.unwrap_or_default(),
                method: r.get::<_, Option<String>>(15).map_err(sql)?.unwrap_or_default(),
                result: r.get::<_, Option<String>>(16).map_err(sql)?.unwrap_or_default(),
            }),
            None => None,
        };
        let mut call_events = Vec::new();
        let mut ev = events.query(params![id]).map_err(sql)?;
        while let Some(e) = ev.next().map_err(sql)? {
            let data: String = e.get(0).map_err(sql)?;
            call_events.push(serde_json::value::RawValue::from_string(data)?);
        }
        let call = StoredCall {
            call_id: r.get(1).map_err(sql)?,
            transport: r.get(2).map_err(sql)?,
            channel: r.get(3).map_err(sql)?,
            caller_id: r.get(4).map_err(sql)?,
            start_unix_ms: r.get::<_, i64>(5).map_err(sql)?.max(0) as u64,
            end_unix_ms: r.get::<_, i64>(6).map_err(sql)?.max(0) as u64,
            duration_ms: r.get::<_, i64>(7).map_err(sql)?.max(0) as u64,
            dialplan: r.get(8).map_err(sql)?,
            dialplan_version: r.get(9).map_err(sql)?,
            audio_format: r.get(10).map_err(sql)?,
            outcome: r.get(11).map_err(sql)?,
            transfer_reason: r.get(12).map_err(sql)?,
            events: call_events,
            events_truncated: r.get(18).map_err(sql)?,
            transfer,
            hangup_cause: r.get(17).map_err(sql)?,
            audio_file: r.get::<_, Option<String>>(19).map_err(sql)?.map(PathBuf::from),
        };
        n += 1;
        if !each(call) {
            break;
        }
    }
    Ok(n)
}

/// The schema version of an open database.
pub fn schema_version(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0)).optional()
}

#[cfg(test)]
mod tests;
