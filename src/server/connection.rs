//! One accepted connection until it is a call (or an answer): the
//! AudioSocket UUID message, or a websocket listener's request head,
//! credentials, probes, the decision endpoint and the upgrade; then a call
//! slot, and the call session.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tracing::{error, info, warn};

use super::{
    auth, http, link, session, Accepted, Phase, Shared, FIRST_MESSAGE_TIMEOUT, HANDSHAKE_TIMEOUT, UUID_MESSAGE_BYTES,
};
use crate::pbx::transport::Transport;

/// While draining, a connection must send its head this fast (probes do).
const DRAINING_HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Decrements the call count however the task ends.
struct CallSlot(Arc<AtomicUsize>);
impl Drop for CallSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Claims a call slot, or says why not.
fn claim_slot(
    shared: &Shared,
    active: &Arc<AtomicUsize>,
    phase: &watch::Receiver<Phase>,
) -> Result<CallSlot, &'static str> {
    // Claimed before the handshake so a burst cannot overshoot.
    let n = active.fetch_add(1, Ordering::SeqCst) + 1;
    let slot = CallSlot(Arc::clone(active));
    if *phase.borrow() != Phase::Running {
        crate::metrics::connection_refused("draining");
        return Err("server shutting down");
    }
    if n > shared.cfg.general.max_calls {
        crate::metrics::connection_refused("max_calls");
        return Err("max_calls reached");
    }
    Ok(slot)
}

/// Resolves once the server stops taking calls: connections that have not
/// started one are dropped then, so they cannot hold up a shutdown.
async fn stopping(phase: &mut watch::Receiver<Phase>) {
    let _ = phase.wait_for(|p| *p != Phase::Running).await;
}

/// AudioSocket: raw TCP, the codec reads the framing itself. The UUID
/// message must come first and at once; only then is a call slot taken.
pub(super) async fn tcp_connection(
    conn: Accepted,
    shared: Arc<Shared>,
    active: Arc<AtomicUsize>,
    mut phase: watch::Receiver<Phase>,
) {
    let Accepted { mut stream, peer, endpoint, handshaking } = conn;
    let transport = endpoint.transport;
    let codec = match crate::pbx::transport::codec(transport, &endpoint.options) {
        Ok(c) => c,
        Err(e) => {
            error!(%peer, %transport, "cannot serve the connection: {e}");
            return;
        }
    };
    let mut first = vec![0u8; UUID_MESSAGE_BYTES];
    let read = tokio::select! {
        r = tokio::time::timeout(FIRST_MESSAGE_TIMEOUT, tokio::io::AsyncReadExt::read_exact(&mut stream, &mut first)) => r,
        _ = stopping(&mut phase) => return,
    };
    match read {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => {
            warn!(%peer, %transport, "connection closed before the UUID message");
            return;
        }
        Err(_) => {
            warn!(%peer, %transport, "no UUID message within {} ms; closing", FIRST_MESSAGE_TIMEOUT.as_millis());
            return;
        }
    }
    let slot = match claim_slot(&shared, &active, &phase) {
        Ok(s) => s,
        Err(why) => {
            // No way to say "busy" in AudioSocket but a hangup message.
            warn!(%peer, %transport, limit = shared.cfg.general.max_calls, "refused call: {why}");
            let hangup = crate::pbx::audiosocket::Frame::new(crate::pbx::audiosocket::KIND_HANGUP, Vec::new()).encode();
            let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.write_all(&hangup)).await;
            return;
        }
    };
    drop(handshaking);
    session::run(link::Link::tcp(stream, first), transport, codec, peer.to_string(), shared, phase).await;
    drop(slot);
}

/// A websocket listener's connection: the request head within its
/// deadline, credentials, then either a plain HTTP answer or a call.
pub(super) async fn connection(
    conn: Accepted,
    shared: Arc<Shared>,
    active: Arc<AtomicUsize>,
    mut phase: watch::Receiver<Phase>,
) {
    let Accepted { mut stream, peer, endpoint, handshaking } = conn;
    let transport = endpoint.transport;
    // Connections from before a shutdown that have not sent their head are
    // dropped when it starts, so they cannot hold it up. Those that come
    // while draining are read, briefly: load balancers must hear `/readyz`
    // say 503, and new calls get a 503 too.
    let draining = *phase.borrow() != Phase::Running;
    let read = if draining {
        let deadline = tokio::time::Instant::now() + DRAINING_HEAD_TIMEOUT;
        tokio::select! {
            r = http::read_head(&mut stream, deadline) => r,
            _ = phase.wait_for(|p| *p == Phase::Force) => return,
        }
    } else {
        let deadline = tokio::time::Instant::now() + http::HEAD_TIMEOUT;
        tokio::select! {
            r = http::read_head(&mut stream, deadline) => r,
            _ = stopping(&mut phase) => return,
        }
    };
    let (head, rest) = match read {
        Ok(h) => h,
        Err(e) => {
            warn!(%peer, %transport, "connection dropped: {e}");
            match e {
                http::HeadError::TooLarge => http::respond(stream, "431 Request Header Fields Too Large", "", "").await,
                http::HeadError::Malformed(_) => http::respond(stream, "400 Bad Request", "", "").await,
                http::HeadError::TimedOut | http::HeadError::Closed => {}
            }
            return;
        }
    };
    // Probes of load balancers and orchestrators: no credentials, nothing
    // told but up / ready.
    if head.method == "GET" && !head.is_websocket_upgrade() {
        match head.path() {
            "/health" | "/healthz" => return http::respond(stream, "200 OK", "", "ok\n").await,
            "/readyz" => {
                let (status, body) = shared.readiness.borrow().http_answer(&shared.controls.states());
                return http::respond(stream, status, "", &body).await;
            }
            _ => {}
        }
    }
    if !auth::admitted(&shared.cfg, endpoint.public_url.as_deref(), &head) {
        warn!(%peer, %transport, path = head.path(), "refused: missing or wrong credentials");
        crate::metrics::connection_refused("auth");
        http::respond(stream, "401 Unauthorized", "WWW-Authenticate: Basic realm=\"hotline\"\r\n", "").await;
        return;
    }
    if !head.is_websocket_upgrade() {
        if transport == Transport::AsteriskWs && super::dashboard::serves(head.path()) {
            return super::dashboard::answer(stream, peer, &head, &shared, phase, handshaking).await;
        }
        return plain_http(stream, peer, transport, &head, &shared).await;
    }
    let subprotocol = transport.subprotocol();
    if let (Some(p), Some(want)) = (head.header("Sec-WebSocket-Protocol"), subprotocol) {
        if !p.split(',').any(|x| x.trim() == want) {
            warn!(%peer, protocols = p, "refused: subprotocol `{want}` not offered");
            http::respond(stream, "400 Bad Request", "", &format!("subprotocol {want} required\n")).await;
            return;
        }
    }
    let answer = match http::upgrade_answer(&head, subprotocol) {
        Ok(a) => a,
        Err((status, headers)) => {
            warn!(%peer, %transport, status, "refused: not a websocket upgrade hotline can answer");
            http::respond(stream, status, headers, "").await;
            return;
        }
    };
    let slot = match claim_slot(&shared, &active, &phase) {
        Ok(s) => s,
        Err(why) => {
            warn!(%peer, %transport, limit = shared.cfg.general.max_calls, "refused call: {why}");
            http::respond(stream, "503 Service Unavailable", "Retry-After: 5\r\n", "").await;
            return;
        }
    };
    let codec: Box<dyn crate::pbx::MediaCodec> = match transport {
        // Its codec reads the dialplan and caller from the request path.
        Transport::AsteriskWs => Box::new(crate::pbx::asterisk_ws::AsteriskWsCodec::new(&head.target)),
        _ => match crate::pbx::transport::codec(transport, &endpoint.options) {
            Ok(c) => c,
            Err(e) => {
                error!(%peer, %transport, "cannot serve the connection: {e}");
                http::respond(stream, "500 Internal Server Error", "", "").await;
                return;
            }
        },
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.write_all(answer.as_bytes())).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return warn!(%peer, "websocket handshake failed: {e}"),
        Err(_) => return warn!(%peer, "websocket handshake timed out"),
    }
    let limit = transport.max_incoming_message();
    let ws_cfg = WebSocketConfig::default().max_message_size(Some(limit)).max_frame_size(Some(limit));
    // Bytes the client sent right behind its head are the first frames.
    let ws = WebSocketStream::from_partially_read(stream, rest, Role::Server, Some(ws_cfg)).await;
    drop(handshaking);
    session::run(link::Link::websocket(ws), transport, codec, peer.to_string(), shared, phase).await;
    drop(slot);
}

/// Answers a request without upgrade (already authenticated). The
/// transfer decisions are for the Asterisk dialplan, so only its listener
/// has them.
async fn plain_http(
    stream: TcpStream,
    peer: SocketAddr,
    transport: Transport,
    head: &http::RequestHead,
    shared: &Shared,
) {
    if head.method == "GET" && head.path() == "/metrics" {
        return metrics(stream, shared).await;
    }
    let decision_route = matches!(head.path(), "/transfer" | "/decision");
    if head.method != "GET" || !decision_route || transport != Transport::AsteriskWs {
        return http::respond(stream, "404 Not Found", "", "").await;
    }
    // `/decision?uuid=` is the AudioSocket dialplan's spelling; there the
    // UUID (random, made by the dialplan) is the call's token.
    let uuid = head.query("uuid");
    let key = head.query("uid").or_else(|| uuid.clone()).unwrap_or_default();
    let token = head.query(crate::pbx::decision::DECISION_TOKEN).or(uuid).unwrap_or_default();
    let decision = shared.decisions.take(&key, &token);
    match &decision {
        Some(target) => info!(%peer, uid = %key, %target, "transfer decision fetched by the Asterisk dialplan"),
        None => info!(%peer, uid = %key, "no transfer decision for this call and token"),
    }
    http::respond(stream, "200 OK", "", decision.as_deref().unwrap_or("")).await;
}

/// `GET /metrics`: the Prometheus exposition text. Gauges of shared state
/// (the recogniser's queue) are read at the scrape.
async fn metrics(stream: TcpStream, shared: &Shared) {
    crate::metrics::recognizer_queue(shared.speech.pool.queued());
    match crate::metrics::render() {
        Some(text) => http::respond_typed(stream, "200 OK", crate::metrics::CONTENT_TYPE, &text).await,
        None => http::respond(stream, "503 Service Unavailable", "", "no metrics recorder\n").await,
    }
}
