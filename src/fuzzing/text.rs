//! The text and file parsers: FreeSWITCH event-socket messages, HTTP
//! request heads, dialplans, the server config and WAV files.
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, BufReader, ReadBuf};

use super::{mutate, Entropy};
use crate::pbx::esl::{read_message, EslEvent, EslMessage};

/// An event-plain body as FreeSWITCH serialises it: url-encoded headers, a
/// blank line, then `Content-Length` and the event's own body.
fn event_body(headers: &str, body: &str) -> String {
    if body.is_empty() {
        format!("{headers}\n")
    } else {
        format!("{headers}Content-Length: {}\n\n{body}", body.len())
    }
}

/// A framed message: headers, then a body of `Content-Length` bytes.
fn esl_message(headers: &str, body: &str) -> Vec<u8> {
    if body.is_empty() {
        format!("{headers}\n").into_bytes()
    } else {
        format!("Content-Length: {}\n{headers}\n{body}", body.len()).into_bytes()
    }
}

/// What FreeSWITCH sends, PROTOCOLS.md §6.
fn esl_seeds() -> Vec<Vec<u8>> {
    let dtmf = event_body("Event-Name: DTMF\nUnique-ID: 0f1e2d3c\nDTMF-Digit: 5\nCaller-Caller-ID-Name: J%20Doe\n", "");
    let play = event_body(
        "Event-Name: CUSTOM\nEvent-Subclass: mod_audio_fork%3A%3Aplay_audio\nUnique-ID: 0f1e2d3c\n",
        r#"{"audioContentType":"raw","sampleRate":8000,"file":"/tmp/0f1e2d3c_1.tmp.r8"}"#,
    );
    let stop = event_body("Event-Name: PLAYBACK_STOP\nUnique-ID: 0f1e2d3c\nPlayback-File-Path: /tmp/x.r8\n", "");
    let hangup =
        event_body("Event-Name: CHANNEL_HANGUP\nChannel-Call-UUID: 0f1e2d3c\nHangup-Cause: NORMAL_CLEARING\n", "");
    vec![
        esl_message("Content-Type: auth/request\n", ""),
        esl_message("Content-Type: command/reply\nReply-Text: +OK accepted\n", ""),
        esl_message("Content-Type: command/reply\r\nReply-Text: +OK Job-UUID: 7f4d\r\nJob-UUID: 7f4d\r\n", ""),
        esl_message("Content-Type: api/response\n", "+OK Message sent\n"),
        esl_message("Content-Type: text/rude-rejection\n", "Access Denied, go away.\n"),
        esl_message("Content-Type: text/event-plain\n", &dtmf),
        esl_message("Content-Type: text/event-plain\n", &play),
        esl_message("Content-Type: text/event-plain\n", &stop),
        esl_message("Content-Type: text/event-plain\n", &hangup),
        esl_message("Content-Type: text/disconnect-notice\n", "Disconnected, goodbye.\n"),
    ]
}

/// A socket that delivers its bytes in the given pieces, one per read (or
/// less when the reader's buffer is smaller), and is never pending.
struct Pieces {
    pieces: Vec<Vec<u8>>,
    next: usize,
    offset: usize,
}

impl AsyncRead for Pieces {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if let Some(piece) = this.pieces.get(this.next) {
            let n = buf.remaining().min(piece.len() - this.offset);
            buf.put_slice(&piece[this.offset..this.offset + n]);
            this.offset += n;
            if this.offset == piece.len() {
                (this.next, this.offset) = (this.next + 1, 0);
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Runs a future over in-memory I/O, which never waits.
fn complete<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("in-memory reads never wait"),
    }
}

/// The messages of a stream, read as the event-socket client reads them,
/// up to the first error (rendered, to compare two readings).
fn read_all(pieces: Vec<Vec<u8>>, buffer: usize) -> (Vec<EslMessage>, Option<String>) {
    let mut reader = BufReader::with_capacity(buffer, Pieces { pieces, next: 0, offset: 0 });
    let mut messages = Vec::new();
    loop {
        match complete(read_message(&mut reader)) {
            Ok(Some(msg)) => messages.push(msg),
            Ok(None) => return (messages, None),
            Err(e) => return (messages, Some(e.to_string())),
        }
    }
}

/// The event-socket reader: the same messages (and the same error)
/// whatever the reads the stream arrives in; headers and bodies within
/// their bounds; every event body parses or is a named error.
pub fn fuzz_esl(data: &[u8]) {
    let mut e = Entropy::new(data);
    let seeds = esl_seeds();
    let mut stream = Vec::new();
    for _ in 0..1 + e.below(6) {
        let seed = e.pick(&seeds);
        match e.below(4) {
            0 => stream.extend(mutate(&mut e, seed)),
            1 => stream.extend_from_slice(e.bytes(64)),
            _ => stream.extend_from_slice(seed),
        }
    }
    let (whole, error) = read_all(vec![stream.clone()], 8 * 1024);
    let pieces: Vec<Vec<u8>> = e.split(&stream).into_iter().map(<[u8]>::to_vec).collect();
    let buffer = 1 + e.below(100);
    assert_eq!(read_all(pieces, buffer), (whole.clone(), error), "cut into pieces, {buffer}-byte buffer");
    for msg in &whole {
        assert!(msg.headers.len() <= 1024 && msg.body.len() <= 4 * 1024 * 1024, "{} headers", msg.headers.len());
        if msg.content_type() == "text/event-plain" {
            check_event(&msg.body);
        }
    }
    // The event parser alone, on mutated event bodies.
    let seed = e.pick(&seeds);
    let body = seed.split(|&b| b == b'\n').skip_while(|l| !l.is_empty()).skip(1).collect::<Vec<_>>().join(&b'\n');
    check_event(&mutate(&mut e, &body));
}

fn check_event(body: &[u8]) {
    match EslEvent::parse_plain(body) {
        Ok(event) => {
            assert!(event.name().is_some(), "an event without a name was accepted");
            assert!(event.body.len() <= body.len());
            let _ = event.classify().to_pbx_event();
        }
        Err(err) => assert!(!err.to_string().is_empty()),
    }
}

const HEAD_SEEDS: &[&str] = &[
    "GET /call?dialplan=hotline&caller_chan=Local%2Fs%40caller-sim-00000019%3B1 HTTP/1.1\r\nSec-WebSocket-Version: 13\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nHost: 127.0.0.1:18765\r\nAuthorization: Basic YXN0ZXJpc2s6cHc=\r\nSec-WebSocket-Protocol: media\r\nSec-WebSocket-Key: 9U5kJ4BqNqVWZxQb1ZyJMw==\r\n\r\n",
    "GET /transfer?uid=1795449971.3 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "GET / HTTP/1.0\r\n\r\n",
];

/// The HTTP request head parser, on what the listener hands it: the bytes
/// up to and including the first blank line, at most 8 KiB. Never a panic;
/// a parsed head holds only what the bytes said.
pub fn fuzz_http_head(data: &[u8]) {
    let mut e = Entropy::new(data);
    let mut bytes = match e.below(3) {
        0 => e.bytes(1024).to_vec(),
        _ => {
            let seed = e.pick(HEAD_SEEDS);
            mutate(&mut e, seed.as_bytes())
        }
    };
    // At most one head: up to the first blank line (the listener reads no
    // further before answering).
    match bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(end) => bytes.truncate(end + 4),
        None => bytes.extend_from_slice(b"\r\n\r\n"),
    }
    bytes.truncate(crate::server::http::MAX_HEAD_BYTES);
    let Ok(Some((head, len))) = crate::server::http::parse_head(&bytes) else { return };
    assert!(len <= bytes.len(), "head length {len} past the {} bytes given", bytes.len());
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains(&head.method) && text.contains(&head.target), "{head:?}");
    assert!(head.target.starts_with(head.path()));
    for (name, value) in &head.headers {
        assert!(text.contains(name.as_str()) && text.contains(value.as_str()), "{name}: {value}");
    }
    let _ = head.is_websocket_upgrade();
}

/// The shipped dialplan and the test fixtures, each with the path prompts
/// are looked up beside.
fn dialplan_seeds() -> [(&'static str, PathBuf); 5] {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = root.join("tests/fixtures/dialplans");
    [
        (include_str!("../../dialplans/hotline.toml"), root.join("dialplans/hotline.toml")),
        (include_str!("../../tests/fixtures/dialplans/clean.toml"), fixtures.join("clean.toml")),
        (include_str!("../../tests/fixtures/dialplans/broken.toml"), fixtures.join("broken.toml")),
        (include_str!("../../tests/fixtures/dialplans/no_start.toml"), fixtures.join("no_start.toml")),
        (include_str!("../../tests/fixtures/dialplans/syntax.toml"), fixtures.join("syntax.toml")),
    ]
}

/// True when a 1-based line and character column point into `text` (or
/// just past the end of a line).
fn inside(text: &str, line: usize, col: usize) -> bool {
    line >= 1 && col >= 1 && text.split('\n').nth(line - 1).is_some_and(|l| col <= l.chars().count() + 1)
}

/// The dialplan checker on mutated dialplans: never a panic; every
/// diagnostic points into the text; a dialplan comes back only without
/// errors.
pub fn fuzz_dialplan(data: &[u8]) {
    let mut e = Entropy::new(data);
    let seeds = dialplan_seeds();
    let (seed, path) = e.pick(&seeds);
    let bytes = match e.below(8) {
        0 => data.to_vec(),
        _ => mutate(&mut e, seed.as_bytes()),
    };
    let (plan, diagnostics) = crate::dialplan::check_bytes(path, &bytes);
    let text = String::from_utf8_lossy(&bytes);
    for d in &diagnostics {
        assert!(inside(&text, d.line, d.col), "{d} is not inside the text:\n{text}");
        assert!(!d.message.is_empty());
    }
    assert_eq!(plan.is_some(), !diagnostics.iter().any(|d| d.is_error()), "{diagnostics:?}");
}

const CONFIG_SEEDS: &[&str] = &[
    include_str!("../../hotline.example.toml"),
    "listen = \"127.0.0.1:8088\"\n[[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:9092\"\nrate = 8000\n",
    "[ami]\nusername = \"hotline\"\nsecret = \"s\"\n[transfer]\nmethod = \"ami\"\ntimeout_ms = 3000\n",
    "[esl]\naddress = \"127.0.0.1:8021\"\n[[listeners]]\ntransport = \"audio_fork\"\nlisten = \"127.0.0.1:9093\"\n",
];

/// The server config parser on mutated configs: never a panic; every
/// problem names the file and a line:col inside the text.
pub fn fuzz_config(data: &[u8]) {
    let mut e = Entropy::new(data);
    let bytes = match e.below(8) {
        0 => data.to_vec(),
        _ => {
            let seed = e.pick(CONFIG_SEEDS);
            mutate(&mut e, seed.as_bytes())
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let with_env = e.one_in(2);
    let env = |_: &str| with_env.then(|| "from-env".to_string());
    let Err(err) = crate::config::ServerConfig::from_toml_str(&text, None, &env) else { return };
    assert!(!err.0.is_empty(), "an error with no problems listed");
    for problem in &err.0 {
        assert_eq!(problem.file, "config", "{problem} does not name the file");
        assert!(inside(&text, problem.line, problem.col), "{problem} is not inside the text:\n{text}");
    }
}

/// A real WAV changed where it matters most: header fields set to edge
/// values, truncation, or the generic byte edits.
pub fn mutate_wav(e: &mut Entropy, seed: &[u8]) -> Vec<u8> {
    let mut wav = seed.to_vec();
    for _ in 0..1 + e.below(3) {
        match e.below(4) {
            0 => {
                // RIFF size, fmt fields, data size: all within 48 bytes.
                let at = e.below(48.min(wav.len().saturating_sub(3)).max(1));
                let value =
                    *e.pick(&[0u32, 1, 2, 0xffff, 0x8000_0000, 0xffff_ffff, 8000, 44_100, 16, 24, 32, 3, 0xfffe]);
                let width = if e.one_in(2) { 2 } else { 4 };
                for (i, b) in value.to_le_bytes()[..width].iter().enumerate() {
                    if let Some(slot) = wav.get_mut(at + i) {
                        *slot = *b;
                    }
                }
            }
            1 => {
                let at = e.below(wav.len() + 1);
                wav.truncate(at);
            }
            _ => wav = mutate(e, &wav),
        }
    }
    wav
}

/// The WAV reader on any bytes: never a panic; a read file is one the
/// call can play (a supported rate, some samples, no more than the bytes
/// hold); an error says what is wrong.
pub fn fuzz_wav(data: &[u8]) {
    match crate::audio::wav::parse_wav(data, Some("wav")) {
        Ok(audio) => {
            let rates = crate::audio::wav::MIN_RATE..=crate::audio::wav::MAX_RATE;
            assert!(rates.contains(&audio.rate), "rate {}", audio.rate);
            assert!(
                !audio.samples.is_empty() && audio.samples.len() <= data.len() / 2,
                "{} samples",
                audio.samples.len()
            );
        }
        Err(err) => assert!(err.to_string().len() > 10, "{err:?}"),
    }
}
