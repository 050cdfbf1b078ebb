//! `hee reproduce likelihood` (issue 18): exact and estimated log p(x₀)
//! per image, for models whose answer is known and for trained ones.
//!
//! * `linear-gaussian-*`: random linear-gaussian models on data simulated
//!   from them; `exact_nats` in closed form.
//! * `nonlinear-2d`: tanh, student-t latents, two latent units; `exact_nats`
//!   by grid quadrature over the latents.
//! * `ppca-hee-q*`: a linear-gaussian HEE with one latent layer of q units
//!   and fixed σ₀, trained by `hee train`'s local rule on MNIST: its exact
//!   test log-likelihood beside `optimum_nats`, the closed-form maximum
//!   likelihood of probabilistic PCA with the same fixed noise, fitted to
//!   the training split.
//! * `hee-mnist-seed-*`: the generation experiment's default model (same
//!   configuration, retrained here): AIS and prior IS on test images, the
//!   BDMC bounds on data simulated from it; beside the PPCA optima of its
//!   latent sizes (`ppca-optimum-q*`).
//!
//! Test images are the held-out split dequantised uniformly, (byte + u)/256
//! (`data.scaling = "dequantized"`), so that bits/dim = −log p/(D ln 2) + 8
//! is a density on [0, 1]^D of 8-bit data. The BDMC columns are on data
//! simulated from the model, not on the test images: their gap
//! `bdmc_upper − bdmc_lower` bounds the error of AIS with these settings on
//! data like the model's own.

use std::path::PathBuf;
use std::time::Instant;

use hee_core::faer::{Mat, MatRef};
use hee_core::generate::ancestral;
use hee_core::model::log_joint::LogJoint;
use hee_core::reference::linear_gaussian::{mean_log_pdf, ppca_fixed_noise, LinearGaussian};
use hee_core::{BaseEnergy, HeeModel, LayerSpec, Nonlinearity, Real};
use hee_eval::likelihood::ais::AisConfig;
use hee_eval::likelihood::grid;
use hee_eval::report::{prepare_dir, write_rows};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::RunOptions;
use crate::train::config::EnergyConfig;
use crate::train::{load_data, TrainConfig, Training};
use crate::CliError;

pub use crate::eval::LikelihoodRow;

/// What the experiment measured.
#[derive(Debug, Clone)]
pub struct Likelihood {
    pub rows: Vec<LikelihoodRow>,
    /// The largest measured error of any normaliser table used.
    pub max_table_error: f64,
}

/// The settings of each mode.
struct Settings {
    ais: AisConfig,
    /// Test images of the trained models.
    images: usize,
    /// Simulated images for the BDMC bounds.
    simulated: usize,
    ppca_epochs: usize,
    hee_epochs: usize,
}

fn settings(opts: &RunOptions) -> Settings {
    let ais = AisConfig {
        seed: opts.seed,
        ..AisConfig::default()
    };
    if opts.quick {
        Settings {
            ais: AisConfig {
                steps: 200,
                chains: 4,
                ..ais
            },
            images: 32,
            simulated: 16,
            // As in full mode (8 s): CI checks the PPCA criterion itself.
            ppca_epochs: 10,
            hee_epochs: 3,
        }
    } else {
        Settings {
            ais: AisConfig {
                steps: 1000,
                chains: 4,
                ..ais
            },
            images: 1000,
            simulated: 64,
            ppca_epochs: 10,
            hee_epochs: 6,
        }
    }
}

fn to_f64(m: MatRef<'_, f32>) -> Mat<f64> {
    Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)] as f64)
}

/// [`crate::eval::estimate`] with bits/dim, reported on `progress`.
fn estimate<T: Real>(
    name: &str,
    dataset: &str,
    model: &HeeModel<T>,
    x0: MatRef<'_, T>,
    cfg: &AisConfig,
    simulated: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<(LikelihoodRow, f64), CliError> {
    let out = crate::eval::estimate(name, dataset, model, x0, cfg, simulated, true)?;
    progress(&format!(
        "likelihood: {name}: done in {:.1} s",
        out.0.seconds
    ));
    Ok(out)
}

fn gaussian_model(seed: u64, sizes: &[usize], sigmas: &[f64]) -> Result<HeeModel<f64>, CliError> {
    let specs: Vec<LayerSpec> = sizes
        .iter()
        .zip(sigmas)
        .map(|(&size, &sigma)| LayerSpec {
            size,
            energy: BaseEnergy::Gaussian { sigma },
        })
        .collect();
    let mut m = HeeModel::<f64>::new(&specs, Nonlinearity::Identity)?;
    m.randomize_weights(&mut ChaCha8Rng::seed_from_u64(seed), 2.0);
    Ok(m)
}

/// The known-answer models: their rows.
fn known_answers(
    s: &Settings,
    progress: &mut dyn FnMut(&str),
) -> Result<(Vec<LikelihoodRow>, f64), CliError> {
    let mut rows = Vec::new();
    let mut table_error: f64 = 0.0;
    let n = if s.images >= 100 { 100 } else { 20 };
    for k in 0..3u64 {
        let m = gaussian_model(k, &[32, 8, 2], &[0.3, 1.0, 1.0])?;
        let x0 = ancestral(&m, n, 1000 + k)?
            .x
            .as_ref()
            .subcols(0, 32)
            .to_owned();
        let (mut row, _) = estimate(
            &format!("linear-gaussian-{}", k + 1),
            "simulated",
            &m,
            x0.as_ref(),
            &s.ais,
            s.simulated,
            progress,
        )?;
        row.exact_nats = LinearGaussian::from_model(&m)?.mean_log_likelihood(x0.as_ref())?;
        // Simulated data are not 8-bit images: nats only.
        row.bits_per_dim = f64::NAN;
        rows.push(row);
    }
    let specs = [
        LayerSpec {
            size: 16,
            energy: BaseEnergy::Gaussian { sigma: 0.5 },
        },
        LayerSpec {
            size: 2,
            energy: BaseEnergy::StudentT {
                sigma: 2.0,
                weight: 1.0,
                nu: 3.0,
            },
        },
    ];
    let mut m = HeeModel::<f64>::new(&specs, Nonlinearity::Tanh)?;
    m.randomize_weights(&mut ChaCha8Rng::seed_from_u64(5), 6.0);
    let x0 = ancestral(&m, n, 11)?.x.as_ref().subcols(0, 16).to_owned();
    let (mut row, e) = estimate(
        "nonlinear-2d",
        "simulated",
        &m,
        x0.as_ref(),
        &s.ais,
        s.simulated,
        progress,
    )?;
    let lj = LogJoint::new(&m)?;
    let g = grid::log_marginal(&m, &lj, x0.as_ref(), 601, 12.0)?;
    row.exact_nats = g.iter().sum::<f64>() / g.len() as f64;
    row.bits_per_dim = f64::NAN;
    table_error = table_error.max(e);
    rows.push(row);
    Ok((rows, table_error))
}

/// A run folder's configuration for the PPCA-equivalent model.
fn ppca_config(seed: u64, q: usize, epochs: usize, sigma0: f64) -> TrainConfig {
    let mut c = TrainConfig {
        seed,
        epochs,
        ..TrainConfig::default()
    };
    c.data.spec = "mnist".into();
    c.model.layers = vec![784, q];
    c.model.nonlinearity = "identity".into();
    c.model.energies = vec![
        EnergyConfig::Gaussian { sigma: sigma0 },
        EnergyConfig::Gaussian { sigma: 1.0 },
    ];
    c
}

/// A fresh `hee train` run of `cfg` in `dir`.
fn train_run(
    cfg: TrainConfig,
    dir: &std::path::Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Training, CliError> {
    let _ = std::fs::remove_dir_all(dir);
    let t0 = Instant::now();
    let mut t = Training::start(cfg, dir)?;
    t.run(&std::sync::atomic::AtomicBool::new(false), &mut |_| {})?;
    progress(&format!(
        "likelihood: trained {} in {:.1} s",
        dir.display(),
        t0.elapsed().as_secs_f64()
    ));
    Ok(t)
}

/// Trains the models, estimates and measures.
pub fn run(opts: &RunOptions, progress: &mut dyn FnMut(&str)) -> Result<Likelihood, CliError> {
    let s = settings(opts);
    let (mut rows, mut table_error) = known_answers(&s, progress)?;

    // The evaluation data: MNIST dequantised (train for the optimum's fit).
    let mut eval_cfg = TrainConfig {
        seed: opts.seed,
        ..TrainConfig::default()
    };
    eval_cfg.data.spec = "mnist".into();
    eval_cfg.data.scaling = "dequantized".into();
    let data = load_data(&eval_cfg)?;
    let train = to_f64(data.train.as_ref());
    let test = to_f64(data.test.as_ref());
    let d = data.dim();
    let sigma0 = crate::train::config::DEFAULT_SIGMA_0;
    let noise = sigma0 * sigma0;
    let n_img = s.images.min(test.nrows());
    let x0 = data.test.as_ref().subrows(0, n_img);
    let subset = test.as_ref().subrows(0, n_img);
    // The closed-form optima, fitted to the training split once per q.
    let fits = [64, 256]
        .into_iter()
        .map(|q| Ok((q, ppca_fixed_noise(train.as_ref(), q, noise)?)))
        .collect::<Result<Vec<_>, CliError>>()?;
    let optimum = |q: usize, images: MatRef<'_, f64>| -> Result<f64, CliError> {
        let fit = fits
            .iter()
            .find(|f| f.0 == q)
            .ok_or_else(|| CliError::Usage(format!("likelihood: no PPCA fit for q = {q}")))?;
        Ok(mean_log_pdf(&fit.1, images)?)
    };

    // The PPCA-equivalent HEE trained by the local rule.
    let q = 64;
    let dir = opts.out.join(format!("run-ppca-q{q}"));
    let t = train_run(
        ppca_config(opts.seed, q, s.ppca_epochs, sigma0),
        &dir,
        progress,
    )?;
    let lg = LinearGaussian::from_model(&t.model)?;
    let (exact, best) = (
        lg.mean_log_likelihood(test.as_ref())?,
        optimum(q, test.as_ref())?,
    );
    progress(&format!(
        "likelihood: ppca-hee-q{q}: exact {exact:.2} nats against the optimum {best:.2} (gap {:.2})",
        best - exact
    ));
    rows.push(LikelihoodRow::exact(
        &format!("ppca-hee-q{q}"),
        "mnist",
        test.nrows(),
        exact,
        best,
        bits(exact, d),
    ));
    // AIS on the same model, where the exact answer checks it at D = 784.
    let (mut row, _) = estimate(
        &format!("ppca-hee-q{q}"),
        "mnist",
        &t.model,
        x0,
        &s.ais,
        s.simulated,
        progress,
    )?;
    row.exact_nats = lg.mean_log_likelihood(subset)?;
    row.optimum_nats = optimum(q, subset)?;
    rows.push(row);

    // The generation experiment's default HEE model.
    let mut cfg = TrainConfig {
        seed: opts.seed,
        epochs: s.hee_epochs,
        ..TrainConfig::default()
    };
    cfg.data.spec = "mnist".into();
    let dir = opts.out.join(format!("run-mnist-seed-{}", opts.seed));
    let t = train_run(cfg, &dir, progress)?;
    let name = format!("hee-mnist-seed-{}", opts.seed);
    let (row, e) = estimate(&name, "mnist", &t.model, x0, &s.ais, s.simulated, progress)?;
    table_error = table_error.max(e);
    rows.push(row);
    // On the images AIS saw, so that they sit beside the HEE row.
    for q in [64, 256] {
        let best = optimum(q, subset)?;
        rows.push(LikelihoodRow::exact(
            &format!("ppca-optimum-q{q}"),
            "mnist",
            n_img,
            f64::NAN,
            best,
            bits(best, d),
        ));
    }
    for r in &rows {
        progress(&format!("likelihood: {}", r.summary()));
    }
    Ok(Likelihood {
        rows,
        max_table_error: table_error,
    })
}

fn bits(nats: f64, d: usize) -> f64 {
    -nats / (d as f64 * std::f64::consts::LN_2) + 8.0
}

/// Writes `likelihood.csv` into `opts.out`.
pub fn write(opts: &RunOptions, r: &Likelihood) -> Result<Vec<PathBuf>, CliError> {
    prepare_dir(&opts.out)?;
    let path = opts.out.join("likelihood.csv");
    write_rows(&path, crate::eval::HEADER, &r.rows, LikelihoodRow::cells)?;
    Ok(vec![path])
}

/// `hee reproduce likelihood`.
pub fn reproduce(
    opts: &RunOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<PathBuf>, CliError> {
    write(opts, &run(opts, progress)?)
}
