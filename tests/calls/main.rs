//! Whole calls in real time against a running server over loopback, with the
//! PBX emulators of tests/support: every transport, transfers, the front
//! door (auth, limits), records and start-up.
#[path = "../support/mod.rs"]
mod support;

mod asterisk_e2e;
mod front_door;
mod service;
mod transports_e2e;
