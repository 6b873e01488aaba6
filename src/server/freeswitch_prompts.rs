//! Which FreeSWITCH broadcast file ends which prompt, so the end of a
//! prompt is the event socket's `PLAYBACK_STOP` of its last file rather
//! than the server's estimate.
//!
//! A prompt goes to mod_audio_fork / mod_audio_stream as one or more JSON
//! messages; the module writes each to a temp file and announces it with a
//! play event, in the order the messages came (one websocket, handled in
//! sequence). So the n-th play event of a call is the n-th message sent,
//! and counting both is enough to know which file is a prompt's last.
//! When a count goes wrong (FreeSWITCH refused a message, an event was
//! lost), no `PLAYBACK_STOP` matches and the estimate ends the prompt.
use std::collections::VecDeque;

use crate::call::PlaybackId;

/// Prompts whose end is awaited at once; more only after a burst of
/// prompts no one waits for, and then the oldest are forgotten (their
/// estimate still ends them).
const MAX_TRACKED: usize = 64;

#[derive(Debug, Default)]
pub struct FreeswitchPrompts {
    /// Prompt messages sent on the media socket.
    sent: u64,
    /// Play events (temp files) announced by the module.
    announced: u64,
    /// Messages up to this number were sent before the last barge-in:
    /// their files are not played.
    stale_until: u64,
    /// `sent` when the previous prompt's audio was complete.
    sent_at_last_prompt: u64,
    /// Message number of each complete prompt's last message.
    last_message: VecDeque<(u64, PlaybackId)>,
    /// Broadcast files that end a prompt.
    final_files: VecDeque<(String, PlaybackId)>,
}

/// What to do with a file the module announced.
#[derive(Debug, PartialEq, Eq)]
pub enum Announced {
    /// Broadcast it.
    Play,
    /// Its prompt was flushed by a barge-in: do not play it.
    Stale,
}

impl FreeswitchPrompts {
    /// `n` messages of prompt audio went out.
    pub fn sent(&mut self, n: usize) {
        self.sent += n as u64;
    }

    /// All of prompt `id`'s audio is out. True when none went out at all:
    /// no file will report its end, so it is over now.
    pub fn prompt_complete(&mut self, id: PlaybackId) -> bool {
        let had_audio = self.sent > self.sent_at_last_prompt;
        self.sent_at_last_prompt = self.sent;
        if had_audio {
            push_bounded(&mut self.last_message, (self.sent, id));
        }
        !had_audio
    }

    /// The module announced the temp file of the next message.
    pub fn announced(&mut self, file: &str) -> Announced {
        self.announced += 1;
        let n = self.announced;
        while self.last_message.front().is_some_and(|(last, _)| *last < n) {
            self.last_message.pop_front();
        }
        if let Some(&(last, id)) = self.last_message.front() {
            if last == n {
                self.last_message.pop_front();
                push_bounded(&mut self.final_files, (file.to_string(), id));
            }
        }
        if n <= self.stale_until {
            Announced::Stale
        } else {
            Announced::Play
        }
    }

    /// A file stopped playing: the prompt it ends, if it is a last file.
    pub fn stopped(&mut self, file: &str) -> Option<PlaybackId> {
        let i = self.final_files.iter().position(|(f, _)| f == file)?;
        self.final_files.remove(i).map(|(_, id)| id)
    }

    /// Barge-in: everything sent so far is dropped, including the files
    /// the module has yet to announce.
    pub fn flush(&mut self) {
        self.stale_until = self.sent;
        self.sent_at_last_prompt = self.sent;
        self.last_message.clear();
        self.final_files.clear();
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, item: T) {
    if q.len() >= MAX_TRACKED {
        q.pop_front();
    }
    q.push_back(item);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_file_of_each_prompt_ends_it() {
        let mut p = FreeswitchPrompts::default();
        // Prompt 1 in three messages, prompt 2 in one.
        p.sent(2);
        assert_eq!(
            p.announced("/tmp/u_1.tmp.r16"),
            Announced::Play,
            "files announced before the prompt is complete play"
        );
        p.sent(1);
        assert!(!p.prompt_complete(1));
        p.sent(1);
        assert!(!p.prompt_complete(2));
        assert_eq!(p.announced("/tmp/u_2.tmp.r16"), Announced::Play);
        assert_eq!(p.announced("/tmp/u_3.tmp.r16"), Announced::Play);
        assert_eq!(p.announced("/tmp/u_4.tmp.r16"), Announced::Play);
        assert_eq!(p.stopped("/tmp/u_1.tmp.r16"), None);
        assert_eq!(p.stopped("/tmp/u_2.tmp.r16"), None);
        assert_eq!(p.stopped("/tmp/u_3.tmp.r16"), Some(1));
        assert_eq!(p.stopped("/tmp/u_4.tmp.r16"), Some(2));
        assert_eq!(p.stopped("/tmp/u_4.tmp.r16"), None, "each end counts once");
    }

    #[test]
    fn a_prompt_without_audio_is_over_at_once() {
        let mut p = FreeswitchPrompts::default();
        assert!(p.prompt_complete(1));
        p.sent(1);
        assert!(!p.prompt_complete(2));
    }

    #[test]
    fn files_of_flushed_prompts_are_not_played_and_end_nothing() {
        let mut p = FreeswitchPrompts::default();
        p.sent(2);
        assert!(!p.prompt_complete(1));
        assert_eq!(p.announced("/tmp/u_1.tmp.r16"), Announced::Play);
        p.flush();
        // The module announces the second file after the barge-in.
        assert_eq!(p.announced("/tmp/u_2.tmp.r16"), Announced::Stale);
        assert_eq!(p.stopped("/tmp/u_2.tmp.r16"), None);
        p.sent(1);
        assert!(!p.prompt_complete(2));
        assert_eq!(p.announced("/tmp/u_3.tmp.r16"), Announced::Play);
        assert_eq!(p.stopped("/tmp/u_3.tmp.r16"), Some(2));
    }

    #[test]
    fn tracking_is_bounded() {
        let mut p = FreeswitchPrompts::default();
        for id in 0..(MAX_TRACKED as u64 * 3) {
            p.sent(1);
            p.prompt_complete(id as PlaybackId);
        }
        assert!(p.last_message.len() <= MAX_TRACKED);
    }
}
