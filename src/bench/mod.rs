//! Benchmarks behind `hotline bench`: each kind of measurement in its own
//! module, the table printing next to it.
pub mod data;
pub mod grammar;
