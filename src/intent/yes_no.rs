//! Yes or no, for "Did you mean billing?" and "I heard 4 5 1 2, is that
//! right?".
//!
//! Words are graded: clear answers ("yes", "nope") count wherever they
//! appear ("yes, billing please"); words that are answers only in context
//! ("right", "sure", "okay", and Whisper's "now" for "no") count only when
//! the rest of the utterance is padding ("that's right", "all right"), so
//! "turn right" or "right now" are not taken as an answer.
use super::normalize::{clean_tokens, is_filler};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grade {
    Clear,
    InContext,
}

fn answer_word(token: &str) -> Option<(bool, Grade)> {
    use Grade::*;
    Some(match token {
        "yes" | "yeah" | "yep" | "yup" | "yea" | "ya" | "yah" | "yess" | "affirmative" | "mhm" => (true, Clear),
        "correct" | "right" | "alright" | "sure" | "ok" | "okay" | "fine" | "exactly" | "absolutely" | "definitely"
        | "indeed" | "true" | "good" | "perfect" => (true, InContext),
        "no" | "nope" | "nah" | "negative" => (false, Clear),
        "wrong" | "incorrect" | "false" | "now" | "know" | "nay" => (false, InContext),
        // Mandarin, one character each (see `script`): right, is, good, fine;
        // not. Each is an answer only on its own: "是" is also "is".
        "对" | "是" | "好" | "行" => (true, InContext),
        "不" => (false, InContext),
        _ => return None,
    })
}

/// Multi-word answers, checked before single words.
const ANSWER_PHRASES: &[(&[&str], bool)] = &[
    (&["uh", "huh"], true),
    (&["mm", "hmm"], true),
    (&["of", "course"], true),
    (&["go", "ahead"], true),
    (&["sounds", "good"], true),
    (&["that's", "it"], true),
    (&["uh", "uh"], false),
    (&["not", "really"], false),
    (&["not", "at", "all"], false),
    (&["no", "way"], false),
    // Mandarin: yes (it is), right, no mistake, can do; it is not, not
    // right, don't want, there isn't.
    (&["是", "的"], true),
    (&["对", "的"], true),
    (&["没", "错"], true),
    (&["可", "以"], true),
    (&["不", "是"], false),
    (&["不", "对"], false),
    (&["不", "要"], false),
    (&["没", "有"], false),
];

/// "not", "isn't": flip the answer word that follows within two words.
fn is_negator(token: &str) -> bool {
    matches!(token, "not" | "isn't" | "isnt" | "ain't" | "wasn't" | "nothing")
}

/// Words that may surround a contextual answer without changing it.
fn is_padding(token: &str) -> bool {
    is_filler(token)
        || matches!(
            token,
            "that"
                | "that's"
                | "thats"
                | "it"
                | "it's"
                | "its"
                | "is"
                | "was"
                | "all"
                | "sir"
                | "ma'am"
                | "you"
                | "thank"
                | "very"
                | "much"
                | "so"
                | "i"
                | "think"
                | "well"
                | "oh"
                | "yes"
                | "no"
                | "quite"
                | "totally"
                | "that'll"
                | "do"
                | "be"
        )
}

/// How far a negator reaches: "not right", "isn't that right"? is rare, but
/// "that is not correct" needs two words.
const NEGATION_REACH: usize = 2;

/// `Some(true)` for yes, `Some(false)` for no, `None` when the utterance is
/// not a yes/no answer or says both.
pub fn parse_yes_no(text: &str) -> Option<bool> {
    // Repeats ("No, no.") need no collapsing: answers are counted, and
    // collapsing would turn "uh uh" (no) into a filler.
    let tokens = clean_tokens(text);

    let mut clear = [0u32; 2]; // [no, yes]
    let mut in_context = [0u32; 2];
    let mut other_words = 0u32;
    let mut negation_left = 0usize;
    let mut i = 0;
    'scan: while i < tokens.len() {
        for (phrase, answer) in ANSWER_PHRASES {
            let end = i + phrase.len();
            if end <= tokens.len() && tokens[i..end].iter().zip(phrase.iter()).all(|(t, p)| t == p) {
                clear[usize::from(*answer)] += 1;
                i = end;
                negation_left = 0;
                continue 'scan;
            }
        }
        let token = tokens[i].as_str();
        if is_negator(token) {
            negation_left = NEGATION_REACH;
        } else if let Some((mut answer, grade)) = answer_word(token) {
            if negation_left > 0 {
                if token == "sure" {
                    // "not sure" is no answer at all.
                    return None;
                }
                answer = !answer;
                negation_left = 0;
            }
            match grade {
                Grade::Clear => clear[usize::from(answer)] += 1,
                Grade::InContext => in_context[usize::from(answer)] += 1,
            }
        } else {
            negation_left = negation_left.saturating_sub(1);
            if !is_padding(token) {
                other_words += 1;
            }
        }
        i += 1;
    }

    let mut votes = clear;
    if other_words == 0 {
        votes[0] += in_context[0];
        votes[1] += in_context[1];
    }
    match (votes[1] > 0, votes[0] > 0) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_yes_no;

    #[test]
    fn yes_answers() {
        for text in [
            "Yes.",
            "yes",
            "Yes, yes.",
            "Yeah.",
            "Yep!",
            "Yup",
            "Correct.",
            "That's correct.",
            "That's right.",
            "That is right",
            "Right.",
            "Sure.",
            "OK.",
            "Okay.",
            "All right.",
            "Affirmative.",
            "Uh-huh.",
            "Mm-hmm.",
            "Of course.",
            "Yes, please.",
            "Yes, billing please.",
            "Yes, thank you.",
            "Exactly.",
        ] {
            assert_eq!(parse_yes_no(text), Some(true), "{text:?}");
        }
    }

    #[test]
    fn no_answers() {
        for text in [
            "No.",
            "no",
            "No, no.",
            "Nope.",
            "Nah.",
            "Wrong.",
            "That's wrong.",
            "Incorrect.",
            "Not right.",
            "That's not right.",
            "That is not correct.",
            "That isn't right.",
            "Negative.",
            "Now.",
            "Now, now.",
            "No, thank you.",
            "No thanks.",
            "Not really.",
            "No, I want an agent.",
            "Uh-uh.",
        ] {
            assert_eq!(parse_yes_no(text), Some(false), "{text:?}");
        }
    }

    #[test]
    fn not_an_answer() {
        for text in [
            "",
            "[Music]",
            "Billing.",
            "Turn right.",
            "Right now.",
            "Yes. No.",
            "No, yes.",
            "I'm not sure.",
            "Go forward 10 meters.",
            "What's the weather like?",
            "Take.",
            "4512",
            "I know the number",
        ] {
            assert_eq!(parse_yes_no(text), None, "{text:?}");
        }
    }
}
