//! Read-only questions the dashboard asks of the SQLite record store: the
//! last calls, one call's timeline, and a dialplan's funnel over a period.
//! Each runs on a read-only connection (WAL: the writer is never blocked)
//! and is bounded in the rows it returns.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::value::RawValue;

use super::StoreError;

/// Calls `/api/calls/recent` returns at most.
pub const MAX_RECENT: usize = 200;
/// Unmatched utterances listed per menu.
pub const TOP_UNMATCHED: usize = 5;
/// Distinct unmatched texts read per funnel, across menus.
const MAX_UNMATCHED_ROWS: usize = 2_000;

/// A finished call, as listed.
#[derive(Debug, Serialize)]
pub struct CallSummary {
    pub call_id: String,
    pub transport: Option<String>,
    pub dialplan: Option<String>,
    pub start_unix_ms: u64,
    pub duration_ms: u64,
    pub outcome: Option<String>,
    pub transfer_reason: Option<String>,
    /// `context/extension` of a transfer.
    pub transfer_target: Option<String>,
    pub transfer_result: Option<String>,
    pub hangup_cause: String,
    /// Whether the caller's audio was kept.
    pub has_audio: bool,
}

/// A call and its events, as `hotline replay` prints them.
#[derive(Debug, Serialize)]
pub struct CallTimeline {
    #[serde(flatten)]
    pub call: CallSummary,
    pub events: Vec<Box<RawValue>>,
    pub events_truncated: bool,
}

/// What callers did in one dialplan since a time.
#[derive(Debug, Serialize, Default)]
pub struct Funnel {
    pub dialplan: String,
    pub since_unix_ms: u64,
    pub calls: u64,
    /// Finished calls by outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// Transferred calls by reason (`asked`, `escalated`, `dialplan`).
    pub transfers: BTreeMap<String, u64>,
    /// Menus by callers who heard them, most first.
    pub menus: Vec<MenuFunnel>,
}

#[derive(Debug, Serialize, Default)]
pub struct MenuFunnel {
    pub menu: String,
    /// Calls that heard this menu's prompt at least once.
    pub callers: u64,
    /// Intents acted on in this menu, by speech and by keys.
    pub options: Vec<OptionTaken>,
    pub no_match: u64,
    pub no_input: u64,
    /// Answers the menu got: intents, no-matches and no-inputs; the
    /// rates below are shares of them.
    pub answers: u64,
    pub no_match_rate: f64,
    pub no_input_rate: f64,
    /// What callers said that matched nothing, most frequent first.
    pub unmatched: Vec<Unmatched>,
}

#[derive(Debug, Serialize, Default, Clone)]
pub struct OptionTaken {
    pub intent: String,
    pub speech: u64,
    pub dtmf: u64,
}

#[derive(Debug, Serialize)]
pub struct Unmatched {
    /// The caller's words as heard (untrusted: shown as text only).
    pub text: String,
    pub count: u64,
    /// The last call it was heard in.
    pub call_id: String,
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite { path: path.to_path_buf(), source }
}

const SUMMARY_COLUMNS: &str = "call_id, transport, dialplan, start_unix_ms, duration_ms, outcome, transfer_reason,
    transfer_extension, transfer_context, transfer_result, hangup_cause, audio_file IS NOT NULL";

fn summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<CallSummary> {
    let extension: Option<String> = r.get(7)?;
    let context: Option<String> = r.get(8)?;
    Ok(CallSummary {
        call_id: r.get(0)?,
        transport: r.get(1)?,
        dialplan: r.get(2)?,
        start_unix_ms: r.get::<_, i64>(3)?.max(0) as u64,
        duration_ms: r.get::<_, i64>(4)?.max(0) as u64,
        outcome: r.get(5)?,
        transfer_reason: r.get(6)?,
        transfer_target: extension.map(|e| match context.filter(|c| !c.is_empty()) {
            Some(c) => format!("{c}/{e}"),
            None => e,
        }),
        transfer_result: r.get(9)?,
        hangup_cause: r.get(10)?,
        has_audio: r.get(11)?,
    })
}

/// The `limit` (at most [`MAX_RECENT`]) most recently started calls, newest first.
pub fn recent_calls(conn: &Connection, path: &Path, limit: usize) -> Result<Vec<CallSummary>, StoreError> {
    let mut stmt = conn
        .prepare(&format!("SELECT {SUMMARY_COLUMNS} FROM calls ORDER BY start_unix_ms DESC, id DESC LIMIT ?1"))
        .map_err(sql(path))?;
    let rows = stmt.query_map(params![limit.min(MAX_RECENT) as i64], summary).map_err(sql(path))?;
    rows.collect::<Result<_, _>>().map_err(sql(path))
}

/// The last call stored under `call_id`, with its events in order.
pub fn call_timeline(conn: &Connection, path: &Path, call_id: &str) -> Result<Option<CallTimeline>, StoreError> {
    let found = conn
        .query_row(
            &format!(
                "SELECT id, events_truncated, {SUMMARY_COLUMNS} FROM calls WHERE call_id = ?1 ORDER BY id DESC LIMIT 1"
            ),
            params![call_id],
            |r| {
                let id: i64 = r.get(0)?;
                let truncated: bool = r.get(1)?;
                // The summary's columns start after the two read above.
                let call = CallSummary {
                    call_id: r.get(2)?,
                    transport: r.get(3)?,
                    dialplan: r.get(4)?,
                    start_unix_ms: r.get::<_, i64>(5)?.max(0) as u64,
                    duration_ms: r.get::<_, i64>(6)?.max(0) as u64,
                    outcome: r.get(7)?,
                    transfer_reason: r.get(8)?,
                    transfer_target: {
                        let extension: Option<String> = r.get(9)?;
                        let context: Option<String> = r.get(10)?;
                        extension.map(|e| match context.filter(|c| !c.is_empty()) {
                            Some(c) => format!("{c}/{e}"),
                            None => e,
                        })
                    },
                    transfer_result: r.get(11)?,
                    hangup_cause: r.get(12)?,
                    has_audio: r.get(13)?,
                };
                Ok((id, truncated, call))
            },
        )
        .optional()
        .map_err(sql(path))?;
    let Some((id, events_truncated, call)) = found else { return Ok(None) };
    let mut stmt = conn.prepare("SELECT data FROM events WHERE call = ?1 ORDER BY seq").map_err(sql(path))?;
    let mut events = Vec::new();
    let mut rows = stmt.query(params![id]).map_err(sql(path))?;
    while let Some(r) = rows.next().map_err(sql(path))? {
        let data: String = r.get(0).map_err(sql(path))?;
        events.push(RawValue::from_string(data)?);
    }
    Ok(Some(CallTimeline { call, events, events_truncated }))
}

/// The kept audio file of the last call stored under `call_id`.
pub fn audio_file(conn: &Connection, path: &Path, call_id: &str) -> Result<Option<PathBuf>, StoreError> {
    let file: Option<Option<String>> = conn
        .query_row("SELECT audio_file FROM calls WHERE call_id = ?1 ORDER BY id DESC LIMIT 1", params![call_id], |r| {
            r.get(0)
        })
        .optional()
        .map_err(sql(path))?;
    Ok(file.flatten().map(PathBuf::from))
}

/// The dialplans that have calls since `since_unix_ms`.
pub fn dialplans(conn: &Connection, path: &Path, since_unix_ms: u64) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare(
            "SELECT DISTINCT dialplan FROM calls WHERE start_unix_ms >= ?1 AND dialplan IS NOT NULL ORDER BY dialplan
             LIMIT 1000",
        )
        .map_err(sql(path))?;
    let rows = stmt.query_map(params![since_unix_ms as i64], |r| r.get(0)).map_err(sql(path))?;
    rows.collect::<Result<_, _>>().map_err(sql(path))
}

/// The funnel of `dialplan` over the calls that started at or after
/// `since_unix_ms`.
pub fn funnel(conn: &Connection, path: &Path, dialplan: &str, since_unix_ms: u64) -> Result<Funnel, StoreError> {
    let e = sql(path);
    let since = since_unix_ms as i64;
    let mut funnel = Funnel { dialplan: dialplan.to_string(), since_unix_ms, ..Funnel::default() };
    let mut stmt = conn
        .prepare(
            "SELECT COALESCE(outcome, ''), transfer_reason, COUNT(*) FROM calls
             WHERE dialplan = ?1 AND start_unix_ms >= ?2 GROUP BY 1, 2",
        )
        .map_err(&e)?;
    let mut rows = stmt.query(params![dialplan, since]).map_err(&e)?;
    while let Some(r) = rows.next().map_err(&e)? {
        let (outcome, reason, n): (String, Option<String>, i64) =
            (r.get(0).map_err(&e)?, r.get(1).map_err(&e)?, r.get(2).map_err(&e)?);
        funnel.calls += n as u64;
        *funnel.outcomes.entry(outcome.clone()).or_default() += n as u64;
        if outcome == "transferred" {
            *funnel.transfers.entry(reason.unwrap_or_default()).or_default() += n as u64;
        }
    }
    let mut menus: BTreeMap<String, MenuFunnel> = BTreeMap::new();
    // Events of the period's calls of this dialplan, by type and menu.
    const OF_PERIOD: &str = "FROM events e JOIN calls c ON c.id = e.call
        WHERE c.dialplan = ?1 AND c.start_unix_ms >= ?2 AND e.menu IS NOT NULL";
    let mut stmt = conn
        .prepare(&format!(
            "SELECT e.menu, e.type, e.intent, e.source, COUNT(*), COUNT(DISTINCT e.call) {OF_PERIOD}
             AND e.type IN ('prompt', 'intent', 'no_match', 'no_input')
             GROUP BY e.menu, e.type, e.intent, e.source"
        ))
        .map_err(&e)?;
    let mut rows = stmt.query(params![dialplan, since]).map_err(&e)?;
    while let Some(r) = rows.next().map_err(&e)? {
        let name: String = r.get(0).map_err(&e)?;
        let kind: String = r.get(1).map_err(&e)?;
        let intent: Option<String> = r.get(2).map_err(&e)?;
        let source: Option<String> = r.get(3).map_err(&e)?;
        let (n, calls) = (r.get::<_, i64>(4).map_err(&e)? as u64, r.get::<_, i64>(5).map_err(&e)? as u64);
        let m = menu(&mut menus, name);
        match kind.as_str() {
            "prompt" => m.callers += calls,
            "no_match" => m.no_match += n,
            "no_input" => m.no_input += n,
            _ => {
                let intent = intent.unwrap_or_default();
                let at = match m.options.iter().position(|o| o.intent == intent) {
                    Some(at) => at,
                    None => {
                        m.options.push(OptionTaken { intent, ..OptionTaken::default() });
                        m.options.len() - 1
                    }
                };
                if source.as_deref() == Some("speech") {
                    m.options[at].speech += n;
                } else {
                    m.options[at].dtmf += n;
                }
            }
        }
    }
    // SQLite gives a bare column (`c.call_id`) the value of the row that
    // holds the MAX(): the last call the words were heard in.
    let mut stmt = conn
        .prepare(&format!(
            "SELECT e.menu, e.text, COUNT(*) AS n, MAX(c.id), c.call_id {OF_PERIOD}
             AND e.type = 'no_match' AND e.text IS NOT NULL AND TRIM(e.text) != ''
             GROUP BY e.menu, e.text ORDER BY n DESC, MAX(c.id) DESC LIMIT ?3"
        ))
        .map_err(&e)?;
    let mut rows = stmt.query(params![dialplan, since, MAX_UNMATCHED_ROWS as i64]).map_err(&e)?;
    while let Some(r) = rows.next().map_err(&e)? {
        let m = menu(&mut menus, r.get(0).map_err(&e)?);
        if m.unmatched.len() < TOP_UNMATCHED {
            m.unmatched.push(Unmatched {
                text: r.get(1).map_err(&e)?,
                count: r.get::<_, i64>(2).map_err(&e)? as u64,
                call_id: r.get(4).map_err(&e)?,
            });
        }
    }
    funnel.menus = menus
        .into_values()
        .map(|mut m| {
            m.options.sort_by(|a, b| (b.speech + b.dtmf).cmp(&(a.speech + a.dtmf)).then(a.intent.cmp(&b.intent)));
            let intents: u64 = m.options.iter().map(|o| o.speech + o.dtmf).sum();
            m.answers = intents + m.no_match + m.no_input;
            if m.answers > 0 {
                m.no_match_rate = m.no_match as f64 / m.answers as f64;
                m.no_input_rate = m.no_input as f64 / m.answers as f64;
            }
            m
        })
        .collect();
    funnel.menus.sort_by(|a, b| b.callers.cmp(&a.callers).then(a.menu.cmp(&b.menu)));
    Ok(funnel)
}

fn menu(menus: &mut BTreeMap<String, MenuFunnel>, name: String) -> &mut MenuFunnel {
    menus.entry(name.clone()).or_insert_with(|| MenuFunnel { menu: name, ..MenuFunnel::default() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{Event, Source};
    use crate::records::sqlite::SqliteStore;
    use crate::records::{CallRecord, RecordStore};

    fn call(id: &str, start: u64, events: Vec<Event>, outcome: &str, reason: Option<&str>) -> CallRecord {
        CallRecord {
            call_id: id.into(),
            dialplan: Some("hotline".into()),
            start_unix_ms: start,
            outcome: Some(outcome.into()),
            transfer_reason: reason.map(Into::into),
            events,
            ..CallRecord::default()
        }
    }

    fn prompt(menu: &str) -> Event {
        Event::Prompt { t_ms: 0, menu: menu.into(), text: "Say something.".into() }
    }

    fn intent(menu: &str, intent: &str, source: Source) -> Event {
        Event::Intent { t_ms: 1, menu: menu.into(), intent: intent.into(), confidence: 1.0, source }
    }

    fn no_match(menu: &str, text: &str) -> Event {
        Event::NoMatch { t_ms: 1, menu: menu.into(), text: text.into() }
    }

    #[test]
    fn the_funnel_counts_callers_options_failures_and_unmatched_words_per_menu() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.db");
        let mut store = SqliteStore::open(&path).unwrap();
        let old = call("old", 10, vec![prompt("main"), intent("main", "support", Source::Dtmf)], "completed", None);
        let a = call(
            "a",
            1_000,
            vec![
                prompt("main"),
                no_match("main", "uh what"),
                prompt("main"),
                intent("main", "billing", Source::Speech),
                prompt("billing"),
                intent("billing", "pay", Source::Dtmf),
            ],
            "transferred",
            Some("dialplan"),
        );
        let b = call(
            "b",
            2_000,
            vec![
                prompt("main"),
                no_match("main", "uh what"),
                Event::NoInput { t_ms: 3, menu: "main".into() },
                intent("main", "agent", Source::Dtmf),
            ],
            "transferred",
            Some("asked"),
        );
        for r in [&old, &a, &b] {
            store.write(r).unwrap();
        }
        let conn = SqliteStore::open_read_only(&path).unwrap();
        let f = funnel(&conn, &path, "hotline", 500).unwrap();
        assert_eq!(f.calls, 2);
        assert_eq!(f.transfers, BTreeMap::from([("asked".into(), 1), ("dialplan".into(), 1)]));
        let main = &f.menus[0];
        assert_eq!(
            (main.menu.as_str(), main.callers, main.no_match, main.no_input, main.answers),
            ("main", 2, 2, 1, 5)
        );
        let options: Vec<(&str, u64, u64)> =
            main.options.iter().map(|o| (o.intent.as_str(), o.speech, o.dtmf)).collect();
        assert_eq!(options, [("agent", 0, 1), ("billing", 1, 0)]);
        assert_eq!(main.unmatched.len(), 1);
        assert_eq!(
            (main.unmatched[0].text.as_str(), main.unmatched[0].count, main.unmatched[0].call_id.as_str()),
            ("uh what", 2, "b")
        );
        assert!((main.no_match_rate - 0.4).abs() < 1e-9);
        assert_eq!((f.menus[1].menu.as_str(), f.menus[1].callers), ("billing", 1));
        let recent = recent_calls(&conn, &path, 2).unwrap();
        assert_eq!(recent.iter().map(|c| c.call_id.as_str()).collect::<Vec<_>>(), ["b", "a"]);
        let timeline = call_timeline(&conn, &path, "a").unwrap().unwrap();
        let kinds: Vec<String> = timeline
            .events
            .iter()
            .map(|e| serde_json::from_str::<serde_json::Value>(e.get()).unwrap()["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(kinds, ["prompt", "no_match", "prompt", "intent", "prompt", "intent"]);
        assert!(call_timeline(&conn, &path, "nope").unwrap().is_none());
    }
}
