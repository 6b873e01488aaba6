//! The record writer: a thread of its own that owns the store, fed by a
//! bounded queue. A call hands its record over without waiting (a slow
//! disk or a locked database never stalls audio); a record that cannot be
//! queued or stored is counted (`hotline_call_records_lost_total`) and
//! logged at most once a minute, with the number lost since.
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
/// How often old records are deleted when `records_keep_days` is set.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

enum Command {
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
}

/// Records lost since start, and when that was last logged.
struct Losses {
    path: PathBuf,
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
                file = %self.path.display(),
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
    /// Opens the store at `path` and starts the writer thread. A store that
    /// cannot be opened now is logged and tried again at each record:
    /// calls are served either way.
    pub fn start(path: &Path, keep_days: Option<u32>) -> std::io::Result<RecordWriter> {
        let store = match open_store(path) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(
                    "call records cannot be written: {e}; calls are served, and each record lost is counted"
                );
                None
            }
        };
        let (tx, rx) = sync_channel(RECORD_QUEUE);
        let losses =
            Arc::new(Mutex::new(Losses { path: path.to_path_buf(), total: 0, unreported: 0, last_report: None }));
        let worker = Worker { path: path.to_path_buf(), store, keep_days, losses: Arc::clone(&losses) };
        std::thread::Builder::new().name("call-records".into()).spawn(move || worker.run(rx))?;
        Ok(RecordWriter { tx, losses })
    }

    /// Queues a finished call's record; never blocks.
    pub fn write(&self, record: CallRecord) {
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
    path: PathBuf,
    /// `None` while the store cannot be opened; each record tries again.
    store: Option<Box<dyn RecordStore>>,
    keep_days: Option<u32>,
    losses: Arc<Mutex<Losses>>,
}

impl Worker {
    fn run(mut self, rx: Receiver<Command>) {
        let mut next_prune = Instant::now();
        loop {
            if self.keep_days.is_some() && Instant::now() >= next_prune {
                self.prune();
                next_prune = Instant::now() + PRUNE_EVERY;
            }
            let wait = next_prune.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            let command = match rx.recv_timeout(if self.keep_days.is_some() { wait } else { PRUNE_EVERY }) {
                Ok(c) => c,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            match command {
                Command::Write(record) => self.write(&record),
                Command::Reopen => self.reopen(),
                Command::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    fn store(&mut self) -> Result<&mut Box<dyn RecordStore>, StoreError> {
        if self.store.is_none() {
            self.store = Some(open_store(&self.path)?);
            tracing::info!(file = %self.path.display(), "call record store opened");
        }
        Ok(self.store.as_mut().expect("opened above"))
    }

    fn write(&mut self, record: &CallRecord) {
        let written = self.store().and_then(|s| s.write(record));
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
            None => open_store(&self.path).map(|s| self.store = Some(s)),
        };
        match reopened {
            Ok(()) => tracing::info!(file = %self.path.display(), "call record file reopened"),
            Err(e) => {
                self.store = None;
                tracing::error!(file = %self.path.display(), "cannot reopen the call record file: {e}");
            }
        }
    }

    fn prune(&mut self) {
        let Some(days) = self.keep_days else { return };
        let cutoff = unix_ms(SystemTime::now()).saturating_sub(u64::from(days) * 86_400_000);
        match self.store().and_then(|s| s.prune(cutoff)) {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, keep_days = days, "old call records deleted"),
            Err(e) => tracing::warn!("old call records not deleted: {e}"),
        }
    }
}
