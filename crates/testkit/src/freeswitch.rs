//! FreeSWITCH's side of the mod_audio_fork / mod_audio_stream transports,
//! byte for byte per PROTOCOLS.md §4-§6, for the tests and the load bench:
//!
//! - [`FakeEsl`]: the inbound event socket (`auth/request`, `auth`,
//!   `event plain`, `api`, `bgapi`, `exit`), recording every command and
//!   answering the call-control APIs like FreeSWITCH (`+OK`,
//!   `-ERR No such channel!`), and delivering `text/event-plain` events.
//!   Started with [`FakeEsl::start_playing`] it also plays broadcast files
//!   as FreeSWITCH does — one after the other per channel, `PLAYBACK_START`
//!   when a file starts, `PLAYBACK_STOP` when it has played for its duration
//!   or is broken off by `uuid_break` — and notes when each
//!   `uuid_broadcast` arrived and when a channel's queue ran dry in the
//!   middle of a prompt; otherwise a test fires `PLAYBACK_STOP` itself.
//! - [`FsMediaClient`]: the websocket client the modules run: handshake
//!   (drachtio subprotocol, or libwsc's raw request offering
//!   permessage-deflate), metadata text frame, paced binary L16, and the
//!   module's handling of our JSON (`playAudio`/`streamAudio` → temp file
//!   and `::play_audio`/`::play` event on the event socket, `killAudio`).
//!   [`FsMediaClient::go_live`] runs its audio as in a live call: a frame
//!   every 20 ms through the module's bounded buffer (frames are lost when
//!   the write side falls behind, as `mod_audio_fork::buffer_overrun`
//!   reports).
#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use hotline::pbx::transport::Transport;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The password the load bench's event socket asks for.
pub const ESL_PASSWORD: &str = "ClueCon-bench";
/// Events queued for the server's connection; FreeSWITCH drops a slow
/// listener's events too, so a lagging reader loses the oldest.
const EVENT_QUEUE: usize = 4096;
/// Longest command line accepted on the emulated event socket.
const MAX_LINE: u64 = 16 * 1024;
/// `MOD_AUDIO_FORK_BUFFER_SECS` default: 2 s of 20 ms frames wait for the
/// websocket at most; beyond that, frames are dropped.
const MODULE_BUFFER_FRAMES: usize = 100;
/// A file broadcast to an idle channel less than this after the previous
/// one ended: the caller heard a gap inside a prompt (an underrun).
const UNDERRUN_GAP: Duration = Duration::from_millis(100);
const CORE_UUID: &str = "7f4de4bc-1d66-4b49-a2a2-000000000000";

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

/// One event in `text/event-plain` form, ready for the wire.
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

/// The channels' playback (see [`FakeEsl::start_playing`]).
#[derive(Default)]
struct Playback {
    /// `None`: files do not play by themselves (tests fire the events).
    channels: Option<HashMap<String, Channel>>,
    /// Temp files the modules wrote, with how long they play.
    files: HashMap<String, Duration>,
    /// Commands the server sent that FreeSWITCH would refuse.
    refused: Vec<String>,
}

/// What one channel's playback looked like, for the caller.
#[derive(Debug, Clone, Copy)]
pub struct PlaybackView {
    pub broadcasts: usize,
    pub first_broadcast_after: Option<Instant>,
    /// Since when nothing plays or waits; `None` while something does.
    pub idle_since: Option<Instant>,
}

/// A fake FreeSWITCH event socket on 127.0.0.1.
#[derive(Clone)]
pub struct FakeEsl {
    pub addr: std::net::SocketAddr,
    pub password: String,
    pub state: Arc<Mutex<EslState>>,
    events: broadcast::Sender<Arc<Vec<u8>>>,
    /// While true, FreeSWITCH is "down": connections are closed at once.
    down: Arc<AtomicBool>,
    /// Bumped to close every open connection.
    kick: Arc<tokio::sync::watch::Sender<u64>>,
    playback: Arc<Mutex<Playback>>,
}

impl FakeEsl {
    pub async fn start(password: &str) -> FakeEsl {
        Self::start_at("127.0.0.1:0".parse().unwrap(), password).await
    }

    /// The event socket on a given loopback address (FreeSWITCH coming up
    /// where hotline already tries to reach it).
    pub async fn start_at(addr: std::net::SocketAddr, password: &str) -> FakeEsl {
        Self::listen(addr, password, false).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// An event socket whose channels play the files broadcast to them for
    /// their duration, firing `PLAYBACK_START` / `PLAYBACK_STOP` (the load
    /// bench's FreeSWITCH, password [`ESL_PASSWORD`]).
    pub async fn start_playing() -> Result<FakeEsl, String> {
        Self::listen("127.0.0.1:0".parse().unwrap(), ESL_PASSWORD, true).await
    }

    async fn listen(addr: std::net::SocketAddr, password: &str, plays_files: bool) -> Result<FakeEsl, String> {
        let listener = TcpListener::bind(addr).await.map_err(|e| format!("fake event socket on {addr}: {e}"))?;
        let (events, _) = broadcast::channel(EVENT_QUEUE);
        let playback = Playback { channels: plays_files.then(HashMap::new), ..Playback::default() };
        let esl = FakeEsl {
            addr: listener.local_addr().map_err(|e| format!("fake event socket: {e}"))?,
            password: password.to_string(),
            state: Arc::new(Mutex::new(EslState::default())),
            events,
            down: Arc::new(AtomicBool::new(false)),
            kick: Arc::new(tokio::sync::watch::channel(0).0),
            playback: Arc::new(Mutex::new(playback)),
        };
        let server = esl.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                if server.down.load(Ordering::SeqCst) {
                    drop(sock);
                    continue;
                }
                let s = server.clone();
                tokio::spawn(async move { s.serve(sock).await });
            }
        });
        Ok(esl)
    }

    fn lock_state(&self) -> MutexGuard<'_, EslState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_playback(&self) -> MutexGuard<'_, Playback> {
        self.playback.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// FreeSWITCH goes away: open connections close, new ones are closed
    /// as soon as they are accepted.
    pub fn go_down(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.kick.send_modify(|g| *g += 1);
    }

    /// FreeSWITCH is back: connections are served again.
    pub fn come_back(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    pub fn auths(&self) -> usize {
        self.lock_state().auths
    }

    /// Waits until hotline has connected a second time: authenticated and
    /// subscribed again.
    pub async fn wait_reconnected(&self, timeout: Duration) {
        let until = Instant::now() + timeout;
        while self.auths() < 2 || self.lock_state().subscriptions.iter().filter(|s| *s == "DTMF").count() < 2 {
            assert!(Instant::now() < until, "no new event-socket connection: {:?}", self.commands());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Commands with the time each arrived.
    pub fn timed_commands(&self) -> Vec<(Instant, String)> {
        self.lock_state().timed.clone()
    }

    /// `PLAYBACK_STOP` of a file on a channel, as FreeSWITCH fires it when
    /// the file has played (`done`) or was broken off (`break`).
    pub fn emit_playback_stop(&self, uuid: &str, file: &str, status: &str) {
        self.emit_playback("PLAYBACK_STOP", uuid, file, Some(status));
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
        self.lock_state().channels.insert(uuid.to_string());
        if let Some(channels) = self.lock_playback().channels.as_mut() {
            channels.insert(uuid.to_string(), Channel::default());
        }
    }

    /// The channel is gone: its playback stops, its temp files are
    /// deleted. The underruns its prompts had, when files play.
    pub fn remove_channel(&self, uuid: &str) -> Option<usize> {
        self.lock_state().channels.remove(uuid);
        let mut pb = self.lock_playback();
        pb.files.retain(|f, _| {
            let ours = f.contains(uuid);
            if ours {
                let _ = std::fs::remove_file(f);
            }
            !ours
        });
        pb.channels.as_mut()?.remove(uuid).map(|c| c.underruns)
    }

    /// Commands FreeSWITCH would have refused, for the report.
    pub fn refused(&self) -> Vec<String> {
        self.lock_playback().refused.clone()
    }

    /// The channel's playback so far (only when files play).
    pub fn playback(&self, uuid: &str, after: Instant) -> Option<PlaybackView> {
        let pb = self.lock_playback();
        let c = pb.channels.as_ref()?.get(uuid)?;
        let idle = c.playing.is_none() && c.queue.is_empty();
        Some(PlaybackView {
            broadcasts: c.broadcasts.len(),
            first_broadcast_after: c.broadcasts.iter().copied().find(|t| *t >= after),
            idle_since: if idle { c.last_stop } else { None },
        })
    }

    pub fn commands(&self) -> Vec<String> {
        self.lock_state().commands.clone()
    }

    /// Delivers an event to every connection that subscribed.
    pub fn emit(&self, headers: &[(&str, &str)], body: Option<&str>) {
        // No subscriber yet (or any more): FreeSWITCH drops the event too.
        let _ = self.events.send(Arc::new(plain_event(headers, body)));
    }

    pub fn emit_dtmf(&self, uuid: &str, digit: char) {
        let d = digit.to_string();
        self.emit(
            &[
                ("Event-Name", "DTMF"),
                ("Core-UUID", CORE_UUID),
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

    /// A module wrote a temp file of our audio that plays for `plays_for`.
    fn file_written(&self, file: &Path, plays_for: Duration) {
        self.lock_playback().files.insert(file.display().to_string(), plays_for);
    }

    /// `uuid_broadcast <uuid> <file> aleg` on a known channel whose files
    /// play: queue the file.
    fn broadcast(&self, uuid: &str, file: &str) -> String {
        let start_now = {
            let mut pb = self.lock_playback();
            if !pb.files.contains_key(file) {
                pb.refused.push(format!("uuid_broadcast of unknown file {file}"));
            }
            let Some(c) = pb.channels.as_mut().and_then(|c| c.get_mut(uuid)) else {
                return "+OK Message sent\n".into();
            };
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
            let mut pb = self.lock_playback();
            let Playback { channels, files, .. } = &mut *pb;
            let Some(c) = channels.as_mut().and_then(|c| c.get_mut(uuid)) else { return };
            let Some(file) = c.queue.pop_front() else { return };
            c.generation += 1;
            c.playing = Some((file.clone(), c.generation));
            let plays_for = files.get(&file).copied().unwrap_or_default();
            (file, c.generation, plays_for)
        };
        self.emit_playback("PLAYBACK_START", uuid, &file, None);
        let esl = self.clone();
        let uuid = uuid.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(plays_for).await;
            esl.stop_playing(&uuid, Some(generation), "done");
            esl.play_next(&uuid);
        });
    }

    /// Stops the file playing (the one of `generation`, or whatever plays).
    fn stop_playing(&self, uuid: &str, generation: Option<u64>, status: &str) {
        let file = {
            let mut pb = self.lock_playback();
            let Some(c) = pb.channels.as_mut().and_then(|c| c.get_mut(uuid)) else { return };
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
            if let Some(c) = self.lock_playback().channels.as_mut().and_then(|c| c.get_mut(uuid)) {
                c.queue.clear();
            }
        }
        self.stop_playing(uuid, None, "break");
        if !all {
            self.play_next(uuid);
        }
        "+OK\n".into()
    }

    /// mod_audio_fork's `killAudio`: the break flag stops the file playing.
    fn kill_audio(&self, uuid: &str) {
        self.stop_playing(uuid, None, "break");
        self.play_next(uuid);
        self.emit_custom(uuid, "mod_audio_fork::kill_audio", "{}");
    }

    async fn serve(self, sock: TcpStream) {
        let (read, mut write) = sock.into_split();
        let mut reader = BufReader::new(read);
        if write.write_all(b"Content-Type: auth/request\n\n").await.is_err() {
            return;
        }
        let mut authed = false;
        let mut events_rx: Option<broadcast::Receiver<Arc<Vec<u8>>>> = None;
        let mut kick = self.kick.subscribe();
        loop {
            let block = tokio::select! {
                b = read_block(&mut reader) => b,
                // FreeSWITCH stopped: the connection just closes.
                _ = kick.changed() => return,
                ev = next_event(&mut events_rx) => {
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
                        self.lock_state().auths += 1;
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
                let mut st = self.lock_state();
                st.commands.push(line.clone());
                st.timed.push((Instant::now(), line.clone()));
            }
            if self.swallowed(&line) {
                continue;
            }
            let out = if let Some(names) = line.strip_prefix("event plain ") {
                self.lock_state().subscriptions.extend(names.split_whitespace().map(str::to_string));
                events_rx = Some(self.events.subscribe());
                reply("+OK event listener enabled plain")
            } else if let Some(cmd) = line.strip_prefix("api ") {
                let body = self.api(cmd);
                format!("Content-Type: api/response\nContent-Length: {}\n\n{body}", body.len())
            } else if let Some(cmd) = line.strip_prefix("bgapi ") {
                // FreeSWITCH takes the job's id from a Job-UUID header, else makes one.
                let job_uuid = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("Job-UUID")).map(|(_, v)| v.clone());
                let job_uuid = job_uuid.unwrap_or_else(|| {
                    let mut st = self.lock_state();
                    st.jobs += 1;
                    format!("a5b7e2e4-7d3b-11ef-9a5c-{:012x}", st.jobs)
                });
                let (event, reply) = background_job(&job_uuid, cmd, &self.api(cmd));
                let _ = self.events.send(Arc::new(event));
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
        let mut st = self.lock_state();
        if name.is_some() && st.no_reply_once.as_deref() == name {
            st.no_reply_once = None;
            return true;
        }
        false
    }

    /// Replies of the call-control API commands (mod_commands).
    fn api(&self, cmd: &str) -> String {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let known = |uuid: Option<&&str>| uuid.is_some_and(|u| self.lock_state().channels.contains(*u));
        match words.first().copied() {
            Some("uuid_transfer") | Some("uuid_kill") | Some("uuid_setvar") => {
                if known(words.get(1)) {
                    "+OK\n".into()
                } else {
                    "-ERR No such channel!\n".into()
                }
            }
            Some("uuid_break") => match words.get(1) {
                Some(uuid) => self.break_playback(uuid, words.get(2) == Some(&"all")),
                None => "+OK\n".into(),
            },
            // mod_commands writes just the word, no "+OK", no newline.
            Some("uuid_exists") => known(words.get(1)).to_string(),
            Some("uuid_broadcast") => {
                if known(words.get(1)) && words.len() >= 3 {
                    self.broadcast(words[1], words[2])
                } else {
                    "-ERR invalid uuid\n".into()
                }
            }
            Some(other) => format!("-ERR {other} Command not found!\n"),
            None => "-ERR no command\n".into(),
        }
    }
}

/// The next event for a connection that subscribed; pending until it has.
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

/// One command block: the first non-empty line and the header lines
/// after it (`Job-UUID` of bgapi, sendmsg's), up to the empty line. `None`
/// at the end of the stream or after a line longer than [`MAX_LINE`].
async fn read_block<R: AsyncBufRead + Unpin>(reader: &mut R) -> Option<(String, Vec<(String, String)>)> {
    let mut first: Option<String> = None;
    let mut headers = Vec::new();
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the module does with a text frame from the bot.
fn handle_bot_text(
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

#[cfg(test)]
mod tests {
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
}
