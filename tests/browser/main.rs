//! The dashboard in a real browser: headless Chromium (Debian's
//! `chromium`), driven over the DevTools protocol ([`cdp`]), against a
//! server on loopback with emulated Asterisk calls and a real SQLite
//! record file. Run alone with `cargo test -p hotline --test browser`.
//! Without Chromium the test fails with a message saying so.
//!
//! Whisper will not transcribe anyone saying `<script>alert(1)</script>`,
//! so that text gets into the records the way a transcript would: before
//! the server starts, the test writes one call record, whose utterance and
//! no-match carry it as the caller's words, through the record store's
//! own write API (`SqlStore::write`) into the database the server then
//! serves. Everything else on the page comes from the calls the test makes.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use hotline::call::Event;
use hotline::config::ServerConfig;
use hotline::records::sql::SqlStore;
use hotline::records::{CallRecord, RecordStore};
use testkit::asterisk::{AsteriskCall, AsteriskConfig};
use testkit::server::{clip, deps, DIALPLAN};

mod cdp;

/// What a caller "said" in the seeded record.
const SCRIPT: &str = "<script>alert(1)</script>";
const SEEDED_CALL: &str = "seeded-words-0001";

/// A finished call whose caller's words are a script tag: heard as an
/// utterance that matched nothing in the main menu.
fn seeded_record() -> CallRecord {
    let start = hotline::records::unix_ms(SystemTime::now()) - 60_000;
    let mut record = CallRecord {
        call_id: SEEDED_CALL.into(),
        transport: Some("asterisk_ws".into()),
        dialplan: Some("hotline".into()),
        start_unix_ms: start,
        end_unix_ms: start + 9_000,
        duration_ms: 9_000,
        outcome: Some("caller_hung_up".into()),
        hangup_cause: "caller hung up".into(),
        ..CallRecord::default()
    };
    for e in [
        Event::Prompt { t_ms: 0, menu: "main".into(), text: "Welcome. For billing say one.".into() },
        Event::Utterance { t_ms: 4_000, start_ms: 3_000, end_ms: 3_800, text: SCRIPT.into(), confidence: 0.2 },
        Event::NoMatch { t_ms: 4_000, menu: "main".into(), text: SCRIPT.into() },
        Event::Hangup { t_ms: 9_000, reason: "caller hung up".into() },
    ] {
        record.push_event(e);
    }
    record
}

fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("test-artifacts")
}

async fn wait_marks(call: &AsteriskCall, n: usize, what: &str) {
    assert!(call.wait_marks(n, Duration::from_secs(30)).await, "{what} never played: {:?}", call.commands());
}

async fn wait_hangup(call: &AsteriskCall) {
    assert!(call.wait_command("HANGUP", Duration::from_secs(20)).await.is_some(), "no HANGUP: {:?}", call.commands());
    call.hangup().await;
}

/// `document.querySelector(css).textContent === text`, as JavaScript.
fn shows(css: &str, text: &str) -> String {
    format!("document.querySelector({css:?})?.textContent === {text:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_live_calls_the_funnel_and_caller_words_only_as_text() {
    let chromium = cdp::find_chromium();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("dialplans")).unwrap();
    std::fs::write(dir.path().join("dialplans/hotline.toml"), DIALPLAN).unwrap();
    let mut store = SqlStore::open(&dir.path().join("calls.db")).unwrap();
    store.write(&seeded_record()).unwrap();
    drop(store);
    let toml = "listen = \"127.0.0.1:0\"\ndialplan_dir = \"dialplans\"\ncall_records = \"calls.db\"\n\
                keep_audio_dir = \"audio\"\nshutdown_grace_secs = 1\n";
    let config = dir.path().join("hotline.toml");
    std::fs::write(&config, toml).unwrap();
    let cfg = ServerConfig::from_toml_str(toml, Some(&config), &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let server = hotline::server::start(cfg, deps()).await.unwrap_or_else(|e| panic!("{e}"));
    let t0 = Instant::now();
    while let Some(waiting) = server.readiness().blocker() {
        assert!(t0.elapsed() < Duration::from_secs(120), "not ready: {waiting}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let addr = server.local_addr();

    let browser = cdp::Browser::launch(&chromium).await;
    let page = browser.page(1280, 1500).await;
    page.navigate(&format!("http://{addr}/")).await;
    let body = "document.body.innerText";
    page.wait_until("the event stream", &shows("#stream-state", "live"), body, Duration::from_secs(20)).await;

    // A call in progress is counted and shown in its menu.
    let mut n = 0;
    let mut caller = || {
        n += 1;
        let mut cfg = AsteriskConfig::new(addr, n);
        // The no-AMI transfer method hands the target to the call's own token.
        cfg.path = format!("/?caller_uid={}&decision_token=f81d4fae-7dec-11d0-a765-00a0c91e6b{n:02}", cfg.channel_id);
        cfg
    };
    let by_keys = AsteriskCall::connect(caller()).await.unwrap();
    wait_marks(&by_keys, 1, "greeting").await;
    let one_in_main = format!(
        "{} && {}",
        shows("#active-count", "1"),
        shows(&format!("#active-calls tr[data-call='{}'] .call-menu", by_keys.cfg.channel_id), "main")
    );
    page.wait_until("one call in progress, in main", &one_in_main, body, Duration::from_secs(10)).await;
    by_keys.dtmf('1').await;
    wait_marks(&by_keys, 2, "billing prompt").await;
    by_keys.dtmf('1').await;
    wait_hangup(&by_keys).await;
    let by_voice = AsteriskCall::connect(caller()).await.unwrap();
    wait_marks(&by_voice, 1, "greeting").await;
    by_voice.say(&clip("speech_commands/one_2796ac50_nohash_0.wav", 16000)).await;
    wait_marks(&by_voice, 2, "billing prompt after speech").await;
    by_voice.dtmf('0').await;
    wait_hangup(&by_voice).await;

    // The funnel: the seeded call and the two made here, as they went.
    let funnel = [
        shows("#active-count", "0"),
        shows("#funnel-calls", "3"),
        shows("[data-menu='main'] .callers", "3"),
        shows("[data-menu='main'] [data-intent='billing'] .speech", "1"),
        shows("[data-menu='main'] [data-intent='billing'] .dtmf", "1"),
        shows("[data-menu='main'] .no-match", "1"),
        shows("[data-menu='billing'] .callers", "2"),
        shows("[data-menu='billing'] [data-intent='pay'] .dtmf", "1"),
        shows("[data-menu='billing'] [data-intent='agent'] .dtmf", "1"),
        shows("#transfers [data-reason='asked'] .n", "1"),
        shows("#transfers [data-reason='dialplan'] .n", "1"),
        shows(&format!("#recent-calls tr[data-call='{}'] .outcome", by_voice.cfg.channel_id), "transferred"),
    ]
    .join(" && ");
    page.wait_until(
        "the funnel of the calls",
        &funnel,
        "document.getElementById('funnel').innerText",
        Duration::from_secs(20),
    )
    .await;

    // The caller's words are text on the page, never markup.
    let as_text = format!(
        "Array.from(document.querySelectorAll('#funnel .unmatched-text')).some(e => e.textContent === {SCRIPT:?})"
    );
    assert_eq!(page.eval(&as_text).await, true, "the words are shown as they were said");
    assert_eq!(page.eval("document.scripts.length").await, 1, "no script element but the dashboard's own");
    // Their call's timeline, opened from the funnel, shows them as text too.
    let open = format!(
        "Array.from(document.querySelectorAll('#funnel button')).find(b => b.textContent === {SEEDED_CALL:?}).click()"
    );
    page.eval(&open).await;
    let words = format!(
        "Array.from(document.querySelectorAll('#timeline-events tr[data-type=utterance] td')).some(td => td.textContent.includes({SCRIPT:?}))"
    );
    page.wait_until(
        "the seeded call's timeline",
        &words,
        "document.getElementById('timeline').innerText",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(page.eval("document.scripts.length").await, 1, "no script element after the timeline");

    // The voice call's timeline plays the caller's kept audio.
    page.eval(&format!(
        "document.querySelector(\"#recent-calls tr[data-call='{}'] button\").click()",
        by_voice.cfg.channel_id
    ))
    .await;
    let audio = "document.querySelector('#timeline-audio audio') !== null && \
                 document.querySelectorAll('#timeline-events tr[data-type=intent]').length === 2";
    page.wait_until(
        "the voice call's timeline",
        audio,
        "document.getElementById('timeline').innerText",
        Duration::from_secs(10),
    )
    .await;
    let fetched = page
        .eval("fetch(document.querySelector('#timeline-audio audio').src).then(r => `${r.status} ${r.headers.get('content-type')}`)")
        .await;
    assert_eq!(fetched, "200 audio/wav");
    // The player seeks by asking for part of the file.
    let part = page
        .eval(
            "fetch(document.querySelector('#timeline-audio audio').src, {headers: {Range: 'bytes=44-99'}}) \
             .then(async r => `${r.status} ${r.headers.get('content-range')} ${(await r.arrayBuffer()).byteLength}`)",
        )
        .await;
    let part = part.as_str().unwrap_or_default();
    assert!(part.starts_with("206 bytes 44-99/") && part.ends_with(" 56"), "a part of the audio: {part}");

    // A call in progress for the picture; then the screenshot.
    let live = AsteriskCall::connect(caller()).await.unwrap();
    wait_marks(&live, 1, "greeting").await;
    page.wait_until("the third call", &shows("#active-count", "1"), body, Duration::from_secs(10)).await;
    let shot = artifacts().join("dashboard.png");
    page.screenshot(&shot).await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a real screenshot at {}", shot.display());
    live.hangup().await;

    assert!(
        browser.events("Page.javascriptDialogOpening").is_empty(),
        "a dialog opened: the caller's words ran as script"
    );
    let thrown = browser.events("Runtime.exceptionThrown");
    assert!(thrown.is_empty(), "the dashboard's script failed: {thrown:?}");
    server.shutdown().await;
}
