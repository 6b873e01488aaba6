//! The event socket's wire format: events in `text/event-plain` form and
//! the replies of `bgapi`, encoded as FreeSWITCH encodes them.

/// Percent-encodes an event header value as FreeSWITCH does
/// (switch_url_encode: everything but unreserved characters).
fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What FreeSWITCH does for `bgapi CMD`: the reply at once, and the
/// command's output `body` later in a BACKGROUND_JOB event.
pub fn background_job(job_uuid: &str, cmd: &str, body: &str) -> (Vec<u8>, String) {
    let (name, arg) = cmd.split_once(' ').unwrap_or((cmd, ""));
    let event = plain_event(
        &[("Event-Name", "BACKGROUND_JOB"), ("Job-UUID", job_uuid), ("Job-Command", name), ("Job-Command-Arg", arg)],
        Some(body),
    );
    let reply = format!("Content-Type: command/reply\nReply-Text: +OK Job-UUID: {job_uuid}\nJob-UUID: {job_uuid}\n\n");
    (event, reply)
}

/// One event in `text/event-plain` form, ready for the wire.
pub fn plain_event(headers: &[(&str, &str)], body: Option<&str>) -> Vec<u8> {
    let mut inner = String::new();
    for (k, v) in headers {
        inner.push_str(&format!("{k}: {}\n", url_encode(v)));
    }
    match body {
        Some(b) => inner.push_str(&format!("Content-Length: {}\n\n{b}", b.len())),
        None => inner.push('\n'),
    }
    let mut out = format!("Content-Length: {}\nContent-Type: text/event-plain\n\n", inner.len()).into_bytes();
    out.extend_from_slice(inner.as_bytes());
    out
}
