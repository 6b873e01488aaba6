//! `hotline bench ...` runs the separately built `hotline-bench` that sits
//! beside the `hotline` binary, with the user's arguments untouched, and
//! says how to build it when it is missing.
use std::path::{Path, PathBuf};
use std::process::Command;

/// A folder holding a `hotline` binary of this build (hard-linked, so
/// nothing big is copied) and nothing else.
fn lone_hotline() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let hotline = dir.path().join("hotline");
    let built = Path::new(env!("CARGO_BIN_EXE_hotline"));
    std::fs::hard_link(built, &hotline).or_else(|_| std::fs::copy(built, &hotline).map(|_| ())).unwrap();
    (dir, hotline)
}

#[test]
fn bench_runs_hotline_bench_beside_it_with_the_same_arguments() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, hotline) = lone_hotline();
    let bench = dir.path().join("hotline-bench");
    std::fs::write(&bench, "#!/bin/sh\necho \"bench got: $*\"\nexit 7\n").unwrap();
    std::fs::set_permissions(&bench, std::fs::Permissions::from_mode(0o755)).unwrap();

    let out = Command::new(&hotline).args(["bench", "load", "--calls", "3", "--help"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bench got: load --calls 3 --help\n");
    assert_eq!(out.status.code(), Some(7), "its exit status is the command's");
}

#[test]
fn bench_without_hotline_bench_names_the_build_command() {
    let (_dir, hotline) = lone_hotline();
    let out = Command::new(&hotline).args(["bench", "load"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("hotline-bench not found"), "{stderr}");
    assert!(stderr.contains("cargo build --release -p hotline-bench"), "{stderr}");
}
