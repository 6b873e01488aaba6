//! `GET /api/events`: Server-Sent Events for the dashboard. The first
//! event is the calls in progress; then, whenever they change, a new list
//! (`event: active`), and when a call ends, `event: finished` (the page
//! then reads the recent calls and the funnel again). Changes that come
//! in a burst are sent as one list, at most one every [`MIN_GAP`]; a subscriber that falls behind the
//! broadcast just gets the current list. A comment every
//! [`HEARTBEAT`] keeps proxies and SSH tunnels from closing an idle
//! stream and shows when the browser has gone.
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{watch, OwnedSemaphorePermit};

use super::super::{http, Phase};
use super::live::Change;
use super::Dashboard;

pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// Lists are sent at most this often: with many calls, changes come many
/// times a second, and a person reads no faster.
const MIN_GAP: Duration = Duration::from_millis(250);
/// A write the browser does not take within this ends the stream.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn stream(
    stream: TcpStream,
    dashboard: &Dashboard,
    mut phase: watch::Receiver<Phase>,
    handshaking: OwnedSemaphorePermit,
) {
    let Ok(_permit) = std::sync::Arc::clone(&dashboard.streams).try_acquire_owned() else {
        let retry = format!("Retry-After: 10\r\n{}", super::routes::SECURITY_HEADERS);
        return http::respond(stream, "503 Service Unavailable", &retry, "too many dashboard event streams\n").await;
    };
    // Open for as long as the page is: not a connection still handshaking.
    drop(handshaking);
    let mut changes = dashboard.live.subscribe();
    let (mut from_browser, mut to_browser) = stream.into_split();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nConnection: close\r\n{}\r\nretry: 2000\n\n",
        super::routes::SECURITY_HEADERS
    );
    let first = [head, active_event(dashboard)].concat();
    if !send(&mut to_browser, &first).await {
        return;
    }
    // Its guard is dropped at once: the select below awaits in its arms.
    let stopping = async {
        let _ = phase.wait_for(|p| *p != Phase::Running).await;
    };
    tokio::pin!(stopping);
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    let mut sink = [0u8; 256];
    let mut last_sent = tokio::time::Instant::now();
    loop {
        let message = tokio::select! {
            change = changes.recv() => match change {
                Ok(first) => {
                    let mut finished = first == Change::Finished;
                    // The changes of a burst, or of the gap since the last
                    // list, are one list.
                    tokio::time::sleep_until(last_sent + MIN_GAP).await;
                    loop {
                        match changes.try_recv() {
                            Ok(c) => finished |= c == Change::Finished,
                            Err(TryRecvError::Lagged(_)) => finished = true,
                            Err(_) => break,
                        }
                    }
                    changed(dashboard, finished)
                }
                Err(RecvError::Lagged(_)) => changed(dashboard, true),
                Err(RecvError::Closed) => return,
            },
            _ = heartbeat.tick() => ": heartbeat\n\n".to_string(),
            // The browser sends nothing on a stream; a read that ends is it leaving.
            read = from_browser.read(&mut sink) => match read {
                Ok(n) if n > 0 => continue,
                _ => return,
            },
            // The server is draining: the stream must not hold it up.
            _ = &mut stopping => return,
        };
        if !send(&mut to_browser, &message).await {
            return;
        }
        last_sent = tokio::time::Instant::now();
    }
}

fn changed(dashboard: &Dashboard, finished: bool) -> String {
    let mut message = active_event(dashboard);
    if finished {
        message.push_str("event: finished\ndata: {}\n\n");
    }
    message
}

/// The calls in progress as one event (JSON has no raw line breaks).
fn active_event(dashboard: &Dashboard) -> String {
    let calls = serde_json::json!({ "calls": dashboard.live.snapshot() });
    format!("event: active\ndata: {calls}\n\n")
}

async fn send(to_browser: &mut tokio::net::tcp::OwnedWriteHalf, message: &str) -> bool {
    matches!(tokio::time::timeout(WRITE_TIMEOUT, to_browser.write_all(message.as_bytes())).await, Ok(Ok(())))
}
