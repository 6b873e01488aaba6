//! Menu phrases inside whole sentences, judged by the audio.
//!
//! Callers say "hi, can I get a mocha please", not "mocha". Scoring the
//! phrase alone as the whole utterance then loses to the open transcript by
//! far, and the text of the transcript may hold a mishearing ("mocker").
//! So each option's phrase is put in place of the span of the open
//! transcript it aligns with best, and Whisper scores the whole sentence:
//! "can I get a mocha please" against "can I get a mocker please" is
//! decided by the audio, with the words around it as context.
//!
//! The answer's confidence is a posterior over the options and "none of
//! these": the transcript as heard stands for "none", handicapped by
//! [`SentenceOptions::none_margin`] nats because in a menu callers mostly
//! name an option. An option whose sentence scores as well as the open
//! transcript so gets about 0.98; one `none_margin` below it 0.5, the point
//! where the one-word path rejects too (its `reject_margin`).
//!
//! Words are [`units`]: in text without spaces (Mandarin) each character
//! is one, so a phrase is aligned with a run of characters.
use strsim::normalized_levenshtein;

use super::decode::{EndTokens, OpenResult, Prefix};
use super::model::{log_sum_exp, AudioFeatures, WhisperModel};
use crate::asr::{AsrError, GrammarChoice};
use crate::intent::phonetic::phonetic_key;
use crate::intent::script::{join_units, units};

/// Sentences teacher-forced for one utterance, at most (one decoder call
/// per [`ROWS_PER_CALL`]).
const MAX_SENTENCES: usize = 32;
const ROWS_PER_CALL: usize = 16;
/// A span of the transcript is a candidate place for a phrase only when its
/// spelling or its sound is at least this similar (0..1): "mocker" for
/// "mocha" is 0.5 by spelling, the same by sound. Lower lets the audio judge
/// more far-fetched places, at the cost of decoder rows.
const MIN_ALIGNMENT: f64 = 0.5;
/// Places tried for each phrase, best-aligned first: the span most like
/// the phrase by its letters is not always where the caller said it ("a
/// large watt a" for "a large latte": "large" is as near "latte" in
/// spelling as "watt a").
const PLACES_PER_PHRASE: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SentenceOptions {
    /// Nats by which the transcript as heard is handicapped when it stands
    /// for "none of the options".
    pub none_margin: f32,
}

/// The option a sentence names.
#[derive(Debug, Clone, PartialEq)]
pub struct SentenceAnswer {
    pub label: String,
    /// log P(sentence with the option's phrase | audio).
    pub logprob: f32,
    /// Posterior of the option against the others and "none of these".
    pub confidence: f32,
    /// The sentence as scored, with the phrase in place.
    pub sentence: String,
    /// Where the phrase is in it: (first word, words).
    pub phrase_at: (usize, usize),
}

/// One hypothesis: the open transcript with one phrase put in.
#[derive(Debug, Clone, PartialEq)]
struct Hypothesis {
    option: usize,
    /// Where the phrase was put: its first word in `text`.
    start: usize,
    /// Words of the phrase (for the most-specific rule).
    phrase_words: usize,
    text: String,
    alignment: f64,
}

/// Finds which option `open` (the transcript of the whole utterance) names,
/// scoring each option's phrase in place inside the sentence. None when
/// the transcript is a single word (the one-word path decides those), when
/// no phrase aligns with any part of it, or when no option reaches half the
/// posterior.
pub fn find_in_sentence(
    model: &WhisperModel,
    audio: &AudioFeatures,
    prefix: &Prefix,
    ends: &EndTokens,
    open: &OpenResult,
    choices: &[GrammarChoice],
    opts: SentenceOptions,
) -> Result<Option<SentenceAnswer>, AsrError> {
    let tokens = without_repeated_sentences(&open.tokens, ends);
    let heard = model.tokenizer.decode(&tokens);
    let words: Vec<&str> = units(&heard);
    // Whisper starts an English transcript with a space, a Mandarin one
    // without: the sentences are written as the transcript was.
    let lead = if heard.starts_with(' ') { " " } else { "" };
    if words.len() < 2 {
        return Ok(None);
    }
    let hypotheses = hypotheses(&words, choices);
    if hypotheses.is_empty() {
        return Ok(None);
    }
    let hypotheses = best_aligned(hypotheses, MAX_SENTENCES - 1);
    let mut rows: Vec<Vec<u32>> = vec![tokens];
    let limit = model.meta.n_text_ctx - prefix.len - 1;
    for h in &hypotheses {
        let mut tokens = model.tokenizer.encode(&format!("{lead}{}", h.text))?;
        tokens.truncate(limit);
        rows.push(tokens);
    }
    let scores = score_rows(model, audio, prefix, ends, &rows)?;
    let as_heard = scores[0];
    let mut per_option: Vec<Option<(f32, &Hypothesis)>> = vec![None; choices.len()];
    for (h, &s) in hypotheses.iter().zip(&scores[1..]) {
        let slot = &mut per_option[h.option];
        if slot.is_none_or(|(best, _)| s > best) {
            *slot = Some((s, h));
        }
    }
    drop_less_specific(&mut per_option, choices);
    let mut all: Vec<f32> = per_option.iter().flatten().map(|(s, _)| *s).collect();
    all.push(as_heard - opts.none_margin);
    let total = log_sum_exp(&all);
    let Some((i, (logprob, h))) =
        per_option.iter().enumerate().filter_map(|(i, o)| Some((i, (*o)?))).max_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
    else {
        return Ok(None);
    };
    let confidence = (logprob - total).exp();
    Ok((confidence >= 0.5).then(|| SentenceAnswer {
        label: choices[i].label.clone(),
        logprob,
        confidence,
        sentence: h.text.clone(),
        phrase_at: (h.start, h.phrase_words),
    }))
}

/// The transcript without a sentence it already has ("A regular tea,
/// please. A regular tea, please.", or "Three small teas. Thank you." three
/// times over): Whisper loops like that on the silence after a short
/// utterance, one sentence or several. The copies would lengthen every
/// sentence scored, and a phrase put in one copy is contradicted by the
/// others, so the audio could not prefer it.
fn without_repeated_sentences(tokens: &[u32], ends: &EndTokens) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::with_capacity(tokens.len());
    let mut seen: Vec<&[u32]> = Vec::new();
    for sentence in tokens.split_inclusive(|t| ends.final_tokens.contains(t)) {
        if !seen.contains(&sentence) {
            out.extend_from_slice(sentence);
            seen.push(sentence);
        }
    }
    out
}

/// For every phrase of every option, the transcript with the phrase put in
/// place of its best-aligned span (of one word fewer to one word more than
/// the phrase has).
fn hypotheses(words: &[&str], choices: &[GrammarChoice]) -> Vec<Hypothesis> {
    let mut out: Vec<Hypothesis> = Vec::new();
    for (option, choice) in choices.iter().enumerate() {
        for phrase in &choice.phrases {
            let phrase_words: Vec<String> = units(phrase).into_iter().map(bare).filter(|w| !w.is_empty()).collect();
            for (start, len, alignment) in best_spans(words, &phrase_words, PLACES_PER_PHRASE) {
                let mut put = vec![phrase_words.clone()];
                // "two iced coffees": where the span ends in a plural, the
                // phrase is tried in the plural too, and the audio decides.
                if let Some(plural) = plural_of_last(&phrase_words, &bare(words[start + len - 1])) {
                    put.push(counted(plural, &bare(words[start])));
                }
                for phrase_words in put {
                    let text = substitute(words, start, len, &phrase_words);
                    if !out.iter().any(|h| h.text == text && h.option == option) {
                        out.push(Hypothesis { option, start, phrase_words: phrase_words.len(), text, alignment });
                    }
                }
            }
        }
    }
    out
}

/// The `n` best-aligned hypotheses, with every option's best few among
/// them: an option with many phrases ("a {size} latte" in eleven sizes)
/// must not crowd the others out of the rows the decoder scores.
fn best_aligned(all: Vec<Hypothesis>, n: usize) -> Vec<Hypothesis> {
    const PER_OPTION_FIRST: usize = 3;
    best_of_each(all, n, PER_OPTION_FIRST, |h| (h.option, h.alignment))
}

/// The `n` items of highest score, every group's best `first` among them
/// (as room allows), best first; `key` gives an item's group and score.
pub(super) fn best_of_each<T>(mut all: Vec<T>, n: usize, first: usize, key: impl Fn(&T) -> (usize, f64)) -> Vec<T> {
    let by_score = |a: &T, b: &T| key(b).1.total_cmp(&key(a).1);
    all.sort_by(by_score);
    let mut seen: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    let (mut kept, rest): (Vec<T>, Vec<T>) = all.into_iter().partition(|item| {
        let count = seen.entry(key(item).0).or_default();
        *count += 1;
        *count <= first
    });
    kept.truncate(n);
    let room = n - kept.len();
    kept.extend(rest.into_iter().take(room));
    kept.sort_by(by_score);
    kept
}

/// Up to `n` spans of `words` like `phrase`, most alike first, none
/// the same as another; only the first when it spells the phrase nearly
/// so (the transcript then has it, and further places only cost rows).
fn best_spans(words: &[&str], phrase: &[String], n: usize) -> Vec<(usize, usize, f64)> {
    const SURE_PLACE: f64 = 0.8;
    let mut found: Vec<(usize, usize, f64)> = Vec::new();
    while found.len() < n && found.first().is_none_or(|&(_, _, sim)| sim < SURE_PLACE) {
        let new = |start: usize, len: usize| found.iter().all(|&(s, l, _)| (s, l) != (start, len));
        let Some(next) = best_span(words, phrase, new) else { break };
        found.push(next);
    }
    found
}

/// The span of `words` most like `phrase` among those `allowed` (start,
/// length): (start, length, similarity).
pub(super) fn best_span(
    words: &[&str],
    phrase: &[String],
    allowed: impl Fn(usize, usize) -> bool,
) -> Option<(usize, usize, f64)> {
    let n = phrase.len();
    if n == 0 {
        return None;
    }
    let target = join_units(phrase);
    // Whisper writes a long word it mishears as several short ones ("cap
    // your Cheenos" for "cappuccinos"): a span may have a word for every
    // four letters of the phrase.
    let letters = phrase.iter().map(|w| w.chars().count()).sum::<usize>();
    let longest = (n + 1).max(letters.div_ceil(4));
    let mut best: Option<(usize, usize, f64)> = None;
    for len in n.saturating_sub(1).max(1)..=longest {
        for start in 0..=words.len().saturating_sub(len) {
            if start + len > words.len() {
                break;
            }
            if !allowed(start, len) {
                continue;
            }
            let span: Vec<String> = words[start..start + len].iter().map(|w| bare(w)).collect();
            let sim = similarity(&join_units(&span), &target);
            // Equal similarity: the span as long as the phrase.
            let better = best.is_none_or(|(_, l, s)| sim > s || (sim == s && len == n && l != n));
            if sim >= MIN_ALIGNMENT && better {
                best = Some((start, len, sim));
            }
        }
    }
    best
}

/// Where in `words` the phrase of `phrases` most like some of them is:
/// (first word, words), when one is like enough.
pub(super) fn phrase_at(words: &[&str], phrases: &[String]) -> Option<(usize, usize)> {
    phrases
        .iter()
        .filter_map(|p| {
            let phrase: Vec<String> = units(p).into_iter().map(bare).filter(|w| !w.is_empty()).collect();
            best_span(words, &phrase, |_, _| true)
        })
        .max_by(|a, b| a.2.total_cmp(&b.2))
        .map(|(start, len, _)| (start, len))
}

/// The phrase with its last word in the English plural, when `heard` (the
/// last word of the span it replaces) ends in "s" and the phrase does not.
fn plural_of_last(phrase: &[String], heard: &str) -> Option<Vec<String>> {
    let last = phrase.last()?;
    let is_latin = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphabetic());
    if !heard.ends_with('s') || last.ends_with('s') || !is_latin(last) {
        return None;
    }
    let plural = if last.ends_with(['x', 'z']) || last.ends_with("ch") || last.ends_with("sh") {
        format!("{last}es")
    } else if last.ends_with('y') && !last[..last.len() - 1].ends_with(['a', 'e', 'i', 'o', 'u']) {
        format!("{}ies", &last[..last.len() - 1])
    } else {
        format!("{last}s")
    };
    let mut out = phrase.to_vec();
    *out.last_mut()? = plural;
    Some(out)
}

/// A plural phrase put in place of a span that opens with `first`,
/// without the "a" a plural cannot have: a number said there takes its
/// place ("two large lattes" for "a large latte"), so the quantity stays
/// in the sentence scored; otherwise the article just goes.
fn counted(plural: Vec<String>, first: &str) -> Vec<String> {
    match plural.as_slice() {
        [article, rest @ ..] if !rest.is_empty() && matches!(article.as_str(), "a" | "an") => {
            let number = crate::intent::parse_digits(first).map(|_| first.to_string());
            number.into_iter().chain(rest.iter().cloned()).collect()
        }
        _ => plural,
    }
}

/// How alike two word sequences are in spelling or in sound (0..1).
fn similarity(a: &str, b: &str) -> f64 {
    let key = |s: &str| s.split_whitespace().map(phonetic_key).collect::<Vec<_>>().join(" ");
    let (ka, kb) = (key(a), key(b));
    // Sound keys are short ("LT" for latte, "KT" for get): one letter off
    // in them is a bigger step than in spelling, so they count for less.
    let by_sound = if ka.is_empty() || kb.is_empty() { 0.0 } else { 0.9 * normalized_levenshtein(&ka, &kb) };
    normalized_levenshtein(a, b).max(by_sound)
}

/// A word without surrounding punctuation, in lower case.
pub(super) fn bare(word: &str) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'').to_lowercase()
}

/// `words` with `words[start..start + len]` replaced by the phrase, keeping
/// the span's capital and the punctuation around it, as Whisper would
/// write the sentence.
pub(super) fn substitute(words: &[&str], start: usize, len: usize, phrase: &[String]) -> String {
    let first = words[start];
    let last = words[start + len - 1];
    let lead: String = first.chars().take_while(|c| !c.is_alphanumeric()).collect();
    let trail: String = {
        let rev: String = last.chars().rev().take_while(|c| !c.is_alphanumeric()).collect();
        rev.chars().rev().collect()
    };
    let mut put = join_units(phrase);
    if first.trim_start_matches(|c: char| !c.is_alphanumeric()).starts_with(char::is_uppercase) {
        let mut c = put.chars();
        put = c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default();
    }
    let mut out: Vec<String> = words[..start].iter().map(|w| w.to_string()).collect();
    out.push(format!("{lead}{put}{trail}"));
    out.extend(words[start + len..].iter().map(|w| w.to_string()));
    join_units(&out)
}

/// Overlapping phrases: the most specific one wins. When an option's
/// phrase contains another option's words ("house coffee" and "coffee")
/// and its sentence scores no worse, the shorter option is out: the audio
/// cannot prefer "coffee" in "a house coffee", both sentences are the same.
fn drop_less_specific(per_option: &mut [Option<(f32, &Hypothesis)>], choices: &[GrammarChoice]) {
    const SAME_NATS: f32 = 0.5;
    // When the transcript already spells the longer phrase nearly so ("ice
    // coffee" for "iced coffee"), the difference is one the speaker's
    // accent or the transcript's spelling makes, not the words said.
    const SPELT_NATS: f32 = 2.0;
    const SPELT_ALIGNMENT: f64 = 0.8;
    let snapshot: Vec<Option<(f32, Hypothesis)>> = per_option.iter().map(|o| o.map(|(s, h)| (s, h.clone()))).collect();
    for (short, slot) in per_option.iter_mut().enumerate() {
        let Some((s_short, h_short)) = *slot else { continue };
        let dominated = snapshot.iter().enumerate().any(|(long, o)| {
            o.as_ref().is_some_and(|(s_long, h_long)| {
                long != short
                    && h_long.phrase_words > h_short.phrase_words
                    && (*s_long >= s_short - SAME_NATS
                        || (h_long.alignment >= SPELT_ALIGNMENT && *s_long >= s_short - SPELT_NATS))
                    && contains_phrase(&choices[long], &choices[short])
            })
        });
        if dominated {
            *slot = None;
        }
    }
}

/// True when some phrase of `long` holds some phrase of `short` word for word.
fn contains_phrase(long: &GrammarChoice, short: &GrammarChoice) -> bool {
    let words = |p: &str| units(p).into_iter().map(bare).collect::<Vec<_>>();
    long.phrases.iter().any(|l| {
        let l = words(l);
        short.phrases.iter().any(|s| {
            let s = words(s);
            !s.is_empty() && s.len() < l.len() && l.windows(s.len()).any(|w| w == s.as_slice())
        })
    })
}

/// log P(row's tokens, then an end | audio) for each row, teacher-forced
/// after the shared prompt, [`ROWS_PER_CALL`] rows per decoder call.
pub(super) fn score_rows(
    model: &WhisperModel,
    audio: &AudioFeatures,
    prefix: &Prefix,
    ends: &EndTokens,
    rows: &[Vec<u32>],
) -> Result<Vec<f32>, AsrError> {
    let eot = model.meta.eot;
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_CALL) {
        let width = chunk.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let mut input = Vec::with_capacity(chunk.len() * width);
        for t in chunk {
            input.extend_from_slice(t);
            input.extend(std::iter::repeat_n(eot, width - t.len()));
        }
        let cache = model.select_rows(&prefix.cache, &vec![0; chunk.len()]);
        let (logits, _) = model.decode(audio, &input, &cache, prefix.len)?;
        for (b, t) in chunk.iter().enumerate() {
            let Some(&first) = t.first() else {
                out.push(f32::NEG_INFINITY);
                continue;
            };
            let mut s = prefix.first[first as usize];
            for j in 1..=t.len() {
                let row = logits.row(b, j - 1);
                let lse = log_sum_exp(row);
                if j < t.len() {
                    s += row[t[j] as usize] - lse;
                } else {
                    let end: Vec<f32> = ends.final_tokens.iter().map(|&e| row[e as usize] - lse).collect();
                    s += log_sum_exp(&end);
                }
            }
            out.push(s);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(label: &str, phrases: &[&str]) -> GrammarChoice {
        GrammarChoice::new(label, phrases.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn a_phrase_replaces_the_span_it_sounds_like() {
        let words: Vec<&str> = "Can I get a mocker, please?".split_whitespace().collect();
        let hs = hypotheses(&words, &[choice("mocha", &["mocha"]), choice("latte", &["latte"])]);
        assert_eq!(hs.len(), 1, "{hs:?}");
        assert_eq!(hs[0].text, "Can I get a mocha, please?");
        let words: Vec<&str> = "Americana please.".split_whitespace().collect();
        let hs = hypotheses(&words, &[choice("americano", &["americano"])]);
        assert_eq!(hs[0].text, "Americano please.");
    }

    #[test]
    fn a_sentence_said_again_by_a_decoding_loop_is_read_once() {
        // 13 = ".", 50256 = the end of text.
        let ends = EndTokens { tokens: vec![50256, 13, 11], final_tokens: vec![50256, 13] };
        let looped = [1, 2, 3, 13, 1, 2, 3, 13, 1, 2, 3, 13];
        assert_eq!(without_repeated_sentences(&looped, &ends), [1, 2, 3, 13]);
        // A loop of two sentences ("Three small teas. Thank you." over and
        // over) is read once too.
        let looped = [1, 2, 13, 7, 8, 13, 1, 2, 13, 7, 8, 13, 1, 2, 13];
        assert_eq!(without_repeated_sentences(&looped, &ends), [1, 2, 13, 7, 8, 13]);
        // Different sentences, and words said twice inside one, stay.
        let said = [1, 1, 13, 4, 5, 13, 1, 1];
        assert_eq!(without_repeated_sentences(&said, &ends), said);
    }

    #[test]
    fn a_longer_phrase_the_transcript_nearly_spells_wins_by_a_little() {
        let choices = [choice("coffee", &["coffee"]), choice("iced_coffee", &["iced coffee"])];
        let words: Vec<&str> = "3 medium ice coffees,".split_whitespace().collect();
        let hs = hypotheses(&words, &choices);
        let short = hs.iter().find(|h| h.option == 0 && h.text == "3 medium ice coffees,").expect("as heard");
        let long = hs.iter().find(|h| h.option == 1 && h.text == "3 medium iced coffees,").expect("iced");
        let mut per_option = vec![Some((-4.8, short)), Some((-6.2, long))];
        drop_less_specific(&mut per_option, &choices);
        assert!(per_option[0].is_none() && per_option[1].is_some(), "{per_option:?}");
        // Far below, the audio says the shorter phrase.
        let mut per_option = vec![Some((-4.8, short)), Some((-9.0, long))];
        drop_less_specific(&mut per_option, &choices);
        assert!(per_option[0].is_some());
    }

    #[test]
    fn every_option_keeps_a_place_among_the_sentences_scored() {
        let h = |option: usize, alignment: f64| Hypothesis {
            option,
            start: 0,
            phrase_words: 1,
            text: String::new(),
            alignment,
        };
        // Option 0 has ten well-aligned forms, option 1 one poorer one.
        let mut all: Vec<Hypothesis> = (0..10).map(|i| h(0, 0.9 - i as f64 * 0.01)).collect();
        all.push(h(1, 0.5));
        let kept = best_aligned(all, 5);
        assert_eq!(kept.len(), 5);
        assert!(kept.iter().any(|k| k.option == 1), "{kept:?}");
        assert_eq!(kept[0].alignment, 0.9, "best first");
    }

    #[test]
    fn a_plural_in_the_sentence_is_also_tried_as_a_plural_phrase() {
        let words: Vec<&str> = "3 medium ice coffees,".split_whitespace().collect();
        let hs = hypotheses(&words, &[choice("iced_coffee", &["iced coffee"])]);
        let texts: Vec<&str> = hs.iter().map(|h| h.text.as_str()).collect();
        assert_eq!(texts, ["3 medium iced coffee,", "3 medium iced coffees,"]);
        let words: Vec<&str> = "two small lattes please".split_whitespace().collect();
        let hs = hypotheses(&words, &[choice("latte", &["latte"])]);
        assert!(hs.iter().any(|h| h.text == "two small lattes please"), "{hs:?}");
        // A plural has no "a": the number said takes its place, or it goes.
        let words: Vec<&str> = "Can I get two medium-ocas with milk?".split_whitespace().collect();
        let hs = hypotheses(&words, &[choice("mocha", &["a medium mocha"])]);
        assert!(hs.iter().any(|h| h.text == "Can I get two medium mochas with milk?"), "{hs:?}");
        let phrase = |p: &str| -> Vec<String> { p.split(' ').map(String::from).collect() };
        assert_eq!(counted(phrase("a large lattes"), "3"), phrase("3 large lattes"));
        assert_eq!(counted(phrase("a large lattes"), "get"), phrase("large lattes"));
        assert_eq!(counted(phrase("iced coffees"), "two"), phrase("iced coffees"));
        assert_eq!(plural_of_last(&["berry".into()], "berries"), Some(vec!["berries".to_string()]));
        assert_eq!(plural_of_last(&["latte".into()], "latte"), None);
    }

    #[test]
    fn a_two_word_phrase_may_take_the_place_of_one_or_three_words() {
        let words: Vec<&str> = "I'd like a housecoffee.".split_whitespace().collect();
        let hs = hypotheses(&words, &[choice("house_coffee", &["house coffee"])]);
        assert_eq!(hs[0].text, "I'd like a house coffee.");
    }

    #[test]
    fn a_long_word_heard_as_several_is_replaced_whole() {
        let words: Vec<&str> = "Hi, can I get 2 medium cap your Cheenos, thanks.".split_whitespace().collect();
        let hs = hypotheses(&words, &[choice("cappuccino", &["a medium cappuccino"])]);
        assert!(hs.iter().any(|h| h.text == "Hi, can I get 2 medium cappuccinos, thanks."), "{hs:?}");
        // Five words for "a medium cappuccino" (17 letters), two for "tea".
        let phrase = |p: &str| -> Vec<String> { p.split(' ').map(String::from).collect() };
        let span = |p: &str| best_span(&words, &phrase(p), |_, _| true).map(|(start, len, _)| (start, len));
        assert_eq!(span("a medium cappuccino"), Some((4, 5)));
        assert!(span("tea").is_none_or(|(_, len)| len <= 2));
    }

    #[test]
    fn a_mandarin_phrase_replaces_the_characters_it_resembles() {
        // No spaces: the span is a run of characters, the slip one of them.
        let words = units("我想查一下帐单。");
        let hs = hypotheses(&words, &[choice("billing", &["账单"]), choice("support", &["技术支持"])]);
        assert_eq!(hs[0].text, "我想查一下账单。", "{hs:?}");
        assert!(hs.iter().all(|h| h.option == 0), "{hs:?}");
    }

    #[test]
    fn a_phrase_takes_the_place_of_part_of_a_hyphenated_word() {
        let words = units("I'd like to order a medium-moa please.");
        let hs = hypotheses(&words, &[choice("mocha", &["mocha"])]);
        assert!(hs.iter().any(|h| h.text == "I'd like to order a medium-mocha please."), "{hs:?}");
    }

    #[test]
    fn a_phrase_no_span_spells_is_tried_in_several_places() {
        // "latte" is as near "large" in letters as "watt a", where it was said.
        let words: Vec<&str> = "How can I get a large watt a please.".split_whitespace().collect();
        let hs = hypotheses(&words, &[choice("latte", &["latte"])]);
        assert!(hs.iter().any(|h| h.text == "How can I get a large latte please."), "{hs:?}");
        assert!(hs.len() <= PLACES_PER_PHRASE, "{hs:?}");
        // Spelt nearly so, it is tried where it is spelt only.
        let words: Vec<&str> = "How can I get a large latte please.".split_whitespace().collect();
        assert_eq!(hypotheses(&words, &[choice("latte", &["latte"])]).len(), 1);
    }

    #[test]
    fn the_most_specific_phrase_wins_a_tie() {
        let choices = [choice("coffee", &["coffee"]), choice("house_coffee", &["house coffee"])];
        let words: Vec<&str> = "a house coffee please".split_whitespace().collect();
        let hs = hypotheses(&words, &choices);
        let mut per_option: Vec<Option<(f32, &Hypothesis)>> = vec![None; 2];
        for h in &hs {
            per_option[h.option] = Some((-3.0, h));
        }
        drop_less_specific(&mut per_option, &choices);
        assert!(per_option[0].is_none() && per_option[1].is_some(), "{per_option:?}");
        // When the audio clearly prefers the shorter phrase, it stays.
        let mut per_option: Vec<Option<(f32, &Hypothesis)>> = vec![None; 2];
        per_option[0] = Some((-3.0, &hs[0]));
        per_option[1] = Some((-9.0, &hs[1]));
        drop_less_specific(&mut per_option, &choices);
        assert!(per_option[0].is_some());
    }
}
