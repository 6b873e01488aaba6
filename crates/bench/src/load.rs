//! `hotline bench load`: how many simultaneous calls this machine serves in
//! real time.
//!
//! Starts the real server on loopback and runs 1, 2, 4, … up to `--calls`
//! emulated calls at once (the chan_websocket, AudioSocket or Twilio
//! emulator the tests use, or for `audio_fork` / `audio_stream` the
//! loopback FreeSWITCH whose channels play the server's prompts), each
//! saying real recorded words in a loop for `--duration` seconds. A level
//! passes when no call failed or had a prompt underrun or a dropped frame
//! and the end-of-speech → first-response-audio p95 is under the limit
//! (800 ms; `--p95-limit-ms`). Prints one JSON line per level and the
//! largest passing level.
//!
//! With `--ramp` the levels grow by `--step` calls from `--from` instead
//! (10, 20, 30, … by default, up to `--calls`) and the run stops at the
//! first level that fails, by default against a p95 limit of 500 ms; the
//! last line gives the last passing level (`max_sustained_calls`) with its
//! CPU split and memory.
//!
//! Each level also says where the CPU went, from the time of every thread
//! of the process (`/proc/self/task`) by name: recognition (`asr-N`, and
//! the decoder's ONNX Runtime pool, named `asr-onnx` here), voice
//! detection (`vad`), the server's async workers and blocking pool
//! (`server-io`, a runtime of their own) with the call-record writer
//! (`call-records`), and the emulated PBX (everything else: its runtime's
//! `pbx-emulator` threads and the main thread), each in CPU milliseconds
//! per second of call, and the cores the server used. Where voice
//! detection runs on the async workers, it is counted in `server_io`.
//! The first level starts once the server is ready (recogniser readied,
//! prompts rendered), so it measures calls, not the start-up.
//!
//! With `--target ADDR` it starts no server and calls the hotline (or the
//! balancer in front of several) listening there instead: the load of a
//! whole fleet, as its PBX would bring it. The fleet test drives its
//! speech calls through HAProxy with [`drive`]. Only the emulator's CPU is
//! measured then; the server's figures are `null`.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use testkit::asterisk::{AsteriskCall, AsteriskConfig, Seen};
use testkit::audiosocket::{AudioSocketCaller, Received};
use testkit::freeswitch::{FakeEsl, Module};
use testkit::twilio::TwilioCall;

use crate::freeswitch_caller::{channel_uuid, run_call};
use hotline::config::ServerConfig;
use hotline::pbx::transport::Transport;

/// Two menus that send the caller back and forth by saying "one": every
/// turn is a recognition followed by a prompt.
pub const BENCH_DIALPLAN: &str = r#"
start = "main"

[operator]
extension = "100"

[menus.main]
prompt = "Main menu. Say one."
no_input_timeout = 30

[menus.main.options.next]
phrases = ["one"]
dtmf = "1"
goto = "second"

[menus.second]
prompt = "Second menu. Say one."
no_input_timeout = 30

[menus.second.options.again]
phrases = ["one"]
dtmf = "1"
goto = "main"
"#;

/// Real recordings of "one" (Speech Commands, CC BY 4.0), rotated per call.
pub(super) const CLIPS: &[&str] = &[
    "speech_commands/one_2796ac50_nohash_0.wav",
    "speech_commands/one_3b4f8f24_nohash_0.wav",
    "speech_commands/one_0cb74144_nohash_1.wav",
];

/// The p95 a level of `bench load` must stay under (`--p95-limit-ms`).
pub const P95_LIMIT_MS: u64 = 800;
/// The same with `--ramp`: the latency a caller should get at the most
/// calls an instance is sized for.
pub const RAMP_P95_LIMIT_MS: u64 = 500;
/// Most calls `--ramp` tries without `--calls`: it stops at the first
/// level that fails long before on a few cores.
pub const RAMP_CALLS: usize = 200;
/// Name of the server's runtime threads (async workers and blocking pool).
pub const SERVER_THREADS: &str = "server-io";
/// How long the server may take to be ready for calls after it starts.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// The name given to the threads native code starts from the server's
/// runtime threads (which would otherwise inherit `server-io`): ONNX
/// Runtime's intra-op pool of the shared Whisper decoder, the one session
/// run by more than one thread, so they count as recognition.
pub const NATIVE_POOL_THREADS: &str = "asr-onnx";
/// Name of the emulated PBX's runtime threads.
pub const EMULATOR_THREADS: &str = "pbx-emulator";

/// [`CLIPS`] at `rate`, from `data` (default: ../shared/testdata).
pub fn load_clips(data: Option<&Path>, rate: u32) -> Result<Vec<Vec<i16>>, String> {
    let data = data.map_or_else(testkit::testdata::testdata_dir, Path::to_path_buf);
    CLIPS
        .iter()
        .map(|c| {
            let path = data.join(c);
            let a = hotline::audio::read_wav(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(hotline::audio::f32_to_i16(&a.to_f32_at(rate).map_err(|e| format!("{}: {e}", path.display()))?))
        })
        .collect()
}

/// A scratch folder `hotline-<what>-<pid>` in the temp dir holding
/// [`BENCH_DIALPLAN`] as `dialplans/bench.toml`, for a server to serve.
pub(crate) fn bench_folder(what: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("hotline-{what}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("dialplans")).map_err(|e| format!("{}: {e}", dir.display()))?;
    let plan = dir.join("dialplans/bench.toml");
    std::fs::write(&plan, BENCH_DIALPLAN).map_err(|e| format!("{}: {e}", plan.display()))?;
    Ok(dir)
}

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// Most simultaneous calls to try (levels 1, 2, 4, … up to this; with
    /// --ramp the last level) [default: 4; with --ramp: 200].
    #[arg(long)]
    pub calls: Option<usize>,
    /// Grow the calls by --step from --from until a level fails (p95 over
    /// the limit, a failed call, an underrun or a dropped frame), instead
    /// of doubling; ends with the most calls sustained and their CPU split.
    #[arg(long)]
    pub ramp: bool,
    /// First level of --ramp.
    #[arg(long, default_value_t = 10, requires = "ramp")]
    pub from: usize,
    /// Calls added per level of --ramp.
    #[arg(long, default_value_t = 10, requires = "ramp", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub step: usize,
    /// A level fails when the end-of-speech → response p95 is not under
    /// this [default: 800; with --ramp: 500].
    #[arg(long)]
    pub p95_limit_ms: Option<u64>,
    /// Seconds each level runs.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Folder with the test recordings (default: ../shared/testdata).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Transport the emulated PBX uses: asterisk_ws, audiosocket, twilio,
    /// audio_fork or audio_stream.
    #[arg(long, default_value = "asterisk_ws")]
    pub transport: Transport,
    /// The server's `[endpointing] pause_ms` (0 = no early answers) [default: as in a config without it].
    #[arg(long)]
    pub pause_ms: Option<u64>,
    /// Serve without call records (`call_records = ""`), to measure what
    /// storing them costs; by default the server keeps them in SQLite, as
    /// a production server does.
    #[arg(long)]
    pub no_records: bool,
    /// Serve without the second recognition pass (`[recognizer]
    /// second_model = "none"`), to measure what it costs.
    #[arg(long)]
    pub one_pass: bool,
    /// Call the hotline (or the balancer in front of several) listening at
    /// this address instead of starting one (asterisk_ws only; it should
    /// serve `hotline bench`'s dialplan, printed by `--print-dialplan`).
    /// Memory and the server's CPU are then not measured: they are the
    /// servers'.
    #[arg(long)]
    pub target: Option<std::net::SocketAddr>,
    /// Print the dialplan the calls expect (two menus, "one" to go on) and exit.
    #[arg(long)]
    pub print_dialplan: bool,
}

#[derive(Debug, Serialize)]
pub struct LevelReport {
    pub calls: usize,
    pub responses: usize,
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    pub underruns: usize,
    pub dropped_frames: usize,
    pub calls_failed: usize,
    pub rss_base_mb: f64,
    pub rss_peak_mb: f64,
    pub rss_per_call_mb: f64,
    /// Seconds from the first call's start to the last one's end.
    pub wall_seconds: f64,
    /// The calls' durations added up, connect to hang-up.
    pub call_seconds: f64,
    /// CPU of the level per second of call, by part.
    pub cpu_ms_per_call_second: CpuSplit,
    /// Cores the server used on average (voice detection, recognition and
    /// its runtime); `null` with `--target`.
    pub server_cores: Option<f64>,
    pub pass: bool,
}

/// CPU milliseconds per second of call, by the threads that spent them.
/// The server's parts are `null` with `--target` (no server in-process).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuSplit {
    /// The voice detector's thread, `vad` (0 while voice detection runs on
    /// the async workers: then it is part of `server_io`).
    pub vad: Option<f64>,
    /// The recognition threads, `asr-0`, `asr-1`, …, and the Whisper
    /// decoder's ONNX Runtime pool (`asr-onnx`).
    pub recognition: Option<f64>,
    /// The server's runtime (`server-io`: sockets, codecs, resampling, the
    /// call machine, prompt rendering) and the call-record writer.
    pub server_io: Option<f64>,
    /// The emulated PBX: every other thread of the process.
    pub emulator: f64,
}

/// Which part of the bench a thread belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Vad,
    Recognition,
    ServerIo,
    Emulator,
}

fn part_of(thread: &str) -> Part {
    if thread == "vad" || thread.starts_with("vad-") {
        Part::Vad
    } else if thread.starts_with("asr-") {
        Part::Recognition
    } else if thread == SERVER_THREADS || thread == "call-records" {
        Part::ServerIo
    } else {
        Part::Emulator
    }
}

/// `used` (CPU ms by thread name over `wall_s` seconds) per second of call,
/// and the server's cores; the server's figures only when it ran here.
fn cpu_split(used: &BTreeMap<String, f64>, call_s: f64, wall_s: f64, server_here: bool) -> (CpuSplit, Option<f64>) {
    // A fold, not `sum`: an empty sum of f64 is -0.0.
    let total = |part: Part| used.iter().filter(|(n, _)| part_of(n) == part).fold(0.0, |all, (_, ms)| all + ms);
    let (vad, recognition, server_io, emulator) =
        (total(Part::Vad), total(Part::Recognition), total(Part::ServerIo), total(Part::Emulator));
    let per_call_s = |ms: f64| if call_s > 0.0 { (ms / call_s * 100.0).round() / 100.0 } else { 0.0 };
    let server = |ms: f64| server_here.then(|| per_call_s(ms));
    let split = CpuSplit {
        vad: server(vad),
        recognition: server(recognition),
        server_io: server(server_io),
        emulator: per_call_s(emulator),
    };
    let cores = (server_here && wall_s > 0.0)
        .then(|| ((vad + recognition + server_io) / 1000.0 / wall_s * 1000.0).round() / 1000.0);
    (split, cores)
}

pub fn run(args: LoadArgs) -> u8 {
    // The emulated PBX's runtime; the server gets one of its own, so that
    // their threads' CPU can be told apart.
    let runtime = match tokio::runtime::Builder::new_multi_thread().thread_name(EMULATOR_THREADS).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(bench(args)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("bench load: {e}");
            1
        }
    }
}

async fn bench(args: LoadArgs) -> Result<(), String> {
    if args.print_dialplan {
        print!("{BENCH_DIALPLAN}");
        return Ok(());
    }
    // Twilio is 8 kHz µ-law; the others run at 16 kHz here.
    let rate = if args.transport == Transport::Twilio { 8_000 } else { 16_000 };
    let clips = load_clips(args.data.as_deref(), rate)?;
    let most = args.calls.unwrap_or(if args.ramp { RAMP_CALLS } else { 4 }).max(1);
    let limit_ms = args.p95_limit_ms.unwrap_or(if args.ramp { RAMP_P95_LIMIT_MS } else { P95_LIMIT_MS });
    let (served, addr) = match args.target {
        Some(target) if args.transport == Transport::AsteriskWs => (None, target),
        Some(_) => return Err("--target calls with chan_websocket's protocol: --transport asterisk_ws".into()),
        None => {
            let served = serve(&args, most).await?;
            let addr = served.server.addr_of(args.transport).unwrap_or(served.server.local_addr());
            (Some(served), addr)
        }
    };
    let levels = if args.ramp { ramp_levels(args.from, args.step, most) } else { doubling_levels(most) };
    // The answer is the last level before the first failure: a level that
    // passes after one that failed is luck, not capacity.
    let mut best = 0;
    let mut best_report = None;
    let mut failed = false;
    let mut tried = Vec::new();
    let mut call_no = 0u32;
    for &level in &levels {
        let report = run_level(
            args.transport,
            addr,
            level,
            Duration::from_secs(args.duration),
            &clips,
            &mut call_no,
            served.as_ref(),
            limit_ms,
        )
        .await;
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
        tried.push(level);
        failed |= !report.pass;
        if !failed {
            best = level;
            best_report = Some(report);
        } else if args.ramp {
            break;
        }
    }
    if args.ramp {
        let in_process = served.is_some();
        let best = best_report.as_ref();
        println!(
            "{}",
            serde_json::json!({
                "max_sustained_calls": best.map_or(0, |r| r.calls),
                "p95_limit_ms": limit_ms,
                "levels": tried,
                "p95_ms": best.and_then(|r| r.p95_ms),
                "cpu_ms_per_call_second": best.map(|r| &r.cpu_ms_per_call_second),
                "server_cores": best.and_then(|r| r.server_cores),
                "rss_peak_mb": best.filter(|_| in_process).map(|r| r.rss_peak_mb),
                "rss_per_call_mb": best.filter(|_| in_process).map(|r| r.rss_per_call_mb),
            })
        );
    } else {
        println!(
            "{}",
            serde_json::json!({"largest_real_time_calls": best, "p95_limit_ms": limit_ms, "levels": levels})
        );
    }
    if let Some(served) = served {
        served.stop().await;
    }
    Ok(())
}

/// 1, 2, 4, … up to `most` (which is the last level).
fn doubling_levels(most: usize) -> Vec<usize> {
    let most = most.max(1);
    let mut levels = vec![1];
    while levels[levels.len() - 1] < most {
        levels.push((levels[levels.len() - 1] * 2).min(most));
    }
    levels
}

/// `from`, `from + step`, … up to `most` (which is the last level).
fn ramp_levels(from: usize, step: usize, most: usize) -> Vec<usize> {
    let most = most.max(1);
    let mut levels: Vec<usize> = (from.clamp(1, most)..=most).step_by(step.max(1)).collect();
    if levels.last() != Some(&most) {
        levels.push(most);
    }
    levels
}

/// The server a run starts (without `--target`), and what it needs.
struct Served {
    server: hotline::server::RunningServer,
    /// The server's own runtime, threads named [`SERVER_THREADS`].
    runtime: tokio::runtime::Runtime,
    /// Ids of the threads that runtime runs now.
    runtime_threads: Arc<std::sync::Mutex<std::collections::HashSet<u32>>>,
    /// The loopback FreeSWITCH of `audio_fork` / `audio_stream`.
    freeswitch: Option<FakeEsl>,
    dir: PathBuf,
}

impl Served {
    /// Shuts the server down on its runtime, then the runtime (which waits
    /// for its blocking threads, so not on an async worker).
    async fn stop(self) {
        let Served { server, runtime, freeswitch, dir, .. } = self;
        let _ = runtime.spawn(server.shutdown()).await;
        let _ = tokio::task::spawn_blocking(move || drop(runtime)).await;
        drop(freeswitch);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Names [`NATIVE_POOL_THREADS`] the threads called `server-io` that
    /// the server's runtime did not start: a thread created by native code
    /// inherits its creator's name.
    fn name_native_threads(&self) {
        let ours = self.runtime_threads.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (tid, name) in crate::thread_cpu().threads() {
            if name == SERVER_THREADS && !ours.contains(&tid) {
                let _ = crate::rename_thread(tid, NATIVE_POOL_THREADS);
            }
        }
    }
}

/// Starts hotline on loopback serving [`BENCH_DIALPLAN`] with the
/// transport's listener and room for `calls`, on a runtime of its own with
/// a worker per core; returns once it is ready (prompts rendered).
async fn serve(args: &LoadArgs, calls: usize) -> Result<Served, String> {
    let dir = bench_folder("bench")?;
    let mut toml = format!(
        "listen = \"127.0.0.1:0\"\ndialplan_dir = \"dialplans\"\ndefault_dialplan = \"bench\"\nmax_calls = {}\n",
        calls + 1
    );
    if args.no_records {
        toml.push_str("call_records = \"\"\n");
    }
    if let Some(ms) = args.pause_ms {
        toml.push_str(&format!("[endpointing]\npause_ms = {ms}\n"));
    }
    if args.one_pass {
        toml.push_str("[recognizer]\nsecond_model = \"none\"\n");
    }
    let mut freeswitch = None;
    match args.transport {
        Transport::AsteriskWs => {}
        Transport::AudioSocket => {
            toml.push_str("[[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:0\"\nrate = 16000\n")
        }
        Transport::Twilio => toml.push_str("[[listeners]]\ntransport = \"twilio\"\nlisten = \"127.0.0.1:0\"\n"),
        Transport::AudioFork | Transport::AudioStream => {
            let fs = FakeEsl::start_playing().await?;
            toml.push_str(&format!(
                "[[listeners]]\ntransport = \"{}\"\nlisten = \"127.0.0.1:0\"\nrate = 16000\n[esl]\naddress = \"{}\"\npassword = \"{}\"\n",
                args.transport,
                fs.addr,
                testkit::freeswitch::ESL_PASSWORD
            ));
            freeswitch = Some(fs);
        }
    }
    let cfg =
        ServerConfig::from_toml_str(&toml, Some(&dir.join("hotline.toml")), &|_| None).map_err(|e| e.to_string())?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime_threads = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let (on_start, on_stop) = (Arc::clone(&runtime_threads), Arc::clone(&runtime_threads));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name(SERVER_THREADS)
        .on_thread_start(move || {
            if let Some(tid) = crate::thread_id() {
                on_start.lock().unwrap_or_else(|e| e.into_inner()).insert(tid);
            }
        })
        .on_thread_stop(move || {
            if let Some(tid) = crate::thread_id() {
                on_stop.lock().unwrap_or_else(|e| e.into_inner()).remove(&tid);
            }
        })
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the server's runtime: {e}"))?;
    let started = runtime
        .spawn(async move {
            let deps = hotline::server::ServerDeps::load(&cfg).await.map_err(|e| e.to_string())?;
            let server = hotline::server::start(cfg, deps).await.map_err(|e| e.to_string())?;
            // The server readies the recogniser and renders the prompts
            // after it starts; the first level measures calls, not that.
            let deadline = Instant::now() + READY_TIMEOUT;
            while let Some(waiting_for) = server.readiness().blocker() {
                if Instant::now() > deadline {
                    server.shutdown().await;
                    return Err(format!("the server was not ready within {READY_TIMEOUT:?}: {waiting_for}"));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(server)
        })
        .await
        .map_err(|e| format!("starting the server: {e}"))
        .and_then(|r| r);
    match started {
        Ok(server) => {
            let served = Served { server, runtime, runtime_threads, freeswitch, dir };
            served.name_native_threads();
            Ok(served)
        }
        Err(e) => {
            // Not dropped here: that would wait for its threads on an async worker.
            runtime.shutdown_background();
            let _ = std::fs::remove_dir_all(&dir);
            Err(e)
        }
    }
}

/// `calls` chan_websocket calls at once to `addr` (a hotline, or a
/// balancer in front of several, serving [`BENCH_DIALPLAN`]), each saying
/// `clips` in turn after every prompt for `duration`; call numbers follow
/// `call_no`. Memory is not measured (it is the servers').
pub async fn drive(
    addr: std::net::SocketAddr,
    calls: usize,
    duration: Duration,
    clips: &[Vec<i16>],
    call_no: &mut u32,
) -> LevelReport {
    run_level(Transport::AsteriskWs, addr, calls, duration, clips, call_no, None, P95_LIMIT_MS).await
}

#[allow(clippy::too_many_arguments)]
async fn run_level(
    transport: Transport,
    addr: std::net::SocketAddr,
    calls: usize,
    duration: Duration,
    clips: &[Vec<i16>],
    call_no: &mut u32,
    served: Option<&Served>,
    p95_limit_ms: u64,
) -> LevelReport {
    let freeswitch = served.and_then(|s| Some((s.freeswitch.as_ref()?, s.dir.as_path())));
    // The server's memory, when it runs in this process.
    let measure_memory = served.is_some();
    let rss_mb = move || if measure_memory { rss_mb() } else { 0.0 };
    let rss_base = rss_mb();
    let peak = Arc::new(std::sync::Mutex::new(rss_base));
    let sampler = {
        let peak = Arc::clone(&peak);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let r = rss_mb();
                let mut p = peak.lock().unwrap_or_else(|e| e.into_inner());
                if r > *p {
                    *p = r;
                }
            }
        })
    };
    if let Some(s) = served {
        s.name_native_threads();
    }
    let cpu_before = crate::thread_cpu();
    let level_start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..calls {
        *call_no += 1;
        let clip = clips[i % clips.len()].clone();
        if let (Some((fs, dir)), Some(module)) = (freeswitch, Module::of(transport)) {
            let (fs, dir, uuid) = (fs.clone(), dir.to_path_buf(), channel_uuid(*call_no));
            let speech_end = Duration::from_millis(speech_end_ms(&clip, 16_000));
            tasks.push(tokio::spawn(timed(async move {
                let f = run_call(&fs, &dir, module, addr, uuid, clip, speech_end, duration).await?;
                Ok(CallResult { latencies_ms: f.latencies_ms, underruns: f.underruns, dropped: f.dropped_frames })
            })));
        } else if transport == Transport::Twilio {
            let url = format!("ws://{addr}/bench");
            let sid = format!("CA{:032x}", *call_no);
            tasks.push(tokio::spawn(timed(one_twilio_call(url, sid, clip, duration))));
        } else if transport == Transport::AudioSocket {
            let mut uuid = [0x42u8; 16];
            uuid[12..].copy_from_slice(&call_no.to_be_bytes());
            tasks.push(tokio::spawn(timed(one_audiosocket_call(addr, uuid, clip, duration))));
        } else {
            let cfg = AsteriskConfig::new(addr, *call_no);
            tasks.push(tokio::spawn(timed(one_call(cfg, clip, duration))));
        }
        // Stagger the starts a little, as real calls arrive.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let mut latencies = Vec::new();
    let (mut underruns, mut dropped, mut failed) = (0, 0, 0);
    let mut call_seconds = 0.0;
    for t in tasks {
        let outcome = t.await.map(|(took, r)| {
            call_seconds += took.as_secs_f64();
            r
        });
        match outcome {
            Ok(Ok(r)) => {
                latencies.extend(r.latencies_ms);
                underruns += r.underruns;
                dropped += r.dropped;
            }
            Ok(Err(e)) => {
                eprintln!("bench call failed: {e}");
                failed += 1;
            }
            Err(e) => {
                eprintln!("bench call crashed: {e}");
                failed += 1;
            }
        }
    }
    let wall_seconds = level_start.elapsed().as_secs_f64();
    let cpu_used = crate::thread_cpu().since(&cpu_before);
    let (cpu_ms_per_call_second, server_cores) = cpu_split(&cpu_used, call_seconds, wall_seconds, served.is_some());
    sampler.abort();
    let rss_peak = *peak.lock().unwrap_or_else(|e| e.into_inner());
    latencies.sort_unstable();
    let p95 = crate::percentile_ms(&latencies, 0.95);
    LevelReport {
        calls,
        responses: latencies.len(),
        p50_ms: crate::percentile_ms(&latencies, 0.5),
        p95_ms: p95,
        underruns,
        dropped_frames: dropped,
        calls_failed: failed,
        rss_base_mb: rss_base,
        rss_peak_mb: rss_peak,
        rss_per_call_mb: ((rss_peak - rss_base) / calls as f64).max(0.0),
        wall_seconds: (wall_seconds * 100.0).round() / 100.0,
        call_seconds: (call_seconds * 100.0).round() / 100.0,
        cpu_ms_per_call_second,
        server_cores,
        pass: failed == 0 && underruns == 0 && dropped == 0 && p95.is_some_and(|p| p < p95_limit_ms),
    }
}

/// `call` and how long it took.
async fn timed<T>(call: impl std::future::Future<Output = T>) -> (Duration, T) {
    let start = Instant::now();
    let out = call.await;
    (start.elapsed(), out)
}

pub(super) struct CallResult {
    pub latencies_ms: Vec<u64>,
    pub underruns: usize,
    pub dropped: usize,
}

/// One emulated chan_websocket call to `addr` (call number `n`) saying
/// `clip` after each prompt for `duration`, then hanging up.
pub(super) async fn asterisk_call(
    addr: std::net::SocketAddr,
    n: u32,
    clip: Vec<i16>,
    duration: Duration,
) -> Result<CallResult, String> {
    one_call(AsteriskConfig::new(addr, n), clip, duration).await
}

/// One caller: waits for each prompt to finish, says the word, measures
/// until the bot's next audio, until `duration` is over; then hangs up.
async fn one_call(cfg: AsteriskConfig, clip: Vec<i16>, duration: Duration) -> Result<CallResult, String> {
    let call = AsteriskCall::connect(cfg).await.map_err(|e| e.0)?;
    let t_end = Instant::now() + duration;
    let mut latencies = Vec::new();
    let mut marks = 0;
    while Instant::now() < t_end {
        marks += 1;
        if !call.wait_marks(marks, Duration::from_secs(30)).await {
            return Err("a prompt never finished".into());
        }
        let audio_before = count_audio(&call);
        let started = call.elapsed();
        call.say(&clip).await;
        // End of speech: where the words end in the clip, not the clip's
        // own trailing silence.
        let spoke_until = started + Duration::from_millis(speech_end_ms(&clip, 16_000));
        let Some(_) = call
            .wait_for(Duration::from_secs(10), |s| {
                s.iter().filter(|(_, x)| matches!(x, Seen::Audio(_))).count() > audio_before
            })
            .await
        else {
            return Err("no response to speech".into());
        };
        let first = call
            .seen()
            .into_iter()
            .filter(|(_, x)| matches!(x, Seen::Audio(_)))
            .nth(audio_before)
            .map(|(t, _)| t)
            .unwrap_or(spoke_until);
        latencies.push(first.saturating_sub(spoke_until).as_millis() as u64);
    }
    call.hangup().await;
    call.wait_closed(Duration::from_secs(5)).await;
    let seen = call.seen();
    Ok(CallResult {
        latencies_ms: latencies,
        underruns: seen.iter().filter(|(_, s)| matches!(s, Seen::Underrun)).count(),
        dropped: seen.iter().filter(|(_, s)| matches!(s, Seen::Dropped(_))).count(),
    })
}

/// AudioSocket samples per 20 ms frame at the bench's 16 kHz.
const AS_FRAME: usize = 320;
/// A prompt is over when no frame with sound came for this long (the
/// server sends only silent keep-alives between prompts).
const AS_PROMPT_DONE_MS: u64 = 300;
/// Two frames of one prompt further apart than this are an underrun.
const AS_UNDERRUN_MS: u64 = 100;

fn as_sound(r: &Received, i: usize) -> bool {
    r.samples.get(i * AS_FRAME..(i + 1) * AS_FRAME).is_some_and(|f| f.iter().any(|&s| s != 0))
}

/// One AudioSocket caller: there are no marks, so a prompt counts as over
/// when its sound stops; then the word is said and the time to the next
/// prompt's first frame measured.
async fn one_audiosocket_call(
    addr: std::net::SocketAddr,
    uuid: [u8; 16],
    clip: Vec<i16>,
    duration: Duration,
) -> Result<CallResult, String> {
    let t0 = Instant::now();
    let mut call = AudioSocketCaller::connect(addr, uuid, 16_000).await;
    let t_end = Instant::now() + duration;
    let mut latencies = Vec::new();
    let mut from = 0;
    while Instant::now() < t_end {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = call.received();
            if r.closed || r.hangup || r.violation.is_some() {
                return Err("the server ended the call".into());
            }
            let now_ms = t0.elapsed().as_millis() as u64;
            if (from..r.audio.len())
                .rev()
                .find(|&i| as_sound(&r, i))
                .is_some_and(|i| r.audio[i].2 + AS_PROMPT_DONE_MS < now_ms)
            {
                from = r.audio.len();
                break;
            }
            if Instant::now() > deadline {
                return Err("a prompt never finished".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let started = t0.elapsed().as_millis() as u64;
        call.send_audio_paced(&clip).await;
        let spoke_until = started + speech_end_ms(&clip, 16_000);
        let r = call
            .wait_for("a response to speech", Duration::from_secs(10), |r| {
                (from..r.audio.len()).any(|i| as_sound(r, i))
            })
            .await;
        let first = (from..r.audio.len()).find(|&i| as_sound(&r, i)).map_or(spoke_until, |i| r.audio[i].2);
        latencies.push(first.saturating_sub(spoke_until));
    }
    let r = call.received();
    // A gap of AS_PROMPT_DONE_MS or more is where one prompt ended and the
    // next began (no keep-alive falls between them when the answer comes
    // within a second), not a prompt running dry.
    let underruns = (1..r.audio.len())
        .filter(|&i| {
            let gap = r.audio[i].2 - r.audio[i - 1].2;
            as_sound(&r, i) && as_sound(&r, i - 1) && gap > AS_UNDERRUN_MS && gap < AS_PROMPT_DONE_MS
        })
        .count();
    call.hang_up().await;
    Ok(CallResult { latencies_ms: latencies, underruns, dropped: 0 })
}

/// One Twilio caller: a prompt is over when Twilio echoes its mark; the
/// response time is polled (the emulator does not time each media message),
/// and underruns cannot be seen, since Twilio paces the audio itself.
async fn one_twilio_call(url: String, sid: String, clip: Vec<i16>, duration: Duration) -> Result<CallResult, String> {
    let mut call = TwilioCall::connect(&url, &sid, &[("dialplan", "bench")]).await;
    let t_end = Instant::now() + duration;
    let mut latencies = Vec::new();
    let mut marks = 0;
    while Instant::now() < t_end {
        marks += 1;
        let deadline = Instant::now() + Duration::from_secs(30);
        while call.received().marks.len() < marks {
            if call.received().closed || Instant::now() > deadline {
                return Err("a prompt never finished".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let before = call.received().media_bytes;
        let started = Instant::now();
        call.send_audio_paced(&clip).await;
        let spoke_until = started + Duration::from_millis(speech_end_ms(&clip, 8_000));
        let deadline = Instant::now() + Duration::from_secs(10);
        while call.received().media_bytes == before {
            if Instant::now() > deadline {
                return Err("no response to speech".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        latencies.push(Instant::now().saturating_duration_since(spoke_until).as_millis() as u64);
    }
    call.stop().await;
    Ok(CallResult { latencies_ms: latencies, underruns: 0, dropped: 0 })
}

/// Where the word ends: the first point after its loudest part from which
/// the next 150 ms all stay 20 dB below that peak. (A fixed level is not
/// enough: background noise in a recording can rise above it long after
/// the word, which made latencies look shorter than they were.)
fn speech_end_ms(samples: &[i16], rate: u32) -> u64 {
    let win = (rate as usize / 100).max(1);
    let levels: Vec<f32> =
        samples.chunks(win).map(|w| hotline::audio::rms_dbfs(&hotline::audio::i16_to_f32(w))).collect();
    let Some(peak) = levels.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i) else { return 0 };
    let quiet = levels[peak] - 20.0;
    (peak..levels.len())
        .find(|&i| levels[i..(i + 15).min(levels.len())].iter().all(|&d| d < quiet))
        .unwrap_or(levels.len()) as u64
        * 10
}

fn count_audio(call: &AsteriskCall) -> usize {
    call.seen().iter().filter(|(_, s)| matches!(s, Seen::Audio(_))).count()
}

/// Resident set size of this process now, in MB (Linux).
fn rss_mb() -> f64 {
    super::memory_mb().1
}

#[cfg(test)]
mod tests {
    use super::{cpu_split, doubling_levels, part_of, ramp_levels, speech_end_ms, Part};

    #[test]
    fn levels_double_or_ramp_up_to_the_most_calls() {
        assert_eq!(doubling_levels(1), [1]);
        assert_eq!(doubling_levels(6), [1, 2, 4, 6]);
        assert_eq!(doubling_levels(8), [1, 2, 4, 8]);
        assert_eq!(ramp_levels(10, 10, 40), [10, 20, 30, 40]);
        assert_eq!(ramp_levels(2, 2, 7), [2, 4, 6, 7]);
        assert_eq!(ramp_levels(10, 10, 4), [4]);
        assert_eq!(ramp_levels(0, 5, 12), [1, 6, 11, 12]);
    }

    #[test]
    fn threads_are_split_by_name() {
        assert_eq!(part_of("asr-0"), Part::Recognition);
        assert_eq!(part_of("asr-11"), Part::Recognition);
        assert_eq!(part_of(super::NATIVE_POOL_THREADS), Part::Recognition);
        assert_eq!(part_of("vad"), Part::Vad);
        assert_eq!(part_of("server-io"), Part::ServerIo);
        assert_eq!(part_of("call-records"), Part::ServerIo);
        assert_eq!(part_of("pbx-emulator"), Part::Emulator);
        assert_eq!(part_of("hotline-bench"), Part::Emulator);
        let used = [("asr-0", 300.0), ("asr-1", 100.0), ("vad", 50.0), ("server-io", 140.0), ("call-records", 10.0)]
            .into_iter()
            .chain([("pbx-emulator", 80.0), ("hotline-bench", 20.0)])
            .map(|(n, ms)| (n.to_string(), ms))
            .collect();
        // 4 calls of 10 s each in 12 s.
        let (split, cores) = cpu_split(&used, 40.0, 12.0, true);
        assert_eq!(split.recognition, Some(10.0));
        assert_eq!(split.vad, Some(1.25));
        assert_eq!(split.server_io, Some(3.75));
        assert_eq!(split.emulator, 2.5);
        assert_eq!(cores, Some(0.05));
        let (split, cores) = cpu_split(&used, 40.0, 12.0, false);
        assert_eq!((split.vad, split.recognition, split.server_io, cores), (None, None, None, None));
        assert_eq!(split.emulator, 2.5);
    }

    #[test]
    fn speech_ends_where_the_word_does_not_where_the_noise_does() {
        let tone = |n: usize, amp: f32| -> Vec<i16> {
            (0..n).map(|i| ((i as f32 * 0.3).sin() * amp * 32767.0) as i16).collect()
        };
        // 300 ms of silence, a 400 ms word, 100 ms quiet, a 20 ms noise
        // click 22 dB down, then quiet.
        let mut clip = vec![0i16; 4_800];
        clip.extend(tone(6_400, 0.5));
        clip.extend(vec![0i16; 1_600]);
        clip.extend(tone(320, 0.04));
        clip.extend(vec![0i16; 8_000]);
        let end = speech_end_ms(&clip, 16_000);
        assert!((690..=710).contains(&end), "end of speech at {end} ms");
        assert_eq!(speech_end_ms(&[], 16_000), 0);
    }
}
