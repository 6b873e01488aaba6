//! `[slots.NAME]`, the options that use them, and `{name}` references.
use super::tests::{assert_one, write, BASE};
use super::*;

const ORDERS: &str = r#"
[operator]
extension = "100"

[slots.size.values]
small = ["small", "twelve ounce"]
large = ["large"]

[slots.quantity]
kind = "number"

[menus.main]
prompt = "What would you like?"

[menus.main.options.latte]
phrases = ["latte", "a {size} latte"]
dtmf = "1"
slots = ["size"]
optional_slots = ["quantity"]
confirm = true
read_back = "{quantity} {size} {option}"
transfer = "200"
"#;

#[test]
fn an_option_takes_declared_slots_and_its_phrases_name_their_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = load(&write(&dir, "orders.toml", ORDERS)).expect("valid");
    let latte = &d.menus["main"].options[0];
    assert_eq!(latte.phrases, ["latte", "a latte", "a small latte", "a twelve ounce latte", "a large latte"]);
    let uses: Vec<(&str, bool)> = latte.slots.uses.iter().map(|u| (u.slot.name.as_str(), u.required)).collect();
    assert_eq!(uses, [("size", true), ("quantity", false)]);
    assert!(latte.slots.confirm);
    let SlotKind::Choice(values) = &latte.slots.uses[0].slot.kind else { panic!("size is a choice") };
    let keys: Vec<(&str, Option<char>)> = values.iter().map(|v| (v.value.as_str(), v.dtmf)).collect();
    assert_eq!(keys, [("small", Some('1')), ("large", Some('2'))]);
    assert_eq!(
        latte.slots.uses[0].slot.prompt.text,
        "Which size? Press 1 for small or 2 for large, or just say what you need."
    );
}

#[test]
fn unknown_slot_references_are_errors_with_their_place_and_a_suggestion() {
    let typo = ORDERS.replace("a {size} latte", "a {szie} latte");
    // `phrases = ["latte", "a {szie} latte"]` is line 16; the `{` is column 24.
    assert_one(&typo, "16:24: error: unknown slot `{szie}` in a phrase [did you mean `size`?]");
    assert_one(
        &ORDERS.replace("slots = [\"size\"]", "slots = [\"sise\"]"),
        "error: unknown slot `sise` [did you mean `size`?]",
    );
    assert_one(
        &ORDERS.replace("read_back = \"{quantity} {size} {option}\"", "read_back = \"{quantity} {colour}\""),
        "error: unknown slot `{colour}`: it would be spoken literally",
    );
    assert_one(
        &ORDERS.replace("What would you like?", "What {size}?"),
        "error: `{size}` in a menu prompt would be spoken literally",
    );
    let not_taken = ORDERS.replace("slots = [\"size\"]\n", "").replace("{size} {option}", "{option}");
    assert_one(&not_taken, "error: phrase refers to slot `size`, which option `latte` does not take");
}

#[test]
fn slot_definition_mistakes() {
    assert_one(
        &ORDERS.replace("kind = \"number\"", "kind = \"numbr\""),
        "unknown slot kind `numbr` [did you mean `number`?]",
    );
    assert_one(
        &ORDERS.replace("large = [\"large\"]", "large = [\"large\", \"Small\"]"),
        "phrase \"Small\" of value `large` is also a phrase of value `small`",
    );
    assert_one(
        &ORDERS.replace("large = [\"large\"]", "large = \"large\""),
        "value `large` in `values` must be a list of phrases",
    );
}

#[test]
fn phrases_two_options_share_once_fillers_are_dropped_are_a_warning() {
    let text = format!(
        "{BASE}\n[menus.main.options.support]\nphrases = [\"sales please\"]\ndtmf = \"2\"\ntransfer = \"300\"\n"
    );
    assert_one(
        &text,
        "warning: phrase \"sales please\" of option `support` cannot be told apart from \"sales\" of option `sales`",
    );
}

#[test]
fn an_option_on_the_agent_key_is_told_how_to_free_it() {
    assert_one(&BASE.replace("dtmf = \"1\"", "dtmf = \"0\""), "free it with `[globals.agent] dtmf = \"\"`");
}

#[test]
fn choices_written_as_an_array_show_the_expected_tables() {
    let text = format!(
        "{BASE}\n[menus.main.options.sales.collect]\nvariable = \"service\"\nchoices = [\"tv\", \"internet\"]\n"
    );
    assert_one(&text, "`choices` must be a table, found array [expected one table per value under the `collect`: `[menus.main.options.outage.collect.choices.internet]`");
}

#[test]
fn a_long_menu_gets_a_short_generated_reprompt() {
    let mut text = BASE.to_string();
    for (i, name) in ["mocha", "espresso", "americano", "cappuccino", "tea"].iter().enumerate() {
        text.push_str(&format!(
            "\n[menus.main.options.{name}]\nphrases = [\"{name}\"]\ndtmf = \"{}\"\ntransfer = \"200\"\n",
            i + 2
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let d = load(&write(&dir, "long.toml", &text)).expect("valid");
    assert_eq!(
        d.menus["main"].no_match_prompt.text,
        "Sorry, I didn't understand. Press 1 for sales, 2 for mocha, 3 for espresso, or 4 for americano. \
         For anything else, just say what you need, or say agent."
    );
}
