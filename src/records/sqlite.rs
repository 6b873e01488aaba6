//! Opening the SQLite record store (`call_records = "calls.db"`, the
//! default). WAL mode, so readers (`hotline records export`, the
//! dashboard, an admin's `sqlite3`) never block the writer.
use std::path::Path;

use rusqlite::Connection;

use super::db::{sqlite_error, Db};
use super::StoreError;

/// A writer waits this long for another process's lock (an admin's
/// long query) before the record counts as lost.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens (creates) the database file for writing; the caller migrates it.
pub fn open(path: &Path) -> Result<Db, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: path.to_path_buf(), source })?;
    }
    let sql = |source| sqlite_error(path, source);
    let conn = Connection::open(path).map_err(sql)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
    // journal_mode answers with a row, so it is queried, not executed.
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(sql)?;
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;").map_err(sql)?;
    Ok(Db::Sqlite { conn, path: path.to_path_buf() })
}

/// Opens an existing database for reading; never creates one.
pub fn open_read_only(path: &Path) -> Result<Db, StoreError> {
    if !path.exists() {
        // Opening would fail with "unable to open database file": say what is wrong.
        let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        return Err(StoreError::Io { path: path.to_path_buf(), source });
    }
    let sql = |source| sqlite_error(path, source);
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
    Ok(Db::Sqlite { conn, path: path.to_path_buf() })
}
