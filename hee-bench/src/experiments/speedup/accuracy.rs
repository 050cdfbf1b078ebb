//! Time to accuracy, for the benchmarks: a κ-conditioned problem with both
//! kernels and their exact steps to the KL threshold.

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
