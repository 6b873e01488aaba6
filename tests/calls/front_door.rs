//! What reaches the server before a call starts: request heads that never
//! end, idle connections, credentials on every listener, the AudioSocket
//! allow-list, transfer decisions bound to their call, and the per-transport
//! message limits. The real server on loopback; the PBXs are the emulators
//! in `support/`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::asterisk::{AsteriskCall, AsteriskConfig};
use crate::support::audiosocket::AudioSocketCaller;
use crate::support::freeswitch::{FakeEsl, FsMediaClient};
use crate::support::server::{deps, events_of, wait_record, DIALPLAN};
use crate::support::twilio::TwilioCall;
use hotline::config::ServerConfig;
use hotline::pbx::transport::Transport;
use hotline::server::{self, RunningServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const USER: &str = "pbx";
const PASSWORD: &str = "listener-pass";
const STREAM_TOKEN: &str = "stream-token-4f9c2a7e1b";
const TWILIO_AUTH_TOKEN: &str = "twilio-account-token";
const TWILIO_URL: &str = "wss://hotline.example.com/twilio";
const ESL_PASSWORD: &str = "ClueCon-front";
const AUTH: &str = "\n[auth]\nusername = \"pbx\"\npassword = \"listener-pass\"\n";

struct Harness {
    server: Option<RunningServer>,
    dir: tempfile::TempDir,
}

impl Harness {
    async fn start(extra: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("dialplans")).unwrap();
        std::fs::write(dir.path().join("dialplans/hotline.toml"), DIALPLAN).unwrap();
        let toml = format!(
            "listen = \"127.0.0.1:0\"\ndialplan_dir = \"dialplans\"\ncall_records = \"calls.jsonl\"\nshutdown_grace_secs = 10\n{extra}"
        );
        let path = dir.path().join("hotline.toml");
        std::fs::write(&path, &toml).unwrap();
        let env = |k: &str| match k {
            "HOTLINE_ESL_PASSWORD" => Some(ESL_PASSWORD.to_string()),
            "HOTLINE_AUTH_TOKEN" => Some(STREAM_TOKEN.to_string()),
            "HOTLINE_TWILIO_AUTH_TOKEN" => Some(TWILIO_AUTH_TOKEN.to_string()),
            _ => None,
        };
        let cfg = ServerConfig::from_toml_str(&toml, Some(&path), &env).unwrap_or_else(|e| panic!("{e}"));
        let server = server::start(cfg, deps()).await.unwrap_or_else(|e| panic!("{e}"));
        Harness { server: Some(server), dir }
    }

    fn addr(&self, t: Transport) -> SocketAddr {
        self.server.as_ref().unwrap().addr_of(t).unwrap_or_else(|| panic!("no {t} listener"))
    }

    async fn record(&self, call_id: &str) -> serde_json::Value {
        wait_record(&self.dir.path().join("calls.jsonl"), call_id, Duration::from_secs(15)).await
    }
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Authorization: Basic {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Sends `request` as is and returns the whole answer (the server closes
/// after a plain answer; for a 101 only the head is read).
async fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
            if out.starts_with(b"HTTP/1.1 101") && out.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    });
    read.await.unwrap_or_else(|_| panic!("no answer to {request:?}"));
    String::from_utf8_lossy(&out).to_string()
}

fn get(target: &str, extra: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: hotline\r\n{extra}\r\n")
}

fn upgrade(target: &str, extra: &str) -> String {
    get(
        target,
        &format!("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}"),
    )
}

fn status(answer: &str) -> &str {
    answer.get(9..12).unwrap_or(answer)
}

/// Sockets the server holds for connections to `port` (established, or
/// closed by the client but not yet by the server), from the kernel's table.
fn server_sockets(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = f[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            local_port == Some(port) && (f[3] == "01" || f[3] == "08")
        })
        .count()
}

async fn wait_sockets(port: u16, done: impl Fn(usize) -> bool, within: Duration, what: &str) {
    let until = Instant::now() + within;
    while !done(server_sockets(port)) {
        assert!(Instant::now() < until, "{what}: the server still holds {} sockets", server_sockets(port));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the server closed `s` within `within` (EOF or reset).
async fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(within, s.read(&mut buf)).await, Ok(Ok(0)) | Ok(Err(_)))
}

async fn partial_heads(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut conns = Vec::new();
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.unwrap();
        // Bare LF line ends and no blank line: a head that never ends.
        s.write_all(b"GET /call HTTP/1.1\nHost: hotline\n").await.unwrap();
        conns.push(s);
    }
    conns
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_request_heads_are_closed_on_disconnect_and_at_the_deadline_and_hold_up_nothing() {
    let mut h = Harness::start(AUTH).await;
    let addr = h.addr(Transport::AsteriskWs);
    let mut conns = partial_heads(addr, 100).await;
    wait_sockets(addr.port(), |n| n >= 100, Duration::from_secs(3), "accepting").await;

    // Clients that give up: their sockets are closed at once, long before
    // the head deadline.
    conns.drain(20..);
    wait_sockets(addr.port(), |n| n <= 25, Duration::from_secs(2), "80 clients closed").await;

    // Calls still get through, and a bare-LF head is understood.
    let health = exchange(addr, "GET /health HTTP/1.1\nHost: hotline\n\n").await;
    assert!(health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"), "{health}");
    let mut cfg = AsteriskConfig::new(addr, 1);
    cfg.auth = Some((USER.into(), PASSWORD.into()));
    let call = AsteriskCall::connect(cfg).await.unwrap_or_else(|e| panic!("a call during the flood: {e:?}"));
    call.hangup().await;
    h.record(&call.cfg.channel_id).await;

    // The ones still open are closed at the deadline.
    for s in &mut conns {
        assert!(
            closed_by_server(s, hotline::server::http::HEAD_TIMEOUT + Duration::from_secs(2)).await,
            "head never timed out"
        );
    }
    wait_sockets(addr.port(), |n| n == 0, Duration::from_secs(2), "after the deadline").await;

    // Connections still sending their head do not hold up a shutdown.
    let _stalled = partial_heads(addr, 20).await;
    let t0 = Instant::now();
    let server = h.server.take().unwrap();
    tokio::time::timeout(Duration::from_secs(3), server.shutdown())
        .await
        .expect("shutdown waited for unfinished heads");
    assert!(t0.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_heads_are_refused_cleanly() {
    let h = Harness::start(AUTH).await;
    let addr = h.addr(Transport::AsteriskWs);
    let huge = get("/call", &format!("X-Filler: {}\r\n", "a".repeat(hotline::server::http::MAX_HEAD_BYTES)));
    let answer = exchange(addr, &huge).await;
    assert_eq!(status(&answer), "431", "{answer}");
    assert_eq!(status(&exchange(addr, "NOT HTTP AT ALL\r\n\r\n").await), "400");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_audiosocket_connections_take_no_call_slot_and_are_closed() {
    let h = Harness::start(
        "max_calls = 2\n[[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:0\"\nrate = 8000\n",
    )
    .await;
    let audiosocket = h.addr(Transport::AudioSocket);
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(audiosocket).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Both slots are free for real calls, on either transport.
    let call = AsteriskCall::connect(AsteriskConfig::new(h.addr(Transport::AsteriskWs), 1))
        .await
        .unwrap_or_else(|e| panic!("idle AudioSocket connections blocked a chan_websocket call: {e:?}"));
    let mut id = [0x41u8; 16];
    id[15] = 7;
    let caller = AudioSocketCaller::connect(audiosocket, id, 8000).await;
    let r = caller
        .wait_for("audio of a real AudioSocket call", Duration::from_secs(10), |r| !r.audio.is_empty() || r.hangup)
        .await;
    assert!(!r.hangup, "the AudioSocket call was refused");
    for s in &mut idle {
        let within = hotline::server::FIRST_MESSAGE_TIMEOUT + Duration::from_secs(1);
        assert!(closed_by_server(s, within).await, "an idle connection was kept");
    }
    call.hangup().await;
    caller.hang_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audiosocket_admits_only_the_allow_list() {
    let h = Harness::start(
        "[[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:0\"\nrate = 8000\nallow = [\"10.255.255.1\"]\n",
    )
    .await;
    let mut s = TcpStream::connect(h.addr(Transport::AudioSocket)).await.unwrap();
    let mut uuid = vec![0x01, 0x00, 0x10];
    uuid.extend_from_slice(&[0x42; 16]);
    let _ = s.write_all(&uuid).await;
    let mut buf = [0u8; 64];
    let got = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await.expect("the connection was kept");
    assert!(matches!(got, Ok(0) | Err(_)), "a source outside the allow list was served: {got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_decision_needs_credentials_and_its_calls_token_and_survives_wrong_tries() {
    let h = Harness::start(&format!("[transfer]\nmethod = \"hangup\"\n{AUTH}")).await;
    let addr = h.addr(Transport::AsteriskWs);
    let token = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6";
    let mut cfg = AsteriskConfig::new(addr, 1);
    cfg.auth = Some((USER.into(), PASSWORD.into()));
    cfg.path = format!("/call?caller_uid=1795449971.3&decision_token={token}");
    let call = AsteriskCall::connect(cfg).await.unwrap();
    assert!(call.wait_marks(1, Duration::from_secs(30)).await, "no greeting");
    call.dtmf('0').await;
    assert!(call.wait_command("HANGUP", Duration::from_secs(20)).await.is_some(), "{:?}", call.commands());

    let fetch =
        |query: String, auth: String| async move { exchange(addr, &get(&format!("/transfer?{query}"), &auth)).await };
    let creds = basic(USER, PASSWORD);
    let right = format!("uid=1795449971.3&decision_token={token}");
    assert_eq!(status(&fetch(right.clone(), String::new()).await), "401", "no credentials");
    assert_eq!(status(&fetch(right.clone(), basic(USER, "wrong")).await), "401", "wrong password");
    for other in [
        "uid=1795449971.3",
        "uid=1795449971.3&decision_token=f81d4fae-7dec-11d0-a765-00a0c91e6bf7",
        "uuid=1795449971.3",
    ] {
        let answer = fetch(other.to_string(), creds.clone()).await;
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("\r\n\r\n"), "{other}: {answer}");
    }
    let answer = fetch(right.clone(), creds.clone()).await;
    assert!(answer.ends_with("\r\n\r\noperators,100"), "the right token after wrong tries: {answer}");
    assert!(fetch(right, creds).await.ends_with("\r\n\r\n"), "handed out once");

    // A dial string without a token: the decision cannot be bound, so the
    // transfer fails politely instead of leaving it for anyone.
    let mut cfg = AsteriskConfig::new(addr, 2);
    cfg.auth = Some((USER.into(), PASSWORD.into()));
    let call = AsteriskCall::connect(cfg).await.unwrap();
    assert!(call.wait_marks(1, Duration::from_secs(30)).await, "no greeting");
    call.dtmf('0').await;
    // "Please hold", then the apology once the transfer failed.
    assert!(call.wait_marks(3, Duration::from_secs(30)).await, "{:?}", call.commands());
    call.hangup().await;
    let rec = h.record(&call.cfg.channel_id).await;
    let failed = events_of(&rec, "transfer_failed");
    assert!(failed.iter().any(|e| e.to_string().contains("decision_token")), "{rec:#}");
}

/// Starts a server with every listener kind, `[auth]` with all three
/// kinds of credentials, and a fake event socket.
async fn every_listener() -> (Harness, FakeEsl) {
    let esl = FakeEsl::start(ESL_PASSWORD).await;
    let h = Harness::start(&format!(
        "{AUTH}\n[[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:0\"\n\
         [[listeners]]\ntransport = \"audio_fork\"\nlisten = \"127.0.0.1:0\"\n\
         [[listeners]]\ntransport = \"audio_stream\"\nlisten = \"127.0.0.1:0\"\n\
         [[listeners]]\ntransport = \"twilio\"\nlisten = \"127.0.0.1:0\"\nurl = \"{TWILIO_URL}\"\n\
         [esl]\naddress = \"{}\"\n[webhook]\nurl = \"http://127.0.0.1:9/transfer\"\n",
        esl.addr
    ))
    .await;
    (h, esl)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_upgrade_of_every_listener_needs_credentials() {
    let (h, esl) = every_listener().await;
    let good_signature =
        format!("X-Twilio-Signature: {}\r\n", crate::support::twilio::signature(TWILIO_AUTH_TOKEN, TWILIO_URL));
    let wrong_signature =
        format!("X-Twilio-Signature: {}\r\n", crate::support::twilio::signature("not-the-token", TWILIO_URL));
    let wrong: Vec<(&str, String)> = vec![
        ("no credentials", String::new()),
        ("wrong password", basic(USER, "wrong")),
        ("wrong user", basic("someone", PASSWORD)),
        ("wrong signature", wrong_signature),
    ];
    let token_query = |target: &str, token: &str| {
        let sep = if target.contains('?') { '&' } else { '?' };
        format!("{target}{sep}token={token}")
    };
    let routes =
        ["/", "/call", "/transfer?uid=1795449971.3", "/decision?uuid=a1b2c3d4-0000-4000-8000-00000000f001", "/x"];
    for transport in [Transport::AsteriskWs, Transport::AudioFork, Transport::AudioStream, Transport::Twilio] {
        let addr = h.addr(transport);
        let good: Vec<(&str, String, String)> = vec![
            ("basic auth", String::new(), basic(USER, PASSWORD)),
            ("token", STREAM_TOKEN.to_string(), String::new()),
        ];
        for route in routes {
            for (what, headers) in &wrong {
                for request in [
                    get(route, headers),
                    upgrade(route, headers),
                    get(&token_query(route, "stream-token-wrong00"), headers),
                ] {
                    let answer = exchange(addr, &request).await;
                    assert_eq!(status(&answer), "401", "{transport} {route} with {what}: {answer}");
                }
            }
            for (what, token, headers) in &good {
                let target = if token.is_empty() { route.to_string() } else { token_query(route, token) };
                let answer = exchange(addr, &get(&target, headers)).await;
                // `/` on the `listen` port is the dashboard.
                let expected = if transport == Transport::AsteriskWs
                    && (route.starts_with("/transfer") || route.starts_with("/decision") || route == "/")
                {
                    "200"
                } else {
                    "404"
                };
                assert_eq!(status(&answer), expected, "{transport} GET {route} with {what}: {answer}");
            }
        }
        // With credentials the upgrade is answered (the fork's subprotocol
        // is optional in the request).
        for (what, token, headers) in &good {
            let target = if token.is_empty() { "/media".to_string() } else { token_query("/media", token) };
            let answer = exchange(addr, &upgrade(&target, headers)).await;
            assert_eq!(status(&answer), "101", "{transport} upgrade with {what}: {answer}");
        }
        // Health checks need no credentials: the answer tells nothing.
        let health = exchange(addr, &get("/health", "")).await;
        assert!(health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"), "{transport}: {health}");
    }
    let twilio = h.addr(Transport::Twilio);
    assert_eq!(status(&exchange(twilio, &upgrade("/media", &good_signature)).await), "101", "Twilio's signature");
    assert_eq!(
        status(&exchange(h.addr(Transport::AsteriskWs), &upgrade("/media", &good_signature)).await),
        "401",
        "no url to sign"
    );
    assert!(
        esl.commands().iter().all(|c| !c.starts_with("bgapi uuid_")),
        "a refused connection reached the event socket: {:?}",
        esl.commands()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_pbx_authenticates_its_own_way_and_a_call_runs() {
    let (h, esl) = every_listener().await;
    let files = tempfile::tempdir().unwrap();
    let dir = files.path().to_path_buf();

    // mod_audio_fork: basic auth from MOD_AUDIO_BASIC_AUTH_USERNAME/_PASSWORD.
    let fork_uuid = "a1b2c3d4-0000-4000-8000-0000000f0a01";
    esl.add_channel(fork_uuid);
    let meta = format!(r#"{{"uuid":"{fork_uuid}","sampleRate":8000}}"#);
    let addr = h.addr(Transport::AudioFork);
    let fork = FsMediaClient::connect_fork_with_auth(
        addr,
        Some((USER, PASSWORD)),
        fork_uuid,
        8000,
        &meta,
        esl.clone(),
        dir.clone(),
    )
    .await;
    esl.wait_for_command(&format!("bgapi uuid_broadcast {fork_uuid} "), Duration::from_secs(30)).await;

    // mod_audio_stream: the token in the URL given to uuid_audio_stream.
    let stream_uuid = "a1b2c3d4-0000-4000-8000-0000000f0a02";
    esl.add_channel(stream_uuid);
    let meta = format!(r#"{{"uuid":"{stream_uuid}"}}"#);
    let path = format!("/stream?token={STREAM_TOKEN}");
    let stream = FsMediaClient::connect_stream_to(
        h.addr(Transport::AudioStream),
        &path,
        stream_uuid,
        8000,
        &meta,
        esl.clone(),
        dir,
    )
    .await;
    esl.wait_for_command(&format!("bgapi uuid_broadcast {stream_uuid} "), Duration::from_secs(30)).await;

    // Twilio: X-Twilio-Signature over the <Stream> url.
    let url = format!("ws://{}/twilio", h.addr(Transport::Twilio));
    let twilio = TwilioCall::connect_signed(&url, Some((TWILIO_AUTH_TOKEN, TWILIO_URL)), "CA00f1", &[]).await;
    twilio.wait_for("greeting audio", Duration::from_secs(30), |r| r.media_bytes > 0).await;

    drop((fork, stream));
    twilio.stop().await;
    h.record("CA00f1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeswitch_audio_messages_up_to_the_documented_mebibyte_are_taken() {
    let (h, esl) = every_listener().await;
    let files = tempfile::tempdir().unwrap();
    let uuid = "a1b2c3d4-0000-4000-8000-0000000f0b01";
    esl.add_channel(uuid);
    let meta = format!(r#"{{"uuid":"{uuid}","sampleRate":16000}}"#);
    let addr = h.addr(Transport::AudioFork);
    let mut fork = FsMediaClient::connect_fork_with_auth(
        addr,
        Some((USER, PASSWORD)),
        uuid,
        16000,
        &meta,
        esl.clone(),
        files.path().into(),
    )
    .await;
    // What the module sends after a stall: everything it buffered, here
    // 5 s of 16 kHz L16 (160 000 bytes) in one message.
    fork.send_raw(Message::binary(vec![0u8; 160_000])).await;
    esl.wait_for_command(&format!("bgapi uuid_broadcast {uuid} "), Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!fork.received().closed, "the call ended on a large audio message");
    assert!(!esl.commands().iter().any(|c| c.starts_with("bgapi uuid_kill")), "{:?}", esl.commands());
    // Beyond the limit the call ends, with the reason in its record.
    fork.send_raw(Message::binary(vec![0u8; hotline::pbx::audio_fork::MAX_AUDIO_BYTES + 2])).await;
    let rec = h.record(uuid).await;
    let cause = rec["hangup_cause"].as_str().unwrap_or("");
    assert!(cause.contains("too long") || cause.contains("larger"), "{rec:#}");
}
