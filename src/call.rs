//! The call state machine: sans-IO, time is an input.
//!
//! A [`Call`] is fed [`Input`]s with the current time (ms since the call
//! started) and answers with [`Output`]s. It knows nothing of sockets,
//! threads or clocks: the live server and `hotline replay` drive the same
//! machine, replay with a virtual clock.
//!
//! Audio goes in as 16 kHz frames; the machine runs the voice detector on
//! them, asks for recognition of finished utterances (`Output::Recognize`,
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

use crate::asr::{Grammar, GrammarChoice, Recognition, Utterance, VadEvent, VoiceDetector};
use crate::dialplan::{Action, AfterSay, Collect, Dialplan, GlobalIntent, GlobalKind, Menu, Prompt, Transfer};
use crate::intent::{parse_digits, parse_yes_no, Candidate, IntentMatcher};

mod flow;
mod slots;
#[cfg(any(test, feature = "fuzzing"))]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
mod understanding;

pub use understanding::{grammar_at, grammars};
mod wording;
pub use wording::static_prompts;

/// Identifies one playback so its end can be matched to it.
pub type PlaybackId = u64;

/// The machine's API (implemented below):
///
/// ```text
/// Call::new(dialplan: Arc<Dialplan>, matcher: Arc<dyn IntentMatcher>,
///           vad: Box<dyn VoiceDetector>) -> Call
/// call.handle(now_ms: u64, input: Input) -> Vec<Output>
/// call.next_deadline() -> Option<u64>   // send Input::Tick at this time
/// call.is_finished() -> bool            // after Hangup / Transfer
/// ```
#[derive(Debug, Clone)]
pub enum Input {
    /// The call is connected: the machine plays the first menu's prompt.
    Start,
    /// 16 kHz mono caller audio, any length (normally one 20 ms frame).
    Audio(Vec<f32>),
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
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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
    /// A clear early answer that came back before the pause was long
    /// enough: it is acted on when the pause is.
    answer: Option<Recognition>,
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
    vad: Box<dyn VoiceDetector>,
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
    last_now: u64,
    /// Call time of the first audio sample, to put detector times on the
    /// call clock.
    audio_origin: Option<u64>,
}

impl Call {
    pub fn new(plan: Arc<Dialplan>, matcher: Arc<dyn IntentMatcher>, vad: Box<dyn VoiceDetector>) -> Call {
        let menu = plan.start_menu.clone();
        Call {
            plan,
            matcher,
            vad,
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
            last_now: 0,
            audio_origin: None,
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
            Input::Audio(samples) => self.on_audio(now, &samples, &mut out),
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

    fn on_audio(&mut self, now: u64, samples: &[f32], out: &mut Vec<Output>) {
        let duration = samples.len() as u64 * 1000 / crate::audio::MODEL_RATE as u64;
        let origin = *self.audio_origin.get_or_insert(now.saturating_sub(duration));
        if self.degraded {
            return; // speech is off for good; spare the detector
        }
        self.vad.set_prompt_playing(!self.queue.is_empty());
        let events = self.vad.accept(samples);
        if matches!(self.state, State::Idle) {
            return;
        }
        for event in events {
            match event {
                VadEvent::SpeechStart { .. } => self.on_speech_start(now, out),
                VadEvent::Utterance(u) => self.on_utterance(now, origin, u, out),
                VadEvent::Lull(u) => self.on_lull(origin, u, out),
                VadEvent::Pause { .. } => self.on_pause(now, out),
                VadEvent::Resume { .. } => self.on_resume(),
                VadEvent::Failed { reason } => {
                    self.degrade(now, format!("voice detector failed: {reason}"), out);
                    return;
                }
            }
        }
    }

    fn on_speech_start(&mut self, now: u64, out: &mut Vec<Output>) {
        if !self.state.listening() {
            self.voice = Voice::Speaking { heard: false };
            return;
        }
        match self.queue.front() {
            Some(q) if q.barge_in => {
                self.stop_playback(out);
                out.push(Output::Event(Event::BargeIn { t_ms: now }));
                self.voice = Voice::Speaking { heard: true };
                self.set_timer(now + SPEECH_TIMEOUT_MS, TimerKind::Speech);
            }
            Some(_) => self.voice = Voice::Speaking { heard: false },
            None => {
                self.voice = Voice::Speaking { heard: true };
                self.set_timer(now + SPEECH_TIMEOUT_MS, TimerKind::Speech);
            }
        }
    }

    fn on_utterance(&mut self, now: u64, origin: u64, u: Utterance, out: &mut Vec<Output>) {
        let heard = self.voice == Voice::Speaking { heard: true };
        self.voice = Voice::Quiet;
        if !heard || !self.state.listening() {
            if self.queue.is_empty() && self.state.listening() {
                self.resume_no_input(now);
            }
            return;
        }
        if let Some(p) = self.pending.as_mut().filter(|p| p.early) {
            if p.answer.is_some() {
                // Clear, and the quiet is longer than any pause now.
                self.on_pause(now, out);
                return;
            }
            // Nothing was said since the lull, so the request in flight
            // already has the words: it becomes the answer to wait for.
            // (Asking again would double the work exactly when the
            // recogniser is busy enough to be late.)
            p.early = false;
            p.end_ms = origin + u.end_ms;
            self.set_timer(now + RECOGNITION_TIMEOUT_MS, TimerKind::Recognition);
            return;
        }
        self.set_timer(now + RECOGNITION_TIMEOUT_MS, TimerKind::Recognition);
        self.ask_recognition(origin, u, false, out);
    }

    /// Sends the utterance to the recogniser; its answer comes back as
    /// `Input::Recognized` with the request number kept in `pending`.
    fn ask_recognition(&mut self, origin: u64, u: Utterance, early: bool, out: &mut Vec<Output>) {
        self.request += 1;
        self.pending = Some(PendingRecognition {
            request: self.request,
            start_ms: origin + u.start_ms,
            end_ms: origin + u.end_ms,
            early,
            pause_reached: false,
            answer: None,
        });
        out.push(Output::Recognize { request: self.request, utterance: u, grammar: Arc::new(self.grammar()) });
    }

    /// The caller went quiet mid-utterance. Most of what a caller waits for
    /// after speaking is the end-of-utterance silence; in a menu or a yes/no
    /// question the answer is often clear already, so what was said so far
    /// is recognised now, and acted on if it is clear once the quiet is a
    /// real pause (`on_recognized`, `on_pause`). No timer is set: if the
    /// answer is not clear, the utterance's end brings the usual
    /// recognition.
    fn on_lull(&mut self, origin: u64, u: Utterance, out: &mut Vec<Output>) {
        let answers_early = match &self.state {
            State::Menu | State::ConfirmIntent(_) | State::ConfirmRequest | State::ConfirmValue { .. } => true,
            // Spoken digits, not a mix with keys already pressed.
            State::Collect { digits, .. } => digits.is_empty(),
            _ => false,
        };
        if self.voice != (Voice::Speaking { heard: true }) || self.degraded || self.pending.is_some() || !answers_early
        {
            return;
        }
        self.ask_recognition(origin, u, true, out);
    }

    /// The quiet after a lull is long enough to act on an early answer:
    /// act now if it is back (and was clear), else as soon as it is.
    fn on_pause(&mut self, now: u64, out: &mut Vec<Output>) {
        let Some(p) = self.pending.as_mut().filter(|p| p.early) else { return };
        p.pause_reached = true;
        if p.answer.is_none() {
            return;
        }
        let Some(mut pending) = self.pending.take() else { return };
        let Some(result) = pending.answer.take() else { return };
        self.voice = Voice::Quiet;
        self.vad.end_utterance();
        self.answer(now, pending, result, out);
    }

    /// The caller went on speaking after a lull: an early answer would cut
    /// them off.
    fn on_resume(&mut self) {
        if self.pending.as_ref().is_some_and(|p| p.early) {
            self.pending = None;
        }
    }

    /// An early answer counts only when the recogniser picked one of the
    /// allowed phrases with a confidence the dialplan acts on at once; for
    /// digits, a string as long as the step takes (a shorter one may go on
    /// after the pause: "4 5 1 2 … 7 8") that the open transcript reads the
    /// same way. (Asked for six or more digits after "4 5 1 2 3", the digit
    /// search wrote "4512345123": the words so far, repeated to a length
    /// the step takes.)
    fn clear_at_once(&self, result: &Recognition) -> bool {
        let accept = self.plan.thresholds.accept;
        match &self.state {
            State::Menu => {
                result.choice.is_some() && self.intent_of(result, true).is_some_and(|c| c.confidence >= accept)
            }
            State::ConfirmIntent(_) | State::ConfirmRequest | State::ConfirmValue { .. } => {
                result.confidence >= accept && matches!(result.choice.as_deref(), Some("yes" | "no"))
            }
            State::Collect { collect, .. } if collect.takes_choice() => {
                result.confidence >= accept
                    && result.choice.as_ref().is_some_and(|c| collect.choices.iter().any(|v| v.value == *c))
            }
            State::Collect { collect, digits } => {
                digits.is_empty()
                    && result.confidence >= accept
                    && self.digits_from(result, collect).is_some_and(|d| {
                        no_more_digits(collect, &d)
                            && result.choice.as_ref() == Some(&d)
                            && parse_digits(&result.text).as_ref() == Some(&d)
                    })
            }
            _ => false,
        }
    }

    fn on_recognized(&mut self, now: u64, request: u64, result: Recognition, out: &mut Vec<Output>) {
        if !self.pending.as_ref().is_some_and(|p| p.request == request && p.answer.is_none()) {
            return; // stale: a newer utterance or a key press superseded it
        }
        let Some(mut pending) = self.pending.take() else { return };
        if self.degraded || !self.state.listening() {
            return;
        }
        if pending.early {
            if !self.clear_at_once(&result) {
                return; // wait for the end of the utterance
            }
            if !pending.pause_reached {
                pending.answer = Some(result);
                self.pending = Some(pending);
                return;
            }
            self.voice = Voice::Quiet;
            self.vad.end_utterance();
        }
        self.answer(now, pending, result, out);
    }

    /// The recogniser had no room for the utterance. An early request is
    /// simply dropped (the end of the utterance asks again); otherwise the
    /// caller hears the question as keys this once, or for good after
    /// [`MAX_REFUSALS`] in a row.
    fn on_recognition_refused(&mut self, now: u64, request: u64, reason: String, out: &mut Vec<Output>) {
        let Some(pending) = self.pending.take_if(|p| p.request == request) else {
            return; // stale: nobody waits for that answer any more
        };
        if self.degraded || pending.early {
            return;
        }
        self.refusals += 1;
        if self.refusals >= MAX_REFUSALS {
            return self.degrade(now, format!("{reason} ({} utterances in a row)", self.refusals), out);
        }
        out.push(Output::Event(Event::Degraded { t_ms: now, reason: format!("{reason}; keys for this answer only") }));
        // The keys-only wording of the question, while speech stays on.
        self.degraded = true;
        self.offer_keys(now, out);
        self.degraded = false;
    }

    /// Acts on the recognised words of an utterance.
    fn answer(&mut self, now: u64, pending: PendingRecognition, result: Recognition, out: &mut Vec<Output>) {
        self.refusals = 0;
        out.push(Output::Event(Event::Utterance {
            t_ms: now,
            start_ms: pending.start_ms,
            end_ms: pending.end_ms,
            text: result.text.clone(),
            confidence: result.confidence,
        }));
        if result.text.trim().is_empty() && result.choice.as_deref().is_none_or(|c| c.trim().is_empty()) {
            self.on_empty_result(now, out);
            return;
        }
        self.last_result_empty = false;
        match self.state.clone() {
            State::Menu => self.interpret_menu_speech(now, &result, out),
            State::ConfirmIntent(chosen) => match self.yes_no(&result) {
                Some(true) => self.act(now, chosen, Source::Speech, out),
                Some(false) => self.no_match_event(now, result.text, out),
                None => self.speech_global_or_no_match(now, &result, out),
            },
            State::ConfirmRequest => self.answer_read_back(now, &result, out),
            State::Collect { collect, .. } if collect.takes_choice() => {
                self.interpret_choice(now, collect, &result, out)
            }
            State::Collect { collect, .. } => match self.digits_from(&result, &collect) {
                Some(value) => self.accept_value(now, collect, value, out),
                None => self.speech_global_or_no_match(now, &result, out),
            },
            State::ConfirmValue { collect, value } => match self.yes_no(&result) {
                Some(true) => self.value_confirmed(now, collect, value, out),
                Some(false) => self.no_match_event(now, result.text, out),
                None => self.speech_global_or_no_match(now, &result, out),
            },
            _ => {}
        }
    }

    /// An utterance that produced no words at all (a cough, line noise).
    /// The first one in a row counts as a no-match, so a caller who mumbled
    /// hears the options again; further empty ones in a row are ignored, so
    /// a noisy line does not burn the caller's retries and push them to
    /// escalation. Ignoring never extends the wait: the no-input timer keeps
    /// the deadline it had when the caller was given the floor.
    fn on_empty_result(&mut self, now: u64, out: &mut Vec<Output>) {
        if self.last_result_empty {
            self.resume_no_input(now);
            return;
        }
        self.last_result_empty = true;
        self.no_match_event(now, String::new(), out);
    }

    fn on_dtmf(&mut self, now: u64, key: char, out: &mut Vec<Output>) {
        let key = key.to_ascii_uppercase();
        if !matches!(key, '0'..='9' | '*' | '#' | 'A'..='D') {
            tracing::debug!(?key, "ignoring a DTMF event that is not a key");
            return;
        }
        out.push(Output::Event(Event::Dtmf { t_ms: now, digit: key }));
        if !self.state.listening() {
            return;
        }
        if !self.queue.is_empty() {
            self.stop_playback(out);
        }
        // A key press answers the question: drop a recognition in flight,
        // and the utterance the caller may be in the middle of.
        self.pending = None;
        if let Voice::Speaking { .. } = self.voice {
            self.voice = Voice::Speaking { heard: false };
        }
        self.last_result_empty = false;
        match self.state.clone() {
            State::Menu => match self.choice_by_key(key) {
                Some(chosen) => {
                    self.heard.clear();
                    self.act(now, chosen, Source::Dtmf, out)
                }
                None => self.no_match_event(now, format!("key {key}"), out),
            },
            State::ConfirmIntent(chosen) => match key {
                '1' => self.act(now, chosen, Source::Dtmf, out),
                _ => self.no_match_event(now, format!("key {key}"), out),
            },
            State::ConfirmRequest => match key {
                '1' => self.request_confirmed(now, out),
                '2' => self.no_match_event(now, format!("key {key}"), out),
                _ => self.key_global_or_no_match(now, key, out),
            },
            State::Collect { collect, .. } if collect.takes_choice() => {
                match collect.choices.iter().find(|c| c.dtmf == Some(key)).map(|c| c.value.clone()) {
                    Some(value) => self.accept_value(now, collect, value, out),
                    None => self.key_global_or_no_match(now, key, out),
                }
            }
            State::Collect { collect, mut digits } => {
                if key.is_ascii_digit() {
                    digits.push(key);
                    let full = no_more_digits(&collect, &digits);
                    self.state = State::Collect { collect, digits };
                    if full {
                        self.finish_key_entry(now, out);
                    } else {
                        self.set_timer(now + INTER_DIGIT_MS, TimerKind::InterDigit);
                    }
                } else if key == '#' {
                    self.finish_key_entry(now, out);
                } else {
                    self.key_global_or_no_match(now, key, out);
                }
            }
            State::ConfirmValue { collect, value } => match key {
                '1' => self.value_confirmed(now, collect, value, out),
                '2' => self.no_match_event(now, format!("key {key}"), out),
                _ => self.key_global_or_no_match(now, key, out),
            },
            _ => {}
        }
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

    // ----- timers -------------------------------------------------------

    fn set_timer(&mut self, at: u64, kind: TimerKind) {
        self.timer = Some(Timer { at, kind });
    }

    fn fire_due_timer(&mut self, now: u64, out: &mut Vec<Output>) {
        let Some(timer) = self.timer.filter(|t| t.at <= now) else { return };
        self.timer = None;
        match timer.kind {
            TimerKind::PlaybackGuard => {
                tracing::warn!(menu = %self.menu, "no playback-finished report in time; carrying on");
                self.queue.clear();
                self.prompts_done(now, out);
            }
            TimerKind::NoInput | TimerKind::Speech => {
                self.voice = Voice::Quiet;
                self.no_input_event(now, out);
            }
            TimerKind::InterDigit => self.finish_key_entry(now, out),
            TimerKind::Recognition => {
                self.degrade(now, format!("no recognition result within {RECOGNITION_TIMEOUT_MS} ms"), out)
            }
        }
    }

    /// The caller has the floor again after an ignored utterance: wait for
    /// what is left of the no-input time, never longer.
    fn resume_no_input(&mut self, now: u64) {
        let timeout = self.current_menu_def().map_or(0, |m| m.no_input_timeout_ms);
        self.set_timer((self.listening_since + timeout).max(now), TimerKind::NoInput);
    }

    /// Everything queued has been played.
    fn prompts_done(&mut self, now: u64, out: &mut Vec<Output>) {
        match self.state.clone() {
            s if s.listening() => {
                self.listening_since = now;
                if matches!(self.voice, Voice::Speaking { heard: true }) {
                    // The speech timer covers the caller's utterance, unless
                    // a prompt played meanwhile took the one timer slot.
                    if !matches!(self.timer, Some(t) if t.kind == TimerKind::Speech) {
                        self.set_timer(now + SPEECH_TIMEOUT_MS, TimerKind::Speech);
                    }
                    return;
                }
                let timeout = self.current_menu_def().map_or(0, |m| m.no_input_timeout_ms);
                self.set_timer(now + timeout, TimerKind::NoInput);
            }
            State::Transferring(target) => {
                out.push(Output::Event(Event::Transfer {
                    t_ms: now,
                    extension: target.extension.clone(),
                    context: target.context.clone(),
                }));
                out.push(Output::Transfer { target, variables: self.variables.clone() });
                self.state = State::Transferred;
                self.timer = None;
            }
            State::Saying(then) => match then {
                AfterSay::Hangup => self.hang_up(now, "message played".into(), out),
                AfterSay::Return => {
                    let menu = self.menu.clone();
                    self.enter_menu(now, &menu, false, out);
                }
                AfterSay::Goto(menu) => self.enter_menu(now, &menu, true, out),
            },
            State::HangingUp(reason) => self.hang_up(now, reason, out),
            _ => {}
        }
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
