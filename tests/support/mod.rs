//! Test doubles of the PBX side, shared by the integration tests:
//! `asterisk` (a chan_websocket client as Asterisk 22 behaves), `ami` (a
//! Manager Interface that records what it is asked to do), and the peers
//! of the other transports.
#![allow(dead_code)]
pub mod ami;
pub mod asterisk;
pub mod audiosocket;
pub mod freeswitch;
pub mod server;
pub mod twilio;
