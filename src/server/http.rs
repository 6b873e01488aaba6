//! The HTTP side of the listener: looking at a request before deciding what
//! it is, basic auth, plain answers, and the transfer-decision endpoint of
//! the no-AMI transfer method.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::BasicAuth;

/// Request heads longer than this are refused (Asterisk's is ~250 bytes).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;

/// The request line and headers, read without consuming them, so the
/// websocket library can then do the handshake on the same bytes.
#[derive(Debug)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub len: usize,
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
}

pub async fn peek_head(stream: &TcpStream, timeout: Duration) -> Result<RequestHead, String> {
    let mut buf = vec![0u8; MAX_HEAD_BYTES];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf))
            .await
            .map_err(|_| "no complete request head in time".to_string())?
            .map_err(|e| format!("reading request: {e}"))?;
        if n == 0 {
            return Err("connection closed before a request".into());
        }
        if let Some(end) = find(&buf[..n], b"\r\n\r\n") {
            return parse_head(&buf[..end + 4]);
        }
        if n >= MAX_HEAD_BYTES {
            return Err(format!("request head larger than {MAX_HEAD_BYTES} bytes"));
        }
        // Partial head: wait for more bytes to arrive.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn parse_head(bytes: &[u8]) -> Result<RequestHead, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "request head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("bad request line {first:?}"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(format!("bad request line {first:?}"));
    }
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(RequestHead { method: method.into(), target: target.into(), headers, len: bytes.len() })
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
/// method): key = caller leg uniqueid or our channel id. Bounded and
/// short-lived: the dialplan asks right after the websocket hangs up.
pub struct Decisions {
    map: Mutex<HashMap<String, (String, Instant)>>,
}

pub const MAX_DECISIONS: usize = 1024;
pub const DECISION_TTL: Duration = Duration::from_secs(120);

impl Default for Decisions {
    fn default() -> Self {
        Decisions { map: Mutex::new(HashMap::new()) }
    }
}

impl Decisions {
    pub fn put(&self, keys: &[&str], target: &str) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        m.retain(|_, (_, t)| now.duration_since(*t) < DECISION_TTL);
        for k in keys.iter().filter(|k| !k.is_empty()) {
            if m.len() >= MAX_DECISIONS {
                // Oldest out: a dialplan that never asks must not grow this.
                if let Some(oldest) = m.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| k.clone()) {
                    m.remove(&oldest);
                }
            }
            m.insert(k.to_string(), (target.to_string(), now));
        }
    }

    /// The target for `key`, once (all keys of that decision are removed).
    pub fn take(&self, key: &str) -> Option<String> {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let (target, at) = m.remove(key)?;
        m.retain(|_, (t, a)| !(t == &target && a == &at));
        (at.elapsed() < DECISION_TTL).then_some(target)
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
    fn decisions_are_taken_once_by_any_key() {
        let d = Decisions::default();
        d.put(&["1795449971.3", "1795449971.5"], "agents,101");
        assert_eq!(d.take("1795449971.5").as_deref(), Some("agents,101"));
        assert_eq!(d.take("1795449971.3"), None);
        for i in 0..(MAX_DECISIONS + 10) {
            d.put(&[&i.to_string()], "x,1");
        }
        assert!(d.map.lock().unwrap().len() <= MAX_DECISIONS);
    }

    #[test]
    fn heads_parse() {
        let h = parse_head(b"GET /call?dialplan=x HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n").unwrap();
        assert!(h.is_websocket_upgrade());
        assert_eq!(h.path(), "/call");
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }
}
