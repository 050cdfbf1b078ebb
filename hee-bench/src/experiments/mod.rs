//! Experiments of `hee reproduce`, each behind the small [`Experiment`]
//! trait: a name (on the command line, and the folder under `results/`),
//! one line of help, and `run`, which computes and writes the files. Each
//! experiment also offers its computation without files (`run`) and its
//! files (`write`) as plain functions, for tests and benches.
//!
//! To add one: a module here with a `reproduce` function, and its
//! [`Entry`] in [`REGISTRY`] (or any other type implementing [`Experiment`]).

pub mod defaults;
pub mod generation;
pub mod likelihood;
pub mod linear;
pub mod model_search;
pub mod receptive_fields;
pub mod sampler_check;
pub mod speedup;
pub mod throughput;

use std::path::PathBuf;

use crate::CliError;

/// Settings common to every experiment.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Smaller, faster version (CI, smoke tests).
    pub quick: bool,
    /// Master seed: the run is a function of it.
    pub seed: u64,
    /// Output directory.
    pub out: PathBuf,
    /// A data folder instead of the default one (experiments that read
    /// data; see [`Experiment::options`]).
    pub data_dir: Option<PathBuf>,
    /// Consecutive seeds to run from `seed` (experiments that repeat).
    pub seeds: usize,
    /// Inference steps per update to compare (experiments that train at
    /// several budgets); `None` takes the experiment's own list.
    pub budgets: Option<Vec<usize>>,
}

impl RunOptions {
    /// `quick`, `seed` and `out`, the default data and one seed.
    pub fn new(quick: bool, seed: u64, out: PathBuf) -> Self {
        RunOptions {
            quick,
            seed,
            out,
            data_dir: None,
            seeds: 1,
            budgets: None,
        }
    }
}

/// One experiment of `hee reproduce`.
pub trait Experiment: Sync {
    /// The name on the command line; also its folder under `results/`.
    fn name(&self) -> &'static str;
    /// One line for `hee reproduce --help`.
    fn about(&self) -> &'static str;
    /// The options beyond `--quick`, `--seed` and `--out` it reads
    /// (`"data-dir"`, `"seeds"`, `"budgets"`); the others are refused.
    fn options(&self) -> &'static [&'static str] {
        &[]
    }
    /// Runs in full or quick mode and writes its files into `opts.out`;
    /// returns their paths. Progress lines go to `progress`.
    fn run(
        &self,
        opts: &RunOptions,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Vec<PathBuf>, CliError>;
}

/// Runs an experiment and writes its files, returning their paths.
pub type ReproduceFn = fn(&RunOptions, &mut dyn FnMut(&str)) -> Result<Vec<PathBuf>, CliError>;

/// An experiment given by its functions: what each experiment here is.
pub struct Entry {
    pub name: &'static str,
    pub about: &'static str,
    pub options: &'static [&'static str],
    pub run: ReproduceFn,
}

impl Experiment for Entry {
    fn name(&self) -> &'static str {
        self.name
    }
    fn about(&self) -> &'static str {
        self.about
    }
    fn options(&self) -> &'static [&'static str] {
        self.options
    }
    fn run(
        &self,
        opts: &RunOptions,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Vec<PathBuf>, CliError> {
        (self.run)(opts, progress)
    }
}

/// Every experiment, in the order `hee reproduce --help` lists them.
pub const REGISTRY: &[&dyn Experiment] = &[
    &Entry {
        name: "sampler-check",
        about: "Plain Langevin (analytic and interneuron A′) against exact posteriors",
        options: &[],
        run: sampler_check::reproduce,
    },
    &Entry {
        name: "speedup",
        about: "Neural adaptation against plain Langevin on ill-conditioned posteriors",
        options: &[],
        run: speedup::reproduce,
    },
    &Entry {
        name: "defaults",
        about: "The measurements behind hee-core's defaults (interneuron time constant, momentum factor)",
        options: &[],
        run: defaults::reproduce,
    },
    &Entry {
        name: "receptive-fields",
        about: "V1-like receptive fields from natural images: a sparse first layer against a gaussian control",
        options: &["data-dir", "seeds"],
        run: receptive_fields::reproduce,
    },
    &Entry {
        name: "generation",
        about: "Marginal against joint generation from trained HEE models, FCD/KID/precision/recall beside the held-out floor",
        options: &["seeds", "budgets"],
        run: generation::reproduce,
    },
    &Entry {
        name: "likelihood",
        about: "Exact and estimated (AIS, prior IS, BDMC bounds) log-likelihoods: known answers, the linear HEE models against their optima, the default models against PPCA and factor analysis on MNIST and Fashion-MNIST",
        options: &[],
        run: likelihood::reproduce,
    },
    &Entry {
        name: "model-search",
        about: "hee train's MNIST defaults chosen by validation log-likelihood (AIS) over a small grid, and whether the interneurons' bias matters",
        options: &[],
        run: model_search::reproduce,
    },
    &Entry {
        name: "throughput",
        about: "Step time against its matrix-product floor, 1 and 2 threads, inference and learning",
        options: &[],
        run: throughput::reproduce,
    },
];

/// The experiment called `name`.
pub fn find(name: &str) -> Option<&'static dyn Experiment> {
    REGISTRY.iter().copied().find(|e| e.name() == name)
}
