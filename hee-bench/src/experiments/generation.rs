//! `hee reproduce generation` (first part of issue 17): marginal against
//! joint generation from HEE models trained with `hee train`'s defaults,
//! with the sample-quality metrics of hee-eval beside the held-out floor.
//!
//! Per data set and seed: a model is trained (`run-<data>-seed-<s>/`),
//! `n` samples are drawn by marginal (exact ancestral) generation and by
//! joint generation (the tuned adaptation rule, x₀ free, from x = 0), both
//! read out as A′₀(η₀), and each set is compared with the second half of
//! the held-out split in the features of a classifier trained on the
//! training split. `test-data` is the first half of the held-out split
//! against the same reference: the floor of every metric (the classifier
//! saw neither half; training images are not a fair floor, since its
//! features of them are not distributed like those of new images). Its
//! `nn_train_dist` is the held-out images' distance to their nearest
//! training image, the reference for memorisation. The negative-phase
//! baseline is not in this table yet.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use hee_core::faer::{Mat, MatRef};
use hee_core::Dynamics;
use hee_eval::classifier::{Classifier, ClassifierConfig};
use hee_eval::plot::{write_image_grid, Figure, LineKind, Panel, Series};
use hee_eval::report::{prepare_dir, write_rows};
use hee_eval::sample_quality::{frechet_distance, kid, nearest_distances, precision_recall};

use super::RunOptions;
use crate::generate::{free_kernel, generate, readout, GenerateOptions, Mode, Readout};
use crate::train::{TrainConfig, Training};
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
    /// The row of `metrics.csv`.
    fn cells(&self) -> Vec<String> {
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
        ]
    }
}

impl StepsRow {
    /// The row of `joint-steps.csv`.
    fn cells(&self) -> Vec<String> {
        let p = self;
        let (steps, tau, fcd) = (
            p.steps.to_string(),
            format!("{:.5}", p.tau),
            format!("{:.4}", p.fcd),
        );
        vec![p.dataset.clone(), p.dynamics.clone(), steps, tau, fcd]
    }
}

/// A grid's name, its images (row-major) and their shape.
pub type Grid = (String, Vec<Vec<f64>>, (usize, usize));

/// Everything the experiment measured.
#[derive(Debug, Clone)]
pub struct Generation {
    pub rows: Vec<MetricsRow>,
    /// Test accuracy of each data set's feature classifier.
    pub classifier_accuracy: Vec<(String, f64)>,
    /// Up to 100 samples per (data set, method) of the first seed, for grids.
    pub grids: Vec<Grid>,
    /// FCD of joint samples against steps (first seed).
    pub joint_steps: Vec<StepsRow>,
}

fn to_f64(m: MatRef<'_, f32>) -> Mat<f64> {
    Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)] as f64)
}

/// Trains the classifier, the models, generates and measures.
pub fn run(opts: &RunOptions, progress: &mut dyn FnMut(&str)) -> Result<Generation, CliError> {
    let datasets: &[&str] = if opts.quick {
        &["mnist"]
    } else {
        &["mnist", "fashion"]
    };
    let (epochs, n, steps) = if opts.quick {
        (3, 500, 400)
    } else {
        (20, 2000, 2000)
    };
    let checkpoints: Vec<usize> = [25, 50, 100, 200, 400, 1000, 2000, 4000]
        .into_iter()
        .filter(|&c| c <= 2 * steps)
        .collect();
    let mut steps_rows = Vec::new();
    let mut out = Generation {
        rows: Vec::new(),
        classifier_accuracy: Vec::new(),
        grids: Vec::new(),
        joint_steps: Vec::new(),
    };
    let mut grids = Vec::new();
    for &name in datasets {
        let mut base = TrainConfig {
            epochs,
            ..TrainConfig::default()
        };
        base.data.spec = name.into();
        let data = crate::train::load_data(&base)?;
        let labels = |l: &Option<Vec<u8>>| -> Result<Vec<usize>, CliError> {
            l.as_ref()
                .map(|v| v.iter().map(|&c| c as usize).collect())
                .ok_or_else(|| CliError::Usage(format!("generation: {name} has no labels")))
        };
        let (train, test) = (to_f64(data.train.as_ref()), to_f64(data.test.as_ref()));
        let cls_cfg = ClassifierConfig {
            epochs: if opts.quick { 6 } else { 12 },
            seed: opts.seed,
            ..ClassifierConfig::default()
        };
        let classes = data.classes.unwrap_or(10);
        let cls = Classifier::train(
            train.as_ref(),
            &labels(&data.train_labels)?,
            classes,
            &cls_cfg,
        )?;
        let acc = cls.accuracy(test.as_ref(), &labels(&data.test_labels)?)?;
        progress(&format!(
            "generation: {name} feature classifier, test accuracy {acc:.4}"
        ));
        out.classifier_accuracy.push((name.to_string(), acc));
        // The reference: the second half of the held-out split; the first
        // half is the floor's set. The classifier saw neither (its features
        // of training images are not distributed like those of new images).
        let half = test.nrows() / 2;
        let reference = test.as_ref().subrows(half, test.nrows() - half).to_owned();
        let f_test = cls.features(reference.as_ref())?;
        let shape = data.image_shape.unwrap_or((1, data.dim()));
        // The floor: held-out against training images.
        // `x` is compared with the held-out split in the classifier's
        // features; `queries` are measured against the training images.
        let measure = |method: &str,
                       seed: u64,
                       x: &Mat<f64>,
                       queries: &Mat<f64>,
                       train_s: f64,
                       sample_s: f64|
         -> Result<MetricsRow, CliError> {
            let f = cls.features(x.as_ref())?;
            let k = kid(
                f.as_ref(),
                f_test.as_ref(),
                10,
                (x.nrows().min(f_test.nrows()) / 2).max(2),
                seed,
            )?;
            let pr = precision_recall(f_test.as_ref(), f.as_ref(), 3)?;
            let nn = nearest_distances(queries.as_ref(), train.as_ref())?;
            Ok(MetricsRow {
                dataset: name.to_string(),
                method: method.to_string(),
                seed,
                fcd: frechet_distance(f.as_ref(), f_test.as_ref())?,
                kid: k.value,
                kid_se: k.se,
                precision: pr.precision,
                recall: pr.recall,
                nn_train_dist: nn.iter().sum::<f64>() / nn.len() as f64,
                train_seconds: train_s,
                sample_seconds: sample_s,
            })
        };
        let mut push = |row: MetricsRow, progress: &mut dyn FnMut(&str)| {
            progress(&format!(
                "generation: {name} {:<12} seed {}: FCD {:.3}, KID {:.4} ± {:.4}, precision {:.3}, recall {:.3}, nn-train {:.3}",
                row.method, row.seed, row.fcd, row.kid, row.kid_se, row.precision, row.recall, row.nn_train_dist
            ));
            out.rows.push(row);
        };
        // The floor: held-out images (the first half) against the
        // reference, as samples are; memorisation's reference: their
        // distance to the nearest training image.
        let floor_set = test.as_ref().subrows(0, n.min(half)).to_owned();
        push(
            measure("test-data", opts.seed, &floor_set, &floor_set, 0.0, 0.0)?,
            progress,
        );
        for s in 0..opts.seeds.max(1) as u64 {
            let seed = opts.seed + s;
            let dir = opts.out.join(format!("run-{name}-seed-{seed}"));
            let mut cfg = base.clone();
            cfg.seed = seed;
            let _ = std::fs::remove_dir_all(&dir);
            let t0 = Instant::now();
            let mut t = Training::start(cfg, &dir)?;
            t.run(&AtomicBool::new(false), &mut |_| {})?;
            let train_s = t0.elapsed().as_secs_f64();
            let recon = t.curve().last().map_or(f64::NAN, |r| r.recon_error);
            progress(&format!("generation: {name} seed {seed}: trained {epochs} epochs in {train_s:.1} s, held-out error {recon:.2}"));
            if s == 0 {
                // FCD of joint samples against the number of steps, both
                // kernels, the chains continued from one checkpoint to the
                // next (the same run as the joint row at `steps`).
                let cfg = t.config.neural()?;
                for dynamics in ["plain", "adaptation"] {
                    let k = free_kernel(
                        cfg,
                        &t.model,
                        Mat::<f32>::zeros(n, t.model.size(0)).as_ref(),
                        dynamics,
                        None,
                    )?;
                    let mut chains = k.init(&t.model, None, None, n, seed)?;
                    let mut done = 0;
                    for &at in &checkpoints {
                        while done < at {
                            k.step(&t.model, &mut chains)?;
                            done += 1;
                        }
                        let x = readout(
                            &t.model,
                            chains.state.x(),
                            chains.state.eta(),
                            Readout::Mean,
                        )?;
                        let f = cls.features(to_f64(x.as_ref()).as_ref())?;
                        let fcd = frechet_distance(f.as_ref(), f_test.as_ref())?;
                        steps_rows.push(StepsRow {
                            dataset: name.to_string(),
                            dynamics: dynamics.to_string(),
                            steps: at,
                            tau: at as f64 * k.config.dt / k.config.tau,
                            fcd,
                        });
                    }
                    progress(&format!(
                        "generation: {name} joint FCD against steps ({dynamics}): {}",
                        steps_rows
                            .iter()
                            .rev()
                            .take(checkpoints.len())
                            .rev()
                            .map(|r| format!("{}: {:.2}", r.steps, r.fcd))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            for (method, mode) in [("hee-marginal", Mode::Marginal), ("hee-joint", Mode::Joint)] {
                let g = generate(&GenerateOptions {
                    model_dir: dir.clone(),
                    mode,
                    n,
                    steps,
                    dynamics: "adaptation".into(),
                    dt: None,
                    readout: Readout::Mean,
                    seed,
                    out: dir.clone(),
                })?;
                let x = to_f64(g.samples.as_ref());
                push(
                    measure(method, seed, &x, &x, train_s, g.settings.seconds)?,
                    progress,
                );
                if s == 0 {
                    let imgs = (0..x.nrows().min(100))
                        .map(|j| (0..x.ncols()).map(|i| x[(j, i)]).collect())
                        .collect();
                    grids.push((format!("{name}-{method}"), imgs, shape));
                }
            }
        }
    }
    out.grids = grids;
    out.joint_steps = steps_rows;
    Ok(out)
}

/// Writes `metrics.csv`, `classifier.csv` and one sample grid per data set
/// and method into `opts.out`.
pub fn write(opts: &RunOptions, r: &Generation) -> Result<Vec<PathBuf>, CliError> {
    prepare_dir(&opts.out)?;
    let metrics = opts.out.join("metrics.csv");
    let header = "dataset,method,seed,fcd,kid,kid_se,precision,recall,nn_train_dist,train_seconds,sample_seconds";
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
    let mut written = vec![metrics, cls, steps, png];
    for (name, imgs, shape) in &r.grids {
        let p = opts.out.join(format!("samples-{name}.png"));
        write_image_grid(&p, imgs, *shape, 10, 2, (0.0, 1.0))?;
        written.push(p);
    }
    Ok(written)
}

/// Runs `hee reproduce generation` and writes its files (see [`super::Entry`]).
pub fn reproduce(
    opts: &RunOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<PathBuf>, CliError> {
    write(opts, &run(opts, progress)?)
}
