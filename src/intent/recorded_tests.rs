//! The matcher and the yes/no reader on what Whisper really wrote for real
//! callers.
//!
//! `testdata/speech_commands_whisper.tsv` holds, for every clip of
//! `../shared/testdata/speech_commands` (111 speakers saying one command
//! word or digit), the text `hotline transcribe` produced for it with
//! Whisper tiny.en int8 and default endpointing (utterances of one clip
//! joined by a space; empty when no speech was found). Its slips are the
//! real ones: "Done." for down, "of" for off, "Now" for no, "One." for on.
//!
//! `testdata/digits_whisper.tsv` does the same for 80 single digits of
//! `fsdd` (genuine 8 kHz telephone-band speech, two clips per digit and
//! speaker) and the 15-digit string of `sphinx4`.
use std::collections::BTreeMap;

use super::matcher_tests::command_menu;
use super::{parse_digits, parse_yes_no, CompiledCandidates, TextMatcher};

const COMMANDS: &str = include_str!("testdata/speech_commands_whisper.tsv");
const DIGITS: &str = include_str!("testdata/digits_whisper.tsv");

/// Suggested dialplan thresholds (see `matcher`).
const ACCEPT: f32 = 0.85;
const CONFIRM: f32 = 0.45;

struct Clip<'a> {
    file: &'a str,
    spoken: &'a str,
    whisper: &'a str,
}

fn clips(table: &'static str) -> Vec<Clip<'static>> {
    let mut lines = table.lines();
    assert_eq!(lines.next(), Some("file\tspoken\twhisper"));
    lines
        .enumerate()
        .map(|(n, line)| {
            let mut fields = line.split('\t');
            match (fields.next(), fields.next(), fields.next(), fields.next()) {
                (Some(file), Some(spoken), Some(whisper), None) => Clip { file, spoken, whisper },
                _ => panic!("testdata table line {}: want 3 tab-separated fields: {line:?}", n + 2),
            }
        })
        .collect()
}

#[derive(Default, Debug)]
struct Tally {
    clips: usize,
    /// The spoken word won, at confirm level or above.
    understood: usize,
    /// Another word won at accept level: the call would do the wrong thing.
    wrong_action: usize,
}

#[test]
fn command_words_from_real_whisper_output() {
    let all = clips(COMMANDS);
    assert_eq!(all.len(), 412, "one row per speech_commands clip");
    let matcher = TextMatcher::default();
    let menu = CompiledCandidates::new(&command_menu());
    let mut per_word: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let mut misses = Vec::new();
    for clip in &all {
        let result = matcher.match_compiled(clip.whisper, &menu);
        let tally = per_word.entry(clip.spoken).or_default();
        tally.clips += 1;
        total.clips += 1;
        match &result.best {
            Some(best) if best.intent == clip.spoken && best.confidence >= CONFIRM => {
                tally.understood += 1;
                total.understood += 1;
            }
            Some(best) if best.intent != clip.spoken && best.confidence >= ACCEPT => {
                tally.wrong_action += 1;
                total.wrong_action += 1;
                misses.push(format!(
                    "{} {:?} -> {} {:.2} (wrong)",
                    clip.file, clip.whisper, best.intent, best.confidence
                ));
            }
            other => misses.push(format!("{} {:?} -> {:?}", clip.file, clip.whisper, other)),
        }
    }
    // Most misses are clips Whisper got wrong beyond repair ("Posh." for
    // off, "" when no speech was found); the matcher answers nothing for
    // them, so the caller is asked again. What it must not do is act on a
    // wrong word: the only such clips are ones Whisper heard as another
    // command outright ("One." for on, "on." for up).
    let understood = total.understood as f32 / total.clips as f32;
    // Measured: 0.842 (347 of 412).
    assert!(understood >= 0.83, "understood {understood:.3}: {per_word:?}\nmisses:\n{}", misses.join("\n"));
    assert!(total.wrong_action <= 2, "{} wrong actions:\n{}", total.wrong_action, misses.join("\n"));
}

#[test]
fn yes_and_no_from_real_whisper_output() {
    let mut right = 0;
    let mut total = 0;
    for clip in clips(COMMANDS).iter().filter(|c| c.spoken == "yes" || c.spoken == "no") {
        total += 1;
        let answer = parse_yes_no(clip.whisper);
        if answer == Some(clip.spoken == "yes") {
            right += 1;
        }
        // Silence or an unreadable answer may be asked again, but a yes
        // must never be read as no or the other way round.
        assert_ne!(answer, Some(clip.spoken != "yes"), "{} {:?}", clip.file, clip.whisper);
    }
    assert!(right as f32 >= 0.9 * total as f32, "{right} of {total}");
}

#[test]
fn digit_strings_from_real_whisper_output() {
    let all = clips(DIGITS);
    assert_eq!(all.len(), 82);
    let mut right = 0;
    for clip in &all {
        // The reference transcripts are words ("nine oh two one oh").
        let said = parse_digits(clip.spoken)
            .unwrap_or_else(|| panic!("{}: reference {:?} is not digits", clip.file, clip.spoken));
        match parse_digits(clip.whisper) {
            Some(heard) if heard == said => right += 1,
            // "Bye." for five, "fix." for six: no digits, ask again.
            None => {}
            // Whisper dropped a zero of the narrow-band copy ("1 0 0 1."
            // for "one zero zero zero one"); the collect step reads the
            // digits back for confirmation, which is where that is caught.
            // Whisper's echo of a short answer ("6 6" for one six) is
            // indistinguishable from a caller saying it twice; the
            // collect step's digit count and read-back catch it.
            Some(heard) if heard == said.repeat(2) => {}
            Some(heard) if clip.file.ends_with("_narrowband.wav") => {
                assert_eq!(heard.len(), said.len() - 1, "{}", clip.file)
            }
            Some(heard) => panic!("{} {:?}: read {heard}, said {said}", clip.file, clip.whisper),
        }
    }
    let full_band = all.iter().find(|c| c.file == "sphinx4/digits_10001-90210-01803.wav").expect("sphinx4 row");
    assert_eq!(parse_digits(full_band.whisper).as_deref(), Some("100019021001803"));
    // Measured: 47 of 82; the rest Whisper misheard as words ("Bye.", "free.", "Speed").
    assert!(right >= 47, "{right} of {}", all.len());
}
