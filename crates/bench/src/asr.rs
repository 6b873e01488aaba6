//! `hotline bench asr`: open-vocabulary Whisper accuracy and speed on the
//! real recordings, at their native rate and through a telephone channel.
use std::path::{Path, PathBuf};
use std::time::Instant;

use hotline::asr::models::ModelPaths;
use hotline::asr::sherpa::{SherpaWhisper, WhisperOptions};
use hotline::asr::{Grammar, Recognizer};
use hotline::audio::{read_wav, MODEL_RATE};
use testkit::testdata::{self, TranscribedRecording};

#[derive(clap::Args, Debug)]
pub struct AsrArgs {
    /// Folder with the test recordings (default: ../shared/testdata).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// At most this many Speech Commands clips (every n-th, all speakers).
    #[arg(long, default_value_t = 100)]
    pub commands: usize,
    /// At most this many FSDD digits (from the test split, takes 0-4).
    #[arg(long, default_value_t = 200)]
    pub digits: usize,
}

/// Silence put around each clip, as a VAD segment would have it.
const PAD_S: f32 = 0.3;

#[derive(Default)]
struct Score {
    utterances: usize,
    exact: usize,
    errors: usize,
    words: usize,
    audio_s: f64,
    decode_s: f64,
}

impl Score {
    fn add(&mut self, reference: &str, hypothesis: &str, audio_s: f64, decode_s: f64) {
        let (e, n) = testdata::word_errors(reference, hypothesis);
        self.utterances += 1;
        self.exact += usize::from(e == 0);
        self.errors += e;
        self.words += n;
        self.audio_s += audio_s;
        self.decode_s += decode_s;
    }

    fn row(&self, set: &str, channel: &str) -> String {
        format!(
            "| {set} | {channel} | {} | {:.1} % | {:.1} % | {:.2} |",
            self.utterances,
            100.0 * self.errors as f64 / self.words.max(1) as f64,
            100.0 * self.exact as f64 / self.utterances.max(1) as f64,
            self.decode_s / self.audio_s.max(1e-9),
        )
    }
}

fn padded(samples: &[f32]) -> Vec<f32> {
    let pad = vec![0.0; (PAD_S * MODEL_RATE as f32) as usize];
    [&pad[..], samples, &pad[..]].concat()
}

fn decode(rec: &dyn Recognizer, samples: &[f32]) -> Result<(String, f64), String> {
    let t0 = Instant::now();
    let r = rec.recognize(samples, &Grammar::default()).map_err(|e| e.to_string())?;
    Ok((r.text, t0.elapsed().as_secs_f64()))
}

fn every_nth(clips: Vec<TranscribedRecording>, max: usize) -> Vec<TranscribedRecording> {
    let step = (clips.len() / max.max(1)).max(1);
    clips.into_iter().step_by(step).take(max).collect()
}

pub fn run(args: AsrArgs) -> u8 {
    match bench(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("hotline bench asr: {e}");
            1
        }
    }
}

fn bench(args: &AsrArgs) -> Result<(), String> {
    let data = args.data.clone().unwrap_or_else(testdata::testdata_dir);
    let (_, rss_before) = super::memory_mb();
    let t_load = Instant::now();
    let whisper =
        SherpaWhisper::load(&ModelPaths::default_location(), &WhisperOptions { tail_paddings: 0, num_threads: 1 })
            .map_err(|e| e.to_string())?;
    let load_s = t_load.elapsed().as_secs_f64();
    let (_, rss_loaded) = super::memory_mb();

    let read = |p: &Path| -> Result<Vec<f32>, String> {
        read_wav(p)
            .map_err(|e| e.to_string())
            .and_then(|a| a.to_f32_at(MODEL_RATE).map_err(|e| e.to_string()))
            .map_err(|e| format!("{}: {e}", p.display()))
    };

    let mut rows = Vec::new();
    let mut total = Score::default();
    let sentence_sets = ["cmu_arctic", "pocketsphinx", "whisper_jfk", "sphinx4"];
    let commands = every_nth(testdata::clips(&data, "speech_commands").map_err(|e| e.to_string())?, args.commands);
    let digits: Vec<TranscribedRecording> = testdata::clips(&data, "fsdd")
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|c| {
            let take = c
                .path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.rsplit('_').next())
                .and_then(|t| t.parse::<u32>().ok());
            matches!(take, Some(0..=4))
        })
        .take(args.digits)
        .collect();

    for set in sentence_sets {
        let clips = testdata::clips(&data, set).map_err(|e| format!("{set}: {e}"))?;
        let (mut native, mut phone) = (Score::default(), Score::default());
        for c in &clips {
            let x = read(&c.path)?;
            let secs = x.len() as f64 / MODEL_RATE as f64;
            let (h, t) = decode(&whisper, &padded(&x))?;
            native.add(&c.text, &h, secs, t);
            total.add(&c.text, &h, secs, t);
            let (h, t) = decode(&whisper, &padded(&hotline::audio::phone_band(&x)))?;
            phone.add(&c.text, &h, secs, t);
        }
        rows.push(native.row(set, "16 kHz"));
        rows.push(phone.row(set, "8 kHz µ-law"));
    }
    let (mut native, mut phone) = (Score::default(), Score::default());
    for c in &commands {
        let x = read(&c.path)?;
        let secs = x.len() as f64 / MODEL_RATE as f64;
        let (h, t) = decode(&whisper, &padded(&x))?;
        native.add(&c.text, &h, secs, t);
        let (h, t) = decode(&whisper, &padded(&hotline::audio::phone_band(&x)))?;
        phone.add(&c.text, &h, secs, t);
    }
    rows.push(native.row("speech_commands (one word)", "16 kHz"));
    rows.push(phone.row("speech_commands (one word)", "8 kHz µ-law"));
    let mut fsdd = Score::default();
    for c in &digits {
        let x = read(&c.path)?;
        let (h, t) = decode(&whisper, &padded(&x))?;
        fsdd.add(&c.text, &h, x.len() as f64 / MODEL_RATE as f64, t);
    }
    rows.push(fsdd.row("fsdd (one digit, test split)", "native 8 kHz"));

    // Latency of a 2 s utterance: a real ~2 s clip, decoded repeatedly.
    let two_s = read(&data.join("pocketsphinx/cards_002.wav"))?;
    let mut lat: Vec<f64> =
        (0..20).map(|_| decode(&whisper, &two_s).map(|(_, t)| t * 1000.0)).collect::<Result<_, _>>()?;
    lat.sort_by(|a, b| a.total_cmp(b));
    let (peak, _) = super::memory_mb();

    println!("## hotline bench asr — Whisper tiny.en int8, open decoding, 1 thread");
    println!();
    println!("Machine: {}. Each clip decoded whole with {PAD_S} s of silence on each side.", super::machine());
    println!("8 kHz µ-law = 16 kHz -> 8 kHz -> G.711 µ-law -> 16 kHz. Scoring: lower case, no punctuation or tags, numbers digit by digit.");
    println!();
    println!("| test set | channel | utterances | WER | exact | RTF |");
    println!("|---|---|---:|---:|---:|---:|");
    for r in rows {
        println!("{r}");
    }
    println!();
    println!("| figure | value | target |");
    println!("|---|---:|---:|");
    println!(
        "| real-time factor, sentences at 16 kHz, 1 thread | {:.3} | ≤ 0.15 |",
        total.decode_s / total.audio_s.max(1e-9)
    );
    println!("| decode latency, 1.96 s utterance, p50 | {:.0} ms | |", super::percentile(&lat, 0.5));
    println!("| decode latency, 1.96 s utterance, p95 | {:.0} ms | |", super::percentile(&lat, 0.95));
    println!("| model load time | {load_s:.2} s | |");
    println!("| RSS before load / after load | {rss_before:.0} MB / {rss_loaded:.0} MB | |");
    println!("| peak RSS (model loaded, decoding) | {peak:.0} MB | ≤ 300 MB |");
    Ok(())
}
