//! Timing: the step against its matrix products alone, calls per timing,
//! medians.

use super::*;

/// Seconds per call of `n` calls of `f`.
pub(super) fn time_calls(
    n: usize,
    mut f: impl FnMut() -> Result<(), CliError>,
) -> Result<f64, CliError> {
    let t0 = Instant::now();
    for _ in 0..n {
        f()?;
    }
    Ok(t0.elapsed().as_secs_f64() / n as f64)
}

/// Calls per timing so that one timing lasts about `secs`.
pub(super) fn calls_for(
    secs: f64,
    mut f: impl FnMut() -> Result<(), CliError>,
) -> Result<usize, CliError> {
    let t0 = Instant::now();
    let mut n = 0;
    while t0.elapsed().as_secs_f64() < secs / 4.0 || n < 2 {
        f()?;
        n += 1;
    }
    let per = t0.elapsed().as_secs_f64() / n as f64;
    Ok(((secs / per) as usize).max(2))
}

/// Median of a list of timings or ratios.
pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The matrix products of one step of `mode`, alone, on the whole batch:
/// per weight matrix η = W f(x), Wᵀ(x − A′), and for learning ΔW.
pub struct Products {
    mode: Mode,
    /// Per weight matrix: W, f(x) above, x − A′ below, and the outputs.
    mats: Vec<[Mat<f32>; 6]>,
}

impl Products {
    pub fn new(w: &Workload, mode: Mode) -> Self {
        let b = w.batch;
        let mats = w
            .layers
            .windows(2)
            .map(|p| {
                let (lo, hi) = (p[0], p[1]);
                [
                    Mat::<f32>::from_fn(lo, hi, |i, j| ((i + 2 * j) % 5) as f32 * 0.01),
                    Mat::<f32>::from_fn(hi, b, |i, j| ((i + j) % 3) as f32 * 0.1),
                    Mat::<f32>::from_fn(lo, b, |i, j| ((2 * i + j) % 7) as f32 * 0.1),
                    Mat::<f32>::zeros(lo, b),
                    Mat::<f32>::zeros(hi, b),
                    Mat::<f32>::zeros(lo, hi),
                ]
            })
            .collect();
        Products { mode, mats }
    }

    /// Runs them once with faer's parallelism `par`.
    pub fn run(&mut self, par: Par) {
        for [wm, fx, diff, eta, grad, dw] in self.mats.iter_mut() {
            matmul(
                eta.as_mut(),
                Accum::Replace,
                wm.as_ref(),
                fx.as_ref(),
                1.0,
                par,
            );
            matmul(
                grad.as_mut(),
                Accum::Replace,
                wm.as_ref().transpose(),
                diff.as_ref(),
                1.0,
                par,
            );
            if self.mode == Mode::Learning {
                matmul(
                    dw.as_mut(),
                    Accum::Replace,
                    diff.as_ref(),
                    fx.as_ref().transpose(),
                    1.0,
                    par,
                );
            }
        }
    }
}

/// One workload's step, ready to time: model, kernel, chains, scratch.
pub(super) struct StepBench {
    mode: Mode,
    model: HeeModel<f32>,
    kernel: Langevin,
    chains: Chains<f32>,
    scratch: LearningScratch<f32>,
}

impl StepBench {
    pub(super) fn new(w: &Workload, mode: Mode, seed: u64) -> Result<Self, CliError> {
        let model = model(w, seed)?;
        let kernel = kernel(w)?;
        let x = data(w);
        let chains = kernel.init(&model, Some(x.as_ref()), None, w.batch, seed)?;
        let scratch = LearningScratch::new(&model, w.batch);
        Ok(StepBench {
            mode,
            model,
            kernel,
            chains,
            scratch,
        })
    }

    pub(super) fn run(&mut self) -> Result<(), CliError> {
        // A small rate keeps the weights where they started over the timing.
        let rates = LocalLearning {
            lr_weights: 1e-6,
            lr_biases: 1e-6,
            lr_energy: 0.0,
            ..LocalLearning::default()
        };
        match self.mode {
            Mode::Inference => {
                self.kernel.step(&self.model, &mut self.chains)?;
            }
            Mode::Learning => {
                learning_step(
                    &mut self.model,
                    &self.kernel,
                    &mut self.chains,
                    &mut self.scratch,
                    &rates,
                )?;
            }
        }
        Ok(())
    }
}

/// One thread count's side of a measurement: its pool, the step and the
/// products alone, and how many calls make one timing of each.
pub(super) struct Side {
    pub(super) threads: usize,
    pool: rayon::ThreadPool,
    par: Par,
    step: StepBench,
    products: Products,
    calls: (usize, usize),
}

impl Side {
    pub(super) fn new(
        w: &Workload,
        mode: Mode,
        threads: usize,
        seed: u64,
        secs: f64,
    ) -> Result<Self, CliError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| CliError::Usage(format!("throughput: thread pool: {e}")))?;
        let par = if threads == 1 {
            Par::Seq
        } else {
            Par::rayon(threads)
        };
        let mut step = pool.install(|| StepBench::new(w, mode, seed))?;
        let mut products = Products::new(w, mode);
        let calls = pool.install(|| -> Result<(usize, usize), CliError> {
            Ok((
                calls_for(secs, || step.run())?,
                calls_for(secs, || {
                    products.run(par);
                    Ok(())
                })?,
            ))
        })?;
        Ok(Side {
            threads,
            pool,
            par,
            step,
            products,
            calls,
        })
    }

    /// One timing of the step, then one of the products alone, in this
    /// side's pool: (step, products) in seconds per call.
    pub(super) fn round(&mut self) -> Result<(f64, f64), CliError> {
        let Side {
            pool,
            par,
            step,
            products,
            calls,
            ..
        } = self;
        pool.install(|| -> Result<(f64, f64), CliError> {
            Ok((
                time_calls(calls.0, || step.run())?,
                time_calls(calls.1, || {
                    products.run(*par);
                    Ok(())
                })?,
            ))
        })
    }
}
