//! # hee-bench
//!
//! The experiments behind `hee reproduce …`, training as a workflow
//! (`hee train`: run folders, checkpoints, resuming; [`train`]) and the
//! criterion benchmarks.
//! Each experiment is a plain function from a configuration to rows and
//! curves; writing files is left to [`experiments::write_outputs`]-style
//! helpers so that the same code serves the CLI and the tests.

pub mod error;
pub mod experiments;
pub mod train;

pub use error::CliError;
