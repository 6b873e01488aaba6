//! Asterisk AudioSocket (PROTOCOLS.md §3): a plain TCP stream of
//! type-length-value messages, Asterisk always the client.
//!
//! ```text
//! kind (1 byte) | payload length (u16, big-endian) | payload
//! 0x00 hangup   0x01 UUID (16 bytes, first)   0x03 DTMF (1 ASCII byte)
//! 0x10 slin 8 kHz ... 0x18 slin 192 kHz (s16le)   0xFF error
//! ```
//!
//! TCP has no message boundaries, so [`FrameDecoder`] reassembles messages
//! from reads of any size. Asterisk writes our audio straight to the
//! channel without a jitter buffer: the server must send one 20 ms frame
//! every 20 ms (`paces_playback() == false`), and with the `AudioSocket()`
//! application it must send *something* at least every 2 s or Asterisk
//! gives up on the call ([`KEEPALIVE_INTERVAL_MS`], [`AudioSocketCodec::keepalive`]).
use super::{AudioFormat, CallInfo, MediaCodec, PbxEvent, ProtocolError, WireMessage};

pub const KIND_HANGUP: u8 = 0x00;
pub const KIND_UUID: u8 = 0x01;
pub const KIND_DTMF: u8 = 0x03;
pub const KIND_SLIN_8K: u8 = 0x10;
pub const KIND_ERROR: u8 = 0xFF;

/// The channel variable the Asterisk dialplan sets to the call's UUID
/// (`Set(AS_ID=${UUID()})` before `AudioSocket`): AMI `Status` finds the
/// caller's channel by it, since AudioSocket carries no channel name.
pub const CHANNEL_ID_VARIABLE: &str = "AS_ID";

/// Audio kinds 0x10..=0x18 and the rate each carries.
const AUDIO_KINDS: [(u8, u32); 9] = [
    (0x10, 8_000),
    (0x11, 12_000),
    (0x12, 16_000),
    (0x13, 24_000),
    (0x14, 32_000),
    (0x15, 44_100),
    (0x16, 48_000),
    (0x17, 96_000),
    (0x18, 192_000),
];

/// The application form hangs up after 2000 ms without activity; sending a
/// frame every second leaves a full second of margin for a slow scheduler.
pub const IDLE_TIMEOUT_MS: u64 = 2_000;
pub const KEEPALIVE_INTERVAL_MS: u64 = 1_000;

/// Largest payload accepted from Asterisk. Real frames are 20 ms (320 bytes
/// at 8 kHz, 7680 at 192 kHz); anything far above that is a broken or
/// hostile peer, and refusing it bounds the decoder's buffer.
pub const MAX_PAYLOAD: usize = 16 * 1024;

/// Rate carried by an audio kind, `None` when the kind is not audio.
pub fn audio_kind_rate(kind: u8) -> Option<u32> {
    AUDIO_KINDS.iter().find(|(k, _)| *k == kind).map(|(_, r)| *r)
}

/// Audio kind for a rate, `None` when AudioSocket has no kind for it.
pub fn audio_kind_for_rate(rate: u32) -> Option<u8> {
    AUDIO_KINDS.iter().find(|(_, r)| *r == rate).map(|(k, _)| *k)
}

/// One AudioSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn new(kind: u8, payload: Vec<u8>) -> Self {
        Frame { kind, payload }
    }

    /// Wire bytes. Payloads longer than 65535 bytes cannot be framed; the
    /// codec never builds one (it sends 20 ms frames).
    pub fn encode(&self) -> Vec<u8> {
        let len = u16::try_from(self.payload.len()).unwrap_or(u16::MAX);
        let mut out = Vec::with_capacity(3 + len as usize);
        out.push(self.kind);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.payload[..len as usize]);
        out
    }
}

fn kind_name(kind: u8) -> String {
    match kind {
        KIND_HANGUP => "hangup (0x00)".into(),
        KIND_UUID => "UUID (0x01)".into(),
        KIND_DTMF => "DTMF (0x03)".into(),
        KIND_ERROR => "error (0xff)".into(),
        k => match audio_kind_rate(k) {
            Some(r) => format!("audio {r} Hz (0x{k:02x})"),
            None => format!("unknown kind 0x{k:02x}"),
        },
    }
}

/// Reassembles messages from a byte stream read in arbitrary pieces.
///
/// Unknown kinds and oversized lengths are refused as soon as the header
/// is complete, so a broken peer cannot make the buffer grow.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Offset of the next message in the stream, for error messages.
    stream_offset: u64,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes read from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes of an incomplete message still waiting for the rest.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        if self.buf.len() < 3 {
            return Ok(None);
        }
        let kind = self.buf[0];
        let len = u16::from_be_bytes([self.buf[1], self.buf[2]]) as usize;
        let known = matches!(kind, KIND_HANGUP | KIND_UUID | KIND_DTMF | KIND_ERROR) || audio_kind_rate(kind).is_some();
        if !known {
            return Err(ProtocolError(format!(
                "AudioSocket message at byte {}: unknown kind 0x{kind:02x} (length {len})",
                self.stream_offset
            )));
        }
        if len > MAX_PAYLOAD {
            return Err(ProtocolError(format!(
                "AudioSocket message at byte {}: {} with payload length {len}, more than the {MAX_PAYLOAD} bytes accepted",
                self.stream_offset,
                kind_name(kind)
            )));
        }
        if self.buf.len() < 3 + len {
            return Ok(None);
        }
        let payload = self.buf[3..3 + len].to_vec();
        self.buf.drain(..3 + len);
        self.stream_offset += 3 + len as u64;
        Ok(Some(Frame { kind, payload }))
    }

    /// Offset in the stream of the next (incomplete) message.
    pub fn offset(&self) -> u64 {
        self.stream_offset
    }
}

/// Formats 16 raw bytes as a lower-case textual UUID (8-4-4-4-12).
pub fn format_uuid(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Parses a textual UUID (with or without dashes) into its 16 bytes.
pub fn parse_uuid(text: &str) -> Result<[u8; 16], ProtocolError> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ProtocolError(format!("{text:?} is not a UUID (32 hex digits, optionally dashed)")));
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| ProtocolError(format!("{text:?} is not a UUID")))?;
    }
    Ok(out)
}

/// Meaning of the one-byte payload of an error message (res_audiosocket.h).
fn error_text(payload: &[u8]) -> String {
    match payload.first() {
        None => "no error code".into(),
        Some(0x00) => "no error (0x00)".into(),
        Some(0x01) => "the call was hung up (0x01)".into(),
        Some(0x02) => "frame forwarding failed (0x02)".into(),
        Some(0x04) => "out of memory (0x04)".into(),
        Some(c) => format!("error code 0x{c:02x}"),
    }
}

/// The codec of one AudioSocket connection.
#[derive(Debug)]
pub struct AudioSocketCodec {
    decoder: FrameDecoder,
    rate: u32,
    kind: u8,
    started: bool,
    ended: bool,
    /// A partial 20 ms frame of prompt audio waiting for the next call to
    /// `audio()`, so every frame sent is a whole 20 ms.
    pending_out: Vec<i16>,
    /// An error found after good messages of the same read, reported on
    /// the next call so those messages are delivered first.
    deferred: Option<ProtocolError>,
}

impl AudioSocketCodec {
    /// `rate` is the audio rate on the socket: 8000 for the `AudioSocket()`
    /// application (always slin), the `c(...)` format's rate for the channel
    /// driver. Unsupported rates are an error naming the ones that work.
    pub fn new(rate: u32) -> Result<Self, ProtocolError> {
        let kind = audio_kind_for_rate(rate).ok_or_else(|| {
            let rates: Vec<String> = AUDIO_KINDS.iter().map(|(_, r)| r.to_string()).collect();
            ProtocolError(format!("AudioSocket has no audio kind for {rate} Hz (use one of {})", rates.join(", ")))
        })?;
        Ok(AudioSocketCodec {
            decoder: FrameDecoder::new(),
            rate,
            kind,
            started: false,
            ended: false,
            pending_out: Vec::new(),
            deferred: None,
        })
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// One 20 ms frame of silence: send it when nothing else was sent for
    /// [`KEEPALIVE_INTERVAL_MS`], so the application form does not time out.
    pub fn keepalive(&self) -> WireMessage {
        let samples = vec![0i16; crate::audio::frame_samples(self.rate)];
        WireMessage::Binary(self.audio_frame(&samples))
    }

    fn audio_frame(&self, samples: &[i16]) -> Vec<u8> {
        Frame::new(self.kind, AudioFormat::Slin(self.rate).encode(samples)).encode()
    }

    fn on_frame(&mut self, frame: Frame, at: u64) -> Result<PbxEvent, ProtocolError> {
        match frame.kind {
            KIND_UUID => {
                let bytes: [u8; 16] = frame.payload.as_slice().try_into().map_err(|_| {
                    ProtocolError(format!(
                        "AudioSocket message at byte {at}: UUID payload is {} bytes, expected 16",
                        frame.payload.len()
                    ))
                })?;
                if self.started {
                    return Err(ProtocolError(format!("AudioSocket message at byte {at}: second UUID message")));
                }
                self.started = true;
                Ok(PbxEvent::Start(CallInfo {
                    call_id: format_uuid(&bytes),
                    format: Some(AudioFormat::Slin(self.rate)),
                    frame_bytes: Some(AudioFormat::Slin(self.rate).frame_bytes()),
                    ..CallInfo::default()
                }))
            }
            _ if !self.started && frame.kind != KIND_HANGUP && frame.kind != KIND_ERROR => Err(ProtocolError(format!(
                "AudioSocket message at byte {at}: {} before the UUID message",
                kind_name(frame.kind)
            ))),
            KIND_DTMF => match frame.payload.as_slice() {
                [d] if matches!(*d, b'0'..=b'9' | b'*' | b'#' | b'A'..=b'D') => Ok(PbxEvent::Dtmf(*d as char)),
                other => Err(ProtocolError(format!(
                    "AudioSocket message at byte {at}: DTMF payload {other:02x?} is not one digit 0-9 * # A-D"
                ))),
            },
            KIND_HANGUP => {
                self.ended = true;
                Ok(PbxEvent::Hangup { reason: "AudioSocket hangup message".into() })
            }
            KIND_ERROR => {
                self.ended = true;
                Ok(PbxEvent::Hangup { reason: format!("AudioSocket error message: {}", error_text(&frame.payload)) })
            }
            kind => {
                if kind != self.kind {
                    return Err(ProtocolError(format!(
                        "AudioSocket message at byte {at}: {} but this listener is configured for {} Hz; \
                         set the listener's rate or the c() format in the Dial string",
                        kind_name(kind),
                        self.rate
                    )));
                }
                if !frame.payload.len().is_multiple_of(2) {
                    return Err(ProtocolError(format!(
                        "AudioSocket message at byte {at}: audio payload of {} bytes is not whole 16-bit samples",
                        frame.payload.len()
                    )));
                }
                Ok(PbxEvent::Audio(AudioFormat::Slin(self.rate).decode(&frame.payload)))
            }
        }
    }
}

impl MediaCodec for AudioSocketCodec {
    /// `Binary` is raw bytes from the TCP stream, whole messages or any
    /// piece of them; `Close` is the end of the stream.
    fn on_message(&mut self, msg: WireMessage) -> Result<Vec<PbxEvent>, ProtocolError> {
        match msg {
            WireMessage::Binary(bytes) => {
                self.decoder.push(&bytes);
                if let Some(e) = self.deferred.take() {
                    return Err(e);
                }
                let mut events = Vec::new();
                loop {
                    let at = self.decoder.offset();
                    let step = match self.decoder.next_frame() {
                        Ok(Some(frame)) => self.on_frame(frame, at).map(Some),
                        Ok(None) => Ok(None),
                        Err(e) => Err(e),
                    };
                    match step {
                        Ok(Some(event)) => events.push(event),
                        Ok(None) => break,
                        Err(e) if events.is_empty() => return Err(e),
                        // Messages read before the bad one still count (a DTMF
                        // digit must not be lost); the error comes next call.
                        Err(e) => {
                            self.deferred = Some(e);
                            break;
                        }
                    }
                }
                Ok(events)
            }
            WireMessage::Text(t) => Err(ProtocolError(format!(
                "AudioSocket is a binary protocol; got text {:?}",
                t.chars().take(40).collect::<String>()
            ))),
            WireMessage::Close => {
                if self.ended {
                    return Ok(Vec::new());
                }
                self.ended = true;
                if let Some(e) = self.deferred.take() {
                    return Ok(vec![PbxEvent::Hangup {
                        reason: format!("connection closed after a malformed message: {e}"),
                    }]);
                }
                let reason = match self.decoder.pending() {
                    0 => "connection closed".to_string(),
                    n => format!("connection closed inside a message ({n} bytes of a truncated message discarded)"),
                };
                Ok(vec![PbxEvent::Hangup { reason }])
            }
        }
    }

    fn answer(&mut self) -> Vec<WireMessage> {
        // The application needs the channel answered before it runs and the
        // channel driver answers on connect: nothing to send.
        Vec::new()
    }

    /// Whole 20 ms frames, one message each; the remainder waits for the
    /// next call or for `mark()` (the end of a prompt), padded with silence.
    fn audio(&mut self, samples: &[i16]) -> Vec<WireMessage> {
        let n = crate::audio::frame_samples(self.rate);
        self.pending_out.extend_from_slice(samples);
        let whole = self.pending_out.len() / n * n;
        let out = self.pending_out[..whole].chunks(n).map(|f| WireMessage::Binary(self.audio_frame(f))).collect();
        self.pending_out.drain(..whole);
        out
    }

    /// No marks in AudioSocket; the server times playback itself. The end
    /// of a prompt is the moment to send its last partial frame.
    fn mark(&mut self, _id: &str) -> Vec<WireMessage> {
        if self.pending_out.is_empty() {
            return Vec::new();
        }
        let mut last = std::mem::take(&mut self.pending_out);
        last.resize(crate::audio::frame_samples(self.rate), 0);
        vec![WireMessage::Binary(self.audio_frame(&last))]
    }

    /// Asterisk keeps no queue of ours: the server drops its unsent frames.
    fn flush(&mut self) -> Vec<WireMessage> {
        self.pending_out.clear();
        Vec::new()
    }

    fn hangup(&mut self) -> Vec<WireMessage> {
        self.ended = true;
        vec![WireMessage::Binary(Frame::new(KIND_HANGUP, Vec::new()).encode()), WireMessage::Close]
    }

    fn paces_playback(&self) -> bool {
        false
    }

    fn reports_playback_end(&self) -> bool {
        false
    }

    fn idle_keepalive(&self) -> Option<WireMessage> {
        Some(self.keepalive())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID_TEXT: &str = "40325ec2-5efd-4bd3-805f-53576e581d13";

    fn uuid_msg() -> Vec<u8> {
        let mut m = vec![0x01, 0x00, 0x10];
        m.extend_from_slice(&parse_uuid(UUID_TEXT).unwrap());
        m
    }

    fn started() -> AudioSocketCodec {
        let mut c = AudioSocketCodec::new(8000).unwrap();
        let ev = c.on_message(WireMessage::Binary(uuid_msg())).unwrap();
        assert!(matches!(&ev[..], [PbxEvent::Start(i)] if i.call_id == UUID_TEXT));
        c
    }

    #[test]
    fn uuid_message_starts_the_call_with_the_textual_uuid() {
        let mut c = AudioSocketCodec::new(8000).unwrap();
        let ev = c.on_message(WireMessage::Binary(uuid_msg())).unwrap();
        let PbxEvent::Start(info) = &ev[0] else { panic!("{ev:?}") };
        assert_eq!(info.call_id, UUID_TEXT);
        assert_eq!(info.format, Some(AudioFormat::Slin(8000)));
        assert_eq!(info.frame_bytes, Some(320));
    }

    #[test]
    fn dtmf_and_audio_use_the_documented_bytes() {
        let mut c = started();
        assert_eq!(c.on_message(WireMessage::Binary(vec![0x03, 0x00, 0x01, 0x31])).unwrap(), vec![PbxEvent::Dtmf('1')]);
        let mut audio = vec![0x10, 0x01, 0x40];
        audio.extend((0..160i16).flat_map(|s| (s * 100).to_le_bytes()));
        let ev = c.on_message(WireMessage::Binary(audio)).unwrap();
        let PbxEvent::Audio(samples) = &ev[0] else { panic!("{ev:?}") };
        assert_eq!(samples.len(), 160);
        assert_eq!(samples[3], 300);
    }

    #[test]
    fn messages_split_across_reads_are_reassembled() {
        let mut c = AudioSocketCodec::new(8000).unwrap();
        let mut stream = uuid_msg();
        stream.extend_from_slice(&[0x03, 0x00, 0x01, b'#']);
        stream.extend_from_slice(&[0x10, 0x01, 0x40]);
        stream.extend(std::iter::repeat_n(0u8, 320));
        let mut events = Vec::new();
        for piece in stream.chunks(7) {
            events.extend(c.on_message(WireMessage::Binary(piece.to_vec())).unwrap());
        }
        assert_eq!(events.len(), 3);
        assert_eq!(events[1], PbxEvent::Dtmf('#'));
        assert_eq!(events[2], PbxEvent::Audio(vec![0; 160]));
    }

    #[test]
    fn outgoing_audio_is_20ms_frames_with_the_slin_header() {
        let mut c = started();
        let out = c.audio(&vec![7i16; 400]);
        assert_eq!(out.len(), 2);
        let WireMessage::Binary(b) = &out[0] else { panic!() };
        assert_eq!(&b[..3], &[0x10, 0x01, 0x40]);
        assert_eq!(b.len(), 323);
        assert_eq!(&b[3..5], &7i16.to_le_bytes());
        // 80 samples left over: sent padded when the prompt ends.
        let tail = c.mark("p1");
        let WireMessage::Binary(t) = &tail[0] else { panic!() };
        assert_eq!(t.len(), 323);
        assert_eq!(&t[3 + 158..3 + 162], &[7, 0, 0, 0]);
        assert!(!c.paces_playback());
    }

    #[test]
    fn slin16_listener_uses_kind_0x12() {
        let c = AudioSocketCodec::new(16000).unwrap();
        let WireMessage::Binary(b) = c.keepalive() else { panic!() };
        assert_eq!(&b[..3], &[0x12, 0x02, 0x80]);
        assert!(AudioSocketCodec::new(11025).is_err());
    }

    #[test]
    fn hangup_sends_the_empty_hangup_message() {
        let mut c = started();
        assert_eq!(c.hangup(), vec![WireMessage::Binary(vec![0, 0, 0]), WireMessage::Close]);
    }

    #[test]
    fn unknown_kind_is_refused_with_its_offset() {
        let mut c = started();
        let err = c.on_message(WireMessage::Binary(vec![0x42, 0x00, 0x01, 0x00])).unwrap_err();
        assert!(err.0.contains("unknown kind 0x42") && err.0.contains("byte 19"), "{err}");
    }

    #[test]
    fn oversized_length_is_refused_before_the_payload_arrives() {
        let mut c = started();
        let err = c.on_message(WireMessage::Binary(vec![0x10, 0xff, 0xff])).unwrap_err();
        assert!(err.0.contains("65535"), "{err}");
    }

    #[test]
    fn malformed_payloads_are_named_errors() {
        let mut c = AudioSocketCodec::new(8000).unwrap();
        let err = c.on_message(WireMessage::Binary(vec![0x01, 0x00, 0x02, 1, 2])).unwrap_err();
        assert!(err.0.contains("UUID payload is 2 bytes"), "{err}");
        let mut c = AudioSocketCodec::new(8000).unwrap();
        let err = c.on_message(WireMessage::Binary(vec![0x10, 0x00, 0x02, 0, 0])).unwrap_err();
        assert!(err.0.contains("before the UUID"), "{err}");
        let mut c = started();
        assert!(c.on_message(WireMessage::Binary(vec![0x03, 0x00, 0x01, b'x'])).is_err());
        assert!(c.on_message(WireMessage::Binary(vec![0x03, 0x00, 0x00])).is_err());
        let mut c = started();
        let err = c.on_message(WireMessage::Binary(vec![0x12, 0x00, 0x02, 0, 0])).unwrap_err();
        assert!(err.0.contains("16000 Hz") && err.0.contains("8000 Hz"), "{err}");
        let mut c = started();
        assert!(c.on_message(WireMessage::Binary(vec![0x10, 0x00, 0x03, 0, 0, 0])).is_err());
        assert!(started().on_message(WireMessage::Text("hi".into())).is_err());
    }

    #[test]
    fn good_messages_before_a_bad_one_are_delivered_first() {
        let mut c = started();
        let ev = c.on_message(WireMessage::Binary(vec![0x03, 0x00, 0x01, b'4', 0x42, 0x00, 0x00])).unwrap();
        assert_eq!(ev, vec![PbxEvent::Dtmf('4')]);
        assert!(c.on_message(WireMessage::Binary(vec![])).unwrap_err().0.contains("0x42"));
    }

    #[test]
    fn truncated_stream_ends_the_call_and_says_so() {
        let mut c = started();
        assert_eq!(c.on_message(WireMessage::Binary(vec![0x10, 0x01, 0x40, 1, 2])).unwrap(), vec![]);
        let ev = c.on_message(WireMessage::Close).unwrap();
        let [PbxEvent::Hangup { reason }] = &ev[..] else { panic!("{ev:?}") };
        assert!(reason.contains("5 bytes"), "{reason}");
    }

    #[test]
    fn error_and_hangup_messages_end_the_call() {
        let mut c = started();
        let ev = c.on_message(WireMessage::Binary(vec![0xff, 0x00, 0x01, 0x01])).unwrap();
        assert!(matches!(&ev[0], PbxEvent::Hangup { reason } if reason.contains("hung up")));
        assert_eq!(c.on_message(WireMessage::Close).unwrap(), vec![]);
        let mut c = started();
        assert!(matches!(&c.on_message(WireMessage::Binary(vec![0, 0, 0])).unwrap()[0], PbxEvent::Hangup { .. }));
    }

    #[test]
    fn uuid_text_round_trips() {
        let b = parse_uuid(UUID_TEXT).unwrap();
        assert_eq!(format_uuid(&b), UUID_TEXT);
        assert!(parse_uuid("not-a-uuid").is_err());
    }
}
