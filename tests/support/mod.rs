//! Test doubles of the PBX side, shared by the integration tests:
//! `asterisk` (a chan_websocket client as Asterisk 22 behaves) and `ami`
//! (a Manager Interface that records what it is asked to do).
#![allow(dead_code)]
pub mod ami;
pub mod asterisk;
