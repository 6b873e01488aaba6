//! What to do about each group: teach an option the callers' words, offer
//! something the menu lacks, or nothing; with the evidence, and the change
//! replayed through the real text matcher over every recorded utterance
//! of the menu, so an admin sees what it fixes and what else it would move.
use super::collect::{Fate, Heard};
use super::group::Group;
use crate::dialplan::{Dialplan, Menu};
use crate::intent::{Candidate, IntentMatcher, TextMatcher};

/// Example call ids shown per suggestion.
pub const EXAMPLES: usize = 5;

/// What a group asks of the dialplan.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Proposal {
    /// Add `phrase` to option `option` of the menu.
    AddPhrase { option: String, phrase: String },
    /// Many callers ask for this and no option fits: a new option.
    NewOption { phrase: String },
    /// Callers ask for this in several menus of the dialplan and nothing
    /// fits in any: a global intent (`[globals.NAME]`).
    NewGlobal { phrase: String, menus: Vec<String> },
    /// Too few callers, no words, or nothing the dialplan can change.
    Nothing { why: String },
}

/// How the call decides on a text: act, ask "Did you mean …?", or no match.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "decision", content = "intent", rename_all = "snake_case")]
pub enum Decision {
    Act(String),
    Confirm(String),
    NoMatch,
}

/// A recorded utterance the change would send somewhere else.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Moved {
    pub call_id: String,
    pub text: String,
    pub before: Decision,
    pub after: Decision,
}

/// The change replayed over the menu's recorded utterances.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Replay {
    /// Which check ran: `open-transcripts` (the recorded transcripts
    /// through the text matcher).
    pub check: &'static str,
    /// Members of the group the change would have acted on as the option.
    pub fixed: usize,
    /// Every other recorded utterance of the menu, checked for a change.
    pub others_checked: usize,
    /// Other utterances whose decision the change alters.
    pub moved: Vec<Moved>,
    /// The same check on the kept audio, recognised again (`--rehear`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio: Option<super::rehear::AudioReplay>,
}

/// Which option callers of a group meant, and how many of them said so.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Meant {
    pub option: String,
    pub callers: usize,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Suggestion {
    pub dialplan: String,
    pub menu: String,
    /// The group's words, normalised.
    pub words: String,
    pub count: usize,
    /// Different transcripts in the group, most frequent first.
    pub heard_as: Vec<String>,
    pub example_calls: Vec<String>,
    /// How many were not understood, refused, confirmed, undone.
    pub no_match: usize,
    pub refused: usize,
    pub confirmed: usize,
    pub undone: usize,
    /// Mean confidence the calls decided with.
    pub confidence_before: f32,
    /// The option the callers meant, with how many said so (a yes to
    /// "Did you mean …?", or the option they chose next).
    pub meant: Option<Meant>,
    pub proposal: Proposal,
    /// Present for [`Proposal::AddPhrase`].
    pub replay: Option<Replay>,
}

/// A suggestion for each group. `heard` is every recorded utterance
/// (the regression corpus); `plans` the dialplans as they are now.
pub fn propose(groups: &[Group], heard: &[Heard], plans: &[Dialplan], min_count: usize) -> Vec<Suggestion> {
    let matcher = TextMatcher::default();
    let mut suggestions: Vec<Suggestion> = groups
        .iter()
        .filter_map(|g| {
            let plan = plans.iter().find(|p| p.name == g.dialplan)?;
            let menu = plan.menus.get(&g.menu)?;
            Some(suggest(g, heard, plan, menu, &matcher, min_count))
        })
        .collect();
    promote_to_globals(&mut suggestions);
    suggestions
}

/// The same request missing from several menus of a dialplan is one
/// global intent, not an option in each.
fn promote_to_globals(suggestions: &mut [Suggestion]) {
    let missing = |s: &Suggestion| match &s.proposal {
        Proposal::NewOption { phrase } | Proposal::NewGlobal { phrase, .. } => {
            Some((s.dialplan.clone(), phrase.clone()))
        }
        _ => None,
    };
    let all: Vec<((String, String), String)> =
        suggestions.iter().filter_map(|s| missing(s).map(|k| (k, s.menu.clone()))).collect();
    for s in suggestions.iter_mut() {
        let Some(key) = missing(s) else { continue };
        let mut menus: Vec<String> = all.iter().filter(|(k, _)| *k == key).map(|(_, m)| m.clone()).collect();
        menus.sort();
        menus.dedup();
        if menus.len() >= 2 {
            s.proposal = Proposal::NewGlobal { phrase: key.1, menus };
        }
    }
}

fn suggest(
    g: &Group,
    heard: &[Heard],
    plan: &Dialplan,
    menu: &Menu,
    matcher: &TextMatcher,
    min_count: usize,
) -> Suggestion {
    let count = g.members.len();
    let fates = |name: &str| g.members.iter().filter(|h| h.fate.name() == name).count();
    let meant = meant_option(g, menu);
    let phrase = g.words.clone();
    let already = |option: &str| {
        menu.options
            .iter()
            .any(|o| o.intent == option && o.phrases.iter().any(|p| crate::intent::normalize(p) == phrase))
    };
    let proposal = if phrase.is_empty() {
        Proposal::Nothing { why: "no words: noise or silence".into() }
    } else if count < min_count {
        Proposal::Nothing { why: format!("fewer than {min_count} callers") }
    } else {
        match meant.as_ref().map(|m| &m.option) {
            Some(option) if already(option) => Proposal::Nothing {
                why: format!("`{phrase}` is already a phrase of `{option}`: a recognition slip, not a missing phrase"),
            },
            Some(option) => Proposal::AddPhrase { option: option.clone(), phrase: phrase.clone() },
            None => Proposal::NewOption { phrase: phrase.clone() },
        }
    };
    let replay = match &proposal {
        Proposal::AddPhrase { option, phrase } => Some(replay(g, heard, plan, menu, option, phrase, matcher)),
        _ => None,
    };
    let mut heard_as: Vec<(String, usize)> = Vec::new();
    for h in &g.members {
        match heard_as.iter_mut().find(|(t, _)| *t == h.text) {
            Some((_, n)) => *n += 1,
            None => heard_as.push((h.text.clone(), 1)),
        }
    }
    heard_as.sort_by_key(|h| std::cmp::Reverse(h.1));
    let mut example_calls: Vec<String> = Vec::new();
    for h in &g.members {
        if example_calls.len() < EXAMPLES && !example_calls.contains(&h.call_id) {
            example_calls.push(h.call_id.clone());
        }
    }
    Suggestion {
        dialplan: g.dialplan.clone(),
        menu: g.menu.clone(),
        words: g.words.clone(),
        count,
        heard_as: heard_as.into_iter().map(|(t, _)| t).collect(),
        example_calls,
        no_match: fates("no_match"),
        refused: fates("refused"),
        confirmed: fates("confirmed"),
        undone: fates("undone"),
        confidence_before: g.members.iter().map(|h| h.confidence).sum::<f32>() / count.max(1) as f32,
        meant,
        proposal,
        replay,
    }
}

/// The option most members meant, when at least half of them say so:
/// a confirmed "Did you mean X?" says X, else the option chosen next. An
/// option undone at once was not meant.
fn meant_option(g: &Group, menu: &Menu) -> Option<Meant> {
    let mut votes: Vec<(String, usize)> = Vec::new();
    for h in &g.members {
        let vote = match &h.fate {
            Fate::Confirmed { intent } => Some(intent),
            Fate::Undone { intent, .. } => h.then.as_ref().filter(|t| *t != intent),
            _ => h.then.as_ref(),
        };
        let Some(vote) = vote.filter(|v| menu.options.iter().any(|o| &o.intent == *v)) else { continue };
        match votes.iter_mut().find(|(v, _)| v == vote) {
            Some((_, n)) => *n += 1,
            None => votes.push((vote.clone(), 1)),
        }
    }
    votes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let (option, callers) = votes.into_iter().next().filter(|(_, n)| 2 * n >= g.members.len())?;
    Some(Meant { option, callers })
}

/// The candidates a call in `menu` matches against: its options, then the
/// globals when the menu has them (as the call machine builds them).
pub fn candidates(plan: &Dialplan, menu: &Menu) -> Vec<Candidate> {
    let options = menu.options.iter().map(|o| Candidate { intent: o.intent.clone(), phrases: o.phrases.clone() });
    let globals = plan
        .globals
        .iter()
        .filter(|_| menu.globals)
        .map(|g| Candidate { intent: g.intent.clone(), phrases: g.phrases.clone() });
    options.chain(globals).collect()
}

/// How a call of `plan` decides on `text` among `candidates`.
pub fn decide(plan: &Dialplan, matcher: &dyn IntentMatcher, candidates: &[Candidate], text: &str) -> Decision {
    match matcher.match_intent(text, candidates).best {
        Some(best) if best.confidence >= plan.thresholds.accept => Decision::Act(best.intent),
        Some(best) if best.confidence >= plan.thresholds.confirm => Decision::Confirm(best.intent),
        _ => Decision::NoMatch,
    }
}

fn replay(
    g: &Group,
    heard: &[Heard],
    plan: &Dialplan,
    menu: &Menu,
    option: &str,
    phrase: &str,
    matcher: &TextMatcher,
) -> Replay {
    let before = candidates(plan, menu);
    let mut after = before.clone();
    if let Some(c) = after.iter_mut().find(|c| c.intent == option) {
        c.phrases.push(phrase.to_string());
    }
    let target = Decision::Act(option.to_string());
    let fixed = g
        .members
        .iter()
        .filter(|h| {
            decide(plan, matcher, &before, &h.text) != target && decide(plan, matcher, &after, &h.text) == target
        })
        .count();
    let in_group = |h: &Heard| g.members.iter().any(|m| m.call_id == h.call_id && m.text == h.text);
    let others: Vec<&Heard> =
        heard.iter().filter(|h| h.dialplan == g.dialplan && h.menu == g.menu && !in_group(h)).collect();
    let moved = others
        .iter()
        .filter_map(|h| {
            let (b, a) = (decide(plan, matcher, &before, &h.text), decide(plan, matcher, &after, &h.text));
            (b != a).then(|| Moved { call_id: h.call_id.clone(), text: h.text.clone(), before: b, after: a })
        })
        .collect();
    Replay { check: "open-transcripts", fixed, others_checked: others.len(), moved, audio: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::group::group;

    const PLAN: &str = r#"
start = "main"
[operator]
extension = "100"
[menus.main]
prompt = "Invoices or opening hours?"
[menus.main.options.billing]
phrases = ["invoices"]
dtmf = "1"
transfer = "200"
[menus.main.options.hours]
phrases = ["opening hours"]
dtmf = "2"
transfer = "300"
"#;

    fn heard(call: usize, text: &str, fate: Fate, then: Option<&str>) -> Heard {
        Heard {
            dialplan: "d".into(),
            menu: "main".into(),
            call_id: format!("call-{call}"),
            text: text.into(),
            confidence: 0.2,
            index: 0,
            fate,
            then: then.map(String::from),
            audio_file: None,
        }
    }

    #[test]
    fn callers_who_chose_an_option_after_a_no_match_teach_it_their_words() {
        let (plan, diagnostics) = crate::dialplan::check_bytes(std::path::Path::new("d.toml"), PLAN.as_bytes());
        let plan = plan.unwrap_or_else(|| panic!("{diagnostics:?}"));
        let acted = |i| Fate::Acted { intent: i };
        let all = vec![
            heard(1, "Billing.", Fate::NoMatch, Some("billing")),
            heard(2, "billing please", Fate::NoMatch, Some("billing")),
            heard(3, "Billing?", Fate::Confirmed { intent: "billing".into() }, None),
            heard(4, "invoices", acted("billing".into()), None),
            heard(5, "opening hours", acted("hours".into()), None),
            heard(6, "parking", Fate::NoMatch, None),
            heard(7, "parking", Fate::NoMatch, None),
            heard(8, "weather", Fate::NoMatch, Some("hours")),
        ];
        let suggestions = propose(&group(&all), &all, &[plan], 2);
        let summary: Vec<(&str, usize, &Proposal)> =
            suggestions.iter().map(|s| (s.words.as_str(), s.count, &s.proposal)).collect();
        assert_eq!(
            summary,
            [
                ("billing", 3, &Proposal::AddPhrase { option: "billing".into(), phrase: "billing".into() }),
                ("parking", 2, &Proposal::NewOption { phrase: "parking".into() }),
                ("weather", 1, &Proposal::Nothing { why: "fewer than 2 callers".into() }),
            ]
        );
        let billing = &suggestions[0];
        assert_eq!(billing.meant, Some(Meant { option: "billing".into(), callers: 3 }));
        assert_eq!((billing.no_match, billing.confirmed), (2, 1));
        assert_eq!(billing.example_calls, ["call-1", "call-2", "call-3"]);
        let replay = billing.replay.as_ref().unwrap();
        assert_eq!(replay.fixed, 3, "every caller who said billing is now understood");
        assert_eq!(replay.others_checked, 5);
        assert!(replay.moved.is_empty(), "{:?}", replay.moved);
    }

    #[test]
    fn a_request_missing_from_two_menus_is_a_global_intent_candidate() {
        let plan = PLAN.replace("[menus.main.options.hours]", "[menus.other]\nprompt = \"x\"\n[menus.other.options.x]\nphrases = [\"x\"]\ngoto = \"main\"\n[menus.main.options.hours]");
        let (plan, diagnostics) = crate::dialplan::check_bytes(std::path::Path::new("d.toml"), plan.as_bytes());
        let plan = plan.unwrap_or_else(|| panic!("{diagnostics:?}"));
        let in_menu = |menu: &str, call| Heard { menu: menu.into(), ..heard(call, "parking", Fate::NoMatch, None) };
        let all = vec![in_menu("main", 1), in_menu("main", 2), in_menu("other", 3), in_menu("other", 4)];
        let suggestions = propose(&group(&all), &all, &[plan], 2);
        let global = Proposal::NewGlobal { phrase: "parking".into(), menus: vec!["main".into(), "other".into()] };
        assert_eq!(suggestions.iter().map(|s| &s.proposal).collect::<Vec<_>>(), [&global, &global]);
    }
}
