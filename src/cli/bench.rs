//! `hotline bench ...`: the benchmarks live in their own binary,
//! `hotline-bench`, so the product carries no emulator or test data. This
//! runs the one built beside this binary with the same arguments.
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Why `hotline-bench` was not run (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("hotline bench: cannot tell where this binary is: {0}")]
    NoOwnPath(#[source] std::io::Error),
    #[error(
        "hotline bench: {} not found; the benchmarks are built apart from the server: \
         `cargo build --release -p hotline-bench` (or `cargo build --release --workspace`)",
        .0.display()
    )]
    NotBuilt(PathBuf),
    #[error("hotline bench: cannot run {}: {source}", .path.display())]
    CannotRun { path: PathBuf, source: std::io::Error },
}

#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// `asr`, `intents`, `load` or `soak` and their options (`hotline bench --help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

/// Where `hotline-bench` must be: beside the running `hotline`.
pub fn bench_binary(hotline: &Path) -> PathBuf {
    hotline.with_file_name("hotline-bench")
}

/// Runs `hotline-bench`; its exit code is the verdict.
pub fn run(args: Args) -> Result<u8, BenchError> {
    let bench = bench_binary(&std::env::current_exe().map_err(BenchError::NoOwnPath)?);
    if !bench.is_file() {
        return Err(BenchError::NotBuilt(bench));
    }
    exec(&bench, &args.args)
}

/// Runs `bench` in place of this process (its exit status becomes ours).
#[cfg(unix)]
fn exec(bench: &Path, args: &[OsString]) -> Result<u8, BenchError> {
    use std::os::unix::process::CommandExt;
    // Returns only when the exec failed.
    let source = std::process::Command::new(bench).args(args).exec();
    Err(BenchError::CannotRun { path: bench.to_path_buf(), source })
}

#[cfg(not(unix))]
fn exec(bench: &Path, args: &[OsString]) -> Result<u8, BenchError> {
    match std::process::Command::new(bench).args(args).status() {
        Ok(s) => Ok(s.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1)),
        Err(source) => Err(BenchError::CannotRun { path: bench.to_path_buf(), source }),
    }
}
