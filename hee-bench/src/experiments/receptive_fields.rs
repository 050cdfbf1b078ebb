//! `hee reproduce receptive-fields`: trained with its local rule on
//! whitened natural-image patches, does an HEE model with a sparse first
//! latent layer learn localised, oriented, band-pass fields (claim 6), while
//! the same model with a gaussian first layer does not?
//!
//! Both models are trained with `hee train`'s machinery (a run folder each,
//! under `--out`): patches of the vendored photographs (or of any folder of
//! PNG photographs, `--data-dir`), contrast-normalised and ZCA-whitened;
//! layers [p², n₁, n₂] with n₁ ≥ p², f = identity (a linear generative map
//! from the first latent layer to the pixels, as in sparse coding). The
//! generative field of first-layer unit i is column i of W₀ mapped back to
//! pixel space through the inverse whitening; each is fitted with a Gabor
//! (hee_eval::receptive_fields).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use hee_eval::plot::{write_field_grid, Axes, Figure, LineKind, Panel, Series};
use hee_eval::receptive_fields::{
    fit_gabor, fraction_gabor, orientation_bins, pooling, GaborFit, Pooling,
};
use hee_eval::report::{prepare_dir, write_csv, write_rows};

use super::RunOptions;
use crate::train::{CurveRow, TrainConfig, Training};
use crate::CliError;

/// The two models compared.
pub const MODELS: [&str; 2] = ["sparse", "gaussian"];

/// One model's result.
#[derive(Debug, Clone)]
pub struct ModelResult {
    pub model: &'static str,
    pub fits: Vec<GaborFit>,
    /// Pixel-space fields, row-major p×p.
    pub fields: Vec<Vec<f64>>,
    pub pooling: Vec<Pooling>,
    pub curve: Vec<CurveRow>,
    pub minutes: f64,
}

/// Both models trained from one seed.
#[derive(Debug, Clone)]
pub struct SeedResult {
    pub seed: u64,
    pub models: Vec<ModelResult>,
}

/// Everything the experiment measured: one entry per seed, the first being
/// the headline run (fields, Gabor fits, pooling).
#[derive(Debug, Clone)]
pub struct ReceptiveFields {
    pub patch: usize,
    pub seeds: Vec<SeedResult>,
}

/// Run folder of `model` trained from the `index`-th seed: `run-<model>` for
/// the headline seed, `run-<model>-seed-<seed>` for the others.
pub fn run_dir(out: &Path, model: &str, index: usize, seed: u64) -> PathBuf {
    if index == 0 {
        out.join(format!("run-{model}"))
    } else {
        out.join(format!("run-{model}-seed-{seed}"))
    }
}

/// The training configuration of `model` (`sparse` or `gaussian`).
pub fn config(model: &str, quick: bool, seed: u64, data_dir: Option<&Path>) -> TrainConfig {
    let patch = 12;
    // The published runs' settings: σ fixed, the rule in natural
    // coordinates, Δt fixed (issue 18's defaults), with the changes below.
    let mut c = TrainConfig {
        seed,
        epochs: if quick { 3 } else { 60 },
        ..TrainConfig::issue_18()
    };
    c.data.spec = "natural".into();
    c.data.data_dir = data_dir
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    c.data.patch = patch;
    c.data.patches = 30_000;
    c.model.layers = vec![patch * patch, patch * patch, 32];
    c.model.nonlinearity = "identity".into();
    // Whitened patches ×3 against an observation noise σ₀ = 1: a signal-to-
    // noise ratio of up to 9 per dimension, with W₀ itself the dictionary.
    c.data.multiply = 3.0;
    let first = if model == "sparse" {
        "{kind=\"smooth-laplace\", sigma=3.0, lambda=3.0, delta=0.2}"
    } else {
        "{kind=\"gaussian\", sigma=3.0}"
    };
    c.set(&format!(
        "model.energies=[{{kind=\"gaussian\", sigma=1.0}}, {first}, {{kind=\"gaussian\", sigma=1.0}}]"
    ))
    .expect("a valid built-in configuration");
    c.model.init_scale = 1.0;
    // The kink of the sparse energy (curvature λ/δ = 15) sets Δt (and the
    // interneurons' K = 20 of the defaults).
    c.dynamics.dt = 0.01;
    // The published runs were made before per-example chains became the
    // default; their chains continue from minibatch to minibatch.
    c.learning.persistent_latents = false;
    // Plain Langevin, as the committed results were made with.
    c.dynamics.kind = "plain".into();
    c.learning.batch = 100;
    // Two equal chunks of the batch, one per core.
    c.dynamics.chunk = 50;
    c.learning.warmup_steps = 10;
    c.learning.learning_steps = 10;
    c.learning.lr_weights = 0.05;
    c.learning.lr_biases = 0.0;
    c.learning.eval_records = 200;
    c
}

/// Pixel-space fields of a trained model, their Gabor fits and the pooling.
pub fn analyse(t: &Training, model: &'static str, minutes: f64) -> Result<ModelResult, CliError> {
    let p = t.config.data.patch;
    let w = t
        .data
        .whitening
        .as_ref()
        .ok_or_else(|| CliError::Usage("receptive-fields: the data are not whitened".into()))?;
    let w0 = t.model.weight(0);
    let d = w0.nrows();
    let fields: Vec<Vec<f64>> = (0..w0.ncols())
        .map(|i| {
            (0..d)
                .map(|r| {
                    (0..d)
                        .map(|k| w.dewhiten[(r, k)] as f64 * w0[(k, i)] as f64)
                        .sum()
                })
                .collect()
        })
        .collect();
    let fits: Vec<GaborFit> = fields.iter().map(|f| fit_gabor(f, p)).collect();
    let w1 = t.model.weight(1);
    let n2 = w1.ncols();
    let flat: Vec<f64> = (0..w1.nrows())
        .flat_map(|i| (0..n2).map(move |k| (i, k)))
        .map(|(i, k)| w1[(i, k)] as f64)
        .collect();
    Ok(ModelResult {
        model,
        pooling: pooling(&flat, n2, &fits, 4),
        fits,
        fields,
        curve: t.curve().to_vec(),
        minutes,
    })
}

/// Trains and analyses both models from `seeds` consecutive seeds, starting
/// at `opts.seed` (one seed: the headline experiment; three: the stability
/// check of the README).
pub fn run(
    opts: &RunOptions,
    data_dir: Option<&Path>,
    seeds: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<ReceptiveFields, CliError> {
    if seeds == 0 {
        return Err(CliError::Usage("--seeds: must be at least 1".into()));
    }
    prepare_dir(&opts.out)?;
    let never = AtomicBool::new(false);
    let mut patch = 0;
    let mut out = Vec::new();
    for index in 0..seeds {
        let seed = opts.seed.wrapping_add(index as u64);
        let mut models = Vec::new();
        for name in MODELS {
            let cfg = config(name, opts.quick, seed, data_dir);
            patch = cfg.data.patch;
            let dir = run_dir(&opts.out, name, index, seed);
            // A fresh run each time: an earlier run folder is replaced.
            let _ = std::fs::remove_dir_all(&dir);
            let t0 = Instant::now();
            let mut t = Training::start(cfg, &dir)?;
            t.run(&never, &mut |e| {
                if let crate::train::Event::Epoch(r) = e {
                    progress(&format!(
                        "receptive-fields: seed {seed} {name:<8} epoch {:>3}: recon {:.4}, |dU/dx|^2 {:.3}, {:.0} s",
                        r.epoch, r.recon_error, r.mean_sq_grad, r.seconds
                    ));
                }
            })?;
            let minutes = t0.elapsed().as_secs_f64() / 60.0;
            let r = analyse(&t, name, minutes)?;
            progress(&format!(
                "receptive-fields: seed {seed} {name:<8} fraction Gabor-like {:.2}, orientation bins {:?}",
                fraction_gabor(&r.fits),
                orientation_bins(&r.fits)
            ));
            models.push(r);
        }
        out.push(SeedResult { seed, models });
    }
    Ok(ReceptiveFields { patch, seeds: out })
}

/// Writes `gabor.csv`, `summary.csv`, `pooling.csv`, the field grids
/// (`fields-<model>.png`, sorted by r²) and the pooling grid
/// (`pooling-sparse.png`: each row one second-layer unit's strongest
/// Gabor-like inputs).
pub fn write(opts: &RunOptions, r: &ReceptiveFields) -> Result<Vec<PathBuf>, CliError> {
    let mut written = Vec::new();
    let head = r
        .seeds
        .first()
        .ok_or_else(|| CliError::Usage("receptive-fields: no seed was run".into()))?;
    let gabor = opts.out.join("gabor.csv");
    let header = "model,unit,r2,x0,y0,orientation,frequency,phase,sigma_x,sigma_y";
    let fits = head
        .models
        .iter()
        .flat_map(|m| m.fits.iter().enumerate().map(move |(i, g)| (m.model, i, g)));
    write_rows(&gabor, header, fits, |(model, i, g)| {
        vec![
            model.to_string(),
            i.to_string(),
            format!("{:.4}", g.r2),
            format!("{:.3}", g.x0),
            format!("{:.3}", g.y0),
            format!("{:.4}", g.orientation),
            format!("{:.4}", g.frequency),
            format!("{:.4}", g.phase),
            format!("{:.3}", g.sigma_x),
            format!("{:.3}", g.sigma_y),
        ]
    })?;
    written.push(gabor);
    let summary = opts.out.join("summary.csv");
    let rows: Vec<Vec<String>> = r
        .seeds
        .iter()
        .flat_map(|s| s.models.iter().map(move |m| (s.seed, m)))
        .map(|(seed, m)| {
            vec![
                m.model.to_string(),
                seed.to_string(),
                format!("{:.4}", fraction_gabor(&m.fits)),
                orientation_bins(&m.fits)
                    .iter()
                    .filter(|&&b| b > 0)
                    .count()
                    .to_string(),
                format!("{:.4}", m.curve.last().map_or(f64::NAN, |c| c.recon_error)),
                format!("{:.2}", m.minutes),
            ]
        })
        .collect();
    write_csv(
        &summary,
        &[
            "model",
            "seed",
            "fraction_gabor",
            "orientation_bins_covered",
            "final_recon_error",
            "minutes",
        ],
        &rows,
    )?;
    written.push(summary);
    let pool = opts.out.join("pooling.csv");
    let header = "model,unit,strongest_inputs,orientation_similarity,position_spread";
    let units = head
        .models
        .iter()
        .flat_map(|m| m.pooling.iter().map(move |p| (m.model, p)));
    write_rows(&pool, header, units, |(model, p)| {
        let inputs: Vec<String> = p.inputs.iter().map(|i| i.to_string()).collect();
        vec![
            model.to_string(),
            p.unit.to_string(),
            inputs.join(" "),
            format!("{:.4}", p.orientation_similarity),
            format!("{:.3}", p.position_spread),
        ]
    })?;
    written.push(pool);
    for m in &head.models {
        let mut order: Vec<usize> = (0..m.fits.len()).collect();
        order.sort_by(|&a, &b| m.fits[b].r2.total_cmp(&m.fits[a].r2));
        let sorted: Vec<Vec<f64>> = order.iter().map(|&i| m.fields[i].clone()).collect();
        let png = opts.out.join(format!("fields-{}.png", m.model));
        write_field_grid(&png, &sorted, r.patch, 16, 4)?;
        written.push(png);
        if m.model == "sparse" {
            let mut grid = Vec::new();
            for p in m.pooling.iter().take(16) {
                for k in 0..4 {
                    grid.push(
                        p.inputs
                            .get(k)
                            .map_or(vec![0.0; r.patch * r.patch], |&i| m.fields[i].clone()),
                    );
                }
            }
            let png = opts.out.join("pooling-sparse.png");
            write_field_grid(&png, &grid, r.patch, 4, 4)?;
            written.push(png);
        }
        // The run folder holds curve.csv and curve.png of this model.
        written.push(run_dir(&opts.out, m.model, 0, head.seed).join("curve.png"));
    }
    let seeds = opts.out.join("seeds.png");
    seeds_figure(r).write_png(&seeds, 480, 320)?;
    written.push(seeds);
    Ok(written)
}

/// Held-out reconstruction error against epoch, one curve per seed, one
/// panel per model: the stability check.
pub fn seeds_figure(r: &ReceptiveFields) -> Figure {
    let panels = MODELS
        .iter()
        .map(|&name| Panel {
            title: format!("{name} first layer"),
            series: r
                .seeds
                .iter()
                .enumerate()
                .filter_map(|(k, s)| {
                    let m = s.models.iter().find(|m| m.model == name)?;
                    Some(Series {
                        label: format!("seed {}", s.seed),
                        points: m
                            .curve
                            .iter()
                            .map(|c| (c.epoch as f64, c.recon_error))
                            .collect(),
                        color: k,
                        line: LineKind::Solid,
                    })
                })
                .collect(),
        })
        .collect();
    Figure {
        title: "held-out reconstruction error, per seed".into(),
        x_label: "epoch".into(),
        y_label: "|x0 - A0'(eta0)|^2".into(),
        panels,
        columns: 2,
        axes: Axes::Linear,
    }
}

/// Runs `hee reproduce receptive-fields` and writes its files (see [`super::Entry`]).
pub fn reproduce(
    opts: &RunOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<PathBuf>, CliError> {
    let r = run(opts, opts.data_dir.as_deref(), opts.seeds, progress)?;
    write(opts, &r)
}
