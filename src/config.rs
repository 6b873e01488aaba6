//! Server configuration (`hotline.toml`, see `hotline.example.toml`):
//! raw TOML → validated [`ServerConfig`], every problem named by its field.
//!
//! Secrets (AMI secret, websocket password, stream token, Twilio auth token)
//! may come from the environment (`HOTLINE_AMI_SECRET`,
//! `HOTLINE_AUTH_PASSWORD`, `HOTLINE_AUTH_TOKEN`, `HOTLINE_TWILIO_AUTH_TOKEN`)
//! so they need not sit in a file; they are held as [`Secret`] and never
//! logged. Dialplans never carry credentials.
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::pbx::ami::{AmiConfig, Secret};
use crate::pbx::esl::EslConfig;
use crate::pbx::transport::Transport;
use crate::pbx::webhook::WebhookConfig;

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

/// An address or network (`10.0.0.0/24`, `::1`) in an allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrRange {
    pub net: IpAddr,
    pub prefix: u8,
}

impl AddrRange {
    pub const LOOPBACK_V4: AddrRange = AddrRange { net: IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 0)), prefix: 8 };
    pub const LOOPBACK_V6: AddrRange = AddrRange { net: IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), prefix: 128 };
    pub const ANY_V4: AddrRange = AddrRange { net: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), prefix: 0 };
    pub const ANY_V6: AddrRange = AddrRange { net: IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), prefix: 0 };

    /// Whether `ip` is in the range (an IPv4 peer on an IPv6 socket counts
    /// as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_matches(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_matches(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_matches(net: &[u8], ip: &[u8], prefix: u8) -> bool {
    let (whole, rest) = ((prefix / 8) as usize, prefix % 8);
    if net[..whole] != ip[..whole] {
        return false;
    }
    rest == 0 || (net[whole] ^ ip[whole]) & (0xffu8 << (8 - rest)) == 0
}

impl std::str::FromStr for AddrRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not an address or network like 10.0.0.20 or 10.0.0.0/24");
        let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let net: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
        };
        Ok(AddrRange { net, prefix })
    }
}

impl fmt::Display for AddrRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
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
    /// The chan_websocket listener, always present.
    pub listen: SocketAddr,
    /// Listeners of the other transports (`[[listeners]]`).
    pub listeners: Vec<Listener>,
    /// FreeSWITCH event socket, needed by audio_fork / audio_stream listeners.
    pub esl: Option<EslConfig>,
    /// Where Twilio transfers are posted.
    pub webhook: Option<WebhookConfig>,
    pub dialplan_dir: PathBuf,
    /// Dialplan for calls whose dial string names none.
    pub default_dialplan: String,
    pub max_calls: usize,
    /// How far ahead of real time prompt audio may be queued in Asterisk
    /// (its queue holds 18 s before XOFF).
    pub playback_lead: Duration,
    pub max_call_duration: Duration,
    pub shutdown_grace: Duration,
    pub reload_interval: Duration,
    pub transfer: TransferConfig,
    pub ami: Option<AmiConfig>,
    pub auth: Option<BasicAuth>,
    /// `[auth] token`: a shared secret a PBX that cannot send basic auth
    /// puts in its stream URL (`?token=`). Only with `[auth]`.
    pub auth_token: Option<Secret>,
    /// `[auth] twilio_auth_token`: the Twilio account's auth token, to
    /// check the `X-Twilio-Signature` of Twilio's stream requests.
    pub twilio_auth_token: Option<Secret>,
    /// Where call records are stored: SQLite (`calls.db`, the default), or
    /// JSON lines when the path ends in `.jsonl`; `None` when the config
    /// says `call_records = ""` (no records).
    pub call_records: Option<PathBuf>,
    /// `records_keep_days`: calls older than this are deleted from the
    /// SQLite store (hourly); `None` keeps every record.
    pub records_keep_days: Option<u32>,
    /// Keep each call's caller audio as a WAV here (off when None).
    pub keep_audio_dir: Option<PathBuf>,
    pub prompt_cache_dir: PathBuf,
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

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    listen: Option<String>,
    dialplan_dir: Option<PathBuf>,
    default_dialplan: Option<String>,
    max_calls: Option<i64>,
    playback_lead_ms: Option<i64>,
    max_call_secs: Option<i64>,
    shutdown_grace_secs: Option<i64>,
    reload_interval_ms: Option<i64>,
    call_records: Option<PathBuf>,
    records_keep_days: Option<i64>,
    keep_audio_dir: Option<PathBuf>,
    prompt_cache_dir: Option<PathBuf>,
    #[serde(default)]
    transfer: RawTransfer,
    ami: Option<RawAmi>,
    auth: Option<RawAuth>,
    #[serde(default)]
    recognizer: RawRecognizer,
    #[serde(default)]
    endpointing: RawEndpointing,
    #[serde(default)]
    listeners: Vec<RawListener>,
    esl: Option<RawEsl>,
    webhook: Option<RawWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    transport: Option<String>,
    listen: Option<String>,
    rate: Option<i64>,
    allow: Option<Vec<String>>,
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEsl {
    address: Option<String>,
    password: Option<String>,
    timeout_ms: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: Option<String>,
    timeout_ms: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTransfer {
    method: Option<String>,
    default_context: Option<String>,
    timeout_ms: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAmi {
    host: Option<String>,
    port: Option<i64>,
    username: Option<String>,
    secret: Option<String>,
    timeout_ms: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    username: Option<String>,
    password: Option<String>,
    token: Option<String>,
    twilio_auth_token: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRecognizer {
    threads: Option<i64>,
    queue: Option<i64>,
    model: Option<String>,
    context_ms: Option<i64>,
    second_model: Option<String>,
    second_context_ms: Option<i64>,
    second_accept: Option<f64>,
    min_evidence: Option<f64>,
    prior_correction: Option<f64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEndpointing {
    threshold: Option<f64>,
    listening_threshold: Option<f64>,
    min_silence_ms: Option<i64>,
    pause_ms: Option<i64>,
    min_speech_ms: Option<i64>,
    speech_pad_ms: Option<i64>,
    max_utterance_ms: Option<i64>,
}

/// Everything wrong with a configuration, one line per problem.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigError(pub Vec<String>);

impl ServerConfig {
    /// Defaults only (what `hotline serve` runs without a config file).
    pub fn defaults() -> ServerConfig {
        Self::from_toml_str("", None, &|_| None).expect("the empty configuration is valid")
    }

    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(vec![format!("{}: cannot read: {e}", path.display())]))?;
        Self::from_toml_str(&text, Some(path), &|k| std::env::var(k).ok())
    }

    /// Parses and validates. `env` looks up environment variables (a
    /// parameter so tests need not touch the process environment).
    pub fn from_toml_str(
        text: &str,
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ServerConfig, ConfigError> {
        let file = path.map_or_else(|| "config".to_string(), |p| p.display().to_string());
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let msg = e.message().to_string();
            let at = e.span().map(|s| line_col(text, s.start)).map_or(String::new(), |(l, c)| format!(":{l}:{c}"));
            ConfigError(vec![format!("{file}{at}: {msg}")])
        })?;
        let mut errs = Vec::new();
        let mut err = |field: &str, msg: String| errs.push(format!("{file}: `{field}`: {msg}"));

        let listen = raw.listen.as_deref().unwrap_or("127.0.0.1:8088");
        let listen = listen.parse::<SocketAddr>().unwrap_or_else(|_| {
            err("listen", format!("{listen:?} is not an address like 127.0.0.1:8088"));
            SocketAddr::from(([127, 0, 0, 1], 8088))
        });
        let base = path.and_then(Path::parent).unwrap_or(Path::new(""));
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let mut int = |field: &str, v: Option<i64>, default: i64, min: i64, max: i64| -> i64 {
            match v {
                None => default,
                Some(x) if (min..=max).contains(&x) => x,
                Some(x) => {
                    err(field, format!("{x} is out of range {min}..={max}"));
                    default
                }
            }
        };
        let max_calls = int("max_calls", raw.max_calls, 20, 1, 10_000) as usize;
        let playback_lead = int("playback_lead_ms", raw.playback_lead_ms, 4_000, 200, 16_000) as u64;
        let max_call = int("max_call_secs", raw.max_call_secs, 3_600, 10, 86_400) as u64;
        let grace = int("shutdown_grace_secs", raw.shutdown_grace_secs, 30, 0, 3_600) as u64;
        let reload = int("reload_interval_ms", raw.reload_interval_ms, 1_000, 50, 60_000) as u64;
        let transfer_timeout = int("transfer.timeout_ms", raw.transfer.timeout_ms, 3_000, 100, 60_000) as u64;
        let threads = int("recognizer.threads", raw.recognizer.threads, 0, 0, 64) as usize;
        let rqueue = int("recognizer.queue", raw.recognizer.queue, 64, 1, 10_000) as usize;
        let records_keep_days = raw.records_keep_days.map(|d| int("records_keep_days", Some(d), 0, 1, 36_500) as u32);
        // Audio the encoder sees beyond the utterance; Whisper reads words
        // better with a few seconds around them, at a cost in CPU.
        let context_default = crate::asr::whisper::GrammarOptions::default().context_ms();
        let context_ms =
            int("recognizer.context_ms", raw.recognizer.context_ms, i64::from(context_default), 0, 25_000) as u32;
        let second_default = i64::from(crate::asr::whisper::SECOND_PASS_CONTEXT_MS);
        let second_context_ms =
            int("recognizer.second_context_ms", raw.recognizer.second_context_ms, second_default, 0, 25_000) as u32;
        // The silence that ends an utterance is the largest part of the
        // caller's wait; too short and a pause between digits splits them.
        let ep_default = crate::asr::EndpointConfig::default();
        let ep = &raw.endpointing;
        let ms = |v: u64| v as i64;
        let min_silence =
            int("endpointing.min_silence_ms", ep.min_silence_ms, ms(ep_default.min_silence_ms), 100, 5_000);
        // 0 turns early answers off; a pause as long as the end silence
        // would never come first.
        let pause = int("endpointing.pause_ms", ep.pause_ms, ms(ep_default.pause_ms), 0, min_silence - 50);
        let min_speech = int("endpointing.min_speech_ms", ep.min_speech_ms, ms(ep_default.min_speech_ms), 0, 2_000);
        let speech_pad = int("endpointing.speech_pad_ms", ep.speech_pad_ms, ms(ep_default.speech_pad_ms), 0, 1_000);
        let max_utterance =
            int("endpointing.max_utterance_ms", ep.max_utterance_ms, ms(ep_default.max_utterance_ms), 1_000, 30_000);
        let mut probability = |key: &str, value: Option<f64>, default: f32| match value {
            None => default,
            Some(t) if (0.05..=0.95).contains(&t) => t as f32,
            Some(t) => {
                err(key, format!("{t} is out of range 0.05..=0.95"));
                default
            }
        };
        let threshold = probability("endpointing.threshold", ep.threshold, ep_default.threshold);
        let listening_threshold =
            probability("endpointing.listening_threshold", ep.listening_threshold, ep_default.listening_threshold);
        let endpoint = crate::asr::EndpointConfig {
            threshold,
            listening_threshold,
            min_silence_ms: min_silence as u64,
            pause_ms: pause as u64,
            min_speech_ms: min_speech as u64,
            speech_pad_ms: speech_pad as u64,
            max_utterance_ms: max_utterance as u64,
        };
        // How sure the grammar recogniser must be that the caller said an
        // option (noisy lines: raise it) and how far it corrects for the
        // words Whisper prefers anyway.
        let grammar_default = crate::asr::whisper::GrammarOptions::default();
        let mut nats = |key: &str, value: Option<f64>, default: f32| match value {
            None => default,
            Some(v) if (0.0..=20.0).contains(&v) => v as f32,
            Some(v) => {
                err(key, format!("{v} is out of range 0..=20 (nats)"));
                default
            }
        };
        let grammar = crate::asr::whisper::GrammarOptions {
            min_evidence: nats("recognizer.min_evidence", raw.recognizer.min_evidence, grammar_default.min_evidence),
            max_prior_correction: nats(
                "recognizer.prior_correction",
                raw.recognizer.prior_correction,
                grammar_default.max_prior_correction,
            ),
            padding: crate::asr::whisper::Padding::Utterance { margin_ms: context_ms },
            ..grammar_default
        };
        let recognizer_model = match raw.recognizer.model.as_deref().map(str::parse).transpose() {
            Ok(m) => m.unwrap_or_default(),
            Err(why) => {
                err("recognizer.model", why);
                Default::default()
            }
        };
        let second_model = match raw.recognizer.second_model.as_deref().map(str::parse).transpose() {
            Ok(m) => m,
            Err(why) => {
                err("recognizer.second_model", why);
                None
            }
        };
        // The dialplans' default `accept`: below it the caller would be asked.
        let second_accept = match raw.recognizer.second_accept {
            None => 0.85,
            Some(v) if (0.0..=1.0).contains(&v) && v > 0.0 => v as f32,
            Some(v) => {
                err("recognizer.second_accept", format!("{v} is out of range 0 < x ≤ 1"));
                0.85
            }
        };
        let second_pass = second_model.map(|m| crate::asr::SecondPassConfig {
            models: crate::asr::models::ModelPaths::for_whisper(m),
            grammar: crate::asr::whisper::GrammarOptions {
                padding: crate::asr::whisper::Padding::Utterance { margin_ms: second_context_ms },
                ..grammar.clone()
            },
            clear: second_accept,
        });

        // Without an [ami] section the only method that can work is the
        // no-AMI one, so it is the default then.
        let default_method = if raw.ami.is_some() { "ami" } else { "hangup" };
        let method = match raw.transfer.method.as_deref().unwrap_or(default_method) {
            "ami" => TransferMethod::Ami,
            "hangup" => TransferMethod::Hangup,
            other => {
                err("transfer.method", format!("{other:?} is not one of \"ami\", \"hangup\""));
                TransferMethod::Ami
            }
        };
        let default_context = raw.transfer.default_context.unwrap_or_else(|| "hotline-operators".into());
        if default_context.is_empty() || default_context.contains([',', ' ', '\r', '\n']) {
            err("transfer.default_context", format!("{default_context:?} is not an Asterisk context name"));
        }

        let ami = match raw.ami {
            None => None,
            Some(a) => {
                let host = a.host.unwrap_or_else(|| "127.0.0.1".into());
                let port = a.port.unwrap_or(5038);
                if !(1..=65535).contains(&port) {
                    err("ami.port", format!("{port} is not a TCP port"));
                }
                let username = a.username.unwrap_or_default();
                if username.is_empty() {
                    err("ami.username", "is required when [ami] is configured".into());
                }
                let secret = env(ENV_AMI_SECRET).filter(|s| !s.is_empty()).or(a.secret).unwrap_or_default();
                if secret.is_empty() {
                    err("ami.secret", format!("is required (or set {ENV_AMI_SECRET})"));
                }
                let timeout = match a.timeout_ms {
                    None => 3_000,
                    Some(t) if (100..=60_000).contains(&t) => t as u64,
                    Some(t) => {
                        err("ami.timeout_ms", format!("{t} is out of range 100..=60000"));
                        3_000
                    }
                };
                Some(AmiConfig {
                    host,
                    port: port.clamp(1, 65535) as u16,
                    username,
                    secret: Secret::new(secret),
                    timeout: Duration::from_millis(timeout),
                })
            }
        };
        if method == TransferMethod::Ami && ami.is_none() {
            err("transfer.method", "is \"ami\" but there is no [ami] section (or use method = \"hangup\")".into());
        }

        let (mut auth, mut auth_token, mut twilio_auth_token) = (None, None, None);
        if let Some(a) = raw.auth {
            let username = a.username.unwrap_or_default();
            if username.is_empty() || username.contains(':') {
                err("auth.username", "must be non-empty and contain no ':'".into());
            }
            let password = env(ENV_AUTH_PASSWORD).filter(|s| !s.is_empty()).or(a.password).unwrap_or_default();
            if password.is_empty() {
                err("auth.password", format!("is required (or set {ENV_AUTH_PASSWORD})"));
            }
            auth = Some(BasicAuth { username, password: Secret::new(password) });
            let token = env(ENV_AUTH_TOKEN).filter(|s| !s.is_empty()).or(a.token);
            if let Some(t) = &token {
                if t.chars().count() < MIN_TOKEN_CHARS
                    || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
                {
                    err(
                        "auth.token",
                        format!("must be at least {MIN_TOKEN_CHARS} characters of A-Z a-z 0-9 - . _ ~ (it goes in a URL unencoded)"),
                    );
                }
            }
            auth_token = token.map(Secret::new);
            twilio_auth_token = env(ENV_TWILIO_AUTH_TOKEN)
                .filter(|s| !s.is_empty())
                .or(a.twilio_auth_token)
                .filter(|s| !s.is_empty())
                .map(Secret::new);
        }

        let esl = match raw.esl {
            None => None,
            Some(e) => {
                let address = e.address.unwrap_or_else(|| "127.0.0.1:8021".into());
                if address.parse::<SocketAddr>().is_err() && !address.contains(':') {
                    err("esl.address", format!("{address:?} is not host:port like 127.0.0.1:8021"));
                }
                let password = env(ENV_ESL_PASSWORD).filter(|s| !s.is_empty()).or(e.password).unwrap_or_default();
                if password.is_empty() {
                    err("esl.password", format!("is required (or set {ENV_ESL_PASSWORD})"));
                }
                let mut c = EslConfig::new(address, password);
                match e.timeout_ms {
                    None => {}
                    Some(t) if (100..=60_000).contains(&t) => c.timeout = Duration::from_millis(t as u64),
                    Some(t) => err("esl.timeout_ms", format!("{t} is out of range 100..=60000")),
                }
                Some(c)
            }
        };
        let webhook = match raw.webhook {
            None => None,
            Some(w) => match w.url.as_deref().map(WebhookConfig::new) {
                None => {
                    err("webhook.url", "is required when [webhook] is configured".into());
                    None
                }
                Some(Err(e)) => {
                    err("webhook.url", e.to_string());
                    None
                }
                Some(Ok(mut c)) => {
                    match w.timeout_ms {
                        None => {}
                        Some(t) if (100..=60_000).contains(&t) => c.timeout = Duration::from_millis(t as u64),
                        Some(t) => err("webhook.timeout_ms", format!("{t} is out of range 100..=60000")),
                    }
                    Some(c)
                }
            },
        };
        let mut listeners = Vec::new();
        for (i, l) in raw.listeners.iter().enumerate() {
            let field = |name: &str| format!("listeners[{i}].{name}");
            let transport = match l.transport.as_deref().map(str::parse::<Transport>) {
                None => {
                    err(&field("transport"), "is required".into());
                    continue;
                }
                Some(Err(e)) => {
                    err(&field("transport"), e);
                    continue;
                }
                Some(Ok(t)) => t,
            };
            let Some(addr) = l.listen.as_deref() else {
                err(&field("listen"), "is required".into());
                continue;
            };
            let Ok(addr) = addr.parse::<SocketAddr>() else {
                err(&field("listen"), format!("{addr:?} is not an address like 127.0.0.1:9092"));
                continue;
            };
            if (addr == listen && addr.port() != 0)
                || listeners.iter().any(|x: &Listener| x.listen == addr && addr.port() != 0)
            {
                err(&field("listen"), format!("{addr} is already used by another listener"));
            }
            let rate = match l.rate {
                None => None,
                Some(r) => {
                    let options = crate::pbx::transport::TransportOptions { rate: Some(r.clamp(0, 1_000_000) as u32) };
                    if let Err(e) = crate::pbx::transport::codec(transport, &options) {
                        err(&field("rate"), e.to_string());
                    }
                    if !(8_000..=48_000).contains(&r) {
                        err(&field("rate"), format!("{r} is out of range 8000..=48000"));
                    }
                    Some(r.clamp(8_000, 48_000) as u32)
                }
            };
            if transport.needs_event_socket() && esl.is_none() {
                err(
                    &field("transport"),
                    format!("{transport} plays prompts over the FreeSWITCH event socket: add an [esl] section"),
                );
            }
            let allow = match &l.allow {
                // AudioSocket has no credentials: only this host unless the
                // admin names the PBX.
                None if transport == Transport::AudioSocket => vec![AddrRange::LOOPBACK_V4, AddrRange::LOOPBACK_V6],
                None => vec![AddrRange::ANY_V4, AddrRange::ANY_V6],
                Some(list) => list
                    .iter()
                    .filter_map(|a| a.parse::<AddrRange>().map_err(|e| err(&field("allow"), e)).ok())
                    .collect(),
            };
            if l.allow.as_ref().is_some_and(Vec::is_empty) {
                err(&field("allow"), "is empty: no PBX could connect (leave it out for the default)".into());
            }
            let public_url = l.url.clone();
            if let Some(u) = &public_url {
                if !(u.starts_with("wss://") || u.starts_with("ws://")) {
                    err(&field("url"), format!("{u:?} is not a ws:// or wss:// URL"));
                }
            }
            if transport == Transport::Twilio && twilio_auth_token.is_some() && public_url.is_none() {
                err(&field("url"), "is required to check Twilio's signature: the `<Stream>` url, e.g. wss://hotline.example.com/twilio".into());
            }
            listeners.push(Listener { transport, listen: addr, rate, allow, public_url });
        }

        let default_dialplan = raw.default_dialplan.unwrap_or_else(|| "hotline".into());
        if default_dialplan.is_empty() {
            err("default_dialplan", "must name a dialplan (file stem)".into());
        }
        if errs.is_empty() {
            Ok(ServerConfig {
                listen,
                listeners,
                esl,
                webhook,
                dialplan_dir: rel(raw.dialplan_dir.unwrap_or_else(|| "dialplans".into())),
                default_dialplan,
                max_calls,
                playback_lead: Duration::from_millis(playback_lead),
                max_call_duration: Duration::from_secs(max_call),
                shutdown_grace: Duration::from_secs(grace),
                reload_interval: Duration::from_millis(reload),
                transfer: TransferConfig { method, default_context, timeout: Duration::from_millis(transfer_timeout) },
                ami,
                auth,
                auth_token,
                twilio_auth_token,
                call_records: call_records(raw.call_records).map(rel),
                records_keep_days,
                keep_audio_dir: raw.keep_audio_dir.map(rel),
                prompt_cache_dir: rel(raw.prompt_cache_dir.unwrap_or_else(|| "cache/prompts".into())),
                recognizer_threads: threads,
                recognizer_queue: rqueue,
                recognizer_model,
                second_pass,
                grammar,
                endpoint,
            })
        } else {
            Err(ConfigError(errs))
        }
    }
}

/// Where call records go: `calls.db` by default (a production server
/// keeps them), nowhere when the key is set to the empty string.
fn call_records(configured: Option<PathBuf>) -> Option<PathBuf> {
    match configured {
        None => Some(PathBuf::from(DEFAULT_CALL_RECORDS)),
        Some(p) if p.as_os_str().is_empty() => None,
        Some(p) => Some(p),
    }
}

pub const DEFAULT_CALL_RECORDS: &str = "calls.db";

/// Columns count characters, as the dialplan's diagnostics do (a byte
/// column points past the end of a line with accented letters).
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    crate::dialplan::diagnostic::line_col(text, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServerConfig, ConfigError> {
        ServerConfig::from_toml_str(text, None, &|_| None)
    }

    /// hotline.example.toml says its values are the defaults unless noted;
    /// the noted ones are the `[ami]` section and the transfer method it
    /// selects. Everything else must parse to exactly what no file gives.
    #[test]
    fn the_example_config_shows_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("hotline.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut example = ServerConfig::from_toml_str(&text, Some(&path), &|_| None).unwrap();
        let defaults = ServerConfig::from_toml_str("", Some(&path), &|_| None).unwrap();
        assert!(example.ami.is_some() && example.transfer.method == TransferMethod::Ami);
        example.ami = defaults.ami.clone();
        example.transfer.method = defaults.transfer.method;
        assert_eq!(format!("{example:#?}"), format!("{defaults:#?}"));
    }

    #[test]
    fn recognizer_strictness_is_configurable_and_checked() {
        let d = parse("").unwrap();
        assert_eq!(d.grammar.min_evidence, crate::asr::whisper::GrammarOptions::default().min_evidence);
        let c = parse("[recognizer]\nmin_evidence = 4.5\nprior_correction = 0\n").unwrap();
        assert_eq!((c.grammar.min_evidence, c.grammar.max_prior_correction), (4.5, 0.0));
        let e = parse("[recognizer]\nmin_evidence = 30\nprior_correction = -1\n").unwrap_err().to_string();
        assert!(e.contains("recognizer.min_evidence") && e.contains("recognizer.prior_correction"), "{e}");
    }

    #[test]
    fn recognizer_model_and_context_are_configurable_and_checked() {
        use crate::asr::models::WhisperModelName;
        use crate::asr::whisper::Padding;
        let d = parse("").unwrap();
        assert_eq!(d.recognizer_model, WhisperModelName::TinyEn);
        let c = parse("[recognizer]\nmodel = \"whisper-base\"\ncontext_ms = 4000\n").unwrap();
        assert_eq!(c.recognizer_model, WhisperModelName::Base);
        assert_eq!(c.grammar.padding, Padding::Utterance { margin_ms: 4000 });
        let e = parse("[recognizer]\nmodel = \"whisper-large\"\ncontext_ms = 40000\n").unwrap_err().to_string();
        assert!(e.contains("recognizer.model") && e.contains("\"whisper-tiny.en\" | \"whisper-base\""), "{e}");
        assert!(e.contains("recognizer.context_ms"), "{e}");
    }

    #[test]
    fn second_pass_is_off_unless_configured_and_checked() {
        use crate::asr::whisper::Padding;
        assert!(parse("").unwrap().second_pass.is_none());
        let c = parse("[recognizer]\nsecond_model = \"whisper-base\"\nsecond_context_ms = 3000\nmin_evidence = 4\n")
            .unwrap();
        let second = c.second_pass.expect("second pass configured");
        assert!(second.models.whisper_encoder.ends_with("whisper-base/base-encoder.int8.onnx"));
        assert_eq!(
            (second.grammar.padding, second.grammar.min_evidence, second.clear),
            (Padding::Utterance { margin_ms: 3000 }, 4.0, 0.85)
        );
        let e = parse("[recognizer]\nsecond_model = \"large\"\nsecond_accept = 1.5\n").unwrap_err().to_string();
        assert!(e.contains("recognizer.second_model") && e.contains("recognizer.second_accept"), "{e}");
    }

    #[test]
    fn endpointing_is_configurable_and_checked() {
        let c =
            parse("[endpointing]\nmin_silence_ms = 350\nthreshold = 0.6\nlistening_threshold = 0.3\npause_ms = 0\n")
                .unwrap();
        assert_eq!((c.endpoint.min_silence_ms, c.endpoint.threshold, c.endpoint.pause_ms), (350, 0.6, 0));
        assert_eq!(c.endpoint.listening_threshold, 0.3);
        let e = parse("[endpointing]\nlistening_threshold = 0\n").unwrap_err().to_string();
        assert!(e.contains("endpointing.listening_threshold"), "{e}");
        let e = parse("[endpointing]\nmin_silence_ms = 300\npause_ms = 300\n").unwrap_err().to_string();
        assert!(e.contains("endpointing.pause_ms"), "{e}");
        assert_eq!(c.endpoint.max_utterance_ms, crate::asr::EndpointConfig::default().max_utterance_ms);
        let e = parse("[endpointing]\nmin_silence_ms = 20\nthreshold = 1.5\nsilence = 3\n").unwrap_err().to_string();
        assert!(e.contains("silence"), "unknown key named: {e}");
        let e = parse("[endpointing]\nmin_silence_ms = 20\nthreshold = 1.5\n").unwrap_err().to_string();
        assert!(e.contains("endpointing.min_silence_ms") && e.contains("endpointing.threshold"), "{e}");
    }

    #[test]
    fn defaults_listen_on_localhost_and_pick_a_working_transfer_method() {
        let c = parse("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8088");
        assert_eq!(c.transfer.method, TransferMethod::Hangup, "no [ami]: the no-AMI method");
        assert!(c.auth.is_none() && c.keep_audio_dir.is_none());
        assert_eq!(c.call_records.as_deref(), Some(Path::new("calls.db")), "call records are kept by default");
        let e = parse("[transfer]\nmethod = \"ami\"").unwrap_err().to_string();
        assert!(e.contains("`transfer.method`") && e.contains("[ami]"), "{e}");
    }

    #[test]
    fn call_records_are_kept_by_default_and_an_empty_path_turns_them_off() {
        let with_file =
            |text: &str| ServerConfig::from_toml_str(text, Some(Path::new("/etc/hotline/hotline.toml")), &|_| None);
        assert_eq!(with_file("").unwrap().call_records.as_deref(), Some(Path::new("/etc/hotline/calls.db")));
        assert_eq!(
            with_file("call_records = \"/var/log/c.jsonl\"").unwrap().call_records.as_deref(),
            Some(Path::new("/var/log/c.jsonl"))
        );
        assert_eq!(with_file("call_records = \"\"").unwrap().call_records, None);
        assert_eq!(with_file("").unwrap().records_keep_days, None, "every record is kept by default");
        assert_eq!(with_file("records_keep_days = 90").unwrap().records_keep_days, Some(90));
        let e = with_file("records_keep_days = 0").unwrap_err().to_string();
        assert!(e.contains("records_keep_days") && e.contains("1..="), "{e}");
    }

    #[test]
    fn the_example_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("hotline.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let c = ServerConfig::from_toml_str(&text, Some(&path), &|_| None).unwrap();
        assert_eq!(c.transfer.method, TransferMethod::Ami);
        assert!(c.ami.is_some());
    }

    #[test]
    fn every_bad_field_is_named() {
        let e = parse(
            "listen = \"everywhere\"\nmax_calls = 0\n[transfer]\nmethod = \"pigeon\"\n[ami]\nport = 70000\n[auth]\nusername = \"a:b\"\n",
        )
        .unwrap_err();
        let all = e.to_string();
        for field in [
            "`listen`",
            "`max_calls`",
            "`transfer.method`",
            "`ami.port`",
            "`ami.username`",
            "`ami.secret`",
            "`auth.username`",
            "`auth.password`",
        ] {
            assert!(all.contains(field), "{field} missing in:\n{all}");
        }
    }

    #[test]
    fn listeners_of_other_transports_with_their_control_channels() {
        let env = |k: &str| (k == ENV_ESL_PASSWORD).then(|| "ClueCon".to_string());
        let c = ServerConfig::from_toml_str(
            "[[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:9092\"\nrate = 16000\n\
             [[listeners]]\ntransport = \"audio_fork\"\nlisten = \"127.0.0.1:9093\"\n\
             [esl]\naddress = \"127.0.0.1:8021\"\n[webhook]\nurl = \"http://127.0.0.1:8080/twilio/transfer\"\n",
            None,
            &env,
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8088", "chan_websocket stays the default listener");
        assert_eq!(
            c.listeners,
            vec![
                Listener {
                    transport: Transport::AudioSocket,
                    listen: "127.0.0.1:9092".parse().unwrap(),
                    rate: Some(16_000),
                    allow: vec![AddrRange::LOOPBACK_V4, AddrRange::LOOPBACK_V6],
                    public_url: None,
                },
                Listener {
                    transport: Transport::AudioFork,
                    listen: "127.0.0.1:9093".parse().unwrap(),
                    rate: None,
                    allow: vec![AddrRange::ANY_V4, AddrRange::ANY_V6],
                    public_url: None,
                },
            ]
        );
        assert_eq!(c.esl.as_ref().unwrap().addr, "127.0.0.1:8021");
        assert!(!format!("{c:?}").contains("ClueCon"));
        assert_eq!(c.webhook.as_ref().unwrap().url(), "http://127.0.0.1:8080/twilio/transfer");
    }

    #[test]
    fn bad_listeners_name_their_field() {
        let e = parse(
            "[[listeners]]\ntransport = \"sip\"\nlisten = \"127.0.0.1:1\"\n\
             [[listeners]]\ntransport = \"audiosocket\"\nlisten = \"nowhere\"\n\
             [[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:2\"\nrate = 11025\n\
             [[listeners]]\ntransport = \"audio_stream\"\nlisten = \"127.0.0.1:3\"\n\
             [webhook]\nurl = \"ftp://x\"\n",
        )
        .unwrap_err()
        .to_string();
        for field in [
            "`listeners[0].transport`",
            "`listeners[1].listen`",
            "`listeners[2].rate`",
            "`listeners[3].transport`",
            "`webhook.url`",
        ] {
            assert!(e.contains(field), "{field} missing in:\n{e}");
        }
        assert!(e.contains("[esl]"), "{e}");
    }

    #[test]
    fn listener_auth_keys_are_checked_and_named() {
        let env = |k: &str| match k {
            ENV_AUTH_TOKEN => Some("stream-token-0123456789".to_string()),
            ENV_TWILIO_AUTH_TOKEN => Some("twilio-secret".to_string()),
            _ => None,
        };
        let c = ServerConfig::from_toml_str(
            "[auth]\nusername = \"pbx\"\npassword = \"pw\"\n\
             [[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:9092\"\nallow = [\"10.0.0.0/24\", \"::1\"]\n\
             [[listeners]]\ntransport = \"twilio\"\nlisten = \"127.0.0.1:9094\"\nurl = \"wss://hotline.example.com/twilio\"\n",
            None,
            &env,
        )
        .unwrap();
        assert_eq!(c.auth_token.as_ref().unwrap().expose(), "stream-token-0123456789");
        assert_eq!(c.twilio_auth_token.as_ref().unwrap().expose(), "twilio-secret");
        let dump = format!("{c:?}");
        assert!(!dump.contains("stream-token") && !dump.contains("twilio-secret"), "{dump}");
        let allow = &c.listeners[0].allow;
        assert!(allow[0].contains("10.0.0.77".parse().unwrap()) && !allow[0].contains("10.0.1.1".parse().unwrap()));
        assert!(allow[1].contains("::1".parse().unwrap()));
        assert_eq!(c.listeners[1].public_url.as_deref(), Some("wss://hotline.example.com/twilio"));

        let e = ServerConfig::from_toml_str(
            "[auth]\nusername = \"pbx\"\npassword = \"pw\"\ntoken = \"short\"\n\
             [[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:9092\"\nallow = [\"10.0.0.0/33\"]\n\
             [[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:9093\"\nallow = []\n\
             [[listeners]]\ntransport = \"twilio\"\nlisten = \"127.0.0.1:9094\"\ntwilio = 1\n",
            None,
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("twilio"), "unknown key named: {e}");
        let e = ServerConfig::from_toml_str(
            "[auth]\nusername = \"pbx\"\npassword = \"pw\"\ntoken = \"short\"\ntwilio_auth_token = \"t\"\n\
             [[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:9092\"\nallow = [\"10.0.0.0/33\"]\n\
             [[listeners]]\ntransport = \"audiosocket\"\nlisten = \"127.0.0.1:9093\"\nallow = []\n\
             [[listeners]]\ntransport = \"twilio\"\nlisten = \"127.0.0.1:9094\"\n",
            None,
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        for field in ["`auth.token`", "`listeners[0].allow`", "`listeners[1].allow`", "`listeners[2].url`"] {
            assert!(e.contains(field), "{field} missing in:\n{e}");
        }
        assert!(!e.contains("short"), "a secret in an error: {e}");
    }

    #[test]
    fn audiosocket_accepts_only_loopback_by_default() {
        let c = parse("[[listeners]]\ntransport = \"audiosocket\"\nlisten = \"0.0.0.0:9092\"\n").unwrap();
        let admitted = |ip: &str| c.listeners[0].allow.iter().any(|r| r.contains(ip.parse().unwrap()));
        assert!(admitted("127.0.0.1") && admitted("::1") && admitted("::ffff:127.0.0.1"));
        assert!(!admitted("10.0.0.5") && !admitted("192.168.1.1"));
    }

    #[test]
    fn unknown_keys_are_reported_with_position() {
        let e = parse("listen = \"127.0.0.1:1\"\nmax_cals = 3\n").unwrap_err().to_string();
        assert!(e.contains(":2:1") && e.contains("max_cals"), "{e}");
    }

    #[test]
    fn secrets_come_from_the_environment_and_are_never_printed() {
        let env = |k: &str| match k {
            ENV_AMI_SECRET => Some("ami-pw-123".to_string()),
            ENV_AUTH_PASSWORD => Some("ws-pw-456".to_string()),
            _ => None,
        };
        let c = ServerConfig::from_toml_str(
            "[ami]\nusername = \"hotline\"\nsecret = \"from-file\"\n[auth]\nusername = \"asterisk\"\n",
            None,
            &env,
        )
        .unwrap();
        assert_eq!(c.ami.as_ref().unwrap().secret.expose(), "ami-pw-123", "environment wins over the file");
        assert_eq!(c.auth.as_ref().unwrap().password.expose(), "ws-pw-456");
        let dump = format!("{c:?}");
        assert!(!dump.contains("ami-pw-123") && !dump.contains("ws-pw-456"), "{dump}");
    }
}
