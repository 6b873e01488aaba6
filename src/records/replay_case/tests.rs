use super::*;
use crate::call::Source;
use crate::records::recorded::for_each_recorded_call;
use crate::records::{open_store, CallRecord};
use crate::replay::{check_expectations, Expectation, Step};

/// A call as the server records it: the greeting, "billing" said, the
/// billing menu, key 1 pressed 5.24 s into the call, a transfer.
fn billing_then_key_one(audio_file: Option<PathBuf>) -> CallRecord {
    let mut r = CallRecord {
        call_id: "chan/0001".into(),
        start_unix_ms: 1_796_428_800_000,
        dialplan: Some("hotline".into()),
        dialplan_version: Some("abc123".into()),
        outcome: Some("transferred".into()),
        hangup_cause: "transferred".into(),
        audio_file,
        ..CallRecord::default()
    };
    for e in [
        Event::Prompt { t_ms: 5, menu: "main".into(), text: "Welcome.".into() },
        Event::Utterance { t_ms: 2_300, start_ms: 1_520, end_ms: 2_100, text: " Billing.".into(), confidence: 0.93 },
        Event::Intent {
            t_ms: 2_310,
            menu: "main".into(),
            intent: "billing".into(),
            confidence: 0.93,
            source: Source::Speech,
        },
        Event::Prompt { t_ms: 2_310, menu: "billing".into(), text: "Billing.".into() },
        // A reprompt of the same menu is not a step of its own.
        Event::NoInput { t_ms: 4_000, menu: "billing".into() },
        Event::Prompt { t_ms: 4_000, menu: "billing".into(), text: "Billing.".into() },
        Event::Dtmf { t_ms: 5_240, digit: '1' },
        Event::Intent {
            t_ms: 5_240,
            menu: "billing".into(),
            intent: "pay".into(),
            confidence: 1.0,
            source: Source::Dtmf,
        },
        Event::Transfer { t_ms: 5_300, extension: "220".into(), context: Some("payments".into()) },
    ] {
        r.push_event(e);
    }
    r
}

/// The record as a store gives it back (the JSON line both stores hold).
fn recorded(record: &CallRecord) -> RecordedCall {
    serde_json::from_str(&serde_json::to_string(record).unwrap()).unwrap()
}

#[test]
fn a_recorded_call_becomes_an_expectation_with_its_keys_and_path() {
    let call = recorded(&billing_then_key_one(None));
    let text = expectation_text(&call);
    let expectation = Expectation::parse(&text, false).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(expectation.dtmf, [('1', 5_240)], "the key, at its time into the call's audio:\n{text}");
    let steps: Vec<&str> = expectation.steps.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        steps,
        ["prompt:main", "intent:main/billing", "prompt:billing", "intent:billing/pay", "transfer:220"],
        "{text}"
    );
    assert_eq!(expectation.steps[1].1, Step::Intent { menu: Some("main".into()), intent: "billing".into() });
    // The path it wrote is the path the call took.
    assert_eq!(check_expectations(&call.events, &expectation), Ok(()));
    assert!(text.contains("# 1.5 s: the caller said \" Billing.\" (0.93)"), "{text}");
    assert!(text.contains("dialplan hotline (version abc123)"), "{text}");
}

#[test]
fn only_a_call_the_bot_ended_expects_a_hangup() {
    let mut record = billing_then_key_one(None);
    record.events.truncate(3);
    record.outcome = Some("caller_hung_up".into());
    assert_eq!(path_steps(&recorded(&record)), ["prompt:main", "intent:main/billing"]);
    record.outcome = Some("completed".into());
    assert_eq!(path_steps(&recorded(&record)), ["prompt:main", "intent:main/billing", "hangup"]);
}

#[test]
fn recorded_text_cannot_break_the_expectation_file() {
    let mut record = billing_then_key_one(None);
    record.call_id = "x\ny = 1".into();
    record.events.push(Event::Utterance {
        t_ms: 9_000,
        start_ms: 8_000,
        end_ms: 8_500,
        text: "say \"hi\"\nexpect = []".into(),
        confidence: 0.5,
    });
    let text = expectation_text(&recorded(&record));
    let expectation = Expectation::parse(&text, false).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(expectation.steps.len(), 5, "{text}");
}

#[test]
fn a_call_without_kept_audio_is_no_case() {
    let dir = tempfile::tempdir().unwrap();
    let call = recorded(&billing_then_key_one(None));
    assert_eq!(ReplayCase::of_call(&call, dir.path()), Err(NotACase::NoAudio));
    let gone = dir.path().join("gone.wav");
    let call = recorded(&billing_then_key_one(Some(gone.clone())));
    let err = ReplayCase::of_call(&call, dir.path()).unwrap_err();
    assert_eq!(err, NotACase::AudioGone(gone.clone()));
    assert!(err.to_string().contains(&gone.display().to_string()), "{err}");
}

#[test]
fn a_case_is_written_once_and_replaced_only_when_forced() {
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("audio/chan_0001.wav");
    std::fs::create_dir(dir.path().join("audio")).unwrap();
    crate::audio::write_wav(&kept, 8_000, &[0; 800]).unwrap();
    // A relative audio path is found next to the records.
    let call = recorded(&billing_then_key_one(Some("audio/chan_0001.wav".into())));
    let case = ReplayCase::of_call(&call, dir.path()).unwrap();
    assert_eq!(case.name, "chan_0001");
    let out = dir.path().join("cases");
    let written = case.write(&out, false).unwrap();
    assert_eq!(written.wav, out.join("chan_0001.wav"));
    assert_eq!(std::fs::read(&written.wav).unwrap(), std::fs::read(&kept).unwrap());
    assert!(Expectation::load(&written.expectation).is_ok());

    // The admin edits the expectation; a rerun keeps the edit.
    std::fs::write(&written.expectation, "expect = [\"transfer:999\"]\n").unwrap();
    let err = case.write(&out, false).unwrap_err();
    assert!(matches!(&err, WriteCaseError::Exists(p) if *p == written.wav), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&written.expectation).unwrap(), "expect = [\"transfer:999\"]\n");
    case.write(&out, true).unwrap();
    assert_eq!(std::fs::read_to_string(&written.expectation).unwrap(), case.expectation);
}

#[test]
fn both_stores_give_back_the_call_a_case_is_made_of() {
    for file in ["calls.db", "calls.jsonl"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file);
        let mut store = open_store(&path).unwrap();
        let mut early = billing_then_key_one(None);
        early.call_id = "early".into();
        early.start_unix_ms -= 86_400_000;
        store.write(&early).unwrap();
        store.write(&billing_then_key_one(Some("a.wav".into()))).unwrap();
        drop(store);
        let mut calls = Vec::new();
        let n = for_each_recorded_call(&path, 1_796_428_800_000, |c| calls.push(c)).unwrap();
        assert_eq!((n, calls.len()), (1, 1), "{file}: only the call since the date");
        let want = recorded(&billing_then_key_one(Some("a.wav".into())));
        assert_eq!(calls[0].call_id, want.call_id, "{file}");
        assert_eq!(calls[0].events, want.events, "{file}");
        assert_eq!(calls[0].audio_file, want.audio_file, "{file}");
        assert_eq!(expectation_text(&calls[0]), expectation_text(&want), "{file}");
    }
}
