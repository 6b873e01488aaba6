//! Where the model files are, and a clear error when one is missing.
use std::path::{Path, PathBuf};

use super::{AsrError, ModelError};

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

/// The Whisper models hotline can run, each a folder of the models folder
/// (`[recognizer] model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhisperModelName {
    /// English only, 4 + 4 layers: fastest.
    #[default]
    TinyEn,
    /// Multilingual, 6 + 6 layers: about twice the CPU of tiny.en.
    Base,
}

impl WhisperModelName {
    pub const ALL: [WhisperModelName; 2] = [WhisperModelName::TinyEn, WhisperModelName::Base];

    /// The folder name, also the name in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            WhisperModelName::TinyEn => "whisper-tiny.en",
            WhisperModelName::Base => "whisper-base",
        }
    }

    /// How the files inside the folder start (`tiny.en-encoder.int8.onnx`).
    fn file_prefix(self) -> &'static str {
        match self {
            WhisperModelName::TinyEn => "tiny.en",
            WhisperModelName::Base => "base",
        }
    }

    /// `"whisper-tiny.en" | "whisper-base"`, for error messages.
    pub fn choices() -> String {
        Self::ALL.iter().map(|m| format!("{:?}", m.name())).collect::<Vec<_>>().join(" | ")
    }
}

impl std::fmt::Display for WhisperModelName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A model name hotline does not know; says which ones it does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not one of {}", WhisperModelName::choices())]
pub struct ModelNameError {
    pub name: String,
}

impl std::str::FromStr for WhisperModelName {
    type Err = ModelNameError;

    fn from_str(s: &str) -> Result<Self, ModelNameError> {
        Self::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| ModelNameError { name: s.to_string() })
    }
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
    /// The default Whisper model (tiny.en) and the other models in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self::in_dir_with(dir, WhisperModelName::default())
    }

    pub fn in_dir_with(dir: &Path, whisper: WhisperModelName) -> Self {
        let w = dir.join(whisper.name());
        let prefix = whisper.file_prefix();
        let t = dir.join("vits-piper-en_US-joe-medium");
        ModelPaths {
            whisper_encoder: w.join(format!("{prefix}-encoder.int8.onnx")),
            whisper_decoder: w.join(format!("{prefix}-decoder.int8.onnx")),
            whisper_tokens: w.join(format!("{prefix}-tokens.txt")),
            silero_vad: dir.join("silero_vad.onnx"),
            tts_model: t.join("en_US-joe-medium.onnx"),
            tts_tokens: t.join("tokens.txt"),
        }
    }

    pub fn default_location() -> Self {
        Self::in_dir(&models_dir())
    }

    /// The models folder, with `whisper` as the recogniser.
    pub fn for_whisper(whisper: WhisperModelName) -> Self {
        Self::in_dir_with(&models_dir(), whisper)
    }
}

/// Fails with one message naming the file and how to get it, instead of
/// letting ONNX Runtime crash on a missing, empty or corrupt file.
pub fn require(path: &Path) -> Result<(), AsrError> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > 0 => verify_checksum(path, &m),
        Ok(_) => Err(ModelError::Empty(path.to_path_buf()).into()),
        Err(_) => Err(ModelError::Missing(path.to_path_buf()).into()),
    }
}

/// Checks a model file against the `SHA256SUMS` of its models folder (when
/// there is one). A corrupt file would otherwise make the native library
/// abort the whole process. Hashing 100 MB takes a while, so files already
/// verified are remembered by size and modification time in `.verified`.
fn verify_checksum(path: &Path, meta: &std::fs::Metadata) -> Result<(), AsrError> {
    use sha2::{Digest, Sha256};
    use std::io::Read;

    // The models folder is the nearest ancestor holding SHA256SUMS.
    let Some(root) = path.ancestors().skip(1).find(|d| d.join("SHA256SUMS").is_file()) else {
        return Ok(());
    };
    let Ok(rel) = path.strip_prefix(root) else { return Ok(()) };
    let rel = rel.to_string_lossy();
    let sums = std::fs::read_to_string(root.join("SHA256SUMS")).unwrap_or_default();
    let Some(expected) = sums.lines().find_map(|l| {
        let (sum, name) = l.split_once(char::is_whitespace)?;
        (name.trim_start_matches([' ', '*']) == rel).then(|| sum.to_string())
    }) else {
        return Ok(()); // not a file we ship
    };
    let mtime =
        meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    let stamp = format!("{expected} {} {mtime} {rel}", meta.len());
    let cache = root.join(".verified");
    if std::fs::read_to_string(&cache).unwrap_or_default().lines().any(|l| l == stamp) {
        return Ok(());
    }
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path).map_err(|source| ModelError::Read { path: path.to_path_buf(), source })?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|source| ModelError::Read { path: path.to_path_buf(), source })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let actual: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if actual != expected {
        return Err(ModelError::Corrupt(path.to_path_buf()).into());
    }
    // Best effort: a read-only models folder just means hashing again next time.
    let mut known = std::fs::read_to_string(&cache).unwrap_or_default();
    known.push_str(&stamp);
    known.push('\n');
    let _ = std::fs::write(&cache, known);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_model_is_named_before_it_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let good = b"model bytes";
        use sha2::{Digest, Sha256};
        let hex: String = Sha256::digest(good).iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(dir.path().join("SHA256SUMS"), format!("{hex}  m.onnx\n")).unwrap();
        let m = dir.path().join("m.onnx");
        std::fs::write(&m, good).unwrap();
        require(&m).expect("good file passes");
        assert!(dir.path().join(".verified").exists());
        std::fs::write(&m, b"model bytez").unwrap();
        let err = require(&m).unwrap_err().to_string();
        assert!(err.contains("m.onnx is corrupt") && err.contains("scripts/setup"), "{err}");
        std::fs::write(&m, b"").unwrap();
        assert!(require(&m).unwrap_err().to_string().contains("is empty"));
    }
}
