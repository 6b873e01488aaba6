//! `[[listeners]]`: the sockets of the other transports (AudioSocket,
//! FreeSWITCH, Twilio), each with who may connect and the URL the PBX uses.
use std::net::SocketAddr;

use super::problems::Problems;
use super::raw::RawListener;
use super::{AddrRange, Listener};
use crate::pbx::transport::{codec, Transport, TransportOptions};

/// What a listener needs from the rest of the config.
pub(super) struct Context {
    /// The chan_websocket listener's address, which no other may reuse.
    pub main_listen: SocketAddr,
    /// Whether `[esl]` is configured (FreeSWITCH listeners play prompts over it).
    pub has_event_socket: bool,
    /// Whether Twilio signatures are checked (then a Twilio listener needs its url).
    pub checks_twilio_signatures: bool,
}

pub(super) fn validate(raw: &[RawListener], cx: &Context, problems: &mut Problems) -> Vec<Listener> {
    let mut listeners: Vec<Listener> = Vec::new();
    for (i, l) in raw.iter().enumerate() {
        if let Some(listener) = listener(i, l, cx, &listeners, problems) {
            listeners.push(listener);
        }
    }
    listeners
}

/// One listener; `None` when its transport or address is unusable (the
/// rest of it is still checked where that makes sense).
fn listener(
    i: usize,
    l: &RawListener,
    cx: &Context,
    earlier: &[Listener],
    problems: &mut Problems,
) -> Option<Listener> {
    let field = |name: &str| format!("listeners[{i}].{name}");
    let Some(transport) = &l.transport else {
        problems.field(&l.span, &field("transport"), "is required");
        return None;
    };
    let transport_span = &transport.span;
    let transport = transport
        .value
        .parse::<Transport>()
        .map_err(|e| problems.field(transport_span, &field("transport"), e))
        .ok()?;
    let Some(addr) = &l.listen else {
        problems.field(&l.span, &field("listen"), "is required");
        return None;
    };
    let Ok(listen) = addr.value.parse::<SocketAddr>() else {
        problems.field(&addr.span, &field("listen"), format!("{:?} is not an address like 127.0.0.1:9092", addr.value));
        return None;
    };
    // Port 0 asks the system for a free port, so it never clashes.
    if listen.port() != 0 && (listen == cx.main_listen || earlier.iter().any(|x| x.listen == listen)) {
        problems.field(&addr.span, &field("listen"), format!("{listen} is already used by another listener"));
    }
    let rate = l.rate.as_ref().map(|r| {
        let options = TransportOptions { rate: Some(r.value.clamp(0, 1_000_000) as u32) };
        if let Err(e) = codec(transport, &options) {
            problems.field(&r.span, &field("rate"), e);
        }
        if !(8_000..=48_000).contains(&r.value) {
            problems.field(&r.span, &field("rate"), format!("{} is out of range 8000..=48000", r.value));
        }
        r.value.clamp(8_000, 48_000) as u32
    });
    if transport.needs_event_socket() && !cx.has_event_socket {
        problems.field(
            transport_span,
            &field("transport"),
            format!("{transport} plays prompts over the FreeSWITCH event socket: add an [esl] section"),
        );
    }
    let allow = match &l.allow {
        // AudioSocket has no credentials: only this host unless the admin
        // names the PBX.
        None if transport == Transport::AudioSocket => vec![AddrRange::LOOPBACK_V4, AddrRange::LOOPBACK_V6],
        None => vec![AddrRange::ANY_V4, AddrRange::ANY_V6],
        Some(list) => {
            if list.value.is_empty() {
                problems.field(
                    &list.span,
                    &field("allow"),
                    "is empty: no PBX could connect (leave it out for the default)",
                );
            }
            list.value
                .iter()
                .filter_map(|a| {
                    a.value.parse::<AddrRange>().map_err(|e| problems.field(&a.span, &field("allow"), e)).ok()
                })
                .collect()
        }
    };
    let public_url = l.url.as_ref().map(|u| u.value.clone());
    if let Some(u) = &l.url {
        if !(u.value.starts_with("wss://") || u.value.starts_with("ws://")) {
            problems.field(&u.span, &field("url"), format!("{:?} is not a ws:// or wss:// URL", u.value));
        }
    }
    if transport == Transport::Twilio && cx.checks_twilio_signatures && public_url.is_none() {
        problems.field(
            &l.span,
            &field("url"),
            "is required to check Twilio's signature: the `<Stream>` url, e.g. wss://hotline.example.com/twilio",
        );
    }
    Some(Listener { transport, listen, rate, allow, public_url })
}
