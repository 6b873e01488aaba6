//! The media transports over real loopback sockets: each PBX emulator
//! (tests/support) talks to a small listener that runs hotline's codec,
//! event-socket client and webhook client, driving real recorded speech
//! from ../shared/testdata through the call scenarios: caller audio in,
//! prompt out, DTMF, barge-in, transfer (and failed transfer), hangup,
//! malformed frames.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hotline::pbx::audio_fork::{AudioForkCodec, FreeswitchOptions};
use hotline::pbx::audio_stream::AudioStreamCodec;
use hotline::pbx::audiosocket::{self, AudioSocketCodec};
use hotline::pbx::esl::{EslCallEvent, EslClient, EslConfig, EslError, EventRouter, TRANSPORT_EVENTS};
use hotline::pbx::twilio::TwilioCodec;
use hotline::pbx::webhook::{self, TransferRequest, WebhookConfig, WebhookError};
use hotline::pbx::{AudioFormat, MediaCodec, PbxEvent, ProtocolError, WireMessage};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

use crate::support::audiosocket::AudioSocketCaller;
use crate::support::freeswitch::{FakeEsl, FsMediaClient};
use crate::support::twilio::TwilioCall;

const WAIT: Duration = Duration::from_secs(5);

fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata").join(rel)
}

/// A recorded clip at `rate` (FSDD is 8 kHz, speech_commands 16 kHz).
fn clip(rel: &str, rate: u32) -> Vec<i16> {
    let audio = hotline::audio::read_wav(&testdata(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    if audio.rate == rate {
        audio.samples
    } else {
        hotline::audio::f32_to_i16(&audio.to_f32_at(rate).unwrap())
    }
}

/// Pads to whole 20 ms frames, as the emulators send them.
fn padded(mut samples: Vec<i16>, rate: u32) -> Vec<i16> {
    let n = hotline::audio::frame_samples(rate);
    samples.resize(samples.len().div_ceil(n) * n, 0);
    samples
}

/// A prompt: a real recording, so the bytes on the wire are speech.
fn prompt_8k() -> Vec<i16> {
    clip("fsdd/7_jackson_1.wav", 8000)
}

// ---------------------------------------------------------------------
// The listener side: sockets only; the test owns the codec, as the server will.

/// Messages from one accepted connection, and a way to answer.
struct Peer {
    incoming: mpsc::Receiver<WireMessage>,
    outgoing: mpsc::Sender<WireMessage>,
}

impl Peer {
    async fn send_all(&self, msgs: Vec<WireMessage>) {
        for m in msgs {
            self.outgoing.send(m).await.expect("listener writer gone");
        }
    }
}

/// Collects the codec's events until `done` says enough.
struct Collected {
    events: Vec<PbxEvent>,
    errors: Vec<ProtocolError>,
}

impl Collected {
    fn audio_samples(&self) -> Vec<i16> {
        self.events
            .iter()
            .filter_map(|e| if let PbxEvent::Audio(s) = e { Some(s.clone()) } else { None })
            .flatten()
            .collect()
    }

    fn digits(&self) -> String {
        self.events.iter().filter_map(|e| if let PbxEvent::Dtmf(d) = e { Some(*d) } else { None }).collect()
    }

    fn start(&self) -> hotline::pbx::CallInfo {
        self.events
            .iter()
            .find_map(|e| if let PbxEvent::Start(i) = e { Some(i.clone()) } else { None })
            .expect("no Start event")
    }

    fn hung_up(&self) -> bool {
        self.events.iter().any(|e| matches!(e, PbxEvent::Hangup { .. }))
    }
}

async fn collect_until(
    codec: &mut dyn MediaCodec,
    peer: &mut Peer,
    collected: &mut Collected,
    what: &str,
    done: impl Fn(&Collected) -> bool,
) {
    let until = tokio::time::Instant::now() + WAIT;
    while !done(collected) {
        let msg = tokio::time::timeout_at(until, peer.incoming.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}; events so far: {:?}", summary(collected)));
        let Some(msg) = msg else { panic!("connection ended while waiting for {what}: {:?}", summary(collected)) };
        match codec.on_message(msg) {
            Ok(evs) => collected.events.extend(evs),
            Err(e) => collected.errors.push(e),
        }
    }
}

fn summary(c: &Collected) -> Vec<String> {
    c.events
        .iter()
        .map(|e| match e {
            PbxEvent::Audio(s) => format!("Audio({})", s.len()),
            other => format!("{other:?}"),
        })
        .chain(c.errors.iter().map(|e| format!("error: {e}")))
        .collect()
}

fn new_collected() -> Collected {
    Collected { events: Vec::new(), errors: Vec::new() }
}

/// Accepts one websocket, answering the subprotocol when the client asks.
#[allow(clippy::result_large_err)] // the handshake callback signature is tungstenite's
async fn accept_ws(listener: &TcpListener, subprotocol: Option<&'static str>) -> Peer {
    let (sock, _) = listener.accept().await.unwrap();
    let callback = move |req: &Request, mut resp: Response| {
        let offered = req.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok()).unwrap_or("");
        if let Some(p) = subprotocol.filter(|p| offered.split(',').any(|o| o.trim() == *p)) {
            resp.headers_mut().insert("Sec-WebSocket-Protocol", p.parse().unwrap());
        }
        Ok(resp)
    };
    let ws = tokio_tungstenite::accept_hdr_async(sock, callback).await.expect("websocket handshake");
    let (mut sink, mut stream) = ws.split();
    let (in_tx, incoming) = mpsc::channel(1024);
    let (outgoing, mut out_rx) = mpsc::channel::<WireMessage>(1024);
    tokio::spawn(async move {
        while let Some(Ok(m)) = stream.next().await {
            let wire = match m {
                Message::Text(t) => WireMessage::Text(t.to_string()),
                Message::Binary(b) => WireMessage::Binary(b.to_vec()),
                Message::Close(_) => break,
                _ => continue,
            };
            if in_tx.send(wire).await.is_err() {
                return;
            }
        }
        let _ = in_tx.send(WireMessage::Close).await;
    });
    tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            let r = match m {
                WireMessage::Text(t) => sink.send(Message::Text(t.into())).await,
                WireMessage::Binary(b) => sink.send(Message::Binary(b.into())).await,
                WireMessage::Close => {
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                }
            };
            if r.is_err() {
                return;
            }
        }
    });
    Peer { incoming, outgoing }
}

/// Accepts one TCP connection; reads are handed on as they come, in
/// whatever pieces TCP delivers, so the codec's reassembly is exercised.
async fn accept_tcp(listener: &TcpListener) -> Peer {
    let (sock, _) = listener.accept().await.unwrap();
    sock.set_nodelay(true).ok();
    let (mut read, mut write) = sock.into_split();
    let (in_tx, incoming) = mpsc::channel(1024);
    let (outgoing, mut out_rx) = mpsc::channel::<WireMessage>(1024);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if in_tx.send(WireMessage::Binary(buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = in_tx.send(WireMessage::Close).await;
    });
    tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            match m {
                WireMessage::Binary(b) => {
                    if write.write_all(&b).await.is_err() {
                        return;
                    }
                }
                WireMessage::Text(_) => return,
                WireMessage::Close => {
                    let _ = write.shutdown().await;
                    return;
                }
            }
        }
    });
    Peer { incoming, outgoing }
}

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

// ---------------------------------------------------------------------
// Asterisk AudioSocket

const AS_UUID: &str = "40325ec2-5efd-4bd3-805f-53576e581d13";

#[tokio::test]
async fn audiosocket_call_audio_dtmf_paced_prompt_and_hangup() {
    let (l, addr) = listener().await;
    let uuid = audiosocket::parse_uuid(AS_UUID).unwrap();
    let caller_audio = clip("fsdd/3_theo_0.wav", 8000);
    let caller = tokio::spawn(async move {
        let mut c = AudioSocketCaller::connect(addr, uuid, 8000).await;
        c.send_audio_paced(&caller_audio).await;
        c.send_dtmf('5').await;
        c
    });
    let mut peer = accept_tcp(&l).await;
    let mut codec = AudioSocketCodec::new(8000).unwrap();
    let mut got = new_collected();
    let expected = padded(clip("fsdd/3_theo_0.wav", 8000), 8000);
    collect_until(&mut codec, &mut peer, &mut got, "caller audio and DTMF", |c| !c.digits().is_empty()).await;
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    let info = got.start();
    assert_eq!(info.call_id, AS_UUID);
    assert_eq!(info.format, Some(AudioFormat::Slin(8000)));
    assert_eq!(got.audio_samples(), expected, "caller audio must arrive bit-exact");
    assert_eq!(got.digits(), "5");

    // The prompt, paced by the server at one frame per 20 ms.
    let prompt = prompt_8k();
    let mut frames = codec.audio(&prompt);
    frames.extend(codec.mark("prompt-1"));
    let n_frames = frames.len();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for f in frames {
        tick.tick().await;
        peer.send_all(vec![f]).await;
    }
    let caller = caller.await.unwrap();
    let r = caller.wait_for("the whole prompt", WAIT, |r| r.audio.len() == n_frames).await;
    assert!(
        r.audio.iter().all(|(kind, len, _)| *kind == 0x10 && *len == 320),
        "every frame 20 ms slin: {:?}",
        &r.audio[..3]
    );
    let span = r.audio.last().unwrap().2 - r.audio[0].2;
    let real_time = (n_frames as u64 - 1) * 20;
    assert!(span + 40 >= real_time, "prompt of {real_time} ms arrived in {span} ms: not paced");
    assert_eq!(&r.samples[..prompt.len()], &prompt[..], "the caller hears the prompt bit-exact");

    peer.send_all(codec.hangup()).await;
    let r = caller.wait_for("hangup message", WAIT, |r| r.hangup).await;
    assert!(r.violation.is_none());
}

#[tokio::test]
async fn audiosocket_barge_in_stops_the_prompt_and_keepalive_beats_the_idle_timeout() {
    let (l, addr) = listener().await;
    let uuid = audiosocket::parse_uuid(AS_UUID).unwrap();
    let connect = tokio::spawn(async move { AudioSocketCaller::connect(addr, uuid, 8000).await });
    let mut peer = accept_tcp(&l).await;
    let mut codec = AudioSocketCodec::new(8000).unwrap();
    let mut got = new_collected();
    collect_until(&mut codec, &mut peer, &mut got, "UUID", |c| !c.events.is_empty()).await;
    let mut caller = connect.await.unwrap();

    // A 1 s prompt; the caller starts talking after 200 ms.
    let frames = codec.audio(&vec![1000i16; 8000]);
    let speech = clip("fsdd/9_george_1.wav", 8000);
    let talk = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        caller.send_audio_paced(&speech).await;
        caller
    });
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut sent = 0;
    for f in frames {
        tick.tick().await;
        // Barge-in on the first caller audio: the server drops the rest.
        if let Ok(msg) = peer.incoming.try_recv() {
            got.events.extend(codec.on_message(msg).unwrap());
            if got.events.iter().any(|e| matches!(e, PbxEvent::Audio(_))) {
                codec.flush();
                break;
            }
        }
        peer.send_all(vec![f]).await;
        sent += 1;
    }
    assert!((8..45).contains(&sent), "prompt should stop soon after the caller spoke at 200 ms, sent {sent} frames");
    let caller = talk.await.unwrap();
    let r = caller.received();
    assert_eq!(r.audio.len(), sent);

    // Silence on both sides for 2.5 s: the server sends a keep-alive every
    // second, so the application never reaches its 2 s idle timeout.
    let before = caller.received().audio.len();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2500) {
        tokio::time::sleep(Duration::from_millis(audiosocket::KEEPALIVE_INTERVAL_MS)).await;
        peer.send_all(vec![codec.keepalive()]).await;
    }
    let r = caller.wait_for("keep-alive frames", WAIT, |r| r.audio.len() >= before + 2).await;
    let times: Vec<u64> = r.audio[before - 1..].iter().map(|a| a.2).collect();
    assert!(times.windows(2).all(|w| w[1] - w[0] < audiosocket::IDLE_TIMEOUT_MS), "gap over 2 s: {times:?}");
    assert!(r.samples[r.samples.len() - 160..].iter().all(|&s| s == 0), "keep-alive is silence");

    caller.hang_up().await;
    collect_until(&mut codec, &mut peer, &mut got, "hangup", |c| c.hung_up()).await;
}

#[tokio::test]
async fn audiosocket_malformed_frames_are_refused_with_named_errors() {
    let (l, addr) = listener().await;
    let uuid = audiosocket::parse_uuid(AS_UUID).unwrap();
    let connect = tokio::spawn(async move {
        let mut c = AudioSocketCaller::connect(addr, uuid, 8000).await;
        c.send_raw(&[0x03, 0x00, 0x01, b'7']).await;
        c.send_raw(&[0x42, 0x00, 0x00]).await; // unknown kind
                                               // Asterisk keeps streaming the caller's audio.
        c.send_audio_paced(&[0i16; 480]).await;
        c
    });
    let mut peer = accept_tcp(&l).await;
    let mut codec = AudioSocketCodec::new(8000).unwrap();
    let mut got = new_collected();
    collect_until(&mut codec, &mut peer, &mut got, "an error", |c| !c.errors.is_empty()).await;
    assert_eq!(got.digits(), "7", "messages before the bad one are still delivered");
    assert!(got.errors[0].0.contains("unknown kind 0x42"), "{}", got.errors[0]);
    // The server then ends the call.
    peer.send_all(codec.hangup()).await;
    let caller = connect.await.unwrap();
    caller.wait_for("hangup", WAIT, |r| r.hangup).await;

    // A slin16 channel (Dial(AudioSocket/...c(slin16))) on an 8 kHz listener.
    let (l, addr) = listener().await;
    let connect = tokio::spawn(async move {
        let mut c = AudioSocketCaller::connect(addr, uuid, 16000).await;
        c.send_audio_paced(&[0i16; 320]).await;
        c
    });
    let mut peer = accept_tcp(&l).await;
    let mut codec = AudioSocketCodec::new(8000).unwrap();
    let mut got = new_collected();
    collect_until(&mut codec, &mut peer, &mut got, "a rate error", |c| !c.errors.is_empty()).await;
    assert!(
        got.errors[0].0.contains("16000 Hz") && got.errors[0].0.contains("configured for 8000 Hz"),
        "{}",
        got.errors[0]
    );
    connect.await.unwrap().hang_up().await;
}

// ---------------------------------------------------------------------
// FreeSWITCH: event socket client against the fake ESL

const FS_UUID: &str = "7c2a1d0e-5b8f-4e3a-9d41-2f6c8b0a1e55";
const ESL_PASSWORD: &str = "ClueCon";

#[tokio::test]
async fn esl_auth_commands_errors_and_events() {
    let esl = FakeEsl::start(ESL_PASSWORD).await;
    esl.add_channel(FS_UUID);

    let wrong = EslClient::connect(&EslConfig::new(esl.addr.to_string(), "wrong")).await.unwrap_err();
    assert!(matches!(&wrong, EslError::AuthRejected { reply, .. } if reply == "-ERR invalid"), "{wrong}");
    assert!(!wrong.to_string().contains("wrong"), "the password must not appear in errors: {wrong}");

    let (client, mut events) = EslClient::connect(&EslConfig::new(esl.addr.to_string(), ESL_PASSWORD)).await.unwrap();
    client.subscribe(TRANSPORT_EVENTS).await.unwrap();
    client.uuid_transfer(FS_UUID, "1000", Some("agents")).await.unwrap();
    // A uuid that is no live channel is never transferred.
    let dead = "00000000-dead-beef-0000-000000000000";
    let err = client.uuid_transfer(dead, "1000", Some("agents")).await.unwrap_err();
    assert!(matches!(&err, EslError::NoSuchChannel { uuid } if uuid == dead), "{err}");
    assert!(!client.uuid_exists(dead).await.unwrap());
    client.uuid_break(FS_UUID, true).await.unwrap();
    client.uuid_broadcast(FS_UUID, "/tmp/x.r8").await.unwrap();
    client.uuid_kill(FS_UUID).await.unwrap();
    let err = client.api("no_such_api now").await.unwrap_err();
    assert!(err.to_string().contains("Command not found"), "{err}");
    assert!(matches!(client.uuid_transfer(FS_UUID, "10 00", None).await, Err(EslError::InvalidArgument { .. })));
    let job = client.bgapi(&format!("uuid_kill {FS_UUID}")).await.unwrap();
    assert_eq!(job, "a5b7e2e4-7d3b-11ef-9a5c-000000000001");

    assert_eq!(
        esl.commands(),
        vec![
            "event plain BACKGROUND_JOB DTMF PLAYBACK_STOP CHANNEL_HANGUP CUSTOM mod_audio_fork::play_audio mod_audio_fork::kill_audio mod_audio_stream::play".to_string(),
            format!("bgapi uuid_exists {FS_UUID}"),
            format!("bgapi uuid_transfer {FS_UUID} 1000 XML agents"),
            format!("bgapi uuid_exists {dead}"),
            format!("bgapi uuid_exists {dead}"),
            format!("bgapi uuid_break {FS_UUID} all"),
            format!("bgapi uuid_broadcast {FS_UUID} /tmp/x.r8 aleg"),
            format!("bgapi uuid_exists {FS_UUID}"),
            format!("bgapi uuid_kill {FS_UUID}"),
            "api no_such_api now".into(),
            format!("bgapi uuid_kill {FS_UUID}"),
        ]
    );

    // The BACKGROUND_JOB event, then a DTMF with url-encoded digit.
    let ev = tokio::time::timeout(WAIT, events.recv()).await.unwrap().unwrap();
    assert_eq!(ev.name(), Some("BACKGROUND_JOB"));
    assert_eq!(ev.body, "+OK\n");
    esl.emit_dtmf(FS_UUID, '#');
    let ev = tokio::time::timeout(WAIT, events.recv()).await.unwrap().unwrap();
    assert_eq!(ev.classify(), EslCallEvent::Dtmf { uuid: FS_UUID.into(), digit: '#' });

    // FreeSWITCH goes away: commands fail at once as closed, not after a timeout.
    let reply = client.command("exit").await.unwrap();
    assert_eq!(reply.header("Reply-Text"), Some("+OK bye"));
    assert!(tokio::time::timeout(WAIT, events.recv()).await.unwrap().is_none(), "event stream ends");
    let started = Instant::now();
    assert!(matches!(client.uuid_kill(FS_UUID).await, Err(EslError::Closed)));
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn an_esl_command_without_a_reply_drops_the_connection_instead_of_shifting_later_replies() {
    let esl = FakeEsl::start(ESL_PASSWORD).await;
    esl.add_channel(FS_UUID);
    let mut cfg = EslConfig::new(esl.addr.to_string(), ESL_PASSWORD);
    cfg.timeout = Duration::from_millis(300);
    let (client, mut events) = EslClient::connect(&cfg).await.unwrap();
    client.subscribe(TRANSPORT_EVENTS).await.unwrap();
    // FreeSWITCH never answers one command.
    esl.state.lock().unwrap().no_reply_once = Some("uuid_break".into());
    assert!(matches!(client.uuid_break(FS_UUID, true).await, Err(EslError::Timeout { .. })));
    // The connection is dropped: its events end, and the next command fails
    // at once instead of taking the reply meant for the one before.
    assert!(tokio::time::timeout(WAIT, events.recv()).await.unwrap().is_none(), "the connection is dropped");
    assert!(matches!(client.uuid_broadcast(FS_UUID, "/tmp/x.r8").await, Err(EslError::Closed)));
    // A new connection is in step.
    let (client, _events) = EslClient::connect(&cfg).await.unwrap();
    client.subscribe(TRANSPORT_EVENTS).await.unwrap();
    client.uuid_broadcast(FS_UUID, "/tmp/x.r8").await.unwrap();
    assert!(client.uuid_exists(FS_UUID).await.unwrap());
}

#[tokio::test]
async fn esl_connect_failure_names_the_address() {
    let (l, addr) = listener().await;
    drop(l);
    let err = EslClient::connect(&EslConfig::new(addr.to_string(), ESL_PASSWORD)).await.unwrap_err();
    assert!(matches!(err, EslError::Connect { .. }) && err.to_string().contains(&addr.to_string()), "{err}");
}

/// What the server does on a FreeSWITCH call, in miniature: caller audio
/// from the websocket, DTMF from ESL, prompts via the module's temp file
/// and `uuid_broadcast`, barge-in, transfer.
async fn freeswitch_scenario(stream_module: bool) {
    let dir = tempfile::tempdir().unwrap();
    let esl = FakeEsl::start(ESL_PASSWORD).await;
    esl.add_channel(FS_UUID);
    let (client, events) = EslClient::connect(&EslConfig::new(esl.addr.to_string(), ESL_PASSWORD)).await.unwrap();
    client.subscribe(TRANSPORT_EVENTS).await.unwrap();
    let router = EventRouter::spawn(events);
    let mut events = router.register(FS_UUID).expect("a first connection registers");
    // A second connection claiming the same live channel is refused, and
    // the first one keeps its events.
    assert!(router.register(FS_UUID).is_none(), "a second claim on a live channel");
    // Another call on the same FreeSWITCH: its digits must not reach ours.
    let _other = router.register("11111111-2222-4333-8444-555555555555").expect("another channel registers");
    esl.emit_dtmf("11111111-2222-4333-8444-555555555555", '9');

    let (l, addr) = listener().await;
    let rate = if stream_module { 8000 } else { 16000 };
    let meta = format!(r#"{{"uuid":"{FS_UUID}","dialplan":"hotline","caller_id":"1001","sampleRate":{rate}}}"#);
    let caller_audio = if stream_module {
        clip("fsdd/2_nicolas_0.wav", 8000)
    } else {
        clip("speech_commands/yes_105a0eea_nohash_0.wav", 16000)
    };
    let sent = caller_audio.clone();
    let (esl2, dir2) = (esl.clone(), dir.path().to_path_buf());
    let fs = tokio::spawn(async move {
        let mut c = if stream_module {
            FsMediaClient::connect_stream(addr, FS_UUID, rate, &meta, esl2, dir2).await
        } else {
            FsMediaClient::connect_fork(addr, FS_UUID, rate, &meta, esl2, dir2).await
        };
        c.send_audio_paced(&sent, if stream_module { 20 } else { 40 }).await;
        c
    });
    let mut peer = accept_ws(&l, if stream_module { None } else { Some(hotline::pbx::audio_fork::SUBPROTOCOL) }).await;
    let mut codec: Box<dyn MediaCodec> = if stream_module {
        Box::new(AudioStreamCodec::new(FreeswitchOptions { rate }))
    } else {
        Box::new(AudioForkCodec::new(FreeswitchOptions { rate }))
    };
    let mut got = new_collected();
    let expected = padded(caller_audio, rate);
    collect_until(codec.as_mut(), &mut peer, &mut got, "caller audio", |c| c.audio_samples().len() >= expected.len())
        .await;
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    let info = got.start();
    assert_eq!(
        (info.call_id.as_str(), info.dialplan.as_deref(), info.caller_id.as_deref()),
        (FS_UUID, Some("hotline"), Some("1001"))
    );
    assert_eq!(got.audio_samples(), expected, "caller audio must arrive bit-exact");
    let mut fs = fs.await.unwrap();
    if stream_module {
        assert!(
            !fs.handshake_headers.iter().any(|(k, _)| k == "sec-websocket-extensions"),
            "deflate must be declined: {:?}",
            fs.handshake_headers
        );
    } else {
        assert!(fs.handshake_headers.contains(&("sec-websocket-protocol".into(), "audio.drachtio.org".into())));
    }

    // Prompt: the module writes our audio to a file and announces it; we broadcast it.
    let prompt = if rate == 8000 { prompt_8k() } else { clip("speech_commands/no_0cb74144_nohash_0.wav", 16000) };
    peer.send_all(codec.audio(&prompt)).await;
    let ev = tokio::time::timeout(WAIT, events.recv()).await.expect("play event").unwrap();
    let EslCallEvent::PlayFile { uuid, file } = ev else { panic!("expected the play event first, got {ev:?}") };
    assert_eq!(uuid, FS_UUID);
    client.uuid_broadcast(FS_UUID, &file).await.unwrap();
    assert_eq!(esl.commands().last().unwrap(), &format!("bgapi uuid_broadcast {FS_UUID} {file} aleg"));
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(AudioFormat::Slin(rate).decode(&bytes), prompt, "the file holds the prompt bit-exact");
    let suffix = if rate == 8000 { ".tmp.r8" } else { ".tmp.r16" };
    assert!(file.ends_with(suffix), "{file}");

    // Barge-in while it plays: the socket message (fork) and uuid_break.
    peer.send_all(codec.flush()).await;
    client.uuid_break(FS_UUID, true).await.unwrap();
    if stream_module {
        assert_eq!(fs.received().kill_audio, 0);
    } else {
        fs.wait_for("killAudio", WAIT, |r| r.kill_audio == 1).await;
    }
    assert!(esl.commands().contains(&format!("bgapi uuid_break {FS_UUID} all")));

    // The caller presses 0 (DTMF arrives over ESL), the dialplan says agent: transfer.
    esl.emit_dtmf(FS_UUID, '0');
    let ev = tokio::time::timeout(WAIT, events.recv()).await.expect("DTMF event").unwrap();
    assert_eq!(ev.to_pbx_event(), Some(PbxEvent::Dtmf('0')), "{ev:?}");
    client.uuid_setvar(&info.call_id, "hotline_account", "4711 22").await.unwrap();
    client.uuid_transfer(&info.call_id, "1000", Some("agents")).await.unwrap();
    assert!(esl.commands().contains(&format!("bgapi uuid_setvar {FS_UUID} hotline_account 4711 22")));
    esl.wait_for_command(&format!("bgapi uuid_transfer {FS_UUID} 1000 XML agents"), WAIT).await;

    // Malformed frame from the module, then the stream ends.
    fs.send_raw(Message::Text("x".repeat(70_000).into())).await;
    collect_until(codec.as_mut(), &mut peer, &mut got, "an oversized-frame error", |c| !c.errors.is_empty()).await;
    assert!(got.errors[0].0.contains("70000 bytes"), "{}", got.errors[0]);
    let r = fs.received();
    assert!(r.errors.is_empty() && r.ignored_binary == 0, "{r:?}");
    fs.stop().await;
    collect_until(codec.as_mut(), &mut peer, &mut got, "hangup", |c| c.hung_up()).await;
}

#[tokio::test]
async fn freeswitch_audio_fork_call() {
    freeswitch_scenario(false).await;
}

#[tokio::test]
async fn freeswitch_audio_stream_call() {
    freeswitch_scenario(true).await;
}

#[tokio::test]
async fn freeswitch_failed_transfer_is_reported_not_dropped() {
    let esl = FakeEsl::start(ESL_PASSWORD).await;
    // The channel is gone (caller hung up during the prompt).
    let (client, _events) = EslClient::connect(&EslConfig::new(esl.addr.to_string(), ESL_PASSWORD)).await.unwrap();
    client.subscribe(TRANSPORT_EVENTS).await.unwrap();
    let err = client.uuid_transfer(FS_UUID, "1000", Some("agents")).await.unwrap_err();
    assert!(err.to_string().contains(FS_UUID) && err.to_string().contains("not a live FreeSWITCH channel"), "{err}");
    assert!(!esl.commands().iter().any(|c| c.contains("uuid_transfer")), "nothing is sent for a channel that is gone");
    // The connection stays usable for the apology prompt and the fallback.
    client.uuid_break(FS_UUID, false).await.unwrap();
}

#[tokio::test]
async fn freeswitch_metadata_missing_is_a_named_error() {
    let (l, addr) = listener().await;
    let esl = FakeEsl::start(ESL_PASSWORD).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let fs = tokio::spawn(async move {
        FsMediaClient::connect_fork(addr, FS_UUID, 8000, r#"{"dialplan":"hotline"}"#, esl, d).await
    });
    let mut peer = accept_ws(&l, Some(hotline::pbx::audio_fork::SUBPROTOCOL)).await;
    let mut codec = AudioForkCodec::new(FreeswitchOptions::default());
    let mut got = new_collected();
    collect_until(&mut codec, &mut peer, &mut got, "an error", |c| !c.errors.is_empty()).await;
    assert!(got.errors[0].0.contains("no \"uuid\""), "{}", got.errors[0]);
    drop(fs.await.unwrap());
}

// ---------------------------------------------------------------------
// Twilio Media Streams and the transfer webhook

/// A loopback HTTP endpoint recording requests and answering `status`.
async fn http_endpoint(status: u16, delay: Duration) -> (SocketAddr, Arc<Mutex<Vec<(String, String)>>>) {
    let (l, addr) = listener().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            let s = s.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(sock);
                let mut head = String::new();
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).await.unwrap();
                s.lock().unwrap().push((head, String::from_utf8(body).unwrap()));
                tokio::time::sleep(delay).await;
                let text = if status == 200 { "ok" } else { "no agent line configured" };
                let resp =
                    format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len());
                let _ = r.get_mut().write_all(resp.as_bytes()).await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn twilio_call_audio_marks_dtmf_barge_in_webhook_transfer_and_stop() {
    let (hook_addr, hook_seen) = http_endpoint(200, Duration::ZERO).await;
    let (l, addr) = listener().await;
    let caller_audio = clip("fsdd/4_george_3.wav", 8000);
    let sent = caller_audio.clone();
    let call = tokio::spawn(async move {
        let mut c = TwilioCall::connect(
            &format!("ws://{addr}/twilio"),
            "CA5f3b0a1e9d",
            &[("dialplan", "hotline"), ("caller_id", "+15550100")],
        )
        .await;
        c.send_audio_paced(&sent).await;
        c
    });
    let mut peer = accept_ws(&l, None).await;
    let mut codec = TwilioCodec::new();
    let mut got = new_collected();
    let expected =
        hotline::audio::g711::ulaw_decode_all(&hotline::audio::g711::ulaw_encode_all(&padded(caller_audio, 8000)));
    collect_until(&mut codec, &mut peer, &mut got, "caller audio", |c| c.audio_samples().len() >= expected.len()).await;
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    let info = got.start();
    assert_eq!(
        (info.call_id.as_str(), info.dialplan.as_deref(), info.caller_id.as_deref()),
        ("CA5f3b0a1e9d", Some("hotline"), Some("+15550100"))
    );
    assert_eq!(got.audio_samples(), expected, "caller audio must be the µ-law of what was sent");
    let mut call = call.await.unwrap();

    // A short prompt and its mark: the mark comes back after it has played.
    let prompt = prompt_8k();
    let prompt_ms = prompt.len() as u64 / 8;
    let t = call.elapsed_ms();
    peer.send_all(codec.audio(&prompt)).await;
    peer.send_all(codec.mark("prompt-1")).await;
    collect_until(&mut codec, &mut peer, &mut got, "mark prompt-1", |c| {
        c.events.contains(&PbxEvent::MarkReached("prompt-1".into()))
    })
    .await;
    let r = call.received();
    assert_eq!(r.media_bytes, prompt.len(), "one µ-law byte per prompt sample");
    let (_, at) = r.marks[0].clone();
    assert!(at >= t + prompt_ms - 40, "mark after {} ms for a {prompt_ms} ms prompt", at - t);

    // A long prompt; the caller barges in; `clear` returns its mark at once.
    let t = call.elapsed_ms();
    peer.send_all(codec.audio(&vec![500i16; 8000 * 5])).await;
    peer.send_all(codec.mark("prompt-2")).await;
    call.send_audio_paced(&clip("fsdd/1_jackson_0.wav", 8000)[..1600]).await;
    collect_until(&mut codec, &mut peer, &mut got, "barge-in audio", |c| c.audio_samples().len() > expected.len())
        .await;
    peer.send_all(codec.flush()).await;
    collect_until(&mut codec, &mut peer, &mut got, "mark prompt-2", |c| {
        c.events.contains(&PbxEvent::MarkReached("prompt-2".into()))
    })
    .await;
    let r = call.received();
    assert_eq!(r.clears, 1);
    assert!(r.marks[1].1 - t < 2000, "clear must cut the 5 s prompt short");

    // DTMF 0 = agent: transfer through the webhook.
    call.send_dtmf('0').await;
    collect_until(&mut codec, &mut peer, &mut got, "DTMF", |c| c.digits() == "0").await;
    let cfg = WebhookConfig::new(&format!("http://{hook_addr}/twilio/transfer")).unwrap();
    let req =
        TransferRequest::new(codec.call_sid().unwrap(), "1000", Some("agents"), &[("account".into(), "4711".into())]);
    webhook::transfer(&cfg, &req).await.unwrap();
    let (head, body) = hook_seen.lock().unwrap()[0].clone();
    assert!(head.starts_with("POST /twilio/transfer HTTP/1.1\r\n"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    assert_eq!(
        body,
        r#"{"call_sid":"CA5f3b0a1e9d","extension":"1000","context":"agents","variables":{"account":"4711"}}"#
    );

    // Malformed message, then Twilio ends the stream.
    call.send_raw(r#"{"event":"media","streamSid":"MZ","media":{"chunk":"99","payload":"@@@"}}"#).await;
    collect_until(&mut codec, &mut peer, &mut got, "base64 error", |c| !c.errors.is_empty()).await;
    assert!(got.errors[0].0.contains("chunk 99"), "{}", got.errors[0]);
    assert!(call.received().errors.is_empty(), "{:?}", call.received().errors);
    call.stop().await;
    collect_until(&mut codec, &mut peer, &mut got, "stop", |c| c.hung_up()).await;
}

#[tokio::test]
async fn webhook_failures_are_errors_with_the_reason() {
    let (addr, _) = http_endpoint(503, Duration::ZERO).await;
    let cfg = WebhookConfig::new(&format!("http://{addr}/t")).unwrap();
    let req = TransferRequest::new("CA1", "1000", None, &[]);
    match webhook::transfer(&cfg, &req).await.unwrap_err() {
        WebhookError::Status { status, body, .. } => {
            assert_eq!(status, 503);
            assert_eq!(body, "no agent line configured");
        }
        other => panic!("{other}"),
    }

    let (addr, _) = http_endpoint(200, Duration::from_secs(3)).await;
    let mut cfg = WebhookConfig::new(&format!("http://{addr}/t")).unwrap();
    cfg.timeout = Duration::from_millis(300);
    assert!(matches!(webhook::transfer(&cfg, &req).await.unwrap_err(), WebhookError::Timeout { .. }));

    let (l, addr) = listener().await;
    drop(l);
    let cfg = WebhookConfig::new(&format!("http://{addr}/t")).unwrap();
    let err = webhook::transfer(&cfg, &req).await.unwrap_err();
    assert!(matches!(err, WebhookError::Connect { .. }), "{err}");
    assert!(err.to_string().contains(&addr.to_string()));
}
