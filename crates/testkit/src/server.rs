//! What the end-to-end tests of `hotline serve` share: the real recordings,
//! and one speech stack and prompt renderer per test binary (model loading
//! is the slow part; calls share them in production too).
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hotline::asr::{SpeechConfig, SpeechStack};
use hotline::server::{PromptSource, ServerDeps};
use serde_json::Value;

/// The end-to-end tests' dialplan: menus answered with words real
/// recordings exist for ("one", "zero") and with keys.
pub const DIALPLAN: &str = include_str!("../../../tests/fixtures/e2e/words.toml");

pub fn testdata(rel: &str) -> PathBuf {
    crate::testdata::testdata_dir().join(rel)
}

/// A real recording at `rate`.
pub fn clip(rel: &str, rate: u32) -> Vec<i16> {
    let audio = hotline::audio::read_wav(&testdata(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    hotline::audio::f32_to_i16(&audio.to_f32_at(rate).unwrap())
}

pub fn deps() -> ServerDeps {
    static DEPS: OnceLock<(Arc<SpeechStack>, Arc<hotline::prompts::PromptRenderer>)> = OnceLock::new();
    let (speech, prompts) = DEPS.get_or_init(|| {
        let speech = SpeechStack::load(&SpeechConfig { threads: 2, queue: 16, ..SpeechConfig::default() })
            .expect("speech models (run scripts/setup)");
        // The build tree's scratch folder (CARGO_TARGET_TMPDIR of the tests).
        let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tmp/e2e-prompts");
        let prompts =
            hotline::prompts::PromptRenderer::new(&hotline::asr::models::ModelPaths::default_location(), cache);
        (Arc::new(speech), Arc::new(prompts))
    });
    ServerDeps {
        speech: Arc::clone(speech),
        prompts: Arc::clone(prompts) as Arc<dyn PromptSource>,
        matcher: Arc::new(hotline::intent::TextMatcher::default()),
    }
}

/// The events of one kind in a call record.
pub fn events_of(record: &Value, kind: &str) -> Vec<Value> {
    record["events"].as_array().map_or_else(Vec::new, |a| a.iter().filter(|e| e["type"] == kind).cloned().collect())
}

/// The call records a server wrote to `path` (one JSON line per call).
/// A line counts once its newline is there: the server may be writing a
/// record while the test reads, and a reader can see part of that write.
pub fn read_records(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let written = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
    written.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Waits for the call record of `call_id` (written when the call ends).
pub async fn wait_record(path: &Path, call_id: &str, timeout: Duration) -> Value {
    let t0 = Instant::now();
    loop {
        if let Some(r) = read_records(path).into_iter().find(|r| r["call_id"] == call_id) {
            return r;
        }
        assert!(t0.elapsed() < timeout, "no call record for {call_id}; have {:?}", read_records(path));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A plain `GET` (no credentials); the status code and the body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text).await;
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}
