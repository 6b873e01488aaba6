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
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};
use tokio::sync::mpsc;

use super::transfer::{TransferControl, TransferFailed, TransferOrder, TransferStart};

mod client;
pub use client::{CurrentClient, EslClient};

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
    pub fn classify(&self) -> EslCallEvent {
        let Some(uuid) = self.unique_id().map(str::to_string) else { return EslCallEvent::Other };
        match (self.name().unwrap_or(""), self.subclass()) {
            ("DTMF", _) => match self.get("DTMF-Digit").map(|d| d.chars().collect::<Vec<_>>()) {
                Some(d) if d.len() == 1 => EslCallEvent::Dtmf { uuid, digit: d[0] },
                _ => EslCallEvent::Other,
            },
            ("CUSTOM", Some("mod_audio_fork::play_audio" | "mod_audio_stream::play")) => {
                match super::audio_fork::play_event_file(&self.body) {
                    Ok(file) => EslCallEvent::PlayFile { uuid, file },
                    Err(e) => {
                        tracing::warn!(uuid, error = %e, "play event without a usable file");
                        EslCallEvent::Other
                    }
                }
            }
            ("PLAYBACK_STOP", _) => {
                EslCallEvent::PlaybackStop { uuid, file: self.get("Playback-File-Path").map(str::to_string) }
            }
            ("CHANNEL_HANGUP" | "CHANNEL_HANGUP_COMPLETE", _) => {
                EslCallEvent::Hangup { uuid, cause: self.get("Hangup-Cause").unwrap_or("UNKNOWN").to_string() }
            }
            _ => EslCallEvent::Other,
        }
    }
}

/// The events a FreeSWITCH call cares about.
#[derive(Debug, Clone, PartialEq)]
pub enum EslCallEvent {
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

impl EslCallEvent {
    /// The channel the event is about.
    pub fn uuid(&self) -> Option<&str> {
        match self {
            EslCallEvent::Dtmf { uuid, .. }
            | EslCallEvent::PlayFile { uuid, .. }
            | EslCallEvent::PlaybackStop { uuid, .. }
            | EslCallEvent::Hangup { uuid, .. } => Some(uuid),
            EslCallEvent::Other => None,
        }
    }

    /// The call-machine side of the event, where there is one (playback
    /// events are for the server, which owns the playback bookkeeping).
    pub fn to_pbx_event(&self) -> Option<super::PbxEvent> {
        match self {
            EslCallEvent::Dtmf { digit, .. } => Some(super::PbxEvent::Dtmf(*digit)),
            EslCallEvent::Hangup { cause, .. } => {
                Some(super::PbxEvent::Hangup { reason: format!("FreeSWITCH hangup: {cause}") })
            }
            _ => None,
        }
    }
}

/// Events waiting for one call; beyond this they are dropped with a warning.
pub const CALL_EVENT_QUEUE: usize = 256;

type Routes = Arc<std::sync::Mutex<std::collections::HashMap<String, mpsc::Sender<EslCallEvent>>>>;

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
    rx: mpsc::Receiver<EslCallEvent>,
    uuid: String,
    routes: Routes,
}

impl CallEvents {
    /// The next event; `None` once the event socket connection is gone.
    pub async fn recv(&mut self) -> Option<EslCallEvent> {
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

/// The FreeSWITCH transfer of one call: collected variables go on the
/// channel for the agent (`hotline_<name>`), then `uuid_transfer` to the
/// extension, through whatever event-socket connection is up then.
pub struct EslTransfer {
    esl: CurrentClient,
    uuid: String,
    /// For all the commands together.
    timeout: Duration,
}

impl EslTransfer {
    pub fn new(esl: CurrentClient, uuid: &str, timeout: Duration) -> Self {
        EslTransfer { esl, uuid: uuid.to_string(), timeout }
    }
}

impl TransferControl for EslTransfer {
    fn start(&self, order: &TransferOrder) -> TransferStart {
        let (esl, uuid, timeout) = (self.esl.get(), self.uuid.clone(), self.timeout);
        let (extension, context, variables) = (order.extension.clone(), order.context.clone(), order.variables.clone());
        let outcome = async move {
            let work = async {
                for (k, v) in &variables {
                    esl.uuid_setvar(&uuid, &format!("hotline_{}", k.to_ascii_lowercase()), v).await?;
                }
                esl.uuid_transfer(&uuid, &extension, context.as_deref()).await
            };
            match tokio::time::timeout(timeout, work).await {
                Ok(r) => r.map(|()| "ok".to_string()).map_err(|e| TransferFailed(e.to_string())),
                Err(_) => {
                    Err(TransferFailed(format!("no answer from the event socket within {} ms", timeout.as_millis())))
                }
            }
        };
        TransferStart::Pending { method: "esl-uuid_transfer", outcome: Box::pin(outcome) }
    }
}

#[cfg(test)]
mod tests;
