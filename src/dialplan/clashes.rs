//! Keys and phrases that must each lead to one thing, and phrases that a
//! caller could not tell apart.
use std::collections::{BTreeSet, HashMap};

use super::diagnostic::Reporter;
use super::model::GlobalIntent;
use super::raw::{At, RawMenu};
use super::validate::{normalise, Validator};

impl Validator<'_, '_, '_> {
    /// Two choices of one menu must not share a DTMF key or a phrase:
    /// the caller's input would be ambiguous.
    /// Keys and phrases must each lead to one thing: in a menu, its
    /// options and the active globals; in a choice step, its values and
    /// the globals (which stay active while a step listens).
    /// With `spoken_keys`, a key said aloud is one more thing it leads to.
    pub(super) fn check_clashes(&mut self, m: &RawMenu, globals_on: bool, spoken_keys: bool) {
        let menu = &m.id.value;
        let mut claims = Claims::default();
        if globals_on {
            for g in self.globals {
                claims.add_global(g);
            }
        }
        let globals = claims.clone();
        for o in &m.options {
            let owner = format!("option `{}`", o.intent.value);
            claims.claim(self.rep, o.dtmf.as_ref(), o.phrases.as_ref(), &owner, &format!("menu `{menu}`"), menu);
            let Some(choices) = o.collect.as_ref().and_then(|c| c.choices.as_ref()) else { continue };
            let mut step = globals.clone();
            let place = format!("the `collect` step of option `{}`", o.intent.value);
            for c in &choices.value {
                let owner = format!("choice `{}`", c.value.value);
                step.claim(self.rep, c.dtmf.as_ref(), c.phrases.as_ref(), &owner, &place, menu);
            }
        }
        if spoken_keys {
            self.check_spoken_keys(m, &claims.keys);
        }
        self.check_indistinct_phrases(m);
    }

    /// A phrase that is another choice's key said aloud ("two" on option
    /// `a` while option `b` has key 2): the phrase wins, so callers who say
    /// the key get `a`, which the admin should know.
    fn check_spoken_keys(&mut self, m: &RawMenu, keys: &HashMap<char, (String, Option<String>)>) {
        let menu = &m.id.value;
        // Compared as the recogniser's choices are (`call::understanding`):
        // as the matcher hears them, "Three." and "3" alike.
        let said = |k: char| {
            let words = self.language.key_phrases(k.to_digit(10)? as usize)?;
            Some(words.iter().map(|w| crate::intent::normalize(w)).collect::<Vec<_>>())
        };
        let spoken: Vec<(char, &String, Vec<String>)> =
            keys.iter().filter_map(|(&k, (owner, _))| Some((k, owner, said(k)?))).collect();
        for o in &m.options {
            let owner = format!("option `{}`", o.intent.value);
            for p in o.phrases.iter().flat_map(|p| &p.value) {
                let heard = crate::intent::normalize(&p.value);
                let Some((k, other, _)) =
                    spoken.iter().find(|(_, who, words)| **who != owner && words.contains(&heard))
                else {
                    continue;
                };
                self.rep.warning(
                    &p.span,
                    format!(
                        "phrase \"{}\" of {owner} is also key {k} said aloud, which is {other}'s key: callers who say \"{}\" get {owner}",
                        p.value, p.value
                    ),
                    Some(format!("give {other} another key, or set `spoken_keys = false` in `[menus.{menu}]`")),
                );
            }
        }
    }

    /// Phrases of two options that differ only in words the matcher drops
    /// ("the billing" and "billing", "billing please"): the caller could
    /// never be understood as meaning one rather than the other. (A phrase
    /// inside another one, "coffee" and "iced coffee", is fine: the longer
    /// one wins when the caller says it.)
    fn check_indistinct_phrases(&mut self, m: &RawMenu) {
        let mut seen: HashMap<String, (String, String)> = HashMap::new();
        for o in &m.options {
            for p in o.phrases.iter().flat_map(|p| &p.value) {
                let heard = crate::intent::normalize(&p.value);
                if heard.is_empty() {
                    continue;
                }
                match seen.get(&heard) {
                    // The same phrase written twice is an error reported above.
                    Some((owner, written)) if *owner != o.intent.value && normalise(written) != normalise(&p.value) => {
                        self.rep.warning(
                            &p.span,
                            format!(
                                "phrase \"{}\" of option `{}` cannot be told apart from \"{written}\" of option `{owner}`: both are heard as \"{heard}\"",
                                p.value, o.intent.value
                            ),
                            Some("words like \"the\", \"please\" and \"I want\" are ignored when matching; make the phrases differ in other words".into()),
                        );
                    }
                    Some(_) => {}
                    None => {
                        seen.insert(heard, (o.intent.value.clone(), p.value.clone()));
                    }
                }
            }
        }
    }
}

/// Who uses each key and each phrase so far, in one menu or one step.
#[derive(Clone, Default)]
struct Claims {
    /// Key -> who has it, and for a global's key how to free it.
    keys: HashMap<char, (String, Option<String>)>,
    phrases: HashMap<String, String>,
}

impl Claims {
    fn add_global(&mut self, g: &GlobalIntent) {
        if let Some(k) = g.dtmf {
            let free = format!(
                "free it with `[globals.{}] dtmf = \"\"` (callers can still say \"{}\")",
                g.intent,
                g.phrases.first().map_or("", String::as_str)
            );
            self.keys.insert(k, (format!("the global `{}` intent", g.intent), Some(free)));
        }
        for p in &g.phrases {
            self.phrases.insert(normalise(p), format!("the global `{}` intent", g.intent));
        }
    }

    /// Reports `owner`'s key and phrases where something in `place` (of
    /// menu `menu`) has them already, and claims the rest.
    fn claim(
        &mut self,
        rep: &mut Reporter,
        dtmf: Option<&At<String>>,
        phrases: Option<&At<Vec<At<String>>>>,
        owner: &str,
        place: &str,
        menu: &str,
    ) {
        if let Some(d) = dtmf {
            if let Some(k) = d.value.chars().next().filter(|_| d.value.chars().count() == 1) {
                if let Some((prev, free)) = self.keys.get(&k) {
                    let help = free
                        .as_ref()
                        .map(|free| format!("pick a free key, {free}, or set `globals = false` in `[menus.{menu}]`"));
                    rep.error(&d.span, format!("DTMF key `{k}` of {owner} is already used by {prev} in {place}"), help);
                } else {
                    self.keys.insert(k, (owner.to_string(), None));
                }
            }
        }
        let mut own = BTreeSet::new();
        for p in phrases.iter().flat_map(|p| &p.value) {
            let n = normalise(&p.value);
            if n.is_empty() || !own.insert(n.clone()) {
                continue;
            }
            match self.phrases.get(&n) {
                Some(prev) => rep.error(
                    &p.span,
                    format!("phrase \"{}\" of {owner} is also a phrase of {prev} in {place}", p.value),
                    Some("the caller's words would be ambiguous; keep the phrase in one place".into()),
                ),
                None => {
                    self.phrases.insert(n, owner.to_string());
                }
            }
        }
    }
}
