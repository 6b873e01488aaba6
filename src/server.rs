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
mod fs_prompts;
pub mod http;
mod link;
pub mod playback;
pub mod record;
pub mod registry;
mod session;
pub mod targets;

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
use crate::pbx::esl::{EslClient, EventRouter, TRANSPORT_EVENTS};
use crate::pbx::registry::{Transport, TransportOptions};

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

/// One event-socket connection shared by all FreeSWITCH calls, replaced
/// by a new one when it drops (FreeSWITCH restarted, network blip): the
/// keeper reconnects with bounded backoff, authenticates and subscribes
/// again. Calls go on meanwhile; what needs the socket (prompt files,
/// keys, barge-in, transfers) fails and is logged, and a transfer that
/// fails gets the apology and the dialplan's fallback.
pub(crate) struct FsControl {
    client: Arc<std::sync::RwLock<EslClient>>,
    pub router: EventRouter,
    /// Forwards events and reconnects; stopped with the server.
    keeper: tokio::task::JoinHandle<()>,
}

impl Drop for FsControl {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

/// Reconnect attempts start after this and back off, doubling, up to the max.
const ESL_RECONNECT_FIRST: Duration = Duration::from_millis(500);
const ESL_RECONNECT_MAX: Duration = Duration::from_secs(10);

impl FsControl {
    /// Connects (an error if FreeSWITCH cannot be reached now: a server
    /// that cannot play a prompt must not start), then keeps connected.
    async fn start(cfg: crate::pbx::esl::EslConfig) -> Result<FsControl, String> {
        let (client, events) = Self::connect(&cfg).await?;
        // Events of every connection go through one channel, so the router
        // (and the calls registered with it) outlive a reconnect.
        let (tx, rx) = tokio::sync::mpsc::channel(crate::pbx::esl::EVENT_QUEUE);
        let client = Arc::new(std::sync::RwLock::new(client));
        let shared_client = Arc::clone(&client);
        let keeper = tokio::spawn(async move {
            let mut events = events;
            loop {
                while let Some(e) = events.recv().await {
                    if tx.send(e).await.is_err() {
                        return;
                    }
                }
                let reason = shared_client.read().unwrap_or_else(|p| p.into_inner()).close_reason();
                let reason = reason.unwrap_or_else(|| "event stream ended".into());
                error!(addr = %cfg.addr, %reason, "event socket connection lost; reconnecting");
                let mut wait = ESL_RECONNECT_FIRST;
                events = loop {
                    tokio::time::sleep(wait).await;
                    match Self::connect(&cfg).await {
                        Ok((c, ev)) => {
                            *shared_client.write().unwrap_or_else(|p| p.into_inner()) = c;
                            info!(addr = %cfg.addr, "event socket reconnected");
                            break ev;
                        }
                        Err(e) => {
                            wait = (wait * 2).min(ESL_RECONNECT_MAX);
                            warn!(retry_in_ms = wait.as_millis() as u64, "event socket reconnect failed: {e}");
                        }
                    }
                };
            }
        });
        Ok(FsControl { client, router: EventRouter::spawn(rx), keeper })
    }

    async fn connect(
        cfg: &crate::pbx::esl::EslConfig,
    ) -> Result<(EslClient, tokio::sync::mpsc::Receiver<crate::pbx::esl::EslEvent>), String> {
        let (client, events) = EslClient::connect(cfg).await.map_err(|e| format!("event socket {}: {e}", cfg.addr))?;
        client.subscribe(TRANSPORT_EVENTS).await.map_err(|e| format!("event socket {}: {e}", cfg.addr))?;
        Ok((client, events))
    }

    /// The current connection (cheap clone).
    pub fn client(&self) -> EslClient {
        self.client.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
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
    warn_of_missing_targets(&cfg, &registry, registry.names());
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
        Some(FsControl::start(esl_cfg).await?)
    } else {
        None
    };
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
    Ok(RunningServer { addr, listeners: addrs, phase: phase_tx, active, registry, task })
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

/// With AMI configured, asks Asterisk in the background whether every
/// transfer target of the named dialplans exists, and logs a warning for
/// each that does not (Asterisk would accept the Redirect and hang the
/// caller up). Never holds up serving.
fn warn_of_missing_targets(cfg: &Arc<ServerConfig>, registry: &DialplanRegistry, names: Vec<String>) {
    let Some(ami) = cfg.ami.clone() else { return };
    let plans: Vec<_> = names.iter().filter_map(|n| registry.get(n)).collect();
    if plans.is_empty() {
        return;
    }
    let default_context = cfg.transfer.default_context.clone();
    tokio::spawn(async move {
        let refs: Vec<&crate::dialplan::Dialplan> = plans.iter().map(|p| p.as_ref()).collect();
        match targets::check_dialplans(&ami, &default_context, &refs).await {
            Ok(report) => {
                for m in &report.missing {
                    warn!("{m}");
                }
                info!(checked = report.checked, missing = report.missing.len(), "transfer targets checked in Asterisk");
            }
            Err(e) => warn!("could not check the transfer targets in Asterisk: {e}"),
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
        let cfg = Arc::clone(&shared.cfg);
        let every = shared.cfg.reload_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let r = Arc::clone(&registry);
                if let Ok(report) = tokio::task::spawn_blocking(move || r.scan()).await {
                    warn_of_missing_targets(&cfg, &registry, report.loaded.clone());
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
