//! The live server: the PBX connects once per call, one tokio task per call
//! drives the call machine in real time. Asterisk chan_websocket on
//! `listen`, and any other transport on its own `[[listeners]]` socket
//! (AudioSocket over raw TCP; FreeSWITCH and Twilio over websockets).
//!
//! - Accept loops, one per listener, that never wait on a peer: the
//!   listener's source-address allow-list, at most [`MAX_HANDSHAKING`]
//!   connections per listener that have not yet started a call, each given
//!   [`http::HEAD_TIMEOUT`] for its request head (AudioSocket:
//!   [`FIRST_MESSAGE_TIMEOUT`] for its UUID) before it is closed.
//! - Websocket listeners: credentials ([`auth`]) on every request, limits
//!   (`max_calls`; extra connections get HTTP 503 and a log line), the
//!   subprotocol, the 101 answer exactly as Asterisk accepts it
//!   (`Connection: Upgrade`, no extensions). A call slot is taken only
//!   once a connection has shown it is a call (upgrade, or UUID message).
//! - `GET /transfer?uid=...&token=...` (no upgrade, chan_websocket listener)
//!   answers the Asterisk dialplan's `CURL()` for the no-AMI transfer
//!   method; `GET /health` says `ok` on every websocket listener, without
//!   credentials (it tells nothing and changes nothing), nor do `GET
//!   /healthz` (the same, for Kubernetes) and `GET /readyz`, which says
//!   whether calls should be sent here ([`readiness`]). `GET /metrics`
//!   ([`crate::metrics`]) needs credentials like every other route, and so
//!   does the live dashboard (`GET /`, `/api/...`, [`dashboard`]), which
//!   without `[auth]` is served to loopback peers only.
//! - Hot reload of the dialplan folder ([`dialplans`]); a dialplan going
//!   into service gets its grammars readied and its prompts rendered first.
//! - Shutdown: refuse new calls (503), let calls finish for
//!   `shutdown_grace`, then hang up the rest, store their records
//!   ([`crate::records`]), return.
mod accept;
mod auth;
mod connection;
mod control;
mod dashboard;
mod dialplans;
mod freeswitch_prompts;
pub mod http;
mod link;
mod observer;
mod pacer;
mod playback;
mod readiness;
mod session;
pub(crate) mod targets;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::asr::SpeechStack;
use crate::config::{AddrRange, ServerConfig};
use crate::dialplan::Prompt;
use crate::intent::IntentMatcher;
use crate::pbx::transport::{Transport, TransportOptions};
use crate::prompts::PromptError;

use crate::asr::vad_worker::VadWorker;
use accept::{accept_loop, Accepted, Bound, ACCEPT_QUEUE};
use control::EslControl;
pub use control::{ControlChannel, ControlChannels};
pub use dialplans::{DialplanLoadError, DialplanRegistry, ReloadReport};
pub use readiness::{ControlState, Readiness};

/// Voice detector windows waiting to be scored, all calls together: at
/// 100 calls ~3,100 arrive a second, so this is over a second of backlog
/// (a call whose window finds no room switches to keys).
const VAD_QUEUE: usize = 4_096;

/// Why the server could not start (before any call was accepted).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("speech models: {0}")]
    SpeechModels(#[source] crate::asr::AsrError),
    #[error(transparent)]
    Dialplans(#[from] dialplans::DialplanLoadError),
    #[error("call records {}: cannot start the writer: {source}", .path.display())]
    RecordFile { path: std::path::PathBuf, source: std::io::Error },
    #[error("cannot listen on {addr}{}: {source}", .transport.map(|t| format!(" for {t}")).unwrap_or_default())]
    Listen { addr: SocketAddr, transport: Option<Transport>, source: std::io::Error },
    #[error("a FreeSWITCH listener needs an [esl] section")]
    NoEventSocket,
    #[error("{what} stopped before it finished: {source}")]
    TaskFailed { what: &'static str, source: tokio::task::JoinError },
    #[error("cannot start the voice detector thread: {0}")]
    VoiceDetector(#[source] std::io::Error),
}

/// Prompt audio for the calls (the prompt renderer in production).
pub trait PromptSource: Send + Sync {
    /// Blocking; mono PCM at `rate`.
    fn render(&self, prompt: &Prompt, rate: u32) -> Result<Arc<Vec<i16>>, PromptError>;

    /// Readies the prompts of a dialplan going into service, so no caller
    /// waits for them: everything rendering needs is loaded and each
    /// prompt is rendered at each rate into the cache. Blocking. One
    /// message per prompt that failed.
    fn prepare(&self, prompts: &[Prompt], rates: &[u32]) -> Vec<String> {
        let mut failures = Vec::new();
        for p in prompts {
            if let Some(Err(e)) = rates.iter().map(|&r| self.render(p, r)).find(Result::is_err) {
                failures.push(e.to_string());
            }
        }
        failures
    }
}

impl PromptSource for crate::prompts::PromptRenderer {
    fn render(&self, prompt: &Prompt, rate: u32) -> Result<Arc<Vec<i16>>, PromptError> {
        crate::prompts::PromptRenderer::render(self, prompt, rate)
    }

    fn prepare(&self, prompts: &[Prompt], rates: &[u32]) -> Vec<String> {
        // The voice also speaks what no dialplan spells out (read-backs of
        // the digits a caller said), so it is loaded even when every
        // static prompt is cached already.
        if let Err(e) = self.load_voice() {
            warn!("text-to-speech voice not loaded: {e}");
        }
        self.prerender(prompts, rates).into_iter().map(|(_, e)| e.to_string()).collect()
    }
}

/// What the server needs besides its configuration.
pub struct ServerDeps {
    pub speech: Arc<SpeechStack>,
    pub prompts: Arc<dyn PromptSource>,
    pub matcher: Arc<dyn IntentMatcher>,
}

impl ServerDeps {
    /// The process-wide speech stack, prompt renderer and intent matcher, as
    /// `cfg` asks for them.
    pub async fn load(cfg: &ServerConfig) -> Result<ServerDeps, StartError> {
        let speech_cfg = crate::asr::SpeechConfig {
            threads: cfg.recognizer_threads,
            queue: cfg.recognizer_queue,
            endpoint: cfg.endpoint.clone(),
            grammar: cfg.grammar.clone(),
            models: crate::asr::models::ModelPaths::for_whisper(cfg.recognizer_model),
            second_pass: cfg.second_pass.clone(),
            ..crate::asr::SpeechConfig::default()
        };
        let models = speech_cfg.models.clone();
        let speech = tokio::task::spawn_blocking(move || crate::asr::SpeechStack::load(&speech_cfg))
            .await
            .map_err(|source| StartError::TaskFailed { what: "loading the speech models", source })?
            .map_err(StartError::SpeechModels)?;
        match &cfg.second_pass {
            None => info!(model = %cfg.recognizer_model, "speech models loaded"),
            Some(second) => info!(
                model = %cfg.recognizer_model,
                second_model = %second.model.as_ref().map_or(cfg.recognizer_model, |m| m.name),
                second_speed = second.speed,
                second_accept = second.clear,
                "speech models loaded; unsure answers are heard again"
            ),
        }
        let renderer = crate::prompts::PromptRenderer::new(&models, cfg.general.prompt_cache_dir.clone());
        if let Err(reason) = renderer.tts_status() {
            tracing::warn!("text-to-speech unavailable ({reason}); only prompts with WAV files will be heard");
        }
        Ok(ServerDeps {
            speech: Arc::new(speech),
            prompts: Arc::new(renderer),
            matcher: Arc::new(crate::intent::TextMatcher::default()),
        })
    }
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
    /// Scores the voice detector windows of every call, in batches.
    pub vad: VadWorker,
    pub prompts: Arc<dyn PromptSource>,
    pub matcher: Arc<dyn IntentMatcher>,
    /// Call records, written on their own thread.
    pub records: Option<crate::records::RecordWriter>,
    pub decisions: Arc<crate::pbx::decision::Decisions>,
    /// What `GET /readyz` answers.
    pub readiness: watch::Sender<readiness::Readiness>,
    /// The PBX control connections and whether each is up (`/readyz`).
    pub controls: ControlChannels,
    /// The FreeSWITCH event socket, when a listener needs it.
    pub esl: Option<EslControl>,
    /// The calls in progress and the event streams of `GET /`.
    pub dashboard: dashboard::Dashboard,
}

/// What a connection needs to know about the listener it came in on.
struct Endpoint {
    transport: Transport,
    options: TransportOptions,
    /// The URL the PBX knows the listener by (Twilio's signature covers it).
    public_url: Option<String>,
}

/// Connections per listener that may be between accept and the start of a
/// call (reading a request head, authenticating, waiting for the first
/// AudioSocket message). More are closed at once, so clients that connect
/// and stall cannot use up the process's file descriptors.
pub const MAX_HANDSHAKING: usize = 128;
/// Asterisk sends the UUID message as soon as it connects.
pub const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(2);
/// AudioSocket's first message: kind 0x01, length 16, the UUID (PROTOCOLS.md §3).
const UUID_MESSAGE_BYTES: usize = 3 + 16;
/// Bound on writing a short answer (101, 4xx, AudioSocket hangup).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct RunningServer {
    addr: SocketAddr,
    listeners: Vec<(Transport, SocketAddr)>,
    phase: watch::Sender<Phase>,
    active: Arc<AtomicUsize>,
    registry: Arc<DialplanRegistry>,
    shared: Arc<Shared>,
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

    /// Whether the server is ready for calls, and what it still waits for.
    pub fn readiness(&self) -> readiness::Readiness {
        self.shared.readiness.borrow().clone()
    }

    /// SIGHUP: reopens the call record file (after log rotation) and
    /// rescans the dialplan folder now, readying what changed. Calls go on.
    pub async fn reload(&self) {
        if let Some(records) = self.shared.records.clone() {
            let _ = tokio::task::spawn_blocking(move || records.reopen()).await;
        }
        let registry = Arc::clone(&self.registry);
        if let Ok(report) = tokio::task::spawn_blocking(move || registry.scan()).await {
            info!(loaded = ?report.loaded, refused = report.rejected.len(), "dialplan folder rescanned");
            prepare_dialplans(&self.shared, report.loaded);
        }
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
        // The last calls' records are queued; store them before returning.
        if let Some(records) = self.shared.records.clone() {
            let _ = tokio::task::spawn_blocking(move || records.flush()).await;
        }
    }
}

/// Binds, loads the dialplans and starts serving. Errors (address in use,
/// no valid default dialplan, unwritable record file) come back before any
/// call is accepted.
pub async fn start(cfg: ServerConfig, deps: ServerDeps) -> Result<RunningServer, StartError> {
    // First, so the dialplans' first load is counted too.
    if crate::metrics::install().is_none() {
        warn!("another metrics recorder is installed: GET /metrics will answer 503");
    }
    let cfg = Arc::new(cfg);
    let (registry, report) = {
        let dir = cfg.general.dialplan_dir.clone();
        let name = cfg.general.default_dialplan.clone();
        let recognizer = cfg.recognizer_model;
        tokio::task::spawn_blocking(move || DialplanRegistry::load(&dir, &name, recognizer))
            .await
            .map_err(|source| StartError::TaskFailed { what: "loading the dialplans", source })??
    };
    info!(dialplans = ?registry.names(), refused = report.rejected.len(), "dialplans loaded");
    let registry = Arc::new(registry);
    // A store that cannot be opened is logged by the writer and tried
    // again per record: calls are served without their records rather
    // than not at all.
    let records = match &cfg.general.call_records {
        Some(p) => {
            let options = crate::records::WriterOptions {
                keep_days: cfg.general.records_keep_days,
                instance: instance_name(&cfg),
                max_call: cfg.general.max_call_duration,
            };
            Some(
                crate::records::RecordWriter::start(p, options)
                    .map_err(|source| StartError::RecordFile { path: crate::records::shown(p).into(), source })?,
            )
        }
        None => None,
    };
    let listen_error = |addr: SocketAddr, transport: Option<Transport>| {
        move |source: std::io::Error| StartError::Listen { addr, transport, source }
    };
    let listener = TcpListener::bind(cfg.general.listen).await.map_err(listen_error(cfg.general.listen, None))?;
    let addr = listener.local_addr().map_err(listen_error(cfg.general.listen, None))?;
    info!(%addr, max_calls = cfg.general.max_calls, transfer = ?cfg.transfer.method, auth = cfg.auth.is_some(), "listening for Asterisk");
    let asterisk =
        Endpoint { transport: Transport::AsteriskWs, options: TransportOptions::default(), public_url: None };
    let anyone = vec![AddrRange::ANY_V4, AddrRange::ANY_V6];
    let mut bound = vec![Bound { listener, allow: anyone, endpoint: Arc::new(asterisk) }];
    let mut addrs = vec![(Transport::AsteriskWs, addr)];
    for l in &cfg.listeners {
        let listener = TcpListener::bind(l.listen).await.map_err(listen_error(l.listen, Some(l.transport)))?;
        let a = listener.local_addr().map_err(listen_error(l.listen, Some(l.transport)))?;
        let allow: Vec<String> = l.allow.iter().map(ToString::to_string).collect();
        info!(addr = %a, transport = %l.transport, rate = ?l.rate, ?allow, "listening");
        addrs.push((l.transport, a));
        let endpoint = Endpoint {
            transport: l.transport,
            options: TransportOptions { rate: l.rate },
            public_url: l.public_url.clone(),
        };
        bound.push(Bound { listener, allow: l.allow.clone(), endpoint: Arc::new(endpoint) });
    }
    if cfg.auth.is_none() && bound.iter().any(|b| b.endpoint.transport.is_websocket() && !is_loopback(&b.listener)) {
        warn!("websocket listeners on a non-loopback address without [auth]: anyone who reaches them can start calls");
    }
    dashboard::announce(&cfg, addr);
    let esl = if cfg.listeners.iter().any(|l| l.transport.needs_event_socket()) {
        let esl_cfg = cfg.esl.clone().ok_or(StartError::NoEventSocket)?;
        // Not awaited: FreeSWITCH may come up after hotline, as it may go
        // away and come back while hotline runs.
        Some(EslControl::start(esl_cfg))
    } else {
        None
    };
    let readiness = watch::Sender::new(readiness::Readiness {
        models_loaded: true,
        dialplans: registry.names().len(),
        ..Default::default()
    });
    let controls = ControlChannels::new(esl.iter().map(EslControl::channel).collect());
    let shared = Arc::new(Shared {
        cfg: Arc::clone(&cfg),
        registry: Arc::clone(&registry),
        vad: VadWorker::start(Arc::clone(&deps.speech.vad_model), VAD_QUEUE).map_err(StartError::VoiceDetector)?,
        speech: deps.speech,
        prompts: deps.prompts,
        matcher: deps.matcher,
        records,
        decisions: Arc::new(crate::pbx::decision::Decisions::default()),
        readiness,
        controls: controls.clone(),
        esl,
        dashboard: dashboard::Dashboard::default(),
    });
    prepare_dialplans(&shared, registry.names());
    tokio::spawn(log_when_ready(shared.readiness.subscribe()));
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);
    let active = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn(serve(bound, Arc::clone(&shared), phase_rx, phase_tx.clone(), Arc::clone(&active)));
    Ok(RunningServer { addr, listeners: addrs, phase: phase_tx, active, registry, shared, controls, task })
}

/// Readies dialplans going into service (at start, on reload): the
/// recogniser for their grammars and their prompts, each on a blocking
/// thread, while calls are already served. Readiness follows the first
/// pass; later passes only log.
fn prepare_dialplans(shared: &Arc<Shared>, names: Vec<String>) {
    let plans: Vec<_> = names.iter().filter_map(|n| shared.registry.get(n)).collect();
    if plans.is_empty() {
        return;
    }
    warn_of_missing_targets(&shared.cfg, &shared.registry, names);
    prepare_recognizer(shared, plans.clone());
    prepare_prompts(shared, plans);
}

/// The "ready" log line, once, when every start-up step is done.
async fn log_when_ready(mut readiness: watch::Receiver<readiness::Readiness>) {
    if let Ok(r) = readiness.wait_for(|r| r.blocker().is_none()).await {
        info!(dialplans = r.dialplans, prompts_failed = r.prompts_failed, "ready");
    }
}

/// The rates prompts are rendered at ahead of calls: the telephone rates
/// (G.711 and slin16 legs of chan_websocket) and every listener's own.
fn prompt_rates(cfg: &ServerConfig) -> Vec<u32> {
    let mut rates = vec![8_000, 16_000];
    for rate in cfg.listeners.iter().filter_map(|l| l.rate) {
        if !rates.contains(&rate) {
            rates.push(rate);
        }
    }
    rates
}

/// Loads the voice and renders every static prompt of the dialplans (once
/// per text, all rates from one synthesis), so the first callers hear
/// their greeting at once instead of waiting seconds for synthesis.
fn prepare_prompts(shared: &Arc<Shared>, plans: Vec<Arc<crate::dialplan::Dialplan>>) {
    let shared = Arc::clone(shared);
    let rates = prompt_rates(&shared.cfg);
    tokio::task::spawn_blocking(move || {
        let t0 = std::time::Instant::now();
        let mut failed = 0;
        for plan in &plans {
            let prompts = crate::call::static_prompts(plan);
            let failures = shared.prompts.prepare(&prompts, &rates);
            for e in &failures {
                warn!(dialplan = %plan.name, "prompt not rendered: {e}");
            }
            failed += failures.len();
            info!(dialplan = %plan.name, prompts = prompts.len(), failed = failures.len(), "prompts rendered");
        }
        info!(ms = t0.elapsed().as_millis() as u64, ?rates, "prompts ready");
        shared.readiness.send_modify(|r| {
            r.prompts_rendered = true;
            r.prompts_failed = failed;
        });
    });
}

/// Readies the recogniser for every grammar of the named dialplans (their
/// menus' phrases and priors, ~0.5 s of CPU per menu), on a blocking thread
/// while calls are already served, so the first caller of a menu does not
/// wait for it.
fn prepare_recognizer(shared: &Arc<Shared>, plans: Vec<Arc<crate::dialplan::Dialplan>>) {
    let recognizer = Arc::clone(&shared.speech.recognizer);
    let readiness = shared.readiness.clone();
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
        readiness.send_modify(|r| r.recognizer_ready = true);
    });
}

fn is_loopback(listener: &TcpListener) -> bool {
    listener.local_addr().is_ok_and(|a| a.ip().is_loopback())
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

async fn serve(
    bound: Vec<Bound>,
    shared: Arc<Shared>,
    mut phase_rx: watch::Receiver<Phase>,
    phase_tx: watch::Sender<Phase>,
    active: Arc<AtomicUsize>,
) {
    let mut calls = JoinSet::new();
    let reload = {
        let shared = Arc::clone(&shared);
        let every = shared.cfg.general.reload_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let r = Arc::clone(&shared.registry);
                if let Ok(report) = tokio::task::spawn_blocking(move || r.scan()).await {
                    prepare_dialplans(&shared, report.loaded);
                }
            }
        })
    };
    let (accept_tx, mut accepted) = tokio::sync::mpsc::channel(ACCEPT_QUEUE);
    let acceptors: Vec<_> = bound.into_iter().map(|b| tokio::spawn(accept_loop(b, accept_tx.clone()))).collect();
    drop(accept_tx);
    let phase_of_calls = phase_rx.clone();
    let spawn_connection = |calls: &mut JoinSet<()>, conn: Accepted| {
        let shared = Arc::clone(&shared);
        let active = Arc::clone(&active);
        let phase = phase_of_calls.clone();
        calls.spawn(async move {
            if conn.endpoint.transport.is_websocket() {
                connection::connection(conn, shared, active, phase).await
            } else {
                connection::tcp_connection(conn, shared, active, phase).await
            }
        });
    };
    loop {
        tokio::select! {
            Some(conn) = accepted.recv() => spawn_connection(&mut calls, conn),
            Some(_) = calls.join_next(), if !calls.is_empty() => {}
            _ = phase_rx.changed() => {
                if *phase_rx.borrow() != Phase::Running {
                    break;
                }
            }
        }
    }
    reload.abort();
    shared.readiness.send_modify(|r| r.draining = true);
    let grace = shared.cfg.general.shutdown_grace;
    info!(calls = active.load(Ordering::SeqCst), grace_s = grace.as_secs(), "shutting down: no new calls");
    // Still accepting while calls drain: new calls are refused (503,
    // AudioSocket hangup) and `GET /readyz` says the server is draining,
    // instead of connections being refused with no reason given.
    let drained = tokio::time::timeout(grace, async {
        loop {
            tokio::select! {
                Some(conn) = accepted.recv() => spawn_connection(&mut calls, conn),
                next = calls.join_next() => if next.is_none() { break },
            }
        }
    })
    .await;
    for a in &acceptors {
        a.abort();
    }
    drop(accepted);
    if drained.is_err() {
        warn!(calls = active.load(Ordering::SeqCst), "grace period over: hanging up the remaining calls");
        let _ = phase_tx.send(Phase::Force);
        if tokio::time::timeout(Duration::from_secs(10), async { while calls.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            error!("calls did not end after hangup; aborting them");
            calls.abort_all();
        }
    }
    info!("server stopped");
}

/// The name this instance's calls are recorded under: `instance_name`, or
/// the host's name and the listening port (unique on a host, stable across
/// restarts, so a restarted instance finds the calls it left open).
pub fn instance_name(cfg: &ServerConfig) -> String {
    if let Some(name) = &cfg.general.instance_name {
        return name.clone();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hotline".into());
    format!("{host}:{}", cfg.general.listen.port())
}
