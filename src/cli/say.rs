//! `hotline say --text "..." --out prompt.wav`: renders a prompt the way a
//! call would hear it, so an admin can listen to it (and warm the cache).
use std::path::PathBuf;

use crate::asr::models::ModelPaths;
use crate::audio::{samples_to_ms, write_wav, WavError};
use crate::dialplan::Prompt;
use crate::prompts::{default_cache_dir, PromptError, PromptRenderer};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to say.
    #[arg(long, default_value = "")]
    pub text: String,
    /// A recorded prompt; it wins over --text, which is spoken only when the
    /// file cannot be used.
    #[arg(long)]
    pub wav: Option<PathBuf>,
    /// Sample rate of the output: 8000 for telephone legs, 16000 for slin16.
    #[arg(long, default_value_t = 8000)]
    pub rate: u32,
    /// Where to write the WAV file (16-bit PCM mono).
    #[arg(long)]
    pub out: PathBuf,
    /// Rendered-prompt cache [default: $HOTLINE_PROMPT_CACHE or .cache/prompts].
    #[arg(long)]
    pub cache: Option<PathBuf>,
}

/// Why `hotline say` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum SayError {
    /// Exit 1.
    #[error(transparent)]
    Render(#[from] PromptError),
    /// Exit 2.
    #[error("{}: {source}", .path.display())]
    Write { path: PathBuf, source: WavError },
}

impl SayError {
    pub fn exit_code(&self) -> u8 {
        match self {
            SayError::Render(_) => super::error::FAILED,
            SayError::Write { .. } => super::error::BAD_INPUT,
        }
    }
}

/// Exit codes: 0 written, 1 the prompt could not be rendered, 2 the output
/// file could not be written.
pub fn run(args: Args) -> Result<u8, SayError> {
    let renderer = PromptRenderer::new(&ModelPaths::default_location(), args.cache.unwrap_or_else(default_cache_dir));
    let prompt = Prompt { text: args.text, wav: args.wav };
    let samples = renderer.render(&prompt, args.rate)?;
    write_wav(&args.out, args.rate, &samples).map_err(|source| SayError::Write { path: args.out.clone(), source })?;
    eprintln!(
        "hotline: wrote {} ({:.2} s at {} Hz)",
        args.out.display(),
        samples_to_ms(samples.len(), args.rate) as f64 / 1000.0,
        args.rate
    );
    Ok(0)
}
