//! Wire protocols of the PBXs, one module per protocol: codecs only, no
//! call logic. Each turns its wire format into [`PbxEvent`]s for the call
//! driver and [`PbxCommand`]s into wire messages, sans-IO (bytes in, bytes
//! out), so they can be tested without sockets and never panic on input.
//!
//! Transfer control (AMI for Asterisk, ESL for FreeSWITCH, a webhook for
//! Twilio) lives beside them in its own module.
pub mod ami;
pub(crate) mod asterisk_ws;
pub mod audio_fork;
pub mod audio_stream;
pub mod audiosocket;
pub(crate) mod decision;
pub mod esl;
pub(crate) mod transfer;
pub mod transport;
pub mod twilio;
pub mod webhook;

/// Audio encoding on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// Signed 16-bit little-endian linear PCM at this rate.
    Slin(u32),
    /// G.711 µ-law, 8 kHz.
    Ulaw,
    /// G.711 A-law, 8 kHz.
    Alaw,
}

impl AudioFormat {
    pub fn rate(self) -> u32 {
        match self {
            AudioFormat::Slin(r) => r,
            AudioFormat::Ulaw | AudioFormat::Alaw => 8000,
        }
    }

    pub fn bytes_per_sample(self) -> usize {
        match self {
            AudioFormat::Slin(_) => 2,
            AudioFormat::Ulaw | AudioFormat::Alaw => 1,
        }
    }

    /// Bytes in one 20 ms frame.
    pub fn frame_bytes(self) -> usize {
        crate::audio::frame_samples(self.rate()) * self.bytes_per_sample()
    }

    /// Wire bytes -> 16-bit samples (a trailing odd byte of slin is dropped).
    pub fn decode(self, bytes: &[u8]) -> Vec<i16> {
        match self {
            AudioFormat::Slin(_) => bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect(),
            AudioFormat::Ulaw => crate::audio::g711::ulaw_decode_all(bytes),
            AudioFormat::Alaw => crate::audio::g711::alaw_decode_all(bytes),
        }
    }

    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        match self {
            AudioFormat::Slin(_) => samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
            AudioFormat::Ulaw => crate::audio::g711::ulaw_encode_all(samples),
            AudioFormat::Alaw => crate::audio::g711::alaw_encode_all(samples),
        }
    }
}

/// What a PBX told us, in protocol-neutral terms.
#[derive(Debug, Clone, PartialEq)]
pub enum PbxEvent {
    /// The media session is up.
    Start(CallInfo),
    /// Caller audio, decoded to 16-bit PCM at `CallInfo::format`'s rate.
    Audio(Vec<i16>),
    Dtmf(char),
    /// Playback reached the marker sent after a prompt.
    MarkReached(String),
    /// Our outgoing audio queue is full / has room again.
    Pause,
    Resume,
    /// The call is over (close frame, stop message, TCP close).
    Hangup {
        reason: String,
    },
    /// Understood but of no interest to the call (STATUS, connected, ...).
    Ignored(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallInfo {
    /// The PBX's id of the call (channel uniqueid, call UUID, callSid).
    pub call_id: String,
    /// Channel name where the PBX has one (AMI Redirect needs it).
    pub channel: Option<String>,
    pub caller_id: Option<String>,
    /// Which dialplan to run, when the dial string / metadata names one.
    pub dialplan: Option<String>,
    pub format: Option<AudioFormat>,
    /// Bytes per frame the PBX wants (Asterisk's optimal_frame_size).
    pub frame_bytes: Option<usize>,
    /// Other key/values the PBX sent (channel variables, custom parameters).
    pub variables: Vec<(String, String)>,
}

/// A malformed or unexpected message: named, never a panic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolError(pub String);

/// One message on the wire: a websocket text/binary message, or for
/// stream protocols (AudioSocket) one framed packet as `Binary`.
#[derive(Debug, Clone, PartialEq)]
pub enum WireMessage {
    Text(String),
    Binary(Vec<u8>),
    /// Close the connection (websocket close 1000 / TCP shutdown).
    Close,
}

/// The sans-IO codec of one media protocol, one instance per call. The
/// server owns the socket and the call machine; the codec only translates.
pub trait MediaCodec: Send {
    /// A message from the PBX. Errors name what was wrong with it; the
    /// server logs them and decides whether the call can go on.
    fn on_message(&mut self, msg: WireMessage) -> Result<Vec<PbxEvent>, ProtocolError>;
    /// Answers the call where the protocol needs it (may be empty).
    fn answer(&mut self) -> Vec<WireMessage>;
    /// Prompt audio at the call's rate, as wire messages.
    fn audio(&mut self, samples: &[i16]) -> Vec<WireMessage>;
    /// Asks to be told (`PbxEvent::MarkReached(id)`) when playback gets
    /// here. Empty when the protocol has no marks: the server then times
    /// playback itself.
    fn mark(&mut self, id: &str) -> Vec<WireMessage>;
    /// Barge-in: drop queued prompt audio.
    fn flush(&mut self) -> Vec<WireMessage>;
    fn hangup(&mut self) -> Vec<WireMessage>;
    /// True when the PBX queues and paces our audio itself (Asterisk
    /// chan_websocket, Twilio); false when the server must send 20 ms
    /// frames in real time (AudioSocket).
    fn paces_playback(&self) -> bool;
    /// True when the PBX reports when our audio has played: marks on
    /// chan_websocket and Twilio, the event socket's `PLAYBACK_STOP` on
    /// FreeSWITCH. False (AudioSocket): the server's timing ends a prompt.
    fn reports_playback_end(&self) -> bool;
    /// What to send when nothing else went out for a while, for protocols
    /// whose peer times out on silence (AudioSocket's application form).
    fn idle_keepalive(&self) -> Option<WireMessage>;
}

/// `%XX` escapes decoded (a malformed one is kept as it is), and `+` as a
/// space when `plus_is_space` (form-encoded query strings). Bytes that do
/// not make UTF-8 become U+FFFD: values are names and ids, never binary.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') if plus_is_space => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// At most `max` bytes of `s` (cut at a character boundary, `…` marking
/// the cut), to quote a peer's bad input in an error without echoing all
/// of it.
pub(crate) fn excerpt(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    #[test]
    fn excerpts_cut_at_a_character_boundary() {
        assert_eq!(super::excerpt("short", 80), "short");
        assert_eq!(super::excerpt("héllo", 2), "h…");
    }

    #[test]
    fn percent_escapes_decode_and_broken_ones_stay() {
        assert_eq!(super::percent_decode("Local%2Fs%40caller%3B1", false), "Local/s@caller;1");
        assert_eq!(super::percent_decode("a+b%2Bc%zz%4", true), "a b+c%zz%4");
        assert_eq!(super::percent_decode("a+b", false), "a+b");
        assert_eq!(super::percent_decode("%e2%82%ac%", false), "\u{20ac}%");
    }
}
