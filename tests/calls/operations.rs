//! Operating the server: `/metrics` counting what emulated calls did,
//! `/healthz` and `/readyz` through a SIGTERM drain, call records in
//! SQLite (one row per call, its events in order, `records export`), and
//! a record store that cannot be written. Each test runs `hotline serve`
//! as a child process, so the process-wide metrics are its calls' alone.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::service::{free_port, warm_prompt_cache, ChildServer};
use crate::support::asterisk::{AsteriskCall, AsteriskConfig};
use crate::support::server::{clip, http_get, DIALPLAN};

pub(crate) const USER: &str = "asterisk";
pub(crate) const PASSWORD: &str = "metrics-test-pw";

/// A folder with the test dialplan and a config naming it.
pub(crate) fn folder(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("dialplans")).unwrap();
    std::fs::write(dir.path().join("dialplans/hotline.toml"), DIALPLAN).unwrap();
    let config = dir.path().join("hotline.toml");
    let toml = format!(
        "listen = \"127.0.0.1:{}\"\nprompt_cache_dir = \"{}\"\n{extra}",
        free_port(),
        warm_prompt_cache().display()
    );
    std::fs::write(&config, toml).unwrap();
    (dir, config)
}

/// `GET path` with basic auth; status and body.
pub(crate) async fn get_with_auth(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let cred = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {cred}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text).await;
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

/// The exposition text, checked line by line (every sample a name, labels
/// and a number; every metric typed) and parsed.
fn parse_metrics(text: &str) -> prometheus_parse::Scrape {
    let mut typed = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.push(rest.split_whitespace().next().unwrap().to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
        assert!(value.parse::<f64>().is_ok() || value == "+Inf", "not a number in: {line}");
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && name.starts_with("hotline_"),
            "metric name: {line}"
        );
        assert!(
            typed.iter().any(|t| name == t || name.strip_prefix(t.as_str()).is_some_and(|s| s.starts_with('_'))),
            "no # TYPE before {line}"
        );
    }
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// The value of the sample `name` whose labels include `labels`, summed
/// over the rest (0 when there is none).
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            other => panic!("{name} is not a number: {other:?}"),
        })
        .sum()
}

/// An event row: type, menu, intent, source.
type EventRow = (String, Option<String>, Option<String>, Option<String>);

/// One stored call: its row and its events, in order.
#[derive(Debug)]
struct StoredCall {
    call_id: String,
    outcome: String,
    transfer_reason: Option<String>,
    transfer_extension: Option<String>,
    events: Vec<EventRow>,
}

/// Finished calls (a call's row is there from its start), oldest first.
fn stored_calls(db: &Path) -> Vec<StoredCall> {
    let Ok(conn) = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return Vec::new();
    };
    let Ok(mut calls) = conn.prepare(
        "SELECT id, call_id, outcome, transfer_reason, transfer_extension FROM calls
         WHERE outcome != 'in_progress' ORDER BY start_unix_ms, id",
    ) else {
        return Vec::new();
    };
    let rows: Vec<(i64, StoredCall)> = calls
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                StoredCall {
                    call_id: r.get(1)?,
                    outcome: r.get(2)?,
                    transfer_reason: r.get(3)?,
                    transfer_extension: r.get(4)?,
                    events: Vec::new(),
                },
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut events =
        conn.prepare("SELECT seq, type, menu, intent, source FROM events WHERE call = ?1 ORDER BY seq").unwrap();
    rows.into_iter()
        .map(|(id, mut call)| {
            let evs: Vec<(i64, EventRow)> = events
                .query_map([id], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let seqs: Vec<i64> = evs.iter().map(|e| e.0).collect();
            assert_eq!(seqs, (0..evs.len() as i64).collect::<Vec<_>>(), "events numbered in order: {}", call.call_id);
            call.events = evs.into_iter().map(|(_, row)| row).collect();
            call
        })
        .collect()
}

async fn wait_stored(db: &Path, n: usize) -> Vec<StoredCall> {
    let t0 = Instant::now();
    loop {
        let calls = stored_calls(db);
        if calls.len() >= n {
            return calls;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "{} of {n} calls stored: {calls:?}", calls.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn caller(addr: SocketAddr, n: u32) -> AsteriskConfig {
    let mut cfg = AsteriskConfig::new(addr, n);
    cfg.auth = Some((USER.into(), PASSWORD.into()));
    // The no-AMI transfer method hands the target to the call's own token.
    cfg.path = format!("/?caller_uid={}&decision_token=f81d4fae-7dec-11d0-a765-00a0c91e6b{n:02}", cfg.channel_id);
    cfg
}

pub(crate) async fn wait_marks(call: &AsteriskCall, n: usize, what: &str) {
    assert!(call.wait_marks(n, Duration::from_secs(30)).await, "{what} never played: {:?}", call.commands());
}

pub(crate) async fn wait_hangup(call: &AsteriskCall) {
    assert!(call.wait_command("HANGUP", Duration::from_secs(20)).await.is_some(), "no HANGUP: {:?}", call.commands());
    call.hangup().await;
}

fn types(call: &StoredCall) -> Vec<&str> {
    call.events.iter().map(|e| e.0.as_str()).collect()
}

fn intents(call: &StoredCall) -> Vec<(&str, &str, &str)> {
    call.events
        .iter()
        .filter(|e| e.0 == "intent")
        .map(|e| (e.1.as_deref().unwrap(), e.2.as_deref().unwrap(), e.3.as_deref().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_sqlite_records_match_what_the_emulated_calls_did() {
    let (dir, config) = folder(&format!(
        "shutdown_grace_secs = 1\ncall_records = \"calls.db\"\n[auth]\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\n"
    ));
    let mut server = ChildServer::start(&config, "");
    server.wait_ready().await;
    let addr = server.addr;

    // 1: keys to billing, then "pay": a transfer the dialplan asks for.
    let by_keys = AsteriskCall::connect(caller(addr, 1)).await.unwrap();
    wait_marks(&by_keys, 1, "greeting").await;
    by_keys.dtmf('1').await;
    wait_marks(&by_keys, 2, "billing prompt").await;
    by_keys.dtmf('1').await;
    wait_hangup(&by_keys).await;
    // 2: "one" spoken (a real recording) to billing, then 0: the caller asks for a human.
    let by_voice = AsteriskCall::connect(caller(addr, 2)).await.unwrap();
    wait_marks(&by_voice, 1, "greeting").await;
    by_voice.say(&clip("speech_commands/one_2796ac50_nohash_0.wav", 16000)).await;
    wait_marks(&by_voice, 2, "billing prompt after speech").await;
    by_voice.dtmf('0').await;
    wait_hangup(&by_voice).await;
    // 3: the caller hangs up after the greeting.
    let gone = AsteriskCall::connect(caller(addr, 3)).await.unwrap();
    wait_marks(&gone, 1, "greeting").await;
    gone.hangup().await;

    // Every call exactly once, with the right outcome and its events in order.
    let db = dir.path().join("calls.db");
    let calls = wait_stored(&db, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls_again = stored_calls(&db);
    assert_eq!(calls_again.len(), 3, "one row per call: {calls_again:?}");
    let ids: Vec<&str> = calls.iter().map(|c| c.call_id.as_str()).collect();
    assert_eq!(ids, [by_keys.cfg.channel_id.as_str(), by_voice.cfg.channel_id.as_str(), gone.cfg.channel_id.as_str()]);
    let (keys, voice, hung_up) = (&calls[0], &calls[1], &calls[2]);
    assert_eq!(
        (keys.outcome.as_str(), keys.transfer_reason.as_deref(), keys.transfer_extension.as_deref()),
        ("transferred", Some("dialplan"), Some("220")),
        "{keys:?}"
    );
    assert_eq!(types(keys), ["prompt", "dtmf", "intent", "prompt", "dtmf", "intent", "prompt", "transfer"], "{keys:?}");
    assert_eq!(intents(keys), [("main", "billing", "dtmf"), ("billing", "pay", "dtmf")]);
    assert_eq!(
        (voice.outcome.as_str(), voice.transfer_reason.as_deref(), voice.transfer_extension.as_deref()),
        ("transferred", Some("asked"), Some("100")),
        "{voice:?}"
    );
    assert_eq!(intents(voice), [("main", "billing", "speech"), ("billing", "agent", "dtmf")], "{voice:?}");
    let utterance = types(voice).iter().position(|t| *t == "utterance").expect("the spoken word's utterance");
    assert!(utterance < types(voice).iter().position(|t| *t == "intent").unwrap(), "{voice:?}");
    assert_eq!((hung_up.outcome.as_str(), hung_up.transfer_reason.as_deref()), ("caller_hung_up", None));
    assert_eq!(types(hung_up).last(), Some(&"hangup"), "{hung_up:?}");

    // /metrics needs the credentials the other routes need.
    let (status, _) = http_get(addr, "/metrics").await;
    assert_eq!(status, 401, "/metrics without credentials");
    let (status, text) = get_with_auth(addr, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    let m = parse_metrics(&text);
    let finished = |outcome: &str, reason: Option<&str>| {
        let mut labels = vec![("outcome", outcome), ("transport", "asterisk_ws"), ("dialplan", "hotline")];
        labels.extend(reason.map(|r| ("reason", r)));
        value(&m, "hotline_calls_finished_total", &labels)
    };
    assert_eq!(finished("transferred", Some("dialplan")), 1.0, "{text}");
    assert_eq!(finished("transferred", Some("asked")), 1.0, "{text}");
    assert_eq!(finished("transferred", Some("escalated")), 0.0, "{text}");
    assert_eq!(finished("caller_hung_up", None), 1.0, "{text}");
    assert_eq!(value(&m, "hotline_calls_finished_total", &[]), 3.0, "{text}");
    assert_eq!(value(&m, "hotline_calls_active", &[]), 0.0, "{text}");
    // Counters equal what the records say happened.
    let mut from_records: HashMap<(&str, &str, &str), f64> = HashMap::new();
    for c in &calls {
        for i in intents(c) {
            *from_records.entry(i).or_default() += 1.0;
        }
    }
    assert_eq!(from_records.len(), 4);
    for ((menu, intent, source), n) in &from_records {
        let labels = [("dialplan", "hotline"), ("menu", *menu), ("intent", *intent), ("source", *source)];
        assert_eq!(value(&m, "hotline_intents_total", &labels), *n, "{menu}/{intent}/{source}: {text}");
    }
    assert_eq!(value(&m, "hotline_intents_total", &[]), 4.0, "{text}");
    let utterances = calls.iter().map(|c| types(c).iter().filter(|t| **t == "utterance").count()).sum::<usize>();
    assert_eq!(value(&m, "hotline_utterances_total", &[("dialplan", "hotline")]), utterances as f64, "{text}");
    assert_eq!(value(&m, "hotline_speech_to_action_seconds_count", &[]), 1.0, "one intent by speech: {text}");
    assert!(value(&m, "hotline_recognition_seconds_count", &[]) >= 1.0, "{text}");
    assert_eq!(value(&m, "hotline_connections_refused_total", &[("reason", "auth")]), 1.0, "{text}");
    assert_eq!(value(&m, "hotline_call_records_written_total", &[]), 3.0, "{text}");
    assert_eq!(value(&m, "hotline_call_records_lost_total", &[]), 0.0, "{text}");
    assert_eq!(value(&m, "hotline_dialplan_reloads_total", &[("result", "accepted")]), 1.0, "{text}");
    assert!(value(&m, "hotline_prompt_cache_hits_total", &[]) >= 1.0, "{text}");

    // `records export` gives the same calls as JSON lines, events in order.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["records", "export", "--format", "jsonl", "--config"])
        .arg(&config)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    for (line, call) in lines.iter().zip(&calls) {
        assert_eq!(line["call_id"], call.call_id.as_str());
        assert_eq!(line["outcome"], call.outcome.as_str());
        assert_eq!(line["transport"], "asterisk_ws");
        let kinds: Vec<&str> = line["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, types(call), "{line:#}");
    }
    assert_eq!(lines[0]["transfer"]["extension"], "220");
    let future = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["records", "export", "--format", "jsonl", "--since", "2999-01-01", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(future.status.success() && future.stdout.is_empty(), "--since after every call: {future:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_503_after_sigterm_while_a_call_is_still_running() {
    let (_dir, config) = folder("shutdown_grace_secs = 20\ncall_records = \"calls.db\"\n");
    let mut server = ChildServer::start(&config, "");
    server.wait_ready().await;
    let addr = server.addr;
    assert_eq!(http_get(addr, "/healthz").await, (200, "ok\n".to_string()));
    let (status, body) = http_get(addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");

    let call = AsteriskCall::connect(AsteriskConfig::new(addr, 1)).await.unwrap();
    wait_marks(&call, 1, "greeting").await;
    server.signal("TERM");
    let t0 = Instant::now();
    let body = loop {
        let (status, body) = http_get(addr, "/readyz").await;
        if status == 503 {
            break body;
        }
        // 0: a probe that connected just as the drain began is dropped.
        assert!(status == 200 || status == 0, "{status} {body}");
        assert!(t0.elapsed() < Duration::from_secs(5), "still ready 5 s after SIGTERM: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["ready"], false);
    assert!(body["reason"].as_str().unwrap().contains("draining"), "{body}");
    assert_eq!(http_get(addr, "/healthz").await.0, 200, "alive while draining");
    // The call in progress is still served while the balancer is told to stop.
    call.dtmf('1').await;
    wait_marks(&call, 2, "billing prompt while draining").await;
    assert!(server.is_running());
    call.hangup().await;
    let status = server.wait_exit(Duration::from_secs(15)).await.expect("the server stops once its call is over");
    assert!(status.success(), "{status:?}\n{}", server.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_record_database_keeps_calls_working_and_counts_the_losses() {
    let (dir, config) = folder("shutdown_grace_secs = 1\ncall_records = \"ro/calls.db\"\n");
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let db = ro.join("calls.db");
    drop(hotline::records::sql::SqlStore::open(&db).unwrap());
    // The folder read-only for the server alone: a bind mount in a mount
    // namespace of its own (root ignores file modes).
    let setup = format!(
        "exec unshare --mount --propagation private sh -c 'mount --bind -o ro \"$2\" \"$2\" || exit 97; exec \"$0\" serve --config \"$1\"' \"$0\" \"$1\" '{}'",
        ro.display()
    );
    let mut server = ChildServer::start(&config, &setup);
    server.wait_ready().await;
    let addr = server.addr;
    let mut calls = Vec::new();
    for n in 1..=2 {
        let call = AsteriskCall::connect(AsteriskConfig::new(addr, n)).await.unwrap();
        wait_marks(&call, 1, "greeting").await;
        call.dtmf('1').await;
        wait_marks(&call, 2, "billing prompt").await;
        call.hangup().await;
        // Kept until the end: dropping the emulator resets the connection.
        calls.push(call);
    }
    let t0 = Instant::now();
    let text = loop {
        let (status, text) = http_get(addr, "/metrics").await;
        assert_eq!(status, 200, "{text}");
        if value(&parse_metrics(&text), "hotline_call_records_lost_total", &[]) >= 2.0 {
            break text;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "losses not counted: {text}\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let m = parse_metrics(&text);
    assert_eq!(value(&m, "hotline_call_records_lost_total", &[("reason", "store_failed")]), 2.0, "{text}");
    assert_eq!(value(&m, "hotline_call_records_written_total", &[]), 0.0, "{text}");
    let log = server.log();
    let ended: Vec<&str> = log.lines().filter(|l| l.contains("call ended")).collect();
    assert_eq!(value(&m, "hotline_calls_finished_total", &[("outcome", "caller_hung_up")]), 2.0, "{text}\n{ended:?}");
    let lost: Vec<&str> = log.lines().filter(|l| l.contains("call record lost")).collect();
    assert_eq!(lost.len(), 1, "logged at most once a minute:\n{log}");
    assert!(lost[0].contains("calls.db") && lost[0].contains("lost_total=1"), "{}", lost[0]);
    assert!(server.is_running());
    assert!(stored_calls(&db).is_empty(), "nothing was written to the read-only database");
}
