//! `hotline suggest` as an admin runs it: a records file, a dialplan
//! folder, and what it refuses to do.

use std::path::Path;
use std::process::{Command, Output};

const DIALPLAN: &str = r#"# Orders.
start = "main"

[operator]
extension = "100"

[menus.main]
prompt = "To cancel, press 1. To carry on, press 2."

[menus.main.options.cancel]
phrases = ["cancel my order"]
dtmf = "1"
transfer = "201"

[menus.main.options.carry_on]
phrases = ["carry on", "continue"]  # both in use
dtmf = "2"
transfer = "202"
"#;

/// A call where the caller said `words`, was not understood, and pressed `key`.
fn record(call_id: &str, words: &str, key: &str) -> String {
    let events = serde_json::json!([
        {"type": "prompt", "t_ms": 0, "menu": "main", "text": "To cancel, press 1."},
        {"type": "utterance", "t_ms": 3000, "start_ms": 2000, "end_ms": 2800, "text": words, "confidence": 0.3},
        {"type": "no_match", "t_ms": 3000, "menu": "main", "text": words},
        {"type": "prompt", "t_ms": 3000, "menu": "main", "text": "Sorry."},
        {"type": "dtmf", "t_ms": 6000, "digit": key},
        {"type": "intent", "t_ms": 6000, "menu": "main", "intent": if key == "1" { "cancel" } else { "carry_on" }, "confidence": 1.0, "source": "dtmf"},
    ]);
    serde_json::json!({"call_id": call_id, "start_unix_ms": 1_796_428_800_000u64, "dialplan": "orders", "events": events})
        .to_string()
}

fn suggest(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotline"))
        .arg("suggest")
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run hotline")
}

fn folder(records: &[String]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("dialplans")).unwrap();
    std::fs::write(dir.path().join("dialplans/orders.toml"), DIALPLAN).unwrap();
    std::fs::write(dir.path().join("calls.jsonl"), records.join("\n")).unwrap();
    dir
}

#[test]
fn apply_refuses_a_change_that_would_not_check_clean_and_leaves_the_file() {
    // Callers said "continue" and then chose `cancel`: adding it there
    // would give one phrase two options, which `hotline check` rejects.
    let dir = folder(&[record("a", "Continue.", "1"), record("b", "continue", "1")]);
    let out = suggest(dir.path(), &["--records", "calls.jsonl", "--apply"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("add phrase \"continue\" to option `cancel`"), "{stdout}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("dialplans/orders.toml: not written") && stderr.contains("continue"), "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.path().join("dialplans/orders.toml")).unwrap(), DIALPLAN);
    let leftovers = std::fs::read_dir(dir.path().join("dialplans")).unwrap().count();
    assert_eq!(leftovers, 1, "no temporary file left behind");
}

#[test]
fn bad_arguments_exit_2_and_unreadable_records_exit_1_naming_the_file() {
    let dir = folder(&[record("a", "stop", "1")]);
    let since = suggest(dir.path(), &["--records", "calls.jsonl", "--since", "yesterday"]);
    assert_eq!(since.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&since.stderr).starts_with("--since: "), "{since:?}");
    let missing = suggest(dir.path(), &["--records", "nothing.db"]);
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nothing.db"), "{missing:?}");
    assert!(!dir.path().join("nothing.db").exists(), "reading never creates a database");
    let no_plans = suggest(dir.path(), &["--records", "calls.jsonl", "--dialplan", "elsewhere"]);
    assert_eq!(no_plans.status.code(), Some(2), "{no_plans:?}");
}
