//! Twilio's side of a bidirectional Media Stream (`<Connect><Stream>`),
//! per PROTOCOLS.md §7: `connected`, `start`, then `media` every 20 ms
//! (base64 µ-law, `chunk`/`timestamp`/`sequenceNumber` as strings), `dtmf`,
//! `stop`. Audio from the bot is buffered and "played" in real time; a
//! `mark` comes back when playback reaches it, and `clear` drops the buffer
//! and returns the pending marks at once.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::Mutex as AsyncMutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Sink = futures_util::stream::SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;

pub const STREAM_SID: &str = "MZ18ad3ab5a668481ce02b83e7395059f0";
pub const ACCOUNT_SID: &str = "AC25e16e9a716a4a1786a7c47ff8e6c0a4";

#[derive(Debug, Default, Clone)]
pub struct TwilioReceived {
    /// µ-law bytes of bot audio received.
    pub media_bytes: usize,
    /// The same, since the last `clear` (what the bot sent after a barge-in).
    pub media_bytes_since_clear: usize,
    /// Marks echoed back, with ms since connect.
    pub marks: Vec<(String, u64)>,
    pub clears: usize,
    pub errors: Vec<String>,
    pub closed: bool,
}

pub struct TwilioCall {
    sink: Arc<AsyncMutex<Sink>>,
    seq: Arc<AtomicU64>,
    chunk: u64,
    t0: Instant,
    pub call_sid: String,
    pub received: Arc<Mutex<TwilioReceived>>,
}

/// Twilio's request signature of a request to `url` without parameters.
pub fn signature(auth_token: &str, url: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn send(sink: &AsyncMutex<Sink>, seq: &AtomicU64, mut v: Value) -> bool {
    if v.get("event").and_then(Value::as_str) != Some("connected") {
        v["sequenceNumber"] = Value::String(seq.fetch_add(1, Ordering::SeqCst).to_string());
    }
    sink.lock().await.send(Message::Text(v.to_string().into())).await.is_ok()
}

enum Queued {
    Audio(usize),
    Mark(String),
}

impl TwilioCall {
    /// Opens the stream and sends `connected` and `start` with `params` as
    /// `<Parameter>`s.
    pub async fn connect(url: &str, call_sid: &str, params: &[(&str, &str)]) -> TwilioCall {
        Self::connect_signed(url, None, call_sid, params).await
    }

    /// The same with `X-Twilio-Signature` on the upgrade request, made with
    /// `signing` = (the account's auth token, the `<Stream>` url as Twilio
    /// knows it): base64 of HMAC-SHA1 over that URL (no POST parameters on
    /// a websocket upgrade).
    pub async fn connect_signed(
        url: &str,
        signing: Option<(&str, &str)>,
        call_sid: &str,
        params: &[(&str, &str)],
    ) -> TwilioCall {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = url.into_client_request().unwrap();
        if let Some((auth_token, public_url)) = signing {
            req.headers_mut().insert("X-Twilio-Signature", signature(auth_token, public_url).parse().unwrap());
        }
        let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("Twilio stream handshake");
        let (sink, mut stream) = ws.split();
        let sink = Arc::new(AsyncMutex::new(sink));
        let seq = Arc::new(AtomicU64::new(1));
        let t0 = Instant::now();
        let received = Arc::new(Mutex::new(TwilioReceived::default()));

        send(&sink, &seq, json!({"event": "connected", "protocol": "Call", "version": "1.0.0"})).await;
        let custom: serde_json::Map<String, Value> =
            params.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect();
        send(
            &sink,
            &seq,
            json!({"event": "start", "start": {"accountSid": ACCOUNT_SID, "streamSid": STREAM_SID, "callSid": call_sid,
                "tracks": ["inbound"], "customParameters": custom,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}},
                "streamSid": STREAM_SID}),
        )
        .await;

        // The player: bot audio plays at 8 bytes per ms; marks come back
        // when the audio queued before them has played.
        let (rec, psink, pseq) = (received.clone(), sink.clone(), seq.clone());
        tokio::spawn(async move {
            let mut queue: VecDeque<Queued> = VecDeque::new();
            let mut playing_until = Instant::now();
            loop {
                // Next thing due: the first queued mark once the audio before it has played.
                let next_due = match queue.front() {
                    Some(Queued::Mark(_)) => Some(playing_until.max(Instant::now())),
                    Some(Queued::Audio(_)) => Some(Instant::now()),
                    None => None,
                };
                let msg = tokio::select! {
                    m = stream.next() => m,
                    _ = async {
                        match next_due {
                            Some(t) => tokio::time::sleep_until(t.into()).await,
                            None => std::future::pending().await,
                        }
                    } => {
                        match queue.pop_front() {
                            Some(Queued::Audio(n)) => {
                                playing_until = playing_until.max(Instant::now()) + Duration::from_micros(n as u64 * 125);
                            }
                            Some(Queued::Mark(name)) => {
                                rec.lock().unwrap().marks.push((name.clone(), t0.elapsed().as_millis() as u64));
                                send(&psink, &pseq, json!({"event": "mark", "streamSid": STREAM_SID, "mark": {"name": name}})).await;
                            }
                            None => {}
                        }
                        continue;
                    }
                };
                let Some(Ok(msg)) = msg else { break };
                let text = match msg {
                    Message::Text(t) => t.to_string(),
                    Message::Close(_) => break,
                    Message::Binary(_) => {
                        rec.lock().unwrap().errors.push("binary frame".into());
                        continue;
                    }
                    _ => continue,
                };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    rec.lock().unwrap().errors.push(format!("not JSON: {text}"));
                    continue;
                };
                if v["streamSid"] != STREAM_SID {
                    rec.lock().unwrap().errors.push(format!("wrong streamSid: {text}"));
                    continue;
                }
                match v["event"].as_str() {
                    Some("media") => match v["media"]["payload"]
                        .as_str()
                        .map(|p| base64::engine::general_purpose::STANDARD.decode(p))
                    {
                        Some(Ok(bytes)) => {
                            {
                                let mut r = rec.lock().unwrap();
                                r.media_bytes += bytes.len();
                                r.media_bytes_since_clear += bytes.len();
                            }
                            queue.push_back(Queued::Audio(bytes.len()));
                        }
                        _ => rec.lock().unwrap().errors.push(format!("bad media: {text}")),
                    },
                    Some("mark") => match v["mark"]["name"].as_str() {
                        Some(name) => queue.push_back(Queued::Mark(name.to_string())),
                        None => rec.lock().unwrap().errors.push(format!("mark without name: {text}")),
                    },
                    Some("clear") => {
                        {
                            let mut r = rec.lock().unwrap();
                            r.clears += 1;
                            r.media_bytes_since_clear = 0;
                        }
                        playing_until = Instant::now();
                        for item in std::mem::take(&mut queue) {
                            if let Queued::Mark(name) = item {
                                rec.lock().unwrap().marks.push((name.clone(), t0.elapsed().as_millis() as u64));
                                send(
                                    &psink,
                                    &pseq,
                                    json!({"event": "mark", "streamSid": STREAM_SID, "mark": {"name": name}}),
                                )
                                .await;
                            }
                        }
                    }
                    _ => rec.lock().unwrap().errors.push(format!("unknown event: {text}")),
                }
            }
            rec.lock().unwrap().closed = true;
        });
        TwilioCall { sink, seq, chunk: 0, t0, call_sid: call_sid.to_string(), received }
    }

    /// Caller audio at 8 kHz: 20 ms µ-law `media` messages every 20 ms.
    pub async fn send_audio_paced(&mut self, samples: &[i16]) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for frame in samples.chunks(160) {
            tick.tick().await;
            if !self.send_frame(frame).await {
                return;
            }
        }
    }

    /// A misbehaving peer: the same `media` messages as fast as the socket
    /// takes them, far faster than real time.
    pub async fn send_audio_flood(&mut self, samples: &[i16]) {
        for frame in samples.chunks(160) {
            if !self.send_frame(frame).await {
                return;
            }
        }
    }

    async fn send_frame(&mut self, frame: &[i16]) -> bool {
        self.chunk += 1;
        // Twilio's media messages are always 20 ms.
        let mut frame = frame.to_vec();
        frame.resize(160, 0);
        let payload = base64::engine::general_purpose::STANDARD.encode(hotline::audio::g711::ulaw_encode_all(&frame));
        let msg = json!({"event": "media", "streamSid": STREAM_SID, "media": {"track": "inbound",
            "chunk": self.chunk.to_string(), "timestamp": ((self.chunk - 1) * 20).to_string(), "payload": payload}});
        send(&self.sink, &self.seq, msg).await
    }

    pub async fn send_dtmf(&mut self, digit: char) {
        let msg = json!({"event": "dtmf", "streamSid": STREAM_SID, "dtmf": {"track": "inbound_track", "digit": digit.to_string()}});
        send(&self.sink, &self.seq, msg).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        let _ = self.sink.lock().await.send(Message::Text(text.into())).await;
    }

    /// The caller hangs up: `stop`, then the socket closes.
    pub async fn stop(self) {
        let msg = json!({"event": "stop", "streamSid": STREAM_SID, "stop": {"accountSid": ACCOUNT_SID, "callSid": self.call_sid}});
        send(&self.sink, &self.seq, msg).await;
        let _ = self.sink.lock().await.send(Message::Close(None)).await;
    }

    pub fn received(&self) -> TwilioReceived {
        self.received.lock().unwrap().clone()
    }

    pub fn elapsed_ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&TwilioReceived) -> bool,
    ) -> TwilioReceived {
        let until = Instant::now() + timeout;
        loop {
            let r = self.received();
            if done(&r) {
                return r;
            }
            assert!(Instant::now() < until, "Twilio: timed out waiting for {what}; got {r:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
