use super::*;

const PLAIN_START: &str = "MEDIA_START connection_id:bot channel:WebSocket/bot/0x7ff710006880 channel_id:1795449997.8 format:slin16 optimal_frame_size:640 ptime:20";
const JSON_START: &str = r#"{"event":"MEDIA_START","connection_id":"bot","channel":"WebSocket/bot/0x7ff6f80077a0","channel_id":"1795449971.5","format":"slin16","optimal_frame_size":640,"ptime":20,"channel_variables":{"DIALEDPEERNUMBER":"bot/c(slin16)f(json)v(scenario=basic,caller_uid=1795449971.3,caller_chan=Local%2Fs%40caller-sim-00000001%3B1)","MEDIA_WEBSOCKET_CONNECTION_ID":"bot","MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE":"640","__CALLER_UNIQUEID":"1795449971.3","__CALLER_CHANNEL":"Local/s@caller-sim-00000001;1"}}"#;

fn text(s: &str) -> WireMessage {
    WireMessage::Text(s.to_string())
}

fn started(codec: &mut AsteriskWsCodec, start: &str) -> CallInfo {
    match codec.on_message(text(start)).unwrap().as_slice() {
        [PbxEvent::Start(info)] => info.clone(),
        other => panic!("expected Start, got {other:?}"),
    }
}

fn var<'a>(info: &'a CallInfo, key: &str) -> Option<&'a str> {
    info.variables.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn plain_media_start_from_protocols_md() {
    let mut c = AsteriskWsCodec::new("/");
    let info = started(&mut c, PLAIN_START);
    assert_eq!(info.call_id, "1795449997.8");
    assert_eq!(info.channel.as_deref(), Some("WebSocket/bot/0x7ff710006880"));
    assert_eq!(info.format, Some(AudioFormat::Slin(16000)));
    assert_eq!(info.frame_bytes, Some(640));
    assert_eq!(info.dialplan, None);
    assert_eq!(c.control_format(), ControlFormat::PlainText);
    assert_eq!(c.hangup(), vec![text("HANGUP")]);
    assert_eq!(c.mark("prompt-1"), vec![text("MARK_MEDIA prompt-1")]);
}

#[test]
fn json_media_start_uses_inherited_caller_channel() {
    let mut c = AsteriskWsCodec::new("/call?dialplan=sales&caller_id=%2B4930123");
    let info = started(&mut c, JSON_START);
    assert_eq!(info.call_id, "1795449971.5");
    assert_eq!(info.channel.as_deref(), Some("Local/s@caller-sim-00000001;1"), "Redirect needs the caller leg");
    assert_eq!(var(&info, keys::INFO_WEBSOCKET_CHANNEL), Some("WebSocket/bot/0x7ff6f80077a0"));
    assert_eq!(var(&info, keys::INFO_CALLER_UNIQUEID), Some("1795449971.3"));
    assert_eq!(var(&info, "MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE"), Some("640"));
    assert_eq!(info.dialplan.as_deref(), Some("sales"));
    assert_eq!(info.caller_id.as_deref(), Some("+4930123"));
    assert_eq!(c.control_format(), ControlFormat::Json);
    assert_eq!(c.answer(), vec![text(r#"{"command":"ANSWER"}"#)]);
    assert_eq!(c.mark("prompt-1"), vec![text(r#"{"command":"MARK_MEDIA","correlation_id":"prompt-1"}"#)]);
    assert_eq!(c.flush(), vec![text(r#"{"command":"FLUSH_MEDIA"}"#)]);
}

#[test]
fn query_parameters_from_the_verified_upgrade_request() {
    let mut c = AsteriskWsCodec::new(
        "/call?src=asterisk&scenario=basic&caller_uid=1795450285.74&caller_chan=Local%2Fs%40caller-sim-00000019%3B1",
    );
    let info = started(&mut c, PLAIN_START);
    assert_eq!(info.channel.as_deref(), Some("Local/s@caller-sim-00000019;1"));
    assert_eq!(var(&info, keys::INFO_CALLER_CHANNEL), Some("Local/s@caller-sim-00000019;1"));
    assert_eq!(var(&info, keys::INFO_CALLER_UNIQUEID), Some("1795450285.74"));
}

#[test]
fn dialplan_from_channel_variable() {
    let mut c = AsteriskWsCodec::new("/");
    let start = r#"{"event":"MEDIA_START","channel":"WebSocket/bot/0x1","channel_id":"1.2","format":"ulaw","optimal_frame_size":160,"ptime":20,"channel_variables":{"__HOTLINE_DIALPLAN":"support","__HOTLINE_CALLER_ID":"555"}}"#;
    let info = started(&mut c, start);
    assert_eq!(info.dialplan.as_deref(), Some("support"));
    assert_eq!(info.caller_id.as_deref(), Some("555"));
    assert_eq!(info.format, Some(AudioFormat::Ulaw));
    assert_eq!(info.channel.as_deref(), Some("WebSocket/bot/0x1"));
}

#[test]
fn events_in_both_formats() {
    let mut p = AsteriskWsCodec::new("/");
    started(&mut p, PLAIN_START);
    let mut j = AsteriskWsCodec::new("/");
    started(&mut j, JSON_START);
    for (codec, frame, want) in [
        (false, "DTMF_END digit:1 channel_id:1795450354.91", PbxEvent::Dtmf('1')),
        (true, r##"{"event":"DTMF_END","channel_id":"1795450330.88","digit":"#"}"##, PbxEvent::Dtmf('#')),
        (false, "MEDIA_MARK_PROCESSED prompt-1", PbxEvent::MarkReached("prompt-1".into())),
        (false, "MEDIA_MARK_PROCESSED", PbxEvent::MarkReached(String::new())),
        (
            true,
            r#"{"event":"MEDIA_MARK_PROCESSED","channel_id":"1795450470.112","correlation_id":"prompt-1"}"#,
            PbxEvent::MarkReached("prompt-1".into()),
        ),
        (false, "MEDIA_XOFF", PbxEvent::Pause),
        (false, "MEDIA_XON", PbxEvent::Resume),
        (true, r#"{"event":"MEDIA_XOFF","channel_id":"1795450091.35"}"#, PbxEvent::Pause),
        (true, r#"{"event":"MEDIA_XON","channel_id":"1795450091.35"}"#, PbxEvent::Resume),
        (false, "QUEUE_DRAINED", PbxEvent::Ignored("QUEUE_DRAINED".into())),
        (true, r#"{"event":"QUEUE_DRAINED","channel_id":"1795450055.26"}"#, PbxEvent::Ignored("QUEUE_DRAINED".into())),
        (false, "HANGUP", PbxEvent::Hangup { reason: "HANGUP event from Asterisk".into() }),
    ] {
        let codec = if codec { &mut j } else { &mut p };
        assert_eq!(codec.on_message(text(frame)).unwrap(), vec![want], "{frame}");
    }
}

#[test]
fn status_and_error_are_understood_not_fatal() {
    let mut p = AsteriskWsCodec::new("/");
    started(&mut p, PLAIN_START);
    let status = "STATUS channel_id:1795449997.8 queue_length:0 xon_level:800 xoff_level:900 queue_full:false bulk_media:false media_paused:false";
    assert!(matches!(p.on_message(text(status)).unwrap()[0], PbxEvent::Ignored(ref s) if s.contains("queue_length:0")));
    let err = "ERROR channel_id:1795450165.59 error_text:SET_MEDIA_DIRECTION only supports JSON format.\n";
    assert_eq!(
        p.on_message(text(err)).unwrap(),
        vec![PbxEvent::Ignored("ERROR SET_MEDIA_DIRECTION only supports JSON format.".into())]
    );
    let mut j = AsteriskWsCodec::new("/");
    started(&mut j, JSON_START);
    let err = r#"{"event":"ERROR","channel_id":"1795450154.53","error_text":"Unable to parse JSON command"}"#;
    assert_eq!(j.on_message(text(err)).unwrap(), vec![PbxEvent::Ignored("ERROR Unable to parse JSON command".into())]);
}

#[test]
fn bad_input_is_a_named_error_never_a_panic() {
    let mut c = AsteriskWsCodec::new("/");
    let e = c.on_message(WireMessage::Binary(vec![0; 640])).unwrap_err();
    assert!(e.0.contains("before MEDIA_START"), "{e}");
    let e = c.on_message(text("DTMF_END digit:1")).unwrap_err();
    assert!(e.0.contains("DTMF_END before MEDIA_START"), "{e}");
    started(&mut c, PLAIN_START);
    for (frame, needle) in [
        ("{\"event\":", "invalid JSON"),
        ("[1,2]", "not an Asterisk event"),
        ("{\"foo\":1}", "without \"event\""),
        ("DTMF_END digit:12", "invalid digit"),
        ("DTMF_END", "without digit"),
        ("hello world", "not an Asterisk event"),
        ("", "empty text frame"),
        (PLAIN_START, "second MEDIA_START"),
    ] {
        let e = c.on_message(text(frame)).unwrap_err();
        assert!(e.0.contains(needle), "{frame:?}: {e}");
    }
    let e = c.on_message(text(&"X".repeat(MAX_EVENT_BYTES + 1))).unwrap_err();
    assert!(e.0.contains("exceeds"), "{e}");
    let e = c.on_message(WireMessage::Binary(vec![0; 641])).unwrap_err();
    assert!(e.0.contains("641-byte"), "{e}");
    let e = c.on_message(WireMessage::Binary(vec![0; 70_000])).unwrap_err();
    assert!(e.0.contains("70000-byte"), "{e}");
    assert_eq!(
        c.on_message(text("SOMETHING_NEW a:b")).unwrap(),
        vec![PbxEvent::Ignored("unknown event SOMETHING_NEW".into())]
    );
}

#[test]
fn unsupported_formats_are_refused_at_start() {
    for start in [
        "MEDIA_START channel_id:1.1 format:opus optimal_frame_size:0",
        "MEDIA_START channel_id:1.1 format:slin16 optimal_frame_size:0",
        "MEDIA_START channel_id:1.1 format:slin16 optimal_frame_size:641",
        "MEDIA_START channel_id:1.1 format:slin16 optimal_frame_size:lots",
        "MEDIA_START format:slin16 optimal_frame_size:640",
    ] {
        assert!(AsteriskWsCodec::new("/").on_message(text(start)).is_err(), "{start}");
    }
}

#[test]
fn caller_audio_is_decoded_in_the_announced_format() {
    let mut c = AsteriskWsCodec::new("/");
    started(&mut c, "MEDIA_START channel:WebSocket/bot/0x1 channel_id:1.1 format:ulaw optimal_frame_size:160 ptime:20");
    let samples: Vec<i16> = (0..160).map(|i| ((i as i16) - 80) * 300).collect();
    let wire = crate::audio::g711::ulaw_encode_all(&samples);
    match c.on_message(WireMessage::Binary(wire)).unwrap().as_slice() {
        [PbxEvent::Audio(a)] => {
            assert_eq!(a.len(), 160);
            for (x, y) in a.iter().zip(&samples) {
                assert!((x - y).abs() < 600, "{x} vs {y}");
            }
        }
        other => panic!("{other:?}"),
    }
    let mut s = AsteriskWsCodec::new("/");
    started(&mut s, PLAIN_START);
    // A short last frame of a played file (208 bytes) is legal.
    let wire: Vec<u8> = (0..104i16).flat_map(|v| (v * 7).to_le_bytes()).collect();
    assert_eq!(
        s.on_message(WireMessage::Binary(wire)).unwrap(),
        vec![PbxEvent::Audio((0..104).map(|v| v * 7).collect())]
    );
}

#[test]
fn prompt_audio_goes_out_in_whole_frames_under_the_size_limit() {
    let mut c = AsteriskWsCodec::new("/");
    started(&mut c, PLAIN_START);
    // 2.5 s + 1 sample at 16 kHz: 126 frames of 640 bytes after padding.
    let samples = vec![1000i16; 40_001];
    let msgs = c.audio(&samples);
    let sizes: Vec<usize> = msgs
        .iter()
        .map(|m| match m {
            WireMessage::Binary(b) => b.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(sizes.iter().all(|&s| s % 640 == 0 && s <= MAX_AUDIO_MESSAGE_BYTES), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 126 * 640);
    let WireMessage::Binary(last) = msgs.last().unwrap() else { unreachable!() };
    assert_eq!(&last[last.len() - 2..], &[0, 0], "padding is silence");

    let mut u = AsteriskWsCodec::new("/");
    started(&mut u, "MEDIA_START channel_id:1.1 format:ulaw optimal_frame_size:160");
    let msgs = u.audio(&vec![0i16; 8000 * 20]);
    assert!(msgs
        .iter()
        .all(|m| matches!(m, WireMessage::Binary(b) if b.len() % 160 == 0 && b.len() <= MAX_AUDIO_MESSAGE_BYTES)));
    assert_eq!(msgs.iter().map(|m| if let WireMessage::Binary(b) = m { b.len() } else { 0 }).sum::<usize>(), 160_000);
}

#[test]
fn commands_stay_short_and_mark_ids_safe() {
    let mut j = AsteriskWsCodec::new("/");
    started(&mut j, JSON_START);
    let long = "a b\"c".repeat(100);
    for m in j.mark(&long) {
        let WireMessage::Text(t) = m else { panic!() };
        assert!(t.len() <= MAX_COMMAND_BYTES, "{} bytes", t.len());
        assert!(!t.contains(' '));
    }
}

#[test]
fn percent_decoding_is_total() {
    assert_eq!(
        parse_query("/x?a=%2Fb%3B1&c=d+e&f&g=%zz&h=%4"),
        vec![
            ("a".into(), "/b;1".into()),
            ("c".into(), "d e".into()),
            ("f".into(), "".into()),
            ("g".into(), "%zz".into()),
            ("h".into(), "%4".into()),
        ]
    );
    assert!(parse_query("/").is_empty());
}
