//! The generated reprompts: one short sentence that tells a caller who was
//! not understood (or said nothing) what works.

/// Choices a generated reprompt names; past these it says "or say agent"
/// instead. (A 10-option menu read out in full lasted 20 s: callers hang
/// up, or have forgotten the first choices by the last.) A menu's own
/// `no_match_prompt` / `no_input_prompt` replace the generated ones.
pub const MAX_NAMED_CHOICES: usize = 4;

fn key_name(c: char) -> String {
    match c {
        '*' => "star".into(),
        '#' => "pound".into(),
        c => c.to_string(),
    }
}

/// "Press 1 for billing, 2 for opening hours, or 0 for agent, or just say
/// what you need." One short sentence naming every choice with its key (a
/// reprompt that reads out a sentence per choice outlasts the caller's
/// patience); the names are the first phrases, so saying them works.
/// Choices without a key follow: "You can also say help". `agent` (the
/// phrase and key of the agent global, when active) comes last.
///
/// More than [`MAX_NAMED_CHOICES`] choices: the first ones are named, then
/// "For anything else, just say what you need, or say agent."
pub fn choices_sentence(choices: &[(String, Option<char>)], agent: Option<&(String, Option<char>)>) -> String {
    if choices.len() <= MAX_NAMED_CHOICES {
        let all: Vec<(String, Option<char>)> = choices.iter().chain(agent).cloned().collect();
        return full_sentence(&all);
    }
    let (keyed, spoken) = split(&choices[..MAX_NAMED_CHOICES]);
    let mut parts = Vec::new();
    if !keyed.is_empty() {
        parts.push(format!("Press {}.", or_list(&keyed)));
    }
    if !spoken.is_empty() {
        let lead = if keyed.is_empty() { "Say" } else { "You can also say" };
        parts.push(format!("{lead} {}.", or_list(&spoken)));
    }
    match agent.filter(|(phrase, _)| !phrase.is_empty()) {
        Some((phrase, _)) => parts.push(format!("For anything else, just say what you need, or say {phrase}.")),
        None => parts.push("For anything else, just say what you need.".into()),
    }
    parts.join(" ")
}

fn full_sentence(choices: &[(String, Option<char>)]) -> String {
    let (keyed, spoken) = split(choices);
    let mut parts = Vec::new();
    if !keyed.is_empty() {
        parts.push(format!("Press {}, or just say what you need.", or_list(&keyed)));
    }
    if !spoken.is_empty() {
        let lead = if keyed.is_empty() { "Say" } else { "You can also say" };
        parts.push(format!("{lead} {}.", or_list(&spoken)));
    }
    parts.join(" ")
}

/// "1 for billing" for each choice with a key; the phrases of those without.
fn split(choices: &[(String, Option<char>)]) -> (Vec<String>, Vec<String>) {
    let keyed = choices
        .iter()
        .filter_map(|(phrase, key)| {
            let key = key_name((*key)?);
            Some(if phrase.is_empty() { key } else { format!("{key} for {phrase}") })
        })
        .collect();
    let spoken = choices.iter().filter(|(p, k)| k.is_none() && !p.is_empty()).map(|(p, _)| p.clone()).collect();
    (keyed, spoken)
}

/// "a", "a or b", "a, b, or c".
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        [rest @ .., last] => format!("{}, or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(phrase: &str, key: char) -> (String, Option<char>) {
        (phrase.to_string(), Some(key))
    }

    #[test]
    fn a_short_menu_is_named_in_full() {
        let agent = choice("agent", '0');
        assert_eq!(
            choices_sentence(&[choice("billing", '1'), choice("hours", '2')], Some(&agent)),
            "Press 1 for billing, 2 for hours, or 0 for agent, or just say what you need."
        );
    }

    #[test]
    fn a_long_menu_names_the_first_few_then_offers_an_agent() {
        let names = ["latte", "mocha", "espresso", "americano", "cappuccino", "tea", "cocoa", "chai", "juice", "water"];
        let choices: Vec<_> = names.iter().zip('1'..).map(|(n, k)| choice(n, k)).collect();
        let agent = choice("agent", '0');
        let sentence = choices_sentence(&choices, Some(&agent));
        assert_eq!(
            sentence,
            "Press 1 for latte, 2 for mocha, 3 for espresso, or 4 for americano. \
             For anything else, just say what you need, or say agent."
        );
        assert!(!sentence.contains("water"));
    }
}
