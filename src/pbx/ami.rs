//! Asterisk Manager Interface client: just enough to move a caller to a
//! human (PROTOCOLS.md §1.9: `Redirect` of the caller leg, `BlindTransfer`
//! of the WebSocket channel, `Setvar`; for AudioSocket, which carries no
//! channel name, `Status` with `Variables:` to find the channel by the
//! variable holding the call's UUID, §3).
//!
//! Transfers are rare, so every use opens its own short session (connect,
//! login, actions, logoff) with a timeout on each step: no connection to
//! keep alive, no event stream to drain, and a restarted Asterisk needs no
//! reconnect logic. The secret is wrapped in [`Secret`], whose `Debug` and
//! `Display` never show it, and is never put in an error message.
use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

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

pub struct AmiSession {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    timeout: Duration,
    next_id: u64,
    prefix: String,
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
        };
        let banner = session.read_line("banner").await?;
        if !banner.starts_with("Asterisk Call Manager") {
            return Err(AmiError::Protocol(format!("unexpected banner {:?}", truncate(&banner, 60))));
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
                continue; // someone else's event
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

    /// The channel whose variable `name` has `value`, from `Status`.
    pub async fn find_channel_by_variable(&mut self, name: &str, value: &str) -> Result<Option<String>, AmiError> {
        let events = self.run_list(&AmiAction::status_with_variables(&[name]), "StatusComplete").await?;
        Ok(channel_with_variable(&events, name, value))
    }

    /// Polite goodbye; errors are irrelevant at this point.
    pub async fn logoff(mut self) {
        let action = AmiAction { name: "Logoff".into(), headers: Vec::new() };
        let _ = self.send(&action).await;
    }

    async fn read_line(&mut self, what: &str) -> Result<String, AmiError> {
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
        tokio::time::timeout(self.timeout, read)
            .await
            .map_err(|_| AmiError::Timeout { what: what.to_string(), ms: self.timeout.as_millis() })??;
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    async fn read_block(&mut self, what: &str) -> Result<AmiMessage, AmiError> {
        let mut msg = AmiMessage::default();
        loop {
            let line = self.read_line(what).await?;
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

/// In `Status` events, the `Channel` of the one that has a line
/// `Variable: <name>=<value>` (a channel can carry several such lines).
pub fn channel_with_variable(events: &[AmiMessage], name: &str, value: &str) -> Option<String> {
    events
        .iter()
        .filter(|e| e.get("Event").is_some_and(|n| n.eq_ignore_ascii_case("Status")))
        .find(|e| {
            e.headers.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("Variable")
                    && v.split_once('=').is_some_and(|(n, val)| n.trim() == name && val.trim() == value)
            })
        })
        .and_then(|e| e.get("Channel"))
        .map(str::to_string)
}

/// The AMI side of an AudioSocket transfer: in one session, find the
/// caller's channel by the variable holding the call's UUID, set the
/// collected variables on it, and `Redirect` it. Returns the channel.
pub async fn redirect_by_variable(
    cfg: &AmiConfig,
    (name, value): (&str, &str),
    context: &str,
    exten: &str,
    variables: &[(String, String)],
) -> Result<String, AmiError> {
    let mut session = AmiSession::connect(cfg).await?;
    let result = async {
        let channel = session.find_channel_by_variable(name, value).await?.ok_or_else(|| AmiError::ActionFailed {
            action: "Status".into(),
            message: format!("no channel has {name}={value} (set it in the dialplan before AudioSocket)"),
        })?;
        for (k, v) in variables {
            session.run(&AmiAction::setvar(&channel, k, v)).await?;
        }
        session.run(&AmiAction::redirect(&channel, context, exten)).await?;
        Ok(channel)
    }
    .await;
    session.logoff().await;
    result
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(lines: &[(&str, &str)]) -> AmiMessage {
        AmiMessage { headers: lines.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    #[test]
    fn the_channel_is_found_by_its_variable_line() {
        let events = vec![
            block(&[("Event", "Status"), ("Channel", "PJSIP/100-00000001"), ("Variable", "AS_ID=")]),
            block(&[("Event", "Status"), ("Channel", "PJSIP/200-00000002"), ("Variable", "OTHER=x"), ("Variable", "AS_ID=4040-1")]),
            block(&[("Event", "Status"), ("Channel", "PJSIP/300-00000003"), ("Variable", "AS_ID=4040-12")]),
        ];
        assert_eq!(channel_with_variable(&events, "AS_ID", "4040-1").as_deref(), Some("PJSIP/200-00000002"));
        assert_eq!(channel_with_variable(&events, "AS_ID", "4040-12").as_deref(), Some("PJSIP/300-00000003"));
        assert_eq!(channel_with_variable(&events, "AS_ID", "4040"), None, "whole values only");
        assert_eq!(channel_with_variable(&events, "OTHER", "4040-1"), None);
    }

    #[test]
    fn status_asks_for_the_variables() {
        let a = AmiAction::status_with_variables(&["AS_ID"]);
        assert_eq!(a.name, "Status");
        assert_eq!(a.headers, vec![("Variables".to_string(), "AS_ID".to_string())]);
    }
}
