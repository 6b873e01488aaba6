//! The call's ears on the live server: caller audio cut into 32 ms windows
//! for the batched voice detector (`asr::vad_worker`), whose probabilities
//! the endpointer turns into the machine's voice inputs.
//!
//! One window is scored at a time per call, since each needs the network
//! state the previous one left; the windows that arrive meanwhile wait
//! here, a bounded few. The session task never blocks on the detector: the
//! answer comes back through [`next_scored`] in its `select!`.
use std::collections::VecDeque;

use tokio::sync::oneshot;

use super::super::pacer::AUDIO_BURST;
use crate::asr::endpoint::{Endpointer, Window};
use crate::asr::silero::VadStream;
use crate::asr::vad_worker::{Scored, VadWorker};
use crate::asr::{EndpointConfig, VadEvent};
use crate::audio::MODEL_RATE;
use crate::call::Input;

/// Windows a call may have waiting for the detector: the burst a PBX may
/// send at once after a stall (what the pacer admits), plus 2 s. More
/// means the detector is far behind real time for this call: its speech
/// is given up (keys, then a human) rather than heard ever later.
const MAX_WAITING: usize = ((AUDIO_BURST.as_millis() as usize) + 2_000) / 32;

pub(super) struct Ears {
    endpointer: Endpointer,
    /// The call's stream of the network; away while a window is scored.
    stream: Option<Box<VadStream>>,
    /// The state that learnt the line during the last prompt, while the
    /// caller is heard afresh.
    aside: Option<VadStream>,
    waiting: VecDeque<Window>,
    /// The window being scored now.
    pub(super) in_flight: Option<oneshot::Receiver<Scored>>,
    /// Call time of the first sample heard.
    origin: Option<u64>,
    /// The detector failed for this call: nothing more is scored.
    failed: bool,
}

impl Ears {
    pub(super) fn new(cfg: EndpointConfig) -> Ears {
        Ears {
            endpointer: Endpointer::new(cfg),
            stream: Some(Box::default()),
            aside: None,
            waiting: VecDeque::new(),
            in_flight: None,
            origin: None,
            failed: false,
        }
    }

    /// Takes caller audio (16 kHz) that ends at call time `now` and sends
    /// its windows to be scored. An input for the machine only when the
    /// detector cannot keep up.
    pub(super) fn hear(&mut self, now: u64, samples: &[f32], detector: &VadWorker) -> Option<Input> {
        let duration = samples.len() as u64 * 1000 / MODEL_RATE as u64;
        self.origin.get_or_insert(now.saturating_sub(duration));
        if self.failed {
            return None;
        }
        self.waiting.extend(self.endpointer.push(samples));
        if self.waiting.len() > MAX_WAITING {
            let waited_ms = self.waiting.len() as u64 * 32;
            return self.fail(format!("the voice detector is {waited_ms} ms behind this call"));
        }
        self.send_next(detector)
    }

    /// A window's answer (from [`next_scored`]): the machine's inputs for
    /// it, and the next window goes to be scored. `prompt_playing`: the
    /// machine's [`crate::call::Call::prompt_playing`] now.
    pub(super) fn scored(
        &mut self,
        answer: Result<Scored, oneshot::error::RecvError>,
        prompt_playing: bool,
        detector: &VadWorker,
    ) -> Vec<Input> {
        self.in_flight = None;
        let Ok(Scored { stream, probability }) = answer else {
            return self.fail("the voice detector stopped".into()).into_iter().collect();
        };
        self.stream = Some(stream);
        let probability = match probability {
            Ok(p) => p,
            Err(reason) => return self.fail(reason).into_iter().collect(),
        };
        self.endpointer.set_prompt_playing(prompt_playing);
        let origin = self.origin.unwrap_or(0);
        let mut inputs: Vec<Input> =
            self.endpointer.scored(probability).into_iter().map(|e| Input::Voice(e.on_call_clock(origin))).collect();
        inputs.extend(self.send_next(detector));
        inputs
    }

    /// `Output::ForgetUtterance`.
    pub(super) fn forget_utterance(&mut self) {
        self.endpointer.end_utterance();
    }

    fn send_next(&mut self, detector: &VadWorker) -> Option<Input> {
        if self.in_flight.is_some() {
            return None;
        }
        if self.waiting.is_empty() {
            return None;
        }
        let (Some(mut stream), Some(window)) = (self.stream.take(), self.waiting.pop_front()) else {
            return None;
        };
        if let Some(switch) = self.endpointer.take_switch() {
            stream.switch(switch, &mut self.aside);
        }
        match detector.submit(window, stream) {
            Ok(answer) => {
                self.in_flight = Some(answer);
                None
            }
            Err((stream, refused)) => {
                self.stream = Some(stream);
                self.fail(refused.to_string())
            }
        }
    }

    fn fail(&mut self, reason: String) -> Option<Input> {
        self.failed = true;
        self.waiting.clear();
        Some(Input::Voice(VadEvent::Failed { reason }))
    }
}

/// The answer for the window in flight; pending for ever when there is
/// none (a disabled `select!` branch).
pub(super) async fn next_scored(
    in_flight: &mut Option<oneshot::Receiver<Scored>>,
) -> Result<Scored, oneshot::error::RecvError> {
    match in_flight {
        Some(answer) => answer.await,
        None => std::future::pending().await,
    }
}
