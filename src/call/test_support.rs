//! Fixtures for tests of the call machine and the replay driver: a
//! dialplan built in Rust, a loudness voice detector for synthetic audio,
//! and a word-containment intent matcher.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::asr::{Utterance, VadEvent, VoiceDetector};
use crate::dialplan::*;

fn prompt(text: &str) -> Prompt {
    Prompt { text: text.into(), wav: None }
}

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn option(intent: &str, phrases: &[&str], key: char, action: Action) -> MenuOption {
    MenuOption {
        intent: intent.into(),
        phrases: words(phrases),
        dtmf: Some(key),
        action,
        slots: OptionSlots::default(),
    }
}

fn slot_choice(value: &str, phrases: &[&str], dtmf: Option<char>) -> SlotChoice {
    SlotChoice { value: value.into(), phrases: words(phrases), dtmf }
}

pub fn transfer(extension: &str) -> Transfer {
    Transfer { extension: extension.into(), context: None }
}

pub const OPERATOR: &str = "1000";

/// Main menu: billing (1, goes to the billing menu), support (2, transfer
/// 2000), balance (3, collect a 4-8 digit account number with read-back,
/// then transfer 3000), hours (4, a message, then back to the menu),
/// outage (5, which service: internet 1, TV 2, phone 3, then transfer
/// 4000);
/// globals agent (0), repeat (*), back, main menu, goodbye. The billing
/// menu does not allow barge-in: payments (1, transfer 2100), refunds (2,
/// transfer 2200).
pub fn test_dialplan() -> Dialplan {
    let main = Menu {
        id: "main".into(),
        prompt: prompt("Welcome. Say billing, support, balance or hours."),
        no_input_prompt: prompt("Sorry, I did not hear you. Say billing, support, balance or hours, or press 1 to 4."),
        no_match_prompt: prompt("Sorry, I did not get that. Say billing, support, balance or hours, or press 1 to 4."),
        barge_in: true,
        no_input_timeout_ms: 5_000,
        // Unfinished answers are answered at the end of the utterance, so
        // each test shows its own step; the tests of holding them set it.
        incomplete_timeout_ms: 0,
        max_no_input: 2,
        max_no_match: 2,
        escalation: Action::Transfer(transfer(OPERATOR)),
        options: vec![
            option("billing", &["billing", "bill", "invoice"], '1', Action::Goto("billing".into())),
            option("support", &["support", "technical support"], '2', Action::Transfer(transfer("2000"))),
            option(
                "balance",
                &["balance", "account balance"],
                '3',
                Action::Collect(Collect {
                    variable: "account".into(),
                    prompt: prompt("Please say or key in your account number, then press pound."),
                    min_digits: 4,
                    max_digits: 8,
                    choices: Vec::new(),
                    confirm: true,
                    then: Box::new(Action::Transfer(transfer("3000"))),
                }),
            ),
            option(
                "outage",
                &["outage", "report an outage"],
                '5',
                Action::Collect(Collect {
                    variable: "service".into(),
                    prompt: prompt("Which service is down: internet, TV or phone?"),
                    min_digits: 1,
                    max_digits: 16,
                    choices: vec![
                        slot_choice("internet", &["internet", "broadband"], Some('1')),
                        slot_choice("tv", &["TV", "television"], Some('2')),
                        slot_choice("phone", &["phone", "landline"], Some('3')),
                    ],
                    confirm: false,
                    then: Box::new(Action::Transfer(transfer("4000"))),
                }),
            ),
            option(
                "hours",
                &["hours", "opening hours"],
                '4',
                Action::Say { message: prompt("We are open nine to five."), then: AfterSay::Return },
            ),
        ],
        globals: true,
        spoken_keys: true,
    };
    let billing = Menu {
        id: "billing".into(),
        prompt: prompt("Billing. Say payments or refunds."),
        no_input_prompt: prompt("Say payments or refunds, or press 1 or 2."),
        no_match_prompt: prompt("Sorry. Say payments or refunds, or press 1 or 2."),
        barge_in: false,
        no_input_timeout_ms: 4_000,
        incomplete_timeout_ms: 0,
        max_no_input: 1,
        max_no_match: 1,
        escalation: Action::Transfer(transfer(OPERATOR)),
        options: vec![
            option("payments", &["payments", "pay"], '1', Action::Transfer(transfer("2100"))),
            option("refunds", &["refunds", "refund"], '2', Action::Transfer(transfer("2200"))),
        ],
        globals: true,
        spoken_keys: true,
    };
    let global = |kind, intent: &str, phrases: &[&str], dtmf| GlobalIntent {
        kind,
        intent: intent.into(),
        phrases: words(phrases),
        dtmf,
    };
    Dialplan {
        name: "test".into(),
        source: PathBuf::from("test.toml"),
        version: "test".into(),
        start_menu: "main".into(),
        language: crate::asr::Language::default(),
        operator: Transfer { extension: OPERATOR.into(), context: Some("agents".into()) },
        thresholds: Thresholds { accept: 0.8, confirm: 0.5 },
        menus: BTreeMap::from([("main".into(), main), ("billing".into(), billing)]),
        globals: vec![
            global(GlobalKind::Operator, "agent", &["agent", "operator", "human"], Some('0')),
            global(GlobalKind::Repeat, "repeat", &["repeat", "say again"], Some('*')),
            global(GlobalKind::Back, "back", &["back", "go back"], None),
            global(GlobalKind::MainMenu, "main_menu", &["main menu"], None),
            global(GlobalKind::Goodbye, "goodbye", &["goodbye", "bye"], None),
        ],
        messages: Messages {
            confirm_intent: "Did you mean {}?".into(),
            confirm_digits: "I heard {}. Is that right?".into(),
            dtmf_only: "Sorry, speech recognition is not available. Please use your keypad.".into(),
            transferring: "Please hold while I transfer you.".into(),
            transfer_failed: "Sorry, the transfer failed.".into(),
            goodbye: "Goodbye.".into(),
            confirm_request: "{}, right?".into(),
        },
    }
}

/// Finds speech by loudness: the synthetic audio of the call-machine tests
/// is either digital silence or a loud tone, so a level threshold is exact.
pub struct LoudnessVad {
    samples_seen: u64,
    speech_start: Option<u64>,
    silent_samples: u64,
    announced: bool,
    buffer: Vec<f32>,
    /// Silence (samples) after which a lull and a pause are reported;
    /// None = never.
    lull: Option<u64>,
    pause: Option<u64>,
    lulled: bool,
    paused: bool,
    /// Told by the call: a prompt plays, so only louder sound is speech
    /// (as the real detector's stricter barge-in threshold).
    prompt_playing: bool,
    /// Samples after which the detector breaks (as Silero does when its
    /// network fails): reports `Failed` once, then nothing.
    fail_after: Option<u64>,
    failed: bool,
}

const RATE: u64 = 16_000;
const MIN_SPEECH: u64 = RATE / 10; // 100 ms
const END_SILENCE: u64 = RATE * 3 / 10; // 300 ms
const MAX_BUFFER: usize = RATE as usize * 20;

impl LoudnessVad {
    pub fn new() -> Self {
        LoudnessVad {
            samples_seen: 0,
            speech_start: None,
            silent_samples: 0,
            announced: false,
            buffer: Vec::new(),
            lull: None,
            pause: None,
            lulled: false,
            paused: false,
            prompt_playing: false,
            fail_after: None,
            failed: false,
        }
    }

    /// Breaks after `ms` of audio, as a detector whose network fails.
    pub fn failing_after(ms: u64) -> Self {
        LoudnessVad { fail_after: Some(ms * RATE / 1000), ..LoudnessVad::new() }
    }

    /// Also reports a lull and a pause after `ms` of silence, and speech
    /// resuming.
    pub fn with_pause(ms: u64) -> Self {
        LoudnessVad::with_lull_and_pause(ms, ms)
    }

    /// Reports a lull after `lull_ms` of silence and a pause after `pause_ms`.
    pub fn with_lull_and_pause(lull_ms: u64, pause_ms: u64) -> Self {
        LoudnessVad { lull: Some(lull_ms * RATE / 1000), pause: Some(pause_ms * RATE / 1000), ..LoudnessVad::new() }
    }
}

impl VoiceDetector for LoudnessVad {
    fn accept(&mut self, samples: &[f32]) -> Vec<VadEvent> {
        let mut events = Vec::new();
        if self.failed {
            return events;
        }
        if self.fail_after.is_some_and(|at| self.samples_seen >= at) {
            self.failed = true;
            events.push(VadEvent::Failed { reason: "network failed".into() });
            return events;
        }
        let loud = crate::audio::rms_dbfs(samples) > if self.prompt_playing { -20.0 } else { -30.0 };
        let len = samples.len() as u64;
        match (self.speech_start, loud) {
            (None, true) => {
                self.speech_start = Some(self.samples_seen);
                self.silent_samples = 0;
                self.announced = false;
                self.buffer.clear();
            }
            (Some(_), true) => {
                if self.lulled {
                    (self.lulled, self.paused) = (false, false);
                    events.push(VadEvent::Resume { at_ms: self.samples_seen * 1000 / RATE });
                }
                self.silent_samples = 0;
            }
            (Some(_), false) => self.silent_samples += len,
            (None, false) => {}
        }
        self.samples_seen += len;
        if let Some(start) = self.speech_start {
            if self.buffer.len() + samples.len() <= MAX_BUFFER {
                self.buffer.extend_from_slice(samples);
            }
            if !self.announced && self.samples_seen - start - self.silent_samples >= MIN_SPEECH {
                self.announced = true;
                events.push(VadEvent::SpeechStart { at_ms: start * 1000 / RATE });
            }
            let due =
                |at: Option<u64>| at.is_some_and(|a| self.silent_samples >= a && self.silent_samples < END_SILENCE);
            if due(self.lull) && !self.lulled && self.announced {
                self.lulled = true;
                events.push(VadEvent::Lull(Utterance {
                    start_ms: start * 1000 / RATE,
                    end_ms: (self.samples_seen - self.silent_samples) * 1000 / RATE,
                    samples: Arc::new(self.buffer.clone()),
                }));
            }
            if due(self.pause) && self.lulled && !self.paused {
                self.paused = true;
                events.push(VadEvent::Pause { at_ms: self.samples_seen * 1000 / RATE });
            }
            if self.silent_samples >= END_SILENCE {
                (self.lulled, self.paused) = (false, false);
                let end = self.samples_seen - self.silent_samples;
                self.speech_start = None;
                if self.announced {
                    events.push(VadEvent::Utterance(Utterance {
                        start_ms: start * 1000 / RATE,
                        end_ms: end * 1000 / RATE,
                        samples: Arc::new(std::mem::take(&mut self.buffer)),
                    }));
                }
            }
        }
        events
    }

    fn flush(&mut self) -> Vec<VadEvent> {
        Vec::new()
    }

    fn set_prompt_playing(&mut self, playing: bool) {
        self.prompt_playing = playing;
    }

    fn end_utterance(&mut self) {
        self.speech_start = None;
        (self.lulled, self.paused) = (false, false);
        self.buffer.clear();
    }
}
