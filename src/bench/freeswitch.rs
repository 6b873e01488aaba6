//! FreeSWITCH on loopback for `hotline bench load --transport
//! audio_fork|audio_stream`, following PROTOCOLS.md §4–§6 byte for byte.
//!
//! Both halves of FreeSWITCH take part in a call, so both are emulated:
//!
//! - [`FakeFreeswitch`]: the inbound event socket the server connects to
//!   (`auth/request`, `auth`, `event plain`, `api`, `bgapi`, `exit`). It
//!   plays broadcast files as FreeSWITCH does — one after the other per
//!   channel, `PLAYBACK_START` when a file starts, `PLAYBACK_STOP` when it
//!   has played for its duration or is broken off by `uuid_break` — and
//!   notes when each `uuid_broadcast` arrived and when a channel's queue
//!   ran dry in the middle of a prompt.
//! - [`run_call`]: the module's websocket client for one channel: the
//!   handshake (drachtio subprotocol, or libwsc's raw request), the
//!   metadata frame, caller audio as binary L16 every 20 ms through the
//!   module's bounded buffer (frames are lost when the write side falls
//!   behind, as `mod_audio_fork::buffer_overrun` reports), and our JSON
//!   prompts turned into temp files announced by `::play_audio` / `::play`
//!   events on the event socket.
//!
//! Bench code cannot use the test emulators, hence this module.
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::pbx::transport::Transport;

/// The password the emulated event socket asks for.
pub const ESL_PASSWORD: &str = "ClueCon-bench";
/// Events queued for the server's connection; FreeSWITCH drops a slow
/// listener's events too, so a lagging reader loses the oldest.
const EVENT_QUEUE: usize = 4096;
/// Longest command line accepted on the emulated event socket.
const MAX_LINE: u64 = 16 * 1024;
/// `MOD_AUDIO_FORK_BUFFER_SECS` default: 2 s of 20 ms frames wait for the
/// websocket at most; beyond that, frames are dropped.
const MODULE_BUFFER_FRAMES: usize = 100;
/// A prompt is over when the channel played nothing for this long.
const PROMPT_DONE: Duration = Duration::from_millis(300);
/// A file broadcast to an idle channel less than this after the previous
/// one ended: the caller heard a gap inside a prompt (an underrun).
const UNDERRUN_GAP: Duration = Duration::from_millis(100);
const CORE_UUID: &str = "7f4de4bc-1d66-4b49-a2a2-00000000be9c";

/// Which module's client is emulated.
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

    fn name(self) -> &'static str {
        match self {
            Module::AudioFork => "mod_audio_fork",
            Module::AudioStream => "mod_audio_stream",
        }
    }
}

/// Percent-encodes an event header value as FreeSWITCH does
/// (switch_url_encode: everything but unreserved characters).
fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What FreeSWITCH does for `bgapi CMD`: the reply at once, and the
/// command's output `body` later in a BACKGROUND_JOB event.
pub fn background_job(job_uuid: &str, cmd: &str, body: &str) -> (Vec<u8>, String) {
    let (name, arg) = cmd.split_once(' ').unwrap_or((cmd, ""));
    let event = plain_event(
        &[("Event-Name", "BACKGROUND_JOB"), ("Job-UUID", job_uuid), ("Job-Command", name), ("Job-Command-Arg", arg)],
        Some(body),
    );
    let reply = format!("Content-Type: command/reply\nReply-Text: +OK Job-UUID: {job_uuid}\nJob-UUID: {job_uuid}\n\n");
    (event, reply)
}

/// One event in `text/event-plain` form, ready for the wire. (The test
/// suite's event socket uses it too.)
pub fn plain_event(headers: &[(&str, &str)], body: Option<&str>) -> Vec<u8> {
    let mut inner = String::new();
    for (k, v) in headers {
        inner.push_str(&format!("{k}: {}\n", url_encode(v)));
    }
    match body {
        Some(b) => inner.push_str(&format!("Content-Length: {}\n\n{b}", b.len())),
        None => inner.push('\n'),
    }
    let mut out = format!("Content-Length: {}\nContent-Type: text/event-plain\n\n", inner.len()).into_bytes();
    out.extend_from_slice(inner.as_bytes());
    out
}

/// One channel's playback, as FreeSWITCH's broadcast queue runs it.
#[derive(Debug, Default)]
struct Channel {
    queue: VecDeque<String>,
    /// The file playing and its generation (a break bumps the generation,
    /// so the timer of a broken-off file does nothing).
    playing: Option<(String, u64)>,
    generation: u64,
    /// When each `uuid_broadcast` arrived.
    broadcasts: Vec<Instant>,
    /// When the last file stopped playing.
    last_stop: Option<Instant>,
    underruns: usize,
}

#[derive(Default)]
struct State {
    channels: HashMap<String, Channel>,
    /// Temp files the modules wrote, with how long they play.
    files: HashMap<String, Duration>,
    /// Commands the server sent that FreeSWITCH would refuse.
    refused: Vec<String>,
}

struct Inner {
    state: Mutex<State>,
    events: broadcast::Sender<Arc<Vec<u8>>>,
    temp_dir: String,
}

/// The emulated FreeSWITCH: its event socket and its channels.
#[derive(Clone)]
pub struct FakeFreeswitch {
    /// The event socket's `host:port`, for the server's `[esl]` section.
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

/// What one channel's playback looked like, for the caller.
#[derive(Debug, Clone, Copy)]
pub struct PlaybackView {
    pub broadcasts: usize,
    pub first_broadcast_after: Option<Instant>,
    /// Since when nothing plays or waits; `None` while something does.
    pub idle_since: Option<Instant>,
}

impl FakeFreeswitch {
    /// Listens on 127.0.0.1 (any free port).
    pub async fn start() -> Result<FakeFreeswitch, String> {
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("fake event socket: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (events, _) = broadcast::channel(EVENT_QUEUE);
        let temp_dir = std::env::temp_dir().display().to_string();
        let fs =
            FakeFreeswitch { addr, inner: Arc::new(Inner { state: Mutex::new(State::default()), events, temp_dir }) };
        let server = fs.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let s = server.clone();
                tokio::spawn(async move { s.serve(sock).await });
            }
        });
        Ok(fs)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, headers: &[(&str, &str)], body: Option<&str>) {
        // No subscriber yet (or any more): FreeSWITCH drops the event too.
        let _ = self.inner.events.send(Arc::new(plain_event(headers, body)));
    }

    fn emit_custom(&self, uuid: &str, subclass: &str, body: &str) {
        self.emit(
            &[
                ("Event-Name", "CUSTOM"),
                ("Core-UUID", CORE_UUID),
                ("Event-Subclass", subclass),
                ("Unique-ID", uuid),
                ("Channel-Call-UUID", uuid),
            ],
            Some(body),
        );
    }

    fn emit_playback(&self, name: &str, uuid: &str, file: &str, status: Option<&str>) {
        let mut headers = vec![
            ("Event-Name", name),
            ("Core-UUID", CORE_UUID),
            ("Unique-ID", uuid),
            ("Channel-Call-UUID", uuid),
            ("Playback-File-Path", file),
        ];
        if let Some(s) = status {
            headers.push(("Playback-Status", s));
        }
        self.emit(&headers, None);
    }

    /// A channel appears (the call is answered and the fork started).
    pub fn add_channel(&self, uuid: &str) {
        self.state().channels.insert(uuid.to_string(), Channel::default());
    }

    /// The channel is gone: its playback stops, its temp files are deleted.
    pub fn remove_channel(&self, uuid: &str) -> Option<usize> {
        let mut st = self.state();
        st.files.retain(|f, _| !f.contains(uuid));
        st.channels.remove(uuid).map(|c| c.underruns)
    }

    /// Commands FreeSWITCH would have refused, for the report.
    pub fn refused(&self) -> Vec<String> {
        self.state().refused.clone()
    }

    pub fn playback(&self, uuid: &str, after: Instant) -> Option<PlaybackView> {
        let st = self.state();
        let c = st.channels.get(uuid)?;
        let idle = c.playing.is_none() && c.queue.is_empty();
        Some(PlaybackView {
            broadcasts: c.broadcasts.len(),
            first_broadcast_after: c.broadcasts.iter().copied().find(|t| *t >= after),
            idle_since: if idle { c.last_stop } else { None },
        })
    }

    /// The module wrote our audio to a temp file and announces it.
    fn module_wrote_file(
        &self,
        module: Module,
        uuid: &str,
        n: u64,
        data: &serde_json::Map<String, Value>,
    ) -> Result<(), String> {
        let (audio_key, type_key, event) = match module {
            Module::AudioFork => ("audioContent", "audioContentType", "mod_audio_fork::play_audio"),
            Module::AudioStream => ("audioData", "audioDataType", "mod_audio_stream::play"),
        };
        let content_type = data.get(type_key).and_then(Value::as_str).unwrap_or("");
        let rate = data.get("sampleRate").and_then(Value::as_u64).unwrap_or(0);
        if content_type != "raw" || ![8000, 16000, 24000, 32000, 48000, 64000].contains(&rate) {
            return Err(format!("{}: unsupported {type_key} {content_type:?} / sampleRate {rate}", module.name()));
        }
        let audio = data
            .get(audio_key)
            .and_then(Value::as_str)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .ok_or_else(|| format!("{}: no valid base64 {audio_key}", module.name()))?;
        let file = format!("{}/{uuid}_{n}.tmp.r{}", self.inner.temp_dir, rate / 1000);
        let plays_for = Duration::from_micros(audio.len() as u64 / 2 * 1_000_000 / rate);
        self.state().files.insert(file.clone(), plays_for);
        let mut body = data.clone();
        body.remove(audio_key);
        body.insert("file".into(), Value::String(file));
        self.emit_custom(uuid, event, &Value::Object(body).to_string());
        Ok(())
    }

    /// `uuid_broadcast <uuid> <file> aleg`: queue the file.
    fn broadcast(&self, uuid: &str, file: &str) -> String {
        let start_now = {
            let mut st = self.state();
            if !st.files.contains_key(file) {
                st.refused.push(format!("uuid_broadcast of unknown file {file}"));
            }
            let Some(c) = st.channels.get_mut(uuid) else { return "-ERR invalid uuid\n".into() };
            let now = Instant::now();
            c.broadcasts.push(now);
            c.queue.push_back(file.to_string());
            let idle = c.playing.is_none();
            // A file reaching an idle channel right after the previous one
            // ended: the prompt had a gap.
            if idle && c.last_stop.is_some_and(|t| now.duration_since(t) < UNDERRUN_GAP) && c.queue.len() == 1 {
                c.underruns += 1;
            }
            idle
        };
        if start_now {
            self.play_next(uuid);
        }
        "+OK Message sent\n".into()
    }

    /// Starts the next queued file of the channel, if any.
    fn play_next(&self, uuid: &str) {
        let (file, generation, plays_for) = {
            let mut st = self.state();
            let State { channels, files, .. } = &mut *st;
            let Some(c) = channels.get_mut(uuid) else { return };
            let Some(file) = c.queue.pop_front() else { return };
            c.generation += 1;
            c.playing = Some((file.clone(), c.generation));
            let plays_for = files.get(&file).copied().unwrap_or_default();
            (file, c.generation, plays_for)
        };
        self.emit_playback("PLAYBACK_START", uuid, &file, None);
        let fs = self.clone();
        let uuid = uuid.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(plays_for).await;
            fs.stop_playing(&uuid, Some(generation), "done");
            fs.play_next(&uuid);
        });
    }

    /// Stops the file playing (the one of `generation`, or whatever plays).
    fn stop_playing(&self, uuid: &str, generation: Option<u64>, status: &str) {
        let file = {
            let mut st = self.state();
            let Some(c) = st.channels.get_mut(uuid) else { return };
            match &c.playing {
                Some((_, g)) if generation.is_none_or(|want| want == *g) => {}
                _ => return,
            }
            c.last_stop = Some(Instant::now());
            c.generation += 1;
            c.playing.take().map(|(f, _)| f)
        };
        if let Some(f) = file {
            self.emit_playback("PLAYBACK_STOP", uuid, &f, Some(status));
        }
    }

    /// `uuid_break <uuid> [all]`: stop the file playing; `all` also drops
    /// the queued ones, otherwise the next one starts.
    fn break_playback(&self, uuid: &str, all: bool) -> String {
        if all {
            if let Some(c) = self.state().channels.get_mut(uuid) {
                c.queue.clear();
            }
        }
        self.stop_playing(uuid, None, "break");
        if !all {
            self.play_next(uuid);
        }
        "+OK\n".into()
    }

    /// The call-control API commands (mod_commands) the server uses.
    fn api(&self, cmd: &str) -> String {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let known = |uuid: Option<&&str>| uuid.is_some_and(|u| self.state().channels.contains_key(*u));
        match (words.first().copied(), words.get(1)) {
            (Some("uuid_broadcast"), Some(uuid)) if words.len() >= 3 => self.broadcast(uuid, words[2]),
            (Some("uuid_break"), Some(uuid)) => self.break_playback(uuid, words.get(2) == Some(&"all")),
            // mod_commands writes just the word, no "+OK", no newline.
            (Some("uuid_exists"), uuid) => known(uuid).to_string(),
            (Some("uuid_transfer" | "uuid_kill" | "uuid_setvar"), uuid) => {
                if known(uuid) {
                    "+OK\n".into()
                } else {
                    "-ERR No such channel!\n".into()
                }
            }
            (Some(other), _) => format!("-ERR {other} Command not found!\n"),
            (None, _) => "-ERR no command\n".into(),
        }
    }

    /// One event-socket connection, as mod_event_socket serves it.
    async fn serve(self, sock: TcpStream) {
        let (read, mut write) = sock.into_split();
        let mut reader = BufReader::new(read);
        if write.write_all(b"Content-Type: auth/request\n\n").await.is_err() {
            return;
        }
        let reply = |text: &str| format!("Content-Type: command/reply\nReply-Text: {text}\n\n");
        let mut authed = false;
        let mut events: Option<broadcast::Receiver<Arc<Vec<u8>>>> = None;
        let mut job = 0u64;
        loop {
            let line = tokio::select! {
                line = read_command(&mut reader) => line,
                ev = next_event(&mut events) => {
                    if let Some(ev) = ev {
                        if write.write_all(&ev).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
            };
            let Some((line, job_header)) = line else { return };
            if !authed {
                if line.strip_prefix("auth ") == Some(ESL_PASSWORD) {
                    authed = true;
                    if write.write_all(reply("+OK accepted").as_bytes()).await.is_err() {
                        return;
                    }
                    continue;
                }
                let _ = write.write_all(reply("-ERR invalid").as_bytes()).await;
                let _ = write.write_all(b"Content-Type: text/disconnect-notice\nContent-Length: 0\n\n").await;
                return;
            }
            let out = if line.starts_with("event plain ") {
                events = Some(self.inner.events.subscribe());
                reply("+OK event listener enabled plain")
            } else if let Some(cmd) = line.strip_prefix("api ") {
                let body = self.api(cmd);
                format!("Content-Type: api/response\nContent-Length: {}\n\n{body}", body.len())
            } else if let Some(cmd) = line.strip_prefix("bgapi ") {
                job += 1;
                // FreeSWITCH takes the job's id from a Job-UUID header, else makes one.
                let job_uuid = job_header.unwrap_or_else(|| format!("a5b7e2e4-7d3b-11ef-9a5c-{job:012x}"));
                let (event, reply) = background_job(&job_uuid, cmd, &self.api(cmd));
                let _ = self.inner.events.send(Arc::new(event));
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
}

async fn next_event(events: &mut Option<broadcast::Receiver<Arc<Vec<u8>>>>) -> Option<Arc<Vec<u8>>> {
    let Some(rx) = events.as_mut() else { return std::future::pending().await };
    loop {
        match rx.recv().await {
            Ok(ev) => return Some(ev),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(lost = n, "fake event socket: the server read events too slowly; some dropped");
            }
            Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
        }
    }
}

/// One command block: its first line and its `Job-UUID` header (bgapi),
/// up to the empty line (other header lines, of `sendmsg`, are read and
/// not used). `None` at the end of the stream.
async fn read_command<R: AsyncBufRead + Unpin>(reader: &mut R) -> Option<(String, Option<String>)> {
    let mut first: Option<String> = None;
    let mut job_uuid = None;
    loop {
        let mut line = Vec::new();
        let n = (&mut *reader).take(MAX_LINE).read_until(b'\n', &mut line).await.ok()?;
        if n == 0 || (n as u64 == MAX_LINE && !line.ends_with(b"\n")) {
            return None;
        }
        let line = String::from_utf8_lossy(&line).trim_end_matches(['\n', '\r']).to_string();
        match (&first, line.is_empty()) {
            (None, true) => continue,
            (None, false) => first = Some(line),
            (Some(_), true) => return first.map(|f| (f, job_uuid)),
            (Some(_), false) => {
                if let Some((_, v)) = line.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case("Job-UUID")) {
                    job_uuid = Some(v.trim().to_string());
                }
            }
        }
    }
}

/// The figures of one call.
#[derive(Debug, Default)]
pub struct CallFigures {
    /// End of the caller's speech → the server's `uuid_broadcast` of the
    /// response prompt, per turn.
    pub latencies_ms: Vec<u64>,
    /// Gaps inside prompts (a file reached an idle channel right after the
    /// previous one ended).
    pub underruns: usize,
    /// Caller frames the module's buffer had to drop.
    pub dropped_frames: usize,
}

/// What the module's reader learned from the server.
#[derive(Default)]
struct Seen {
    closed: bool,
    errors: Vec<String>,
}

/// One caller on a FreeSWITCH channel: the module streams its audio; it
/// waits for each prompt to finish playing, says the word, and measures
/// until the server broadcasts the next prompt; after `duration`, the
/// channel hangs up.
pub async fn run_call(
    fs: &FakeFreeswitch,
    module: Module,
    addr: SocketAddr,
    uuid: String,
    clip: Vec<i16>,
    speech_end: Duration,
    duration: Duration,
) -> Result<CallFigures, String> {
    const RATE: u32 = 16_000;
    fs.add_channel(&uuid);
    let ws = match module {
        Module::AudioFork => connect_fork(addr).await?,
        Module::AudioStream => connect_stream(addr).await?,
    };
    let (mut sink, mut stream) = ws.split();
    let metadata =
        serde_json::json!({"uuid": uuid, "dialplan": "bench", "caller_id": "1000", "sampleRate": RATE}).to_string();
    sink.send(Message::text(metadata)).await.map_err(|e| format!("metadata frame: {e}"))?;

    let seen = Arc::new(Mutex::new(Seen::default()));
    let reader = {
        let (fs, uuid, seen) = (fs.clone(), uuid.clone(), Arc::clone(&seen));
        tokio::spawn(async move {
            let mut n = 0u64;
            while let Some(Ok(msg)) = stream.next().await {
                match msg {
                    Message::Text(t) => {
                        n += 1;
                        if let Err(e) = on_bot_text(&fs, module, &uuid, t.as_str(), n) {
                            seen.lock().unwrap_or_else(|p| p.into_inner()).errors.push(e);
                        }
                    }
                    Message::Close(_) => break,
                    // Both modules ignore binary frames; ping/pong is the library's.
                    _ => {}
                }
            }
            seen.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
        })
    };

    // Caller audio: a frame every 20 ms (speech when there is some to say,
    // silence otherwise) into the module's bounded buffer; the writer
    // empties it onto the websocket.
    let speech: Arc<Mutex<VecDeque<i16>>> = Arc::new(Mutex::new(VecDeque::new()));
    let (frames_tx, mut frames_rx) = mpsc::channel::<Vec<u8>>(MODULE_BUFFER_FRAMES);
    let dropped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ticker = {
        let (speech, dropped) = (Arc::clone(&speech), Arc::clone(&dropped));
        tokio::spawn(async move {
            let frame = crate::audio::frame_samples(RATE);
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                tick.tick().await;
                let samples: Vec<i16> = {
                    let mut s = speech.lock().unwrap_or_else(|p| p.into_inner());
                    let n = frame.min(s.len());
                    let mut f: Vec<i16> = s.drain(..n).collect();
                    f.resize(frame, 0);
                    f
                };
                let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
                match frames_tx.try_send(bytes) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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

    let result = turns(fs, &uuid, &seen, &speech, &clip, speech_end, duration).await;
    // Hang up: the module closes the websocket, the channel goes away.
    ticker.abort();
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    let underruns = fs.remove_channel(&uuid).unwrap_or(0);
    let errors = std::mem::take(&mut seen.lock().unwrap_or_else(|p| p.into_inner()).errors);
    if let Some(e) = errors.first() {
        return Err(format!("{} refused a message from the server: {e}", module.name()));
    }
    let latencies_ms = result?;
    Ok(CallFigures { latencies_ms, underruns, dropped_frames: dropped.load(std::sync::atomic::Ordering::Relaxed) })
}

/// The caller's turns until `duration` is over: latencies in ms.
async fn turns(
    fs: &FakeFreeswitch,
    uuid: &str,
    seen: &Mutex<Seen>,
    speech: &Mutex<VecDeque<i16>>,
    clip: &[i16],
    speech_end: Duration,
    duration: Duration,
) -> Result<Vec<u64>, String> {
    let t_end = Instant::now() + duration;
    let mut latencies = Vec::new();
    let mut heard = 0;
    let closed = || seen.lock().unwrap_or_else(|p| p.into_inner()).closed;
    while Instant::now() < t_end {
        // The prompt is over once the channel played nothing for a while.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let view = fs.playback(uuid, Instant::now()).ok_or("the channel is gone")?;
            if view.broadcasts > heard && view.idle_since.is_some_and(|t| t.elapsed() >= PROMPT_DONE) {
                heard = view.broadcasts;
                break;
            }
            if closed() {
                return Err("the server closed the stream".into());
            }
            if Instant::now() > deadline {
                return Err("a prompt never finished".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let started = Instant::now();
        speech.lock().unwrap_or_else(|p| p.into_inner()).extend(clip.iter().copied());
        let spoke_until = started + speech_end;
        let deadline = started + Duration::from_secs(15);
        let first = loop {
            let view = fs.playback(uuid, spoke_until).ok_or("the channel is gone")?;
            if view.broadcasts > heard {
                break view.first_broadcast_after.unwrap_or(spoke_until);
            }
            if closed() {
                return Err("the server closed the stream".into());
            }
            if Instant::now() > deadline {
                return Err("no response to speech".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        latencies.push(first.saturating_duration_since(spoke_until).as_millis() as u64);
    }
    Ok(latencies)
}

/// What the module does with a text frame from the server.
fn on_bot_text(fs: &FakeFreeswitch, module: Module, uuid: &str, text: &str, n: u64) -> Result<(), String> {
    let msg: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) if module == Module::AudioStream => {
            fs.emit_custom(uuid, "mod_audio_stream::json", text);
            return Ok(());
        }
        Err(e) => return Err(format!("text frame is not JSON ({e})")),
    };
    let kind = msg.get("type").and_then(Value::as_str).unwrap_or("");
    let data = msg.get("data").and_then(Value::as_object).cloned().unwrap_or_default();
    match (module, kind) {
        (Module::AudioFork, "playAudio") | (Module::AudioStream, "streamAudio") => {
            fs.module_wrote_file(module, uuid, n, &data)
        }
        (Module::AudioFork, "killAudio") => {
            // The break flag stops the file playing now.
            fs.stop_playing(uuid, None, "break");
            fs.play_next(uuid);
            fs.emit_custom(uuid, "mod_audio_fork::kill_audio", "{}");
            Ok(())
        }
        (Module::AudioStream, _) => {
            fs.emit_custom(uuid, "mod_audio_stream::json", text);
            Ok(())
        }
        (Module::AudioFork, other) => Err(format!("unknown message type {other:?}")),
    }
}

/// `uuid_audio_fork <uuid> start ws://addr/fork mono 16k <metadata>`.
async fn connect_fork(addr: SocketAddr) -> Result<WebSocketStream<TcpStream>, String> {
    let mut req = format!("ws://{addr}/fork").into_client_request().map_err(|e| e.to_string())?;
    req.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("audio.drachtio.org"));
    let sock = TcpStream::connect(addr).await.map_err(|e| format!("connect to {addr}: {e}"))?;
    let _ = sock.set_nodelay(true);
    let (ws, _) =
        tokio_tungstenite::client_async(req, sock).await.map_err(|e| format!("mod_audio_fork handshake: {e}"))?;
    Ok(ws)
}

/// `uuid_audio_stream <uuid> start ws://addr/stream mono 16k <metadata>`,
/// with libwsc's handshake request written as it writes it.
async fn connect_stream(addr: SocketAddr) -> Result<WebSocketStream<TcpStream>, String> {
    let mut sock = TcpStream::connect(addr).await.map_err(|e| format!("connect to {addr}: {e}"))?;
    let _ = sock.set_nodelay(true);
    let key = base64::engine::general_purpose::STANDARD.encode(rand_key());
    let request = format!(
        "GET /stream HTTP/1.1\r\nHost:{addr}\r\nUpgrade:websocket\r\nConnection:upgrade\r\nSec-WebSocket-Key:{key}\r\nSec-WebSocket-Version:13\r\nSec-WebSocket-Extensions:permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits=9\r\nOrigin:http://{addr}\r\n\r\n"
    );
    sock.write_all(request.as_bytes()).await.map_err(|e| format!("mod_audio_stream handshake: {e}"))?;
    // Byte by byte, so no websocket bytes after the head are swallowed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        sock.read_exact(&mut b).await.map_err(|e| format!("mod_audio_stream handshake: {e}"))?;
        head.push(b[0]);
        if head.len() > 8192 {
            return Err("mod_audio_stream handshake: response head longer than 8 KiB".into());
        }
    }
    let text = String::from_utf8_lossy(&head);
    if !text.starts_with("HTTP/1.1 101") {
        return Err(format!("mod_audio_stream handshake refused: {}", text.lines().next().unwrap_or("")));
    }
    Ok(WebSocketStream::from_raw_socket(sock, Role::Client, None).await)
}

/// 16 bytes for a `Sec-WebSocket-Key`: the server only echoes a digest of
/// it, so a loopback bench needs it to differ per connection, not to be secret.
fn rand_key() -> [u8; 16] {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut key = [0u8; 16];
    key.copy_from_slice(&nanos.to_le_bytes());
    key
}

/// A channel UUID for bench call `n`.
pub fn channel_uuid(n: u32) -> String {
    format!("be9c0000-0000-4000-8000-{n:012x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn esl_session(
        fs: &FakeFreeswitch,
    ) -> (BufReader<tokio::net::tcp::OwnedReadHalf>, tokio::net::tcp::OwnedWriteHalf) {
        let sock = TcpStream::connect(fs.addr).await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut r = BufReader::new(r);
        let hello = crate::pbx::esl::read_message(&mut r).await.unwrap().unwrap();
        assert_eq!(hello.content_type(), "auth/request");
        w.write_all(format!("auth {ESL_PASSWORD}\n\nevent plain ALL\n\n").as_bytes()).await.unwrap();
        for _ in 0..2 {
            let m = crate::pbx::esl::read_message(&mut r).await.unwrap().unwrap();
            assert!(m.header("Reply-Text").unwrap().starts_with("+OK"), "{m:?}");
        }
        (r, w)
    }

    async fn next_event(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> crate::pbx::esl::EslEvent {
        loop {
            let m = crate::pbx::esl::read_message(r).await.unwrap().unwrap();
            if m.content_type() == "text/event-plain" {
                return crate::pbx::esl::EslEvent::parse_plain(&m.body).unwrap();
            }
        }
    }

    #[tokio::test]
    async fn broadcast_files_play_in_order_for_their_duration_and_break_stops_them() {
        let fs = FakeFreeswitch::start().await.unwrap();
        let (mut r, mut w) = esl_session(&fs).await;
        let uuid = channel_uuid(1);
        fs.add_channel(&uuid);
        // 100 ms and 200 ms of 16 kHz audio.
        for (n, ms) in [(1u64, 100usize), (2, 200)] {
            let audio = base64::engine::general_purpose::STANDARD.encode(vec![0u8; ms * 32]);
            let data = serde_json::json!({"audioContentType": "raw", "sampleRate": 16000, "audioContent": audio});
            fs.module_wrote_file(Module::AudioFork, &uuid, n, data.as_object().unwrap()).unwrap();
        }
        let mut files = Vec::new();
        for _ in 0..2 {
            let ev = next_event(&mut r).await;
            assert_eq!(ev.subclass(), Some("mod_audio_fork::play_audio"));
            files.push(crate::pbx::audio_fork::play_event_file(&ev.body).unwrap());
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
        let view = fs.playback(&uuid, t0).unwrap();
        assert_eq!(view.broadcasts, 2);
        assert!(view.idle_since.is_some());

        // A long file broken off at once.
        let audio = base64::engine::general_purpose::STANDARD.encode(vec![0u8; 32_000 * 10]);
        let data = serde_json::json!({"audioContentType": "raw", "sampleRate": 16000, "audioContent": audio});
        fs.module_wrote_file(Module::AudioFork, &uuid, 3, data.as_object().unwrap()).unwrap();
        let file = crate::pbx::audio_fork::play_event_file(&next_event(&mut r).await.body).unwrap();
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
    }

    #[tokio::test]
    async fn wrong_password_and_unknown_channels_are_refused_like_freeswitch() {
        let fs = FakeFreeswitch::start().await.unwrap();
        let sock = TcpStream::connect(fs.addr).await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut r = BufReader::new(r);
        crate::pbx::esl::read_message(&mut r).await.unwrap();
        w.write_all(b"auth nope\n\n").await.unwrap();
        let m = crate::pbx::esl::read_message(&mut r).await.unwrap().unwrap();
        assert_eq!(m.header("Reply-Text"), Some("-ERR invalid"));
        assert_eq!(fs.api("uuid_broadcast nobody /tmp/x aleg"), "-ERR invalid uuid\n");
        assert_eq!(fs.api("uuid_transfer nobody 100"), "-ERR No such channel!\n");
        assert!(fs.api("show channels").starts_with("-ERR show Command not found"));
    }
}
