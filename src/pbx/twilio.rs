//! Twilio Media Streams, PROTOCOLS.md §7: JSON text frames over a
//! websocket Twilio opens (`<Connect><Stream>` for two-way audio).
//!
//! In: `connected`, `start`, `media` (base64 µ-law 8 kHz), `dtmf`, `mark`,
//! `stop`. Out: `media`, `mark`, `clear`. Twilio queues and paces our
//! audio and echoes each mark when playback reaches it. Numbers such as
//! `sequenceNumber`, `chunk` and `timestamp` are JSON strings.
//!
//! The dialplan to run comes from `<Parameter name="dialplan" value="..."/>`
//! (`start.customParameters.dialplan`); the caller's number from a
//! `caller_id` (or `from`) parameter. Transfer is not part of this
//! protocol: see `webhook.rs`.
use base64::Engine as _;
use serde_json::{json, Value};

use super::audio_fork::kind_of;
use super::{AudioFormat, CallInfo, MediaCodec, PbxEvent, ProtocolError, WireMessage};

/// Largest text frame accepted. A media message of 20 ms is ~300 bytes;
/// `start` with custom parameters a few KiB.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// µ-law bytes per outgoing `media` message (20 ms, what Twilio sends us).
const OUT_CHUNK: usize = 160;

/// The codec of one Media Streams connection.
#[derive(Debug, Default)]
pub struct TwilioCodec {
    stream_sid: Option<String>,
    call_sid: Option<String>,
    ended: bool,
}

impl TwilioCodec {
    pub fn new() -> Self {
        Self::default()
    }

    /// The stream's id, once `start` has arrived.
    pub fn stream_sid(&self) -> Option<&str> {
        self.stream_sid.as_deref()
    }

    pub fn call_sid(&self) -> Option<&str> {
        self.call_sid.as_deref()
    }

    fn on_text(&mut self, text: &str) -> Result<Vec<PbxEvent>, ProtocolError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(ProtocolError(format!(
                "Twilio message of {} bytes is larger than the {MAX_TEXT_BYTES} bytes accepted",
                text.len()
            )));
        }
        let v: Value =
            serde_json::from_str(text).map_err(|e| ProtocolError(format!("Twilio message is not valid JSON: {e}")))?;
        let event = str_at(&v, &["event"], "message")?;
        match event {
            "connected" => Ok(vec![PbxEvent::Ignored("Twilio connected".into())]),
            "start" => self.on_start(&v),
            "media" => {
                self.require_started("media")?;
                // A stream may carry both tracks; only the caller's is ours.
                let track = opt_str_at(&v, &["media", "track"], "media")?.unwrap_or("inbound");
                if track != "inbound" && track != "inbound_track" {
                    return Ok(vec![PbxEvent::Ignored(format!("Twilio media of track {track:?}"))]);
                }
                let payload = str_at(&v, &["media", "payload"], "media")?;
                let bytes = base64::engine::general_purpose::STANDARD.decode(payload).map_err(|e| {
                    let chunk = opt_str_at(&v, &["media", "chunk"], "media").ok().flatten().unwrap_or("?");
                    ProtocolError(format!("Twilio media chunk {chunk}: payload is not valid base64: {e}"))
                })?;
                Ok(vec![PbxEvent::Audio(AudioFormat::Ulaw.decode(&bytes))])
            }
            "dtmf" => {
                self.require_started("dtmf")?;
                let digit = str_at(&v, &["dtmf", "digit"], "dtmf")?;
                let mut chars = digit.chars();
                match (chars.next(), chars.next()) {
                    (Some(d), None) if d.is_ascii_digit() || matches!(d, '*' | '#' | 'A'..='D') => {
                        Ok(vec![PbxEvent::Dtmf(d)])
                    }
                    _ => Err(ProtocolError(format!("Twilio dtmf: digit {digit:?} is not one of 0-9 * # A-D"))),
                }
            }
            "mark" => {
                self.require_started("mark")?;
                Ok(vec![PbxEvent::MarkReached(str_at(&v, &["mark", "name"], "mark")?.to_string())])
            }
            "stop" => {
                self.ended = true;
                Ok(vec![PbxEvent::Hangup { reason: "Twilio stop: stream ended or caller hung up".into() }])
            }
            other => Ok(vec![PbxEvent::Ignored(format!("Twilio event {other:?}"))]),
        }
    }

    fn on_start(&mut self, v: &Value) -> Result<Vec<PbxEvent>, ProtocolError> {
        if self.stream_sid.is_some() {
            return Err(ProtocolError("Twilio start: a second start message on one stream".into()));
        }
        let stream_sid = match opt_str_at(v, &["start", "streamSid"], "start")? {
            Some(s) => s,
            None => str_at(v, &["streamSid"], "start")?,
        };
        let call_sid = str_at(v, &["start", "callSid"], "start")?;
        if let Some(format) = v.pointer("/start/mediaFormat") {
            let encoding = format.get("encoding").and_then(Value::as_str).unwrap_or("audio/x-mulaw");
            let rate = format.get("sampleRate").and_then(Value::as_u64).unwrap_or(8000);
            if encoding != "audio/x-mulaw" || rate != 8000 {
                return Err(ProtocolError(format!(
                    "Twilio start: media format {encoding} at {rate} Hz; only audio/x-mulaw at 8000 Hz is understood"
                )));
            }
        }
        let mut variables = vec![("stream_sid".to_string(), stream_sid.to_string())];
        if let Some(a) = opt_str_at(v, &["start", "accountSid"], "start")? {
            variables.push(("account_sid".into(), a.to_string()));
        }
        let mut dialplan = None;
        let mut caller_id = None;
        match v.pointer("/start/customParameters") {
            None | Some(Value::Null) => {}
            Some(Value::Object(params)) => {
                for (k, val) in params {
                    let val = match val {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    match k.as_str() {
                        "dialplan" => dialplan = Some(val),
                        "caller_id" | "from" | "From" => caller_id = Some(val),
                        _ => variables.push((k.clone(), val)),
                    }
                }
            }
            Some(other) => {
                return Err(ProtocolError(format!(
                    "Twilio start: customParameters must be an object, got {}",
                    kind_of(other)
                )))
            }
        }
        self.stream_sid = Some(stream_sid.to_string());
        self.call_sid = Some(call_sid.to_string());
        Ok(vec![PbxEvent::Start(CallInfo {
            call_id: call_sid.to_string(),
            channel: None,
            caller_id,
            dialplan,
            format: Some(AudioFormat::Ulaw),
            frame_bytes: Some(AudioFormat::Ulaw.frame_bytes()),
            variables,
        })])
    }

    fn require_started(&self, event: &str) -> Result<(), ProtocolError> {
        match self.stream_sid {
            Some(_) => Ok(()),
            None => Err(ProtocolError(format!("Twilio {event} before start"))),
        }
    }
}

/// A required string at `path`, with an error naming the message and field.
fn str_at<'a>(v: &'a Value, path: &[&str], message: &str) -> Result<&'a str, ProtocolError> {
    opt_str_at(v, path, message)?
        .ok_or_else(|| ProtocolError(format!("Twilio {message} message has no field {:?}", path.join("."))))
}

fn opt_str_at<'a>(v: &'a Value, path: &[&str], message: &str) -> Result<Option<&'a str>, ProtocolError> {
    let mut cur = v;
    for key in path {
        match cur.get(key) {
            Some(next) => cur = next,
            None => return Ok(None),
        }
    }
    match cur {
        Value::String(s) => Ok(Some(s)),
        Value::Null => Ok(None),
        other => Err(ProtocolError(format!(
            "Twilio {message} message field {:?} must be a string, got {}",
            path.join("."),
            kind_of(other)
        ))),
    }
}

impl MediaCodec for TwilioCodec {
    fn on_message(&mut self, msg: WireMessage) -> Result<Vec<PbxEvent>, ProtocolError> {
        match msg {
            WireMessage::Text(t) => self.on_text(&t),
            WireMessage::Binary(b) => {
                Err(ProtocolError(format!("Twilio sends only JSON text frames; got a {}-byte binary frame", b.len())))
            }
            WireMessage::Close if self.ended => Ok(Vec::new()),
            WireMessage::Close => {
                self.ended = true;
                Ok(vec![PbxEvent::Hangup { reason: "Twilio websocket closed".into() }])
            }
        }
    }

    fn answer(&mut self) -> Vec<WireMessage> {
        Vec::new()
    }

    /// 8 kHz samples as `media` messages of 20 ms µ-law each.
    fn audio(&mut self, samples: &[i16]) -> Vec<WireMessage> {
        let Some(sid) = &self.stream_sid else {
            tracing::warn!("prompt audio before the start message: not sent");
            return Vec::new();
        };
        AudioFormat::Ulaw
            .encode(samples)
            .chunks(OUT_CHUNK)
            .map(|chunk| {
                let payload = base64::engine::general_purpose::STANDARD.encode(chunk);
                WireMessage::Text(
                    json!({"event": "media", "streamSid": sid, "media": {"payload": payload}}).to_string(),
                )
            })
            .collect()
    }

    fn mark(&mut self, id: &str) -> Vec<WireMessage> {
        let Some(sid) = &self.stream_sid else { return Vec::new() };
        vec![WireMessage::Text(json!({"event": "mark", "streamSid": sid, "mark": {"name": id}}).to_string())]
    }

    /// `clear` drops Twilio's buffer; it then echoes the pending marks.
    fn flush(&mut self) -> Vec<WireMessage> {
        let Some(sid) = &self.stream_sid else { return Vec::new() };
        vec![WireMessage::Text(json!({"event": "clear", "streamSid": sid}).to_string())]
    }

    /// Closing the stream ends `<Connect><Stream>`; Twilio continues with
    /// the next TwiML verb (a `<Hangup/>` in the documented setup).
    fn hangup(&mut self) -> Vec<WireMessage> {
        self.ended = true;
        vec![WireMessage::Close]
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

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC123","streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0","callSid":"CA123","tracks":["inbound"],"customParameters":{"dialplan":"hotline","caller_id":"+15550100","campaign":"spring"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0"}"#;

    fn started() -> TwilioCodec {
        let mut c = TwilioCodec::new();
        c.on_message(WireMessage::Text(r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#.into())).unwrap();
        c.on_message(WireMessage::Text(START.into())).unwrap();
        c
    }

    #[test]
    fn start_gives_call_sid_dialplan_and_parameters() {
        let mut c = TwilioCodec::new();
        let ev = c.on_message(WireMessage::Text(START.into())).unwrap();
        let [PbxEvent::Start(info)] = &ev[..] else { panic!("{ev:?}") };
        assert_eq!(info.call_id, "CA123");
        assert_eq!(info.dialplan.as_deref(), Some("hotline"));
        assert_eq!(info.caller_id.as_deref(), Some("+15550100"));
        assert_eq!(info.format, Some(AudioFormat::Ulaw));
        assert!(info.variables.contains(&("campaign".into(), "spring".into())));
        assert!(info.variables.contains(&("stream_sid".into(), "MZ18ad3ab5a668481ce02b83e7395059f0".into())));
    }

    #[test]
    fn media_dtmf_mark_stop_are_decoded() {
        let mut c = started();
        // 0xff is µ-law for 0; 0x00 the most negative value.
        let media = r#"{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"5","payload":"//8A"},"streamSid":"MZ1"}"#;
        let ev = c.on_message(WireMessage::Text(media.into())).unwrap();
        assert_eq!(ev, vec![PbxEvent::Audio(vec![0, 0, crate::audio::g711::ulaw_decode(0)])]);
        let dtmf =
            r#"{"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"1"}}"#;
        assert_eq!(c.on_message(WireMessage::Text(dtmf.into())).unwrap(), vec![PbxEvent::Dtmf('1')]);
        let mark = r#"{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"prompt-1"}}"#;
        assert_eq!(
            c.on_message(WireMessage::Text(mark.into())).unwrap(),
            vec![PbxEvent::MarkReached("prompt-1".into())]
        );
        let stop = r#"{"event":"stop","sequenceNumber":"5","stop":{"accountSid":"AC123","callSid":"CA123"},"streamSid":"MZ1"}"#;
        assert!(matches!(&c.on_message(WireMessage::Text(stop.into())).unwrap()[0], PbxEvent::Hangup { .. }));
        assert!(c.on_message(WireMessage::Close).unwrap().is_empty());
    }

    #[test]
    fn outgoing_media_mark_and_clear_are_exact() {
        let mut c = started();
        let sid = "MZ18ad3ab5a668481ce02b83e7395059f0";
        let out = c.audio(&vec![0i16; 200]);
        assert_eq!(out.len(), 2);
        let WireMessage::Text(first) = &out[0] else { panic!() };
        let v: Value = serde_json::from_str(first).unwrap();
        assert_eq!(v["event"], "media");
        assert_eq!(v["streamSid"], sid);
        let payload =
            base64::engine::general_purpose::STANDARD.decode(v["media"]["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload, vec![0xff; 160]);
        assert_eq!(
            c.mark("p1"),
            vec![WireMessage::Text(format!(r#"{{"event":"mark","mark":{{"name":"p1"}},"streamSid":"{sid}"}}"#))]
        );
        assert_eq!(c.flush(), vec![WireMessage::Text(format!(r#"{{"event":"clear","streamSid":"{sid}"}}"#))]);
        assert!(c.paces_playback());
    }

    #[test]
    fn malformed_messages_are_named_errors() {
        let cases = [
            ("{", "not valid JSON"),
            (r#"{"foo":1}"#, "no field \"event\""),
            (r#"{"event":5}"#, "must be a string"),
            (r#"{"event":"media","media":{"payload":"AAAA"}}"#, "media before start"),
        ];
        for (text, expect) in cases {
            let err = TwilioCodec::new().on_message(WireMessage::Text(text.into())).unwrap_err();
            assert!(err.0.contains(expect), "{text}: {err}");
        }
        let started_cases = [
            (
                r#"{"event":"media","media":{"chunk":"7","payload":"!!not base64!!"}}"#,
                "chunk 7: payload is not valid base64",
            ),
            (r#"{"event":"media","media":{}}"#, "no field \"media.payload\""),
            (r#"{"event":"dtmf","dtmf":{"digit":"12"}}"#, "not one of"),
            (r#"{"event":"mark","mark":{}}"#, "mark.name"),
            (START, "second start"),
        ];
        for (text, expect) in started_cases {
            let err = started().on_message(WireMessage::Text(text.into())).unwrap_err();
            assert!(err.0.contains(expect), "{text}: {err}");
        }
        assert!(started().on_message(WireMessage::Binary(vec![1])).is_err());
        assert!(TwilioCodec::new()
            .on_message(WireMessage::Text(r#"{"event":"start","start":{"callSid":"CA1"}}"#.into()))
            .unwrap_err()
            .0
            .contains("streamSid"));
        let err = TwilioCodec::new()
            .on_message(WireMessage::Text(
                r#"{"event":"start","start":{"streamSid":"MZ","callSid":"CA","mediaFormat":{"encoding":"audio/x-l16","sampleRate":16000}}}"#.into(),
            ))
            .unwrap_err();
        assert!(err.0.contains("audio/x-l16"), "{err}");
    }

    #[test]
    fn outbound_track_is_not_caller_audio() {
        let mut c = started();
        let media = r#"{"event":"media","media":{"track":"outbound","payload":"//8A"}}"#;
        assert!(matches!(&c.on_message(WireMessage::Text(media.into())).unwrap()[0], PbxEvent::Ignored(_)));
    }
}
