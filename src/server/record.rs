//! Call records: one JSON line per finished call, appended to the
//! configured file, plus the caller's audio as WAV when asked for.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::call::Event;

/// Timeline entries kept per call; a call that somehow produces more (a
/// caller pressing keys for an hour) keeps the first ones and says so.
pub const MAX_EVENTS: usize = 2_000;

#[derive(Debug, Clone, Serialize, Default)]
pub struct CallRecord {
    pub call_id: String,
    pub channel: Option<String>,
    pub caller_id: Option<String>,
    /// Unix time in milliseconds.
    pub start_unix_ms: u64,
    pub end_unix_ms: u64,
    pub duration_ms: u64,
    pub dialplan: Option<String>,
    pub dialplan_version: Option<String>,
    pub audio_format: Option<String>,
    /// Prompts, utterances (text, confidence), intents, DTMF, transfers,
    /// in order, as the call machine reported them.
    pub events: Vec<Event>,
    pub events_truncated: bool,
    pub transfer: Option<TransferRecord>,
    pub hangup_cause: String,
    /// Caller audio file, when audio is kept.
    pub audio_file: Option<PathBuf>,
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

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Appends records to one file, one line each, shared by all calls.
///
/// A record is never glued to a broken line: each is written as one whole
/// line, and a write that fails half-way (disk full, file size limit) is
/// cut back off the file, or, if even that fails, the next record starts
/// with a newline. Lost records are counted and logged (at most once a
/// minute, with the number lost since). When the path stops naming the
/// open file (log rotation moved or deleted it) the next record reopens
/// it, so records land at the configured path again.
#[derive(Clone)]
pub struct RecordWriter {
    file: Arc<Mutex<RecordFile>>,
}

struct RecordFile {
    path: PathBuf,
    /// `None` after a reopen failed; the next record tries again.
    open: Option<OpenFile>,
    /// Records that could not be written since the server started.
    lost: u64,
    /// Lost since the last log line about it.
    lost_unreported: u64,
    last_report: Option<Instant>,
}

struct OpenFile {
    file: std::fs::File,
    /// Device and inode: the file the path named when it was opened.
    identity: (u64, u64),
}

/// Lost records are logged at most this often (a full disk would otherwise
/// log once per call).
const LOSS_REPORT_EVERY: Duration = Duration::from_secs(60);

impl RecordWriter {
    /// Opens (creates) the file now so a bad path fails at start-up.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let open = OpenFile::open(path)?;
        let file =
            RecordFile { path: path.to_path_buf(), open: Some(open), lost: 0, lost_unreported: 0, last_report: None };
        Ok(RecordWriter { file: Arc::new(Mutex::new(file)) })
    }

    /// Writes one line. Blocking (small write); callers use spawn_blocking.
    pub fn write(&self, record: &CallRecord) {
        let mut line = match serde_json::to_string(record) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(call_id = %record.call_id, "call record not serialisable: {e}");
                return;
            }
        };
        line.push('\n');
        let mut file = self.lock();
        if let Err(e) = file.append(line.as_bytes()) {
            file.record_lost(&record.call_id, &e);
        }
    }

    /// Closes the file and opens the path again (SIGHUP, after the admin
    /// rotated it by hand).
    pub fn reopen(&self) {
        let mut file = self.lock();
        match OpenFile::open(&file.path) {
            Ok(open) => {
                file.open = Some(open);
                tracing::info!(file = %file.path.display(), "call record file reopened");
            }
            Err(e) => {
                file.open = None;
                tracing::error!(file = %file.path.display(), "cannot reopen the call record file: {e}");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RecordFile> {
        self.file.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl RecordFile {
    /// Appends `line` whole or not at all (as far as the file system lets).
    fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.follow_path()?;
        let Some(open) = self.open.as_mut() else {
            return Err(std::io::Error::other("the file is not open"));
        };
        let size = open.file.metadata()?.len();
        let mut bytes = Vec::with_capacity(line.len() + 1);
        if !ends_with_newline(&open.file, size)? {
            // What a failed write left and could not be cut off.
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(line);
        // One write_all of a whole line under the lock (O_APPEND): lines of
        // concurrent calls never interleave.
        let written = open.file.write_all(&bytes).and_then(|()| open.file.flush());
        if written.is_err() {
            // Cut the partial line off so the file ends with a whole record.
            let _ = open.file.set_len(size);
        }
        written
    }

    /// Reopens the path when it no longer names the open file (moved,
    /// deleted or replaced by log rotation) or the last open failed.
    fn follow_path(&mut self) -> std::io::Result<()> {
        let current = std::fs::metadata(&self.path).ok().map(|m| identity(&m));
        if let (Some(open), Some(now)) = (&self.open, current) {
            if open.identity == now {
                return Ok(());
            }
        }
        let reason = if self.open.is_none() { "was not open" } else { "was moved or replaced" };
        self.open = None;
        self.open = Some(OpenFile::open(&self.path)?);
        tracing::info!(file = %self.path.display(), "call record file {reason}; writing to a new one");
        Ok(())
    }

    fn record_lost(&mut self, call_id: &str, e: &std::io::Error) {
        self.lost += 1;
        self.lost_unreported += 1;
        let due = self.last_report.is_none_or(|t| t.elapsed() >= LOSS_REPORT_EVERY);
        if due {
            tracing::error!(
                file = %self.path.display(),
                call_id,
                lost_since_last_report = self.lost_unreported,
                lost_total = self.lost,
                "call record lost: {e}"
            );
            self.lost_unreported = 0;
            self.last_report = Some(Instant::now());
        }
    }
}

impl OpenFile {
    fn open(path: &Path) -> std::io::Result<OpenFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        // Readable too, to look at the last byte before appending.
        let file = std::fs::OpenOptions::new().create(true).read(true).append(true).open(path)?;
        let identity = identity(&file.metadata()?);
        Ok(OpenFile { file, identity })
    }
}

fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// Whether the file is empty or its last byte ends a line.
fn ends_with_newline(file: &std::fs::File, size: u64) -> std::io::Result<bool> {
    use std::os::unix::fs::FileExt;
    if size == 0 {
        return Ok(true);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, size - 1)?;
    Ok(last[0] == b'\n')
}

/// Caller audio of one call, bounded (the call's maximum length).
pub struct AudioKeeper {
    rate: u32,
    samples: Vec<i16>,
    max_samples: usize,
}

impl AudioKeeper {
    pub fn new(rate: u32, max_secs: u64) -> Self {
        AudioKeeper { rate, samples: Vec::new(), max_samples: (rate as u64 * max_secs) as usize }
    }

    pub fn push(&mut self, s: &[i16]) {
        let room = self.max_samples.saturating_sub(self.samples.len());
        self.samples.extend_from_slice(&s[..s.len().min(room)]);
    }

    pub fn write(&self, dir: &Path, call_id: &str) -> Result<PathBuf, KeepAudioError> {
        std::fs::create_dir_all(dir).map_err(|source| KeepAudioError::Folder { dir: dir.to_path_buf(), source })?;
        let safe: String =
            call_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
        let path = dir.join(format!("{safe}.wav"));
        crate::audio::write_wav(&path, self.rate, &self.samples)
            .map_err(|source| KeepAudioError::Wav { path: path.clone(), source })?;
        Ok(path)
    }
}

/// Why a call's audio could not be kept (the call itself is unaffected).
#[derive(Debug, thiserror::Error)]
pub enum KeepAudioError {
    #[error("{}: cannot create the folder: {source}", .dir.display())]
    Folder { dir: PathBuf, source: std::io::Error },
    #[error("{}: cannot write the WAV file: {source}", .path.display())]
    Wav { path: PathBuf, source: crate::audio::WavError },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_audio_that_cannot_be_written_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the WAV should go: the write fails on the file itself.
        std::fs::create_dir(dir.path().join("call-7.wav")).unwrap();
        let mut keeper = AudioKeeper::new(8_000, 10);
        keeper.push(&[0; 160]);
        let err = keeper.write(dir.path(), "call-7").unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:", dir.path().join("call-7.wav").display())), "{err}");
    }

    #[test]
    fn kept_audio_folder_that_cannot_be_created_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("not-a-folder");
        std::fs::write(&blocked, b"x").unwrap();
        let err = AudioKeeper::new(8_000, 10).write(&blocked, "call-7").unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: cannot create the folder", blocked.display())), "{err}");
    }
}
