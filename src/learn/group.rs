//! Groups callers' troubled utterances of one menu that say the same
//! thing: equal after the matcher's own normaliser ("Billing." and "uh,
//! billing please"), or near enough in spelling or sound to be the same
//! words misheard ("billing" / "bill in").
use std::collections::BTreeMap;

use super::collect::Heard;
use crate::intent::normalize;
use crate::intent::phonetic::phonetic_key;

/// Spelling similarity (normalised Levenshtein) at or above which two
/// normalised transcripts are one group.
pub const SPELLING_SIMILAR: f64 = 0.8;

/// Utterances of one dialplan menu that say the same thing.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub dialplan: String,
    pub menu: String,
    /// The most frequent normalised transcript of the group.
    pub words: String,
    /// Every member, in the order the calls were read.
    pub members: Vec<Heard>,
}

/// The troubled utterances of `heard`, grouped per dialplan and menu;
/// the biggest groups first. Utterances whose words normalise to nothing
/// (noise, fillers) form one group per menu with `words` empty.
pub fn group(heard: &[Heard]) -> Vec<Group> {
    let mut by_menu: BTreeMap<(&str, &str), Vec<&Heard>> = BTreeMap::new();
    for h in heard.iter().filter(|h| h.fate.is_trouble()) {
        by_menu.entry((&h.dialplan, &h.menu)).or_default().push(h);
    }
    let mut groups = Vec::new();
    for ((dialplan, menu), members) in by_menu {
        // Exact normalised texts first, most frequent first, so a group is
        // named after what most callers said and slips join it.
        let mut exact: Vec<(String, Vec<&Heard>)> = Vec::new();
        for h in members {
            let words = normalize(&h.text);
            match exact.iter_mut().find(|(w, _)| *w == words) {
                Some((_, list)) => list.push(h),
                None => exact.push((words, vec![h])),
            }
        }
        exact.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
        let mut merged: Vec<(String, Vec<&Heard>)> = Vec::new();
        for (words, list) in exact {
            match merged.iter_mut().find(|(w, _)| same_words(w, &words)) {
                Some((_, into)) => into.extend(list),
                None => merged.push((words, list)),
            }
        }
        groups.extend(merged.into_iter().map(|(words, list)| Group {
            dialplan: dialplan.to_string(),
            menu: menu.to_string(),
            words,
            members: list.into_iter().cloned().collect(),
        }));
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.members.len()));
    groups
}

/// Whether two normalised transcripts are the same words, allowing for a
/// recognition slip: same sounds word for word, or nearly the same spelling.
pub fn same_words(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let sounds = |t: &str| t.split(' ').map(phonetic_key).collect::<Vec<_>>().join(" ");
    // Keys of one or two sounds say little ("no" / "know" / "now").
    let (sa, sb) = (sounds(a), sounds(b));
    if sa == sb && sa.chars().filter(|c| !c.is_whitespace()).count() > 2 {
        return true;
    }
    strsim::normalized_levenshtein(a, b) >= SPELLING_SIMILAR
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::collect::Fate;

    fn heard(menu: &str, text: &str, fate: Fate) -> Heard {
        Heard {
            dialplan: "d".into(),
            menu: menu.into(),
            call_id: format!("call-{text}"),
            text: text.into(),
            confidence: 0.3,
            index: 0,
            fate,
            then: None,
            audio_file: None,
        }
    }

    #[test]
    fn normalised_and_misheard_forms_group_together_per_menu() {
        let all = [
            heard("main", "Billing.", Fate::NoMatch),
            heard("main", "Um, billing please.", Fate::NoMatch),
            heard("main", "Biling", Fate::Refused),
            heard("main", "parking", Fate::NoMatch),
            heard("other", "billing", Fate::NoMatch),
            heard("main", "billing", Fate::Acted { intent: "x".into() }),
            heard("main", "[Music]", Fate::NoMatch),
        ];
        let groups = group(&all);
        let summary: Vec<(&str, &str, usize)> =
            groups.iter().map(|g| (g.menu.as_str(), g.words.as_str(), g.members.len())).collect();
        assert_eq!(summary, [("main", "billing", 3), ("main", "", 1), ("main", "parking", 1), ("other", "billing", 1)]);
    }

    #[test]
    fn different_words_stay_apart() {
        assert!(!same_words("billing", "parking"));
        assert!(!same_words("no", "go"));
        assert!(!same_words("left", ""));
        assert!(same_words("technical support", "tecnical support"));
    }
}
