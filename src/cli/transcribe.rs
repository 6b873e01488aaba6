//! `hotline transcribe FILE...`: one JSON line per utterance.
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::asr::{AsrError, Grammar, SpeechConfig, SpeechStack, VadEvent, VoiceDetector};
use crate::audio::{read_wav, MODEL_RATE};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// WAV files (16-bit PCM, 8-48 kHz, mono or stereo).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Recognition threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Silence (ms) that ends an utterance.
    #[arg(long, default_value_t = 500)]
    pub min_silence_ms: u64,
}

#[derive(Serialize)]
struct Line<'a> {
    file: &'a str,
    start_ms: u64,
    end_ms: u64,
    text: &'a str,
    decode_ms: u64,
}

/// Exit codes: 0 all files transcribed, 2 some file could not be read (the
/// others are still transcribed), 1 the speech stack could not start.
pub fn run(args: Args) -> u8 {
    let mut cfg = SpeechConfig { threads: args.threads, ..Default::default() };
    cfg.endpoint.min_silence_ms = args.min_silence_ms;
    let stack = match SpeechStack::load(&cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hotline: {e}");
            return 1;
        }
    };
    let mut code = 0;
    for file in &args.files {
        if let Err(e) = transcribe_file(&stack, file) {
            eprintln!("hotline: {}: {e}", file.display());
            code = 2;
        }
    }
    code
}

#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error(transparent)]
    Wav(#[from] crate::audio::WavError),
    #[error(transparent)]
    Asr(#[from] AsrError),
}

fn transcribe_file(stack: &SpeechStack, file: &std::path::Path) -> Result<(), FileError> {
    let audio = read_wav(file)?;
    if let Some(ch) = audio.downmixed_from {
        eprintln!("hotline: {}: {ch} channels averaged to mono", file.display());
    }
    let samples = audio.to_f32_at(MODEL_RATE);
    let mut vad = stack.detector();
    let mut events = vad.accept(&samples);
    events.extend(vad.flush());
    if let Some(reason) = vad.failed.take() {
        return Err(AsrError::Failed(reason).into());
    }
    // Queue every utterance first so the pool decodes them in parallel.
    let grammar = Arc::new(Grammar::default());
    let mut pending = Vec::new();
    for ev in events {
        if let VadEvent::Utterance(u) = ev {
            let rx = stack.pool.submit(Arc::clone(&u.samples), Arc::clone(&grammar));
            pending.push((u, rx));
        }
    }
    let name = file.display().to_string();
    for (u, rx) in pending {
        let rec = match rx {
            Ok(rx) => rx.blocking_recv().unwrap_or_else(|_| Err(AsrError::Failed("worker stopped".into()))),
            // The queue is full: decode this one here rather than lose it.
            Err(_) => stack.recognizer.recognize(&u.samples, &grammar),
        }?;
        let line = Line { file: &name, start_ms: u.start_ms, end_ms: u.end_ms, text: &rec.text, decode_ms: rec.decode_ms };
        println!("{}", serde_json::to_string(&line).expect("plain struct serialises"));
    }
    Ok(())
}
