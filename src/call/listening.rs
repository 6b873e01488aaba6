//! What the caller's voice does: speech start and end, barge-in, early
//! answers at a pause, recognition requests and their answers.
use std::sync::Arc;

use super::*;

impl Call {
    pub(super) fn on_voice(&mut self, now: u64, event: VadEvent, out: &mut Vec<Output>) {
        if self.degraded || matches!(self.state, State::Idle) {
            return; // speech is off for good, or nobody was asked yet
        }
        match event {
            VadEvent::SpeechStart { .. } => self.on_speech_start(now, out),
            VadEvent::Utterance(u) => self.on_utterance(now, u, out),
            VadEvent::Lull(u) => self.on_lull(u, out),
            VadEvent::Pause { .. } => self.on_pause(now, out),
            VadEvent::Resume { .. } => self.on_resume(),
            VadEvent::Failed { reason } => self.degrade(now, format!("voice detector failed: {reason}"), out),
        }
    }

    pub(super) fn on_speech_start(&mut self, now: u64, out: &mut Vec<Output>) {
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

    pub(super) fn on_utterance(&mut self, now: u64, u: Utterance, out: &mut Vec<Output>) {
        let heard = self.voice == Voice::Speaking { heard: true };
        self.voice = Voice::Quiet;
        if !heard || !self.state.listening() {
            if self.held.is_some() {
                return self.answer_held(now, out);
            }
            if self.queue.is_empty() && self.state.listening() {
                self.resume_no_input(now);
            }
            return;
        }
        if let Some(p) = self.pending.as_mut().filter(|p| p.early) {
            if p.answer.is_some() {
                // Clear, and the quiet is longer than any pause now.
                self.act_on_early_answer(now, out);
                return;
            }
            // Nothing was said since the lull, so the request in flight
            // already has the words (after any held ones): it becomes the
            // answer to wait for. (Asking again would double the work
            // exactly when the recogniser is busy enough to be late.)
            p.early = false;
            p.end_ms = u.end_ms;
            self.held = None;
            self.set_timer(now + RECOGNITION_TIMEOUT_MS, TimerKind::Recognition);
            return;
        }
        let u = self.with_held_words(u);
        self.held = None;
        self.set_timer(now + RECOGNITION_TIMEOUT_MS, TimerKind::Recognition);
        self.ask_recognition(u, false, out);
    }

    /// `u`, after the words the caller said before it in the same answer:
    /// ones held as unfinished, or ones still being recognised (the caller
    /// went on before the call could answer them).
    fn with_held_words(&self, u: Utterance) -> Utterance {
        let before = match (&self.held, &self.pending) {
            (Some(held), _) => &held.pending.utterance,
            (None, Some(p)) if !p.early => &p.utterance,
            _ => return u,
        };
        // Too long to hear as one: the caller has moved on.
        before.followed_by(&u).unwrap_or(u)
    }

    /// Keeps an answer the call cannot act on yet (see [`Held`]) while the
    /// caller may still go on with it; false when it must be answered now.
    fn hold_if_incomplete(&mut self, now: u64, pending: &PendingRecognition, result: &Recognition) -> bool {
        let wait = self.current_menu_def().map_or(0, |m| m.incomplete_timeout_ms);
        let deadline = pending.end_ms + wait;
        let speaking = self.voice == (Voice::Speaking { heard: true });
        if wait == 0 || (deadline <= now && !speaking) || !self.incomplete(result) {
            return false;
        }
        self.held = Some(Held { pending: pending.clone(), result: result.clone() });
        // A caller already speaking again keeps the speech timer: the end
        // of that utterance brings the held words back with it.
        if !speaking {
            self.set_timer(deadline, TimerKind::Incomplete);
        }
        true
    }

    /// The caller did not go on: the held words are the answer.
    pub(super) fn answer_held(&mut self, now: u64, out: &mut Vec<Output>) {
        if let Some(Held { pending, result }) = self.held.take() {
            self.answer(now, pending, result, out);
        }
    }

    /// Sends the utterance to the recogniser; its answer comes back as
    /// `Input::Recognized` with the request number kept in `pending`.
    pub(super) fn ask_recognition(&mut self, u: Utterance, early: bool, out: &mut Vec<Output>) {
        self.request += 1;
        self.pending = Some(PendingRecognition {
            request: self.request,
            start_ms: u.start_ms,
            end_ms: u.end_ms,
            early,
            pause_reached: false,
            until_end: false,
            answer: None,
            utterance: u.clone(),
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
    pub(super) fn on_lull(&mut self, u: Utterance, out: &mut Vec<Output>) {
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
        let u = self.with_held_words(u);
        self.ask_recognition(u, true, out);
    }

    /// The quiet after a lull is long enough to act on an early answer:
    /// act now if it is back (and was clear), else as soon as it is.
    pub(super) fn on_pause(&mut self, now: u64, out: &mut Vec<Output>) {
        let Some(p) = self.pending.as_mut().filter(|p| p.early) else { return };
        p.pause_reached = true;
        if p.answer.is_some() && !p.until_end {
            self.act_on_early_answer(now, out);
        }
    }

    /// Acts on the early answer held in `pending`.
    fn act_on_early_answer(&mut self, now: u64, out: &mut Vec<Output>) {
        let Some(mut pending) = self.pending.take() else { return };
        let Some(result) = pending.answer.take() else { return };
        self.voice = Voice::Quiet;
        out.push(Output::ForgetUtterance);
        self.answer(now, pending, result, out);
    }

    /// The caller went on speaking after a lull: an early answer would cut
    /// them off.
    pub(super) fn on_resume(&mut self) {
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
    /// the step takes.) A one-digit step's digit counts from the `confirm`
    /// threshold, whatever the transcript: one digit cannot be such a
    /// repetition, nothing more can follow it, and the end of the utterance
    /// would act on the recogniser's digit anyway, 300 ms later (Whisper
    /// writes a lone spoken digit as "A", "Bye" or "Please" often enough).
    pub(super) fn clear_at_once(&self, result: &Recognition) -> bool {
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
                    && self.digits_from(result, collect).is_some_and(|d| {
                        no_more_digits(collect, &d)
                            && result.choice.as_ref() == Some(&d)
                            && if d.len() == 1 {
                                result.confidence >= self.plan.thresholds.confirm
                            } else {
                                result.confidence >= accept && parse_digits(&result.text).as_ref() == Some(&d)
                            }
                    })
            }
            _ => false,
        }
    }

    /// Whether a menu answer chose an option that takes details the words
    /// so far do not all name: the caller may be about to say them ("a
    /// large latte … with oat milk"), so the answer waits for the end of the
    /// utterance, not a pause. (Yes/no slots are only ever asked for.)
    fn details_may_follow(&self, result: &Recognition) -> bool {
        if !matches!(self.state, State::Menu) {
            return false;
        }
        let Some(option) = self.intent_of(result, true).and_then(|c| self.current_option(&c.intent)) else {
            return false;
        };
        let sayable = option.slots.uses.iter().filter(|u| u.slot.kind != crate::dialplan::SlotKind::YesNo).count();
        sayable > 0 && super::slots::extract(result.slot_text(), &option.slots.uses).len() < sayable
    }

    pub(super) fn on_recognized(&mut self, now: u64, request: u64, result: Recognition, out: &mut Vec<Output>) {
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
            // Held for the pause, or for the end: if nothing more is said,
            // this is the answer to the whole utterance.
            pending.until_end = self.details_may_follow(&result);
            if !pending.pause_reached || pending.until_end {
                pending.answer = Some(result);
                self.pending = Some(pending);
                return;
            }
            self.voice = Voice::Quiet;
            out.push(Output::ForgetUtterance);
        } else if self.hold_if_incomplete(now, &pending, &result) {
            return;
        }
        self.answer(now, pending, result, out);
    }

    /// The recogniser had no room for the utterance. An early request is
    /// simply dropped (the end of the utterance asks again); otherwise the
    /// caller hears the question as keys this once, or for good after
    /// [`MAX_REFUSALS`] in a row.
    pub(super) fn on_recognition_refused(&mut self, now: u64, request: u64, reason: String, out: &mut Vec<Output>) {
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
    pub(super) fn answer(&mut self, now: u64, pending: PendingRecognition, result: Recognition, out: &mut Vec<Output>) {
        self.refusals = 0;
        self.held = None; // these words include them
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
    pub(super) fn on_empty_result(&mut self, now: u64, out: &mut Vec<Output>) {
        if self.last_result_empty {
            self.resume_no_input(now);
            return;
        }
        self.last_result_empty = true;
        self.no_match_event(now, String::new(), out);
    }
}
