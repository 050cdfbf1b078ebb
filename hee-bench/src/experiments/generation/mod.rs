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

use std::path::{Path, PathBuf};

use hee_core::faer::{Mat, MatRef};
use hee_core::Dynamics;
use hee_eval::classifier::{Classifier, ClassifierConfig};
use hee_eval::sample_quality::{
    frechet_distance, kid, nearest_distances, precision_recall, recognisability,
};

use super::RunOptions;
use crate::generate::{free_kernel, generate, readout, GenerateOptions, Mode, Readout};

use crate::train::{TrainConfig, Training};
use crate::CliError;

/// The class probability from which the classifier is confident of a sample.
pub const CONFIDENT: f64 = 0.9;

mod budgets;
mod relaxation;
mod report;
pub use budgets::{CurvePoint, RunSummary};
pub use relaxation::RelaxationRow;
pub use report::{write, MetricsRow, StepsRow};

/// A grid's name, its images (row-major) and their shape.
pub type Grid = (String, Vec<Vec<f64>>, (usize, usize));

/// Sampling budgets (inference steps per parameter update) at which HEE
/// and the baseline are compared; 1 is `hee train`'s default.
pub const BUDGETS: &[usize] = &[1, 5, 20];

/// Everything the experiment measured.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Learning curves of both learners at every budget and seed.
    pub curves: Vec<CurvePoint>,
    /// How each (learner, budget, seed) run ended.
    pub summaries: Vec<RunSummary>,
    /// How far the training chains are from their stationary law when the
    /// rule reads them (first seed, default run).
    pub relaxation: Vec<RelaxationRow>,
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

/// `hee generate`'s options as the experiment uses them: the tuned
/// adaptation rule for joint and complete, A′₀(η₀) read out.
fn gen_options(dir: &Path, mode: Mode, n: usize, steps: usize, seed: u64) -> GenerateOptions {
    GenerateOptions {
        model_dir: dir.to_path_buf(),
        mode,
        n,
        steps,
        dynamics: if mode == Mode::Marginal {
            "exact"
        } else {
            "adaptation"
        }
        .into(),
        dt: None,
        readout: Readout::Mean,
        seed,
        out: dir.to_path_buf(),
    }
}

/// The first `k` rows of `x`, as images for a grid.
fn first_images(x: &Mat<f64>, k: usize) -> Vec<Vec<f64>> {
    (0..x.nrows().min(k))
        .map(|j| (0..x.ncols()).map(|i| x[(j, i)]).collect())
        .collect()
}

/// FCD of joint samples against the number of steps, for both kernels:
/// `n` chains from x = 0 continued from one checkpoint to the next (the
/// adaptation chains are the joint row's run at its step count).
#[allow(clippy::too_many_arguments)]
fn joint_curve(
    t: &Training,
    cls: &Classifier,
    f_test: MatRef<'_, f64>,
    name: &str,
    n: usize,
    seed: u64,
    checkpoints: &[usize],
    rows: &mut Vec<StepsRow>,
    progress: &mut dyn FnMut(&str),
) -> Result<(), CliError> {
    let cfg = t.config.neural()?;
    for dynamics in ["plain", "adaptation"] {
        let zeros = Mat::<f32>::zeros(n, t.model.size(0));
        let k = free_kernel(cfg, &t.model, zeros.as_ref(), dynamics, None)?;
        let mut chains = k.init(&t.model, None, None, n, seed)?;
        let mut done = 0;
        let mut line = Vec::new();
        for &at in checkpoints {
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
            let fcd = frechet_distance(f.as_ref(), f_test)?;
            line.push(format!("{at}: {fcd:.2}"));
            rows.push(StepsRow {
                dataset: name.to_string(),
                dynamics: dynamics.to_string(),
                steps: at,
                tau: at as f64 * k.config.dt / k.config.tau,
                fcd,
            });
        }
        progress(&format!(
            "generation: {name} joint FCD against steps ({dynamics}): {}",
            line.join(", ")
        ));
    }
    Ok(())
}

/// Held-out bits/dim of a trained model by forward AIS on the first
/// dequantised test images: a cheaper setting than `hee reproduce
/// likelihood`'s (whose BDMC gap calibrates it), 200 images in full mode.
fn test_bpd(
    t: &Training,
    images: MatRef<'_, f32>,
    quick: bool,
    seed: u64,
) -> Result<f64, CliError> {
    let (n, steps) = if quick { (32, 100) } else { (200, 300) };
    let cfg = hee_eval::likelihood::ais::AisConfig {
        steps,
        chains: 4,
        seed,
        ..Default::default()
    };
    let x0 = images.subrows(0, n.min(images.nrows()));
    let (row, _) = crate::eval::estimate("hee", "test", &t.model, x0, &cfg, 0, true)?;
    Ok(row.bits_per_dim)
}

/// The budgets to train at: `opts.budgets`, or [`BUDGETS`] (`--quick`:
/// the first two); 1 (the main model, which every metric row comes from)
/// must be among them.
fn budgets_of(opts: &RunOptions) -> Result<Vec<usize>, CliError> {
    let default = if opts.quick { &BUDGETS[..2] } else { BUDGETS };
    let b = opts.budgets.clone().unwrap_or_else(|| default.to_vec());
    if !b.contains(&1) || b.contains(&0) {
        return Err(CliError::Usage(format!(
            "--budgets {b:?}: must include 1 (the default model) and be >= 1"
        )));
    }
    Ok(b)
}

/// Trains the classifier, the models, generates and measures.
pub fn run(opts: &RunOptions, progress: &mut dyn FnMut(&str)) -> Result<Generation, CliError> {
    let budgets = budgets_of(opts)?;
    let datasets: &[&str] = if opts.quick {
        &["mnist"]
    } else {
        &["mnist", "fashion"]
    };
    let (epochs, n, steps) = if opts.quick {
        (3, 500, 400)
    } else {
        (6, 2000, 2000)
    };
    let checkpoints: Vec<usize> = [25, 50, 100, 200, 400, 1000, 2000, 4000]
        .into_iter()
        .filter(|&c| c <= 2 * steps)
        .collect();
    let mut steps_rows = Vec::new();
    let mut out = Generation {
        curves: Vec::new(),
        summaries: Vec::new(),
        relaxation: Vec::new(),
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
        // Held-out images dequantised, for the HEE models' bits/dim.
        let mut deq = base.clone();
        deq.data.scaling = "dequantized".into();
        let bpd_images = crate::train::load_data(&deq)?.test;
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
            let rec = recognisability(cls.probabilities(x.as_ref())?.as_ref(), CONFIDENT)?;
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
                test_bpd: f64::NAN,
                confident: rec.confident,
                class_entropy: rec.class_entropy,
            })
        };
        let mut push = |row: MetricsRow, progress: &mut dyn FnMut(&str)| {
            progress(&format!(
                "generation: {name} {:<12} seed {}: FCD {:.3}, KID {:.4} ± {:.4}, precision {:.3}, recall {:.3}, nn-train {:.3}, confident {:.3}, class entropy {:.2} bits",
                row.method, row.seed, row.fcd, row.kid, row.kid_se, row.precision, row.recall, row.nn_train_dist, row.confident, row.class_entropy
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
            for &k in &budgets {
                let cfg = budgets::config_at(&base, seed, k);
                // Budget 1 is `hee train`'s default schedule: the main model.
                let dir = if k == 1 {
                    opts.out.join(format!("run-{name}-seed-{seed}"))
                } else {
                    opts.out.join(format!("run-{name}-k{k}-seed-{seed}"))
                };
                let (t, train_s) = budgets::train_hee(cfg.clone(), &dir, name, &mut out.curves)?;
                let recon = t.curve().last().map_or(f64::NAN, |r| r.recon_error);
                progress(&format!("generation: {name} seed {seed}: HEE at {k} steps/update, {epochs} epochs in {train_s:.1} s, held-out error {recon:.2}"));
                let g = generate(&gen_options(&dir, Mode::Marginal, n, 0, seed))?;
                let x = to_f64(g.samples.as_ref());
                let mut marginal =
                    measure("hee-marginal", seed, &x, &x, train_s, g.settings.seconds)?;
                out.summaries.push(RunSummary {
                    dataset: name.to_string(),
                    learner: "hee".into(),
                    budget: k,
                    seed,
                    status: "finished".into(),
                    epochs_done: t.curve().len(),
                    final_recon_error: recon,
                    final_weight_norm: t.curve().last().map_or(f64::NAN, |r| r.weight_norm),
                    fcd: marginal.fcd,
                    train_seconds: train_s,
                });
                // At k = 5 also a baseline with a tenth of the learning
                // rates: is its trouble only the rate?
                let variants: &[(&str, f64)] = if k == 5 {
                    &[("baseline-ebm", 1.0), ("baseline-ebm-lr/10", 0.1)]
                } else {
                    &[("baseline-ebm", 1.0)]
                };
                let mut brow = None;
                let mut bgrid = None;
                for &(learner, scale) in variants {
                    let mut cfg = cfg.clone();
                    cfg.learning.lr_weights *= scale;
                    cfg.learning.lr_biases *= scale;
                    let b = budgets::train_baseline(cfg, learner, name, n, steps, &mut out.curves)?;
                    let last = b.baseline.curve.last();
                    let bx = b.samples.as_ref().map(|m| to_f64(m.as_ref()));
                    let row = match &bx {
                        Some(x) => measure(learner, seed, x, x, b.train_seconds, b.sample_seconds)?,
                        None => MetricsRow::missing(name, learner, seed, b.train_seconds),
                    };
                    let status = budgets::status_of(&b.baseline.status);
                    progress(&format!("generation: {name} seed {seed}: {learner} at {k} steps/update {status} in {:.1} s, held-out error {:.2}, FCD {:.2}", b.train_seconds, last.map_or(f64::NAN, |r| r.recon_error), row.fcd));
                    out.summaries.push(RunSummary {
                        dataset: name.to_string(),
                        learner: learner.into(),
                        budget: k,
                        seed,
                        status,
                        epochs_done: b.baseline.curve.len(),
                        final_recon_error: last.map_or(f64::NAN, |r| r.recon_error),
                        final_weight_norm: last.map_or(f64::NAN, |r| r.weight_norm),
                        fcd: row.fcd,
                        train_seconds: b.train_seconds,
                    });
                    if learner == "baseline-ebm" {
                        bgrid = bx;
                        brow = Some(row);
                    }
                }
                if k != 1 {
                    continue;
                }
                if s == 0 {
                    let r = relaxation::measure(&t, name, opts.quick)?;
                    progress(&format!(
                        "generation: {name} chain relaxation, z² per latent layer (1 = relaxed): {}",
                        r.iter()
                            .map(|r| format!("{} after {}: {:.2?}", r.start, r.steps, r.z2))
                            .collect::<Vec<_>>()
                            .join("; ")
                    ));
                    out.relaxation.extend(r);
                    if let Some(x) = &bgrid {
                        grids.push((format!("{name}-baseline-ebm"), first_images(x, 100), shape));
                    }
                    grids.push((format!("{name}-hee-marginal"), first_images(&x, 100), shape));
                    joint_curve(
                        &t,
                        &cls,
                        f_test.as_ref(),
                        name,
                        n,
                        seed,
                        &checkpoints,
                        &mut steps_rows,
                        progress,
                    )?;
                    let c = generate(&gen_options(&dir, Mode::Complete, 10, steps, seed))?;
                    if let (Some(o), Some(m)) = (&c.originals, &c.mask) {
                        let mut imgs = first_images(&to_f64(o.as_ref()), 10);
                        let seen: Vec<Vec<f64>> = imgs
                            .iter()
                            .map(|v| {
                                v.iter()
                                    .zip(m)
                                    .map(|(&p, &k)| if k { p } else { 0.0 })
                                    .collect()
                            })
                            .collect();
                        imgs.extend(seen);
                        imgs.extend(first_images(&to_f64(c.samples.as_ref()), 10));
                        grids.push((format!("{name}-completions"), imgs, shape));
                    }
                }
                let bpd = test_bpd(&t, bpd_images.as_ref(), opts.quick, seed)?;
                progress(&format!(
                    "generation: {name} seed {seed}: held-out {bpd:.4} bits/dim (AIS)"
                ));
                marginal.test_bpd = bpd;
                push(marginal, progress);
                let g = generate(&gen_options(&dir, Mode::Joint, n, steps, seed))?;
                let x = to_f64(g.samples.as_ref());
                let mut joint = measure("hee-joint", seed, &x, &x, train_s, g.settings.seconds)?;
                joint.test_bpd = bpd;
                push(joint, progress);
                if s == 0 {
                    grids.push((format!("{name}-hee-joint"), first_images(&x, 100), shape));
                }
                if let Some(row) = brow {
                    push(row, progress);
                }
            }
        }
    }
    out.grids = grids;
    out.joint_steps = steps_rows;
    Ok(out)
}

/// Runs `hee reproduce generation` and writes its files (see [`super::Entry`]).
pub fn reproduce(
    opts: &RunOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<PathBuf>, CliError> {
    write(opts, &run(opts, progress)?)
}
