//! Why speech recognition could not load or could not answer. Each error
//! names what is at fault (the model file, the engine stage) so an
//! operator reading the log knows where to look.
use std::path::PathBuf;

use super::pool::PoolError;
use super::whisper::model::LanguageError;
use super::whisper::tokens::TokenTableError;

#[derive(Debug, thiserror::Error)]
pub enum AsrError {
    #[error("model: {0}")]
    Model(#[from] ModelError),
    #[error("recognition failed: {0}")]
    Failed(#[from] RecognitionError),
    #[error("model: {0}")]
    Tokens(#[from] TokenTableError),
    #[error("model: {0}")]
    Runtime(#[from] super::runtime::RuntimeError),
    #[error("model: {0}")]
    Language(#[from] LanguageError),
    /// The utterance waited in the pool's queue until a newer one of the
    /// same call took its place; nobody waits for its answer any more.
    #[error("superseded by a newer utterance of the same call")]
    Superseded,
}

/// A model file that cannot serve: missing, damaged, or not the model the
/// code expects.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "model file {} is missing; run scripts/setup (it copies the models from $HOTLINE_MODELS or ../shared/models)",
        .0.display()
    )]
    Missing(PathBuf),
    #[error("model file {} is empty; delete it and run scripts/setup", .0.display())]
    Empty(PathBuf),
    #[error(
        "model file {} is corrupt (its SHA-256 does not match SHA256SUMS); delete it and run scripts/setup",
        .0.display()
    )]
    Corrupt(PathBuf),
    #[error("cannot read {}: {source}", .path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// ONNX Runtime refused the file (or its in-memory rewrite).
    #[error("loading {}{}: {source}", .path.display(), if *.rewritten { " (rewritten)" } else { "" })]
    Load { path: PathBuf, rewritten: bool, source: ort::Error },
    #[error("{}: reading metadata: {source}", .path.display())]
    Metadata { path: PathBuf, source: ort::Error },
    #[error("{}: metadata `{key}` is missing or not a number", .path.display())]
    MetadataKey { path: PathBuf, key: String },
    /// The file loads but is not what the code was written for; `what`
    /// says how it differs.
    #[error("{}: {what}", .path.display())]
    Unexpected { path: PathBuf, what: String },
    #[error("{}: {source}", .path.display())]
    Language { path: PathBuf, source: LanguageError },
    /// The sherpa-onnx engine gives no reason when it cannot load.
    #[error("sherpa-onnx could not load Whisper from {}", .0.display())]
    Engine(PathBuf),
}

/// One utterance that could not be recognised.
#[derive(Debug, thiserror::Error)]
pub enum RecognitionError {
    #[error("{stage}: {source}")]
    Runtime { stage: &'static str, source: ort::Error },
    /// Tensors of a shape the model should not get or give.
    #[error("{stage}: {what}")]
    Shape { stage: &'static str, what: String },
    #[error("whisper decoder: empty prompt")]
    EmptyPrompt,
    #[error("phrase of {bytes} bytes is longer than {limit}: {start:?}…")]
    PhraseTooLong { bytes: usize, limit: usize, start: String },
    #[error("the sherpa-onnx engine decodes English only, not language {0:?}")]
    EnglishOnlyEngine(String),
    /// The voice detector failed, so no utterance could be cut out.
    #[error("voice detection: {0}")]
    VoiceDetection(String),
    #[error(transparent)]
    Queue(#[from] PoolError),
    /// The utterance could not be brought to another speed.
    #[error("changing the utterance's speed: {0}")]
    Speed(#[from] crate::audio::ResampleError),
    #[error("recognition worker stopped")]
    WorkerStopped,
    #[error("recogniser panicked")]
    Panicked,
}
