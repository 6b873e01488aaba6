//! What a key press does in each state of the call.
use super::*;

impl Call {
    pub(super) fn on_dtmf(&mut self, now: u64, key: char, out: &mut Vec<Output>) {
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
        self.held = None;
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
}
