//! Loader tests on real files: the shipped dialplan and small temporary ones
//! that each break one rule.
use std::path::{Path, PathBuf};

use super::*;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dialplans/hotline.toml")
}

/// A minimal valid dialplan; tests append or replace parts of it.
pub(super) const BASE: &str = r#"
[operator]
extension = "100"

[menus.main]
prompt = "Say sales or press 1."

[menus.main.options.sales]
phrases = ["sales"]
dtmf = "1"
transfer = "200"
"#;

pub(super) fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Diagnostics of `text` as `line:col: severity: message [help]` strings.
fn problems(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "t.toml", text);
    let (_, diags) = load_with_warnings(&path);
    diags
        .iter()
        .map(|d| {
            let help = d.help.as_ref().map(|h| format!(" [{h}]")).unwrap_or_default();
            format!("{}:{}: {}: {}{help}", d.line, d.col, d.severity, d.message)
        })
        .collect()
}

pub(super) fn assert_one(text: &str, expected: &str) {
    let found = problems(text);
    assert!(found.iter().any(|p| p.contains(expected)), "expected a problem containing {expected:?}, got {found:#?}");
}

#[test]
fn shipped_dialplan_compiles_to_the_documented_menus() {
    let d = load(&shipped()).expect("dialplans/hotline.toml is valid");
    assert_eq!(d.name, "hotline");
    assert_eq!(d.start_menu, "main");
    assert_eq!(d.operator, Transfer { extension: "100".into(), context: Some("support-queue".into()) });
    assert_eq!(d.thresholds, Thresholds { accept: 0.85, confirm: 0.45 });
    assert_eq!(d.menus.keys().collect::<Vec<_>>(), ["billing", "main", "tech_support"]);
    for menu in d.menus.values() {
        for o in &menu.options {
            assert!(
                !o.phrases.is_empty() && o.dtmf.is_some(),
                "{}/{} reachable by voice and keypad",
                menu.id,
                o.intent
            );
        }
    }
    let main = &d.menus["main"];
    assert!(main.barge_in && main.globals);
    assert_eq!(main.no_input_timeout_ms, 5000);
    assert_eq!((main.max_no_input, main.max_no_match), (1, 2), "a silent caller is asked twice, then gets a person");
    assert_eq!(main.escalation, Action::Transfer(d.operator.clone()));
    let balance = main.options.iter().find(|o| o.intent == "account_balance").unwrap();
    let Action::Collect(c) = &balance.action else { panic!("balance collects digits: {:?}", balance.action) };
    assert_eq!((c.variable.as_str(), c.min_digits, c.max_digits, c.confirm), ("account_number", 6, 10, true));
    assert_eq!(*c.then, Action::Transfer(Transfer { extension: "210".into(), context: Some("billing-queue".into()) }));
    // Generated reprompts teach the caller what works, in one sentence.
    assert!(
        main.no_match_prompt.text.starts_with("Sorry, I didn't understand. Press 1 for billing, 2 for"),
        "{}",
        main.no_match_prompt.text
    );
    assert!(
        main.no_match_prompt.text.ends_with("For anything else, just say what you need, or say agent."),
        "{}",
        main.no_match_prompt.text
    );
    assert_eq!(d.globals.len(), 5);
    assert_eq!(d.messages.goodbye, "Thank you for calling Northwind Telecom. Goodbye.");
    assert_eq!(d.messages.confirm_digits, "I heard {}. Is that right?");
    let outage = d.menus["tech_support"].options.iter().find(|o| o.intent == "report_outage").unwrap();
    let Action::Collect(c) = &outage.action else { panic!("an outage report asks which service") };
    let values: Vec<(&str, Option<char>)> = c.choices.iter().map(|v| (v.value.as_str(), v.dtmf)).collect();
    assert_eq!(
        (c.variable.as_str(), values),
        ("service", vec![("internet", Some('1')), ("tv", Some('2')), ("phone", Some('3'))])
    );
}

#[test]
fn a_silent_caller_is_asked_twice_by_default_with_a_one_sentence_reprompt() {
    let dir = tempfile::tempdir().unwrap();
    let plan = load(&write(&dir, "t.toml", BASE)).unwrap();
    let main = &plan.menus["main"];
    assert_eq!((main.no_input_timeout_ms, main.max_no_input, main.max_no_match), (5000, 1, 2));
    assert_eq!(
        main.no_input_prompt.text,
        "Sorry, I didn't hear anything. Press 1 for sales or 0 for agent, or just say what you need."
    );
}

/// Words the call cannot act on yet wait 2 s for the caller to go on,
/// unless a menu says otherwise (0 turns it off); `check` bounds the wait.
#[test]
fn unfinished_answers_wait_two_seconds_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let plan = load(&write(&dir, "t.toml", BASE)).unwrap();
    assert_eq!(plan.menus["main"].incomplete_timeout_ms, 2000);
    let text =
        BASE.replace("[menus.main]\n", "[defaults]\nincomplete_timeout = 0.8\n[menus.main]\nincomplete_timeout = 0\n");
    let plan = load(&write(&dir, "t2.toml", &text)).unwrap();
    assert_eq!(plan.menus["main"].incomplete_timeout_ms, 0);
    let text = BASE.replace("[menus.main]\n", "[defaults]\nincomplete_timeout = 0.8\n[menus.main]\n");
    assert_eq!(load(&write(&dir, "t3.toml", &text)).unwrap().menus["main"].incomplete_timeout_ms, 800);
    assert_one(
        &BASE.replace("[menus.main]\n", "[menus.main]\nincomplete_timeout = 12\n"),
        "`incomplete_timeout` must be 0 to 10 seconds, found 12",
    );
}

#[test]
fn version_is_a_content_hash() {
    let dir = tempfile::tempdir().unwrap();
    let a = load(&write(&dir, "a.toml", BASE)).unwrap();
    let b = load(&write(&dir, "b.toml", &format!("{BASE}\n# edited\n"))).unwrap();
    assert_eq!(a.version.len(), 64);
    assert!(a.version.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a.version, b.version);
    assert_eq!(load(&write(&dir, "c.toml", BASE)).unwrap().version, a.version);
}

#[test]
fn load_dir_compiles_valid_files_and_reports_the_others() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir, "b.toml", BASE);
    write(&dir, "a.toml", &BASE.replace("\"200\"", "\"2 00\""));
    write(&dir, "notes.txt", "not a dialplan");
    let (plans, diags) = load_dir(dir.path());
    assert_eq!(plans.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["b"]);
    assert_eq!(diags.len(), 1);
    assert!(diags[0].file.ends_with("a.toml") && diags[0].message.contains("bad extension"), "{}", diags[0]);
    assert_eq!((diags[0].line, diags[0].col), (11, 12));
}

#[test]
fn warnings_alone_do_not_fail_load() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{BASE}\n[menus.lost]\nprompt = \"x\"\n[menus.lost.options.y]\nphrases = [\"y\"]\ndtmf = \"1\"\ngoto = \"main\"\n");
    let path = write(&dir, "w.toml", &text);
    assert!(load(&path).is_ok());
    let (plan, diags) = load_with_warnings(&path);
    assert!(plan.is_some());
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].severity, Severity::Warning);
    assert!(diags[0].message.contains("menu `lost` is unreachable"));
}

#[test]
fn tts_unavailable_warns_about_text_only_prompts() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dialplans/clean.toml");
    let report = check_paths(
        std::slice::from_ref(&path),
        &CheckOptions { tts_unavailable: Some("no voice model".into()), ..Default::default() },
    );
    let warnings: Vec<String> = report.diagnostics().map(|d| format!("{}:{} {}", d.line, d.col, d.message)).collect();
    // The main prompt has a WAV; the say, the orders prompt, the escalation
    // and the generated reprompts of both menus have only text.
    assert!(warnings.iter().all(|w| w.contains("unavailable (no voice model)")), "{warnings:#?}");
    assert!(!warnings.iter().any(|w| w.starts_with("6:")), "the WAV prompt on line 6 is fine: {warnings:#?}");
    assert!(warnings.iter().any(|w| w.starts_with("16:7 `say` has only text")), "{warnings:#?}");
    assert!(warnings.iter().any(|w| w.starts_with("19:8 the generated reprompts of menu `orders`")), "{warnings:#?}");
    assert!(warnings.iter().any(|w| w.starts_with("28:1 the generated prompt of `collect`")), "{warnings:#?}");
    assert_eq!(warnings.len(), 6, "{warnings:#?}");
    assert_eq!(report.exit_code(), 0, "TTS warnings do not fail the check");
    let quiet = check_paths(&[path], &CheckOptions::default());
    assert_eq!(quiet.diagnostics().count(), 0);
}

#[test]
fn unknown_goto_suggests_the_closest_menu() {
    let text = BASE.replace("transfer = \"200\"", "goto = \"mian\"");
    let dir = tempfile::tempdir().unwrap();
    let diags = load(&write(&dir, "t.toml", &text)).unwrap_err();
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].message, "unknown `goto` target: no menu `mian`");
    assert_eq!(diags[0].help.as_deref(), Some("did you mean `main`?"));
}

#[test]
fn unknown_escalation_target() {
    assert_one(
        &format!("{BASE}\n[defaults]\nescalation = {{ goto = \"nowhere\" }}\n"),
        "unknown escalation target: no menu `nowhere`",
    );
}

#[test]
fn duplicate_dtmf_key_in_a_menu() {
    let text =
        format!("{BASE}\n[menus.main.options.support]\nphrases = [\"support\"]\ndtmf = \"1\"\ntransfer = \"300\"\n");
    assert_one(&text, "15:8: error: DTMF key `1` of option `support` is already used by option `sales`");
}

#[test]
fn dtmf_key_of_a_global_clashes_unless_globals_are_off() {
    let text = BASE.replace("dtmf = \"1\"", "dtmf = \"0\"");
    assert_one(&text, "already used by the global `agent` intent");
    let off = text.replace("[menus.main]\n", "[menus.main]\nglobals = false\n");
    assert_eq!(problems(&off), Vec::<String>::new());
    let moved = format!("{text}\n[globals.agent]\ndtmf = \"9\"\n");
    assert_eq!(problems(&moved), Vec::<String>::new(), "the global's key can be moved");
}

#[test]
fn keys_said_aloud_are_on_unless_a_menu_or_the_defaults_turn_them_off() {
    let dir = tempfile::tempdir().unwrap();
    let load_text = |text: &str| load(&write(&dir, "k.toml", text)).expect("valid");
    assert!(load_text(BASE).menus["main"].spoken_keys, "on by default");
    let off = BASE.replace("[menus.main]\n", "[defaults]\nspoken_keys = false\n\n[menus.main]\n");
    assert!(!load_text(&off).menus["main"].spoken_keys);
    let back_on = off.replace("[menus.main]\n", "[menus.main]\nspoken_keys = true\n");
    assert!(load_text(&back_on).menus["main"].spoken_keys, "a menu overrides the defaults");
    assert_one(&BASE.replace("[menus.main]\n", "[menus.main]\nspoken_key = false\n"), "did you mean `spoken_keys`?");
}

#[test]
fn a_phrase_that_is_another_options_key_said_aloud_is_a_warning() {
    let text = BASE.replace("[\"sales\"]", "[\"sales\", \"Two\"]")
        + "\n[menus.main.options.support]\nphrases = [\"support\"]\ndtmf = \"2\"\ntransfer = \"300\"\n";
    assert_one(
        &text,
        "warning: phrase \"Two\" of option `sales` is also key 2 said aloud, which is option `support`'s key: \
         callers who say \"Two\" get option `sales` [give option `support` another key, or set `spoken_keys = false` in `[menus.main]`]",
    );
    // The global agent's key 0 counts too; the option's own key does not.
    assert_one(&BASE.replace("[\"sales\"]", "[\"sales\", \"zero\"]"), "which is the global `agent` intent's key");
    // So does the key framed as the prompt put it.
    assert_one(
        &text.replace("\"Two\"", "\"option 2\""),
        "phrase \"option 2\" of option `sales` is also key 2 said aloud",
    );
    assert_eq!(problems(&BASE.replace("[\"sales\"]", "[\"sales\", \"one\"]")), Vec::<String>::new());
    let off = text.replace("[menus.main]\n", "[menus.main]\nspoken_keys = false\n");
    assert_eq!(problems(&off), Vec::<String>::new(), "no keys said aloud, nothing to warn about");
}

#[test]
fn same_phrase_under_two_choices_is_ambiguous() {
    let text =
        format!("{BASE}\n[menus.main.options.support]\nphrases = [\"  SALES \"]\ndtmf = \"2\"\ntransfer = \"300\"\n");
    assert_one(&text, "phrase \"  SALES \" of option `support` is also a phrase of option `sales`");
    let global = BASE.replace("[\"sales\"]", "[\"sales\", \"Go Back\"]");
    assert_one(&global, "phrase \"Go Back\" of option `sales` is also a phrase of the global `back` intent");
}

#[test]
fn missing_prompt_wav() {
    let text = BASE.replace("prompt = \"Say sales or press 1.\"", "prompt = { wav = \"prompts/welcome.wav\" }");
    assert_one(&text, "6:18: error: prompt file");
    assert_one(&text, "welcome.wav` not found");
}

#[test]
fn empty_phrases_and_empty_phrase() {
    assert_one(&BASE.replace("[\"sales\"]", "[]"), "`phrases` is empty");
    assert_one(&BASE.replace("[\"sales\"]", "[\"sales\", \" \"]"), "9:21: error: empty phrase");
    assert_one(&BASE.replace("phrases = [\"sales\"]\n", ""), "option `sales` has no `phrases`");
}

#[test]
fn bad_extension_and_context() {
    assert_one(&BASE.replace("\"200\"", "\"\""), "bad extension ``");
    assert_one(&BASE.replace("\"200\"", "\"200\"\ncontext = \"from internal\""), "bad context `from internal`");
    assert_eq!(problems(&BASE.replace("\"200\"", "\"+4930*12#\"")), Vec::<String>::new());
}

#[test]
fn collect_bounds() {
    let collect = |body: &str| format!("{BASE}\n[menus.main.options.sales.collect]\nvariable = \"order\"\n{body}\n");
    assert_one(&collect("min_digits = 8\nmax_digits = 4"), "`min_digits` (8) is above `max_digits` (4)");
    assert_one(&collect("min_digits = 0"), "`min_digits` must be 1 to 32, found 0");
    assert_one(&collect("max_digits = 33"), "`max_digits` must be 1 to 32, found 33");
    assert_one(&format!("{BASE}\n[menus.main.options.sales.collect]\nmin_digits = 2\n"), "`collect` has no `variable`");
    assert_eq!(problems(&collect("min_digits = 4\nmax_digits = 4\nconfirm = false")), Vec::<String>::new());
}

#[test]
fn a_choice_step_takes_one_of_its_values() {
    let step = format!(
        "{BASE}\n[menus.main.options.sales.collect]\nvariable = \"product\"\n\
         [menus.main.options.sales.collect.choices.fibre_broadband]\ndtmf = \"1\"\n\
         [menus.main.options.sales.collect.choices.tv]\nphrases = [\"TV\", \"television\"]\ndtmf = \"2\"\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let (plan, diags) = load_with_warnings(&write(&dir, "t.toml", &step));
    assert_eq!(diags, Vec::<Diagnostic>::new());
    let plan = plan.unwrap();
    let Action::Collect(c) = &plan.menus["main"].options[0].action else { panic!("sales collects") };
    assert!(c.takes_choice());
    let values: Vec<(&str, &[String], Option<char>)> =
        c.choices.iter().map(|v| (v.value.as_str(), v.phrases.as_slice(), v.dtmf)).collect();
    assert_eq!(
        values,
        [
            ("fibre_broadband", &["fibre broadband".to_string()][..], Some('1')),
            ("tv", &["TV".into(), "television".into()][..], Some('2'))
        ]
    );
    assert!(!c.confirm, "a clear choice is not read back unless asked for");
    // The generated question lists the values and their keys.
    assert_eq!(c.prompt.text, "Which product? Press 1 for fibre broadband or 2 for TV, or just say what you need.");
    assert_eq!(*c.then, Action::Transfer(Transfer { extension: "200".into(), context: None }));
}

#[test]
fn choice_step_mistakes() {
    let step = |body: &str| format!("{BASE}\n[menus.main.options.sales.collect]\nvariable = \"product\"\n{body}\n");
    assert_one(&step("choices = {}"), "`choices` is empty");
    assert_one(
        &step("max_digits = 4\nchoices = { tv = { dtmf = \"1\" } }"),
        "`max_digits` does not apply to a `collect` with `choices`",
    );
    assert_one(
        &step("choices = { tv = { dtmf = \"1\" }, radio = { dtmf = \"1\" } }"),
        "DTMF key `1` of choice `radio` is already used by choice `tv` in the `collect` step of option `sales`",
    );
    assert_one(
        &step("choices = { tv = { dtmf = \"0\" } }"),
        "DTMF key `0` of choice `tv` is already used by the global `agent` intent",
    );
    assert_one(
        &step("choices = { tv = { phrases = [\"TV\"], dtmf = \"1\" }, telly = { phrases = [\"tv\"], dtmf = \"2\" } }"),
        "phrase \"tv\" of choice `telly` is also a phrase of choice `tv`",
    );
    assert_one(&step("choices = { \"t v\" = { dtmf = \"1\" } }"), "bad choice name `t v`");
    assert_one(&step("choices = { tv = { phrases = [] , dtmf = \"1\" } }"), "`phrases` is empty");
    assert_one(&step("choices = { tv = {} }"), "warning: choice `tv` has no `dtmf` key");
    assert_one(&step("choices = { tv = { dtmf = \"1\", colour = \"red\" } }"), "unknown key `colour`");
}

#[test]
fn missing_start_menu() {
    assert_one(&format!("start = \"mainn\"\n{BASE}"), "1:9: error: start menu `mainn` does not exist");
    let renamed = BASE.replace("menus.main", "menus.welcome");
    assert_one(&renamed, "no start menu");
    assert_eq!(problems(&format!("start = \"welcome\"\n{renamed}")), Vec::<String>::new());
}

#[test]
fn invalid_dtmf_keys() {
    for bad in ["\"A\"", "\"12\"", "\"\"", "10"] {
        assert_one(&BASE.replace("dtmf = \"1\"", &format!("dtmf = {bad}")), "bad DTMF key");
    }
    for good in ["\"*\"", "\"#\"", "7"] {
        let text = BASE.replace("dtmf = \"1\"", &format!("dtmf = {good}"));
        let found = problems(&text);
        assert!(found.iter().all(|p| !p.contains("bad DTMF")), "{good}: {found:?}");
    }
}

#[test]
fn threshold_ranges() {
    assert_one(&format!("{BASE}\n[thresholds]\naccept = 1.2\n"), "`accept` must be between 0 and 1, found 1.2");
    assert_one(&format!("{BASE}\n[thresholds]\nconfirm = -0.1\n"), "`confirm` must be between 0 and 1");
    assert_one(&format!("{BASE}\n[thresholds]\naccept = 0.5\nconfirm = 0.6\n"), "must not be above `accept`");
    let dir = tempfile::tempdir().unwrap();
    let d = load(&write(&dir, "t.toml", &format!("{BASE}\n[thresholds]\naccept = 0.9\nconfirm = 0.5\n"))).unwrap();
    assert_eq!(d.thresholds, Thresholds { accept: 0.9, confirm: 0.5 });
}

#[test]
fn unknown_keys_suggest_the_known_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "t.toml", &BASE.replace("transfer =", "tranfser = \"1\"\ntransfer ="));
    let diags = load(&path).unwrap_err();
    assert_eq!(diags[0].message, "unknown key `tranfser` in `sales`");
    assert_eq!(diags[0].help.as_deref(), Some("did you mean `transfer`?"));
    let far = load(&write(&dir, "u.toml", &format!("colour = 1\n{BASE}"))).unwrap_err();
    assert!(far[0].help.as_deref().unwrap().starts_with("known keys here: start, operator"), "{}", far[0]);
}

#[test]
fn say_needs_a_message() {
    assert_one(&BASE.replace("transfer = \"200\"", "say = \"\""), "`say` text is empty");
    assert_one(&BASE.replace("transfer = \"200\"", "say = {}"), "`say` needs `text`, `wav` or both");
    let dir = tempfile::tempdir().unwrap();
    let d =
        load(&write(&dir, "t.toml", &BASE.replace("transfer = \"200\"", "say = \"Bye.\"\nthen = \"hangup\""))).unwrap();
    let action = &d.menus["main"].options[0].action;
    assert_eq!(*action, Action::Say { message: Prompt { text: "Bye.".into(), wav: None }, then: AfterSay::Hangup });
}

#[test]
fn globals_can_be_overridden_and_disabled() {
    let text = format!(
        "{BASE}\n[globals.goodbye]\nenabled = false\n[globals.repeat]\nphrases = [\"once more\"]\ndtmf = \"\"\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = load(&write(&dir, "t.toml", &text)).unwrap();
    assert!(!d.globals.iter().any(|g| g.kind == GlobalKind::Goodbye));
    let repeat = d.globals.iter().find(|g| g.kind == GlobalKind::Repeat).unwrap();
    assert_eq!((repeat.phrases.clone(), repeat.dtmf), (vec!["once more".to_string()], None));
    assert_one(&format!("{BASE}\n[globals.agnet]\n"), "did you mean `agent`?");
}

#[test]
fn syntax_error_is_a_single_diagnostic() {
    let found = problems("[operator]\nextension = \n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("2:13: error: invalid TOML"), "{found:?}");
}

#[test]
fn complete_example_in_the_docs_is_valid() {
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/dialplan.md")).unwrap();
    let example = docs.split("```toml\n").nth(1).and_then(|rest| rest.split("```").next()).expect("a toml block");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("prompts")).unwrap();
    let wav = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dialplans/prompts/zero.wav");
    std::fs::copy(wav, dir.path().join("prompts/welcome.wav")).unwrap();
    let (plan, diags) = load_with_warnings(&write(&dir, "example.toml", example));
    assert_eq!(diags, Vec::<Diagnostic>::new());
    let plan = plan.unwrap();
    assert!(!plan.globals.iter().any(|g| g.kind == GlobalKind::Goodbye), "disabled in the example");
    assert!(!plan.menus["billing"].globals);
    let Action::Collect(c) = &plan.menus["billing"].options[0].action else { panic!("pay collects") };
    assert_eq!((c.min_digits, c.max_digits), (6, 10));
    let outage = plan.menus["main"].options.iter().find(|o| o.intent == "outage").expect("outage option");
    let Action::Collect(c) = &outage.action else { panic!("outage collects a choice") };
    let values: Vec<&str> = c.choices.iter().map(|v| v.value.as_str()).collect();
    assert_eq!(values, ["internet", "tv"]);
}

#[test]
fn options_written_as_an_array_of_tables_get_a_hint() {
    let text = "[operator]\nextension = \"1\"\n[menus.main]\nprompt = \"x\"\n[[menus.main.options]]\nintent = \"a\"\n";
    assert_eq!(
        problems(text),
        ["5:1: error: `options` must be a table of named entries, found array of tables [name each entry: `[...options.NAME]` instead of `[[...options]]`]"]
    );
    let empty = "[operator]\nextension = \"1\"\n[menus.main]\nprompt = \"x\"\n[menus.main.options]\n";
    assert_one(empty, "3:8: error: menu `main` has no options");
}

#[path = "slot_tests.rs"]
mod slot_tests;
