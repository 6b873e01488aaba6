//! The calls in progress, as the dashboard shows them: a bounded registry
//! that each call's observer updates from the same events that go into the
//! call record, and a broadcast of "something changed" to the dashboard's
//! event streams.
//!
//! A call never waits on the dashboard: an update takes a short lock on a
//! small map and a broadcast send never blocks (a slow subscriber lags and
//! is sent a fresh snapshot instead of every change).
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::call::{Event, Source};

/// Calls shown at most (`max_calls` is at most 10 000); past this a call
/// is served but not shown, with a warning.
pub const MAX_LIVE_CALLS: usize = 10_000;
/// Changes buffered per subscriber before it lags (and is resynchronised
/// with a snapshot).
const CHANGE_BUFFER: usize = 64;
/// Longest text of an utterance kept for display.
const MAX_TEXT_CHARS: usize = 200;

/// What changed, for the event streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A call started or did something: the active list changed.
    Active,
    /// A call ended: its record is on its way to the store.
    Finished,
}

/// One call in progress, as served by `/api/calls/active`.
#[derive(Debug, Clone, Serialize)]
pub struct LiveCall {
    pub call_id: String,
    pub transport: String,
    pub dialplan: String,
    /// The menu whose prompt the caller last heard.
    pub menu: Option<String>,
    pub start_unix_ms: u64,
    /// Time in the call when the snapshot was taken (the browser's clock
    /// need not agree with the server's).
    pub elapsed_ms: u64,
    /// What the caller last said, as heard.
    pub last_utterance: Option<String>,
    /// The last intent acted on, `menu/intent` and how it was chosen.
    pub last_intent: Option<String>,
    pub last_intent_source: Option<&'static str>,
    #[serde(skip)]
    started: Option<Instant>,
}

/// The registry of calls in progress.
pub struct LiveCalls {
    calls: Mutex<BTreeMap<u64, LiveCall>>,
    next_key: AtomicU64,
    changes: broadcast::Sender<Change>,
}

impl Default for LiveCalls {
    fn default() -> Self {
        LiveCalls {
            calls: Mutex::new(BTreeMap::new()),
            next_key: AtomicU64::new(0),
            changes: broadcast::channel(CHANGE_BUFFER).0,
        }
    }
}

impl LiveCalls {
    /// Shows a call that has started; it leaves the registry when the
    /// returned entry is dropped. `None` when the registry is full.
    pub fn enter(self: &Arc<Self>, call_id: &str, transport: &str, dialplan: &str) -> Option<LiveEntry> {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        {
            let mut calls = self.lock();
            if calls.len() >= MAX_LIVE_CALLS {
                tracing::warn!(limit = MAX_LIVE_CALLS, "call not shown on the dashboard: too many calls");
                return None;
            }
            calls.insert(
                key,
                LiveCall {
                    call_id: call_id.to_string(),
                    transport: transport.to_string(),
                    dialplan: dialplan.to_string(),
                    menu: None,
                    start_unix_ms: crate::records::unix_ms(SystemTime::now()),
                    elapsed_ms: 0,
                    last_utterance: None,
                    last_intent: None,
                    last_intent_source: None,
                    started: Some(Instant::now()),
                },
            );
        }
        self.notify(Change::Active);
        Some(LiveEntry { calls: Arc::clone(self), key })
    }

    /// The calls in progress, oldest first.
    pub fn snapshot(&self) -> Vec<LiveCall> {
        self.lock()
            .values()
            .map(|c| LiveCall { elapsed_ms: c.started.map_or(0, |t| t.elapsed().as_millis() as u64), ..c.clone() })
            .collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    fn notify(&self, change: Change) {
        // No subscriber is not an error: nobody is looking.
        let _ = self.changes.send(change);
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, LiveCall>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A call's place in the registry; dropping it (call over, or its task
/// aborted) takes the call off the dashboard.
pub struct LiveEntry {
    calls: Arc<LiveCalls>,
    key: u64,
}

impl LiveEntry {
    /// One event of the call machine: what the dashboard shows of it.
    pub fn event(&self, e: &Event) {
        let changed = {
            let mut calls = self.calls.lock();
            let Some(call) = calls.get_mut(&self.key) else { return };
            match e {
                Event::Prompt { menu, .. } if call.menu.as_ref() != Some(menu) => {
                    call.menu = Some(menu.clone());
                    true
                }
                Event::Utterance { text, .. } | Event::NoMatch { text, .. } => {
                    call.last_utterance = Some(text.chars().take(MAX_TEXT_CHARS).collect());
                    true
                }
                Event::Intent { menu, intent, source, .. } => {
                    call.last_intent = Some(format!("{menu}/{intent}"));
                    call.last_intent_source = Some(match source {
                        Source::Speech => "speech",
                        Source::Dtmf => "dtmf",
                    });
                    true
                }
                _ => false,
            }
        };
        if changed {
            self.calls.notify(Change::Active);
        }
    }
}

impl Drop for LiveEntry {
    fn drop(&mut self) {
        self.calls.lock().remove(&self.key);
        self.calls.notify(Change::Finished);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_show_their_menu_words_and_intent_and_leave_when_dropped() {
        let live = Arc::new(LiveCalls::default());
        let mut changes = live.subscribe();
        let entry = live.enter("c1", "asterisk_ws", "hotline").unwrap();
        entry.event(&Event::Prompt { t_ms: 0, menu: "main".into(), text: "Welcome".into() });
        entry.event(&Event::Utterance { t_ms: 9, start_ms: 1, end_ms: 8, text: "<b>one</b>".into(), confidence: 0.9 });
        entry.event(&Event::Intent {
            t_ms: 9,
            menu: "main".into(),
            intent: "billing".into(),
            confidence: 0.9,
            source: Source::Speech,
        });
        let shown = live.snapshot();
        assert_eq!(shown.len(), 1);
        assert_eq!(
            (shown[0].menu.as_deref(), shown[0].last_utterance.as_deref(), shown[0].last_intent.as_deref()),
            (Some("main"), Some("<b>one</b>"), Some("main/billing"))
        );
        drop(entry);
        assert!(live.snapshot().is_empty());
        let mut seen = Vec::new();
        while let Ok(c) = changes.try_recv() {
            seen.push(c);
        }
        assert_eq!(seen, [Change::Active, Change::Active, Change::Active, Change::Active, Change::Finished]);
    }
}
