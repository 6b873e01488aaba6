//! Prompt rendering with the real Piper voice, espeak-ng and Whisper
//! (installed by scripts/setup), real files and real cache folders.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hotline::asr::models::ModelPaths;
use hotline::asr::sherpa::{SherpaWhisper, WhisperOptions};
use hotline::asr::{Grammar, Recognizer};
use hotline::audio::{i16_to_f32, read_wav, rms_dbfs};
use hotline::dialplan::Prompt;
use hotline::prompts::{PromptError, PromptRenderer};

fn models() -> ModelPaths {
    ModelPaths::default_location()
}

fn text(t: &str) -> Prompt {
    Prompt { text: t.to_string(), wav: None }
}

fn wav_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    files.sort();
    files
}

fn level_dbfs(samples: &[i16]) -> f32 {
    rms_dbfs(&i16_to_f32(samples))
}

/// A voice folder whose model has the real file's name and size but holds
/// only zeros: any attempt to load it fails.
fn unloadable_voice(dir: &Path) -> ModelPaths {
    let real = models();
    let fake = ModelPaths::in_dir(dir);
    std::fs::create_dir_all(fake.tts_model.parent().unwrap()).unwrap();
    let size = std::fs::metadata(&real.tts_model).expect("voice installed by scripts/setup").len();
    std::fs::File::create(&fake.tts_model).unwrap().set_len(size).unwrap();
    fake
}

fn tone_wav(path: &Path, rate: u32, freq: f32, secs: f32) {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(rate as f32 * secs) as usize {
        let v = 0.4 * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin();
        w.write_sample((v * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// Frequency estimate from zero crossings, away from the edges.
fn frequency(samples: &[i16], rate: u32) -> f32 {
    let s = &samples[samples.len() / 10..samples.len() * 9 / 10];
    let crossings = s.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f32 / 2.0 / (s.len() as f32 / rate as f32)
}

#[test]
fn text_prompt_renders_at_telephone_and_wideband_rates() {
    let cache = tempfile::tempdir().unwrap();
    let r = PromptRenderer::new(&models(), cache.path().to_path_buf());
    r.tts_status().expect("voice and espeak-ng installed by scripts/setup");
    let prompt = text("Please say or enter your account number.");
    let narrow = r.render(&prompt, 8_000).unwrap();
    let wide = r.render(&prompt, 16_000).unwrap();
    // Seven words, about 2.5 s when spoken at a normal pace.
    let secs = narrow.len() as f32 / 8_000.0;
    assert!((1.5..5.0).contains(&secs), "{secs} s for seven words");
    let ratio = wide.len() as f32 / narrow.len() as f32;
    assert!((ratio - 2.0).abs() < 0.001, "16 kHz has {ratio} times the samples of 8 kHz");
    for (samples, rate) in [(&narrow, 8_000), (&wide, 16_000)] {
        let level = level_dbfs(samples);
        assert!(level > -35.0, "{rate} Hz rendering is near silent: {level} dBFS");
    }
    assert_eq!(wav_files(cache.path()).len(), 2, "one cache file per rate");
    assert_eq!(r.duration_ms(&prompt).unwrap(), narrow.len() as u64 * 1000 / 8_000);
}

#[test]
fn cache_hit_returns_identical_audio_and_never_loads_the_voice() {
    let cache = tempfile::tempdir().unwrap();
    let prompt = text("Thank you for calling.");
    let first = PromptRenderer::new(&models(), cache.path().to_path_buf());
    let rendered = first.render(&prompt, 8_000).unwrap();
    let files = wav_files(cache.path());
    assert_eq!(files.len(), 2, "rendered at 8 kHz, 16 kHz stored beside it");
    let written: Vec<_> = files.iter().map(|f| std::fs::metadata(f).unwrap().modified().unwrap()).collect();
    assert!(Arc::ptr_eq(&rendered, &first.render(&prompt, 8_000).unwrap()), "second render comes from memory");

    // A new process (fresh memory) finds the file and writes nothing.
    let second = PromptRenderer::new(&models(), cache.path().to_path_buf());
    assert_eq!(*second.render(&prompt, 8_000).unwrap(), *rendered);
    assert_eq!(wav_files(cache.path()), files);
    let rewritten: Vec<_> = files.iter().map(|f| std::fs::metadata(f).unwrap().modified().unwrap()).collect();
    assert_eq!(rewritten, written, "no file was written again");

    // Neither the voice nor espeak-ng can work here, yet the cached prompt plays.
    let fake_models = tempfile::tempdir().unwrap();
    let offline = PromptRenderer::new(&unloadable_voice(fake_models.path()), cache.path().to_path_buf())
        .with_espeak("/nonexistent/espeak-ng");
    assert!(offline.tts_status().is_err());
    assert_eq!(*offline.render(&prompt, 8_000).unwrap(), *rendered);
    let uncached = offline.render(&text("Goodbye."), 8_000).unwrap_err();
    assert!(matches!(uncached, PromptError::TtsUnavailable { .. }), "{uncached}");
}

#[test]
fn wav_file_wins_over_text_and_is_resampled() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("welcome.wav");
    tone_wav(&wav, 16_000, 440.0, 1.0);
    let cache = dir.path().join("cache");
    let r = PromptRenderer::new(&models(), cache.clone());
    let prompt = Prompt { text: "Welcome to the hotline.".into(), wav: Some(wav.clone()) };
    let narrow = r.render(&prompt, 8_000).unwrap();
    assert!((narrow.len() as i64 - 8_000).abs() <= 1, "{} samples for 1 s at 8 kHz", narrow.len());
    assert!((frequency(&narrow, 8_000) - 440.0).abs() < 5.0, "the tone, not speech");
    let wide = r.render(&prompt, 16_000).unwrap();
    assert_eq!(*wide, read_wav(&wav).unwrap().samples, "same rate: the file's samples unchanged");
    assert_eq!(r.duration_ms(&prompt).unwrap(), 1_000);
    assert!(wav_files(&cache).is_empty(), "the text was never synthesized");

    // Replacing the file is heard on the next render.
    tone_wav(&wav, 8_000, 1000.0, 0.5);
    let replaced = r.render(&prompt, 8_000).unwrap();
    assert_eq!(replaced.len(), 4_000);
    assert!((frequency(&replaced, 8_000) - 1000.0).abs() < 5.0);
}

#[test]
fn unusable_wav_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-prompt.wav");
    let r = PromptRenderer::new(&ModelPaths::in_dir(&dir.path().join("no-models")), dir.path().join("cache"));
    let err = r.render(&Prompt { text: String::new(), wav: Some(missing.clone()) }, 8_000).unwrap_err();
    assert!(matches!(err, PromptError::WavMissing { .. }), "{err}");
    assert!(err.to_string().contains(&missing.display().to_string()), "{err}");

    let garbage = dir.path().join("broken.wav");
    std::fs::write(&garbage, b"this is not audio at all, just some text").unwrap();
    let err = r.render(&Prompt { text: String::new(), wav: Some(garbage.clone()) }, 8_000).unwrap_err().to_string();
    assert!(err.contains("broken.wav") && err.contains("not a WAV file"), "{err}");

    // With text as a fallback that cannot be spoken either, both reasons are given.
    let err = r.render(&Prompt { text: "Hello.".into(), wav: Some(missing) }, 8_000).unwrap_err().to_string();
    assert!(err.contains("no-such-prompt.wav") && err.contains("text-to-speech is unavailable"), "{err}");
}

#[test]
fn unavailable_tts_reports_why_and_text_prompts_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let r = PromptRenderer::new(&ModelPaths::in_dir(&dir.path().join("no-models")), dir.path().join("cache"));
    let reason = r.tts_status().unwrap_err().to_string();
    assert!(reason.contains("en_US-joe-medium.onnx") && reason.contains("missing"), "{reason}");
    let err = r.render(&text("For sales, press two."), 8_000).unwrap_err();
    assert!(matches!(err, PromptError::TtsUnavailable { .. }), "{err}");
    assert!(err.to_string().contains("For sales, press two."), "{err}");

    let no_espeak = PromptRenderer::new(&models(), dir.path().join("cache")).with_espeak("/nonexistent/espeak-ng");
    let reason = no_espeak.tts_status().unwrap_err().to_string();
    assert!(reason.contains("/nonexistent/espeak-ng") && reason.contains("espeak-ng"), "{reason}");
    let err = no_espeak.render(&text("For sales, press two."), 8_000).unwrap_err();
    assert!(matches!(err, PromptError::TtsUnavailable { .. }), "{err}");

    // A zero-filled model is refused before sherpa-onnx sees it.
    let fake = tempfile::tempdir().unwrap();
    let broken = PromptRenderer::new(&unloadable_voice(fake.path()), dir.path().join("cache"));
    let reason = broken.tts_status().unwrap_err().to_string();
    assert!(reason.contains("not an ONNX model"), "{reason}");

    assert!(matches!(no_espeak.render(&text("  "), 8_000), Err(PromptError::EmptyText)));
    assert!(matches!(no_espeak.render(&text("Hi."), 4_000), Err(PromptError::BadRate(4_000))));
    assert!(wav_files(&dir.path().join("cache")).is_empty());
}

#[test]
fn spoken_prompt_is_understood_by_the_recognizer() {
    let cache = tempfile::tempdir().unwrap();
    let r = PromptRenderer::new(&models(), cache.path().to_path_buf());
    let audio = r.render(&text("For billing, say billing or press one."), 16_000).unwrap();
    let whisper = SherpaWhisper::load(&models(), &WhisperOptions::default()).unwrap();
    let heard = whisper.recognize(&i16_to_f32(&audio), &Grammar::default()).unwrap().text.to_lowercase();
    let words: Vec<&str> = heard.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    assert!(words.contains(&"press"), "heard {heard:?}");
    assert!(words.contains(&"one") || words.contains(&"1"), "heard {heard:?}");
}

#[test]
fn prerender_fills_every_rate_and_reports_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let r = PromptRenderer::new(&models(), cache.clone());
    let good = text("Please hold.");
    let missing = dir.path().join("missing.wav");
    let bad = Prompt { text: String::new(), wav: Some(missing.clone()) };
    let failures = r.prerender([&good, &bad, &good], &[8_000, 16_000]);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, bad);
    assert!(failures[0].1.to_string().contains("missing.wav"));
    assert_eq!(wav_files(&cache).len(), 2, "the repeated prompt is rendered once per rate");

    // Both renderings are on disk: a fresh renderer serves them without the voice.
    let fake = tempfile::tempdir().unwrap();
    let offline = PromptRenderer::new(&unloadable_voice(fake.path()), cache.clone());
    let narrow = offline.render(&good, 8_000).unwrap();
    let wide = offline.render(&good, 16_000).unwrap();
    assert!((wide.len() as f32 / narrow.len() as f32 - 2.0).abs() < 0.01);

    // Two calls asking for the same new prompt at once both get it, and the
    // cache ends up with whole files only.
    let new = text("One moment, please.");
    let both: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2).map(|_| s.spawn(|| r.render(&new, 8_000).unwrap())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(both.iter().all(|a| a.len() > 4_000), "{:?}", both.iter().map(|a| a.len()).collect::<Vec<_>>());
    assert_eq!(wav_files(&cache).len(), 4);
    let names: Vec<String> =
        std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| n.ends_with(".wav") && !n.starts_with('.')), "{names:?}");
    assert_eq!(
        *PromptRenderer::new(&models(), cache.clone()).render(&new, 8_000).unwrap(),
        *offline.render(&new, 8_000).unwrap()
    );
}

#[test]
fn say_command_writes_a_playable_wav() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("goodbye.wav");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["say", "--text", "Goodbye.", "--rate", "8000", "--out"])
        .arg(&out)
        .arg("--cache")
        .arg(dir.path().join("cache"))
        .status()
        .unwrap();
    assert!(status.success());
    let audio = read_wav(&out).unwrap();
    assert_eq!(audio.rate, 8_000);
    assert!(audio.duration_ms() > 300 && level_dbfs(&audio.samples) > -35.0);

    let status = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["say", "--wav", "/nonexistent/prompt.wav", "--out"])
        .arg(dir.path().join("x.wav"))
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
}

#[test]
fn callers_asking_for_one_text_at_once_share_one_synthesis() {
    let dir = tempfile::tempdir().unwrap();
    let renderer = Arc::new(PromptRenderer::new(&models(), dir.path().to_path_buf()));
    let prompt = text("Welcome to the herd test. Please hold.");
    let start = Arc::new(std::sync::Barrier::new(6));
    let renders: Vec<_> = (0..6)
        .map(|_| {
            let (renderer, prompt, start) = (Arc::clone(&renderer), prompt.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                renderer.render(&prompt, 8000).unwrap()
            })
        })
        .collect();
    let heard: Vec<_> = renders.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(renderer.syntheses(), 1, "six callers, one synthesis");
    assert!(heard.iter().all(|h| h == &heard[0]) && !heard[0].is_empty());
}
