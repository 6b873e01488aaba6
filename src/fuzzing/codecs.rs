//! The media codecs (`MediaCodec::on_message` of every transport) and the
//! AudioSocket framer.
use super::{mutate, Entropy};
use crate::pbx::asterisk_ws::AsteriskWsCodec;
use crate::pbx::audiosocket::{Frame, FrameDecoder, MAX_PAYLOAD};
use crate::pbx::transport::{codec, Transport, TransportOptions};
use crate::pbx::{MediaCodec, PbxEvent, WireMessage};

/// Messages one connection gets at most per case: enough to reach every
/// state of a codec, few enough for a fast case.
const MAX_MESSAGES: usize = 48;

const ASTERISK_TEXT: &[&str] = &[
    "MEDIA_START connection_id:bot channel:WebSocket/bot/0x7ff710006880 channel_id:1795449997.8 format:slin16 optimal_frame_size:640 ptime:20",
    r#"{"event":"MEDIA_START","connection_id":"bot","channel":"WebSocket/bot/0x7ff6f80077a0","channel_id":"1795449971.5","format":"ulaw","optimal_frame_size":160,"ptime":20,"channel_variables":{"__HOTLINE_DIALPLAN":"support","__CALLER_CHANNEL":"Local/s@caller-sim-00000001;1"}}"#,
    "DTMF_END digit:1 channel_id:1795450354.91",
    r##"{"event":"DTMF_END","channel_id":"1795450330.88","digit":"#"}"##,
    "MEDIA_MARK_PROCESSED prompt-1",
    r#"{"event":"MEDIA_MARK_PROCESSED","channel_id":"1795450470.112","correlation_id":"prompt-1"}"#,
    "MEDIA_XOFF",
    "MEDIA_XON",
    "QUEUE_DRAINED",
    "MEDIA_BUFFERING_COMPLETED prompt-1",
    "STATUS channel_id:1795449997.8 queue_length:0 xon_level:800 xoff_level:900 queue_full:false",
    "ERROR channel_id:1795450165.59 error_text:SET_MEDIA_DIRECTION only supports JSON format.\n",
    "HANGUP",
];

const FREESWITCH_TEXT: &[&str] = &[
    r#"{"uuid":"u-1","sampleRate":8000}"#,
    r#"{"uuid":"0f1e2d3c","dialplan":"hotline","caller_id":"555","sampleRate":"16k","extra":true}"#,
    r#"{"callId":"u-2","sample_rate":"8k"}"#,
    "stop: caller hung up",
];

const TWILIO_TEXT: &[&str] = &[
    r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#,
    r#"{"event":"start","sequenceNumber":"1","start":{"streamSid":"MZ1","accountSid":"AC1","callSid":"CA1","tracks":["inbound"],"customParameters":{"dialplan":"x","caller_id":"+1555"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ1"}"#,
    r#"{"event":"media","media":{"track":"inbound","chunk":"1","timestamp":"5","payload":"//8A"},"streamSid":"MZ1"}"#,
    r#"{"event":"dtmf","dtmf":{"track":"inbound_track","digit":"1"},"streamSid":"MZ1"}"#,
    r#"{"event":"mark","mark":{"name":"prompt-1"},"streamSid":"MZ1"}"#,
    r#"{"event":"stop","stop":{"accountSid":"AC1","callSid":"CA1"},"streamSid":"MZ1"}"#,
];

/// The valid text messages of a transport, start message first.
fn text_seeds(transport: Transport) -> &'static [&'static str] {
    match transport {
        Transport::AsteriskWs => ASTERISK_TEXT,
        Transport::AudioFork | Transport::AudioStream => FREESWITCH_TEXT,
        Transport::Twilio => TWILIO_TEXT,
        Transport::AudioSocket => &[""],
    }
}

/// AudioSocket messages: UUID, DTMF, 20 ms of 8 kHz audio, hangup, error.
fn audiosocket_seed(e: &mut Entropy) -> Vec<u8> {
    let uuid = Frame::new(0x01, (1..=16).collect()).encode();
    let frames = [
        uuid,
        Frame::new(0x03, b"5".to_vec()).encode(),
        Frame::new(0x10, vec![0x40; 320]).encode(),
        Frame::new(0x12, vec![0; 640]).encode(),
        Frame::new(0x00, Vec::new()).encode(),
        Frame::new(0xff, vec![0x02]).encode(),
    ];
    // Often several in one read, as TCP delivers them.
    let mut stream = Vec::new();
    for _ in 0..1 + e.below(3) {
        let frame: &Vec<u8> = e.pick(&frames);
        stream.extend_from_slice(frame);
    }
    stream
}

/// Valid binary messages: a start (AudioSocket) or an audio frame.
fn binary_seed(e: &mut Entropy, transport: Transport) -> Vec<u8> {
    match transport {
        Transport::AudioSocket => audiosocket_seed(e),
        Transport::Twilio => b"{}".to_vec(),
        _ => vec![0x10; *e.pick(&[320, 321, 640, 160, 0, 1])],
    }
}

/// A message of a size near a codec's limits, filled with one byte.
fn oversized(e: &mut Entropy) -> WireMessage {
    let len = *e.pick(&[16 * 1024, 64 * 1024, 64_000, 1024 * 1024]) + e.below(3) - 1;
    let fill = *e.pick(b"A{ \x10");
    match e.below(2) {
        0 => WireMessage::Text(String::from_utf8_lossy(&vec![fill; len]).into_owned()),
        _ => WireMessage::Binary(vec![fill; len]),
    }
}

fn message(e: &mut Entropy, transport: Transport) -> WireMessage {
    let text = |bytes: &[u8]| WireMessage::Text(String::from_utf8_lossy(bytes).into_owned());
    match e.below(16) {
        0..=3 => WireMessage::Text(e.pick(text_seeds(transport)).to_string()),
        4..=7 => {
            let seed = e.pick(text_seeds(transport));
            text(&mutate(e, seed.as_bytes()))
        }
        8..=9 => WireMessage::Binary(binary_seed(e, transport)),
        10 => {
            // A piece of valid messages, cut anywhere.
            let seed = binary_seed(e, transport);
            let start = e.below(seed.len() + 1);
            let end = start + e.below(seed.len() - start + 1);
            WireMessage::Binary(seed[start..end].to_vec())
        }
        11 => {
            let seed = binary_seed(e, transport);
            WireMessage::Binary(mutate(e, &seed))
        }
        12 => WireMessage::Binary(e.bytes(700).to_vec()),
        13 => text(e.bytes(300)),
        14 if e.one_in(4) => oversized(e),
        14 => WireMessage::Close,
        _ => WireMessage::Binary(vec![0x10, 0x01, 0x40]),
    }
}

fn message_len(msg: &WireMessage) -> usize {
    match msg {
        WireMessage::Text(t) => t.len(),
        WireMessage::Binary(b) => b.len(),
        WireMessage::Close => 0,
    }
}

/// Bytes of memory an event holds: what a message can make the call store.
fn event_size(event: &PbxEvent) -> usize {
    match event {
        PbxEvent::Audio(samples) => samples.len(),
        PbxEvent::Start(info) => {
            info.call_id.len()
                + info.variables.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
                + [&info.channel, &info.caller_id, &info.dialplan]
                    .iter()
                    .map(|s| s.as_ref().map_or(0, String::len))
                    .sum::<usize>()
        }
        PbxEvent::MarkReached(s) | PbxEvent::Ignored(s) | PbxEvent::Hangup { reason: s } => s.len(),
        PbxEvent::Dtmf(_) | PbxEvent::Pause | PbxEvent::Resume => 1,
    }
}

/// Random target of the websocket upgrade request, for the query parser.
fn request_target(e: &mut Entropy) -> String {
    let seed =
        "/call?dialplan=sales&caller_id=%2B4930123&caller_chan=Local%2Fs%40caller-sim-00000019%3B1&caller_uid=1.2";
    match e.below(3) {
        0 => "/".into(),
        1 => seed.into(),
        _ => String::from_utf8_lossy(&mutate(e, seed.as_bytes())).into_owned(),
    }
}

/// Every codec, any messages in any order, before and after the start
/// message: never a panic; errors are named; what a message yields is
/// bounded by its size (no sample or string out of nothing).
pub fn fuzz_codecs(data: &[u8]) {
    let mut e = Entropy::new(data);
    let transport = *e.pick(&Transport::ALL);
    let mut codec: Box<dyn MediaCodec> = match transport {
        Transport::AsteriskWs => Box::new(AsteriskWsCodec::new(&request_target(&mut e))),
        t => {
            let rate = e.pick(&[None, Some(8_000), Some(16_000), Some(48_000)]);
            codec(t, &TransportOptions { rate: *rate }).expect("the listener rates in use build a codec")
        }
    };
    if e.one_in(2) {
        // Half the cases start properly, so the states after it are reached.
        let start = match transport {
            Transport::AudioSocket => WireMessage::Binary(Frame::new(0x01, vec![7; 16]).encode()),
            t => WireMessage::Text(text_seeds(t)[0].to_string()),
        };
        codec.on_message(start).expect("the seed start message is valid");
    }
    // Bytes received so far: a stream codec (AudioSocket) may deliver a
    // message completed by later reads.
    let mut received = 0usize;
    let mut produced = 0usize;
    let mut count = 0usize;
    for sent in 1..=MAX_MESSAGES {
        if e.is_empty() {
            break;
        }
        let msg = message(&mut e, transport);
        received += message_len(&msg);
        match codec.on_message(msg) {
            Ok(events) => {
                // Every event takes a message or (AudioSocket) 3 bytes.
                count += events.len();
                assert!(count <= received / 3 + 2 * sent, "{transport}: {count} events from {sent} messages");
                produced += events.iter().map(event_size).sum::<usize>();
            }
            Err(err) => assert!(!err.0.trim().is_empty(), "{transport}: an error without a message"),
        }
        // Our own words (reasons, names) are short; the rest is payload.
        let ours = 128 * (count + sent);
        assert!(
            produced <= received + ours,
            "{transport}: {produced} bytes of events from {received} in {sent} messages"
        );
        if e.one_in(8) {
            check_outgoing(&mut e, codec.as_mut(), transport);
        }
    }
}

/// Our own messages to the PBX, whatever state the codec is in: never a
/// panic, and as much audio out as went in (padding to whole frames aside).
fn check_outgoing(e: &mut Entropy, codec: &mut dyn MediaCodec, transport: Transport) {
    let samples = vec![1000i16; e.below(20_000)];
    let out = match e.below(5) {
        0 => codec.audio(&samples),
        1 => codec.mark(&String::from_utf8_lossy(e.bytes(80))),
        2 => codec.flush(),
        3 => codec.answer(),
        _ => codec.hangup(),
    };
    let bytes: usize = out.iter().map(message_len).sum();
    // base64 JSON (FreeSWITCH) is the largest encoding: 4/3 per L16 byte;
    // Asterisk pads the last frame, which the start message may make large.
    let padding = crate::pbx::asterisk_ws::MAX_AUDIO_MESSAGE_BYTES;
    assert!(
        bytes <= samples.len() * 3 + padding + 8 * 1024,
        "{transport}: {bytes} bytes out for {} samples",
        samples.len()
    );
}

/// The result of decoding a stream: the frames, then the first error or
/// the bytes still waiting.
#[derive(Debug, PartialEq)]
struct Decoded {
    frames: Vec<Frame>,
    end: Result<usize, String>,
}

impl Decoded {
    /// Kinds and lengths only: a failure message must stay readable.
    fn summary(&self) -> String {
        let frames: Vec<String> = self.frames.iter().map(|f| format!("0x{:02x}+{}", f.kind, f.payload.len())).collect();
        format!("[{}] {:?}", frames.join(" "), self.end)
    }
}

fn decode(pieces: &[&[u8]]) -> Decoded {
    let mut decoder = FrameDecoder::new();
    let mut frames = Vec::new();
    for piece in pieces {
        decoder.push(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                // Waiting for more: at most one header and one payload.
                Ok(None) => {
                    assert!(decoder.pending() < 3 + MAX_PAYLOAD, "{} bytes buffered", decoder.pending());
                    break;
                }
                // What else was read with the bad bytes depends on the reads.
                Err(e) => return Decoded { frames, end: Err(e.0) },
            }
        }
    }
    Decoded { frames, end: Ok(decoder.pending()) }
}

/// A stream of mostly valid AudioSocket messages with random payload
/// lengths, and now and then garbage or an oversized length.
fn audiosocket_stream(e: &mut Entropy) -> Vec<u8> {
    let mut stream = Vec::new();
    for _ in 0..e.below(32) {
        match e.below(8) {
            0 => stream.extend_from_slice(e.bytes(16)),
            1 => {
                let len = e.u32() as u16;
                stream.extend_from_slice(&[*e.pick(&[0x10, 0x01, 0x42]), (len >> 8) as u8, len as u8]);
            }
            _ => {
                let kind = *e.pick(&[0x00, 0x01, 0x03, 0x10, 0x12, 0x18, 0xff]);
                let len = *e.pick(&[0, 1, 16, 320, 640, 7680, MAX_PAYLOAD]);
                stream.extend_from_slice(&Frame::new(kind, vec![e.byte(); len]).encode());
            }
        }
    }
    stream
}

/// The AudioSocket framer: the same frames (and the same error) whatever
/// the reads the stream arrives in; what it consumed re-encodes to the
/// bytes it read; never more than one message buffered.
pub fn fuzz_audiosocket_framer(data: &[u8]) {
    let mut e = Entropy::new(data);
    let stream = audiosocket_stream(&mut e);
    let whole = decode(&[&stream]);
    let pieces = e.split(&stream);
    let split = decode(&pieces);
    assert!(split == whole, "cut into {} pieces: {} instead of {}", pieces.len(), split.summary(), whole.summary());
    let consumed: Vec<u8> = whole.frames.iter().flat_map(Frame::encode).collect();
    assert!(stream.starts_with(&consumed), "frames do not re-encode to the bytes read: {}", whole.summary());
    if let Ok(pending) = whole.end {
        assert_eq!(consumed.len() + pending, stream.len());
    }
}
