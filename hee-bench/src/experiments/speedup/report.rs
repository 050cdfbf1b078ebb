//! The files of `hee reproduce speedup`: three tables and the KL figure.

use std::path::PathBuf;

use hee_eval::plot::{Figure, LineKind, Panel, Series};
use hee_eval::report::{prepare_dir, write_rows};

use super::{Speedup, DIM, H_LMAX, KL_THRESHOLD};
use crate::experiments::RunOptions;
use crate::CliError;

/// Writes `speedup.csv`, `speedup-details.csv`, `speedup-equal-bias.csv`
/// and `kl.png` into `opts.out`.
pub fn write(opts: &RunOptions, r: &Speedup) -> Result<Vec<PathBuf>, CliError> {
    prepare_dir(&opts.out)?;
    let main = opts.out.join("speedup.csv");
    let header = "kappa,dynamics,steps_to_threshold,wall_ms_to_threshold,iact,ess_per_s";
    write_rows(&main, header, &r.rows, |r| {
        vec![
            format!("{}", r.kappa),
            r.dynamics.to_string(),
            r.steps_to_threshold.to_string(),
            format!("{:.3}", r.wall_ms_to_threshold),
            format!("{:.2}", r.iact),
            format!("{:.2}", r.ess_per_s),
        ]
    })?;
    let details = opts.out.join("speedup-details.csv");
    let header = "kappa,dynamics,tau_a,g,stationary_kl,chains,ensemble_kl_to_posterior,ensemble_kl_to_recursion,ensemble_floor,iact_exact";
    write_rows(&details, header, &r.rows, |r| {
        vec![
            format!("{}", r.kappa),
            r.dynamics.to_string(),
            format!("{:.6}", r.tau_a),
            format!("{:.6}", r.g),
            format!("{:.6}", r.stationary_kl),
            r.chains.to_string(),
            format!("{:.6}", r.ensemble_kl_to_posterior),
            format!("{:.6}", r.ensemble_kl_to_recursion),
            format!("{:.6}", r.ensemble_floor),
            format!("{:.2}", r.iact_exact),
        ]
    })?;
    let equal = opts.out.join("speedup-equal-bias.csv");
    let header = "kappa,plain_dt_over_tau,adaptation_dt_over_tau,plain_stationary_kl,adaptation_stationary_kl,plain_steps,adaptation_steps,ratio";
    write_rows(&equal, header, &r.equal_bias, |e| {
        vec![
            format!("{}", e.kappa),
            format!("{:.6e}", e.plain_dt_over_tau),
            format!("{:.6e}", e.adaptation_dt_over_tau),
            format!("{:.6}", e.plain_stationary_kl),
            format!("{:.6}", e.adaptation_stationary_kl),
            e.plain_steps.to_string(),
            e.adaptation_steps.to_string(),
            format!("{:.2}", e.ratio()),
        ]
    })?;
    let mut panels: Vec<Panel> = Vec::new();
    for row in &r.rows {
        let title = format!("kappa = {}", row.kappa);
        if panels.last().map(|p| p.title != title).unwrap_or(true) {
            let last = r
                .rows
                .iter()
                .filter(|x| x.kappa == row.kappa)
                .flat_map(|x| x.curve.last().map(|p| p.0))
                .fold(1.0, f64::max);
            panels.push(Panel {
                title,
                series: vec![Series {
                    label: format!("threshold {KL_THRESHOLD}"),
                    points: vec![(1.0, KL_THRESHOLD), (last, KL_THRESHOLD)],
                    color: 7,
                    line: LineKind::Dotted,
                }],
            });
        }
        let panel = panels.last_mut().expect("pushed above");
        panel.series.push(Series {
            label: format!("{} ({} steps)", row.dynamics, row.steps_to_threshold),
            points: row.curve.clone(),
            color: if row.dynamics == "plain" { 0 } else { 1 },
            line: LineKind::Solid,
        });
    }
    let png = opts.out.join("kl.png");
    Figure {
        title: format!("KL(ensemble law || posterior) against step, d = {DIM}, dt = {H_LMAX} tau/lambda_max (exact moment recursion)"),
        x_label: "step".into(),
        y_label: "KL (nats)".into(),
        panels,
        columns: 3,
        axes: hee_eval::plot::Axes::LogLog,
    }
    .write_png(&png, 560, 420)?;
    Ok(vec![main, details, equal, png])
}
