//! Whole calls in real time against a running server over loopback, with the
//! PBX emulators of crates/testkit: every transport, transfers, the front
//! door (auth, limits), records and start-up.
// The PBX emulators and shared helpers, as `crate::support::...`.
use testkit as support;

mod asterisk_e2e;
mod event_socket_late;
mod front_door;
mod learning;
mod operations;
mod service;
mod transports_e2e;
