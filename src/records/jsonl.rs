//! Call records as JSON lines: one line per finished call, appended to a
//! file (`call_records = "calls.jsonl"`).
//!
//! A record is never glued to a broken line: each is written as one whole
//! line, and a write that fails half-way (disk full, file size limit) is
//! cut back off the file, or, if even that fails, the next record starts
//! with a newline. When the path stops naming the open file (log rotation
//! moved or deleted it) the next record reopens it, so records land at the
//! configured path again.
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{CallRecord, RecordStore, StoreError};

pub struct JsonlStore {
    path: PathBuf,
    /// `None` after a reopen failed; the next record tries again.
    open: Option<OpenFile>,
}

struct OpenFile {
    file: std::fs::File,
    /// Device and inode: the file the path named when it was opened.
    identity: (u64, u64),
}

impl JsonlStore {
    /// Opens (creates) the file now so a bad path shows at start-up.
    pub fn open(path: &Path) -> Result<JsonlStore, StoreError> {
        let open = OpenFile::open(path).map_err(|source| StoreError::Io { path: path.to_path_buf(), source })?;
        Ok(JsonlStore { path: path.to_path_buf(), open: Some(open) })
    }

    fn io(&self, source: std::io::Error) -> StoreError {
        StoreError::Io { path: self.path.clone(), source }
    }

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
        // One write_all of a whole line (O_APPEND): a reader never sees
        // two records glued together.
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
}

impl RecordStore for JsonlStore {
    fn write(&mut self, record: &CallRecord) -> Result<(), StoreError> {
        let mut line = serde_json::to_string(record)?;
        line.push('\n');
        self.append(line.as_bytes()).map_err(|e| self.io(e))
    }

    fn reopen(&mut self) -> Result<(), StoreError> {
        self.open = None;
        self.open = Some(OpenFile::open(&self.path).map_err(|e| self.io(e))?);
        Ok(())
    }

    fn path(&self) -> &Path {
        &self.path
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
