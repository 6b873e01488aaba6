//! Endpointing: from per-window speech probabilities to speech start,
//! lulls, pauses and finished utterances. Pure: no network and no clock
//! here (the probabilities come from whoever scores the windows, time is
//! counted in samples), so every threshold is testable with scripted
//! probabilities.
//!
//! The driver feeds audio with [`Endpointer::push`], which hands back the
//! whole 32 ms windows now ready; it scores each (Silero, directly or
//! batched with other calls' windows) and reports the probabilities in
//! order with [`Endpointer::scored`], which answers with [`VadEvent`]s.
use std::collections::VecDeque;
use std::sync::Arc;

use super::{EndpointConfig, Utterance, VadEvent};

pub const RATE: u64 = 16_000;
/// Samples per detector window at 16 kHz (fixed by the Silero model).
pub const WINDOW: usize = 512;

/// One window of 16 kHz audio waiting for its speech probability.
pub type Window = Box<[f32; WINDOW]>;

pub struct Endpointer {
    cfg: EndpointConfig,
    /// Samples not yet forming a whole window.
    pending: Vec<f32>,
    /// Recent audio: the padding before an onset, or the whole utterance.
    /// It may run ahead of `processed` by the windows not yet scored.
    history: VecDeque<f32>,
    /// Absolute sample index of history[0].
    history_start: u64,
    /// Absolute index of the first sample of the next window to be scored.
    processed: u64,
    speech: Option<Speech>,
    /// A prompt is playing: speech must clear the barge-in threshold.
    prompt_playing: bool,
    /// What the driver must do with the network's state before it scores
    /// the next window (`EndpointConfig::restart_when_listening`).
    switch: Option<StreamSwitch>,
    /// The network has heard the caller's floor with a fresh state since
    /// the last [`StreamSwitch::Fresh`]; its state from the prompt is aside.
    listening_fresh: bool,
}

/// A change of the network's recurrent state, decided here and carried out
/// by whoever scores the windows (see [`Endpointer::take_switch`]).
///
/// While a prompt plays, the state learns the line's noise as background:
/// that keeps noise from cutting the prompt off, but after a few seconds of
/// a noisy line it also hides a quiet answer. So the caller is heard with a
/// fresh state, and barge-in on the next prompt is judged again by the
/// state that learnt the line, not by one that has heard only a second or
/// two of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamSwitch {
    /// The caller got the floor, in silence: put the state aside and start
    /// from a fresh one.
    Fresh,
    /// A prompt started, in silence: take back the state put aside.
    Resume,
}

struct Speech {
    start: u64,
    /// Samples of speech seen (to tell clicks from words).
    voiced: u64,
    announced: bool,
    silence_since: Option<u64>,
    /// A lull was reported for the current stretch of silence.
    lull: bool,
    /// The current stretch of silence reached `pause_ms`.
    paused: bool,
}

fn samples(ms: u64) -> u64 {
    ms * RATE / 1000
}

fn ms(samples: u64) -> u64 {
    samples * 1000 / RATE
}

impl Endpointer {
    pub fn new(cfg: EndpointConfig) -> Self {
        Endpointer {
            cfg,
            pending: Vec::new(),
            history: VecDeque::new(),
            history_start: 0,
            processed: 0,
            speech: None,
            prompt_playing: false,
            switch: None,
            listening_fresh: false,
        }
    }

    /// Takes 16 kHz audio; returns the windows it completes, to be scored
    /// and reported, in order, with [`Endpointer::scored`].
    pub fn push(&mut self, samples: &[f32]) -> Vec<Window> {
        self.history.extend(samples.iter().copied());
        self.pending.extend_from_slice(samples);
        let mut windows = Vec::new();
        let mut offset = 0;
        while self.pending.len() - offset >= WINDOW {
            let mut w = Box::new([0.0; WINDOW]);
            w.copy_from_slice(&self.pending[offset..offset + WINDOW]);
            windows.push(w);
            offset += WINDOW;
        }
        self.pending.drain(..offset);
        windows
    }

    /// End of audio: the samples short of a whole window, padded with
    /// silence into one (None when there are none).
    pub fn tail(&mut self) -> Option<Window> {
        if self.pending.is_empty() {
            return None;
        }
        let real = self.pending.len();
        self.history.extend(std::iter::repeat_n(0.0, WINDOW - real));
        let mut w = Box::new([0.0; WINDOW]);
        w[..real].copy_from_slice(&self.pending);
        self.pending.clear();
        Some(w)
    }

    /// End of audio, after the tail was scored: closes an utterance still
    /// open as if the caller had gone silent.
    pub fn close(&mut self) -> Vec<VadEvent> {
        let mut events = Vec::new();
        let Some(sp) = self.speech.as_mut() else { return events };
        if sp.silence_since.is_none() {
            sp.silence_since = Some(self.processed);
        }
        let gap = samples(self.cfg.min_silence_ms) as usize + WINDOW;
        let mut fed = 0;
        while self.speech.is_some() && fed < gap {
            self.history.extend(std::iter::repeat_n(0.0, WINDOW));
            events.extend(self.scored(0.0));
            fed += WINDOW;
        }
        events
    }

    /// Whether a prompt is playing to the caller now (see
    /// `EndpointConfig::threshold` and `listening_threshold`).
    pub fn set_prompt_playing(&mut self, playing: bool) {
        // Speech in progress keeps its state: switching mid-word would cut
        // the utterance the caller is saying over the prompt's edge.
        let quiet = self.speech.is_none() && self.cfg.restart_when_listening;
        if self.prompt_playing && !playing && quiet {
            self.listening_fresh = true;
            // A prompt so short that no window was scored in it: the state
            // aside is still the one to keep.
            self.switch = match self.switch {
                Some(StreamSwitch::Resume) => None,
                _ => Some(StreamSwitch::Fresh),
            };
        } else if !self.prompt_playing && playing && quiet && self.listening_fresh {
            self.listening_fresh = false;
            // A floor so short that no window was scored in it: the state
            // was never put aside, so there is nothing to take back.
            self.switch = match self.switch {
                Some(StreamSwitch::Fresh) => None,
                _ => Some(StreamSwitch::Resume),
            };
        }
        self.prompt_playing = playing;
    }

    /// What to do with the network's state before scoring the next window,
    /// once per change.
    pub fn take_switch(&mut self) -> Option<StreamSwitch> {
        self.switch.take()
    }

    /// The listener acted on a pause: forget the utterance in progress, so
    /// it is not reported again when the silence gets long enough.
    pub fn end_utterance(&mut self) {
        self.speech = None;
        self.trim_idle_history();
    }

    /// The speech probability of the next window handed out by
    /// [`Endpointer::push`] or [`Endpointer::tail`].
    pub fn scored(&mut self, prob: f32) -> Vec<VadEvent> {
        let mut events = Vec::new();
        let win_start = self.processed;
        self.processed += WINDOW as u64;
        let now = self.processed;
        let cfg = &self.cfg;
        let threshold = if self.prompt_playing { cfg.threshold } else { cfg.listening_threshold };
        // Hysteresis: once in speech, only a clearly lower probability
        // counts as silence. Listening harder changes when speech starts,
        // not when it ends: a lower end threshold would keep the caller
        // waiting a window longer after most words.
        let silence_threshold = (cfg.threshold - 0.15).min(threshold - 0.05).max(0.01);
        let min_speech = samples(cfg.min_speech_ms);
        let (min_silence, max_utterance, pause) =
            (samples(cfg.min_silence_ms), samples(cfg.max_utterance_ms), samples(cfg.pause_ms));
        let lull = cfg.lull_ms().map(samples);

        match self.speech.as_mut() {
            None if prob >= threshold => {
                self.speech = Some(Speech {
                    start: win_start,
                    voiced: WINDOW as u64,
                    announced: false,
                    silence_since: None,
                    lull: false,
                    paused: false,
                });
            }
            None => {}
            Some(sp) => {
                if prob >= threshold {
                    sp.voiced += WINDOW as u64;
                    sp.silence_since = None;
                    if sp.lull {
                        (sp.lull, sp.paused) = (false, false);
                        events.push(VadEvent::Resume { at_ms: ms(win_start) });
                    }
                } else if prob < silence_threshold && sp.silence_since.is_none() {
                    sp.silence_since = Some(win_start);
                }
            }
        }
        let Some(sp) = self.speech.as_mut() else {
            self.trim_idle_history();
            return events;
        };
        if !sp.announced && sp.voiced >= min_speech {
            sp.announced = true;
            events.push(VadEvent::SpeechStart { at_ms: ms(sp.start) });
        }
        let too_long = now - sp.start >= max_utterance;
        let ended = sp.silence_since.filter(|&s| now - s >= min_silence);
        if ended.is_none() && !too_long {
            let (Some(quiet_since), Some(lull), true) = (sp.silence_since, lull, sp.voiced >= min_speech) else {
                return events;
            };
            let quiet = now - quiet_since;
            if !sp.lull && quiet >= lull {
                sp.lull = true;
                let start = sp.start;
                events.push(VadEvent::Lull(self.utterance(start, quiet_since)));
            }
            let Some(sp) = self.speech.as_mut() else { return events };
            if sp.lull && !sp.paused && quiet >= pause {
                sp.paused = true;
                events.push(VadEvent::Pause { at_ms: ms(now) });
            }
            return events;
        }
        let speech_end = ended.unwrap_or(now);
        let (start, voiced) = (sp.start, sp.voiced);
        self.speech = None;
        if voiced >= min_speech {
            events.push(VadEvent::Utterance(self.utterance(start, speech_end)));
        }
        self.trim_idle_history();
        events
    }

    /// The audio from `start` to `speech_end`, padded as configured.
    fn utterance(&self, start: u64, speech_end: u64) -> Utterance {
        let pad = samples(self.cfg.speech_pad_ms);
        let from = start.saturating_sub(pad).max(self.history_start);
        let to = (speech_end + pad).min(self.history_start + self.history.len() as u64).max(from);
        let samples: Vec<f32> = self
            .history
            .range((from - self.history_start) as usize..(to - self.history_start) as usize)
            .copied()
            .collect();
        Utterance { start_ms: ms(start), end_ms: ms(speech_end), samples: Arc::new(samples) }
    }

    /// Outside speech, keep just enough audio for the padding before an onset.
    fn trim_idle_history(&mut self) {
        if self.speech.is_some() {
            return;
        }
        let keep_from = self.processed.saturating_sub(samples(self.cfg.speech_pad_ms) + WINDOW as u64);
        if keep_from > self.history_start {
            let drop = ((keep_from - self.history_start) as usize).min(self.history.len());
            self.history.drain(..drop);
            self.history_start += drop as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `windows` windows of audio at level `level` scored `prob`.
    fn feed(e: &mut Endpointer, windows: usize, level: f32, prob: f32) -> Vec<VadEvent> {
        let mut events = Vec::new();
        for _ in 0..windows {
            for _ in e.push(&[level; WINDOW]) {
                events.extend(e.scored(prob));
            }
        }
        events
    }

    fn names(events: &[VadEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                VadEvent::SpeechStart { at_ms } => format!("start@{at_ms}"),
                VadEvent::Utterance(u) => {
                    format!("utterance {}..{} ({} samples)", u.start_ms, u.end_ms, u.samples.len())
                }
                VadEvent::Lull(u) => format!("lull {}..{}", u.start_ms, u.end_ms),
                VadEvent::Pause { at_ms } => format!("pause@{at_ms}"),
                VadEvent::Resume { at_ms } => format!("resume@{at_ms}"),
                VadEvent::Failed { reason } => format!("failed {reason}"),
            })
            .collect()
    }

    fn cfg() -> EndpointConfig {
        EndpointConfig { pause_ms: 0, ..EndpointConfig::default() }
    }

    #[test]
    fn a_word_then_silence_is_one_padded_utterance_after_the_minimum_silence() {
        let mut e = Endpointer::new(cfg());
        let mut events = feed(&mut e, 10, 0.0, 0.0); // 320 ms quiet
        events.extend(feed(&mut e, 10, 0.5, 0.9)); // 320 ms of speech from 320 ms
        assert_eq!(names(&events), ["start@320"]);
        // 500 ms of silence end it: 16 windows (512 ms) of quiet.
        let tail = feed(&mut e, 15, 0.0, 0.0);
        assert!(tail.is_empty(), "ended early: {:?}", names(&tail));
        let end = feed(&mut e, 1, 0.0, 0.0);
        // 200 ms of padding either side: 640 - 320 + 400 ms of audio.
        assert_eq!(names(&end), ["utterance 320..640 (11520 samples)"]);
    }

    #[test]
    fn a_click_shorter_than_the_minimum_speech_is_not_an_utterance() {
        let mut e = Endpointer::new(cfg());
        let mut events = feed(&mut e, 2, 0.5, 0.9); // 64 ms < 100 ms
        events.extend(feed(&mut e, 40, 0.0, 0.0));
        assert!(events.is_empty(), "{:?}", names(&events));
    }

    #[test]
    fn while_a_prompt_plays_speech_must_clear_the_barge_in_threshold() {
        let mut e = Endpointer::new(cfg());
        e.set_prompt_playing(true);
        // 0.45 is speech when listening (0.4), not during a prompt (0.5).
        assert!(feed(&mut e, 10, 0.5, 0.45).is_empty());
        e.set_prompt_playing(false);
        assert_eq!(names(&feed(&mut e, 4, 0.5, 0.45)), ["start@320"]);
    }

    #[test]
    fn the_caller_is_heard_afresh_and_the_next_prompt_by_the_state_that_learnt_the_line() {
        let mut e = Endpointer::new(cfg());
        e.set_prompt_playing(true);
        feed(&mut e, 10, 0.0, 0.1); // line noise under the prompt
        assert_eq!(e.take_switch(), None, "nothing to change while the prompt plays");
        e.set_prompt_playing(false);
        assert_eq!(e.take_switch(), Some(StreamSwitch::Fresh));
        assert_eq!(e.take_switch(), None, "once per hand-over");
        e.set_prompt_playing(false);
        feed(&mut e, 10, 0.0, 0.1);
        assert_eq!(e.take_switch(), None, "the caller already had the floor");
        e.set_prompt_playing(true);
        assert_eq!(e.take_switch(), Some(StreamSwitch::Resume));
        e.set_prompt_playing(true);
        assert_eq!(e.take_switch(), None, "once per prompt");
    }

    #[test]
    fn a_floor_or_prompt_too_short_to_score_changes_nothing() {
        let mut e = Endpointer::new(cfg());
        e.set_prompt_playing(true);
        e.set_prompt_playing(false);
        e.set_prompt_playing(true);
        assert_eq!(e.take_switch(), None, "the state was never put aside");
        e.set_prompt_playing(false);
        assert_eq!(e.take_switch(), Some(StreamSwitch::Fresh));
        e.set_prompt_playing(true);
        e.set_prompt_playing(false);
        assert_eq!(e.take_switch(), None, "the state aside is still the prompt's");
    }

    #[test]
    fn speech_over_the_edge_of_a_prompt_keeps_the_networks_state() {
        let mut e = Endpointer::new(cfg());
        e.set_prompt_playing(true);
        assert_eq!(names(&feed(&mut e, 5, 0.5, 0.9)), ["start@0"]); // a barge-in
        e.set_prompt_playing(false);
        assert_eq!(e.take_switch(), None, "a fresh state would cut the word being said");
        let mut e = Endpointer::new(cfg());
        e.set_prompt_playing(true);
        e.set_prompt_playing(false);
        assert_eq!(e.take_switch(), Some(StreamSwitch::Fresh));
        feed(&mut e, 5, 0.5, 0.9); // the caller speaks as the next prompt starts
        e.set_prompt_playing(true);
        assert_eq!(e.take_switch(), None, "the word keeps the state that is hearing it");
        let off = EndpointConfig { restart_when_listening: false, ..cfg() };
        let mut e = Endpointer::new(off);
        e.set_prompt_playing(true);
        e.set_prompt_playing(false);
        e.set_prompt_playing(true);
        assert_eq!(e.take_switch(), None, "restart_when_listening = false");
    }

    #[test]
    fn a_short_quiet_reports_a_lull_then_a_pause_and_speech_after_it_resumes() {
        let mut e = Endpointer::new(EndpointConfig::default()); // pause 192 ms, lull at 128
        let mut events = feed(&mut e, 10, 0.5, 0.9);
        events.extend(feed(&mut e, 6, 0.0, 0.0));
        assert_eq!(names(&events), ["start@0", "lull 0..320", "pause@512"]);
        assert_eq!(names(&feed(&mut e, 1, 0.5, 0.9)), ["resume@512"]);
    }

    #[test]
    fn after_acting_on_a_pause_the_utterance_is_not_reported_again() {
        let mut e = Endpointer::new(EndpointConfig::default());
        feed(&mut e, 10, 0.5, 0.9);
        feed(&mut e, 6, 0.0, 0.0);
        e.end_utterance();
        assert!(feed(&mut e, 30, 0.0, 0.0).is_empty());
    }

    #[test]
    fn speech_running_to_the_end_of_the_audio_is_closed_by_close() {
        let mut e = Endpointer::new(cfg());
        feed(&mut e, 10, 0.5, 0.9);
        assert!(e.push(&[0.5; 100]).is_empty());
        let tail = e.tail().expect("a partial window");
        assert_eq!(tail[99], 0.5);
        assert_eq!(tail[100], 0.0);
        let mut events = e.scored(0.9);
        events.extend(e.close());
        assert_eq!(names(&events), ["utterance 0..352 (8832 samples)"]);
        assert!(e.tail().is_none());
    }

    #[test]
    fn a_caller_who_never_stops_is_cut_at_the_maximum_utterance() {
        let mut e = Endpointer::new(EndpointConfig { max_utterance_ms: 1_000, ..cfg() });
        let events = feed(&mut e, 40, 0.5, 0.9);
        let cut: Vec<_> = names(&events).into_iter().filter(|n| n.starts_with("utterance")).collect();
        assert_eq!(cut.len(), 1, "{cut:?}");
        assert!(cut[0].starts_with("utterance 0..1024"), "{cut:?}");
    }

    #[test]
    fn idle_audio_is_not_kept_beyond_the_padding() {
        let mut e = Endpointer::new(cfg());
        feed(&mut e, 1_000, 0.0, 0.0); // 32 s of quiet
        assert!(e.history.len() <= samples(e.cfg.speech_pad_ms) as usize + 2 * WINDOW);
    }
}
