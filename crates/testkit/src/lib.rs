//! What hotline's tests and benchmarks share, kept out of the product:
//!
//! - test doubles of the PBX side, byte for byte per PROTOCOLS.md:
//!   `asterisk` (a chan_websocket client as Asterisk 22 behaves), `ami` (a
//!   Manager Interface that records what it is asked to do), `audiosocket`,
//!   `freeswitch` (event socket and the media modules' clients) and `twilio`;
//! - `server`: one speech stack and prompt renderer per test binary, call
//!   record helpers;
//! - `testdata` and `recordings`: the real recordings in ../shared/testdata
//!   and the utterances made from them (telephone band, noise, scoring).
pub mod ami;
pub mod asterisk;
pub mod audiosocket;
pub mod freeswitch;
pub mod recordings;
pub mod server;
pub mod testdata;
pub mod twilio;
