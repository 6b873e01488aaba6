//! Asterisk's side of an AudioSocket connection, byte for byte as
//! PROTOCOLS.md §3 describes it: Asterisk connects, sends the UUID message,
//! then 20 ms slin frames (`10 01 40` + 320 bytes) every 20 ms while the
//! caller speaks, DTMF as `03 00 01 <ascii>`, and ends the call by closing
//! the TCP connection (no hangup message). Anything from the bot other than
//! hangup (0x00) or audio (0x10-0x18) ends the call, as in Asterisk.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

/// What the emulated Asterisk received from the bot.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// Audio messages: (kind, payload length, ms since connect).
    pub audio: Vec<(u8, usize, u64)>,
    pub samples: Vec<i16>,
    pub hangup: bool,
    /// Set when the bot sent a kind Asterisk refuses (the call ends).
    pub violation: Option<String>,
    /// The bot closed the connection.
    pub closed: bool,
}

pub struct AudioSocketCaller {
    /// Shared with [`AudioSocketCaller::closer`], which ends the call from
    /// Asterisk's side while the test still holds the caller.
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    received: Arc<Mutex<Received>>,
    pub uuid: [u8; 16],
    pub rate: u32,
}

impl AudioSocketCaller {
    /// Connects like `AudioSocket(<uuid>,<addr>)` (rate 8000, kind 0x10) or
    /// `Dial(AudioSocket/<addr>/<uuid>/c(slin16))` (rate 16000, kind 0x12).
    pub async fn connect(addr: std::net::SocketAddr, uuid: [u8; 16], rate: u32) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect to the AudioSocket listener");
        stream.set_nodelay(true).ok();
        let (mut reader, mut writer) = stream.into_split();
        let mut first = vec![0x01, 0x00, 0x10];
        first.extend_from_slice(&uuid);
        writer.write_all(&first).await.expect("send UUID");
        let received = Arc::new(Mutex::new(Received::default()));
        let sink = received.clone();
        let t0 = Instant::now();
        tokio::spawn(async move {
            loop {
                let mut head = [0u8; 3];
                if reader.read_exact(&mut head).await.is_err() {
                    sink.lock().unwrap().closed = true;
                    return;
                }
                let len = u16::from_be_bytes([head[1], head[2]]) as usize;
                let mut payload = vec![0u8; len];
                if reader.read_exact(&mut payload).await.is_err() {
                    sink.lock().unwrap().closed = true;
                    return;
                }
                let mut r = sink.lock().unwrap();
                match head[0] {
                    0x00 => {
                        r.hangup = true;
                        return;
                    }
                    0x10..=0x18 => {
                        r.audio.push((head[0], len, t0.elapsed().as_millis() as u64));
                        r.samples.extend(payload.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])));
                    }
                    other => {
                        // "Received AudioSocket message other than hangup or audio": hang up.
                        r.violation = Some(format!("kind 0x{other:02x}"));
                        return;
                    }
                }
            }
        });
        AudioSocketCaller { writer: Arc::new(tokio::sync::Mutex::new(writer)), received, uuid, rate }
    }

    fn kind(&self) -> u8 {
        match self.rate {
            16000 => 0x12,
            _ => 0x10,
        }
    }

    /// Sends caller audio as Asterisk does: one 20 ms frame every 20 ms.
    pub async fn send_audio_paced(&mut self, samples: &[i16]) {
        let n = (self.rate / 50) as usize;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for frame in samples.chunks(n) {
            tick.tick().await;
            let mut padded = frame.to_vec();
            padded.resize(n, 0);
            let mut msg = vec![self.kind()];
            msg.extend_from_slice(&((n * 2) as u16).to_be_bytes());
            msg.extend(padded.iter().flat_map(|s| s.to_le_bytes()));
            if self.writer.lock().await.write_all(&msg).await.is_err() {
                return;
            }
        }
    }

    pub async fn send_dtmf(&mut self, digit: char) {
        self.send_raw(&[0x03, 0x00, 0x01, digit as u8]).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.writer.lock().await.write_all(bytes).await;
    }

    /// The caller hangs up: Asterisk just closes the connection.
    pub async fn hang_up(self) {
        let _ = self.writer.lock().await.shutdown().await;
    }

    /// What Asterisk does when the channel leaves the application or the
    /// AudioSocket channel is hung up (a Redirect of the caller): it closes
    /// the TCP connection, without a hangup message (PROTOCOLS.md §3).
    pub fn closer(&self) -> Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, ()> + Send + Sync> {
        let writer = Arc::clone(&self.writer);
        Arc::new(move || {
            let writer = Arc::clone(&writer);
            Box::pin(async move {
                let _ = writer.lock().await.shutdown().await;
            })
        })
    }

    pub fn received(&self) -> Received {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was received, or panics naming `what`.
    pub async fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&Received) -> bool) -> Received {
        let until = Instant::now() + timeout;
        loop {
            let r = self.received();
            if done(&r) {
                return r;
            }
            assert!(
                Instant::now() < until,
                "AudioSocket caller: timed out waiting for {what}; got {} audio frames, hangup {}, violation {:?}, closed {}",
                r.audio.len(),
                r.hangup,
                r.violation,
                r.closed
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
