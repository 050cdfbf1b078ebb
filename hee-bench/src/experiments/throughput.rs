//! `hee reproduce throughput`: how close one step of inference (and of
//! inference with learning) comes to the machine's limit, measured in one
//! run against the same matrix products done alone by faer.
//!
//! Workloads (f32, tanh, gaussian layers, interneuron A′ with K = 4 sub-steps
//! on every layer that has a population, plain Langevin, Δt = 0.01 τ):
//! 784-256-64 with batch 128, and 256-256-128 with batch 256. Modes:
//! `inference` (one `Dynamics::step`) and `learning` (one
//! [`hee_core::learning::learning_step`]: the step, the local rule's update
//! and the resynchronisation of η). Each runs in a rayon pool of 1 and of 2
//! threads.
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
//! Also written: `normals.csv` (standard normal draws per second, bulk fill
//! against a loop of single draws, one thread) and `machine.txt` (the CPU,
//! its vector extensions and the thread counts), because every figure here
//! is a property of the machine it ran on.

use std::path::PathBuf;
use std::time::Instant;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use hee_core::learning::{learning_step, LearningScratch, LocalLearning};
use hee_core::{
    APrime, BaseEnergy, Dynamics, HeeModel, InterneuronConfig, Langevin, LayerSpec, NeuralConfig,
    Nonlinearity,
};
use hee_eval::report::{prepare_dir, write_atomic, write_csv};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::RunOptions;
use crate::CliError;

/// A workload: layer sizes from the observation up, batch, sub-steps K.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub layers: Vec<usize>,
    pub batch: usize,
    pub substeps: usize,
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
        },
        Workload {
            layers: vec![256, 256, 128],
            batch: 256,
            substeps: 4,
        },
    ]
}

/// Inference alone, or inference with the local rule after every step.
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
    pub draws_per_second: f64,
}

/// Everything the experiment measured.
#[derive(Debug, Clone)]
pub struct Throughput {
    pub rows: Vec<Row>,
    pub normals: Vec<NormalRate>,
    pub machine: String,
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

/// Median of `reps` timings (seconds per call) of `n` calls of `f` each.
fn median_time(
    reps: usize,
    n: usize,
    mut f: impl FnMut() -> Result<(), CliError>,
) -> Result<f64, CliError> {
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = Instant::now();
        for _ in 0..n {
            f()?;
        }
        t.push(t0.elapsed().as_secs_f64() / n as f64);
    }
    t.sort_by(f64::total_cmp);
    Ok(t[reps / 2])
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

/// The step's matrix products alone, on the whole batch (seconds).
fn gemm_time(w: &Workload, mode: Mode, par: Par, reps: usize, secs: f64) -> Result<f64, CliError> {
    let mut p = Products::new(w, mode);
    let mut run = || -> Result<(), CliError> {
        p.run(par);
        Ok(())
    };
    let n = calls_for(secs, &mut run)?;
    median_time(reps, n, run)
}

/// One step of `mode` (seconds), in the current rayon pool.
fn step_time(w: &Workload, mode: Mode, seed: u64, reps: usize, secs: f64) -> Result<f64, CliError> {
    let mut m = model(w, seed)?;
    let k = kernel(w)?;
    let x = data(w);
    let mut chains = k.init(&m, Some(x.as_ref()), None, w.batch, seed)?;
    let mut scratch = LearningScratch::new(&m, w.batch);
    // A small rate keeps the weights where they started over the timing.
    let rates = LocalLearning {
        lr_weights: 1e-6,
        lr_biases: 1e-6,
        lr_energy: 0.0,
    };
    let mut run = || -> Result<(), CliError> {
        match mode {
            Mode::Inference => {
                k.step(&m, &mut chains)?;
            }
            Mode::Learning => {
                learning_step(&mut m, &k, &mut chains, &mut scratch, &rates)?;
            }
        }
        Ok(())
    };
    let n = calls_for(secs, &mut run)?;
    median_time(reps, n, run)
}

/// Standard normal draws per second, bulk and one at a time (one thread).
pub fn normal_rates(secs: f64) -> Vec<NormalRate> {
    let z = hee_core::normal::Ziggurat::get();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut buf = vec![0f32; 4096];
    let mut sink = 0f32;
    let mut rate = |bulk: bool| {
        let t0 = Instant::now();
        let mut draws = 0usize;
        while t0.elapsed().as_secs_f64() < secs {
            for _ in 0..64 {
                if bulk {
                    z.fill(&mut rng, &mut buf);
                } else {
                    for o in buf.iter_mut() {
                        *o = z.sample(&mut rng);
                    }
                }
                sink += buf[17];
                draws += buf.len();
            }
        }
        draws as f64 / t0.elapsed().as_secs_f64()
    };
    let out = vec![
        NormalRate {
            method: "bulk fill (Ziggurat::fill)",
            draws_per_second: rate(true),
        },
        NormalRate {
            method: "one at a time (Ziggurat::sample)",
            draws_per_second: rate(false),
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
pub fn run(opts: &RunOptions, progress: &mut dyn FnMut(&str)) -> Result<Throughput, CliError> {
    prepare_dir(&opts.out)?;
    let (reps, secs) = if opts.quick { (3, 0.05) } else { (7, 0.4) };
    let mut rows = Vec::new();
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| CliError::Usage(format!("throughput: thread pool: {e}")))?;
        let par = if threads == 1 {
            Par::Seq
        } else {
            Par::rayon(threads)
        };
        for w in workloads() {
            for mode in [Mode::Inference, Mode::Learning] {
                let (step, gemm) = pool.install(|| -> Result<(f64, f64), CliError> {
                    Ok((
                        step_time(&w, mode, opts.seed, reps, secs)?,
                        gemm_time(&w, mode, par, reps, secs)?,
                    ))
                })?;
                let f = flops(&w, mode);
                let row = Row {
                    shape: w.name(),
                    batch: w.batch,
                    threads,
                    mode,
                    step_ms: step * 1e3,
                    gflops: f / step * 1e-9,
                    gemm_ms: gemm * 1e3,
                    gemm_gflops: f / gemm * 1e-9,
                    efficiency: gemm / step,
                };
                progress(&format!(
                    "throughput: {} b{} {} thread(s) {:<9}: step {:.3} ms, products alone {:.3} ms, efficiency {:.3}",
                    row.shape, row.batch, threads, mode.name(), row.step_ms, row.gemm_ms, row.efficiency
                ));
                rows.push(row);
            }
        }
    }
    let normals = normal_rates(if opts.quick { 0.05 } else { 0.5 });
    Ok(Throughput {
        rows,
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
    let normals = opts.out.join("normals.csv");
    let rows: Vec<Vec<String>> = r
        .normals
        .iter()
        .map(|n| vec![n.method.to_string(), format!("{:.4e}", n.draws_per_second)])
        .collect();
    write_csv(&normals, &["method", "draws_per_second"], &rows)?;
    let machine = opts.out.join("machine.txt");
    write_atomic(&machine, r.machine.as_bytes())?;
    Ok(vec![path, normals, machine])
}
