//! The fast lane: tests that need neither the speech models' accuracy nor
//! real-time calls (`scripts/test --fast`). Dialplan checks, the AMI client,
//! the deployment files, and each transport's codec against its PBX emulator.
// The PBX emulators and shared helpers, as `crate::support::...`.
use testkit as support;

mod asterisk_ami;
mod asterisk_deploy;
mod bench_command;
mod check;
mod cli;
mod k8s_deploy;
mod record_test;
mod suggest;
mod transports;
mod workspace;
