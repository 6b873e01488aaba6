//! The keys at the top of the file: where calls come in, which dialplans
//! serve them, the limits of a call and of the server, and where files go.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::problems::Problems;
use super::raw::RawGeneral;

pub const DEFAULT_CALL_RECORDS: &str = "calls.db";
const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8088);

/// The top-level keys, checked; relative paths already joined to the
/// config file's folder.
#[derive(Debug, Clone)]
pub struct General {
    /// The chan_websocket listener, always present.
    pub listen: SocketAddr,
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
    /// Where call records are stored: SQLite (`calls.db`, the default),
    /// PostgreSQL (a `postgres://` URL, kept as given), or JSON lines when
    /// the path ends in `.jsonl`; `None` when the config says
    /// `call_records = ""` (no records).
    pub call_records: Option<PathBuf>,
    /// `records_keep_days`: calls older than this are deleted from the
    /// SQLite store (hourly); `None` keeps every record.
    pub records_keep_days: Option<u32>,
    /// Keep each call's caller audio as a WAV here (off when None).
    pub keep_audio_dir: Option<PathBuf>,
    pub prompt_cache_dir: PathBuf,
    /// `instance_name`: the name this instance's calls are recorded under
    /// (default: host name and listening port).
    pub instance_name: Option<String>,
}

/// `base`: the config file's folder, which relative paths are relative to.
pub(super) fn validate(raw: &RawGeneral, base: &Path, problems: &mut Problems) -> General {
    let listen = match &raw.listen {
        None => DEFAULT_LISTEN,
        Some(l) => l.value.parse().unwrap_or_else(|_| {
            problems.field(&l.span, "listen", format!("{:?} is not an address like 127.0.0.1:8088", l.value));
            DEFAULT_LISTEN
        }),
    };
    let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
    let path_or = |value: &Option<crate::dialplan::At<String>>, default: &str| {
        rel(PathBuf::from(value.as_ref().map_or(default, |v| v.value.as_str())))
    };
    let default_dialplan = raw.default_dialplan.as_ref().map_or("hotline", |d| d.value.as_str()).to_string();
    if let Some(d) = raw.default_dialplan.as_ref().filter(|d| d.value.is_empty()) {
        problems.field(&d.span, "default_dialplan", "must name a dialplan (file stem)");
    }
    let max_calls = problems.int_in("max_calls", &raw.max_calls, 20, 1..=10_000) as usize;
    let playback_lead = problems.int_in("playback_lead_ms", &raw.playback_lead_ms, 4_000, 200..=16_000) as u64;
    let max_call = problems.int_in("max_call_secs", &raw.max_call_secs, 3_600, 10..=86_400) as u64;
    let grace = problems.int_in("shutdown_grace_secs", &raw.shutdown_grace_secs, 30, 0..=3_600) as u64;
    let reload = problems.int_in("reload_interval_ms", &raw.reload_interval_ms, 1_000, 50..=60_000) as u64;
    // No key: every record is kept.
    let records_keep_days = raw
        .records_keep_days
        .as_ref()
        .map(|_| problems.int_in("records_keep_days", &raw.records_keep_days, 0, 1..=36_500) as u32);
    let instance_name = raw.instance_name.as_ref().map(|n| {
        let ok = !n.value.trim().is_empty() && n.value.len() <= 200 && !n.value.chars().any(char::is_control);
        if !ok {
            problems.field(&n.span, "instance_name", "must be 1 to 200 printable characters (e.g. the host name)");
        }
        n.value.clone()
    });
    // A database URL is not a path: not joined to the config's folder.
    let records_at = |p: PathBuf| if crate::records::postgres::is_url(&p) { p } else { rel(p) };
    General {
        instance_name,
        listen,
        dialplan_dir: path_or(&raw.dialplan_dir, "dialplans"),
        default_dialplan,
        max_calls,
        playback_lead: Duration::from_millis(playback_lead),
        max_call_duration: Duration::from_secs(max_call),
        shutdown_grace: Duration::from_secs(grace),
        reload_interval: Duration::from_millis(reload),
        call_records: call_records(raw.call_records.as_ref().map(|c| PathBuf::from(&c.value))).map(records_at),
        records_keep_days,
        keep_audio_dir: raw.keep_audio_dir.as_ref().map(|k| rel(PathBuf::from(&k.value))),
        prompt_cache_dir: path_or(&raw.prompt_cache_dir, "cache/prompts"),
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
