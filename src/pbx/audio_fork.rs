//! FreeSWITCH mod_audio_fork (drachtio), PROTOCOLS.md §4.
//!
//! FreeSWITCH connects with subprotocol [`SUBPROTOCOL`], sends the metadata
//! given to `uuid_audio_fork ... start` as the first text frame, then raw
//! L16 audio in binary frames of any length. It does not play audio we
//! send: a `playAudio` message makes it write a temp file and fire the
//! `mod_audio_fork::play_audio` event, and the controlling application
//! (hotline over ESL, see `esl.rs`) plays that file with `uuid_broadcast`.
//! DTMF and the end of playback also arrive over ESL, not on this socket.
//!
//! The metadata is ours to define (the admin writes it in the FreeSWITCH
//! dialplan, see docs/freeswitch.md); [`parse_metadata`] reads it.
use base64::Engine as _;
use serde_json::{json, Value};

use super::{AudioFormat, CallInfo, MediaCodec, PbxEvent, ProtocolError, WireMessage};

/// Websocket subprotocol FreeSWITCH asks for (overridable there with
/// `MOD_AUDIO_FORK_SUBPROTOCOL_NAME`).
pub const SUBPROTOCOL: &str = "audio.drachtio.org";

/// Largest text frame accepted from FreeSWITCH. Metadata is a few hundred
/// bytes; the bound keeps a runaway peer from filling memory.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Largest binary frame accepted: mod_audio_fork sends everything buffered
/// since its last write, at most `MOD_AUDIO_FORK_BUFFER_SECS` (≤ 5 s); 5 s
/// of 48 kHz stereo L16 is 960 000 bytes.
pub const MAX_AUDIO_BYTES: usize = 1024 * 1024;

/// FreeSWITCH reassembles text messages up to 650 KiB. Prompt audio is cut
/// into pieces whose base64 JSON stays well below that (each piece becomes
/// one temp file, played in order by queued `uuid_broadcast`s).
pub const MAX_PLAY_BYTES: usize = 256 * 1024;

/// Raw sample rates the modules accept for playback files.
pub const PLAY_RATES: [u32; 6] = [8000, 16000, 24000, 32000, 48000, 64000];

/// Where the call's audio settings come from when the metadata is silent.
#[derive(Debug, Clone, PartialEq)]
pub struct FreeswitchOptions {
    /// The rate given to `uuid_audio_fork/uuid_audio_stream ... start`
    /// (`8k`, `16k`): used when the metadata has no `sampleRate`.
    pub rate: u32,
}

impl Default for FreeswitchOptions {
    fn default() -> Self {
        FreeswitchOptions { rate: 8000 }
    }
}

/// Reads the metadata text frame:
///
/// ```json
/// {"uuid":"${uuid}","dialplan":"hotline","caller_id":"${caller_id_number}","sampleRate":8000, ...}
/// ```
///
/// `uuid` (alias `callId`/`call_id`) is required: every ESL command needs
/// the channel's UUID. Other scalar fields go to `CallInfo::variables`.
pub fn parse_metadata(text: &str, default_rate: u32, module: &str) -> Result<CallInfo, ProtocolError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ProtocolError(format!("{module} metadata (first text frame) is not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ProtocolError(format!("{module} metadata must be a JSON object, got {}", kind_of(&value))));
    };
    let string_field = |names: &[&str]| -> Result<Option<String>, ProtocolError> {
        for name in names {
            match map.get(*name) {
                None | Some(Value::Null) => continue,
                Some(Value::String(s)) if s.trim().is_empty() => {
                    return Err(ProtocolError(format!("{module} metadata field {name:?} is empty")))
                }
                Some(Value::String(s)) => return Ok(Some(s.trim().to_string())),
                Some(Value::Number(n)) => return Ok(Some(n.to_string())),
                Some(other) => {
                    return Err(ProtocolError(format!(
                        "{module} metadata field {name:?} must be a string, got {}",
                        kind_of(other)
                    )))
                }
            }
        }
        Ok(None)
    };
    let call_id = string_field(&["uuid", "callId", "call_id"])?.ok_or_else(|| {
        ProtocolError(format!(
            "{module} metadata has no \"uuid\" field; start the stream with metadata like {{\"uuid\":\"${{uuid}}\",\"dialplan\":\"hotline\"}}"
        ))
    })?;
    if call_id.chars().any(char::is_whitespace) {
        return Err(ProtocolError(format!("{module} metadata field \"uuid\" contains whitespace: {call_id:?}")));
    }
    let rate = match map.get("sampleRate").or_else(|| map.get("sample_rate")) {
        None | Some(Value::Null) => default_rate,
        Some(v) => parse_rate(v).ok_or_else(|| {
            ProtocolError(format!(
                "{module} metadata field \"sampleRate\" must be a multiple of 8000 up to 192000, got {v}"
            ))
        })?,
    };
    let known = ["uuid", "callId", "call_id", "dialplan", "caller_id", "callerId", "sampleRate", "sample_rate"];
    let variables = map
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k.clone(), s.clone())),
            Value::Number(_) | Value::Bool(_) => Some((k.clone(), v.to_string())),
            _ => None,
        })
        .collect();
    Ok(CallInfo {
        call_id,
        channel: None,
        caller_id: string_field(&["caller_id", "callerId"])?,
        dialplan: string_field(&["dialplan"])?,
        format: Some(AudioFormat::Slin(rate)),
        frame_bytes: Some(AudioFormat::Slin(rate).frame_bytes()),
        variables,
    })
}

fn parse_rate(v: &Value) -> Option<u32> {
    let n = match v {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => {
            let s = s.trim();
            let n = s.trim_end_matches(['k', 'K']).parse::<u64>().ok()?;
            if s.ends_with(['k', 'K']) {
                n.checked_mul(1000)?
            } else {
                n
            }
        }
        _ => return None,
    };
    (n > 0 && n % 8000 == 0 && n <= 192_000).then_some(n as u32)
}

pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What both FreeSWITCH modules send us: metadata, then L16 audio. Shared
/// by [`AudioForkCodec`] and `audio_stream::AudioStreamCodec`.
#[derive(Debug)]
pub(crate) struct FreeswitchInbound {
    module: &'static str,
    options: FreeswitchOptions,
    info: Option<CallInfo>,
    /// An odd trailing byte of a binary frame, completed by the next one.
    carry: Option<u8>,
    closed: bool,
}

impl FreeswitchInbound {
    pub(crate) fn new(module: &'static str, options: FreeswitchOptions) -> Self {
        FreeswitchInbound { module, options, info: None, carry: None, closed: false }
    }

    pub(crate) fn rate(&self) -> u32 {
        match self.info.as_ref().and_then(|i| i.format) {
            Some(f) => f.rate(),
            None => self.options.rate,
        }
    }

    /// Prompt audio as the module's JSON messages (`build` makes them), once
    /// the metadata frame has told us the call; nothing otherwise.
    pub(crate) fn prompt_messages(
        &self,
        samples: &[i16],
        build: impl FnOnce(&[i16]) -> Result<Vec<String>, ProtocolError>,
    ) -> Vec<WireMessage> {
        if samples.is_empty() {
            return Vec::new();
        }
        if !self.started() {
            tracing::warn!("prompt audio before the metadata frame: not sent");
            return Vec::new();
        }
        match build(samples) {
            Ok(msgs) => msgs.into_iter().map(WireMessage::Text).collect(),
            Err(e) => {
                tracing::error!(error = %e, "prompt not sent");
                Vec::new()
            }
        }
    }

    pub(crate) fn started(&self) -> bool {
        self.info.is_some()
    }

    pub(crate) fn on_message(&mut self, msg: WireMessage) -> Result<Vec<PbxEvent>, ProtocolError> {
        let module = self.module;
        match msg {
            WireMessage::Text(text) => {
                if text.len() > MAX_TEXT_BYTES {
                    return Err(ProtocolError(format!(
                        "{module} text frame of {} bytes is larger than the {MAX_TEXT_BYTES} bytes accepted",
                        text.len()
                    )));
                }
                if self.info.is_none() {
                    let info = parse_metadata(&text, self.options.rate, module)?;
                    self.info = Some(info.clone());
                    return Ok(vec![PbxEvent::Start(info)]);
                }
                // `uuid_audio_fork ... stop <text>` sends a final text frame.
                let preview: String = text.chars().take(80).collect();
                Ok(vec![PbxEvent::Ignored(format!("{module} text frame: {preview}"))])
            }
            WireMessage::Binary(bytes) => {
                if self.info.is_none() {
                    return Err(ProtocolError(format!(
                        "{module} sent audio before the metadata text frame; start the stream with metadata \
                         {{\"uuid\":\"${{uuid}}\",...}} (see docs/freeswitch.md)"
                    )));
                }
                if bytes.len() > MAX_AUDIO_BYTES {
                    return Err(ProtocolError(format!(
                        "{module} binary frame of {} bytes is larger than the {MAX_AUDIO_BYTES} bytes accepted",
                        bytes.len()
                    )));
                }
                if bytes.is_empty() {
                    // graceful-shutdown: one empty frame, then no more audio.
                    return Ok(vec![PbxEvent::Ignored(format!("{module} graceful shutdown (empty binary frame)"))]);
                }
                let mut joined;
                let data: &[u8] = match self.carry.take() {
                    Some(b) => {
                        joined = Vec::with_capacity(bytes.len() + 1);
                        joined.push(b);
                        joined.extend_from_slice(&bytes);
                        &joined
                    }
                    None => &bytes,
                };
                if data.len() % 2 == 1 {
                    self.carry = data.last().copied();
                }
                let samples = AudioFormat::Slin(self.rate()).decode(data);
                Ok(if samples.is_empty() { Vec::new() } else { vec![PbxEvent::Audio(samples)] })
            }
            WireMessage::Close => {
                if self.closed {
                    return Ok(Vec::new());
                }
                self.closed = true;
                Ok(vec![PbxEvent::Hangup { reason: format!("{module} websocket closed") }])
            }
        }
    }
}

/// Validates the rate prompt audio is sent at: the modules only accept a
/// few raw rates, so anything else is a configuration error to report.
pub(crate) fn play_rate(rate: u32, module: &str) -> Result<u32, ProtocolError> {
    if PLAY_RATES.contains(&rate) {
        Ok(rate)
    } else {
        Err(ProtocolError(format!("{module} cannot play raw audio at {rate} Hz (accepted: {PLAY_RATES:?})")))
    }
}

/// Cuts prompt audio into pieces of at most [`MAX_PLAY_BYTES`] of L16 and
/// base64-encodes each.
pub(crate) fn base64_pieces(samples: &[i16]) -> Vec<String> {
    samples
        .chunks(MAX_PLAY_BYTES / 2)
        .map(|piece| base64::engine::general_purpose::STANDARD.encode(AudioFormat::Slin(0).encode(piece)))
        .collect()
}

/// The codec of one mod_audio_fork connection.
#[derive(Debug)]
pub struct AudioForkCodec {
    inbound: FreeswitchInbound,
}

impl AudioForkCodec {
    pub fn new(options: FreeswitchOptions) -> Self {
        AudioForkCodec { inbound: FreeswitchInbound::new("mod_audio_fork", options) }
    }

    /// The `playAudio` JSON messages for prompt audio at the call's rate.
    pub fn play_audio_messages(&self, samples: &[i16]) -> Result<Vec<String>, ProtocolError> {
        let rate = play_rate(self.inbound.rate(), "mod_audio_fork")?;
        Ok(base64_pieces(samples)
            .into_iter()
            .map(|b64| {
                json!({"type": "playAudio", "data": {"audioContentType": "raw", "sampleRate": rate, "audioContent": b64}})
                    .to_string()
            })
            .collect())
    }
}

impl MediaCodec for AudioForkCodec {
    fn on_message(&mut self, msg: WireMessage) -> Result<Vec<PbxEvent>, ProtocolError> {
        self.inbound.on_message(msg)
    }

    fn answer(&mut self) -> Vec<WireMessage> {
        // The channel is (pre-)answered before uuid_audio_fork can start.
        Vec::new()
    }

    fn audio(&mut self, samples: &[i16]) -> Vec<WireMessage> {
        self.inbound.prompt_messages(samples, |x| self.play_audio_messages(x))
    }

    /// No marks: the end of playback is the ESL `PLAYBACK_STOP` event of the
    /// broadcast file, or the server's own timing.
    fn mark(&mut self, _id: &str) -> Vec<WireMessage> {
        Vec::new()
    }

    /// `killAudio` stops the file playing now; queued broadcasts are
    /// dropped with ESL `uuid_break <uuid> all`.
    fn flush(&mut self) -> Vec<WireMessage> {
        vec![WireMessage::Text(json!({"type": "killAudio"}).to_string())]
    }

    /// Closing the fork ends the stream only; the call itself is hung up
    /// over ESL (`uuid_kill`).
    fn hangup(&mut self) -> Vec<WireMessage> {
        vec![WireMessage::Close]
    }

    /// FreeSWITCH plays the whole file at its own pace.
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

/// The body of a `mod_audio_fork::play_audio` / `mod_audio_stream::play`
/// event: `data` of our message minus the audio, plus the temp `file`.
pub fn play_event_file(body: &str) -> Result<String, ProtocolError> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| ProtocolError(format!("play event body is not valid JSON: {e}")))?;
    match v.get("file") {
        Some(Value::String(f)) if !f.is_empty() => Ok(f.clone()),
        Some(other) => {
            Err(ProtocolError(format!("play event field \"file\" must be a string, got {}", kind_of(other))))
        }
        None => Err(ProtocolError("play event body has no \"file\" field".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = r#"{"uuid":"a1b2c3d4-0000-4000-8000-000000000001","dialplan":"hotline","caller_id":"1001","sampleRate":16000,"queue":"sales"}"#;

    fn started() -> AudioForkCodec {
        let mut c = AudioForkCodec::new(FreeswitchOptions::default());
        c.on_message(WireMessage::Text(META.into())).unwrap();
        c
    }

    #[test]
    fn metadata_frame_becomes_call_info() {
        let mut c = AudioForkCodec::new(FreeswitchOptions::default());
        let ev = c.on_message(WireMessage::Text(META.into())).unwrap();
        let [PbxEvent::Start(info)] = &ev[..] else { panic!("{ev:?}") };
        assert_eq!(info.call_id, "a1b2c3d4-0000-4000-8000-000000000001");
        assert_eq!(info.dialplan.as_deref(), Some("hotline"));
        assert_eq!(info.caller_id.as_deref(), Some("1001"));
        assert_eq!(info.format, Some(AudioFormat::Slin(16000)));
        assert_eq!(info.variables, vec![("queue".to_string(), "sales".to_string())]);
    }

    #[test]
    fn rate_comes_from_options_when_metadata_has_none() {
        let mut c = AudioForkCodec::new(FreeswitchOptions { rate: 8000 });
        let ev = c.on_message(WireMessage::Text(r#"{"uuid":"u-1","sampleRate":"8k"}"#.into())).unwrap();
        assert!(matches!(&ev[0], PbxEvent::Start(i) if i.format == Some(AudioFormat::Slin(8000))));
        let ev = c.on_message(WireMessage::Binary(vec![1, 0, 2, 0, 3])).unwrap();
        assert_eq!(ev, vec![PbxEvent::Audio(vec![1, 2])]);
        // The odd byte waits for its partner.
        let ev = c.on_message(WireMessage::Binary(vec![0, 4, 0])).unwrap();
        assert_eq!(ev, vec![PbxEvent::Audio(vec![3, 4])]);
    }

    #[test]
    fn play_audio_carries_base64_raw_audio_and_rate() {
        let mut c = started();
        let out = c.audio(&[1, -2, 3]);
        let [WireMessage::Text(t)] = &out[..] else { panic!("{out:?}") };
        let v: Value = serde_json::from_str(t).unwrap();
        assert_eq!(v["type"], "playAudio");
        assert_eq!(v["data"]["audioContentType"], "raw");
        assert_eq!(v["data"]["sampleRate"], 16000);
        let raw =
            base64::engine::general_purpose::STANDARD.decode(v["data"]["audioContent"].as_str().unwrap()).unwrap();
        assert_eq!(raw, vec![1, 0, 0xfe, 0xff, 3, 0]);
        assert_eq!(c.flush(), vec![WireMessage::Text(r#"{"type":"killAudio"}"#.into())]);
        assert!(c.mark("m").is_empty());
    }

    #[test]
    fn long_prompts_are_cut_below_the_reassembly_limit() {
        let mut c = started();
        let out = c.audio(&vec![5i16; 16000 * 20]);
        assert_eq!(out.len(), 3);
        for m in &out {
            let WireMessage::Text(t) = m else { panic!() };
            assert!(t.len() < 650 * 1024);
        }
    }

    #[test]
    fn malformed_metadata_is_a_named_error() {
        let cases = [
            ("not json", "not valid JSON"),
            ("[1,2]", "must be a JSON object"),
            (r#"{"dialplan":"x"}"#, "no \"uuid\""),
            (r#"{"uuid":7.5e400}"#, "not valid JSON"),
            (r#"{"uuid":["a"]}"#, "must be a string"),
            (r#"{"uuid":"a b"}"#, "whitespace"),
            (r#"{"uuid":"a","sampleRate":11025}"#, "multiple of 8000"),
            (r#"{"uuid":"a","sampleRate":"99999999999999999k"}"#, "multiple of 8000"),
        ];
        for (text, expect) in cases {
            let mut c = AudioForkCodec::new(FreeswitchOptions::default());
            let err = c.on_message(WireMessage::Text(text.into())).unwrap_err();
            assert!(err.0.contains(expect), "{text}: {err}");
        }
    }

    #[test]
    fn audio_before_metadata_and_oversized_frames_are_refused() {
        let mut c = AudioForkCodec::new(FreeswitchOptions::default());
        assert!(c.on_message(WireMessage::Binary(vec![0, 0])).unwrap_err().0.contains("before the metadata"));
        let mut c = started();
        assert!(c.on_message(WireMessage::Text("x".repeat(MAX_TEXT_BYTES + 1))).is_err());
        assert!(c.on_message(WireMessage::Binary(vec![0; MAX_AUDIO_BYTES + 2])).is_err());
        assert!(matches!(&c.on_message(WireMessage::Binary(vec![])).unwrap()[0], PbxEvent::Ignored(_)));
        assert!(matches!(&c.on_message(WireMessage::Close).unwrap()[0], PbxEvent::Hangup { .. }));
        assert!(c.on_message(WireMessage::Close).unwrap().is_empty());
    }

    #[test]
    fn play_event_body_names_the_file() {
        let body = r#"{"audioContentType":"raw","sampleRate":8000,"file":"/tmp/a1b2_1.tmp.r8"}"#;
        assert_eq!(play_event_file(body).unwrap(), "/tmp/a1b2_1.tmp.r8");
        assert!(play_event_file("{}").is_err());
        assert!(play_event_file("{").is_err());
    }
}
