//! Reading and writing WAV files, with errors a person can act on.
use std::path::Path;

/// Mono 16-bit PCM at some rate.
#[derive(Debug, Clone)]
pub struct Audio {
    pub rate: u32,
    pub samples: Vec<i16>,
    /// Number of channels in the file when it was not mono (it was averaged).
    pub downmixed_from: Option<u16>,
}

impl Audio {
    pub fn duration_ms(&self) -> u64 {
        super::samples_to_ms(self.samples.len(), self.rate)
    }

    /// The samples at `rate`, as floats in [-1, 1).
    pub fn to_f32_at(&self, rate: u32) -> Result<Vec<f32>, super::ResampleError> {
        super::resample(&super::i16_to_f32(&self.samples), self.rate, rate)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("empty file (0 bytes)")]
    Empty,
    #[error("not a WAV file{0} (no RIFF/WAVE header); hotline reads 16-bit PCM WAV")]
    NotWav(String),
    #[error("truncated WAV: {0}")]
    Truncated(String),
    #[error("no audio: the data chunk holds 0 samples")]
    NoSamples,
    #[error("unsupported WAV: {0}")]
    Unsupported(String),
}

/// Lowest and highest sample rates hotline accepts (telephone to studio).
pub const MIN_RATE: u32 = 8_000;
pub const MAX_RATE: u32 = 48_000;

/// Reads a WAV file as mono 16-bit PCM. Stereo is averaged to mono (and
/// `downmixed_from` says so); anything but 16-bit integer PCM is refused.
pub fn read_wav(path: &Path) -> Result<Audio, WavError> {
    let bytes = std::fs::read(path)?;
    parse_wav(&bytes, path.extension().and_then(|e| e.to_str()))
}

pub(crate) fn parse_wav(bytes: &[u8], extension: Option<&str>) -> Result<Audio, WavError> {
    if bytes.is_empty() {
        return Err(WavError::Empty);
    }
    let looks_like_wav = bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE";
    if !looks_like_wav {
        if bytes.len() < 12 && b"RIFF".starts_with(&bytes[..bytes.len().min(4)]) {
            return Err(WavError::Truncated(format!("the file ends after {} bytes, inside the header", bytes.len())));
        }
        let ext = match extension {
            Some(e) if !e.eq_ignore_ascii_case("wav") => format!(" (extension .{e})"),
            _ => String::new(),
        };
        return Err(WavError::NotWav(ext));
    }
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(|e| match e {
        // Reading from memory, an I/O error can only mean the bytes ran out.
        hound::Error::IoError(_) => WavError::Truncated("the file ends inside the header".into()),
        hound::Error::FormatError(m) => WavError::Truncated(format!("broken header: {m}")),
        hound::Error::Unsupported => {
            WavError::Unsupported("format hound cannot read (compressed or extensible WAV)".into())
        }
        other => WavError::Unsupported(other.to_string()),
    })?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        let kind = match spec.sample_format {
            hound::SampleFormat::Float => format!("{}-bit float", spec.bits_per_sample),
            hound::SampleFormat::Int => format!("{}-bit PCM", spec.bits_per_sample),
        };
        return Err(WavError::Unsupported(format!(
            "{kind}; hotline reads 16-bit PCM (convert with: sox in.wav -b 16 -e signed-integer out.wav)"
        )));
    }
    if !(MIN_RATE..=MAX_RATE).contains(&spec.sample_rate) {
        return Err(WavError::Unsupported(format!(
            "sample rate {} Hz; hotline reads {MIN_RATE}-{MAX_RATE} Hz",
            spec.sample_rate
        )));
    }
    if spec.channels == 0 {
        return Err(WavError::Unsupported("0 channels".into()));
    }
    let declared = reader.len() as usize;
    let channels = spec.channels as usize;
    // The header's claim is not trusted for memory: a broken one says 4 GiB.
    let mut interleaved = Vec::with_capacity(declared.min(bytes.len() / 2));
    for s in reader.into_samples::<i16>() {
        match s {
            Ok(v) => interleaved.push(v),
            Err(_) => {
                return Err(WavError::Truncated(format!(
                    "the data chunk declares {declared} samples but the file holds only {}",
                    interleaved.len()
                )))
            }
        }
    }
    if interleaved.is_empty() {
        return Err(WavError::NoSamples);
    }
    let samples = if channels == 1 {
        interleaved
    } else {
        interleaved
            .chunks_exact(channels)
            .map(|f| (f.iter().map(|&s| s as i32).sum::<i32>() / channels as i32) as i16)
            .collect()
    };
    Ok(Audio { rate: spec.sample_rate, samples, downmixed_from: (channels > 1).then_some(spec.channels) })
}

pub fn write_wav(path: &Path, rate: u32, samples: &[i16]) -> Result<(), WavError> {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).map_err(hound_io)?;
    for &s in samples {
        w.write_sample(s).map_err(hound_io)?;
    }
    w.finalize().map_err(hound_io)?;
    Ok(())
}

fn hound_io(e: hound::Error) -> WavError {
    match e {
        hound::Error::IoError(io) => WavError::Io(io),
        other => WavError::Unsupported(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav_bytes(spec: hound::WavSpec, n: usize) -> Vec<u8> {
        let mut cur = std::io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
        for i in 0..n {
            match (spec.sample_format, spec.bits_per_sample) {
                (hound::SampleFormat::Float, _) => w.write_sample(i as f32 / n as f32).unwrap(),
                (_, 24) => w.write_sample(i as i32).unwrap(),
                _ => w.write_sample(i as i16).unwrap(),
            }
        }
        w.finalize().unwrap();
        cur.into_inner()
    }

    fn spec(channels: u16, bits: u16, format: hound::SampleFormat) -> hound::WavSpec {
        hound::WavSpec { channels, sample_rate: 8000, bits_per_sample: bits, sample_format: format }
    }

    #[test]
    fn reads_mono_and_downmixes_stereo() {
        let a = parse_wav(&wav_bytes(spec(1, 16, hound::SampleFormat::Int), 800), Some("wav")).unwrap();
        assert_eq!((a.rate, a.samples.len(), a.downmixed_from), (8000, 800, None));
        let s = parse_wav(&wav_bytes(spec(2, 16, hound::SampleFormat::Int), 800), Some("wav")).unwrap();
        assert_eq!((s.samples.len(), s.downmixed_from), (400, Some(2)));
        // Interleaved i, i+1 average to i (integer division of 2i+1 by 2).
        assert_eq!(s.samples[10], 20);
    }

    #[test]
    fn every_kind_of_bad_file_has_its_own_error() {
        let good = wav_bytes(spec(1, 16, hound::SampleFormat::Int), 800);
        let cases: Vec<(&str, Vec<u8>, Option<&str>, &str)> = vec![
            ("empty", vec![], Some("wav"), "empty file"),
            ("header cut", good[..30].to_vec(), Some("wav"), "truncated"),
            ("riff cut", good[..6].to_vec(), Some("wav"), "truncated"),
            ("data cut", good[..good.len() - 101].to_vec(), Some("wav"), "truncated WAV: the data chunk declares 800"),
            ("no samples", wav_bytes(spec(1, 16, hound::SampleFormat::Int), 0), Some("wav"), "0 samples"),
            ("24-bit", wav_bytes(spec(1, 24, hound::SampleFormat::Int), 10), Some("wav"), "24-bit PCM"),
            ("float", wav_bytes(spec(1, 32, hound::SampleFormat::Float), 10), Some("wav"), "32-bit float"),
            ("mp3", b"ID3\x03\x00\x00\x00\x00\x00\x00garbage".to_vec(), Some("mp3"), "not a WAV file (extension .mp3)"),
            ("garbage", (0..200u8).collect(), Some("wav"), "not a WAV file"),
        ];
        for (name, bytes, ext, want) in cases {
            let err = parse_wav(&bytes, ext).expect_err(name).to_string();
            assert!(err.contains(want), "{name}: got {err:?}, want {want:?}");
        }
    }

    /// A header claiming the largest data chunk (4 GiB) in a file of a few
    /// bytes: reading it must not reserve memory for the claim. Run in a
    /// child process whose address space is limited to 1 GiB, where such a
    /// reservation aborts the process.
    #[test]
    fn a_header_claiming_gigabytes_reserves_only_what_the_file_holds() {
        let mut wav = wav_bytes(spec(1, 16, hound::SampleFormat::Int), 4);
        wav[40..44].copy_from_slice(&(u32::MAX - 1).to_le_bytes());
        if std::env::var_os("HOTLINE_WAV_LIMITED").is_some() {
            let err = parse_wav(&wav, Some("wav")).unwrap_err().to_string();
            assert!(err.contains("truncated"), "{err}");
            return;
        }
        let test = "audio::wav::tests::a_header_claiming_gigabytes_reserves_only_what_the_file_holds";
        let status = std::process::Command::new("prlimit")
            .arg(format!("--as={}", 1u64 << 30))
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", test, "--test-threads=1", "--quiet"])
            .env("HOTLINE_WAV_LIMITED", "1")
            .stdout(std::process::Stdio::null())
            .status()
            .expect("prlimit (util-linux) runs");
        assert!(status.success(), "the limited read failed: {status}");
    }

    #[test]
    fn write_then_read_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.wav");
        let samples: Vec<i16> = (0..1600).map(|i| (i * 7 % 3000) as i16).collect();
        write_wav(&p, 16000, &samples).unwrap();
        let a = read_wav(&p).unwrap();
        assert_eq!((a.rate, a.samples), (16000, samples));
    }
}
