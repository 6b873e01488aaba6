//! The HTTP side of the listener: reading a request head within a deadline,
//! the websocket upgrade answer, basic auth, plain answers, and the
//! transfer-decision endpoint of the no-AMI transfer method.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::BasicAuth;
use crate::pbx::ami::Secret;

/// Request heads longer than this are refused (Asterisk's is ~250 bytes).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Header lines in a request head; more are refused.
pub const MAX_HEADERS: usize = 64;
/// A client must send its whole request head within this time of
/// connecting; PBXs send it at once.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// The request line and headers.
#[derive(Debug)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    /// HTTP/1.x minor version.
    pub version: u8,
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn is_websocket_upgrade(&self) -> bool {
        self.header("Upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// A query parameter, percent-decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        crate::pbx::asterisk_ws::parse_query(&self.target).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// Why no request head could be read.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    TimedOut,
    /// The client closed (or reset) before the head was complete.
    Closed,
    TooLarge,
    /// Not HTTP/1.x; the parser's reason.
    Malformed(String),
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::TimedOut => write!(f, "no complete request head within {} s", HEAD_TIMEOUT.as_secs()),
            HeadError::Closed => f.write_str("connection closed before a complete request head"),
            HeadError::TooLarge => {
                write!(f, "request head larger than {MAX_HEAD_BYTES} bytes or {MAX_HEADERS} headers")
            }
            HeadError::Malformed(why) => write!(f, "malformed request head: {why}"),
        }
    }
}

/// Reads a request head (CRLF or bare LF line ends) until `deadline`.
/// Returns it with the bytes that followed it (a client may send its first
/// websocket frame right behind the head). Reading, not peeking: a read
/// waits for new bytes and sees the client's close, so a stalled or
/// vanished client costs neither CPU nor a socket past the deadline.
pub async fn read_head(
    stream: &mut TcpStream,
    deadline: tokio::time::Instant,
) -> Result<(RequestHead, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let room = (MAX_HEAD_BYTES - buf.len()).min(chunk.len());
        let n = match tokio::time::timeout_at(deadline, stream.read(&mut chunk[..room])).await {
            Err(_) => return Err(HeadError::TimedOut),
            Ok(Ok(0)) | Ok(Err(_)) => return Err(HeadError::Closed),
            Ok(Ok(n)) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some((head, len)) = parse_head(&buf)? {
            return Ok((head, buf.split_off(len)));
        }
        if buf.len() >= MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
    }
}

/// The head and its length, `None` while incomplete.
pub(crate) fn parse_head(bytes: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(bytes) {
        Ok(httparse::Status::Partial) => return Ok(None),
        Ok(httparse::Status::Complete(len)) => len,
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    let head = RequestHead {
        method: req.method.unwrap_or_default().to_string(),
        target: req.path.unwrap_or_default().to_string(),
        version: req.version.unwrap_or(1),
        headers: req
            .headers
            .iter()
            .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).trim().to_string()))
            .collect(),
    };
    Ok(Some((head, len)))
}

/// The `101 Switching Protocols` answer to a websocket upgrade, or the
/// status line and extra headers to refuse it with. Written by hand so it
/// is exactly what Asterisk accepts (PROTOCOLS.md §1.3): `Connection:
/// Upgrade`, the subprotocol only when the client offered one, and no
/// extensions (compression offers are declined by leaving them out).
pub fn upgrade_answer(head: &RequestHead, subprotocol: Option<&str>) -> Result<String, (&'static str, &'static str)> {
    const BAD: &str = "400 Bad Request";
    let connection_upgrade =
        head.header("Connection").is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")));
    if head.method != "GET" || head.version != 1 || !connection_upgrade {
        return Err((BAD, ""));
    }
    if head.header("Sec-WebSocket-Version").map(str::trim) != Some("13") {
        return Err(("426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n"));
    }
    let Some(key) = head.header("Sec-WebSocket-Key").filter(|k| !k.is_empty()) else { return Err((BAD, "")) };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let protocol = match (subprotocol, head.header("Sec-WebSocket-Protocol")) {
        (Some(p), Some(_)) => format!("Sec-WebSocket-Protocol: {p}\r\n"),
        _ => String::new(),
    };
    Ok(format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{protocol}\r\n"
    ))
}

/// Checks `Authorization: Basic ...` against the configured user and
/// password in constant time (for equal lengths).
pub fn authorized(auth: Option<&BasicAuth>, header: Option<&str>) -> bool {
    let Some(auth) = auth else { return true };
    let Some(value) = header else { return false };
    let Some(token) = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic ")) else { return false };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(token.trim()) else { return false };
    let expected = format!("{}:{}", auth.username, auth.password.expose());
    bool::from(decoded.as_slice().ct_eq(expected.as_bytes()))
}

/// Writes a complete small HTTP answer and closes.
pub async fn respond(mut stream: TcpStream, status: &str, extra_headers: &str, body: &str) {
    // Consume whatever request bytes are there so the close is clean.
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_millis(20), stream.read(&mut sink)).await;
    let msg = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stream.write_all(msg.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Transfer targets waiting for the Asterisk dialplan to fetch them (no-AMI
/// method): key = caller leg uniqueid or our channel id. Each is bound to
/// the call's token (the dial string's `decision_token`; for AudioSocket the
/// UUID the dialplan made), so only that call's dialplan can fetch it: a
/// request with another token gets nothing and leaves it in place. Bounded
/// and short-lived: the dialplan asks right after the call hangs up.
pub struct Decisions {
    map: Mutex<HashMap<String, Decision>>,
}

#[derive(Clone)]
struct Decision {
    target: String,
    token: Secret,
    at: Instant,
}

/// The query parameter of the dial string (`v()`) and of the decision
/// request that carries the call's token.
pub const DECISION_TOKEN: &str = "decision_token";
pub const MAX_DECISIONS: usize = 1024;
pub const DECISION_TTL: Duration = Duration::from_secs(120);

impl Default for Decisions {
    fn default() -> Self {
        Decisions { map: Mutex::new(HashMap::new()) }
    }
}

impl Decisions {
    pub fn put(&self, keys: &[&str], token: &Secret, target: &str) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        m.retain(|_, d| now.duration_since(d.at) < DECISION_TTL);
        let decision = Decision { target: target.to_string(), token: token.clone(), at: now };
        for k in keys.iter().filter(|k| !k.is_empty()) {
            if m.len() >= MAX_DECISIONS {
                // Oldest out: a dialplan that never asks must not grow this.
                if let Some(oldest) = m.iter().min_by_key(|(_, d)| d.at).map(|(k, _)| k.clone()) {
                    m.remove(&oldest);
                }
            }
            m.insert(k.to_string(), decision.clone());
        }
    }

    /// The target for `key` if `token` is the call's, once (all keys of
    /// that decision are removed). A wrong token takes nothing.
    pub fn take(&self, key: &str, token: &str) -> Option<String> {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let d = m.get(key)?;
        if !bool::from(d.token.expose().as_bytes().ct_eq(token.as_bytes())) {
            return None;
        }
        let d = m.remove(key)?;
        m.retain(|_, other| !(other.at == d.at && other.target == d.target && other.token == d.token));
        (d.at.elapsed() < DECISION_TTL).then_some(d.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pbx::ami::Secret;

    #[test]
    fn basic_auth_accepts_only_the_configured_pair() {
        let auth = BasicAuth { username: "asterisk".into(), password: Secret::new("pw") };
        let enc = |s: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(s));
        assert!(authorized(Some(&auth), Some(&enc("asterisk:pw"))));
        assert!(!authorized(Some(&auth), Some(&enc("asterisk:pW"))));
        assert!(!authorized(Some(&auth), Some(&enc("asterisk:pw2"))));
        assert!(!authorized(Some(&auth), Some("Basic !!!")));
        assert!(!authorized(Some(&auth), None));
        assert!(authorized(None, None));
    }

    #[test]
    fn decisions_are_taken_once_by_any_key_and_only_with_the_calls_token() {
        let d = Decisions::default();
        let token = Secret::new("f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
        d.put(&["1795449971.3", "1795449971.5"], &token, "agents,101");
        assert_eq!(d.take("1795449971.5", ""), None, "no token");
        assert_eq!(d.take("1795449971.5", "f81d4fae-7dec-11d0-a765-00a0c91e6bf7"), None, "wrong token");
        assert_eq!(
            d.take("1795449971.5", token.expose()).as_deref(),
            Some("agents,101"),
            "still there for the right one"
        );
        assert_eq!(d.take("1795449971.3", token.expose()), None, "handed out once");
        for i in 0..(MAX_DECISIONS + 10) {
            d.put(&[&i.to_string()], &token, "x,1");
        }
        assert!(d.map.lock().unwrap().len() <= MAX_DECISIONS);
    }

    #[test]
    fn heads_parse_with_crlf_or_bare_lf_and_report_partial_ones() {
        let (h, len) =
            parse_head(b"GET /call?dialplan=x HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nrest")
                .unwrap()
                .unwrap();
        assert!(h.is_websocket_upgrade());
        assert_eq!((h.path(), h.query("dialplan").as_deref(), len), ("/call", Some("x"), 74));
        let (h, _) = parse_head(b"GET /health HTTP/1.1\nHost: x\n\n").unwrap().unwrap();
        assert_eq!((h.method.as_str(), h.header("host")), ("GET", Some("x")));
        assert!(parse_head(b"GET /health HTTP/1.1\nHost: x\n").unwrap().is_none(), "no blank line yet");
        assert!(matches!(parse_head(b"garbage\r\n\r\n"), Err(HeadError::Malformed(_))));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(parse_head(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()).err(), Some(HeadError::TooLarge));
    }

    #[test]
    fn the_upgrade_answer_is_what_asterisk_accepts() {
        let head = |extra: &str| {
            let text = format!("GET /call HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n");
            parse_head(text.as_bytes()).unwrap().unwrap().0
        };
        let answer = upgrade_answer(&head("Sec-WebSocket-Protocol: media\r\n"), Some("media")).unwrap();
        assert_eq!(
            answer,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: media\r\n\r\n"
        );
        let plain = upgrade_answer(&head("Sec-WebSocket-Extensions: permessage-deflate\r\n"), Some("media")).unwrap();
        assert!(!plain.contains("Sec-WebSocket-Protocol") && !plain.contains("Extensions"), "{plain}");
        let old = parse_head(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 8\r\n\r\n");
        assert_eq!(upgrade_answer(&old.unwrap().unwrap().0, None).unwrap_err().0, "426 Upgrade Required");
    }
}
