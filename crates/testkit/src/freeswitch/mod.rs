//! FreeSWITCH's side of the mod_audio_fork / mod_audio_stream transports,
//! byte for byte per PROTOCOLS.md §4-§6, for the tests and the load bench:
//!
//! - [`FakeEsl`]: the inbound event socket (`auth/request`, `auth`,
//!   `event plain`, `api`, `bgapi`, `exit`), recording every command and
//!   answering the call-control APIs like FreeSWITCH (`+OK`,
//!   `-ERR No such channel!`), and delivering `text/event-plain` events.
//!   Started with [`FakeEsl::start_playing`] it also plays broadcast files
//!   as FreeSWITCH does — one after the other per channel, `PLAYBACK_START`
//!   when a file starts, `PLAYBACK_STOP` when it has played for its duration
//!   or is broken off by `uuid_break` — and notes when each
//!   `uuid_broadcast` arrived and when a channel's queue ran dry in the
//!   middle of a prompt; otherwise a test fires `PLAYBACK_STOP` itself.
//! - [`FsMediaClient`]: the websocket client the modules run: handshake
//!   (drachtio subprotocol, or libwsc's raw request offering
//!   permessage-deflate), metadata text frame, paced binary L16, and the
//!   module's handling of our JSON (`playAudio`/`streamAudio` → temp file
//!   and `::play_audio`/`::play` event on the event socket, `killAudio`).
//!   [`FsMediaClient::go_live`] runs its audio as in a live call: a frame
//!   every 20 ms through the module's bounded buffer (frames are lost when
//!   the write side falls behind, as `mod_audio_fork::buffer_overrun`
//!   reports).
//!
//! One module per side: `events` (the event socket's wire format),
//! `event_socket` (the server hotline connects to), `playback` (how its
//! channels play broadcast files) and `media` (the modules' websocket
//! clients, which hand our audio to the event socket as temp files).
#![allow(dead_code)]

mod event_socket;
mod events;
mod media;
mod playback;
#[cfg(test)]
mod tests;

use std::sync::{Mutex, MutexGuard};

pub use event_socket::{EslState, FakeEsl, ESL_PASSWORD};
pub use events::{background_job, plain_event};
pub use media::{ChannelStart, FsMediaClient, FsReceived, LiveChannel, Module};
pub use playback::PlaybackView;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
