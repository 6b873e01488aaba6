//! Silero VAD (v5/v6 ONNX) on `ort`: speech probabilities for 32 ms
//! windows, one call's or many calls' at once.
//!
//! One [`SileroModel`] (one ONNX session) serves every call; each call keeps
//! only the network's recurrent state and the end of its previous window in
//! a [`VadStream`]. The live server scores the windows of all calls in
//! batches on the detector thread (`vad_worker`); [`SileroVad`] scores one
//! stream directly, for the tools that go through a recording (replay,
//! transcribe, re-hearing stored calls).
use std::sync::{Arc, Mutex};

use ort::session::Session;
use ort::value::Tensor;

use super::endpoint::{Endpointer, StreamSwitch, Window, RATE, WINDOW};
use super::{AsrError, EndpointConfig, ModelError, RecognitionError, VadEvent, VoiceDetector};

/// Samples of the previous window the v5/v6 model sees in front of each one.
const CONTEXT: usize = 64;
const INPUT: usize = CONTEXT + WINDOW;
/// The recurrent state per stream: two layers of 128.
const STATE_HALF: usize = 128;

pub struct SileroModel {
    session: Mutex<Session>,
}

/// One call's place in the network: its recurrent state and the last
/// samples of its previous window.
#[derive(Clone)]
pub struct VadStream {
    state: [f32; 2 * STATE_HALF],
    context: [f32; CONTEXT],
}

impl Default for VadStream {
    fn default() -> Self {
        VadStream { state: [0.0; 2 * STATE_HALF], context: [0.0; CONTEXT] }
    }
}

impl VadStream {
    /// Carries out the endpointer's [`StreamSwitch`]; `aside` holds the
    /// state put aside while the caller is heard afresh.
    pub fn switch(&mut self, switch: StreamSwitch, aside: &mut Option<VadStream>) {
        match switch {
            StreamSwitch::Fresh => *aside = Some(std::mem::take(self)),
            StreamSwitch::Resume => {
                if let Some(kept) = aside.take() {
                    *self = kept;
                }
            }
        }
    }
}

impl SileroModel {
    pub fn load(path: &std::path::Path) -> Result<Arc<Self>, AsrError> {
        let session = super::runtime::session(path)?;
        let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        if names != ["input", "state", "sr"] {
            return Err(ModelError::Unexpected {
                path: path.to_path_buf(),
                what: format!("not a Silero VAD v5/v6 model (inputs {names:?})"),
            }
            .into());
        }
        Ok(Arc::new(SileroModel { session: Mutex::new(session) }))
    }

    /// Speech probabilities of one window per stream, in one run of the
    /// network (rows of a batch are independent: each carries its own
    /// state). Updates every stream.
    pub fn score(&self, rows: &mut [(&Window, &mut VadStream)]) -> Result<Vec<f32>, AsrError> {
        let fail = |source: ort::Error| AsrError::from(RecognitionError::Runtime { stage: "silero vad", source });
        let batch = rows.len();
        if batch == 0 {
            return Ok(Vec::new());
        }
        let mut input = Vec::with_capacity(batch * INPUT);
        // The state tensor is [2, batch, 128]: layer by layer, then row.
        let mut state = vec![0.0f32; 2 * batch * STATE_HALF];
        for (b, (window, stream)) in rows.iter().enumerate() {
            input.extend_from_slice(&stream.context);
            input.extend_from_slice(&window[..]);
            for layer in 0..2 {
                let to = (layer * batch + b) * STATE_HALF;
                state[to..to + STATE_HALF].copy_from_slice(&stream.state[layer * STATE_HALF..][..STATE_HALF]);
            }
        }
        let x = Tensor::from_array(([batch, INPUT], input)).map_err(fail)?;
        let s = Tensor::from_array(([2usize, batch, STATE_HALF], state)).map_err(fail)?;
        let sr = Tensor::from_array(([1usize], vec![RATE as i64])).map_err(fail)?;
        // A poisoned lock only means a thread panicked mid-run; the session
        // itself holds no per-call state.
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let out = session.run(ort::inputs!["input" => x, "state" => s, "sr" => sr]).map_err(fail)?;
        let (_, probs) = out["output"].try_extract_tensor::<f32>().map_err(fail)?;
        let (_, new_state) = out["stateN"].try_extract_tensor::<f32>().map_err(fail)?;
        if probs.len() != batch || new_state.len() != 2 * batch * STATE_HALF {
            let what =
                format!("{} probabilities and {} state values for {batch} windows", probs.len(), new_state.len());
            return Err(RecognitionError::Shape { stage: "silero vad", what }.into());
        }
        for (b, (window, stream)) in rows.iter_mut().enumerate() {
            for layer in 0..2 {
                let from = (layer * batch + b) * STATE_HALF;
                stream.state[layer * STATE_HALF..][..STATE_HALF].copy_from_slice(&new_state[from..from + STATE_HALF]);
            }
            stream.context.copy_from_slice(&window[WINDOW - CONTEXT..]);
        }
        Ok(probs.to_vec())
    }
}

/// A voice detector scoring its own windows on the spot: an endpointer
/// and one stream of the shared model.
pub struct SileroVad {
    model: Arc<SileroModel>,
    stream: VadStream,
    /// The state that learnt the line during the last prompt, while the
    /// caller is heard afresh.
    aside: Option<VadStream>,
    endpointer: Endpointer,
    /// Set once the network failed: the failure is reported once as
    /// [`VadEvent::Failed`] and the detector then reports nothing more.
    failed: bool,
}

impl SileroVad {
    pub fn new(model: Arc<SileroModel>, cfg: EndpointConfig) -> Self {
        SileroVad { model, stream: VadStream::default(), aside: None, endpointer: Endpointer::new(cfg), failed: false }
    }

    fn window(&mut self, window: &Window, events: &mut Vec<VadEvent>) {
        if self.failed {
            return;
        }
        if let Some(switch) = self.endpointer.take_switch() {
            self.stream.switch(switch, &mut self.aside);
        }
        match self.model.score(&mut [(window, &mut self.stream)]) {
            Ok(p) => events.extend(self.endpointer.scored(p[0])),
            Err(e) => {
                self.failed = true;
                events.push(VadEvent::Failed { reason: e.to_string() });
            }
        }
    }
}

impl VoiceDetector for SileroVad {
    fn accept(&mut self, samples: &[f32]) -> Vec<VadEvent> {
        let mut events = Vec::new();
        if self.failed {
            return events;
        }
        for w in self.endpointer.push(samples) {
            self.window(&w, &mut events);
        }
        events
    }

    fn flush(&mut self) -> Vec<VadEvent> {
        let mut events = Vec::new();
        if let Some(w) = self.endpointer.tail() {
            self.window(&w, &mut events);
        }
        if !self.failed {
            events.extend(self.endpointer.close());
        }
        events
    }

    fn set_prompt_playing(&mut self, playing: bool) {
        self.endpointer.set_prompt_playing(playing);
    }

    fn end_utterance(&mut self) {
        self.endpointer.end_utterance();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learnt() -> VadStream {
        VadStream { state: [0.25; 2 * STATE_HALF], context: [0.5; CONTEXT] }
    }

    #[test]
    fn the_state_put_aside_for_the_caller_is_the_one_the_next_prompt_gets_back() {
        let (mut stream, mut aside) = (learnt(), None);
        stream.switch(StreamSwitch::Fresh, &mut aside);
        assert_eq!(stream.state, [0.0; 2 * STATE_HALF], "the caller is heard afresh");
        stream.state[0] = 0.75; // what the caller's floor taught it
        stream.switch(StreamSwitch::Resume, &mut aside);
        assert_eq!(stream.state, learnt().state, "barge-in is judged by what the prompt learnt");
        assert!(aside.is_none());
        stream.switch(StreamSwitch::Resume, &mut aside);
        assert_eq!(stream.state, learnt().state, "nothing aside: the state stays");
    }
}
