//! The call machine (`Call::handle`) under any sequence of inputs, with the
//! test dialplan and loudness detector of `call::test_support`.
use std::collections::VecDeque;
use std::sync::Arc;

use super::Entropy;
use crate::asr::{Recognition, Utterance, VadEvent};
use crate::call::test_support::{test_dialplan, LoudnessVad};
use crate::call::{Call, Input, Output, PlaybackId, VoiceFeed};

/// Inputs per call at most (the old hand-written loop sent 250).
const MAX_INPUTS: usize = 250;
/// Steps a caller who stays silent is given to be transferred or hung up:
/// each step ends a prompt or fires a timer, and no menu of the test
/// dialplan needs more than a few no-input rounds to escalate.
const QUIET_STEPS: usize = 40;
/// Lines of the call kept to explain a failure.
const TRANSCRIPT: usize = 24;

const KEYS: &[char] = &['0', '1', '2', '3', '4', '5', '9', '*', '#', 'A', 'D', 'x', ' ', 'é'];
const LABELS: &[Option<&str>] = &[
    None,
    Some("billing"),
    Some("agent"),
    Some("yes"),
    Some("no"),
    Some("4512"),
    Some("45120000000"),
    Some("8"),
    Some("zzz"),
    Some("back"),
    Some("internet"),
    Some(""),
];
const TEXTS: &[&str] =
    &["", "billing", "four five one two", "yes", "no", "noise", "go back", "repeat", "bye", "operator"];
const CONFIDENCES: &[f32] = &[0.0, 0.3, 0.49, 0.5, 0.79, 0.8, 1.0, -1.0, 2.0, f32::NAN, f32::INFINITY];
const LEVELS: &[f32] = &[0.0, 0.0, 0.3, 0.3, 0.01, 0.1, 1.0];

/// Drives one call like the server does, keeping what a PBX and a
/// recogniser would need to answer, and the last lines of the call.
struct Driver {
    call: Call,
    /// The loudness detector, run outside the machine as the server runs Silero.
    voice: VoiceFeed<LoudnessVad>,
    now: u64,
    started: bool,
    last_play: Option<PlaybackId>,
    last_request: Option<u64>,
    transcript: VecDeque<String>,
}

impl Driver {
    /// `incomplete_ms`: how long each menu holds words it cannot act on;
    /// `max_digits`: the longest account number (1: a one-key step, whose
    /// digit is taken at the caller's first pause).
    fn new(incomplete_ms: u64, max_digits: usize) -> Driver {
        let mut plan = test_dialplan();
        for menu in plan.menus.values_mut() {
            menu.incomplete_timeout_ms = incomplete_ms;
            for option in &mut menu.options {
                if let crate::dialplan::Action::Collect(collect) = &mut option.action {
                    if collect.choices.is_empty() {
                        collect.min_digits = collect.min_digits.min(max_digits);
                        collect.max_digits = max_digits;
                    }
                }
            }
        }
        let call = Call::new(Arc::new(plan), Arc::new(crate::intent::TextMatcher::default()));
        Driver {
            call,
            voice: VoiceFeed::new(LoudnessVad::new()),
            now: 0,
            started: false,
            last_play: None,
            last_request: None,
            transcript: VecDeque::new(),
        }
    }

    fn note(&mut self, line: String) {
        if self.transcript.len() == TRANSCRIPT {
            self.transcript.pop_front();
        }
        self.transcript.push_back(line);
    }

    fn send(&mut self, input: Input) -> Vec<Output> {
        let what = match &input {
            Input::Voice(VadEvent::Utterance(u)) => format!("utterance {}..{} ms", u.start_ms, u.end_ms),
            Input::Voice(VadEvent::Lull(u)) => format!("lull {}..{} ms", u.start_ms, u.end_ms),
            other => format!("{other:?}"),
        };
        self.started |= matches!(input, Input::Start);
        let outputs = self.call.handle(self.now, input);
        self.note(format!("{} {what}", self.now));
        for o in &outputs {
            match o {
                Output::Play { id, .. } => self.last_play = Some(*id),
                Output::Recognize { request, .. } => self.last_request = Some(*request),
                Output::ForgetUtterance => self.voice.forget_utterance(),
                _ => {}
            }
            let line = match o {
                Output::Recognize { request, utterance, .. } => {
                    format!("  -> recognize {request} ({}..{} ms)", utterance.start_ms, utterance.end_ms)
                }
                other => format!("  -> {other:?}"),
            };
            self.note(line);
        }
        outputs
    }

    /// `ms` of audio at `level` in 20 ms frames, as a PBX streams it.
    fn audio(&mut self, ms: u64, level: f32) {
        for _ in 0..ms / 20 {
            self.now += 20;
            let frame: Vec<f32> = (0..320).map(|n| if n % 2 == 0 { level } else { -level }).collect();
            self.hear(&frame);
            self.check_never_silent();
        }
    }

    /// Runs the detector over caller audio and tells the machine what it heard.
    fn hear(&mut self, samples: &[f32]) {
        for input in self.voice.hear(&self.call, self.now, samples) {
            self.send(input);
        }
    }

    /// Whenever the call is not over, a timer runs: a prompt that is never
    /// reported finished, a recogniser that never answers, a caller who
    /// says nothing, all end in something happening.
    fn check_never_silent(&self) {
        if self.started && !self.call.is_finished() {
            assert!(
                self.call.next_deadline().is_some(),
                "silent with no timer running; the call so far:\n{}",
                self.story()
            );
        }
    }

    fn story(&self) -> String {
        self.transcript.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    fn random_input(&mut self, e: &mut Entropy) -> Option<Input> {
        let request = self.last_request.unwrap_or(0);
        Some(match e.below(12) {
            0 => Input::Dtmf(*e.pick(KEYS)),
            1 | 2 => {
                // Speech (or noise) then the quiet that ends an utterance.
                let level = *e.pick(LEVELS);
                self.audio(e.below(1_000) as u64, level);
                self.audio(*e.pick(&[0, 100, 400, 1_000]), 0.0);
                return None;
            }
            3 => {
                self.hear(&vec![*e.pick(LEVELS); e.below(2_000)]);
                return None;
            }
            4 | 5 => Input::Recognized {
                // The current request, the next one, or a stale one.
                request: (request + e.below(2) as u64).saturating_sub(e.below(2) as u64),
                result: Recognition {
                    text: e.pick(TEXTS).to_string(),
                    choice: e.pick(LABELS).map(String::from),
                    confidence: *e.pick(CONFIDENCES),
                    ..Default::default()
                },
            },
            6 => Input::PlaybackFinished(
                self.last_play.unwrap_or(0).saturating_sub(e.below(2) as u64) + e.below(2) as u64 * 1000,
            ),
            7 => Input::Tick,
            8 if e.one_in(3) => Input::RecognitionFailed { request, reason: "recogniser overloaded".into() },
            8 => Input::TransferFailed { reason: "busy".into() },
            9 if e.one_in(8) => Input::Hangup,
            9 if e.one_in(8) => Input::Start,
            // Detector events in any order, as a broken detector might
            // send them.
            10 if e.one_in(2) => Input::Voice(random_voice_event(e, self.now)),
            _ => {
                // Time passes to the next timer, or a little, or a lot.
                match e.below(3) {
                    0 => self.now = self.call.next_deadline().unwrap_or(self.now),
                    1 => self.now += e.below(60_000) as u64,
                    _ => self.now += e.below(3_000) as u64,
                }
                Input::Tick
            }
        })
    }
}

fn random_voice_event(e: &mut Entropy, now: u64) -> VadEvent {
    let at_ms = now.saturating_sub(e.below(5_000) as u64);
    let utterance = |e: &mut Entropy| Utterance {
        start_ms: at_ms,
        end_ms: at_ms + e.below(3_000) as u64,
        samples: Arc::new(vec![0.1; e.below(8_000)]),
    };
    match e.below(6) {
        0 => VadEvent::SpeechStart { at_ms },
        1 => VadEvent::Utterance(utterance(e)),
        2 => VadEvent::Lull(utterance(e)),
        3 => VadEvent::Pause { at_ms },
        4 => VadEvent::Resume { at_ms },
        _ => VadEvent::Failed { reason: "network failed".into() },
    }
}

/// How the PBX behaves once the caller goes quiet.
#[derive(Debug, Clone, Copy)]
enum Quiet {
    /// Reports each prompt's end and the server ticks at each deadline.
    ReportsPlayback,
    /// Never reports playback: the machine's own guard must carry on.
    NeverReports,
    /// Streams silent audio frames instead of ticks.
    StreamsSilence,
}

/// Any inputs at non-decreasing times: never a panic, never a caller left
/// in silence with no timer running, and once the caller stays quiet the
/// call ends (transfer or hang-up) within a few prompts and timeouts.
pub fn fuzz_call(data: &[u8]) {
    let mut e = Entropy::new(data);
    let mut d = Driver::new(*e.pick(&[0, 2_000]), *e.pick(&[8, 1]));
    if e.one_in(4) {
        // Inputs before the call is connected are ignored, not fatal.
        for _ in 0..e.below(4) {
            if let Some(input) = d.random_input(&mut e) {
                d.send(input);
            }
        }
    }
    let already = d.started;
    let out = d.send(Input::Start);
    let greeted = out.iter().any(|o| matches!(o, Output::Play { .. }));
    assert!(greeted || already || d.call.is_finished(), "no prompt at start:\n{}", d.story());
    for _ in 0..MAX_INPUTS {
        if e.is_empty() || d.call.is_finished() {
            break;
        }
        d.now += e.below(3_000) as u64;
        if let Some(input) = d.random_input(&mut e) {
            d.send(input);
        }
        d.check_never_silent();
    }
    let quiet = *e.pick(&[Quiet::ReportsPlayback, Quiet::NeverReports, Quiet::StreamsSilence]);
    for _ in 0..QUIET_STEPS {
        if d.call.is_finished() {
            break;
        }
        if let (Quiet::ReportsPlayback, Some(id)) = (quiet, d.last_play) {
            d.now += 100;
            d.send(Input::PlaybackFinished(id));
            d.check_never_silent();
            if d.call.is_finished() {
                break;
            }
        }
        d.now = d.call.next_deadline().expect("checked above");
        match quiet {
            Quiet::StreamsSilence => d.hear(&[0.0; 320]),
            _ => {
                d.send(Input::Tick);
            }
        }
        d.check_never_silent();
    }
    assert!(d.call.is_finished(), "a silent caller is still in the call ({quiet:?}):\n{}", d.story());
}
