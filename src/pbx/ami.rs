//! Asterisk Manager Interface client: just enough to move a caller to a
//! human (PROTOCOLS.md §1.9: `Redirect` of the caller leg, `BlindTransfer`
//! of the WebSocket channel, `Setvar`; for AudioSocket, which carries no
//! channel name, `Status` with `Variables:` to find the channel by the
//! variable holding the call's UUID, §3).
//!
//! Transfers are rare, so every use opens its own short session (connect,
//! login, actions, logoff) with a timeout on each step: no connection to
//! keep alive, and a restarted Asterisk needs no reconnect logic. Events
//! are off except right around a transfer: Asterisk accepts a `Redirect` to
//! a context or extension that does not exist and then hangs the caller up
//! ("sent to invalid extension but no invalid handler"), so the answer
//! alone proves nothing; the caller's `Newexten` at the target does
//! ([`Landing`]). [`AmiSession::show_dialplan`] checks a target before any
//! caller is sent there. The secret is wrapped in [`Secret`], whose `Debug`
//! and `Display` never show it, and is never put in an error message.
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

mod transfer;
pub use transfer::{landing_of, transfer, AmiTransfer, Landing, TransferLeg, TransferRequest, Transferred};

/// A password that cannot be logged by accident.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone)]
pub struct AmiConfig {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub secret: Secret,
    /// Limit for each step (connect, login, one action).
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum AmiError {
    #[error("cannot connect to AMI at {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("AMI login as {username:?} refused: {message}")]
    LoginRefused { username: String, message: String },
    #[error("AMI {action} failed: {message}")]
    ActionFailed { action: String, message: String },
    #[error("AMI did not answer {what} within {ms} ms")]
    Timeout { what: String, ms: u128 },
    #[error("AMI connection: {0}")]
    Io(String),
    #[error("AMI protocol: {0}")]
    Protocol(String),
    #[error("AMI {field} value contains a line break")]
    BadValue { field: String },
}

/// One response block (`Response: Success`, `Message: ...`, ...).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AmiMessage {
    pub headers: Vec<(String, String)>,
}

impl AmiMessage {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }
    pub fn is_success(&self) -> bool {
        self.get("Response").is_some_and(|r| r.eq_ignore_ascii_case("Success"))
    }
    pub fn message(&self) -> &str {
        self.get("Message").unwrap_or("")
    }
}

/// An action to send: name and header lines (ActionID is added).
#[derive(Debug, Clone, PartialEq)]
pub struct AmiAction {
    pub name: String,
    pub headers: Vec<(String, String)>,
}

impl AmiAction {
    /// Moves `channel` (the caller leg running `Dial`) to context/exten,
    /// priority 1. Verified to land the caller at the target.
    pub fn redirect(channel: &str, context: &str, exten: &str) -> Self {
        AmiAction {
            name: "Redirect".into(),
            headers: vec![
                ("Channel".into(), channel.into()),
                ("Context".into(), context.into()),
                ("Exten".into(), exten.into()),
                ("Priority".into(), "1".into()),
            ],
        }
    }

    /// Transfers the peer of `channel` (our WebSocket channel) to
    /// context/exten; used when the caller leg's name is unknown.
    pub fn blind_transfer(channel: &str, context: &str, exten: &str) -> Self {
        AmiAction {
            name: "BlindTransfer".into(),
            headers: vec![
                ("Channel".into(), channel.into()),
                ("Context".into(), context.into()),
                ("Exten".into(), exten.into()),
            ],
        }
    }

    /// Lists the channels, each with the values of `variables`
    /// (`Variable: NAME=value` lines of its `Status` event).
    pub fn status_with_variables(variables: &[&str]) -> Self {
        AmiAction { name: "Status".into(), headers: vec![("Variables".into(), variables.join(","))] }
    }

    pub fn setvar(channel: &str, variable: &str, value: &str) -> Self {
        AmiAction {
            name: "Setvar".into(),
            headers: vec![
                ("Channel".into(), channel.into()),
                ("Variable".into(), variable.into()),
                ("Value".into(), value.into()),
            ],
        }
    }
}

/// Lines longer than this, or blocks with more headers, are not AMI.
const MAX_LINE_BYTES: usize = 8 * 1024;
const MAX_HEADERS: usize = 256;
/// Unsolicited events we skip while waiting for one response.
const MAX_SKIPPED_BLOCKS: usize = 1000;
/// Most events of one list response (`Status` on a busy PBX lists every
/// channel); beyond this the answer is refused rather than read forever.
const MAX_LIST_EVENTS: usize = 20_000;
/// Events kept while waiting for a response once events are on (they may
/// arrive before the response they follow from); the oldest go first.
const MAX_KEPT_EVENTS: usize = 1000;
/// After Asterisk accepted a transfer, how long to watch for the caller at
/// the target. A real Asterisk reports it within milliseconds.
pub const LANDING_WAIT: Duration = Duration::from_secs(2);
/// The event classes a transfer watches: `Hangup` and `BlindTransfer` are
/// `call`, `Newexten` is `dialplan` (manager.conf `read = call,dialplan`).
const TRANSFER_EVENTS: &str = "call,dialplan";

pub struct AmiSession {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    timeout: Duration,
    next_id: u64,
    prefix: String,
    /// Set once events are turned on: events read while waiting for a
    /// response are kept here for [`AmiSession::next_event`].
    keep_events: bool,
    events: VecDeque<AmiMessage>,
}

impl AmiSession {
    /// Connects, reads the banner and logs in (with events off, so the
    /// session only carries our own responses).
    pub async fn connect(cfg: &AmiConfig) -> Result<Self, AmiError> {
        let addr = format!("{}:{}", cfg.host, cfg.port);
        let stream = tokio::time::timeout(cfg.timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| AmiError::Timeout { what: format!("connect to {addr}"), ms: cfg.timeout.as_millis() })?
            .map_err(|e| AmiError::Connect { addr: addr.clone(), reason: e.to_string() })?;
        let _ = stream.set_nodelay(true);
        let (r, w) = stream.into_split();
        let mut session = AmiSession {
            reader: BufReader::new(r),
            writer: w,
            timeout: cfg.timeout,
            next_id: 1,
            prefix: format!("hotline-{}", std::process::id()),
            keep_events: false,
            events: VecDeque::new(),
        };
        let banner = session.read_line("banner").await?;
        if !banner.starts_with("Asterisk Call Manager") {
            return Err(AmiError::Protocol(format!("unexpected banner {:?}", super::excerpt(&banner, 60))));
        }
        let login = AmiAction {
            name: "Login".into(),
            headers: vec![
                ("Username".into(), cfg.username.clone()),
                ("Secret".into(), cfg.secret.expose().to_string()),
                ("Events".into(), "off".into()),
            ],
        };
        let resp = session.send(&login).await?;
        if !resp.is_success() {
            return Err(AmiError::LoginRefused { username: cfg.username.clone(), message: resp.message().to_string() });
        }
        Ok(session)
    }

    /// Sends one action and waits for its response (matched by ActionID).
    pub async fn send(&mut self, action: &AmiAction) -> Result<AmiMessage, AmiError> {
        for (k, v) in &action.headers {
            if k.contains(['\r', '\n']) || v.contains(['\r', '\n']) {
                return Err(AmiError::BadValue { field: k.clone() });
            }
        }
        let id = format!("{}-{}", self.prefix, self.next_id);
        self.next_id += 1;
        let mut block = format!("Action: {}\r\nActionID: {id}\r\n", action.name);
        for (k, v) in &action.headers {
            block.push_str(k);
            block.push_str(": ");
            block.push_str(v);
            block.push_str("\r\n");
        }
        block.push_str("\r\n");
        let what = format!("{} write", action.name);
        tokio::time::timeout(self.timeout, self.writer.write_all(block.as_bytes()))
            .await
            .map_err(|_| AmiError::Timeout { what, ms: self.timeout.as_millis() })?
            .map_err(|e| AmiError::Io(e.to_string()))?;
        for _ in 0..MAX_SKIPPED_BLOCKS {
            let msg = self.read_block(&action.name).await?;
            let matches_id = msg.get("ActionID") == Some(id.as_str());
            if msg.get("Response").is_some() && (matches_id || msg.get("ActionID").is_none()) {
                return Ok(msg);
            }
            self.keep(msg);
        }
        Err(AmiError::Protocol(format!("no response to {} among {MAX_SKIPPED_BLOCKS} messages", action.name)))
    }

    /// Sends an action and turns `Response: Error` into an error.
    pub async fn run(&mut self, action: &AmiAction) -> Result<AmiMessage, AmiError> {
        let resp = self.send(action).await?;
        if resp.is_success() {
            Ok(resp)
        } else {
            Err(AmiError::ActionFailed { action: action.name.clone(), message: resp.message().to_string() })
        }
    }

    /// Runs an action whose answer is a list (`Response: Success`, events
    /// with its ActionID, then the `<Name>Complete` event) and returns the
    /// events of the list.
    pub async fn run_list(&mut self, action: &AmiAction, complete: &str) -> Result<Vec<AmiMessage>, AmiError> {
        let resp = self.run(action).await?;
        let Some(id) = resp.get("ActionID").map(str::to_string) else {
            return Err(AmiError::Protocol(format!("{} response without an ActionID", action.name)));
        };
        let mut items = Vec::new();
        for _ in 0..MAX_LIST_EVENTS + MAX_SKIPPED_BLOCKS {
            let msg = self.read_block(&action.name).await?;
            if msg.get("ActionID") != Some(id.as_str()) {
                self.keep(msg); // someone else's event
                continue;
            }
            if msg.get("Event").is_some_and(|e| e.eq_ignore_ascii_case(complete)) {
                return Ok(items);
            }
            if items.len() >= MAX_LIST_EVENTS {
                break;
            }
            items.push(msg);
        }
        Err(AmiError::Protocol(format!("{} listed more than {MAX_LIST_EVENTS} items", action.name)))
    }

    /// The caller's channel among those whose variable `name` has `value`,
    /// from `Status` (see [`caller_channel_with_variable`]).
    pub async fn find_channel_by_variable(&mut self, name: &str, value: &str) -> Result<Option<String>, AmiError> {
        let events = self.run_list(&AmiAction::status_with_variables(&[name]), "StatusComplete").await?;
        Ok(caller_channel_with_variable(&events, name, value))
    }

    /// Whether `exten` exists in `context` (a pattern such as `_X.` counts,
    /// as do included contexts), by `ShowDialPlan` (pbx.c
    /// `manager_show_dialplan`): `Response: Success`, `EventList: start`,
    /// one `Event: ListDialplan` per priority, `Event: ShowDialPlanComplete`;
    /// or `Response: Error` with `Message: Did not find context <c>` /
    /// `Did not find extension <e>@<c>`. That error can also follow a
    /// `Success` and some list items (an ignore pattern of the context
    /// matched), so the list is read until one of the two ends it.
    pub async fn show_dialplan(&mut self, context: &str, exten: &str) -> Result<TargetStatus, AmiError> {
        let action = AmiAction {
            name: "ShowDialPlan".into(),
            headers: vec![("Context".into(), context.into()), ("Extension".into(), exten.into())],
        };
        let first = self.send(&action).await?;
        if !first.is_success() {
            return dialplan_error(first.message());
        }
        let Some(id) = first.get("ActionID").map(str::to_string) else {
            return Err(AmiError::Protocol("ShowDialPlan response without an ActionID".into()));
        };
        let mut priorities = 0usize;
        for _ in 0..MAX_LIST_EVENTS + MAX_SKIPPED_BLOCKS {
            let msg = self.read_block("ShowDialPlan").await?;
            if msg.get("ActionID") != Some(id.as_str()) {
                self.keep(msg);
                continue;
            }
            if msg.get("Response").is_some() && !msg.is_success() {
                return dialplan_error(msg.message());
            }
            match msg.get("Event") {
                Some(e) if e.eq_ignore_ascii_case("ShowDialPlanComplete") => {
                    return Ok(if priorities > 0 {
                        TargetStatus::Exists
                    } else {
                        TargetStatus::Missing("no priorities listed".into())
                    });
                }
                Some(e) if e.eq_ignore_ascii_case("ListDialplan") && msg.get("Priority").is_some() => priorities += 1,
                _ => {}
            }
        }
        Err(AmiError::Protocol(format!("ShowDialPlan listed more than {MAX_LIST_EVENTS} items")))
    }

    /// Turns on the events a transfer watches; from now on events read
    /// while waiting for responses are kept for [`AmiSession::next_event`].
    /// Without permission to read them (manager.conf `read`) none come,
    /// and a landing stays unconfirmed.
    pub async fn watch_transfer_events(&mut self) -> Result<(), AmiError> {
        self.keep_events = true;
        let action = AmiAction { name: "Events".into(), headers: vec![("EventMask".into(), TRANSFER_EVENTS.into())] };
        self.run(&action).await.map(|_| ())
    }

    /// The next event, kept or new, or None at `deadline`.
    pub async fn next_event(&mut self, deadline: tokio::time::Instant) -> Result<Option<AmiMessage>, AmiError> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(Some(e));
            }
            let Ok(msg) = tokio::time::timeout_at(deadline, self.read_block_untimed()).await else { return Ok(None) };
            let msg = msg?;
            if msg.get("Event").is_some() {
                return Ok(Some(msg));
            }
        }
    }

    /// Watches the events (turned on before the transfer) until `channel`
    /// shows up in `context`, hangs up, or `deadline` passes.
    pub async fn wait_landing(
        &mut self,
        channel: &str,
        context: &str,
        exten: &str,
        deadline: tokio::time::Instant,
    ) -> Result<Landing, AmiError> {
        while let Some(event) = self.next_event(deadline).await? {
            if let Some(landing) = landing_of(&event, channel, context, exten) {
                return Ok(landing);
            }
        }
        Ok(Landing::Unconfirmed)
    }

    /// After a `BlindTransfer` of `own_channel`: the channel that was moved
    /// (its peer, from the `BlindTransfer` event), or None at `deadline`.
    pub async fn wait_blind_transferee(
        &mut self,
        own_channel: &str,
        deadline: tokio::time::Instant,
    ) -> Result<Option<String>, AmiError> {
        while let Some(event) = self.next_event(deadline).await? {
            let is_ours = event.get("Event").is_some_and(|e| e.eq_ignore_ascii_case("BlindTransfer"))
                && event.get("TransfererChannel") == Some(own_channel);
            if is_ours {
                return Ok(event.get("TransfereeChannel").map(str::to_string));
            }
        }
        Ok(None)
    }

    fn keep(&mut self, msg: AmiMessage) {
        if !self.keep_events || msg.get("Event").is_none() {
            return;
        }
        if self.events.len() >= MAX_KEPT_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(msg);
    }

    /// Polite goodbye; errors are irrelevant at this point.
    pub async fn logoff(mut self) {
        let action = AmiAction { name: "Logoff".into(), headers: Vec::new() };
        let _ = self.send(&action).await;
    }

    async fn read_line(&mut self, what: &str) -> Result<String, AmiError> {
        tokio::time::timeout(self.timeout, self.read_line_untimed(what))
            .await
            .map_err(|_| AmiError::Timeout { what: what.to_string(), ms: self.timeout.as_millis() })?
    }

    async fn read_line_untimed(&mut self, what: &str) -> Result<String, AmiError> {
        let mut buf = Vec::new();
        let read = async {
            loop {
                let available = self.reader.fill_buf().await.map_err(|e| AmiError::Io(e.to_string()))?;
                if available.is_empty() {
                    return Err(AmiError::Io(format!("connection closed while waiting for {what}")));
                }
                if let Some(pos) = available.iter().position(|&b| b == b'\n') {
                    buf.extend_from_slice(&available[..pos]);
                    self.reader.consume(pos + 1);
                    break;
                }
                let n = available.len();
                buf.extend_from_slice(available);
                self.reader.consume(n);
                if buf.len() > MAX_LINE_BYTES {
                    return Err(AmiError::Protocol(format!("line longer than {MAX_LINE_BYTES} bytes")));
                }
            }
            if buf.len() > MAX_LINE_BYTES {
                return Err(AmiError::Protocol(format!("line longer than {MAX_LINE_BYTES} bytes")));
            }
            Ok(())
        };
        read.await?;
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    async fn read_block(&mut self, what: &str) -> Result<AmiMessage, AmiError> {
        tokio::time::timeout(self.timeout, self.read_block_untimed())
            .await
            .map_err(|_| AmiError::Timeout { what: what.to_string(), ms: self.timeout.as_millis() })?
    }

    /// One block, however long it takes (callers bound the wait).
    async fn read_block_untimed(&mut self) -> Result<AmiMessage, AmiError> {
        let mut msg = AmiMessage::default();
        loop {
            let line = self.read_line_untimed("a message").await?;
            if line.is_empty() {
                if msg.headers.is_empty() {
                    continue; // stray blank line between blocks
                }
                return Ok(msg);
            }
            if msg.headers.len() >= MAX_HEADERS {
                return Err(AmiError::Protocol(format!("message with more than {MAX_HEADERS} lines")));
            }
            match line.split_once(':') {
                Some((k, v)) => msg.headers.push((k.trim().to_string(), v.trim().to_string())),
                // Command output lines (Action: Command) have no colon.
                None => msg.headers.push((String::new(), line)),
            }
        }
    }
}

/// Connects, runs `actions` in order (stopping at the first failure) and
/// logs off. Returns the responses.
pub async fn run_actions(cfg: &AmiConfig, actions: &[AmiAction]) -> Result<Vec<AmiMessage>, AmiError> {
    let mut session = AmiSession::connect(cfg).await?;
    let mut out = Vec::with_capacity(actions.len());
    for action in actions {
        match session.run(action).await {
            Ok(r) => out.push(r),
            Err(e) => {
                session.logoff().await;
                return Err(e);
            }
        }
    }
    session.logoff().await;
    Ok(out)
}

/// In `Status` events, the caller's channel among those with a line
/// `Variable: <name>=<value>` (a channel can carry several such lines).
/// With `Dial(AudioSocket/...)` and the variable set inheritable
/// (`__AS_ID`), the AudioSocket channel carries it too, and may come first:
/// redirecting it would move hotline's own leg, not the caller. So channels
/// named `AudioSocket/...` never count.
pub fn caller_channel_with_variable(events: &[AmiMessage], name: &str, value: &str) -> Option<String> {
    events
        .iter()
        .filter(|e| e.get("Event").is_some_and(|n| n.eq_ignore_ascii_case("Status")))
        .filter(|e| e.get("Channel").is_some_and(|c| !is_audiosocket_channel(c)))
        .find(|e| {
            e.headers.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("Variable")
                    && v.split_once('=').is_some_and(|(n, val)| n.trim() == name && val.trim() == value)
            })
        })
        .and_then(|e| e.get("Channel"))
        .map(str::to_string)
}

/// Channels of Asterisk's AudioSocket channel driver are `AudioSocket/<host:port>-<n>`.
fn is_audiosocket_channel(name: &str) -> bool {
    name.get(..12).is_some_and(|t| t.eq_ignore_ascii_case("AudioSocket/"))
}

/// Whether a transfer target exists in the Asterisk dialplan.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetStatus {
    Exists,
    /// Asterisk's reason, e.g. `Did not find context billing-queue`.
    Missing(String),
}

/// `Response: Error` to ShowDialPlan: a missing target is "Did not find ...";
/// anything else (`Permission denied`) is Asterisk refusing to say.
fn dialplan_error(message: &str) -> Result<TargetStatus, AmiError> {
    if message.starts_with("Did not find") {
        Ok(TargetStatus::Missing(message.to_string()))
    } else {
        Err(AmiError::ActionFailed { action: "ShowDialPlan".into(), message: message.to_string() })
    }
}

/// Checks every target in one session; one answer per target, in order.
pub async fn check_targets(cfg: &AmiConfig, targets: &[(String, String)]) -> Result<Vec<TargetStatus>, AmiError> {
    let mut session = AmiSession::connect(cfg).await?;
    let mut out = Vec::with_capacity(targets.len());
    for (context, exten) in targets {
        match session.show_dialplan(context, exten).await {
            Ok(s) => out.push(s),
            Err(e) => {
                session.logoff().await;
                return Err(e);
            }
        }
    }
    session.logoff().await;
    Ok(out)
}

#[cfg(test)]
mod tests;
