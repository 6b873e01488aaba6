//! `hotline bench ...`: accuracy, latency, real-time factor and memory.
#[derive(clap::Subcommand, Debug)]
pub enum Bench {
    /// Open-vocabulary speech recognition accuracy and speed on the recordings in testdata.
    Asr(crate::bench::asr::AsrArgs),
}

pub fn run(b: Bench) -> u8 {
    match b {
        Bench::Asr(a) => crate::bench::asr::run(a),
    }
}
