//! `hotline bench ...`: accuracy, latency, real-time factor and memory.
#[derive(clap::Subcommand, Debug)]
pub enum Bench {
    /// Open-vocabulary speech recognition accuracy and speed on the recordings in testdata.
    Asr(crate::bench::asr::AsrArgs),
    /// Grammar-constrained recognition vs open decoding: digits, commands,
    /// out-of-grammar rejection, clean and in noise. With --dialplan: whole
    /// calls through the call machine (intents, false accepts, latency).
    Intents(crate::bench::grammar::IntentsArgs),
    /// Simultaneous emulated PBX calls (any transport) served in real time.
    Load(crate::bench::load::LoadArgs),
    /// Calls starting and ending for minutes: the server's memory and open
    /// files at the start, peak and end, calls completed, call records.
    Soak(crate::bench::soak::SoakArgs),
}

pub fn run(b: Bench) -> u8 {
    match b {
        Bench::Asr(a) => crate::bench::asr::run(a),
        Bench::Intents(a) => crate::bench::grammar::run(a),
        Bench::Load(a) => crate::bench::load::run(a),
        Bench::Soak(a) => crate::bench::soak::run(a),
    }
}
