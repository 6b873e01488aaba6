//! The caller's audio of one call, kept as WAV when `keep_audio_dir` is set.
use std::path::{Path, PathBuf};

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

    pub fn write(&self, dir: &Path, call_id: &str) -> Result<PathBuf, KeepAudioError> {
        std::fs::create_dir_all(dir).map_err(|source| KeepAudioError::Folder { dir: dir.to_path_buf(), source })?;
        let safe: String =
            call_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
        let path = dir.join(format!("{safe}.wav"));
        crate::audio::write_wav(&path, self.rate, &self.samples)
            .map_err(|source| KeepAudioError::Wav { path: path.clone(), source })?;
        Ok(path)
    }
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
    fn kept_audio_folder_that_cannot_be_created_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("not-a-folder");
        std::fs::write(&blocked, b"x").unwrap();
        let err = AudioKeeper::new(8_000, 10).write(&blocked, "call-7").unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: cannot create the folder", blocked.display())), "{err}");
    }
}
