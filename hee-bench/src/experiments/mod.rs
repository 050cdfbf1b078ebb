//! Experiments of `hee reproduce`.

pub mod defaults;
pub mod linear;
pub mod receptive_fields;
pub mod sampler_check;
pub mod speedup;
pub mod throughput;

use std::path::PathBuf;

/// Settings common to every experiment.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Smaller, faster version (CI, smoke tests).
    pub quick: bool,
    /// Master seed: the run is a function of it.
    pub seed: u64,
    /// Output directory.
    pub out: PathBuf,
}
