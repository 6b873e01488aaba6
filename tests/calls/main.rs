//! Whole calls in real time against a running server over loopback, with the
//! PBX emulators of crates/testkit: every transport, transfers, the front
//! door (auth, limits), records, the dashboard's API and start-up.
// The PBX emulators and shared helpers, as `crate::support::...`.
use testkit as support;

mod asterisk_e2e;
mod balancer;
mod dashboard;
mod event_socket_late;
mod fleet;
mod front_door;
mod learning;
mod operations;
mod postgres_records;
mod postgres_server;
mod record_test;
mod service;
mod transports_e2e;
