//! `hee generate`: samples from a trained run, by marginal (ancestral) or
//! joint generation, or completions of held-out images with part of x₀
//! clamped (spec §6). Writes a PNG grid, the raw samples as
//! `samples.safetensors` (tensor `samples`, n × n₀, f32; for completions
//! also `originals` and `mask`) and the effective settings as
//! `settings.toml`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hee_core::faer::{Mat, MatRef};
use hee_core::generate::{ancestral, joint};
use hee_core::{Adaptation, CurvatureRange, Dynamics, HeeModel, NeuralConfig, Observed};
use hee_eval::plot::write_image_grid;
use hee_eval::report::{prepare_dir, write_atomic};
use safetensors::tensor::{Dtype, TensorView};
use serde::Serialize;

use crate::train::{load_data, load_run};
use crate::CliError;

/// How samples are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// x_L ~ p(x_L), then each layer given the one above (exact draws).
    Marginal,
    /// Every layer, x₀ included, run by the dynamics from x = 0.
    Joint,
    /// The top half of held-out images clamped, the rest sampled.
    Complete,
}

/// What is read out of layer 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readout {
    /// The sampled x₀.
    Sample,
    /// Its conditional mean A′₀(η₀) given the layer above.
    Mean,
}

/// Settings of one `hee generate`.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub model_dir: PathBuf,
    pub mode: Mode,
    pub n: usize,
    /// Neuron steps (joint and complete).
    pub steps: usize,
    /// `plain` or `adaptation` (the tuned rule, x₀'s curvature included).
    pub dynamics: String,
    /// Δt of joint and complete generation; by default the run's, lowered
    /// to 0.1 τ/λ_max of the joint Hessian (x₀ included) at the start.
    pub dt: Option<f64>,
    pub readout: Readout,
    pub seed: u64,
    pub out: PathBuf,
}

/// The effective settings, as written to `settings.toml`.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub model: String,
    pub mode: String,
    pub n: usize,
    pub steps: usize,
    pub dynamics: String,
    pub dt: f64,
    pub tau: f64,
    pub tau_a: f64,
    pub g: f64,
    pub readout: String,
    pub seed: u64,
    /// Per layer, the fraction of marginal draws taken by the inverse CDF.
    pub inverse_cdf_fraction: Vec<f64>,
    pub seconds: f64,
}

/// What [`generate`] made: the read-out samples (n × n₀) and the settings.
#[derive(Debug, Clone)]
pub struct Generated {
    pub samples: Mat<f32>,
    /// The held-out images completed (complete mode).
    pub originals: Option<Mat<f32>>,
    /// Which units of x₀ were clamped (complete mode).
    pub mask: Option<Vec<bool>>,
    pub settings: Settings,
    /// Rows × columns of one image, when the data are images.
    pub shape: Option<(usize, usize)>,
    /// The data's value range, for the grid.
    pub range: (f64, f64),
}

/// Generates from the run in `opts.model_dir`.
pub fn generate(opts: &GenerateOptions) -> Result<Generated, CliError> {
    if opts.n == 0 {
        return Err(CliError::Usage("generate: --n must be at least 1".into()));
    }
    let (config, model) = load_run(&opts.model_dir)?;
    let data = load_data(&config)?;
    let n0 = model.size(0);
    let t0 = Instant::now();
    let mut settings = Settings {
        model: opts.model_dir.display().to_string(),
        mode: format!("{:?}", opts.mode).to_lowercase(),
        n: opts.n,
        steps: if opts.mode == Mode::Marginal {
            0
        } else {
            opts.steps
        },
        dynamics: if opts.mode == Mode::Marginal {
            "exact".into()
        } else {
            opts.dynamics.clone()
        },
        dt: 0.0,
        tau: 0.0,
        tau_a: 0.0,
        g: 0.0,
        readout: format!("{:?}", opts.readout).to_lowercase(),
        seed: opts.seed,
        inverse_cdf_fraction: Vec::new(),
        seconds: 0.0,
    };
    let (mut originals, mut mask) = (None, None);
    let (x, eta) = match opts.mode {
        Mode::Marginal => {
            let s = ancestral(&model, opts.n, opts.seed)?;
            settings.inverse_cdf_fraction = s.fallback.clone();
            (s.x, s.eta)
        }
        Mode::Joint | Mode::Complete => {
            let cfg = config.neural()?;
            settings.tau = cfg.tau;
            let start = match opts.mode {
                Mode::Complete => {
                    if opts.n > data.test.nrows() {
                        return Err(CliError::Usage(format!(
                            "generate: --n {} is more than the {} held-out records to complete",
                            opts.n,
                            data.test.nrows()
                        )));
                    }
                    let m = seen_half(n0, data.image_shape);
                    let orig = data.test.as_ref().subrows(0, opts.n).to_owned();
                    let start =
                        Mat::from_fn(opts.n, n0, |j, i| if m[i] { orig[(j, i)] } else { 0.0 });
                    originals = Some(orig);
                    mask = Some(m);
                    start
                }
                _ => Mat::<f32>::zeros(opts.n, n0),
            };
            let kernel = free_kernel(cfg, &model, start.as_ref(), &opts.dynamics, opts.dt)?;
            settings.dt = kernel.config.dt;
            settings.tau_a = kernel.tau_a;
            settings.g = kernel.g;
            let chains = match &mask {
                None => joint(&kernel, &model, opts.n, opts.steps, opts.seed)?,
                Some(m) => {
                    let mut c =
                        kernel.init(&model, Some(start.as_ref()), None, opts.n, opts.seed)?;
                    let mut full = vec![false; model.total_size()];
                    full[..n0].copy_from_slice(m);
                    c.state.clamp_units(&model, &full)?;
                    for _ in 0..opts.steps {
                        kernel.step(&model, &mut c)?;
                    }
                    c
                }
            };
            (chains.state.x().to_owned(), chains.state.eta().to_owned())
        }
    };
    let mut samples = readout(&model, x.as_ref(), eta.as_ref(), opts.readout)?;
    if let (Some(m), Some(o)) = (&mask, &originals) {
        // The seen half stays the data, whatever the readout.
        for j in 0..samples.nrows() {
            for i in (0..n0).filter(|&i| m[i]) {
                samples[(j, i)] = o[(j, i)];
            }
        }
    }
    settings.seconds = t0.elapsed().as_secs_f64();
    let (lo, hi) = data.value_range();
    Ok(Generated {
        samples,
        originals,
        mask,
        settings,
        shape: data.image_shape,
        range: (lo as f64, hi as f64),
    })
}

/// The kernel of joint or complete generation: `cfg` (the run's) with x₀
/// released and, unless `dt` is given, Δt lowered to 0.1 τ/λ_max of ∇²U
/// over every unit at the first row of `start` (x₀, latents 0) — x₀ now
/// moves, and the joint's stiffest direction, which training (x₀ clamped)
/// never had to respect, bounds the step. `dynamics` is `plain` or
/// `adaptation` (the tuned rule, x₀'s curvature included).
pub fn free_kernel(
    mut cfg: NeuralConfig,
    model: &HeeModel<f32>,
    start: MatRef<'_, f32>,
    dynamics: &str,
    dt: Option<f64>,
) -> Result<Adaptation, CliError> {
    cfg.observed = Observed::Free;
    let n0 = model.size(0);
    let x = (0..model.total_size())
        .map(|i| if i < n0 { start[(0, i)] as f64 } else { 0.0 })
        .collect::<Vec<_>>();
    let all: Vec<usize> = (0..model.total_size()).collect();
    let range = CurvatureRange::over_units(model, &x, &all)?;
    cfg.dt = dt.unwrap_or(cfg.dt.min(0.1 * cfg.tau / range.lambda_max));
    match dynamics {
        "plain" => Ok(Adaptation::new(cfg, cfg.tau, 0.0)?),
        "adaptation" => Ok(Adaptation::for_model(cfg, model, start, None)?),
        other => Err(CliError::Usage(format!(
            "generate: --dynamics '{other}': expected plain or adaptation"
        ))),
    }
}

/// Layer 0 of the states: the sample itself, or A′₀(η₀).
pub fn readout(
    model: &HeeModel<f32>,
    x: MatRef<'_, f32>,
    eta: MatRef<'_, f32>,
    readout: Readout,
) -> Result<Mat<f32>, CliError> {
    let n0 = model.size(0);
    Ok(match readout {
        Readout::Sample => x.subcols(0, n0).to_owned(),
        Readout::Mean => model.layer_exact_a_prime(0, eta.subcols(0, n0))?,
    })
}

/// The units of x₀ clamped for a completion: the top half of the rows of
/// an image, or the first half of the values otherwise.
pub fn seen_half(n0: usize, shape: Option<(usize, usize)>) -> Vec<bool> {
    let cut = match shape {
        Some((rows, cols)) if rows * cols == n0 => (rows / 2) * cols,
        _ => n0 / 2,
    };
    (0..n0).map(|i| i < cut).collect()
}

/// Writes the grid(s), `samples.safetensors` and `settings.toml` into
/// `out`; returns their paths.
pub fn write(out: &Path, g: &Generated) -> Result<Vec<PathBuf>, CliError> {
    prepare_dir(out)?;
    let mut written = Vec::new();
    let mut put = |name: &str, m: MatRef<'_, f32>| -> Result<(), CliError> {
        if let Some(shape) = g.shape {
            let rows: Vec<Vec<f64>> = (0..m.nrows().min(100))
                .map(|j| (0..m.ncols()).map(|i| m[(j, i)] as f64).collect())
                .collect();
            let p = out.join(name);
            write_image_grid(&p, &rows, shape, 10, 2, g.range)?;
            written.push(p);
        }
        Ok(())
    };
    put("samples.png", g.samples.as_ref())?;
    if let Some(o) = &g.originals {
        put("originals.png", o.as_ref())?;
    }
    let path = out.join("samples.safetensors");
    let mut tensors = vec![(
        "samples".to_string(),
        Dtype::F32,
        g.samples.as_ref().to_owned(),
    )];
    if let Some(o) = &g.originals {
        tensors.push(("originals".to_string(), Dtype::F32, o.clone()));
    }
    let bytes: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(n, d, m)| {
            let mut b = Vec::with_capacity(4 * m.nrows() * m.ncols());
            for j in 0..m.nrows() {
                for i in 0..m.ncols() {
                    b.extend_from_slice(&m[(j, i)].to_le_bytes());
                }
            }
            (n, d, vec![m.nrows(), m.ncols()], b)
        })
        .chain(g.mask.iter().map(|m| {
            let b: Vec<u8> = m.iter().map(|&v| v as u8).collect();
            ("mask".to_string(), Dtype::U8, vec![m.len()], b)
        }))
        .collect();
    let views = bytes
        .iter()
        .map(|(n, d, s, b)| TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::Usage(format!("'{}': {e}", path.display())))?;
    let meta: HashMap<String, String> = [
        ("format".to_string(), "hee-samples".to_string()),
        ("mode".to_string(), g.settings.mode.clone()),
        ("readout".to_string(), g.settings.readout.clone()),
    ]
    .into();
    let st = safetensors::tensor::serialize(views, Some(meta))
        .map_err(|e| CliError::Usage(format!("'{}': {e}", path.display())))?;
    write_atomic(&path, &st)?;
    written.push(path);
    let path = out.join("settings.toml");
    let text = toml::to_string(&g.settings)
        .map_err(|e| CliError::Usage(format!("'{}': {e}", path.display())))?;
    write_atomic(&path, text.as_bytes())?;
    written.push(path);
    Ok(written)
}
