//! The `hotline` binary as an admin meets it when something is wrong: one
//! message on stderr naming the file and position, the documented exit code,
//! and plain text (no colour codes) when stderr is a file or a pipe.

use std::path::Path;
use std::process::{Command, Output};

fn serve_with_config(config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotline")).args(["serve", "--config"]).arg(config).output().expect("run hotline")
}

#[test]
fn a_bad_server_config_is_named_with_its_position_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hotline.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\n[servr]\nmax_calls = 4\n").unwrap();
    let out = serve_with_config(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with(&format!("{}:2:2: unknown field `servr`", config.display())), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "printed once: {stderr}");
}

#[test]
fn a_startup_failure_is_logged_without_colour_codes_when_stderr_is_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dialplans");
    let config = dir.path().join("hotline.toml");
    let toml = format!("listen = \"127.0.0.1:0\"\ndialplan_dir = {:?}\n", missing.display().to_string());
    std::fs::write(&config, toml).unwrap();
    let out = serve_with_config(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ERROR") && stderr.contains(&missing.display().to_string()), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes in a piped log: {stderr:?}");
}

fn hotline(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run hotline")
}

/// The first bytes of a real recording: a WAV cut off mid-header, as a
/// failed copy leaves it.
fn truncated_recording(dir: &Path) -> std::path::PathBuf {
    let real = crate::support::testdata::testdata_dir().join("whisper_jfk/jfk.wav");
    let bytes = std::fs::read(&real).unwrap_or_else(|e| panic!("the test recording {}: {e}", real.display()));
    let cut = dir.join("cut.wav");
    std::fs::write(&cut, &bytes[..20]).unwrap();
    cut
}

/// The whole of stderr is one line, starting with `what` (the file or
/// argument at fault, as a compiler names it), and said once.
fn assert_one_line_starting_with(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line, printed once: {stderr}");
    assert!(stderr.starts_with(what), "should start with {what:?}: {stderr}");
    stderr
}

#[test]
fn replay_of_a_truncated_recording_names_it_on_one_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cut = truncated_recording(dir.path());
    let out = hotline(&["replay".as_ref(), "--dialplan".as_ref(), "dialplans/hotline.toml".as_ref(), cut.as_os_str()]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = assert_one_line_starting_with(&out, &format!("{}: ", cut.display()));
    assert!(stderr.contains("truncated"), "{stderr}");
    assert!(out.stdout.is_empty(), "no timeline for a call that was not replayed");
}

#[test]
fn replay_of_a_file_that_is_not_a_wav_names_it_on_one_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let mp3 = dir.path().join("call.mp3");
    std::fs::write(&mp3, b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00").unwrap();
    let out = hotline(&["replay".as_ref(), "--dialplan".as_ref(), "dialplans/hotline.toml".as_ref(), mp3.as_os_str()]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = assert_one_line_starting_with(&out, &format!("{}: ", mp3.display()));
    assert!(stderr.contains("not a WAV file"), "{stderr}");
}

#[test]
fn replay_with_a_bad_key_names_the_argument_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("call.wav");
    hotline::audio::write_wav(&wav, 8_000, &vec![0i16; 8_000]).unwrap();
    let out = hotline(&[
        "replay".as_ref(),
        "--dialplan".as_ref(),
        "dialplans/hotline.toml".as_ref(),
        wav.as_os_str(),
        "--dtmf".as_ref(),
        "12@1".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = assert_one_line_starting_with(&out, "--dtmf \"12@1\": ");
    assert!(stderr.contains("\"12\" is not one key"), "{stderr}");
}

#[test]
fn transcribe_with_a_bad_grammar_names_the_argument_and_exits_2_before_loading_models() {
    let dir = tempfile::tempdir().unwrap();
    let cut = truncated_recording(dir.path());
    let out = hotline(&["transcribe".as_ref(), "--grammar".as_ref(), "digits:5-2".as_ref(), cut.as_os_str()]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert_one_line_starting_with(&out, "--grammar: digits:5-2: need 1 <= N <= M");
}

#[test]
fn an_unknown_model_name_lists_the_models_there_are() {
    let out = hotline(&["transcribe".as_ref(), "--model".as_ref(), "nonsense".as_ref(), "call.wav".as_ref()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("\"nonsense\" is not one of \"whisper-tiny.en\" | \"whisper-base\""), "{stderr}");
}

#[test]
fn say_into_a_folder_that_does_not_exist_names_the_output_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let prompt = crate::support::testdata::testdata_dir().join("whisper_jfk/jfk.wav");
    assert!(prompt.is_file(), "the test recording {} is missing", prompt.display());
    let out_path = dir.path().join("no-such-folder").join("prompt.wav");
    let cache = dir.path().join("cache");
    let out = hotline(&[
        "say".as_ref(),
        "--wav".as_ref(),
        prompt.as_os_str(),
        "--out".as_ref(),
        out_path.as_os_str(),
        "--cache".as_ref(),
        cache.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert_one_line_starting_with(&out, &format!("{}: ", out_path.display()));
}

#[test]
fn every_mistake_of_a_server_config_is_printed_at_once_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hotline.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\nmax_calls = 0\n[recognizer]\nthreds = 2\n[transfer]\nmethod = \"pigeon\"\n",
    )
    .unwrap();
    let out = serve_with_config(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let file = config.display();
    assert_eq!(
        stderr.trim_end(),
        format!(
            "{file}:2:13: `max_calls`: 0 is out of range 1..=10000\n\
             {file}:4:1: unknown field `threds` in [recognizer]\n  = help: did you mean `threads`?\n\
             {file}:6:10: `transfer.method`: \"pigeon\" is not one of \"ami\", \"hangup\""
        )
    );
}
