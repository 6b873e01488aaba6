//! The call state machine: sans-IO, time is an input.
//!
//! A [`Call`] is fed [`Input`]s with the current time (ms since the call
//! started) and answers with [`Output`]s. It knows nothing of sockets,
//! threads or clocks: the live server and `hotline replay` drive the same
//! machine, replay with a virtual clock.
//!
//! The caller's voice comes in as voice detector events (`Input::Voice`:
//! speech started, a lull, a pause, a finished utterance with its audio);
//! the detector itself runs outside the machine, in the driver, which asks
//! [`Call::prompt_playing`] which threshold applies and is told by
//! `Output::ForgetUtterance` when an utterance was acted on before its
//! end. The machine asks for recognition of utterances (`Output::Recognize`,
//! answered later with `Input::Recognized` or `Input::RecognitionFailed`),
//! and decides what the caller hears next.
//!
//! Policies a caller can rely on:
//! - Keys work everywhere a question is asked, alongside speech; a key
//!   stops the prompt playing. In yes/no questions 1 = yes, 2 = no. In a
//!   digit entry, `#` ends it, reaching the maximum length ends it, and so
//!   does [`INTER_DIGIT_MS`] without a key. Keys pressed while the machine is
//!   announcing a transfer, a goodbye or a `Say` message are logged only.
//! - Confidence at or above `accept` acts, between `confirm` and `accept`
//!   asks "Did you mean …?" (in a choice step: "I heard …. Is that
//!   right?"), below is a no-match.
//! - An utterance that yields no words at all counts as a no-match once;
//!   further empty ones in a row are ignored without extending the wait
//!   (see `on_empty_result`), so line noise cannot burn a caller's retries.
//! - Retries run out into the menu's escalation; more than
//!   [`MAX_ESCALATIONS`] escalations in a call, or any escalation once
//!   speech is off, go to the operator.
//! - A recogniser failure, or no answer within [`RECOGNITION_TIMEOUT_MS`],
//!   switches the call to keys for good: the caller is told, and hears the
//!   current menu as "For billing, press 1. …".
//! - A recogniser too busy to take an utterance (other calls fill its
//!   queue) costs that answer only: the caller is told and hears the
//!   question as keys, and the next utterance is recognised again.
//!   [`MAX_REFUSALS`] refusals in a row switch the call to keys for good.
//! - A failed transfer apologises and returns to the start menu; a second
//!   one apologises, says goodbye and hangs up.
//! - Whenever the call is not over, a timer is running
//!   ([`Call::next_deadline`]): a prompt whose end the PBX never reports is
//!   taken as finished after a grace time, so nobody waits in silence.
use std::collections::VecDeque;
use std::sync::Arc;

use crate::asr::{Grammar, GrammarChoice, Recognition, Utterance, VadEvent};
use crate::dialplan::{Action, AfterSay, Collect, Dialplan, GlobalIntent, GlobalKind, Menu, Prompt, Transfer};
use crate::intent::{parse_digits, parse_yes_no, Candidate, IntentMatcher};

mod flow;
mod keys;
mod listening;
mod slots;
#[cfg(any(test, feature = "fuzzing"))]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
mod timers;
mod understanding;
mod voice_feed;

pub use slots::extract as slot_values;
pub use understanding::{grammar_at, grammars, leaves_answer_open, option_slots, NoSuchPlace};
pub use voice_feed::VoiceFeed;
mod wording;
pub use wording::static_prompts;

/// Identifies one playback so its end can be matched to it.
pub type PlaybackId = u64;

/// The machine's API (implemented below):
///
/// ```text
/// Call::new(dialplan: Arc<Dialplan>, matcher: Arc<dyn IntentMatcher>) -> Call
/// call.handle(now_ms: u64, input: Input) -> Vec<Output>
/// call.next_deadline() -> Option<u64>   // send Input::Tick at this time
/// call.is_finished() -> bool            // after Hangup / Transfer
/// call.hears_speech() -> bool           // whether to run the detector at all
/// call.prompt_playing() -> bool         // the detector's barge-in threshold
/// ```
#[derive(Debug, Clone)]
pub enum Input {
    /// The call is connected: the machine plays the first menu's prompt.
    Start,
    /// What the voice detector heard, its times on the call's clock
    /// ([`VadEvent::on_call_clock`]). A `Failed` detector switches the call
    /// to keys.
    Voice(VadEvent),
    Dtmf(char),
    /// Answer to `Output::Recognize { request, .. }`.
    Recognized {
        request: u64,
        result: Recognition,
    },
    /// The recogniser crashed or never answered: degrade to DTMF.
    RecognitionFailed {
        request: u64,
        reason: String,
    },
    /// The recogniser had no room for this utterance (busy with other
    /// calls): keys for this answer, speech again for the next one.
    RecognitionRefused {
        request: u64,
        reason: String,
    },
    /// The PBX finished playing this prompt.
    PlaybackFinished(PlaybackId),
    /// Time passed (drives no-input timers).
    Tick,
    /// The transfer asked for in `Output::Transfer` did not happen.
    TransferFailed {
        reason: String,
    },
    /// The caller hung up / the connection closed.
    Hangup,
}

#[derive(Debug, Clone)]
pub enum Output {
    Play {
        id: PlaybackId,
        prompt: Prompt,
        barge_in: bool,
    },
    /// Barge-in: stop what is playing now and drop what is queued.
    StopPlayback,
    /// The caller's answer was acted on at a pause: the voice detector
    /// must forget the utterance in progress, so it is not reported again
    /// when the silence gets long enough.
    ForgetUtterance,
    /// Recognise this utterance against this grammar; answer with
    /// `Input::Recognized` carrying the same request number.
    Recognize {
        request: u64,
        utterance: Utterance,
        grammar: Arc<Grammar>,
    },
    /// Hand the caller to a human. Variables collected so far go along.
    Transfer {
        target: Transfer,
        variables: Vec<(String, String)>,
    },
    Hangup {
        reason: String,
    },
    /// Something worth logging / putting in the call record / timeline.
    Event(Event),
}

/// Timeline entries (`hotline replay` prints them as JSON lines).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Prompt {
        t_ms: u64,
        menu: String,
        text: String,
    },
    Utterance {
        t_ms: u64,
        start_ms: u64,
        end_ms: u64,
        text: String,
        confidence: f32,
    },
    Intent {
        t_ms: u64,
        menu: String,
        intent: String,
        confidence: f32,
        source: Source,
    },
    NoMatch {
        t_ms: u64,
        menu: String,
        text: String,
    },
    NoInput {
        t_ms: u64,
        menu: String,
    },
    Dtmf {
        t_ms: u64,
        digit: char,
    },
    Collect {
        t_ms: u64,
        variable: String,
        value: String,
        confirmed: bool,
    },
    /// A slot of the chosen option was filled (from the sentence that
    /// chose it, an answer, or a correction at the read-back).
    Slot {
        t_ms: u64,
        slot: String,
        value: String,
        /// The words the value was read from when they are the recogniser's
        /// sentence, not the utterance's transcript: an option's phrase or
        /// a detail put back where the audio says it ("4 Queen of Clubs"
        /// for "4 Queen of Cloves").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        heard: Option<String>,
    },
    BargeIn {
        t_ms: u64,
    },
    Degraded {
        t_ms: u64,
        reason: String,
    },
    Transfer {
        t_ms: u64,
        extension: String,
        context: Option<String>,
    },
    TransferFailed {
        t_ms: u64,
        reason: String,
    },
    Hangup {
        t_ms: u64,
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Speech,
    Dtmf,
}

/// Time the inter-digit timer gives a caller between keys of a digit entry.
pub const INTER_DIGIT_MS: u64 = 5_000;
/// Longest the machine waits for an answer to `Output::Recognize` before it
/// treats the recogniser as broken and degrades to keys.
pub const RECOGNITION_TIMEOUT_MS: u64 = 15_000;
/// Longest the machine waits for the end of an utterance once speech has
/// started (above the detector's own 20 s cut-off).
pub const SPEECH_TIMEOUT_MS: u64 = 25_000;
/// A prompt gets this long, plus [`PLAYBACK_MS_PER_CHAR`] per character of
/// its text, to be reported finished; past that the machine carries on as if
/// it had been, so a PBX that never reports playback cannot leave a caller
/// in silence with no timer running.
pub const PLAYBACK_GRACE_MS: u64 = 10_000;
pub const PLAYBACK_MS_PER_CHAR: u64 = 100;
/// Escalations per call before the machine stops following the dialplan's
/// escalation actions and hands the caller to the operator (protects against
/// an escalation that leads back into the same menu forever).
pub const MAX_ESCALATIONS: u32 = 3;
/// Refusals in a row (recogniser too busy) after which speech is off for
/// the rest of the call: a caller asked again and again to use the keypad
/// is better off told once.
pub const MAX_REFUSALS: u32 = 3;
/// The variable the chosen menu option travels under with a transfer
/// (`HOTLINE_OPTION` on Asterisk), beside collected values and slots.
pub const OPTION_VARIABLE: &str = "option";
/// Menus remembered for `back`.
const HISTORY_LIMIT: usize = 16;
/// Prompts queued at the PBX at once; more means something is looping.
const QUEUE_LIMIT: usize = 8;
/// Longest digit entry accepted whatever the dialplan says.
const DIGITS_LIMIT: usize = 64;

/// The step has all the digits it takes: no more can follow, keyed or said.
fn no_more_digits(collect: &Collect, digits: &str) -> bool {
    digits.len() >= collect.max_digits.clamp(1, DIGITS_LIMIT)
}

/// What the caller picked: an option of the current menu or a global.
#[derive(Debug, Clone)]
enum Target {
    Action(Action),
    Global(GlobalKind),
}

#[derive(Debug, Clone)]
struct Chosen {
    intent: String,
    target: Target,
    confidence: f32,
}

#[derive(Debug, Clone)]
enum State {
    /// Before `Input::Start`.
    Idle,
    /// Listening for a choice in the current menu.
    Menu,
    /// "Did you mean billing?"
    ConfirmIntent(Chosen),
    /// Collecting digits; `digits` holds keys pressed so far.
    Collect {
        collect: Collect,
        digits: String,
    },
    /// "A large latte, right?": the request in `Call::filling` read back.
    ConfirmRequest,
    /// "I heard 4 5 1 2. Is that right?" / "I heard internet. …"
    ConfirmValue {
        collect: Collect,
        value: String,
    },
    /// Playing the transfer announcement; transfer when it ends.
    Transferring(Transfer),
    /// `Output::Transfer` sent; the call is over unless it fails.
    Transferred,
    /// Playing a `Say` message; then do this.
    Saying(AfterSay),
    /// Playing goodbye / an apology; hang up when it ends.
    HangingUp(String),
    Ended,
}

impl State {
    /// States in which the caller is expected to answer.
    fn listening(&self) -> bool {
        matches!(
            self,
            State::Menu
                | State::ConfirmIntent(_)
                | State::ConfirmRequest
                | State::Collect { .. }
                | State::ConfirmValue { .. }
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerKind {
    PlaybackGuard,
    NoInput,
    InterDigit,
    Speech,
    Recognition,
    /// The caller may go on with an unfinished answer (see `Held`).
    Incomplete,
}

#[derive(Debug, Clone, Copy)]
struct Timer {
    at: u64,
    kind: TimerKind,
}

#[derive(Debug, Clone, Copy)]
struct Queued {
    id: PlaybackId,
    barge_in: bool,
}

#[derive(Debug, Clone)]
struct PendingRecognition {
    request: u64,
    start_ms: u64,
    end_ms: u64,
    /// Asked at a lull, before the utterance is over: acted on only when
    /// the answer is clear at once and the pause long enough (see
    /// `Call::on_lull`).
    early: bool,
    /// The quiet after an early request reached the pause length.
    pause_reached: bool,
    /// The early answer is clear, but the option's details may follow: it
    /// is acted on at the end of the utterance, not at the pause.
    until_end: bool,
    /// A clear early answer that came back before the pause was long
    /// enough: it is acted on when the pause is.
    answer: Option<Recognition>,
    /// The audio asked about (for an early request, up to the lull).
    utterance: Utterance,
}

/// Words the call cannot act on yet (nothing matched, a question it would
/// have to ask, too few digits), kept until the menu's
/// `incomplete_timeout_ms` after the caller stopped: a caller who goes on
/// before then ("I'd like a … large latte", "1 0 0 0 1 … 9 0 2 1 0") is
/// heard with them, instead of being cut off by "Sorry?".
#[derive(Debug, Clone)]
struct Held {
    pending: PendingRecognition,
    result: Recognition,
}

/// What the caller's voice is doing right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Voice {
    Quiet,
    /// Speaking; `heard` = false when the speech began during a prompt that
    /// does not allow barge-in, so its utterance is discarded.
    Speaking {
        heard: bool,
    },
}

/// One call. See the module docs.
pub struct Call {
    plan: Arc<Dialplan>,
    matcher: Arc<dyn IntentMatcher>,
    state: State,
    menu: String,
    history: Vec<String>,
    queue: VecDeque<Queued>,
    next_playback: PlaybackId,
    timer: Option<Timer>,
    /// When the caller was last given the floor (the prompt ended).
    listening_since: u64,
    voice: Voice,
    request: u64,
    pending: Option<PendingRecognition>,
    held: Option<Held>,
    /// The previous recognition result was empty (see `on_empty_result`).
    last_result_empty: bool,
    no_input: u32,
    no_match: u32,
    escalations: u32,
    transfer_failures: u32,
    /// Speech is off: recogniser failed or never answered.
    degraded: bool,
    /// Utterances the recogniser refused in a row (see `MAX_REFUSALS`).
    refusals: u32,
    variables: Vec<(String, String)>,
    /// The option with slots being filled in, if any.
    filling: Option<slots::Request>,
    /// The words of the utterance that chose the current option (empty
    /// for a key), for its slots.
    heard: String,
    /// `heard` is the recogniser's sentence rather than the transcript.
    heard_is_sentence: bool,
    last_now: u64,
}

impl Call {
    pub fn new(plan: Arc<Dialplan>, matcher: Arc<dyn IntentMatcher>) -> Call {
        let menu = plan.start_menu.clone();
        Call {
            plan,
            matcher,
            state: State::Idle,
            menu,
            history: Vec::new(),
            queue: VecDeque::new(),
            next_playback: 1,
            timer: None,
            listening_since: 0,
            voice: Voice::Quiet,
            request: 0,
            pending: None,
            held: None,
            last_result_empty: false,
            no_input: 0,
            no_match: 0,
            escalations: 0,
            transfer_failures: 0,
            degraded: false,
            refusals: 0,
            variables: Vec::new(),
            filling: None,
            heard: String::new(),
            heard_is_sentence: false,
            last_now: 0,
        }
    }

    /// When the driver must send `Input::Tick` (any input at or after this
    /// time also fires the timer). `None` only when the call is over or has
    /// not started.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.is_finished() {
            return None;
        }
        self.timer.map(|t| t.at)
    }

    /// True after the machine hung up, the caller hung up, or the caller was
    /// transferred. A transfer that later fails (`Input::TransferFailed`)
    /// brings the call back.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Ended | State::Transferred)
    }

    /// Variables collected so far (name, value).
    pub fn variables(&self) -> &[(String, String)] {
        &self.variables
    }

    /// The menu the caller is in.
    pub fn current_menu(&self) -> &str {
        &self.menu
    }

    /// True once speech was switched off for this call.
    pub fn is_degraded(&self) -> bool {
        self.degraded
    }

    /// Whether the caller's voice can still matter: the driver runs no
    /// voice detector for a call where it cannot (speech off, call over).
    pub fn hears_speech(&self) -> bool {
        !self.degraded && !self.is_finished()
    }

    /// Whether a prompt is playing to the caller: the voice detector then
    /// needs the louder barge-in threshold (`EndpointConfig::threshold`).
    pub fn prompt_playing(&self) -> bool {
        !self.queue.is_empty()
    }

    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        // Time never runs backwards, whatever the driver sends.
        let now = now_ms.max(self.last_now);
        self.last_now = now;
        if matches!(self.state, State::Ended) {
            return out;
        }
        if matches!(self.state, State::Transferred) {
            if let Input::TransferFailed { reason } = input {
                self.on_transfer_failed(now, reason, &mut out);
            }
            return out;
        }
        self.fire_due_timer(now, &mut out);
        match input {
            Input::Start => self.on_start(now, &mut out),
            Input::Voice(event) => self.on_voice(now, event, &mut out),
            Input::Dtmf(key) => self.on_dtmf(now, key, &mut out),
            Input::Recognized { request, result } => self.on_recognized(now, request, result, &mut out),
            Input::RecognitionFailed { reason, .. } => {
                // Any failure, stale or not, says the recogniser is unwell.
                if !self.degraded {
                    self.degrade(now, reason, &mut out);
                }
            }
            Input::RecognitionRefused { request, reason } => {
                self.on_recognition_refused(now, request, reason, &mut out)
            }
            Input::PlaybackFinished(id) => self.on_playback_finished(now, id, &mut out),
            Input::Tick => {}
            Input::TransferFailed { reason } => {
                if matches!(self.state, State::Transferring(_)) {
                    self.on_transfer_failed(now, reason, &mut out);
                }
            }
            Input::Hangup => {
                self.finish();
                out.push(Output::Event(Event::Hangup { t_ms: now, reason: "caller hung up".into() }));
            }
        }
        out
    }

    // ----- inputs -------------------------------------------------------

    fn on_start(&mut self, now: u64, out: &mut Vec<Output>) {
        if !matches!(self.state, State::Idle) {
            return;
        }
        let start = self.plan.start_menu.clone();
        self.enter_menu(now, &start, false, out);
    }

    fn on_playback_finished(&mut self, now: u64, id: PlaybackId, out: &mut Vec<Output>) {
        let Some(pos) = self.queue.iter().position(|q| q.id == id) else {
            return; // stopped earlier, or not ours
        };
        self.queue.drain(..=pos);
        if self.queue.is_empty() {
            self.prompts_done(now, out);
        }
    }

    fn on_transfer_failed(&mut self, now: u64, reason: String, out: &mut Vec<Output>) {
        self.transfer_failures += 1;
        out.push(Output::Event(Event::TransferFailed { t_ms: now, reason }));
        self.timer = None;
        let apology = wording::text_prompt(&self.plan.messages.transfer_failed);
        if self.transfer_failures >= 2 {
            self.play(now, apology, false, out);
            let goodbye = wording::text_prompt(&self.plan.messages.goodbye);
            self.play(now, goodbye, false, out);
            self.state = State::HangingUp("transfer failed twice".into());
            return;
        }
        self.play(now, apology, false, out);
        self.history.clear();
        let start = self.plan.start_menu.clone();
        self.enter_menu(now, &start, false, out);
    }

    // ----- playback -----------------------------------------------------

    fn play(&mut self, now: u64, prompt: Prompt, barge_in: bool, out: &mut Vec<Output>) {
        if self.queue.len() >= QUEUE_LIMIT {
            tracing::warn!(menu = %self.menu, "prompt queue full; dropping what is queued");
            self.stop_playback(out);
        }
        let id = self.next_playback;
        self.next_playback += 1;
        let guard_from = match self.timer {
            Some(t) if t.kind == TimerKind::PlaybackGuard && !self.queue.is_empty() => t.at.max(now),
            _ => now,
        };
        let guard = PLAYBACK_GRACE_MS + PLAYBACK_MS_PER_CHAR * prompt.text.chars().count() as u64;
        self.set_timer(guard_from + guard, TimerKind::PlaybackGuard);
        self.queue.push_back(Queued { id, barge_in });
        out.push(Output::Event(Event::Prompt { t_ms: now, menu: self.menu.clone(), text: prompt.text.clone() }));
        out.push(Output::Play { id, prompt, barge_in });
    }

    fn stop_playback(&mut self, out: &mut Vec<Output>) {
        self.queue.clear();
        if matches!(self.timer, Some(t) if t.kind == TimerKind::PlaybackGuard) {
            self.timer = None;
        }
        out.push(Output::StopPlayback);
    }
}
