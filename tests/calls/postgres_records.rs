//! Call records in a real PostgreSQL server (`call_records =
//! "postgres://…"`): the same calls, exports and dashboard answers as the
//! embedded SQLite store; a call cut by a dying instance stays on record
//! once, marked interrupted; instances starting together against a new
//! database set its schema up once.
use std::path::Path;

use hotline::call::{Event, Source};
use hotline::records::export::export_jsonl;
use hotline::records::sql::{SqlStore, INTERRUPTED};
use hotline::records::{open_reader, queries, CallRecord, RecordStore, RecordWriter, TransferRecord, WriterOptions};

use crate::postgres_server::PgServer;

fn record(call_id: &str, start_unix_ms: u64, instance: &str) -> CallRecord {
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
        instance: Some(instance.into()),
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
        Event::NoMatch { t_ms: 3_000, menu: "billing".into(), text: "uh what".into() },
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

fn exported(location: &Path) -> String {
    let mut out = Vec::new();
    export_jsonl(location, 0, &mut out).expect("export");
    String::from_utf8(out).unwrap()
}

#[test]
fn postgresql_keeps_the_same_calls_and_answers_the_dashboard_as_sqlite_does() {
    let pg = PgServer::start();
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("calls.db");
    let calls = [record("call-b", 2_000_000, "a"), record("call-a", 1_000_000, "b"), record("call-c", 3_000_000, "a")];
    for location in [Path::new(&url), sqlite.as_path()] {
        let mut store = SqlStore::open(location).unwrap();
        for c in &calls {
            store.write(c).unwrap();
        }
    }
    let from_pg = exported(Path::new(&url));
    assert_eq!(from_pg.lines().count(), 3, "{from_pg}");
    assert_eq!(from_pg, exported(&sqlite), "the same JSON lines, oldest first, from either store");
    assert_eq!(from_pg.lines().next().unwrap(), serde_json::to_string(&calls[1]).unwrap());

    let answers = |location: &Path| {
        let mut db = open_reader(location).unwrap().expect("a SQL store");
        let funnel = queries::funnel(&mut db, "hotline", 0).unwrap();
        let recent = queries::recent_calls(&mut db, 2).unwrap();
        let timeline = queries::call_timeline(&mut db, "call-a").unwrap().expect("call-a is stored");
        serde_json::to_string(&(funnel, recent, timeline)).unwrap()
    };
    let pg_answers = answers(Path::new(&url));
    assert!(pg_answers.contains("uh what") && pg_answers.contains("call-c"), "{pg_answers}");
    assert_eq!(pg_answers, answers(&sqlite), "the dashboard's funnel, recent calls and timeline agree");

    // `hotline records export` is given the URL like a file...
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["records", "export", "--format", "jsonl", "--db", &url])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    assert_eq!(String::from_utf8_lossy(&cli.stdout), from_pg);

    // ...and `hotline suggest` reads the calls the same way.
    let mut seen = Vec::new();
    hotline::learn::records::for_each_call(Path::new(&url), 0, |c| {
        seen.push((c.call_id, c.events.len()));
        true
    })
    .unwrap();
    assert_eq!(seen, [("call-a".into(), 7), ("call-b".into(), 7), ("call-c".into(), 7)]);
}

#[test]
fn a_call_cut_by_a_dead_instance_stays_on_record_once_marked_interrupted() {
    let pg = PgServer::start();
    let url = pg.url();
    let location = Path::new(&url);
    let now = 1_800_000_000_000;
    {
        let mut a = SqlStore::open(location).unwrap();
        let (cut, finished) = (record("cut", now, "a"), record("finished", now + 1, "a"));
        a.begin(&cut).unwrap();
        a.begin(&finished).unwrap();
        a.write(&finished).unwrap();
        // Instance `a` dies here: `cut` never gets its finished record.
    }
    let mut b = SqlStore::open(location).unwrap();
    b.begin(&record("long-ago", 1_000, "gone")).unwrap();
    b.begin(&record("running", now + 2, "b")).unwrap();
    let mut client = pg.client("hotline");
    let rows = |client: &mut postgres::Client| -> Vec<(String, String)> {
        client
            .query("SELECT call_id, outcome FROM calls ORDER BY call_id", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    };
    assert_eq!(
        rows(&mut client),
        [
            ("cut".into(), "in_progress".into()),
            ("finished".into(), "transferred".into()),
            ("long-ago".into(), "in_progress".into()),
            ("running".into(), "in_progress".into())
        ],
        "one row per call: written at the start, completed in place at the end"
    );
    assert!(!exported(location).contains("\"in_progress\""), "calls in progress are not exported as finished");

    // `a` starts again: its own open call was cut; a call older than any
    // call may last is closed too; `b`'s running call is left alone.
    let mut a = SqlStore::open(location).unwrap();
    assert_eq!(a.reconcile("a", now - 3_600_000).unwrap(), 2);
    assert_eq!(
        rows(&mut client),
        [
            ("cut".into(), INTERRUPTED.into()),
            ("finished".into(), "transferred".into()),
            ("long-ago".into(), INTERRUPTED.into()),
            ("running".into(), "in_progress".into())
        ]
    );
    b.write(&record("running", now + 2, "b")).unwrap();
    let calls: i64 = client.query_one("SELECT COUNT(*) FROM calls", &[]).unwrap().get(0);
    assert_eq!(calls, 4, "the finished call completed its own row");
    let events: i64 = client
        .query_one("SELECT COUNT(*) FROM events e JOIN calls c ON c.id = e.call WHERE c.call_id = 'running'", &[])
        .unwrap()
        .get(0);
    assert_eq!(events, 7);
}

#[test]
fn instances_starting_together_against_a_new_database_set_its_schema_up_once() {
    let pg = PgServer::start();
    let url = pg.url();
    let opened: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..4).map(|_| s.spawn(|| SqlStore::open(Path::new(&url)).map(drop).map_err(|e| e.to_string()))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(opened.iter().all(Result::is_ok), "{opened:?}");
    let mut client = pg.client("hotline");
    let versions: i64 = client.query_one("SELECT COUNT(*) FROM hotline_schema", &[]).unwrap().get(0);
    assert_eq!(versions, 1);
    let version: i64 = client.query_one("SELECT version FROM hotline_schema", &[]).unwrap().get(0);
    assert_eq!(version, hotline::records::schema::SCHEMA_VERSION);

    // A database a newer hotline set up is refused, naming it, never the password.
    client.batch_execute("UPDATE hotline_schema SET version = version + 1").unwrap();
    let with_password = url.replace("hotline@", "hotline:s3cret@");
    let Err(e) = SqlStore::open(Path::new(&with_password)) else { panic!("a newer schema is refused") };
    let e = e.to_string();
    assert!(e.contains("newer") && e.contains("postgres://hotline@127.0.0.1") && !e.contains("s3cret"), "{e}");
}

#[test]
fn the_writer_connects_again_after_the_database_restarts_and_loses_only_what_came_while_it_was_down() {
    let mut pg = PgServer::start();
    let url = pg.url();
    let options =
        WriterOptions { keep_days: None, instance: "a".into(), max_call: std::time::Duration::from_secs(3600) };
    let writer = RecordWriter::start(Path::new(&url), options).unwrap();
    writer.write(record("before", 1_000, "a"));
    let mut ongoing = record("ongoing", 1_500, "a");
    writer.begin(&mut ongoing);
    writer.flush();
    pg.restart(|| {
        writer.write(record("while-down", 2_000, "a"));
        writer.flush();
    });
    writer.write(record("after", 3_000, "a"));
    // The call that ran across the restart ends: its row, still its own.
    writer.write(ongoing);
    writer.flush();
    let rows: Vec<(String, String)> = pg
        .client("hotline")
        .query("SELECT call_id, outcome FROM calls ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected = [("before", "transferred"), ("ongoing", "transferred"), ("after", "transferred")];
    assert_eq!(
        rows,
        expected.map(|(id, outcome)| (id.to_string(), outcome.to_string())),
        "the writer came back once the database did, and a call running meanwhile was not taken for cut"
    );
    assert_eq!(writer.lost(), 1, "the record that came while it was down is counted as lost");
}
