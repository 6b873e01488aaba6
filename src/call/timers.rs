//! The call's one timer (no input, digits, speech, recognition, an
//! unfinished answer, playback guard), and what happens when everything
//! queued has been played.
use super::*;

impl Call {
    pub(super) fn set_timer(&mut self, at: u64, kind: TimerKind) {
        self.timer = Some(Timer { at, kind });
    }

    pub(super) fn fire_due_timer(&mut self, now: u64, out: &mut Vec<Output>) {
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
            TimerKind::Incomplete => self.answer_held(now, out),
            TimerKind::Recognition => {
                self.degrade(now, format!("no recognition result within {RECOGNITION_TIMEOUT_MS} ms"), out)
            }
        }
    }

    /// The caller has the floor again after an ignored utterance: wait for
    /// what is left of the no-input time, never longer.
    pub(super) fn resume_no_input(&mut self, now: u64) {
        let timeout = self.current_menu_def().map_or(0, |m| m.no_input_timeout_ms);
        self.set_timer((self.listening_since + timeout).max(now), TimerKind::NoInput);
    }

    /// Everything queued has been played.
    pub(super) fn prompts_done(&mut self, now: u64, out: &mut Vec<Output>) {
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
}
