//! The dashboard's routes: which request gets which answer. Every answer
//! is a GET with no body; JSON is served as `application/json`, never
//! HTML, and every answer carries headers that keep a browser from
//! running anything but the dashboard's own script.
use std::io::SeekFrom;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tracing::warn;

use super::super::http::{self, RequestHead};
use super::super::{Phase, Shared};
use super::{admitted, assets, events};
use crate::records::db::Db;
use crate::records::queries;
use crate::records::{open_reader, StoreError, StoreKind};

/// Sent with every dashboard answer: no caching of caller data, no
/// sniffing JSON as HTML, no framing, and no script but `/dashboard.js`.
pub(super) const SECURITY_HEADERS: &str = "Cache-Control: no-store\r\n\
    X-Content-Type-Options: nosniff\r\n\
    X-Frame-Options: DENY\r\n\
    Referrer-Policy: no-referrer\r\n\
    Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
    media-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n";

const JSON: &str = "application/json; charset=utf-8";
/// Recent calls listed when the request does not say.
const DEFAULT_RECENT: usize = 50;
/// The funnel's period when the request does not say: a day.
const DEFAULT_PERIOD_MS: u64 = 24 * 3600 * 1000;
/// Longest call id looked up.
const MAX_CALL_ID: usize = 256;
/// A kept audio file must be sent within this (an hour of 16 kHz audio is
/// 115 MB).
const AUDIO_SEND_TIMEOUT: Duration = Duration::from_secs(600);

/// Answers a dashboard request (already past `[auth]`, when set).
pub(in crate::server) async fn answer(
    stream: TcpStream,
    peer: SocketAddr,
    head: &RequestHead,
    shared: &Arc<Shared>,
    phase: watch::Receiver<Phase>,
    handshaking: OwnedSemaphorePermit,
) {
    if !admitted(shared.cfg.auth.is_some(), peer.ip(), head.header("Host")) {
        warn!(%peer, path = head.path(), "dashboard refused: without [auth] it is served to loopback peers only");
        return text(stream, "403 Forbidden", "the dashboard is served to localhost only when [auth] is not set\n")
            .await;
    }
    if head.method != "GET" {
        return http::respond(stream, "405 Method Not Allowed", "Allow: GET\r\n", "").await;
    }
    let path = head.path();
    if let Some(asset) = assets::find(path) {
        return reply(stream, "200 OK", asset.content_type, asset.body.as_bytes()).await;
    }
    match path {
        "/api/calls/active" => json(stream, &ActiveCalls { calls: shared.dashboard.live.snapshot() }).await,
        "/api/events" => events::stream(stream, &shared.dashboard, phase, handshaking).await,
        "/api/dialplans" => {
            let body =
                Dialplans { in_service: shared.registry.names(), default: shared.cfg.general.default_dialplan.clone() };
            json(stream, &body).await
        }
        "/api/calls/recent" => {
            let limit = match head.query("limit").map(|l| l.parse::<usize>()) {
                None => DEFAULT_RECENT,
                Some(Ok(n)) => n.min(queries::MAX_RECENT),
                Some(Err(_)) => return error(stream, "400 Bad Request", "limit: not a number").await,
            };
            let found = records(shared, move |db| queries::recent_calls(db, limit)).await;
            answer_json(stream, found.map(|calls| RecentCalls { calls })).await
        }
        "/api/funnel" => {
            let dialplan = head.query("dialplan").unwrap_or_else(|| shared.cfg.general.default_dialplan.clone());
            let since = match head.query("since").map(|s| s.parse::<u64>()) {
                None => now_ms().saturating_sub(DEFAULT_PERIOD_MS),
                Some(Ok(ms)) => ms,
                Some(Err(_)) => return error(stream, "400 Bad Request", "since: not a Unix time in ms").await,
            };
            answer_json(stream, records(shared, move |db| queries::funnel(db, &dialplan, since)).await).await
        }
        _ => match path.strip_prefix("/api/calls/").and_then(call_route) {
            Some((id, CallRoute::Timeline)) => match records(shared, move |db| queries::call_timeline(db, &id)).await {
                Ok(Some(timeline)) => json(stream, &timeline).await,
                Ok(None) => error(stream, "404 Not Found", "no stored call with this id").await,
                Err((status, why)) => error(stream, status, &why).await,
            },
            Some((id, CallRoute::Audio)) => audio(stream, shared, id, head.header("Range"), handshaking).await,
            None => error(stream, "404 Not Found", "no such route").await,
        },
    }
}

#[derive(Serialize)]
struct ActiveCalls {
    calls: Vec<super::live::LiveCall>,
}

#[derive(Serialize)]
struct RecentCalls {
    calls: Vec<queries::CallSummary>,
}

#[derive(Serialize)]
struct Dialplans {
    in_service: Vec<String>,
    default: String,
}

enum CallRoute {
    Timeline,
    Audio,
}

/// `{id}` or `{id}/audio` (the id percent-encoded).
fn call_route(rest: &str) -> Option<(String, CallRoute)> {
    let (id, route) = match rest.strip_suffix("/audio") {
        Some(id) => (id, CallRoute::Audio),
        None => (rest, CallRoute::Timeline),
    };
    let id = crate::pbx::percent_decode(id, false);
    (!id.is_empty() && id.len() <= MAX_CALL_ID && !id.contains('/')).then_some((id, route))
}

/// Why a records question has no answer: its status and the reason.
type Refusal = (&'static str, String);

/// Runs `query` on a read-only connection to the SQLite record store, on
/// a blocking thread; or says why the records cannot answer.
async fn records<T: Send + 'static>(
    shared: &Shared,
    query: impl FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Refusal> {
    const NOT_HERE: &str = "501 Not Implemented";
    let Some(path) = shared.cfg.general.call_records.clone() else {
        return Err((
            NOT_HERE,
            "call records are off (call_records = \"\"): the dashboard shows live calls only".into(),
        ));
    };
    if StoreKind::of(&path) == StoreKind::Jsonl {
        return Err((
            NOT_HERE,
            "call records are kept as JSON lines, which the dashboard does not read: it shows live calls only \
             (finished calls, funnels and timelines need call_records in SQLite or PostgreSQL)"
                .into(),
        ));
    }
    let asked = tokio::task::spawn_blocking(move || {
        let Some(mut db) = open_reader(&path)? else {
            let source = std::io::Error::other("JSON lines are not queried");
            return Err(StoreError::Io { path, source });
        };
        query(&mut db)
    })
    .await;
    match asked {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(e)) => {
            warn!("dashboard: the call records could not be read: {e}");
            Err(("500 Internal Server Error", format!("the call records could not be read: {e}")))
        }
        Err(e) => Err(("500 Internal Server Error", format!("the records query failed: {e}"))),
    }
}

/// `GET /api/calls/{id}/audio`: the caller's kept audio, if the config
/// keeps it and the file is in its folder. A `Range` request gets that part
/// (206): a browser's audio player asks for one before it lets the listener
/// seek.
async fn audio(
    stream: TcpStream,
    shared: &Arc<Shared>,
    id: String,
    range: Option<&str>,
    handshaking: OwnedSemaphorePermit,
) {
    let Some(dir) = shared.cfg.general.keep_audio_dir.clone() else {
        return error(stream, "404 Not Found", "caller audio is not kept (keep_audio_dir is off)").await;
    };
    let file = match records(shared, move |db| queries::audio_file(db, &id)).await {
        Ok(Some(file)) => file,
        Ok(None) => return error(stream, "404 Not Found", "no audio kept for this call").await,
        Err((status, why)) => return error(stream, status, &why).await,
    };
    let Some(file) = inside(&dir, &file).await else {
        return error(stream, "404 Not Found", "the call's audio file is gone").await;
    };
    let Ok(mut wav) = tokio::fs::File::open(&file).await else {
        return error(stream, "404 Not Found", "the call's audio file is gone").await;
    };
    let Ok(len) = wav.metadata().await.map(|m| m.len()) else {
        return error(stream, "500 Internal Server Error", "the call's audio file cannot be read").await;
    };
    // A download can take a while: it no longer counts as a connection
    // that has not said what it wants.
    drop(handshaking);
    let (status, first, count, content_range) = match byte_range(range, len) {
        ByteRange::Whole => ("200 OK", 0, len, String::new()),
        ByteRange::Part { first, last } => {
            ("206 Partial Content", first, last - first + 1, format!("Content-Range: bytes {first}-{last}/{len}\r\n"))
        }
        ByteRange::Unsatisfiable => {
            let extra = format!("Content-Range: bytes */{len}\r\n{SECURITY_HEADERS}");
            return http::respond(stream, "416 Range Not Satisfiable", &extra, "").await;
        }
    };
    if first > 0 && wav.seek(SeekFrom::Start(first)).await.is_err() {
        return error(stream, "500 Internal Server Error", "the call's audio file cannot be read").await;
    }
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: audio/wav\r\nContent-Length: {count}\r\nAccept-Ranges: bytes\r\n\
         {content_range}Connection: close\r\n{SECURITY_HEADERS}\r\n"
    );
    let mut stream = stream;
    let _ = tokio::time::timeout(AUDIO_SEND_TIMEOUT, async {
        stream.write_all(head.as_bytes()).await?;
        tokio::io::copy(&mut wav.take(count), &mut stream).await?;
        stream.shutdown().await
    })
    .await;
}

/// What part of a file of `len` bytes a request's `Range` header asks for.
#[derive(Debug, PartialEq)]
enum ByteRange {
    /// No header, or one this server ignores (several ranges, other units,
    /// malformed: RFC 9110 lets a server answer those with the whole file).
    Whole,
    /// Bytes `first..=last`.
    Part { first: u64, last: u64 },
    /// A range that starts past the end (416).
    Unsatisfiable,
}

fn byte_range(header: Option<&str>, len: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Whole;
    };
    let Some((from, to)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let number = |s: &str| if s.is_empty() { Ok(None) } else { s.trim().parse::<u64>().map(Some) };
    match (number(from), number(to)) {
        // `bytes=-N`: the last N bytes.
        (Ok(None), Ok(Some(suffix))) if suffix > 0 && len > 0 => {
            ByteRange::Part { first: len.saturating_sub(suffix), last: len - 1 }
        }
        (Ok(None), Ok(Some(_))) => ByteRange::Unsatisfiable,
        (Ok(Some(first)), Ok(last)) if first < len => {
            let last = last.map_or(len - 1, |l| l.min(len - 1));
            if last < first {
                ByteRange::Whole
            } else {
                ByteRange::Part { first, last }
            }
        }
        (Ok(Some(_)), Ok(_)) => ByteRange::Unsatisfiable,
        _ => ByteRange::Whole,
    }
}

/// `file`, resolved, when it lies inside `dir`: a record's path is data,
/// and only what hotline kept may be served.
async fn inside(dir: &Path, file: &Path) -> Option<PathBuf> {
    let dir = tokio::fs::canonicalize(dir).await.ok()?;
    let file = tokio::fs::canonicalize(file).await.ok()?;
    file.starts_with(&dir).then_some(file)
}

fn now_ms() -> u64 {
    crate::records::unix_ms(SystemTime::now())
}

async fn answer_json<T: Serialize>(stream: TcpStream, found: Result<T, Refusal>) {
    match found {
        Ok(body) => json(stream, &body).await,
        Err((status, why)) => error(stream, status, &why).await,
    }
}

async fn json<T: Serialize>(stream: TcpStream, body: &T) {
    match serde_json::to_vec(body) {
        Ok(bytes) => reply(stream, "200 OK", JSON, &bytes).await,
        Err(e) => error(stream, "500 Internal Server Error", &format!("not serialisable: {e}")).await,
    }
}

/// An error as `{"error": "..."}`.
async fn error(stream: TcpStream, status: &str, why: &str) {
    let body = serde_json::json!({ "error": why }).to_string();
    reply(stream, status, JSON, body.as_bytes()).await
}

async fn text(stream: TcpStream, status: &str, body: &str) {
    reply(stream, status, "text/plain; charset=utf-8", body.as_bytes()).await
}

async fn reply(stream: TcpStream, status: &str, content_type: &str, body: &[u8]) {
    http::respond_bytes(stream, status, content_type, SECURITY_HEADERS, body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_header_picks_the_bytes_a_player_asks_for() {
        use ByteRange::*;
        assert_eq!(byte_range(None, 1000), Whole);
        assert_eq!(byte_range(Some("bytes=0-"), 1000), Part { first: 0, last: 999 });
        assert_eq!(byte_range(Some("bytes=44-99"), 1000), Part { first: 44, last: 99 });
        assert_eq!(byte_range(Some("bytes=900-5000"), 1000), Part { first: 900, last: 999 }, "cut at the end");
        assert_eq!(byte_range(Some("bytes=-100"), 1000), Part { first: 900, last: 999 });
        assert_eq!(byte_range(Some("bytes=-5000"), 1000), Part { first: 0, last: 999 });
        assert_eq!(byte_range(Some("bytes=1000-"), 1000), Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=-0"), 1000), Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=0-"), 0), Unsatisfiable);
        for ignored in ["bytes=0-1,5-9", "items=0-9", "bytes=a-b", "bytes=9-2", "bytes=", "bytes=-"] {
            assert_eq!(byte_range(Some(ignored), 1000), Whole, "{ignored}");
        }
    }

    #[test]
    fn call_routes_decode_the_id_and_refuse_odd_ones() {
        let (id, route) = call_route("1733%2E12/audio").unwrap();
        assert_eq!(id, "1733.12");
        assert!(matches!(route, CallRoute::Audio));
        assert!(matches!(call_route("abc").unwrap().1, CallRoute::Timeline));
        assert!(call_route("").is_none());
        assert!(call_route("a%2Fb").is_none(), "no slash in an id");
        assert!(call_route(&"x".repeat(MAX_CALL_ID + 1)).is_none());
    }
}
