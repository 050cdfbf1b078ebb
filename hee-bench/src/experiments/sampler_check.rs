//! `hee reproduce sampler-check`: does plain Langevin, with analytic and with
//! interneuron A′, sample the exact posterior of random linear-gaussian
//! models?
//!
//! For each model an ensemble of independent chains starts at x = 0 with the
//! observation clamped. The ensemble's KL to the exact posterior is recorded
//! along the run (next to the noise-free curve of the exact moment
//! recursion); after burn-in, the chains' states are pooled over time to
//! estimate the posterior mean and covariance, which are compared with the
//! exact ones.

use std::path::PathBuf;
use std::time::Instant;

use hee_core::reference::moments::{KernelKind, MomentRecursion};
use hee_core::{APrime, Dynamics, InterneuronConfig, Langevin, NeuralConfig};
use hee_eval::diagnostics::{moment_errors, MomentAccumulator};
use hee_eval::plot::{Figure, LineKind, Panel, Series};
use hee_eval::report::{prepare_dir, write_csv};

use super::linear::{data_batch, random_problem, LinearProblem};
use super::RunOptions;
use crate::CliError;

/// Step size as a fraction of 1/λ_max of the posterior precision.
pub const H_LMAX: f64 = 0.05;

/// One row of `sampler-check.csv`.
#[derive(Debug, Clone)]
pub struct CheckRow {
    pub model: String,
    pub a_prime: String,
    pub mean_rel_err: f64,
    pub cov_rel_err: f64,
    pub kl: f64,
    pub steps: usize,
    pub seconds: f64,
}

/// KL against step for one model and estimator.
#[derive(Debug, Clone)]
pub struct KlCurve {
    pub model: String,
    pub a_prime: String,
    /// KL of the ensemble (one snapshot of all chains) to the posterior.
    pub sampled: Vec<(f64, f64)>,
    /// KL of the exact moment recursion to the posterior.
    pub exact: Vec<(f64, f64)>,
    /// Number of latent units.
    pub dim: usize,
}

/// Everything the experiment measured.
#[derive(Debug, Clone)]
pub struct SamplerCheck {
    pub rows: Vec<CheckRow>,
    pub curves: Vec<KlCurve>,
    pub chains: usize,
}

struct Plan {
    shapes: Vec<Vec<usize>>,
    chains: usize,
    burn_in_relax: f64,
    sample_relax: f64,
}

fn plan(quick: bool) -> Plan {
    if quick {
        Plan {
            shapes: vec![vec![8, 6, 4], vec![16, 8, 4], vec![12, 8, 6, 4]],
            chains: 1000,
            burn_in_relax: 10.0,
            sample_relax: 10.0,
        }
    } else {
        Plan {
            shapes: vec![
                vec![8, 6, 4],
                vec![16, 8, 4],
                vec![12, 8, 6, 4],
                vec![32, 16, 8],
                vec![24, 12, 8, 4],
            ],
            chains: 4000,
            burn_in_relax: 12.0,
            sample_relax: 30.0,
        }
    }
}

/// Log-spaced integer steps in [1, total], always including both ends.
fn checkpoints(total: usize, n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n)
        .map(|i| (total as f64).powf(i as f64 / (n - 1) as f64).round() as usize)
        .collect();
    v.dedup();
    v
}

fn ensemble_kl(
    model: &hee_core::HeeModel<f32>,
    state: &hee_core::SamplerState<f32>,
    p: &LinearProblem,
    buf: &mut [f64],
) -> Result<f64, CliError> {
    let mut acc = MomentAccumulator::new(buf.len());
    let lat = state.latents(model)?;
    for c in 0..state.batch() {
        for (i, v) in buf.iter_mut().enumerate() {
            *v = lat[(c, i)] as f64;
        }
        acc.push(buf);
    }
    let (m, c) = acc.moments();
    Ok(moment_errors(&m, &c, &p.posterior)
        .map(|e| e.kl)
        .unwrap_or(f64::INFINITY))
}

fn run_one(
    p: &LinearProblem,
    a_prime: APrime,
    chains: usize,
    plan: &Plan,
    seed: u64,
) -> Result<(CheckRow, KlCurve), CliError> {
    let mut cfg = NeuralConfig::new(H_LMAX / p.lambda_max, 1.0);
    cfg.a_prime = a_prime;
    let relax = 1.0 / (cfg.h() * p.lambda_min);
    let burn_in = (plan.burn_in_relax * relax).ceil() as usize;
    let sample = (plan.sample_relax * relax).ceil() as usize;
    let total = burn_in + sample;
    let kernel = Langevin::new(cfg)?;
    let marks = checkpoints(total, 60);

    // Noise-free curve from the exact moment recursion of the same kernel.
    let rec = MomentRecursion::new(&p.exact_model, &cfg, KernelKind::Plain, &p.x0)?;
    let d = p.exact_model.latent_dim();
    let (mut mean, mut cov) = rec.init_moments(&vec![0.0; d]);
    let mut exact = Vec::with_capacity(marks.len());
    let mut at = 0;
    for &t in &marks {
        (mean, cov) = rec.step.power((t - at) as u64).propagate(&mean, &cov);
        at = t;
        let (m, c) = rec.latent_part(&mean, &cov);
        let kl = moment_errors(&m, &c, &p.posterior)
            .map(|e| e.kl)
            .unwrap_or(f64::INFINITY);
        exact.push((t as f64, kl));
    }

    let start = Instant::now();
    let data = data_batch(&p.x0, chains);
    let mut run = kernel.init(&p.model, Some(data.as_ref()), None, chains, seed)?;
    let mut pooled = MomentAccumulator::new(d);
    let mut buf = vec![0.0; d];
    let mut sampled = Vec::with_capacity(marks.len());
    let mut next_mark = 0;
    // Pool every `thin`-th post-burn-in state (cost control; correlated
    // draws add nothing much).
    let thin = ((relax / 4.0).floor() as usize).max(1);
    for t in 1..=total {
        kernel.step(&p.model, &mut run)?;
        if next_mark < marks.len() && marks[next_mark] == t {
            sampled.push((t as f64, ensemble_kl(&p.model, &run.state, p, &mut buf)?));
            next_mark += 1;
        }
        if t > burn_in && (t - burn_in).is_multiple_of(thin) {
            let lat = run.state.latents(&p.model)?;
            for c in 0..chains {
                for (i, v) in buf.iter_mut().enumerate() {
                    *v = lat[(c, i)] as f64;
                }
                pooled.push(&buf);
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let (m, c) = pooled.moments();
    let err = moment_errors(&m, &c, &p.posterior)?;
    let label = match a_prime {
        APrime::Analytic => "analytic",
        _ => "interneurons",
    };
    Ok((
        CheckRow {
            model: p.name.clone(),
            a_prime: label.into(),
            mean_rel_err: err.mean_rel_err,
            cov_rel_err: err.cov_rel_err,
            kl: err.kl,
            steps: total,
            seconds,
        },
        KlCurve {
            model: p.name.clone(),
            a_prime: label.into(),
            sampled,
            exact,
            dim: d,
        },
    ))
}

/// Runs the experiment; `progress` receives one line per finished run.
pub fn run(opts: &RunOptions, progress: &mut dyn FnMut(&str)) -> Result<SamplerCheck, CliError> {
    let plan = plan(opts.quick);
    let mut rows = Vec::new();
    let mut curves = Vec::new();
    for (i, shape) in plan.shapes.iter().enumerate() {
        let p = random_problem(shape, 0.6, opts.seed.wrapping_add(i as u64))?;
        for (j, a) in [
            APrime::Analytic,
            APrime::Interneurons(InterneuronConfig::default()),
        ]
        .into_iter()
        .enumerate()
        {
            let seed = opts.seed.wrapping_mul(31).wrapping_add((2 * i + j) as u64);
            let (row, curve) = run_one(&p, a, plan.chains, &plan, seed)?;
            progress(&format!(
                "sampler-check: {} {:<12} mean_rel_err {:.4} cov_rel_err {:.4} kl {:.5} ({} steps, {:.1} s)",
                row.model, row.a_prime, row.mean_rel_err, row.cov_rel_err, row.kl, row.steps, row.seconds
            ));
            rows.push(row);
            curves.push(curve);
        }
    }
    Ok(SamplerCheck {
        rows,
        curves,
        chains: plan.chains,
    })
}

/// Writes `sampler-check.csv` and `kl.png` into `opts.out`.
pub fn write(opts: &RunOptions, r: &SamplerCheck) -> Result<Vec<PathBuf>, CliError> {
    prepare_dir(&opts.out)?;
    let csv_path = opts.out.join("sampler-check.csv");
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|r| {
            vec![
                r.model.clone(),
                r.a_prime.clone(),
                format!("{:.6}", r.mean_rel_err),
                format!("{:.6}", r.cov_rel_err),
                format!("{:.6}", r.kl),
                r.steps.to_string(),
                format!("{:.3}", r.seconds),
            ]
        })
        .collect();
    write_csv(
        &csv_path,
        &[
            "model",
            "a_prime",
            "mean_rel_err",
            "cov_rel_err",
            "kl",
            "steps",
            "seconds",
        ],
        &rows,
    )?;
    let mut panels: Vec<Panel> = Vec::new();
    for c in &r.curves {
        if panels.last().map(|p| p.title != c.model).unwrap_or(true) {
            // E[KL] of a d-dimensional gaussian fitted to N exact draws is
            // ≈ d(d+3)/(4N): the floor the ensemble curves sit on.
            let d = c.dim as f64;
            let floor = d * (d + 3.0) / (4.0 * r.chains as f64);
            let last = c.exact.last().map(|p| p.0).unwrap_or(1.0);
            panels.push(Panel {
                title: c.model.clone(),
                series: vec![Series {
                    label: "finite-ensemble floor d(d+3)/4N".into(),
                    points: vec![(1.0, floor), (last, floor)],
                    color: 7,
                    line: LineKind::Dotted,
                }],
            });
        }
        let color = if c.a_prime == "analytic" { 0 } else { 1 };
        let panel = panels.last_mut().expect("pushed above");
        panel.series.push(Series {
            label: format!("{} (ensemble)", c.a_prime),
            points: c.sampled.clone(),
            color,
            line: LineKind::Solid,
        });
        panel.series.push(Series {
            label: format!("{} (exact recursion)", c.a_prime),
            points: c.exact.clone(),
            color,
            line: LineKind::Dashed,
        });
    }
    let png_path = opts.out.join("kl.png");
    Figure {
        title: format!(
            "Plain Langevin: KL(ensemble of {} chains || exact posterior) against step",
            r.chains
        ),
        x_label: "step".into(),
        y_label: "KL (nats)".into(),
        panels,
        columns: 3,
        axes: hee_eval::plot::Axes::LogLog,
    }
    .write_png(&png_path, 560, 420)?;
    Ok(vec![csv_path, png_path])
}

/// Runs `hee reproduce sampler-check` and writes its files (see [`super::Entry`]).
pub fn reproduce(
    opts: &RunOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<PathBuf>, CliError> {
    write(opts, &run(opts, progress)?)
}
