//! `hotline records export`: the stored call records as JSON lines on
//! stdout, for log pipelines (`... | vector`, `... > calls.jsonl`).
use std::path::PathBuf;

use crate::config::ServerConfig;
use crate::records::export::{export_jsonl, parse_since, ExportError};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Print the stored calls, oldest first, one JSON line each (the lines a
    /// `.jsonl` store writes).
    Export(ExportArgs),
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Output format; JSON lines is the one there is.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// Only calls that started at or after this UTC date or time
    /// (`2026-12-01` or `2026-12-01T08:00:00Z`).
    #[arg(long)]
    pub since: Option<String>,
    #[command(flatten)]
    pub records: RecordsLocation,
}

/// Where a command reads the stored calls: `--db`, else the `call_records`
/// of `--config`, else `calls.db` (the server's default).
#[derive(clap::Args, Debug)]
pub struct RecordsLocation {
    /// The server configuration whose `call_records` to read.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The records file itself (overrides `--config`); default `calls.db`.
    #[arg(long)]
    pub db: Option<PathBuf>,
}

/// Why the records' place could not be known: both are the user's to fix.
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{}: call records are off (call_records = \"\")", .0.display())]
    RecordsOff(PathBuf),
}

impl RecordsLocation {
    pub fn path(&self) -> Result<PathBuf, LocateError> {
        match (&self.db, &self.config) {
            (Some(db), _) => Ok(db.clone()),
            (None, Some(config)) => {
                ServerConfig::load(config)?.general.call_records.ok_or_else(|| LocateError::RecordsOff(config.clone()))
            }
            (None, None) => Ok(PathBuf::from(crate::config::DEFAULT_CALL_RECORDS)),
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    Jsonl,
}

/// Why `records export` stopped.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("--since: {0}")]
    Since(String),
    #[error(transparent)]
    Locate(#[from] LocateError),
    #[error(transparent)]
    Export(#[from] ExportError),
}

impl RecordsError {
    /// 2: the arguments or the config are wrong; 1: the records could not
    /// be read.
    pub fn exit_code(&self) -> u8 {
        match self {
            RecordsError::Export(_) => super::error::FAILED,
            _ => super::error::BAD_INPUT,
        }
    }
}

pub fn run(args: Args) -> Result<u8, RecordsError> {
    match args.command {
        Command::Export(a) => export(a),
    }
}

fn export(args: ExportArgs) -> Result<u8, RecordsError> {
    let since = args.since.as_deref().map(parse_since).transpose().map_err(RecordsError::Since)?.unwrap_or(0);
    let path = args.records.path()?;
    let Format::Jsonl = args.format;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match export_jsonl(&path, since, &mut out).and_then(|n| {
        std::io::Write::flush(&mut out).map_err(ExportError::Write)?;
        Ok(n)
    }) {
        Ok(n) => {
            tracing::info!(calls = n, file = %path.display(), "call records exported");
            Ok(0)
        }
        // Stdout closed early (`| head`): nothing more to do.
        Err(ExportError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(e.into()),
    }
}
