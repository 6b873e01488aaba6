//! `hotline bench ...`: the benchmarks live in their own binary,
//! `hotline-bench`, so the product carries no emulator or test data. This
//! runs the one built beside this binary with the same arguments.
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Exit code when `hotline-bench` is not there or cannot be run.
const NOT_RUN: u8 = 2;

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

pub fn run(args: Args) -> u8 {
    let bench = match std::env::current_exe() {
        Ok(exe) => bench_binary(&exe),
        Err(e) => {
            eprintln!("hotline bench: cannot tell where this binary is: {e}");
            return NOT_RUN;
        }
    };
    if !bench.is_file() {
        eprintln!(
            "hotline bench: {} not found; the benchmarks are built apart from the server: \
             `cargo build --release -p hotline-bench` (or `cargo build --release --workspace`)",
            bench.display()
        );
        return NOT_RUN;
    }
    exec(&bench, &args.args)
}

/// Runs `bench` in place of this process (its exit status becomes ours).
#[cfg(unix)]
fn exec(bench: &Path, args: &[OsString]) -> u8 {
    use std::os::unix::process::CommandExt;
    let e = std::process::Command::new(bench).args(args).exec();
    eprintln!("hotline bench: cannot run {}: {e}", bench.display());
    NOT_RUN
}

#[cfg(not(unix))]
fn exec(bench: &Path, args: &[OsString]) -> u8 {
    match std::process::Command::new(bench).args(args).status() {
        Ok(s) => s.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1),
        Err(e) => {
            eprintln!("hotline bench: cannot run {}: {e}", bench.display());
            NOT_RUN
        }
    }
}
