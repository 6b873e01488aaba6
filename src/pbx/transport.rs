//! The transports hotline can listen for, by the names used in the config
//! file (`transport = "audiosocket"`), and the codec each listener builds
//! for every new connection.
use std::fmt;
use std::str::FromStr;

use super::audio_fork::{AudioForkCodec, FreeswitchOptions};
use super::audio_stream::AudioStreamCodec;
use super::audiosocket::AudioSocketCodec;
use super::twilio::TwilioCodec;
use super::{MediaCodec, ProtocolError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Asterisk chan_websocket (`Dial(WebSocket/...)`), Asterisk 22.6+.
    AsteriskWs,
    /// Asterisk AudioSocket over TCP, for older Asterisk versions.
    AudioSocket,
    /// FreeSWITCH mod_audio_fork; needs the event socket for playback.
    AudioFork,
    /// FreeSWITCH mod_audio_stream; needs the event socket for playback.
    AudioStream,
    /// Twilio Media Streams; transfers through the webhook.
    Twilio,
}

impl Transport {
    pub const ALL: [Transport; 5] = [
        Transport::AsteriskWs,
        Transport::AudioSocket,
        Transport::AudioFork,
        Transport::AudioStream,
        Transport::Twilio,
    ];

    /// Websocket transports; AudioSocket is raw TCP.
    pub fn is_websocket(self) -> bool {
        self != Transport::AudioSocket
    }

    /// Subprotocol to accept in the websocket handshake, if the PBX asks
    /// for one.
    pub fn subprotocol(self) -> Option<&'static str> {
        match self {
            Transport::AsteriskWs => Some("media"),
            Transport::AudioFork => Some(super::audio_fork::SUBPROTOCOL),
            _ => None,
        }
    }

    /// FreeSWITCH transports play prompts, take DTMF and transfer over the
    /// event socket, so a listener for them needs an `[esl]` section.
    pub fn needs_event_socket(self) -> bool {
        matches!(self, Transport::AudioFork | Transport::AudioStream)
    }

    /// Largest websocket message accepted from the PBX; a bigger one ends
    /// the call with the reason logged. Asterisk's frames are 20 ms or short
    /// events (it never sends more than 64 KiB); mod_audio_fork and
    /// mod_audio_stream send everything buffered since their last write, up
    /// to the codec's limit; Twilio's are JSON of 20 ms of audio.
    pub fn max_incoming_message(self) -> usize {
        match self {
            Transport::AsteriskWs => 64 * 1024,
            Transport::AudioFork | Transport::AudioStream => super::audio_fork::MAX_AUDIO_BYTES,
            Transport::Twilio => super::twilio::MAX_TEXT_BYTES,
            // Raw TCP: the codec's decoder bounds each message.
            Transport::AudioSocket => 64 * 1024,
        }
    }

    /// Audio rate when the config gives none.
    pub fn default_rate(self) -> u32 {
        match self {
            Transport::AsteriskWs => 16_000,
            _ => 8_000,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::AsteriskWs => "asterisk_ws",
            Transport::AudioSocket => "audiosocket",
            Transport::AudioFork => "audio_fork",
            Transport::AudioStream => "audio_stream",
            Transport::Twilio => "twilio",
        })
    }
}

impl FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = s.trim().to_ascii_lowercase().replace('-', "_");
        Ok(match key.as_str() {
            "asterisk_ws" | "asterisk" | "chan_websocket" | "websocket" => Transport::AsteriskWs,
            "audiosocket" | "audio_socket" => Transport::AudioSocket,
            "audio_fork" | "mod_audio_fork" => Transport::AudioFork,
            "audio_stream" | "mod_audio_stream" => Transport::AudioStream,
            "twilio" | "twilio_media_streams" => Transport::Twilio,
            _ => {
                let names: Vec<String> = Transport::ALL.iter().map(|t| t.to_string()).collect();
                return Err(format!("unknown transport {s:?} (known: {})", names.join(", ")));
            }
        })
    }
}

/// Per-listener settings a codec needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransportOptions {
    /// Audio rate on the wire: AudioSocket's slin rate, the rate given to
    /// `uuid_audio_fork/stream ... start` when the metadata has none.
    /// Twilio is always 8 kHz µ-law and ignores it.
    pub rate: Option<u32>,
}

/// A fresh codec for one connection on a listener of `transport`.
///
pub fn codec(transport: Transport, options: &TransportOptions) -> Result<Box<dyn MediaCodec>, ProtocolError> {
    let rate = options.rate.unwrap_or(transport.default_rate());
    Ok(match transport {
        Transport::AudioSocket => Box::new(AudioSocketCodec::new(rate)?),
        Transport::AudioFork => Box::new(AudioForkCodec::new(FreeswitchOptions { rate })),
        Transport::AudioStream => Box::new(AudioStreamCodec::new(FreeswitchOptions { rate })),
        Transport::Twilio => Box::new(TwilioCodec::new()),
        // The live server builds it with the upgrade request's path and
        // query (dialplan, caller id); without them it uses the defaults.
        Transport::AsteriskWs => Box::new(super::asterisk_ws::AsteriskWsCodec::new("/")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for t in Transport::ALL {
            assert_eq!(t.to_string().parse::<Transport>().unwrap(), t);
        }
        assert_eq!("mod_audio_fork".parse::<Transport>().unwrap(), Transport::AudioFork);
        assert_eq!("AudioSocket".parse::<Transport>().unwrap(), Transport::AudioSocket);
        let err = "sip".parse::<Transport>().unwrap_err();
        assert!(err.contains("audiosocket") && err.contains("twilio"), "{err}");
    }

    // Garbage and mangled messages for every codec: the property test
    // `fuzzing::tests::codecs_never_panic_and_yield_bounded_events`.

    #[test]
    fn codecs_are_built_with_the_listener_rate() {
        let c = codec(Transport::AudioSocket, &TransportOptions { rate: Some(16_000) }).unwrap();
        assert!(!c.paces_playback());
        assert!(codec(Transport::AudioSocket, &TransportOptions { rate: Some(11_025) }).is_err());
        assert!(codec(Transport::Twilio, &TransportOptions::default()).unwrap().paces_playback());
        assert!(codec(Transport::AudioFork, &TransportOptions::default()).is_ok());
        assert!(Transport::AudioStream.needs_event_socket());
        assert_eq!(Transport::AudioFork.subprotocol(), Some("audio.drachtio.org"));
    }
}
