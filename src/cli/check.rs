//! `hotline check PATH...`: validate dialplans the way the server would
//! load them, and print every problem.
//!
//! Everything goes to stdout (logs stay on stderr): each diagnostic as
//! `file:line:col: error|warning: message` with an optional `  = help:`
//! line, then one summary line per file, `file: ok` or `file: 2 errors,
//! 1 warning`. Exit 0 when clean (warnings allowed), 1 on errors, 2 when a
//! file cannot be read or is not valid TOML.
use std::io::Write;
use std::path::PathBuf;

use crate::dialplan::{check_paths, CheckOptions, FileReport};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dialplan files, or folders whose `*.toml` files are checked.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

pub fn run(args: Args) -> u8 {
    // Text prompts are spoken by the TTS voice; when it can't run, every
    // text-only prompt gets a warning (calls then need WAV prompts).
    let renderer = crate::prompts::PromptRenderer::new(
        &crate::asr::models::ModelPaths::default_location(),
        crate::prompts::default_cache_dir(),
    );
    let report = check_paths(&args.paths, &CheckOptions { tts_unavailable: renderer.tts_status().err() });
    let mut out = std::io::stdout().lock();
    for file in &report.files {
        for d in &file.diagnostics {
            let _ = writeln!(out, "{d}");
        }
        let _ = writeln!(out, "{}", summary(file));
    }
    report.exit_code()
}

fn summary(file: &FileReport) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let (errors, warnings) = (file.errors(), file.warnings());
    let what = match (errors, warnings) {
        (0, 0) => "ok".to_string(),
        (0, w) => format!("ok, {}", plural(w, "warning")),
        (e, 0) => plural(e, "error"),
        (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    };
    format!("{}: {what}", file.path.display())
}
