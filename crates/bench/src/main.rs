//! `hotline-bench` (also run as `hotline bench ...`): accuracy, latency,
//! real-time factor and memory.
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hotline_bench::{asr, grammar, load, soak};

#[derive(Parser)]
#[command(
    name = "hotline-bench",
    bin_name = "hotline bench",
    version,
    about = "Measure hotline's accuracy, latency and memory"
)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand, Debug)]
enum Bench {
    /// Open-vocabulary speech recognition accuracy and speed on the recordings in testdata.
    Asr(asr::AsrArgs),
    /// Grammar-constrained recognition vs open decoding: digits, commands,
    /// out-of-grammar rejection, clean and in noise. With --dialplan: whole
    /// calls through the call machine (intents, false accepts, latency).
    Intents(grammar::IntentsArgs),
    /// Simultaneous emulated PBX calls (any transport) served in real time.
    Load(load::LoadArgs),
    /// Calls starting and ending for minutes: the server's memory and open
    /// files at the start, peak and end, calls completed, call records.
    Soak(soak::SoakArgs),
}

fn main() -> ExitCode {
    hotline::cli::init_logging();
    let code = match Cli::parse().bench {
        Bench::Asr(a) => asr::run(a),
        Bench::Intents(a) => grammar::run(a),
        Bench::Load(a) => load::run(a),
        Bench::Soak(a) => soak::run(a),
    };
    ExitCode::from(code)
}
