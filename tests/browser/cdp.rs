//! Just enough of the Chrome DevTools Protocol to drive headless Chromium
//! from a test: start the browser, open a page, navigate, evaluate
//! JavaScript, take a screenshot, and keep the events it sends (dialogs,
//! uncaught exceptions). The protocol is JSON over one websocket, which
//! the workspace already speaks (tokio-tungstenite); a full client crate
//! would add hundreds of generated types for these six commands.
use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// Where Chromium is: `$HOTLINE_CHROMIUM`, else the first of Debian's and
/// Google's names on the `PATH`. Panics, loudly, when there is none: a
/// browser test that cannot find its browser must fail, never pass.
pub fn find_chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("HOTLINE_CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "\n\n*** BROWSER TEST FAILED: Chromium not found ***\n\
         The dashboard's browser test needs headless Chromium: install Debian's `chromium` package\n\
         (`scripts/test` does so when run as root) or set HOTLINE_CHROMIUM to the browser's path.\n\n"
    );
}

/// The id of the command that dismisses a dialog (never a test's own:
/// those count up from 1; DevTools ids are 32-bit).
const DISMISS_ID: u64 = 2_000_000_000;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A running headless Chromium and its DevTools connection.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    to_browser: mpsc::UnboundedSender<String>,
    pending: Pending,
    events: Arc<Mutex<Vec<Value>>>,
    next_id: AtomicU64,
}

impl Browser {
    pub async fn launch(binary: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(binary)
            .args([
                "--headless",
                // The tests run as root in CI, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--remote-debugging-port=0",
                "--window-size=1280,1600",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        // Chromium says where its DevTools socket is on stderr.
        let stderr = child.stderr.take().unwrap();
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut said = String::new();
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    let _ = url_tx.send(Ok(url.trim().to_string()));
                } else if said.len() < 8_000 {
                    said.push_str(&line);
                    said.push('\n');
                }
            }
            let _ = url_tx.send(Err(said));
        });
        let url = match tokio::task::spawn_blocking(move || url_rx.recv_timeout(Duration::from_secs(60))).await.unwrap()
        {
            Ok(Ok(url)) => url,
            Ok(Err(said)) => panic!("Chromium exited without a DevTools socket:\n{said}"),
            Err(_) => panic!("Chromium gave no DevTools socket within 60 s"),
        };
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("DevTools websocket");
        let (mut sink, mut stream) = ws.split();
        let (to_browser, mut outgoing) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(text) = outgoing.recv().await {
                if sink.send(Message::text(text)).await.is_err() {
                    return;
                }
            }
        });
        let pending: Pending = Arc::default();
        let events: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (pending_in, events_in, answer) = (Arc::clone(&pending), Arc::clone(&events), to_browser.clone());
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                if let Some(id) = v["id"].as_u64() {
                    if let Some(tx) = pending_in.lock().unwrap().remove(&id) {
                        let _ = tx.send(v);
                    }
                    continue;
                }
                // A dialog blocks the page until answered: note it, dismiss it.
                if v["method"] == "Page.javascriptDialogOpening" {
                    let dismiss = json!({"id": DISMISS_ID, "method": "Page.handleJavaScriptDialog",
                        "params": {"accept": true}, "sessionId": v["sessionId"]});
                    let _ = answer.send(dismiss.to_string());
                }
                events_in.lock().unwrap().push(v);
            }
        });
        Browser { child, _profile: profile, to_browser, pending, events, next_id: AtomicU64::new(1) }
    }

    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.to_browser.send(msg.to_string()).expect("DevTools connection open");
        let answer = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .unwrap_or_else(|_| panic!("{method}: no answer within 30 s"))
            .expect("DevTools connection open");
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// A new tab of `width` × `height` pixels.
    pub async fn page(&self, width: u32, height: u32) -> Page<'_> {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"})).await;
        let attached =
            self.call(None, "Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true})).await;
        let page = Page { browser: self, session: attached["sessionId"].as_str().unwrap().to_string() };
        page.call("Page.enable", json!({})).await;
        page.call("Runtime.enable", json!({})).await;
        let metrics = json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false});
        page.call("Emulation.setDeviceMetricsOverride", metrics).await;
        page
    }

    /// The events of `method` received so far.
    pub fn events(&self, method: &str) -> Vec<Value> {
        self.events.lock().unwrap().iter().filter(|e| e["method"] == method).cloned().collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tab.
pub struct Page<'a> {
    browser: &'a Browser,
    session: String,
}

impl Page<'_> {
    async fn call(&self, method: &str, params: Value) -> Value {
        self.browser.call(Some(&self.session), method, params).await
    }

    pub async fn navigate(&self, url: &str) {
        let r = self.call("Page.navigate", json!({"url": url})).await;
        assert!(r.get("errorText").is_none(), "{url}: {r}");
    }

    /// The value of a JavaScript expression (promises awaited); panics on
    /// an exception.
    pub async fn eval(&self, expression: &str) -> Value {
        let r = self
            .call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true, "awaitPromise": true}))
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits until `expression` is `true`; on timeout, panics with what
    /// `explain` evaluates to.
    pub async fn wait_until(&self, what: &str, expression: &str, explain: &str, timeout: Duration) {
        let t0 = Instant::now();
        while self.eval(expression).await != Value::Bool(true) {
            if t0.elapsed() > timeout {
                panic!("{what}: not within {timeout:?}; the page shows {}", self.eval(explain).await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A PNG of the whole page, written to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true})).await;
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}
