use rusqlite::Connection;

use super::*;
use crate::records::export::export_jsonl;

fn record(call_id: &str, start_unix_ms: u64) -> CallRecord {
    let mut r = CallRecord {
        call_id: call_id.into(),
        transport: Some("asterisk_ws".into()),
        channel: Some("WebSocket/hotline-0001".into()),
        caller_id: Some("5551234".into()),
        start_unix_ms,
        end_unix_ms: start_unix_ms + 9_000,
        duration_ms: 9_000,
        dialplan: Some("hotline".into()),
        dialplan_version: Some("abc123".into()),
        audio_format: Some("Slin(16000)".into()),
        outcome: Some("transferred".into()),
        transfer_reason: Some("dialplan".into()),
        transfer: Some(TransferRecord {
            extension: "2000".into(),
            context: "hotline-operators".into(),
            method: "ami-redirect".into(),
            result: "ok".into(),
        }),
        hangup_cause: "transferred".into(),
        ..CallRecord::default()
    };
    for e in [
        Event::Prompt { t_ms: 0, menu: "main".into(), text: "Welcome. Say billing.".into() },
        Event::Utterance { t_ms: 2_300, start_ms: 1_500, end_ms: 2_100, text: " Billing.".into(), confidence: 0.93 },
        Event::Intent {
            t_ms: 2_310,
            menu: "main".into(),
            intent: "billing".into(),
            confidence: 0.93,
            source: Source::Speech,
        },
        Event::Dtmf { t_ms: 4_000, digit: '1' },
        Event::Intent {
            t_ms: 4_000,
            menu: "billing".into(),
            intent: "refunds".into(),
            confidence: 1.0,
            source: Source::Dtmf,
        },
        Event::Transfer { t_ms: 6_000, extension: "2000".into(), context: None },
    ] {
        r.push_event(e);
    }
    r
}

fn exported(path: &Path, since: u64) -> String {
    let mut out = Vec::new();
    export_jsonl(path, since, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn export_gives_back_the_exact_jsonl_line_of_each_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.db");
    let mut store = SqlStore::open(&path).unwrap();
    let (a, b) = (record("call-a", 1_000_000), record("call-b", 2_000_000));
    store.write(&b).unwrap();
    store.write(&a).unwrap();
    let lines = exported(&path, 0);
    let expected = format!("{}\n{}\n", serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
    assert_eq!(lines, expected, "oldest first, each line as a .jsonl store writes it");
    assert_eq!(exported(&path, 1_500_000), format!("{}\n", serde_json::to_string(&b).unwrap()), "--since");
}

#[test]
fn each_call_is_one_row_and_its_events_rows_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.db");
    SqlStore::open(&path).unwrap().write(&record("call-a", 1_000)).unwrap();
    let conn = Connection::open(&path).unwrap();
    let call: (String, String, String, String, String) = conn
        .query_row(
            "SELECT call_id, outcome, transfer_reason, transfer_extension, transfer_result FROM calls",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(call, ("call-a".into(), "transferred".into(), "dialplan".into(), "2000".into(), "ok".into()));
    let mut q = conn
        .prepare("SELECT seq, type, menu, text, intent, source, latency_ms, target FROM events ORDER BY seq")
        .unwrap();
    type Row =
        (i64, String, Option<String>, Option<String>, Option<String>, Option<String>, Option<i64>, Option<String>);
    let rows: Vec<Row> = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let kinds: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(kinds, ["prompt", "utterance", "intent", "dtmf", "intent", "transfer"]);
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5]);
    // The utterance carries the intent it chose and the end of speech -> action time.
    let utterance = &rows[1];
    assert_eq!(
        (utterance.3.as_deref(), utterance.4.as_deref(), utterance.5.as_deref(), utterance.6),
        (Some(" Billing."), Some("billing"), Some("speech"), Some(210))
    );
    assert_eq!((rows[4].4.as_deref(), rows[4].5.as_deref(), rows[4].6), (Some("refunds"), Some("dtmf"), None));
    assert_eq!(rows[5].7.as_deref(), Some("2000"));
}

#[test]
fn the_schema_is_migrated_once_in_wal_mode_and_a_newer_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.db");
    SqlStore::open(&path).unwrap().write(&record("call-a", 1_000)).unwrap();
    // Opening again runs no step twice and keeps what is there.
    let mut again = SqlStore::open(&path).unwrap();
    again.write(&record("call-b", 2_000)).unwrap();
    let conn = Connection::open(&path).unwrap();
    let mut db = crate::records::sqlite::open_read_only(&path).unwrap();
    assert_eq!(schema::schema_version(&mut db).unwrap(), schema::SCHEMA_VERSION);
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let calls: i64 = conn.query_row("SELECT count(*) FROM calls", [], |r| r.get(0)).unwrap();
    assert_eq!(calls, 2);
    conn.pragma_update(None, "user_version", schema::SCHEMA_VERSION + 1).unwrap();
    drop(conn);
    let err = SqlStore::open(&path).err().expect("a newer schema is refused").to_string();
    assert!(err.contains("newer") && err.contains("calls.db"), "{err}");
}

#[test]
fn pruning_deletes_old_calls_with_their_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.db");
    let mut store = SqlStore::open(&path).unwrap();
    store.write(&record("old", 1_000)).unwrap();
    store.write(&record("new", 5_000)).unwrap();
    assert_eq!(store.prune(2_000).unwrap(), 1);
    let conn = Connection::open(&path).unwrap();
    let ids: Vec<String> = conn
        .prepare("SELECT call_id FROM calls")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids, ["new"]);
    let events: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
    assert_eq!(events, 6, "the old call's events went with it");
}

#[test]
fn a_call_has_its_row_from_its_start_and_one_cut_short_is_marked_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.db");
    let mut store = SqlStore::open(&path).unwrap();
    let on = |id: &str, instance: &str| CallRecord { instance: Some(instance.into()), ..record(id, 5_000) };
    store.begin(&on("done", "a")).unwrap();
    store.begin(&on("cut", "a")).unwrap();
    store.begin(&on("elsewhere", "b")).unwrap();
    store.write(&on("done", "a")).unwrap();
    assert_eq!(exported(&path, 0).lines().count(), 1, "calls in progress are not exported as finished");
    assert_eq!(store.reconcile("a", 0).unwrap(), 1, "instance a restarts: its open call was cut");
    let conn = Connection::open(&path).unwrap();
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT call_id, outcome FROM calls ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected = [("done", "transferred"), ("cut", INTERRUPTED), ("elsewhere", IN_PROGRESS)];
    assert_eq!(rows, expected.map(|(a, b)| (a.to_string(), b.to_string())), "one row per call, completed in place");
    assert_eq!(store.reconcile("a", 6_000).unwrap(), 1, "older than any call may last: closed by anyone");
}
