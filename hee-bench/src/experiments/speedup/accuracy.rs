//! Comparisons at equal accuracy: plain Langevin's step raised until its
//! stationary bias equals adaptation's ([`equal_bias`]), and, for the
//! benchmarks, a κ-conditioned problem with both kernels and their exact
//! steps to the KL threshold ([`TimeToAccuracy`]).

use super::*;

/// The κ-conditioned problem with both kernels and their exact steps to the
/// threshold, for benchmarks of time to accuracy.
pub struct TimeToAccuracy {
    pub problem: LinearProblem,
    pub plain: Adaptation,
    pub adaptation: Adaptation,
    pub plain_steps: usize,
    pub adaptation_steps: usize,
}

impl TimeToAccuracy {
    /// Builds the problem of condition number `kappa` and finds, from the
    /// exact recursion, the steps each kernel needs.
    pub fn new(kappa: f64, seed: u64) -> Result<Self, CliError> {
        let problem = conditioned_problem(DIM, kappa, seed)?;
        let (plain, adaptation) = kernels(&problem)?;
        let start = far_start(&problem, START_SD);
        let mut steps = Vec::new();
        for k in [&plain, &adaptation] {
            let rec =
                MomentRecursion::new(&problem.exact_model, &k.config, kind_of(k), &problem.x0)?;
            let relax = 1.0 / (k.config.h() * problem.lambda_min);
            let (s, _) = steps_to_threshold(
                &rec,
                &start,
                &problem.posterior,
                1.max((relax / 2000.0) as usize),
                (50.0 * relax) as usize,
            )?;
            steps.push(s);
        }
        Ok(TimeToAccuracy {
            problem,
            plain,
            adaptation,
            plain_steps: steps[0],
            adaptation_steps: steps[1],
        })
    }

    /// (name, kernel, steps) for both dynamics.
    pub fn cases(&self) -> Vec<(&'static str, Adaptation, usize)> {
        vec![
            ("plain", self.plain, self.plain_steps),
            ("adaptation", self.adaptation, self.adaptation_steps),
        ]
    }

    /// Runs `chains` chains from the far start for `steps` steps.
    pub fn run(
        &self,
        kernel: &Adaptation,
        steps: usize,
        chains: usize,
        seed: u64,
    ) -> Result<(), CliError> {
        run_from_far_start(&self.problem, kernel, steps, chains, seed)?;
        Ok(())
    }
}

/// Stationary KL of plain Langevin at step `dt` (τ = 1), exact.
fn plain_stationary_kl(p: &LinearProblem, dt: f64) -> Result<f64, CliError> {
    let mut cfg = NeuralConfig::new(dt, 1.0);
    cfg.a_prime = APrime::Analytic;
    let rec = MomentRecursion::new(&p.exact_model, &cfg, KernelKind::Plain, &p.x0)?;
    Ok(rec.stationary_latents()?.kl_to(&p.posterior)?)
}

/// Plain Langevin at the Δt where its stationary KL equals `target`, found
/// by bisection on log Δt between adaptation's Δt and the stability limit
/// 2τ/λ_max (plain's bias grows monotonically with Δt: Euler–Maruyama
/// inflates the variance along curvature λ by 1/(1 − hλ/2)), to a relative
/// KL mismatch below 1e-4; then its exact steps to the threshold.
pub(super) fn equal_bias(
    p: &LinearProblem,
    kappa: f64,
    adapt: &Adaptation,
) -> Result<EqualBiasRow, CliError> {
    let rec_a = MomentRecursion::new(&p.exact_model, &adapt.config, kind_of(adapt), &p.x0)?;
    let target = rec_a.stationary_latents()?.kl_to(&p.posterior)?;
    let start = far_start(p, START_SD);
    let adapt_relax = 2.0 * adapt.tau_a / adapt.config.dt;
    let (a_steps, _) = steps_to_threshold(
        &rec_a,
        &start,
        &p.posterior,
        ((adapt_relax / 50.0) as usize).max(1),
        (50.0 * 1.0 / (adapt.config.h() * p.lambda_min)) as usize,
    )?;
    let (mut lo, mut hi) = (adapt.config.dt, 1.999 / p.lambda_max);
    if plain_stationary_kl(p, lo)? > target {
        return Err(CliError::Usage(format!(
            "speedup: plain at adaptation's dt already has more bias than adaptation at kappa {kappa}"
        )));
    }
    let mut dt = lo;
    for _ in 0..200 {
        dt = (lo * hi).sqrt();
        let kl = plain_stationary_kl(p, dt)?;
        if (kl / target - 1.0).abs() < 1e-4 {
            break;
        }
        if kl < target {
            lo = dt;
        } else {
            hi = dt;
        }
    }
    let mut cfg = NeuralConfig::new(dt, 1.0);
    cfg.a_prime = APrime::Analytic;
    let plain = Adaptation::new(cfg, cfg.tau, 0.0)?;
    let rec_p = MomentRecursion::new(&p.exact_model, &cfg, KernelKind::Plain, &p.x0)?;
    let plain_kl = rec_p.stationary_latents()?.kl_to(&p.posterior)?;
    let relax = 1.0 / (plain.config.h() * p.lambda_min);
    let (p_steps, _) = steps_to_threshold(
        &rec_p,
        &start,
        &p.posterior,
        ((relax / 50.0) as usize).max(1),
        (50.0 * relax) as usize,
    )?;
    Ok(EqualBiasRow {
        kappa,
        plain_dt_over_tau: plain.config.h(),
        adaptation_dt_over_tau: adapt.config.h(),
        plain_stationary_kl: plain_kl,
        adaptation_stationary_kl: target,
        plain_steps: p_steps,
        adaptation_steps: a_steps,
    })
}
