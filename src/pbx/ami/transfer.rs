//! A transfer over AMI: move the caller (`Redirect`, `BlindTransfer`),
//! then watch where it lands, in one short session; and [`AmiTransfer`],
//! the [`TransferControl`] of Asterisk calls when AMI is configured.
use std::time::Duration;

use futures_util::FutureExt;
use tracing::info;

use super::{AmiAction, AmiConfig, AmiError, AmiMessage, AmiSession, LANDING_WAIT};
use crate::pbx::transfer::{hotline_variables, TransferControl, TransferFailed, TransferOrder, TransferStart};

/// Where a transferred caller went, from the AMI events after the transfer.
#[derive(Debug, Clone, PartialEq)]
pub enum Landing {
    /// `Newexten` of the caller's channel at the target context and
    /// extension: it runs the target's dialplan.
    Arrived,
    /// `Newexten` in the target context at another extension: `i` (the
    /// target extension does not exist there, the context's invalid
    /// handler runs) or `e`.
    Elsewhere { context: String, exten: String },
    /// `Hangup` of the caller's channel before it reached the target, e.g.
    /// "sent to invalid extension but no invalid handler".
    HungUp { cause: String },
    /// Nothing about the caller within [`LANDING_WAIT`] (or the AMI user may
    /// not read `call,dialplan` events).
    Unconfirmed,
}

impl Landing {
    /// The call record's `transfer.result`: `ok` only when the caller was
    /// seen at the target.
    pub fn result_text(&self) -> String {
        match self {
            Landing::Arrived => "ok".into(),
            Landing::Elsewhere { context, exten } => {
                format!("landed elsewhere: the caller went to {context},{exten} instead (the target extension does not exist)")
            }
            Landing::HungUp { cause } => {
                format!("hung up: the caller was hung up before reaching the target ({cause})")
            }
            Landing::Unconfirmed => format!(
                "unconfirmed: Asterisk accepted the transfer but did not show the caller at the target within {} ms \
                 (needs manager.conf read = call,dialplan)",
                LANDING_WAIT.as_millis()
            ),
        }
    }
}

/// What `event` says about `channel` reaching `context`,`exten` (None: nothing).
pub fn landing_of(event: &AmiMessage, channel: &str, context: &str, exten: &str) -> Option<Landing> {
    if event.get("Channel") != Some(channel) {
        return None;
    }
    let name = event.get("Event")?;
    if name.eq_ignore_ascii_case("Newexten") {
        let (at_context, at_exten) = (event.get("Context")?, event.get("Exten")?);
        if at_context != context {
            return None;
        }
        return Some(if at_exten == exten {
            Landing::Arrived
        } else {
            Landing::Elsewhere { context: at_context.to_string(), exten: at_exten.to_string() }
        });
    }
    if name.eq_ignore_ascii_case("Hangup") {
        let cause = match (event.get("Cause"), event.get("Cause-txt")) {
            (Some(c), Some(t)) => format!("cause {c}: {t}"),
            (Some(c), None) => format!("cause {c}"),
            _ => "no cause given".to_string(),
        };
        return Some(Landing::HungUp { cause });
    }
    None
}

/// Which channel a transfer moves.
#[derive(Debug, Clone, PartialEq)]
pub enum TransferLeg {
    /// The caller leg running `Dial` (chan_websocket's `CALLER_CHANNEL`): `Redirect`.
    Caller(String),
    /// hotline's own channel, when the caller leg is unknown: `BlindTransfer` moves its peer.
    Own(String),
    /// The channel carrying this variable with this value (AudioSocket's
    /// `AS_ID`), found by `Status`, then `Redirect`.
    ByVariable { name: String, value: String },
}

/// One transfer over AMI: the leg, the target, and the variables to set
/// on the moved channel first (names as they go to Asterisk).
#[derive(Debug, Clone)]
pub struct TransferRequest {
    pub leg: TransferLeg,
    pub context: String,
    pub exten: String,
    pub variables: Vec<(String, String)>,
}

/// A transfer Asterisk accepted, and where the caller went.
#[derive(Debug, Clone, PartialEq)]
pub struct Transferred {
    /// The channel moved (None when a BlindTransfer never said which).
    pub channel: Option<String>,
    pub landing: Landing,
}

/// Runs one transfer in one session: find the channel where needed, set
/// the variables, turn events on, move the caller, and watch it arrive.
/// An error means Asterisk refused or never answered (the caller is still
/// with us); once it accepted, the result is a [`Transferred`] whatever
/// became of the caller. The actions must be done by `deadline`; watching
/// the landing takes up to [`LANDING_WAIT`] more.
pub async fn transfer(
    cfg: &AmiConfig,
    req: &TransferRequest,
    deadline: tokio::time::Instant,
) -> Result<Transferred, AmiError> {
    let timed_out = || AmiError::Timeout { what: "the transfer".into(), ms: cfg.timeout.as_millis() };
    let mut session = tokio::time::timeout_at(deadline, AmiSession::connect(cfg)).await.map_err(|_| timed_out())??;
    let result = async {
        let moved =
            tokio::time::timeout_at(deadline, move_caller(&mut session, req)).await.map_err(|_| timed_out())??;
        let watch_until = tokio::time::Instant::now() + LANDING_WAIT;
        let channel = match (moved, &req.leg) {
            (Some(c), _) => Some(c),
            (None, TransferLeg::Own(own)) => session.wait_blind_transferee(own, watch_until).await?,
            (None, _) => None,
        };
        let landing = match &channel {
            Some(c) => session.wait_landing(c, &req.context, &req.exten, watch_until).await?,
            None => Landing::Unconfirmed,
        };
        Ok(Transferred { channel, landing })
    }
    .await;
    // Logging off is a courtesy; the caller's fate is already known.
    let _ = tokio::time::timeout(cfg.timeout, session.logoff()).await;
    result
}

/// The actions of a transfer; returns the channel moved when known
/// (a BlindTransfer's peer is learnt from its event afterwards).
async fn move_caller(session: &mut AmiSession, req: &TransferRequest) -> Result<Option<String>, AmiError> {
    let channel = match &req.leg {
        TransferLeg::Caller(c) => Some(c.clone()),
        TransferLeg::Own(_) => None,
        TransferLeg::ByVariable { name, value } => {
            Some(session.find_channel_by_variable(name, value).await?.ok_or_else(|| AmiError::ActionFailed {
                action: "Status".into(),
                message: format!("no channel has {name}={value} (set it in the dialplan before AudioSocket)"),
            })?)
        }
    };
    if let Some(c) = &channel {
        for (k, v) in &req.variables {
            session.run(&AmiAction::setvar(c, k, v)).await?;
        }
    }
    // Not fatal: without events the transfer still happens, unconfirmed.
    if let Err(e) = session.watch_transfer_events().await {
        tracing::warn!("AMI events for confirming the transfer refused: {e}");
    }
    let action = match (&req.leg, &channel) {
        (TransferLeg::Own(own), _) => AmiAction::blind_transfer(own, &req.context, &req.exten),
        (_, Some(c)) => AmiAction::redirect(c, &req.context, &req.exten),
        (_, None) => return Err(AmiError::Protocol("no channel to redirect".into())),
    };
    session.run(&action).await?;
    Ok(channel)
}

/// The AMI transfer of one Asterisk call: which leg it moves is known
/// when the call starts.
pub struct AmiTransfer {
    config: AmiConfig,
    /// None: the call has no channel name to transfer.
    leg: Option<TransferLeg>,
    /// For the actions; watching the landing takes up to [`LANDING_WAIT`] more.
    timeout: Duration,
}

impl AmiTransfer {
    /// chan_websocket: `Redirect` of the caller leg when the dial string
    /// named it, else `BlindTransfer` of our own channel.
    pub fn by_channel_names(config: AmiConfig, caller: Option<String>, own: Option<String>, timeout: Duration) -> Self {
        let leg = match (caller, own) {
            (Some(c), _) => Some(TransferLeg::Caller(c)),
            (None, Some(w)) => Some(TransferLeg::Own(w)),
            (None, None) => None,
        };
        AmiTransfer { config, leg, timeout }
    }

    /// AudioSocket: `Status` finds the caller's channel whose `AS_ID` is
    /// this call's UUID, then `Redirect`. Asterisk then closes the
    /// AudioSocket connection.
    pub fn by_audiosocket_uuid(config: AmiConfig, uuid: &str, timeout: Duration) -> Self {
        let name = crate::pbx::audiosocket::CHANNEL_ID_VARIABLE.to_string();
        AmiTransfer { config, leg: Some(TransferLeg::ByVariable { name, value: uuid.to_string() }), timeout }
    }
}

impl TransferControl for AmiTransfer {
    fn start(&self, order: &TransferOrder) -> TransferStart {
        let Some(leg) = self.leg.clone() else {
            return TransferStart::Refused(TransferFailed("the call has no channel name to transfer".into()));
        };
        let (context, extension) = (order.context_or_default().to_string(), order.extension.clone());
        let method = match &leg {
            TransferLeg::Own(_) => "ami-blind-transfer",
            TransferLeg::Caller(_) | TransferLeg::ByVariable { .. } => "ami-redirect",
        };
        match &leg {
            TransferLeg::Caller(channel) | TransferLeg::Own(channel) => {
                info!(%extension, %context, method, %channel, "transferring")
            }
            TransferLeg::ByVariable { name, value } => {
                info!(%extension, %context, uuid = %value, "transferring: AMI Status by {name}, then Redirect")
            }
        }
        // Collected variables go along on the caller leg (HOTLINE_<NAME>),
        // for the agent's screen or the Asterisk dialplan; a BlindTransfer
        // does not know that leg.
        let variables = match &leg {
            TransferLeg::Own(_) => Vec::new(),
            _ => hotline_variables(&order.variables),
        };
        let req = TransferRequest { leg, context, exten: extension, variables };
        let (config, timeout) = (self.config.clone(), self.timeout);
        let outcome = async move {
            let deadline = tokio::time::Instant::now() + timeout;
            match transfer(&config, &req, deadline).await {
                Ok(done) => {
                    let channel = done.channel.as_deref().unwrap_or("?");
                    info!(channel, landing = ?done.landing, "AMI transfer accepted");
                    Ok(done.landing.result_text())
                }
                Err(AmiError::Timeout { .. }) => {
                    Err(TransferFailed(format!("no answer from AMI within {} ms", timeout.as_millis())))
                }
                Err(e) => Err(TransferFailed(e.to_string())),
            }
        };
        TransferStart::Pending { method, outcome: outcome.boxed() }
    }
}
