//! End to end through the real server (speech models, TTS prompts, call
//! machine) for the transports besides chan_websocket: AudioSocket over raw
//! TCP, Twilio Media Streams with the transfer webhook, FreeSWITCH
//! mod_audio_fork with the event socket. The PBX side is played by the
//! emulators in `support/`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::ami::{FakeAmi, FakeAmiConfig, Fate};
use crate::support::asterisk::{AsteriskCall, AsteriskConfig};
use crate::support::audiosocket::AudioSocketCaller;
use crate::support::freeswitch::{FakeEsl, FsMediaClient};
use crate::support::server::{clip, deps, events_of, http_get, wait_record, DIALPLAN};
use crate::support::twilio::TwilioCall;
use hotline::config::ServerConfig;
use hotline::pbx::transport::Transport;
use hotline::server::{self, RunningServer};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ESL_PASSWORD: &str = "ClueCon-test";
const FS_UUID: &str = "a1b2c3d4-0000-4000-8000-00000000f001";

struct Harness {
    server: Option<RunningServer>,
    dir: tempfile::TempDir,
}

impl Harness {
    /// A mod_audio_fork call of channel `FS_UUID` at 16 kHz on the default
    /// dialplan, its prompt files written under `dir`.
    async fn fork_call(&self, esl: &FakeEsl, dir: &std::path::Path) -> FsMediaClient {
        let meta = format!(r#"{{"uuid":"{FS_UUID}","dialplan":"hotline","sampleRate":16000}}"#);
        FsMediaClient::connect_fork(
            self.addr(Transport::AudioFork),
            FS_UUID,
            16000,
            &meta,
            esl.clone(),
            dir.to_path_buf(),
        )
        .await
    }

    async fn start(extra: &str) -> Harness {
        Self::start_with(extra, DIALPLAN).await
    }

    async fn start_with(extra: &str, dialplan: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("dialplans")).unwrap();
        std::fs::write(dir.path().join("dialplans/hotline.toml"), dialplan).unwrap();
        let mut toml = String::from(
            "listen = \"127.0.0.1:0\"\ndialplan_dir = \"dialplans\"\ncall_records = \"calls.jsonl\"\nshutdown_grace_secs = 1\n",
        );
        toml.push_str(extra);
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

    /// Waits for the call record of `call_id` (written when the call ends).
    async fn record(&self, call_id: &str, timeout: Duration) -> Value {
        wait_record(&self.dir.path().join("calls.jsonl"), call_id, timeout).await
    }

    async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

const AUDIOSOCKET: &str = "\n[[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:0\"\nrate = 8000\n";

fn uuid(n: u8) -> ([u8; 16], String) {
    let mut b = [0x40u8; 16];
    b[15] = n;
    (b, hotline::pbx::audiosocket::format_uuid(&b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audiosocket_prompt_is_paced_in_real_time_dtmf_reaches_a_menu_and_keepalives_flow() {
    let h = Harness::start(AUDIOSOCKET).await;
    let (id, id_text) = uuid(1);
    let mut caller = AudioSocketCaller::connect(h.addr(Transport::AudioSocket), id, 8000).await;
    // Until the greeting is rendered only keep-alives (silent frames) come;
    // then it arrives as 20 ms frames at the pace they play.
    let frame_has_sound =
        |r: &crate::support::audiosocket::Received, i: usize| r.samples[i * 160..(i + 1) * 160].iter().any(|&s| s != 0);
    let r = caller
        .wait_for("a second of greeting", Duration::from_secs(30), |r| {
            (0..r.audio.len()).position(|i| frame_has_sound(r, i)).is_some_and(|start| r.audio.len() >= start + 60)
        })
        .await;
    assert!(r.audio.iter().all(|(kind, len, _)| *kind == 0x10 && *len == 320), "20 ms slin frames only");
    let start = (0..r.audio.len()).position(|i| frame_has_sound(&r, i)).unwrap();
    let (first, last) = (r.audio[start].2, r.audio[start + 59].2);
    let per_frame = (last - first) as f64 / 59.0;
    assert!((17.0..=23.0).contains(&per_frame), "frames every {per_frame:.1} ms, not in real time");
    assert!(
        r.audio[..start].windows(2).all(|w| w[1].2 - w[0].2 <= 1100),
        "keep-alives at least every second while rendering"
    );

    caller.send_dtmf('2').await;
    // Support prompt, then silence: keep-alives must keep coming (≤ 1 s apart).
    tokio::time::sleep(Duration::from_secs(7)).await;
    let r = caller.received();
    assert!(r.violation.is_none() && !r.hangup && !r.closed, "{r:?}");
    let tail: Vec<u64> = r.audio.iter().map(|a| a.2).filter(|&t| t + 3000 > r.audio.last().unwrap().2).collect();
    let gap = tail.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(u64::MAX);
    assert!(gap <= 1100, "longest silence without a frame: {gap} ms");

    caller.hang_up().await;
    let rec = h.record(&id_text, Duration::from_secs(10)).await;
    let intents = events_of(&rec, "intent");
    assert_eq!(intents[0]["intent"], "support", "{rec:#}");
    assert!(events_of(&rec, "prompt").iter().any(|p| p["menu"] == "support"), "{rec:#}");
    assert!(rec["hangup_cause"].as_str().unwrap().contains("closed"), "{}", rec["hangup_cause"]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_audiosocket_frame_ends_only_that_call() {
    let h = Harness::start(AUDIOSOCKET).await;
    let addr = h.addr(Transport::AudioSocket);
    let (good_id, good_text) = uuid(2);
    let (bad_id, bad_text) = uuid(3);
    let mut good = AudioSocketCaller::connect(addr, good_id, 8000).await;
    let mut bad = AudioSocketCaller::connect(addr, bad_id, 8000).await;
    bad.wait_for("greeting", Duration::from_secs(30), |r| !r.audio.is_empty()).await;
    // A DTMF message with a two-byte payload.
    bad.send_raw(&[0x03, 0x00, 0x02, b'1', b'2']).await;
    bad.wait_for("hangup", Duration::from_secs(5), |r| r.hangup || r.closed).await;
    let rec = h.record(&bad_text, Duration::from_secs(10)).await;
    assert!(rec["hangup_cause"].as_str().unwrap().contains("DTMF payload"), "{}", rec["hangup_cause"]);

    good.send_dtmf('1').await;
    let before = good.received().audio.len();
    let r = good
        .wait_for("the other call going on", Duration::from_secs(30), |r| {
            r.audio.len() > before + 15 || r.hangup || r.closed
        })
        .await;
    assert!(
        !r.hangup && !r.closed && r.violation.is_none(),
        "the other call stopped: hangup {} closed {}",
        r.hangup,
        r.closed
    );
    good.hang_up().await;
    let rec = h.record(&good_text, Duration::from_secs(10)).await;
    assert_eq!(events_of(&rec, "intent")[0]["intent"], "billing", "{rec:#}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audiosocket_transfer_hangs_up_and_leaves_the_target_for_the_asterisk_dialplan() {
    let h = Harness::start(AUDIOSOCKET).await;
    let (id, id_text) = uuid(4);
    let mut caller = AudioSocketCaller::connect(h.addr(Transport::AudioSocket), id, 8000).await;
    caller.send_dtmf('2').await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    caller.send_dtmf('1').await;
    let r = caller.wait_for("the hangup message", Duration::from_secs(30), |r| r.hangup || r.closed).await;
    assert!(r.hangup, "the call ends with 00 00 00");
    // What CURL(http://hotline/decision?uuid=${AS_ID}) fetches.
    let mut s = tokio::net::TcpStream::connect(h.addr(Transport::AsteriskWs)).await.unwrap();
    s.write_all(format!("GET /decision?uuid={id_text} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("tech,310"), "{answer}");
    let rec = h.record(&id_text, Duration::from_secs(10)).await;
    assert_eq!(rec["transfer"]["method"], "hangup", "{rec:#}");
    h.stop().await;
}

/// A one-shot HTTP server on loopback that records the request body.
async fn webhook_listener() -> (String, Arc<Mutex<Vec<String>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/twilio/transfer", l.local_addr().unwrap());
    let hits = Arc::new(Mutex::new(Vec::new()));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Head, then Content-Length bytes of body.
            let body = loop {
                let n = s.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break String::new();
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break text[end + 4..end + 4 + len].to_string();
                    }
                }
            };
            h.lock().unwrap().push(body);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
        }
    });
    (url, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_prompt_comes_back_with_a_mark_and_a_transfer_hits_the_webhook() {
    let (url, hits) = webhook_listener().await;
    let h = Harness::start(&format!(
        "\n[[listeners]]\ntransport = \"twilio\"\nlisten = \"127.0.0.1:0\"\n[webhook]\nurl = \"{url}\"\ntimeout_ms = 2000\n"
    ))
    .await;
    let ws = format!("ws://{}/media", h.addr(Transport::Twilio));
    let mut call = TwilioCall::connect(&ws, "CA0001", &[("dialplan", "hotline")]).await;
    call.wait_for("greeting audio", Duration::from_secs(30), |r| r.media_bytes > 0).await;
    // Speech over the greeting: barge-in, then "one" → billing.
    call.send_audio_paced(&clip("speech_commands/one_2796ac50_nohash_0.wav", 8000)).await;
    call.send_audio_paced(&vec![0i16; 8000]).await;
    let r = call.wait_for("the billing prompt's mark", Duration::from_secs(30), |r| r.marks.len() >= 2).await;
    assert!(r.clears >= 1, "speaking over the greeting clears Twilio's buffer: {r:?}");
    call.send_dtmf('1').await;
    let until = Instant::now() + Duration::from_secs(15);
    while hits.lock().unwrap().is_empty() {
        assert!(Instant::now() < until, "the webhook was never called");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let body: Value = serde_json::from_str(&hits.lock().unwrap()[0]).unwrap();
    assert_eq!(body["call_sid"], "CA0001");
    assert_eq!(body["extension"], "220");
    assert_eq!(body["context"], "payments");
    let rec = h.record("CA0001", Duration::from_secs(10)).await;
    assert_eq!(events_of(&rec, "intent")[0]["intent"], "billing", "{rec:#}");
    assert_eq!(rec["transfer"]["method"], "webhook", "{rec:#}");
    assert_eq!(rec["transfer"]["result"], "ok", "{rec:#}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_fork_prompts_play_by_broadcast_keys_barge_in_and_transfer_over_the_event_socket() {
    freeswitch_scenario(Transport::AudioFork).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_stream_prompts_play_by_broadcast_keys_barge_in_and_transfer_over_the_event_socket() {
    freeswitch_scenario(Transport::AudioStream).await;
}

async fn freeswitch_scenario(transport: Transport) {
    let esl = FakeEsl::start(ESL_PASSWORD).await;
    esl.add_channel(FS_UUID);
    let h = Harness::start(&format!(
        "\n[[listeners]]\ntransport = \"{transport}\"\nlisten = \"127.0.0.1:0\"\n[esl]\naddress = \"{}\"\n",
        esl.addr
    ))
    .await;
    let files = tempfile::tempdir().unwrap();
    let rate = if transport == Transport::AudioFork { 16000 } else { 8000 };
    let meta = format!(r#"{{"uuid":"{FS_UUID}","dialplan":"hotline","caller_id":"1001","sampleRate":{rate}}}"#);
    let (addr, dir) = (h.addr(transport), files.path().to_path_buf());
    let client = if transport == Transport::AudioFork {
        FsMediaClient::connect_fork(addr, FS_UUID, rate, &meta, esl.clone(), dir).await
    } else {
        FsMediaClient::connect_stream(addr, FS_UUID, rate, &meta, esl.clone(), dir).await
    };
    let first = esl.wait_for_command(&format!("bgapi uuid_broadcast {FS_UUID} "), Duration::from_secs(30)).await;
    assert!(first.ends_with(" aleg"), "{first}");
    // A key while the greeting plays: barge-in, then the support prompt.
    esl.emit_dtmf(FS_UUID, '2');
    esl.wait_for_command(&format!("bgapi uuid_break {FS_UUID} all"), Duration::from_secs(5)).await;
    if transport == Transport::AudioFork {
        client.wait_for("killAudio", Duration::from_secs(5), |r| r.kill_audio >= 1).await;
    }
    let until = Instant::now() + Duration::from_secs(30);
    while esl.commands().iter().filter(|c| c.starts_with("bgapi uuid_broadcast")).count() < 2 {
        assert!(Instant::now() < until, "support prompt never broadcast: {:?}", esl.commands());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    esl.emit_dtmf(FS_UUID, '1');
    let transfer = esl.wait_for_command(&format!("bgapi uuid_transfer {FS_UUID}"), Duration::from_secs(15)).await;
    assert_eq!(transfer, format!("bgapi uuid_transfer {FS_UUID} 310 XML tech"));
    let rec = h.record(FS_UUID, Duration::from_secs(15)).await;
    let intents: Vec<Value> = events_of(&rec, "intent").iter().map(|e| e["intent"].clone()).collect();
    assert_eq!(intents, vec![Value::from("support"), Value::from("internet")], "{rec:#}");
    assert_eq!(rec["transfer"]["result"], "ok", "{rec:#}");
    assert!(!esl.commands().iter().any(|c| c.starts_with("bgapi uuid_kill")), "a transferred call must not be killed");
    drop(client);
    h.stop().await;
}

/// One menu with a short no-input timeout: each prompt's end starts a 2 s
/// timer whose expiry plays the next prompt, so the time of that prompt's
/// broadcast shows when the server took the previous one to be over.
const SHORT_TIMEOUT_DIALPLAN: &str = r#"
start = "main"

[operator]
extension = "100"

[menus.main]
prompt = "Hello. Say one."
no_input_prompt = "Nothing heard. Say one."
no_match_prompt = "Not understood. Say one."
no_input_timeout = 2
no_input_retries = 5

[menus.main.options.next]
phrases = ["one"]
dtmf = "1"
goto = "main"
"#;

fn esl_listener(transport: Transport, esl: &FakeEsl) -> String {
    format!(
        "\n[[listeners]]\ntransport = \"{transport}\"\nlisten = \"127.0.0.1:0\"\n[esl]\naddress = \"{}\"\n",
        esl.addr
    )
}

/// Broadcasts so far: (time, file).
fn broadcasts(esl: &FakeEsl) -> Vec<(Instant, String)> {
    esl.timed_commands()
        .into_iter()
        .filter_map(|(t, c)| {
            c.strip_prefix(&format!("bgapi uuid_broadcast {FS_UUID} "))
                .map(|f| (t, f.trim_end_matches(" aleg").to_string()))
        })
        .collect()
}

async fn wait_broadcasts(esl: &FakeEsl, n: usize, timeout: Duration) -> Vec<(Instant, String)> {
    let until = Instant::now() + timeout;
    loop {
        let b = broadcasts(esl);
        if b.len() >= n {
            return b;
        }
        assert!(Instant::now() < until, "fewer than {n} broadcasts: {:?}", esl.commands());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How long the 16 kHz L16 temp files play.
fn plays_for(files: &[String]) -> Duration {
    let bytes: u64 = files.iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).sum();
    Duration::from_millis(bytes / 32)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeswitch_prompt_ends_at_playback_stop_and_at_the_estimate_when_no_event_comes() {
    let esl = FakeEsl::start(ESL_PASSWORD).await;
    esl.add_channel(FS_UUID);
    let h = Harness::start_with(&esl_listener(Transport::AudioFork, &esl), SHORT_TIMEOUT_DIALPLAN).await;
    let files = tempfile::tempdir().unwrap();
    let client = h.fork_call(&esl, files.path()).await;
    // The server connects to the event socket in the background.
    let until = Instant::now() + Duration::from_secs(10);
    while !esl.state.lock().unwrap().subscriptions.iter().any(|s| s == "PLAYBACK_STOP") {
        assert!(Instant::now() < until, "PLAYBACK_STOP is subscribed to: {:?}", esl.commands());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The greeting (a short prompt: one file).
    let greeting = wait_broadcasts(&esl, 1, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(broadcasts(&esl).len(), 1, "a short greeting is one file");
    let (t_greeting, file) = greeting[0].clone();
    let length = plays_for(std::slice::from_ref(&file));
    assert!(length > Duration::from_millis(500), "greeting plays {length:?}");
    // FreeSWITCH reports the end 1.5 s later than the audio's length (a
    // slow start, queued files): the no-input timer must start from the
    // event, not from the server's estimate.
    let stop_at = t_greeting + length + Duration::from_millis(1500);
    tokio::time::sleep_until(tokio::time::Instant::from_std(stop_at)).await;
    assert_eq!(broadcasts(&esl).len(), 1, "nothing new before the greeting ended");
    let t_stop = Instant::now();
    esl.emit_playback_stop(FS_UUID, &file, "done");
    let after = wait_broadcasts(&esl, 2, Duration::from_secs(10)).await;
    let waited = after[1].0.duration_since(t_stop);
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(5),
        "the no-input prompt came {waited:?} after PLAYBACK_STOP; the 2 s timer must start at the event"
    );

    // No event for the no-input prompt (as when the event socket is
    // down): its end is estimated, and the next timer still runs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reprompt: Vec<String> = broadcasts(&esl)[1..].iter().map(|(_, f)| f.clone()).collect();
    let length = plays_for(&reprompt);
    let third = wait_broadcasts(&esl, 2 + reprompt.len(), Duration::from_secs(20)).await;
    let gap = third[1 + reprompt.len()].0.duration_since(after[1].0);
    assert!(
        gap >= length + Duration::from_millis(1900) && gap < length + Duration::from_secs(9),
        "without PLAYBACK_STOP the next prompt came {gap:?} after a {length:?} prompt"
    );

    client.stop().await;
    let rec = h.record(FS_UUID, Duration::from_secs(15)).await;
    assert!(events_of(&rec, "no_input").len() >= 2, "{rec:#}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_socket_drop_fails_a_transfer_politely_then_reconnects_and_a_later_transfer_succeeds() {
    let esl = FakeEsl::start(ESL_PASSWORD).await;
    esl.add_channel(FS_UUID);
    let h = Harness::start(&esl_listener(Transport::AudioFork, &esl)).await;
    let files = tempfile::tempdir().unwrap();
    let mut client = h.fork_call(&esl, files.path()).await;
    wait_broadcasts(&esl, 1, Duration::from_secs(30)).await;
    assert_eq!(esl.auths(), 1);

    // FreeSWITCH's event socket goes away mid-call.
    esl.go_down();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The caller asks for an agent by voice (keys come over the event
    // socket, which is down): the transfer cannot be done.
    client.send_audio_paced(&clip("speech_commands/zero_837a0f64_nohash_3.wav", 16000), 20).await;
    client.send_audio_paced(&vec![0i16; 16000], 20).await;
    // The apology and the menu go out on the media socket all the same.
    let before = client.received().files.len();
    client.wait_for("the apology prompt", Duration::from_secs(20), |r| r.files.len() > before).await;
    assert!(!client.received().closed, "the call goes on during the outage");
    assert!(!esl.commands().iter().any(|c| c.starts_with("bgapi uuid_transfer")), "no transfer reached FreeSWITCH");

    // FreeSWITCH is back: hotline reconnects, authenticates, subscribes.
    esl.come_back();
    esl.wait_reconnected(Duration::from_secs(20)).await;
    // Keys flow again and a transfer now succeeds.
    press_support_then_tech(&esl).await;
    let rec = h.record(FS_UUID, Duration::from_secs(15)).await;
    let failed = events_of(&rec, "transfer_failed");
    assert_eq!(failed.len(), 1, "{rec:#}");
    assert!(failed[0]["reason"].as_str().unwrap().contains("closed"), "{}", failed[0]["reason"]);
    let intents: Vec<Value> = events_of(&rec, "intent").iter().map(|e| e["intent"].clone()).collect();
    assert_eq!(intents.last(), Some(&Value::from("internet")), "{rec:#}");
    assert_eq!(rec["transfer"]["result"], "ok", "{rec:#}");
    drop(client);
    h.stop().await;
}

fn audiosocket_with_ami(ami: &FakeAmi) -> String {
    format!(
        "{AUDIOSOCKET}[ami]\nport = {}\nusername = \"hotline\"\nsecret = \"s3cret-ami\"\ntimeout_ms = 2000\n",
        ami.addr.port()
    )
}

/// DTMF 2 (support), then 1 (internet: transfer to 310 in context tech).
async fn ask_for_internet_support(caller: &mut AudioSocketCaller) {
    caller.send_dtmf('2').await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    caller.send_dtmf('1').await;
}

/// An AudioSocket call transferred by AMI: the fake Asterisk lists
/// `channels` in `Status`, and closes the TCP connection before it answers
/// the Redirect, as Asterisk does when the caller leaves the application
/// or the AudioSocket channel is hung up. Returns the Redirect, the call
/// record and what became of `caller`.
async fn audiosocket_ami_transfer(
    n: u8,
    channels: impl Fn(&str) -> Vec<(String, Vec<(String, String)>)>,
    caller: &str,
) -> (crate::support::ami::Recorded, Value, Option<Fate>) {
    let (id, id_text) = uuid(n);
    let ami = FakeAmi::start(FakeAmiConfig { channels: channels(&id_text), ..Default::default() }).await;
    let h = Harness::start(&audiosocket_with_ami(&ami)).await;
    let mut call = AudioSocketCaller::connect(h.addr(Transport::AudioSocket), id, 8000).await;
    ami.attach(caller, None, call.closer());
    ask_for_internet_support(&mut call).await;
    let redirect = ami.wait_for("Redirect", Duration::from_secs(30)).await.expect("an AMI Redirect");
    let status = ami.wait_for("Status", Duration::from_secs(1)).await.expect("an AMI Status before it");
    assert_eq!(status.get("Variables"), Some("AS_ID"));
    assert!(!call.received().hangup, "with AMI the call is redirected, not hung up");
    let rec = h.record(&id_text, Duration::from_secs(10)).await;
    let fate = ami.wait_fate(caller, Duration::from_secs(1)).await;
    h.stop().await;
    (redirect, rec, fate)
}

fn as_id(value: &str) -> Vec<(String, String)> {
    vec![("AS_ID".to_string(), value.to_string())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audiosocket_app_transfer_with_ami_is_recorded_though_asterisk_closes_before_answering() {
    // `AudioSocket()` runs on the caller's own channel, which carries AS_ID.
    let (_, other) = uuid(6);
    let channels = |id: &str| {
        vec![("PJSIP/1002-00000007".to_string(), as_id(&other)), ("PJSIP/1001-0000002a".to_string(), as_id(id))]
    };
    let (redirect, rec, fate) = audiosocket_ami_transfer(5, channels, "PJSIP/1001-0000002a").await;
    assert_eq!(redirect.get("Channel"), Some("PJSIP/1001-0000002a"), "the channel whose AS_ID is the call's UUID");
    assert_eq!(redirect.get("Context"), Some("tech"));
    assert_eq!(redirect.get("Exten"), Some("310"));
    assert_eq!(redirect.get("Priority"), Some("1"));
    assert_eq!(rec["transfer"]["method"], "ami-redirect", "{rec:#}");
    assert_eq!(rec["transfer"]["result"], "ok", "{rec:#}");
    assert_eq!(rec["hangup_cause"], "transferred", "{rec:#}");
    assert_eq!(fate, Some(Fate::Landed { context: "tech".into(), exten: "310".into() }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audiosocket_dial_transfer_redirects_the_caller_not_the_audiosocket_channel_that_inherited_as_id() {
    // `Set(__AS_ID=...)` then `Dial(AudioSocket/...)`: the AudioSocket
    // channel inherits AS_ID and Status may list it first.
    let channels = |id: &str| {
        vec![
            ("AudioSocket/127.0.0.1:9093-00000003".to_string(), as_id(id)),
            ("PJSIP/1001-0000002b".to_string(), as_id(id)),
        ]
    };
    let (redirect, rec, fate) = audiosocket_ami_transfer(9, channels, "PJSIP/1001-0000002b").await;
    assert_eq!(redirect.get("Channel"), Some("PJSIP/1001-0000002b"), "the caller, not hotline's own AudioSocket leg");
    assert_eq!(rec["transfer"]["result"], "ok", "{rec:#}");
    assert_eq!(fate, Some(Fate::Landed { context: "tech".into(), exten: "310".into() }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audiosocket_transfer_without_a_matching_channel_apologises_and_keeps_the_call() {
    let (id, id_text) = uuid(7);
    let (_, other_text) = uuid(8);
    let ami = FakeAmi::start(FakeAmiConfig {
        channels: vec![("PJSIP/1002-00000007".into(), vec![("AS_ID".into(), other_text)])],
        ..Default::default()
    })
    .await;
    let h = Harness::start(&audiosocket_with_ami(&ami)).await;
    let mut caller = AudioSocketCaller::connect(h.addr(Transport::AudioSocket), id, 8000).await;
    ask_for_internet_support(&mut caller).await;
    ami.wait_for("Status", Duration::from_secs(30)).await.expect("an AMI Status");
    // The apology and the main menu follow; the call stays up.
    let before = caller.received().audio.len();
    let r = caller
        .wait_for("the apology", Duration::from_secs(20), |r| r.audio.len() > before + 50 || r.hangup || r.closed)
        .await;
    assert!(!r.hangup && !r.closed, "the call must not be dropped");
    assert!(ami.wait_for("Redirect", Duration::from_millis(100)).await.is_none(), "nothing to redirect");
    caller.hang_up().await;
    let rec = h.record(&id_text, Duration::from_secs(10)).await;
    let failed = events_of(&rec, "transfer_failed");
    assert_eq!(failed.len(), 1, "{rec:#}");
    assert!(
        failed[0]["reason"].as_str().unwrap().contains(&format!("no channel has AS_ID={id_text}")),
        "{}",
        failed[0]["reason"]
    );
    h.stop().await;
}

/// `secs` seconds of caller audio: a recording over and over, back to back.
fn looped(rel: &str, secs: usize) -> Vec<i16> {
    clip(rel, 8000).into_iter().cycle().take(secs * 8000).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_flooding_audio_does_not_take_speech_away_from_another_call() {
    let h =
        Harness::start("keep_audio_dir = \"audio\"\n[[listeners]]\ntransport = \"twilio\"\nlisten = \"127.0.0.1:0\"\n")
            .await;
    let ws = format!("ws://{}/media", h.addr(Transport::Twilio));
    let mut call = TwilioCall::connect(&ws, "CAGOOD", &[("dialplan", "hotline")]).await;
    call.wait_for("greeting audio", Duration::from_secs(30), |r| r.media_bytes > 0).await;
    // Another call sends ten minutes of speech as fast as the socket takes
    // it: long utterances, each some of the recogniser's time.
    let mut flood = TwilioCall::connect(&ws, "CAFLOOD", &[("dialplan", "hotline")]).await;
    let flood_received = Arc::clone(&flood.received);
    let flooding = tokio::spawn(async move {
        flood.send_audio_flood(&looped("whisper_jfk/jfk.wav", 600)).await;
        flood
    });
    // The flood's speech barged in, and the server answered it (a prompt
    // after the barge-in): its utterances are with the recogniser.
    let until = Instant::now() + Duration::from_secs(30);
    while !flood_received.lock().map(|r| r.clears > 0 && r.media_bytes_since_clear > 0).unwrap() {
        assert!(Instant::now() < until, "the server never answered the flooding call");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Now the caller says "one" over the greeting, in real time.
    call.send_audio_paced(&clip("speech_commands/one_2796ac50_nohash_0.wav", 8000)).await;
    call.send_audio_paced(&vec![0i16; 8000]).await;
    call.wait_for("the billing prompt's mark", Duration::from_secs(30), |r| r.marks.len() >= 2).await;
    let flood = flooding.await.unwrap();
    call.stop().await;
    flood.stop().await;

    let rec = h.record("CAGOOD", Duration::from_secs(10)).await;
    assert!(events_of(&rec, "degraded").is_empty(), "the flood took speech away: {rec:#}");
    let intent = &events_of(&rec, "intent")[0];
    assert_eq!((&intent["intent"], &intent["source"]), (&Value::from("billing"), &Value::from("speech")), "{rec:#}");
    // The flooding call was heard in real time at most (plus the burst a
    // PBX may send after a stall), not ten minutes of it.
    let rec = h.record("CAFLOOD", Duration::from_secs(10)).await;
    let kept = hotline::audio::read_wav(std::path::Path::new(rec["audio_file"].as_str().unwrap())).unwrap();
    let limit = rec["duration_ms"].as_u64().unwrap() + 5_000 + 1_000;
    assert!(kept.duration_ms() <= limit, "{} ms of audio taken in within {limit} ms", kept.duration_ms());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeswitch_down_at_start_up_leaves_asterisk_served_and_is_connected_when_it_comes_up() {
    // An address where no event socket listens yet.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let esl_addr = free.local_addr().unwrap();
    drop(free);
    let h = Harness::start(&format!(
        "\n[[listeners]]\ntransport = \"audio_fork\"\nlisten = \"127.0.0.1:0\"\n[esl]\naddress = \"{esl_addr}\"\n"
    ))
    .await;
    let controls = h.server.as_ref().unwrap().control_channels().clone();
    assert_eq!(controls.all().len(), 1);
    assert_eq!((controls.all()[0].name, controls.all()[0].addr.as_str()), ("esl", esl_addr.to_string().as_str()));
    assert!(!controls.all_connected(), "FreeSWITCH is not up");
    let esl_state = |body: &str| -> Value { serde_json::from_str::<Value>(body).unwrap()["control"][0].clone() };
    let (_, body) = http_get(h.addr(Transport::AsteriskWs), "/readyz").await;
    assert_eq!(esl_state(&body)["connected"], false, "/readyz shows the event socket down: {body}");

    // The Asterisk listener serves calls meanwhile.
    let call = AsteriskCall::connect(AsteriskConfig::new(h.addr(Transport::AsteriskWs), 1)).await.unwrap();
    assert!(call.wait_marks(1, Duration::from_secs(30)).await, "greeting never played: {:?}", call.commands());
    call.dtmf('2').await;
    assert!(call.wait_marks(2, Duration::from_secs(30)).await, "support prompt never played: {:?}", call.commands());
    call.hangup().await;
    let rec = h.record(&call.cfg.channel_id, Duration::from_secs(10)).await;
    assert_eq!(events_of(&rec, "intent")[0]["intent"], "support", "{rec:#}");

    // FreeSWITCH comes up: hotline connects, and its calls are served.
    let esl = FakeEsl::start_at(esl_addr, ESL_PASSWORD).await;
    esl.add_channel(FS_UUID);
    let until = Instant::now() + Duration::from_secs(20);
    while !controls.all_connected() {
        assert!(Instant::now() < until, "the event socket was never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, body) = http_get(h.addr(Transport::AsteriskWs), "/readyz").await;
    assert_eq!(esl_state(&body)["connected"], true, "/readyz shows the event socket up: {body}");
    let files = tempfile::tempdir().unwrap();
    let client = h.fork_call(&esl, files.path()).await;
    wait_broadcasts(&esl, 1, Duration::from_secs(30)).await;
    esl.emit_dtmf(FS_UUID, '2');
    let until = Instant::now() + Duration::from_secs(30);
    while broadcasts(&esl).len() < 2 {
        assert!(Instant::now() < until, "support prompt never broadcast: {:?}", esl.commands());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.stop().await;
    let rec = h.record(FS_UUID, Duration::from_secs(15)).await;
    assert_eq!(events_of(&rec, "intent")[0]["intent"], "support", "{rec:#}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_socket_command_left_unanswered_does_not_break_later_commands() {
    let esl = FakeEsl::start(ESL_PASSWORD).await;
    esl.add_channel(FS_UUID);
    // FreeSWITCH hangs on the greeting's broadcast: no reply ever comes.
    esl.state.lock().unwrap().no_reply_once = Some("uuid_broadcast".into());
    let h = Harness::start(&format!("{}timeout_ms = 1000\n", esl_listener(Transport::AudioFork, &esl))).await;
    let files = tempfile::tempdir().unwrap();
    let client = h.fork_call(&esl, files.path()).await;
    esl.wait_for_command(&format!("bgapi uuid_broadcast {FS_UUID} "), Duration::from_secs(30)).await;
    // hotline drops that connection and makes a new one.
    esl.wait_reconnected(Duration::from_secs(20)).await;
    // Every later command gets its own reply: keys, prompts, the transfer.
    press_support_then_tech(&esl).await;
    let rec = h.record(FS_UUID, Duration::from_secs(15)).await;
    assert_eq!(rec["transfer"]["result"], "ok", "{rec:#}");
    drop(client);
    h.stop().await;
}

/// The FreeSWITCH caller presses 2 (support), then 1 (tech): hotline must
/// send FreeSWITCH the transfer to `tech,310`.
async fn press_support_then_tech(esl: &FakeEsl) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    esl.emit_dtmf(FS_UUID, '2');
    tokio::time::sleep(Duration::from_millis(500)).await;
    esl.emit_dtmf(FS_UUID, '1');
    let transfer = esl.wait_for_command(&format!("bgapi uuid_transfer {FS_UUID}"), Duration::from_secs(15)).await;
    assert_eq!(transfer, format!("bgapi uuid_transfer {FS_UUID} 310 XML tech"));
}
