//! The live server: the PBX connects once per call, one tokio task per call
//! drives the call machine in real time. Asterisk chan_websocket on
//! `listen`, and any other transport on its own `[[listeners]]` socket
//! (AudioSocket over raw TCP; FreeSWITCH and Twilio over websockets).
//!
//! - Accept loops, one per listener: limits (`max_calls`; extra connections get HTTP 503 and a
//!   log line), basic auth and the `media` subprotocol checked in the
//!   upgrade, the 101 answer exactly as Asterisk accepts it
//!   (`Connection: Upgrade`, no extensions).
//! - `GET /transfer?uid=...` (no upgrade) answers the Asterisk dialplan's
//!   `CURL()` for the no-AMI transfer method; `GET /health` says `ok`.
//! - Hot reload of the dialplan folder ([`registry`]).
//! - Shutdown: stop accepting, let calls finish for `shutdown_grace`, then
//!   hang up the rest, write their records, return.
mod control;
mod fs_prompts;
pub mod http;
mod link;
mod pacer;
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
use crate::pbx::registry::{Transport, TransportOptions};

use control::FsControl;
pub use control::{ControlChannel, ControlChannels};
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
    /// The FreeSWITCH event socket, when a listener needs it.
    pub esl: Option<FsControl>,
}

/// A bound listener and what it speaks.
struct Bound {
    listener: TcpListener,
    transport: Transport,
    options: TransportOptions,
}

/// Largest message we accept from Asterisk. Its frames are 20 ms of audio
/// or short events; a bigger message is refused by the websocket layer
/// (and the call ends with a logged reason).
const MAX_INCOMING_MESSAGE: usize = 64 * 1024;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct RunningServer {
    addr: SocketAddr,
    listeners: Vec<(Transport, SocketAddr)>,
    phase: watch::Sender<Phase>,
    active: Arc<AtomicUsize>,
    registry: Arc<DialplanRegistry>,
    controls: ControlChannels,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the listener of `transport` is (the first one of it), e.g. to
    /// learn the port when the config said 0.
    pub fn addr_of(&self, transport: Transport) -> Option<SocketAddr> {
        self.listeners.iter().find(|(t, _)| *t == transport).map(|(_, a)| *a)
    }

    pub fn active_calls(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    pub fn registry(&self) -> &Arc<DialplanRegistry> {
        &self.registry
    }

    /// The PBX control connections (FreeSWITCH's event socket) and whether
    /// each is connected now.
    pub fn control_channels(&self) -> &ControlChannels {
        &self.controls
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
    prepare_recognizer(&deps.speech, &registry, registry.names());
    let records = match &cfg.call_records {
        Some(p) => Some(record::RecordWriter::open(p).map_err(|e| format!("call record file {}: {e}", p.display()))?),
        None => None,
    };
    let listener = TcpListener::bind(cfg.listen).await.map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    info!(%addr, max_calls = cfg.max_calls, transfer = ?cfg.transfer.method, auth = cfg.auth.is_some(), "listening for Asterisk");
    let mut bound = vec![Bound { listener, transport: Transport::AsteriskWs, options: TransportOptions::default() }];
    let mut addrs = vec![(Transport::AsteriskWs, addr)];
    for l in &cfg.listeners {
        let listener = TcpListener::bind(l.listen)
            .await
            .map_err(|e| format!("cannot listen on {} for {}: {e}", l.listen, l.transport))?;
        let a = listener.local_addr().map_err(|e| e.to_string())?;
        info!(addr = %a, transport = %l.transport, rate = ?l.rate, "listening");
        addrs.push((l.transport, a));
        bound.push(Bound { listener, transport: l.transport, options: TransportOptions { rate: l.rate } });
    }
    let esl = if cfg.listeners.iter().any(|l| l.transport.needs_event_socket()) {
        let esl_cfg = cfg.esl.clone().ok_or("a FreeSWITCH listener needs an [esl] section")?;
        // Not awaited: FreeSWITCH may come up after hotline, as it may go
        // away and come back while hotline runs.
        Some(FsControl::start(esl_cfg))
    } else {
        None
    };
    let controls = ControlChannels::new(esl.iter().map(FsControl::channel).collect());
    let shared = Arc::new(Shared {
        cfg: Arc::clone(&cfg),
        registry: Arc::clone(&registry),
        speech: deps.speech,
        prompts: deps.prompts,
        matcher: deps.matcher,
        records,
        decisions: Arc::new(http::Decisions::default()),
        esl,
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);
    let active = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn(serve(bound, shared, phase_rx, phase_tx.clone(), Arc::clone(&active)));
    Ok(RunningServer { addr, listeners: addrs, phase: phase_tx, active, registry, controls, task })
}

/// Readies the recogniser for every grammar of the named dialplans (their
/// menus' phrases and priors, ~0.5 s of CPU per menu), on a blocking thread
/// while calls are already served, so the first caller of a menu does not
/// wait for it.
fn prepare_recognizer(speech: &Arc<SpeechStack>, registry: &DialplanRegistry, names: Vec<String>) {
    let plans: Vec<_> = names.iter().filter_map(|n| registry.get(n)).collect();
    if plans.is_empty() {
        return;
    }
    let recognizer = Arc::clone(&speech.recognizer);
    tokio::task::spawn_blocking(move || {
        for plan in plans {
            let t0 = std::time::Instant::now();
            let grammars = crate::call::grammars(&plan);
            for g in &grammars {
                if let Err(e) = recognizer.prepare(g) {
                    // Not fatal: the grammar is built on its first use instead.
                    warn!(dialplan = %plan.name, "could not ready the recogniser: {e}");
                }
            }
            info!(dialplan = %plan.name, grammars = grammars.len(), ms = t0.elapsed().as_millis() as u64, "recogniser ready");
        }
    });
}

/// New connections from all listeners; a few at most wait here.
const ACCEPT_QUEUE: usize = 64;

/// Accepts on one listener until the server stops accepting.
async fn accept_loop(b: Bound, tx: tokio::sync::mpsc::Sender<(TcpStream, SocketAddr, Transport, TransportOptions)>) {
    loop {
        match b.listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                if tx.send((stream, peer, b.transport, b.options.clone())).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!(transport = %b.transport, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve(
    bound: Vec<Bound>,
    shared: Arc<Shared>,
    mut phase_rx: watch::Receiver<Phase>,
    phase_tx: watch::Sender<Phase>,
    active: Arc<AtomicUsize>,
) {
    let mut calls = JoinSet::new();
    let reload = {
        let registry = Arc::clone(&shared.registry);
        let speech = Arc::clone(&shared.speech);
        let every = shared.cfg.reload_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let r = Arc::clone(&registry);
                if let Ok(report) = tokio::task::spawn_blocking(move || r.scan()).await {
                    prepare_recognizer(&speech, &registry, report.loaded);
                }
            }
        })
    };
    let (accept_tx, mut accepted) = tokio::sync::mpsc::channel(ACCEPT_QUEUE);
    let acceptors: Vec<_> = bound.into_iter().map(|b| tokio::spawn(accept_loop(b, accept_tx.clone()))).collect();
    drop(accept_tx);
    loop {
        tokio::select! {
            Some((stream, peer, transport, options)) = accepted.recv() => {
                let shared = Arc::clone(&shared);
                let active = Arc::clone(&active);
                let phase = phase_rx.clone();
                calls.spawn(async move {
                    if transport.is_websocket() {
                        connection(stream, peer, transport, options, shared, active, phase).await
                    } else {
                        tcp_connection(stream, peer, transport, options, shared, active, phase).await
                    }
                });
            }
            Some(_) = calls.join_next(), if !calls.is_empty() => {}
            _ = phase_rx.changed() => {
                if *phase_rx.borrow() != Phase::Running {
                    break;
                }
            }
        }
    }
    for a in &acceptors {
        a.abort();
    }
    drop(accepted);
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

/// Claims a call slot, or says why not.
fn claim_slot(shared: &Shared, active: &Arc<AtomicUsize>, phase: &watch::Receiver<Phase>) -> Result<CallSlot, &'static str> {
    // Claimed before the handshake so a burst cannot overshoot.
    let n = active.fetch_add(1, Ordering::SeqCst) + 1;
    let slot = CallSlot(Arc::clone(active));
    if *phase.borrow() != Phase::Running {
        return Err("server shutting down");
    }
    if n > shared.cfg.max_calls {
        return Err("max_calls reached");
    }
    Ok(slot)
}

/// AudioSocket: raw TCP, the codec reads the framing itself.
async fn tcp_connection(
    stream: TcpStream,
    peer: SocketAddr,
    transport: Transport,
    options: TransportOptions,
    shared: Arc<Shared>,
    active: Arc<AtomicUsize>,
    phase: watch::Receiver<Phase>,
) {
    let codec = match crate::pbx::registry::codec(transport, &options) {
        Ok(c) => c,
        Err(e) => {
            error!(%peer, %transport, "cannot serve the connection: {e}");
            return;
        }
    };
    let slot = match claim_slot(&shared, &active, &phase) {
        Ok(s) => s,
        Err(why) => {
            // No way to say "busy" in AudioSocket but a hangup message.
            warn!(%peer, %transport, limit = shared.cfg.max_calls, "refused call: {why}");
            let mut stream = stream;
            let hangup = crate::pbx::audiosocket::Frame::new(crate::pbx::audiosocket::KIND_HANGUP, Vec::new()).encode();
            let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, tokio::io::AsyncWriteExt::write_all(&mut stream, &hangup)).await;
            return;
        }
    };
    session::run(link::Link::tcp(stream), transport, codec, peer.to_string(), shared, phase).await;
    drop(slot);
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    transport: Transport,
    options: TransportOptions,
    shared: Arc<Shared>,
    active: Arc<AtomicUsize>,
    phase: watch::Receiver<Phase>,
) {
    let head = match http::peek_head(&stream, HANDSHAKE_TIMEOUT).await {
        Ok(h) => h,
        Err(e) => {
            warn!(%peer, "connection dropped: {e}");
            return;
        }
    };
    // Basic auth is chan_websocket's (websocket_client.conf); the other
    // PBXs cannot send it.
    if transport == Transport::AsteriskWs && !http::authorized(shared.cfg.auth.as_ref(), head.header("Authorization")) {
        warn!(%peer, path = head.path(), "refused: missing or wrong credentials");
        http::respond(stream, "401 Unauthorized", "WWW-Authenticate: Basic realm=\"hotline\"\r\n", "").await;
        return;
    }
    if !head.is_websocket_upgrade() {
        return plain_http(stream, peer, &head, &shared).await;
    }
    let subprotocol = transport.subprotocol();
    if let (Some(p), Some(want)) = (head.header("Sec-WebSocket-Protocol"), subprotocol) {
        if !p.split(',').any(|x| x.trim() == want) {
            warn!(%peer, protocols = p, "refused: subprotocol `{want}` not offered");
            http::respond(stream, "400 Bad Request", "", &format!("subprotocol {want} required\n")).await;
            return;
        }
    }
    let slot = match claim_slot(&shared, &active, &phase) {
        Ok(s) => s,
        Err(why) => {
            warn!(%peer, %transport, limit = shared.cfg.max_calls, "refused call: {why}");
            http::respond(stream, "503 Service Unavailable", "Retry-After: 5\r\n", "").await;
            return;
        }
    };
    let answer_protocol = subprotocol.filter(|_| head.header("Sec-WebSocket-Protocol").is_some());
    let target = head.target.clone();
    let codec: Box<dyn crate::pbx::MediaCodec> = match transport {
        // Its codec reads the dialplan and caller from the request path.
        Transport::AsteriskWs => Box::new(crate::pbx::asterisk_ws::AsteriskWsCodec::new(&target)),
        _ => match crate::pbx::registry::codec(transport, &options) {
            Ok(c) => c,
            Err(e) => {
                error!(%peer, %transport, "cannot serve the connection: {e}");
                http::respond(stream, "500 Internal Server Error", "", "").await;
                return;
            }
        },
    };
    let ws_cfg = WebSocketConfig::default()
        .max_message_size(Some(MAX_INCOMING_MESSAGE))
        .max_frame_size(Some(MAX_INCOMING_MESSAGE));
    // The error type is the one tungstenite's handshake callback returns.
    #[allow(clippy::result_large_err)]
    let callback = move |_req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        if let Some(p) = answer_protocol {
            resp.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(p));
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
    session::run(link::Link::websocket(ws), transport, codec, peer.to_string(), shared, phase).await;
    drop(slot);
}

async fn plain_http(stream: TcpStream, peer: SocketAddr, head: &http::RequestHead, shared: &Shared) {
    match (head.method.as_str(), head.path()) {
        ("GET", "/health") => http::respond(stream, "200 OK", "", "ok\n").await,
        // `/decision?uuid=` is the AudioSocket dialplan's spelling.
        ("GET", "/transfer") | ("GET", "/decision") => {
            let q = crate::pbx::asterisk_ws::parse_query(&head.target);
            let uid = q.iter().find(|(k, _)| k == "uid" || k == "uuid").map(|(_, v)| v.as_str()).unwrap_or("");
            let decision = shared.decisions.take(uid).unwrap_or_default();
            info!(%peer, uid, target = %decision, "transfer decision fetched by the Asterisk dialplan");
            http::respond(stream, "200 OK", "", &decision).await;
        }
        _ => http::respond(stream, "404 Not Found", "", "").await,
    }
}
