//! `hotline bench intents --dialplan FILE`: real recordings played as whole
//! calls through the pipeline `hotline replay` uses (Silero VAD, the
//! recogniser of the speech stack, the call machine on its virtual clock),
//! scored from the calls' events.
//!
//! Each call: silence while the start menu's greeting plays, then the clip,
//! then silence. A menu word is said straight after the greeting; a digit is
//! said after pressing the key of the start menu's `collect` option and
//! hearing its prompt. Noise, when asked for, runs under the whole call, as
//! it would in a caller's kitchen.
use std::path::Path;
use std::sync::Arc;

use super::percentile;
use hotline::asr::SpeechStack;
use hotline::audio::MODEL_RATE;
use hotline::call::{Event, Source};
use hotline::dialplan::{Action, Collect, Dialplan, Menu};
use hotline::intent::IntentMatcher;
use hotline::replay::{prompt_duration_ms, replay_samples_timed, DecisionTiming, ReplayOptions};
use testkit::recordings::{self as data, TestUtterance, DIGIT_WORDS};

/// The caller waits this long after a prompt ends before speaking or
/// pressing a key (ms).
const REPLY_GAP_MS: u64 = 300;
/// Silence after the clip: enough for the detector to close the utterance
/// and the machine to act (ms).
const TRAILING_MS: u64 = 1_200;
/// Call time allowed past the end of the recording (ms): long enough for a
/// transfer announcement to play out, so a call's path ends in its
/// transfer. The caller says nothing more, so no speech action can follow.
const SETTLE_MS: u64 = 5_000;
/// Longest a barge-in may come after the onset of the speech that caused
/// it (ms): `min_speech_ms` and a window or two of the detector.
const BARGE_IN_LAG_MS: u64 = 300;
/// Longest clip accepted (ms): a bench clip is one word, not a call.
const MAX_CLIP_MS: u64 = 30_000;

/// What the caller in one call means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// An option of the start menu, by intent name, said after the greeting.
    Intent(String),
    /// Digits said in the start menu's collect step (numerals, e.g. "7").
    Digits(String),
    /// Nothing the menu offers: other words, noise, silence.
    OutOfMenu,
}

/// How a call went for what the caller meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The machine acted on the right intent or digits without asking.
    AtOnce,
    /// The machine asked "Did you mean …?" / "I heard …" about the right answer.
    Confirmed,
    /// The machine acted on something else by speech.
    WrongAction,
    /// Nothing was acted on by speech (no match, no input).
    NotUnderstood,
    /// Out-of-menu speech or noise led to an action by speech.
    FalseAccept,
    /// Out-of-menu input got a confirmation question (the caller would say no).
    Asked,
    /// Out-of-menu input led to no action: what should happen.
    Rejected,
}

/// End of speech to the machine's answer, for one recognised utterance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Silence the call waited for before answering (virtual call time,
    /// ms): the detector's end of utterance, or for words the call could
    /// not act on yet, the menu's `incomplete_timeout`.
    pub endpoint_ms: f64,
    /// Wall-clock time from handing the words to the recogniser to the
    /// machine's outputs: recognition plus decision (ms).
    pub decision_ms: f64,
    /// End of speech to the action: the endpoint wait or, when recognition
    /// started at a lull and took longer than the rest of the pause, the
    /// moment its answer was back (ms).
    pub action_ms: f64,
    /// The answer acted on the words (an option, a global, a value or a
    /// detail), rather than asking a question or saying it did not
    /// understand.
    pub acted: bool,
}

#[derive(Debug, Clone)]
pub struct CallOutcome {
    pub verdict: Verdict,
    /// One entry per utterance the machine answered.
    pub latencies: Vec<Latency>,
    pub events: Vec<Event>,
    /// A prompt was cut off while the caller was not speaking: the line's
    /// noise barged in.
    pub noise_barged_in: bool,
}

/// Background noise under a whole call.
#[derive(Debug, Clone, Copy)]
pub struct Noise<'a> {
    /// 16 kHz noise, at least as long as the call.
    pub track: &'a [f32],
    pub snr_db: f32,
    /// Picks the stretch of the track.
    pub seed: usize,
}

/// Runs bench calls against one dialplan.
pub struct CallBench<'a> {
    dialplan: Arc<Dialplan>,
    matcher: Arc<dyn IntentMatcher>,
    speech: &'a SpeechStack,
    greeting_ms: u64,
    /// Key and prompt length of the start menu's collect option, if any.
    collect: Option<(char, Collect)>,
}

impl<'a> CallBench<'a> {
    pub fn new(
        dialplan: Arc<Dialplan>,
        matcher: Arc<dyn IntentMatcher>,
        speech: &'a SpeechStack,
    ) -> Result<Self, String> {
        let start = start_menu(&dialplan)?;
        let greeting_ms = prompt_duration_ms(&start.prompt);
        let collect = start.options.iter().find_map(|o| match (&o.action, o.dtmf) {
            (Action::Collect(c), Some(key)) => Some((key, c.clone())),
            _ => None,
        });
        Ok(CallBench { greeting_ms, collect, dialplan, matcher, speech })
    }

    /// The start menu's option a word chooses, if any: the one listing it
    /// among its phrases.
    pub fn intent_for_word(&self, word: &str) -> Option<String> {
        let start = start_menu(&self.dialplan).ok()?;
        let word = data::normalise(word);
        start.options.iter().find(|o| o.phrases.iter().any(|p| data::normalise(p) == word)).map(|o| o.intent.clone())
    }

    /// The start menu's option a digit word chooses as its key said aloud
    /// ("three" for key 3), where the menu takes keys said aloud and no
    /// option has the word as a phrase.
    pub fn intent_for_spoken_key(&self, word: &str) -> Option<String> {
        let start = start_menu(&self.dialplan).ok().filter(|m| m.spoken_keys)?;
        let digit = DIGIT_WORDS.iter().position(|w| *w == data::normalise(word))?;
        let key = char::from_digit(digit as u32, 10)?;
        start.options.iter().find(|o| o.dtmf == Some(key)).map(|o| o.intent.clone())
    }

    /// True when the start menu has a collect option with a key, so digit
    /// clips can be scored.
    pub fn has_collect(&self) -> bool {
        self.collect.is_some()
    }

    /// One call saying `clip`. Errors name the clip.
    pub fn run(
        &self,
        clip: &TestUtterance,
        expected: &Expected,
        noise: Option<Noise<'_>>,
    ) -> Result<CallOutcome, String> {
        let clip_ms = clip.samples.len() as u64 * 1000 / MODEL_RATE as u64;
        if clip_ms > MAX_CLIP_MS {
            return Err(format!(
                "{}: {clip_ms} ms is longer than the {MAX_CLIP_MS} ms a bench clip may last",
                clip.name
            ));
        }
        let mut dtmf = Vec::new();
        let mut speech_at = self.greeting_ms + REPLY_GAP_MS;
        if let Expected::Digits(_) = expected {
            let Some((key, collect)) = &self.collect else {
                return Err(format!("{}: the start menu has no collect option with a key to say digits in", clip.name));
            };
            dtmf.push((*key, speech_at));
            speech_at += prompt_duration_ms(&collect.prompt) + REPLY_GAP_MS;
        }
        let mut call = silence(speech_at);
        call.extend_from_slice(&clip.samples);
        call.extend(silence(TRAILING_MS));
        if let Some(n) = noise {
            let whole = TestUtterance { name: clip.name.clone(), samples: call, truth: clip.truth.clone() };
            call = data::add_noise(&whole, n.track, n.snr_db, n.seed).samples;
        }
        let call_ms = call.len() as u64 * 1000 / MODEL_RATE as u64;
        let opts = ReplayOptions { max_ms: call_ms + SETTLE_MS };
        let (events, timings) = replay_samples_timed(
            Arc::clone(&self.dialplan),
            Arc::clone(&self.matcher),
            self.speech,
            &call,
            &dtmf,
            &prompt_duration_ms,
            &opts,
        );
        let verdict = self.verdict(&events, expected);
        let latencies = latencies(&events, &timings);
        // The caller speaks from `speech_at` to the end of the clip; the
        // detector reports a barge-in up to a few windows after an onset.
        let speaking = speech_at..=speech_at + clip_ms + BARGE_IN_LAG_MS;
        let noise_barged_in = events.iter().any(|e| matches!(e, Event::BargeIn { t_ms } if !speaking.contains(t_ms)));
        Ok(CallOutcome { verdict, latencies, events, noise_barged_in })
    }

    fn verdict(&self, events: &[Event], expected: &Expected) -> Verdict {
        let start = &self.dialplan.start_menu;
        let messages = &self.dialplan.messages;
        let (pre, post) = messages.confirm_intent.split_once("{}").unwrap_or((messages.confirm_intent.as_str(), ""));
        // The first thing speech made the machine do in the start menu: act
        // on an intent, or ask whether it understood one.
        // A question is the prompt that answers an utterance directly (a
        // no-match puts its own event in between).
        let first_intent = events.iter().enumerate().find_map(|(i, e)| match e {
            Event::Intent { menu, intent, source: Source::Speech, .. } if menu == start => Some(Ok(intent.as_str())),
            Event::Prompt { menu, text, .. }
                if menu == start
                    && i > 0
                    && matches!(events[i - 1], Event::Utterance { .. })
                    && text.len() > pre.len() + post.len()
                    && text.starts_with(pre)
                    && text.ends_with(post) =>
            {
                Some(Err(&text[pre.len()..text.len() - post.len()]))
            }
            _ => None,
        });
        let any_speech_action = events.iter().any(|e| matches!(e, Event::Intent { source: Source::Speech, .. }));
        match expected {
            Expected::Intent(want) => match first_intent {
                Some(Ok(intent)) if intent == want => Verdict::AtOnce,
                Some(Err(asked)) if asked == spoken_name(want) => Verdict::Confirmed,
                Some(_) => Verdict::WrongAction,
                None if any_speech_action => Verdict::WrongAction,
                None => Verdict::NotUnderstood,
            },
            Expected::Digits(want) => {
                let read_back = fill(&messages.confirm_digits, &spaced(want));
                for e in events {
                    match e {
                        Event::Collect { value, .. } => {
                            return if value == want { Verdict::AtOnce } else { Verdict::WrongAction };
                        }
                        Event::Prompt { text, .. } if *text == read_back => return Verdict::Confirmed,
                        Event::Intent { source: Source::Speech, .. } => return Verdict::WrongAction,
                        _ => {}
                    }
                }
                Verdict::NotUnderstood
            }
            Expected::OutOfMenu => match first_intent {
                _ if any_speech_action => Verdict::FalseAccept,
                Some(Err(_)) => Verdict::Asked,
                _ => Verdict::Rejected,
            },
        }
    }
}

fn start_menu(dialplan: &Dialplan) -> Result<&Menu, String> {
    dialplan
        .menus
        .get(&dialplan.start_menu)
        .ok_or_else(|| format!("{}: start menu `{}` does not exist", dialplan.source.display(), dialplan.start_menu))
}

fn silence(ms: u64) -> Vec<f32> {
    vec![0.0; (ms * MODEL_RATE as u64 / 1000) as usize]
}

/// As the call machine words its questions (`call::wording`): the first
/// `{}` filled, intent names with spaces, digits one by one.
fn fill(template: &str, value: &str) -> String {
    if template.contains("{}") {
        template.replacen("{}", value, 1)
    } else {
        format!("{} {}", template.trim_end(), value)
    }
}

fn spoken_name(intent: &str) -> String {
    intent.replace(['_', '-'], " ")
}

fn spaced(digits: &str) -> String {
    digits.chars().map(String::from).collect::<Vec<_>>().join(" ")
}

/// What speech did in a call, for the log: each utterance's words and
/// confidence, and what the machine made of it.
fn speech_path(events: &[Event]) -> String {
    let steps: Vec<String> = events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            // A prompt answering an utterance directly is a question.
            Event::Prompt { text, .. } if i > 0 && matches!(events[i - 1], Event::Utterance { .. }) => {
                Some(format!("asked {text:?}"))
            }
            Event::BargeIn { t_ms } => Some(format!("barge-in at {t_ms} ms")),
            Event::Utterance { text, confidence, .. } => Some(format!("heard {text:?} ({confidence:.2})")),
            Event::Intent { intent, confidence, source: Source::Speech, .. } => {
                Some(format!("intent {intent} ({confidence:.2})"))
            }
            Event::Collect { value, .. } => Some(format!("collected {value}")),
            Event::NoMatch { .. } => Some("no match".into()),
            _ => None,
        })
        .collect();
    if steps.is_empty() {
        "no speech detected".into()
    } else {
        steps.join(", ")
    }
}

/// Pairs each utterance event with the wall-clock timing of its answer
/// (both carry the virtual instant the answer was handled).
fn latencies(events: &[Event], timings: &[DecisionTiming]) -> Vec<Latency> {
    events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Event::Utterance { t_ms, end_ms, .. } => {
                let timing = timings.iter().find(|t| t.t_ms == *t_ms)?;
                let decision_ms = timing.wall.as_secs_f64() * 1000.0;
                let answered_ms = timing.asked_ms as f64 + decision_ms;
                // What the machine did with these words, in the same instant.
                let acted = events[i + 1..].iter().take_while(|e| !matches!(e, Event::Utterance { .. })).any(|e| {
                    matches!(
                        e,
                        Event::Intent { t_ms: t, source: Source::Speech, .. } | Event::Collect { t_ms: t, .. } | Event::Slot { t_ms: t, .. }
                            if t == t_ms
                    )
                });
                Some(Latency {
                    endpoint_ms: t_ms.saturating_sub(*end_ms) as f64,
                    decision_ms,
                    action_ms: (*t_ms as f64).max(answered_ms) - *end_ms as f64,
                    acted,
                })
            }
            _ => None,
        })
        .collect()
}

/// Figures of one set of calls.
#[derive(Debug, Clone, Default)]
pub struct CallTally {
    pub calls: usize,
    pub at_once: usize,
    pub confirmed: usize,
    pub wrong_actions: usize,
    pub false_accepts: usize,
    pub asked: usize,
    /// Calls in which the line's noise cut a prompt off.
    pub noise_barge_ins: usize,
    pub latencies: Vec<Latency>,
}

impl CallTally {
    pub fn add(&mut self, outcome: &CallOutcome) {
        self.calls += 1;
        match outcome.verdict {
            Verdict::AtOnce => self.at_once += 1,
            Verdict::Confirmed => self.confirmed += 1,
            Verdict::WrongAction => self.wrong_actions += 1,
            Verdict::FalseAccept => self.false_accepts += 1,
            Verdict::Asked => self.asked += 1,
            Verdict::NotUnderstood | Verdict::Rejected => {}
        }
        self.noise_barge_ins += outcome.noise_barged_in as usize;
        self.latencies.extend_from_slice(&outcome.latencies);
    }

    /// p50 and p95 of one part of the latency (ms).
    pub fn latency(&self, part: fn(&Latency) -> f64) -> (f64, f64) {
        self.latency_of(part, |_| true)
    }

    /// p50 / p95 of `part` over the utterances `which` keeps.
    pub fn latency_of(&self, part: fn(&Latency) -> f64, which: fn(&Latency) -> bool) -> (f64, f64) {
        let mut v: Vec<f64> = self.latencies.iter().filter(|l| which(l)).map(part).collect();
        v.sort_by(f64::total_cmp);
        (percentile(&v, 0.5), percentile(&v, 0.95))
    }
}

/// A set of clips said to the benchmark dialplan.
struct CallSet {
    name: &'static str,
    clips: Vec<(TestUtterance, Expected)>,
}

fn sets(bench: &CallBench, testdata: &Path, every: usize) -> Result<Vec<CallSet>, String> {
    let every = every.max(1);
    let (mut words, mut keys, mut out_of_menu) = (Vec::new(), Vec::new(), Vec::new());
    for clip in data::speech_commands_phone(testdata, every)? {
        if let Some(intent) = bench.intent_for_word(&clip.truth) {
            words.push((clip, Expected::Intent(intent)));
        } else if let Some(intent) = bench.intent_for_spoken_key(&clip.truth) {
            keys.push((clip, Expected::Intent(intent)));
        } else {
            out_of_menu.push((clip, Expected::OutOfMenu));
        }
    }
    let tracks = data::noise_tracks(testdata)?;
    out_of_menu
        .extend(data::noise_clips(&tracks, (40 / every).max(4), 1500).into_iter().map(|c| (c, Expected::OutOfMenu)));
    out_of_menu.push((
        TestUtterance { name: "silence".into(), samples: silence(1000), truth: String::new() },
        Expected::OutOfMenu,
    ));
    let mut sets = Vec::new();
    if !words.is_empty() {
        sets.push(CallSet { name: "Speech Commands words via µ-law, start menu", clips: words });
    }
    if !keys.is_empty() {
        sets.push(CallSet { name: "Speech Commands digits said for keys, start menu", clips: keys });
    }
    if bench.has_collect() {
        let digits = data::fsdd_test(testdata, 5)?
            .into_iter()
            .step_by(every)
            .filter_map(|c| {
                let d = DIGIT_WORDS.iter().position(|w| *w == c.truth)?;
                Some((c, Expected::Digits(d.to_string())))
            })
            .collect();
        sets.push(CallSet { name: "FSDD digits (8 kHz), collect step", clips: digits });
    }
    sets.push(CallSet { name: "out of menu: other words, noise, silence", clips: out_of_menu });
    Ok(sets)
}

/// Real read sentences said to the start menu: a sentence whose transcript
/// contains an option's phrase (word for word) expects that option, the
/// others are out of menu.
fn sentence_sets(bench: &CallBench, testdata: &Path) -> Result<Vec<CallSet>, String> {
    let start = start_menu(&bench.dialplan)?;
    let (mut named, mut other) = (Vec::new(), Vec::new());
    for clip in data::sentences_phone(testdata)? {
        let said = format!(" {} ", data::normalise(&clip.truth));
        let option = start
            .options
            .iter()
            .find(|o| o.phrases.iter().any(|p| said.contains(&format!(" {} ", data::normalise(p)))));
        match option {
            Some(o) => named.push((clip, Expected::Intent(o.intent.clone()))),
            None => other.push((clip, Expected::OutOfMenu)),
        }
    }
    Ok(vec![
        CallSet { name: "real sentences naming an option", clips: named },
        CallSet { name: "real sentences naming none", clips: other },
    ])
}

/// Options of the call benchmark (from `hotline bench intents`).
pub struct CallBenchArgs<'p> {
    pub dialplan: &'p Path,
    pub testdata: &'p Path,
    pub every: usize,
    /// Also run every call with noise at 12 and 6 dB SNR.
    pub noise: bool,
    /// Callers say real sentences (see [`sentence_sets`]).
    pub sentences: bool,
    /// The detector's pause before early answers, if not the default.
    pub pause_ms: Option<u64>,
    /// The detector keeps its network state when the caller gets the
    /// floor (`EndpointConfig::restart_when_listening` off).
    pub keep_detector_state: bool,
    /// The Whisper model and the audio its encoder sees beyond the utterance.
    pub model: hotline::asr::models::WhisperModelName,
    pub context_ms: Option<u32>,
    /// Nats the evidence floor rises on a noisy line.
    pub noisy_evidence: Option<f32>,
    /// A second recogniser for the answers the first is unsure of, and the
    /// audio its encoder sees beyond the utterance.
    pub second_model: Option<hotline::asr::models::WhisperModelName>,
    pub second_context_ms: u32,
    /// How much faster the second pass hears the utterance.
    pub second_speed: Option<f32>,
    /// No second pass, not even the default one.
    pub one_pass: bool,
}

fn fmt_pair((p50, p95): (f64, f64)) -> String {
    if p50.is_nan() {
        "—".into()
    } else {
        format!("{p50:.0} / {p95:.0}")
    }
}

fn pct(x: usize, n: usize) -> String {
    if n == 0 {
        "—".into()
    } else {
        format!("{:.1} %", 100.0 * x as f64 / n as f64)
    }
}

/// Loads the speech stack and the dialplan, runs every set and prints the
/// Markdown table.
pub fn run(args: &CallBenchArgs) -> Result<(), String> {
    let dialplan = hotline::dialplan::load_reported(args.dialplan).map_err(|e| e.to_string())?;
    let mut config = hotline::asr::SpeechConfig {
        threads: 1,
        models: hotline::asr::models::ModelPaths::for_whisper(args.model),
        ..Default::default()
    };
    if let Some(ms) = args.pause_ms {
        config.endpoint.pause_ms = ms;
    }
    config.endpoint.restart_when_listening = !args.keep_detector_state;
    if let Some(ms) = args.context_ms {
        config.grammar.padding = hotline::asr::whisper::Padding::Utterance { margin_ms: ms };
    }
    if let Some(nats) = args.noisy_evidence {
        config.grammar.noisy_evidence = nats;
    }
    // The second pass a server with this model gets, unless told otherwise.
    config.second_pass = match args.one_pass {
        true => None,
        false => hotline::asr::SecondPassConfig::default_after(args.model, &config.grammar),
    };
    if args.second_model.is_some() || args.second_speed.is_some() {
        config.second_pass = Some(hotline::asr::SecondPassConfig::new(
            args.model,
            &config.grammar,
            args.second_model,
            args.second_context_ms,
            args.second_speed.unwrap_or(1.0),
            dialplan.thresholds.accept,
        ));
    }
    let speech = hotline::asr::SpeechStack::load(&config).map_err(|e| e.to_string())?;
    let (_, loaded_mb) = super::memory_mb();
    let matcher: Arc<dyn IntentMatcher> = Arc::new(hotline::intent::TextMatcher::default());
    let bench = CallBench::new(Arc::new(dialplan), matcher, &speech)?;
    let sets =
        if args.sentences { sentence_sets(&bench, args.testdata)? } else { sets(&bench, args.testdata, args.every)? };
    let tracks = data::noise_tracks(args.testdata)?;
    println!(
        "Dialplan: {}; every call through Silero VAD, the grammar recogniser and the call machine (virtual clock); early answers after a {} ms pause.",
        args.dialplan.display(),
        config.endpoint.pause_ms
    );
    let said = if args.sentences {
        "a real read sentence (ARCTIC, pocketsphinx, JFK) through 8 kHz µ-law"
    } else {
        "the clip (Speech Commands through 8 kHz µ-law; FSDD after pressing the collect key)"
    };
    println!(
        "Calls: silence while the greeting plays, {said}, {TRAILING_MS} ms of silence; noise = testdata/noise under the whole call."
    );
    println!(
        "Latency per utterance, ms: endpoint wait (silence waited for, call time: the end of the utterance, or the menu's incomplete_timeout for words the call could not act on yet); recognition and decision (wall clock), which starts {} ms before a pause is long enough to act on, or at the end of the utterance; end of speech → action = the later of the two, over every answer, and over the words acted on (an option, a value or a detail taken; not a question or a no-match). {}\n",
        hotline::asr::PAUSE_HEAD_START_MS,
        super::machine()
    );
    println!("| set | noise | calls | correct at once | confirmed | wrong action | false accepts | endpoint wait p50 / p95 | recognition + decision p50 / p95 | end of speech → action p50 / p95 | … words acted on p50 / p95 | noise barged in |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let snrs: &[Option<f32>] = if args.noise { &[None, Some(12.0), Some(6.0)] } else { &[None] };
    for set in &sets {
        for snr in snrs {
            let mut t = CallTally::default();
            for (i, (clip, expected)) in set.clips.iter().enumerate() {
                // Noise under noise or silence says nothing new.
                let noise = snr.filter(|_| !clip.truth.is_empty()).and_then(|snr_db| {
                    let track = tracks.get(i % tracks.len().max(1))?;
                    Some(Noise { track, snr_db, seed: i })
                });
                let outcome = bench.run(clip, expected, noise)?;
                if !matches!(outcome.verdict, Verdict::AtOnce | Verdict::Rejected) || outcome.noise_barged_in {
                    // On stderr, so the table stays clean: which calls went
                    // wrong and what the recogniser heard in them.
                    let noise = snr.map_or("clean".into(), |d| format!("{d} dB"));
                    let barged = if outcome.noise_barged_in { " (noise barged in)" } else { "" };
                    eprintln!(
                        "{} ({noise}): {}: {:?}{barged}: {}",
                        set.name,
                        clip.name,
                        outcome.verdict,
                        speech_path(&outcome.events)
                    );
                }
                t.add(&outcome);
            }
            let out_of_menu = set.clips.first().is_some_and(|(_, e)| *e == Expected::OutOfMenu);
            let (correct, confirmed, wrong, false_accepts) = if out_of_menu {
                ("—".into(), pct(t.asked, t.calls), "—".into(), pct(t.false_accepts, t.calls))
            } else {
                (pct(t.at_once, t.calls), pct(t.confirmed, t.calls), pct(t.wrong_actions, t.calls), "—".into())
            };
            println!(
                "| {} | {} | {} | {correct} | {confirmed} | {wrong} | {false_accepts} | {} | {} | {} | {} | {} |",
                set.name,
                snr.map_or("clean".into(), |d| format!("{d} dB")),
                t.calls,
                fmt_pair(t.latency(|l| l.endpoint_ms)),
                fmt_pair(t.latency(|l| l.decision_ms)),
                fmt_pair(t.latency(|l| l.action_ms)),
                fmt_pair(t.latency_of(|l| l.action_ms, |l| l.acted)),
                pct(t.noise_barge_ins, t.calls),
            );
        }
    }
    println!("\nOut-of-menu rows: \"confirmed\" counts confirmation questions asked (the caller would say no); false accepts are actions taken by speech. Noise barged in: calls in which a prompt was cut off while the caller was not speaking.");
    let (peak_mb, _) = super::memory_mb();
    // Said from the configuration the calls ran with, defaults included.
    let second = match &config.second_pass {
        None => String::new(),
        Some(p) => {
            let at = if p.speed == 1.0 { String::new() } else { format!(" at {}× speed", p.speed) };
            match &p.model {
                Some(m) => format!(", second pass {} with {} ms context{at}", m.name, m.grammar.context_ms()),
                None => format!(", second pass the same model{at}"),
            }
        }
    };
    println!(
        "Recogniser: {}{second}; evidence floor {} nats, {} more on a noisy line. RSS after loading the speech stack {loaded_mb:.0} MB, peak {peak_mb:.0} MB.",
        args.model, config.grammar.min_evidence, config.grammar.noisy_evidence
    );
    Ok(())
}
