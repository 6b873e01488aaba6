//! `hotline bench soak`: a server under steady traffic for a long time.
//!
//! Runs `hotline serve` as its own process on loopback (a fresh prompt
//! cache, so start-up renders every prompt), waits for `GET /readyz`, then
//! keeps `--calls` emulated chan_websocket calls going for `--minutes`:
//! each says a real recorded "one" after every prompt for `--call-secs`,
//! hangs up, and the next call starts at once. The server process's
//! resident memory and open file descriptors are sampled at the start, every
//! few seconds (peak) and once the last call is over; every finished call
//! must have left exactly one call record. Leaks show as memory or
//! descriptors that grow from start to end.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::load::{asterisk_call, BENCH_DIALPLAN, CLIPS};

#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// How long calls keep coming.
    #[arg(long, default_value_t = 30)]
    pub minutes: u64,
    /// Calls in progress at any time.
    #[arg(long, default_value_t = 8)]
    pub calls: usize,
    /// Length of each call, seconds.
    #[arg(long, default_value_t = 30)]
    pub call_secs: u64,
    /// Folder with the test recordings (default: ../shared/testdata).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// One sample of the server process.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct ProcessSample {
    pub rss_mb: f64,
    pub open_fds: usize,
}

#[derive(Debug, Serialize)]
pub struct SoakReport {
    pub minutes: u64,
    pub concurrent_calls: usize,
    pub call_secs: u64,
    pub ready_after_ms: u64,
    pub calls_completed: usize,
    pub calls_failed: usize,
    pub responses: usize,
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    pub underruns: usize,
    pub dropped_frames: usize,
    pub call_records: usize,
    pub start: ProcessSample,
    pub peak: ProcessSample,
    pub end: ProcessSample,
    pub machine: String,
}

pub fn run(args: SoakArgs) -> u8 {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(soak(args)) {
        Ok(report) => {
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
            println!("{}", markdown(&report));
            let clean = report.calls_failed == 0 && report.call_records == report.calls_completed + report.calls_failed;
            if clean {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("bench soak: {e}");
            1
        }
    }
}

/// The server process; killed if the bench stops early.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn soak(args: SoakArgs) -> Result<SoakReport, String> {
    let data = args.data.clone().unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata"));
    let clips: Vec<Vec<i16>> = CLIPS
        .iter()
        .map(|c| {
            let a = crate::audio::read_wav(&data.join(c)).map_err(|e| format!("{}: {e}", data.join(c).display()))?;
            Ok(crate::audio::f32_to_i16(&a.to_f32_at(16_000).map_err(|e| format!("{}: {e}", data.join(c).display()))?))
        })
        .collect::<Result<_, String>>()?;
    let dir = tempfile_dir()?;
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free loopback port: {e}"))?;
    let config = dir.join("hotline.toml");
    let toml = format!(
        "listen = \"{addr}\"\ndialplan_dir = \"dialplans\"\ndefault_dialplan = \"bench\"\nmax_calls = {}\n\
         call_records = \"calls.jsonl\"\nprompt_cache_dir = \"prompts\"\nshutdown_grace_secs = 5\n",
        args.calls + 1
    );
    std::fs::write(&config, toml).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let child = Command::new(exe)
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start hotline serve: {e}"))?;
    let mut server = ServerProcess(child);
    let pid = server.0.id();
    wait_ready(addr, &mut server.0).await?;
    let ready_after_ms = started.elapsed().as_millis() as u64;
    let start = sample(pid)?;
    eprintln!(
        "soak: server ready after {ready_after_ms} ms ({start:?}); {} calls for {} min",
        args.calls, args.minutes
    );

    let peak = Arc::new(Mutex::new(start));
    let sampler = {
        let peak = Arc::clone(&peak);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if let Ok(s) = sample(pid) {
                    let mut p = peak.lock().unwrap_or_else(|e| e.into_inner());
                    p.rss_mb = p.rss_mb.max(s.rss_mb);
                    p.open_fds = p.open_fds.max(s.open_fds);
                }
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(args.minutes * 60);
    let call_no = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(Totals::default()));
    let workers: Vec<_> = (0..args.calls)
        .map(|w| {
            let (clips, call_no, results) = (clips.clone(), Arc::clone(&call_no), Arc::clone(&results));
            let call_len = Duration::from_secs(args.call_secs);
            tokio::spawn(async move {
                // Staggered, so calls start and end at different moments.
                tokio::time::sleep(call_len * w as u32 / args.calls.max(1) as u32).await;
                while Instant::now() < deadline {
                    let n = call_no.fetch_add(1, Ordering::Relaxed) + 1;
                    let clip = clips[n % clips.len()].clone();
                    let outcome = asterisk_call(addr, n as u32, clip, call_len).await;
                    results.lock().unwrap_or_else(|e| e.into_inner()).add(outcome);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    // Let the last records be written and the calls' resources go.
    tokio::time::sleep(Duration::from_secs(3)).await;
    sampler.abort();
    let end = sample(pid)?;
    let peak = *peak.lock().unwrap_or_else(|e| e.into_inner());
    let call_records = count_records(&dir.join("calls.jsonl"))?;
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let _ = tokio::task::spawn_blocking(move || server.0.wait()).await;
    let _ = std::fs::remove_dir_all(&dir);

    let totals = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
    let mut latencies = totals.latencies_ms;
    latencies.sort_unstable();
    let pct = |p: f64| (!latencies.is_empty()).then(|| latencies[((latencies.len() - 1) as f64 * p).round() as usize]);
    Ok(SoakReport {
        minutes: args.minutes,
        concurrent_calls: args.calls,
        call_secs: args.call_secs,
        ready_after_ms,
        calls_completed: totals.completed,
        calls_failed: totals.failed,
        responses: latencies.len(),
        p50_ms: pct(0.5),
        p95_ms: pct(0.95),
        underruns: totals.underruns,
        dropped_frames: totals.dropped,
        call_records,
        start,
        peak,
        end,
        machine: super::machine(),
    })
}

#[derive(Default)]
struct Totals {
    completed: usize,
    failed: usize,
    latencies_ms: Vec<u64>,
    underruns: usize,
    dropped: usize,
}

impl Totals {
    fn add(&mut self, outcome: Result<super::load::CallResult, String>) {
        match outcome {
            Ok(r) => {
                self.completed += 1;
                self.latencies_ms.extend(r.latencies_ms);
                self.underruns += r.underruns;
                self.dropped += r.dropped;
            }
            Err(e) => {
                eprintln!("soak call failed: {e}");
                self.failed += 1;
            }
        }
    }
}

fn tempfile_dir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("hotline-soak-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("dialplans")).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(dir.join("dialplans/bench.toml"), BENCH_DIALPLAN).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// Polls `GET /readyz` until it says 200 (the voice loaded, prompts rendered).
async fn wait_ready(addr: std::net::SocketAddr, server: &mut Child) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t0 = Instant::now();
    loop {
        if let Ok(Some(status)) = server.try_wait() {
            return Err(format!("hotline serve exited before it was ready ({status})"));
        }
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
            let _ = s.write_all(b"GET /readyz HTTP/1.1\r\nHost: soak\r\n\r\n").await;
            let mut answer = String::new();
            let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_string(&mut answer)).await;
            if answer.starts_with("HTTP/1.1 200") {
                return Ok(());
            }
        }
        if t0.elapsed() > Duration::from_secs(300) {
            return Err("the server was not ready after 300 s".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Resident memory and open descriptors of process `pid` (Linux /proc).
fn sample(pid: u32) -> Result<ProcessSample, String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let rss_kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .ok_or_else(|| format!("/proc/{pid}/status has no VmRSS"))?;
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_err(|e| format!("/proc/{pid}/fd: {e}"))?.count();
    Ok(ProcessSample { rss_mb: rss_kb / 1024.0, open_fds })
}

/// Call records written; every line must be a whole JSON record.
fn count_records(path: &Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for (i, line) in text.lines().enumerate() {
        serde_json::from_str::<serde_json::Value>(line)
            .map_err(|e| format!("{}:{}: not a whole record: {e}", path.display(), i + 1))?;
    }
    Ok(text.lines().count())
}

fn markdown(r: &SoakReport) -> String {
    let ms = |v: Option<u64>| v.map_or("—".to_string(), |v| format!("{v} ms"));
    format!(
        "| minutes | calls at once | call length | calls completed | failed | call records | responses p50 / p95 | underruns | RSS start / peak / end | open fds start / peak / end |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n\
         | {} | {} | {} s | {} | {} | {} | {} / {} | {} | {:.0} / {:.0} / {:.0} MB | {} / {} / {} |\n\n\
         Server ready {:.1} s after start (models, voice, prompts). {}",
        r.minutes,
        r.concurrent_calls,
        r.call_secs,
        r.calls_completed,
        r.calls_failed,
        r.call_records,
        ms(r.p50_ms),
        ms(r.p95_ms),
        r.underruns + r.dropped_frames,
        r.start.rss_mb,
        r.peak.rss_mb,
        r.end.rss_mb,
        r.start.open_fds,
        r.peak.open_fds,
        r.end.open_fds,
        r.ready_after_ms as f64 / 1000.0,
        r.machine
    )
}
