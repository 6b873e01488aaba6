//! Asterisk chan_websocket (`Dial(WebSocket/<connection>/...)`), the media
//! codec. Wire facts are in `docs/PROTOCOLS.md` §1 (verified on Asterisk
//! 22.10); this module follows them byte for byte.
//!
//! - Events arrive as text frames in one of two control formats, fixed per
//!   call by the dial string (`f(json)`) or `chan_websocket.conf`. Asterisk
//!   does not negotiate, so the codec learns the format from the form of the
//!   first message (MEDIA_START) and answers every command in that format.
//! - Audio both ways is raw, headerless binary frames in the call's format.
//!   Asterisk cuts what we send into `optimal_frame_size` frames and drops
//!   a trailing partial frame, so prompts are padded to whole frames; a
//!   websocket frame over 65535 bytes makes Asterisk hang up (cause 38), so
//!   audio messages stay at or below [`MAX_AUDIO_MESSAGE_BYTES`].
//! - Commands over 128 bytes are silently ignored by Asterisk, so every
//!   command is checked against [`MAX_COMMAND_BYTES`] and mark ids are
//!   restricted to a short safe alphabet.
//!
//! Which dialplan a call runs and who the caller is come from the dial
//! string. Documented keys (see `docs/asterisk.md`), first match wins:
//!
//! | what | query parameter of the upgrade request (`v()`) | JSON channel variable (`__NAME` inherited from the caller) |
//! | --- | --- | --- |
//! | dialplan name | `dialplan` | `HOTLINE_DIALPLAN` |
//! | caller id | `caller_id` | `HOTLINE_CALLER_ID` |
//! | caller leg channel (AMI Redirect target) | `caller_chan` | `CALLER_CHANNEL` |
//! | caller leg uniqueid | `caller_uid` | `CALLER_UNIQUEID` |
use serde_json::Value;

use super::{AudioFormat, CallInfo, MediaCodec, PbxEvent, ProtocolError, WireMessage};

/// Asterisk ignores longer text frames without a word (PROTOCOLS.md §1.6).
pub const MAX_COMMAND_BYTES: usize = 128;
/// Largest binary message we send: whole frames, well under the 65535-byte
/// websocket frame limit (header included) past which Asterisk hangs up.
pub const MAX_AUDIO_MESSAGE_BYTES: usize = 64_000;
/// Largest text message we accept. MEDIA_START with channel variables is
/// the biggest event and is a few hundred bytes; anything near this is not
/// Asterisk.
pub const MAX_EVENT_BYTES: usize = 16 * 1024;
/// Longest correlation id we put in a MARK_MEDIA (keeps JSON commands far
/// below [`MAX_COMMAND_BYTES`]).
pub const MAX_MARK_ID_BYTES: usize = 48;

/// Names of the query parameters / channel variables this codec reads.
pub mod keys {
    pub const QUERY_DIALPLAN: &str = "dialplan";
    pub const QUERY_CALLER_ID: &str = "caller_id";
    pub const QUERY_CALLER_CHANNEL: &str = "caller_chan";
    pub const QUERY_CALLER_UNIQUEID: &str = "caller_uid";
    /// The call's secret for fetching its transfer decision (no-AMI method).
    pub const QUERY_DECISION_TOKEN: &str = "decision_token";
    pub const VAR_DIALPLAN: &str = "HOTLINE_DIALPLAN";
    pub const VAR_CALLER_ID: &str = "HOTLINE_CALLER_ID";
    pub const VAR_CALLER_CHANNEL: &str = "CALLER_CHANNEL";
    pub const VAR_CALLER_UNIQUEID: &str = "CALLER_UNIQUEID";
    pub const VAR_DECISION_TOKEN: &str = "HOTLINE_DECISION_TOKEN";
    /// Added to `CallInfo::variables`: the WebSocket channel's own name
    /// (AMI BlindTransfer target when the caller leg is unknown).
    pub const INFO_WEBSOCKET_CHANNEL: &str = "websocket_channel";
    /// Added to `CallInfo::variables`: the caller leg's channel name, only
    /// when the dial string told us (AMI Redirect target).
    pub const INFO_CALLER_CHANNEL: &str = "caller_channel";
    pub const INFO_CALLER_UNIQUEID: &str = "caller_uniqueid";
    /// Added to `CallInfo::variables` when the dial string has one; a
    /// secret, never logged or recorded.
    pub const INFO_DECISION_TOKEN: &str = "decision_token";
    pub const INFO_CONTROL_FORMAT: &str = "control_format";
}

/// How control messages are written on this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlFormat {
    PlainText,
    Json,
}

impl ControlFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ControlFormat::PlainText => "plain-text",
            ControlFormat::Json => "json",
        }
    }
}

/// The chan_websocket codec of one call.
#[derive(Debug)]
pub struct AsteriskWsCodec {
    query: Vec<(String, String)>,
    control: ControlFormat,
    started: Option<Started>,
}

#[derive(Debug, Clone, Copy)]
struct Started {
    format: AudioFormat,
    frame_bytes: usize,
}

impl AsteriskWsCodec {
    /// `request_target` is the path and query of the websocket upgrade
    /// request (`/call?dialplan=hotline&caller_chan=...`).
    pub fn new(request_target: &str) -> Self {
        AsteriskWsCodec { query: parse_query(request_target), control: ControlFormat::PlainText, started: None }
    }

    #[cfg(test)]
    pub fn control_format(&self) -> ControlFormat {
        self.control
    }

    fn command(&self, name: &str, correlation_id: Option<&str>) -> WireMessage {
        let text = match (self.control, correlation_id) {
            (ControlFormat::PlainText, None) => name.to_string(),
            (ControlFormat::PlainText, Some(id)) => format!("{name} {id}"),
            (ControlFormat::Json, None) => serde_json::json!({ "command": name }).to_string(),
            (ControlFormat::Json, Some(id)) => serde_json::json!({ "command": name, "correlation_id": id }).to_string(),
        };
        debug_assert!(text.len() <= MAX_COMMAND_BYTES, "command too long: {text}");
        WireMessage::Text(text)
    }

    fn on_text(&mut self, text: &str) -> Result<Vec<PbxEvent>, ProtocolError> {
        if text.len() > MAX_EVENT_BYTES {
            return Err(ProtocolError(format!(
                "text frame of {} bytes exceeds the {MAX_EVENT_BYTES}-byte limit for events",
                text.len()
            )));
        }
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ProtocolError("empty text frame".into()));
        }
        let event =
            if trimmed.starts_with('{') { ParsedEvent::from_json(trimmed)? } else { ParsedEvent::from_plain(trimmed)? };
        if event.name == "MEDIA_START" {
            return self.on_media_start(event).map(|info| vec![PbxEvent::Start(info)]);
        }
        if self.started.is_none() {
            return Err(ProtocolError(format!("{} before MEDIA_START", event.name)));
        }
        let ev = match event.name.as_str() {
            "DTMF_END" => {
                let digit = event.get("digit").ok_or_else(|| ProtocolError("DTMF_END without digit".into()))?;
                let mut chars = digit.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if matches!(c, '0'..='9' | '*' | '#' | 'A'..='D') => PbxEvent::Dtmf(c),
                    _ => return Err(ProtocolError(format!("DTMF_END with invalid digit {digit:?}"))),
                }
            }
            "MEDIA_XOFF" => PbxEvent::Pause,
            "MEDIA_XON" => PbxEvent::Resume,
            "MEDIA_MARK_PROCESSED" => PbxEvent::MarkReached(event.correlation_id()),
            // Not an event Asterisk 22 sends (the end of a call is the close
            // frame), but harmless to honour if a proxy or later version does.
            "HANGUP" => PbxEvent::Hangup { reason: "HANGUP event from Asterisk".into() },
            "QUEUE_DRAINED" => PbxEvent::Ignored("QUEUE_DRAINED".into()),
            "MEDIA_BUFFERING_COMPLETED" => {
                PbxEvent::Ignored(format!("MEDIA_BUFFERING_COMPLETED {}", event.correlation_id()))
            }
            "STATUS" => PbxEvent::Ignored(format!("STATUS {}", event.describe())),
            "ERROR" => {
                let text = event.get("error_text").unwrap_or_default();
                tracing::warn!(error = %text.trim_end(), "Asterisk rejected a command");
                PbxEvent::Ignored(format!("ERROR {}", text.trim_end()))
            }
            other => {
                // Newer Asterisk versions may add events; a call must not
                // end because of one. Logged by the server as ignored.
                PbxEvent::Ignored(format!("unknown event {}", super::excerpt(other, 64)))
            }
        };
        Ok(vec![ev])
    }

    fn on_media_start(&mut self, event: ParsedEvent) -> Result<CallInfo, ProtocolError> {
        if self.started.is_some() {
            return Err(ProtocolError("second MEDIA_START on one connection".into()));
        }
        self.control = event.control;
        let format_name = event.get("format").ok_or_else(|| ProtocolError("MEDIA_START without format".into()))?;
        let format = format_from_name(&format_name).ok_or_else(|| {
            ProtocolError(format!(
                "MEDIA_START format {:?} is not supported (use c(slin16), c(slin) or c(ulaw) in the dial string)",
                super::excerpt(&format_name, 32)
            ))
        })?;
        let frame_bytes = match event.get("optimal_frame_size") {
            None => format.frame_bytes(),
            Some(s) => s.parse::<usize>().map_err(|_| {
                ProtocolError(format!("MEDIA_START optimal_frame_size {:?} is not a number", super::excerpt(&s, 32)))
            })?,
        };
        if frame_bytes == 0 || frame_bytes % format.bytes_per_sample() != 0 || frame_bytes > MAX_AUDIO_MESSAGE_BYTES {
            return Err(ProtocolError(format!(
                "MEDIA_START optimal_frame_size {frame_bytes} does not fit format {format_name} (passthrough codecs are not supported)"
            )));
        }
        let call_id = event.get("channel_id").unwrap_or_default();
        if call_id.is_empty() {
            return Err(ProtocolError("MEDIA_START without channel_id".into()));
        }
        let ws_channel = event.get("channel");
        let lookup = |query_key: &str, var: &str| -> Option<String> {
            self.query
                .iter()
                .find(|(k, _)| k == query_key)
                .map(|(_, v)| v.clone())
                .or_else(|| event.variable(var))
                .filter(|v| !v.is_empty())
        };
        let dialplan = lookup(keys::QUERY_DIALPLAN, keys::VAR_DIALPLAN);
        let caller_id = lookup(keys::QUERY_CALLER_ID, keys::VAR_CALLER_ID);
        let caller_channel = lookup(keys::QUERY_CALLER_CHANNEL, keys::VAR_CALLER_CHANNEL);
        let caller_uid = lookup(keys::QUERY_CALLER_UNIQUEID, keys::VAR_CALLER_UNIQUEID);
        let decision_token = lookup(keys::QUERY_DECISION_TOKEN, keys::VAR_DECISION_TOKEN);

        let mut variables = Vec::new();
        variables.push((keys::INFO_CONTROL_FORMAT.to_string(), event.control.as_str().to_string()));
        if let Some(c) = &ws_channel {
            variables.push((keys::INFO_WEBSOCKET_CHANNEL.to_string(), c.clone()));
        }
        if let Some(c) = &caller_channel {
            variables.push((keys::INFO_CALLER_CHANNEL.to_string(), c.clone()));
        }
        if let Some(u) = &caller_uid {
            variables.push((keys::INFO_CALLER_UNIQUEID.to_string(), u.clone()));
        }
        if let Some(t) = decision_token {
            variables.push((keys::INFO_DECISION_TOKEN.to_string(), t));
        }
        for (k, v) in &event.channel_variables {
            variables.push((k.clone(), v.clone()));
        }
        self.started = Some(Started { format, frame_bytes });
        Ok(CallInfo {
            call_id,
            // The caller leg is what a Redirect must move; without it the
            // WebSocket channel itself (BlindTransfer moves its peer).
            channel: caller_channel.or(ws_channel),
            caller_id,
            dialplan,
            format: Some(format),
            frame_bytes: Some(frame_bytes),
            variables,
        })
    }

    fn on_binary(&mut self, bytes: &[u8]) -> Result<Vec<PbxEvent>, ProtocolError> {
        let started = self
            .started
            .ok_or_else(|| ProtocolError(format!("{}-byte audio frame before MEDIA_START", bytes.len())))?;
        if !bytes.len().is_multiple_of(started.format.bytes_per_sample()) {
            return Err(ProtocolError(format!(
                "{}-byte audio frame is not a whole number of 16-bit samples",
                bytes.len()
            )));
        }
        // Asterisk sends 20 ms frames; a big one is not Asterisk and would
        // let a peer push unbounded audio into the call in one go.
        if bytes.len() > started.frame_bytes.max(started.format.frame_bytes()) * 10 {
            return Err(ProtocolError(format!(
                "{}-byte audio frame is far larger than the {}-byte frames announced",
                bytes.len(),
                started.frame_bytes
            )));
        }
        if bytes.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![PbxEvent::Audio(started.format.decode(bytes))])
    }
}

impl MediaCodec for AsteriskWsCodec {
    fn on_message(&mut self, msg: WireMessage) -> Result<Vec<PbxEvent>, ProtocolError> {
        match msg {
            WireMessage::Text(t) => self.on_text(&t),
            WireMessage::Binary(b) => self.on_binary(&b),
            WireMessage::Close => Ok(vec![PbxEvent::Hangup { reason: "websocket closed by Asterisk".into() }]),
        }
    }

    fn answer(&mut self) -> Vec<WireMessage> {
        vec![self.command("ANSWER", None)]
    }

    /// Whole frames only (the tail is padded with silence, or Asterisk
    /// would drop it), in messages of at most [`MAX_AUDIO_MESSAGE_BYTES`].
    fn audio(&mut self, samples: &[i16]) -> Vec<WireMessage> {
        let Some(started) = self.started else { return Vec::new() };
        let frame_samples = started.frame_bytes / started.format.bytes_per_sample();
        let frames_per_message = (MAX_AUDIO_MESSAGE_BYTES / started.frame_bytes).max(1);
        let chunk = frame_samples * frames_per_message;
        samples
            .chunks(chunk)
            .map(|part| {
                let whole = part.len().div_ceil(frame_samples) * frame_samples;
                let mut padded = Vec::with_capacity(whole);
                padded.extend_from_slice(part);
                padded.resize(whole, 0);
                WireMessage::Binary(started.format.encode(&padded))
            })
            .collect()
    }

    fn mark(&mut self, id: &str) -> Vec<WireMessage> {
        vec![self.command("MARK_MEDIA", Some(&sanitize_mark_id(id)))]
    }

    fn flush(&mut self) -> Vec<WireMessage> {
        vec![self.command("FLUSH_MEDIA", None)]
    }

    fn hangup(&mut self) -> Vec<WireMessage> {
        vec![self.command("HANGUP", None)]
    }

    fn paces_playback(&self) -> bool {
        true
    }

    fn reports_playback_end(&self) -> bool {
        true
    }

    fn idle_keepalive(&self) -> Option<WireMessage> {
        None
    }
}

/// Mark ids travel back in MEDIA_MARK_PROCESSED as a bare plain-text token,
/// so they must not contain spaces; keep them short and boring.
pub fn sanitize_mark_id(id: &str) -> String {
    id.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).take(MAX_MARK_ID_BYTES).collect()
}

/// Asterisk format names → wire encoding (PROTOCOLS.md §1.2, §1.5).
pub fn format_from_name(name: &str) -> Option<AudioFormat> {
    Some(match name {
        "slin" => AudioFormat::Slin(8000),
        "slin12" => AudioFormat::Slin(12000),
        "slin16" => AudioFormat::Slin(16000),
        "slin24" => AudioFormat::Slin(24000),
        "slin32" => AudioFormat::Slin(32000),
        "slin44" => AudioFormat::Slin(44100),
        "slin48" => AudioFormat::Slin(48000),
        "ulaw" => AudioFormat::Ulaw,
        "alaw" => AudioFormat::Alaw,
        _ => return None,
    })
}

/// One event, whichever control format it came in.
struct ParsedEvent {
    control: ControlFormat,
    name: String,
    fields: Vec<(String, String)>,
    /// Bare argument of plain-text events (`MEDIA_MARK_PROCESSED prompt-1`).
    argument: Option<String>,
    channel_variables: Vec<(String, String)>,
}

impl ParsedEvent {
    fn from_json(text: &str) -> Result<Self, ProtocolError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ProtocolError(format!("invalid JSON event ({e}): {}", super::excerpt(text, 80))))?;
        let Value::Object(obj) = value else {
            return Err(ProtocolError(format!("JSON event is not an object: {}", super::excerpt(text, 80))));
        };
        let name = match obj.get("event") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(ProtocolError(format!("JSON event without \"event\": {}", super::excerpt(text, 80)))),
        };
        let mut fields = Vec::new();
        let mut channel_variables = Vec::new();
        for (k, v) in &obj {
            match (k.as_str(), v) {
                ("event", _) => {}
                ("channel_variables", Value::Object(vars)) => {
                    for (vk, vv) in vars {
                        channel_variables.push((vk.clone(), scalar_to_string(vv)));
                    }
                }
                (_, v) => fields.push((k.clone(), scalar_to_string(v))),
            }
        }
        Ok(ParsedEvent { control: ControlFormat::Json, name, fields, argument: None, channel_variables })
    }

    /// `NAME key:value key:value ...`; `error_text:` takes the rest of the
    /// line (its value has spaces); a token without a colon right after the
    /// name is the bare argument (correlation id).
    fn from_plain(text: &str) -> Result<Self, ProtocolError> {
        let (name, rest) = match text.split_once(' ') {
            Some((n, r)) => (n, r.trim_start()),
            None => (text, ""),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit()) {
            return Err(ProtocolError(format!("not an Asterisk event: {}", super::excerpt(text, 80))));
        }
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut argument = None;
        let mut rest = rest;
        while !rest.is_empty() {
            if let Some(value) = rest.strip_prefix("error_text:") {
                fields.push(("error_text".into(), value.to_string()));
                break;
            }
            let (token, tail) = match rest.split_once(' ') {
                Some((t, r)) => (t, r.trim_start()),
                None => (rest, ""),
            };
            match token.split_once(':') {
                Some((k, v)) if !k.is_empty() => fields.push((k.to_string(), v.to_string())),
                _ if fields.is_empty() && argument.is_none() => argument = Some(token.to_string()),
                _ => {
                    // A value with a space: glue it back to the previous one.
                    if let Some(last) = fields.last_mut() {
                        last.1.push(' ');
                        last.1.push_str(token);
                    }
                }
            }
            rest = tail;
        }
        Ok(ParsedEvent {
            control: ControlFormat::PlainText,
            name: name.to_string(),
            fields,
            argument,
            channel_variables: Vec::new(),
        })
    }

    fn get(&self, key: &str) -> Option<String> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    fn correlation_id(&self) -> String {
        self.get("correlation_id").or_else(|| self.argument.clone()).unwrap_or_default()
    }

    /// A channel variable by name, also when inherited (`_NAME`, `__NAME`).
    fn variable(&self, name: &str) -> Option<String> {
        self.channel_variables.iter().find(|(k, _)| k.trim_start_matches('_') == name).map(|(_, v)| v.clone())
    }

    fn describe(&self) -> String {
        self.fields.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(" ")
    }
}

fn scalar_to_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Query parameters of a request target, percent-decoded (`+` is a space).
pub fn parse_query(target: &str) -> Vec<(String, String)> {
    let Some((_, query)) = target.split_once('?') else { return Vec::new() };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            // Query strings are form-encoded: `+` is a space.
            (super::percent_decode(k, true), super::percent_decode(v, true))
        })
        .collect()
}

#[cfg(test)]
mod tests;
