//! How a command's failure reaches the person who ran it: each command
//! returns its own error type, and `main` prints it once, here, the same
//! way for every command, then exits with the code the error maps to.
//!
//! The exit codes say who must act (README, "Commands"): 2, the input is
//! wrong (a file, an argument, the config); 1, hotline could not do its
//! work (models, listeners, rendering). Input errors are one plain line
//! that starts with the file or argument at fault, as a compiler's are, so
//! editors and scripts can read them; the other failures are an `ERROR`
//! line of the log, where `serve`'s operators look for everything else it
//! says. Every error's message already names its cause, so only the
//! outermost message is printed.
use std::fmt::Display;

use super::record_test::RecordTestError;
use super::suggest::SuggestError;
use super::transcribe::TranscribeError;
use super::{bench::BenchError, records::RecordsError, replay::ReplayError, say::SayError, serve::ServeError};

/// Exit code of an error in the input (file, argument, config).
pub const BAD_INPUT: u8 = 2;
/// Exit code of a failure to do the work (models, listeners, rendering).
pub const FAILED: u8 = 1;

/// Why a command stopped before doing its work.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Transcribe(#[from] TranscribeError),
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error(transparent)]
    Say(#[from] SayError),
    #[error(transparent)]
    Bench(#[from] BenchError),
    #[error(transparent)]
    Records(#[from] RecordsError),
    #[error(transparent)]
    RecordTest(#[from] RecordTestError),
    #[error(transparent)]
    Suggest(#[from] SuggestError),
}

impl CliError {
    /// The documented exit code of this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Serve(e) => e.exit_code(),
            CliError::Transcribe(e) => e.exit_code(),
            CliError::Replay(_) => BAD_INPUT,
            CliError::Say(e) => e.exit_code(),
            CliError::Bench(_) => BAD_INPUT,
            CliError::Records(e) => e.exit_code(),
            CliError::RecordTest(e) => e.exit_code(),
            CliError::Suggest(e) => e.exit_code(),
        }
    }
}

/// Prints `error` once and returns its exit code.
pub fn report(error: &CliError) -> u8 {
    let code = error.exit_code();
    print_error(error, code);
    code
}

/// Prints an error the way [`report`] does: for errors a command reports
/// and carries on after (one unreadable file among several).
pub fn print_error(error: &dyn Display, exit_code: u8) {
    // A log filtered down to nothing (RUST_LOG=off) must not swallow the
    // reason the command failed.
    if exit_code == BAD_INPUT || !tracing::enabled!(target: "hotline", tracing::Level::ERROR) {
        eprintln!("{error}");
    } else {
        tracing::error!(target: "hotline", "{error}");
    }
}
