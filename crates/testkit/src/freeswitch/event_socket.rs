//! The fake event socket hotline connects to: auth, subscriptions, the
//! call-control APIs answered like FreeSWITCH, events delivered in order.
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

use super::playback::{Channel, Playback};
use super::*;

/// The password the load bench's event socket asks for.
pub const ESL_PASSWORD: &str = "ClueCon-bench";
/// Events queued for the server's connection; FreeSWITCH drops a slow
/// listener's events too, so a lagging reader loses the oldest.
pub(super) const EVENT_QUEUE: usize = 4096;
/// Longest command line accepted on the emulated event socket.
pub(super) const MAX_LINE: u64 = 16 * 1024;
/// The Core-UUID every event carries (one FreeSWITCH process).
pub(super) const CORE_UUID: &str = "7f4de4bc-1d66-4b49-a2a2-000000000000";

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
    pub(super) events: broadcast::Sender<Arc<Vec<u8>>>,
    /// While true, FreeSWITCH is "down": connections are closed at once.
    pub(super) down: Arc<AtomicBool>,
    /// Bumped to close every open connection.
    pub(super) kick: Arc<tokio::sync::watch::Sender<u64>>,
    pub(super) playback: Arc<Mutex<Playback>>,
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

    pub(super) async fn listen(
        addr: std::net::SocketAddr,
        password: &str,
        plays_files: bool,
    ) -> Result<FakeEsl, String> {
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

    pub(super) fn lock_state(&self) -> MutexGuard<'_, EslState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn lock_playback(&self) -> MutexGuard<'_, Playback> {
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

    pub(super) fn emit_playback(&self, name: &str, uuid: &str, file: &str, status: Option<&str>) {
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

    pub(super) async fn serve(self, sock: TcpStream) {
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
    pub(super) fn swallowed(&self, line: &str) -> bool {
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
    pub(super) fn api(&self, cmd: &str) -> String {
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
pub(super) async fn next_event(events: &mut Option<broadcast::Receiver<Arc<Vec<u8>>>>) -> Option<Arc<Vec<u8>>> {
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
pub(super) async fn read_block<R: AsyncBufRead + Unpin>(reader: &mut R) -> Option<(String, Vec<(String, String)>)> {
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
