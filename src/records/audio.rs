//! The caller's audio of one call, kept as WAV when `keep_audio_dir` is set.
//!
//! The WAV runs on the call's clock: its time 0 is the start of the call,
//! the moment the times of the call's events (`t_ms`, DTMF among them)
//! count from, and stretches where the PBX sent no audio (before the
//! caller's first frame, while a caller is silent on a transport that then
//! sends nothing) are kept as silence. So a key pressed at `t_ms` in the
//! record was pressed `t_ms` into the WAV, and `hotline replay` of the WAV
//! hears the caller when the live call did, against the same prompts.
use std::path::{Path, PathBuf};

/// Audio arriving up to this much later than the kept audio's end is
/// network jitter, not a pause, and is appended as it comes: padding each
/// late frame would make the WAV drift longer than the call.
const PAUSE_MS: u64 = 200;

/// Caller audio of one call, bounded (the call's maximum length).
pub struct AudioKeeper {
    rate: u32,
    samples: Vec<i16>,
    max_samples: usize,
}

impl AudioKeeper {
    pub fn new(rate: u32, max_secs: u64) -> Self {
        AudioKeeper { rate, samples: Vec::new(), max_samples: (rate as u64 * max_secs) as usize }
    }

    pub fn push(&mut self, s: &[i16]) {
        let room = self.max_samples.saturating_sub(self.samples.len());
        self.samples.extend_from_slice(&s[..s.len().min(room)]);
    }

    /// Keeps a frame of caller audio that arrived `arrived_ms` into the
    /// call, after the silence of a pause before it (see the module doc).
    pub fn push_arrived(&mut self, arrived_ms: u64, s: &[i16]) {
        let frame_ms = s.len() as u64 * 1000 / u64::from(self.rate.max(1));
        self.catch_up(arrived_ms.saturating_sub(frame_ms));
        self.push(s);
    }

    /// Audio that starts `call_ms` into the call is about to be pushed: a
    /// pause since the last audio (or the call's start) is kept as silence.
    fn catch_up(&mut self, call_ms: u64) {
        let kept_ms = self.samples.len() as u64 * 1000 / u64::from(self.rate.max(1));
        if call_ms > kept_ms + PAUSE_MS {
            let missing = ((call_ms - kept_ms) * u64::from(self.rate) / 1000) as usize;
            let room = self.max_samples.saturating_sub(self.samples.len());
            self.samples.resize(self.samples.len() + missing.min(room), 0);
        }
    }

    pub fn write(&self, dir: &Path, call_id: &str) -> Result<PathBuf, KeepAudioError> {
        std::fs::create_dir_all(dir).map_err(|source| KeepAudioError::Folder { dir: dir.to_path_buf(), source })?;
        let path = dir.join(format!("{}.wav", file_stem(call_id)));
        crate::audio::write_wav(&path, self.rate, &self.samples)
            .map_err(|source| KeepAudioError::Wav { path: path.clone(), source })?;
        Ok(path)
    }
}

/// A call id as a file name: letters, digits, `.` and `-` kept, anything
/// else (a `/`, a space) replaced by `_`.
pub fn file_stem(call_id: &str) -> String {
    call_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect()
}

/// Why a call's audio could not be kept (the call itself is unaffected).
#[derive(Debug, thiserror::Error)]
pub enum KeepAudioError {
    #[error("{}: cannot create the folder: {source}", .dir.display())]
    Folder { dir: PathBuf, source: std::io::Error },
    #[error("{}: cannot write the WAV file: {source}", .path.display())]
    Wav { path: PathBuf, source: crate::audio::WavError },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_audio_that_cannot_be_written_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the WAV should go: the write fails on the file itself.
        std::fs::create_dir(dir.path().join("call-7.wav")).unwrap();
        let mut keeper = AudioKeeper::new(8_000, 10);
        keeper.push(&[0; 160]);
        let err = keeper.write(dir.path(), "call-7").unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:", dir.path().join("call-7.wav").display())), "{err}");
    }

    #[test]
    fn kept_audio_runs_on_the_call_clock_through_pauses_but_not_jitter() {
        let mut keeper = AudioKeeper::new(8_000, 10);
        // The caller's first frame comes 2 s into the call (after the greeting).
        keeper.catch_up(2_000);
        keeper.push(&[7; 160]);
        assert_eq!(keeper.samples.len(), 16_000 + 160, "2 s of silence, then the frame");
        assert_eq!(keeper.samples[16_000], 7);
        // A frame 100 ms late is jitter: appended as it comes.
        keeper.catch_up(2_120);
        keeper.push(&[7; 160]);
        assert_eq!(keeper.samples.len(), 16_000 + 320);
        // Then the PBX sends nothing for a second: kept as silence.
        keeper.catch_up(3_040);
        assert_eq!(keeper.samples.len(), 3_040 * 8);
        // Never beyond the call's maximum length.
        keeper.catch_up(60_000);
        assert_eq!(keeper.samples.len(), 80_000);
    }

    #[test]
    fn kept_audio_folder_that_cannot_be_created_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("not-a-folder");
        std::fs::write(&blocked, b"x").unwrap();
        let err = AudioKeeper::new(8_000, 10).write(&blocked, "call-7").unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: cannot create the folder", blocked.display())), "{err}");
    }
}
