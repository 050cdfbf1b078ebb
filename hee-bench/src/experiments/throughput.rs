//! `hee reproduce throughput`: how close one step of inference (and of
//! inference with learning) comes to the machine's limit, measured in one
//! run against the same matrix products done alone by faer.
//!
//! Workloads (f32, tanh, gaussian layers, interneuron A′ with K = 4 sub-steps
//! on every layer that has a population, plain Langevin, Δt = 0.01 τ):
//! 784-256-64 with batch 128, and 256-256-128 with batch 256. Modes:
//! `inference` (one `Dynamics::step`) and `learning` (one
//! [`hee_core::learning::learning_step`]: the step with the local rule's
//! update between the neurons' move and η). Each runs in a rayon pool of 1
//! and of 2 threads, with chunks of half the batch (one per core).
//!
//! The floor is the step's matrix products alone, through faer on the whole
//! batch with the same thread count: per weight matrix W_l (n_l × n_{l+1}),
//! η_l = W_l f(x_{l+1}) and the gradient's W_lᵀ(x_l − A′_l), and for learning
//! also ΔW_l = (x_l − A′_l) f(x_{l+1})ᵀ — 2·n_l·n_{l+1}·B flops each.
//! `gflops` is those flops over the step's time, `efficiency` the floor's time
//! over the step's: the fraction of the step spent on the work no
//! implementation can skip. Element-wise work (interneuron sub-steps, normal
//! draws) is not counted as flops: it is what the efficiency charges.
//!
//! Also written: `scaling.csv` (how much faster 2 threads run each step
//! than 1), `normals.csv` (normal draws per second, bulk fill against a loop
//! of single draws, and ChaCha8 words per second, the step's stream against
//! rand_chacha's; one thread) and `machine.txt` (the CPU, its vector
//! extensions and the thread counts), because every figure here is a
//! property of the machine it ran on.

use std::path::PathBuf;
use std::time::Instant;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use hee_core::learning::{learning_step, LearningScratch, LocalLearning};
use hee_core::stream::SampleStream;
use hee_core::{
    APrime, BaseEnergy, Chains, Dynamics, HeeModel, InterneuronConfig, Langevin, LayerSpec,
    NeuralConfig, Nonlinearity,
};
use hee_eval::report::{prepare_dir, write_atomic, write_csv};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::RunOptions;
use crate::CliError;

/// A workload: layer sizes from the observation up, batch, sub-steps K, and
/// the samples per parallel work unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub layers: Vec<usize>,
    pub batch: usize,
    pub substeps: usize,
    /// Half the batch: one work unit per core of a 2-core machine, as the
    /// training runs use (a larger unit makes the step's products wider,
    /// which faer runs nearer its peak; the bits depend on it, never on
    /// the thread count).
    pub chunk: usize,
}

impl Workload {
    /// "784-256-64".
    pub fn name(&self) -> String {
        self.layers
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("-")
    }
}

/// The two workloads of issue 9.
pub fn workloads() -> Vec<Workload> {
    vec![
        Workload {
            layers: vec![784, 256, 64],
            batch: 128,
            substeps: 4,
            chunk: 64,
        },
        Workload {
            layers: vec![256, 256, 128],
            batch: 256,
            substeps: 4,
            chunk: 128,
        },
    ]
}

/// Inference alone, or inference with one local-rule update per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Inference,
    Learning,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Inference => "inference",
            Mode::Learning => "learning",
        }
    }
}

/// One row of `throughput.csv`.
#[derive(Debug, Clone)]
pub struct Row {
    pub shape: String,
    pub batch: usize,
    pub threads: usize,
    pub mode: Mode,
    /// Median time of one step (ms).
    pub step_ms: f64,
    /// Matrix-product flops of one step over `step_ms`.
    pub gflops: f64,
    /// Median time of the same products alone through faer (ms).
    pub gemm_ms: f64,
    pub gemm_gflops: f64,
    /// gemm_ms / step_ms.
    pub efficiency: f64,
}

/// Draw rates of the standard normal generator.
#[derive(Debug, Clone)]
pub struct NormalRate {
    pub method: &'static str,
    /// Normals, or 32-bit words, per second.
    pub per_second: f64,
}

/// Everything the experiment measured.
#[derive(Debug, Clone)]
pub struct Throughput {
    pub rows: Vec<Row>,
    /// 2-thread speed-up of each workload and mode.
    pub scaling: Vec<Scaling>,
    pub normals: Vec<NormalRate>,
    pub machine: String,
}

/// How much faster 2 threads run a step than 1 (ratio of the median times).
#[derive(Debug, Clone)]
pub struct Scaling {
    pub shape: String,
    pub batch: usize,
    pub mode: Mode,
    pub speedup: f64,
}

/// The benchmark model: gaussian layers (σ = 1), tanh, weights of scale 0.5
/// (seeded).
pub fn model(w: &Workload, seed: u64) -> Result<HeeModel<f32>, CliError> {
    let specs: Vec<LayerSpec> = w
        .layers
        .iter()
        .map(|&size| LayerSpec {
            size,
            energy: BaseEnergy::gaussian(1.0),
        })
        .collect();
    let mut m = HeeModel::new(&specs, Nonlinearity::Tanh)?;
    m.randomize_weights(&mut ChaCha8Rng::seed_from_u64(seed), 0.5);
    Ok(m)
}

/// The benchmark kernel: plain Langevin, Δt = 0.01 τ, interneurons with K
/// sub-steps (τ_ε/τ at its default).
pub fn kernel(w: &Workload) -> Result<Langevin, CliError> {
    let mut cfg = NeuralConfig::new(0.01, 1.0);
    cfg.a_prime = APrime::Interneurons(InterneuronConfig {
        substeps: w.substeps,
        ..InterneuronConfig::default()
    });
    cfg.chunk = w.chunk;
    Ok(Langevin::new(cfg)?)
}

/// Observations for the benchmark (batch × n₀, deterministic).
pub fn data(w: &Workload) -> Mat<f32> {
    Mat::from_fn(w.batch, w.layers[0], |r, j| {
        ((r * 7 + j * 3) % 11) as f32 * 0.1 - 0.5
    })
}

/// Flops of the step's matrix products.
pub fn flops(w: &Workload, mode: Mode) -> f64 {
    let products = match mode {
        Mode::Inference => 2.0,
        Mode::Learning => 3.0,
    };
    w.layers
        .windows(2)
        .map(|p| products * 2.0 * (p[0] * p[1] * w.batch) as f64)
        .sum()
}

/// Seconds per call of `n` calls of `f`.
fn time_calls(n: usize, mut f: impl FnMut() -> Result<(), CliError>) -> Result<f64, CliError> {
    let t0 = Instant::now();
    for _ in 0..n {
        f()?;
    }
    Ok(t0.elapsed().as_secs_f64() / n as f64)
}

/// Calls per timing so that one timing lasts about `secs`.
fn calls_for(secs: f64, mut f: impl FnMut() -> Result<(), CliError>) -> Result<usize, CliError> {
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
fn median(mut v: Vec<f64>) -> f64 {
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
struct StepBench {
    mode: Mode,
    model: HeeModel<f32>,
    kernel: Langevin,
    chains: Chains<f32>,
    scratch: LearningScratch<f32>,
}

impl StepBench {
    fn new(w: &Workload, mode: Mode, seed: u64) -> Result<Self, CliError> {
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

    fn run(&mut self) -> Result<(), CliError> {
        // A small rate keeps the weights where they started over the timing.
        let rates = LocalLearning {
            lr_weights: 1e-6,
            lr_biases: 1e-6,
            lr_energy: 0.0,
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
struct Side {
    threads: usize,
    pool: rayon::ThreadPool,
    par: Par,
    step: StepBench,
    products: Products,
    calls: (usize, usize),
}

impl Side {
    fn new(
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
    fn round(&mut self) -> Result<(f64, f64), CliError> {
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

/// Rates of the random numbers the step draws (one thread): standard
/// normals in bulk (the step's stream path and the generic one, same
/// draws) and one at a time from the step's stream type, and the
/// ChaCha8 keystream itself from it and from rand_chacha (same words).
pub fn normal_rates(secs: f64) -> Vec<NormalRate> {
    let z = hee_core::normal::Ziggurat::get();
    let mut buf = vec![0f32; 4096];
    let mut words = vec![0u32; 4096];
    let mut sink = 0u32;
    // Calls `f` (which produces 4096 values) for about `secs`; values/s.
    let mut rate = |f: &mut dyn FnMut(&mut [f32], &mut [u32])| {
        let t0 = Instant::now();
        let mut n = 0usize;
        while t0.elapsed().as_secs_f64() < secs {
            for _ in 0..64 {
                f(&mut buf, &mut words);
                sink ^= buf[17].to_bits() ^ words[17];
                n += 4096;
            }
        }
        n as f64 / t0.elapsed().as_secs_f64()
    };
    let mut stream = SampleStream::new(1, 0);
    let mut chacha = ChaCha8Rng::seed_from_u64(1);
    let out = vec![
        NormalRate {
            method: "normals: stream fill (Ziggurat::fill_stream, the step's path), SampleStream",
            per_second: rate(&mut |b, _| z.fill_stream(&mut stream, b)),
        },
        NormalRate {
            method: "normals: generic bulk fill (Ziggurat::fill, any Rng), SampleStream",
            per_second: rate(&mut |b, _| z.fill(&mut stream, b)),
        },
        NormalRate {
            method: "normals: one at a time (Ziggurat::sample), SampleStream",
            per_second: rate(&mut |b, _| {
                for o in b.iter_mut() {
                    *o = z.sample(&mut stream);
                }
            }),
        },
        NormalRate {
            method: "ChaCha8 words: SampleStream::fill_words (16 blocks per pass)",
            per_second: rate(&mut |_, w| stream.fill_words(w)),
        },
        NormalRate {
            method: "ChaCha8 words: rand_chacha ChaCha8Rng (same stream)",
            per_second: rate(&mut |_, w| chacha.fill(w)),
        },
    ];
    std::hint::black_box(sink);
    out
}

/// A description of this machine: CPU model, vector extensions, cores.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    #[allow(unused_mut)]
    let mut simd: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        for (name, on) in [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
        ] {
            if on {
                simd.push(name);
            }
        }
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "cpu: {cpu}\nvector extensions: {}\nlogical cores: {cores}\n",
        if simd.is_empty() {
            "baseline".to_string()
        } else {
            simd.join(", ")
        }
    )
}

/// Measures every workload, mode and thread count (1 and 2).
///
/// The machine's speed drifts (other tenants of a VM), so nothing is
/// compared across time: for each workload and mode, rounds alternate the
/// step and the products alone with 1 thread, then with 2, so that every
/// time of a row and its comparisons come from the same minutes. Times are
/// medians over the rounds; efficiency (products / step) and the speed-up
/// (1-thread step / 2-thread step) are ratios of those medians, so the
/// tables can be checked by division.
pub fn run(opts: &RunOptions, progress: &mut dyn FnMut(&str)) -> Result<Throughput, CliError> {
    prepare_dir(&opts.out)?;
    let (reps, secs) = if opts.quick { (3, 0.05) } else { (15, 0.2) };
    let mut rows = Vec::new();
    let mut scaling = Vec::new();
    for w in workloads() {
        for mode in [Mode::Inference, Mode::Learning] {
            let mut sides = [
                Side::new(&w, mode, 1, opts.seed, secs)?,
                Side::new(&w, mode, 2, opts.seed, secs)?,
            ];
            let mut times = [Vec::new(), Vec::new()];
            for _ in 0..reps {
                for (side, t) in sides.iter_mut().zip(times.iter_mut()) {
                    t.push(side.round()?);
                }
            }
            let f = flops(&w, mode);
            for (side, t) in sides.iter().zip(&times) {
                let step = median(t.iter().map(|r| r.0).collect());
                let gemm = median(t.iter().map(|r| r.1).collect());
                let row = Row {
                    shape: w.name(),
                    batch: w.batch,
                    threads: side.threads,
                    mode,
                    step_ms: step * 1e3,
                    gflops: f / step * 1e-9,
                    gemm_ms: gemm * 1e3,
                    gemm_gflops: f / gemm * 1e-9,
                    efficiency: gemm / step,
                };
                progress(&format!(
                    "throughput: {} b{} {} thread(s) {:<9}: step {:.3} ms, products alone {:.3} ms, efficiency {:.3}",
                    row.shape, row.batch, side.threads, mode.name(), row.step_ms, row.gemm_ms, row.efficiency
                ));
                rows.push(row);
            }
            let speedup = median(times[0].iter().map(|r| r.0).collect())
                / median(times[1].iter().map(|r| r.0).collect());
            progress(&format!(
                "throughput: {} {}: 2 threads {speedup:.2}x faster than 1",
                w.name(),
                mode.name()
            ));
            scaling.push(Scaling {
                shape: w.name(),
                batch: w.batch,
                mode,
                speedup,
            });
        }
    }
    // The table is read by thread count first, as before.
    rows.sort_by_key(|r| r.threads);
    let normals = normal_rates(if opts.quick { 0.05 } else { 0.5 });
    Ok(Throughput {
        rows,
        scaling,
        normals,
        machine: machine(),
    })
}

/// Writes `throughput.csv`, `normals.csv` and `machine.txt`.
pub fn write(opts: &RunOptions, r: &Throughput) -> Result<Vec<PathBuf>, CliError> {
    let path = opts.out.join("throughput.csv");
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|r| {
            vec![
                r.shape.clone(),
                r.batch.to_string(),
                r.threads.to_string(),
                r.mode.name().to_string(),
                format!("{:.4}", r.step_ms),
                format!("{:.2}", r.gflops),
                format!("{:.4}", r.gemm_ms),
                format!("{:.2}", r.gemm_gflops),
                format!("{:.3}", r.efficiency),
            ]
        })
        .collect();
    write_csv(
        &path,
        &[
            "shape",
            "batch",
            "threads",
            "mode",
            "step_ms",
            "gflops",
            "gemm_ms",
            "gemm_gflops",
            "efficiency",
        ],
        &rows,
    )?;
    let scaling = opts.out.join("scaling.csv");
    let rows: Vec<Vec<String>> = r
        .scaling
        .iter()
        .map(|s| {
            vec![
                s.shape.clone(),
                s.batch.to_string(),
                s.mode.name().to_string(),
                format!("{:.3}", s.speedup),
            ]
        })
        .collect();
    write_csv(
        &scaling,
        &["shape", "batch", "mode", "speedup_2_vs_1"],
        &rows,
    )?;
    let normals = opts.out.join("normals.csv");
    let rows: Vec<Vec<String>> = r
        .normals
        .iter()
        .map(|n| vec![n.method.to_string(), format!("{:.4e}", n.per_second)])
        .collect();
    write_csv(&normals, &["method", "per_second"], &rows)?;
    let machine = opts.out.join("machine.txt");
    write_atomic(&machine, r.machine.as_bytes())?;
    Ok(vec![path, scaling, normals, machine])
}
