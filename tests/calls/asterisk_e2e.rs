//! End to end: the real server (speech models, TTS prompts, call machine,
//! dialplan loader) on loopback, called by the Asterisk emulator with real
//! recorded speech, transfers through a fake AMI.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::ami::{Answer, FakeAmi, FakeAmiConfig, Fate};
use crate::support::asterisk::{AsteriskCall, AsteriskConfig, Control, Seen};
use crate::support::server::{clip, deps, events_of, read_records, wait_record, DIALPLAN};
use hotline::config::ServerConfig;
use hotline::server::{self, RunningServer};
use serde_json::Value;

const AMI_SECRET: &str = "s3cret-ami";

struct Harness {
    server: Option<RunningServer>,
    dir: tempfile::TempDir,
    ami: Option<FakeAmi>,
    n: u32,
}

impl Harness {
    /// A server on a free loopback port with the test dialplan; `extra`
    /// is appended to its configuration.
    async fn start(extra: &str, ami: Option<FakeAmiConfig>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("dialplans")).unwrap();
        std::fs::write(dir.path().join("dialplans/hotline.toml"), DIALPLAN).unwrap();
        let ami = match ami {
            Some(c) => Some(FakeAmi::start(c).await),
            None => None,
        };
        let mut toml = String::from(
            "listen = \"127.0.0.1:0\"\ndialplan_dir = \"dialplans\"\ncall_records = \"calls.jsonl\"\nreload_interval_ms = 100\nshutdown_grace_secs = 1\n",
        );
        toml.push_str(extra);
        if let Some(a) = &ami {
            toml.push_str(&format!("\n[ami]\nport = {}\nusername = \"hotline\"\ntimeout_ms = 1000\n", a.addr.port()));
        }
        let path = dir.path().join("hotline.toml");
        std::fs::write(&path, &toml).unwrap();
        let cfg = ServerConfig::from_toml_str(&toml, Some(&path), &|k| {
            (k == "HOTLINE_AMI_SECRET").then(|| AMI_SECRET.to_string())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let server = server::start(cfg, deps()).await.unwrap_or_else(|e| panic!("{e}"));
        Harness { server: Some(server), dir, ami, n: 0 }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().unwrap().local_addr()
    }

    fn caller(&mut self) -> AsteriskConfig {
        self.n += 1;
        AsteriskConfig::new(self.addr(), self.n)
    }

    async fn call(&mut self) -> AsteriskCall {
        let cfg = self.caller();
        self.connect(cfg).await
    }

    /// Connects a call and makes it known to the fake AMI, which, like
    /// Asterisk, closes its websocket when it moves the caller away.
    async fn connect(&self, cfg: AsteriskConfig) -> AsteriskCall {
        let call = AsteriskCall::connect(cfg).await.unwrap_or_else(|e| panic!("{e:?}"));
        if let Some(ami) = &self.ami {
            ami.attach(&caller_channel(&call), Some(&call.cfg.channel), call.closer());
        }
        call
    }

    fn records(&self) -> Vec<Value> {
        read_records(&self.dir.path().join("calls.jsonl"))
    }

    /// Waits for the call record of `call_id` (written when the call ends).
    async fn record(&self, call_id: &str, timeout: Duration) -> Value {
        wait_record(&self.dir.path().join("calls.jsonl"), call_id, timeout).await
    }
}

/// The caller leg's channel name, as the call's `__CALLER_CHANNEL` names it.
fn caller_channel(call: &AsteriskCall) -> String {
    call.cfg
        .channel_variables
        .iter()
        .find(|(k, _)| k == "__CALLER_CHANNEL")
        .map_or_else(|| format!("Local/s@caller-of-{};1", call.cfg.channel_id), |(_, v)| v.clone())
}

/// The prompt that greets the caller has played to the end.
async fn wait_greeting(call: &AsteriskCall) {
    assert!(call.wait_marks(1, Duration::from_secs(30)).await, "greeting never finished: {:?}", call.commands());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saying_one_reaches_billing_and_its_prompt_plays() {
    let mut h = Harness::start("", None).await;
    let call = h.call().await;
    wait_greeting(&call).await;
    assert!(call.commands()[0].1.contains("ANSWER"), "ANSWER first: {:?}", call.commands());
    call.say(&clip("speech_commands/one_2796ac50_nohash_0.wav", 16000)).await;
    assert!(call.wait_marks(2, Duration::from_secs(30)).await, "billing prompt never played: {:?}", call.commands());
    assert_eq!(
        call.seen().iter().filter(|(_, s)| matches!(s, Seen::Underrun)).count(),
        0,
        "prompt audio ran dry mid-prompt"
    );
    call.hangup().await;
    let rec = h.record(&call.cfg.channel_id, Duration::from_secs(10)).await;
    let intents = events_of(&rec, "intent");
    assert!(!intents.is_empty(), "no intent: {rec:#}");
    assert_eq!(intents[0]["intent"], "billing", "{rec:#}");
    assert_eq!(intents[0]["source"], "speech");
    assert!(events_of(&rec, "prompt").iter().any(|p| p["menu"] == "billing"), "{rec:#}");
    assert!(events_of(&rec, "utterance")[0]["confidence"].as_f64().is_some());
    assert_eq!(rec["dialplan"], "hotline");
    assert!(rec["dialplan_version"].as_str().is_some_and(|v| !v.is_empty()));
    assert_eq!(rec["channel"], "Local/s@caller-sim-00000001;1");
    assert!(rec["hangup_cause"].as_str().unwrap().contains("1000"), "{}", rec["hangup_cause"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_two_reaches_support_on_a_plain_text_ulaw_call() {
    let mut h = Harness::start("", None).await;
    let mut cfg = h.caller();
    cfg.control = Control::PlainText;
    cfg.format = "ulaw".into();
    cfg.path = "/call?dialplan=hotline&caller_id=%2B4930123".into();
    let call = AsteriskCall::connect(cfg).await.unwrap();
    wait_greeting(&call).await;
    assert!(call.commands().iter().any(|(_, c)| c == "MARK_MEDIA p1"), "plain-text commands: {:?}", call.commands());
    call.dtmf('2').await;
    assert!(call.wait_marks(2, Duration::from_secs(30)).await);
    call.hangup().await;
    let rec = h.record(&call.cfg.channel_id, Duration::from_secs(10)).await;
    let intents = events_of(&rec, "intent");
    assert_eq!((intents[0]["intent"].as_str(), intents[0]["source"].as_str()), (Some("support"), Some("dtmf")));
    assert!(events_of(&rec, "prompt").iter().any(|p| p["menu"] == "support"));
    assert_eq!(rec["caller_id"], "+4930123");
    assert_eq!(events_of(&rec, "dtmf")[0]["digit"], "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saying_zero_redirects_the_caller_leg_through_ami() {
    let mut h = Harness::start("[transfer]\nmethod = \"ami\"\n", Some(FakeAmiConfig::default())).await;
    let call = h.call().await;
    wait_greeting(&call).await;
    call.say(&clip("speech_commands/zero_837a0f64_nohash_3.wav", 16000)).await;
    let ami = h.ami.as_ref().unwrap();
    let redirect = ami.wait_for("Redirect", Duration::from_secs(30)).await.expect("no AMI Redirect");
    assert_eq!(
        redirect.get("Channel"),
        Some("Local/s@caller-sim-00000001;1"),
        "the caller leg, not the WebSocket channel"
    );
    assert_eq!(redirect.get("Context"), Some("operators"));
    assert_eq!(redirect.get("Exten"), Some("100"));
    assert_eq!(redirect.get("Priority"), Some("1"));
    let login = ami.actions().into_iter().find(|a| a.action() == "Login").unwrap();
    assert_eq!(login.get("Secret"), Some(AMI_SECRET));
    // As on a real Asterisk, the websocket closes (1000) before the AMI
    // answer comes; the record still has the transfer and its result.
    assert!(call.wait_closed(Duration::from_secs(10)).await);
    let rec = h.record(&call.cfg.channel_id, Duration::from_secs(10)).await;
    assert_eq!(rec["transfer"]["result"], "ok", "{rec:#}");
    assert_eq!(rec["transfer"]["method"], "ami-redirect");
    assert_eq!(rec["transfer"]["extension"], "100");
    assert_eq!(rec["hangup_cause"], "transferred", "{rec:#}");
    assert!(
        !call.commands().iter().any(|(_, c)| c.contains("HANGUP")),
        "Asterisk had already closed: {:?}",
        call.commands()
    );
    let caller = caller_channel(&call);
    assert_eq!(ami.fate(&caller), Some(Fate::Landed { context: "operators".into(), exten: "100".into() }));
    let log = std::fs::read_to_string(h.dir.path().join("calls.jsonl")).unwrap();
    assert!(!log.contains(AMI_SECRET), "the AMI secret leaked into the call records");
}

/// Presses 0 (the operator: `operators,100`) once the greeting is over;
/// returns the call record and what became of the caller.
async fn transfer_to_the_operator(h: &mut Harness) -> (Value, Option<Fate>) {
    let call = h.call().await;
    wait_greeting(&call).await;
    call.dtmf('0').await;
    assert!(call.wait_closed(Duration::from_secs(20)).await, "{:?}", call.commands());
    let rec = h.record(&call.cfg.channel_id, Duration::from_secs(10)).await;
    let fate = h.ami.as_ref().unwrap().wait_fate(&caller_channel(&call), Duration::from_secs(1)).await;
    (rec, fate)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_to_a_context_asterisk_lacks_is_recorded_as_hung_up_not_ok() {
    // Asterisk accepts the Redirect, then hangs the caller up ("sent to
    // invalid extension but no invalid handler").
    let dialplan = vec![("hotline-operators".to_string(), vec!["_X.".to_string()])];
    let mut h = Harness::start("", Some(FakeAmiConfig { dialplan, ..Default::default() })).await;
    let (rec, fate) = transfer_to_the_operator(&mut h).await;
    assert!(matches!(fate, Some(Fate::HungUp(_))), "{fate:?}");
    let result = rec["transfer"]["result"].as_str().unwrap();
    assert!(result.starts_with("hung up"), "{rec:#}");
    assert_ne!(rec["hangup_cause"], "transferred", "{rec:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_to_a_missing_extension_that_lands_in_the_invalid_handler_is_not_ok() {
    let dialplan = vec![("operators".to_string(), vec!["i".to_string(), "200".to_string()])];
    let mut h = Harness::start("", Some(FakeAmiConfig { dialplan, ..Default::default() })).await;
    let (rec, fate) = transfer_to_the_operator(&mut h).await;
    assert_eq!(fate, Some(Fate::Landed { context: "operators".into(), exten: "i".into() }));
    assert!(rec["transfer"]["result"].as_str().unwrap().contains("operators,i"), "{rec:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_caller_leg_a_blind_transfer_moves_the_peer_and_confirms_it() {
    let mut h = Harness::start("", Some(FakeAmiConfig::default())).await;
    let mut cfg = h.caller();
    let caller = cfg.channel_variables.remove(0).1;
    let call = AsteriskCall::connect(cfg).await.unwrap();
    h.ami.as_ref().unwrap().attach(&caller, Some(&call.cfg.channel), call.closer());
    wait_greeting(&call).await;
    call.dtmf('0').await;
    assert!(call.wait_closed(Duration::from_secs(20)).await);
    let rec = h.record(&call.cfg.channel_id, Duration::from_secs(10)).await;
    let blind =
        h.ami.as_ref().unwrap().wait_for("BlindTransfer", Duration::from_secs(1)).await.expect("a BlindTransfer");
    assert_eq!(blind.get("Channel"), Some(call.cfg.channel.as_str()));
    assert_eq!(rec["transfer"]["method"], "ami-blind-transfer", "{rec:#}");
    assert_eq!(rec["transfer"]["result"], "ok", "{rec:#}");
    assert_eq!(
        h.ami.as_ref().unwrap().fate(&caller),
        Some(Fate::Landed { context: "operators".into(), exten: "100".into() })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_transfer_is_apologised_for_and_the_call_goes_on() {
    let mut h = Harness::start(
        "",
        Some(FakeAmiConfig { transfer: Answer::Error("Channel not found".into()), ..Default::default() }),
    )
    .await;
    let call = h.call().await;
    wait_greeting(&call).await;
    call.dtmf('0').await;
    assert!(h.ami.as_ref().unwrap().wait_for("Redirect", Duration::from_secs(15)).await.is_some());
    // "Please hold" then the apology and the fallback menu: more prompts
    // play, and the call is not hung up.
    assert!(call.wait_marks(3, Duration::from_secs(30)).await, "{:?}", call.commands());
    assert!(!call.commands().iter().any(|(_, c)| c.contains("HANGUP")));
    call.hangup().await;
    let rec = h.record(&call.cfg.channel_id, Duration::from_secs(10)).await;
    assert!(rec["transfer"]["result"].as_str().unwrap().contains("Channel not found"), "{rec:#}");
    assert_eq!(events_of(&rec, "transfer_failed").len(), 1, "{rec:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ami_the_dialplan_fetches_the_target_after_hangup() {
    let mut h = Harness::start("[transfer]\nmethod = \"hangup\"\n", None).await;
    let mut cfg = h.caller();
    let token = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6";
    cfg.path = format!("/?caller_uid=1795449971.3&decision_token={token}");
    let call = AsteriskCall::connect(cfg).await.unwrap();
    wait_greeting(&call).await;
    call.dtmf('0').await;
    assert!(call.wait_command("HANGUP", Duration::from_secs(20)).await.is_some(), "{:?}", call.commands());
    // What the Asterisk dialplan's CURL() does after Dial returns.
    let body = http_get(h.addr(), &format!("/transfer?uid=1795449971.3&decision_token={token}")).await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.ends_with("\r\n\r\noperators,100"), "{body}");
    let again = http_get(h.addr(), &format!("/transfer?uid=1795449971.3&decision_token={token}")).await;
    assert!(again.ends_with("\r\n\r\n"), "a decision is handed out once: {again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaking_during_a_prompt_flushes_it_within_300_ms() {
    let mut h = Harness::start("", None).await;
    let call = h.call().await;
    // Wait until the greeting is really playing, then talk over it.
    call.wait_for(Duration::from_secs(20), |s| s.iter().any(|(_, x)| matches!(x, Seen::Audio(_)))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let samples = clip("speech_commands/one_2796ac50_nohash_0.wav", 16000);
    let onset = speech_onset_ms(&samples, 16000);
    let t_start = call.elapsed();
    call.say(&samples).await;
    let flushed = call.wait_command("FLUSH_MEDIA", Duration::from_secs(5)).await.expect("no FLUSH_MEDIA on barge-in");
    let onset_at = t_start + Duration::from_millis(onset);
    let delay = flushed.saturating_sub(onset_at);
    assert!(delay <= Duration::from_millis(300), "FLUSH_MEDIA {delay:?} after speech onset");
    // The greeting's mark was flushed with its audio: it never "finished".
    assert!(
        !call.seen().iter().any(|(_, s)| matches!(s, Seen::MarkPlayed(id) if id == "p1")),
        "the greeting played on after barge-in"
    );
    call.hangup().await;
    let rec = h.record(&call.cfg.channel_id, Duration::from_secs(10)).await;
    assert_eq!(events_of(&rec, "barge_in").len(), 1, "{rec:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_up_mid_prompt_still_writes_the_call_record() {
    let mut h = Harness::start("", None).await;
    let call = h.call().await;
    call.wait_for(Duration::from_secs(20), |s| s.iter().any(|(_, x)| matches!(x, Seen::Audio(_)))).await.unwrap();
    call.hangup().await;
    let rec = h.record(&call.cfg.channel_id, Duration::from_secs(10)).await;
    assert_eq!(events_of(&rec, "prompt")[0]["menu"], "main");
    assert_eq!(events_of(&rec, "hangup").len(), 1, "{rec:#}");
    assert!(rec["end_unix_ms"].as_u64().unwrap() >= rec["start_unix_ms"].as_u64().unwrap());
    let t0 = Instant::now();
    while h.server.as_ref().unwrap().active_calls() != 0 {
        assert!(t0.elapsed() < Duration::from_secs(5), "the call slot was not released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_edit_is_refused_and_calls_keep_their_version() {
    let mut h = Harness::start("", None).await;
    let registry = Arc::clone(h.server.as_ref().unwrap().registry());
    let v1 = registry.get("hotline").unwrap().version.clone();
    let early = h.call().await;
    wait_greeting(&early).await;

    let file = h.dir.path().join("dialplans/hotline.toml");
    std::fs::write(&file, DIALPLAN.replace("goto = \"billing\"", "goto = \"biling\"")).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(registry.get("hotline").unwrap().version, v1, "a broken edit went into service");
    let during = h.call().await;
    wait_greeting(&during).await;

    std::fs::write(&file, DIALPLAN.replace("Welcome.", "Hello and welcome.")).unwrap();
    let t0 = Instant::now();
    while registry.get("hotline").unwrap().version == v1 {
        assert!(t0.elapsed() < Duration::from_secs(5), "a good edit was not picked up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let v2 = registry.get("hotline").unwrap().version.clone();
    let late = h.call().await;
    wait_greeting(&late).await;
    for c in [&early, &during, &late] {
        c.hangup().await;
    }
    assert_eq!(h.record(&early.cfg.channel_id, Duration::from_secs(10)).await["dialplan_version"], v1.as_str());
    assert_eq!(h.record(&during.cfg.channel_id, Duration::from_secs(10)).await["dialplan_version"], v1.as_str());
    let rec = h.record(&late.cfg.channel_id, Duration::from_secs(10)).await;
    assert_eq!(rec["dialplan_version"], v2.as_str());
    assert!(events_of(&rec, "prompt")[0]["text"].as_str().unwrap().starts_with("Hello and welcome."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xoff_stops_prompt_audio_until_xon() {
    let mut h = Harness::start("", None).await;
    let call = h.call().await;
    call.wait_for(Duration::from_secs(20), |s| s.iter().any(|(_, x)| matches!(x, Seen::Audio(_)))).await.unwrap();
    call.send_text(&format!("{{\"event\":\"MEDIA_XOFF\",\"channel_id\":\"{}\"}}", call.cfg.channel_id)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let audio_count = |c: &AsteriskCall| c.seen().iter().filter(|(_, s)| matches!(s, Seen::Audio(_))).count();
    let before = audio_count(&call);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(audio_count(&call), before, "audio sent while Asterisk said XOFF");
    call.send_text(&format!("{{\"event\":\"MEDIA_XON\",\"channel_id\":\"{}\"}}", call.cfg.channel_id)).await;
    wait_greeting(&call).await;
    call.hangup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_ends_only_the_offending_call() {
    let mut h = Harness::start("", None).await;
    let good = h.call().await;

    enum Bad {
        Text(String),
        Binary(Vec<u8>),
    }
    let cases = [
        ("invalid JSON", Bad::Text("{\"event\":\"DTMF_END\",".into()), "invalid JSON"),
        ("oversized text", Bad::Text("A".repeat(20_000)), "exceeds"),
        ("70 kB binary", Bad::Binary(vec![0; 70_000]), "websocket error"),
        ("odd-sized frame", Bad::Binary(vec![0; 641]), "whole number"),
    ];
    for (name, act, cause) in cases {
        let call = h.call().await;
        call.wait_for(Duration::from_secs(10), |s| s.iter().any(|(_, x)| matches!(x, Seen::Command(_)))).await.unwrap();
        match act {
            Bad::Text(t) => call.send_text(&t).await,
            Bad::Binary(b) => call.send_binary(b).await,
        }
        assert!(call.wait_closed(Duration::from_secs(10)).await, "{name}: connection left open");
        let rec = h.record(&call.cfg.channel_id, Duration::from_secs(10)).await;
        assert!(rec["hangup_cause"].as_str().unwrap().contains(cause), "{name}: {}", rec["hangup_cause"]);
    }

    // Audio before MEDIA_START (a client that skips it): ended, recorded.
    raw_ws(h.addr(), &[tokio_tungstenite::tungstenite::Message::binary(vec![0u8; 640])]).await;
    let t0 = Instant::now();
    while !h.records().iter().any(|r| r["hangup_cause"].as_str().unwrap_or("").contains("before MEDIA_START")) {
        assert!(t0.elapsed() < Duration::from_secs(10), "no record of the early-audio connection: {:?}", h.records());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Abrupt TCP close mid-call.
    let mut abrupt = h.call().await;
    wait_greeting(&abrupt).await;
    let id = abrupt.cfg.channel_id.clone();
    abrupt.abort().await;
    let rec = h.record(&id, Duration::from_secs(10)).await;
    assert!(!rec["hangup_cause"].as_str().unwrap().is_empty());

    // An unknown event is logged and ignored; the good call never noticed
    // any of this and still works.
    good.send_text(&format!("{{\"event\":\"SOMETHING_NEW\",\"channel_id\":\"{}\"}}", good.cfg.channel_id)).await;
    wait_greeting(&good).await;
    good.dtmf('1').await;
    assert!(good.wait_marks(2, Duration::from_secs(20)).await, "the good call stalled: {:?}", good.commands());
    assert!(!good.is_closed());
    good.hangup().await;
    let rec = h.record(&good.cfg.channel_id, Duration::from_secs(10)).await;
    assert_eq!(events_of(&rec, "intent")[0]["intent"], "billing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_does_not_hold_up_other_calls() {
    let mut h = Harness::start("", None).await;
    let stuck = h.call().await;
    stuck.set_reading(false);
    let good = h.call().await;
    wait_greeting(&good).await;
    good.dtmf('2').await;
    assert!(good.wait_marks(2, Duration::from_secs(20)).await);
    good.hangup().await;
    h.record(&good.cfg.channel_id, Duration::from_secs(10)).await;
    stuck.set_reading(true);
    stuck.hangup().await;
    h.record(&stuck.cfg.channel_id, Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_auth_and_graceful_shutdown() {
    let mut h = Harness::start("max_calls = 2\n[auth]\nusername = \"asterisk\"\npassword = \"ws-pass\"\n", None).await;
    let mut cfg = h.caller();
    let refused = AsteriskCall::connect(cfg.clone()).await.err().expect("no credentials accepted");
    assert!(refused.0.contains("401"), "{refused:?}");
    cfg.auth = Some(("asterisk".into(), "wrong".into()));
    assert!(AsteriskCall::connect(cfg.clone()).await.err().expect("wrong password accepted").0.contains("401"));

    let with_auth = |mut c: AsteriskConfig| {
        c.auth = Some(("asterisk".into(), "ws-pass".into()));
        c
    };
    let a = AsteriskCall::connect(with_auth(h.caller())).await.unwrap();
    let b = AsteriskCall::connect(with_auth(h.caller())).await.unwrap();
    let third = AsteriskCall::connect(with_auth(h.caller())).await.err().expect("a third call over max_calls=2");
    assert!(third.0.contains("503"), "{third:?}");
    wait_greeting(&a).await;
    wait_greeting(&b).await;

    // SIGTERM path: no new calls; the calls in progress get the grace
    // period (1 s here), then HANGUP.
    let server = h.server.take().unwrap();
    let addr = server.local_addr();
    let t0 = Instant::now();
    let stop = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        AsteriskCall::connect(with_auth(AsteriskConfig::new(addr, 99))).await.is_err(),
        "accepted a call while stopping"
    );
    assert!(a.wait_command("HANGUP", Duration::from_secs(10)).await.is_some());
    assert!(b.wait_command("HANGUP", Duration::from_secs(10)).await.is_some());
    tokio::time::timeout(Duration::from_secs(15), stop).await.expect("shutdown hung").unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(900), "calls were not given the grace period");
    for c in [&a, &b] {
        let rec = h.record(&c.cfg.channel_id, Duration::from_secs(5)).await;
        assert_eq!(rec["hangup_cause"], "server shutting down");
    }
}

/// Where speech starts in a clip: the first 10 ms window above -35 dBFS.
fn speech_onset_ms(samples: &[i16], rate: u32) -> u64 {
    let win = rate as usize / 100;
    samples
        .chunks(win)
        .position(|w| hotline::audio::rms_dbfs(&hotline::audio::i16_to_f32(w)) > -35.0)
        .map_or(0, |i| (i * 10) as u64)
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out)).await.unwrap().unwrap();
    out
}

/// A plain websocket client that sends `msgs` right after the upgrade and
/// reads until the server closes; returns what it received.
async fn raw_ws(addr: std::net::SocketAddr, msgs: &[tokio_tungstenite::tungstenite::Message]) -> String {
    use futures_util::{SinkExt, StreamExt};
    let url = format!("ws://{addr}/");
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
    req.headers_mut().insert("Sec-WebSocket-Protocol", "media".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    for m in msgs {
        ws.send(m.clone()).await.unwrap();
    }
    let mut seen = String::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        seen.push_str(&format!("{m:?}\n"));
        if m.is_close() {
            break;
        }
    }
    seen
}

/// Log lines written while it is alive, on this thread (a current-thread
/// runtime runs every task of the server there).
struct LogCapture {
    lines: Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl LogCapture {
    fn start() -> LogCapture {
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let subscriber =
            tracing_subscriber::fmt().with_ansi(false).with_writer(move || LogWriter(Arc::clone(&sink))).finish();
        LogCapture { lines, _guard: tracing::subscriber::set_default(subscriber) }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.lines.lock().unwrap()).into_owned()
    }

    /// Waits until the log contains `needle`.
    async fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        let t0 = Instant::now();
        while !self.text().contains(needle) {
            if t0.elapsed() > timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

struct LogWriter(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn transfer_targets_asterisk_lacks_are_warned_of_at_start_and_after_a_reload() {
    let log = LogCapture::start();
    let dialplan =
        vec![("operators".to_string(), vec!["_X.".to_string()]), ("tech".to_string(), vec!["_X.".to_string()])];
    let mut h = Harness::start("", Some(FakeAmiConfig { dialplan, ..Default::default() })).await;
    let missing = "menus.billing.options.pay: transfer target payments,220 does not exist in Asterisk (Did not find context payments)";
    assert!(log.wait_for(missing, Duration::from_secs(10)).await, "{}", log.text());
    assert!(log.text().contains("dialplans/hotline.toml: menus.billing"), "names the file: {}", log.text());
    assert!(!log.text().contains("tech,310 does not"), "{}", log.text());

    // An edit that sends callers to a context Asterisk lacks is warned of
    // as soon as it is in service; calls are still served meanwhile.
    std::fs::write(
        h.dir.path().join("dialplans/hotline.toml"),
        DIALPLAN.replace("context = \"tech\"", "context = \"tech-support\""),
    )
    .unwrap();
    let edited = "menus.support.options.internet: transfer target tech-support,310 does not exist in Asterisk";
    assert!(log.wait_for(edited, Duration::from_secs(10)).await, "{}", log.text());
    let call = h.call().await;
    wait_greeting(&call).await;
    call.hangup().await;
}
