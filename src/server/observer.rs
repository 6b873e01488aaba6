//! What one call did, as metrics: the session hands every call-machine
//! event to its [`CallObserver`] (the same events that go into the call
//! record), and the observer counts them, so the call machine stays free
//! of counters and the metrics agree with the records.
//!
//! At the end of the call the observer also decides its outcome and, for a
//! transfer, why it happened, and writes both into the record.
use std::sync::Arc;

use crate::call::{Event, Source};
use crate::dialplan::{Dialplan, GlobalKind};
use crate::metrics as m;
use crate::records::{CallRecord, Outcome};

pub(super) struct CallObserver {
    transport: String,
    /// The call's dialplan, once the call has started.
    plan: Option<Arc<Dialplan>>,
    /// Counted in `hotline_calls_active` (until finished or dropped).
    active: bool,
    /// What last decided where the call goes, for the transfer's reason.
    last_decision: Decision,
    /// Why the last transfer was asked for.
    transfer_reason: Option<&'static str>,
    /// Call time at which the last recognised utterance's speech ended.
    speech_end_ms: Option<u64>,
    /// The call on the dashboard, while it is in progress.
    live: Option<super::dashboard::LiveEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    None,
    /// An intent was acted on; `operator` when it was the caller asking
    /// for a human (the dialplan's operator global).
    Intent {
        operator: bool,
    },
    /// A no-match, no-input or loss of speech: what escalations follow.
    Failure,
}

/// How the session's connection ended, as far as the outcome cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// The PBX closed: the caller hung up, or was transferred away.
    PeerClosed,
    /// The call machine ended the call (goodbye, message, transfer).
    Machine,
    /// hotline cut the call: protocol error, broken connection, shutdown,
    /// maximum duration, no dialplan.
    Cut,
}

impl CallObserver {
    pub(super) fn new(transport: crate::pbx::transport::Transport) -> CallObserver {
        CallObserver {
            transport: transport.to_string(),
            plan: None,
            active: false,
            last_decision: Decision::None,
            transfer_reason: None,
            speech_end_ms: None,
            live: None,
        }
    }

    fn dialplan(&self) -> &str {
        self.plan.as_ref().map_or("", |p| p.name.as_str())
    }

    /// The call was given its dialplan.
    pub(super) fn started(&mut self, plan: &Arc<Dialplan>) {
        self.plan = Some(Arc::clone(plan));
        m::call_started(&self.transport, &plan.name);
        self.active = true;
    }

    /// Shows the call on the dashboard until it ends.
    pub(super) fn show_live(&mut self, live: &Arc<super::dashboard::LiveCalls>, call_id: &str) {
        self.live = live.enter(call_id, &self.transport, self.dialplan());
    }

    /// The recogniser answered (whether or not the answer is used).
    pub(super) fn recognized(&self, decode_ms: u64) {
        m::recognition_ms(decode_ms);
    }

    /// One event of the call machine, as it goes into the record.
    pub(super) fn event(&mut self, e: &Event) {
        if let Some(live) = &self.live {
            live.event(e);
        }
        let Some(plan) = self.plan.clone() else { return };
        let dialplan = plan.name.as_str();
        match e {
            Event::Prompt { menu, text, .. } if is_confirmation(&plan.messages.confirm_intent, text) => {
                m::confirmation(dialplan, menu);
            }
            Event::Utterance { end_ms, .. } => {
                m::utterance(dialplan);
                self.speech_end_ms = Some(*end_ms);
            }
            Event::Intent { t_ms, menu, intent, source, .. } => {
                let name = match source {
                    Source::Speech => "speech",
                    Source::Dtmf => "dtmf",
                };
                m::intent(dialplan, menu, intent, name);
                if let (Source::Speech, Some(end)) = (source, self.speech_end_ms.take()) {
                    m::speech_to_action_ms(t_ms.saturating_sub(end));
                }
                self.last_decision = Decision::Intent { operator: asks_for_operator(&plan, menu, intent) };
            }
            Event::NoMatch { menu, .. } => {
                m::no_match(dialplan, menu);
                self.last_decision = Decision::Failure;
            }
            Event::NoInput { menu, .. } => {
                m::no_input(dialplan, menu);
                self.last_decision = Decision::Failure;
            }
            Event::Degraded { reason, .. } => {
                if reason.starts_with(VAD_FAILURE) {
                    m::vad_failure();
                }
                self.last_decision = Decision::Failure;
            }
            Event::Transfer { .. } => {
                self.transfer_reason = Some(match self.last_decision {
                    Decision::Intent { operator: true } => "asked",
                    Decision::Failure => "escalated",
                    Decision::Intent { operator: false } | Decision::None => "dialplan",
                });
            }
            _ => {}
        }
    }

    /// The call is over: its outcome (and transfer reason) go into the
    /// record and the finished-calls counter.
    pub(super) fn finish(&mut self, record: &mut CallRecord, ending: Ending) {
        let outcome = outcome(record, ending, self.plan.is_some());
        let reason = if outcome == Outcome::Transferred { self.transfer_reason.or(Some("dialplan")) } else { None };
        record.transport = Some(self.transport.clone());
        record.outcome = Some(outcome.as_str().to_string());
        record.transfer_reason = reason.map(str::to_string);
        m::call_finished(&self.transport, self.dialplan(), outcome.as_str(), reason);
        self.end_active();
    }

    fn end_active(&mut self) {
        self.live = None;
        if std::mem::take(&mut self.active) {
            m::call_ended(&self.transport, self.dialplan());
        }
    }
}

impl Drop for CallObserver {
    /// A call task that ends without finishing (aborted at shutdown) still
    /// leaves the active-calls gauge.
    fn drop(&mut self) {
        self.end_active();
    }
}

/// How the call machine words a voice-detector failure (src/call/listening.rs).
const VAD_FAILURE: &str = "voice detector failed";

fn outcome(record: &CallRecord, ending: Ending, had_dialplan: bool) -> Outcome {
    if let Some(t) = &record.transfer {
        return if left_for_the_target(&t.result) { Outcome::Transferred } else { Outcome::TransferFailed };
    }
    if record.events.iter().any(|e| matches!(e, Event::TransferFailed { .. })) {
        return Outcome::TransferFailed;
    }
    match ending {
        _ if !had_dialplan => Outcome::Error,
        Ending::Cut => Outcome::Error,
        Ending::PeerClosed => Outcome::CallerHungUp,
        Ending::Machine => Outcome::Completed,
    }
}

/// Whether a transfer's recorded result means the caller left hotline for
/// the target: seen there (`ok`), handed to the PBX's dialplan (the
/// no-AMI method), or accepted by Asterisk without the landing being seen
/// (`unconfirmed: ...`). The rest (`hung up: ...`, `landed elsewhere:
/// ...`, errors) did not reach the target.
fn left_for_the_target(result: &str) -> bool {
    result == "ok" || result.starts_with("handed to") || result.starts_with("unconfirmed")
}

/// Whether `intent`, acted on in `menu`, is the caller asking for a human:
/// the dialplan's operator global, not a menu option of the same name.
fn asks_for_operator(plan: &Dialplan, menu: &str, intent: &str) -> bool {
    let is_option = plan.menus.get(menu).is_some_and(|m| m.options.iter().any(|o| o.intent == intent));
    !is_option && plan.globals.iter().any(|g| g.kind == GlobalKind::Operator && g.intent == intent)
}

/// Whether a prompt's text is the dialplan's "Did you mean {}?" question
/// (the template around the intent's spoken name).
fn is_confirmation(template: &str, text: &str) -> bool {
    match template.split_once("{}") {
        Some((before, after)) => {
            let (before, after) = (before.trim(), after.trim());
            (!before.is_empty() || !after.is_empty())
                && text.starts_with(before)
                && text.len() > before.len() + after.len()
                && text[before.len()..].contains(after)
        }
        // `fill` appends the value after such a template.
        None => text.starts_with(template.trim_end()) && text.len() > template.trim_end().len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pbx::transport::Transport;
    use crate::records::TransferRecord;

    /// The outcome and transfer reason a call with these events gets.
    fn ended(events: Vec<Event>, transfer: Option<&str>, ending: Ending) -> (Option<String>, Option<String>) {
        let plan = Arc::new(crate::call::test_support::test_dialplan());
        let mut observer = CallObserver::new(Transport::AsteriskWs);
        observer.started(&plan);
        let mut record = CallRecord::default();
        for e in events {
            observer.event(&e);
            record.push_event(e);
        }
        record.transfer = transfer.map(|result| TransferRecord {
            extension: "100".into(),
            context: "operators".into(),
            method: "ami-redirect".into(),
            result: result.into(),
        });
        observer.finish(&mut record, ending);
        (record.outcome, record.transfer_reason)
    }

    fn transfer(t_ms: u64) -> Event {
        Event::Transfer { t_ms, extension: "100".into(), context: None }
    }

    fn intent(menu: &str, intent: &str) -> Event {
        Event::Intent { t_ms: 1, menu: menu.into(), intent: intent.into(), confidence: 1.0, source: Source::Dtmf }
    }

    fn pair(outcome: &str, reason: Option<&str>) -> (Option<String>, Option<String>) {
        (Some(outcome.into()), reason.map(str::to_string))
    }

    #[test]
    fn transfers_are_told_apart_by_what_led_to_them() {
        let no_match = Event::NoMatch { t_ms: 1, menu: "main".into(), text: "pardon".into() };
        let no_input = Event::NoInput { t_ms: 2, menu: "main".into() };
        assert_eq!(
            ended(vec![no_match, no_input, transfer(3)], Some("ok"), Ending::PeerClosed),
            pair("transferred", Some("escalated"))
        );
        assert_eq!(
            ended(vec![intent("main", "agent"), transfer(3)], Some("ok"), Ending::PeerClosed),
            pair("transferred", Some("asked"))
        );
        assert_eq!(
            ended(
                vec![intent("main", "billing"), intent("billing", "refunds"), transfer(3)],
                Some("handed to the dialplan"),
                Ending::Machine
            ),
            pair("transferred", Some("dialplan"))
        );
        assert_eq!(
            ended(
                vec![intent("main", "agent"), transfer(3)],
                Some("hung up: the caller was hung up"),
                Ending::PeerClosed
            ),
            pair("transfer_failed", None)
        );
    }

    #[test]
    fn calls_without_a_transfer_end_completed_hung_up_or_in_error() {
        let hangup = |reason: &str| Event::Hangup { t_ms: 9, reason: reason.into() };
        assert_eq!(ended(vec![hangup("caller said goodbye")], None, Ending::Machine), pair("completed", None));
        assert_eq!(ended(vec![hangup("caller hung up")], None, Ending::PeerClosed), pair("caller_hung_up", None));
        assert_eq!(ended(vec![hangup("caller hung up")], None, Ending::Cut), pair("error", None));
        let failed = Event::TransferFailed { t_ms: 5, reason: "Channel not found".into() };
        assert_eq!(ended(vec![failed, hangup("message played")], None, Ending::Machine), pair("transfer_failed", None));
    }

    #[test]
    fn confirmation_questions_are_told_from_other_prompts() {
        let t = "Did you mean {}?";
        assert!(is_confirmation(t, "Did you mean billing?"));
        assert!(is_confirmation(t, "Did you mean main menu? Press 1 for yes, 2 for no."));
        assert!(!is_confirmation(t, "Welcome. Say billing or support."));
        assert!(!is_confirmation(t, "Did you mean"));
        assert!(is_confirmation("I heard", "I heard billing"));
        assert!(!is_confirmation("I heard", "Billing. Say payments."));
    }
}
