//! One call: a connection from the PBX (any transport) driven through its
//! codec and the call machine, in real time. Side actions the media
//! protocol cannot carry (transfer, barge-in and prompt playback on
//! FreeSWITCH, hang-up) go to the transport's control channel: AMI or the
//! no-AMI decision endpoint for Asterisk, the event socket for FreeSWITCH,
//! the webhook for Twilio.
//!
//! [`start`] turns the connection into a call when the PBX's start message
//! arrives; from then on a [`Session`] drives its [`ActiveCall`]. The task
//! owns the socket, the codec, the machine and the playback pump.
//! Recognition runs on the recogniser pool and prompt rendering on the
//! blocking pool; their results come back on a small bounded channel, so
//! this task never blocks and keeps reading the socket (Asterisk closes a
//! connection it cannot write to within 500 ms).
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn, Instrument};

use super::link::{Link, Received, SendError};
use super::observer::{CallObserver, Ending};
use super::playback::Step;
use super::{Phase, Shared};
use crate::asr::pool::{CallerId, PoolError};
use crate::asr::{AsrError, Recognition};
use crate::audio::{i16_to_f32, MODEL_RATE};
use crate::call::{Input, Output, PlaybackId};
use crate::dialplan::Transfer;
use crate::pbx::transfer::{TransferFailed, TransferOutcome};
use crate::pbx::transport::Transport;
use crate::pbx::{MediaCodec, PbxEvent, WireMessage};
use crate::prompts::PromptError;
use crate::records::{unix_ms, AudioKeeper, CallRecord};

/// AudioSocket's application form times out after 2 s without a frame.
const KEEPALIVE_EVERY: Duration = Duration::from_millis(crate::pbx::audiosocket::KEEPALIVE_INTERVAL_MS);
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

mod freeswitch;
mod start;
mod transfer;
mod voice;

use start::{hang_up_link, ActiveCall, Opening};

/// Why work done off the call's task (a prompt render, a recognition)
/// gave nothing.
#[derive(Debug, thiserror::Error)]
enum WorkFailed {
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error("the prompt renderer crashed: {0}")]
    RendererCrashed(#[source] tokio::task::JoinError),
    #[error(transparent)]
    Recognition(#[from] AsrError),
    #[error("recognition worker stopped")]
    RecognizerStopped,
}

enum Internal {
    Rendered {
        id: PlaybackId,
        result: Result<Arc<Vec<i16>>, WorkFailed>,
    },
    Recognized {
        request: u64,
        result: Result<Recognition, WorkFailed>,
    },
    /// Ok: the PBX took the caller, with the call record's result (`ok`
    /// only when the caller was seen at the target). Err: it refused or
    /// never answered; the caller is still here.
    TransferDone {
        method: String,
        result: TransferOutcome,
    },
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

/// Drives one call on `link` with a fresh `codec` of `transport`.
pub async fn run(
    mut link: Link,
    transport: Transport,
    codec: Box<dyn MediaCodec>,
    peer: String,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<Phase>,
) {
    let span = tracing::info_span!("call", %transport, peer = %peer, call_id = tracing::field::Empty, channel = tracing::field::Empty);
    let call = async move {
        match Opening::new(transport, codec, shared).start(&mut link, &mut shutdown).await {
            Ok((session, rest)) => session.run(link, shutdown, rest).await,
            Err((opening, end)) => opening.close(link, end).await,
        }
    };
    call.instrument(span).await;
}

/// A started call, driven in real time: its [`ActiveCall`] and the
/// bookkeeping of what is under way (machine outputs not yet acted on, a
/// transfer, a hangup waiting for the prompt to end, silence to feed).
struct Session {
    shared: Arc<Shared>,
    codec: Box<dyn MediaCodec>,
    /// When the connection came in: the machine's clock counts from here.
    started: Instant,
    record: CallRecord,
    /// Metrics from the same events as the record.
    observer: CallObserver,
    call: ActiveCall,
    /// This call's share of the recogniser pool.
    asr_caller: CallerId,
    /// The voice detector's side of the call.
    ears: voice::Ears,
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
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Runs the call to its end (`rest`: events that came with the start
    /// message), then closes the connection and writes the record.
    async fn run(mut self, mut link: Link, mut shutdown: watch::Receiver<Phase>, rest: Vec<PbxEvent>) {
        let end = self.drive(&mut link, &mut shutdown, rest).await;
        let ending = match end {
            End::PeerClosed(_) => Ending::PeerClosed,
            _ if self.call.machine.is_finished() => Ending::Machine,
            _ => Ending::Cut,
        };
        let cause = match end {
            End::PeerClosed(reason) => {
                link.close().await;
                // Asterisk closes the connection of a redirected caller
                // before its AMI answer arrives (PROTOCOLS.md §1.9).
                self.await_transfer_outcome().await.unwrap_or(reason)
            }
            End::HangUp(reason) | End::Broken(reason) => {
                self.hang_up_on_control_channel().await;
                hang_up_link(&mut *self.codec, &mut link).await;
                reason
            }
        };
        self.call.esl = None;
        let dropped_ms = self.call.pacer.dropped_ms();
        if dropped_ms > 0 {
            warn!(dropped_ms, "caller audio dropped in this call for arriving faster than real time");
        }
        if !self.call.machine.is_finished() {
            let now = self.now_ms();
            for out in self.call.machine.handle(now, Input::Hangup) {
                if let Output::Event(e) = out {
                    self.observer.event(&e);
                    self.record.push_event(e);
                }
            }
        }
        let keeper = self.call.keeper.take();
        let ended = Ended { cause, keeper, observer: &mut self.observer, ending };
        write_record(&self.shared, &mut self.record, self.started, ended).await;
    }

    async fn drive(&mut self, link: &mut Link, shutdown: &mut watch::Receiver<Phase>, rest: Vec<PbxEvent>) -> End {
        // The call's whole length counts, from the connection on.
        let max_end = tokio::time::Instant::from_std(self.started) + self.shared.cfg.general.max_call_duration;
        for ev in rest {
            if let Some(end) = self.on_pbx_event(ev) {
                return end;
            }
        }
        loop {
            if let Some(end) = self.pump(link).await {
                return end;
            }
            // Pumping may end a prompt (one without audio on FreeSWITCH).
            if let Some(end) = self.apply(link).await {
                return end;
            }
            let now = Instant::now();
            let tick_at = self.call.machine.next_deadline().map(|ms| self.started + Duration::from_millis(ms));
            let pump_at = self.call.playback.wake_at(now);
            let fill_at = self.silence_fill_at();
            let keepalive_at = self.call.keepalive.as_ref().map(|_| link.last_sent() + KEEPALIVE_EVERY);
            tokio::select! {
                msg = link.recv() => {
                    let wire = match msg {
                        Received::Message(m) => m,
                        Received::Failed(e) => return End::Broken(e),
                        Received::Closed(reason) => {
                            return End::PeerClosed(self.closed_cause(reason));
                        }
                    };
                    let events = match self.codec.on_message(wire) {
                        Ok(ev) => ev,
                        Err(e) => {
                            warn!(error = %e, "protocol error; ending the call");
                            return End::Broken(format!("protocol error: {e}"));
                        }
                    };
                    for ev in events {
                        if let Some(end) = self.on_pbx_event(ev) {
                            return end;
                        }
                    }
                }
                ev = freeswitch::next_event(&mut self.call.esl) => {
                    if let Some(end) = self.on_esl_event(ev).await {
                        return end;
                    }
                }
                _ = sleep_until_opt(keepalive_at) => {
                    if let Some(k) = self.call.keepalive.clone() {
                        if let Err(e) = send(link, k).await {
                            return End::Broken(e.to_string());
                        }
                    }
                }
                answer = voice::next_scored(&mut self.ears.in_flight), if self.ears.in_flight.is_some() => {
                    let playing = self.call.machine.prompt_playing();
                    for input in self.ears.scored(answer, playing, &self.shared.vad) {
                        self.feed(input);
                    }
                }
                Some(internal) = self.internal_rx.recv() => {
                    if let Some(end) = self.on_internal(internal) {
                        return end;
                    }
                }
                _ = sleep_until_opt(tick_at) => {
                    self.feed(Input::Tick);
                }
                _ = sleep_until_opt(pump_at) => {
                    let overdue = self.call.playback.overdue(Instant::now());
                    for id in overdue {
                        if self.codec.reports_playback_end() {
                            warn!(playback = id, "the PBX did not report the end of a prompt; assuming it played");
                        }
                        self.feed(Input::PlaybackFinished(id));
                    }
                }
                _ = sleep_until_opt(fill_at) => {
                    self.fill_silence(Instant::now());
                }
                _ = sleep_until_opt(self.close_deadline) => {
                    return End::HangUp(self.closed_cause("the PBX did not close the connection after the transfer".into()));
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
            if let Some(end) = self.apply(link).await {
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
        self.hear(&samples);
    }

    /// Caller audio (16 kHz, just arrived) to the voice detector, while
    /// the call still listens to voices.
    fn hear(&mut self, samples: &[f32]) {
        if !self.call.machine.hears_speech() {
            return; // speech is off for good; spare the detector
        }
        let now = self.now_ms();
        if let Some(input) = self.ears.hear(now, samples, &self.shared.vad) {
            self.feed(input);
        }
    }

    /// Feeds the machine; its outputs are acted on by [`Session::apply`].
    fn feed(&mut self, input: Input) {
        let now = self.now_ms();
        let outs = self.call.machine.handle(now, input);
        self.pending.extend(outs);
    }

    fn on_pbx_event(&mut self, ev: PbxEvent) -> Option<End> {
        match ev {
            PbxEvent::Start(info) => {
                warn!(call_id = %info.call_id, "a second start message in the same call: ignored");
            }
            PbxEvent::Audio(samples) => {
                let now = Instant::now();
                if !self.within_real_time(now, samples.len()) {
                    return None;
                }
                self.last_audio = Some(now);
                self.fed_until = Some(now);
                let arrived_ms = self.now_ms();
                if let Some(k) = self.call.keeper.as_mut() {
                    k.push_arrived(arrived_ms, &samples);
                }
                let f = i16_to_f32(&samples);
                let f = match self.call.resampler.as_mut() {
                    Some(r) => r.push(&f),
                    None => f,
                };
                if !f.is_empty() {
                    self.hear(&f);
                }
            }
            PbxEvent::Dtmf(d) => {
                debug!(digit = %d, "DTMF");
                self.feed(Input::Dtmf(d));
            }
            PbxEvent::MarkReached(id) => {
                let parsed = id.strip_prefix('p').and_then(|n| n.parse::<PlaybackId>().ok());
                match parsed {
                    Some(pid) if self.call.playback.mark_reached(pid) => {
                        self.feed(Input::PlaybackFinished(pid));
                    }
                    _ => debug!(mark = %id, "mark of a flushed or unknown prompt"),
                }
            }
            PbxEvent::Pause => {
                debug!("MEDIA_XOFF");
                self.call.playback.set_paused(true);
            }
            PbxEvent::Resume => {
                debug!("MEDIA_XON");
                self.call.playback.set_paused(false);
            }
            // After a transfer the PBX closing is the transfer taking effect.
            PbxEvent::Hangup { reason } => return Some(End::PeerClosed(self.closed_cause(reason))),
            PbxEvent::Ignored(what) => debug!(event = %what, "ignored"),
        }
        None
    }

    /// Whether caller audio arriving now is within real time (plus a
    /// burst); beyond that it is dropped, and said so once per call.
    fn within_real_time(&mut self, now: Instant, samples: usize) -> bool {
        let pacer = &mut self.call.pacer;
        if pacer.admit(now, samples) {
            return true;
        }
        if pacer.first_drop() {
            warn!(
                burst_ms = super::pacer::AUDIO_BURST.as_millis() as u64,
                "the PBX sends caller audio faster than real time; the excess is dropped"
            );
        }
        false
    }

    fn on_internal(&mut self, msg: Internal) -> Option<End> {
        match msg {
            Internal::Rendered { id, result } => match result {
                Ok(samples) => {
                    self.call.playback.rendered(id, samples);
                }
                Err(e) => {
                    error!(playback = id, "prompt could not be rendered: {e}");
                    self.call.playback.remove(id);
                    self.feed(Input::PlaybackFinished(id));
                }
            },
            Internal::Recognized { request, result } => match result {
                Ok(r) => {
                    self.observer.recognized(r.decode_ms);
                    debug!(request, text = %r.text, choice = ?r.choice, confidence = r.confidence, decode_ms = r.decode_ms, "recognised");
                    self.feed(Input::Recognized { request, result: r });
                }
                Err(reason) => {
                    warn!(request, "recognition failed: {reason}");
                    self.feed(Input::RecognitionFailed { request, reason: reason.to_string() });
                }
            },
            Internal::TransferDone { method, result } => match self.record_transfer(method, result) {
                Ok(()) => {
                    // Asterisk hangs up our channel and closes within
                    // ms; if it does not, hang up ourselves.
                    self.close_deadline = Some(Instant::now() + CLOSE_WAIT);
                }
                Err(TransferFailed(reason)) => self.feed(Input::TransferFailed { reason }),
            },
        }
        None
    }

    /// Acts on the machine's outputs (may produce more via feed()).
    async fn apply(&mut self, link: &mut Link) -> Option<End> {
        while !self.pending.is_empty() {
            let outs = std::mem::take(&mut self.pending);
            for out in outs {
                if let Some(end) = self.apply_one(out, link).await {
                    return Some(end);
                }
            }
        }
        if let Some(reason) = self.hangup_after_playback.clone() {
            if self.call.playback.is_idle() {
                return Some(End::HangUp(reason));
            }
        }
        None
    }

    async fn apply_one(&mut self, out: Output, link: &mut Link) -> Option<End> {
        match out {
            Output::Play { id, prompt, barge_in: _ } => {
                self.call.playback.enqueue(id);
                let rate = self.call.rate();
                let prompts = Arc::clone(&self.shared.prompts);
                let tx = self.internal_tx.clone();
                tokio::spawn(async move {
                    let result = match tokio::task::spawn_blocking(move || prompts.render(&prompt, rate)).await {
                        Ok(rendered) => rendered.map_err(WorkFailed::Prompt),
                        Err(crash) => Err(WorkFailed::RendererCrashed(crash)),
                    };
                    let _ = tx.send(Internal::Rendered { id, result }).await;
                });
            }
            Output::ForgetUtterance => self.ears.forget_utterance(),
            Output::StopPlayback => {
                let dropped = self.call.playback.flush();
                debug!(?dropped, "barge-in: flushing prompt audio");
                for m in self.codec.flush() {
                    if let Err(e) = send(link, m).await {
                        return Some(End::Broken(e.to_string()));
                    }
                }
                if let Some(esl) = self.call.esl.as_mut() {
                    esl.flush();
                }
            }
            Output::Recognize { request, utterance, grammar } => {
                match self.shared.speech.pool.submit_for(self.asr_caller, Arc::clone(&utterance.samples), grammar) {
                    Ok(rx) => {
                        let tx = self.internal_tx.clone();
                        tokio::spawn(async move {
                            let result = match rx.await {
                                Ok(Ok(r)) => Ok(r),
                                // The call asked again since; it waits for that answer only.
                                Ok(Err(AsrError::Superseded)) => {
                                    return debug!(request, "utterance superseded before decoding")
                                }
                                Ok(Err(e)) => Err(WorkFailed::Recognition(e)),
                                Err(_) => Err(WorkFailed::RecognizerStopped),
                            };
                            let _ = tx.send(Internal::Recognized { request, result }).await;
                        });
                    }
                    Err(e @ PoolError::Overloaded(_)) => {
                        warn!(request, "recogniser too busy for the utterance: {e}");
                        self.feed(Input::RecognitionRefused { request, reason: e.to_string() });
                    }
                    Err(e) => {
                        warn!(request, "recogniser refused the utterance: {e}");
                        self.feed(Input::RecognitionFailed { request, reason: e.to_string() });
                    }
                }
            }
            Output::Transfer { target, variables } => return self.start_transfer(target, variables),
            Output::Hangup { reason } => return self.hang_up_after_playback(reason),
            Output::Event(e) => {
                if let crate::call::Event::Degraded { reason, .. } = &e {
                    // Speech failed for this call (for good, or for one answer: the
                    // reason says which): worth an operator's look.
                    warn!(%reason, "speech recognition unavailable; the caller is offered keys");
                }
                info!(event = %serde_json::to_string(&e).unwrap_or_default(), "call event");
                self.observer.event(&e);
                self.record.push_event(e);
            }
        }
        None
    }

    /// Sends whatever prompt audio / marks are due.
    async fn pump(&mut self, link: &mut Link) -> Option<End> {
        while let Some(step) = self.call.playback.next(Instant::now()) {
            let msgs = match step {
                Step::Audio(samples) => {
                    let msgs = self.codec.audio(&samples);
                    if let Some(esl) = self.call.esl.as_mut() {
                        esl.prompts.sent(msgs.len());
                    }
                    msgs
                }
                Step::Mark(id) => {
                    // No file will report the end of a prompt that sent no audio.
                    if self.call.esl.as_mut().is_some_and(|esl| esl.prompts.prompt_complete(id))
                        && self.call.playback.mark_reached(id)
                    {
                        self.feed(Input::PlaybackFinished(id));
                    }
                    self.codec.mark(&format!("p{id}"))
                }
            };
            for m in msgs {
                if let Err(e) = send(link, m).await {
                    return Some(End::Broken(e.to_string()));
                }
            }
        }
        None
    }
}

/// How a call ended, for its record and its metrics.
struct Ended<'a> {
    cause: String,
    /// The caller's audio, when the config keeps it.
    keeper: Option<AudioKeeper>,
    observer: &'a mut CallObserver,
    ending: Ending,
}

/// Stores the call record (and the kept caller audio) of a call that
/// ended.
async fn write_record(shared: &Shared, record: &mut CallRecord, started: Instant, ended: Ended<'_>) {
    let Ended { cause, keeper, observer, ending } = ended;
    record.end_unix_ms = unix_ms(SystemTime::now());
    record.duration_ms = started.elapsed().as_millis() as u64;
    record.hangup_cause = cause.clone();
    if let (Some(k), Some(dir)) = (keeper, shared.cfg.general.keep_audio_dir.clone()) {
        let id = if record.call_id.is_empty() { "unknown".to_string() } else { record.call_id.clone() };
        match tokio::task::spawn_blocking(move || k.write(&dir, &id)).await {
            Ok(Ok(path)) => record.audio_file = Some(path),
            Ok(Err(e)) => warn!("caller audio not kept: {e}"),
            Err(e) => warn!("caller audio not kept: {e}"),
        }
    }
    observer.finish(record, ending);
    info!(cause = %cause, duration_ms = record.duration_ms, outcome = record.outcome.as_deref().unwrap_or(""), "call ended");
    if let Some(w) = &shared.records {
        // Queued for the writer's thread: a slow disk never holds a call.
        w.write(std::mem::take(record));
    }
}

async fn send(link: &mut Link, m: WireMessage) -> Result<(), SendError> {
    link.send(m).await
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}
