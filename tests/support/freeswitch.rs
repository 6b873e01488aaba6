//! FreeSWITCH's side of the mod_audio_fork / mod_audio_stream transports,
//! byte for byte per PROTOCOLS.md §4-§6:
//!
//! - [`FakeEsl`]: the inbound event socket (`auth/request`, `auth`,
//!   `event plain`, `api`, `bgapi`, `exit`), recording every command and
//!   answering the call-control APIs like FreeSWITCH (`+OK`,
//!   `-ERR No such channel!`), and delivering `text/event-plain` events.
//! - [`FsMediaClient`]: the websocket client the modules run: handshake
//!   (drachtio subprotocol, or libwsc's raw request offering
//!   permessage-deflate), metadata text frame, paced binary L16, and the
//!   module's handling of our JSON (`playAudio`/`streamAudio` → temp file
//!   + `::play_audio`/`::play` event on the event socket, `killAudio`).
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use hotline::bench::freeswitch::{background_job, plain_event};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

#[derive(Debug, Default)]
pub struct EslState {
    /// Every command line received after auth, in order.
    pub commands: Vec<String>,
    /// Channels that exist: call-control APIs on others fail.
    pub channels: HashSet<String>,
    pub subscriptions: Vec<String>,
    /// When each command arrived.
    pub timed: Vec<(Instant, String)>,
    /// Successful `auth` commands (one per connection of the server).
    pub auths: usize,
    /// The next `api`/`bgapi` of this command gets no reply at all (a
    /// FreeSWITCH that hangs on it).
    pub no_reply_once: Option<String>,
    /// Background jobs started, for Job-UUIDs the client did not choose.
    pub jobs: u64,
}

/// A fake FreeSWITCH event socket on 127.0.0.1.
#[derive(Clone)]
pub struct FakeEsl {
    pub addr: std::net::SocketAddr,
    pub password: String,
    pub state: Arc<Mutex<EslState>>,
    events: broadcast::Sender<Vec<u8>>,
    /// While true, FreeSWITCH is "down": connections are closed at once.
    down: Arc<std::sync::atomic::AtomicBool>,
    /// Bumped to close every open connection.
    kick: Arc<tokio::sync::watch::Sender<u64>>,
}

impl FakeEsl {
    pub async fn start(password: &str) -> FakeEsl {
        Self::start_at("127.0.0.1:0".parse().unwrap(), password).await
    }

    /// The event socket on a given loopback address (FreeSWITCH coming up
    /// where hotline already tries to reach it).
    pub async fn start_at(addr: std::net::SocketAddr, password: &str) -> FakeEsl {
        let listener = TcpListener::bind(addr).await.unwrap();
        let (events, _) = broadcast::channel(256);
        let esl = FakeEsl {
            addr: listener.local_addr().unwrap(),
            password: password.to_string(),
            state: Arc::new(Mutex::new(EslState::default())),
            events,
            down: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            kick: Arc::new(tokio::sync::watch::channel(0).0),
        };
        let server = esl.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                if server.down.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(sock);
                    continue;
                }
                let s = server.clone();
                tokio::spawn(async move { s.serve(sock).await });
            }
        });
        esl
    }

    /// FreeSWITCH goes away: open connections close, new ones are closed
    /// as soon as they are accepted.
    pub fn go_down(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        self.kick.send_modify(|g| *g += 1);
    }

    /// FreeSWITCH is back: connections are served again.
    pub fn come_back(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn auths(&self) -> usize {
        self.state.lock().unwrap().auths
    }

    /// Waits until hotline has connected a second time: authenticated and
    /// subscribed again.
    pub async fn wait_reconnected(&self, timeout: Duration) {
        let until = Instant::now() + timeout;
        while self.auths() < 2 || self.state.lock().unwrap().subscriptions.iter().filter(|s| *s == "DTMF").count() < 2 {
            assert!(Instant::now() < until, "no new event-socket connection: {:?}", self.commands());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Commands with the time each arrived.
    pub fn timed_commands(&self) -> Vec<(Instant, String)> {
        self.state.lock().unwrap().timed.clone()
    }

    /// `PLAYBACK_STOP` of a file on a channel, as FreeSWITCH fires it when
    /// the file has played (`done`) or was broken off (`break`).
    pub fn emit_playback_stop(&self, uuid: &str, file: &str, status: &str) {
        self.emit(
            &[
                ("Event-Name", "PLAYBACK_STOP"),
                ("Core-UUID", "7f4de4bc-1d66-4b49-a2a2-000000000000"),
                ("Unique-ID", uuid),
                ("Channel-Call-UUID", uuid),
                ("Playback-File-Path", file),
                ("Playback-Status", status),
            ],
            None,
        );
    }

    pub fn add_channel(&self, uuid: &str) {
        self.state.lock().unwrap().channels.insert(uuid.to_string());
    }

    pub fn commands(&self) -> Vec<String> {
        self.state.lock().unwrap().commands.clone()
    }

    /// Delivers an event to every connection that subscribed.
    pub fn emit(&self, headers: &[(&str, &str)], body: Option<&str>) {
        let _ = self.events.send(plain_event(headers, body));
    }

    pub fn emit_dtmf(&self, uuid: &str, digit: char) {
        let d = digit.to_string();
        self.emit(
            &[
                ("Event-Name", "DTMF"),
                ("Core-UUID", "7f4de4bc-1d66-4b49-a2a2-000000000000"),
                ("Unique-ID", uuid),
                ("Channel-Call-UUID", uuid),
                ("DTMF-Digit", &d),
                ("DTMF-Duration", "2000"),
                ("DTMF-Source", "RTP"),
            ],
            None,
        );
    }

    pub fn emit_custom(&self, uuid: &str, subclass: &str, body: &str) {
        self.emit(
            &[("Event-Name", "CUSTOM"), ("Event-Subclass", subclass), ("Unique-ID", uuid), ("Channel-Call-UUID", uuid)],
            Some(body),
        );
    }

    pub async fn wait_for_command(&self, prefix: &str, timeout: Duration) -> String {
        let until = Instant::now() + timeout;
        loop {
            if let Some(c) = self.commands().into_iter().find(|c| c.starts_with(prefix)) {
                return c;
            }
            assert!(Instant::now() < until, "fake ESL: no command starting {prefix:?}; got {:?}", self.commands());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn serve(self, sock: TcpStream) {
        let (read, mut write) = sock.into_split();
        let mut reader = BufReader::new(read);
        if write.write_all(b"Content-Type: auth/request\n\n").await.is_err() {
            return;
        }
        let mut authed = false;
        let mut events_rx: Option<broadcast::Receiver<Vec<u8>>> = None;
        let mut kick = self.kick.subscribe();
        loop {
            let block = tokio::select! {
                b = read_block(&mut reader) => b,
                // FreeSWITCH stopped: the connection just closes.
                _ = kick.changed() => return,
                ev = async {
                    match events_rx.as_mut() {
                        Some(rx) => rx.recv().await.ok(),
                        None => std::future::pending().await,
                    }
                } => {
                    if let Some(ev) = ev {
                        if write.write_all(&ev).await.is_err() { return; }
                    }
                    continue;
                }
            };
            let Some((line, headers)) = block else { return };
            let reply = |text: &str| format!("Content-Type: command/reply\nReply-Text: {text}\n\n");
            if !authed {
                match line.strip_prefix("auth ") {
                    Some(pw) if pw == self.password => {
                        authed = true;
                        self.state.lock().unwrap().auths += 1;
                        let _ = write.write_all(reply("+OK accepted").as_bytes()).await;
                        continue;
                    }
                    _ => {
                        // FreeSWITCH answers -ERR invalid and drops the connection.
                        let _ = write.write_all(reply("-ERR invalid").as_bytes()).await;
                        let _ = write.write_all(b"Content-Type: text/disconnect-notice\nContent-Length: 0\n\n").await;
                        return;
                    }
                }
            }
            {
                let mut st = self.state.lock().unwrap();
                st.commands.push(line.clone());
                st.timed.push((Instant::now(), line.clone()));
            }
            if self.swallowed(&line) {
                continue;
            }
            let out = if let Some(names) = line.strip_prefix("event plain ") {
                self.state.lock().unwrap().subscriptions.extend(names.split_whitespace().map(str::to_string));
                events_rx = Some(self.events.subscribe());
                reply("+OK event listener enabled plain")
            } else if let Some(cmd) = line.strip_prefix("api ") {
                let body = self.api(cmd);
                format!("Content-Type: api/response\nContent-Length: {}\n\n{body}", body.len())
            } else if let Some(cmd) = line.strip_prefix("bgapi ") {
                // FreeSWITCH takes the job's id from a Job-UUID header, else makes one.
                let job_uuid = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("Job-UUID")).map(|(_, v)| v.clone());
                let job_uuid = job_uuid.unwrap_or_else(|| {
                    let mut st = self.state.lock().unwrap();
                    st.jobs += 1;
                    format!("a5b7e2e4-7d3b-11ef-9a5c-{:012x}", st.jobs)
                });
                let (event, reply) = background_job(&job_uuid, cmd, &self.api(cmd));
                let _ = self.events.send(event);
                reply
            } else if line == "exit" {
                let _ = write.write_all(reply("+OK bye").as_bytes()).await;
                let _ = write.write_all(b"Content-Type: text/disconnect-notice\nContent-Length: 0\n\n").await;
                return;
            } else {
                reply("-ERR command not found")
            };
            if write.write_all(out.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    /// Whether this command is the one to leave unanswered (once).
    fn swallowed(&self, line: &str) -> bool {
        let name =
            line.strip_prefix("api ").or_else(|| line.strip_prefix("bgapi ")).and_then(|c| c.split_whitespace().next());
        let mut st = self.state.lock().unwrap();
        if name.is_some() && st.no_reply_once.as_deref() == name {
            st.no_reply_once = None;
            return true;
        }
        false
    }

    /// Replies of the call-control API commands (mod_commands).
    fn api(&self, cmd: &str) -> String {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let known = |uuid: Option<&&str>| uuid.is_some_and(|u| self.state.lock().unwrap().channels.contains(*u));
        match words.first().copied() {
            Some("uuid_transfer") | Some("uuid_kill") | Some("uuid_setvar") => {
                if known(words.get(1)) {
                    "+OK\n".into()
                } else {
                    "-ERR No such channel!\n".into()
                }
            }
            Some("uuid_break") => "+OK\n".into(),
            // mod_commands writes just the word, no "+OK", no newline.
            Some("uuid_exists") => known(words.get(1)).to_string(),
            Some("uuid_broadcast") => {
                if known(words.get(1)) {
                    "+OK Message sent\n".into()
                } else {
                    "-ERR invalid uuid\n".into()
                }
            }
            Some(other) => format!("-ERR {other} Command not found!\n"),
            None => "-ERR no command\n".into(),
        }
    }
}

/// One command block: the first non-empty line and the header lines
/// after it (`Job-UUID` of bgapi, sendmsg's), up to the empty line.
async fn read_block<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> Option<(String, Vec<(String, String)>)> {
    let mut first: Option<String> = None;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\n', '\r']).to_string();
        match (&first, line.is_empty()) {
            (None, true) => continue,
            (None, false) => first = Some(line),
            (Some(_), true) => return first.map(|f| (f, headers)),
            (Some(_), false) => {
                if let Some((k, v)) = line.split_once(':') {
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                }
            }
        }
    }
}

/// Which module is emulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    AudioFork,
    AudioStream,
}

impl Module {
    fn name(self) -> &'static str {
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
        let mut req = format!("ws://{addr}/fork").into_client_request().unwrap();
        req.headers_mut().insert("Sec-WebSocket-Protocol", "audio.drachtio.org".parse().unwrap());
        if let Some((user, password)) = basic_auth {
            let value =
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
            req.headers_mut().insert("Authorization", value.parse().unwrap());
        }
        let sock = TcpStream::connect(addr).await.expect("connect to the mod_audio_fork listener");
        let (ws, resp) = tokio_tungstenite::client_async(req, sock).await.expect("mod_audio_fork handshake");
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or("").to_string()))
            .collect();
        Self::start(Module::AudioFork, ws, headers, uuid, rate, metadata, esl, dir).await
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
        let mut sock = TcpStream::connect(addr).await.expect("connect to the mod_audio_stream listener");
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost:{addr}\r\nUpgrade:websocket\r\nConnection:upgrade\r\nSec-WebSocket-Key:{key}\r\nSec-WebSocket-Version:13\r\nSec-WebSocket-Extensions:permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits=9\r\nOrigin:http://{addr}\r\n\r\n"
        );
        sock.write_all(request.as_bytes()).await.unwrap();
        // Read the response byte by byte so no websocket bytes are swallowed.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            sock.read_exact(&mut b).await.expect("handshake response");
            head.push(b[0]);
            assert!(head.len() < 8192, "handshake response too long");
        }
        let text = String::from_utf8_lossy(&head).to_string();
        assert!(text.starts_with("HTTP/1.1 101"), "mod_audio_stream handshake refused: {text}");
        let headers: Vec<(String, String)> = text
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        // RFC 6455 accept value for the sample key above.
        let accept = headers.iter().find(|(k, _)| k == "sec-websocket-accept").map(|(_, v)| v.as_str());
        assert_eq!(accept, Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "bad Sec-WebSocket-Accept");
        let ws = WebSocketStream::from_raw_socket(sock, Role::Client, None).await;
        Self::start(Module::AudioStream, ws, headers, uuid, rate, metadata, esl, dir).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn start(
        module: Module,
        ws: WebSocketStream<TcpStream>,
        handshake_headers: Vec<(String, String)>,
        uuid: &str,
        rate: u32,
        metadata: &str,
        esl: FakeEsl,
        dir: PathBuf,
    ) -> Self {
        let (mut sink, mut stream) = ws.split();
        sink.send(Message::Text(metadata.into())).await.expect("send metadata");
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
                    Message::Binary(_) => rec.lock().unwrap().ignored_binary += 1,
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            rec.lock().unwrap().closed = true;
        });
        FsMediaClient { module, uuid: uuid.to_string(), rate, sink, received, handshake_headers }
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
        self.received.lock().unwrap().clone()
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
}

/// What the module does with a text frame from the bot.
fn handle_bot_text(
    module: Module,
    uuid: &str,
    text: &str,
    n: usize,
    esl: &FakeEsl,
    dir: &std::path::Path,
    rec: &Mutex<FsReceived>,
) {
    let error = |e: String| rec.lock().unwrap().errors.push(e);
    let Ok(serde_json::Value::Object(msg)) = serde_json::from_str::<serde_json::Value>(text) else {
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
        std::fs::write(&file, &audio).unwrap();
        let mut body = data.clone();
        body.remove(audio_key);
        body.insert("file".into(), serde_json::Value::String(file.display().to_string()));
        rec.lock().unwrap().files.push(file);
        esl.emit_custom(uuid, event, &serde_json::Value::Object(body).to_string());
    } else if module == Module::AudioFork && kind == "killAudio" {
        rec.lock().unwrap().kill_audio += 1;
        esl.emit_custom(uuid, "mod_audio_fork::kill_audio", "{}");
    } else if module == Module::AudioStream {
        esl.emit_custom(uuid, "mod_audio_stream::json", text);
    } else {
        error(format!("unknown message type {kind:?}"));
    }
}
