//! The HTTP side of the listener: reading a request head within a deadline,
//! the websocket upgrade answer, basic auth, plain answers, and the
//! answers of the no-AMI transfer method's decision endpoint (the decisions
//! themselves wait in [`crate::pbx::decision`]).
use std::time::Duration;

use base64::Engine as _;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::BasicAuth;

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
pub async fn respond(stream: TcpStream, status: &str, extra_headers: &str, body: &str) {
    respond_with(stream, status, "text/plain", extra_headers, body).await
}

/// [`respond`] with a body of another type (`/metrics`).
pub async fn respond_typed(stream: TcpStream, status: &str, content_type: &str, body: &str) {
    respond_with(stream, status, content_type, "", body).await
}

async fn respond_with(stream: TcpStream, status: &str, content_type: &str, extra_headers: &str, body: &str) {
    respond_bytes(stream, status, content_type, extra_headers, body.as_bytes()).await
}

/// Writes a complete answer of any type, with extra header lines (each
/// ending in CRLF), and closes.
pub async fn respond_bytes(mut stream: TcpStream, status: &str, content_type: &str, extra_headers: &str, body: &[u8]) {
    // Consume whatever request bytes are there so the close is clean.
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_millis(20), stream.read(&mut sink)).await;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(body).await;
        let _ = stream.shutdown().await;
    })
    .await;
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
