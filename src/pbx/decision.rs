//! The no-AMI ("hangup") transfer: the decision where the caller goes is
//! left here for the PBX's own dialplan, which fetches it from the server
//! (`GET /transfer`, `GET /decision`) once we hang up, and moves the caller
//! itself. Asterisk chan_websocket binds it to the dial string's
//! `decision_token`; AudioSocket to the UUID the dialplan made.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use tracing::info;

use super::ami::Secret;
use super::asterisk_ws::keys;
use super::transfer::{TransferControl, TransferFailed, TransferOrder, TransferStart};
use super::CallInfo;

/// Transfer targets waiting for the Asterisk dialplan to fetch them (no-AMI
/// method): key = caller leg uniqueid or our channel id. Each is bound to
/// the call's token (the dial string's `decision_token`; for AudioSocket the
/// UUID the dialplan made), so only that call's dialplan can fetch it: a
/// request with another token gets nothing and leaves it in place. Bounded
/// and short-lived: the dialplan asks right after the call hangs up.
pub struct Decisions {
    map: Mutex<HashMap<String, Decision>>,
}

#[derive(Clone)]
struct Decision {
    target: String,
    token: Secret,
    at: Instant,
}

/// The query parameter of the dial string (`v()`) and of the decision
/// request that carries the call's token.
pub const DECISION_TOKEN: &str = "decision_token";
pub const MAX_DECISIONS: usize = 1024;
pub const DECISION_TTL: Duration = Duration::from_secs(120);

impl Default for Decisions {
    fn default() -> Self {
        Decisions { map: Mutex::new(HashMap::new()) }
    }
}

impl Decisions {
    pub fn put(&self, keys: &[&str], token: &Secret, target: &str) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        m.retain(|_, d| now.duration_since(d.at) < DECISION_TTL);
        let decision = Decision { target: target.to_string(), token: token.clone(), at: now };
        for k in keys.iter().filter(|k| !k.is_empty()) {
            if m.len() >= MAX_DECISIONS {
                // Oldest out: a dialplan that never asks must not grow this.
                if let Some(oldest) = m.iter().min_by_key(|(_, d)| d.at).map(|(k, _)| k.clone()) {
                    m.remove(&oldest);
                }
            }
            m.insert(k.to_string(), decision.clone());
        }
    }

    /// The target for `key` if `token` is the call's, once (all keys of
    /// that decision are removed). A wrong token takes nothing.
    pub fn take(&self, key: &str, token: &str) -> Option<String> {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let d = m.get(key)?;
        if !bool::from(d.token.expose().as_bytes().ct_eq(token.as_bytes())) {
            return None;
        }
        let d = m.remove(key)?;
        m.retain(|_, other| !(other.at == d.at && other.target == d.target && other.token == d.token));
        (d.at.elapsed() < DECISION_TTL).then_some(d.target)
    }
}

/// The hangup method for one call: where its decision is kept and which
/// token fetches it.
pub struct HangupTransfer {
    decisions: Arc<Decisions>,
    /// Keys the PBX's dialplan may ask by (empty ones are skipped).
    keys: Vec<String>,
    /// The call's token, or why the call has none.
    token: Result<Secret, NoDecisionToken>,
    /// Who fetches the decision, for the log and the record.
    fetched_by: &'static str,
}

impl HangupTransfer {
    /// chan_websocket: bound to the token the dial string gave, so only this
    /// call's dialplan can fetch it; asked for by the caller leg's uniqueid
    /// or our channel id.
    pub fn by_decision_token(decisions: Arc<Decisions>, info: &CallInfo) -> Self {
        let var = |k: &str| info.variables.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let min = crate::config::MIN_TOKEN_CHARS;
        let token = var(keys::INFO_DECISION_TOKEN)
            .filter(|t| t.chars().count() >= min)
            .map(Secret::new)
            .ok_or(NoDecisionToken { min_chars: min });
        let keys = vec![var(keys::INFO_CALLER_UNIQUEID).unwrap_or_default(), info.call_id.clone()];
        HangupTransfer { decisions, keys, token, fetched_by: "the Asterisk dialplan" }
    }

    /// AudioSocket: the UUID, random and made by the dialplan, is both the
    /// key and the call's token.
    pub fn by_audiosocket_uuid(decisions: Arc<Decisions>, uuid: &str) -> Self {
        let token = Ok(Secret::new(uuid));
        HangupTransfer { decisions, keys: vec![uuid.to_string()], token, fetched_by: "the PBX dialplan" }
    }
}

/// A chan_websocket call whose dial string gave no usable token: its
/// transfer decision could not be bound to it, so none is made.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the dial string has no decision_token of {min_chars}+ characters to bind the decision to")]
pub struct NoDecisionToken {
    min_chars: usize,
}

impl TransferControl for HangupTransfer {
    fn start(&self, order: &TransferOrder) -> TransferStart {
        let token = match &self.token {
            Ok(t) => t,
            Err(missing) => return TransferStart::Refused(TransferFailed(missing.to_string())),
        };
        let (extension, context) = (&order.extension, order.context_or_default());
        let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        self.decisions.put(&keys, token, &format!("{context},{extension}"));
        info!(%extension, %context, "transfer handed to {} (hangup method)", self.fetched_by);
        TransferStart::HandedToDialplan { result: format!("handed to {}", self.fetched_by) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_taken_once_by_any_key_and_only_with_the_calls_token() {
        let d = Decisions::default();
        let token = Secret::new("f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
        d.put(&["1795449971.3", "1795449971.5"], &token, "agents,101");
        assert_eq!(d.take("1795449971.5", ""), None, "no token");
        assert_eq!(d.take("1795449971.5", "f81d4fae-7dec-11d0-a765-00a0c91e6bf7"), None, "wrong token");
        assert_eq!(
            d.take("1795449971.5", token.expose()).as_deref(),
            Some("agents,101"),
            "still there for the right one"
        );
        assert_eq!(d.take("1795449971.3", token.expose()), None, "handed out once");
        for i in 0..(MAX_DECISIONS + 10) {
            d.put(&[&i.to_string()], &token, "x,1");
        }
        assert!(d.map.lock().unwrap().len() <= MAX_DECISIONS);
    }
}
