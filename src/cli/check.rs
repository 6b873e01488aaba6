//! `hotline check PATH...`: validate dialplans the way the server would
//! load them, and print every problem.
//!
//! Everything goes to stdout (logs stay on stderr): each diagnostic as
//! `file:line:col: error|warning: message` with an optional `  = help:`
//! line, then one summary line per file, `file: ok` or `file: 2 errors,
//! 1 warning`. Exit 0 when clean (warnings allowed), 1 on errors, 2 when a
//! file cannot be read or is not valid TOML.
//!
//! A dialplan's `language` is judged against the recogniser the server
//! runs: `[recognizer] model` of `--config` when that file exists, else the
//! default model (tiny.en, English only).
//!
//! `--asterisk` also asks Asterisk over AMI (the `[ami]` section of
//! `--config`) whether every transfer target of the valid dialplans exists:
//! one `file: error: option: transfer target ...` line per missing one, then
//! `asterisk: N transfer targets checked, M missing`. Missing targets exit
//! 1; no `[ami]` or no answer from Asterisk exits 2.
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::dialplan::{check_paths, CheckOptions, FileReport};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dialplan files, or folders whose `*.toml` files are checked.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Also ask Asterisk (AMI) whether every transfer target exists.
    #[arg(long)]
    pub asterisk: bool,
    /// Server configuration: its `[recognizer] model` decides which
    /// dialplan languages can be heard (when the file exists); `--asterisk`
    /// uses its `[ami]` and `transfer.default_context`.
    #[arg(long, default_value = "hotline.toml")]
    pub config: PathBuf,
}

pub fn run(args: Args) -> u8 {
    // Text prompts are spoken by the TTS voice; when it can't run, every
    // text-only prompt gets a warning (calls then need WAV prompts).
    let renderer = crate::prompts::PromptRenderer::new(
        &crate::asr::models::ModelPaths::default_location(),
        crate::prompts::default_cache_dir(),
    );
    let mut out = std::io::stdout().lock();
    let recognizer_model = match recognizer_model(&args.config) {
        Ok(m) => m,
        Err(e) => {
            // Every problem of the file, each already naming it and its place.
            let _ = writeln!(out, "{e}");
            return 2;
        }
    };
    let report = check_paths(
        &args.paths,
        &CheckOptions {
            tts_unavailable: renderer.tts_status().err().map(|e| e.to_string()),
            recognizer_model: Some(recognizer_model),
        },
    );
    for file in &report.files {
        for d in &file.diagnostics {
            let _ = writeln!(out, "{d}");
        }
        let _ = writeln!(out, "{}", summary(file));
    }
    let code = report.exit_code();
    if !args.asterisk {
        return code;
    }
    let valid: Vec<&Path> =
        report.files.iter().filter(|f| f.parsed && f.errors() == 0).map(|f| f.path.as_path()).collect();
    code.max(check_in_asterisk(&args.config, &valid, &mut out))
}

/// The recogniser the server would run: the config's when it exists, else
/// the default.
fn recognizer_model(config: &Path) -> Result<crate::asr::models::WhisperModelName, crate::config::ConfigError> {
    if !config.exists() {
        return Ok(Default::default());
    }
    crate::config::ServerConfig::load(config).map(|c| c.recognizer_model)
}

/// `--asterisk`: the transfer targets of the valid dialplans, asked of
/// Asterisk. Returns the exit code of this part.
fn check_in_asterisk(config: &Path, files: &[&Path], out: &mut impl Write) -> u8 {
    let cfg = match crate::config::ServerConfig::load(config) {
        Ok(c) => c,
        Err(e) => {
            // Every problem of the file, each already naming it and its place.
            let _ = writeln!(out, "{e}");
            return 2;
        }
    };
    let Some(ami) = cfg.ami.clone() else {
        let _ = writeln!(out, "{}: error: --asterisk needs an [ami] section to reach Asterisk", config.display());
        return 2;
    };
    let plans: Vec<_> = files.iter().filter_map(|f| crate::dialplan::load(f).ok()).collect();
    let refs: Vec<&crate::dialplan::Dialplan> = plans.iter().collect();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(out, "asterisk: error: cannot start the async runtime: {e}");
            return 2;
        }
    };
    let checked = runtime.block_on(crate::server::targets::check_dialplans(&ami, &cfg.transfer.default_context, &refs));
    match checked {
        Ok(report) => {
            for m in &report.missing {
                let _ = writeln!(
                    out,
                    "{}: error: {}: transfer target {},{} does not exist in Asterisk: {}",
                    m.file.display(),
                    m.option,
                    m.context,
                    m.extension,
                    m.reason
                );
            }
            let _ = writeln!(
                out,
                "asterisk: {} transfer targets checked, {} missing",
                report.checked,
                report.missing.len()
            );
            u8::from(!report.missing.is_empty())
        }
        Err(e) => {
            let _ = writeln!(out, "asterisk: error: {e}");
            2
        }
    }
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
