use tokio::io::{AsyncWriteExt, BufReader};

use super::client::check_arg;
use super::*;

#[tokio::test]
async fn reads_framed_messages_with_and_without_body() {
    let wire = b"Content-Type: auth/request\n\nContent-Type: api/response\nContent-Length: 24\n\n-ERR No such channel!\n\n\nContent-Type: command/reply\r\nReply-Text: +OK accepted\r\n\r\n";
    let mut r = BufReader::new(&wire[..]);
    assert_eq!(read_message(&mut r).await.unwrap().unwrap().content_type(), "auth/request");
    let api = read_message(&mut r).await.unwrap().unwrap();
    assert_eq!(api.body_text(), "-ERR No such channel!\n\n\n");
    let reply = read_message(&mut r).await.unwrap().unwrap();
    assert_eq!(reply.header("reply-text"), Some("+OK accepted"));
    assert!(read_message(&mut r).await.unwrap().is_none());
}

#[tokio::test]
async fn truncated_and_oversized_frames_are_errors() {
    let mut r = BufReader::new(&b"Content-Type: api/response\nContent-Length: 10\n\nabc"[..]);
    assert!(read_message(&mut r).await.unwrap_err().to_string().contains("10-byte body"));
    let mut r = BufReader::new(&b"Content-Length: 999999999\n\n"[..]);
    assert!(read_message(&mut r).await.unwrap_err().to_string().contains("larger than"));
    let mut r = BufReader::new(&b"Content-Length: ten\n\n"[..]);
    assert!(read_message(&mut r).await.unwrap_err().to_string().contains("not a number"));
    let mut r = BufReader::new(&b"garbage line\n\n"[..]);
    assert!(read_message(&mut r).await.unwrap_err().to_string().contains("without a colon"));
    let long = vec![b'a'; MAX_LINE + 10];
    let mut r = BufReader::new(&long[..]);
    assert!(read_message(&mut r).await.is_err());
}

#[test]
fn plain_events_are_url_decoded_and_classified() {
    let body = "Event-Name: DTMF\nUnique-ID: 0f1e2d3c-aaaa-bbbb-cccc-000000000001\nDTMF-Digit: %23\nCaller-Caller-ID-Name: Jane%20Doe\n\n";
    let ev = EslEvent::parse_plain(body.as_bytes()).unwrap();
    assert_eq!(ev.get("Caller-Caller-ID-Name"), Some("Jane Doe"));
    assert_eq!(ev.classify(), EslCallEvent::Dtmf { uuid: "0f1e2d3c-aaaa-bbbb-cccc-000000000001".into(), digit: '#' });

    let json = r#"{"audioContentType":"raw","sampleRate":8000,"file":"/tmp/u1_1.tmp.r8"}"#;
    let body = format!(
        "Event-Name: CUSTOM\nEvent-Subclass: mod_audio_fork%3A%3Aplay_audio\nUnique-ID: u1\nContent-Length: {}\n\n{json}",
        json.len()
    );
    let ev = EslEvent::parse_plain(body.as_bytes()).unwrap();
    assert_eq!(ev.classify(), EslCallEvent::PlayFile { uuid: "u1".into(), file: "/tmp/u1_1.tmp.r8".into() });

    let ev =
        EslEvent::parse_plain(b"Event-Name: CHANNEL_HANGUP\nUnique-ID: u1\nHangup-Cause: NORMAL_CLEARING\n\n").unwrap();
    assert_eq!(ev.classify(), EslCallEvent::Hangup { uuid: "u1".into(), cause: "NORMAL_CLEARING".into() });
    assert!(EslEvent::parse_plain(b"Unique-ID: u1\n\n").is_err());
    let ev = EslEvent::parse_plain(b"Event-Name: CUSTOM\nUnique-ID: u1\n\nContent-Length: 2\n\n{}").unwrap();
    assert_eq!(ev.body, "{}");
    assert!(EslEvent::parse_plain(b"Event-Name: CUSTOM\nContent-Length: 50\n\nshort").is_err());
}

#[test]
fn url_decode_keeps_broken_escapes() {
    assert_eq!(url_decode("a%20b%3a%zz%"), "a b:%zz%");
    assert_eq!(url_decode("%4"), "%4");
}

#[test]
fn config_never_prints_the_password() {
    let c = EslConfig::new("127.0.0.1:8021", "ClueCon");
    assert!(!format!("{c:?}").contains("ClueCon"));
    assert_eq!(EslConfig::resolve("x:1", Some("pw".into())).unwrap().password, "pw");
}

#[tokio::test]
async fn a_dropped_connection_fails_commands_fast_and_says_why() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut r = BufReader::new(r);
        w.write_all(b"Content-Type: auth/request\n\n").await.unwrap();
        let mut auth = String::new();
        r.read_line(&mut auth).await.unwrap();
        assert_eq!(auth, "auth ClueCon\n");
        w.write_all(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n").await.unwrap();
        // FreeSWITCH stops: the connection closes.
    });
    let (client, mut events) = EslClient::connect(&EslConfig::new(addr, "ClueCon")).await.unwrap();
    assert!(events.recv().await.is_none(), "the event stream ends with the connection");
    assert_eq!(client.close_reason().as_deref(), Some("closed by FreeSWITCH"));
    let t0 = std::time::Instant::now();
    assert!(matches!(client.uuid_transfer("u1", "100", None).await, Err(EslError::Closed)));
    assert!(t0.elapsed() < Duration::from_secs(1), "no waiting for the command timeout");
}

#[test]
fn arguments_with_whitespace_are_refused() {
    assert!(check_arg("extension", "1000\n\napi uuid_kill x").is_err());
    assert!(check_arg("extension", "").is_err());
    assert!(check_arg("extension", "1000").is_ok());
}
