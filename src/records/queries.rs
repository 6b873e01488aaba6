//! Read-only questions the dashboard asks of the SQL record store (SQLite
//! or PostgreSQL): the last calls, one call's timeline, and a dialplan's
//! funnel over a period. Each is bounded in the rows it returns; on SQLite
//! it runs on a read-only connection (WAL: the writer is never blocked).
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::value::RawValue;

use super::db::{Db, Param, Value};
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

/// Calls that ended (their row is written when they start).
const FINISHED: &str = "(outcome IS NULL OR outcome != 'in_progress')";

const SUMMARY_COLUMNS: &str = "call_id, transport, dialplan, start_unix_ms, duration_ms, outcome, transfer_reason,
    transfer_extension, transfer_context, transfer_result, hangup_cause, audio_file IS NOT NULL";

/// A row of [`SUMMARY_COLUMNS`].
fn summary(r: &[Value]) -> CallSummary {
    let context = r[8].text().filter(|c| !c.is_empty());
    CallSummary {
        call_id: r[0].text().unwrap_or_default(),
        transport: r[1].text(),
        dialplan: r[2].text(),
        start_unix_ms: r[3].u64(),
        duration_ms: r[4].u64(),
        outcome: r[5].text(),
        transfer_reason: r[6].text(),
        transfer_target: r[7].text().map(|e| match &context {
            Some(c) => format!("{c}/{e}"),
            None => e,
        }),
        transfer_result: r[9].text(),
        hangup_cause: r[10].text().unwrap_or_default(),
        has_audio: r[11].bool(),
    }
}

/// The `limit` (at most [`MAX_RECENT`]) most recently started finished
/// calls, newest first (calls in progress are the live view's).
pub fn recent_calls(db: &mut Db, limit: usize) -> Result<Vec<CallSummary>, StoreError> {
    let rows = db.query(
        &format!("SELECT {SUMMARY_COLUMNS} FROM calls WHERE {FINISHED} ORDER BY start_unix_ms DESC, id DESC LIMIT ?1"),
        &[Param::from(limit.min(MAX_RECENT) as u64)],
    )?;
    Ok(rows.iter().map(|r| summary(r)).collect())
}

/// The last call stored under `call_id`, with its events in order.
pub fn call_timeline(db: &mut Db, call_id: &str) -> Result<Option<CallTimeline>, StoreError> {
    let found = db.query_one(
        &format!(
            "SELECT id, events_truncated, {SUMMARY_COLUMNS} FROM calls WHERE call_id = ?1 ORDER BY id DESC LIMIT 1"
        ),
        &[Param::from(call_id)],
    )?;
    let Some(r) = found else { return Ok(None) };
    // The summary's columns start after the two read first.
    let (id, events_truncated, call) = (r[0].i64(), r[1].bool(), summary(&r[2..]));
    let mut events = Vec::new();
    for e in db.query("SELECT data FROM events WHERE call = ?1 ORDER BY seq", &[Param::from(id)])? {
        events.push(RawValue::from_string(e[0].text().unwrap_or_default())?);
    }
    Ok(Some(CallTimeline { call, events, events_truncated }))
}

/// The kept audio file of the last call stored under `call_id`.
pub fn audio_file(db: &mut Db, call_id: &str) -> Result<Option<PathBuf>, StoreError> {
    let row = db.query_one(
        "SELECT audio_file FROM calls WHERE call_id = ?1 ORDER BY id DESC LIMIT 1",
        &[Param::from(call_id)],
    )?;
    Ok(row.and_then(|r| r[0].text()).map(PathBuf::from))
}

/// The dialplans that have calls since `since_unix_ms`.
pub fn dialplans(db: &mut Db, since_unix_ms: u64) -> Result<Vec<String>, StoreError> {
    let rows = db.query(
        "SELECT DISTINCT dialplan FROM calls WHERE start_unix_ms >= ?1 AND dialplan IS NOT NULL ORDER BY dialplan
         LIMIT 1000",
        &[Param::from(since_unix_ms)],
    )?;
    Ok(rows.iter().filter_map(|r| r[0].text()).collect())
}

/// The funnel of `dialplan` over the calls that started at or after
/// `since_unix_ms`.
pub fn funnel(db: &mut Db, dialplan: &str, since_unix_ms: u64) -> Result<Funnel, StoreError> {
    let mut funnel = Funnel { dialplan: dialplan.to_string(), since_unix_ms, ..Funnel::default() };
    let period = [Param::from(dialplan), Param::from(since_unix_ms)];
    let rows = db.query(
        &format!(
            "SELECT COALESCE(outcome, ''), transfer_reason, COUNT(*) FROM calls
             WHERE dialplan = ?1 AND start_unix_ms >= ?2 AND {FINISHED} GROUP BY 1, 2"
        ),
        &period,
    )?;
    for r in rows {
        let (outcome, reason, n) = (r[0].text().unwrap_or_default(), r[1].text(), r[2].u64());
        funnel.calls += n;
        *funnel.outcomes.entry(outcome.clone()).or_default() += n;
        if outcome == "transferred" {
            *funnel.transfers.entry(reason.unwrap_or_default()).or_default() += n;
        }
    }
    let mut menus: BTreeMap<String, MenuFunnel> = BTreeMap::new();
    // Events of the period's calls of this dialplan, by type and menu.
    const OF_PERIOD: &str = "FROM events e JOIN calls c ON c.id = e.call
        WHERE c.dialplan = ?1 AND c.start_unix_ms >= ?2 AND e.menu IS NOT NULL";
    let rows = db.query(
        &format!(
            "SELECT e.menu, e.type, e.intent, e.source, COUNT(*), COUNT(DISTINCT e.call) {OF_PERIOD}
             AND e.type IN ('prompt', 'intent', 'no_match', 'no_input')
             GROUP BY e.menu, e.type, e.intent, e.source"
        ),
        &period,
    )?;
    for r in rows {
        let m = menu(&mut menus, r[0].text().unwrap_or_default());
        let (n, calls) = (r[4].u64(), r[5].u64());
        match r[1].text().unwrap_or_default().as_str() {
            "prompt" => m.callers += calls,
            "no_match" => m.no_match += n,
            "no_input" => m.no_input += n,
            _ => {
                let intent = r[2].text().unwrap_or_default();
                let at = match m.options.iter().position(|o| o.intent == intent) {
                    Some(at) => at,
                    None => {
                        m.options.push(OptionTaken { intent, ..OptionTaken::default() });
                        m.options.len() - 1
                    }
                };
                if r[3].text().as_deref() == Some("speech") {
                    m.options[at].speech += n;
                } else {
                    m.options[at].dtmf += n;
                }
            }
        }
    }
    // The most frequent unmatched words per menu, with the last call they
    // were heard in (the highest row id of the group).
    let rows = db.query(
        &format!(
            "SELECT u.menu, u.text, u.n, c.call_id FROM (
                SELECT e.menu AS menu, e.text AS text, COUNT(*) AS n, MAX(c.id) AS last {OF_PERIOD}
                AND e.type = 'no_match' AND e.text IS NOT NULL AND TRIM(e.text) != ''
                GROUP BY e.menu, e.text ORDER BY n DESC, last DESC LIMIT ?3
             ) u JOIN calls c ON c.id = u.last ORDER BY u.n DESC, u.last DESC"
        ),
        &[period[0], period[1], Param::from(MAX_UNMATCHED_ROWS as u64)],
    )?;
    for r in rows {
        let m = menu(&mut menus, r[0].text().unwrap_or_default());
        if m.unmatched.len() < TOP_UNMATCHED {
            m.unmatched.push(Unmatched {
                text: r[1].text().unwrap_or_default(),
                count: r[2].u64(),
                call_id: r[3].text().unwrap_or_default(),
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
    use crate::records::sql::SqlStore;
    use crate::records::{sqlite, CallRecord, RecordStore};

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
        let mut store = SqlStore::open(&path).unwrap();
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
        let mut db = sqlite::open_read_only(&path).unwrap();
        let f = funnel(&mut db, "hotline", 500).unwrap();
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
        let recent = recent_calls(&mut db, 2).unwrap();
        assert_eq!(recent.iter().map(|c| c.call_id.as_str()).collect::<Vec<_>>(), ["b", "a"]);
        let timeline = call_timeline(&mut db, "a").unwrap().unwrap();
        let kinds: Vec<String> = timeline
            .events
            .iter()
            .map(|e| serde_json::from_str::<serde_json::Value>(e.get()).unwrap()["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(kinds, ["prompt", "no_match", "prompt", "intent", "prompt", "intent"]);
        assert!(call_timeline(&mut db, "nope").unwrap().is_none());
    }
}
