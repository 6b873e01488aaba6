//! `hotline bench intents`: grammar-constrained recognition against open
//! decoding on the real recordings, clean and with real noise mixed in,
//! printed as one Markdown table.
use std::path::PathBuf;

use hotline::asr::models::{ModelPaths, WhisperModelName};
use hotline::asr::sherpa::clean_transcript;
use hotline::asr::whisper::{GrammarOptions, GrammarWhisper, Padding};
use hotline::asr::{AsrError, Grammar, GrammarChoice};
use testkit::recordings::{self as data, TestUtterance};

#[derive(clap::Args, Debug)]
pub struct IntentsArgs {
    /// Folder with the test recordings (default: ../shared/testdata).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Use every n-th clip of each set (1 = all) for a quicker run.
    #[arg(long, default_value_t = 1)]
    pub every: usize,
    /// Also measure the encoder on the full 30 s window (slow).
    #[arg(long)]
    pub full_window: bool,
    /// Whisper model: whisper-tiny.en or whisper-base.
    #[arg(long, default_value_t = WhisperModelName::default())]
    pub model: WhisperModelName,
    /// Audio the encoder sees beyond the utterance (ms), as
    /// `[recognizer] context_ms` [default: as in a config without it].
    #[arg(long)]
    pub context_ms: Option<u32>,
    /// Only the clean rows with the configured rules (no noise mixed in, no
    /// "no priors" column): a quicker run for comparing settings.
    #[arg(long, conflicts_with = "dialplan")]
    pub clean_only: bool,
    /// Nats the evidence floor rises on a noisy line, as `[recognizer]
    /// noisy_evidence` [default: as in a config without it].
    #[arg(long)]
    pub noisy_evidence: Option<f32>,
    /// In the noisy rows, the encoder's context after the utterance is the
    /// line's noise going on, not digital silence (clips without speech get
    /// the same length of silence): what the call's own background would
    /// give it.
    #[arg(long, conflicts_with_all = ["dialplan", "clean_only"])]
    pub noise_context: bool,
    /// Options' evidence is measured against the clip's own line with
    /// nobody speaking (the same noise, elsewhere), not only quiet lines.
    #[arg(long, conflicts_with_all = ["dialplan", "clean_only"])]
    pub line_priors: bool,
    /// With --dialplan: rescore with this model the answers the first one
    /// would reject or confirm (as `[recognizer] second_model`; by default
    /// whisper-base after tiny.en, none after base).
    #[arg(long, requires = "dialplan")]
    pub second_model: Option<WhisperModelName>,
    /// Audio the second model's encoder sees beyond the utterance (ms).
    #[arg(long, default_value_t = hotline::asr::whisper::SECOND_PASS_CONTEXT_MS)]
    pub second_context_ms: u32,
    /// With --dialplan: no second pass (by default unsure answers of
    /// tiny.en are heard again by whisper-base, as in a server).
    #[arg(long, requires = "dialplan", conflicts_with_all = ["second_model", "second_speed"])]
    pub one_pass: bool,
    /// With --dialplan: the second pass hears the utterance this much
    /// faster (as `[recognizer] second_speed`); without --second-model the
    /// first model is the second pass.
    #[arg(long, requires = "dialplan")]
    pub second_speed: Option<f32>,
    /// Play the clips as whole calls against this dialplan (VAD, recogniser
    /// and call machine) and score the calls' intents, false accepts and
    /// end-of-speech → action time; see dialplans/bench/words.toml.
    #[arg(long)]
    pub dialplan: Option<PathBuf>,
    /// With --dialplan: the callers say real recorded sentences instead of
    /// words; a sentence containing an option's phrase expects that option
    /// (see dialplans/bench/sentences.toml).
    #[arg(long, requires = "dialplan")]
    pub sentences: bool,
    /// With --dialplan: also run every call with noise at 12 and 6 dB SNR.
    #[arg(long, requires = "dialplan")]
    pub noise: bool,
    /// With --dialplan: the detector's `[endpointing] pause_ms` (0 = no
    /// early answers) [default: as in a config without it].
    #[arg(long, requires = "dialplan")]
    pub pause_ms: Option<u64>,
    /// With --dialplan: the detector keeps its network state when a prompt
    /// ends, instead of starting afresh for the caller (to compare).
    #[arg(long, requires = "dialplan")]
    pub keep_detector_state: bool,
}

/// One set of clips and the grammar it is recognised against.
struct TestSet {
    name: &'static str,
    grammar: Grammar,
    clips: Vec<TestUtterance>,
    /// Clips say nothing the grammar allows: count accepts, not hits.
    out_of_grammar: bool,
    /// Clips at their recorded 16 kHz: noise is mixed in unfiltered too.
    wideband: bool,
    /// Each clip's line with nobody speaking (for --line-priors).
    lines: Vec<Vec<f32>>,
}

/// Counts and timings of one recogniser over one set of clips.
#[derive(Default)]
struct RecognitionTally {
    n: usize,
    constrained_ok: usize,
    /// The best-scoring answer is right, before the rules that reject an
    /// answer as unclear: the most any decision rule could accept.
    best_ok: usize,
    open_ok: usize,
    ms: Vec<u64>,
    /// CPU time of the whole set, all threads (ms).
    cpu_ms: f64,
}

impl RecognitionTally {
    fn pct(x: usize, n: usize) -> String {
        if n == 0 {
            "—".into()
        } else {
            format!("{:.1} %", 100.0 * x as f64 / n as f64)
        }
    }

    fn percentile(&self, p: f64) -> u64 {
        let mut v = self.ms.clone();
        v.sort_unstable();
        v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0)
    }
}

fn menu(words: &[&str]) -> Grammar {
    Grammar {
        choices: words.iter().map(|w| GrammarChoice::new(*w, vec![w.to_string()])).collect(),
        digits: None,
        ..Default::default()
    }
}

fn run_set(rec: &GrammarWhisper, set: &TestSet, line_priors: bool) -> Result<RecognitionTally, AsrError> {
    let mut t = RecognitionTally::default();
    // The grammar's one-time preparation (its priors) is not a clip's cost.
    hotline::asr::Recognizer::prepare(rec, &set.grammar)?;
    let cpu_start = super::cpu_ms();
    for (clip, line) in set.clips.iter().zip(&set.lines) {
        let d = rec.recognize_on_line(&clip.samples, &set.grammar, line_priors.then_some(line.as_slice()))?;
        let choice = d.recognition.choice.as_deref().map(data::normalise);
        let best = d.best.as_ref().map(|b| data::normalise(&b.text));
        let open = data::normalise(&clean_transcript(&d.open.text));
        t.n += 1;
        t.ms.push(d.recognition.decode_ms);
        if set.out_of_grammar {
            // A false accept: the grammar answer (or the open text) names a
            // menu option although none was said.
            t.constrained_ok += choice.is_some() as usize;
            let in_menu = set.grammar.choices.iter().any(|c| c.label == open);
            t.open_ok += in_menu as usize;
        } else {
            t.constrained_ok += (choice.as_deref() == Some(clip.truth.as_str())) as usize;
            t.best_ok += (best.as_deref() == Some(clip.truth.as_str())) as usize;
            t.open_ok += (open == clip.truth) as usize;
        }
    }
    t.cpu_ms = super::cpu_ms() - cpu_start;
    Ok(t)
}

fn sets(testdata: &std::path::Path, every: usize) -> Result<Vec<TestSet>, String> {
    let words20: Vec<&str> = data::COMMAND_WORDS.iter().chain(data::DIGIT_WORDS.iter()).copied().collect();
    let fsdd: Vec<TestUtterance> = data::fsdd_test(testdata, 5)?.into_iter().step_by(every.max(1)).collect();
    let commands = data::speech_commands_phone(testdata, every)?;
    let wideband = data::speech_commands_wideband(testdata, every)?;
    let tracks = data::noise_tracks(testdata)?;
    // Out of grammar: digit words said to a yes/no/up/down… menu, noise
    // alone, and silence.
    let mut oog: Vec<TestUtterance> =
        commands.iter().filter(|c| data::DIGIT_WORDS.contains(&c.truth.as_str())).cloned().collect();
    let noise = data::noise_clips(&tracks, (40 / every.max(1)).max(4), 1500);
    // A noise clip's line: the same track just after it.
    let mut oog_lines: Vec<Vec<f32>> = oog.iter().map(|c| vec![0.0; c.samples.len()]).collect();
    for (i, c) in noise.iter().enumerate() {
        let track = &tracks[i % tracks.len()];
        let len = c.samples.len();
        let start = (i / tracks.len() * len * 3 + len) % (track.len() - len + 1);
        oog_lines.push(track[start..start + len].to_vec());
    }
    oog.extend(noise);
    oog.push(TestUtterance { name: "silence".into(), samples: vec![0.0; 16_000], truth: String::new() });
    oog_lines.push(vec![0.0; 16_000]);
    let quiet = |clips: &[TestUtterance]| clips.iter().map(|c| vec![0.0; c.samples.len()]).collect::<Vec<_>>();
    Ok(vec![
        TestSet {
            name: "FSDD digits (8 kHz), digits:1",
            grammar: Grammar { digits: Some((1, 1)), ..Default::default() },
            lines: quiet(&fsdd),
            clips: fsdd,
            out_of_grammar: false,
            wideband: false,
        },
        TestSet {
            name: "Speech Commands via µ-law, 20 words",
            grammar: menu(&words20),
            lines: quiet(&commands),
            clips: commands,
            out_of_grammar: false,
            wideband: false,
        },
        // The same clips at their recorded 16 kHz: what the phone band costs.
        TestSet {
            name: "Speech Commands at 16 kHz (not phone band), 20 words",
            grammar: menu(&words20),
            lines: quiet(&wideband),
            clips: wideband,
            out_of_grammar: false,
            wideband: true,
        },
        TestSet {
            name: "out-of-grammar → false accepts (10-word menu)",
            grammar: menu(&data::COMMAND_WORDS),
            clips: oog,
            lines: oog_lines,
            out_of_grammar: true,
            wideband: false,
        },
    ])
}

pub fn run(args: IntentsArgs) -> u8 {
    match run_inner(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("hotline bench intents: {e}");
            1
        }
    }
}

fn run_inner(args: IntentsArgs) -> Result<(), String> {
    let testdata = args.data.clone().unwrap_or_else(data::default_testdata);
    if let Some(dialplan) = &args.dialplan {
        let speeds = hotline::asr::speed::SPEEDS;
        if let Some(x) = args.second_speed.filter(|x| !speeds.contains(x)) {
            return Err(format!("--second-speed {x} is out of range {speeds:?}"));
        }
        let calls = super::calls::CallBenchArgs {
            dialplan,
            testdata: &testdata,
            every: args.every,
            noise: args.noise,
            sentences: args.sentences,
            pause_ms: args.pause_ms,
            keep_detector_state: args.keep_detector_state,
            model: args.model,
            context_ms: args.context_ms,
            noisy_evidence: args.noisy_evidence,
            second_model: args.second_model,
            second_context_ms: args.second_context_ms,
            second_speed: args.second_speed,
            one_pass: args.one_pass,
        };
        return super::calls::run(&calls);
    }
    let mut configured = match args.context_ms {
        Some(ms) => GrammarOptions { padding: Padding::Utterance { margin_ms: ms }, ..GrammarOptions::default() },
        None => GrammarOptions::default(),
    };
    if let Some(nats) = args.noisy_evidence {
        configured.noisy_evidence = nats;
    }
    let mut rec =
        GrammarWhisper::load(&ModelPaths::for_whisper(args.model), configured.clone()).map_err(|e| e.to_string())?;
    let mut sets = sets(&testdata, args.every)?;
    if args.clean_only {
        sets.retain(|s| !s.wideband);
    }
    let phone_noise = data::noise_tracks(&testdata)?;
    let wide_noise = data::noise_tracks_wideband(&testdata)?;
    let threads = if rec.model().has_growing_cache() { hotline::asr::whisper::model::decoder_threads() } else { 1 };
    println!(
        "Model: {} (int8), one decoder session shared by all calls ({threads} thread{}), decoder graph {}; encoder context {} ms beyond the utterance.",
        rec.model().meta.model_type,
        if threads == 1 { "" } else { "s" },
        if rec.model().has_growing_cache() { "rewritten" } else { "as exported" },
        configured.context_ms()
    );
    println!(
        "Utterances: clips padded with {} ms of silence each side (no VAD); Speech Commands through 8 kHz µ-law; noise = testdata/noise (kitchen, exercise bike) mixed at the SNR over the speech part.\n",
        data::PAD_MS
    );
    if args.noise_context {
        println!(
            "Noisy rows: the {} ms of context after each clip are the line's noise going on, not digital silence.\n",
            configured.context_ms()
        );
    }
    if args.line_priors {
        println!(
            "Menu options must also beat their score on each clip's own line with nobody speaking (silence on clean rows, the same noise elsewhere on noisy ones).\n"
        );
    }
    let full_col = if args.full_window { " constrained, 30 s window |" } else { "" };
    println!(
        "| set | noise | clips | open decoding | constrained, no priors | constrained, utterance |{full_col} best-scoring answer | p50 ms | p95 ms | CPU ms per clip |"
    );
    println!("|---|---|---:|---:|---:|---:|{}---:|---:|---:|---:|", if args.full_window { "---:|" } else { "" });
    let no_priors = GrammarOptions { max_prior_correction: 0.0, ..configured.clone() };
    let snrs: &[Option<f32>] = if args.clean_only { &[None] } else { &[None, Some(12.0), Some(6.0)] };
    for set in &sets {
        for &snr in snrs {
            // The context as part of the clip, the encoder given none more.
            let context_in_clip = (args.noise_context && snr.is_some()).then(|| configured.context_ms());
            let with_context = |c: &TestUtterance| {
                let mut c = c.clone();
                let ms = context_in_clip.unwrap_or(0) as usize;
                c.samples.extend(std::iter::repeat_n(0.0, ms * 16));
                c
            };
            let noisy;
            let set_here = match snr {
                None => set,
                Some(db) => {
                    let tracks = if set.wideband { &wide_noise } else { &phone_noise };
                    let (clips, lines) = set
                        .clips
                        .iter()
                        .zip(&set.lines)
                        .enumerate()
                        .map(|(i, (c, line))| {
                            let c = with_context(c);
                            let track = &tracks[i % tracks.len()];
                            if c.truth.is_empty() {
                                let mut line = line.clone();
                                line.resize(c.samples.len(), 0.0);
                                (c, line)
                            } else {
                                let line = data::line_noise(&c, track, db, i, c.samples.len());
                                (data::add_noise(&c, track, db, i), line)
                            }
                        })
                        .unzip();
                    noisy = TestSet { clips, lines, grammar: set.grammar.clone(), ..*set };
                    &noisy
                }
            };
            let padded = |o: &GrammarOptions| match context_in_clip {
                Some(_) => GrammarOptions { padding: Padding::Utterance { margin_ms: 0 }, ..o.clone() },
                None => o.clone(),
            };
            let unbiased = if args.clean_only {
                None
            } else {
                rec.set_options(padded(&no_priors));
                Some(run_set(&rec, set_here, args.line_priors).map_err(|e| e.to_string())?)
            };
            rec.set_options(padded(&configured));
            let t = run_set(&rec, set_here, args.line_priors).map_err(|e| e.to_string())?;
            let full = if args.full_window && snr.is_none() {
                rec.set_options(GrammarOptions { padding: Padding::FullWindow, ..configured.clone() });
                let f = run_set(&rec, set_here, args.line_priors).map_err(|e| e.to_string())?;
                format!(" {} |", RecognitionTally::pct(f.constrained_ok, f.n))
            } else if args.full_window {
                " — |".into()
            } else {
                String::new()
            };
            println!(
                "| {} | {} | {} | {} | {} | {} |{full} {} | {} | {} | {:.0} |",
                set.name,
                snr.map_or("clean".into(), |d| format!("{d} dB")),
                t.n,
                RecognitionTally::pct(t.open_ok, t.n),
                unbiased.map_or("—".into(), |u| RecognitionTally::pct(u.constrained_ok, u.n)),
                RecognitionTally::pct(t.constrained_ok, t.n),
                if set.out_of_grammar { "—".into() } else { RecognitionTally::pct(t.best_ok, t.n) },
                t.percentile(0.5),
                t.percentile(0.95),
                t.cpu_ms / t.n.max(1) as f64
            );
        }
    }
    println!("\nFor the out-of-grammar rows the percentages are false accepts (lower is better).");
    println!("\"CPU ms per clip\": CPU time of the set (all threads, without the grammar's one-time preparation) over its clips; unlike p50/p95 it does not grow when other work shares the cores.");
    println!(
        "\"best-scoring answer\": the constrained recogniser's top-ranked answer is right, before the rules that reject unclear answers; no accept/reject rule can score higher."
    );
    Ok(())
}
