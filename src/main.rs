//! The `hotline` command: a thin layer over the library.
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hotline::cli::CliError;

#[derive(Parser)]
#[command(name = "hotline", version, about = "Offline voice front end for phone hotlines")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve live calls from the PBX: Asterisk (chan_websocket, AudioSocket), FreeSWITCH, Twilio.
    Serve(hotline::cli::serve::Args),
    /// Transcribe WAV files: one JSON line per utterance.
    Transcribe(hotline::cli::transcribe::Args),
    /// Replay recorded calls against a dialplan (virtual clock, JSON timeline).
    Replay(hotline::cli::replay::Args),
    /// Check dialplans: every problem at once, as file:line:col.
    Check(hotline::cli::check::Args),
    /// Measure accuracy, latency and memory (runs `hotline-bench`, built apart).
    Bench(hotline::cli::bench::Args),
    /// Render a prompt (text or WAV) to a WAV file, as callers will hear it.
    Say(hotline::cli::say::Args),
    /// Call records: `records export --format jsonl [--since DATE]`.
    Records(hotline::cli::records::Args),
    /// Make replay cases (WAV + expectation file) of recorded calls, for `hotline replay --dialplan FILE DIR`.
    RecordTest(hotline::cli::record_test::Args),
    /// Learn from call records: what callers said that was not understood, and dialplan changes for it.
    Suggest(hotline::cli::suggest::Args),
}

fn main() -> ExitCode {
    hotline::cli::init_logging();
    let cli = Cli::parse();
    // Ok: the command ran, and the code is its verdict (e.g. `check` found
    // errors), which it has printed as its output. Err: it could not run;
    // the reason is printed here, once.
    let outcome: Result<u8, CliError> = match cli.command {
        Command::Serve(args) => hotline::cli::serve::run(args).map_err(CliError::from),
        Command::Transcribe(args) => hotline::cli::transcribe::run(args).map_err(CliError::from),
        Command::Replay(args) => hotline::cli::replay::run_cli(args).map_err(CliError::from),
        Command::Check(args) => Ok(hotline::cli::check::run(args)),
        Command::Bench(b) => hotline::cli::bench::run(b).map_err(CliError::from),
        Command::Say(args) => hotline::cli::say::run(args).map_err(CliError::from),
        Command::Records(args) => hotline::cli::records::run(args).map_err(CliError::from),
        Command::RecordTest(args) => hotline::cli::record_test::run(args).map_err(CliError::from),
        Command::Suggest(args) => hotline::cli::suggest::run(args).map_err(CliError::from),
    };
    ExitCode::from(outcome.unwrap_or_else(|e| hotline::cli::report(&e)))
}
