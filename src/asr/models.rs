//! Where the model files are, and a clear error when one is missing.
use std::path::{Path, PathBuf};

use super::AsrError;

/// The model folder: `$HOTLINE_MODELS_DIR`, else `models/` in the current
/// directory, else `models/` next to the source tree the binary was built
/// from (so `cargo run` and tests work from anywhere in the repo).
pub fn models_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HOTLINE_MODELS_DIR") {
        return PathBuf::from(d);
    }
    let local = PathBuf::from("models");
    if local.join("SHA256SUMS").exists() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

#[derive(Debug, Clone)]
pub struct ModelPaths {
    pub whisper_encoder: PathBuf,
    pub whisper_decoder: PathBuf,
    pub whisper_tokens: PathBuf,
    pub silero_vad: PathBuf,
    pub tts_model: PathBuf,
    pub tts_tokens: PathBuf,
}

impl ModelPaths {
    pub fn in_dir(dir: &Path) -> Self {
        let w = dir.join("whisper-tiny.en");
        let t = dir.join("vits-piper-en_US-joe-medium");
        ModelPaths {
            whisper_encoder: w.join("tiny.en-encoder.int8.onnx"),
            whisper_decoder: w.join("tiny.en-decoder.int8.onnx"),
            whisper_tokens: w.join("tiny.en-tokens.txt"),
            silero_vad: dir.join("silero_vad.onnx"),
            tts_model: t.join("en_US-joe-medium.onnx"),
            tts_tokens: t.join("tokens.txt"),
        }
    }

    pub fn default_location() -> Self {
        Self::in_dir(&models_dir())
    }
}

/// Fails with one message naming the file and how to get it, instead of
/// letting ONNX Runtime crash on a missing or empty file.
pub fn require(path: &Path) -> Result<(), AsrError> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > 0 => Ok(()),
        Ok(_) => Err(AsrError::Model(format!(
            "model file {} is empty; delete it and run scripts/setup",
            path.display()
        ))),
        Err(_) => Err(AsrError::Model(format!(
            "model file {} is missing; run scripts/setup (it copies the models from $HOTLINE_MODELS or ../shared/models)",
            path.display()
        ))),
    }
}
