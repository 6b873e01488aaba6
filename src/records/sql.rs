//! Call records in a SQL database: SQLite (`call_records = "calls.db"`,
//! the default) or PostgreSQL (`call_records = "postgres://…"`, one
//! database for a fleet of instances). Same tables and behaviour in both
//! (see [`super::schema`]).
//!
//! A call's row is written when the call starts (`outcome` =
//! `in_progress`, with the instance serving it) and completed with its
//! events when it ends, in one transaction. A row left `in_progress` by an
//! instance that died (SIGKILL, a crash, a lost machine) is marked
//! `interrupted` when an instance of that name starts again, or by any
//! instance once it is older than the longest a call may last: every call
//! that started has exactly one row, and none stays open for ever.
use std::path::{Path, PathBuf};

use super::db::{Db, Param, Row, Value};
use super::{schema, CallRecord, RecordStore, StoreError, StoreKind, TransferRecord};
use crate::call::{Event, Source};

/// The outcome of a call's row while the call runs.
pub const IN_PROGRESS: &str = "in_progress";
/// The outcome of a call whose instance stopped before it ended.
pub const INTERRUPTED: &str = "interrupted";

/// Calls read per query when walking the stored calls.
const PAGE: i64 = 500;

pub struct SqlStore {
    /// The path or URL the store was opened with (it may hold a password:
    /// never logged, see [`Db::shown`]).
    location: PathBuf,
    db: Db,
}

impl SqlStore {
    /// Opens (creates) the database and brings its schema up to date.
    pub fn open(location: &Path) -> Result<SqlStore, StoreError> {
        let mut db = match StoreKind::of(location) {
            StoreKind::Postgres => super::postgres::connect(location)?,
            _ => super::sqlite::open(location)?,
        };
        schema::migrate(&mut db)?;
        Ok(SqlStore { location: location.to_path_buf(), db })
    }
}

/// The columns of `calls` a record fills, in [`call_params`]' order.
const CALL_COLUMNS: [&str; 20] = [
    "call_id",
    "transport",
    "channel",
    "caller_id",
    "dialplan",
    "dialplan_version",
    "audio_format",
    "start_unix_ms",
    "end_unix_ms",
    "duration_ms",
    "outcome",
    "transfer_reason",
    "transfer_extension",
    "transfer_context",
    "transfer_method",
    "transfer_result",
    "hangup_cause",
    "events_truncated",
    "audio_file",
    "instance",
];

fn call_params<'a>(record: &'a CallRecord, audio_file: &'a Option<String>) -> Vec<Param<'a>> {
    let transfer = record.transfer.as_ref();
    vec![
        Param::from(&record.call_id),
        Param::from(&record.transport),
        Param::from(&record.channel),
        Param::from(&record.caller_id),
        Param::from(&record.dialplan),
        Param::from(&record.dialplan_version),
        Param::from(&record.audio_format),
        Param::from(record.start_unix_ms),
        Param::from(record.end_unix_ms),
        Param::from(record.duration_ms),
        Param::from(&record.outcome),
        Param::from(&record.transfer_reason),
        Param::Text(transfer.map(|t| t.extension.as_str())),
        Param::Text(transfer.map(|t| t.context.as_str())),
        Param::Text(transfer.map(|t| t.method.as_str())),
        Param::Text(transfer.map(|t| t.result.as_str())),
        Param::from(&record.hangup_cause),
        Param::from(record.events_truncated),
        Param::from(audio_file),
        Param::from(&record.instance),
    ]
}

fn insert_call(db: &mut Db, params: &[Param<'_>]) -> Result<i64, StoreError> {
    let placeholders: Vec<String> = (1..=CALL_COLUMNS.len()).map(|i| format!("?{i}")).collect();
    let sql =
        format!("INSERT INTO calls ({}) VALUES ({}) RETURNING id", CALL_COLUMNS.join(", "), placeholders.join(", "));
    let row = db.query_one(&sql, params)?;
    Ok(row.and_then(|r| r.first().map(Value::i64)).unwrap_or_default())
}

impl RecordStore for SqlStore {
    fn begin(&mut self, record: &CallRecord) -> Result<(), StoreError> {
        let open = CallRecord {
            outcome: Some(IN_PROGRESS.into()),
            end_unix_ms: record.start_unix_ms,
            events: Vec::new(),
            ..record.clone()
        };
        insert_call(&mut self.db, &call_params(&open, &None)).map(drop)
    }

    fn write(&mut self, record: &CallRecord) -> Result<(), StoreError> {
        let rows = event_rows(&record.events)?;
        let audio_file = record.audio_file.as_ref().map(|p| p.to_string_lossy().into_owned());
        let params = call_params(record, &audio_file);
        self.db.transaction(|db| {
            // The row written when the call started, if it was.
            let open = match &record.instance {
                Some(instance) => db.query_one(
                    "SELECT id FROM calls WHERE call_id = ?1 AND instance = ?2 AND outcome = ?3
                     ORDER BY id DESC LIMIT 1",
                    &[Param::from(&record.call_id), Param::from(instance), Param::from(IN_PROGRESS)],
                )?,
                None => None,
            };
            let call = match open.and_then(|r| r.first().map(Value::i64)) {
                Some(id) => {
                    let set: Vec<String> =
                        CALL_COLUMNS.iter().enumerate().map(|(i, c)| format!("{c} = ?{}", i + 1)).collect();
                    let sql = format!("UPDATE calls SET {} WHERE id = ?{}", set.join(", "), CALL_COLUMNS.len() + 1);
                    let mut with_id = params.clone();
                    with_id.push(Param::from(id));
                    db.execute(&sql, &with_id)?;
                    id
                }
                None => insert_call(db, &params)?,
            };
            for (seq, row) in rows.iter().enumerate() {
                db.execute(
                    "INSERT INTO events (call, seq, t_ms, type, menu, text, confidence, intent, source, latency_ms,
                        target, reason, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    &[
                        Param::from(call),
                        Param::from(seq as u64),
                        Param::from(row.t_ms),
                        Param::from(&row.kind),
                        Param::from(&row.menu),
                        Param::from(&row.text),
                        Param::Real(row.confidence.map(f64::from)),
                        Param::from(&row.intent),
                        Param::Text(row.source),
                        Param::Int(row.latency_ms.map(|ms| ms as i64)),
                        Param::from(&row.target),
                        Param::from(&row.reason),
                        Param::from(&row.data),
                    ],
                )?;
            }
            Ok(())
        })
    }

    fn reconcile(&mut self, instance: &str, stale_before_unix_ms: u64) -> Result<u64, StoreError> {
        self.db.execute(
            "UPDATE calls SET outcome = ?1, end_unix_ms = start_unix_ms,
                hangup_cause = 'the hotline instance stopped during the call'
             WHERE outcome = ?2 AND (instance = ?3 OR start_unix_ms < ?4)",
            &[
                Param::from(INTERRUPTED),
                Param::from(IN_PROGRESS),
                Param::from(instance),
                Param::from(stale_before_unix_ms),
            ],
        )
    }

    fn is_broken(&self) -> bool {
        self.db.is_closed()
    }

    fn reopen(&mut self) -> Result<(), StoreError> {
        *self = SqlStore::open(&self.location)?;
        Ok(())
    }

    fn prune(&mut self, cutoff_unix_ms: u64) -> Result<usize, StoreError> {
        let n = self.db.execute("DELETE FROM calls WHERE start_unix_ms < ?1", &[Param::from(cutoff_unix_ms)])?;
        Ok(n as usize)
    }

    fn path(&self) -> &Path {
        self.db.shown()
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
    pub instance: Option<String>,
}

const STORED_COLUMNS: &str = "id, call_id, transport, channel, caller_id, start_unix_ms, end_unix_ms, duration_ms,
    dialplan, dialplan_version, audio_format, outcome, transfer_reason, transfer_extension, transfer_context,
    transfer_method, transfer_result, hangup_cause, events_truncated, audio_file, instance";

/// Finished calls that started at or after `since_unix_ms`, oldest first,
/// each with its events; `each` is called per call and may stop the walk
/// (false). Calls still in progress are not finished calls: left out.
/// Read a page at a time, so a year of calls is never held whole.
pub fn for_each_call(
    db: &mut Db,
    since_unix_ms: u64,
    mut each: impl FnMut(StoredCall) -> bool,
) -> Result<usize, StoreError> {
    let mut n = 0;
    // Where the last page ended: (start, id), the order calls are walked in.
    let mut after: (i64, i64) = (i64::try_from(since_unix_ms).unwrap_or(i64::MAX), -1);
    loop {
        let page = db.query(
            &format!(
                "SELECT {STORED_COLUMNS} FROM calls
                 WHERE (start_unix_ms > ?1 OR (start_unix_ms = ?1 AND id > ?2)) AND (outcome IS NULL OR outcome != ?3)
                 ORDER BY start_unix_ms, id LIMIT ?4"
            ),
            &[Param::from(after.0), Param::from(after.1), Param::from(IN_PROGRESS), Param::from(PAGE)],
        )?;
        let full = page.len() as i64 == PAGE;
        for row in page {
            after = (row[5].i64(), row[0].i64());
            let call = stored_call(db, row)?;
            n += 1;
            if !each(call) {
                return Ok(n);
            }
        }
        if !full {
            return Ok(n);
        }
    }
}

fn stored_call(db: &mut Db, r: Row) -> Result<StoredCall, StoreError> {
    let mut events = Vec::new();
    for e in db.query("SELECT data FROM events WHERE call = ?1 ORDER BY seq", &[Param::from(r[0].i64())])? {
        events.push(serde_json::value::RawValue::from_string(e[0].text().unwrap_or_default())?);
    }
    let transfer = r[13].text().map(|extension| TransferRecord {
        extension,
        context: r[14].text().unwrap_or_default(),
        method: r[15].text().unwrap_or_default(),
        result: r[16].text().unwrap_or_default(),
    });
    Ok(StoredCall {
        call_id: r[1].text().unwrap_or_default(),
        transport: r[2].text(),
        channel: r[3].text(),
        caller_id: r[4].text(),
        start_unix_ms: r[5].u64(),
        end_unix_ms: r[6].u64(),
        duration_ms: r[7].u64(),
        dialplan: r[8].text(),
        dialplan_version: r[9].text(),
        audio_format: r[10].text(),
        outcome: r[11].text(),
        transfer_reason: r[12].text(),
        events,
        events_truncated: r[18].bool(),
        transfer,
        hangup_cause: r[17].text().unwrap_or_default(),
        audio_file: r[19].text().map(PathBuf::from),
        instance: r[20].text(),
    })
}

#[cfg(test)]
mod tests;
