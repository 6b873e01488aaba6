//! The record writer: a thread of its own that owns the store, fed by a
//! bounded queue. A call hands its record over without waiting (a slow
//! disk or a locked database never stalls audio); a record that cannot be
//! queued or stored is counted (`hotline_call_records_lost_total`) and
//! logged at most once a minute, with the number lost since.
//!
//! The store is opened on the writer's thread too (a database across the
//! network may take seconds to answer, and its client may not run inside
//! the server's async runtime); once open, the writer marks the calls this
//! instance left in progress when it last stopped as interrupted, and
//! every [`HOUSEKEEPING_EVERY`] those of any instance older than the
//! longest call.
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::{open_store, unix_ms, CallRecord, RecordStore, StoreError};
use crate::metrics as m;

/// Finished calls that may wait for the disk; more are counted as lost.
pub const RECORD_QUEUE: usize = 1024;
/// Lost records are logged at most this often (a full disk would otherwise
/// log once per call).
const LOSS_REPORT_EVERY: Duration = Duration::from_secs(60);
/// How often calls left in progress by a vanished instance are closed.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);
/// How often old records are deleted when `records_keep_days` is set.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Beyond the longest call, before a call still in progress counts as
/// cut (its instance's clock may differ a little from ours).
const STALE_MARGIN: Duration = Duration::from_secs(300);

/// What the writer keeps besides the records themselves.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// `records_keep_days`: older calls are deleted.
    pub keep_days: Option<u32>,
    /// The name this instance writes its calls under.
    pub instance: String,
    /// `max_call_secs`: a call still in progress after this is cut.
    pub max_call: Duration,
}

enum Command {
    Begin(Box<CallRecord>),
    Write(Box<CallRecord>),
    Reopen,
    /// Answered once everything queued before it is stored.
    Flush(SyncSender<()>),
}

/// The handle calls write through; cheap to clone.
#[derive(Clone)]
pub struct RecordWriter {
    tx: SyncSender<Command>,
    losses: Arc<Mutex<Losses>>,
    /// Written into every record (`instance`).
    instance: Arc<str>,
}

/// Records lost since start, and when that was last logged.
struct Losses {
    /// The store as logs may show it.
    shown: String,
    total: u64,
    unreported: u64,
    last_report: Option<Instant>,
}

impl Losses {
    fn lost(&mut self, call_id: &str, why: &dyn std::fmt::Display) {
        self.total += 1;
        self.unreported += 1;
        let due = self.last_report.is_none_or(|t| t.elapsed() >= LOSS_REPORT_EVERY);
        if due {
            tracing::error!(
                store = %self.shown,
                call_id,
                lost_since_last_report = self.unreported,
                lost_total = self.total,
                "call record lost: {why}"
            );
            self.unreported = 0;
            self.last_report = Some(Instant::now());
        }
    }
}

impl RecordWriter {
    /// Starts the writer thread, which opens the store at `path`. A store
    /// that cannot be opened is logged and tried again at each record:
    /// calls are served either way.
    pub fn start(path: &Path, options: WriterOptions) -> std::io::Result<RecordWriter> {
        let (tx, rx) = sync_channel(RECORD_QUEUE);
        let shown = super::shown(path);
        let losses = Arc::new(Mutex::new(Losses { shown: shown.clone(), total: 0, unreported: 0, last_report: None }));
        let instance = Arc::from(options.instance.as_str());
        let worker = Worker {
            path: path.to_path_buf(),
            shown,
            store: None,
            options,
            losses: Arc::clone(&losses),
            closed_own_calls: false,
        };
        std::thread::Builder::new().name("call-records".into()).spawn(move || worker.run(rx))?;
        Ok(RecordWriter { tx, losses, instance })
    }

    /// Notes a call that started (its row, in stores that keep one);
    /// never blocks. A note that finds the queue full is dropped: the
    /// finished record still makes the row.
    pub fn begin(&self, record: &mut CallRecord) {
        record.instance = Some(self.instance.to_string());
        let _ = self.tx.try_send(Command::Begin(Box::new(record.clone())));
    }

    /// Queues a finished call's record; never blocks.
    pub fn write(&self, mut record: CallRecord) {
        record.instance.get_or_insert_with(|| self.instance.to_string());
        match self.tx.try_send(Command::Write(Box::new(record))) {
            Ok(()) => {}
            Err(TrySendError::Full(Command::Write(r)) | TrySendError::Disconnected(Command::Write(r))) => {
                m::record_lost("queue_full");
                lock(&self.losses).lost(&r.call_id, &"the record queue is full (the store is too slow)");
            }
            Err(_) => {}
        }
    }

    /// Reopens the store (SIGHUP); blocks until done.
    pub fn reopen(&self) {
        if self.tx.send(Command::Reopen).is_ok() {
            self.flush();
        }
    }

    /// Waits until every record queued so far is stored (or lost).
    pub fn flush(&self) {
        let (done_tx, done_rx) = sync_channel(1);
        if self.tx.send(Command::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }

    /// Records lost since the server started.
    pub fn lost(&self) -> u64 {
        lock(&self.losses).total
    }
}

fn lock(losses: &Mutex<Losses>) -> std::sync::MutexGuard<'_, Losses> {
    losses.lock().unwrap_or_else(|p| p.into_inner())
}

struct Worker {
    /// Where the store is (for PostgreSQL, a URL that may hold a password).
    path: PathBuf,
    /// The store as logs may show it.
    shown: String,
    /// `None` while the store cannot be opened; each record tries again.
    store: Option<Box<dyn RecordStore>>,
    options: WriterOptions,
    losses: Arc<Mutex<Losses>>,
    /// The calls left open by this instance's previous run were closed.
    closed_own_calls: bool,
}

impl Worker {
    fn run(mut self, rx: Receiver<Command>) {
        if let Err(e) = self.store() {
            tracing::error!("call records cannot be written: {e}; calls are served, and each record lost is counted");
        }
        // Housekeeping first runs once the store is open (see `store`).
        let mut next_housekeeping = Instant::now() + HOUSEKEEPING_EVERY;
        let mut next_prune = Instant::now();
        loop {
            let now = Instant::now();
            if now >= next_housekeeping {
                self.close_stale_calls(None);
                next_housekeeping = now + HOUSEKEEPING_EVERY;
            }
            if self.options.keep_days.is_some() && now >= next_prune {
                self.prune();
                next_prune = now + PRUNE_EVERY;
            }
            let due =
                if self.options.keep_days.is_some() { next_prune.min(next_housekeeping) } else { next_housekeeping };
            let wait = due.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            let command = match rx.recv_timeout(wait) {
                Ok(c) => c,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            match command {
                Command::Begin(record) => {
                    if let Err(e) = self.store().and_then(|s| s.begin(&record)) {
                        // The finished record will make the row; say why it is late.
                        tracing::warn!(store = %self.shown, call_id = %record.call_id, "call start not recorded: {e}");
                    }
                }
                Command::Write(record) => self.write(&record),
                Command::Reopen => self.reopen(),
                Command::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    /// The open store, opening it if need be, or again when its connection
    /// is gone (the database restarted, the network dropped).
    fn store(&mut self) -> Result<&mut Box<dyn RecordStore>, StoreError> {
        if self.store.as_ref().is_some_and(|s| s.is_broken()) {
            tracing::warn!(store = %self.shown, "call record store connection lost; connecting again");
            self.store = None;
        }
        if self.store.is_none() {
            self.store = Some(open_store(&self.path)?);
            tracing::info!(store = %self.shown, instance = %self.options.instance, "call record store opened");
            // The calls this instance's previous run left open: only at the
            // first opening, before this run has a call of its own on record
            // (a reconnection must not close the calls running now).
            if !self.closed_own_calls {
                self.closed_own_calls = true;
                let instance = self.options.instance.clone();
                self.close_stale_calls(Some(&instance));
            }
        }
        Ok(self.store.as_mut().expect("opened above"))
    }

    /// Marks as interrupted the calls in progress that are older than any
    /// call may be, and those of `restarted` (this instance, starting).
    fn close_stale_calls(&mut self, restarted: Option<&str>) {
        let Some(store) = self.store.as_mut() else { return };
        let oldest = self.options.max_call + STALE_MARGIN;
        let stale_before = unix_ms(SystemTime::now()).saturating_sub(oldest.as_millis() as u64);
        match store.reconcile(restarted.unwrap_or(""), stale_before) {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                store = %self.shown,
                calls = n,
                instance = restarted.unwrap_or(""),
                "calls left in progress by a stopped instance marked interrupted (their callers were sent on by the PBX)"
            ),
            Err(e) => tracing::warn!(store = %self.shown, "calls left in progress not checked: {e}"),
        }
    }

    fn write(&mut self, record: &CallRecord) {
        let mut written = self.store().and_then(|s| s.write(record));
        if written.is_err() && self.store.as_ref().is_some_and(|s| s.is_broken()) {
            // The connection went while writing: `store` connects again,
            // and the record gets a second chance.
            written = self.store().and_then(|s| s.write(record));
        }
        match written {
            Ok(()) => m::record_written(),
            Err(e) => {
                m::record_lost("store_failed");
                lock(&self.losses).lost(&record.call_id, &e);
            }
        }
    }

    fn reopen(&mut self) {
        let reopened = match self.store.as_mut() {
            Some(s) => s.reopen(),
            None => self.store().map(drop),
        };
        match reopened {
            Ok(()) => tracing::info!(store = %self.shown, "call record store reopened"),
            Err(e) => {
                self.store = None;
                tracing::error!(store = %self.shown, "cannot reopen the call record store: {e}");
            }
        }
    }

    fn prune(&mut self) {
        let Some(days) = self.options.keep_days else { return };
        let cutoff = unix_ms(SystemTime::now()).saturating_sub(u64::from(days) * 86_400_000);
        match self.store().and_then(|s| s.prune(cutoff)) {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, keep_days = days, "old call records deleted"),
            Err(e) => tracing::warn!("old call records not deleted: {e}"),
        }
    }
}
