//! Transfer through an HTTP webhook, for Twilio (whose stream protocol
//! cannot move a call): hotline POSTs
//!
//! ```json
//! {"call_sid":"CA…","extension":"1000","context":"agents","variables":{"account":"1234"}}
//! ```
//!
//! to a configured URL; the service behind it (a Twilio Function, or any
//! small app holding the account's credentials) updates the call with
//! `<Dial>` TwiML through Twilio's REST API. Any 2xx answer is success;
//! anything else, a timeout or a refused connection is a failed transfer,
//! which the call handles like any failed transfer (apology, fallback).
//!
//! A minimal HTTP/1.1 client over tokio is enough here: plain `http://`
//! to a service on the LAN or loopback, one request per transfer, no TLS
//! (put a local proxy in front of an `https://` endpoint).
use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::transfer::{TransferControl, TransferFailed, TransferOrder, TransferStart};

/// Environment variable with a bearer token sent as `Authorization`.
pub const TOKEN_ENV: &str = "HOTLINE_WEBHOOK_TOKEN";

/// Bytes of the response kept (status line, headers and body each).
const MAX_RESPONSE: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("transfer webhook URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("transfer webhook {url}: cannot connect: {source}")]
    Connect { url: String, source: std::io::Error },
    #[error("transfer webhook {url}: {source}")]
    Io { url: String, source: std::io::Error },
    #[error("transfer webhook {url}: no answer within {timeout_ms} ms")]
    Timeout { url: String, timeout_ms: u128 },
    #[error("transfer webhook {url} answered {status}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("transfer webhook {url}: malformed HTTP response: {reason}")]
    BadResponse { url: String, reason: String },
}

/// A parsed `http://host:port/path` URL.
#[derive(Debug, Clone, PartialEq)]
struct HttpUrl {
    host: String,
    port: u16,
    /// Path and query, starting with `/`.
    target: String,
}

fn parse_url(url: &str) -> Result<HttpUrl, WebhookError> {
    let bad = |reason: &str| WebhookError::BadUrl { url: url.to_string(), reason: reason.to_string() };
    if url.starts_with("https://") {
        return Err(bad("https is not supported; use http:// to a local service or a TLS proxy"));
    }
    let rest = url.strip_prefix("http://").ok_or_else(|| bad("must start with http://"))?;
    let (authority, target) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    if authority.contains('@') {
        return Err(bad("credentials in the URL are not supported; use the bearer token"));
    }
    let port_of =
        |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| bad("port is not a number from 1 to 65535"));
    // IPv6 literals keep their brackets: "[::1]:9000".
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']').ok_or_else(|| bad("unclosed [ in the host"))?;
        let host = authority[..=end].to_string();
        match &authority[end + 1..] {
            "" => (host, 80),
            rest => (host, port_of(rest.strip_prefix(':').ok_or_else(|| bad("junk after the host"))?)?),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), port_of(p)?),
            None => (authority.to_string(), 80),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if target.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("the path contains whitespace"));
    }
    Ok(HttpUrl { host, port, target })
}

/// Where transfers are posted.
#[derive(Clone)]
pub struct WebhookConfig {
    url: String,
    parsed: HttpUrl,
    token: Option<String>,
    pub timeout: Duration,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl WebhookConfig {
    /// Checks the URL now, so a typo is reported at startup, not at the
    /// first transfer. The bearer token comes from [`TOKEN_ENV`] if set.
    pub fn new(url: &str) -> Result<Self, WebhookError> {
        let parsed = parse_url(url)?;
        let token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty());
        Ok(WebhookConfig { url: url.to_string(), parsed, token, timeout: Duration::from_secs(5) })
    }

    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

/// What the webhook is told.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TransferRequest {
    pub call_sid: String,
    pub extension: String,
    pub context: Option<String>,
    /// Variables the caller gave (collected digits etc.), in order.
    pub variables: serde_json::Map<String, serde_json::Value>,
}

impl TransferRequest {
    pub fn new(call_sid: &str, extension: &str, context: Option<&str>, variables: &[(String, String)]) -> Self {
        TransferRequest {
            call_sid: call_sid.to_string(),
            extension: extension.to_string(),
            context: context.map(str::to_string),
            variables: variables.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect(),
        }
    }
}

/// Posts one transfer. Logs the target (URL, call, extension) so an admin
/// can follow where callers were sent.
pub async fn transfer(config: &WebhookConfig, request: &TransferRequest) -> Result<(), WebhookError> {
    tracing::info!(
        url = %config.url,
        call_sid = %request.call_sid,
        extension = %request.extension,
        context = request.context.as_deref().unwrap_or(""),
        "transfer via webhook"
    );
    let body = serde_json::to_vec(request).unwrap_or_default();
    let url = config.url.clone();
    let timeout_ms = config.timeout.as_millis();
    match tokio::time::timeout(config.timeout, post(config, &body)).await {
        Ok(Ok(())) => {
            tracing::info!(url = %url, call_sid = %request.call_sid, "webhook accepted the transfer");
            Ok(())
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(WebhookError::Timeout { url, timeout_ms }),
    }
}

/// The Twilio transfer of one call (its `callSid`) through the webhook.
pub struct WebhookTransfer {
    config: WebhookConfig,
    call_sid: String,
}

impl WebhookTransfer {
    pub fn new(config: WebhookConfig, call_sid: &str) -> Self {
        WebhookTransfer { config, call_sid: call_sid.to_string() }
    }
}

impl TransferControl for WebhookTransfer {
    fn start(&self, order: &TransferOrder) -> TransferStart {
        let request =
            TransferRequest::new(&self.call_sid, &order.extension, order.context.as_deref(), &order.variables);
        let config = self.config.clone();
        let outcome = async move {
            transfer(&config, &request).await.map(|()| "ok".to_string()).map_err(|e| TransferFailed(e.to_string()))
        };
        TransferStart::Pending { method: "webhook", outcome: Box::pin(outcome) }
    }
}

async fn post(config: &WebhookConfig, body: &[u8]) -> Result<(), WebhookError> {
    let url = &config.url;
    let u = &config.parsed;
    let io = |source| WebhookError::Io { url: url.clone(), source };
    let host_port = format!("{}:{}", u.host, u.port);
    let mut stream = TcpStream::connect(host_port.as_str())
        .await
        .map_err(|source| WebhookError::Connect { url: url.clone(), source })?;
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: hotline/{}\r\n",
        u.target,
        host_port,
        body.len(),
        env!("CARGO_PKG_VERSION")
    );
    if let Some(t) = &config.token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.map_err(io)?;
    stream.write_all(body).await.map_err(io)?;
    stream.flush().await.map_err(io)?;

    let mut reader = BufReader::new(stream);
    let bad = |reason: String| WebhookError::BadResponse { url: url.clone(), reason };
    let mut status_line = String::new();
    (&mut reader).take(MAX_RESPONSE as u64).read_line(&mut status_line).await.map_err(io)?;
    let mut parts = status_line.split_whitespace();
    let status = match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => {
            code.parse::<u16>().map_err(|_| bad(format!("status {code:?} is not a number")))?
        }
        _ => return Err(bad(format!("status line {:?}", status_line.trim_end()))),
    };
    let mut content_length = None;
    let mut header_bytes = 0usize;
    loop {
        let mut line = String::new();
        let n = (&mut reader).take(MAX_RESPONSE as u64).read_line(&mut line).await.map_err(io)?;
        header_bytes += n;
        if n == 0 || line.trim_end().is_empty() {
            break;
        }
        if header_bytes > MAX_RESPONSE {
            return Err(bad(format!("headers longer than {MAX_RESPONSE} bytes")));
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                content_length = v.trim().parse::<usize>().ok();
            }
        }
    }
    // Only the start of the body is kept: it goes into an error message.
    let mut body = Vec::new();
    let limit = content_length.unwrap_or(MAX_RESPONSE).min(MAX_RESPONSE) as u64;
    (&mut reader).take(limit).read_to_end(&mut body).await.map_err(io)?;
    if (200..300).contains(&status) {
        return Ok(());
    }
    let text: String = String::from_utf8_lossy(&body).trim().chars().take(200).collect();
    Err(WebhookError::Status { url: url.clone(), status, body: text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_up_front() {
        assert_eq!(
            parse_url("http://127.0.0.1:8088/twilio/transfer?x=1").unwrap(),
            HttpUrl { host: "127.0.0.1".into(), port: 8088, target: "/twilio/transfer?x=1".into() }
        );
        assert_eq!(parse_url("http://pbx.lan").unwrap().port, 80);
        assert_eq!(parse_url("http://[::1]:9000/t").unwrap().host, "[::1]");
        assert!(parse_url("https://example.net/").unwrap_err().to_string().contains("https"));
        assert!(parse_url("ftp://x").is_err());
        assert!(parse_url("http://host:99999/").is_err());
        assert!(parse_url("http://u:p@host/").is_err());
        assert!(parse_url("http:///path").is_err());
    }

    #[test]
    fn request_json_has_the_documented_fields() {
        let r = TransferRequest::new("CA1", "1000", Some("agents"), &[("account".into(), "42".into())]);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"call_sid":"CA1","extension":"1000","context":"agents","variables":{"account":"42"}}"#
        );
    }

    #[test]
    fn token_is_not_printed() {
        let c = WebhookConfig::new("http://127.0.0.1:1/").unwrap().with_token(Some("s3cret".into()));
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
