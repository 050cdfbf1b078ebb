//! HEE's local rule against the negative-phase baseline at equal sampling
//! budgets (spec §7, claim 4): for each budget k of inference steps per
//! parameter update, both learners see the same data, minibatch order,
//! batch, initial weights, learning rates, schedule, warm-up and number of
//! updates; HEE's chains take k steps per update, the baseline's clamped
//! chains and its persistent free chains take k steps each (twice HEE's
//! chain work; the wall-clock of both is recorded).

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use hee_core::faer::Mat;
use hee_core::{Observed, Potential};

use hee_eval::plot::{Axes, Figure, LineKind, Panel, Series};

use crate::generate::{free_kernel, readout, Readout};
use crate::train::baseline::{Baseline, BaselineStatus};
use crate::train::{TrainConfig, Training};
use crate::CliError;

/// One point of a learning curve.
#[derive(Debug, Clone, PartialEq)]
pub struct CurvePoint {
    pub dataset: String,
    /// `hee` or `baseline-ebm`.
    pub learner: String,
    pub budget: usize,
    pub seed: u64,
    pub epoch: usize,
    pub recon_error: f64,
    pub weight_norm: f64,
    pub update_norm: f64,
    pub seconds: f64,
}

/// How one (learner, budget, seed) run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub dataset: String,
    pub learner: String,
    pub budget: usize,
    pub seed: u64,
    /// `finished`, or `diverged at epoch E, update U`.
    pub status: String,
    pub epochs_done: usize,
    pub final_recon_error: f64,
    pub final_weight_norm: f64,
    /// FCD of its samples (HEE: marginal; baseline: fresh long chains).
    pub fcd: f64,
    pub train_seconds: f64,
}

impl CurvePoint {
    pub(super) fn cells(&self) -> Vec<String> {
        let c = self;
        vec![
            c.dataset.clone(),
            c.learner.clone(),
            c.budget.to_string(),
            c.seed.to_string(),
            c.epoch.to_string(),
            format!("{:.4}", c.recon_error),
            format!("{:.4}", c.weight_norm),
            format!("{:.6}", c.update_norm),
            format!("{:.1}", c.seconds),
        ]
    }
}

impl RunSummary {
    pub(super) fn cells(&self) -> Vec<String> {
        let r = self;
        vec![
            r.dataset.clone(),
            r.learner.clone(),
            r.budget.to_string(),
            r.seed.to_string(),
            r.status.clone(),
            r.epochs_done.to_string(),
            format!("{:.4}", r.final_recon_error),
            format!("{:.4}", r.final_weight_norm),
            format!("{:.4}", r.fcd),
            format!("{:.1}", r.train_seconds),
        ]
    }
}

/// The configuration of a run at budget `k`: the defaults, with `k` steps
/// per update.
pub fn config_at(base: &TrainConfig, seed: u64, k: usize) -> TrainConfig {
    let mut c = base.clone();
    c.seed = seed;
    c.learning.steps_per_update = k;
    c
}

/// Trains HEE at budget `k` in `dir` (a `hee train` run folder).
pub fn train_hee(
    cfg: TrainConfig,
    dir: &Path,
    dataset: &str,
    curve: &mut Vec<CurvePoint>,
) -> Result<(Training, f64), CliError> {
    let _ = std::fs::remove_dir_all(dir);
    let (k, seed) = (cfg.learning.steps_per_update, cfg.seed);
    let t0 = Instant::now();
    let mut t = Training::start(cfg, dir)?;
    t.run(&AtomicBool::new(false), &mut |_| {})?;
    let secs = t0.elapsed().as_secs_f64();
    for r in t.curve() {
        curve.push(CurvePoint {
            dataset: dataset.into(),
            learner: "hee".into(),
            budget: k,
            seed,
            epoch: r.epoch,
            recon_error: r.recon_error,
            weight_norm: r.weight_norm,
            update_norm: r.update_norm,
            seconds: r.seconds,
        });
    }
    Ok((t, secs))
}

/// A trained baseline, its samples and how its run ended.
pub struct BaselineRun {
    pub baseline: Baseline,
    pub train_seconds: f64,
    /// `n` samples (A′₀(η₀) read-out) from fresh free chains on Ẽ, or
    /// `None` when the run diverged.
    pub samples: Option<Mat<f32>>,
    pub sample_seconds: f64,
}

/// Trains the baseline at budget `k` and draws `n` samples from `n` fresh
/// free-running chains on Ẽ, started at x = 0 and run `steps` steps (an
/// undirected EBM has no ancestral sampler), with the kernel HEE's joint
/// generation uses (tuned adaptation, Δt bounded by x₀'s curvature).
pub fn train_baseline(
    cfg: TrainConfig,
    learner: &str,
    dataset: &str,
    n: usize,
    steps: usize,
    curve: &mut Vec<CurvePoint>,
) -> Result<BaselineRun, CliError> {
    let (k, seed) = (cfg.learning.steps_per_update, cfg.seed);
    let t0 = Instant::now();
    let mut b = Baseline::new(cfg)?;
    b.run(&mut |r| {
        curve.push(CurvePoint {
            dataset: dataset.into(),
            learner: learner.into(),
            budget: k,
            seed,
            epoch: r.epoch,
            recon_error: r.recon_error,
            weight_norm: r.weight_norm,
            update_norm: r.update_norm,
            seconds: r.seconds,
        })
    })?;
    let train_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let samples = if b.status == BaselineStatus::Finished {
        let mut neural = b.config.neural()?;
        neural.potential = Potential::Unnormalised;
        let zeros = Mat::<f32>::zeros(n, b.model.size(0));
        let kernel = free_kernel(neural, &b.model, zeros.as_ref(), "adaptation", None)?;
        debug_assert_eq!(kernel.config.observed, Observed::Free);
        match hee_core::generate::joint(&kernel, &b.model, n, steps, seed) {
            Ok(c) => Some(readout(
                &b.model,
                c.state.x(),
                c.state.eta(),
                Readout::Mean,
            )?),
            // Chains that leave the finite numbers have no samples to score.
            Err(hee_core::HeeError::Diverged { .. }) => None,
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    Ok(BaselineRun {
        baseline: b,
        train_seconds,
        samples,
        sample_seconds: t1.elapsed().as_secs_f64(),
    })
}

/// The status column of `budgets.csv`.
pub fn status_of(s: &BaselineStatus) -> String {
    match s {
        BaselineStatus::Finished => "finished".into(),
        BaselineStatus::Diverged { epoch, update, .. } => {
            format!("diverged at epoch {epoch}, update {update}")
        }
    }
}

/// Held-out reconstruction error and ‖W‖ against epochs, per data set: one
/// line per learner and budget (first seed; HEE solid, baseline dashed).
pub fn curves_figure(curves: &[CurvePoint]) -> Figure {
    let first = curves.first().map_or(0, |c| c.seed);
    let mut panels: Vec<Panel> = Vec::new();
    for c in curves.iter().filter(|c| c.seed == first) {
        for (what, y) in [("error", c.recon_error), ("|W|", c.weight_norm)] {
            let title = format!("{} {what}", c.dataset);
            let label = format!("{} k={}", c.learner, c.budget);
            let at = match panels.iter().position(|p| p.title == title) {
                Some(i) => i,
                None => {
                    panels.push(Panel {
                        title,
                        series: Vec::new(),
                    });
                    panels.len() - 1
                }
            };
            let series = &mut panels[at].series;
            let point = (c.epoch as f64, if y.is_finite() { y } else { f64::NAN });
            match series.iter_mut().find(|s| s.label == label) {
                Some(s) => s.points.push(point),
                None => series.push(Series {
                    label,
                    points: vec![point],
                    color: if c.learner.ends_with("lr/10") {
                        3
                    } else {
                        super::BUDGETS
                            .iter()
                            .position(|&b| b == c.budget)
                            .unwrap_or(0)
                    },
                    line: if c.learner == "hee" {
                        LineKind::Solid
                    } else {
                        LineKind::Dashed
                    },
                }),
            }
        }
    }
    Figure {
        title: "Learning curves at equal budget (steps per update)".into(),
        x_label: "epoch".into(),
        y_label: String::new(),
        panels,
        columns: 2,
        axes: Axes::LogY,
    }
}
