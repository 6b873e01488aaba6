//! The Piper voice (VITS through sherpa-onnx), loaded on first use, once.
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sherpa_onnx::{GenerationConfig, OfflineTts, OfflineTtsConfig, OfflineTtsModelConfig, OfflineTtsVitsModelConfig};

/// How the voice speaks. Part of the cache key: changing any of these
/// re-renders every prompt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthesisParams {
    /// VITS sampling noise. Small but not 0 (0 means "default" to the C
    /// layer) so a prompt sounds the same every time it is rendered.
    pub noise_scale: f32,
    pub noise_scale_w: f32,
    /// > 1 speaks slower.
    pub length_scale: f32,
    /// Pause between sentences, relative to the voice's default.
    pub silence_scale: f32,
}

impl Default for SynthesisParams {
    fn default() -> Self {
        SynthesisParams { noise_scale: 0.001, noise_scale_w: 0.001, length_scale: 1.0, silence_scale: 0.2 }
    }
}

/// Why the voice cannot be used; names the file when one is at fault.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error("voice file {} is missing ({source}); run scripts/setup", .path.display())]
    Missing { path: PathBuf, source: std::io::Error },
    #[error("voice file {} is empty; delete it and run scripts/setup", .path.display())]
    EmptyModel { path: PathBuf },
    #[error("voice file {} is not an ONNX model; delete it and run scripts/setup", .path.display())]
    NotOnnx { path: PathBuf },
    #[error("cannot read voice file {}: {source}", .path.display())]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("cannot read voice token table {}: {source}", .path.display())]
    TokensUnreadable { path: PathBuf, source: std::io::Error },
    #[error("voice token table {} is empty; delete it and run scripts/setup", .path.display())]
    EmptyTokens { path: PathBuf },
    #[error("sherpa-onnx could not load the voice {}", .path.display())]
    NotLoaded { path: PathBuf },
    #[error("the voice returned no audio")]
    NoAudio,
    #[error("the voice returned no audio ({samples} samples at {rate} Hz)")]
    EmptyAudio { samples: usize, rate: u32 },
}

/// Audio as the voice produced it.
pub struct Synthesized {
    pub samples: Vec<f32>,
    pub rate: u32,
}

pub struct PiperVoice {
    model: PathBuf,
    tokens: PathBuf,
    params: SynthesisParams,
    /// `None` until the first text prompt needs it; a failed load is not
    /// remembered, so installing the voice later needs no restart.
    loaded: Mutex<Option<Arc<OfflineTts>>>,
}

impl PiperVoice {
    pub fn new(model: PathBuf, tokens: PathBuf, params: SynthesisParams) -> Self {
        PiperVoice { model, tokens, params, loaded: Mutex::new(None) }
    }

    pub fn params(&self) -> SynthesisParams {
        self.params
    }

    pub fn model_path(&self) -> &Path {
        &self.model
    }

    /// What identifies this voice in the cache without loading it: the
    /// model's file name and size. (Hashing 63 MB on every start would cost
    /// more than it saves; a different voice build differs in size.)
    pub fn fingerprint(&self) -> Result<String, VoiceError> {
        let meta = std::fs::metadata(&self.model).map_err(|e| missing(&self.model, e))?;
        let name = self.model.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(format!("{name}:{}", meta.len()))
    }

    /// Whether the voice files are in place and look like what sherpa-onnx
    /// expects; checked before loading because sherpa-onnx may end the
    /// process on a file it cannot parse instead of returning an error.
    pub fn status(&self) -> Result<(), VoiceError> {
        check_onnx(&self.model)?;
        check_tokens(&self.tokens)
    }

    /// Loads the voice now unless it is loaded (seconds of CPU), so the
    /// first prompt to synthesize does not pay for it.
    pub fn ensure_loaded(&self) -> Result<(), VoiceError> {
        self.load().map(|_| ())
    }

    fn load(&self) -> Result<Arc<OfflineTts>, VoiceError> {
        let mut slot = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tts) = slot.as_ref() {
            return Ok(Arc::clone(tts));
        }
        self.status()?;
        let path = |p: &Path| Some(p.to_string_lossy().into_owned());
        let config = OfflineTtsConfig {
            model: OfflineTtsModelConfig {
                vits: OfflineTtsVitsModelConfig {
                    model: path(&self.model),
                    tokens: path(&self.tokens),
                    noise_scale: self.params.noise_scale,
                    noise_scale_w: self.params.noise_scale_w,
                    length_scale: self.params.length_scale,
                    ..Default::default()
                },
                num_threads: 1,
                provider: Some("cpu".into()),
                debug: false,
                ..Default::default()
            },
            max_num_sentences: 1,
            silence_scale: self.params.silence_scale,
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let tts = OfflineTts::create(&config).ok_or_else(|| VoiceError::NotLoaded { path: self.model.clone() })?;
        tracing::info!(voice = %self.model.display(), ms = started.elapsed().as_millis() as u64, "prompt voice loaded");
        let tts = Arc::new(tts);
        *slot = Some(Arc::clone(&tts));
        Ok(tts)
    }

    /// Speaks phoneme sentences (see `phonemes::Espeak::sentences`).
    /// Blocking and CPU-bound: about 0.15 s per second of speech, plus ~2 s
    /// for the first call, which loads the voice.
    pub fn synthesize(&self, sentences: &[String]) -> Result<Synthesized, VoiceError> {
        let tts = self.load()?;
        let generation = GenerationConfig {
            phoneme_codepoints: Some(sentences.iter().map(|s| s.chars().map(|c| c as i32).collect()).collect()),
            silence_scale: self.params.silence_scale,
            ..Default::default()
        };
        // The text argument is ignored when phonemes are given.
        let audio =
            tts.generate_with_config("", &generation, None::<fn(&[f32], f32) -> bool>).ok_or(VoiceError::NoAudio)?;
        let rate = u32::try_from(audio.sample_rate()).unwrap_or(0);
        if audio.samples().is_empty() || rate == 0 {
            return Err(VoiceError::EmptyAudio { samples: audio.samples().len(), rate });
        }
        Ok(Synthesized { samples: audio.samples().to_vec(), rate })
    }
}

fn missing(path: &Path, source: std::io::Error) -> VoiceError {
    VoiceError::Missing { path: path.to_path_buf(), source }
}

/// ONNX files are protobuf messages whose first field is `ir_version`
/// (field 1, varint: tag byte 0x08).
fn check_onnx(path: &Path) -> Result<(), VoiceError> {
    let mut first = [0u8; 1];
    let mut f = std::fs::File::open(path).map_err(|e| missing(path, e))?;
    match f.read(&mut first) {
        Ok(0) => Err(VoiceError::EmptyModel { path: path.to_path_buf() }),
        Ok(_) if first[0] == 0x08 => Ok(()),
        Ok(_) => Err(VoiceError::NotOnnx { path: path.to_path_buf() }),
        Err(source) => Err(VoiceError::Unreadable { path: path.to_path_buf(), source }),
    }
}

fn check_tokens(path: &Path) -> Result<(), VoiceError> {
    // The table is a few hundred bytes; looking at the start is enough.
    let mut head = Vec::new();
    let file = std::fs::File::open(path).map_err(|e| missing(path, e))?;
    file.take(4096)
        .read_to_end(&mut head)
        .map_err(|source| VoiceError::TokensUnreadable { path: path.to_path_buf(), source })?;
    if String::from_utf8_lossy(&head).lines().any(|l| !l.trim().is_empty()) {
        Ok(())
    } else {
        Err(VoiceError::EmptyTokens { path: path.to_path_buf() })
    }
}
