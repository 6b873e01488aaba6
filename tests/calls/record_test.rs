//! Real calls become replay cases: calls with recorded speech and keys go
//! through the real server (Asterisk emulator, fake AMI for transfers,
//! SQLite records, kept audio), `hotline record-test` makes cases of the
//! records, and `hotline replay` over the folder takes each call's path
//! again, or names the case whose edited expectation no longer holds.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::ami::{FakeAmi, FakeAmiConfig};
use crate::support::asterisk::{AsteriskCall, AsteriskConfig};
use crate::support::server::{clip, deps, DIALPLAN};
use hotline::config::ServerConfig;
use hotline::records::recorded::{for_each_recorded_call, RecordedCall};
use hotline::server;

const AMI_SECRET: &str = "s3cret-ami";

fn hotline(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotline")).args(args).current_dir(dir).output().expect("run hotline")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The stored call `call_id`, once the server has written it.
async fn wait_stored(db: &Path, call_id: &str) -> RecordedCall {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let mut found = None;
        if db.exists() {
            let _ = for_each_recorded_call(db, 0, |c| {
                if c.call_id == call_id {
                    found = Some(c);
                }
            });
        }
        if let Some(call) = found {
            return call;
        }
        assert!(Instant::now() < until, "no record of {call_id} in {}", db.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where the caller's speech starts in a kept WAV, in ms: the first 20 ms
/// window well above silence.
fn speech_onset_ms(wav: &Path) -> u64 {
    let audio = hotline::audio::read_wav(wav).unwrap_or_else(|e| panic!("{}: {e}", wav.display()));
    let samples = audio.to_f32_at(16_000).unwrap();
    let window = samples.chunks(320).position(|w| w.iter().map(|s| s * s).sum::<f32>() / w.len() as f32 > 1e-4);
    window.expect("speech in the kept audio") as u64 * 20
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_calls_become_cases_that_replay_their_path_and_name_a_changed_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("dialplans")).unwrap();
    std::fs::write(d.join("dialplans/hotline.toml"), DIALPLAN).unwrap();
    let ami = FakeAmi::start(FakeAmiConfig::default()).await;
    // Records in the default store (SQLite), caller audio kept.
    let toml = format!(
        "listen = \"127.0.0.1:0\"\ndialplan_dir = \"dialplans\"\nkeep_audio_dir = \"audio\"\nshutdown_grace_secs = 1\n\
         [transfer]\nmethod = \"ami\"\n[ami]\nport = {}\nusername = \"hotline\"\ntimeout_ms = 1000\n",
        ami.addr.port()
    );
    let config = d.join("hotline.toml");
    std::fs::write(&config, &toml).unwrap();
    let cfg = ServerConfig::from_toml_str(&toml, Some(&config), &|k| {
        (k == "HOTLINE_AMI_SECRET").then(|| AMI_SECRET.to_string())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let server = server::start(cfg, deps()).await.unwrap_or_else(|e| panic!("{e}"));
    let connect = |n: u32| {
        let ami = &ami;
        let addr = server.local_addr();
        async move {
            let call = AsteriskCall::connect(AsteriskConfig::new(addr, n)).await.unwrap_or_else(|e| panic!("{e:?}"));
            // The caller leg the fake AMI moves, as `__CALLER_CHANNEL` names it.
            let caller = call.cfg.channel_variables.iter().find(|(k, _)| k == "__CALLER_CHANNEL").unwrap().1.clone();
            ami.attach(&caller, Some(&call.cfg.channel), call.closer());
            call
        }
    };

    // 1: says "one" after the greeting (billing), then presses 1 (pay: a
    // transfer to payments,220).
    let paying = connect(1).await;
    assert!(paying.wait_marks(1, Duration::from_secs(30)).await, "greeting: {:?}", paying.commands());
    paying.say(&clip("speech_commands/one_2796ac50_nohash_0.wav", 16000)).await;
    assert!(paying.wait_marks(2, Duration::from_secs(30)).await, "billing prompt: {:?}", paying.commands());
    paying.dtmf('1').await;
    assert!(paying.wait_closed(Duration::from_secs(20)).await, "transferred: {:?}", paying.commands());
    // 2: says "zero" (the agent): a transfer to operators,100.
    let asking = connect(2).await;
    assert!(asking.wait_marks(1, Duration::from_secs(30)).await, "greeting: {:?}", asking.commands());
    asking.say(&clip("speech_commands/zero_837a0f64_nohash_3.wav", 16000)).await;
    assert!(asking.wait_closed(Duration::from_secs(20)).await, "transferred: {:?}", asking.commands());

    let db = d.join("calls.db");
    let paid = wait_stored(&db, &paying.cfg.channel_id).await;
    let asked = wait_stored(&db, &asking.cfg.channel_id).await;
    server.shutdown().await;

    // The kept audio runs on the call's clock: the caller's word is where
    // the record says it was heard, after the greeting's silence.
    let heard_ms = paid
        .events
        .iter()
        .find_map(|e| match e {
            hotline::call::Event::Utterance { start_ms, .. } => Some(*start_ms),
            _ => None,
        })
        .expect("an utterance in the record");
    let onset = speech_onset_ms(paid.audio_file.as_deref().expect("kept audio"));
    assert!(heard_ms > 1_000, "the word came after the greeting: {heard_ms} ms");
    assert!(onset.abs_diff(heard_ms) <= 400, "speech {onset} ms into the WAV, heard at {heard_ms} ms of the call");

    let made = hotline(d, &["record-test", "--db", "calls.db", "--all", "--out", "cases"]);
    assert_eq!(made.status.code(), Some(0), "{}{}", text(&made.stdout), text(&made.stderr));
    assert_eq!(text(&made.stdout).lines().filter(|l| l.starts_with("made ")).count(), 2, "{}", text(&made.stdout));
    let expect_file = |id: &str| d.join("cases").join(format!("{}.expect.toml", id.replace('/', "_")));
    let paid_case = std::fs::read_to_string(expect_file(&paid.call_id)).unwrap();
    let dtmf_at = paid
        .events
        .iter()
        .find_map(|e| match e {
            hotline::call::Event::Dtmf { t_ms, .. } => Some(*t_ms),
            _ => None,
        })
        .expect("the key in the record");
    assert!(
        paid_case.contains(&format!("dtmf = [\"1@{}.{:03}\"]", dtmf_at / 1000, dtmf_at % 1000)),
        "the key with its time: {paid_case}"
    );
    assert!(
        paid_case.contains(
            "expect = [\"prompt:main\", \"intent:main/billing\", \"prompt:billing\", \"intent:billing/pay\", \"transfer:220\"]"
        ),
        "{paid_case}"
    );
    let asked_path = expect_file(&asked.call_id);
    let asked_case = std::fs::read_to_string(&asked_path).unwrap();
    assert!(asked_case.contains("\"intent:main/agent\", \"transfer:100\"]"), "{asked_case}");

    // Replayed against the dialplan, every case takes its recorded path.
    let replay = || hotline(d, &["replay", "--dialplan", "dialplans/hotline.toml", "cases"]);
    let out = replay();
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("2 passed, 0 failed"), "{}", text(&out.stdout));

    // Making the cases again keeps them (and says so); nothing new is made.
    let again = hotline(d, &["record-test", "--db", "calls.db", "--call", &asked.call_id, "--out", "cases"]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again.stderr));
    assert!(text(&again.stderr).contains(&format!("call {}: skipped:", asked.call_id)), "{}", text(&again.stderr));
    assert!(text(&again.stderr).contains("--force"), "{}", text(&again.stderr));

    // The admin says the agent should be at 101: that case now fails, by name.
    std::fs::write(&asked_path, asked_case.replace("\"transfer:100\"", "\"transfer:101\"")).unwrap();
    let out = replay();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let wav_name = format!("{}.wav", asked.call_id.replace('/', "_"));
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("FAIL {wav_name}: ")) && l.contains("\"transfer:101\" not found")),
        "{stdout}"
    );
    assert!(stdout.contains("1 passed, 1 failed"), "{stdout}");
}
