//! `hotline record-test` on a real records file: calls that cannot become
//! replay cases are named with the reason, and the exit code says whether
//! anything was made.
use std::process::{Command, Output};

use hotline::call::Event;
use hotline::records::{open_store, CallRecord};

fn record_test(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotline"))
        .arg("record-test")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run hotline")
}

fn call(id: &str, audio_file: Option<&str>) -> CallRecord {
    let mut r = CallRecord {
        call_id: id.into(),
        start_unix_ms: 1_796_428_800_000,
        outcome: Some("transferred".into()),
        audio_file: audio_file.map(Into::into),
        ..CallRecord::default()
    };
    r.push_event(Event::Dtmf { t_ms: 2_500, digit: '0' });
    r.push_event(Event::Transfer { t_ms: 2_600, extension: "100".into(), context: None });
    r
}

#[test]
fn calls_without_kept_audio_are_named_and_skipped_and_the_rest_are_made() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    hotline::audio::write_wav(&d.join("kept.wav"), 8_000, &[0; 8_000]).unwrap();
    let mut store = open_store(&d.join("calls.db")).unwrap();
    store.write(&call("no-audio", None)).unwrap();
    store.write(&call("kept", Some("kept.wav"))).unwrap();
    drop(store);

    let out = record_test(d, &["--db", "calls.db", "--call", "no-audio,nowhere"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "nothing was made: {stderr}");
    assert!(stderr.contains("call no-audio: skipped: no caller audio was kept"), "{stderr}");
    assert!(stderr.contains("call nowhere: skipped: not in calls.db"), "{stderr}");
    assert!(!d.join("tests/calls").exists(), "no case of a call without audio");

    let out = record_test(d, &["--db", "calls.db", "--all", "--since", "2026-12-05", "--out", "cases"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "a case was made: {stderr}");
    assert!(stderr.contains("call no-audio: skipped"), "{stderr}");
    let expectation = std::fs::read_to_string(d.join("cases/kept.expect.toml")).unwrap();
    assert!(expectation.contains("dtmf = [\"0@2.500\"]\nexpect = [\"transfer:100\"]"), "{expectation}");

    let out = record_test(d, &["--db", "calls.db", "--all", "--since", "last week"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("--since: `last week` is not a date"));
}
