//! Call records: what each finished call did, kept for operators and log
//! pipelines, plus the caller's audio as WAV when asked for.
//!
//! A call's session fills one [`CallRecord`] from the call machine's events
//! and hands it to the [`RecordWriter`] when the call ends. The writer owns
//! a [`RecordStore`] on a thread of its own, behind a bounded queue, so a
//! slow or full disk never stalls a call's audio; what cannot be written
//! is counted (metric and log), never silently dropped.
//!
//! Stores: SQL ([`sql`]: one row per call and one per event) in SQLite
//! ([`sqlite`], the default) or PostgreSQL ([`postgres`], one database
//! for a fleet of instances), and JSON lines ([`jsonl`], when the path
//! ends in `.jsonl`).
//!
//! Stored calls are read back as JSON lines ([`export`]) and as the calls
//! they were ([`recorded`]), which [`replay_case`] makes into replay cases;
//! the dashboard asks its questions through [`queries`].
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::call::Event;

mod audio;
pub mod db;
pub mod export;
pub mod jsonl;
pub mod postgres;
pub mod queries;
pub mod recorded;
pub mod replay_case;
pub mod schema;
pub mod sql;
pub mod sqlite;
mod writer;

pub use audio::{AudioKeeper, KeepAudioError};
pub use writer::{RecordWriter, WriterOptions, RECORD_QUEUE};

/// Timeline entries kept per call; a call that somehow produces more (a
/// caller pressing keys for an hour) keeps the first ones and says so.
pub const MAX_EVENTS: usize = 2_000;

#[derive(Debug, Clone, Serialize, Default)]
pub struct CallRecord {
    pub call_id: String,
    /// The PBX transport the call came in on (`asterisk_ws`, `audiosocket`, ...).
    pub transport: Option<String>,
    pub channel: Option<String>,
    pub caller_id: Option<String>,
    /// Unix time in milliseconds.
    pub start_unix_ms: u64,
    pub end_unix_ms: u64,
    pub duration_ms: u64,
    pub dialplan: Option<String>,
    pub dialplan_version: Option<String>,
    pub audio_format: Option<String>,
    /// How the call ended, one of [`Outcome`]'s names.
    pub outcome: Option<String>,
    /// Why the caller was transferred (`asked`, `escalated`, `dialplan`).
    pub transfer_reason: Option<String>,
    /// Prompts, utterances (text, confidence), intents, DTMF, transfers,
    /// in order, as the call machine reported them.
    pub events: Vec<Event>,
    pub events_truncated: bool,
    pub transfer: Option<TransferRecord>,
    pub hangup_cause: String,
    /// Caller audio file, when audio is kept.
    pub audio_file: Option<PathBuf>,
    /// The hotline instance that served the call (`instance_name`).
    pub instance: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TransferRecord {
    pub extension: String,
    pub context: String,
    /// `ami-redirect`, `ami-blind-transfer` or `hangup`.
    pub method: String,
    /// `ok` or the reason it failed.
    pub result: String,
}

impl CallRecord {
    pub fn push_event(&mut self, e: Event) {
        if self.events.len() < MAX_EVENTS {
            self.events.push(e);
        } else {
            self.events_truncated = true;
        }
    }
}

/// How a call ended: the `outcome` of its record and the label of
/// `hotline_calls_finished_total`. A closed set, so metric labels stay few.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The bot finished the call (goodbye, a message, the caller's request done).
    Completed,
    /// The caller reached a human.
    Transferred,
    /// A transfer was tried and did not land.
    TransferFailed,
    /// The caller hung up while talking to the bot.
    CallerHungUp,
    /// The call could not be served or was cut by hotline (protocol
    /// error, no dialplan, shutdown, maximum duration).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Transferred => "transferred",
            Outcome::TransferFailed => "transfer_failed",
            Outcome::CallerHungUp => "caller_hung_up",
            Outcome::Error => "error",
        }
    }
}

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Where records are kept. Implementations are used from the writer's
/// own thread only, so they may block.
pub trait RecordStore: Send {
    /// Notes a call that started, so that a call whose instance dies
    /// still leaves its row (see [`RecordStore::reconcile`]). Stores that
    /// only append (a file) write finished calls only.
    fn begin(&mut self, _record: &CallRecord) -> Result<(), StoreError> {
        Ok(())
    }

    /// Stores one finished call, whole or not at all.
    fn write(&mut self, record: &CallRecord) -> Result<(), StoreError>;

    /// The store's connection is gone for good (a database server that
    /// restarted): the writer opens it again rather than failing every
    /// record from now on.
    fn is_broken(&self) -> bool {
        false
    }

    /// Closes and opens the store again (SIGHUP, after log rotation).
    fn reopen(&mut self) -> Result<(), StoreError>;

    /// Deletes the calls that started before `cutoff_unix_ms`; how many.
    /// Stores that cannot delete (an append-only file) keep everything.
    fn prune(&mut self, _cutoff_unix_ms: u64) -> Result<usize, StoreError> {
        Ok(0)
    }

    /// Marks as interrupted the calls still in progress that `instance`
    /// started (it is starting again: they were cut when it stopped) or
    /// that started before `stale_before_unix_ms` (longer than any call
    /// may last: their instance is gone). How many.
    fn reconcile(&mut self, _instance: &str, _stale_before_unix_ms: u64) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// The path (for PostgreSQL, the address without password), for log lines.
    fn path(&self) -> &Path;
}

/// Why a record could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", .path.display())]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("{at}: {message}")]
    Postgres { at: String, message: String },
    #[error("{}: database schema version {found} is newer than this hotline knows ({known})", .path.display())]
    SchemaTooNew { path: PathBuf, found: i64, known: i64 },
    #[error("record not serialisable: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Which store a `call_records` value means: PostgreSQL for a
/// `postgres://` URL, JSON lines for `*.jsonl`, else SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
    Jsonl,
}

impl StoreKind {
    pub fn of(path: &Path) -> StoreKind {
        if postgres::is_url(path) {
            StoreKind::Postgres
        } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("jsonl")) {
            StoreKind::Jsonl
        } else {
            StoreKind::Sqlite
        }
    }
}

/// Opens (creating it) the store `path` names.
pub fn open_store(path: &Path) -> Result<Box<dyn RecordStore>, StoreError> {
    Ok(match StoreKind::of(path) {
        StoreKind::Jsonl => Box::new(jsonl::JsonlStore::open(path)?),
        StoreKind::Sqlite | StoreKind::Postgres => Box::new(sql::SqlStore::open(path)?),
    })
}

/// Opens a SQL store for reading (SQLite read-only; never creating a
/// file). `None` for a JSON lines file, which is read as a file.
pub fn open_reader(path: &Path) -> Result<Option<db::Db>, StoreError> {
    match StoreKind::of(path) {
        StoreKind::Jsonl => Ok(None),
        StoreKind::Sqlite => sqlite::open_read_only(path).map(Some),
        StoreKind::Postgres => postgres::connect(path).map(Some),
    }
}

/// A `call_records` value as logs may show it (a PostgreSQL URL without
/// its password).
pub fn shown(path: &Path) -> String {
    match StoreKind::of(path) {
        StoreKind::Postgres => postgres::shown(path),
        _ => path.display().to_string(),
    }
}
