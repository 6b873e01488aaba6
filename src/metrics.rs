//! Prometheus metrics: `GET /metrics` on the server's HTTP port.
//!
//! Everything is recorded through the `metrics` facade and exposed by
//! `metrics-exporter-prometheus`; this module names each metric once,
//! describes it (the `# HELP` line) and offers one small function per
//! thing that happens, so callers cannot misspell a name or a label.
//!
//! Label values are bounded: transports and outcomes are closed sets, and
//! dialplan, menu and intent names come from the dialplans in service,
//! never from what a caller said. Per-call figures are derived from the
//! call machine's events by the server's call observer, not counted
//! inside the call machine.
use std::sync::OnceLock;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Prometheus' text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub const CALLS_ACTIVE: &str = "hotline_calls_active";
pub const CALLS_FINISHED: &str = "hotline_calls_finished_total";
pub const UTTERANCES: &str = "hotline_utterances_total";
pub const INTENTS: &str = "hotline_intents_total";
pub const NO_MATCH: &str = "hotline_no_match_total";
pub const NO_INPUT: &str = "hotline_no_input_total";
pub const CONFIRMATIONS: &str = "hotline_confirmations_total";
pub const SPEECH_TO_ACTION: &str = "hotline_speech_to_action_seconds";
pub const RECOGNITION: &str = "hotline_recognition_seconds";
pub const RECOGNIZER_QUEUE: &str = "hotline_recognizer_queue_depth";
pub const RECOGNIZER_OVERLOADED: &str = "hotline_recognizer_overloaded_total";
pub const VAD_FAILURES: &str = "hotline_vad_failures_total";
pub const VAD_BATCH: &str = "hotline_vad_batch_windows";
pub const PROMPT_CACHE_HITS: &str = "hotline_prompt_cache_hits_total";
pub const PROMPT_CACHE_MISSES: &str = "hotline_prompt_cache_misses_total";
pub const DIALPLAN_RELOADS: &str = "hotline_dialplan_reloads_total";
pub const CONNECTIONS_REFUSED: &str = "hotline_connections_refused_total";
pub const RECORDS_WRITTEN: &str = "hotline_call_records_written_total";
pub const RECORDS_LOST: &str = "hotline_call_records_lost_total";

/// Latency buckets (seconds): the interesting range is 0.1–1 s, where a
/// caller starts to notice the wait.
const LATENCY_BUCKETS: &[f64] = &[0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls return
/// the same handle). `None` when another recorder was installed first:
/// `/metrics` then says so instead of answering with nothing.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

/// The exposition text, or `None` without a recorder.
pub fn render() -> Option<String> {
    let handle = HANDLE.get()?.as_ref()?;
    handle.run_upkeep();
    Some(handle.render())
}

fn describe() {
    describe_gauge!(CALLS_ACTIVE, "Calls in progress, by transport and dialplan");
    describe_counter!(
        CALLS_FINISHED,
        "Calls finished, by transport, dialplan and outcome (completed, transferred with reason asked / escalated / dialplan, transfer_failed, caller_hung_up, error)"
    );
    describe_counter!(UTTERANCES, "Caller utterances recognised, by dialplan");
    describe_counter!(INTENTS, "Intents acted on, by dialplan, menu, intent and source (speech, dtmf)");
    describe_counter!(NO_MATCH, "Answers that matched nothing, by dialplan and menu");
    describe_counter!(NO_INPUT, "Questions the caller did not answer in time, by dialplan and menu");
    describe_counter!(CONFIRMATIONS, "\"Did you mean ...?\" questions asked, by dialplan and menu");
    describe_histogram!(SPEECH_TO_ACTION, Unit::Seconds, "End of the caller's speech to the intent acted on");
    describe_histogram!(RECOGNITION, Unit::Seconds, "Time the recogniser spent on one utterance");
    describe_gauge!(RECOGNIZER_QUEUE, "Utterances waiting for a recognition thread");
    describe_counter!(RECOGNIZER_OVERLOADED, "Utterances refused because the recogniser queue was full");
    describe_counter!(VAD_FAILURES, "Calls whose voice detector failed (switched to keys)");
    describe_histogram!(VAD_BATCH, "Windows the voice detector scored in one run of its network (all calls)");
    describe_counter!(PROMPT_CACHE_HITS, "Text prompts found rendered in the prompt cache");
    describe_counter!(PROMPT_CACHE_MISSES, "Text prompts that had to be synthesized");
    describe_counter!(DIALPLAN_RELOADS, "Dialplan files read, by result (accepted, refused)");
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections refused, by reason (max_calls, draining, auth, not_allowed, handshakes)"
    );
    describe_counter!(RECORDS_WRITTEN, "Call records stored");
    describe_counter!(RECORDS_LOST, "Call records lost, by reason (store_failed, queue_full)");
}

pub fn call_started(transport: &str, dialplan: &str) {
    gauge!(CALLS_ACTIVE, "transport" => transport.to_string(), "dialplan" => dialplan.to_string()).increment(1.0);
}

pub fn call_ended(transport: &str, dialplan: &str) {
    gauge!(CALLS_ACTIVE, "transport" => transport.to_string(), "dialplan" => dialplan.to_string()).decrement(1.0);
}

/// `reason` only for transferred calls (asked, escalated, dialplan).
pub fn call_finished(transport: &str, dialplan: &str, outcome: &'static str, reason: Option<&'static str>) {
    let (t, d) = (transport.to_string(), dialplan.to_string());
    match reason {
        Some(r) => counter!(CALLS_FINISHED, "transport" => t, "dialplan" => d, "outcome" => outcome, "reason" => r)
            .increment(1),
        None => counter!(CALLS_FINISHED, "transport" => t, "dialplan" => d, "outcome" => outcome).increment(1),
    }
}

pub fn utterance(dialplan: &str) {
    counter!(UTTERANCES, "dialplan" => dialplan.to_string()).increment(1);
}

pub fn intent(dialplan: &str, menu: &str, intent: &str, source: &'static str) {
    counter!(INTENTS, "dialplan" => dialplan.to_string(), "menu" => menu.to_string(), "intent" => intent.to_string(), "source" => source)
        .increment(1);
}

pub fn no_match(dialplan: &str, menu: &str) {
    counter!(NO_MATCH, "dialplan" => dialplan.to_string(), "menu" => menu.to_string()).increment(1);
}

pub fn no_input(dialplan: &str, menu: &str) {
    counter!(NO_INPUT, "dialplan" => dialplan.to_string(), "menu" => menu.to_string()).increment(1);
}

pub fn confirmation(dialplan: &str, menu: &str) {
    counter!(CONFIRMATIONS, "dialplan" => dialplan.to_string(), "menu" => menu.to_string()).increment(1);
}

pub fn speech_to_action_ms(ms: u64) {
    histogram!(SPEECH_TO_ACTION).record(ms as f64 / 1000.0);
}

pub fn recognition_ms(ms: u64) {
    histogram!(RECOGNITION).record(ms as f64 / 1000.0);
}

pub fn recognizer_queue(depth: usize) {
    gauge!(RECOGNIZER_QUEUE).set(depth as f64);
}

pub fn recognizer_overloaded() {
    counter!(RECOGNIZER_OVERLOADED).increment(1);
}

pub fn vad_failure() {
    counter!(VAD_FAILURES).increment(1);
}

pub fn vad_batch(windows: usize) {
    histogram!(VAD_BATCH).record(windows as f64);
}

pub fn prompt_cache(hit: bool) {
    counter!(if hit { PROMPT_CACHE_HITS } else { PROMPT_CACHE_MISSES }).increment(1);
}

pub fn dialplan_reload(accepted: bool) {
    counter!(DIALPLAN_RELOADS, "result" => if accepted { "accepted" } else { "refused" }).increment(1);
}

/// `reason`: max_calls, draining, auth, not_allowed, handshakes.
pub fn connection_refused(reason: &'static str) {
    counter!(CONNECTIONS_REFUSED, "reason" => reason).increment(1);
}

pub fn record_written() {
    counter!(RECORDS_WRITTEN).increment(1);
}

/// `reason`: store_failed, queue_full.
pub fn record_lost(reason: &'static str) {
    counter!(RECORDS_LOST, "reason" => reason).increment(1);
}
