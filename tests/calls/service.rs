//! A server in service: call records that survive a full disk, log
//! rotation and SIGHUP, and readiness that means the first callers hear
//! their greeting at once. Some tests run `hotline serve` as a child
//! process (signals, a file size limit); all call it over loopback with the
//! Asterisk emulator.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::asterisk::{AsteriskCall, AsteriskConfig, Seen};
use crate::support::server::http_get;
use crate::support::server::{deps, read_records, wait_record, DIALPLAN};
use hotline::config::ServerConfig;
use hotline::server::{self, PromptSource, ServerDeps};

/// The prompt cache the other end-to-end tests warm (their `deps()`).
pub(crate) fn warm_prompt_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-prompts")
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The JSON-lines store these tests are about (the default is SQLite).
const JSONL_RECORDS: &str = "call_records = \"calls.jsonl\"\n";

/// A folder with the test dialplan and a config naming it.
fn server_folder(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("dialplans")).unwrap();
    std::fs::write(dir.path().join("dialplans/hotline.toml"), DIALPLAN).unwrap();
    let config = dir.path().join("hotline.toml");
    let toml = format!(
        "listen = \"127.0.0.1:{}\"\nprompt_cache_dir = \"{}\"\nshutdown_grace_secs = 1\n{extra}",
        free_port(),
        warm_prompt_cache().display()
    );
    std::fs::write(&config, toml).unwrap();
    (dir, config)
}

/// `hotline serve` as a child process, its log collected.
pub(crate) struct ChildServer {
    child: Child,
    pub(crate) addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl ChildServer {
    /// Starts the server with `config`; `shell_setup` runs in the shell
    /// that then becomes the server (limits, signal dispositions).
    pub(crate) fn start(config: &Path, shell_setup: &str) -> ChildServer {
        let cfg = ServerConfig::load(config).unwrap();
        let script = format!("{shell_setup}\nexec \"$0\" serve --config \"$1\"");
        let mut child = Command::new("sh")
            .args(["-c", &script, env!("CARGO_BIN_EXE_hotline")])
            .arg(config)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hotline serve");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        ChildServer { child, addr: cfg.general.listen, log }
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub(crate) fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub(crate) fn signal(&self, name: &str) {
        let ok =
            Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill -{name} failed");
    }

    pub(crate) async fn wait_log(&mut self, needle: &str, timeout: Duration) {
        let t0 = Instant::now();
        while !self.log().contains(needle) {
            assert!(self.is_running(), "server exited; log:\n{}", self.log());
            assert!(t0.elapsed() < timeout, "no `{needle}` in the log:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn wait_ready(&mut self) {
        self.wait_log("hotline::server: ready", Duration::from_secs(120)).await;
    }

    /// Waits for the process to exit; its status, or `None` at the timeout.
    pub(crate) async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Bytes per block of the shell's `ulimit -f` (512 or 1024 depending on
/// the shell), measured: a one-block limit, then how much got written.
fn ulimit_block_bytes(dir: &Path) -> u64 {
    let probe = dir.join("probe");
    let script = format!("trap '' XFSZ; ulimit -f 1 && head -c 4096 /dev/zero > '{}' 2>/dev/null", probe.display());
    let _ = Command::new("sh").args(["-c", &script]).status().unwrap();
    let bytes = std::fs::metadata(&probe).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&probe);
    assert!(
        bytes == 512 || bytes == 1024,
        "THIS TEST CANNOT RUN HERE: `ulimit -f 1` did not limit a file to one block (got {bytes} bytes)"
    );
    bytes
}

/// A call that hangs up once its greeting has played; `path` may carry a
/// long caller id to make its record big.
async fn short_call(addr: SocketAddr, n: u32, path: &str) -> String {
    let mut cfg = AsteriskConfig::new(addr, n);
    cfg.path = path.to_string();
    let call = AsteriskCall::connect(cfg).await.unwrap_or_else(|e| panic!("{e:?}"));
    assert!(call.wait_marks(1, Duration::from_secs(30)).await, "greeting never finished: {:?}", call.commands());
    call.hangup().await;
    call.cfg.channel_id.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_after_a_full_disk_are_whole_lines_and_the_loss_is_logged() {
    let (dir, config) = server_folder(JSONL_RECORDS);
    let block = ulimit_block_bytes(dir.path());
    // 4 KiB of records: a short call's record fits (twice), one with a
    // 6000-character caller id does not.
    let blocks = 4096 / block;
    let mut server = ChildServer::start(&config, &format!("trap '' XFSZ\nulimit -f {blocks}"));
    server.wait_ready().await;
    let records = dir.path().join("calls.jsonl");

    let first = short_call(server.addr, 1, "/").await;
    wait_record(&records, &first, Duration::from_secs(10)).await;
    let too_big = short_call(server.addr, 2, &format!("/call?caller_id={}", "4".repeat(6000))).await;
    server.wait_log("call record lost", Duration::from_secs(10)).await;
    let after = short_call(server.addr, 3, "/").await;
    wait_record(&records, &after, Duration::from_secs(10)).await;

    let text = std::fs::read_to_string(&records).unwrap();
    assert!(text.ends_with('\n'), "the file ends with a whole line");
    let ids: Vec<String> = read_records(&records).iter().map(|r| r["call_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, [first, after], "the record that did not fit is gone, not half there ({too_big})");
    let log = server.log();
    let lost = log.lines().find(|l| l.contains("call record lost")).unwrap();
    assert!(lost.contains("lost_total=1") && lost.contains("calls.jsonl"), "{lost}");
    assert!(lost.contains(&too_big), "names the call: {lost}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reopens_the_record_file_and_a_call_in_flight_completes() {
    let (dir, config) = server_folder(JSONL_RECORDS);
    let mut server = ChildServer::start(&config, "");
    server.wait_ready().await;
    let records = dir.path().join("calls.jsonl");
    let before = short_call(server.addr, 1, "/").await;
    wait_record(&records, &before, Duration::from_secs(10)).await;

    let call = AsteriskCall::connect(AsteriskConfig::new(server.addr, 2)).await.unwrap();
    assert!(call.wait_marks(1, Duration::from_secs(30)).await, "greeting never finished");
    // logrotate's way: move the file, then SIGHUP.
    std::fs::rename(&records, dir.path().join("calls.jsonl.1")).unwrap();
    server.signal("HUP");
    server.wait_log("call record store reopened", Duration::from_secs(10)).await;
    assert!(server.is_running(), "SIGHUP stopped the server:\n{}", server.log());

    call.dtmf('1').await;
    assert!(
        call.wait_marks(2, Duration::from_secs(30)).await,
        "the call did not go on after SIGHUP: {:?}",
        call.commands()
    );
    call.hangup().await;
    let rec = wait_record(&records, &call.cfg.channel_id, Duration::from_secs(10)).await;
    assert!(crate::support::server::events_of(&rec, "prompt").iter().any(|p| p["menu"] == "billing"), "{rec:#}");
    assert_eq!(read_records(&dir.path().join("calls.jsonl.1")).len(), 1, "only the call before the rotation");
    assert!(server.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_record_file_is_replaced_at_the_configured_path() {
    let (dir, config) = server_folder(JSONL_RECORDS);
    let cfg = ServerConfig::load(&config).unwrap();
    let running = server::start(cfg, deps()).await.unwrap_or_else(|e| panic!("{e}"));
    let records = dir.path().join("calls.jsonl");
    let first = short_call(running.local_addr(), 1, "/").await;
    wait_record(&records, &first, Duration::from_secs(10)).await;

    // Rotation without a signal (logrotate without postrotate, an admin's mv).
    std::fs::rename(&records, dir.path().join("calls.jsonl.1")).unwrap();
    let second = short_call(running.local_addr(), 2, "/").await;
    wait_record(&records, &second, Duration::from_secs(10)).await;
    let ids = |p: &Path| read_records(p).iter().map(|r| r["call_id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(ids(&records), [second]);
    assert_eq!(ids(&dir.path().join("calls.jsonl.1")), [first]);
    running.shutdown().await;
}

/// A one-menu dialplan for the cold start: few texts to synthesize.
const HERD_DIALPLAN: &str = r#"
start = "main"

[operator]
extension = "100"

[menus.main]
prompt = "Welcome to the cold start line. Press one for billing."

[menus.main.options.billing]
dtmf = "1"
phrases = ["billing"]
transfer = "200"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_callers_at_a_cold_server_hear_their_greeting_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("dialplans")).unwrap();
    let plan_path = dir.path().join("dialplans/hotline.toml");
    std::fs::write(&plan_path, HERD_DIALPLAN).unwrap();
    let toml =
        "listen = \"127.0.0.1:0\"\nmax_calls = 25\nprompt_cache_dir = \"fresh-cache\"\nshutdown_grace_secs = 1\n";
    let config = dir.path().join("hotline.toml");
    std::fs::write(&config, toml).unwrap();
    let cfg = ServerConfig::load(&config).unwrap();
    // A renderer of its own: nothing loaded, nothing cached.
    let renderer = Arc::new(hotline::prompts::PromptRenderer::new(
        &hotline::asr::models::ModelPaths::default_location(),
        cfg.general.prompt_cache_dir.clone(),
    ));
    let shared = deps();
    let deps = ServerDeps { prompts: Arc::clone(&renderer) as Arc<dyn PromptSource>, ..shared };
    let running = server::start(cfg, deps).await.unwrap_or_else(|e| panic!("{e}"));
    let addr = running.local_addr();

    let (status, body) = http_get(addr, "/readyz").await;
    assert_eq!(status, 503, "ready before the prompts are rendered: {body}");
    assert!(body.contains("\"ready\":false") && body.contains("reason"), "{body}");
    let t0 = Instant::now();
    loop {
        let (status, body) = http_get(addr, "/readyz").await;
        if status == 200 {
            assert!(body.contains("\"ready\":true"), "{body}");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let plan = hotline::dialplan::load(&plan_path).unwrap();
    let static_texts = hotline::call::static_prompts(&plan).len() as u64;
    assert_eq!(renderer.syntheses(), static_texts, "each static prompt synthesized once before ready");

    let calls =
        futures_util::future::join_all((1..=20).map(|n| AsteriskCall::connect(AsteriskConfig::new(addr, n)))).await;
    let calls: Vec<AsteriskCall> = calls.into_iter().map(|c| c.unwrap_or_else(|e| panic!("{e:?}"))).collect();
    for call in &calls {
        let heard = |seen: &[(Duration, Seen)]| seen.iter().find(|(_, s)| matches!(s, Seen::Audio(_))).map(|(t, _)| *t);
        assert!(
            call.wait_for(Duration::from_secs(30), |seen| heard(seen).is_some()).await.is_some(),
            "no prompt audio at all"
        );
        let first_audio = heard(&call.seen()).unwrap();
        assert!(
            first_audio <= Duration::from_secs(1),
            "caller {} waited {first_audio:?} for the greeting",
            call.cfg.channel_id
        );
    }
    assert_eq!(renderer.syntheses(), static_texts, "the callers' greetings came from the prerendered cache");
    for call in &calls {
        call.hangup().await;
    }
    running.shutdown().await;
}
