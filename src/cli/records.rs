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
    /// The server configuration whose `call_records` to read.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The records file itself (overrides `--config`); default `calls.db`.
    #[arg(long)]
    pub db: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    Jsonl,
}

/// Exit codes: 0 exported, 1 the records could not be read, 2 bad
/// arguments or config.
pub fn run(args: Args) -> u8 {
    match args.command {
        Command::Export(a) => export(a),
    }
}

fn export(args: ExportArgs) -> u8 {
    let since = match args.since.as_deref().map(parse_since).transpose() {
        Ok(s) => s.unwrap_or(0),
        Err(e) => {
            eprintln!("--since: {e}");
            return 2;
        }
    };
    let path = match (args.db, args.config) {
        (Some(db), _) => db,
        (None, Some(config)) => match ServerConfig::load(&config) {
            Ok(cfg) => match cfg.call_records {
                Some(p) => p,
                None => {
                    eprintln!("{}: call records are off (call_records = \"\")", config.display());
                    return 2;
                }
            },
            Err(e) => {
                eprintln!("{e}");
                return 2;
            }
        },
        (None, None) => PathBuf::from(crate::config::DEFAULT_CALL_RECORDS),
    };
    let Format::Jsonl = args.format;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match export_jsonl(&path, since, &mut out).and_then(|n| {
        std::io::Write::flush(&mut out).map_err(ExportError::Write)?;
        Ok(n)
    }) {
        Ok(n) => {
            tracing::info!(calls = n, file = %path.display(), "call records exported");
            0
        }
        // Stdout closed early (`| head`): nothing more to do.
        Err(ExportError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}
