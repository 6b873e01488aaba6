//! Call records: one JSON line per finished call, appended to the
//! configured file, plus the caller's audio as WAV when asked for.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

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
#[derive(Clone)]
pub struct RecordWriter {
    path: PathBuf,
    file: Arc<Mutex<Option<std::fs::File>>>,
}

impl RecordWriter {
    /// Opens (creates) the file now so a bad path fails at start-up.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(RecordWriter { path: path.to_path_buf(), file: Arc::new(Mutex::new(Some(f))) })
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
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = guard.as_mut() {
            // One write_all of a whole line: lines of concurrent calls never
            // interleave (O_APPEND, under the lock).
            if let Err(e) = f.write_all(line.as_bytes()).and_then(|_| f.flush()) {
                tracing::error!(file = %self.path.display(), "writing call record failed: {e}");
            }
        }
    }
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

    pub fn write(&self, dir: &Path, call_id: &str) -> Result<PathBuf, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let safe: String = call_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
        let path = dir.join(format!("{safe}.wav"));
        crate::audio::write_wav(&path, self.rate, &self.samples).map_err(|e| e.to_string())?;
        Ok(path)
    }
}
