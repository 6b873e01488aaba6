//! `hotline transcribe` on real recordings: accuracy, utterance boundaries
//! and bad input, through the real binary.
use std::path::{Path, PathBuf};
use std::process::Command;

use hotline::audio::{read_wav, write_wav};
use testkit::testdata::{clips, testdata_dir, word_errors};

#[derive(Debug, serde::Deserialize)]
struct Line {
    file: String,
    start_ms: u64,
    end_ms: u64,
    text: String,
    decode_ms: u64,
}

struct Output {
    lines: Vec<Line>,
    stderr: String,
    code: i32,
}

fn transcribe(files: &[PathBuf]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_hotline")).arg("transcribe").args(files).output().expect("run hotline");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line: {l:?}: {e}")))
        .collect();
    Output { lines, stderr: String::from_utf8_lossy(&out.stderr).into_owned(), code: out.status.code().unwrap_or(-1) }
}

/// Word error rate of a whole source folder, utterances of a file joined.
fn source_wer(source: &str) -> f64 {
    let data = testdata_dir();
    let clips = clips(&data, source).expect("transcripts");
    let files: Vec<PathBuf> = clips.iter().map(|c| c.path.clone()).collect();
    let out = transcribe(&files);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (mut errors, mut words) = (0, 0);
    for c in &clips {
        let name = c.path.display().to_string();
        let hyp: Vec<&str> = out.lines.iter().filter(|l| l.file == name).map(|l| l.text.as_str()).collect();
        let (e, n) = word_errors(&c.text, &hyp.join(" "));
        errors += e;
        words += n;
    }
    errors as f64 / words as f64
}

// Thresholds: measured WER on this model plus a margin (see the README's
// benchmark table for the figures themselves).
#[test]
fn read_sentences_are_transcribed() {
    let arctic = source_wer("cmu_arctic");
    eprintln!("cmu_arctic WER {arctic:.3}");
    assert!(arctic <= 0.20, "cmu_arctic WER {arctic:.3}");
    let jfk = source_wer("whisper_jfk");
    eprintln!("whisper_jfk WER {jfk:.3}");
    assert!(jfk <= 0.15, "whisper_jfk WER {jfk:.3}");
    let cards = source_wer("pocketsphinx");
    eprintln!("pocketsphinx WER {cards:.3}");
    assert!(cards <= 0.20, "pocketsphinx WER {cards:.3}");
}

/// Three tightly trimmed real digits, 1 s of silence between them: three
/// utterances, each within 150 ms of where the clip really is.
#[test]
fn vad_finds_three_utterances_at_their_boundaries() {
    let data = testdata_dir();
    let names = ["fsdd/3_jackson_0.wav", "fsdd/7_nicolas_1.wav", "fsdd/1_theo_2.wav"];
    let mut samples = vec![0i16; 8000]; // 1 s lead-in
    let mut truth = Vec::new();
    for n in names {
        let a = read_wav(&data.join(n)).expect(n);
        assert_eq!(a.rate, 8000);
        let start = samples.len() as u64 / 8;
        samples.extend_from_slice(&a.samples);
        truth.push((start, samples.len() as u64 / 8));
        samples.extend(std::iter::repeat_n(0, 8000));
    }
    let dir = tempfile::tempdir().unwrap();
    let call = dir.path().join("three_digits.wav");
    write_wav(&call, 8000, &samples).unwrap();
    let out = transcribe(&[call]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got: Vec<(u64, u64)> = out.lines.iter().map(|l| (l.start_ms, l.end_ms)).collect();
    assert_eq!(got.len(), 3, "utterances {got:?}, truth {truth:?}");
    for ((s, e), (ts, te)) in got.iter().zip(&truth) {
        assert!(s.abs_diff(*ts) <= 150, "start {s} vs {ts} ({got:?} / {truth:?})");
        assert!(e.abs_diff(*te) <= 150, "end {e} vs {te} ({got:?} / {truth:?})");
    }
    assert!(out.lines.iter().all(|l| l.decode_ms > 0));
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn wav_with(spec: hound::WavSpec, n: usize) -> Vec<u8> {
    let mut cur = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
    for i in 0..n {
        if spec.sample_format == hound::SampleFormat::Float {
            w.write_sample(0.001 * i as f32).unwrap();
        } else if spec.bits_per_sample == 24 {
            w.write_sample(i as i32).unwrap();
        } else {
            w.write_sample(i as i16).unwrap();
        }
    }
    w.finalize().unwrap();
    cur.into_inner()
}

/// Every kind of bad file gets its own one-line error naming the file, the
/// good file among them is still transcribed, and the exit code is 2.
#[test]
fn bad_files_are_reported_and_the_rest_still_processed() {
    let dir = tempfile::tempdir().unwrap();
    let good = testdata_dir().join("whisper_jfk/jfk.wav");
    let good_bytes = std::fs::read(&good).unwrap();
    let spec =
        |bits, fmt| hound::WavSpec { channels: 1, sample_rate: 16000, bits_per_sample: bits, sample_format: fmt };
    let cases = [
        (write(dir.path(), "truncated_header.wav", &good_bytes[..20]), "truncated"),
        (
            write(dir.path(), "truncated_data.wav", &good_bytes[..good_bytes.len() / 2]),
            "truncated WAV: the data chunk declares",
        ),
        (write(dir.path(), "empty.wav", b""), "empty file"),
        (write(dir.path(), "no_samples.wav", &wav_with(spec(16, hound::SampleFormat::Int), 0)), "0 samples"),
        (write(dir.path(), "deep.wav", &wav_with(spec(24, hound::SampleFormat::Int), 100)), "24-bit PCM"),
        (write(dir.path(), "float.wav", &wav_with(spec(32, hound::SampleFormat::Float), 100)), "32-bit float"),
        (
            write(dir.path(), "song.mp3", b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00"),
            "not a WAV file (extension .mp3)",
        ),
        (write(dir.path(), "garbage.wav", &(0..=255u8).cycle().take(5000).collect::<Vec<_>>()), "not a WAV file"),
        (dir.path().join("missing.wav"), "cannot read"),
    ];
    let mut files: Vec<PathBuf> = cases.iter().map(|(p, _)| p.clone()).collect();
    files.insert(4, good.clone());
    let out = transcribe(&files);
    assert_eq!(out.code, 2, "{}", out.stderr);
    for (path, want) in &cases {
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains(&path.display().to_string()))
            .unwrap_or_else(|| panic!("no error for {}: {}", path.display(), out.stderr));
        assert!(line.contains(want), "{line:?} should say {want:?}");
    }
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let jfk: Vec<&Line> = out.lines.iter().filter(|l| l.file == good.display().to_string()).collect();
    assert!(jfk.len() >= 2, "the good file was transcribed: {:?}", out.lines);
}

/// A file that cannot be read is said once, on one line that starts with
/// its name (as a compiler names a file), however many files follow it.
#[test]
fn an_unreadable_file_is_named_once_at_the_start_of_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = testdata_dir().join("whisper_jfk/jfk.wav");
    let cut = write(dir.path(), "cut.wav", &std::fs::read(&good).unwrap()[..20]);
    let out = transcribe(&[cut.clone(), good]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let named: Vec<&str> = out.stderr.lines().filter(|l| l.contains(&cut.display().to_string())).collect();
    assert_eq!(named.len(), 1, "{}", out.stderr);
    assert!(named[0].starts_with(&format!("{}: ", cut.display())), "{}", out.stderr);
    assert!(named[0].contains("truncated"), "{}", out.stderr);
}

/// A missing model is one clear message naming the file, not a crash
/// inside ONNX Runtime.
#[test]
fn missing_model_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("SHA256SUMS"), "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["transcribe", "whatever.wav"])
        .env("HOTLINE_MODELS_DIR", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("silero_vad.onnx is missing") && stderr.contains("scripts/setup"), "{stderr}");
}
