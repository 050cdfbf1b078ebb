//! The files of `hee reproduce generation`: the rows of its tables and
//! their CSV cells, and the figures.

use std::path::PathBuf;

use hee_eval::plot::{write_image_grid, Figure, LineKind, Panel, Series};
use hee_eval::report::{prepare_dir, write_rows};

use super::budgets::{self, CurvePoint, RunSummary};
use super::{Generation, RelaxationRow};
use crate::experiments::RunOptions;
use crate::CliError;

/// One row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsRow {
    pub dataset: String,
    pub method: String,
    pub seed: u64,
    pub fcd: f64,
    pub kid: f64,
    pub kid_se: f64,
    pub precision: f64,
    pub recall: f64,
    /// Mean distance of each sample to its nearest training image (pixels).
    pub nn_train_dist: f64,
    pub train_seconds: f64,
    pub sample_seconds: f64,
    /// Held-out bits/dim of the HEE model by AIS (NaN for other methods).
    pub test_bpd: f64,
    /// Share of the samples the classifier assigns one class with
    /// probability ≥ 0.9, and the entropy (bits) of its class histogram.
    pub confident: f64,
    pub class_entropy: f64,
}

/// One point of the joint-generation curve.
#[derive(Debug, Clone, PartialEq)]
pub struct StepsRow {
    pub dataset: String,
    pub dynamics: String,
    pub steps: usize,
    /// Steps × Δt/τ.
    pub tau: f64,
    pub fcd: f64,
}

impl MetricsRow {
    /// A row for a method that produced no samples (a diverged run).
    pub(super) fn missing(dataset: &str, method: &str, seed: u64, train_seconds: f64) -> Self {
        MetricsRow {
            dataset: dataset.into(),
            method: method.into(),
            seed,
            fcd: f64::NAN,
            kid: f64::NAN,
            kid_se: f64::NAN,
            precision: f64::NAN,
            recall: f64::NAN,
            nn_train_dist: f64::NAN,
            train_seconds,
            sample_seconds: 0.0,
            test_bpd: f64::NAN,
            confident: f64::NAN,
            class_entropy: f64::NAN,
        }
    }

    /// The row of `metrics.csv`.
    pub(super) fn cells(&self) -> Vec<String> {
        let m = self;
        vec![
            m.dataset.clone(),
            m.method.clone(),
            m.seed.to_string(),
            format!("{:.4}", m.fcd),
            format!("{:.5}", m.kid),
            format!("{:.5}", m.kid_se),
            format!("{:.4}", m.precision),
            format!("{:.4}", m.recall),
            format!("{:.4}", m.nn_train_dist),
            format!("{:.1}", m.train_seconds),
            format!("{:.2}", m.sample_seconds),
            if m.test_bpd.is_nan() {
                String::new()
            } else {
                format!("{:.4}", m.test_bpd)
            },
            format!("{:.4}", m.confident),
            format!("{:.4}", m.class_entropy),
        ]
    }
}

impl StepsRow {
    /// The row of `joint-steps.csv`.
    pub(super) fn cells(&self) -> Vec<String> {
        let p = self;
        let (steps, tau, fcd) = (
            p.steps.to_string(),
            format!("{:.5}", p.tau),
            format!("{:.4}", p.fcd),
        );
        vec![p.dataset.clone(), p.dynamics.clone(), steps, tau, fcd]
    }
}

/// Writes `metrics.csv`, `classifier.csv` and one sample grid per data set
/// and method into `opts.out`.
pub fn write(opts: &RunOptions, r: &Generation) -> Result<Vec<PathBuf>, CliError> {
    prepare_dir(&opts.out)?;
    let metrics = opts.out.join("metrics.csv");
    let header = "dataset,method,seed,fcd,kid,kid_se,precision,recall,nn_train_dist,train_seconds,sample_seconds,test_bpd,confident,class_entropy_bits";
    write_rows(&metrics, header, &r.rows, MetricsRow::cells)?;
    let cls = opts.out.join("classifier.csv");
    write_rows(
        &cls,
        "dataset,test_accuracy",
        &r.classifier_accuracy,
        |(d, a)| vec![d.clone(), format!("{a:.4}")],
    )?;
    let steps = opts.out.join("joint-steps.csv");
    let header = "dataset,dynamics,steps,tau_elapsed,fcd";
    write_rows(&steps, header, &r.joint_steps, StepsRow::cells)?;
    let png = opts.out.join("joint-steps.png");
    let mut panels: Vec<Panel> = Vec::new();
    for p in &r.joint_steps {
        if panels.last().is_none_or(|x| x.title != p.dataset) {
            let marginal = r
                .rows
                .iter()
                .filter(|m| m.dataset == p.dataset && m.method == "hee-marginal")
                .map(|m| m.fcd)
                .next()
                .unwrap_or(f64::NAN);
            let last = r.joint_steps.iter().map(|q| q.steps).max().unwrap_or(1) as f64;
            panels.push(Panel {
                title: p.dataset.clone(),
                series: vec![Series {
                    label: "marginal (exact ancestral)".into(),
                    points: vec![(1.0, marginal), (last, marginal)],
                    color: 7,
                    line: LineKind::Dotted,
                }],
            });
        }
        let panel = panels
            .last_mut()
            .ok_or_else(|| CliError::Usage("generation: no panel".into()))?;
        match panel.series.iter_mut().find(|x| x.label == p.dynamics) {
            Some(x) => x.points.push((p.steps as f64, p.fcd)),
            None => panel.series.push(Series {
                label: p.dynamics.clone(),
                points: vec![(p.steps as f64, p.fcd)],
                color: if p.dynamics == "plain" { 0 } else { 1 },
                line: LineKind::Solid,
            }),
        }
    }
    Figure {
        title: "Joint generation: FCD against steps".into(),
        x_label: "steps".into(),
        y_label: "FCD".into(),
        panels,
        columns: 2,
        axes: hee_eval::plot::Axes::LogLog,
    }
    .write_png(&png, 560, 420)?;
    let budgets = opts.out.join("budgets.csv");
    let header = "dataset,learner,budget,seed,status,epochs_done,final_recon_error,final_weight_norm,fcd,train_seconds";
    write_rows(&budgets, header, &r.summaries, RunSummary::cells)?;
    let curves = opts.out.join("learning-curves.csv");
    let header = "dataset,learner,budget,seed,epoch,recon_error,weight_norm,update_norm,seconds";
    write_rows(&curves, header, &r.curves, CurvePoint::cells)?;
    let relax = opts.out.join("relaxation.csv");
    let layers = r.relaxation.first().map_or(0, |x| x.z2.len());
    let mut header = "dataset,seed,start,steps".to_string();
    for l in 1..=layers {
        header.push_str(&format!(",z2_layer{l}"));
    }
    write_rows(&relax, &header, &r.relaxation, RelaxationRow::cells)?;
    let curves_png = opts.out.join("learning-curves.png");
    budgets::curves_figure(&r.curves).write_png(&curves_png, 560, 420)?;
    let mut written = vec![metrics, cls, steps, png, budgets, curves, curves_png, relax];
    for (name, imgs, shape) in &r.grids {
        let p = opts.out.join(format!("samples-{name}.png"));
        write_image_grid(&p, imgs, *shape, 10, 2, (0.0, 1.0))?;
        written.push(p);
    }
    Ok(written)
}
