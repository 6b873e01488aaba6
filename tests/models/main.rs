//! The speech models on real recordings: voice detection, recognition and its
//! accuracy, prompts, transcription and replayed calls (no live server).
mod endpointing;
mod grammar;
mod language;
mod one_digit;
mod pauses;
mod prompts;
mod replay_paths;
mod sentences;
mod slots_replay;
mod transcribe;
mod whisper_base;

/// `hotline replay` of one real recording said as a call against `plan`:
/// the caller waits `lead_ms`, says it (through 8 kHz), then stays on the
/// line 3 s; `args` go before `--dialplan` (`--dtmf 1@0.5`). The JSON
/// timeline; fails the test when replay fails.
fn replay_recording(plan: &std::path::Path, recording: &str, lead_ms: u64, args: &[&str]) -> String {
    use hotline::audio::{f32_to_i16, read_wav, write_wav};
    const RATE: u32 = 8000;
    let speech = read_wav(&testkit::testdata::testdata_dir().join(recording)).expect("testdata");
    let mut samples = vec![0i16; (lead_ms * RATE as u64 / 1000) as usize];
    samples.extend(f32_to_i16(&speech.to_f32_at(RATE).unwrap()));
    samples.extend(vec![0i16; 3 * RATE as usize]);
    let wav = plan.parent().unwrap().join("call.wav");
    write_wav(&wav, RATE, &samples).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["replay", "--max-seconds", "30"])
        .args(args)
        .arg("--dialplan")
        .arg(plan)
        .arg(&wav)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run hotline");
    let timeline = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{timeline}\n{}", String::from_utf8_lossy(&out.stderr));
    timeline
}
