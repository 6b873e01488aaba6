//! A second, stronger recogniser for the answers the first one is unsure
//! of. The fast model answers most utterances on its own; when it would
//! reject an answer or ask the caller to confirm it, the strong one (e.g.
//! Whisper base with seconds of context) scores the same utterance, and a
//! clear answer from it is acted on instead of asking the caller again.
use std::sync::Arc;

use super::{AsrError, Grammar, Recognition, Recognizer};

pub struct SecondPass {
    fast: Arc<dyn Recognizer>,
    strong: Arc<dyn Recognizer>,
    /// Confidence below which the strong recogniser is asked, and which its
    /// answer must reach to replace the fast one's.
    clear: f32,
}

impl SecondPass {
    pub fn new(fast: Arc<dyn Recognizer>, strong: Arc<dyn Recognizer>, clear: f32) -> Self {
        SecondPass { fast, strong, clear }
    }

    fn is_clear(&self, r: &Recognition) -> bool {
        r.choice.is_some() && r.confidence >= self.clear
    }
}

impl Recognizer for SecondPass {
    fn recognize(&self, samples: &[f32], grammar: &Grammar) -> Result<Recognition, AsrError> {
        let first = self.fast.recognize(samples, grammar)?;
        // Open transcription has nothing to confirm.
        if grammar.is_open() || self.is_clear(&first) {
            return Ok(first);
        }
        let second = self.strong.recognize(samples, grammar)?;
        let decode_ms = first.decode_ms + second.decode_ms;
        // An unclear second answer changes nothing: the caller is asked as
        // the fast answer says.
        let chosen = if self.is_clear(&second) { second } else { first };
        Ok(Recognition { decode_ms, ..chosen })
    }

    fn prepare(&self, grammar: &Grammar) -> Result<(), AsrError> {
        self.fast.prepare(grammar)?;
        self.strong.prepare(grammar)
    }
}
