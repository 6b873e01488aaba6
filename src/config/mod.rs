//! Server configuration (`hotline.toml`, see `hotline.example.toml`):
//! raw TOML → validated [`ServerConfig`], ripgrep style. [`raw`] reads the
//! text with the place of every value; one validator per section turns it
//! into the typed config; every mistake of the file is collected in
//! [`Problem`]s, each with `file:line:col` and, for a mistyped key, a
//! did-you-mean, and all of them are reported at once.
//!
//! Secrets (AMI secret, websocket password, stream token, Twilio auth token)
//! may come from the environment (`HOTLINE_AMI_SECRET`,
//! `HOTLINE_AUTH_PASSWORD`, `HOTLINE_AUTH_TOKEN`, `HOTLINE_TWILIO_AUTH_TOKEN`)
//! so they need not sit in a file; they are held as [`Secret`] and never
//! logged. Dialplans never carry credentials.
mod addr_range;
mod auth;
mod endpointing;
mod general;
mod listeners;
mod problems;
mod raw;
mod recognizer;
mod transfer;

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::pbx::ami::{AmiConfig, Secret};
use crate::pbx::esl::EslConfig;
use crate::pbx::transport::Transport;
use crate::pbx::webhook::WebhookConfig;

pub use addr_range::AddrRange;
pub use general::{General, DEFAULT_CALL_RECORDS};
pub use problems::Problem;

use problems::Problems;

pub const ENV_AMI_SECRET: &str = "HOTLINE_AMI_SECRET";
pub const ENV_AUTH_PASSWORD: &str = "HOTLINE_AUTH_PASSWORD";
pub const ENV_AUTH_TOKEN: &str = "HOTLINE_AUTH_TOKEN";
pub const ENV_TWILIO_AUTH_TOKEN: &str = "HOTLINE_TWILIO_AUTH_TOKEN";
/// Shorter shared secrets are refused: they could be guessed.
pub const MIN_TOKEN_CHARS: usize = 16;
pub const ENV_ESL_PASSWORD: &str = crate::pbx::esl::PASSWORD_ENV;

/// One more socket to accept calls on, besides the chan_websocket `listen`.
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    pub transport: Transport,
    pub listen: SocketAddr,
    /// Audio rate on the wire where the transport lets it vary.
    pub rate: Option<u32>,
    /// Source addresses allowed to connect; others are closed at once.
    /// AudioSocket carries no credentials, so its default is loopback only.
    pub allow: Vec<AddrRange>,
    /// The URL the PBX connects to as it knows it (Twilio: the `<Stream>`
    /// url, which Twilio signs); needed to check `X-Twilio-Signature`.
    pub public_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMethod {
    /// AMI `Redirect` of the caller leg (or `BlindTransfer` of our channel
    /// when the caller leg is unknown).
    Ami,
    /// No AMI: remember the target, hang up the websocket, and let the
    /// Asterisk dialplan after `Dial(...,g)` fetch it from
    /// `GET /transfer?uid=...` with `CURL()` (PROTOCOLS.md §1.9 method 4).
    Hangup,
}

#[derive(Debug, Clone)]
pub struct BasicAuth {
    pub username: String,
    pub password: Secret,
}

#[derive(Debug, Clone)]
pub struct TransferConfig {
    pub method: TransferMethod,
    /// Context used when a dialplan's transfer names none.
    pub default_context: String,
    /// How long a transfer may take before it counts as failed.
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The keys at the top of the file: the chan_websocket listener,
    /// dialplans, limits, and where records and files go.
    pub general: General,
    /// Listeners of the other transports (`[[listeners]]`).
    pub listeners: Vec<Listener>,
    /// FreeSWITCH event socket, needed by audio_fork / audio_stream listeners.
    pub esl: Option<EslConfig>,
    /// Where Twilio transfers are posted.
    pub webhook: Option<WebhookConfig>,
    pub transfer: TransferConfig,
    pub ami: Option<AmiConfig>,
    pub auth: Option<BasicAuth>,
    /// `[auth] token`: a shared secret a PBX that cannot send basic auth
    /// puts in its stream URL (`?token=`). Only with `[auth]`.
    pub auth_token: Option<Secret>,
    /// `[auth] twilio_auth_token`: the Twilio account's auth token, to
    /// check the `X-Twilio-Signature` of Twilio's stream requests.
    pub twilio_auth_token: Option<Secret>,
    pub recognizer_threads: usize,
    pub recognizer_queue: usize,
    /// Which Whisper model recognises the callers (`[recognizer] model`).
    pub recognizer_model: crate::asr::models::WhisperModelName,
    /// A stronger model for the answers the first is unsure of
    /// (`[recognizer] second_model, second_context_ms, second_accept`).
    pub second_pass: Option<crate::asr::SecondPassConfig>,
    /// How the grammar recogniser weighs and rejects menu options
    /// (`[recognizer] min_evidence, prior_correction`).
    pub grammar: crate::asr::whisper::GrammarOptions,
    /// When speech starts and when an utterance is over (`[endpointing]`).
    pub endpoint: crate::asr::EndpointConfig,
}

/// Looks up an environment variable (a parameter so tests need not touch
/// the process environment).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Everything wrong with a configuration, one problem per line (with its
/// help line under it, if any).
#[derive(Debug)]
pub struct ConfigError(pub Vec<Problem>);

impl std::error::Error for ConfigError {}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl ServerConfig {
    /// Defaults only (what `hotline serve` runs without a config file).
    pub fn defaults() -> ServerConfig {
        Self::from_toml_str("", None, &|_| None).expect("the empty configuration is valid")
    }

    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let file = path.display().to_string();
            ConfigError(vec![Problem { file, line: 0, col: 0, message: format!("cannot read: {e}"), help: None }])
        })?;
        Self::from_toml_str(&text, Some(path), &|k| std::env::var(k).ok())
    }

    /// Parses and validates: every problem of the text, or the config.
    /// `path` names the file in problems and is where relative paths start.
    pub fn from_toml_str(text: &str, path: Option<&Path>, env: Env) -> Result<ServerConfig, ConfigError> {
        let file = path.map_or_else(|| "config".to_string(), |p| p.display().to_string());
        let mut problems = Problems::new(file, text);
        let Some(raw) = raw::parse(text, &mut problems) else {
            return Err(ConfigError(problems.into_sorted()));
        };
        let base = path.and_then(Path::parent).unwrap_or(Path::new(""));
        let general = general::validate(&raw.general, base, &mut problems);
        let recognizer = recognizer::validate(&raw.recognizer, &mut problems);
        let endpoint = endpointing::validate(&raw.endpointing, &mut problems);
        let transfers = transfer::validate(&raw, env, &mut problems);
        let auth = auth::validate(raw.auth.as_ref(), env, &mut problems);
        let listeners_context = listeners::Context {
            main_listen: general.listen,
            has_event_socket: transfers.esl.is_some(),
            checks_twilio_signatures: auth.twilio_auth_token.is_some(),
        };
        let listeners = listeners::validate(&raw.listeners, &listeners_context, &mut problems);
        if !problems.is_empty() {
            return Err(ConfigError(problems.into_sorted()));
        }
        Ok(ServerConfig {
            general,
            listeners,
            esl: transfers.esl,
            webhook: transfers.webhook,
            transfer: transfers.transfer,
            ami: transfers.ami,
            auth: auth.basic,
            auth_token: auth.token,
            twilio_auth_token: auth.twilio_auth_token,
            recognizer_threads: recognizer.threads,
            recognizer_queue: recognizer.queue,
            recognizer_model: recognizer.model,
            second_pass: recognizer.second_pass,
            grammar: recognizer.grammar,
            endpoint,
        })
    }
}

#[cfg(test)]
mod tests;
