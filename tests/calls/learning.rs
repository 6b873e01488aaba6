//! Learning from real calls: callers speak real recordings to a running
//! server over the Asterisk emulator, their calls land in `calls.db`, and
//! `hotline suggest` reads them back: it finds what the menu lacked with
//! the right counts, proposes the option the callers then chose by key,
//! and `--apply` writes a dialplan that checks clean, keeps every comment,
//! and understands those callers without moving anyone else (their
//! transcripts through the matcher, and their recordings replayed).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::service::{free_port, warm_prompt_cache, ChildServer};
use crate::support::asterisk::{AsteriskCall, AsteriskConfig};
use crate::support::server::clip;
use hotline::learn::propose::{candidates, decide, Decision};

/// A menu that says "cancel my order" where callers say "stop", and has
/// nothing for "left". Its comments must survive `--apply` byte for byte.
const DIALPLAN: &str = r#"# Order line: callers cancel, carry on, or switch the lights off.
start = "main"

[operator]
extension = "100"   # the front desk

[menus.main]
prompt = "To cancel your order, press 1. To carry on, press 2. To switch the lights off, press 3."
no_input_timeout = 20

# Only the long form, on purpose.
[menus.main.options.cancel]
phrases = ["cancel my order"]  # callers say less
dtmf = "1"
goto = "done"

[menus.main.options.carry_on]
phrases = [
    "carry on",   # the usual
    "continue",
]
dtmf = "2"
goto = "done"

[menus.main.options.lights]
phrases = ["lights off", "off"]
dtmf = "3"
goto = "done"

[menus.done]
prompt = "Done. Press 1 to start again."
no_input_timeout = 20

[menus.done.options.again]
phrases = ["start again"]
dtmf = "1"
goto = "main"
"#;

/// Callers who said "stop" (recorded), were not understood, and pressed 1.
const STOP: [&str; 3] = ["stop_68dd409e_nohash_1.wav", "stop_a1533da4_nohash_1.wav", "stop_af130f12_nohash_0.wav"];
/// Callers who said "left", which the menu does not offer, and hung up.
const LEFT: [&str; 2] = ["left_022cd682_nohash_1.wav", "left_0cb74144_nohash_4.wav"];
/// A caller understood at once.
const OFF: &str = "off_2c6d3924_nohash_0.wav";

async fn marks(call: &AsteriskCall, n: usize, what: &str) {
    assert!(call.wait_marks(n, Duration::from_secs(30)).await, "{what} never played: {:?}", call.commands());
}

/// One call: the greeting, the recording, then (after the machine's
/// answer has played) the key, or a hang-up.
async fn call(addr: std::net::SocketAddr, n: u32, recording: &str, then_key: Option<char>) -> String {
    let call = AsteriskCall::connect(AsteriskConfig::new(addr, n)).await.unwrap();
    marks(&call, 1, "greeting").await;
    call.say(&clip(&format!("speech_commands/{recording}"), 16000)).await;
    call.silence(1_000).await;
    marks(&call, 2, "the answer to the recording").await;
    if let Some(key) = then_key {
        call.dtmf(key).await;
        marks(&call, 3, "the prompt after the key").await;
    }
    call.hangup().await;
    call.cfg.channel_id.clone()
}

/// Calls finished and stored (a call's row is there from its start).
fn stored_calls(db: &Path) -> usize {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| {
            c.query_row("SELECT COUNT(*) FROM calls WHERE outcome != 'in_progress'", [], |r| r.get::<_, i64>(0))
        })
        .unwrap_or(0) as usize
}

fn hotline(args: &[&str], dir: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suggest_learns_the_words_callers_used_and_apply_makes_them_understood() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("dialplans")).unwrap();
    let plan_path = dir.path().join("dialplans/hotline.toml");
    std::fs::write(&plan_path, DIALPLAN).unwrap();
    let config = dir.path().join("hotline.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{}\"\nprompt_cache_dir = \"{}\"\ndialplan_dir = \"{}\"\ncall_records = \"{}\"\nkeep_audio_dir = \"{}\"\nshutdown_grace_secs = 1\n",
            free_port(),
            warm_prompt_cache().display(),
            dir.path().join("dialplans").display(),
            dir.path().join("calls.db").display(),
            dir.path().join("audio").display(),
        ),
    )
    .unwrap();
    let mut server = ChildServer::start(&config, "");
    server.wait_ready().await;

    let mut stop_calls = Vec::new();
    for (i, rec) in STOP.iter().enumerate() {
        stop_calls.push(call(server.addr, 1 + i as u32, rec, Some('1')).await);
    }
    let mut left_calls = Vec::new();
    for (i, rec) in LEFT.iter().enumerate() {
        left_calls.push(call(server.addr, 10 + i as u32, rec, None).await);
    }
    // Understood at once, then a key in the next menu (not a hang-up on it).
    call(server.addr, 20, OFF, Some('1')).await;

    let db = dir.path().join("calls.db");
    let t0 = Instant::now();
    while stored_calls(&db) < 6 {
        assert!(t0.elapsed() < Duration::from_secs(15), "{} of 6 calls stored:\n{}", stored_calls(&db), server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);
    let before = std::fs::read(&plan_path).unwrap();

    // The report, as JSON.
    let out = hotline(&["suggest", "--records", "calls.db", "--dialplan", "dialplans", "--format", "json"], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&plan_path).unwrap(), before, "no file is touched without --apply");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["calls"].as_u64(), report["utterances"].as_u64()), (Some(6), Some(6)), "{report:#}");
    assert!(report["check"].as_str().unwrap().starts_with("open transcripts"), "{report:#}");
    let suggestions = report["suggestions"].as_array().unwrap();
    let of = |words: &str| {
        suggestions.iter().find(|s| s["words"] == words).unwrap_or_else(|| panic!("no `{words}` group: {report:#}"))
    };
    let stop = of("stop");
    assert_eq!((stop["menu"].as_str(), stop["count"].as_u64()), (Some("main"), Some(3)), "{stop:#}");
    assert_eq!(stop["proposal"], serde_json::json!({"action": "add_phrase", "option": "cancel", "phrase": "stop"}));
    assert_eq!(stop["meant"], serde_json::json!({"option": "cancel", "callers": 3}), "{stop:#}");
    let mut examples: Vec<&str> =
        stop["example_calls"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    examples.sort();
    assert_eq!(examples, stop_calls, "{stop:#}");
    assert_eq!(stop["replay"]["fixed"], 3, "{stop:#}");
    assert_eq!(stop["replay"]["others_checked"], 3, "{stop:#}");
    assert_eq!(stop["replay"]["moved"], serde_json::json!([]), "{stop:#}");
    let left = of("left");
    assert_eq!(left["count"], 2, "{left:#}");
    assert_eq!(left["proposal"], serde_json::json!({"action": "new_option", "phrase": "left"}), "{left:#}");
    assert_eq!(suggestions.len(), 2, "only the two groups: {report:#}");

    // The callers' kept audio, recognised again with the menu's grammar
    // before and after: the same verdict as the transcripts.
    let out = hotline(&["suggest", "--records", "calls.db", "--format", "json", "--rehear"], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reheard: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(reheard["check"].as_str().unwrap().contains("kept audio"), "{reheard:#}");
    let audio = &reheard["suggestions"][0]["replay"]["audio"];
    let mut kept = Vec::new();
    hotline::learn::records::for_each_call(&db, 0, |c| {
        let len =
            c.audio_file.as_ref().and_then(|f| hotline::audio::read_wav(f).ok()).map(|a| (a.rate, a.samples.len()));
        let spans: Vec<String> = c
            .events
            .iter()
            .filter_map(|e| match e {
                hotline::learn::records::RecordedEvent::Utterance { start_ms, end_ms, .. } => {
                    Some(format!("{start_ms}-{end_ms}"))
                }
                _ => None,
            })
            .collect();
        kept.push(format!("{}: {:?} {len:?} {spans:?}", c.call_id, c.audio_file));
        true
    })
    .unwrap();
    let kept = kept.join("\n");
    assert_eq!(reheard["suggestions"][0]["words"], "stop", "{reheard:#}");
    assert_eq!((audio["heard"].as_u64(), audio["fixed"].as_u64()), (Some(3), Some(3)), "{audio:#}\n{kept}");
    assert_eq!(audio["others_checked"], 3, "{audio:#}");
    assert_eq!(audio["moved"], serde_json::json!([]), "{audio:#}");
    assert!(report["suggestions"][0]["replay"].get("audio").is_none(), "only with --rehear");

    // The readable table says the same.
    let table = hotline(&["suggest", "--records", "calls.db"], dir.path());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success() && text.contains("add phrase \"stop\" to option `cancel`"), "{text}");

    // --apply: the phrase is added, every other byte stays.
    let applied = hotline(&["suggest", "--records", "calls.db", "--apply"], dir.path());
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    let after = std::fs::read_to_string(&plan_path).unwrap();
    assert_eq!(
        after,
        DIALPLAN.replace(r#"["cancel my order"]  #"#, r#"["cancel my order", "stop"]  #"#),
        "only the phrase list changed"
    );
    let check = hotline(&["check", "dialplans"], dir.path());
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));

    // The same recorded transcripts through the matcher with the applied
    // dialplan: the "stop" callers now reach `cancel`; nobody else moves.
    std::fs::write(dir.path().join("old.toml"), &before).unwrap();
    let old = hotline::dialplan::load(&dir.path().join("old.toml")).unwrap();
    let new = hotline::dialplan::load(&plan_path).unwrap();
    let mut heard = Vec::new();
    hotline::learn::records::for_each_call(&db, 0, |c| {
        heard.extend(hotline::learn::collect::heard_in(&c, &new));
        true
    })
    .unwrap();
    assert_eq!(heard.len(), 6);
    let matcher = hotline::intent::TextMatcher::default();
    for h in &heard {
        let menu = |p: &hotline::dialplan::Dialplan| candidates(p, &p.menus["main"]);
        let (was, now) = (decide(&old, &matcher, &menu(&old), &h.text), decide(&new, &matcher, &menu(&new), &h.text));
        if stop_calls.contains(&h.call_id) {
            assert_ne!(was, Decision::Act("cancel".into()), "{h:?}");
            assert_eq!(now, Decision::Act("cancel".into()), "{h:?} is understood now");
        } else {
            assert_eq!(now, was, "{h:?} goes where it went");
        }
    }
    assert!(left_calls.iter().all(|c| heard.iter().any(|h| &h.call_id == c && h.fate.is_trouble())));

    // The same recordings replayed through the recogniser and the call
    // machine: with the applied dialplan "stop" reaches `cancel` by speech;
    // every other call takes the path it took before.
    let path_of = |plan: &Path, recording: &str| -> Vec<(String, String)> {
        let wav = crate::support::server::testdata(&format!("speech_commands/{recording}"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
            .args(["replay", "--dialplan"])
            .arg(plan)
            .arg(&wav)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|e| e["type"] == "intent" || e["type"] == "no_match")
            .map(|e| (e["type"].as_str().unwrap().to_string(), e["intent"].as_str().unwrap_or("").to_string()))
            .collect()
    };
    let no_match = vec![("no_match".to_string(), String::new())];
    for rec in STOP {
        assert_eq!(path_of(&dir.path().join("old.toml"), rec), no_match, "{rec} before");
        assert_eq!(path_of(&plan_path, rec), [("intent".to_string(), "cancel".to_string())], "{rec} after");
    }
    for rec in LEFT.iter().chain([&OFF]) {
        assert_eq!(path_of(&plan_path, rec), path_of(&dir.path().join("old.toml"), rec), "{rec} keeps its path");
    }
}
