//! Dialplans: TOML files admins write, parsed with spans, validated into the
//! compiled `model` the call machine runs. Every problem is reported at
//! once with file:line:col (see `docs/dialplan.md`).
mod clashes;
mod collect;
pub(crate) mod diagnostic;
mod language;
pub(crate) mod model;
mod raw;
mod reprompt;
pub mod slots;
mod validate;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use diagnostic::{Diagnostic, Severity};
pub use model::*;
/// A value and its place in the source, shared with the server config's reader.
pub(crate) use raw::At;
pub use validate::{DEFAULT_ACCEPT, DEFAULT_CONFIRM, DEFAULT_INCOMPLETE_TIMEOUT_S};

use crate::asr::models::WhisperModelName;
use diagnostic::Reporter;

/// Dialplans larger than this are refused: a hand-written dialplan is a few
/// kilobytes, and the whole file is held in memory while it is checked.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Loads one dialplan. `Err` when it has any error; warnings alone do not
/// fail (use [`load_with_warnings`] to see them).
pub fn load(path: &Path) -> Result<Dialplan, Vec<Diagnostic>> {
    let outcome = load_file(path, None, None);
    match outcome.dialplan {
        Some(d) => Ok(d),
        None => Err(outcome.diagnostics),
    }
}

/// Loads one dialplan to be served by `model`: a dialplan in a language the
/// model does not hear is refused, as `hotline check --config` reports it.
pub fn load_for(path: &Path, model: WhisperModelName) -> Result<Dialplan, Vec<Diagnostic>> {
    let outcome = load_file(path, None, Some(model));
    match outcome.dialplan {
        Some(d) => Ok(d),
        None => Err(outcome.diagnostics),
    }
}

/// A dialplan a command needs that cannot be used: shown with every
/// diagnostic, one per line, as `hotline check` prints them.
#[derive(Debug, thiserror::Error)]
#[error("{} is not a valid dialplan:\n{}", .path.display(), one_per_line(.diagnostics))]
pub struct InvalidDialplan {
    pub path: PathBuf,
    pub diagnostics: Vec<Diagnostic>,
}

fn one_per_line(diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")
}

/// Loads one dialplan for a command that needs it to run (replay, the
/// benchmarks); warnings alone do not fail.
pub fn load_reported(path: &Path) -> Result<Dialplan, InvalidDialplan> {
    load(path).map_err(|diagnostics| InvalidDialplan { path: path.to_path_buf(), diagnostics })
}

/// The dialplan when it has no errors, and every diagnostic (warnings too).
pub fn load_with_warnings(path: &Path) -> (Option<Dialplan>, Vec<Diagnostic>) {
    let outcome = load_file(path, None, None);
    (outcome.dialplan, outcome.diagnostics)
}

/// Every `*.toml` in `dir` (sorted by name), each valid one compiled; the
/// diagnostics of all of them, including why a file was left out.
pub fn load_dir(dir: &Path) -> (Vec<Dialplan>, Vec<Diagnostic>) {
    let mut dialplans = Vec::new();
    let mut diagnostics = Vec::new();
    match toml_files(dir) {
        Ok(files) => {
            for file in files {
                let outcome = load_file(&file, None, None);
                dialplans.extend(outcome.dialplan);
                diagnostics.extend(outcome.diagnostics);
            }
        }
        Err(d) => diagnostics.push(d),
    }
    (dialplans, diagnostics)
}

#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Some(reason) when text-to-speech cannot run: prompts that have only
    /// text get a warning, so the admin knows calls will need WAV prompts.
    pub tts_unavailable: Option<String>,
    /// The recogniser the dialplans will run on (`[recognizer] model`):
    /// a `language` it cannot hear is an error. None: not checked.
    pub recognizer_model: Option<crate::asr::models::WhisperModelName>,
}

/// What `hotline check` found in each file.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub files: Vec<FileReport>,
}

#[derive(Debug, Clone)]
pub struct FileReport {
    pub path: PathBuf,
    /// False when the file could not be read or is not valid TOML.
    pub parsed: bool,
    pub diagnostics: Vec<Diagnostic>,
}

impl FileReport {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }
}

impl CheckReport {
    pub fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.files.iter().flat_map(|f| &f.diagnostics)
    }

    /// 2 when a file could not be read or parsed, else 1 when there is an
    /// error, else 0 (warnings allowed).
    pub fn exit_code(&self) -> u8 {
        if self.files.iter().any(|f| !f.parsed) {
            2
        } else if self.diagnostics().any(Diagnostic::is_error) {
            1
        } else {
            0
        }
    }
}

/// Checks files and folders (every `*.toml` in a folder, sorted).
pub fn check_paths(paths: &[PathBuf], opts: &CheckOptions) -> CheckReport {
    let mut report = CheckReport::default();
    let tts = opts.tts_unavailable.as_deref();
    let model = opts.recognizer_model;
    for path in paths {
        if path.is_dir() {
            match toml_files(path) {
                Ok(files) if files.is_empty() => report.files.push(FileReport {
                    path: path.clone(),
                    parsed: false,
                    diagnostics: vec![whole_file(path, Severity::Error, "no dialplans (*.toml) in this folder")],
                }),
                Ok(files) => report.files.extend(files.iter().map(|f| load_file(f, tts, model).into_report(f))),
                Err(d) => report.files.push(FileReport { path: path.clone(), parsed: false, diagnostics: vec![d] }),
            }
        } else {
            report.files.push(load_file(path, tts, model).into_report(path));
        }
    }
    report
}

/// Checks `bytes` as `hotline check` checks the file `path` (prompt WAVs
/// beside it): for text about to replace that file.
pub fn check_source(path: &Path, bytes: &[u8], opts: &CheckOptions) -> FileReport {
    load_bytes(path, bytes, opts.tts_unavailable.as_deref(), opts.recognizer_model).into_report(path)
}

struct Outcome {
    dialplan: Option<Dialplan>,
    parsed: bool,
    diagnostics: Vec<Diagnostic>,
}

impl Outcome {
    fn into_report(self, path: &Path) -> FileReport {
        FileReport { path: path.to_path_buf(), parsed: self.parsed, diagnostics: self.diagnostics }
    }

    fn unreadable(d: Diagnostic) -> Self {
        Outcome { dialplan: None, parsed: false, diagnostics: vec![d] }
    }
}

fn load_file(path: &Path, tts_unavailable: Option<&str>, model: Option<WhisperModelName>) -> Outcome {
    match read_bounded(path) {
        Ok(bytes) => load_bytes(path, &bytes, tts_unavailable, model),
        Err(e) => Outcome::unreadable(whole_file(path, Severity::Error, &e.to_string())),
    }
}

/// Checks a dialplan's contents as if read from `path` (prompt WAVs are
/// looked up beside it): the dialplan when it has no errors, and every
/// diagnostic. The fuzz tests feed it mutated dialplans without files.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn check_bytes(path: &Path, bytes: &[u8]) -> (Option<Dialplan>, Vec<Diagnostic>) {
    let outcome = load_bytes(path, bytes, None, None);
    (outcome.dialplan, outcome.diagnostics)
}

fn load_bytes(
    path: &Path,
    bytes: &[u8],
    tts_unavailable: Option<&str>,
    recognizer_model: Option<WhisperModelName>,
) -> Outcome {
    let source = match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let (line, col) =
                diagnostic::line_col(&String::from_utf8_lossy(&bytes[..e.valid_up_to()]), e.valid_up_to());
            return Outcome::unreadable(Diagnostic {
                file: path.to_path_buf(),
                line,
                col,
                severity: Severity::Error,
                message: "the file is not UTF-8 text".into(),
                help: None,
            });
        }
    };
    let mut rep = Reporter::new(path.to_path_buf(), source);
    let raw = match raw::parse(source, &mut rep) {
        Ok(raw) => raw,
        Err((span, message)) => {
            rep.error(&span, message, None);
            return Outcome { dialplan: None, parsed: false, diagnostics: rep.into_sorted() };
        }
    };
    let dir = path.parent().unwrap_or(Path::new(""));
    let cx = validate::Context {
        name: path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        source: path,
        dir,
        version: hex(&Sha256::digest(bytes)),
        tts_unavailable,
        recognizer_model,
    };
    let dialplan = validate::compile(raw, &cx, &mut rep);
    let dialplan = if rep.has_errors() { None } else { dialplan };
    Outcome { dialplan, parsed: true, diagnostics: rep.into_sorted() }
}

/// Why a dialplan file's bytes could not be had (shown after its name).
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the file is larger than {} MiB; is it really a dialplan?", MAX_FILE_BYTES / (1024 * 1024))]
    TooLarge,
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}

fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| whole_file(dir, Severity::Error, &format!("cannot read the folder: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// A problem with a file as a whole; shown as `file: error: ...`.
fn whole_file(path: &Path, severity: Severity, message: &str) -> Diagnostic {
    Diagnostic { file: path.to_path_buf(), line: 0, col: 0, severity, message: message.into(), help: None }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
