//! `hotline bench ...`: accuracy, latency, real-time factor and memory.
#[derive(clap::Subcommand, Debug)]
pub enum Bench {
    /// Speech recognition accuracy and speed on the recordings in testdata.
    Asr(AsrArgs),
    /// Grammar-constrained recognition vs open decoding: digits, commands,
    /// out-of-grammar rejection, clean and in noise.
    Intents(crate::bench::grammar::IntentsArgs),
}

#[derive(clap::Args, Debug)]
pub struct AsrArgs {
    /// Folder with the test recordings (default: ../shared/testdata).
    #[arg(long)]
    pub data: Option<std::path::PathBuf>,
}

pub fn run(b: Bench) -> u8 {
    match b {
        Bench::Asr(_a) => 0,
        Bench::Intents(a) => crate::bench::grammar::run(a),
    }
}
