//! The one ONNX Runtime of the process.
//!
//! sherpa-onnx links `libonnxruntime.so` from its wheel; `ort` (used for
//! Silero VAD and Whisper scoring) loads the very same library at run time,
//! so both share one runtime and one set of threads.
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use super::{AsrError, ModelError};

const LIB: &str = "libonnxruntime.so";

fn candidates() -> Vec<PathBuf> {
    let mut c = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        c.push(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            c.push(dir.join(LIB));
            if let Some(up) = dir.parent() {
                c.push(up.join(LIB)); // tests run from target/*/deps
            }
        }
    }
    let built = env!("HOTLINE_NATIVE_LIB_DIR");
    if !built.is_empty() {
        c.push(PathBuf::from(built).join(LIB));
    }
    c
}

/// Why ONNX Runtime is not available. Kept for the life of the process
/// (the runtime is set up once), so causes are shared, not owned.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    #[error("{LIB} not found next to the binary or in .native/; run scripts/setup or set ORT_DYLIB_PATH")]
    NotFound,
    #[error("loading {}: {source}", .path.display())]
    Load { path: PathBuf, source: Arc<ort::LoadDynamicError> },
    #[error("starting ONNX Runtime: {0}")]
    Start(#[source] Arc<ort::Error>),
}

/// The process-wide `ort` environment, created on first use.
pub fn environment() -> Result<&'static ort::environment::Environment, RuntimeError> {
    static ENV: OnceLock<Result<ort::environment::Environment, RuntimeError>> = OnceLock::new();
    ENV.get_or_init(|| {
        let path = candidates().into_iter().find(|p| p.exists()).ok_or(RuntimeError::NotFound)?;
        let builder =
            ort::init_from(&path).map_err(|e| RuntimeError::Load { path: path.clone(), source: Arc::new(e) })?;
        builder.with_name("hotline").build().map_err(|e| RuntimeError::Start(Arc::new(e)))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// A session with one intra-op thread: parallelism comes from running
/// several calls at once, not from splitting one small model.
pub fn session(path: &std::path::Path) -> Result<ort::session::Session, AsrError> {
    super::models::require(path)?;
    builder()
        .and_then(|mut b| b.commit_from_file(path))
        .map_err(|source| ModelError::Load { path: path.to_path_buf(), rewritten: false, source }.into())
}

/// Like [`session`], for a graph rewritten in memory from `path`, run by
/// `threads` intra-op threads: the shared Whisper decoder is the one
/// session every call's recognition queues for, so it uses every core.
pub fn session_from_memory(
    bytes: &[u8],
    path: &std::path::Path,
    threads: usize,
) -> Result<ort::session::Session, AsrError> {
    builder()
        .and_then(|b| {
            if threads <= 1 {
                return Ok(b);
            }
            // Idle pool threads sleep instead of spinning: the cores are
            // needed by the other calls' voice detection meanwhile.
            Ok(b.with_intra_threads(threads)?.with_config_entry("session.intra_op.allow_spinning", "0")?)
        })
        .and_then(|mut b| b.commit_from_memory(bytes))
        .map_err(|source| ModelError::Load { path: path.to_path_buf(), rewritten: true, source }.into())
}

fn builder() -> Result<ort::session::builder::SessionBuilder, ort::Error> {
    let env = environment().map_err(|e| ort::Error::new(e.to_string()))?;
    Ok(ort::session::Session::builder(env)?.with_intra_threads(1)?.with_inter_threads(1)?)
}
