//! Prompt playback towards a PBX that queues and paces audio itself
//! (chan_websocket): what to send next, and when.
//!
//! Audio goes out ahead of real time so the caller never hears a gap, but
//! at most `lead` ahead, far below Asterisk's 18 s XOFF level, so a barge-in
//! FLUSH has little to throw away and the queue is never overrun. Each
//! prompt is followed by a mark; the prompt counts as finished when the PBX
//! reports the mark played — or, if the PBX never answers, a little after
//! it should have, so a call is never stuck waiting.
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::call::PlaybackId;

/// Audio per message once the lead is built up.
const CHUNK: Duration = Duration::from_millis(500);
/// How long after its expected end a missing mark is given up on.
pub const MARK_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug)]
struct Item {
    id: PlaybackId,
    /// None while the prompt is still being rendered.
    samples: Option<Arc<Vec<i16>>>,
    pos: usize,
}

#[derive(Debug, PartialEq)]
pub enum Step {
    /// Send these samples (a whole number of frames except maybe the tail).
    Audio(Vec<i16>),
    /// Send a mark for this playback; all its audio is out.
    Mark(PlaybackId),
}

#[derive(Debug)]
pub struct Playback {
    rate: u32,
    lead: Duration,
    items: VecDeque<Item>,
    /// When the PBX's queue runs dry, by our estimate.
    queued_until: Option<Instant>,
    /// Marks sent and not yet reported, with the time they should play.
    marks: Vec<(PlaybackId, Instant)>,
    paused: bool,
    /// How long after its expected end a prompt counts as played without
    /// a mark: [`MARK_GRACE`], or zero when the PBX reports no marks and
    /// the server times playback itself.
    grace: Duration,
    /// Audio sent in total (ms), for statistics.
    pub sent_ms: u64,
}

impl Playback {
    pub fn new(rate: u32, lead: Duration) -> Self {
        Playback {
            rate,
            lead,
            items: VecDeque::new(),
            queued_until: None,
            marks: Vec::new(),
            paused: false,
            grace: MARK_GRACE,
            sent_ms: 0,
        }
    }

    /// For PBXs without marks (AudioSocket, FreeSWITCH): a prompt is over
    /// when its audio should have played out.
    pub fn self_timed(rate: u32, lead: Duration) -> Self {
        Playback { grace: Duration::ZERO, ..Playback::new(rate, lead) }
    }

    /// A prompt to play after the ones already queued; audio comes later
    /// with [`Playback::rendered`].
    pub fn enqueue(&mut self, id: PlaybackId) {
        self.items.push_back(Item { id, samples: None, pos: 0 });
    }

    /// Rendered audio for a queued prompt. False when the prompt is no
    /// longer queued (flushed meanwhile).
    pub fn rendered(&mut self, id: PlaybackId, samples: Arc<Vec<i16>>) -> bool {
        match self.items.iter_mut().find(|i| i.id == id) {
            Some(item) => {
                item.samples = Some(samples);
                true
            }
            None => false,
        }
    }

    /// Drops a prompt that could not be rendered.
    pub fn remove(&mut self, id: PlaybackId) {
        self.items.retain(|i| i.id != id);
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// Barge-in: forget everything queued here and at the PBX.
    pub fn flush(&mut self) -> Vec<PlaybackId> {
        let mut dropped: Vec<PlaybackId> = self.items.drain(..).map(|i| i.id).collect();
        dropped.extend(self.marks.drain(..).map(|(id, _)| id));
        self.queued_until = None;
        dropped
    }

    /// True when nothing is queued, being sent, or waiting for its mark.
    pub fn is_idle(&self) -> bool {
        self.items.is_empty() && self.marks.is_empty()
    }

    #[cfg(test)]
    pub fn is_playing(&self) -> bool {
        !self.is_idle()
    }

    /// The next thing to send now, if any.
    pub fn next(&mut self, now: Instant) -> Option<Step> {
        if self.paused {
            return None;
        }
        let ahead = self.queued_until.map_or(Duration::ZERO, |u| u.saturating_duration_since(now));
        let item = self.items.front_mut()?;
        let samples = item.samples.clone()?;
        if item.pos >= samples.len() {
            let id = item.id;
            self.items.pop_front();
            let at = self.queued_until.map_or(now, |u| u.max(now));
            self.marks.push((id, at));
            return Some(Step::Mark(id));
        }
        if ahead >= self.lead {
            return None;
        }
        // Build up the lead at once, then top it up in chunks.
        let want = (self.lead - ahead).max(CHUNK.min(self.lead));
        let n = ((want.as_millis() as u64 * self.rate as u64) / 1000) as usize;
        let frame = crate::audio::frame_samples(self.rate);
        let n = (n / frame).max(1) * frame;
        let end = (item.pos + n).min(samples.len());
        let chunk = samples[item.pos..end].to_vec();
        item.pos = end;
        let dur = Duration::from_millis(crate::audio::samples_to_ms(chunk.len().div_ceil(frame) * frame, self.rate));
        self.sent_ms += dur.as_millis() as u64;
        self.queued_until = Some(self.queued_until.map_or(now, |u| u.max(now)) + dur);
        Some(Step::Audio(chunk))
    }

    /// The PBX reported a mark played: the playback it ends, if known.
    pub fn mark_reached(&mut self, id: PlaybackId) -> bool {
        let before = self.marks.len();
        self.marks.retain(|(m, _)| *m != id);
        before != self.marks.len()
    }

    /// Marks the PBX should long have reported; they count as played.
    pub fn overdue(&mut self, now: Instant) -> Vec<PlaybackId> {
        let (late, keep): (Vec<_>, Vec<_>) = self.marks.drain(..).partition(|(_, at)| now >= *at + self.grace);
        self.marks = keep;
        late.into_iter().map(|(id, _)| id).collect()
    }

    /// When [`Playback::next`] or [`Playback::overdue`] may have something.
    pub fn wake_at(&self, now: Instant) -> Option<Instant> {
        let mut t: Option<Instant> = self.marks.iter().map(|(_, at)| *at + self.grace).min();
        if !self.paused {
            if let Some(item) = self.items.front() {
                if item.samples.is_some() {
                    let ahead_ok = self.queued_until.map_or(now, |u| u.checked_sub(self.lead).unwrap_or(now).max(now));
                    t = Some(t.map_or(ahead_ok, |x| x.min(ahead_ok)));
                }
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio_len(s: Option<Step>) -> usize {
        match s {
            Some(Step::Audio(a)) => a.len(),
            other => panic!("expected audio, got {other:?}"),
        }
    }

    #[test]
    fn sends_the_lead_at_once_then_keeps_pace_then_marks() {
        let t0 = Instant::now();
        let mut p = Playback::new(8000, Duration::from_secs(2));
        p.enqueue(1);
        assert_eq!(p.next(t0), None, "nothing before the audio is rendered");
        p.rendered(1, Arc::new(vec![1; 8000 * 5]));
        assert_eq!(audio_len(p.next(t0)), 16000, "2 s lead at once");
        assert_eq!(p.next(t0), None, "never further ahead than the lead");
        let t1 = t0 + Duration::from_millis(600);
        assert!(p.wake_at(t0).unwrap() <= t1);
        assert_eq!(audio_len(p.next(t1)), 4800);
        let t2 = t0 + Duration::from_secs(10);
        assert_eq!(audio_len(p.next(t2)), 16000);
        assert_eq!(audio_len(p.next(t2 + Duration::from_secs(10))), 3200);
        assert_eq!(p.next(t2 + Duration::from_secs(10)), Some(Step::Mark(1)));
        assert!(p.is_playing(), "waiting for the mark");
        assert!(p.mark_reached(1));
        assert!(p.is_idle());
    }

    #[test]
    fn pause_flush_and_missing_marks() {
        let t0 = Instant::now();
        let mut p = Playback::new(16000, Duration::from_secs(1));
        p.enqueue(1);
        p.enqueue(2);
        p.rendered(2, Arc::new(vec![0; 320]));
        p.set_paused(true);
        p.rendered(1, Arc::new(vec![0; 320]));
        assert_eq!(p.next(t0), None);
        p.set_paused(false);
        assert_eq!(audio_len(p.next(t0)), 320);
        assert_eq!(p.next(t0), Some(Step::Mark(1)));
        assert_eq!(audio_len(p.next(t0)), 320);
        assert_eq!(p.next(t0), Some(Step::Mark(2)));
        assert!(p.overdue(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(p.overdue(t0 + Duration::from_secs(5)), vec![1, 2]);
        p.enqueue(3);
        assert_eq!(p.flush(), vec![3]);
        assert!(p.is_idle());
    }

    #[test]
    fn self_timed_playback_goes_out_frame_by_frame_and_ends_when_played() {
        let t0 = Instant::now();
        let mut p = Playback::self_timed(8000, Duration::from_millis(20));
        p.enqueue(1);
        p.rendered(1, Arc::new(vec![1; 480]));
        assert_eq!(audio_len(p.next(t0)), 160, "one 20 ms frame");
        assert_eq!(p.next(t0), None, "the next one only when the first has played");
        let t1 = t0 + Duration::from_millis(20);
        assert_eq!(p.wake_at(t0), Some(t0));
        assert_eq!(audio_len(p.next(t1)), 160);
        let t2 = t0 + Duration::from_millis(40);
        assert_eq!(audio_len(p.next(t2)), 160);
        assert_eq!(p.next(t2), Some(Step::Mark(1)));
        assert!(p.overdue(t2 + Duration::from_millis(10)).is_empty(), "still playing");
        assert_eq!(p.overdue(t0 + Duration::from_millis(60)), vec![1]);
    }
}
