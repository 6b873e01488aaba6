//! Do the dialplans' transfer targets exist in Asterisk? Asterisk accepts
//! an AMI `Redirect` to a context or extension that does not exist, then
//! hangs the caller up, so a typo in a dialplan (or an Asterisk without
//! the contexts) drops every caller sent there. hotline asks Asterisk
//! (`ShowDialPlan`) for every target: `hotline check --asterisk`, and the
//! server at start-up and after each dialplan reload (a warning; serving
//! goes on).
use std::path::PathBuf;

use crate::dialplan::Dialplan;
use crate::pbx::ami::{check_targets, AmiConfig, AmiError, TargetStatus};

/// A transfer target Asterisk does not have.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingTarget {
    pub file: PathBuf,
    /// Where the dialplan names it (`menus.billing.options.pay_bill`).
    pub option: String,
    pub context: String,
    pub extension: String,
    /// Asterisk's answer, e.g. `Did not find context billing-queue`.
    pub reason: String,
}

impl std::fmt::Display for MissingTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: transfer target {},{} does not exist in Asterisk ({}); callers sent there would be hung up",
            self.file.display(),
            self.option,
            self.context,
            self.extension,
            self.reason
        )
    }
}

/// The outcome of checking some dialplans against Asterisk.
#[derive(Debug, Default)]
pub struct TargetReport {
    /// Distinct context,extension pairs asked about.
    pub checked: usize,
    pub missing: Vec<MissingTarget>,
}

/// Asks Asterisk about every transfer target of `plans` (a target without
/// a context goes to `default_context`), each distinct one once, in one
/// AMI session.
pub async fn check_dialplans(
    ami: &AmiConfig,
    default_context: &str,
    plans: &[&Dialplan],
) -> Result<TargetReport, AmiError> {
    let mut uses = Vec::new();
    for plan in plans {
        for u in plan.transfer_uses() {
            let context = u.target.context.clone().unwrap_or_else(|| default_context.to_string());
            uses.push((plan.source.clone(), u.option, context, u.target.extension));
        }
    }
    let mut distinct: Vec<(String, String)> = uses.iter().map(|(_, _, c, e)| (c.clone(), e.clone())).collect();
    distinct.sort();
    distinct.dedup();
    let answers = check_targets(ami, &distinct).await?;
    let missing = uses
        .into_iter()
        .filter_map(|(file, option, context, extension)| {
            let i = distinct.binary_search(&(context.clone(), extension.clone())).ok()?;
            match &answers[i] {
                TargetStatus::Exists => None,
                TargetStatus::Missing(reason) => {
                    Some(MissingTarget { file, option, context, extension, reason: reason.clone() })
                }
            }
        })
        .collect();
    Ok(TargetReport { checked: distinct.len(), missing })
}
