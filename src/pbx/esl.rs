//! FreeSWITCH Event Socket, inbound mode (PROTOCOLS.md §6): hotline
//! connects to FreeSWITCH's `mod_event_socket`, authenticates, subscribes
//! to the events it needs, and controls calls with `api` commands.
//!
//! For the mod_audio_fork / mod_audio_stream transports this is the other
//! half of the call: the modules do not play our audio or forward DTMF, so
//! hotline plays the temp file they announce (`uuid_broadcast`), stops it
//! on barge-in (`uuid_break`), takes digits from `DTMF` events and
//! transfers with `uuid_transfer`.
//!
//! Framing: header lines `Name: value` up to an empty line; with a
//! `Content-Length: N` header, N bytes of body follow. Replies come in the
//! order commands were sent, so a FIFO of waiting callers matches them;
//! events go to a bounded channel.
//!
//! Staying in step: a blocking `api` command holds FreeSWITCH's listener
//! until it is done, and a reply that never comes would shift every later
//! reply onto the wrong command. So call control goes through `bgapi`
//! with a `Job-UUID` header of ours (FreeSWITCH takes the job's id from
//! it): the `command/reply` comes at once and the output later in a
//! `BACKGROUND_JOB` event matched by that id. A command whose reply does
//! not come in time resets the connection (the server's keeper connects
//! again), so no later command can get its reply.
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Mutex, Notify};

/// Environment variable holding the ESL password when the config has none.
pub const PASSWORD_ENV: &str = "HOTLINE_ESL_PASSWORD";

/// Events the FreeSWITCH transports need: digits, the temp files the
/// modules announce, the end of playback, and hangups.
pub const TRANSPORT_EVENTS: &[&str] = &[
    "BACKGROUND_JOB",
    "DTMF",
    "PLAYBACK_STOP",
    "CHANNEL_HANGUP",
    "CUSTOM",
    "mod_audio_fork::play_audio",
    "mod_audio_fork::kill_audio",
    "mod_audio_stream::play",
];

/// Bounds on what FreeSWITCH may send: a header line, the header block,
/// and a body. Events with all channel variables are a few KiB; an `api`
/// reply such as `show channels` can be larger, hence the 4 MiB body.
const MAX_LINE: usize = 16 * 1024;
const MAX_HEADERS: usize = 1024;
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Events waiting for the application; beyond this they are dropped (and
/// counted in the log) rather than stalling replies to commands.
pub const EVENT_QUEUE: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum EslError {
    #[error("cannot connect to the FreeSWITCH event socket at {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("event socket I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("FreeSWITCH at {addr} refused the event socket password ({reply})")]
    AuthRejected { addr: String, reply: String },
    #[error("FreeSWITCH at {addr} rejected the connection by ACL (text/rude-rejection); allow hotline's address in event_socket.conf.xml apply-inbound-acl")]
    AclRejected { addr: String },
    #[error("event socket protocol error: {0}")]
    Protocol(String),
    #[error("`{command}` failed: {reply}")]
    CommandFailed { command: String, reply: String },
    #[error("no reply to `{command}` within {timeout_ms} ms")]
    Timeout { command: String, timeout_ms: u128 },
    #[error("the event socket connection is closed")]
    Closed,
    #[error("{what} {value:?} cannot be sent over the event socket (empty, or contains whitespace)")]
    InvalidArgument { what: &'static str, value: String },
    #[error("no event socket password: set it in the config file or in {PASSWORD_ENV}")]
    NoPassword,
    #[error("channel {uuid} is not a live FreeSWITCH channel (uuid_exists: false)")]
    NoSuchChannel { uuid: String },
}

/// Where and how to connect. The password is never printed.
#[derive(Clone)]
pub struct EslConfig {
    /// `host:port`, e.g. `127.0.0.1:8021`.
    pub addr: String,
    password: String,
    /// How long to wait for connect, auth, and each command's reply.
    pub timeout: Duration,
}

impl fmt::Debug for EslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EslConfig")
            .field("addr", &self.addr)
            .field("password", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl EslConfig {
    pub fn new(addr: impl Into<String>, password: impl Into<String>) -> Self {
        EslConfig { addr: addr.into(), password: password.into(), timeout: Duration::from_secs(5) }
    }

    /// The password from the config file if given, else from
    /// [`PASSWORD_ENV`]; an error when neither has one.
    pub fn resolve(addr: impl Into<String>, configured: Option<String>) -> Result<Self, EslError> {
        let password = configured
            .filter(|p| !p.is_empty())
            .or_else(|| std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty()))
            .ok_or(EslError::NoPassword)?;
        Ok(Self::new(addr, password))
    }
}

/// One framed message: headers and an optional body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EslMessage {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl EslMessage {
    /// First header of that name (ESL header names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> &str {
        self.header("Content-Type").unwrap_or("")
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one framed message; `Ok(None)` on a clean end of stream.
pub async fn read_message<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<Option<EslMessage>, EslError> {
    let mut headers = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut *reader).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line).await?;
        if n == 0 {
            return if headers.is_empty() {
                Ok(None)
            } else {
                Err(EslError::Protocol("connection closed inside a header block".into()))
            };
        }
        if line.len() > MAX_LINE {
            return Err(EslError::Protocol(format!("header line longer than {MAX_LINE} bytes")));
        }
        let text = String::from_utf8_lossy(&line);
        // CR characters are ignored, as FreeSWITCH does.
        let text = text.trim_end_matches(['\n', '\r']).replace('\r', "");
        if text.is_empty() {
            if headers.is_empty() {
                continue; // blank lines between messages
            }
            break;
        }
        let Some((name, value)) = text.split_once(':') else {
            return Err(EslError::Protocol(format!("header line without a colon: {text:?}")));
        };
        if headers.len() >= MAX_HEADERS {
            return Err(EslError::Protocol(format!("more than {MAX_HEADERS} header lines in one message")));
        }
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut msg = EslMessage { headers, body: Vec::new() };
    if let Some(len) = msg.header("Content-Length") {
        let len: usize =
            len.parse().map_err(|_| EslError::Protocol(format!("Content-Length {len:?} is not a number")))?;
        if len > MAX_BODY {
            return Err(EslError::Protocol(format!(
                "Content-Length {len} is larger than the {MAX_BODY} bytes accepted"
            )));
        }
        msg.body = vec![0; len];
        reader.read_exact(&mut msg.body).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                EslError::Protocol(format!("connection closed inside a {len}-byte body"))
            }
            _ => EslError::Io(e),
        })?;
    }
    Ok(Some(msg))
}

/// Decodes `%XX` escapes of an event-plain header value; anything that is
/// not a valid escape is kept as it is.
pub fn url_decode(value: &str) -> String {
    // Event headers escape with `%XX` only: a `+` is a plus sign.
    super::percent_decode(value, false)
}

/// An event, from a `text/event-plain` body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EslEvent {
    /// Url-decoded header values.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl EslEvent {
    /// Parses the body of a `Content-Type: text/event-plain` message.
    pub fn parse_plain(bytes: &[u8]) -> Result<EslEvent, EslError> {
        let text = String::from_utf8_lossy(bytes);
        let (head, rest) = match text.find("\n\n") {
            Some(i) => (&text[..i], &text[i + 2..]),
            None => (text.trim_end_matches('\n'), ""),
        };
        let mut headers = Vec::new();
        for line in head.lines() {
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(EslError::Protocol(format!("event header line without a colon: {line:?}")));
            };
            headers.push((name.trim().to_string(), url_decode(value.trim())));
        }
        let mut rest = rest;
        // switch_event_serialize writes `Content-Length: M` right after the
        // headers; tolerate it after the blank line as well.
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("Content-Length")) {
            if let Some(after) = rest.strip_prefix("Content-Length:") {
                if let Some((len, body)) = after.split_once("\n\n") {
                    headers.push(("Content-Length".into(), len.trim().to_string()));
                    rest = body;
                }
            }
        }
        let mut event = EslEvent { headers, body: String::new() };
        if let Some(len) = event.get("Content-Length") {
            let len: usize =
                len.parse().map_err(|_| EslError::Protocol(format!("event Content-Length {len:?} is not a number")))?;
            let body = rest.as_bytes();
            if body.len() < len {
                return Err(EslError::Protocol(format!(
                    "event body is {} bytes, its Content-Length says {len}",
                    body.len()
                )));
            }
            event.body = String::from_utf8_lossy(&body[..len]).into_owned();
        }
        if event.name().is_none() {
            return Err(EslError::Protocol("event without an Event-Name header".into()));
        }
        Ok(event)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn name(&self) -> Option<&str> {
        self.get("Event-Name")
    }

    pub fn subclass(&self) -> Option<&str> {
        self.get("Event-Subclass")
    }

    /// The channel the event is about.
    pub fn unique_id(&self) -> Option<&str> {
        self.get("Unique-ID").or_else(|| self.get("Channel-Call-UUID"))
    }

    /// What the event means for a call on a FreeSWITCH transport.
    pub fn classify(&self) -> FsEvent {
        let Some(uuid) = self.unique_id().map(str::to_string) else { return FsEvent::Other };
        match (self.name().unwrap_or(""), self.subclass()) {
            ("DTMF", _) => match self.get("DTMF-Digit").map(|d| d.chars().collect::<Vec<_>>()) {
                Some(d) if d.len() == 1 => FsEvent::Dtmf { uuid, digit: d[0] },
                _ => FsEvent::Other,
            },
            ("CUSTOM", Some("mod_audio_fork::play_audio" | "mod_audio_stream::play")) => {
                match super::audio_fork::play_event_file(&self.body) {
                    Ok(file) => FsEvent::PlayFile { uuid, file },
                    Err(e) => {
                        tracing::warn!(uuid, error = %e, "play event without a usable file");
                        FsEvent::Other
                    }
                }
            }
            ("PLAYBACK_STOP", _) => {
                FsEvent::PlaybackStop { uuid, file: self.get("Playback-File-Path").map(str::to_string) }
            }
            ("CHANNEL_HANGUP" | "CHANNEL_HANGUP_COMPLETE", _) => {
                FsEvent::Hangup { uuid, cause: self.get("Hangup-Cause").unwrap_or("UNKNOWN").to_string() }
            }
            _ => FsEvent::Other,
        }
    }
}

/// The events a FreeSWITCH call cares about.
#[derive(Debug, Clone, PartialEq)]
pub enum FsEvent {
    Dtmf {
        uuid: String,
        digit: char,
    },
    /// mod_audio_fork / mod_audio_stream wrote our prompt to this file:
    /// play it with [`EslClient::uuid_broadcast`].
    PlayFile {
        uuid: String,
        file: String,
    },
    /// A file stopped playing (finished or broken off).
    PlaybackStop {
        uuid: String,
        file: Option<String>,
    },
    Hangup {
        uuid: String,
        cause: String,
    },
    Other,
}

impl FsEvent {
    /// The channel the event is about.
    pub fn uuid(&self) -> Option<&str> {
        match self {
            FsEvent::Dtmf { uuid, .. }
            | FsEvent::PlayFile { uuid, .. }
            | FsEvent::PlaybackStop { uuid, .. }
            | FsEvent::Hangup { uuid, .. } => Some(uuid),
            FsEvent::Other => None,
        }
    }

    /// The call-machine side of the event, where there is one (playback
    /// events are for the server, which owns the playback bookkeeping).
    pub fn to_pbx_event(&self) -> Option<super::PbxEvent> {
        match self {
            FsEvent::Dtmf { digit, .. } => Some(super::PbxEvent::Dtmf(*digit)),
            FsEvent::Hangup { cause, .. } => {
                Some(super::PbxEvent::Hangup { reason: format!("FreeSWITCH hangup: {cause}") })
            }
            _ => None,
        }
    }
}

/// Events waiting for one call; beyond this they are dropped with a warning.
pub const CALL_EVENT_QUEUE: usize = 256;

type Routes = Arc<std::sync::Mutex<std::collections::HashMap<String, mpsc::Sender<FsEvent>>>>;

/// Hands the events of the one event-socket connection to the calls they
/// belong to, by channel UUID. Events of channels no call registered (other
/// calls on the same FreeSWITCH) are dropped.
#[derive(Clone, Default)]
pub struct EventRouter {
    routes: Routes,
}

impl EventRouter {
    /// Starts routing the events of a connection; ends when it closes.
    pub fn spawn(mut events: mpsc::Receiver<EslEvent>) -> EventRouter {
        let router = EventRouter::default();
        let routes = router.routes.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let fs = event.classify();
                let Some(uuid) = fs.uuid().map(str::to_string) else { continue };
                let target = routes.lock().ok().and_then(|r| r.get(&uuid).cloned());
                if let Some(tx) = target {
                    if tx.try_send(fs).is_err() {
                        tracing::warn!(uuid, "call event queue full or closed; event dropped");
                    }
                }
            }
            // The connection is gone: dropping the senders ends every call's stream.
            if let Ok(mut r) = routes.lock() {
                r.clear();
            }
        });
        router
    }

    /// Events for channel `uuid` from now on, until the returned handle is dropped.
    /// `None` when a live call already has this uuid: a second media
    /// connection claiming a channel must not receive its keys or steer it.
    pub fn register(&self, uuid: &str) -> Option<CallEvents> {
        let (tx, rx) = mpsc::channel(CALL_EVENT_QUEUE);
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        if routes.get(uuid).is_some_and(|existing| !existing.is_closed()) {
            return None;
        }
        routes.insert(uuid.to_string(), tx);
        Some(CallEvents { rx, uuid: uuid.to_string(), routes: self.routes.clone() })
    }
}

/// One call's events; unregisters itself when dropped.
pub struct CallEvents {
    rx: mpsc::Receiver<FsEvent>,
    uuid: String,
    routes: Routes,
}

impl CallEvents {
    /// The next event; `None` once the event socket connection is gone.
    pub async fn recv(&mut self) -> Option<FsEvent> {
        self.rx.recv().await
    }
}

impl Drop for CallEvents {
    fn drop(&mut self) {
        if let Ok(mut r) = self.routes.lock() {
            r.remove(&self.uuid);
        }
    }
}

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

fn check_arg(what: &'static str, value: &str) -> Result<(), EslError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_framed_messages_with_and_without_body() {
        let wire = b"Content-Type: auth/request\n\nContent-Type: api/response\nContent-Length: 24\n\n-ERR No such channel!\n\n\nContent-Type: command/reply\r\nReply-Text: +OK accepted\r\n\r\n";
        let mut r = BufReader::new(&wire[..]);
        assert_eq!(read_message(&mut r).await.unwrap().unwrap().content_type(), "auth/request");
        let api = read_message(&mut r).await.unwrap().unwrap();
        assert_eq!(api.body_text(), "-ERR No such channel!\n\n\n");
        let reply = read_message(&mut r).await.unwrap().unwrap();
        assert_eq!(reply.header("reply-text"), Some("+OK accepted"));
        assert!(read_message(&mut r).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn truncated_and_oversized_frames_are_errors() {
        let mut r = BufReader::new(&b"Content-Type: api/response\nContent-Length: 10\n\nabc"[..]);
        assert!(read_message(&mut r).await.unwrap_err().to_string().contains("10-byte body"));
        let mut r = BufReader::new(&b"Content-Length: 999999999\n\n"[..]);
        assert!(read_message(&mut r).await.unwrap_err().to_string().contains("larger than"));
        let mut r = BufReader::new(&b"Content-Length: ten\n\n"[..]);
        assert!(read_message(&mut r).await.unwrap_err().to_string().contains("not a number"));
        let mut r = BufReader::new(&b"garbage line\n\n"[..]);
        assert!(read_message(&mut r).await.unwrap_err().to_string().contains("without a colon"));
        let long = vec![b'a'; MAX_LINE + 10];
        let mut r = BufReader::new(&long[..]);
        assert!(read_message(&mut r).await.is_err());
    }

    #[test]
    fn plain_events_are_url_decoded_and_classified() {
        let body = "Event-Name: DTMF\nUnique-ID: 0f1e2d3c-aaaa-bbbb-cccc-000000000001\nDTMF-Digit: %23\nCaller-Caller-ID-Name: Jane%20Doe\n\n";
        let ev = EslEvent::parse_plain(body.as_bytes()).unwrap();
        assert_eq!(ev.get("Caller-Caller-ID-Name"), Some("Jane Doe"));
        assert_eq!(ev.classify(), FsEvent::Dtmf { uuid: "0f1e2d3c-aaaa-bbbb-cccc-000000000001".into(), digit: '#' });

        let json = r#"{"audioContentType":"raw","sampleRate":8000,"file":"/tmp/u1_1.tmp.r8"}"#;
        let body = format!(
            "Event-Name: CUSTOM\nEvent-Subclass: mod_audio_fork%3A%3Aplay_audio\nUnique-ID: u1\nContent-Length: {}\n\n{json}",
            json.len()
        );
        let ev = EslEvent::parse_plain(body.as_bytes()).unwrap();
        assert_eq!(ev.classify(), FsEvent::PlayFile { uuid: "u1".into(), file: "/tmp/u1_1.tmp.r8".into() });

        let ev = EslEvent::parse_plain(b"Event-Name: CHANNEL_HANGUP\nUnique-ID: u1\nHangup-Cause: NORMAL_CLEARING\n\n")
            .unwrap();
        assert_eq!(ev.classify(), FsEvent::Hangup { uuid: "u1".into(), cause: "NORMAL_CLEARING".into() });
        assert!(EslEvent::parse_plain(b"Unique-ID: u1\n\n").is_err());
        let ev = EslEvent::parse_plain(b"Event-Name: CUSTOM\nUnique-ID: u1\n\nContent-Length: 2\n\n{}").unwrap();
        assert_eq!(ev.body, "{}");
        assert!(EslEvent::parse_plain(b"Event-Name: CUSTOM\nContent-Length: 50\n\nshort").is_err());
    }

    #[test]
    fn url_decode_keeps_broken_escapes() {
        assert_eq!(url_decode("a%20b%3a%zz%"), "a b:%zz%");
        assert_eq!(url_decode("%4"), "%4");
    }

    #[test]
    fn config_never_prints_the_password() {
        let c = EslConfig::new("127.0.0.1:8021", "ClueCon");
        assert!(!format!("{c:?}").contains("ClueCon"));
        assert_eq!(EslConfig::resolve("x:1", Some("pw".into())).unwrap().password, "pw");
    }

    #[tokio::test]
    async fn a_dropped_connection_fails_commands_fast_and_says_why() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            let (r, mut w) = sock.into_split();
            let mut r = BufReader::new(r);
            w.write_all(b"Content-Type: auth/request\n\n").await.unwrap();
            let mut auth = String::new();
            r.read_line(&mut auth).await.unwrap();
            assert_eq!(auth, "auth ClueCon\n");
            w.write_all(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n").await.unwrap();
            // FreeSWITCH stops: the connection closes.
        });
        let (client, mut events) = EslClient::connect(&EslConfig::new(addr, "ClueCon")).await.unwrap();
        assert!(events.recv().await.is_none(), "the event stream ends with the connection");
        assert_eq!(client.close_reason().as_deref(), Some("closed by FreeSWITCH"));
        let t0 = std::time::Instant::now();
        assert!(matches!(client.uuid_transfer("u1", "100", None).await, Err(EslError::Closed)));
        assert!(t0.elapsed() < Duration::from_secs(1), "no waiting for the command timeout");
    }

    #[test]
    fn arguments_with_whitespace_are_refused() {
        assert!(check_arg("extension", "1000\n\napi uuid_kill x").is_err());
        assert!(check_arg("extension", "").is_err());
        assert!(check_arg("extension", "1000").is_ok());
    }
}
