//! How the fake event socket's channels play the files broadcast to them:
//! one after the other, for their duration, broken off by `uuid_break`.
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

use super::*;

/// A file broadcast to an idle channel less than this after the previous
/// one ended: the caller heard a gap inside a prompt (an underrun).
pub(super) const UNDERRUN_GAP: Duration = Duration::from_millis(100);

/// One channel's playback, as FreeSWITCH's broadcast queue runs it.
#[derive(Debug, Default)]
pub(super) struct Channel {
    pub(super) queue: VecDeque<String>,
    /// The file playing and its generation (a break bumps the generation,
    /// so the timer of a broken-off file does nothing).
    pub(super) playing: Option<(String, u64)>,
    pub(super) generation: u64,
    /// When each `uuid_broadcast` arrived.
    pub(super) broadcasts: Vec<Instant>,
    /// When the last file stopped playing.
    pub(super) last_stop: Option<Instant>,
    pub(super) underruns: usize,
}

/// The channels' playback (see [`FakeEsl::start_playing`]).
#[derive(Default)]
pub(super) struct Playback {
    /// `None`: files do not play by themselves (tests fire the events).
    pub(super) channels: Option<HashMap<String, Channel>>,
    /// Temp files the modules wrote, with how long they play.
    pub(super) files: HashMap<String, Duration>,
    /// Commands the server sent that FreeSWITCH would refuse.
    pub(super) refused: Vec<String>,
}

/// What one channel's playback looked like, for the caller.
#[derive(Debug, Clone, Copy)]
pub struct PlaybackView {
    pub broadcasts: usize,
    pub first_broadcast_after: Option<Instant>,
    /// Since when nothing plays or waits; `None` while something does.
    pub idle_since: Option<Instant>,
}

impl FakeEsl {
    /// Commands FreeSWITCH would have refused, for the report.
    pub fn refused(&self) -> Vec<String> {
        self.lock_playback().refused.clone()
    }

    /// The channel's playback so far (only when files play).
    pub fn playback(&self, uuid: &str, after: Instant) -> Option<PlaybackView> {
        let pb = self.lock_playback();
        let c = pb.channels.as_ref()?.get(uuid)?;
        let idle = c.playing.is_none() && c.queue.is_empty();
        Some(PlaybackView {
            broadcasts: c.broadcasts.len(),
            first_broadcast_after: c.broadcasts.iter().copied().find(|t| *t >= after),
            idle_since: if idle { c.last_stop } else { None },
        })
    }

    /// A module wrote a temp file of our audio that plays for `plays_for`.
    pub(super) fn file_written(&self, file: &Path, plays_for: Duration) {
        self.lock_playback().files.insert(file.display().to_string(), plays_for);
    }

    /// `uuid_broadcast <uuid> <file> aleg` on a known channel whose files
    /// play: queue the file.
    pub(super) fn broadcast(&self, uuid: &str, file: &str) -> String {
        let start_now = {
            let mut pb = self.lock_playback();
            if !pb.files.contains_key(file) {
                pb.refused.push(format!("uuid_broadcast of unknown file {file}"));
            }
            let Some(c) = pb.channels.as_mut().and_then(|c| c.get_mut(uuid)) else {
                return "+OK Message sent\n".into();
            };
            let now = Instant::now();
            c.broadcasts.push(now);
            c.queue.push_back(file.to_string());
            let idle = c.playing.is_none();
            // A file reaching an idle channel right after the previous one
            // ended: the prompt had a gap.
            if idle && c.last_stop.is_some_and(|t| now.duration_since(t) < UNDERRUN_GAP) && c.queue.len() == 1 {
                c.underruns += 1;
            }
            idle
        };
        if start_now {
            self.play_next(uuid);
        }
        "+OK Message sent\n".into()
    }

    /// Starts the next queued file of the channel, if any.
    pub(super) fn play_next(&self, uuid: &str) {
        let (file, generation, plays_for) = {
            let mut pb = self.lock_playback();
            let Playback { channels, files, .. } = &mut *pb;
            let Some(c) = channels.as_mut().and_then(|c| c.get_mut(uuid)) else { return };
            let Some(file) = c.queue.pop_front() else { return };
            c.generation += 1;
            c.playing = Some((file.clone(), c.generation));
            let plays_for = files.get(&file).copied().unwrap_or_default();
            (file, c.generation, plays_for)
        };
        self.emit_playback("PLAYBACK_START", uuid, &file, None);
        let esl = self.clone();
        let uuid = uuid.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(plays_for).await;
            esl.stop_playing(&uuid, Some(generation), "done");
            esl.play_next(&uuid);
        });
    }

    /// Stops the file playing (the one of `generation`, or whatever plays).
    pub(super) fn stop_playing(&self, uuid: &str, generation: Option<u64>, status: &str) {
        let file = {
            let mut pb = self.lock_playback();
            let Some(c) = pb.channels.as_mut().and_then(|c| c.get_mut(uuid)) else { return };
            match &c.playing {
                Some((_, g)) if generation.is_none_or(|want| want == *g) => {}
                _ => return,
            }
            c.last_stop = Some(Instant::now());
            c.generation += 1;
            c.playing.take().map(|(f, _)| f)
        };
        if let Some(f) = file {
            self.emit_playback("PLAYBACK_STOP", uuid, &f, Some(status));
        }
    }

    /// `uuid_break <uuid> [all]`: stop the file playing; `all` also drops
    /// the queued ones, otherwise the next one starts.
    pub(super) fn break_playback(&self, uuid: &str, all: bool) -> String {
        if all {
            if let Some(c) = self.lock_playback().channels.as_mut().and_then(|c| c.get_mut(uuid)) {
                c.queue.clear();
            }
        }
        self.stop_playing(uuid, None, "break");
        if !all {
            self.play_next(uuid);
        }
        "+OK\n".into()
    }

    /// mod_audio_fork's `killAudio`: the break flag stops the file playing.
    pub(super) fn kill_audio(&self, uuid: &str) {
        self.stop_playing(uuid, None, "break");
        self.play_next(uuid);
        self.emit_custom(uuid, "mod_audio_fork::kill_audio", "{}");
    }
}
