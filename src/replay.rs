//! `hotline replay`: a recorded caller leg driven through the real speech
//! stack and the call machine on a virtual clock.
//!
//! The clock advances in 20 ms audio frames, jumping straight to the exact
//! times of key presses, prompt ends and the machine's timers in between.
//! Recognition runs synchronously and takes no virtual time, so a replay
//! is deterministic and runs far faster than the call lasted. Prompts
//! "play" for `prompt_ms(prompt)` of virtual time unless the caller barges
//! in. Transfers asked for by the machine succeed.
//!
//! After the recording ends the caller stays silent until the call ends or
//! `ReplayOptions::max_ms`, so no-input handling plays out to the end.
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::asr::models::ModelPaths;
use crate::prompts::{default_cache_dir, PromptRenderer};

use crate::asr::silero::SileroVad;
use crate::asr::{Recognizer, SpeechStack};
use crate::audio::{frame_samples, read_wav, Audio, ResampleError, FRAME_MS, MODEL_RATE};
use crate::call::{Call, Event, Input, Output, PlaybackId, VoiceFeed};
use crate::dialplan::{Dialplan, Prompt};
use crate::intent::IntentMatcher;

mod expect;
#[cfg(test)]
mod tests;

pub use expect::{
    check_expectations, parse_dtmf, DtmfError, ExpectFileError, Expectation, ExpectationError, PathMismatch, Step,
    StepError,
};

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The replay stops here (virtual ms) even if the call has not ended.
    pub max_ms: u64,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions { max_ms: 120_000 }
    }
}

/// How long a prompt plays without rendering it: its WAV's length when
/// the file can be read, else an estimate for the text read by a TTS voice
/// (about 14 characters a second; [`PromptTimer`] measures instead).
pub fn prompt_duration_ms(prompt: &Prompt) -> u64 {
    if let Some(audio) = prompt.wav.as_deref().and_then(|p| read_wav(p).ok()) {
        return audio.duration_ms();
    }
    300 + 70 * prompt.text.chars().count() as u64
}

/// Times prompts by the audio a call would play: the WAV, or the text as
/// the TTS voice renders it (deterministic, and cached on disk, so the
/// first replay renders and later ones read). Where the voice cannot run,
/// the estimate of [`prompt_duration_ms`] stands in, and the reason is
/// said once.
pub struct PromptTimer {
    renderer: Option<PromptRenderer>,
    fallback_noted: AtomicBool,
}

impl PromptTimer {
    /// Renders with the models in their usual place and the usual cache;
    /// `None` renderer when text-to-speech is unavailable (reason on stderr).
    pub fn from_environment() -> PromptTimer {
        let renderer = PromptRenderer::new(&ModelPaths::default_location(), default_cache_dir());
        let renderer = match renderer.tts_status() {
            Ok(()) => Some(renderer),
            Err(reason) => {
                eprintln!(
                    "hotline: note: text prompts are timed by an estimate: text-to-speech is unavailable ({reason})"
                );
                None
            }
        };
        PromptTimer { renderer, fallback_noted: AtomicBool::new(false) }
    }

    pub fn duration_ms(&self, prompt: &Prompt) -> u64 {
        let Some(renderer) = &self.renderer else { return prompt_duration_ms(prompt) };
        match renderer.duration_ms(prompt) {
            Ok(ms) => ms,
            Err(e) => {
                if !self.fallback_noted.swap(true, Ordering::Relaxed) {
                    eprintln!("hotline: note: a prompt could not be rendered ({e}); timing it by an estimate");
                }
                prompt_duration_ms(prompt)
            }
        }
    }
}

/// Replays one call; returns its timeline.
pub fn replay_call(
    dialplan: Arc<Dialplan>,
    matcher: Arc<dyn IntentMatcher>,
    speech: &SpeechStack,
    audio: &Audio,
    dtmf: &[(char, u64)],
    prompt_ms: &dyn Fn(&Prompt) -> u64,
    opts: &ReplayOptions,
) -> Result<Vec<Event>, ResampleError> {
    let samples = audio.to_f32_at(MODEL_RATE)?;
    Ok(replay_samples_timed(dialplan, matcher, speech, &samples, dtmf, prompt_ms, opts).0)
}

/// Wall-clock cost of one recognised utterance in a replay: from the
/// instant the call machine handed the words over for recognition to the
/// instant the machine had answered the result with its next outputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecisionTiming {
    /// Virtual call time of the answer: the `t_ms` of its utterance event.
    pub t_ms: u64,
    /// Virtual call time the recognition was asked for: `t_ms`, or earlier
    /// when it started at a lull and its answer waited for the pause.
    pub asked_ms: u64,
    pub wall: Duration,
}

/// [`replay_call`] on 16 kHz samples, also returning how long each
/// recognised utterance took in wall-clock time (for benchmarks).
pub fn replay_samples_timed(
    dialplan: Arc<Dialplan>,
    matcher: Arc<dyn IntentMatcher>,
    speech: &SpeechStack,
    samples_16k: &[f32],
    dtmf: &[(char, u64)],
    prompt_ms: &dyn Fn(&Prompt) -> u64,
    opts: &ReplayOptions,
) -> (Vec<Event>, Vec<DecisionTiming>) {
    let call = Call::new(dialplan, matcher);
    let voice = VoiceFeed::new(speech.detector());
    drive(call, voice, speech.recognizer.as_ref(), samples_16k, dtmf, prompt_ms, opts)
}

/// The simulated PBX side of playback: prompts play one after another.
#[derive(Default)]
struct Player {
    /// Playing now, with the virtual time it ends.
    current: Option<(PlaybackId, u64)>,
    queued: VecDeque<(PlaybackId, u64)>,
}

impl Player {
    fn play(&mut self, now: u64, id: PlaybackId, duration: u64) {
        if self.current.is_none() {
            self.current = Some((id, now + duration));
        } else {
            self.queued.push_back((id, duration));
        }
    }

    fn stop(&mut self) {
        self.current = None;
        self.queued.clear();
    }

    fn next_end(&self) -> Option<u64> {
        self.current.map(|(_, end)| end)
    }

    /// The current prompt ended at `now`: start the next one.
    fn finish(&mut self, now: u64) -> Option<PlaybackId> {
        let (id, _) = self.current.take()?;
        self.current = self.queued.pop_front().map(|(next, duration)| (next, now + duration));
        Some(id)
    }
}

/// Runs `call` over 16 kHz `samples` (the caller leg from time 0).
fn drive(
    mut call: Call,
    voice: VoiceFeed<SileroVad>,
    recognizer: &dyn Recognizer,
    samples: &[f32],
    dtmf: &[(char, u64)],
    prompt_ms: &dyn Fn(&Prompt) -> u64,
    opts: &ReplayOptions,
) -> (Vec<Event>, Vec<DecisionTiming>) {
    let mut keys: Vec<(char, u64)> = dtmf.to_vec();
    keys.sort_by_key(|&(_, t)| t); // stable: equal times keep their order
    let mut keys = keys.into_iter().peekable();
    let frame = frame_samples(MODEL_RATE);
    let mut driver = Driver {
        voice,
        recognizer,
        prompt_ms,
        player: Player::default(),
        events: Vec::new(),
        timings: Vec::new(),
        last_recognition: None,
    };
    driver.deliver(&mut call, 0, Input::Start);
    let mut next_frame_end = FRAME_MS as u64;
    let mut frame_index = 0usize;
    // Every step either consumes a frame, a key or a prompt end, or fires a
    // timer (which always moves the machine on); the cap is a safety net.
    let max_steps = (opts.max_ms / FRAME_MS as u64 + 1) * 8 + dtmf.len() as u64 + 10_000;
    for _ in 0..max_steps {
        if call.is_finished() {
            break;
        }
        let t_key = keys.peek().map(|&(_, t)| t);
        let t_play = driver.player.next_end();
        let t_timer = call.next_deadline();
        let now = [Some(next_frame_end), t_key, t_play, t_timer].into_iter().flatten().min().unwrap_or(next_frame_end);
        if now > opts.max_ms {
            break;
        }
        if t_play == Some(now) {
            if let Some(id) = driver.player.finish(now) {
                driver.deliver(&mut call, now, Input::PlaybackFinished(id));
            }
        } else if t_key == Some(now) {
            if let Some((key, _)) = keys.next() {
                driver.deliver(&mut call, now, Input::Dtmf(key));
            }
        } else if t_timer == Some(now) && now < next_frame_end {
            driver.deliver(&mut call, now, Input::Tick);
        } else {
            let start = frame_index * frame;
            let chunk = if start + frame <= samples.len() {
                samples[start..start + frame].to_vec()
            } else {
                // Past the recording: the caller is silent.
                let mut tail = samples.get(start..).unwrap_or(&[]).to_vec();
                tail.resize(frame, 0.0);
                tail
            };
            frame_index += 1;
            next_frame_end += FRAME_MS as u64;
            for input in driver.voice.hear(&call, now, &chunk) {
                driver.deliver(&mut call, now, input);
            }
        }
    }
    (driver.events, driver.timings)
}

struct Driver<'a> {
    /// Silero scoring each window on the spot: the same network as the
    /// server's batched detector thread, one call at a time.
    voice: VoiceFeed<SileroVad>,
    recognizer: &'a dyn Recognizer,
    prompt_ms: &'a dyn Fn(&Prompt) -> u64,
    player: Player,
    events: Vec<Event>,
    timings: Vec<DecisionTiming>,
    /// Virtual time and wall-clock cost of the latest recognition answered:
    /// the one the next utterance event reports (a call waits for one
    /// recognition at a time).
    last_recognition: Option<(u64, Duration)>,
}

impl Driver<'_> {
    /// Feeds one input and everything it leads to at the same instant
    /// (recognition answers).
    fn deliver(&mut self, call: &mut Call, now: u64, input: Input) {
        // Each input carries the wall instant its utterance was closed, when
        // it is a recognition answer.
        let mut inputs = VecDeque::from([(input, None::<Instant>)]);
        while let Some((input, closed_at)) = inputs.pop_front() {
            let outputs = call.handle(now, input);
            let handled = Instant::now();
            if let Some(closed) = closed_at {
                self.last_recognition = Some((now, handled - closed));
            }
            for output in outputs {
                match output {
                    Output::Play { id, prompt, .. } => {
                        let duration = (self.prompt_ms)(&prompt);
                        self.player.play(now, id, duration);
                    }
                    Output::StopPlayback => self.player.stop(),
                    Output::ForgetUtterance => self.voice.forget_utterance(),
                    Output::Recognize { request, utterance, grammar } => {
                        let answer = match self.recognizer.recognize(&utterance.samples, &grammar) {
                            Ok(result) => Input::Recognized { request, result },
                            Err(e) => Input::RecognitionFailed { request, reason: e.to_string() },
                        };
                        inputs.push_back((answer, Some(handled)));
                    }
                    Output::Transfer { .. } | Output::Hangup { .. } => {}
                    Output::Event(event) => {
                        if let (Event::Utterance { .. }, Some((asked_ms, wall))) = (&event, self.last_recognition) {
                            self.timings.push(DecisionTiming { t_ms: now, asked_ms, wall });
                        }
                        self.events.push(event)
                    }
                }
            }
        }
    }
}

/// The timeline as JSON lines.
pub fn timeline_json(events: &[Event]) -> String {
    let mut s = String::new();
    for e in events {
        // Events are plain data: serialising them cannot fail.
        s.push_str(&serde_json::to_string(e).unwrap_or_default());
        s.push('\n');
    }
    s
}

/// Outcome of a directory replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirSummary {
    pub passed: usize,
    pub failed: usize,
    /// Recordings without an expectation file next to them.
    pub skipped: usize,
}

/// Why one call of a folder replay failed: its files, or the path it took.
#[derive(Debug, thiserror::Error)]
enum CallFailure {
    #[error(transparent)]
    Expectation(#[from] ExpectFileError),
    #[error("{}: {source}", .path.display())]
    Audio { path: PathBuf, source: crate::audio::WavError },
    #[error("{}: {source}", .path.display())]
    Resample { path: PathBuf, source: ResampleError },
    #[error(transparent)]
    Path(#[from] PathMismatch),
}

/// The expectation file of `call.wav`: `call.expect.toml` or
/// `call.expect.json`.
pub fn expectation_path(wav: &Path) -> Option<PathBuf> {
    let stem = wav.file_stem()?.to_str()?;
    ["toml", "json"].iter().map(|ext| wav.with_file_name(format!("{stem}.expect.{ext}"))).find(|p| p.is_file())
}

/// Replays every `*.wav` in `dir` that has an expectation file, writing
/// one `ok`/`FAIL` line per call and `N passed, M failed` to `out`.
pub fn replay_dir(
    dir: &Path,
    dialplan: Arc<Dialplan>,
    matcher: Arc<dyn IntentMatcher>,
    speech: &SpeechStack,
    prompt_ms: &dyn Fn(&Prompt) -> u64,
    opts: &ReplayOptions,
    out: &mut dyn std::io::Write,
) -> std::io::Result<DirSummary> {
    let mut wavs: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")) && p.is_file())
        .collect();
    wavs.sort();
    let mut summary = DirSummary { passed: 0, failed: 0, skipped: 0 };
    for wav in wavs {
        let Some(expect_path) = expectation_path(&wav) else {
            summary.skipped += 1;
            continue;
        };
        let name = wav.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let result = Expectation::load(&expect_path).map_err(CallFailure::from).and_then(|expectation| {
            let audio = read_wav(&wav).map_err(|source| CallFailure::Audio { path: wav.clone(), source })?;
            let events = replay_call(
                Arc::clone(&dialplan),
                Arc::clone(&matcher),
                speech,
                &audio,
                &expectation.dtmf,
                prompt_ms,
                opts,
            )
            .map_err(|source| CallFailure::Resample { path: wav.clone(), source })?;
            Ok(check_expectations(&events, &expectation)?)
        });
        match result {
            Ok(()) => {
                summary.passed += 1;
                writeln!(out, "ok   {name}")?;
            }
            Err(message) => {
                summary.failed += 1;
                writeln!(out, "FAIL {name}: {message}")?;
            }
        }
    }
    writeln!(out, "{} passed, {} failed", summary.passed, summary.failed)?;
    Ok(summary)
}
