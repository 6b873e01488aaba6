//! The live dashboard on the `listen` port: `GET /` (HTML, JS and CSS
//! embedded in the binary), a JSON API over the calls in progress
//! ([`live`]) and the SQLite call records ([`crate::records::queries`]),
//! and a Server-Sent Events stream of the calls in progress ([`events`]).
//!
//! Who may see it: with `[auth]`, whoever the listener's credentials admit
//! (checked before a request gets here). Without `[auth]`, only loopback
//! peers that name a loopback host (an SSH tunnel to localhost works; a web
//! page that rebinds its own name to 127.0.0.1 does not), others get 403.
//! Caller speech is untrusted: the API serves it as JSON strings and the
//! page only ever sets it as `textContent`, under a Content-Security-Policy
//! that allows no inline script.
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::Semaphore;

mod assets;
mod events;
pub mod live;
mod routes;

pub use live::{LiveCalls, LiveEntry};
pub(super) use routes::answer;

/// Event streams open at once; more get 503 (each holds a connection and
/// a task; a handful of operators need a handful).
pub const MAX_EVENT_STREAMS: usize = 16;

/// What the dashboard needs beside the server's shared state.
pub struct Dashboard {
    pub live: Arc<LiveCalls>,
    /// One permit per open event stream.
    streams: Arc<Semaphore>,
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard { live: Arc::new(LiveCalls::default()), streams: Arc::new(Semaphore::new(MAX_EVENT_STREAMS)) }
    }
}

/// Says at start where the dashboard is and who may see it.
pub(super) fn announce(cfg: &crate::config::ServerConfig, addr: std::net::SocketAddr) {
    if cfg.auth.is_some() {
        tracing::info!("dashboard at http://{addr}/ (with the [auth] credentials)");
    } else {
        tracing::info!("dashboard at http://{addr}/ for loopback peers only: without [auth] others get 403");
    }
}

/// Whether `path` is one of the dashboard's routes.
pub fn serves(path: &str) -> bool {
    path == "/" || assets::find(path).is_some() || path == "/api" || path.starts_with("/api/")
}

/// Whether a request may see the dashboard, given whether `[auth]` is set
/// (its credentials were checked already), the peer's address and the
/// request's `Host` header.
pub fn admitted(auth_configured: bool, peer: IpAddr, host: Option<&str>) -> bool {
    auth_configured || (is_loopback(peer) && host.is_some_and(names_loopback))
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        // An IPv4 loopback peer on a dual-stack socket.
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// Whether a `Host` header names this machine's loopback: `localhost`,
/// `127.x.y.z` or `[::1]`, with or without a port.
fn names_loopback(host: &str) -> bool {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':')
            .map_or(host, |(name, port)| if port.bytes().all(|b| b.is_ascii_digit()) { name } else { host })
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(is_loopback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_auth_only_loopback_peers_naming_a_loopback_host_are_admitted() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let remote: IpAddr = "192.0.2.10".parse().unwrap();
        assert!(admitted(false, local, Some("127.0.0.1:8088")));
        assert!(admitted(false, local, Some("localhost:8088")));
        assert!(admitted(false, "::1".parse().unwrap(), Some("[::1]:8088")));
        assert!(admitted(false, "::ffff:127.0.0.1".parse().unwrap(), Some("localhost")));
        assert!(!admitted(false, remote, Some("127.0.0.1:8088")), "a non-loopback peer");
        assert!(!admitted(false, "::ffff:192.0.2.10".parse().unwrap(), Some("localhost")));
        assert!(!admitted(false, local, Some("evil.example:8088")), "a rebound name");
        assert!(!admitted(false, local, None));
        assert!(admitted(true, remote, Some("hotline.example:8088")), "[auth] already checked the credentials");
    }

    #[test]
    fn the_dashboard_owns_its_routes_and_no_others() {
        for p in ["/", "/dashboard.js", "/dashboard.css", "/api/calls/active", "/api/events"] {
            assert!(serves(p), "{p}");
        }
        for p in ["/metrics", "/transfer", "/decision", "/healthz", "/apix", "/index.html"] {
            assert!(!serves(p), "{p}");
        }
    }
}
