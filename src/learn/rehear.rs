//! `--rehear`: the regression check on the callers' own audio. Where the
//! server kept it (`keep_audio_dir`), each recorded utterance of the menu
//! is cut from the call's WAV and recognised again, with the menu's grammar
//! as it is and with the proposed phrase added, and decided as a call
//! decides (recogniser's choice, else the text matcher, then the
//! dialplan's thresholds). Slower than the transcript check, and closer
//! to what callers will get: the new phrase also changes what the
//! recogniser listens for.
use std::path::PathBuf;

use super::collect::Heard;
use super::group::Group;
use super::propose::{candidates, Decision, Moved, Proposal, Suggestion};
use std::sync::Arc;

use crate::asr::{AsrError, Grammar, SpeechStack, VadEvent, VoiceDetector};
use crate::audio::{read_wav, MODEL_RATE};
use crate::dialplan::Dialplan;
use crate::intent::TextMatcher;

/// What the recorded audio says about one proposed phrase.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AudioReplay {
    /// Members of the group whose audio was found and recognised.
    pub heard: usize,
    /// Of those, how many the changed grammar acts on as the option.
    pub fixed: usize,
    pub others_checked: usize,
    pub moved: Vec<Moved>,
}

/// Recognises the kept audio for every "add phrase" suggestion and puts
/// the result in its `replay.audio`. Utterances without kept audio are
/// left out of the counts.
pub fn rehear(
    stack: &SpeechStack,
    suggestions: &mut [Suggestion],
    groups: &[Group],
    heard: &[Heard],
    plans: &[Dialplan],
) -> Result<(), AsrError> {
    let mut calls = CallAudio { stack, file: None, utterances: Vec::new() };
    let matcher = TextMatcher::default();
    for s in suggestions.iter_mut() {
        let Proposal::AddPhrase { option, phrase } = &s.proposal else { continue };
        let Some(group) = groups.iter().find(|g| g.dialplan == s.dialplan && g.menu == s.menu && g.words == s.words)
        else {
            continue;
        };
        let members = &group.members;
        let Some(plan) = plans.iter().find(|p| p.name == s.dialplan) else { continue };
        let mut changed = plan.clone();
        let Some(menu) = changed.menus.get_mut(&s.menu) else { continue };
        if let Some(o) = menu.options.iter_mut().find(|o| &o.intent == option) {
            o.phrases.push(phrase.clone());
        }
        let (Ok(before), Ok(after)) =
            (crate::call::grammar_at(plan, &s.menu, None), crate::call::grammar_at(&changed, &s.menu, None))
        else {
            continue;
        };
        let decide = |p: &Dialplan, g: &Grammar, h: &Heard, calls: &mut CallAudio| {
            let samples = calls.cut(h)?;
            let rec = match stack.recognizer.recognize(&samples, g) {
                Ok(rec) => rec,
                Err(e) => return Some(Err(e)),
            };
            let menu = &p.menus[&s.menu];
            let best = crate::intent::understand(&rec, &candidates(p, menu), &matcher);
            Some(Ok(match best {
                Some(b) if b.confidence >= p.thresholds.accept => Decision::Act(b.intent),
                Some(b) if b.confidence >= p.thresholds.confirm => Decision::Confirm(b.intent),
                _ => Decision::NoMatch,
            }))
        };
        let target = Decision::Act(option.clone());
        let mut audio = AudioReplay { heard: 0, fixed: 0, others_checked: 0, moved: Vec::new() };
        for h in members {
            let Some(now) = decide(&changed, &after, h, &mut calls).transpose()? else { continue };
            audio.heard += 1;
            audio.fixed += usize::from(now == target);
        }
        let in_group = |h: &Heard| members.iter().any(|m| m.call_id == h.call_id && m.index == h.index);
        for h in heard.iter().filter(|h| h.dialplan == s.dialplan && h.menu == s.menu && !in_group(h)) {
            let Some(was) = decide(plan, &before, h, &mut calls).transpose()? else { continue };
            let Some(now) = decide(&changed, &after, h, &mut calls).transpose()? else { continue };
            audio.others_checked += 1;
            if was != now {
                audio.moved.push(Moved { call_id: h.call_id.clone(), text: h.text.clone(), before: was, after: now });
            }
        }
        if let Some(r) = s.replay.as_mut() {
            r.audio = Some(audio);
        }
    }
    Ok(())
}

/// The utterances of the call last read, found again by the voice
/// detector in its kept WAV: utterances come call by call, and only one
/// call's audio is held at a time.
///
/// An utterance is found by its place among the call's utterances, not by
/// its time: a PBX that stops sending audio while a prompt plays leaves
/// gaps in the call's clock that the kept audio does not have, and the same
/// detector over the same samples finds the same utterances.
struct CallAudio<'a> {
    stack: &'a SpeechStack,
    file: Option<PathBuf>,
    utterances: Vec<Arc<Vec<f32>>>,
}

impl CallAudio<'_> {
    /// The utterance's audio; None when the call kept none, the file cannot
    /// be read, or the detector does not find as many utterances.
    fn cut(&mut self, h: &Heard) -> Option<Arc<Vec<f32>>> {
        let file = h.audio_file.as_ref()?;
        if self.file.as_ref() != Some(file) {
            self.file = Some(file.clone());
            self.utterances = read_wav(file)
                .ok()
                .and_then(|a| a.to_f32_at(MODEL_RATE).ok())
                .map(|samples| {
                    let mut vad = self.stack.detector();
                    let mut events = vad.accept(&samples);
                    events.extend(vad.flush());
                    events
                        .into_iter()
                        .filter_map(|e| match e {
                            VadEvent::Utterance(u) => Some(u.samples),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
        }
        self.utterances.get(h.index).cloned()
    }
}
