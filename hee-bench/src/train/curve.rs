//! The learning curve of a run: `curve.csv` (rewritten at every
//! checkpoint) and `curve.png`.
//!
//! `curve.csv` holds, in the order they happened, one `epoch` row at the
//! end of every epoch and one `retune` row for every retuning of the
//! dynamics (`dynamics.retune`). Every row carries the dynamics then in use
//! (Δt, τ_a, g, the interneuron sub-steps, the posterior's curvature range
//! when measured) and every layer's σ (min, median and max over its units:
//! the three are equal for a layer that shares one σ).

use std::path::Path;

use hee_core::HeeModel;
use hee_eval::diagnostics::median;
use hee_eval::plot::{Axes, Figure, LineKind, Panel, Series};
use hee_eval::report::write_csv;

use super::checkpoint::RunFiles;
use crate::CliError;

/// The dynamics in use and the model's σ at some point of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDynamics {
    /// Minibatches done when the row was written.
    pub minibatch: u64,
    pub dt: f64,
    pub tau_a: f64,
    pub g: f64,
    pub substeps: usize,
    /// The posterior Hessian's extreme eigenvalues at the last tuning (NaN
    /// when the run never measured them).
    pub lambda_min: f64,
    pub lambda_max: f64,
    /// Per layer: min, median and max of its σ.
    pub sigma: Vec<[f64; 3]>,
}

/// min, median and max of every layer's σ.
pub fn sigma_summary(model: &HeeModel<f32>) -> Vec<[f64; 3]> {
    (0..model.n_layers())
        .map(|l| match model.unit_sigmas(l) {
            Some(u) => {
                let (lo, hi) = u
                    .iter()
                    .fold((f64::INFINITY, 0.0f64), |(a, b), &s| (a.min(s), b.max(s)));
                [lo, median(u), hi]
            }
            None => [model.energy(l).sigma(); 3],
        })
        .collect()
}

/// One `epoch` row of `curve.csv`: the state of the run at the end of an epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveRow {
    /// Epochs done (1-based).
    pub epoch: usize,
    /// Held-out reconstruction error ‖x₀ − E[A′₀(η₀) | x₀]‖² per record, the
    /// posterior mean of the prediction estimated over the evaluation chains.
    pub recon_error: f64,
    /// Mean joint energy U of the evaluation chains' final states.
    pub mean_energy: f64,
    /// Mean over the epoch's minibatches of |∂U/∂x|² (per sample).
    pub mean_sq_grad: f64,
    /// Mean over the epoch's minibatches of the last weight update's norm,
    /// rate × ‖ΔW‖.
    pub update_norm: f64,
    /// Wall time of the run so far (all sessions), seconds.
    pub seconds: f64,
    /// ‖W‖ (Frobenius, all layers) at the end of the epoch: parameter
    /// blow-up shows here.
    pub weight_norm: f64,
    pub dynamics: RunDynamics,
}

/// One `retune` row: the dynamics chosen before minibatch `minibatch`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetuneRow {
    /// The epoch in progress (1-based).
    pub epoch: usize,
    pub dynamics: RunDynamics,
}

const FIXED: [&str; 15] = [
    "kind",
    "epoch",
    "minibatch",
    "recon_error",
    "mean_energy",
    "mean_sq_grad",
    "update_norm",
    "seconds",
    "weight_norm",
    "dt",
    "tau_a",
    "g",
    "substeps",
    "lambda_min",
    "lambda_max",
];

fn header(layers: usize) -> Vec<String> {
    let mut h: Vec<String> = FIXED.iter().map(|s| s.to_string()).collect();
    for l in 0..layers {
        for q in ["min", "median", "max"] {
            h.push(format!("sigma_{l}_{q}"));
        }
    }
    h
}

/// Round-trip formatting (a resumed run reads these back exactly); NaN as
/// an empty cell.
fn num(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else {
        format!("{v:?}")
    }
}

fn dynamics_cells(d: &RunDynamics) -> Vec<String> {
    let mut c = vec![
        num(d.dt),
        num(d.tau_a),
        num(d.g),
        d.substeps.to_string(),
        num(d.lambda_min),
        num(d.lambda_max),
    ];
    for s in &d.sigma {
        c.extend(s.iter().map(|&v| num(v)));
    }
    c
}

fn rows(curve: &[CurveRow], retunes: &[RetuneRow]) -> Vec<Vec<String>> {
    let mut out: Vec<(u64, u8, Vec<String>)> = Vec::new();
    for r in retunes {
        let mut c = vec![
            "retune".into(),
            r.epoch.to_string(),
            r.dynamics.minibatch.to_string(),
        ];
        c.extend((0..6).map(|_| String::new()));
        c.extend(dynamics_cells(&r.dynamics));
        out.push((r.dynamics.minibatch, 0, c));
    }
    for r in curve {
        let mut c = vec![
            "epoch".into(),
            r.epoch.to_string(),
            r.dynamics.minibatch.to_string(),
            num(r.recon_error),
            num(r.mean_energy),
            num(r.mean_sq_grad),
            num(r.update_norm),
            num(r.seconds),
            num(r.weight_norm),
        ];
        c.extend(dynamics_cells(&r.dynamics));
        out.push((r.dynamics.minibatch, 1, c));
    }
    // In the order they happened: a retuning before a minibatch comes after
    // the epoch row of the minibatches before it.
    out.sort_by_key(|(m, kind, _)| (*m, 1 - *kind));
    out.into_iter().map(|(_, _, c)| c).collect()
}

pub(super) fn write_curve(
    files: &RunFiles,
    layers: usize,
    curve: &[CurveRow],
    retunes: &[RetuneRow],
) -> Result<(), CliError> {
    let h = header(layers);
    let href: Vec<&str> = h.iter().map(String::as_str).collect();
    write_csv(&files.curve_csv(), &href, &rows(curve, retunes))?;
    if curve.is_empty() {
        return Ok(());
    }
    let panel = |title: &str, f: &dyn Fn(&CurveRow) -> f64, color: usize| Panel {
        title: title.into(),
        series: vec![Series {
            label: title.into(),
            points: curve.iter().map(|r| (r.epoch as f64, f(r))).collect(),
            color,
            line: LineKind::Solid,
        }],
    };
    Figure {
        title: "learning curves".into(),
        x_label: "epoch".into(),
        y_label: String::new(),
        panels: vec![
            panel("held-out reconstruction error", &|r| r.recon_error, 0),
            panel("mean energy U", &|r| r.mean_energy, 1),
            panel("mean |dU/dx|^2", &|r| r.mean_sq_grad, 2),
            panel("weight update norm", &|r| r.update_norm, 3),
            panel("dt", &|r| r.dynamics.dt, 4),
            panel(
                "median sigma of layer 0",
                &|r| r.dynamics.sigma.first().map_or(f64::NAN, |s| s[1]),
                5,
            ),
        ],
        columns: 2,
        axes: Axes::Linear,
    }
    .write_png(&files.curve_png(), 480, 320)?;
    Ok(())
}

/// Reads `curve.csv` back: its epoch rows (exactly `epochs` of them) and
/// its retune rows.
pub(super) fn read_curve(
    path: &Path,
    layers: usize,
    epochs: usize,
) -> Result<(Vec<CurveRow>, Vec<RetuneRow>), CliError> {
    let bad = |reason: String| CliError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    let mut rdr = csv::Reader::from_path(path).map_err(|e| bad(e.to_string()))?;
    let head = rdr.headers().map_err(|e| bad(e.to_string()))?.clone();
    if head.iter().collect::<Vec<_>>() != header(layers) {
        return Err(bad(format!("unexpected header {head:?}")));
    }
    let (mut curve, mut retunes) = (Vec::new(), Vec::new());
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| bad(e.to_string()))?;
        let num = |k: usize| -> Result<f64, CliError> {
            match rec.get(k) {
                Some("") => Ok(f64::NAN),
                v => v
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| bad(format!("row {}, column {}: not a number", i + 2, k + 1))),
            }
        };
        let dynamics = RunDynamics {
            minibatch: num(2)? as u64,
            dt: num(9)?,
            tau_a: num(10)?,
            g: num(11)?,
            substeps: num(12)? as usize,
            lambda_min: num(13)?,
            lambda_max: num(14)?,
            sigma: (0..layers)
                .map(|l| {
                    let k = FIXED.len() + 3 * l;
                    Ok([num(k)?, num(k + 1)?, num(k + 2)?])
                })
                .collect::<Result<_, CliError>>()?,
        };
        match rec.get(0) {
            Some("epoch") => curve.push(CurveRow {
                epoch: num(1)? as usize,
                recon_error: num(3)?,
                mean_energy: num(4)?,
                mean_sq_grad: num(5)?,
                update_norm: num(6)?,
                seconds: num(7)?,
                weight_norm: num(8)?,
                dynamics,
            }),
            Some("retune") => retunes.push(RetuneRow {
                epoch: num(1)? as usize,
                dynamics,
            }),
            other => return Err(bad(format!("row {}: kind {other:?}", i + 2))),
        }
    }
    if curve.len() != epochs {
        return Err(bad(format!(
            "{} epochs recorded, the checkpoint is after {epochs}",
            curve.len()
        )));
    }
    Ok((curve, retunes))
}
