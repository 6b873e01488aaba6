//! `hotline check` as admins run it: the real binary on real files, output
//! compared with reviewed snapshots (`tests/fixtures/dialplans/*.expected`).
//!
//! After an intended change of the messages, regenerate the snapshots with
//! `UPDATE_SNAPSHOTS=1 cargo test --test check` and review the diff.

use std::path::Path;
use std::process::Command;

use crate::support::ami::{FakeAmi, FakeAmiConfig};

const FIXTURES: &str = "tests/fixtures/dialplans";

/// Runs `hotline check` from the crate root, so paths in the output are the
/// relative ones given on the command line.
fn check(args: &[&str]) -> (String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .arg("check")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run hotline");
    let code = out.status.code().expect("hotline exited normally");
    (String::from_utf8(out.stdout).expect("UTF-8 output"), code)
}

fn snapshot(name: &str) {
    let toml = format!("{FIXTURES}/{name}.toml");
    let (stdout, code) = check(&[&toml]);
    let actual = format!("{stdout}exit code: {code}\n");
    let expected_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("{FIXTURES}/{name}.expected"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&expected_path, &actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_SNAPSHOTS=1 to create it)", expected_path.display()));
    assert_eq!(actual, expected, "output of `hotline check {toml}` differs from {}", expected_path.display());
}

#[test]
fn broken_dialplan_reports_every_mistake_at_once() {
    snapshot("broken");
}

#[test]
fn missing_operator_and_start_menu_are_errors() {
    snapshot("no_start");
}

#[test]
fn toml_syntax_error_is_one_diagnostic_and_exit_2() {
    snapshot("syntax");
}

#[test]
fn clean_dialplan_passes() {
    snapshot("clean");
}

#[test]
fn shipped_hotline_dialplan_is_clean() {
    let (stdout, code) = check(&["dialplans/hotline.toml"]);
    assert_eq!(stdout, "dialplans/hotline.toml: ok\n");
    assert_eq!(code, 0);
    let (stdout, code) = check(&["dialplans"]);
    assert_eq!(stdout, "dialplans/coffee.toml: ok\ndialplans/hotline.toml: ok\n", "a folder checks every *.toml in it");
    assert_eq!(code, 0);
}

#[test]
fn folder_is_checked_file_by_file_in_name_order() {
    let (stdout, code) = check(&[FIXTURES]);
    // Summary lines are `path.toml: ...`; diagnostics are `path.toml:line:col: ...`.
    let files: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{FIXTURES}/")))
        .filter(|l| l.split_once(".toml: ").is_some())
        .map(|l| l.split_once(".toml: ").unwrap().0)
        .collect();
    assert_eq!(files, ["broken", "clean", "no_start", "syntax"]);
    assert_eq!(code, 2, "one file does not parse, so the folder exits 2");
}

#[test]
fn unreadable_file_exits_2_and_names_the_file() {
    let (stdout, code) = check(&["tests/fixtures/dialplans/does-not-exist.toml", "dialplans/hotline.toml"]);
    let mut lines = stdout.lines();
    let first = lines.next().unwrap();
    assert!(first.starts_with("tests/fixtures/dialplans/does-not-exist.toml: error: cannot read the file"), "{first}");
    assert!(stdout.contains("dialplans/hotline.toml: ok"), "other files are still checked: {stdout}");
    assert_eq!(code, 2);
}

/// Without a TTS voice, every text-only prompt is flagged (calls would need
/// WAV prompts), but the dialplan is still valid.
#[test]
fn missing_tts_voice_is_a_warning_per_text_prompt() {
    let empty = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["check", "dialplans/hotline.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HOTLINE_MODELS_DIR", empty.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("warning: `prompt` has only text and will be spoken by text-to-speech, which is unavailable"),
        "{stdout}"
    );
    assert!(stdout.contains("en_US-joe-medium.onnx is missing"), "{stdout}");
}

/// `hotline check --asterisk` against a fake AMI whose Asterisk dialplan
/// has `contexts` (every extension in each): stdout and exit code.
async fn check_in_asterisk(contexts: &[&str]) -> (String, i32) {
    let dialplan = contexts.iter().map(|c| (c.to_string(), vec!["_X.".to_string()])).collect();
    let ami = FakeAmi::start(FakeAmiConfig { dialplan, ..Default::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hotline.toml");
    std::fs::write(&config, format!("[ami]\nport = {}\nusername = \"hotline\"\n", ami.addr.port())).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_hotline"))
            .args(["check", "--asterisk", "--config"])
            .arg(&config)
            .arg("dialplans/hotline.toml")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("HOTLINE_AMI_SECRET", "s3cret-ami")
            .output()
            .expect("run hotline")
    })
    .await
    .unwrap();
    let shows = ami.actions().iter().filter(|a| a.action() == "ShowDialPlan").count();
    assert!(shows > 0, "Asterisk was not asked");
    (String::from_utf8(out.stdout).unwrap(), out.status.code().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_asterisk_names_each_transfer_target_asterisk_lacks() {
    let (stdout, code) = check_in_asterisk(&["support-queue", "billing-queue"]).await;
    assert!(
        stdout.contains(
            "dialplans/hotline.toml: error: menus.billing.options.pay_bill: transfer target payments,220 does not exist in Asterisk: \
             Did not find context payments"
        ),
        "{stdout}"
    );
    for option in ["internet", "phone_line", "other_problem", "report_outage"] {
        assert!(
            stdout.contains(&format!("menus.tech_support.options.{option}: transfer target tech-support,")),
            "{option}: {stdout}"
        );
    }
    assert!(!stdout.contains("support-queue,100 does not"), "{stdout}");
    assert!(stdout.ends_with("asterisk: 8 transfer targets checked, 5 missing\n"), "{stdout}");
    assert_eq!(code, 1);

    let (stdout, code) = check_in_asterisk(&["support-queue", "billing-queue", "payments", "tech-support"]).await;
    assert_eq!(stdout, "dialplans/hotline.toml: ok\nasterisk: 8 transfer targets checked, 0 missing\n");
    assert_eq!(code, 0);
}

/// `--asterisk` reads the server config before asking Asterisk: a config
/// with mistakes is refused with every one of them, as `serve` prints them.
#[test]
fn check_asterisk_lists_every_mistake_of_the_config_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hotline.toml");
    std::fs::write(&config, "[ami]\nprot = 5038\nusername = \"hotline\"\ntimeout_ms = 5\n").unwrap();
    let config = config.display().to_string();
    let (stdout, code) = check(&["--asterisk", "--config", &config, "dialplans/hotline.toml"]);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{config}:2:1: unknown field `prot` in [ami]\n  = help: did you mean `port`?\n\
             {config}:4:14: `ami.timeout_ms`: 5 is out of range 100..=60000\n"
        )),
        "{stdout}"
    );
}

/// `hotline check` in a temporary folder with `dialplan` as `plan.toml`
/// and, when given, `config` as `hotline.toml`: stdout, exit code.
fn check_language(dialplan: &str, config: Option<&str>) -> (String, i32) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plan.toml"), dialplan).unwrap();
    let mut args = vec!["check", "plan.toml"];
    if let Some(config) = config {
        std::fs::write(dir.path().join("hotline.toml"), config).unwrap();
        args.extend(["--config", "hotline.toml"]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_hotline")).args(&args).current_dir(dir.path()).output().unwrap();
    (String::from_utf8(out.stdout).unwrap(), out.status.code().unwrap())
}

const SMALL_PLAN: &str = "[operator]\nextension = \"100\"\n\n[menus.main]\nprompt = \"Say billing.\"\n\n\
    [menus.main.options.billing]\nphrases = [\"账单\"]\ndtmf = \"1\"\ntransfer = \"200\"\n";

#[test]
fn unknown_language_code_is_an_error_with_the_code_meant() {
    let (stdout, code) = check_language(&format!("language = \"cn\"\n{SMALL_PLAN}"), None);
    assert_eq!(
        stdout,
        "plan.toml:1:12: error: unknown language `cn`\n  = help: did you mean `zh`?\nplan.toml: 1 error\n"
    );
    assert_eq!(code, 1);
}

#[test]
fn mandarin_needs_the_multilingual_model() {
    let plan = format!("language = \"zh\"\n{SMALL_PLAN}");
    // No configuration: the server's default model, tiny.en, English only.
    let (stdout, code) = check_language(&plan, None);
    assert_eq!(
        stdout,
        "plan.toml:1:12: error: language `zh` needs a multilingual recogniser, but `[recognizer] model` is \
         `whisper-tiny.en`, which hears English only\n  = help: set `[recognizer] model = \"whisper-base\"` in the \
         server configuration\nplan.toml: 1 error\n"
    );
    assert_eq!(code, 1);
    let (stdout, code) = check_language(&plan, Some("[recognizer]\nmodel = \"whisper-base\"\n"));
    assert_eq!((stdout.as_str(), code), ("plan.toml: ok\n", 0));
    // English needs nothing: the shipped dialplans stay clean without a config.
    let (stdout, code) = check_language(&format!("language = \"en\"\n{SMALL_PLAN}"), None);
    assert_eq!((stdout.as_str(), code), ("plan.toml: ok\n", 0));
}
