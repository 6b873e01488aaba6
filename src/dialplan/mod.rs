//! Dialplans: TOML files admins write, parsed with spans, validated into the
//! compiled [`model`] the call machine runs. Every problem is reported at
//! once with file:line:col.
pub mod model;

pub use model::*;
