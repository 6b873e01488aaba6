//! Command-line front ends; `main.rs` only parses and dispatches.
pub mod bench;
pub mod check;
mod error;
pub mod record_test;
pub mod records;
pub mod replay;
pub mod say;
pub mod serve;
pub mod suggest;
pub mod transcribe;

pub use error::{report, CliError};

/// Logs go to stderr (stdout carries JSON lines); `RUST_LOG` filters.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Writes one line to stdout; false when stdout is gone (e.g. piped into
/// `head`), so commands stop quietly instead of panicking in `println!`.
pub fn print_line(line: &str) -> bool {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{line}").is_ok()
}
