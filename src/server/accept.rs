//! Accepting connections: one loop per listener that never waits on a
//! peer. It checks the listener's source-address allow-list and how many
//! connections are still between accept and the start of a call
//! ([`MAX_HANDSHAKING`]); reading from the peer happens in the
//! connection's own task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::warn;

use super::{Endpoint, MAX_HANDSHAKING};
use crate::config::AddrRange;

/// A bound listener and what it speaks.
pub(super) struct Bound {
    pub(super) listener: TcpListener,
    /// Source addresses that may connect.
    pub(super) allow: Vec<AddrRange>,
    pub(super) endpoint: Arc<Endpoint>,
}

/// A connection that has not started a call yet: the permit counts it
/// against its listener's [`MAX_HANDSHAKING`].
pub(super) struct Accepted {
    pub(super) stream: TcpStream,
    pub(super) peer: SocketAddr,
    pub(super) endpoint: Arc<Endpoint>,
    pub(super) handshaking: OwnedSemaphorePermit,
}

/// New connections from all listeners; a few at most wait here.
pub(super) const ACCEPT_QUEUE: usize = 64;

/// Accepts on one listener until the server stops accepting. It never
/// reads from a peer: that happens in the connection's own task.
pub(super) async fn accept_loop(b: Bound, tx: tokio::sync::mpsc::Sender<Accepted>) {
    let handshaking = Arc::new(Semaphore::new(MAX_HANDSHAKING));
    let transport = b.endpoint.transport;
    loop {
        match b.listener.accept().await {
            Ok((stream, peer)) => {
                if !b.allow.iter().any(|r| r.contains(peer.ip())) {
                    warn!(%peer, %transport, "refused: source address not in the listener's allow list");
                    crate::metrics::connection_refused("not_allowed");
                    continue;
                }
                let Ok(permit) = Arc::clone(&handshaking).try_acquire_owned() else {
                    warn!(%peer, %transport, limit = MAX_HANDSHAKING, "refused: too many connections have not started a call");
                    crate::metrics::connection_refused("handshakes");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let accepted = Accepted { stream, peer, endpoint: Arc::clone(&b.endpoint), handshaking: permit };
                if tx.send(accepted).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!(%transport, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
