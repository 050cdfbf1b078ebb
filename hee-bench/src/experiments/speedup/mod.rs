//! `hee reproduce speedup`: how much neural adaptation (momentum) speeds up
//! posterior sampling, measured on linear-gaussian posteriors of dimension 32
//! with controlled condition number κ.
//!
//! For each κ and each dynamics (plain Langevin, adaptation with the tuned
//! τ_a and g) at the same step Δt = 0.1 τ/λ_max:
//! * `steps_to_threshold`: first step at which KL(ensemble law ‖ posterior)
//!   ≤ 0.05, from the exact moment recursion (no sampling noise), starting 10
//!   posterior standard deviations away along every principal axis; both
//!   dynamics' stationary KL bias (exact, from the recursion) must be below
//!   half the threshold, or the experiment stops with an error;
//! * `wall_ms_to_threshold`: wall time of an ensemble of chains run for that
//!   many steps; at its end the ensemble is compared with the recursion
//!   (confirmation, written to `speedup-details.csv`);
//! * `iact`: integrated autocorrelation time, in steps, of the projection of
//!   x on the slowest posterior direction, estimated (Stan's ESS) from chains
//!   started at stationarity; `ess_per_s` divides their effective sample
//!   size by their wall time. The exact IACT from the recursion is in the
//!   details file.
//!
//! At the same Δt plain Langevin's stationary bias is about half of
//! adaptation's, so the table above compares plain at *better* accuracy.
//! `speedup-equal-bias.csv` gives the comparison at equal accuracy: plain's
//! Δt is raised (bisection on the exact recursion) until its stationary KL
//! equals adaptation's, and both step counts to the threshold are taken at
//! those steps.

use std::path::PathBuf;
use std::time::Instant;

use faer::Mat;
use hee_core::reference::linear_gaussian::Gaussian;
use hee_core::reference::moments::{KernelKind, MomentRecursion};
use hee_core::{APrime, Adaptation, CurvatureRange, Dynamics, NeuralConfig};
use hee_eval::diagnostics::{ess, moment_errors, MomentAccumulator};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

mod accuracy;
mod report;

use accuracy::equal_bias;
pub use accuracy::TimeToAccuracy;
pub use report::write;

use super::linear::{conditioned_problem, data_batch, far_start, LinearProblem};
use super::RunOptions;
use crate::CliError;

/// KL threshold (nats) for "has reached the posterior".
pub const KL_THRESHOLD: f64 = 0.05;
/// Step size as a fraction of 1/λ_max.
pub const H_LMAX: f64 = 0.1;
/// Distance of the start, in posterior standard deviations per axis.
pub const START_SD: f64 = 10.0;
/// Dimension of the posteriors.
pub const DIM: usize = 32;

/// One row of `speedup.csv`, with the details behind it.
#[derive(Debug, Clone)]
pub struct SpeedupRow {
    pub kappa: f64,
    pub dynamics: &'static str,
    pub steps_to_threshold: usize,
    pub wall_ms_to_threshold: f64,
    pub iact: f64,
    pub ess_per_s: f64,
    // Details.
    pub tau_a: f64,
    pub g: f64,
    pub stationary_kl: f64,
    pub chains: usize,
    pub ensemble_kl_to_posterior: f64,
    pub ensemble_kl_to_recursion: f64,
    pub ensemble_floor: f64,
    pub iact_exact: f64,
    pub curve: Vec<(f64, f64)>,
}

/// One row of `speedup-equal-bias.csv`: plain Langevin at the Δt where its
/// stationary KL equals adaptation's, against adaptation at its own Δt.
#[derive(Debug, Clone)]
pub struct EqualBiasRow {
    pub kappa: f64,
    pub plain_dt_over_tau: f64,
    pub adaptation_dt_over_tau: f64,
    pub plain_stationary_kl: f64,
    pub adaptation_stationary_kl: f64,
    pub plain_steps: usize,
    pub adaptation_steps: usize,
}

impl EqualBiasRow {
    /// Plain steps over adaptation steps, at equal stationary bias.
    pub fn ratio(&self) -> f64 {
        self.plain_steps as f64 / self.adaptation_steps as f64
    }
}

/// Everything the experiment measured.
#[derive(Debug, Clone)]
pub struct Speedup {
    pub rows: Vec<SpeedupRow>,
    pub equal_bias: Vec<EqualBiasRow>,
}

struct Plan {
    kappas: Vec<f64>,
    chains: usize,
    iact_chains: usize,
    iact_multiple: f64,
}

fn plan(quick: bool) -> Plan {
    if quick {
        Plan {
            kappas: vec![10.0, 100.0, 1000.0],
            chains: 128,
            iact_chains: 8,
            iact_multiple: 25.0,
        }
    } else {
        Plan {
            kappas: vec![10.0, 100.0, 1000.0],
            chains: 1000,
            iact_chains: 32,
            iact_multiple: 100.0,
        }
    }
}

/// The two dynamics at the same step.
fn kernels(p: &LinearProblem) -> Result<(Adaptation, Adaptation), CliError> {
    let mut cfg = NeuralConfig::new(H_LMAX / p.lambda_max, 1.0);
    cfg.a_prime = APrime::Analytic;
    // Plain Langevin is the adaptation kernel with g = 0 (bit-identical to
    // `Langevin`, tested), which keeps one code path for both.
    let plain = Adaptation::new(cfg, cfg.tau, 0.0)?;
    let adapt = Adaptation::tuned(
        cfg,
        CurvatureRange {
            lambda_min: p.lambda_min,
            lambda_max: p.lambda_max,
        },
    )?;
    Ok((plain, adapt))
}

fn kind_of(k: &Adaptation) -> KernelKind {
    if k.g == 0.0 {
        KernelKind::Plain
    } else {
        KernelKind::Adaptation {
            tau_a: k.tau_a,
            g: k.g,
        }
    }
}

fn kl_of(rec: &MomentRecursion, mean: &[f64], cov: &Mat<f64>, post: &Gaussian) -> f64 {
    let (m, c) = rec.latent_part(mean, cov);
    moment_errors(&m, &c, post)
        .map(|e| e.kl)
        .unwrap_or(f64::INFINITY)
}

/// First step with KL ≤ threshold, and the KL curve.
///
/// The recursion is advanced `stride` steps at a time (one composed map);
/// at the first checkpoint below the threshold the last stride is replayed
/// step by step to find the exact first step. `stride` is a fiftieth of the
/// sampler's slowest relaxation time, far shorter than any excursion of KL.
fn steps_to_threshold(
    rec: &MomentRecursion,
    start: &[f64],
    post: &Gaussian,
    stride: usize,
    max_steps: usize,
) -> Result<(usize, Vec<(f64, f64)>), CliError> {
    let (m0, c0) = rec.init_moments(start);
    let (mut mean, mut cov) = (m0, c0);
    let jump = rec.step.power(stride as u64);
    let mut curve = Vec::new();
    // The first few steps one by one, so the log-scale plot starts at 1.
    let mut t = 0;
    while t < stride.min(max_steps) {
        let (pm, pc) = (mean.clone(), cov.clone());
        (mean, cov) = rec.step.propagate(&pm, &pc);
        t += 1;
        let kl = kl_of(rec, &mean, &cov, post);
        curve.push((t as f64, kl));
        if kl <= KL_THRESHOLD {
            return Ok((t, curve));
        }
    }
    while t < max_steps {
        let (pm, pc) = (mean.clone(), cov.clone());
        (mean, cov) = jump.propagate(&pm, &pc);
        let kl = kl_of(rec, &mean, &cov, post);
        if kl <= KL_THRESHOLD {
            // Replay the last stride one step at a time.
            let (mut m, mut c) = (pm, pc);
            for u in t + 1..=t + stride {
                (m, c) = rec.step.propagate(&m, &c);
                let k = kl_of(rec, &m, &c, post);
                if k <= KL_THRESHOLD {
                    curve.push((u as f64, k));
                    // Continue the curve past the crossing for the plot.
                    for _ in 0..(t / stride / 2).max(5) {
                        (m, c) = jump.propagate(&m, &c);
                        curve.push((
                            curve.last().map_or(0.0, |p| p.0) + stride as f64,
                            kl_of(rec, &m, &c, post),
                        ));
                    }
                    return Ok((u, curve));
                }
            }
        }
        t += stride;
        curve.push((t as f64, kl));
    }
    Err(CliError::Usage(format!(
        "speedup: KL did not reach {KL_THRESHOLD} within {max_steps} steps"
    )))
}

/// Exact IACT of vᵀx at stationarity: 1 + 2 Σ_{k≥1} ρ(k) with
/// ρ(k) = vᵀ(M^k P)_xx v / vᵀP_xx v, summed in closed form:
/// Σ_{k≥1} M^k P = ((I − M)⁻¹ − I) P.
fn exact_iact(rec: &MomentRecursion, v: &[f64]) -> Result<f64, CliError> {
    use faer::linalg::solvers::Solve;
    let (_, p) = rec.stationary()?;
    let dim = p.nrows();
    let i_m = Mat::<f64>::identity(dim, dim) - &rec.step.a;
    let sum = i_m.partial_piv_lu().solve(&p) - &p;
    let quad = |a: &Mat<f64>| -> f64 {
        let mut s = 0.0;
        for i in 0..v.len() {
            for j in 0..v.len() {
                s += v[i] * a[(i, j)] * v[j];
            }
        }
        s
    };
    Ok(1.0 + 2.0 * quad(&sum) / quad(&p))
}

fn slowest_direction(post: &Gaussian) -> Vec<f64> {
    let d = post.dim();
    match post.cov.self_adjoint_eigen(faer::Side::Lower) {
        // Ascending eigenvalues of Σ: the last is the slowest mode.
        Ok(e) => (0..d).map(|i| e.U()[(i, d - 1)]).collect(),
        Err(_) => vec![1.0 / (d as f64).sqrt(); d],
    }
}

fn run_one(
    p: &LinearProblem,
    kappa: f64,
    kernel: &Adaptation,
    name: &'static str,
    plan: &Plan,
    seed: u64,
) -> Result<SpeedupRow, CliError> {
    let rec = MomentRecursion::new(&p.exact_model, &kernel.config, kind_of(kernel), &p.x0)?;
    let stationary = rec.stationary_latents()?;
    let stationary_kl = stationary.kl_to(&p.posterior)?;
    if stationary_kl > KL_THRESHOLD / 2.0 {
        return Err(CliError::Usage(format!(
            "speedup: {name} at kappa {kappa} has stationary KL {stationary_kl:.4} above half the threshold; lower the step"
        )));
    }
    let start = far_start(p, START_SD);
    let plain_relax = 1.0 / (kernel.config.h() * p.lambda_min);
    let adapt_relax = if kernel.g > 0.0 {
        2.0 * kernel.tau_a / kernel.config.dt
    } else {
        plain_relax
    };
    let stride = ((plain_relax.min(adapt_relax) / 50.0) as usize).max(1);
    let max_steps = (50.0 * plain_relax) as usize;
    let (steps, curve) = steps_to_threshold(&rec, &start, &p.posterior, stride, max_steps)?;

    // Ensemble run to the threshold, timed.
    let d = p.exact_model.latent_dim();
    let chains = plan.chains;
    let t0 = Instant::now();
    let state = run_from_far_start(p, kernel, steps, chains, seed)?;
    let wall_ms = t0.elapsed().as_secs_f64() * 1e3;
    let mut acc = MomentAccumulator::new(d);
    let mut buf = vec![0.0; d];
    let lat = state.latents(&p.model)?;
    for c in 0..chains {
        for (i, v) in buf.iter_mut().enumerate() {
            *v = lat[(c, i)] as f64;
        }
        acc.push(&buf);
    }
    let (em, ec) = acc.moments();
    let ensemble_kl_to_posterior = moment_errors(&em, &ec, &p.posterior)?.kl;
    let (mut rm, mut rc) = rec.init_moments(&start);
    (rm, rc) = rec.step.power(steps as u64).propagate(&rm, &rc);
    let (rm, rc) = rec.latent_part(&rm, &rc);
    let ensemble_kl_to_recursion = moment_errors(&em, &ec, &Gaussian::new(rm, rc)?)?.kl;
    let ensemble_floor = (d * (d + 3)) as f64 / (4.0 * chains as f64);

    // Stationary chains: exact posterior draws for x, N(0, μ) for a, then a
    // short burn-in for the discretisation's own stationary law.
    let v = slowest_direction(&p.posterior);
    let iact_exact = exact_iact(&rec, &v)?;
    let m = plan.iact_chains;
    let len = (plan.iact_multiple * iact_exact).ceil() as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xa5a5);
    let l = p.posterior.chol();
    let n0 = p.model.size(0);
    let mut x_st = Mat::<f32>::zeros(m, d);
    for r in 0..m {
        let z: Vec<f64> = (0..d)
            .map(|_| <f64 as hee_core::Real>::std_normal(&mut rng))
            .collect();
        for i in 0..d {
            let xi = p.posterior.mean[i] + (0..=i).map(|k| l[(i, k)] * z[k]).sum::<f64>();
            x_st[(r, i)] = xi as f32;
        }
    }
    let data_m = data_batch(&p.x0, m);
    let mut run = kernel.init(
        &p.model,
        Some(data_m.as_ref()),
        Some(x_st.as_ref()),
        m,
        seed.wrapping_add(1),
    )?;
    let sd_a = kernel.mu().sqrt();
    let mut aux = run.state.aux_mut();
    for r in 0..m {
        for i in 0..d {
            aux[(r, n0 + i)] = (sd_a * <f64 as hee_core::Real>::std_normal(&mut rng)) as f32;
        }
    }
    let burn = (2.0 * iact_exact).ceil() as usize;
    for _ in 0..burn {
        kernel.step(&p.model, &mut run)?;
    }
    let mut series = vec![Vec::with_capacity(len); m];
    let t1 = Instant::now();
    for _ in 0..len {
        kernel.step(&p.model, &mut run)?;
        let lat = run.state.latents(&p.model)?;
        for (c, s) in series.iter_mut().enumerate() {
            let y: f64 = (0..d)
                .map(|i| v[i] * (lat[(c, i)] as f64 - p.posterior.mean[i]))
                .sum();
            s.push(y);
        }
    }
    let secs = t1.elapsed().as_secs_f64();
    let e = ess(&series).unwrap_or(f64::NAN);
    let iact = (m * len) as f64 / e;
    Ok(SpeedupRow {
        kappa,
        dynamics: name,
        steps_to_threshold: steps,
        wall_ms_to_threshold: wall_ms,
        iact,
        ess_per_s: e / secs,
        tau_a: kernel.tau_a,
        g: kernel.g,
        stationary_kl,
        chains,
        ensemble_kl_to_posterior,
        ensemble_kl_to_recursion,
        ensemble_floor,
        iact_exact,
        curve,
    })
}

/// Runs `chains` chains of `kernel` for `steps` steps from the far start
/// (latents START_SD posterior standard deviations out on every axis).
fn run_from_far_start(
    p: &LinearProblem,
    kernel: &Adaptation,
    steps: usize,
    chains: usize,
    seed: u64,
) -> Result<hee_core::SamplerState<f32>, CliError> {
    let start = far_start(p, START_SD);
    let latents = Mat::<f32>::from_fn(chains, start.len(), |_, c| start[c] as f32);
    let data = data_batch(&p.x0, chains);
    let mut run = kernel.init(
        &p.model,
        Some(data.as_ref()),
        Some(latents.as_ref()),
        chains,
        seed,
    )?;
    for _ in 0..steps {
        kernel.step(&p.model, &mut run)?;
    }
    Ok(run.state)
}

/// Runs the experiment; `progress` receives one line per finished run.
pub fn run(opts: &RunOptions, progress: &mut dyn FnMut(&str)) -> Result<Speedup, CliError> {
    let plan = plan(opts.quick);
    let mut rows = Vec::new();
    let mut equal = Vec::new();
    for (i, &kappa) in plan.kappas.iter().enumerate() {
        let p = conditioned_problem(DIM, kappa, opts.seed.wrapping_add(i as u64))?;
        let (plain, adapt) = kernels(&p)?;
        let e = equal_bias(&p, kappa, &adapt)?;
        progress(&format!(
            "speedup: kappa {kappa:>6} equal bias (KL {:.5}): plain dt/tau {:.4e} steps {:>6}, adaptation dt/tau {:.4e} steps {:>6}, ratio {:.1}",
            e.adaptation_stationary_kl, e.plain_dt_over_tau, e.plain_steps, e.adaptation_dt_over_tau, e.adaptation_steps, e.ratio()
        ));
        equal.push(e);
        for (j, (k, name)) in [(plain, "plain"), (adapt, "adaptation")]
            .into_iter()
            .enumerate()
        {
            let seed = opts.seed.wrapping_mul(17).wrapping_add((2 * i + j) as u64);
            let row = run_one(&p, kappa, &k, name, &plan, seed)?;
            progress(&format!(
                "speedup: kappa {kappa:>6} {name:<10} steps {:>6} wall {:>9.1} ms iact {:>9.1} (exact {:>9.1}) ess/s {:>9.1}",
                row.steps_to_threshold, row.wall_ms_to_threshold, row.iact, row.iact_exact, row.ess_per_s
            ));
            rows.push(row);
        }
    }
    Ok(Speedup {
        rows,
        equal_bias: equal,
    })
}

/// Runs `hee reproduce speedup` and writes its files (see [`super::Entry`]).
pub fn reproduce(
    opts: &RunOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<PathBuf>, CliError> {
    write(opts, &run(opts, progress)?)
}
