//! Prompt text to IPA phonemes for the Piper voice, the way Piper does it.
//!
//! sherpa-onnx 2.x no longer phonemizes text for Piper voices, so we ask the
//! `espeak-ng` program for the IPA of each clause and assemble sentences the
//! way Piper's own phonemizer does: clause phonemes joined by the clause's
//! punctuation mark, a new sentence after `.`, `!` or `?`. The voice was
//! trained on exactly this form, so keeping the punctuation keeps the pauses
//! and the intonation.
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest prompt text we phonemize. A prompt is a sentence or two; the
/// limit bounds the work and keeps each clause's `espeak-ng` output far
/// below a pipe's buffer.
pub const MAX_TEXT_CHARS: usize = 2000;

/// `espeak-ng` answers a clause in milliseconds; this only catches a hang.
const ESPEAK_TIMEOUT: Duration = Duration::from_secs(10);

/// Punctuation that closes a clause when a space or the end follows it.
const CLAUSE_MARKS: [char; 6] = [',', ';', ':', '.', '!', '?'];

/// One clause of prompt text and the punctuation that closed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub text: String,
    pub mark: Option<char>,
}

impl Clause {
    fn ends_sentence(&self) -> bool {
        matches!(self.mark, Some('.' | '!' | '?'))
    }
}

/// Makes admin text speakable by espeak-ng the way a US caller expects:
/// whitespace collapsed, and the telephone keys `#` and `*` said as "pound"
/// and "star" (espeak-ng would say "hash" and "asterisk").
pub fn normalize(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| match c {
            '#' => " pound ".to_string(),
            '*' => " star ".to_string(),
            c => c.to_string(),
        })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Splits normalized text at `, ; : . ! ?` followed by a space or the end,
/// so "3:45", "1,234" and "a.m" stay whole. A run of marks ("...", "?!")
/// counts as one; a period followed by a lower-case word is an abbreviation
/// ("at 8 a.m. on Monday"), not the end of a sentence, as in espeak-ng.
pub fn split_clauses(text: &str) -> Vec<Clause> {
    let chars: Vec<char> = text.chars().collect();
    let mut clauses = Vec::new();
    let mut current = String::new();
    let mut i = 0;
    while i < chars.len() {
        if !CLAUSE_MARKS.contains(&chars[i]) {
            current.push(chars[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && CLAUSE_MARKS.contains(&chars[i]) {
            i += 1;
        }
        let run = &chars[start..i];
        let at_boundary = i == chars.len() || chars[i].is_whitespace();
        let next_word_lower = chars[i..].iter().find(|c| !c.is_whitespace()).is_some_and(|c| c.is_lowercase());
        let abbreviation = run == ['.'] && next_word_lower;
        if !at_boundary || abbreviation {
            current.extend(run);
            continue;
        }
        let mark = strongest_mark(run);
        let text = current.trim().to_string();
        if !text.is_empty() {
            clauses.push(Clause { text, mark: Some(mark) });
        } else if let Some(last) = clauses.last_mut() {
            // "Hello. . ." or "Really , ?": the marks belong to the clause before.
            if mark_rank(mark) > last.mark.map_or(0, mark_rank) {
                last.mark = Some(mark);
            }
        }
        current.clear();
    }
    let rest = current.trim();
    if !rest.is_empty() {
        clauses.push(Clause { text: rest.to_string(), mark: None });
    }
    clauses
}

fn mark_rank(c: char) -> u8 {
    match c {
        '?' => 4,
        '!' => 3,
        '.' => 2,
        _ => 1,
    }
}

/// "?!" is a question, "..." a full stop, ",:" whichever comes last.
fn strongest_mark(run: &[char]) -> char {
    let best = run.iter().copied().max_by_key(|&c| mark_rank(c)).unwrap_or('.');
    if mark_rank(best) > 1 {
        best
    } else {
        *run.last().unwrap_or(&',')
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PhonemeError {
    #[error("cannot run {program}: {source}; text prompts need espeak-ng (Debian/Ubuntu package espeak-ng, which scripts/setup installs)")]
    NotRunnable { program: String, source: std::io::Error },
    #[error("{program} failed on {clause:?} ({status}): {stderr}")]
    Failed { program: String, clause: String, status: String, stderr: String },
    #[error("{program} did not answer within {}s on {clause:?}", ESPEAK_TIMEOUT.as_secs())]
    TimedOut { program: String, clause: String },
    #[error("{program} printed no phonemes for the whole text")]
    NothingToSay { program: String },
    #[error("{program} printed no phonemes for \"one\" with voice {voice}")]
    NoPhonemes { program: String, voice: String },
}

/// The espeak-ng program and the voice whose phoneme set the Piper voice
/// was trained on.
#[derive(Debug, Clone)]
pub struct Espeak {
    pub program: PathBuf,
    pub voice: String,
}

impl Default for Espeak {
    fn default() -> Self {
        Espeak { program: PathBuf::from("espeak-ng"), voice: "en-us".to_string() }
    }
}

impl Espeak {
    /// IPA of one clause (no clause punctuation in it).
    pub fn ipa(&self, clause: &str) -> Result<String, PhonemeError> {
        let program = self.program.display().to_string();
        // `--` so a clause starting with "-" is text, not an option.
        let mut child = Command::new(&self.program)
            .args(["-q", "-v", &self.voice, "--ipa", "--", clause])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| PhonemeError::NotRunnable { program: program.clone(), source })?;
        let status = wait_with_timeout(&mut child, ESPEAK_TIMEOUT)
            .map_err(|source| PhonemeError::NotRunnable { program: program.clone(), source })?;
        let Some(status) = status else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(PhonemeError::TimedOut { program, clause: clause.to_string() });
        };
        let mut stdout = String::new();
        let mut stderr = String::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut stdout);
        }
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        if !status.success() {
            return Err(PhonemeError::Failed {
                program,
                clause: clause.to_string(),
                status: status.to_string(),
                stderr: stderr.trim().to_string(),
            });
        }
        // espeak-ng prints one line per clause it sees itself (e.g. at a
        // dash); within our clause they are one stretch of speech.
        Ok(stdout.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    /// Phoneme sentences for `text`, ready for the voice: one string per
    /// sentence, clause marks kept ("fɔːɹ bˈɪlɪŋ, sˈeɪ ...").
    pub fn sentences(&self, text: &str) -> Result<Vec<String>, PhonemeError> {
        let mut sentences = Vec::new();
        let mut current = String::new();
        for clause in split_clauses(&normalize(text)) {
            let ipa = self.ipa(&clause.text)?;
            if ipa.is_empty() {
                continue;
            }
            current.push_str(&ipa);
            if let Some(mark) = clause.mark {
                current.push(mark);
                if clause.ends_sentence() {
                    sentences.push(std::mem::take(&mut current));
                } else {
                    current.push(' ');
                }
            }
        }
        let rest = current.trim_end();
        if !rest.is_empty() {
            sentences.push(rest.to_string());
        }
        if sentences.is_empty() {
            return Err(PhonemeError::NothingToSay { program: self.program.display().to_string() });
        }
        Ok(sentences)
    }

    /// Whether espeak-ng runs and knows the voice; the reason otherwise.
    pub fn check(&self) -> Result<(), PhonemeError> {
        if self.ipa("one")?.is_empty() {
            return Err(PhonemeError::NoPhonemes {
                program: self.program.display().to_string(),
                voice: self.voice.clone(),
            });
        }
        Ok(())
    }

    pub fn program(&self) -> &Path {
        &self.program
    }
}

/// `Ok(None)` when the child is still running at the deadline.
fn wait_with_timeout(
    child: &mut std::process::Child,
    timeout: Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clauses(text: &str) -> Vec<(String, Option<char>)> {
        split_clauses(&normalize(text)).into_iter().map(|c| (c.text, c.mark)).collect()
    }

    fn c(text: &str, mark: Option<char>) -> (String, Option<char>) {
        (text.to_string(), mark)
    }

    #[test]
    fn splits_at_clause_punctuation_followed_by_space() {
        assert_eq!(
            clauses("For billing, say billing or press one."),
            vec![c("For billing", Some(',')), c("say billing or press one", Some('.'))]
        );
        assert_eq!(
            clauses("Open at 3:45; closed on 1,234 days"),
            vec![c("Open at 3:45", Some(';')), c("closed on 1,234 days", None)]
        );
        assert_eq!(clauses("Hello!  How are\nyou?"), vec![c("Hello", Some('!')), c("How are you", Some('?'))]);
    }

    #[test]
    fn abbreviations_and_runs_of_marks_do_not_break_sentences() {
        assert_eq!(clauses("We open at 8 a.m. on Monday."), vec![c("We open at 8 a.m. on Monday", Some('.'))]);
        assert_eq!(
            clauses("We open at 8 a.m. Please hold."),
            vec![c("We open at 8 a.m", Some('.')), c("Please hold", Some('.'))]
        );
        assert_eq!(
            clauses("Wait... Really?! Yes , ."),
            vec![c("Wait", Some('.')), c("Really", Some('?')), c("Yes", Some('.'))]
        );
        assert_eq!(clauses(" . , "), vec![]);
    }

    #[test]
    fn telephone_keys_are_spoken_the_us_way() {
        assert_eq!(normalize("Press # or *"), "Press pound or star");
        assert_eq!(normalize("then#"), "then pound");
    }

    fn espeak_available() -> bool {
        Espeak::default().check().is_ok()
    }

    #[test]
    fn sentences_keep_marks_and_digits_are_read_one_by_one() {
        assert!(espeak_available(), "espeak-ng is not installed; run scripts/setup");
        let e = Espeak::default();
        let s = e.sentences("For billing, say billing or press one. Thank you").unwrap();
        assert_eq!(s.len(), 2, "{s:?}");
        assert!(s[0].contains("bˈɪlɪŋ, s"), "{s:?}");
        assert!(s[0].ends_with("n."), "{s:?}");
        let digits = e.sentences("4 5 1 2").unwrap();
        assert_eq!(digits.len(), 1);
        let words: Vec<&str> = digits[0].split(' ').collect();
        assert_eq!(words.len(), 4, "four digits, four words: {digits:?}");
        assert!(words[0].starts_with('f') && words[2].starts_with('w'), "{digits:?}");
    }

    #[test]
    fn missing_program_or_voice_gives_a_reason() {
        let e = Espeak { program: PathBuf::from("/nonexistent/espeak-ng"), ..Default::default() };
        let err = e.check().unwrap_err().to_string();
        assert!(err.contains("/nonexistent/espeak-ng") && err.contains("espeak-ng"), "{err}");
        if espeak_available() {
            let e = Espeak { voice: "zz-nosuch".into(), ..Default::default() };
            let err = e.sentences("hello").unwrap_err().to_string();
            assert!(err.contains("failed") && err.contains("hello"), "{err}");
        }
    }
}
