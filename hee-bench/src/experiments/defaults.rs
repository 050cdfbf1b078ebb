//! `hee reproduce defaults`: the measurements behind two defaults of
//! hee-core, from the exact moment recursion (no sampling noise).
//!
//! * `interneuron-bias.csv` — the interneurons' time constant. Replacing A′
//!   by the interneurons' average ε̄ adds gradient noise whose effect on the
//!   stationary covariance grows with τ_ε/τ. For each sampler-check model
//!   (same seeds and step Δt = 0.05 τ/λ_max as `hee reproduce
//!   sampler-check`), plain Langevin with interneurons at several τ_ε/τ and
//!   K, against the same sampler with analytic A′: the relative covariance
//!   bias ‖Σ_stat − Σ‖_F/‖Σ‖_F of the stationary law and its KL to the
//!   posterior. This sets `InterneuronConfig::default()` (τ_ε/τ = 0.01,
//!   K = 20).
//! * `momentum-factor.csv` — the tuned adaptation rule's factor s =
//!   factor·√(hλ_min). Over random linear-gaussian models (2–3 latent layers
//!   of 2–8 units, weights scale 0.6, Δt = 0.1 τ/λ_max, as in
//!   hee-core/tests/adaptation.rs), the stationary law's relative covariance
//!   bias ‖Σ_stat − Σ‖₂/‖Σ‖₂ (worst and median over the models) for each
//!   factor, with analytic A′ and with interneurons (defaults). This sets
//!   `S_FACTOR` and `S_FACTOR_INTERNEURONS`.

use std::path::PathBuf;

use faer::Mat;
use hee_core::reference::linear_gaussian::Gaussian;
use hee_core::reference::moments::{KernelKind, MomentRecursion};
use hee_core::{APrime, Adaptation, CurvatureRange, InterneuronConfig, NeuralConfig};
use hee_eval::report::{prepare_dir, write_csv};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::linear::{random_problem, LinearProblem};
use super::RunOptions;
use crate::CliError;

/// One row of `interneuron-bias.csv`.
#[derive(Debug, Clone)]
pub struct InterneuronRow {
    pub model: String,
    pub tau_ratio: f64,
    pub substeps: usize,
    pub cov_rel_bias: f64,
    pub kl: f64,
    pub analytic_cov_rel_bias: f64,
    pub analytic_kl: f64,
}

/// One row of `momentum-factor.csv`.
#[derive(Debug, Clone)]
pub struct FactorRow {
    pub a_prime: &'static str,
    pub factor: f64,
    pub models: usize,
    pub worst_cov_rel_bias: f64,
    pub median_cov_rel_bias: f64,
    pub worst_kl: f64,
}

/// Everything the experiment measured.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub interneurons: Vec<InterneuronRow>,
    pub factors: Vec<FactorRow>,
}

fn frobenius_rel(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for i in 0..b.nrows() {
        for j in 0..b.ncols() {
            num += (a[(i, j)] - b[(i, j)]).powi(2);
            den += b[(i, j)].powi(2);
        }
    }
    (num / den).sqrt()
}

fn spectral(m: &Mat<f64>) -> Result<f64, CliError> {
    let ev = m
        .self_adjoint_eigenvalues(faer::Side::Lower)
        .map_err(|_| CliError::Usage("defaults: eigenvalues failed".into()))?;
    Ok(ev.iter().map(|v| v.abs()).fold(0.0, f64::max))
}

fn stationary(
    p: &LinearProblem,
    cfg: &NeuralConfig,
    kind: KernelKind,
) -> Result<Gaussian, CliError> {
    Ok(MomentRecursion::new(&p.exact_model, cfg, kind, &p.x0)?.stationary_latents()?)
}

/// The sampler-check models (same shapes and seeds).
fn check_models(quick: bool, seed: u64) -> Result<Vec<LinearProblem>, CliError> {
    let shapes: Vec<Vec<usize>> = if quick {
        vec![vec![8, 6, 4], vec![16, 8, 4]]
    } else {
        vec![
            vec![8, 6, 4],
            vec![16, 8, 4],
            vec![12, 8, 6, 4],
            vec![32, 16, 8],
            vec![24, 12, 8, 4],
        ]
    };
    shapes
        .iter()
        .enumerate()
        .map(|(i, s)| Ok(random_problem(s, 0.6, seed.wrapping_add(i as u64))?))
        .collect()
}

fn interneuron_rows(
    quick: bool,
    seed: u64,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<InterneuronRow>, CliError> {
    let ratios = [0.0025, 0.005, 0.01, 0.02, 0.05, 0.1];
    let substeps = [5, 20, 80];
    let mut rows = Vec::new();
    for p in check_models(quick, seed)? {
        let mut cfg = NeuralConfig::new(super::sampler_check::H_LMAX / p.lambda_max, 1.0);
        cfg.a_prime = APrime::Analytic;
        let exact = stationary(&p, &cfg, KernelKind::Plain)?;
        let analytic_cov_rel_bias = frobenius_rel(&exact.cov, &p.posterior.cov);
        let analytic_kl = exact.kl_to(&p.posterior)?;
        for &tau_ratio in &ratios {
            for &k in &substeps {
                cfg.a_prime = APrime::Interneurons(InterneuronConfig {
                    tau_ratio,
                    substeps: k,
                });
                // The same sub-step limit as the sampler's init: hε·max φ″ < 1.
                let stiff = (0..p.exact_model.n_layers() - 1)
                    .map(|l| 1.0 / p.exact_model.sigma2(l))
                    .fold(0.0, f64::max);
                if cfg.h_eps() * stiff >= 1.0 {
                    continue;
                }
                let st = stationary(&p, &cfg, KernelKind::Plain)?;
                rows.push(InterneuronRow {
                    model: p.name.clone(),
                    tau_ratio,
                    substeps: k,
                    cov_rel_bias: frobenius_rel(&st.cov, &p.posterior.cov),
                    kl: st.kl_to(&p.posterior)?,
                    analytic_cov_rel_bias,
                    analytic_kl,
                });
            }
        }
        progress(&format!("defaults: interneuron bias on {} done", p.name));
    }
    Ok(rows)
}

fn factor_rows(
    quick: bool,
    seed: u64,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<FactorRow>, CliError> {
    let n_models = if quick { 8 } else { 30 };
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xfac7);
    let mut problems = Vec::with_capacity(n_models);
    for i in 0..n_models {
        let layers = rng.random_range(3..=4);
        let sizes: Vec<usize> = (0..layers).map(|_| rng.random_range(2..=8)).collect();
        problems.push(random_problem(
            &sizes,
            0.6,
            seed.wrapping_add(1000 + i as u64),
        )?);
    }
    let factors = [0.35, 0.5, 1.0, 1.5, 2.0];
    let estimators = [
        ("analytic", APrime::Analytic),
        (
            "interneurons",
            APrime::Interneurons(InterneuronConfig::default()),
        ),
    ];
    let mut rows = Vec::new();
    for (name, a_prime) in estimators {
        for &factor in &factors {
            let mut biases = Vec::with_capacity(n_models);
            let mut worst_kl: f64 = 0.0;
            for p in &problems {
                let mut cfg = NeuralConfig::new(0.1 / p.lambda_max, 1.0);
                cfg.a_prime = a_prime;
                let k = Adaptation::tuned_with_factor(
                    cfg,
                    CurvatureRange {
                        lambda_min: p.lambda_min,
                        lambda_max: p.lambda_max,
                    },
                    factor,
                )?;
                let kind = if k.g > 0.0 {
                    KernelKind::Adaptation {
                        tau_a: k.tau_a,
                        g: k.g,
                    }
                } else {
                    KernelKind::Plain
                };
                let st = stationary(p, &cfg, kind)?;
                biases.push(spectral(&(&st.cov - &p.posterior.cov))? / spectral(&p.posterior.cov)?);
                worst_kl = worst_kl.max(st.kl_to(&p.posterior)?);
            }
            biases.sort_by(f64::total_cmp);
            let row = FactorRow {
                a_prime: name,
                factor,
                models: n_models,
                worst_cov_rel_bias: biases[n_models - 1],
                median_cov_rel_bias: biases[n_models / 2],
                worst_kl,
            };
            progress(&format!(
                "defaults: {name:<12} factor {factor:<4} worst cov bias {:.4}, median {:.4}",
                row.worst_cov_rel_bias, row.median_cov_rel_bias
            ));
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Runs the experiment; `progress` receives one line per finished part.
pub fn run(opts: &RunOptions, progress: &mut dyn FnMut(&str)) -> Result<Defaults, CliError> {
    Ok(Defaults {
        interneurons: interneuron_rows(opts.quick, opts.seed, progress)?,
        factors: factor_rows(opts.quick, opts.seed, progress)?,
    })
}

/// Writes `interneuron-bias.csv` and `momentum-factor.csv` into `opts.out`.
pub fn write(opts: &RunOptions, r: &Defaults) -> Result<Vec<PathBuf>, CliError> {
    prepare_dir(&opts.out)?;
    let a = opts.out.join("interneuron-bias.csv");
    let rows: Vec<Vec<String>> = r
        .interneurons
        .iter()
        .map(|r| {
            vec![
                r.model.clone(),
                format!("{}", r.tau_ratio),
                r.substeps.to_string(),
                format!("{:.5}", r.cov_rel_bias),
                format!("{:.6}", r.kl),
                format!("{:.5}", r.analytic_cov_rel_bias),
                format!("{:.6}", r.analytic_kl),
            ]
        })
        .collect();
    write_csv(
        &a,
        &[
            "model",
            "tau_ratio",
            "substeps",
            "cov_rel_bias",
            "kl",
            "analytic_cov_rel_bias",
            "analytic_kl",
        ],
        &rows,
    )?;
    let b = opts.out.join("momentum-factor.csv");
    let rows: Vec<Vec<String>> = r
        .factors
        .iter()
        .map(|r| {
            vec![
                r.a_prime.to_string(),
                format!("{}", r.factor),
                r.models.to_string(),
                format!("{:.5}", r.worst_cov_rel_bias),
                format!("{:.5}", r.median_cov_rel_bias),
                format!("{:.6}", r.worst_kl),
            ]
        })
        .collect();
    write_csv(
        &b,
        &[
            "a_prime",
            "factor",
            "models",
            "worst_cov_rel_bias",
            "median_cov_rel_bias",
            "worst_kl",
        ],
        &rows,
    )?;
    Ok(vec![a, b])
}

/// Runs `hee reproduce defaults` and writes its files (see [`super::Entry`]).
pub fn reproduce(
    opts: &RunOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<PathBuf>, CliError> {
    write(opts, &run(opts, progress)?)
}
