//! One call: a websocket from Asterisk driven through the codec and the
//! call machine, in real time.
//!
//! The task owns the socket, the codec, the machine and the playback pump.
//! Recognition runs on the recogniser pool and prompt rendering on the
//! blocking pool; their results come back on a small bounded channel, so
//! this task never blocks and keeps reading the socket (Asterisk closes a
//! connection it cannot write to within 500 ms).
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, error, info, warn, Instrument};

use super::playback::{Playback, Step};
use super::record::{unix_ms, AudioKeeper, CallRecord, TransferRecord};
use super::{Phase, Shared};
use crate::asr::Recognition;
use crate::audio::{i16_to_f32, StreamResampler, MODEL_RATE};
use crate::call::{Call, Input, Output, PlaybackId};
use crate::config::TransferMethod;
use crate::dialplan::Transfer;
use crate::pbx::ami::{run_actions, AmiAction};
use crate::pbx::asterisk_ws::{keys, AsteriskWsCodec};
use crate::pbx::{CallInfo, MediaCodec, PbxEvent, WireMessage};

type Sink = SplitSink<WebSocketStream<TcpStream>, Message>;
type Stream = SplitStream<WebSocketStream<TcpStream>>;

/// A write that does not finish in this time means the peer stopped
/// reading; the call is ended rather than left hanging.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// MEDIA_START must come right after the upgrade (it does, within ms).
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// After HANGUP / a transfer, how long to wait for Asterisk's close.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Asterisk sends no frames while the caller is silent (PROTOCOLS.md §1.7),
/// but the voice detector needs to hear the silence to end an utterance.
/// After this long without a frame, the gap is fed to it as silence, in
/// real time, for up to [`SILENCE_FILL_FOR`] after the last real frame.
const SILENCE_GAP: Duration = Duration::from_millis(60);
const SILENCE_FILL_FOR: Duration = Duration::from_secs(3);
/// Results of background work for one call (renders, recognitions,
/// transfers): a handful at a time at most.
const INTERNAL_QUEUE: usize = 32;

enum Internal {
    Rendered { id: PlaybackId, result: Result<Arc<Vec<i16>>, String> },
    Recognized { request: u64, result: Result<Recognition, String> },
    TransferDone { method: String, result: Result<(), String> },
}

/// How the call ended, for the record and the close handshake.
enum End {
    /// The PBX closed (caller hung up, or transferred away by AMI).
    PeerClosed(String),
    /// We hang up: send HANGUP, wait for the close.
    HangUp(String),
    /// The connection is unusable (write timeout, protocol violation after
    /// which we still try a HANGUP).
    Broken(String),
}

pub async fn run(ws: WebSocketStream<TcpStream>, target: String, peer: String, shared: Arc<Shared>, shutdown: watch::Receiver<Phase>) {
    let span = tracing::info_span!("call", peer = %peer, call_id = tracing::field::Empty, channel = tracing::field::Empty);
    let session = Session::new(target, shared);
    session.run(ws, shutdown).instrument(span).await;
}

struct Session {
    shared: Arc<Shared>,
    codec: AsteriskWsCodec,
    info: Option<CallInfo>,
    call: Option<Call>,
    started: Instant,
    playback: Option<Playback>,
    resampler: Option<StreamResampler>,
    keeper: Option<AudioKeeper>,
    record: CallRecord,
    internal_tx: mpsc::Sender<Internal>,
    internal_rx: mpsc::Receiver<Internal>,
    transfer_pending: Option<Transfer>,
    /// The machine asked to hang up; done once playback is over.
    hangup_after_playback: Option<String>,
    transferred: bool,
    /// Outputs of the machine not yet acted on.
    pending: Vec<Output>,
    /// After a successful transfer: hang up if Asterisk has not closed.
    close_deadline: Option<Instant>,
    /// Wall-clock time of the last caller frame, and up to when audio
    /// (real or filled silence) has been fed to the machine.
    last_audio: Option<Instant>,
    fed_until: Option<Instant>,
}

impl Session {
    fn new(target: String, shared: Arc<Shared>) -> Self {
        let (internal_tx, internal_rx) = mpsc::channel(INTERNAL_QUEUE);
        Session {
            codec: AsteriskWsCodec::new(&target),
            shared,
            info: None,
            call: None,
            started: Instant::now(),
            playback: None,
            resampler: None,
            keeper: None,
            record: CallRecord { start_unix_ms: unix_ms(SystemTime::now()), ..Default::default() },
            internal_tx,
            internal_rx,
            transfer_pending: None,
            hangup_after_playback: None,
            transferred: false,
            pending: Vec::new(),
            close_deadline: None,
            last_audio: None,
            fed_until: None,
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    async fn run(mut self, ws: WebSocketStream<TcpStream>, mut shutdown: watch::Receiver<Phase>) {
        let (mut sink, mut stream) = ws.split();
        let end = self.drive(&mut sink, &mut stream, &mut shutdown).await;
        let cause = match end {
            End::PeerClosed(reason) => {
                let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.close()).await;
                reason
            }
            End::HangUp(reason) | End::Broken(reason) => {
                for m in self.codec.hangup() {
                    if send(&mut sink, m).await.is_err() {
                        break;
                    }
                }
                // Asterisk answers HANGUP with close 1000; read until then.
                let _ = tokio::time::timeout(CLOSE_WAIT, async {
                    while let Some(Ok(m)) = stream.next().await {
                        if matches!(m, Message::Close(_)) {
                            break;
                        }
                    }
                })
                .await;
                let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.close()).await;
                reason
            }
        };
        if let Some(call) = self.call.as_mut() {
            if !call.is_finished() {
                let now = self.started.elapsed().as_millis() as u64;
                for out in call.handle(now, Input::Hangup) {
                    if let Output::Event(e) = out {
                        self.record.push_event(e);
                    }
                }
            }
        }
        self.finish_record(cause).await;
    }

    async fn drive(&mut self, sink: &mut Sink, stream: &mut Stream, shutdown: &mut watch::Receiver<Phase>) -> End {
        let start_deadline = tokio::time::Instant::now() + START_TIMEOUT;
        let max_end = tokio::time::Instant::now() + self.shared.cfg.max_call_duration;
        loop {
            if let Some(end) = self.pump(sink).await {
                return end;
            }
            let now = Instant::now();
            let tick_at = self.call.as_ref().and_then(|c| c.next_deadline()).map(|ms| self.started + Duration::from_millis(ms));
            let pump_at = self.playback.as_ref().and_then(|p| p.wake_at(now));
            let waiting_start = self.info.is_none();
            let fill_at = self.silence_fill_at();
            tokio::select! {
                msg = stream.next() => {
                    let wire = match msg {
                        None => return End::PeerClosed("connection closed without a close frame".into()),
                        Some(Err(e)) => return End::Broken(format!("websocket error: {e}")),
                        Some(Ok(Message::Text(t))) => WireMessage::Text(t.to_string()),
                        Some(Ok(Message::Binary(b))) => WireMessage::Binary(b.to_vec()),
                        Some(Ok(Message::Close(frame))) => {
                            let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                            return End::PeerClosed(if self.transferred {
                                "transferred".into()
                            } else {
                                format!("Asterisk closed the websocket ({code})")
                            });
                        }
                        Some(Ok(_)) => continue, // ping/pong are answered by the library
                    };
                    let events = match self.codec.on_message(wire) {
                        Ok(ev) => ev,
                        Err(e) => {
                            warn!(error = %e, "protocol error; ending the call");
                            return End::Broken(format!("protocol error: {e}"));
                        }
                    };
                    for ev in events {
                        if let Some(end) = self.on_pbx_event(ev, sink).await {
                            return end;
                        }
                    }
                }
                Some(internal) = self.internal_rx.recv() => {
                    if let Some(end) = self.on_internal(internal, sink).await {
                        return end;
                    }
                }
                _ = sleep_until_opt(tick_at) => {
                    self.feed(Input::Tick);
                }
                _ = sleep_until_opt(pump_at) => {
                    let overdue = self.playback.as_mut().map(|p| p.overdue(Instant::now())).unwrap_or_default();
                    for id in overdue {
                        warn!(playback = id, "Asterisk did not report the end of a prompt; assuming it played");
                        self.feed(Input::PlaybackFinished(id));
                    }
                }
                _ = sleep_until_opt(fill_at) => {
                    self.fill_silence(Instant::now());
                }
                _ = sleep_until_opt(self.close_deadline) => {
                    return End::HangUp("transferred".into());
                }
                _ = tokio::time::sleep_until(start_deadline), if waiting_start => {
                    return End::Broken(format!("no MEDIA_START within {} s", START_TIMEOUT.as_secs()));
                }
                _ = tokio::time::sleep_until(max_end) => {
                    return End::HangUp("maximum call duration reached".into());
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() == Phase::Force {
                        return End::HangUp("server shutting down".into());
                    }
                }
            }
            if let Some(end) = self.apply(sink).await {
                return end;
            }
        }
    }

    /// When the silence since the last frame should be fed, if at all.
    fn silence_fill_at(&self) -> Option<Instant> {
        let last = self.last_audio?;
        let fed = self.fed_until.unwrap_or(last);
        if fed.duration_since(last) >= SILENCE_FILL_FOR {
            return None;
        }
        Some(fed + SILENCE_GAP)
    }

    /// Feeds silence for the time since audio was last fed (whole 20 ms
    /// frames), as a caller with continuous media would have sent.
    fn fill_silence(&mut self, now: Instant) {
        let Some(fed) = self.fed_until else { return };
        let frames = (now.saturating_duration_since(fed).as_millis() / 20) as usize;
        if frames == 0 {
            return;
        }
        self.fed_until = Some(fed + Duration::from_millis(frames as u64 * 20));
        let samples = vec![0.0f32; frames * crate::audio::frame_samples(MODEL_RATE)];
        self.feed(Input::Audio(samples));
    }

    /// Feeds the machine; its outputs are acted on by [`Session::apply`].
    fn feed(&mut self, input: Input) {
        let now = self.now_ms();
        if let Some(call) = self.call.as_mut() {
            let outs = call.handle(now, input);
            self.pending.extend(outs);
        }
    }

    async fn on_pbx_event(&mut self, ev: PbxEvent, sink: &mut Sink) -> Option<End> {
        match ev {
            PbxEvent::Start(info) => return self.on_start(info, sink).await,
            PbxEvent::Audio(samples) => {
                let now = Instant::now();
                self.last_audio = Some(now);
                self.fed_until = Some(now);
                if let Some(k) = self.keeper.as_mut() {
                    k.push(&samples);
                }
                let f = i16_to_f32(&samples);
                let f = match self.resampler.as_mut() {
                    Some(r) => r.push(&f),
                    None => f,
                };
                if !f.is_empty() {
                    self.feed(Input::Audio(f));
                }
            }
            PbxEvent::Dtmf(d) => {
                debug!(digit = %d, "DTMF");
                self.feed(Input::Dtmf(d));
            }
            PbxEvent::MarkReached(id) => {
                let parsed = id.strip_prefix('p').and_then(|n| n.parse::<PlaybackId>().ok());
                match parsed {
                    Some(pid) if self.playback.as_mut().is_some_and(|p| p.mark_reached(pid)) => {
                        self.feed(Input::PlaybackFinished(pid));
                    }
                    _ => debug!(mark = %id, "mark of a flushed or unknown prompt"),
                }
            }
            PbxEvent::Pause => {
                debug!("MEDIA_XOFF");
                if let Some(p) = self.playback.as_mut() {
                    p.set_paused(true);
                }
            }
            PbxEvent::Resume => {
                debug!("MEDIA_XON");
                if let Some(p) = self.playback.as_mut() {
                    p.set_paused(false);
                }
            }
            PbxEvent::Hangup { reason } => return Some(End::PeerClosed(reason)),
            PbxEvent::Ignored(what) => debug!(event = %what, "ignored"),
        }
        None
    }

    async fn on_start(&mut self, info: CallInfo, sink: &mut Sink) -> Option<End> {
        let span = tracing::Span::current();
        span.record("call_id", info.call_id.as_str());
        if let Some(c) = &info.channel {
            span.record("channel", c.as_str());
        }
        let (plan, note) = self.shared.registry.select(info.dialplan.as_deref());
        if let Some(note) = note {
            warn!("{note}");
        }
        let Some(plan) = plan else {
            return Some(End::HangUp("no dialplan in service".into()));
        };
        let format = info.format.unwrap_or(crate::pbx::AudioFormat::Slin(MODEL_RATE));
        let rate = format.rate();
        info!(
            dialplan = %plan.name, version = %plan.version, format = ?format,
            caller_id = info.caller_id.as_deref().unwrap_or(""), "call started"
        );
        self.record.call_id = info.call_id.clone();
        self.record.channel = info.channel.clone();
        self.record.caller_id = info.caller_id.clone();
        self.record.dialplan = Some(plan.name.clone());
        self.record.dialplan_version = Some(plan.version.clone());
        self.record.audio_format = Some(format!("{format:?}"));
        if rate != MODEL_RATE {
            self.resampler = Some(StreamResampler::new(rate, MODEL_RATE));
        }
        if self.shared.cfg.keep_audio_dir.is_some() {
            self.keeper = Some(AudioKeeper::new(rate, self.shared.cfg.max_call_duration.as_secs()));
        }
        self.playback = Some(Playback::new(rate, self.shared.cfg.playback_lead));
        let vad = Box::new(self.shared.speech.detector());
        self.call = Some(Call::new(plan, Arc::clone(&self.shared.matcher), vad));
        self.info = Some(info);
        for m in self.codec.answer() {
            if let Err(e) = send(sink, m).await {
                return Some(End::Broken(e));
            }
        }
        self.feed(Input::Start);
        None
    }

    async fn on_internal(&mut self, msg: Internal, sink: &mut Sink) -> Option<End> {
        match msg {
            Internal::Rendered { id, result } => match result {
                Ok(samples) => {
                    if let Some(p) = self.playback.as_mut() {
                        p.rendered(id, samples);
                    }
                }
                Err(e) => {
                    error!(playback = id, "prompt could not be rendered: {e}");
                    if let Some(p) = self.playback.as_mut() {
                        p.remove(id);
                    }
                    self.feed(Input::PlaybackFinished(id));
                }
            },
            Internal::Recognized { request, result } => match result {
                Ok(r) => {
                    debug!(request, text = %r.text, choice = ?r.choice, confidence = r.confidence, decode_ms = r.decode_ms, "recognised");
                    self.feed(Input::Recognized { request, result: r });
                }
                Err(reason) => {
                    warn!(request, "recognition failed: {reason}");
                    self.feed(Input::RecognitionFailed { request, reason });
                }
            },
            Internal::TransferDone { method, result } => {
                let target = self.transfer_pending.take();
                let (extension, context) = target
                    .map(|t| (t.extension, t.context.unwrap_or_else(|| self.shared.cfg.transfer.default_context.clone())))
                    .unwrap_or_default();
                match result {
                    Ok(()) => {
                        info!(%extension, %context, %method, "transfer succeeded");
                        self.record.transfer = Some(TransferRecord { extension, context, method, result: "ok".into() });
                        self.transferred = true;
                        // Asterisk hangs up our channel and closes within
                        // ms; if it does not, hang up ourselves.
                        self.close_deadline = Some(Instant::now() + CLOSE_WAIT);
                    }
                    Err(reason) => {
                        warn!(%extension, %context, %method, "transfer failed: {reason}");
                        self.record.transfer = Some(TransferRecord { extension, context, method, result: reason.clone() });
                        self.feed(Input::TransferFailed { reason });
                    }
                }
            }
        }
        let _ = sink;
        None
    }

    /// Acts on the machine's outputs (may produce more via feed()).
    async fn apply(&mut self, sink: &mut Sink) -> Option<End> {
        while !self.pending.is_empty() {
            let outs = std::mem::take(&mut self.pending);
            for out in outs {
                if let Some(end) = self.apply_one(out, sink).await {
                    return Some(end);
                }
            }
        }
        if let Some(reason) = self.hangup_after_playback.clone() {
            if self.playback.as_ref().is_none_or(|p| p.is_idle()) {
                return Some(End::HangUp(reason));
            }
        }
        None
    }

    async fn apply_one(&mut self, out: Output, sink: &mut Sink) -> Option<End> {
        match out {
            Output::Play { id, prompt, barge_in: _ } => {
                let Some(pb) = self.playback.as_mut() else { return None };
                pb.enqueue(id);
                let rate = self.info.as_ref().and_then(|i| i.format).map_or(MODEL_RATE, |f| f.rate());
                let prompts = Arc::clone(&self.shared.prompts);
                let tx = self.internal_tx.clone();
                tokio::spawn(async move {
                    let result = tokio::task::spawn_blocking(move || prompts.render(&prompt, rate))
                        .await
                        .unwrap_or_else(|e| Err(format!("renderer crashed: {e}")));
                    let _ = tx.send(Internal::Rendered { id, result }).await;
                });
            }
            Output::StopPlayback => {
                let dropped = self.playback.as_mut().map(|p| p.flush()).unwrap_or_default();
                debug!(?dropped, "barge-in: flushing prompt audio");
                for m in self.codec.flush() {
                    if let Err(e) = send(sink, m).await {
                        return Some(End::Broken(e));
                    }
                }
            }
            Output::Recognize { request, utterance, grammar } => {
                match self.shared.speech.pool.submit(Arc::clone(&utterance.samples), grammar) {
                    Ok(rx) => {
                        let tx = self.internal_tx.clone();
                        tokio::spawn(async move {
                            let result = match rx.await {
                                Ok(Ok(r)) => Ok(r),
                                Ok(Err(e)) => Err(e.to_string()),
                                Err(_) => Err("recognition worker stopped".to_string()),
                            };
                            let _ = tx.send(Internal::Recognized { request, result }).await;
                        });
                    }
                    Err(e) => {
                        warn!(request, "recogniser refused the utterance: {e}");
                        self.feed(Input::RecognitionFailed { request, reason: e.to_string() });
                    }
                }
            }
            Output::Transfer { target, variables } => return self.start_transfer(target, variables, sink).await,
            Output::Hangup { reason } => {
                if self.playback.as_ref().is_none_or(|p| p.is_idle()) {
                    return Some(End::HangUp(reason));
                }
                self.hangup_after_playback = Some(reason);
            }
            Output::Event(e) => {
                info!(event = %serde_json::to_string(&e).unwrap_or_default(), "call event");
                self.record.push_event(e);
            }
        }
        None
    }

    async fn start_transfer(&mut self, target: Transfer, variables: Vec<(String, String)>, sink: &mut Sink) -> Option<End> {
        let cfg = &self.shared.cfg;
        let context = target.context.clone().unwrap_or_else(|| cfg.transfer.default_context.clone());
        let extension = target.extension.clone();
        let info = self.info.clone().unwrap_or_default();
        let var = |k: &str| info.variables.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        self.transfer_pending = Some(target);
        match cfg.transfer.method {
            TransferMethod::Hangup => {
                let decision = format!("{context},{extension}");
                let caller_uid = var(keys::INFO_CALLER_UNIQUEID).unwrap_or_default();
                self.shared.decisions.put(&[caller_uid.as_str(), info.call_id.as_str()], &decision);
                info!(%extension, %context, "transfer handed to the Asterisk dialplan (hangup method)");
                self.record.transfer = Some(TransferRecord {
                    extension,
                    context,
                    method: "hangup".into(),
                    result: "handed to the Asterisk dialplan".into(),
                });
                self.transfer_pending = None;
                // Let the "please hold" prompt finish before hanging up.
                if self.playback.as_ref().is_none_or(|p| p.is_idle()) {
                    return Some(End::HangUp("transferred (hangup method)".into()));
                }
                self.hangup_after_playback = Some("transferred (hangup method)".into());
                let _ = sink;
                None
            }
            TransferMethod::Ami => {
                let Some(ami) = cfg.ami.clone() else {
                    self.feed(Input::TransferFailed { reason: "AMI is not configured".into() });
                    return None;
                };
                let caller = var(keys::INFO_CALLER_CHANNEL);
                let ws_channel = var(keys::INFO_WEBSOCKET_CHANNEL);
                let (method, mut actions) = match (&caller, &ws_channel) {
                    (Some(c), _) => ("ami-redirect", vec![AmiAction::redirect(c, &context, &extension)]),
                    (None, Some(w)) => ("ami-blind-transfer", vec![AmiAction::blind_transfer(w, &context, &extension)]),
                    (None, None) => {
                        self.feed(Input::TransferFailed { reason: "the call has no channel name to transfer".into() });
                        return None;
                    }
                };
                if let Some(c) = &caller {
                    // Collected variables go along on the caller leg
                    // (HOTLINE_<NAME>), for the agent's screen or the
                    // Asterisk dialplan.
                    let sets: Vec<AmiAction> = variables
                        .iter()
                        .map(|(k, v)| AmiAction::setvar(c, &format!("HOTLINE_{}", k.to_ascii_uppercase()), v))
                        .collect();
                    actions.splice(0..0, sets);
                }
                info!(%extension, %context, method, channel = caller.as_deref().or(ws_channel.as_deref()).unwrap_or(""), "transferring");
                let tx = self.internal_tx.clone();
                let timeout = cfg.transfer.timeout;
                tokio::spawn(async move {
                    let result = match tokio::time::timeout(timeout, run_actions(&ami, &actions)).await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err(format!("no answer from AMI within {} ms", timeout.as_millis())),
                    };
                    let _ = tx.send(Internal::TransferDone { method: method.to_string(), result }).await;
                });
                None
            }
        }
    }

    /// Sends whatever prompt audio / marks are due.
    async fn pump(&mut self, sink: &mut Sink) -> Option<End> {
        loop {
            let Some(step) = self.playback.as_mut().and_then(|p| p.next(Instant::now())) else { break };
            let msgs = match step {
                Step::Audio(samples) => self.codec.audio(&samples),
                Step::Mark(id) => self.codec.mark(&format!("p{id}")),
            };
            for m in msgs {
                if let Err(e) = send(sink, m).await {
                    return Some(End::Broken(e));
                }
            }
        }
        None
    }

    async fn finish_record(&mut self, cause: String) {
        let end = SystemTime::now();
        self.record.end_unix_ms = unix_ms(end);
        self.record.duration_ms = self.started.elapsed().as_millis() as u64;
        self.record.hangup_cause = cause.clone();
        if let (Some(k), Some(dir)) = (self.keeper.take(), self.shared.cfg.keep_audio_dir.clone()) {
            let id = if self.record.call_id.is_empty() { "unknown".to_string() } else { self.record.call_id.clone() };
            match tokio::task::spawn_blocking(move || k.write(&dir, &id)).await {
                Ok(Ok(path)) => self.record.audio_file = Some(path),
                Ok(Err(e)) => warn!("caller audio not kept: {e}"),
                Err(e) => warn!("caller audio not kept: {e}"),
            }
        }
        info!(cause = %cause, duration_ms = self.record.duration_ms, "call ended");
        if let Some(w) = self.shared.records.clone() {
            let rec = std::mem::take(&mut self.record);
            let _ = tokio::task::spawn_blocking(move || w.write(&rec)).await;
        }
    }
}

async fn send(sink: &mut Sink, m: WireMessage) -> Result<(), String> {
    let msg = match m {
        WireMessage::Text(t) => Message::text(t),
        WireMessage::Binary(b) => Message::binary(b),
        WireMessage::Close => Message::Close(None),
    };
    match tokio::time::timeout(WRITE_TIMEOUT, sink.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("websocket write failed: {e}")),
        Err(_) => Err(format!("peer did not read for {} s", WRITE_TIMEOUT.as_secs())),
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}
