//! FreeSWITCH mod_audio_stream (amigniter, community edition),
//! PROTOCOLS.md §5.
//!
//! Inbound it is mod_audio_fork's twin: optional metadata text frame (we
//! require it, for the channel UUID), then L16 in N×20 ms binary frames.
//! Outbound only `streamAudio` JSON is understood; like mod_audio_fork it
//! writes a temp file and fires `mod_audio_stream::play`, and hotline plays
//! the file over ESL. There is no stop message on this socket at all:
//! barge-in is ESL `uuid_break`.
//!
//! FreeSWITCH offers `permessage-deflate` by default; the websocket server
//! must answer without `Sec-WebSocket-Extensions` (tungstenite does), and
//! libwsc then talks uncompressed.
use serde_json::json;

use super::audio_fork::{base64_pieces, play_rate, FreeswitchInbound, FreeswitchOptions};
use super::{MediaCodec, PbxEvent, ProtocolError, WireMessage};

/// The codec of one mod_audio_stream connection.
#[derive(Debug)]
pub struct AudioStreamCodec {
    inbound: FreeswitchInbound,
}

impl AudioStreamCodec {
    pub fn new(options: FreeswitchOptions) -> Self {
        AudioStreamCodec { inbound: FreeswitchInbound::new("mod_audio_stream", options) }
    }

    /// The `streamAudio` JSON messages for prompt audio at the call's rate.
    pub fn stream_audio_messages(&self, samples: &[i16]) -> Result<Vec<String>, ProtocolError> {
        let rate = play_rate(self.inbound.rate(), "mod_audio_stream")?;
        Ok(base64_pieces(samples)
            .into_iter()
            .map(|b64| {
                json!({"type": "streamAudio", "data": {"audioDataType": "raw", "sampleRate": rate, "audioData": b64}})
                    .to_string()
            })
            .collect())
    }
}

impl MediaCodec for AudioStreamCodec {
    fn on_message(&mut self, msg: WireMessage) -> Result<Vec<PbxEvent>, ProtocolError> {
        self.inbound.on_message(msg)
    }

    fn answer(&mut self) -> Vec<WireMessage> {
        Vec::new()
    }

    fn audio(&mut self, samples: &[i16]) -> Vec<WireMessage> {
        self.inbound.prompt_messages(samples, |x| self.stream_audio_messages(x))
    }

    fn mark(&mut self, _id: &str) -> Vec<WireMessage> {
        Vec::new()
    }

    /// Nothing on the socket can stop playback: the server sends ESL
    /// `uuid_break <uuid> all`.
    fn flush(&mut self) -> Vec<WireMessage> {
        Vec::new()
    }

    fn hangup(&mut self) -> Vec<WireMessage> {
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
    use base64::Engine as _;
    use serde_json::Value;

    use super::*;
    use crate::pbx::AudioFormat;

    #[test]
    fn metadata_then_audio_then_close() {
        let mut c = AudioStreamCodec::new(FreeswitchOptions { rate: 16000 });
        let ev = c.on_message(WireMessage::Text(r#"{"uuid":"u-9","dialplan":"support"}"#.into())).unwrap();
        let [PbxEvent::Start(info)] = &ev[..] else { panic!("{ev:?}") };
        assert_eq!(info.format, Some(AudioFormat::Slin(16000)));
        assert_eq!(info.dialplan.as_deref(), Some("support"));
        let frame: Vec<u8> = (0..320i16).flat_map(|s| s.to_le_bytes()).collect();
        let ev = c.on_message(WireMessage::Binary(frame)).unwrap();
        assert!(matches!(&ev[..], [PbxEvent::Audio(s)] if s.len() == 320 && s[10] == 10));
        assert!(matches!(&c.on_message(WireMessage::Close).unwrap()[0], PbxEvent::Hangup { .. }));
    }

    #[test]
    fn stream_audio_message_matches_the_module() {
        let mut c = AudioStreamCodec::new(FreeswitchOptions::default());
        c.on_message(WireMessage::Text(r#"{"uuid":"u-9"}"#.into())).unwrap();
        let out = c.audio(&[256, -1]);
        let [WireMessage::Text(t)] = &out[..] else { panic!("{out:?}") };
        let v: Value = serde_json::from_str(t).unwrap();
        assert_eq!(v["type"], "streamAudio");
        assert_eq!(v["data"]["audioDataType"], "raw");
        assert_eq!(v["data"]["sampleRate"], 8000);
        let raw = base64::engine::general_purpose::STANDARD.decode(v["data"]["audioData"].as_str().unwrap()).unwrap();
        assert_eq!(raw, vec![0, 1, 0xff, 0xff]);
        assert!(c.flush().is_empty());
        assert!(c.paces_playback());
    }

    #[test]
    fn missing_metadata_is_a_named_error() {
        let mut c = AudioStreamCodec::new(FreeswitchOptions::default());
        let err = c.on_message(WireMessage::Binary(vec![0; 640])).unwrap_err();
        assert!(err.0.contains("mod_audio_stream") && err.0.contains("metadata"), "{err}");
        let err = c.on_message(WireMessage::Text("{\"uuid\":".into())).unwrap_err();
        assert!(err.0.contains("not valid JSON"), "{err}");
    }

    #[test]
    fn unsupported_play_rate_is_reported_not_sent() {
        let mut c = AudioStreamCodec::new(FreeswitchOptions::default());
        c.on_message(WireMessage::Text(r#"{"uuid":"u","sampleRate":96000}"#.into())).unwrap();
        assert!(c.stream_audio_messages(&[1]).unwrap_err().0.contains("96000"));
        assert!(c.audio(&[1]).is_empty());
    }
}
