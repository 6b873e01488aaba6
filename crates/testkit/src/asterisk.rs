//! An Asterisk 22 chan_websocket client, as PROTOCOLS.md §1 describes the
//! real one (client mode, `Dial(WebSocket/<connection>/c(...)f(...)v(...))`):
//!
//! - the upgrade request byte for byte as Asterisk writes it, and the same
//!   checks on the 101 answer (`Connection` exactly `Upgrade`, no
//!   extensions, subprotocol absent or `media`);
//! - MEDIA_START first, in plain-text or JSON form;
//! - caller audio as one binary frame per 20 ms, only while the caller
//!   speaks (no frames in silence, like a Local-channel caller);
//! - DTMF_END per digit;
//! - the outgoing queue: messages cut into `optimal_frame_size` frames (a
//!   partial tail is dropped), one frame played per 20 ms, MEDIA_XOFF at 900
//!   frames, MEDIA_XON below 800, whole messages dropped from 1000 on;
//!   MARK_MEDIA answered with MEDIA_MARK_PROCESSED when playback reaches
//!   it; FLUSH_MEDIA drops audio and marks; HANGUP closes with 1000;
//!   a frame over 65535 bytes closes with 1009.
//!
//! Everything received is recorded with its time, for assertions. The same
//! file drives `hotline bench load`, so it only uses the crate's normal
//! dependencies.
#![allow(dead_code)]
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub const XOFF_LEVEL: usize = 900;
pub const XON_LEVEL: usize = 800;
pub const DROP_LEVEL: usize = 1000;
const FRAME_MS: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    PlainText,
    Json,
}

#[derive(Debug, Clone)]
pub struct AsteriskConfig {
    pub server: SocketAddr,
    /// Path and query as `websocket_client.conf` uri + `v()` make it.
    pub path: String,
    pub control: Control,
    /// `slin16`, `slin` or `ulaw`.
    pub format: String,
    pub channel_id: String,
    pub channel: String,
    /// JSON only: `channel_variables` of MEDIA_START.
    pub channel_variables: Vec<(String, String)>,
    pub auth: Option<(String, String)>,
}

impl AsteriskConfig {
    pub fn new(server: SocketAddr, n: u32) -> Self {
        AsteriskConfig {
            server,
            path: "/".into(),
            control: Control::Json,
            format: "slin16".into(),
            channel_id: format!("1795449971.{n}"),
            channel: format!("WebSocket/bot/0x7ff6f80{n:05x}"),
            channel_variables: vec![("__CALLER_CHANNEL".into(), format!("Local/s@caller-sim-{n:08};1"))],
            auth: None,
        }
    }

    pub fn rate(&self) -> u32 {
        match self.format.as_str() {
            "slin16" => 16000,
            _ => 8000,
        }
    }

    pub fn frame_bytes(&self) -> usize {
        match self.format.as_str() {
            "slin16" => 640,
            "slin" => 320,
            _ => 160,
        }
    }

    fn encode(&self, samples: &[i16]) -> Vec<u8> {
        if self.format == "ulaw" {
            samples.iter().map(|&s| ulaw_encode(s)).collect()
        } else {
            samples.iter().flat_map(|s| s.to_le_bytes()).collect()
        }
    }

    fn decode(&self, bytes: &[u8]) -> Vec<i16> {
        if self.format == "ulaw" {
            bytes.iter().map(|&b| ulaw_decode(b)).collect()
        } else {
            bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
        }
    }

    fn media_start(&self) -> String {
        let fb = self.frame_bytes();
        match self.control {
            Control::PlainText => format!(
                "MEDIA_START connection_id:bot channel:{} channel_id:{} format:{} optimal_frame_size:{fb} ptime:20",
                self.channel, self.channel_id, self.format
            ),
            Control::Json => {
                let mut vars = serde_json::Map::new();
                vars.insert("MEDIA_WEBSOCKET_CONNECTION_ID".into(), "bot".into());
                vars.insert("MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE".into(), fb.to_string().into());
                for (k, v) in &self.channel_variables {
                    vars.insert(k.clone(), v.clone().into());
                }
                serde_json::json!({
                    "event": "MEDIA_START", "connection_id": "bot", "channel": self.channel,
                    "channel_id": self.channel_id, "format": self.format,
                    "optimal_frame_size": fb, "ptime": 20, "channel_variables": vars,
                })
                .to_string()
            }
        }
    }

    fn event(&self, name: &str, plain_arg: Option<&str>, json_fields: &[(&str, &str)]) -> String {
        match self.control {
            Control::PlainText => match plain_arg {
                Some(a) => format!("{name} {a}"),
                None => name.to_string(),
            },
            Control::Json => {
                let mut o = serde_json::Map::new();
                o.insert("event".into(), name.into());
                o.insert("channel_id".into(), self.channel_id.clone().into());
                for (k, v) in json_fields {
                    o.insert((*k).into(), (*v).into());
                }
                serde_json::Value::Object(o).to_string()
            }
        }
    }
}

/// What the emulator saw, with the time since the call connected.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// A text command from the bot, verbatim.
    Command(String),
    /// A binary message from the bot (bytes).
    Audio(usize),
    /// A mark reached by playback (MEDIA_MARK_PROCESSED sent).
    MarkPlayed(String),
    /// Whole message dropped because the queue was full.
    Dropped(usize),
    Xoff,
    Xon,
    /// The queue ran dry in the middle of a prompt (audio queued without a
    /// mark behind it yet).
    Underrun,
    /// Close frame from the bot, or the code Asterisk closed with.
    Closed(Option<u16>),
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Item>,
    frames: usize,
    xoff: bool,
    /// Audio queued since the last mark: a dry queue now is an underrun.
    in_prompt: bool,
}

#[derive(Debug)]
enum Item {
    Frame(Vec<u8>),
    Mark(String),
}

#[derive(Debug, Default)]
pub struct Log {
    pub seen: Vec<(Duration, Seen)>,
    /// Bot audio as played (decoded), for checking what the caller heard.
    pub played_samples: usize,
    pub frames_played: usize,
    pub closed: bool,
}

enum Out {
    Text(String),
    Binary(Vec<u8>),
    Close(u16),
    /// Drop the TCP connection without a close frame.
    Abort,
}

pub struct AsteriskCall {
    pub cfg: AsteriskConfig,
    out: mpsc::Sender<Out>,
    log: Arc<Mutex<Log>>,
    queue: Arc<Mutex<Queue>>,
    reading: Arc<std::sync::atomic::AtomicBool>,
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Why a connection was not set up.
#[derive(Debug)]
pub struct HandshakeError(pub String);

impl AsteriskCall {
    /// Opens the websocket as Asterisk does and sends MEDIA_START.
    pub async fn connect(cfg: AsteriskConfig) -> Result<AsteriskCall, HandshakeError> {
        let mut tcp = TcpStream::connect(cfg.server).await.map_err(|e| HandshakeError(format!("connect: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let key = tokio_tungstenite::tungstenite::handshake::client::generate_key();
        let mut req = format!(
            "GET {} HTTP/1.1\r\nSec-WebSocket-Version: 13\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nHost: {}\r\n",
            cfg.path, cfg.server
        );
        if let Some((u, p)) = &cfg.auth {
            use base64::Engine as _;
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            req.push_str(&format!("Authorization: Basic {token}\r\n"));
        }
        req.push_str(&format!("Sec-WebSocket-Protocol: media\r\nSec-WebSocket-Key: {key}\r\n\r\n"));
        tcp.write_all(req.as_bytes()).await.map_err(|e| HandshakeError(format!("write: {e}")))?;
        let head = read_head(&mut tcp).await?;
        check_upgrade_response(&head, &key)?;
        let ws_cfg = WebSocketConfig::default().max_frame_size(Some(65535)).max_message_size(Some(1 << 20));
        let ws = WebSocketStream::from_raw_socket(tcp, Role::Client, Some(ws_cfg)).await;
        Ok(Self::run(cfg, ws).await)
    }

    async fn run(cfg: AsteriskConfig, ws: WebSocketStream<TcpStream>) -> AsteriskCall {
        let (mut sink, mut stream) = ws.split();
        let (out_tx, mut out_rx) = mpsc::channel::<Out>(256);
        let log = Arc::new(Mutex::new(Log::default()));
        let queue = Arc::new(Mutex::new(Queue::default()));
        let reading = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let started = Instant::now();
        let record = {
            let log = Arc::clone(&log);
            move |s: Seen| log.lock().unwrap().seen.push((started.elapsed(), s))
        };

        let writer = tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                let r = match m {
                    Out::Text(t) => sink.send(Message::text(t)).await,
                    Out::Binary(b) => sink.send(Message::binary(b)).await,
                    Out::Close(code) => {
                        let _ = sink
                            .send(Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: "".into() })))
                            .await;
                        let _ = sink.close().await;
                        return;
                    }
                    Out::Abort => return, // dropping the sink half drops the socket with the reader
                };
                if r.is_err() {
                    return;
                }
            }
        });

        // Reader: commands and audio from the bot.
        let reader = {
            let cfg = cfg.clone();
            let queue = Arc::clone(&queue);
            let out = out_tx.clone();
            let log = Arc::clone(&log);
            let reading = Arc::clone(&reading);
            let record = record.clone();
            tokio::spawn(async move {
                loop {
                    while !reading.load(std::sync::atomic::Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    let Some(msg) = stream.next().await else { break };
                    match msg {
                        Ok(Message::Text(t)) => {
                            let t = t.to_string();
                            record(Seen::Command(t.clone()));
                            handle_command(&cfg, t.trim(), &queue, &out, &record).await;
                        }
                        Ok(Message::Binary(b)) => {
                            record(Seen::Audio(b.len()));
                            let verdict = {
                                let mut q = queue.lock().unwrap();
                                if q.frames >= DROP_LEVEL {
                                    Some(false)
                                } else {
                                    // Cut into frames; a partial tail is discarded.
                                    for f in b.chunks_exact(cfg.frame_bytes()) {
                                        q.items.push_back(Item::Frame(f.to_vec()));
                                        q.frames += 1;
                                    }
                                    q.in_prompt = true;
                                    if q.frames >= XOFF_LEVEL && !q.xoff {
                                        q.xoff = true;
                                        Some(true)
                                    } else {
                                        None
                                    }
                                }
                            };
                            match verdict {
                                Some(false) => record(Seen::Dropped(b.len())),
                                Some(true) => {
                                    record(Seen::Xoff);
                                    let _ = out.send(Out::Text(cfg.event("MEDIA_XOFF", None, &[]))).await;
                                }
                                None => {}
                            }
                        }
                        Ok(Message::Close(frame)) => {
                            record(Seen::Closed(frame.map(|f| u16::from(f.code))));
                            // Asterisk answers a bot's close 1000 with 1001.
                            let _ = out.send(Out::Close(1001)).await;
                            break;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            let code = if e.to_string().contains("too long") || e.to_string().contains("Space limit") {
                                Some(1009)
                            } else {
                                None
                            };
                            record(Seen::Closed(code));
                            if code.is_some() {
                                let _ = out.send(Out::Close(1009)).await;
                            }
                            break;
                        }
                    }
                }
                log.lock().unwrap().closed = true;
            })
        };

        // Player: one frame per 20 ms, marks when reached.
        let player = {
            let cfg = cfg.clone();
            let queue = Arc::clone(&queue);
            let out = out_tx.clone();
            let log = Arc::clone(&log);
            let record = record.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(FRAME_MS));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                loop {
                    tick.tick().await;
                    if log.lock().unwrap().closed {
                        return;
                    }
                    let mut to_send = Vec::new();
                    {
                        let mut q = queue.lock().unwrap();
                        // Marks at the head are reached now.
                        while let Some(Item::Mark(_)) = q.items.front() {
                            if let Some(Item::Mark(id)) = q.items.pop_front() {
                                to_send.push(Seen::MarkPlayed(id));
                            }
                        }
                        match q.items.pop_front() {
                            Some(Item::Frame(f)) => {
                                q.frames -= 1;
                                let mut l = log.lock().unwrap();
                                l.frames_played += 1;
                                l.played_samples += cfg.decode(&f).len();
                            }
                            Some(Item::Mark(_)) => unreachable!("marks were drained above"),
                            None => {
                                if q.in_prompt {
                                    q.in_prompt = false;
                                    to_send.push(Seen::Underrun);
                                }
                            }
                        }
                        while let Some(Item::Mark(_)) = q.items.front() {
                            if let Some(Item::Mark(id)) = q.items.pop_front() {
                                to_send.push(Seen::MarkPlayed(id));
                            }
                        }
                        if q.xoff && q.frames < XON_LEVEL {
                            q.xoff = false;
                            to_send.push(Seen::Xon);
                        }
                    }
                    for s in to_send {
                        match &s {
                            Seen::MarkPlayed(id) => {
                                let ev = cfg.event("MEDIA_MARK_PROCESSED", Some(id), &[("correlation_id", id)]);
                                let _ = out.send(Out::Text(ev)).await;
                            }
                            Seen::Xon => {
                                let _ = out.send(Out::Text(cfg.event("MEDIA_XON", None, &[]))).await;
                            }
                            _ => {}
                        }
                        record(s);
                    }
                }
            })
        };

        let call = AsteriskCall {
            cfg: cfg.clone(),
            out: out_tx,
            log,
            queue,
            reading,
            started,
            tasks: vec![writer, reader, player],
        };
        call.send_text(&cfg.media_start()).await;
        call
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The caller speaks: `samples` at the call's rate, one 20 ms frame
    /// every 20 ms (the last one may be short, like Asterisk's).
    pub async fn say(&self, samples: &[i16]) {
        let per_frame = self.cfg.frame_bytes() / if self.cfg.format == "ulaw" { 1 } else { 2 };
        let mut tick = tokio::time::interval(Duration::from_millis(FRAME_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for chunk in samples.chunks(per_frame) {
            tick.tick().await;
            if self.out.send(Out::Binary(self.cfg.encode(chunk))).await.is_err() {
                return;
            }
        }
    }

    /// The caller is silent: Asterisk sends nothing at all meanwhile.
    pub async fn silence(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// One key press: ~250 ms tone, then DTMF_END (no audio meanwhile).
    pub async fn dtmf(&self, digit: char) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let d = digit.to_string();
        let ev = match self.cfg.control {
            Control::PlainText => format!("DTMF_END digit:{d} channel_id:{}", self.cfg.channel_id),
            Control::Json => self.cfg.event("DTMF_END", None, &[("digit", &d)]),
        };
        self.send_text(&ev).await;
    }

    pub async fn send_text(&self, text: &str) {
        let _ = self.out.send(Out::Text(text.to_string())).await;
    }

    pub async fn send_binary(&self, bytes: Vec<u8>) {
        let _ = self.out.send(Out::Binary(bytes)).await;
    }

    /// The caller hangs up: Asterisk closes with 1000.
    pub async fn hangup(&self) {
        let _ = self.out.send(Out::Close(1000)).await;
    }

    /// What Asterisk does to this connection when the caller leaves (hung
    /// up, or redirected away by AMI): close 1000 (PROTOCOLS.md §1.8). For
    /// the fake AMI, which moves callers.
    pub fn closer(&self) -> Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, ()> + Send + Sync> {
        let out = self.out.clone();
        Arc::new(move || {
            let out = out.clone();
            Box::pin(async move {
                let _ = out.send(Out::Close(1000)).await;
            })
        })
    }

    /// The TCP connection just goes away (no close frame).
    pub async fn abort(&mut self) {
        let _ = self.out.send(Out::Abort).await;
        for t in &self.tasks {
            t.abort();
        }
    }

    /// Stops reading the socket (a stuck peer); `true` resumes.
    pub fn set_reading(&self, on: bool) {
        self.reading.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn seen(&self) -> Vec<(Duration, Seen)> {
        self.log.lock().unwrap().seen.clone()
    }

    pub fn commands(&self) -> Vec<(Duration, String)> {
        self.seen()
            .into_iter()
            .filter_map(|(t, s)| match s {
                Seen::Command(c) => Some((t, c)),
                _ => None,
            })
            .collect()
    }

    pub fn frames_played(&self) -> usize {
        self.log.lock().unwrap().frames_played
    }

    pub fn queued_frames(&self) -> usize {
        self.queue.lock().unwrap().frames
    }

    pub fn is_closed(&self) -> bool {
        self.log.lock().unwrap().closed
    }

    /// Waits until `pred` holds on the log, up to `timeout`; returns the
    /// time (since connect) at which it held, or None.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&[(Duration, Seen)]) -> bool) -> Option<Duration> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let l = self.log.lock().unwrap();
                if pred(&l.seen) {
                    return Some(self.started.elapsed());
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for a command containing `needle`; returns when it arrived.
    pub async fn wait_command(&self, needle: &str, timeout: Duration) -> Option<Duration> {
        self.wait_for(timeout, |s| s.iter().any(|(_, x)| matches!(x, Seen::Command(c) if c.contains(needle)))).await?;
        self.commands().into_iter().find(|(_, c)| c.contains(needle)).map(|(t, _)| t)
    }

    /// Waits for the n-th (1-based) mark to be played.
    pub async fn wait_marks(&self, n: usize, timeout: Duration) -> bool {
        self.wait_for(timeout, |s| s.iter().filter(|(_, x)| matches!(x, Seen::MarkPlayed(_))).count() >= n)
            .await
            .is_some()
    }

    pub async fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.is_closed() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.is_closed()
    }
}

impl Drop for AsteriskCall {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn handle_command(
    cfg: &AsteriskConfig,
    text: &str,
    queue: &Arc<Mutex<Queue>>,
    out: &mpsc::Sender<Out>,
    record: &(impl Fn(Seen) + Clone),
) {
    // Asterisk ignores text frames over 128 bytes without a word.
    if text.len() > 128 {
        return;
    }
    let (name, arg) = match cfg.control {
        Control::PlainText => match text.split_once(' ') {
            Some((n, a)) => (n.to_string(), a.trim().to_string()),
            None => (text.to_string(), String::new()),
        },
        Control::Json => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => (
                v.get("command").and_then(|c| c.as_str()).unwrap_or("").to_string(),
                v.get("correlation_id").and_then(|c| c.as_str()).unwrap_or("").to_string(),
            ),
            Err(_) => {
                let ev = cfg.event(
                    "ERROR",
                    Some("error_text:Unable to parse JSON command"),
                    &[("error_text", "Unable to parse JSON command")],
                );
                let _ = out.send(Out::Text(ev)).await;
                return;
            }
        },
    };
    match name.as_str() {
        "ANSWER" | "GET_STATUS" | "REPORT_QUEUE_DRAINED" => {}
        "MARK_MEDIA" => {
            let mut q = queue.lock().unwrap();
            q.items.push_back(Item::Mark(arg));
            q.in_prompt = false;
        }
        "FLUSH_MEDIA" => {
            let was_off = {
                let mut q = queue.lock().unwrap();
                q.items.clear();
                q.frames = 0;
                q.in_prompt = false;
                std::mem::replace(&mut q.xoff, false)
            };
            if was_off {
                record(Seen::Xon);
                let _ = out.send(Out::Text(cfg.event("MEDIA_XON", None, &[]))).await;
            }
        }
        "HANGUP" => {
            let _ = out.send(Out::Close(1000)).await;
        }
        _ => {} // unknown commands are ignored (a WARNING in Asterisk's log)
    }
}

async fn read_head(tcp: &mut TcpStream) -> Result<String, HandshakeError> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte so no websocket data after the head is swallowed.
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut byte))
            .await
            .map_err(|_| HandshakeError("no upgrade response within 5 s".into()))?
            .map_err(|e| HandshakeError(format!("read: {e}")))?;
        if n == 0 {
            return Err(HandshakeError(format!(
                "connection closed during handshake: {}",
                String::from_utf8_lossy(&buf)
            )));
        }
        buf.push(byte[0]);
        if buf.len() > 16 * 1024 {
            return Err(HandshakeError("upgrade response too long".into()));
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The checks Asterisk's websocket client makes on the 101 answer.
fn check_upgrade_response(head: &str, key: &str) -> Result<(), HandshakeError> {
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 101") {
        return Err(HandshakeError(format!("status {status:?}")));
    }
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if !get("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(HandshakeError("Upgrade header is not websocket".into()));
    }
    if !get("connection").is_some_and(|v| v.eq_ignore_ascii_case("Upgrade")) {
        return Err(HandshakeError(format!("Invalid header value: Connection {:?}", get("connection"))));
    }
    if get("sec-websocket-extensions").is_some() {
        return Err(HandshakeError("Extensions received, but not supported by client".into()));
    }
    if let Some(p) = get("sec-websocket-protocol") {
        if p != "media" {
            return Err(HandshakeError(format!("subprotocol {p:?} was not offered")));
        }
    }
    let want = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    if get("sec-websocket-accept") != Some(want.as_str()) {
        return Err(HandshakeError("Sec-WebSocket-Accept mismatch".into()));
    }
    Ok(())
}

// G.711 µ-law, so this file needs nothing from the crate under test.
fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let mut pcm = sample as i32;
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    let pcm = (pcm + BIAS).min(32635 + BIAS);
    let exponent = (0..8).rev().find(|e| pcm & (0x80 << e) != 0).unwrap_or(0);
    let mantissa = (pcm >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

fn ulaw_decode(byte: u8) -> i16 {
    let b = !byte as i32;
    let sign = b & 0x80;
    let exponent = (b >> 4) & 0x07;
    let mantissa = b & 0x0F;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}
