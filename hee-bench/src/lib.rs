//! # hee-bench
//!
//! The experiments behind `hee reproduce …` and the criterion benchmarks.
//! Each experiment is a plain function from a configuration to rows and
//! curves; writing files is left to [`experiments::write_outputs`]-style
//! helpers so that the same code serves the CLI and the tests.

pub mod error;
pub mod experiments;

pub use error::CliError;
