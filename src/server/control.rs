//! The server's control connections to a PBX that outlive any one call:
//! FreeSWITCH's event socket (AMI connects per transfer, so nothing waits
//! for Asterisk at start-up). Each is kept up in the background — at
//! start-up as after an outage — and reports whether it is connected, for
//! a readiness check.
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use tracing::{error, info, warn};

use crate::pbx::esl::{
    CurrentClient, EslClient, EslConfig, EslError, EslEvent, EventRouter, EVENT_QUEUE, TRANSPORT_EVENTS,
};

/// One control connection and whether it is up now.
#[derive(Debug, Clone)]
pub struct ControlChannel {
    /// What it is: `esl` (FreeSWITCH's event socket).
    pub name: &'static str,
    /// Where it connects to (`host:port`).
    pub addr: String,
    /// Connected, authenticated and subscribed; a watch so a call can wait
    /// for it instead of polling.
    connected: Arc<watch::Sender<bool>>,
    /// A call that needs the connection arrived while it was down: try
    /// again now instead of at the end of the backoff (the PBX sending a
    /// call is a sign it is up).
    retry_now: Arc<Notify>,
}

impl ControlChannel {
    fn new(name: &'static str, addr: &str) -> Self {
        ControlChannel {
            name,
            addr: addr.to_string(),
            connected: Arc::new(watch::Sender::new(false)),
            retry_now: Arc::new(Notify::new()),
        }
    }

    /// Connected and authenticated now.
    pub fn connected(&self) -> bool {
        *self.connected.borrow()
    }

    fn set_connected(&self, up: bool) {
        self.connected.send_replace(up);
    }

    /// Waits up to `wait` for the connection to be up, asking for a
    /// reconnect attempt at once; whether it is up.
    pub(crate) async fn wait_connected(&self, wait: Duration) -> bool {
        if self.connected() {
            return true;
        }
        self.retry_now.notify_one();
        let mut rx = self.connected.subscribe();
        let up = tokio::time::timeout(wait, rx.wait_for(|up| *up)).await;
        matches!(up, Ok(Ok(_)))
    }
}

/// The server's control connections (none when no listener needs one).
#[derive(Debug, Clone, Default)]
pub struct ControlChannels(Arc<Vec<ControlChannel>>);

impl ControlChannels {
    pub fn new(channels: Vec<ControlChannel>) -> Self {
        ControlChannels(Arc::new(channels))
    }

    pub fn all(&self) -> &[ControlChannel] {
        &self.0
    }

    /// Each connection's state, for `GET /readyz`.
    pub fn states(&self) -> Vec<super::readiness::ControlState> {
        self.0
            .iter()
            .map(|c| super::readiness::ControlState { name: c.name, addr: c.addr.clone(), connected: c.connected() })
            .collect()
    }

    /// Every control connection is up: the server can serve every transport.
    pub fn all_connected(&self) -> bool {
        self.0.iter().all(ControlChannel::connected)
    }
}

/// One event-socket connection shared by all FreeSWITCH calls, replaced
/// by a new one when it drops (FreeSWITCH restarted, network blip) or
/// made once FreeSWITCH is up if it was not at start-up: the keeper
/// connects with bounded backoff, authenticates and subscribes. Calls go
/// on meanwhile; what needs the socket (prompt files, keys, barge-in,
/// transfers) fails and is logged, and a transfer that fails gets the
/// apology and the dialplan's fallback.
pub(crate) struct EslControl {
    client: CurrentClient,
    pub router: EventRouter,
    channel: ControlChannel,
    /// Connects, forwards events and reconnects; stopped with the server.
    keeper: tokio::task::JoinHandle<()>,
}

impl Drop for EslControl {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

/// Reconnect attempts start after this and back off, doubling, up to the
/// max. Attempts asked for by a waiting call are this far apart at least,
/// so a burst of calls against a broken event socket is not a connect storm.
const ESL_RECONNECT_FIRST: Duration = Duration::from_millis(500);
const ESL_RECONNECT_MAX: Duration = Duration::from_secs(10);

impl EslControl {
    /// Starts keeping the event socket connected; returns at once. Until
    /// the first connection, commands fail as on a closed connection.
    pub fn start(cfg: EslConfig) -> EslControl {
        // Events of every connection go through one channel, so the router
        // (and the calls registered with it) outlive a reconnect.
        let (tx, rx) = tokio::sync::mpsc::channel(EVENT_QUEUE);
        let client = CurrentClient::disconnected(&cfg);
        let channel = ControlChannel::new("esl", &cfg.addr);
        let keeper = tokio::spawn(keep_connected(cfg, client.clone(), channel.clone(), tx));
        EslControl { client, router: EventRouter::spawn(rx), channel, keeper }
    }

    /// The connection as it will be whenever asked (for a call's transfers).
    pub fn current_client(&self) -> &CurrentClient {
        &self.client
    }

    /// Its connected state, for readiness.
    pub fn channel(&self) -> ControlChannel {
        self.channel.clone()
    }
}

/// A connection attempt to the event socket that failed, and where to.
#[derive(Debug, thiserror::Error)]
#[error("event socket {addr}: {source}")]
struct EslConnectError {
    addr: String,
    #[source]
    source: EslError,
}

async fn connect(cfg: &EslConfig) -> Result<(EslClient, tokio::sync::mpsc::Receiver<EslEvent>), EslConnectError> {
    let failed = |source| EslConnectError { addr: cfg.addr.clone(), source };
    let (client, events) = EslClient::connect(cfg).await.map_err(failed)?;
    client.subscribe(TRANSPORT_EVENTS).await.map_err(failed)?;
    Ok((client, events))
}

/// Connects (retrying with backoff), forwards the connection's events
/// until it ends, and starts over.
async fn keep_connected(
    cfg: EslConfig,
    client: CurrentClient,
    channel: ControlChannel,
    tx: tokio::sync::mpsc::Sender<EslEvent>,
) {
    let mut ever_connected = false;
    loop {
        let mut wait = ESL_RECONNECT_FIRST;
        let mut events = loop {
            match connect(&cfg).await {
                Ok((c, ev)) => {
                    client.replace(c);
                    break ev;
                }
                Err(e) if !ever_connected && wait == ESL_RECONNECT_FIRST => error!(
                    "FreeSWITCH transport not ready: {e}; FreeSWITCH calls get no prompts, keys or transfers \
                     until it is up, other transports are served; retrying"
                ),
                Err(e) => warn!(retry_in_ms = wait.as_millis() as u64, "event socket connect failed: {e}"),
            }
            let attempted = tokio::time::Instant::now();
            tokio::select! {
                _ = tokio::time::sleep(wait) => wait = (wait * 2).min(ESL_RECONNECT_MAX),
                _ = channel.retry_now.notified() => {
                    tokio::time::sleep_until(attempted + ESL_RECONNECT_FIRST).await;
                    wait = ESL_RECONNECT_FIRST;
                }
            }
        };
        channel.set_connected(true);
        match ever_connected {
            true => info!(addr = %cfg.addr, "event socket reconnected"),
            false => info!(addr = %cfg.addr, "FreeSWITCH transport ready: event socket connected"),
        }
        ever_connected = true;
        while let Some(e) = events.recv().await {
            if tx.send(e).await.is_err() {
                return;
            }
        }
        channel.set_connected(false);
        let reason = client.get().close_reason();
        let reason = reason.unwrap_or_else(|| "event stream ended".into());
        error!(addr = %cfg.addr, %reason, "event socket connection lost; reconnecting");
        tokio::time::sleep(ESL_RECONNECT_FIRST).await;
    }
}
