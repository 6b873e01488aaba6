//! Prompt audio: the WAV files admins record and text spoken by the Piper
//! voice, rendered once per rate and cached.
//!
//! A prompt's WAV file wins when it can be read; otherwise its text is
//! spoken. Text is turned into phonemes by espeak-ng, spoken by the voice at
//! 22.05 kHz, resampled to the call leg's rate, and kept on disk under a
//! hash of everything that shapes the sound, so a restart or another server
//! sharing the folder never synthesizes it again. A disk hit does not load
//! the voice, so servers with a warm cache start instantly.
//!
//! Rendering blocks (synthesis is CPU-bound): async code calls it through
//! `spawn_blocking`; the server renders every static prompt when a dialplan
//! goes into service via [`PromptRenderer::prerender`]. A text is
//! synthesized by one caller at a time: others asking for it meanwhile wait
//! for that synthesis and take its result from the cache.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::asr::models::ModelPaths;
use crate::audio::wav::{MAX_RATE, MIN_RATE};
use crate::audio::{f32_to_i16, i16_to_f32, read_wav, resample, samples_to_ms, WavError};
use crate::dialplan::Prompt;

pub mod cache;
pub mod phonemes;
pub mod voice;

use cache::{content_hash, DiskCache, MemoryCache};
use phonemes::{Espeak, PhonemeError, MAX_TEXT_CHARS};
use voice::{PiperVoice, SynthesisParams, VoiceError};

/// Bump when phonemization or rendering changes in a way that alters the
/// sound of an unchanged text, so stale cache files are not used.
const CACHE_FORMAT: &str = "hotline-prompt-v1";

/// Memory cache bounds: a few hundred prompts, 64 MiB of samples (about 35
/// minutes of 16 kHz audio).
/// Rates of the call legs hotline serves (G.711 and slin16); a text is
/// rendered at both whenever it is synthesized.
const TELEPHONE_RATES: [u32; 2] = [8_000, 16_000];

const MEMORY_ENTRIES: usize = 512;
const MEMORY_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("prompt WAV {}: the file is missing", .path.display())]
    WavMissing { path: PathBuf },
    #[error("prompt WAV {}: {source}", .path.display())]
    WavUnreadable { path: PathBuf, source: WavError },
    #[error("prompt {text:?}: text-to-speech is unavailable: {reason}")]
    TtsUnavailable {
        text: String,
        #[source]
        reason: Box<TtsError>,
    },
    #[error("prompt {text:?}: espeak-ng could not phonemize it: {source}")]
    Phonemes { text: String, source: PhonemeError },
    #[error("prompt {text:?}: the voice failed: {source}")]
    Synthesis { text: String, source: VoiceError },
    #[error("prompt has neither text nor a WAV file")]
    EmptyText,
    #[error("prompt {text:?}: {chars} characters, more than the {MAX_TEXT_CHARS} a prompt may have")]
    TooLong { text: String, chars: usize },
    #[error("prompts render at {MIN_RATE}-{MAX_RATE} Hz, not {0} Hz")]
    BadRate(u32),
    #[error("prompt audio: {0}")]
    Resample(#[from] crate::audio::ResampleError),
    #[error("{wav}; speaking its text instead failed too: {text}")]
    WavAndText { wav: Box<PromptError>, text: Box<PromptError> },
}

/// Why text prompts cannot be spoken: the voice, espeak-ng, or both.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error(transparent)]
    Voice(#[from] VoiceError),
    #[error(transparent)]
    Espeak(#[from] PhonemeError),
    #[error("{voice}; {espeak}")]
    Both { voice: VoiceError, espeak: Box<PhonemeError> },
}

/// Turns dialplan prompts into PCM at the rates the call legs need.
/// Shared by every call (`Send + Sync`).
pub struct PromptRenderer {
    voice: PiperVoice,
    espeak: Espeak,
    disk: DiskCache,
    memory: MemoryCache,
    in_flight: InFlight,
    /// Texts synthesized by this renderer (cache misses that ran the voice).
    syntheses: AtomicU64,
}

// Calls on many threads share one renderer.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<PromptRenderer>();
};

/// Where rendered prompts go unless told otherwise:
/// `$HOTLINE_PROMPT_CACHE`, else `.cache/prompts` in the working directory.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("HOTLINE_PROMPT_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".cache/prompts"))
}

impl PromptRenderer {
    /// Cheap: touches no file. The voice loads on the first text prompt
    /// that is not cached.
    pub fn new(models: &ModelPaths, cache_dir: PathBuf) -> Self {
        PromptRenderer {
            voice: PiperVoice::new(models.tts_model.clone(), models.tts_tokens.clone(), SynthesisParams::default()),
            espeak: Espeak::default(),
            disk: DiskCache::new(cache_dir),
            memory: MemoryCache::new(MEMORY_ENTRIES, MEMORY_BYTES),
            in_flight: InFlight::default(),
            syntheses: AtomicU64::new(0),
        }
    }

    /// Loads the TTS voice now (seconds), so that no caller waits for it
    /// later; a prompt spoken from a warm cache does not need it, but the
    /// read-back of what a caller said does.
    pub fn load_voice(&self) -> Result<(), VoiceError> {
        self.voice.ensure_loaded()
    }

    /// How many texts this renderer has synthesized (not found cached).
    pub fn syntheses(&self) -> u64 {
        self.syntheses.load(Ordering::Relaxed)
    }

    /// Uses another espeak-ng binary than the one on `PATH`.
    pub fn with_espeak(mut self, program: impl Into<PathBuf>) -> Self {
        self.espeak.program = program.into();
        self
    }

    pub fn cache_dir(&self) -> &Path {
        self.disk.dir()
    }

    /// The prompt as mono PCM at `rate`. Blocking.
    ///
    /// A readable WAV file wins; when the file is missing or broken and the
    /// prompt has text, the text is spoken (with a warning in the log) so
    /// the caller still hears something.
    pub fn render(&self, prompt: &Prompt, rate: u32) -> Result<Arc<Vec<i16>>, PromptError> {
        check_rate(rate)?;
        let Some(wav) = &prompt.wav else {
            return self.render_text(&prompt.text, rate);
        };
        let wav_err = match self.render_wav(wav, rate) {
            Ok(samples) => return Ok(samples),
            Err(e) => e,
        };
        if prompt.text.trim().is_empty() {
            return Err(wav_err);
        }
        match self.render_text(&prompt.text, rate) {
            Ok(samples) => {
                tracing::warn!(error = %wav_err, "prompt WAV unusable; speaking the prompt's text instead");
                Ok(samples)
            }
            Err(text_err) => Err(PromptError::WavAndText { wav: Box::new(wav_err), text: Box::new(text_err) }),
        }
    }

    /// How long the prompt plays. Uses any rendering already cached and
    /// renders at 8 kHz (the cheapest) otherwise.
    pub fn duration_ms(&self, prompt: &Prompt) -> Result<u64, PromptError> {
        for rate in TELEPHONE_RATES {
            if let Some(samples) = self.cached(prompt, rate) {
                return Ok(samples_to_ms(samples.len(), rate));
            }
        }
        let samples = self.render(prompt, TELEPHONE_RATES[0])?;
        Ok(samples_to_ms(samples.len(), TELEPHONE_RATES[0]))
    }

    /// Whether text prompts can be spoken: the voice files are in place and
    /// espeak-ng runs. `hotline check` shows the reason as a warning; calls
    /// then play WAV prompts (and cached renderings) only.
    pub fn tts_status(&self) -> Result<(), TtsError> {
        match (self.voice.status(), self.espeak.check()) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(voice), Ok(())) => Err(voice.into()),
            (Ok(()), Err(espeak)) => Err(espeak.into()),
            (Err(voice), Err(espeak)) => Err(TtsError::Both { voice, espeak: Box::new(espeak) }),
        }
    }

    /// Renders every prompt at every rate into the caches (at server start,
    /// so the first caller does not wait for synthesis). Each text is
    /// synthesized once for all rates. Returns what failed; a WAV file that
    /// cannot be used is reported even when its text could stand in.
    pub fn prerender<'a>(
        &self,
        prompts: impl IntoIterator<Item = &'a Prompt>,
        rates: &[u32],
    ) -> Vec<(Prompt, PromptError)> {
        let mut failures = Vec::new();
        if let Some(&bad) = rates.iter().find(|&&r| check_rate(r).is_err()) {
            return prompts.into_iter().map(|p| (p.clone(), PromptError::BadRate(bad))).collect();
        }
        for prompt in prompts {
            let mut speak_text = prompt.wav.is_none();
            if let Some(wav) = &prompt.wav {
                for &rate in rates {
                    if let Err(e) = self.render_wav(wav, rate) {
                        failures.push((prompt.clone(), e));
                        speak_text = !prompt.text.trim().is_empty();
                        break;
                    }
                }
            }
            if speak_text {
                if let Err(e) = self.render_text_rates(&prompt.text, rates) {
                    failures.push((prompt.clone(), e));
                }
            }
        }
        failures
    }

    /// A rendering already in memory or on disk; never synthesizes.
    fn cached(&self, prompt: &Prompt, rate: u32) -> Option<Arc<Vec<i16>>> {
        if let Some(wav) = &prompt.wav {
            // A present file wins, so its text rendering says nothing.
            if let Some(key) = wav_memory_key(wav, rate) {
                return self.memory.get(&key);
            }
        }
        let text = phonemes::normalize(&prompt.text);
        let key = self.text_key(&text, rate).ok()?;
        self.lookup_text(&key, rate)
    }

    fn render_wav(&self, path: &Path, rate: u32) -> Result<Arc<Vec<i16>>, PromptError> {
        // Keyed by size and modification time, so an admin replacing the
        // file is heard on the next render without a restart.
        let key = wav_memory_key(path, rate);
        if let Some(hit) = key.as_deref().and_then(|k| self.memory.get(k)) {
            return Ok(hit);
        }
        let audio = read_wav(path).map_err(|e| match e {
            WavError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
                PromptError::WavMissing { path: path.to_path_buf() }
            }
            source => PromptError::WavUnreadable { path: path.to_path_buf(), source },
        })?;
        if let Some(channels) = audio.downmixed_from {
            tracing::info!(file = %path.display(), channels, "prompt WAV averaged to mono");
        }
        let samples = if audio.rate == rate {
            audio.samples
        } else {
            f32_to_i16(&resample(&i16_to_f32(&audio.samples), audio.rate, rate)?)
        };
        let samples = Arc::new(samples);
        if let Some(key) = key {
            self.memory.insert(key, Arc::clone(&samples));
        }
        Ok(samples)
    }

    fn render_text(&self, text: &str, rate: u32) -> Result<Arc<Vec<i16>>, PromptError> {
        let mut rendered = self.render_text_rates(text, &[rate])?;
        Ok(rendered.remove(0))
    }

    /// The text at each of `rates` (same order), synthesizing at most once.
    fn render_text_rates(&self, text: &str, rates: &[u32]) -> Result<Vec<Arc<Vec<i16>>>, PromptError> {
        let text = phonemes::normalize(text);
        if text.is_empty() {
            return Err(PromptError::EmptyText);
        }
        let chars = text.chars().count();
        if chars > MAX_TEXT_CHARS {
            return Err(PromptError::TooLong { text: excerpt(&text), chars });
        }
        let unavailable =
            |e: VoiceError| PromptError::TtsUnavailable { text: excerpt(&text), reason: Box::new(e.into()) };
        let mut found: Vec<(String, Option<Arc<Vec<i16>>>)> = Vec::with_capacity(rates.len());
        for &rate in rates {
            let key = self.text_key(&text, rate).map_err(unavailable)?;
            let hit = self.lookup_text(&key, rate);
            crate::metrics::prompt_cache(hit.is_some());
            found.push((key, hit));
        }
        if found.iter().any(|(_, hit)| hit.is_none()) {
            self.in_flight.one_at_a_time(&text, || self.synthesize_missing(&text, rates, &mut found))?;
        }
        Ok(found.into_iter().filter_map(|(_, hit)| hit).collect())
    }

    /// Fills the misses of `found` (one per rate of `rates`), synthesizing
    /// the text at most once. Run one at a time per text: a render that
    /// waited for another one finds its result in the cache instead.
    fn synthesize_missing(
        &self,
        text: &str,
        rates: &[u32],
        found: &mut [(String, Option<Arc<Vec<i16>>>)],
    ) -> Result<(), PromptError> {
        for ((key, hit), &rate) in found.iter_mut().zip(rates) {
            if hit.is_none() {
                *hit = self.lookup_text(key, rate);
            }
        }
        if found.iter().all(|(_, hit)| hit.is_some()) {
            return Ok(());
        }
        let spoken = self.synthesize(text)?;
        self.syntheses.fetch_add(1, Ordering::Relaxed);
        for ((key, hit), &rate) in found.iter_mut().zip(rates) {
            if hit.is_none() {
                let samples = Arc::new(f32_to_i16(&resample(&spoken.samples, spoken.rate, rate)?));
                if let Err(e) = self.disk.store(key, rate, &samples) {
                    // Still playable from memory; the next start renders again.
                    tracing::warn!(dir = %self.disk.dir().display(), error = %e, "cannot write the prompt cache");
                }
                self.memory.insert(key.clone(), Arc::clone(&samples));
                *hit = Some(samples);
            }
        }
        self.store_companions(text, rates, &spoken);
        Ok(())
    }

    /// Puts the telephone rates nobody asked for yet on disk too, from the
    /// same waveform: synthesis costs far more than resampling, and every
    /// leg then hears the same timing whatever its rate.
    fn store_companions(&self, text: &str, done: &[u32], spoken: &voice::Synthesized) {
        for rate in TELEPHONE_RATES.into_iter().filter(|r| !done.contains(r)) {
            let Ok(key) = self.text_key(text, rate) else { return };
            if self.disk.path(&key).exists() {
                continue;
            }
            let samples = match resample(&spoken.samples, spoken.rate, rate) {
                Ok(samples) => f32_to_i16(&samples),
                // Only a cache warm-up: the rate renders on demand if a leg asks.
                Err(e) => return tracing::warn!(error = %e, "cannot prepare the prompt at another rate"),
            };
            if let Err(e) = self.disk.store(&key, rate, &samples) {
                tracing::warn!(dir = %self.disk.dir().display(), error = %e, "cannot write the prompt cache");
            }
        }
    }

    fn lookup_text(&self, key: &str, rate: u32) -> Option<Arc<Vec<i16>>> {
        if let Some(hit) = self.memory.get(key) {
            return Some(hit);
        }
        let samples = Arc::new(self.disk.load(key, rate)?);
        self.memory.insert(key.to_string(), Arc::clone(&samples));
        Some(samples)
    }

    fn synthesize(&self, text: &str) -> Result<voice::Synthesized, PromptError> {
        // Check the voice files before running espeak-ng, so a missing voice
        // is reported as such and not hidden behind a phonemizer error.
        self.voice
            .status()
            .map_err(|e| PromptError::TtsUnavailable { text: excerpt(text), reason: Box::new(e.into()) })?;
        let sentences = self.espeak.sentences(text).map_err(|e| match e {
            PhonemeError::NotRunnable { .. } => {
                PromptError::TtsUnavailable { text: excerpt(text), reason: Box::new(e.into()) }
            }
            source => PromptError::Phonemes { text: excerpt(text), source },
        })?;
        let started = std::time::Instant::now();
        let spoken = self
            .voice
            .synthesize(&sentences)
            .map_err(|source| PromptError::Synthesis { text: excerpt(text), source })?;
        tracing::debug!(text = %excerpt(text), ms = started.elapsed().as_millis() as u64, "prompt synthesized");
        Ok(spoken)
    }

    /// Everything that shapes the sound of `text` at `rate`.
    fn text_key(&self, text: &str, rate: u32) -> Result<String, VoiceError> {
        let voice = self.voice.fingerprint()?;
        let p = self.voice.params();
        let params = format!(
            "noise={} noise_w={} length={} silence={}",
            p.noise_scale, p.noise_scale_w, p.length_scale, p.silence_scale
        );
        let rate = rate.to_string();
        Ok(content_hash(&[CACHE_FORMAT, &voice, &self.espeak.voice, &params, &rate, text]))
    }
}

/// Texts being synthesized, each with the lock its renders take turns on.
/// Holds only texts someone is rendering right now, so it stays small.
#[derive(Default)]
struct InFlight {
    texts: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl InFlight {
    /// Runs `render` for `text` while no other render of `text` runs.
    fn one_at_a_time<T>(&self, text: &str, render: impl FnOnce() -> T) -> T {
        let turn = {
            let mut texts = self.texts.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(texts.entry(text.to_string()).or_default())
        };
        let result = {
            let _mine = turn.lock().unwrap_or_else(|p| p.into_inner());
            render()
        };
        let mut texts = self.texts.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map and this render hold the lock: no one is waiting,
        // and no one can start waiting while the map is locked.
        if Arc::strong_count(&turn) == 2 {
            texts.remove(text);
        }
        result
    }
}

fn check_rate(rate: u32) -> Result<(), PromptError> {
    if (MIN_RATE..=MAX_RATE).contains(&rate) {
        Ok(())
    } else {
        Err(PromptError::BadRate(rate))
    }
}

fn wav_memory_key(path: &Path, rate: u32) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let modified = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    Some(format!("wav:{}:{}:{}:{rate}", path.display(), meta.len(), modified))
}

/// The text as error messages show it: whole when short, else the start.
fn excerpt(text: &str) -> String {
    const MAX: usize = 80;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        format!("{}...", text.chars().take(MAX).collect::<String>())
    }
}
