//! The event-socket client: one authenticated connection, commands
//! matched to their replies, background jobs to their output, and the
//! reader task that hands events on.
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Mutex, Notify};

use super::{read_message, EslConfig, EslError, EslEvent, EslMessage, EVENT_QUEUE};

type Pending = Arc<std::sync::Mutex<VecDeque<oneshot::Sender<EslMessage>>>>;
/// Callers waiting for the output of a background job, by Job-UUID.
type Jobs = Arc<std::sync::Mutex<HashMap<String, oneshot::Sender<String>>>>;

struct Writer {
    half: OwnedWriteHalf,
    /// Set by the reader when the connection ends, before it drops the
    /// waiting callers, so no caller waits for a reply that cannot come.
    closed: Arc<std::sync::atomic::AtomicBool>,
    /// Callers waiting for replies, in the order their commands were sent.
    pending: Pending,
    /// Tells the reader to drop the connection (a reply did not come).
    reset: Arc<Notify>,
}

/// A connected, authenticated event socket. Cheap to clone; commands from
/// several tasks are serialised.
#[derive(Clone)]
pub struct EslClient {
    writer: Arc<Mutex<Option<Writer>>>,
    addr: String,
    timeout: Duration,
    /// Why the connection ended, once it has (for the reconnect log).
    close_reason: Arc<std::sync::Mutex<Option<String>>>,
    /// Background jobs of this connection waiting for their output.
    jobs: Jobs,
}

impl fmt::Debug for EslClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EslClient").field("addr", &self.addr).finish()
    }
}

impl EslClient {
    /// Connects and authenticates. Events subscribed to later arrive on the
    /// returned receiver; it closes when the connection does.
    pub async fn connect(config: &EslConfig) -> Result<(EslClient, mpsc::Receiver<EslEvent>), EslError> {
        let addr = config.addr.clone();
        let stream = tokio::time::timeout(config.timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| EslError::Connect {
                addr: addr.clone(),
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
            })?
            .map_err(|source| EslError::Connect { addr: addr.clone(), source })?;
        let (read_half, mut write_half) = stream.into_split();
        let mut reader = BufReader::new(read_half);
        let handshake = async {
            let greeting = read_message(&mut reader).await?.ok_or(EslError::Closed)?;
            match greeting.content_type() {
                "auth/request" => {}
                "text/rude-rejection" => return Err(EslError::AclRejected { addr: addr.clone() }),
                other => return Err(EslError::Protocol(format!("expected auth/request on connect, got {other:?}"))),
            }
            // The password goes on the wire only; it is never logged.
            write_half.write_all(format!("auth {}\n\n", config.password).as_bytes()).await?;
            let reply = read_message(&mut reader).await?.ok_or(EslError::Closed)?;
            let text = reply.header("Reply-Text").unwrap_or("").to_string();
            if !text.starts_with("+OK") {
                return Err(EslError::AuthRejected { addr: addr.clone(), reply: text });
            }
            Ok(())
        };
        tokio::time::timeout(config.timeout, handshake)
            .await
            .map_err(|_| EslError::Timeout { command: "auth".into(), timeout_ms: config.timeout.as_millis() })??;
        tracing::info!(addr = %addr, "event socket connected");

        let pending: Pending = Arc::new(std::sync::Mutex::new(VecDeque::new()));
        let jobs: Jobs = Arc::new(std::sync::Mutex::new(HashMap::new()));
        let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reset = Arc::new(Notify::new());
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let close_reason = Arc::new(std::sync::Mutex::new(None));
        let ends = LoopEnd { closed: closed.clone(), reason: close_reason.clone(), reset: reset.clone() };
        let waiting = Waiting { replies: pending.clone(), jobs: jobs.clone() };
        tokio::spawn(read_loop(reader, waiting, ends, events_tx, addr.clone()));
        let client = EslClient {
            writer: Arc::new(Mutex::new(Some(Writer { half: write_half, closed, pending, reset }))),
            addr,
            timeout: config.timeout,
            close_reason,
            jobs,
        };
        Ok((client, events_rx))
    }

    /// A client with no connection (FreeSWITCH not reached yet): every
    /// command fails at once with [`EslError::Closed`].
    pub fn disconnected(config: &EslConfig) -> EslClient {
        EslClient {
            writer: Arc::new(Mutex::new(None)),
            addr: config.addr.clone(),
            timeout: config.timeout,
            close_reason: Arc::new(std::sync::Mutex::new(Some("not connected yet".into()))),
            jobs: Jobs::default(),
        }
    }

    /// Why the connection ended; `None` while it is up.
    pub fn close_reason(&self) -> Option<String> {
        self.close_reason.lock().ok().and_then(|r| r.clone())
    }

    /// Sends one command line and waits for its `command/reply` or
    /// `api/response`. No reply in time resets the connection.
    pub async fn command(&self, line: &str) -> Result<EslMessage, EslError> {
        self.exchange(line, &[], None).await
    }

    /// Sends a command block (the line, then `headers`), registering
    /// `job` first if given, and waits for the reply.
    async fn exchange(
        &self,
        line: &str,
        headers: &[(&str, &str)],
        job: Option<(&str, oneshot::Sender<String>)>,
    ) -> Result<EslMessage, EslError> {
        if line.contains(['\n', '\r']) || headers.iter().any(|(k, v)| format!("{k}{v}").contains(['\n', '\r'])) {
            return Err(EslError::InvalidArgument { what: "command", value: line.to_string() });
        }
        let mut block = format!("{line}\n");
        for (k, v) in headers {
            block.push_str(&format!("{k}: {v}\n"));
        }
        block.push('\n');
        let rx = {
            let mut guard = self.writer.lock().await;
            let writer = guard.as_mut().ok_or(EslError::Closed)?;
            if writer.closed.load(std::sync::atomic::Ordering::SeqCst) {
                *guard = None;
                return Err(EslError::Closed);
            }
            if let Some((id, tx)) = job {
                lock(&self.jobs).insert(id.to_string(), tx);
            }
            let (tx, rx) = oneshot::channel();
            lock(&writer.pending).push_back(tx);
            if let Err(e) = writer.half.write_all(block.as_bytes()).await {
                *guard = None;
                return Err(EslError::Io(e));
            }
            // Checked after queueing: the reader sets the flag before it
            // clears the queue, so a command queued later sees it here.
            if writer.closed.load(std::sync::atomic::Ordering::SeqCst) {
                *guard = None;
                return Err(EslError::Closed);
            }
            rx
        };
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(EslError::Closed),
            Err(_) => {
                let command = first_word_pair(line);
                self.reset(&command).await;
                Err(EslError::Timeout { command, timeout_ms: self.timeout.as_millis() })
            }
        }
    }

    /// A reply did not come: the next reply could be this command's, and
    /// matching it to the next command would put every later reply out of
    /// step. The connection is dropped instead; the keeper makes a new one.
    async fn reset(&self, command: &str) {
        tracing::error!(
            addr = %self.addr, command, timeout_ms = self.timeout.as_millis() as u64,
            "no reply from the event socket; dropping the connection so later replies cannot go to the wrong command"
        );
        if let Some(writer) = self.writer.lock().await.take() {
            writer.reset.notify_one();
        }
    }

    /// `bgapi <cmd>` with a Job-UUID of ours: waits for the reply, then for
    /// the job's `BACKGROUND_JOB` output; `CommandFailed` when it starts
    /// with `-ERR` / `-USAGE`. FreeSWITCH sends that event only to
    /// connections subscribed to it ([`TRANSPORT_EVENTS`] has it).
    pub async fn job(&self, cmd: &str) -> Result<String, EslError> {
        let id = new_job_uuid();
        let (tx, rx) = oneshot::channel();
        let line = format!("bgapi {cmd}");
        let accepted = self.exchange(&line, &[("Job-UUID", &id)], Some((&id, tx))).await;
        let forget = || lock(&self.jobs).remove(&id);
        let text = match accepted {
            Ok(reply) => reply.header("Reply-Text").unwrap_or("").to_string(),
            Err(e) => {
                forget();
                return Err(e);
            }
        };
        if !text.starts_with("+OK") {
            forget();
            return Err(EslError::CommandFailed { command: line, reply: text });
        }
        let output = match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(output)) => output,
            Ok(Err(_)) => return Err(EslError::Closed),
            Err(_) => {
                forget();
                return Err(EslError::Timeout {
                    command: first_word_pair(&line),
                    timeout_ms: self.timeout.as_millis(),
                });
            }
        };
        let trimmed = output.trim_end().to_string();
        if trimmed.starts_with("-ERR") || trimmed.starts_with("-USAGE") {
            return Err(EslError::CommandFailed { command: line, reply: trimmed });
        }
        Ok(trimmed)
    }

    /// Whether `uuid` is a live channel (`uuid_exists`, which answers
    /// `true` or `false`).
    pub async fn uuid_exists(&self, uuid: &str) -> Result<bool, EslError> {
        check_arg("channel uuid", uuid)?;
        match self.job(&format!("uuid_exists {uuid}")).await?.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(EslError::Protocol(format!("uuid_exists answered {other:?}, not true or false"))),
        }
    }

    /// An error unless `uuid` is a live channel: hotline never transfers
    /// or hangs up a uuid FreeSWITCH does not know (a media connection may
    /// claim any uuid).
    async fn require_live(&self, uuid: &str) -> Result<(), EslError> {
        match self.uuid_exists(uuid).await? {
            true => Ok(()),
            false => Err(EslError::NoSuchChannel { uuid: uuid.to_string() }),
        }
    }

    /// `api <cmd>`: the command's output, or `CommandFailed` when it
    /// starts with `-ERR` / `-USAGE`.
    pub async fn api(&self, cmd: &str) -> Result<String, EslError> {
        let reply = self.command(&format!("api {cmd}")).await?;
        let body = reply.body_text();
        let trimmed = body.trim_end().to_string();
        if trimmed.starts_with("-ERR") || trimmed.starts_with("-USAGE") {
            return Err(EslError::CommandFailed { command: format!("api {cmd}"), reply: trimmed });
        }
        Ok(trimmed)
    }

    /// `bgapi <cmd>`: the Job-UUID; the result arrives as a
    /// `BACKGROUND_JOB` event.
    pub async fn bgapi(&self, cmd: &str) -> Result<String, EslError> {
        let reply = self.command(&format!("bgapi {cmd}")).await?;
        let text = reply.header("Reply-Text").unwrap_or("").to_string();
        if !text.starts_with("+OK") {
            return Err(EslError::CommandFailed { command: format!("bgapi {cmd}"), reply: text });
        }
        reply
            .header("Job-UUID")
            .map(str::to_string)
            .or_else(|| text.strip_prefix("+OK Job-UUID:").map(|s| s.trim().to_string()))
            .ok_or_else(|| EslError::Protocol(format!("bgapi reply without a Job-UUID: {text:?}")))
    }

    /// `event plain <names>`; after `CUSTOM`, names are subclasses.
    pub async fn subscribe(&self, names: &[&str]) -> Result<(), EslError> {
        for n in names {
            check_arg("event name", n)?;
        }
        let line = format!("event plain {}", names.join(" "));
        let reply = self.command(&line).await?;
        let text = reply.header("Reply-Text").unwrap_or("");
        if !text.starts_with("+OK") {
            return Err(EslError::CommandFailed { command: line, reply: text.to_string() });
        }
        Ok(())
    }

    /// Moves the caller to `extension` in the XML dialplan's `context`
    /// (FreeSWITCH's default context when `None`).
    pub async fn uuid_transfer(&self, uuid: &str, extension: &str, context: Option<&str>) -> Result<(), EslError> {
        check_arg("channel uuid", uuid)?;
        check_arg("extension", extension)?;
        let cmd = match context {
            Some(ctx) => {
                check_arg("context", ctx)?;
                format!("uuid_transfer {uuid} {extension} XML {ctx}")
            }
            None => format!("uuid_transfer {uuid} {extension}"),
        };
        self.require_live(uuid).await?;
        tracing::info!(uuid, extension, context = context.unwrap_or("default"), "transferring over the event socket");
        self.job(&cmd).await.map(|_| ())
    }

    /// Stops the file playing now; `all` also drops queued ones (barge-in).
    pub async fn uuid_break(&self, uuid: &str, all: bool) -> Result<(), EslError> {
        check_arg("channel uuid", uuid)?;
        let cmd = if all { format!("uuid_break {uuid} all") } else { format!("uuid_break {uuid}") };
        self.job(&cmd).await.map(|_| ())
    }

    /// Plays a file to the caller (A leg); broadcasts queue behind each other.
    pub async fn uuid_broadcast(&self, uuid: &str, path: &str) -> Result<(), EslError> {
        check_arg("channel uuid", uuid)?;
        check_arg("file path", path)?;
        self.job(&format!("uuid_broadcast {uuid} {path} aleg")).await.map(|_| ())
    }

    /// Sets a channel variable (collected digits for the agent's screen).
    /// The value may contain spaces (FreeSWITCH takes the rest of the
    /// line), not line breaks.
    pub async fn uuid_setvar(&self, uuid: &str, name: &str, value: &str) -> Result<(), EslError> {
        check_arg("channel uuid", uuid)?;
        check_arg("variable name", name)?;
        if value.chars().any(char::is_control) {
            return Err(EslError::InvalidArgument { what: "variable value", value: value.to_string() });
        }
        self.job(&format!("uuid_setvar {uuid} {name} {value}")).await.map(|_| ())
    }

    /// Hangs the channel up (NORMAL_CLEARING).
    pub async fn uuid_kill(&self, uuid: &str) -> Result<(), EslError> {
        check_arg("channel uuid", uuid)?;
        self.require_live(uuid).await?;
        self.job(&format!("uuid_kill {uuid}")).await.map(|_| ())
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A random version-4 style UUID for a background job: unique across the
/// clients of one FreeSWITCH, whose BACKGROUND_JOB events all of them see.
fn new_job_uuid() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // RandomState is seeded randomly per process; the counter keeps ids apart within it.
    let random = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u64(salt);
        h.finish()
    };
    let (a, b) = (random(1), random(2));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// For timeouts: the command without its arguments' tail (never secrets,
/// but paths can be long).
fn first_word_pair(line: &str) -> String {
    line.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

pub(super) fn check_arg(what: &'static str, value: &str) -> Result<(), EslError> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(EslError::InvalidArgument { what, value: value.to_string() });
    }
    Ok(())
}

/// What the reader leaves behind when the connection ends.
struct LoopEnd {
    closed: Arc<std::sync::atomic::AtomicBool>,
    reason: Arc<std::sync::Mutex<Option<String>>>,
    /// The client asks the reader to drop the connection.
    reset: Arc<Notify>,
}

/// Who waits for what the reader receives.
struct Waiting {
    replies: Pending,
    jobs: Jobs,
}

async fn read_loop<R: AsyncBufRead + Unpin>(
    mut reader: R,
    waiting: Waiting,
    ends: LoopEnd,
    events: mpsc::Sender<EslEvent>,
    addr: String,
) {
    let mut dropped: u64 = 0;
    let reason = loop {
        let read = tokio::select! {
            read = read_message(&mut reader) => read,
            _ = ends.reset.notified() => break "dropped: a command got no reply in time".to_string(),
        };
        let msg = match read {
            Ok(Some(m)) => m,
            Ok(None) => {
                tracing::warn!(addr = %addr, "event socket closed by FreeSWITCH");
                break "closed by FreeSWITCH".to_string();
            }
            Err(e) => {
                tracing::error!(addr = %addr, error = %e, "event socket read failed; closing");
                break format!("read failed: {e}");
            }
        };
        match msg.content_type() {
            "command/reply" | "api/response" => {
                let waiter = lock(&waiting.replies).pop_front();
                match waiter {
                    // A caller that timed out has dropped its receiver.
                    Some(tx) => drop(tx.send(msg)),
                    None => tracing::warn!(addr = %addr, "event socket reply with no command waiting"),
                }
            }
            "text/event-plain" => match EslEvent::parse_plain(&msg.body) {
                Ok(ev) => {
                    let Some(ev) = job_output(ev, &waiting.jobs) else { continue };
                    if events.try_send(ev).is_err() {
                        dropped += 1;
                        if dropped == 1 || dropped.is_multiple_of(100) {
                            tracing::warn!(addr = %addr, dropped, "event queue full; events dropped");
                        }
                    }
                }
                Err(e) => tracing::warn!(addr = %addr, error = %e, "unreadable event skipped"),
            },
            "text/disconnect-notice" => {
                tracing::warn!(addr = %addr, "FreeSWITCH sent a disconnect notice");
                break "FreeSWITCH sent a disconnect notice".to_string();
            }
            other => tracing::debug!(addr = %addr, content_type = other, "event socket message ignored"),
        }
    };
    if let Ok(mut r) = ends.reason.lock() {
        *r = Some(reason);
    }
    // Waiting callers learn the connection is gone (their senders drop).
    ends.closed.store(true, std::sync::atomic::Ordering::SeqCst);
    lock(&waiting.replies).clear();
    lock(&waiting.jobs).clear();
}

/// Hands a `BACKGROUND_JOB` event to the caller waiting for that job; any
/// other event (or a job of another client) is given back.
fn job_output(ev: EslEvent, jobs: &Jobs) -> Option<EslEvent> {
    if ev.name() != Some("BACKGROUND_JOB") {
        return Some(ev);
    }
    let waiter = ev.get("Job-UUID").and_then(|id| lock(jobs).remove(id));
    match waiter {
        Some(tx) => {
            let _ = tx.send(ev.body);
            None
        }
        None => Some(ev),
    }
}

/// The server's event-socket connection as it is now: replaced by the
/// keeper after a reconnect, read by every call when it needs it, so a
/// call that started before an outage uses the new connection after it.
#[derive(Clone)]
pub struct CurrentClient(Arc<std::sync::RwLock<EslClient>>);

impl CurrentClient {
    /// Not connected yet: commands fail as on a closed connection.
    pub fn disconnected(config: &EslConfig) -> Self {
        CurrentClient(Arc::new(std::sync::RwLock::new(EslClient::disconnected(config))))
    }

    /// The connection now (cheap clone).
    pub fn get(&self) -> EslClient {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A new connection replaces the old one.
    pub fn replace(&self, client: EslClient) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = client;
    }
}
