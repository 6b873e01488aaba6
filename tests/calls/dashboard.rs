//! The dashboard's JSON API and event stream against `hotline serve` with
//! emulated calls over loopback and a real SQLite record file: the calls
//! in progress while a call runs, the finished calls with their outcomes,
//! the funnel equal to what the calls did, a call's timeline in order, and
//! who may see any of it.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::operations::{caller, folder, wait_hangup, wait_marks, PASSWORD, USER};
use crate::service::ChildServer;
use crate::support::asterisk::AsteriskCall;
use crate::support::server::clip;

/// An HTTP answer: status, head, body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        assert!(self.head.contains("Content-Type: application/json"), "{}", self.head);
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// `GET path` with `Host: host` and, when `auth`, the `[auth]` credentials.
async fn get(addr: SocketAddr, path: &str, host: &str, auth: bool) -> Answer {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let cred = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let auth = if auth { format!("Authorization: Basic {cred}\r\n") } else { String::new() };
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n").as_bytes()).await.unwrap();
    let mut text = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut text)).await;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Answer { status, head: head.to_string(), body: body.to_string() }
}

pub(crate) async fn api(addr: SocketAddr, path: &str) -> Value {
    let answer = get(addr, path, &addr.to_string(), false).await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    answer.json()
}

/// Polls `path` until `done` holds for its JSON.
async fn wait_api(addr: SocketAddr, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let t0 = Instant::now();
    loop {
        let v = api(addr, path).await;
        if done(&v) {
            return v;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "{what}: {path} says {v:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The dashboard's event stream, read event by event.
struct EventStream {
    stream: tokio::net::TcpStream,
    buf: String,
}

impl EventStream {
    async fn open(addr: SocketAddr) -> EventStream {
        Self::try_open(addr).await.unwrap_or_else(|head| panic!("no event stream: {head}"))
    }

    /// The stream, or the head of the answer that refused it.
    async fn try_open(addr: SocketAddr) -> Result<EventStream, String> {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET /api/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut s = EventStream { stream, buf: String::new() };
        let head = s.next_block().await;
        if head.starts_with("HTTP/1.1 200") && head.contains("text/event-stream") {
            Ok(s)
        } else {
            Err(head)
        }
    }

    /// The next block up to a blank line (CRLF for the head, LF for events).
    async fn next_block(&mut self) -> String {
        let t0 = Instant::now();
        loop {
            for sep in ["\r\n\r\n", "\n\n"] {
                if let Some(end) = self.buf.find(sep) {
                    let block = self.buf[..end].to_string();
                    self.buf.drain(..end + sep.len());
                    return block;
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(
                Duration::from_secs(20).saturating_sub(t0.elapsed()),
                self.stream.read(&mut chunk),
            )
            .await
            .expect("an event within 20 s")
            .unwrap();
            assert!(n > 0, "the event stream closed; had {:?}", self.buf);
            self.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    }

    /// Waits for an event named `name` whose data satisfies `done`.
    async fn wait(&mut self, name: &str, done: impl Fn(&Value) -> bool) -> Value {
        loop {
            let block = self.next_block().await;
            let mut event = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str::<Value>(v).unwrap());
                }
            }
            if let (Some(e), Some(d)) = (event, data) {
                if e == name && done(&d) {
                    return d;
                }
            }
        }
    }
}

impl EventStream {
    /// Whether the server closes the stream within `timeout` (events
    /// before the close are skipped).
    async fn closes_within(&mut self, timeout: Duration) -> bool {
        let mut chunk = [0u8; 4096];
        let t0 = Instant::now();
        while let Some(left) = timeout.checked_sub(t0.elapsed()) {
            match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
                Err(_) => return false,
            }
        }
        false
    }
}

fn event_types(timeline: &Value) -> Vec<&str> {
    timeline["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_api_shows_live_calls_finished_outcomes_the_funnel_and_timelines() {
    let (_dir, config) = folder("shutdown_grace_secs = 1\ncall_records = \"calls.db\"\n");
    let mut server = ChildServer::start(&config, "");
    server.wait_ready().await;
    let addr = server.addr;
    assert!(server.log().contains("for loopback peers only"), "{}", server.log());
    let page = get(addr, "/", &addr.to_string(), false).await;
    assert_eq!(page.status, 200);
    assert!(page.head.contains("text/html") && page.head.contains("script-src 'self'"), "{}", page.head);
    assert_eq!(api(addr, "/api/calls/active").await["calls"], serde_json::json!([]));
    let mut events = EventStream::open(addr).await;
    events.wait("active", |d| d["calls"] == serde_json::json!([])).await;

    // 1: keys to billing, then "pay": a transfer the dialplan asks for.
    let by_keys = AsteriskCall::connect(caller(addr, 1)).await.unwrap();
    let id1 = by_keys.cfg.channel_id.clone();
    wait_marks(&by_keys, 1, "greeting").await;
    let live = wait_api(addr, "/api/calls/active", "the call in main", |v| v["calls"][0]["menu"] == "main").await;
    assert_eq!(live["calls"].as_array().unwrap().len(), 1, "{live:#}");
    let call = &live["calls"][0];
    assert_eq!(
        (call["call_id"].as_str(), call["transport"].as_str(), call["dialplan"].as_str()),
        (Some(id1.as_str()), Some("asterisk_ws"), Some("hotline"))
    );
    assert!(call.get("caller_id").is_none(), "no caller number on the dashboard: {call}");
    events.wait("active", |d| d["calls"][0]["call_id"] == id1.as_str()).await;
    by_keys.dtmf('1').await;
    wait_marks(&by_keys, 2, "billing prompt").await;
    let live = wait_api(addr, "/api/calls/active", "the call in billing", |v| v["calls"][0]["menu"] == "billing").await;
    assert_eq!(live["calls"][0]["last_intent"], "main/billing", "{live:#}");
    assert_eq!(live["calls"][0]["last_intent_source"], "dtmf", "{live:#}");
    by_keys.dtmf('1').await;
    wait_hangup(&by_keys).await;
    events.wait("finished", |_| true).await;

    // 2: "one" spoken (a real recording) to billing, then 0: the caller asks for a human.
    let by_voice = AsteriskCall::connect(caller(addr, 2)).await.unwrap();
    let id2 = by_voice.cfg.channel_id.clone();
    wait_marks(&by_voice, 1, "greeting").await;
    by_voice.say(&clip("speech_commands/one_2796ac50_nohash_0.wav", 16000)).await;
    wait_marks(&by_voice, 2, "billing prompt after speech").await;
    let live = wait_api(addr, "/api/calls/active", "the spoken answer", |v| v["calls"][0]["menu"] == "billing").await;
    assert_eq!(live["calls"][0]["last_intent_source"], "speech", "{live:#}");
    assert!(live["calls"][0]["last_utterance"].as_str().is_some_and(|t| !t.is_empty()), "{live:#}");
    by_voice.dtmf('0').await;
    wait_hangup(&by_voice).await;

    // Finished calls, newest first, with their outcomes.
    let recent = wait_api(addr, "/api/calls/recent", "two finished calls", |v| {
        v["calls"].as_array().is_some_and(|c| c.len() == 2)
    })
    .await;
    let summary: Vec<(&str, &str, &str, &str)> = recent["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["call_id"].as_str().unwrap(),
                c["outcome"].as_str().unwrap(),
                c["transfer_reason"].as_str().unwrap_or(""),
                c["transfer_target"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (id2.as_str(), "transferred", "asked", "operators/100"),
            (id1.as_str(), "transferred", "dialplan", "payments/220")
        ]
    );
    assert_eq!(api(addr, "/api/calls/active").await["calls"], serde_json::json!([]), "no call in progress");

    // The funnel is what the two calls did.
    let f = api(addr, "/api/funnel?dialplan=hotline&since=0").await;
    assert_eq!(f["calls"], 2, "{f:#}");
    assert_eq!(f["transfers"], serde_json::json!({"asked": 1, "dialplan": 1}), "{f:#}");
    let menu = |name: &str| f["menus"].as_array().unwrap().iter().find(|m| m["menu"] == name).cloned().unwrap();
    let option = |m: &Value, intent: &str| {
        let o = m["options"].as_array().unwrap().iter().find(|o| o["intent"] == intent).cloned().unwrap_or_default();
        (o["speech"].as_u64().unwrap_or(0), o["dtmf"].as_u64().unwrap_or(0))
    };
    let (main, billing) = (menu("main"), menu("billing"));
    assert_eq!((main["callers"].as_u64(), billing["callers"].as_u64()), (Some(2), Some(2)), "{f:#}");
    assert_eq!(option(&main, "billing"), (1, 1), "one caller said it, one pressed it: {f:#}");
    assert_eq!(option(&billing, "pay"), (0, 1), "{f:#}");
    assert_eq!(option(&billing, "agent"), (0, 1), "{f:#}");
    assert_eq!((main["no_match"].as_u64(), main["no_input"].as_u64()), (Some(0), Some(0)), "{f:#}");
    let later = api(addr, &format!("/api/funnel?dialplan=hotline&since={}", u64::MAX / 2)).await;
    assert_eq!(later["calls"], 0, "no call in a period after them: {later:#}");

    // A call's timeline: its events in order, as stored.
    let timeline = api(addr, &format!("/api/calls/{id1}")).await;
    assert_eq!(event_types(&timeline), ["prompt", "dtmf", "intent", "prompt", "dtmf", "intent", "prompt", "transfer"]);
    let times: Vec<u64> = timeline["events"].as_array().unwrap().iter().map(|e| e["t_ms"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in call order: {times:?}");
    let voice = api(addr, &format!("/api/calls/{id2}")).await;
    let types = event_types(&voice);
    let heard = types.iter().position(|t| *t == "utterance").expect("the spoken word");
    assert!(heard < types.iter().position(|t| *t == "intent").unwrap(), "{types:?}");
    assert_eq!(get(addr, "/api/calls/no-such-call", &addr.to_string(), false).await.status, 404);
    assert_eq!(
        get(addr, &format!("/api/calls/{id1}/audio"), &addr.to_string(), false).await.status,
        404,
        "audio not kept"
    );

    // A page elsewhere that rebinds its own name to 127.0.0.1 gets nothing.
    let rebound = get(addr, "/api/calls/recent", "attacker.example", false).await;
    assert_eq!(rebound.status, 403, "{}", rebound.body);
    assert!(!rebound.body.contains(&id1), "{}", rebound.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_the_dashboard_its_api_and_events_need_the_credentials() {
    let (_dir, config) = folder(&format!(
        "shutdown_grace_secs = 1\ncall_records = \"calls.db\"\n[auth]\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\n"
    ));
    let mut server = ChildServer::start(&config, "");
    server.wait_ready().await;
    let addr = server.addr;
    for path in
        ["/", "/dashboard.js", "/api/calls/active", "/api/calls/recent", "/api/funnel", "/api/events", "/metrics"]
    {
        let refused = get(addr, path, &addr.to_string(), false).await;
        assert_eq!(refused.status, 401, "{path} without credentials: {}", refused.head);
        assert!(refused.head.contains("WWW-Authenticate: Basic"), "{path}: {}", refused.head);
    }
    let page = get(addr, "/", &addr.to_string(), true).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("/dashboard.js"), "{}", page.body);
    // With credentials the host name does not matter (a proxy's name).
    let recent = get(addr, "/api/calls/recent", "hotline.example", true).await;
    assert_eq!(recent.status, 200, "{}", recent.body);
    assert_eq!(recent.json()["calls"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_json_lines_records_the_api_says_it_shows_live_calls_only() {
    let (_dir, config) = folder("shutdown_grace_secs = 1\ncall_records = \"calls.jsonl\"\n");
    let mut server = ChildServer::start(&config, "");
    server.wait_ready().await;
    let addr = server.addr;
    for path in ["/api/calls/recent", "/api/funnel?dialplan=hotline", "/api/calls/x"] {
        let answer = get(addr, path, "localhost", false).await;
        assert_eq!(answer.status, 501, "{path}: {}", answer.body);
        let why = answer.json()["error"].as_str().unwrap().to_string();
        assert!(why.contains("JSON lines") && why.contains("live calls only"), "{path}: {why}");
    }
    assert_eq!(get(addr, "/api/calls/active", "localhost", false).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_are_capped_and_do_not_hold_up_a_shutdown() {
    let (_dir, config) = folder("shutdown_grace_secs = 30\ncall_records = \"calls.db\"\n");
    let mut server = ChildServer::start(&config, "");
    server.wait_ready().await;
    let addr = server.addr;
    let mut streams = Vec::new();
    for _ in 0..16 {
        let mut s = EventStream::open(addr).await;
        s.wait("active", |_| true).await;
        streams.push(s);
    }
    let refused = get(addr, "/api/events", "localhost", false).await;
    assert_eq!(refused.status, 503, "a 17th stream: {}", refused.head);
    // The other routes still answer while the streams are open.
    assert_eq!(get(addr, "/api/calls/active", "localhost", false).await.status, 200);
    drop(streams.pop());
    let t0 = Instant::now();
    let mut again = loop {
        // The server notices the closed stream as its read ends.
        match EventStream::try_open(addr).await {
            Ok(s) => break s,
            Err(head) => assert!(head.contains("503"), "{head}"),
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "the closed stream's place was not freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    again.wait("active", |_| true).await;
    // SIGTERM with no call in progress: the open dashboards do not keep
    // the server waiting for its 30 s grace.
    let t0 = Instant::now();
    server.signal("TERM");
    streams.push(again);
    for s in &mut streams {
        assert!(s.closes_within(Duration::from_secs(5)).await, "an event stream still open after SIGTERM");
    }
    let status = server.wait_exit(Duration::from_secs(10)).await.expect("the server stops");
    assert!(status.success(), "{status:?}\n{}", server.log());
    assert!(t0.elapsed() < Duration::from_secs(10), "took {:?}", t0.elapsed());
}
