//! `hee reproduce model-search` (issue 23): `hee train`'s MNIST defaults
//! chosen by held-out log-likelihood, within a stated budget.
//!
//! Each candidate differs from the base point (the defaults when the search
//! ran, [`base_config`]) in one or two settings (depth,
//! width, f, a sparse latent layer whose A′ comes from interneurons, σ₀
//! per layer or per pixel, learned latent σ, the σ floor, the coordinates
//! of the rule), is trained on the MNIST training split, and is scored by
//! AIS on validation images: held-out images 1000 to 1000 + `images`, not
//! the first 1000 that `hee reproduce likelihood` reports. Every candidate
//! is compared with the base on the same images (the paired standard
//! error of the difference resolves far smaller gaps than either SE), and
//! one more run repeats the sparse candidate with τ_ε/τ five times smaller
//! (five times less interneuron bias, which scales like τ_ε/τ) to say
//! whether that bias matters for the learned density.
//!
//! Two candidates step the rule in natural coordinates (σ moves with η
//! held, W and b by the rate alone), at the old default rate and ten times
//! it: the measurement behind the mean parametrisation of the defaults.
//!
//! Budget (full mode): 11 runs of 5 epochs each (half the defaults' 10, the
//! cosine schedule compressed to match; about 1 to 5 minutes each on 2
//! cores), and AIS with 300 temperatures × 4 chains on 200 validation
//! images, BDMC on 16 simulated ones.

use std::path::PathBuf;
use std::time::Instant;

use hee_eval::likelihood::ais::AisConfig;
use hee_eval::report::{prepare_dir, write_rows};

use super::RunOptions;
use crate::eval::estimate;
use crate::train::{load_data, TrainConfig, Training};
use crate::CliError;

/// The first validation image (the likelihood experiment reports 0..1000).
pub const VALIDATION_START: usize = 1000;

/// Epochs per candidate in full mode: the budget.
pub const EPOCHS: usize = 5;

/// The grid's base point, the `default` row: `hee train`'s defaults as
/// they were when the search ran, σ₁ fixed. The search moved the defaults
/// to its `latent-sigma` row; the base stays pinned so that the table is
/// reproduced as committed.
fn base_config(seed: u64) -> TrainConfig {
    let mut cfg = TrainConfig {
        seed,
        ..TrainConfig::default()
    };
    cfg.model.dispersion = vec!["unit".into()];
    cfg
}

/// A candidate: its name, what it changes, and the `--set` overrides.
struct Candidate {
    name: &'static str,
    change: &'static str,
    layers: &'static [usize],
    sets: &'static [&'static str],
}

const SPARSE: &str = "model.energies=[{kind=\"gaussian\",sigma=0.3},{kind=\"smooth-laplace\",sigma=1.0,lambda=1.0,delta=0.1},{kind=\"gaussian\",sigma=1.0}]";

const CANDIDATES: &[Candidate] = &[
    Candidate {
        name: "default",
        change: "784-256-64, softplus, gaussian latents, one sigma_0 per pixel learned, latent sigma fixed at 1",
        layers: &[784, 256, 64],
        sets: &[],
    },
    Candidate {
        name: "latent-sigma",
        change: "sigma_1 learned too (one for the layer; the top layer's stays 1)",
        layers: &[784, 256, 64],
        sets: &["model.dispersion=[\"unit\",\"layer\"]"],
    },
    Candidate {
        name: "sigma-per-layer",
        change: "one sigma_0 for every pixel",
        layers: &[784, 256, 64],
        sets: &["model.dispersion=[\"layer\"]"],
    },
    Candidate {
        name: "tanh",
        change: "f = tanh",
        layers: &[784, 256, 64],
        sets: &["model.nonlinearity=tanh"],
    },
    Candidate {
        name: "floor-0.005",
        change: "sigma floor 0.005",
        layers: &[784, 256, 64],
        sets: &["learning.sigma_min=0.005"],
    },
    Candidate {
        name: "narrow",
        change: "784-128-32",
        layers: &[784, 128, 32],
        sets: &[],
    },
    Candidate {
        name: "deep",
        change: "784-256-128-32 (three latent layers)",
        layers: &[784, 256, 128, 32],
        sets: &[],
    },
    Candidate {
        name: "sparse",
        change: "smooth-laplace layer 1 (A' by interneurons)",
        layers: &[784, 256, 64],
        sets: &[SPARSE],
    },
    Candidate {
        name: "natural-0.05",
        change: "the rule in natural coordinates (sigma_0 moves with eta held), rates 0.05",
        layers: &[784, 256, 64],
        sets: &[
            "learning.parametrisation=natural",
            "learning.lr_weights=0.05",
            "learning.lr_biases=0.05",
        ],
    },
    Candidate {
        name: "natural-0.5",
        change: "the rule in natural coordinates, rates 0.5",
        layers: &[784, 256, 64],
        sets: &[
            "learning.parametrisation=natural",
            "learning.lr_weights=0.5",
            "learning.lr_biases=0.5",
        ],
    },
    Candidate {
        name: "sparse-slow-interneurons",
        change: "smooth-laplace layer 1, tau_eps/tau = 0.002 (5x less interneuron bias)",
        layers: &[784, 256, 64],
        sets: &[SPARSE, "dynamics.tau_ratio=0.002"],
    },
];

/// One candidate's score.
#[derive(Debug, Clone)]
pub struct SearchRow {
    pub name: String,
    pub change: String,
    pub validation_nats: f64,
    pub se: f64,
    /// Mean over the validation images of (candidate − default), and its SE.
    pub vs_default: f64,
    pub vs_default_se: f64,
    pub bits_per_dim: f64,
    pub bdmc_gap: f64,
    pub recon_error: f64,
    pub train_seconds: f64,
    pub status: String,
}

impl SearchRow {
    fn cells(&self) -> Vec<String> {
        let f = crate::eval::fixed_cell;
        vec![
            self.name.clone(),
            format!("\"{}\"", self.change),
            f(self.validation_nats, 2),
            f(self.se, 2),
            f(self.vs_default, 2),
            f(self.vs_default_se, 2),
            f(self.bits_per_dim, 4),
            f(self.bdmc_gap, 2),
            f(self.recon_error, 3),
            f(self.train_seconds, 0),
            self.status.clone(),
        ]
    }
}

const HEADER: &str = "candidate,change,validation_nats,se,vs_default_nats,vs_default_se,bits_per_dim,bdmc_gap_nats,recon_error,train_seconds,status";

fn mean_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt(),
    )
}

/// Trains and scores every candidate.
pub fn run(opts: &RunOptions, progress: &mut dyn FnMut(&str)) -> Result<Vec<SearchRow>, CliError> {
    let (images, ais, simulated, epochs, candidates) = if opts.quick {
        let cfg = AisConfig {
            steps: 50,
            chains: 2,
            runs: 2,
            seed: opts.seed,
            ..AisConfig::default()
        };
        (16, cfg, 4, Some(1), &CANDIDATES[..3])
    } else {
        let cfg = AisConfig {
            steps: 300,
            chains: 4,
            runs: 2,
            seed: opts.seed,
            ..AisConfig::default()
        };
        (200, cfg, 16, Some(EPOCHS), CANDIDATES)
    };
    let mut eval_cfg = TrainConfig {
        seed: opts.seed,
        ..TrainConfig::default()
    };
    eval_cfg.data.scaling = "dequantized".into();
    let data = load_data(&eval_cfg)?;
    let x0 = data.test.as_ref().subrows(
        VALIDATION_START,
        images.min(data.test.nrows() - VALIDATION_START),
    );
    let mut rows = Vec::new();
    let mut default_images: Option<Vec<f64>> = None;
    for c in candidates {
        let mut cfg = base_config(opts.seed);
        cfg.model.layers = c.layers.to_vec();
        for s in c.sets {
            cfg.set(s)?;
        }
        if let Some(e) = epochs {
            cfg.epochs = e;
        }
        let dir = opts.out.join(format!("run-{}", c.name));
        let _ = std::fs::remove_dir_all(&dir);
        let t0 = Instant::now();
        let trained = Training::start(cfg, &dir).and_then(|mut t| {
            t.run(&std::sync::atomic::AtomicBool::new(false), &mut |_| {})?;
            Ok(t)
        });
        let secs = t0.elapsed().as_secs_f64();
        let t = match trained {
            Ok(t) => t,
            Err(e) => {
                progress(&format!("model-search: {}: did not finish ({e})", c.name));
                rows.push(SearchRow {
                    name: c.name.into(),
                    change: c.change.into(),
                    validation_nats: f64::NAN,
                    se: f64::NAN,
                    vs_default: f64::NAN,
                    vs_default_se: f64::NAN,
                    bits_per_dim: f64::NAN,
                    bdmc_gap: f64::NAN,
                    recon_error: f64::NAN,
                    train_seconds: secs,
                    status: "diverged".into(),
                });
                continue;
            }
        };
        let (row, per_image) = estimate(c.name, "mnist", &t.model, x0, &ais, simulated, true)?;
        let (m, se) = mean_se(&per_image);
        let (vs, vs_se) = match &default_images {
            None => (0.0, 0.0),
            Some(d) => mean_se(
                &per_image
                    .iter()
                    .zip(d)
                    .map(|(a, b)| a - b)
                    .collect::<Vec<_>>(),
            ),
        };
        if default_images.is_none() {
            default_images = Some(per_image);
        }
        let r = SearchRow {
            name: c.name.into(),
            change: c.change.into(),
            validation_nats: m,
            se,
            vs_default: vs,
            vs_default_se: vs_se,
            bits_per_dim: row.bits_per_dim,
            bdmc_gap: row.bdmc_upper_nats - row.bdmc_lower_nats,
            recon_error: t.curve().last().map_or(f64::NAN, |r| r.recon_error),
            train_seconds: secs,
            status: "finished".into(),
        };
        progress(&format!(
            "model-search: {:<26} {:.2} ± {:.2} nats ({:+.2} ± {:.2} against the default), {:.4} bits/dim, BDMC gap {:.2}, trained in {:.0} s",
            r.name, r.validation_nats, r.se, r.vs_default, r.vs_default_se, r.bits_per_dim, r.bdmc_gap, r.train_seconds
        ));
        rows.push(r);
    }
    Ok(rows)
}

/// `hee reproduce model-search`: writes `search.csv`.
pub fn reproduce(
    opts: &RunOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<PathBuf>, CliError> {
    let rows = run(opts, progress)?;
    prepare_dir(&opts.out)?;
    let path = opts.out.join("search.csv");
    write_rows(&path, HEADER, &rows, SearchRow::cells)?;
    Ok(vec![path])
}
