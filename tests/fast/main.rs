//! The fast lane: tests that need neither the speech models' accuracy nor
//! real-time calls (`scripts/test --fast`). Dialplan checks, the AMI client,
//! the deployment files, and each transport's codec against its PBX emulator.
#[path = "../support/mod.rs"]
mod support;

mod asterisk_ami;
mod asterisk_deploy;
mod check;
mod cli;
mod transports;
