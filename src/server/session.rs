//! One call: a connection from the PBX (any transport) driven through its
//! codec and the call machine, in real time. Side actions the media
//! protocol cannot carry (transfer, barge-in and prompt playback on
//! FreeSWITCH, hang-up) go to the transport's control channel: AMI or the
//! no-AMI decision endpoint for Asterisk, the event socket for FreeSWITCH,
//! the webhook for Twilio.
//!
//! The task owns the socket, the codec, the machine and the playback pump.
//! Recognition runs on the recogniser pool and prompt rendering on the
//! blocking pool; their results come back on a small bounded channel, so
//! this task never blocks and keeps reading the socket (Asterisk closes a
//! connection it cannot write to within 500 ms).
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn, Instrument};

use super::link::{Link, Received};
use super::observer::{CallObserver, Ending};
use super::pacer::AudioPacer;
use super::playback::{Playback, Step};
use super::{Phase, Shared};
use crate::asr::pool::{CallerId, PoolError};
use crate::asr::{AsrError, Recognition};
use crate::audio::{i16_to_f32, StreamResampler, MODEL_RATE};
use crate::call::{Call, Input, Output, PlaybackId};
use crate::dialplan::Transfer;
use crate::pbx::transfer::{TransferControl, TransferOutcome, TransferTools};
use crate::pbx::transport::Transport;
use crate::pbx::{CallInfo, MediaCodec, PbxEvent, WireMessage};
use crate::records::{unix_ms, AudioKeeper, CallRecord};

/// Lead of prompt audio for PBXs that do not pace it (AudioSocket): one
/// 20 ms frame, so frames go out in real time.
const PACED_LEAD: Duration = Duration::from_millis(20);
/// AudioSocket's application form times out after 2 s without a frame.
const KEEPALIVE_EVERY: Duration = Duration::from_millis(crate::pbx::audiosocket::KEEPALIVE_INTERVAL_MS);
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

mod freeswitch;
mod transfer;

use freeswitch::EslCall;

enum Internal {
    Rendered {
        id: PlaybackId,
        result: Result<Arc<Vec<i16>>, String>,
    },
    Recognized {
        request: u64,
        result: Result<Recognition, String>,
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
    link: Link,
    transport: Transport,
    codec: Box<dyn MediaCodec>,
    peer: String,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<Phase>,
) {
    let span = tracing::info_span!("call", %transport, peer = %peer, call_id = tracing::field::Empty, channel = tracing::field::Empty);
    let session = Session::new(transport, codec, shared);
    session.run(link, shutdown).instrument(span).await;
}

struct Session {
    shared: Arc<Shared>,
    transport: Transport,
    codec: Box<dyn MediaCodec>,
    /// AudioSocket's silent frame, sent when nothing else went out for a while.
    keepalive: Option<WireMessage>,
    /// FreeSWITCH: this call's half on the event socket (prompts, keys, hangup).
    esl: Option<EslCall>,
    info: Option<CallInfo>,
    call: Option<Call>,
    started: Instant,
    playback: Option<Playback>,
    resampler: Option<StreamResampler>,
    /// Caller audio beyond real time is dropped (from the start message on).
    pacer: Option<AudioPacer>,
    /// This call's share of the recogniser pool.
    asr_caller: CallerId,
    keeper: Option<AudioKeeper>,
    record: CallRecord,
    /// Metrics from the same events as the record.
    observer: CallObserver,
    internal_tx: mpsc::Sender<Internal>,
    internal_rx: mpsc::Receiver<Internal>,
    /// How this call's caller is transferred, chosen when the call starts.
    transfer: Option<Box<dyn TransferControl>>,
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
    fn new(transport: Transport, codec: Box<dyn MediaCodec>, shared: Arc<Shared>) -> Self {
        let (internal_tx, internal_rx) = mpsc::channel(INTERNAL_QUEUE);
        let asr_caller = shared.speech.pool.caller();
        Session {
            transport,
            codec,
            keepalive: None,
            esl: None,
            shared,
            info: None,
            call: None,
            started: Instant::now(),
            playback: None,
            resampler: None,
            pacer: None,
            asr_caller,
            keeper: None,
            record: CallRecord { start_unix_ms: unix_ms(SystemTime::now()), ..Default::default() },
            observer: CallObserver::new(transport),
            internal_tx,
            internal_rx,
            transfer: None,
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

    async fn run(mut self, mut link: Link, mut shutdown: watch::Receiver<Phase>) {
        let end = self.drive(&mut link, &mut shutdown).await;
        let machine_done = self.call.as_ref().is_some_and(Call::is_finished);
        let ending = match end {
            End::PeerClosed(_) => Ending::PeerClosed,
            _ if machine_done => Ending::Machine,
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
                for m in self.codec.hangup() {
                    if send(&mut link, m).await.is_err() {
                        break;
                    }
                }
                // Asterisk answers HANGUP with close 1000; read until then.
                link.wait_close(CLOSE_WAIT).await;
                link.close().await;
                reason
            }
        };
        self.esl = None;
        if let Some(dropped_ms) = self.pacer.as_ref().map(AudioPacer::dropped_ms).filter(|&ms| ms > 0) {
            warn!(dropped_ms, "caller audio dropped in this call for arriving faster than real time");
        }
        if let Some(call) = self.call.as_mut() {
            if !call.is_finished() {
                let now = self.started.elapsed().as_millis() as u64;
                for out in call.handle(now, Input::Hangup) {
                    if let Output::Event(e) = out {
                        self.observer.event(&e);
                        self.record.push_event(e);
                    }
                }
            }
        }
        self.finish_record(cause, ending).await;
    }

    async fn drive(&mut self, link: &mut Link, shutdown: &mut watch::Receiver<Phase>) -> End {
        let start_deadline = tokio::time::Instant::now() + START_TIMEOUT;
        let max_end = tokio::time::Instant::now() + self.shared.cfg.max_call_duration;
        loop {
            if let Some(end) = self.pump(link).await {
                return end;
            }
            // Pumping may end a prompt (one without audio on FreeSWITCH).
            if let Some(end) = self.apply(link).await {
                return end;
            }
            let now = Instant::now();
            let tick_at =
                self.call.as_ref().and_then(|c| c.next_deadline()).map(|ms| self.started + Duration::from_millis(ms));
            let pump_at = self.playback.as_ref().and_then(|p| p.wake_at(now));
            let waiting_start = self.info.is_none();
            let fill_at = self.silence_fill_at();
            let keepalive_at = self.keepalive.as_ref().map(|_| link.last_sent() + KEEPALIVE_EVERY);
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
                        if let Some(end) = self.on_pbx_event(ev, link).await {
                            return end;
                        }
                    }
                }
                ev = freeswitch::next_event(&mut self.esl) => {
                    if let Some(end) = self.on_esl_event(ev).await {
                        return end;
                    }
                }
                _ = sleep_until_opt(keepalive_at) => {
                    if let Some(k) = self.keepalive.clone() {
                        if let Err(e) = send(link, k).await {
                            return End::Broken(e);
                        }
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
                    let overdue = self.playback.as_mut().map(|p| p.overdue(Instant::now())).unwrap_or_default();
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
                _ = tokio::time::sleep_until(start_deadline), if waiting_start => {
                    return End::Broken(format!("no start message within {} s", START_TIMEOUT.as_secs()));
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

    async fn on_pbx_event(&mut self, ev: PbxEvent, link: &mut Link) -> Option<End> {
        match ev {
            PbxEvent::Start(info) => return self.on_start(info, link).await,
            PbxEvent::Audio(samples) => {
                let now = Instant::now();
                if !self.within_real_time(now, samples.len()) {
                    return None;
                }
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
            // After a transfer the PBX closing is the transfer taking effect.
            PbxEvent::Hangup { reason } => return Some(End::PeerClosed(self.closed_cause(reason))),
            PbxEvent::Ignored(what) => debug!(event = %what, "ignored"),
        }
        None
    }

    /// Whether caller audio arriving now is within real time (plus a
    /// burst); beyond that it is dropped, and said so once per call.
    fn within_real_time(&mut self, now: Instant, samples: usize) -> bool {
        let Some(pacer) = self.pacer.as_mut() else { return true };
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

    async fn on_start(&mut self, info: CallInfo, link: &mut Link) -> Option<End> {
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
        self.observer.started(&plan);
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
        self.pacer = Some(AudioPacer::new(rate, Instant::now()));
        if self.shared.cfg.keep_audio_dir.is_some() {
            self.keeper = Some(AudioKeeper::new(rate, self.shared.cfg.max_call_duration.as_secs()));
        }
        self.playback = Some(match (self.codec.paces_playback(), self.codec.reports_playback_end()) {
            (true, true) => Playback::new(rate, self.shared.cfg.playback_lead),
            (true, false) => Playback::self_timed(rate, self.shared.cfg.playback_lead),
            (false, _) => Playback::self_timed(rate, PACED_LEAD),
        });
        self.keepalive = self.codec.idle_keepalive();
        if self.transport.needs_event_socket() {
            let Some(esl) = self.shared.esl.as_ref() else {
                return Some(End::Broken("this transport needs the event socket, which is not configured".into()));
            };
            let Some(events) = esl.router.register(&info.call_id) else {
                // Another connection serves this channel: refuse this one and
                // leave the channel alone (no kill, no transfer).
                warn!(uuid = %info.call_id, "refused: another media connection already serves this channel");
                return Some(End::Broken("another media connection already serves this channel".into()));
            };
            self.esl = Some(EslCall::new(events, esl.current_client().clone(), &info.call_id));
        }
        let tools = TransferTools {
            cfg: &self.shared.cfg,
            esl: self.shared.esl.as_ref().map(|e| e.current_client()),
            decisions: &self.shared.decisions,
        };
        self.transfer = Some(crate::pbx::transfer::for_call(self.transport, &info, &tools));
        let vad = Box::new(self.shared.speech.detector());
        self.call = Some(Call::new(plan, Arc::clone(&self.shared.matcher), vad));
        self.info = Some(info);
        for m in self.codec.answer() {
            if let Err(e) = send(link, m).await {
                return Some(End::Broken(e));
            }
        }
        self.feed(Input::Start);
        None
    }

    fn on_internal(&mut self, msg: Internal) -> Option<End> {
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
                    self.observer.recognized(r.decode_ms);
                    debug!(request, text = %r.text, choice = ?r.choice, confidence = r.confidence, decode_ms = r.decode_ms, "recognised");
                    self.feed(Input::Recognized { request, result: r });
                }
                Err(reason) => {
                    warn!(request, "recognition failed: {reason}");
                    self.feed(Input::RecognitionFailed { request, reason });
                }
            },
            Internal::TransferDone { method, result } => match self.record_transfer(method, result) {
                Ok(()) => {
                    // Asterisk hangs up our channel and closes within
                    // ms; if it does not, hang up ourselves.
                    self.close_deadline = Some(Instant::now() + CLOSE_WAIT);
                }
                Err(reason) => self.feed(Input::TransferFailed { reason }),
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
            if self.playback.as_ref().is_none_or(|p| p.is_idle()) {
                return Some(End::HangUp(reason));
            }
        }
        None
    }

    async fn apply_one(&mut self, out: Output, link: &mut Link) -> Option<End> {
        match out {
            Output::Play { id, prompt, barge_in: _ } => {
                let pb = self.playback.as_mut()?;
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
                    if let Err(e) = send(link, m).await {
                        return Some(End::Broken(e));
                    }
                }
                if let Some(esl) = self.esl.as_mut() {
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
                                Ok(Err(e)) => Err(e.to_string()),
                                Err(_) => Err("recognition worker stopped".to_string()),
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
        while let Some(step) = self.playback.as_mut().and_then(|p| p.next(Instant::now())) {
            let msgs = match step {
                Step::Audio(samples) => {
                    let msgs = self.codec.audio(&samples);
                    if let Some(esl) = self.esl.as_mut() {
                        esl.prompts.sent(msgs.len());
                    }
                    msgs
                }
                Step::Mark(id) => {
                    // No file will report the end of a prompt that sent no audio.
                    if self.esl.as_mut().is_some_and(|esl| esl.prompts.prompt_complete(id))
                        && self.playback.as_mut().is_some_and(|p| p.mark_reached(id))
                    {
                        self.feed(Input::PlaybackFinished(id));
                    }
                    self.codec.mark(&format!("p{id}"))
                }
            };
            for m in msgs {
                if let Err(e) = send(link, m).await {
                    return Some(End::Broken(e));
                }
            }
        }
        None
    }

    async fn finish_record(&mut self, cause: String, ending: Ending) {
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
        self.observer.finish(&mut self.record, ending);
        info!(cause = %cause, duration_ms = self.record.duration_ms, outcome = self.record.outcome.as_deref().unwrap_or(""), "call ended");
        if let Some(w) = &self.shared.records {
            // Queued for the writer's thread: a slow disk never holds a call.
            w.write(std::mem::take(&mut self.record));
        }
    }
}

async fn send(link: &mut Link, m: WireMessage) -> Result<(), String> {
    link.send(m).await
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}
