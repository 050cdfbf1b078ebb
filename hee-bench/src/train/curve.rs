//! The learning curve of a run: `curve.csv` (one row per epoch, rewritten
//! at every checkpoint) and `curve.png`.

use std::path::Path;

use hee_eval::plot::{Axes, Figure, LineKind, Panel, Series};
use hee_eval::report::write_csv;

use super::checkpoint::RunFiles;
use crate::CliError;

/// One row of `curve.csv`: the state of the run at the end of an epoch.
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
}

const CURVE_HEADER: [&str; 7] = [
    "epoch",
    "recon_error",
    "mean_energy",
    "mean_sq_grad",
    "update_norm",
    "seconds",
    "weight_norm",
];

pub(super) fn write_curve(files: &RunFiles, curve: &[CurveRow]) -> Result<(), CliError> {
    let rows: Vec<Vec<String>> = curve
        .iter()
        .map(|r| {
            // Round-trip formatting: a resumed run reads these back exactly.
            vec![
                r.epoch.to_string(),
                format!("{:?}", r.recon_error),
                format!("{:?}", r.mean_energy),
                format!("{:?}", r.mean_sq_grad),
                format!("{:?}", r.update_norm),
                format!("{:?}", r.seconds),
                format!("{:?}", r.weight_norm),
            ]
        })
        .collect();
    write_csv(&files.curve_csv(), &CURVE_HEADER, &rows)?;
    if curve.is_empty() {
        return Ok(());
    }
    let panel = |title: &str, f: fn(&CurveRow) -> f64, color: usize| Panel {
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
            panel("held-out reconstruction error", |r| r.recon_error, 0),
            panel("mean energy U", |r| r.mean_energy, 1),
            panel("mean |dU/dx|^2", |r| r.mean_sq_grad, 2),
            panel("weight update norm", |r| r.update_norm, 3),
        ],
        columns: 2,
        axes: Axes::Linear,
    }
    .write_png(&files.curve_png(), 480, 320)?;
    Ok(())
}

pub(super) fn read_curve(path: &Path, epochs: usize) -> Result<Vec<CurveRow>, CliError> {
    let bad = |reason: String| CliError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    let mut rdr = csv::Reader::from_path(path).map_err(|e| bad(e.to_string()))?;
    let header = rdr.headers().map_err(|e| bad(e.to_string()))?.clone();
    if header.iter().collect::<Vec<_>>() != CURVE_HEADER {
        return Err(bad(format!("unexpected header {header:?}")));
    }
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| bad(e.to_string()))?;
        let num = |k: usize| -> Result<f64, CliError> {
            rec.get(k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad(format!("row {}, column {}: not a number", i + 2, k + 1)))
        };
        out.push(CurveRow {
            epoch: num(0)? as usize,
            recon_error: num(1)?,
            mean_energy: num(2)?,
            mean_sq_grad: num(3)?,
            update_norm: num(4)?,
            seconds: num(5)?,
            weight_norm: num(6)?,
        });
    }
    if out.len() != epochs {
        return Err(bad(format!(
            "{} epochs recorded, the checkpoint is after {epochs}",
            out.len()
        )));
    }
    Ok(out)
}
