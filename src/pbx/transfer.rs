//! Moving a caller to a human. Each PBX has its own way, and each way has
//! an implementation of [`TransferControl`] beside its client: AMI
//! `Redirect`/`BlindTransfer` (`ami/transfer.rs`), the FreeSWITCH event
//! socket's `uuid_transfer` (`esl.rs`), the Twilio webhook (`webhook.rs`)
//! and the no-AMI "hangup" method, a decision the PBX's dialplan fetches
//! after we hang up (`decision.rs`). [`for_call`] is the one table saying
//! which a call gets; the call session picks it once, when the call starts.
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::ami::AmiTransfer;
use super::asterisk_ws::keys;
use super::decision::{Decisions, HangupTransfer};
use super::esl::{CurrentClient, EslTransfer};
use super::transport::Transport;
use super::webhook::WebhookTransfer;
use super::CallInfo;
use crate::config::{ServerConfig, TransferMethod};

/// What the dialplan asked for: where the caller goes, and what was
/// collected from them (handed to the agent where the PBX can carry it).
#[derive(Debug, Clone, PartialEq)]
pub struct TransferOrder {
    pub extension: String,
    /// The context the dialplan names, if any.
    pub context: Option<String>,
    /// `[transfer] default_context`, for PBXs that need a context.
    pub default_context: String,
    pub variables: Vec<(String, String)>,
}

impl TransferOrder {
    /// The context to send the caller to: the dialplan's, else the default.
    pub fn context_or_default(&self) -> &str {
        self.context.as_deref().unwrap_or(&self.default_context)
    }
}

/// Why a transfer did not move the caller (the caller is still with us).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct TransferFailed(pub String);

/// The outcome of a transfer the PBX was asked for: the call record's
/// `transfer.result` (`ok` only when the caller was seen at the target, or
/// the PBX has no way to tell), or why it failed.
pub type TransferOutcome = Result<String, TransferFailed>;

/// How a transfer starts.
pub enum TransferStart {
    /// The PBX is being asked; `outcome` resolves (bounded) with its answer.
    Pending { method: &'static str, outcome: BoxFuture<'static, TransferOutcome> },
    /// The decision waits for the PBX's dialplan: hang up (after the
    /// "please hold" prompt) and the dialplan moves the caller. `result`
    /// goes into the call record.
    HandedToDialplan { result: String },
    /// Nothing could be asked of the PBX (not configured, the call lacks
    /// what the method needs); the reason is for the log and the record.
    Refused(TransferFailed),
}

/// One call's way of transferring its caller.
pub trait TransferControl: Send + Sync {
    fn start(&self, order: &TransferOrder) -> TransferStart;
}

/// No way to transfer this call; every attempt is refused with `reason`
/// (the call then plays the dialplan's apology and fallback).
pub struct Unavailable(pub &'static str);

impl TransferControl for Unavailable {
    fn start(&self, _order: &TransferOrder) -> TransferStart {
        TransferStart::Refused(TransferFailed(self.0.to_string()))
    }
}

/// What [`for_call`] may hand to a call's transfer control.
pub struct TransferTools<'a> {
    pub cfg: &'a ServerConfig,
    /// The server's event-socket connection, when a listener needs one.
    pub esl: Option<&'a CurrentClient>,
    /// Where hangup-method decisions wait for the PBX's dialplan.
    pub decisions: &'a Arc<Decisions>,
}

/// The transfer control for a call that started on `transport` with
/// `info`: the transfer policy of every transport, in one place.
pub fn for_call(transport: Transport, info: &CallInfo, tools: &TransferTools) -> Box<dyn TransferControl> {
    let cfg = tools.cfg;
    let timeout = cfg.transfer.timeout;
    let decisions = Arc::clone(tools.decisions);
    match (transport, &cfg.transfer.method, cfg.ami.clone()) {
        (Transport::Twilio, ..) => match cfg.webhook.clone() {
            Some(webhook) => Box::new(WebhookTransfer::new(webhook, &info.call_id)),
            None => Box::new(Unavailable("no [webhook] is configured for Twilio transfers")),
        },
        (Transport::AudioFork | Transport::AudioStream, ..) => match tools.esl {
            Some(esl) => Box::new(EslTransfer::new(esl.clone(), &info.call_id, timeout)),
            None => Box::new(Unavailable("the event socket is not configured")),
        },
        // AudioSocket carries no channel name: with AMI the channel is
        // found by the UUID variable and redirected; without, the Asterisk
        // dialplan after Dial(...,g) fetches the decision.
        (Transport::AudioSocket, TransferMethod::Ami, Some(ami)) => {
            Box::new(AmiTransfer::by_audiosocket_uuid(ami, &info.call_id, timeout))
        }
        (Transport::AudioSocket, ..) => Box::new(HangupTransfer::by_audiosocket_uuid(decisions, &info.call_id)),
        (Transport::AsteriskWs, TransferMethod::Ami, Some(ami)) => {
            let var = |k: &str| info.variables.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let caller = var(keys::INFO_CALLER_CHANNEL);
            let own = var(keys::INFO_WEBSOCKET_CHANNEL);
            Box::new(AmiTransfer::by_channel_names(ami, caller, own, timeout))
        }
        (Transport::AsteriskWs, TransferMethod::Ami, None) => Box::new(Unavailable("AMI is not configured")),
        (Transport::AsteriskWs, TransferMethod::Hangup, _) => {
            Box::new(HangupTransfer::by_decision_token(decisions, info))
        }
    }
}

/// Collected variables as they go to Asterisk: `HOTLINE_<NAME>`.
pub(crate) fn hotline_variables(variables: &[(String, String)]) -> Vec<(String, String)> {
    variables.iter().map(|(k, v)| (format!("HOTLINE_{}", k.to_ascii_uppercase()), v.clone())).collect()
}
