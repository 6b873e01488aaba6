//! Stage one: `hotline.toml` as the admin wrote it, every value with its span.
//!
//! Read from a `toml_edit` document rather than through serde, for the same
//! reason as the dialplan (`src/dialplan/raw.rs`): serde stops at the first
//! unknown key or wrong type, while an admin wants every mistake of an edit
//! reported at once. Each section reader remembers the keys it asked for,
//! so whatever is left over is an unknown key, reported with a did-you-mean
//! against the keys that section knows. Values are only typed here; what
//! they mean is checked by the section validators.
use std::ops::Range;

use toml_edit::{ImDocument, Item, TableLike, Value};

use super::problems::Problems;
use crate::dialplan::diagnostic::did_you_mean;
use crate::dialplan::At;

type Text = Option<At<String>>;
type Int = Option<At<i64>>;
type Number = Option<At<f64>>;

#[derive(Debug, Default)]
pub struct RawConfig {
    pub general: RawGeneral,
    pub transfer: RawTransfer,
    pub ami: Option<RawAmi>,
    pub auth: Option<RawAuth>,
    pub recognizer: RawRecognizer,
    pub endpointing: RawEndpointing,
    pub listeners: Vec<RawListener>,
    pub esl: Option<RawEsl>,
    pub webhook: Option<RawWebhook>,
}

/// The keys at the top of the file.
#[derive(Debug, Default)]
pub struct RawGeneral {
    pub listen: Text,
    pub dialplan_dir: Text,
    pub default_dialplan: Text,
    pub max_calls: Int,
    pub playback_lead_ms: Int,
    pub max_call_secs: Int,
    pub shutdown_grace_secs: Int,
    pub reload_interval_ms: Int,
    pub call_records: Text,
    pub records_keep_days: Int,
    pub keep_audio_dir: Text,
    pub instance_name: Text,
    pub prompt_cache_dir: Text,
}

/// `span` in every section: its header, where "is required" problems point
/// (`0..0`, the file's start, for a section left out).
#[derive(Debug, Default)]
pub struct RawTransfer {
    pub span: Range<usize>,
    pub method: Text,
    pub default_context: Text,
    pub timeout_ms: Int,
}

#[derive(Debug)]
pub struct RawAmi {
    pub span: Range<usize>,
    pub host: Text,
    pub port: Int,
    pub username: Text,
    pub secret: Text,
    pub timeout_ms: Int,
}

#[derive(Debug)]
pub struct RawAuth {
    pub span: Range<usize>,
    pub username: Text,
    pub password: Text,
    pub token: Text,
    pub twilio_auth_token: Text,
}

#[derive(Debug, Default)]
pub struct RawRecognizer {
    pub threads: Int,
    pub queue: Int,
    pub model: Text,
    pub context_ms: Int,
    pub second_model: Text,
    pub second_context_ms: Int,
    pub second_accept: Number,
    pub second_speed: Number,
    pub min_evidence: Number,
    pub noisy_evidence: Number,
    pub prior_correction: Number,
}

#[derive(Debug, Default)]
pub struct RawEndpointing {
    pub threshold: Number,
    pub listening_threshold: Number,
    pub min_silence_ms: Int,
    pub pause_ms: Int,
    pub min_speech_ms: Int,
    pub speech_pad_ms: Int,
    pub max_utterance_ms: Int,
    pub restart_when_listening: Option<At<bool>>,
}

/// One `[[listeners]]` entry.
#[derive(Debug)]
pub struct RawListener {
    pub span: Range<usize>,
    pub transport: Text,
    pub listen: Text,
    pub rate: Int,
    pub allow: Option<At<Vec<At<String>>>>,
    pub url: Text,
}

#[derive(Debug)]
pub struct RawEsl {
    pub span: Range<usize>,
    pub address: Text,
    pub password: Text,
    pub timeout_ms: Int,
}

#[derive(Debug)]
pub struct RawWebhook {
    pub span: Range<usize>,
    pub url: Text,
    pub timeout_ms: Int,
}

/// Reads the text. `None` after a TOML syntax error (reported); otherwise
/// unknown keys and wrong types have been reported and left out.
pub fn parse(source: &str, problems: &mut Problems) -> Option<RawConfig> {
    let doc = match ImDocument::parse(source) {
        Ok(doc) => doc,
        Err(e) => {
            // toml_edit puts the reason and what was expected on separate lines.
            let message = e.message().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
            problems.at(&e.span().unwrap_or(0..0), message, None);
            return None;
        }
    };
    let mut root = Section::new(doc.as_table(), 0..0, "");
    let general = RawGeneral {
        listen: root.text(problems, "listen"),
        dialplan_dir: root.text(problems, "dialplan_dir"),
        default_dialplan: root.text(problems, "default_dialplan"),
        max_calls: root.int(problems, "max_calls"),
        playback_lead_ms: root.int(problems, "playback_lead_ms"),
        max_call_secs: root.int(problems, "max_call_secs"),
        shutdown_grace_secs: root.int(problems, "shutdown_grace_secs"),
        reload_interval_ms: root.int(problems, "reload_interval_ms"),
        call_records: root.text(problems, "call_records"),
        records_keep_days: root.int(problems, "records_keep_days"),
        keep_audio_dir: root.text(problems, "keep_audio_dir"),
        instance_name: root.text(problems, "instance_name"),
        prompt_cache_dir: root.text(problems, "prompt_cache_dir"),
    };
    let mut raw = RawConfig { general, ..Default::default() };
    if let Some(mut t) = root.section(problems, "transfer") {
        raw.transfer = RawTransfer {
            span: t.span.clone(),
            method: t.text(problems, "method"),
            default_context: t.text(problems, "default_context"),
            timeout_ms: t.int(problems, "timeout_ms"),
        };
        t.finish(problems);
    }
    if let Some(mut t) = root.section(problems, "ami") {
        raw.ami = Some(RawAmi {
            span: t.span.clone(),
            host: t.text(problems, "host"),
            port: t.int(problems, "port"),
            username: t.text(problems, "username"),
            secret: t.text(problems, "secret"),
            timeout_ms: t.int(problems, "timeout_ms"),
        });
        t.finish(problems);
    }
    if let Some(mut t) = root.section(problems, "auth") {
        raw.auth = Some(RawAuth {
            span: t.span.clone(),
            username: t.text(problems, "username"),
            password: t.text(problems, "password"),
            token: t.text(problems, "token"),
            twilio_auth_token: t.text(problems, "twilio_auth_token"),
        });
        t.finish(problems);
    }
    if let Some(mut t) = root.section(problems, "recognizer") {
        raw.recognizer = RawRecognizer {
            threads: t.int(problems, "threads"),
            queue: t.int(problems, "queue"),
            model: t.text(problems, "model"),
            context_ms: t.int(problems, "context_ms"),
            second_model: t.text(problems, "second_model"),
            second_context_ms: t.int(problems, "second_context_ms"),
            second_accept: t.number(problems, "second_accept"),
            second_speed: t.number(problems, "second_speed"),
            min_evidence: t.number(problems, "min_evidence"),
            noisy_evidence: t.number(problems, "noisy_evidence"),
            prior_correction: t.number(problems, "prior_correction"),
        };
        t.finish(problems);
    }
    if let Some(mut t) = root.section(problems, "endpointing") {
        raw.endpointing = RawEndpointing {
            threshold: t.number(problems, "threshold"),
            listening_threshold: t.number(problems, "listening_threshold"),
            min_silence_ms: t.int(problems, "min_silence_ms"),
            pause_ms: t.int(problems, "pause_ms"),
            min_speech_ms: t.int(problems, "min_speech_ms"),
            speech_pad_ms: t.int(problems, "speech_pad_ms"),
            max_utterance_ms: t.int(problems, "max_utterance_ms"),
            restart_when_listening: t.flag(problems, "restart_when_listening"),
        };
        t.finish(problems);
    }
    for mut t in root.sections(problems, "listeners") {
        raw.listeners.push(RawListener {
            span: t.span.clone(),
            transport: t.text(problems, "transport"),
            listen: t.text(problems, "listen"),
            rate: t.int(problems, "rate"),
            allow: t.texts(problems, "allow"),
            url: t.text(problems, "url"),
        });
        t.finish(problems);
    }
    if let Some(mut t) = root.section(problems, "esl") {
        raw.esl = Some(RawEsl {
            span: t.span.clone(),
            address: t.text(problems, "address"),
            password: t.text(problems, "password"),
            timeout_ms: t.int(problems, "timeout_ms"),
        });
        t.finish(problems);
    }
    if let Some(mut t) = root.section(problems, "webhook") {
        raw.webhook = Some(RawWebhook {
            span: t.span.clone(),
            url: t.text(problems, "url"),
            timeout_ms: t.int(problems, "timeout_ms"),
        });
        t.finish(problems);
    }
    root.finish(problems);
    Some(raw)
}

/// Reads the keys of one table and reports the ones nobody asked for.
struct Section<'d> {
    table: &'d dyn TableLike,
    /// Where problems with the section as a whole point (its header).
    span: Range<usize>,
    /// Dotted name of the section with its dot (`ami.`, `listeners[1].`),
    /// empty at the top: field names in problems are `prefix` + key.
    prefix: String,
    known: Vec<&'static str>,
}

impl<'d> Section<'d> {
    fn new(table: &'d dyn TableLike, span: Range<usize>, prefix: impl Into<String>) -> Self {
        Section { table, span, prefix: prefix.into(), known: Vec::new() }
    }

    /// The item under `key` and the best span for it (value, else key).
    fn get(&mut self, key: &'static str) -> Option<(&'d Item, Range<usize>)> {
        self.known.push(key);
        let (k, item) = self.table.get_key_value(key)?;
        let span = item.span().or_else(|| k.span()).unwrap_or_else(|| self.span.clone());
        Some((item, span))
    }

    fn key_span(&self, key: &str) -> Range<usize> {
        self.table.key(key).and_then(|k| k.span()).unwrap_or_else(|| self.span.clone())
    }

    fn wrong_type(&self, problems: &mut Problems, key: &str, expected: &str, found: &str, span: &Range<usize>) {
        problems.field(span, &format!("{}{key}", self.prefix), format!("must be {expected}, found {found}"));
    }

    fn text(&mut self, problems: &mut Problems, key: &'static str) -> Option<At<String>> {
        let (item, span) = self.get(key)?;
        match item.as_str() {
            Some(s) => Some(At { value: s.to_string(), span }),
            None => {
                self.wrong_type(problems, key, "a string", item.type_name(), &span);
                None
            }
        }
    }

    fn int(&mut self, problems: &mut Problems, key: &'static str) -> Option<At<i64>> {
        let (item, span) = self.get(key)?;
        match item.as_integer() {
            Some(i) => Some(At { value: i, span }),
            None => {
                self.wrong_type(problems, key, "a whole number", item.type_name(), &span);
                None
            }
        }
    }

    fn flag(&mut self, problems: &mut Problems, key: &'static str) -> Option<At<bool>> {
        let (item, span) = self.get(key)?;
        match item.as_bool() {
            Some(b) => Some(At { value: b, span }),
            None => {
                self.wrong_type(problems, key, "true or false", item.type_name(), &span);
                None
            }
        }
    }

    /// A number; a whole number counts (`prior_correction = 0`).
    fn number(&mut self, problems: &mut Problems, key: &'static str) -> Option<At<f64>> {
        let (item, span) = self.get(key)?;
        match (item.as_float(), item.as_integer()) {
            (Some(f), _) => Some(At { value: f, span }),
            (None, Some(i)) => Some(At { value: i as f64, span }),
            _ => {
                self.wrong_type(problems, key, "a number", item.type_name(), &span);
                None
            }
        }
    }

    /// A list of strings; anything else in it is reported and left out.
    fn texts(&mut self, problems: &mut Problems, key: &'static str) -> Option<At<Vec<At<String>>>> {
        let (item, span) = self.get(key)?;
        let Some(array) = item.as_array() else {
            self.wrong_type(problems, key, "a list of strings", item.type_name(), &span);
            return None;
        };
        let mut values = Vec::new();
        for v in array.iter() {
            let vspan = v.span().unwrap_or_else(|| span.clone());
            match v {
                Value::String(s) => values.push(At { value: s.value().clone(), span: vspan }),
                other => self.wrong_type(problems, key, "a list of strings", other.type_name(), &vspan),
            }
        }
        Some(At { value: values, span })
    }

    /// A `[key]` section (or `key = { ... }`, or dotted keys).
    fn section(&mut self, problems: &mut Problems, key: &'static str) -> Option<Section<'d>> {
        let (item, span) = self.get(key)?;
        match item.as_table_like() {
            Some(t) => Some(Section::new(t, self.key_span(key), format!("{}{key}.", self.prefix))),
            None => {
                problems.at(&span, format!("`{key}` must be a table ([{key}]), found {}", item.type_name()), None);
                None
            }
        }
    }

    /// The entries of `[[key]]` (or `key = [{ ... }, ...]`), in the order written.
    fn sections(&mut self, problems: &mut Problems, key: &'static str) -> Vec<Section<'d>> {
        let Some((item, span)) = self.get(key) else { return Vec::new() };
        let key_span = self.key_span(key);
        let entry = |i: usize, table: &'d dyn TableLike, span: Option<Range<usize>>| {
            Section::new(table, span.unwrap_or_else(|| key_span.clone()), format!("{key}[{i}]."))
        };
        if let Some(tables) = item.as_array_of_tables() {
            return tables.iter().enumerate().map(|(i, t)| entry(i, t as &dyn TableLike, t.span())).collect();
        }
        let Some(array) = item.as_array() else {
            problems.at(
                &span,
                format!("`{key}` must be a list of tables ([[{key}]]), found {}", item.type_name()),
                None,
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, v) in array.iter().enumerate() {
            match v.as_inline_table() {
                Some(t) => out.push(entry(i, t as &dyn TableLike, v.span())),
                None => problems.at(
                    &v.span().unwrap_or_else(|| span.clone()),
                    format!("`{key}[{i}]` must be a table, found {}", v.type_name()),
                    None,
                ),
            }
        }
        out
    }

    /// Reports every key of the section that no reader asked for. Only a
    /// close match is suggested: a list of every key would bury the line.
    fn finish(self, problems: &mut Problems) {
        for (key, _) in self.table.iter() {
            if self.known.contains(&key) {
                continue;
            }
            // `[ami]` names a section; `listeners[2]` one of several.
            let place = match self.prefix.strip_suffix('.') {
                Some(entry) if entry.ends_with(']') => format!(" in {entry}"),
                Some(section) => format!(" in [{section}]"),
                None => String::new(),
            };
            let help = did_you_mean(key, self.known.iter().copied());
            problems.at(&self.key_span(key), format!("unknown field `{key}`{place}"), help);
        }
    }
}
