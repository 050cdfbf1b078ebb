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
use hee_core::rng::chacha::SampleStream;
use hee_core::{
    APrime, BaseEnergy, Chains, Dynamics, HeeModel, InterneuronConfig, Langevin, LayerSpec,
    NeuralConfig, Nonlinearity,
};
use hee_eval::report::{prepare_dir, write_atomic, write_csv};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod machine;
mod timing;

pub use machine::{machine, normal_rates};
pub use timing::Products;
use timing::*;

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

/// Runs `hee reproduce throughput` and writes its files (see [`super::Entry`]).
pub fn reproduce(
    opts: &RunOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<PathBuf>, CliError> {
    write(opts, &run(opts, progress)?)
}
