//! A call's transfer from the session's side: asking the call's
//! [`TransferControl`] (chosen when the call started), writing the outcome
//! into the call record, and the bounded wait for it when the PBX closes
//! the connection first.
use std::time::Duration;

use tracing::{info, warn, Instrument};

use super::{End, Internal, Session};
use crate::call::Input;
use crate::dialplan::Transfer;
use crate::pbx::transfer::{TransferFailed, TransferOrder, TransferOutcome, TransferStart};
use crate::records::TransferRecord;

impl Session {
    /// Asks the call's transfer control to move the caller; a transfer
    /// under way reports back as [`Internal::TransferDone`].
    pub(super) fn start_transfer(&mut self, target: Transfer, variables: Vec<(String, String)>) -> Option<End> {
        let order = TransferOrder {
            extension: target.extension.clone(),
            context: target.context.clone(),
            default_context: self.shared.cfg.transfer.default_context.clone(),
            variables,
        };
        self.transfer_pending = Some(target);
        match self.call.transfer.start(&order) {
            TransferStart::Pending { method, outcome } => {
                let tx = self.internal_tx.clone();
                let report = async move {
                    let result = outcome.await;
                    let _ = tx.send(Internal::TransferDone { method: method.to_string(), result }).await;
                };
                tokio::spawn(report.instrument(tracing::Span::current()));
            }
            TransferStart::HandedToDialplan { result } => {
                let context = order.context_or_default().to_string();
                let method = "hangup".to_string();
                self.record.transfer = Some(TransferRecord { extension: order.extension, context, method, result });
                self.transfer_pending = None;
                // Let the "please hold" prompt finish before hanging up.
                return self.hang_up_after_playback("transferred (hangup method)".into());
            }
            TransferStart::Refused(TransferFailed(reason)) => self.feed(Input::TransferFailed { reason }),
        }
        None
    }

    /// Hangs up now, or once the prompt playing is over.
    pub(super) fn hang_up_after_playback(&mut self, reason: String) -> Option<End> {
        if self.call.playback.is_idle() {
            return Some(End::HangUp(reason));
        }
        self.hangup_after_playback = Some(reason);
        None
    }

    /// Writes a transfer's outcome into the record. Ok when the PBX took
    /// the caller (whatever the landing); Err with the reason otherwise.
    pub(super) fn record_transfer(&mut self, method: String, result: TransferOutcome) -> Result<(), TransferFailed> {
        let target = self.transfer_pending.take();
        let (extension, context) = target
            .map(|t| (t.extension, t.context.unwrap_or_else(|| self.shared.cfg.transfer.default_context.clone())))
            .unwrap_or_default();
        let (outcome, text) = match result {
            Ok(text) => {
                if text == "ok" {
                    info!(%extension, %context, %method, "transfer succeeded");
                } else {
                    warn!(%extension, %context, %method, "transfer accepted, but the caller was not seen at the target: {text}");
                }
                self.transferred = true;
                (Ok(()), text)
            }
            Err(TransferFailed(reason)) => {
                warn!(%extension, %context, %method, "transfer failed: {reason}");
                (Err(TransferFailed(reason.clone())), reason)
            }
        };
        self.record.transfer = Some(TransferRecord { extension, context, method, result: text });
        outcome
    }

    /// The PBX closed while a transfer was under way: waits (bounded) for
    /// its outcome so the record says what became of the caller. Returns
    /// the hangup cause when the caller was transferred.
    pub(super) async fn await_transfer_outcome(&mut self) -> Option<String> {
        self.transfer_pending.as_ref()?;
        let deadline = tokio::time::Instant::now() + self.transfer_wait();
        loop {
            match tokio::time::timeout_at(deadline, self.internal_rx.recv()).await {
                Ok(Some(Internal::TransferDone { method, result })) => {
                    let _ = self.record_transfer(method, result);
                    return self.is_transferred().then(|| "transferred".to_string());
                }
                Ok(Some(_)) => continue, // renders and recognitions no longer matter
                Ok(None) | Err(_) => {
                    let reason = "no outcome of the transfer before the connection closed".to_string();
                    let _ = self.record_transfer("unknown".into(), Err(TransferFailed(reason)));
                    return None;
                }
            }
        }
    }

    /// The hangup cause when the PBX closed: "transferred" once the caller
    /// was seen at the transfer target, else the PBX's reason.
    pub(super) fn closed_cause(&self, reason: String) -> String {
        if self.is_transferred() {
            "transferred".into()
        } else {
            reason
        }
    }

    /// The caller left us for the transfer target and was seen arriving
    /// (or the PBX has no way to tell, as with FreeSWITCH and Twilio).
    pub(super) fn is_transferred(&self) -> bool {
        self.transferred && self.record.transfer.as_ref().is_some_and(|t| t.result == "ok")
    }

    /// Longest a transfer task can take: its actions, watching the caller
    /// land, and a last AMI step (logoff), plus a margin.
    pub(super) fn transfer_wait(&self) -> Duration {
        let cfg = &self.shared.cfg;
        let step = cfg.ami.as_ref().map_or(Duration::ZERO, |a| a.timeout);
        cfg.transfer.timeout + crate::pbx::ami::LANDING_WAIT + step + Duration::from_secs(1)
    }
}
