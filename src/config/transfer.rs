//! `[transfer]` and the channels transfers and prompts go through: `[ami]`
//! (Asterisk), `[esl]` (FreeSWITCH event socket), `[webhook]` (Twilio).
use std::net::SocketAddr;
use std::time::Duration;

use super::problems::Problems;
use super::raw::{RawAmi, RawConfig, RawEsl, RawWebhook};
use super::{Env, TransferConfig, TransferMethod, ENV_AMI_SECRET, ENV_ESL_PASSWORD};
use crate::pbx::ami::{AmiConfig, Secret};
use crate::pbx::esl::EslConfig;
use crate::pbx::webhook::WebhookConfig;

/// How long a control-channel request may take, where it is configurable.
const TIMEOUT_MS: std::ops::RangeInclusive<i64> = 100..=60_000;

pub(super) struct Transfers {
    pub transfer: TransferConfig,
    pub ami: Option<AmiConfig>,
    pub esl: Option<EslConfig>,
    pub webhook: Option<WebhookConfig>,
}

pub(super) fn validate(raw: &RawConfig, env: Env, problems: &mut Problems) -> Transfers {
    let t = &raw.transfer;
    // Without an [ami] section the only method that can work is the
    // no-AMI one, so it is the default then.
    let default_method = if raw.ami.is_some() { TransferMethod::Ami } else { TransferMethod::Hangup };
    let method = match &t.method {
        None => default_method,
        Some(m) => match m.value.as_str() {
            "ami" => TransferMethod::Ami,
            "hangup" => TransferMethod::Hangup,
            other => {
                // Checking goes on with the method that works without the
                // key, so the one mistake is not reported twice.
                problems.field(&m.span, "transfer.method", format!("{other:?} is not one of \"ami\", \"hangup\""));
                default_method
            }
        },
    };
    let default_context = t.default_context.as_ref().map_or("hotline-operators", |c| c.value.as_str()).to_string();
    if let Some(c) = &t.default_context {
        if c.value.is_empty() || c.value.contains([',', ' ', '\r', '\n']) {
            problems.field(
                &c.span,
                "transfer.default_context",
                format!("{:?} is not an Asterisk context name", c.value),
            );
        }
    }
    let timeout = problems.int_in("transfer.timeout_ms", &t.timeout_ms, 3_000, TIMEOUT_MS) as u64;
    let ami = raw.ami.as_ref().map(|a| ami(a, env, problems));
    if method == TransferMethod::Ami && ami.is_none() {
        let span = t.method.as_ref().map_or(&t.span, |m| &m.span);
        problems.field(
            span,
            "transfer.method",
            "is \"ami\" but there is no [ami] section (or use method = \"hangup\")",
        );
    }
    Transfers {
        transfer: TransferConfig { method, default_context, timeout: Duration::from_millis(timeout) },
        ami,
        esl: raw.esl.as_ref().map(|e| esl(e, env, problems)),
        webhook: raw.webhook.as_ref().and_then(|w| webhook(w, problems)),
    }
}

/// A secret from the environment when set there, else from the file.
fn secret(env: Env, var: &str, in_file: &Option<crate::dialplan::At<String>>) -> String {
    env(var).filter(|s| !s.is_empty()).or_else(|| in_file.as_ref().map(|s| s.value.clone())).unwrap_or_default()
}

fn ami(a: &RawAmi, env: Env, problems: &mut Problems) -> AmiConfig {
    let port = match &a.port {
        None => 5038,
        Some(p) if (1..=65535).contains(&p.value) => p.value as u16,
        Some(p) => {
            problems.field(&p.span, "ami.port", format!("{} is not a TCP port", p.value));
            5038
        }
    };
    let username = a.username.as_ref().map(|u| u.value.clone()).unwrap_or_default();
    if username.is_empty() {
        let span = a.username.as_ref().map_or(&a.span, |u| &u.span);
        problems.field(span, "ami.username", "is required when [ami] is configured");
    }
    let secret = secret(env, ENV_AMI_SECRET, &a.secret);
    if secret.is_empty() {
        let span = a.secret.as_ref().map_or(&a.span, |s| &s.span);
        problems.field(span, "ami.secret", format!("is required (or set {ENV_AMI_SECRET})"));
    }
    let timeout = problems.int_in("ami.timeout_ms", &a.timeout_ms, 3_000, TIMEOUT_MS) as u64;
    AmiConfig {
        host: a.host.as_ref().map_or("127.0.0.1", |h| h.value.as_str()).to_string(),
        port,
        username,
        secret: Secret::new(secret),
        timeout: Duration::from_millis(timeout),
    }
}

fn esl(e: &RawEsl, env: Env, problems: &mut Problems) -> EslConfig {
    let address = e.address.as_ref().map_or("127.0.0.1:8021", |a| a.value.as_str()).to_string();
    if let Some(a) = &e.address {
        // A host name is fine too; only something with no port is refused.
        if a.value.parse::<SocketAddr>().is_err() && !a.value.contains(':') {
            problems.field(&a.span, "esl.address", format!("{:?} is not host:port like 127.0.0.1:8021", a.value));
        }
    }
    let password = secret(env, ENV_ESL_PASSWORD, &e.password);
    if password.is_empty() {
        let span = e.password.as_ref().map_or(&e.span, |p| &p.span);
        problems.field(span, "esl.password", format!("is required (or set {ENV_ESL_PASSWORD})"));
    }
    let mut config = EslConfig::new(address, password);
    if e.timeout_ms.is_some() {
        let default = config.timeout.as_millis() as i64;
        config.timeout =
            Duration::from_millis(problems.int_in("esl.timeout_ms", &e.timeout_ms, default, TIMEOUT_MS) as u64);
    }
    config
}

fn webhook(w: &RawWebhook, problems: &mut Problems) -> Option<WebhookConfig> {
    let Some(url) = &w.url else {
        problems.field(&w.span, "webhook.url", "is required when [webhook] is configured");
        return None;
    };
    let mut config = WebhookConfig::new(&url.value).map_err(|e| problems.field(&url.span, "webhook.url", e)).ok()?;
    if w.timeout_ms.is_some() {
        let default = config.timeout.as_millis() as i64;
        config.timeout =
            Duration::from_millis(problems.int_in("webhook.timeout_ms", &w.timeout_ms, default, TIMEOUT_MS) as u64);
    }
    Some(config)
}
