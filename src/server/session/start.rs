//! The start of a call: the connection before the PBX's start message
//! ([`Opening`]), and what the start message makes of it — an
//! [`ActiveCall`] with everything a call needs (its dialplan's call
//! machine, playback, transfer control, the FreeSWITCH event-socket half),
//! none of it optional any more.
//!
//! A FreeSWITCH call that arrives while the event socket is down waits
//! for it here, a bounded time: its prompts can only be played over that
//! socket, so greeting it earlier would give the caller silence.
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::freeswitch::EslCall;
use super::{send, write_record, End, Ended, Session, CLOSE_WAIT, INTERNAL_QUEUE};
use crate::audio::{StreamResampler, MODEL_RATE};
use crate::call::{Call, Input};
use crate::pbx::transfer::{TransferControl, TransferTools};
use crate::pbx::transport::Transport;
use crate::pbx::{CallInfo, MediaCodec, PbxEvent, WireMessage};
use crate::records::{unix_ms, AudioKeeper, CallRecord};
use crate::server::control::ControlChannel;
use crate::server::link::{Link, Received};
use crate::server::observer::{CallObserver, Ending};
use crate::server::pacer::AudioPacer;
use crate::server::playback::Playback;
use crate::server::{Phase, Shared};

/// MEDIA_START must come right after the upgrade (it does, within ms).
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// Lead of prompt audio for PBXs that do not pace it (AudioSocket): one
/// 20 ms frame, so frames go out in real time.
const PACED_LEAD: Duration = Duration::from_millis(20);
/// How long a FreeSWITCH call that arrives while the event socket is down
/// waits for it before giving up. A reconnect after a blip, or FreeSWITCH
/// accepting connections a moment after it starts sending calls, takes a
/// second or two; beyond a few seconds of silence callers hang up, so it
/// is better to hand the call back to FreeSWITCH's dialplan.
pub(super) const EVENT_SOCKET_WAIT: Duration = Duration::from_secs(5);

/// The connection before the PBX's start message: it has a codec and the
/// beginning of a call record, and nothing else yet.
pub(super) struct Opening {
    pub shared: Arc<Shared>,
    pub transport: Transport,
    pub codec: Box<dyn MediaCodec>,
    pub record: CallRecord,
    /// Metrics from the same events as the record.
    pub observer: CallObserver,
    pub started: Instant,
}

/// Everything a started call needs, made from its start message.
pub(super) struct ActiveCall {
    /// What the PBX said about the call (id, channel, format, variables).
    pub info: CallInfo,
    /// The call machine running this call's dialplan version.
    pub machine: Call,
    /// Prompt audio waiting, being sent, or playing at the PBX.
    pub playback: Playback,
    /// Caller audio beyond real time is dropped.
    pub pacer: AudioPacer,
    /// To the models' rate, when the PBX sends another.
    pub resampler: Option<StreamResampler>,
    /// The caller's audio, when `keep_audio_dir` asks for it.
    pub keeper: Option<AudioKeeper>,
    /// AudioSocket's silent frame, sent when nothing else went out for a while.
    pub keepalive: Option<WireMessage>,
    /// FreeSWITCH: this call's half on the event socket (prompts, keys, hangup).
    pub esl: Option<EslCall>,
    /// How this call's caller is transferred.
    pub transfer: Box<dyn TransferControl>,
}

impl ActiveCall {
    /// The rate of the call's audio, both ways.
    pub fn rate(&self) -> u32 {
        self.info.format.map_or(MODEL_RATE, |f| f.rate())
    }
}

impl Opening {
    pub fn new(transport: Transport, codec: Box<dyn MediaCodec>, shared: Arc<Shared>) -> Self {
        let record = CallRecord { start_unix_ms: unix_ms(SystemTime::now()), ..Default::default() };
        Opening { shared, transport, codec, record, observer: CallObserver::new(transport), started: Instant::now() }
    }

    /// Waits for the start message and starts the call: the session, and
    /// the events that came after the start in the same message. Or how
    /// the connection ended before that, to be passed to [`Opening::close`].
    pub async fn start(
        mut self,
        link: &mut Link,
        shutdown: &mut watch::Receiver<Phase>,
    ) -> Result<(Session, Vec<PbxEvent>), (Box<Opening>, End)> {
        let (info, rest) = match self.await_start_message(link, shutdown).await {
            Ok(started) => started,
            Err(end) => return Err((Box::new(self), end)),
        };
        let session = self.begin(info, link, shutdown).await?;
        Ok((session, rest))
    }

    /// Ends a connection that never became a call, and writes its record.
    pub async fn close(mut self: Box<Self>, mut link: Link, end: End) {
        // No call ran, so no machine finished it: the peer left, or the
        // connection was cut.
        let (cause, ending) = match end {
            End::PeerClosed(reason) => {
                link.close().await;
                (reason, Ending::PeerClosed)
            }
            End::HangUp(reason) | End::Broken(reason) => {
                hang_up_link(&mut *self.codec, &mut link).await;
                (reason, Ending::Cut)
            }
        };
        let ended = Ended { cause, keeper: None, observer: &mut self.observer, ending };
        write_record(&self.shared, &mut self.record, self.started, ended).await;
    }

    /// Reads until the start message. Other events before it carry nothing
    /// the call could use (no call runs yet), except the PBX hanging up.
    async fn await_start_message(
        &mut self,
        link: &mut Link,
        shutdown: &mut watch::Receiver<Phase>,
    ) -> Result<(CallInfo, Vec<PbxEvent>), End> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            let events = tokio::select! {
                msg = link.recv() => self.events_of(msg)?,
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(End::Broken(format!("no start message within {} s", START_TIMEOUT.as_secs())));
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() == Phase::Force {
                        return Err(End::HangUp("server shutting down".into()));
                    }
                    continue;
                }
            };
            let mut events = events.into_iter();
            while let Some(ev) = events.next() {
                match ev {
                    PbxEvent::Start(info) => return Ok((info, events.collect())),
                    PbxEvent::Hangup { reason } => return Err(End::PeerClosed(reason)),
                    _ => {}
                }
            }
        }
    }

    /// The events of one received message, or how the connection ended.
    fn events_of(&mut self, msg: Received) -> Result<Vec<PbxEvent>, End> {
        match msg {
            Received::Message(m) => self.codec.on_message(m).map_err(|e| {
                warn!(error = %e, "protocol error; ending the call");
                End::Broken(format!("protocol error: {e}"))
            }),
            Received::Closed(reason) => Err(End::PeerClosed(reason)),
            Received::Failed(e) => Err(End::Broken(e)),
        }
    }

    /// Makes the call of a start message: its dialplan, its state, its
    /// answer to the PBX, and the machine's first step (the greeting).
    async fn begin(
        mut self,
        info: CallInfo,
        link: &mut Link,
        shutdown: &mut watch::Receiver<Phase>,
    ) -> Result<Session, (Box<Opening>, End)> {
        let span = tracing::Span::current();
        span.record("call_id", info.call_id.as_str());
        if let Some(c) = &info.channel {
            span.record("channel", c.as_str());
        }
        self.record.call_id = info.call_id.clone();
        self.record.channel = info.channel.clone();
        self.record.caller_id = info.caller_id.clone();
        let (plan, note) = self.shared.registry.select(info.dialplan.as_deref());
        if let Some(note) = note {
            warn!("{note}");
        }
        let Some(plan) = plan else {
            return Err((Box::new(self), End::HangUp("no dialplan in service".into())));
        };
        self.observer.started(&plan);
        self.observer.show_live(&self.shared.dashboard.live, &info.call_id);
        let format = info.format.unwrap_or(crate::pbx::AudioFormat::Slin(MODEL_RATE));
        let rate = format.rate();
        info!(
            dialplan = %plan.name, version = %plan.version, format = ?format,
            caller_id = info.caller_id.as_deref().unwrap_or(""), "call started"
        );
        self.record.dialplan = Some(plan.name.clone());
        self.record.dialplan_version = Some(plan.version.clone());
        self.record.audio_format = Some(format!("{format:?}"));
        if let Some(w) = &self.shared.records {
            // The call's row from now on: should this instance die, the
            // call is still on record (marked interrupted at its restart).
            w.begin(&mut self.record);
        }
        let esl = match self.event_socket_half(&info, link, shutdown).await {
            Ok(esl) => esl,
            Err(end) => return Err((Box::new(self), end)),
        };
        let shared = Arc::clone(&self.shared);
        let cfg = &shared.cfg;
        let tools =
            TransferTools { cfg, esl: shared.esl.as_ref().map(|e| e.current_client()), decisions: &shared.decisions };
        let transfer = crate::pbx::transfer::for_call(self.transport, &info, &tools);
        let playback = match (self.codec.paces_playback(), self.codec.reports_playback_end()) {
            (true, true) => Playback::new(rate, cfg.general.playback_lead),
            (true, false) => Playback::self_timed(rate, cfg.general.playback_lead),
            (false, _) => Playback::self_timed(rate, PACED_LEAD),
        };
        let call = ActiveCall {
            machine: Call::new(plan, Arc::clone(&shared.matcher)),
            playback,
            pacer: AudioPacer::new(rate, Instant::now()),
            resampler: (rate != MODEL_RATE).then(|| StreamResampler::new(rate, MODEL_RATE)),
            keeper: cfg
                .general
                .keep_audio_dir
                .is_some()
                .then(|| AudioKeeper::new(rate, cfg.general.max_call_duration.as_secs())),
            keepalive: self.codec.idle_keepalive(),
            esl,
            transfer,
            info,
        };
        for m in self.codec.answer() {
            if let Err(e) = send(link, m).await {
                return Err((Box::new(self), End::Broken(e.to_string())));
            }
        }
        let (internal_tx, internal_rx) = mpsc::channel(INTERNAL_QUEUE);
        let mut session = Session {
            asr_caller: shared.speech.pool.caller(),
            ears: super::voice::Ears::new(shared.speech.endpoint.clone()),
            shared,
            codec: self.codec,
            started: self.started,
            record: self.record,
            observer: self.observer,
            call,
            internal_tx,
            internal_rx,
            transfer_pending: None,
            hangup_after_playback: None,
            transferred: false,
            pending: Vec::new(),
            close_deadline: None,
            last_audio: None,
            fed_until: None,
        };
        session.feed(Input::Start);
        Ok(session)
    }

    /// FreeSWITCH: the call's half on the event socket, once the socket is
    /// up (waiting for it a bounded time). None for other transports.
    async fn event_socket_half(
        &mut self,
        info: &CallInfo,
        link: &mut Link,
        shutdown: &mut watch::Receiver<Phase>,
    ) -> Result<Option<EslCall>, End> {
        if !self.transport.needs_event_socket() {
            return Ok(None);
        }
        let Some(esl) = self.shared.esl.as_ref() else {
            return Err(End::Broken("this transport needs the event socket, which is not configured".into()));
        };
        let channel = esl.channel();
        self.wait_for_event_socket(&channel, link, shutdown).await?;
        let Some(esl) = self.shared.esl.as_ref() else { return Ok(None) };
        let Some(events) = esl.router.register(&info.call_id) else {
            // Another connection serves this channel: refuse this one and
            // leave the channel alone (no kill, no transfer).
            warn!(uuid = %info.call_id, "refused: another media connection already serves this channel");
            return Err(End::Broken("another media connection already serves this channel".into()));
        };
        Ok(Some(EslCall::new(events, esl.current_client().clone(), &info.call_id)))
    }

    /// Waits up to [`EVENT_SOCKET_WAIT`] for the event socket, reading the
    /// media connection meanwhile (its audio is dropped: nothing has been
    /// asked yet). If it does not come, the media stream is closed, so
    /// FreeSWITCH's dialplan goes on past the fork instead of the caller
    /// hearing silence.
    async fn wait_for_event_socket(
        &mut self,
        channel: &ControlChannel,
        link: &mut Link,
        shutdown: &mut watch::Receiver<Phase>,
    ) -> Result<(), End> {
        if channel.connected() {
            return Ok(());
        }
        let wait_s = EVENT_SOCKET_WAIT.as_secs();
        warn!(addr = %channel.addr, wait_s, "FreeSWITCH call while the event socket is down: waiting for it");
        let connected = channel.wait_connected(EVENT_SOCKET_WAIT);
        tokio::pin!(connected);
        loop {
            tokio::select! {
                up = &mut connected => {
                    if up {
                        info!(addr = %channel.addr, "event socket connected: greeting the caller");
                        return Ok(());
                    }
                    let reason = format!(
                        "event socket not connected: FreeSWITCH's event socket at {} was not up within {wait_s} s, \
                         so no prompt could be played; the media stream was closed",
                        channel.addr
                    );
                    warn!("{reason}");
                    return Err(End::HangUp(reason));
                }
                msg = link.recv() => {
                    let events = self.events_of(msg)?;
                    if let Some(reason) = events.into_iter().find_map(|e| match e {
                        PbxEvent::Hangup { reason } => Some(reason),
                        _ => None,
                    }) {
                        return Err(End::PeerClosed(reason));
                    }
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() == Phase::Force {
                        return Err(End::HangUp("server shutting down".into()));
                    }
                }
            }
        }
    }
}

/// Our side of hanging up on the media connection: the codec's goodbye
/// (HANGUP, close), then the PBX's close, read until it comes.
pub(super) async fn hang_up_link(codec: &mut dyn MediaCodec, link: &mut Link) {
    for m in codec.hangup() {
        if send(link, m).await.is_err() {
            break;
        }
    }
    // Asterisk answers HANGUP with close 1000; read until then.
    link.wait_close(CLOSE_WAIT).await;
    link.close().await;
}
