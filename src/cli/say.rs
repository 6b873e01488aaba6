//! `hotline say --text "..." --out prompt.wav`: renders a prompt the way a
//! call would hear it, so an admin can listen to it (and warm the cache).
use std::path::PathBuf;

use crate::asr::models::ModelPaths;
use crate::audio::{samples_to_ms, write_wav};
use crate::dialplan::Prompt;
use crate::prompts::{default_cache_dir, PromptRenderer};

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

/// Exit codes: 0 written, 1 the prompt could not be rendered, 2 the output
/// file could not be written.
pub fn run(args: Args) -> u8 {
    let renderer = PromptRenderer::new(&ModelPaths::default_location(), args.cache.unwrap_or_else(default_cache_dir));
    let prompt = Prompt { text: args.text, wav: args.wav };
    let samples = match renderer.render(&prompt, args.rate) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hotline: {e}");
            return 1;
        }
    };
    if let Err(e) = write_wav(&args.out, args.rate, &samples) {
        eprintln!("hotline: {}: {e}", args.out.display());
        return 2;
    }
    eprintln!(
        "hotline: wrote {} ({:.2} s at {} Hz)",
        args.out.display(),
        samples_to_ms(samples.len(), args.rate) as f64 / 1000.0,
        args.rate
    );
    0
}
