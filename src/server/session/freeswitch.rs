//! The FreeSWITCH half of a call on the event socket: the mod_audio_fork /
//! mod_audio_stream media connection carries audio only, so prompt files
//! are played (`uuid_broadcast`), stopped on barge-in (`uuid_break`), keys
//! read and the channel hung up (`uuid_kill`) over the server's one
//! event-socket connection.
use tracing::{debug, warn};

use super::{End, Session};
use crate::call::Input;
use crate::pbx::esl::{CallEvents, CurrentClient, EslCallEvent};
use crate::pbx::PbxEvent;
use crate::server::freeswitch_prompts::{Announced, FreeswitchPrompts};
use crate::server::link::WRITE_TIMEOUT;

/// One FreeSWITCH call's state on the event socket.
pub(super) struct EslCall {
    /// This call's events (DTMF, prompt files, hangup); None once the
    /// connection is lost.
    pub events: Option<CallEvents>,
    /// Which broadcast file ends which prompt.
    pub prompts: FreeswitchPrompts,
    /// The connection as it is when a command goes out.
    pub client: CurrentClient,
    /// The channel.
    pub uuid: String,
}

impl EslCall {
    pub fn new(events: CallEvents, client: CurrentClient, uuid: &str) -> Self {
        EslCall { events: Some(events), prompts: FreeswitchPrompts::default(), client, uuid: uuid.to_string() }
    }

    /// Barge-in: broadcasts already queued in FreeSWITCH are dropped too,
    /// and files not yet announced will not be played.
    pub fn flush(&mut self) {
        self.prompts.flush();
        let (client, uuid) = (self.client.get(), self.uuid.clone());
        tokio::spawn(async move {
            if let Err(e) = client.uuid_break(&uuid, true).await {
                warn!("uuid_break failed: {e}");
            }
        });
    }
}

impl Session {
    /// FreeSWITCH: closing the media fork leaves the call up, so the
    /// channel is killed over the event socket.
    pub(super) async fn hang_up_on_control_channel(&mut self) {
        if self.transferred {
            return;
        }
        let Some(esl) = self.call.esl.as_ref() else { return };
        match tokio::time::timeout(WRITE_TIMEOUT, esl.client.get().uuid_kill(&esl.uuid)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!("uuid_kill failed: {e}"),
            Err(_) => warn!("uuid_kill: no answer from the event socket"),
        }
    }

    /// A FreeSWITCH event of this call (the event socket is shared by all).
    pub(super) async fn on_esl_event(&mut self, ev: Option<EslCallEvent>) -> Option<End> {
        let Some(ev) = ev else {
            warn!("event socket connection lost: no more keys or prompts for this call");
            if let Some(esl) = self.call.esl.as_mut() {
                esl.events = None;
            }
            return Some(End::HangUp("event socket connection lost".into()));
        };
        match ev {
            EslCallEvent::PlayFile { uuid, file } => {
                let esl = self.call.esl.as_mut()?;
                if esl.prompts.announced(&file) == Announced::Stale {
                    debug!(%file, "prompt file of a barged-in prompt: not played");
                    return None;
                }
                let esl = esl.client.get();
                tokio::spawn(async move {
                    if let Err(e) = esl.uuid_broadcast(&uuid, &file).await {
                        warn!(%file, "prompt file not played: {e}");
                    }
                });
            }
            EslCallEvent::PlaybackStop { file: Some(file), .. } => {
                // The last file of a prompt stopped: the prompt is over now
                // (the no-input timer starts from here, not from our estimate).
                if let Some(id) = self.call.esl.as_mut().and_then(|esl| esl.prompts.stopped(&file)) {
                    if self.call.playback.mark_reached(id) {
                        debug!(playback = id, %file, "prompt played (PLAYBACK_STOP)");
                        self.feed(Input::PlaybackFinished(id));
                    }
                }
            }
            EslCallEvent::PlaybackStop { file: None, .. } | EslCallEvent::Other => {}
            other => {
                if let Some(pbx) = other.to_pbx_event() {
                    return self.on_control_event(pbx);
                }
            }
        }
        None
    }

    /// DTMF and hangup from a control channel (no socket writes needed).
    fn on_control_event(&mut self, ev: PbxEvent) -> Option<End> {
        match ev {
            PbxEvent::Dtmf(d) => {
                debug!(digit = %d, "DTMF (event socket)");
                self.feed(Input::Dtmf(d));
                None
            }
            PbxEvent::Hangup { reason } => Some(End::PeerClosed(self.closed_cause(reason))),
            _ => None,
        }
    }
}

/// The next event of the call's event-socket half; never, when it has none.
pub(super) async fn next_event(esl: &mut Option<EslCall>) -> Option<EslCallEvent> {
    match esl.as_mut().and_then(|e| e.events.as_mut()) {
        Some(e) => e.recv().await,
        None => std::future::pending().await,
    }
}
