//! FreeSWITCH calls while its event socket is not connected (FreeSWITCH
//! starting, or an outage): prompts can only be played over that socket,
//! so the server says it is not ready, a call that arrives waits a bounded
//! time for the socket and is then greeted, and one whose socket never
//! comes is handed back to FreeSWITCH (media stream closed) with the
//! reason in its record. The real server on loopback; FreeSWITCH is the
//! emulator in `support/`, its event socket refusing connections while
//! "down".

use std::time::{Duration, Instant};

use crate::support::freeswitch::{FakeEsl, FsMediaClient};
use crate::support::server::{deps, http_get, wait_record, DIALPLAN};
use hotline::config::ServerConfig;
use hotline::pbx::transport::Transport;
use hotline::server::{self, RunningServer};
use serde_json::Value;

const ESL_PASSWORD: &str = "ClueCon-late";
const FS_UUID: &str = "a1b2c3d4-0000-4000-8000-00000000f0e1";

struct Harness {
    server: Option<RunningServer>,
    dir: tempfile::TempDir,
}

impl Harness {
    /// A server with a mod_audio_fork listener whose event socket is `esl`.
    async fn start(esl: &FakeEsl) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("dialplans")).unwrap();
        std::fs::write(dir.path().join("dialplans/hotline.toml"), DIALPLAN).unwrap();
        let toml = format!(
            "listen = \"127.0.0.1:0\"\ndialplan_dir = \"dialplans\"\ncall_records = \"calls.jsonl\"\n\
             shutdown_grace_secs = 1\n\n[[listeners]]\ntransport = \"audio_fork\"\nlisten = \"127.0.0.1:0\"\n\
             [esl]\naddress = \"{}\"\n",
            esl.addr
        );
        let path = dir.path().join("hotline.toml");
        std::fs::write(&path, &toml).unwrap();
        let cfg = ServerConfig::from_toml_str(&toml, Some(&path), &|k| {
            (k == "HOTLINE_ESL_PASSWORD").then(|| ESL_PASSWORD.to_string())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let server = server::start(cfg, deps()).await.unwrap_or_else(|e| panic!("{e}"));
        Harness { server: Some(server), dir }
    }

    fn addr(&self, t: Transport) -> std::net::SocketAddr {
        self.server.as_ref().unwrap().addr_of(t).unwrap_or_else(|| panic!("no {t} listener"))
    }

    /// The channel `FS_UUID` forks its audio to the server (16 kHz).
    async fn fork_call(&self, esl: &FakeEsl, dir: &std::path::Path) -> FsMediaClient {
        let meta = format!(r#"{{"uuid":"{FS_UUID}","dialplan":"hotline","sampleRate":16000}}"#);
        let addr = self.addr(Transport::AudioFork);
        FsMediaClient::connect_fork(addr, FS_UUID, 16000, &meta, esl.clone(), dir.to_path_buf()).await
    }

    async fn record(&self, timeout: Duration) -> Value {
        wait_record(&self.dir.path().join("calls.jsonl"), FS_UUID, timeout).await
    }

    /// `GET /readyz` on the chan_websocket listener: status and JSON body.
    async fn readyz(&self) -> (u16, Value) {
        let (status, body) = http_get(self.addr(Transport::AsteriskWs), "/readyz").await;
        let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("/readyz body is not JSON ({e}): {body}"));
        (status, json)
    }

    async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

/// FreeSWITCH's event socket, down (refusing connections) until told to come back.
async fn event_socket_down() -> FakeEsl {
    let esl = FakeEsl::start(ESL_PASSWORD).await;
    esl.go_down();
    esl.add_channel(FS_UUID);
    esl
}

fn broadcasts(esl: &FakeEsl) -> Vec<String> {
    esl.commands().into_iter().filter(|c| c.starts_with(&format!("bgapi uuid_broadcast {FS_UUID} "))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeswitch_call_before_the_event_socket_is_up_is_greeted_once_it_connects() {
    let esl = event_socket_down().await;
    let h = Harness::start(&esl).await;
    // Long enough for the server's first connection attempts to fail and
    // its reconnect backoff to grow.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let files = tempfile::tempdir().unwrap();
    let client = h.fork_call(&esl, files.path()).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!client.received().closed, "the call waits for the event socket instead of ending");

    let up_at = Instant::now();
    esl.come_back();
    let greeting = esl.wait_for_command(&format!("bgapi uuid_broadcast {FS_UUID} "), Duration::from_secs(10)).await;
    assert!(greeting.ends_with(" aleg"), "{greeting}");
    // The caller hears the greeting: the first prompt the module wrote to a
    // file is the first broadcast to the channel (none was lost meanwhile).
    let first_file = client.received().files.first().map(|f| f.display().to_string());
    let first_file = first_file.unwrap_or_else(|| panic!("no prompt audio reached the module"));
    assert_eq!(greeting, format!("bgapi uuid_broadcast {FS_UUID} {first_file} aleg"));
    assert!(up_at.elapsed() < Duration::from_secs(5), "greeted {:?} after the socket came up", up_at.elapsed());
    assert!(!client.received().closed, "the greeted call goes on");

    client.stop().await;
    let rec = h.record(Duration::from_secs(15)).await;
    let cause = rec["hangup_cause"].as_str().unwrap_or_default();
    assert!(!cause.contains("event socket"), "the call was served: {rec:#}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_naming_the_event_socket_until_it_connects_then_200() {
    let esl = event_socket_down().await;
    let h = Harness::start(&esl).await;
    // Once every start-up step is done, the event socket is what is missing.
    let until = Instant::now() + Duration::from_secs(120);
    let body = loop {
        let (status, body) = h.readyz().await;
        assert_ne!(status, 200, "ready while FreeSWITCH's event socket is down: {body}");
        let reason = body["reason"].as_str().unwrap_or_default().to_string();
        if reason.contains("event socket") {
            assert_eq!(status, 503, "{body}");
            break body;
        }
        assert!(Instant::now() < until, "/readyz never named the event socket: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(body["ready"], false, "{body}");
    assert!(body["reason"].as_str().unwrap().contains(&esl.addr.to_string()), "the reason says where: {body}");
    assert_eq!(body["control"][0]["connected"], false, "{body}");

    esl.come_back();
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = h.readyz().await;
        if status == 200 {
            assert_eq!(body["ready"], true, "{body}");
            assert_eq!(body["control"][0]["connected"], true, "{body}");
            break;
        }
        assert!(Instant::now() < until, "not ready though the event socket came up: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeswitch_call_whose_event_socket_never_comes_is_handed_back_with_the_reason_recorded() {
    let esl = event_socket_down().await;
    let h = Harness::start(&esl).await;
    let files = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let client = h.fork_call(&esl, files.path()).await;
    // The server closes the media stream (FreeSWITCH's dialplan then goes
    // on past the fork) after waiting a bounded time for the socket.
    let received = client.wait_for("the media stream to be closed", Duration::from_secs(15), |r| r.closed).await;
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_secs(4), "closed after {waited:?}: the call must wait for the socket first");
    assert!(received.files.is_empty(), "no prompt was sent into the void: {received:?}");
    assert!(broadcasts(&esl).is_empty(), "{:?}", esl.commands());

    let rec = h.record(Duration::from_secs(10)).await;
    let cause = rec["hangup_cause"].as_str().unwrap_or_default();
    assert!(cause.contains("event socket") && cause.contains(&esl.addr.to_string()), "record says why: {rec:#}");
    h.stop().await;
}
