//! The fake event socket playing files and refusing like FreeSWITCH.
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::media::handle_bot_text;
use super::*;

/// The module announcing a temp file of `ms` of 16 kHz audio, as
/// mod_audio_fork does for a `playAudio` message.
fn module_writes(esl: &FakeEsl, uuid: &str, n: usize, ms: usize, dir: &Path) {
    let audio = base64::engine::general_purpose::STANDARD.encode(vec![0u8; ms * 32]);
    let msg = serde_json::json!({"type": "playAudio",
        "data": {"audioContentType": "raw", "sampleRate": 16000, "audioContent": audio}});
    let rec = Mutex::new(FsReceived::default());
    handle_bot_text(Module::AudioFork, uuid, &msg.to_string(), n, esl, dir, &rec);
    assert!(lock(&rec).errors.is_empty(), "{:?}", lock(&rec).errors);
}

async fn esl_session(fs: &FakeEsl) -> (BufReader<tokio::net::tcp::OwnedReadHalf>, tokio::net::tcp::OwnedWriteHalf) {
    let sock = TcpStream::connect(fs.addr).await.unwrap();
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    let hello = hotline::pbx::esl::read_message(&mut r).await.unwrap().unwrap();
    assert_eq!(hello.content_type(), "auth/request");
    w.write_all(format!("auth {ESL_PASSWORD}\n\nevent plain ALL\n\n").as_bytes()).await.unwrap();
    for _ in 0..2 {
        let m = hotline::pbx::esl::read_message(&mut r).await.unwrap().unwrap();
        assert!(m.header("Reply-Text").unwrap().starts_with("+OK"), "{m:?}");
    }
    (r, w)
}

async fn next_event(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> hotline::pbx::esl::EslEvent {
    loop {
        let m = hotline::pbx::esl::read_message(r).await.unwrap().unwrap();
        if m.content_type() == "text/event-plain" {
            return hotline::pbx::esl::EslEvent::parse_plain(&m.body).unwrap();
        }
    }
}

#[tokio::test]
async fn broadcast_files_play_in_order_for_their_duration_and_break_stops_them() {
    let fs = FakeEsl::start_playing().await.unwrap();
    let dir = std::env::temp_dir().join(format!("testkit-freeswitch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut r, mut w) = esl_session(&fs).await;
    let uuid = "be9c0000-0000-4000-8000-000000000001";
    fs.add_channel(uuid);
    // 100 ms and 200 ms of 16 kHz audio.
    for (n, ms) in [(1, 100), (2, 200)] {
        module_writes(&fs, uuid, n, ms, &dir);
    }
    let mut files = Vec::new();
    for _ in 0..2 {
        let ev = next_event(&mut r).await;
        assert_eq!(ev.subclass(), Some("mod_audio_fork::play_audio"));
        files.push(hotline::pbx::audio_fork::play_event_file(&ev.body).unwrap());
    }
    let t0 = Instant::now();
    for f in &files {
        w.write_all(format!("api uuid_broadcast {uuid} {f} aleg\n\n").as_bytes()).await.unwrap();
    }
    let mut stops = Vec::new();
    while stops.len() < 2 {
        let ev = next_event(&mut r).await;
        if ev.name() == Some("PLAYBACK_STOP") {
            stops.push((ev.get("Playback-File-Path").unwrap().to_string(), t0.elapsed()));
        }
    }
    assert_eq!(stops[0].0, files[0]);
    assert_eq!(stops[1].0, files[1]);
    assert!(stops[1].1 >= Duration::from_millis(290), "both files played in turn: {stops:?}");
    let view = fs.playback(uuid, t0).unwrap();
    assert_eq!(view.broadcasts, 2);
    assert!(view.idle_since.is_some());

    // A long file broken off at once.
    module_writes(&fs, uuid, 3, 10_000, &dir);
    let file = hotline::pbx::audio_fork::play_event_file(&next_event(&mut r).await.body).unwrap();
    w.write_all(format!("api uuid_broadcast {uuid} {file} aleg\n\napi uuid_break {uuid} all\n\n").as_bytes())
        .await
        .unwrap();
    let t1 = Instant::now();
    loop {
        let ev = next_event(&mut r).await;
        if ev.name() == Some("PLAYBACK_STOP") {
            assert_eq!(ev.get("Playback-Status"), Some("break"));
            break;
        }
    }
    assert!(t1.elapsed() < Duration::from_secs(2));
    assert!(fs.refused().is_empty(), "{:?}", fs.refused());
    fs.remove_channel(uuid);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn wrong_password_and_unknown_channels_are_refused_like_freeswitch() {
    let fs = FakeEsl::start_playing().await.unwrap();
    let sock = TcpStream::connect(fs.addr).await.unwrap();
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    hotline::pbx::esl::read_message(&mut r).await.unwrap();
    w.write_all(b"auth nope\n\n").await.unwrap();
    let m = hotline::pbx::esl::read_message(&mut r).await.unwrap().unwrap();
    assert_eq!(m.header("Reply-Text"), Some("-ERR invalid"));
    assert_eq!(fs.api("uuid_broadcast nobody /tmp/x aleg"), "-ERR invalid uuid\n");
    assert_eq!(fs.api("uuid_transfer nobody 100"), "-ERR No such channel!\n");
    assert!(fs.api("show channels").starts_with("-ERR show Command not found"));
}
