//! The media modules' side: mod_audio_fork's and mod_audio_stream's
//! websocket client for one channel, and what they do with our messages.
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use hotline::pbx::transport::Transport;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::*;

/// `MOD_AUDIO_FORK_BUFFER_SECS` default: 2 s of 20 ms frames wait for the
/// websocket at most; beyond that, frames are dropped.
pub(super) const MODULE_BUFFER_FRAMES: usize = 100;

/// Which module is emulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    AudioFork,
    AudioStream,
}

impl Module {
    /// The module of a FreeSWITCH transport; `None` for the others.
    pub fn of(transport: Transport) -> Option<Module> {
        match transport {
            Transport::AudioFork => Some(Module::AudioFork),
            Transport::AudioStream => Some(Module::AudioStream),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Module::AudioFork => "mod_audio_fork",
            Module::AudioStream => "mod_audio_stream",
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct FsReceived {
    /// Temp files written for our audio, in order.
    pub files: Vec<PathBuf>,
    pub kill_audio: usize,
    /// Binary frames from the bot (both modules ignore them).
    pub ignored_binary: usize,
    /// Messages the module would log as errors.
    pub errors: Vec<String>,
    pub closed: bool,
}

/// The module's websocket client for one channel.
pub struct FsMediaClient {
    module: Module,
    uuid: String,
    rate: u32,
    sink: futures_util::stream::SplitSink<WebSocketStream<TcpStream>, Message>,
    pub received: Arc<Mutex<FsReceived>>,
    /// Response headers of the handshake, lower-cased names.
    pub handshake_headers: Vec<(String, String)>,
}

/// What the module is told by `uuid_audio_fork` / `uuid_audio_stream`
/// besides the server's address.
pub struct ChannelStart<'a> {
    pub uuid: &'a str,
    pub rate: u32,
    pub metadata: &'a str,
    pub esl: FakeEsl,
    /// Where the module writes the temp files of our audio.
    pub dir: PathBuf,
}

impl FsMediaClient {
    /// `uuid_audio_fork <uuid> start ws://addr/path mono <rate> <metadata>`.
    pub async fn connect_fork(
        addr: std::net::SocketAddr,
        uuid: &str,
        rate: u32,
        metadata: &str,
        esl: FakeEsl,
        dir: PathBuf,
    ) -> Self {
        Self::connect_fork_with_auth(addr, None, uuid, rate, metadata, esl, dir).await
    }

    /// The same with basic auth, as the module sends it when the channel
    /// variables `MOD_AUDIO_BASIC_AUTH_USERNAME` / `_PASSWORD` are set.
    pub async fn connect_fork_with_auth(
        addr: std::net::SocketAddr,
        basic_auth: Option<(&str, &str)>,
        uuid: &str,
        rate: u32,
        metadata: &str,
        esl: FakeEsl,
        dir: PathBuf,
    ) -> Self {
        let start = ChannelStart { uuid, rate, metadata, esl, dir };
        Self::try_connect_fork(addr, basic_auth, start).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`FsMediaClient::connect_fork_with_auth`], failing with a message
    /// instead of a panic.
    pub async fn try_connect_fork(
        addr: std::net::SocketAddr,
        basic_auth: Option<(&str, &str)>,
        start: ChannelStart<'_>,
    ) -> Result<Self, String> {
        let mut req = format!("ws://{addr}/fork").into_client_request().map_err(|e| e.to_string())?;
        req.headers_mut().insert("Sec-WebSocket-Protocol", "audio.drachtio.org".parse().unwrap());
        if let Some((user, password)) = basic_auth {
            let value =
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
            req.headers_mut().insert("Authorization", value.parse().map_err(|e| format!("basic auth header: {e}"))?);
        }
        let sock =
            TcpStream::connect(addr).await.map_err(|e| format!("connect to the mod_audio_fork listener: {e}"))?;
        let _ = sock.set_nodelay(true);
        let (ws, resp) =
            tokio_tungstenite::client_async(req, sock).await.map_err(|e| format!("mod_audio_fork handshake: {e}"))?;
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or("").to_string()))
            .collect();
        Self::start(Module::AudioFork, ws, headers, start).await
    }

    /// `uuid_audio_stream <uuid> start ws://addr/path mono <rate> <metadata>`,
    /// with libwsc's handshake request written byte for byte.
    pub async fn connect_stream(
        addr: std::net::SocketAddr,
        uuid: &str,
        rate: u32,
        metadata: &str,
        esl: FakeEsl,
        dir: PathBuf,
    ) -> Self {
        Self::connect_stream_to(addr, "/stream", uuid, rate, metadata, esl, dir).await
    }

    /// The same to another path and query of the `ws://` URL given to
    /// `uuid_audio_stream` (e.g. `/stream?token=...`).
    pub async fn connect_stream_to(
        addr: std::net::SocketAddr,
        path: &str,
        uuid: &str,
        rate: u32,
        metadata: &str,
        esl: FakeEsl,
        dir: PathBuf,
    ) -> Self {
        let start = ChannelStart { uuid, rate, metadata, esl, dir };
        Self::try_connect_stream(addr, path, start).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`FsMediaClient::connect_stream_to`], failing with a message
    /// instead of a panic.
    pub async fn try_connect_stream(
        addr: std::net::SocketAddr,
        path: &str,
        start: ChannelStart<'_>,
    ) -> Result<Self, String> {
        let handshake = |e: &dyn std::fmt::Display| format!("mod_audio_stream handshake: {e}");
        let mut sock =
            TcpStream::connect(addr).await.map_err(|e| format!("connect to the mod_audio_stream listener: {e}"))?;
        let _ = sock.set_nodelay(true);
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost:{addr}\r\nUpgrade:websocket\r\nConnection:upgrade\r\nSec-WebSocket-Key:{key}\r\nSec-WebSocket-Version:13\r\nSec-WebSocket-Extensions:permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits=9\r\nOrigin:http://{addr}\r\n\r\n"
        );
        sock.write_all(request.as_bytes()).await.map_err(|e| handshake(&e))?;
        // Read the response byte by byte so no websocket bytes are swallowed.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            sock.read_exact(&mut b).await.map_err(|e| handshake(&e))?;
            head.push(b[0]);
            if head.len() >= 8192 {
                return Err(handshake(&"response head longer than 8 KiB"));
            }
        }
        let text = String::from_utf8_lossy(&head).to_string();
        if !text.starts_with("HTTP/1.1 101") {
            return Err(format!("mod_audio_stream handshake refused: {text}"));
        }
        let headers: Vec<(String, String)> = text
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        // RFC 6455 accept value for the sample key above.
        let accept = headers.iter().find(|(k, _)| k == "sec-websocket-accept").map(|(_, v)| v.as_str());
        if accept != Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") {
            return Err(format!("bad Sec-WebSocket-Accept {accept:?}"));
        }
        let ws = WebSocketStream::from_raw_socket(sock, Role::Client, None).await;
        Self::start(Module::AudioStream, ws, headers, start).await
    }

    async fn start(
        module: Module,
        ws: WebSocketStream<TcpStream>,
        handshake_headers: Vec<(String, String)>,
        start: ChannelStart<'_>,
    ) -> Result<Self, String> {
        let ChannelStart { uuid, rate, metadata, esl, dir } = start;
        let (mut sink, mut stream) = ws.split();
        sink.send(Message::Text(metadata.into())).await.map_err(|e| format!("send metadata: {e}"))?;
        let received = Arc::new(Mutex::new(FsReceived::default()));
        let rec = received.clone();
        let uuid_owned = uuid.to_string();
        tokio::spawn(async move {
            let mut n = 0;
            while let Some(msg) = stream.next().await {
                let Ok(msg) = msg else { break };
                match msg {
                    Message::Text(t) => {
                        n += 1;
                        handle_bot_text(module, &uuid_owned, t.as_str(), n, &esl, &dir, &rec);
                    }
                    Message::Binary(_) => lock(&rec).ignored_binary += 1,
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            lock(&rec).closed = true;
        });
        Ok(FsMediaClient { module, uuid: uuid.to_string(), rate, sink, received, handshake_headers })
    }

    /// Caller audio as the module sends it: L16 frames of `ms_per_message`
    /// (a multiple of 20), one message per that many ms.
    pub async fn send_audio_paced(&mut self, samples: &[i16], ms_per_message: u64) {
        let n = (self.rate as u64 * ms_per_message / 1000) as usize;
        let mut tick = tokio::time::interval(Duration::from_millis(ms_per_message));
        for chunk in samples.chunks(n) {
            tick.tick().await;
            let mut padded = chunk.to_vec();
            padded.resize(n, 0);
            let bytes: Vec<u8> = padded.iter().flat_map(|s| s.to_le_bytes()).collect();
            if self.sink.send(Message::Binary(bytes.into())).await.is_err() {
                return;
            }
        }
    }

    pub async fn send_raw(&mut self, msg: Message) {
        let _ = self.sink.send(msg).await;
    }

    /// `uuid_audio_fork <uuid> stop` / the channel hangs up: close 1000.
    pub async fn stop(mut self) {
        let _ = self.sink.send(Message::Close(None)).await;
    }

    pub fn received(&self) -> FsReceived {
        lock(&self.received).clone()
    }

    pub async fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&FsReceived) -> bool) -> FsReceived {
        let until = Instant::now() + timeout;
        loop {
            let r = self.received();
            if done(&r) {
                return r;
            }
            assert!(Instant::now() < until, "{}: timed out waiting for {what}; got {r:?}", self.module.name());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The channel's audio from now on as in a live call: a frame every
    /// 20 ms (what [`LiveChannel::say`] queued, silence otherwise) into the
    /// module's bounded buffer, which the writer empties onto the websocket.
    pub fn go_live(self) -> LiveChannel {
        let FsMediaClient { rate, mut sink, received, module, .. } = self;
        let speech: Arc<Mutex<VecDeque<i16>>> = Arc::default();
        let dropped = Arc::new(AtomicUsize::new(0));
        let (frames_tx, mut frames_rx) = mpsc::channel::<Vec<u8>>(MODULE_BUFFER_FRAMES);
        let ticker = {
            let (speech, dropped) = (Arc::clone(&speech), Arc::clone(&dropped));
            tokio::spawn(async move {
                let frame = hotline::audio::frame_samples(rate);
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                loop {
                    tick.tick().await;
                    let samples: Vec<i16> = {
                        let mut s = lock(&speech);
                        let n = frame.min(s.len());
                        let mut f: Vec<i16> = s.drain(..n).collect();
                        f.resize(frame, 0);
                        f
                    };
                    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
                    match frames_tx.try_send(bytes) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            dropped.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => return,
                    }
                }
            })
        };
        let writer = tokio::spawn(async move {
            while let Some(bytes) = frames_rx.recv().await {
                if sink.send(Message::binary(bytes)).await.is_err() {
                    break;
                }
            }
            let _ = sink.send(Message::Close(None)).await;
        });
        LiveChannel { module, speech, dropped, received, ticker, writer }
    }
}

/// A channel streaming in real time (see [`FsMediaClient::go_live`]).
pub struct LiveChannel {
    pub module: Module,
    speech: Arc<Mutex<VecDeque<i16>>>,
    dropped: Arc<AtomicUsize>,
    received: Arc<Mutex<FsReceived>>,
    ticker: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
}

impl LiveChannel {
    /// The caller says `samples` (after what is still being said).
    pub fn say(&self, samples: &[i16]) {
        lock(&self.speech).extend(samples.iter().copied());
    }

    pub fn received(&self) -> FsReceived {
        lock(&self.received).clone()
    }

    /// Caller frames the module's buffer had to drop so far.
    pub fn dropped_frames(&self) -> usize {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The channel hangs up: the module closes the websocket.
    pub async fn hang_up(self) {
        self.ticker.abort();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.writer).await;
    }
}

/// What the module does with a text frame from the bot.
pub(super) fn handle_bot_text(
    module: Module,
    uuid: &str,
    text: &str,
    n: usize,
    esl: &FakeEsl,
    dir: &Path,
    rec: &Mutex<FsReceived>,
) {
    let error = |e: String| lock(rec).errors.push(e);
    let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(text) else {
        match module {
            Module::AudioFork => return error(format!("not JSON: {text}")),
            Module::AudioStream => return esl.emit_custom(uuid, "mod_audio_stream::json", text),
        }
    };
    let kind = msg.get("type").and_then(|t| t.as_str()).unwrap_or("");
    let data = msg.get("data").and_then(|d| d.as_object()).cloned().unwrap_or_default();
    let (play_type, audio_key, type_key, event) = match module {
        Module::AudioFork => ("playAudio", "audioContent", "audioContentType", "mod_audio_fork::play_audio"),
        Module::AudioStream => ("streamAudio", "audioData", "audioDataType", "mod_audio_stream::play"),
    };
    if kind == play_type {
        let content_type = data.get(type_key).and_then(|v| v.as_str()).unwrap_or("");
        let rate = data.get("sampleRate").and_then(|v| v.as_u64()).unwrap_or(0);
        if content_type != "raw" || ![8000, 16000, 24000, 32000, 48000, 64000].contains(&rate) {
            return error(format!("unsupported {type_key} {content_type:?} / sampleRate {rate}"));
        }
        let Some(Ok(audio)) =
            data.get(audio_key).and_then(|v| v.as_str()).map(|b| base64::engine::general_purpose::STANDARD.decode(b))
        else {
            return error(format!("{play_type} without valid base64 {audio_key}"));
        };
        let file = dir.join(format!("{uuid}_{n}.tmp.r{}", rate / 1000));
        if let Err(e) = std::fs::write(&file, &audio) {
            return error(format!("cannot write {}: {e}", file.display()));
        }
        esl.file_written(&file, Duration::from_micros(audio.len() as u64 / 2 * 1_000_000 / rate));
        let mut body = data.clone();
        body.remove(audio_key);
        body.insert("file".into(), Value::String(file.display().to_string()));
        lock(rec).files.push(file);
        esl.emit_custom(uuid, event, &Value::Object(body).to_string());
    } else if module == Module::AudioFork && kind == "killAudio" {
        lock(rec).kill_audio += 1;
        esl.kill_audio(uuid);
    } else if module == Module::AudioStream {
        esl.emit_custom(uuid, "mod_audio_stream::json", text);
    } else {
        error(format!("unknown message type {kind:?}"));
    }
}
