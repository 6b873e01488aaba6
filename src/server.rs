//! The live server: Asterisk connects over chan_websocket, one connection
//! per call, one tokio task per call driving the call machine in real time.
//!
//! - Accept loop: limits (`max_calls`; extra connections get HTTP 503 and a
//!   log line), basic auth and the `media` subprotocol checked in the
//!   upgrade, the 101 answer exactly as Asterisk accepts it
//!   (`Connection: Upgrade`, no extensions).
//! - `GET /transfer?uid=...` (no upgrade) answers the Asterisk dialplan's
//!   `CURL()` for the no-AMI transfer method; `GET /health` says `ok`.
//! - Hot reload of the dialplan folder ([`registry`]).
//! - Shutdown: stop accepting, let calls finish for `shutdown_grace`, then
//!   hang up the rest, write their records, return.
pub mod http;
pub mod playback;
pub mod record;
pub mod registry;
mod session;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{error, info, warn};

use crate::asr::SpeechStack;
use crate::config::ServerConfig;
use crate::dialplan::Prompt;
use crate::intent::IntentMatcher;

pub use registry::DialplanRegistry;

/// Prompt audio for the calls (the prompt renderer in production).
pub trait PromptSource: Send + Sync {
    /// Blocking; mono PCM at `rate`.
    fn render(&self, prompt: &Prompt, rate: u32) -> Result<Arc<Vec<i16>>, String>;
}

impl PromptSource for crate::prompts::PromptRenderer {
    fn render(&self, prompt: &Prompt, rate: u32) -> Result<Arc<Vec<i16>>, String> {
        crate::prompts::PromptRenderer::render(self, prompt, rate).map_err(|e| e.to_string())
    }
}

/// What the server needs besides its configuration.
pub struct ServerDeps {
    pub speech: Arc<SpeechStack>,
    pub prompts: Arc<dyn PromptSource>,
    pub matcher: Arc<dyn IntentMatcher>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// No new calls; calls in progress go on.
    Draining,
    /// Hang up every call now.
    Force,
}

/// Shared by all call tasks.
pub(crate) struct Shared {
    pub cfg: Arc<ServerConfig>,
    pub registry: Arc<DialplanRegistry>,
    pub speech: Arc<SpeechStack>,
    pub prompts: Arc<dyn PromptSource>,
    pub matcher: Arc<dyn IntentMatcher>,
    pub records: Option<record::RecordWriter>,
    pub decisions: Arc<http::Decisions>,
}

/// Largest message we accept from Asterisk. Its frames are 20 ms of audio
/// or short events; a bigger message is refused by the websocket layer
/// (and the call ends with a logged reason).
const MAX_INCOMING_MESSAGE: usize = 64 * 1024;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct RunningServer {
    addr: SocketAddr,
    phase: watch::Sender<Phase>,
    active: Arc<AtomicUsize>,
    registry: Arc<DialplanRegistry>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn active_calls(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    pub fn registry(&self) -> &Arc<DialplanRegistry> {
        &self.registry
    }

    /// Stops accepting, lets calls finish within the grace period, hangs
    /// up the rest; returns when every call task has ended.
    pub async fn shutdown(self) {
        let _ = self.phase.send(Phase::Draining);
        let _ = self.task.await;
    }
}

/// Binds, loads the dialplans and starts serving. Errors (address in use,
/// no valid default dialplan, unwritable record file) come back before any
/// call is accepted.
pub async fn start(cfg: ServerConfig, deps: ServerDeps) -> Result<RunningServer, String> {
    let cfg = Arc::new(cfg);
    let (registry, report) = {
        let dir = cfg.dialplan_dir.clone();
        let name = cfg.default_dialplan.clone();
        tokio::task::spawn_blocking(move || DialplanRegistry::load(&dir, &name))
            .await
            .map_err(|e| e.to_string())??
    };
    info!(dialplans = ?registry.names(), refused = report.rejected.len(), "dialplans loaded");
    let registry = Arc::new(registry);
    let records = match &cfg.call_records {
        Some(p) => Some(record::RecordWriter::open(p).map_err(|e| format!("call record file {}: {e}", p.display()))?),
        None => None,
    };
    let listener = TcpListener::bind(cfg.listen).await.map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    info!(%addr, max_calls = cfg.max_calls, transfer = ?cfg.transfer.method, auth = cfg.auth.is_some(), "listening for Asterisk");
    let shared = Arc::new(Shared {
        cfg: Arc::clone(&cfg),
        registry: Arc::clone(&registry),
        speech: deps.speech,
        prompts: deps.prompts,
        matcher: deps.matcher,
        records,
        decisions: Arc::new(http::Decisions::default()),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);
    let active = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn(serve(listener, shared, phase_rx, phase_tx.clone(), Arc::clone(&active)));
    Ok(RunningServer { addr, phase: phase_tx, active, registry, task })
}

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut phase_rx: watch::Receiver<Phase>,
    phase_tx: watch::Sender<Phase>,
    active: Arc<AtomicUsize>,
) {
    let mut calls = JoinSet::new();
    let reload = {
        let registry = Arc::clone(&shared.registry);
        let every = shared.cfg.reload_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let r = Arc::clone(&registry);
                let _ = tokio::task::spawn_blocking(move || r.scan()).await;
            }
        })
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let shared = Arc::clone(&shared);
                let active = Arc::clone(&active);
                let phase = phase_rx.clone();
                calls.spawn(async move { connection(stream, peer, shared, active, phase).await });
            }
            Some(_) = calls.join_next(), if !calls.is_empty() => {}
            _ = phase_rx.changed() => {
                if *phase_rx.borrow() != Phase::Running {
                    break;
                }
            }
        }
    }
    drop(listener);
    reload.abort();
    let grace = shared.cfg.shutdown_grace;
    info!(calls = active.load(Ordering::SeqCst), grace_s = grace.as_secs(), "shutting down: no new calls");
    let drained = tokio::time::timeout(grace, async { while calls.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        warn!(calls = active.load(Ordering::SeqCst), "grace period over: hanging up the remaining calls");
        let _ = phase_tx.send(Phase::Force);
        if tokio::time::timeout(Duration::from_secs(10), async { while calls.join_next().await.is_some() {} }).await.is_err() {
            error!("calls did not end after hangup; aborting them");
            calls.abort_all();
        }
    }
    info!("server stopped");
}

/// Decrements the call count however the task ends.
struct CallSlot(Arc<AtomicUsize>);
impl Drop for CallSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn connection(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>, active: Arc<AtomicUsize>, phase: watch::Receiver<Phase>) {
    let head = match http::peek_head(&stream, HANDSHAKE_TIMEOUT).await {
        Ok(h) => h,
        Err(e) => {
            warn!(%peer, "connection dropped: {e}");
            return;
        }
    };
    if !http::authorized(shared.cfg.auth.as_ref(), head.header("Authorization")) {
        warn!(%peer, path = head.path(), "refused: missing or wrong credentials");
        http::respond(stream, "401 Unauthorized", "WWW-Authenticate: Basic realm=\"hotline\"\r\n", "").await;
        return;
    }
    if !head.is_websocket_upgrade() {
        return plain_http(stream, peer, &head, &shared).await;
    }
    if let Some(p) = head.header("Sec-WebSocket-Protocol") {
        if !p.split(',').any(|x| x.trim() == "media") {
            warn!(%peer, protocols = p, "refused: subprotocol `media` not offered");
            http::respond(stream, "400 Bad Request", "", "subprotocol media required\n").await;
            return;
        }
    }
    // Claim a slot before the handshake so a burst cannot overshoot.
    let n = active.fetch_add(1, Ordering::SeqCst) + 1;
    let slot = CallSlot(Arc::clone(&active));
    if n > shared.cfg.max_calls || *phase.borrow() != Phase::Running {
        let why = if *phase.borrow() != Phase::Running { "server shutting down" } else { "max_calls reached" };
        warn!(%peer, limit = shared.cfg.max_calls, "refused call: {why}");
        drop(slot);
        http::respond(stream, "503 Service Unavailable", "Retry-After: 5\r\n", "").await;
        return;
    }
    let offered_media = head.header("Sec-WebSocket-Protocol").is_some();
    let target = head.target.clone();
    let ws_cfg = WebSocketConfig::default()
        .max_message_size(Some(MAX_INCOMING_MESSAGE))
        .max_frame_size(Some(MAX_INCOMING_MESSAGE));
    let callback = move |_req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        if offered_media {
            resp.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("media"));
        }
        // Asterisk rejects any other Connection value (PROTOCOLS.md §1.3).
        resp.headers_mut().insert("Connection", HeaderValue::from_static("Upgrade"));
        Ok(resp)
    };
    let ws = match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(ws_cfg)),
    )
    .await
    {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            warn!(%peer, "websocket handshake failed: {e}");
            return;
        }
        Err(_) => {
            warn!(%peer, "websocket handshake timed out");
            return;
        }
    };
    session::run(ws, target, peer.to_string(), shared, phase).await;
    drop(slot);
}

async fn plain_http(stream: TcpStream, peer: SocketAddr, head: &http::RequestHead, shared: &Shared) {
    match (head.method.as_str(), head.path()) {
        ("GET", "/health") => http::respond(stream, "200 OK", "", "ok\n").await,
        ("GET", "/transfer") => {
            let q = crate::pbx::asterisk_ws::parse_query(&head.target);
            let uid = q.iter().find(|(k, _)| k == "uid").map(|(_, v)| v.as_str()).unwrap_or("");
            let decision = shared.decisions.take(uid).unwrap_or_default();
            info!(%peer, uid, target = %decision, "transfer decision fetched by the Asterisk dialplan");
            http::respond(stream, "200 OK", "", &decision).await;
        }
        _ => http::respond(stream, "404 Not Found", "", "").await,
    }
}
