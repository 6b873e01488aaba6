//! Two `hotline serve` instances behind Debian's HAProxy, run with
//! `deploy/haproxy/haproxy.cfg` itself (its addresses from the
//! environment): calls through the balancer are spread over both; an
//! instance told to stop (SIGTERM) says it is not ready, HAProxy takes it
//! out, new calls go to the other one, and its own calls run to their end.
//! Without HAProxy the test fails and says so: `scripts/test` installs it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::operations::{folder, wait_marks};
use crate::service::{free_port, ChildServer};
use crate::support::asterisk::{AsteriskCall, AsteriskConfig};
use crate::support::server::http_get;

/// The `server` lines of deploy/haproxy/haproxy.cfg.
const SERVERS_IN_CONFIG: usize = 3;

pub(crate) fn haproxy_binary() -> &'static str {
    for path in ["/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/sbin/haproxy"] {
        if Path::new(path).exists() {
            return path;
        }
    }
    panic!("HAPROXY IS NOT INSTALLED: this test runs Debian's haproxy (scripts/test installs it with apt-get)");
}

/// HAProxy in the foreground with the deployment's config.
pub(crate) struct Balancer {
    child: Child,
    pub(crate) calls: SocketAddr,
    stats: SocketAddr,
}

impl Balancer {
    /// In front of `instances` (`hotline1`, `hotline2`, ... in the config);
    /// the config's other servers point at a port nothing listens on.
    pub(crate) fn start(instances: &[SocketAddr]) -> Balancer {
        let calls: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let stats: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy/haproxy.cfg");
        let mut haproxy = Command::new(haproxy_binary());
        haproxy.arg("-db").arg("-f").arg(&config);
        haproxy.env("HOTLINE_LB_BIND", calls.to_string()).env("HOTLINE_LB_STATS", stats.to_string());
        let nowhere = format!("127.0.0.1:{}", free_port());
        for n in 1..=SERVERS_IN_CONFIG {
            let addr = instances.get(n - 1).map_or(nowhere.clone(), ToString::to_string);
            haproxy.env(format!("HOTLINE_{n}"), addr);
        }
        let child = haproxy.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start haproxy");
        Balancer { child, calls, stats }
    }

    /// Each instance's status in HAProxy's CSV (`UP`, `DOWN`, ...).
    async fn servers(&self) -> HashMap<String, String> {
        let Ok(mut s) = tokio::net::TcpStream::connect(self.stats).await else {
            return HashMap::new();
        };
        s.write_all(b"GET /;csv HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text).await;
        let body = dechunk(text.split_once("\r\n\r\n").map_or("", |(_, body)| body));
        let mut lines = body.lines();
        let Some(header) = lines.next().and_then(|h| h.strip_prefix("# ")) else {
            return HashMap::new();
        };
        let status = header.split(',').position(|c| c == "status").unwrap();
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|row| row.first() == Some(&"hotline") && row[1].starts_with("hotline"))
            .map(|row| (row[1].to_string(), row[status].to_string()))
            .collect()
    }

    /// Waits until `hotline1`, `hotline2`, ... have the statuses `want`;
    /// how long that took.
    pub(crate) async fn wait_status(&self, want: &[&str], what: &str) -> Duration {
        let t0 = Instant::now();
        loop {
            let servers = self.servers().await;
            let now: Vec<String> =
                (1..=want.len()).map(|n| servers.get(&format!("hotline{n}")).cloned().unwrap_or_default()).collect();
            if now.iter().zip(want).all(|(got, want)| got.starts_with(want)) {
                return t0.elapsed();
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "{what}: HAProxy says {servers:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A chunked HTTP body (HAProxy sends its CSV so), joined.
fn dechunk(mut chunked: &str) -> String {
    let mut body = String::new();
    while let Some((size, rest)) = chunked.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || rest.len() < size {
            break;
        }
        body.push_str(&rest[..size]);
        chunked = rest[size..].trim_start_matches("\r\n");
    }
    body
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Calls in progress on one instance, from its `/metrics`.
pub(crate) async fn active_calls(instance: SocketAddr) -> u32 {
    let (status, text) = http_get(instance, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    text.lines()
        .filter(|l| l.starts_with("hotline_calls_active"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u32
}

async fn call(balancer: &Balancer, n: u32) -> AsteriskCall {
    let call = AsteriskCall::connect(AsteriskConfig::new(balancer.calls, n)).await.expect("a call through HAProxy");
    wait_marks(&call, 1, "greeting through HAProxy").await;
    call
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_spreads_calls_and_a_stopping_instance_gets_no_new_ones_but_finishes_its_own() {
    haproxy_binary();
    let (_dir_a, config_a) = folder("shutdown_grace_secs = 30\ncall_records = \"calls.db\"\n");
    let (_dir_b, config_b) = folder("shutdown_grace_secs = 30\ncall_records = \"calls.db\"\n");
    // One after the other: they share the tests' prompt cache.
    let mut a = ChildServer::start(&config_a, "");
    a.wait_ready().await;
    let mut b = ChildServer::start(&config_b, "");
    b.wait_ready().await;
    let balancer = Balancer::start(&[a.addr, b.addr]);
    balancer.wait_status(&["UP", "UP", "DOWN"], "both instances ready (and no third)").await;

    // Four calls at once: the fewest calls first, so two each.
    let mut calls = Vec::new();
    for n in 1..=4 {
        calls.push(call(&balancer, n).await);
    }
    assert_eq!((active_calls(a.addr).await, active_calls(b.addr).await), (2, 2), "leastconn spreads the calls");

    // Instance A is told to stop: not ready, so HAProxy takes it out...
    a.signal("TERM");
    balancer.wait_status(&["DOWN", "UP"], "the draining instance taken out").await;
    // ...new calls go to B only...
    for n in 5..=6 {
        calls.push(call(&balancer, n).await);
    }
    assert_eq!((active_calls(a.addr).await, active_calls(b.addr).await), (2, 4), "new calls on the ready instance");
    // ...and every call, A's two included, is still served to its end.
    for call in &calls {
        call.dtmf('1').await;
    }
    for call in &calls {
        wait_marks(call, 2, "the billing prompt after pressing 1").await;
    }
    assert!(a.is_running(), "A waits for its calls");
    for call in &calls {
        call.hangup().await;
    }
    let status = a.wait_exit(Duration::from_secs(20)).await.expect("A stops once its calls are over");
    assert!(status.success(), "{status:?}\n{}", a.log());
    assert!(b.is_running());
}
