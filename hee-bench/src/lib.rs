//! # hee-bench
//!
//! The `hee` program and the benchmark harness. What lives where:
//!
//! | module | what |
//! | --- | --- |
//! | [`cli`] | the command line: arguments, dispatch, one-line messages, exit codes (`src/bin/hee.rs` only calls it) |
//! | [`train`] | training as a workflow (`hee train`): configuration, run folders, checkpoints, bit-identical resuming, learning curves |
//! | [`generate`] | `hee generate`: samples from a trained run (marginal, joint, completion), written as a grid, safetensors and settings |
//! | [`eval`] | `hee eval --log-likelihood`: log p(x₀) of a run's held-out data (AIS, prior IS, BDMC bounds), in nats and bits/dim |
//! | [`experiments`] | the experiments of `hee reproduce`, each behind the [`experiments::Experiment`] trait and listed in [`experiments::REGISTRY`] |
//! | [`error`] | [`CliError`], the program's typed errors |
//!
//! The criterion benchmarks are in `benches/`, the profiling and analysis
//! examples in `examples/`. Everything here calls hee-core, hee-data and
//! hee-eval; none of them knows about files, progress bars or command lines
//! beyond what this crate passes them. Each experiment is a plain function
//! from its options to rows and curves (`run`), with its files written by a
//! second one (`write`), so that the same code serves the program, the
//! tests and the benches.

pub mod cli;
pub mod error;
pub mod eval;
pub mod experiments;
pub mod generate;
pub mod train;

pub use error::CliError;
