//! hotline: an offline voice front end for phone hotlines.
//!
//! A PBX streams a call's audio in; hotline finds speech, recognises it
//! offline, maps it to an intent of the admin's dialplan, plays the next
//! prompt, and transfers the caller to a human when needed.
pub mod asr;
pub mod audio;
pub mod call;
pub mod cli;
pub mod config;
pub mod dialplan;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod intent;
pub mod learn;
pub mod metrics;
pub mod pbx;
pub mod prompts;
pub mod records;
pub mod replay;
pub mod server;
