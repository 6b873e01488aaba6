//! The `hotline` binary as an admin meets it when something is wrong: each
//! problem once on stderr, naming the file and position, the documented exit code,
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
