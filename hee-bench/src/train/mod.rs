//! Training as a workflow: a run folder, checkpoints, resuming, learning
//! curves. This sits above hee-core (which knows nothing of files) and calls
//! its local rule ([`hee_core::learning::train_minibatch`]).
//!
//! A run is a function of its configuration and seed: interrupted after any
//! minibatch (Ctrl-C, or the end of `--epochs`) and resumed, it ends with the
//! same tensors, bit for bit, as a run that was never interrupted. That
//! holds because everything the next minibatch reads is saved: the model,
//! the chains' state and random streams, the position in the run (the
//! minibatch order is a function of (seed, epoch)), and the epoch's running
//! sums; the learning-rate schedule is a function of the position. The
//! per-epoch evaluation runs on chains of its own, seeded by the epoch, and
//! changes nothing of the training state.

pub mod checkpoint;
pub mod config;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use hee_core::faer::Mat;
use hee_core::learning::{train_minibatch, train_minibatch_at, LearningScratch, MinibatchSchedule};
use hee_core::{Adaptation, Chains, Dynamics, HeeModel, NeuralConfig, Purpose};
use hee_data::{load, DataSpec, Dataset, LoadOptions, Scaling};
use hee_eval::report::{prepare_dir, write_atomic};

mod bank;
pub mod baseline;
mod curve;
mod eval;
pub mod retune;

use retune::{run_dynamics, saved_neural};

pub use bank::LatentBank;
use checkpoint::{RunFiles, RunPosition};
pub use config::TrainConfig;
use curve::{read_curve, write_curve};
pub use curve::{sigma_summary, CurveRow, RetuneRow, RunDynamics};
pub use eval::{held_out_error, weight_norm};

use crate::CliError;

/// What the loop reports as it goes (for a progress bar).
#[derive(Debug, Clone)]
pub enum Event {
    /// A minibatch is done.
    Minibatch {
        epoch: usize,
        epochs: usize,
        done: u64,
        total: u64,
        mean_sq_grad: f64,
        samples_per_s: f64,
    },
    /// An epoch is done and checkpointed.
    Epoch(CurveRow),
}

/// How [`Training::run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All epochs done.
    Finished,
    /// Stopped on request after a minibatch; a checkpoint was written.
    Interrupted,
}

/// Loads the configured data set, scaled and truncated.
pub fn load_data(cfg: &TrainConfig) -> Result<Dataset, CliError> {
    let spec: DataSpec = cfg.data.spec.parse()?;
    let opts = LoadOptions {
        patch: cfg.data.patch,
        patches: cfg.data.patches,
        zca_epsilon: cfg.data.zca_epsilon,
        seed: Purpose::Data.seed(cfg.seed),
        ..LoadOptions::default()
    };
    let dir = (!cfg.data.data_dir.is_empty()).then(|| PathBuf::from(&cfg.data.data_dir));
    let mut d = load(&spec, dir.as_deref(), &opts)?;
    let dequantized = Scaling::Dequantized {
        seed: Purpose::Dequantisation.seed(cfg.seed),
    };
    d.scale(match cfg.data.scaling.as_str() {
        "standardized" => Scaling::Standardized,
        "dequantized" => dequantized,
        // 8-bit images dequantised (a density on [0, 1]^D, as `hee eval`
        // measures it), anything else as loaded.
        "auto" if d.is_quantized() => dequantized,
        _ => Scaling::AsLoaded,
    })?;
    if cfg.data.multiply != 1.0 {
        let k = cfg.data.multiply as f32;
        for m in [&mut d.train, &mut d.test] {
            for j in 0..m.ncols() {
                for v in m.col_as_slice_mut(j) {
                    *v *= k;
                }
            }
        }
    }
    if cfg.data.max_records > 0 && cfg.data.max_records < d.len() {
        d.train = d.train.subrows(0, cfg.data.max_records).to_owned();
        if let Some(l) = &mut d.train_labels {
            l.truncate(cfg.data.max_records);
        }
    }
    Ok(d)
}

/// The model a run of `config` starts from (weights drawn from the run's
/// weight key) and the run's first minibatch; checks that `data` fits.
pub(crate) fn initial_model(
    config: &TrainConfig,
    data: &Dataset,
) -> Result<(HeeModel<f32>, Mat<f32>), CliError> {
    let batch = config.learning.batch;
    if data.len() < batch {
        return Err(CliError::Usage(format!(
            "{} training records, fewer than one minibatch of {batch}",
            data.len()
        )));
    }
    if data.dim() != config.model.layers[0] {
        return Err(CliError::Usage(format!(
            "config: `model.layers` starts with {}, but {} records have {} values",
            config.model.layers[0],
            data.name,
            data.dim()
        )));
    }
    let mut model = model_for(config)?;
    model.randomize_weights(
        &mut Purpose::Weights.rng(config.seed),
        config.model.init_scale,
    );
    let first = data.batch(&data.minibatches(batch, Purpose::Shuffles.seed(config.seed), 0)?[0])?;
    Ok((model, first))
}

/// Whether `config` asks for the tuned adaptation rule (τ_a = g = 0).
fn is_tuned(config: &TrainConfig) -> bool {
    config.dynamics.kind == "adaptation" && config.dynamics.tau_a == 0.0 && config.dynamics.g == 0.0
}

/// The kernel a run of `config` starts with, on `neural`: plain Langevin,
/// adaptation with the configured τ_a and g, or, when both are 0, the tuned
/// rule measured on the first minibatch.
pub(crate) fn starting_kernel(
    config: &TrainConfig,
    neural: NeuralConfig,
    model: &HeeModel<f32>,
    first: &Mat<f32>,
) -> Result<Adaptation, CliError> {
    if is_tuned(config) {
        Ok(Adaptation::for_model(neural, model, first.as_ref(), None)?)
    } else {
        kernel_for(config, neural, config.dynamics.tau_a, config.dynamics.g)
    }
}

/// The learning-rate factor after `done` of `total` minibatches: 1 for
/// `constant`, a cosine decay to 0 for `cosine`.
pub(crate) fn rate_factor(schedule: &str, done: f64, total: f64) -> f64 {
    match schedule {
        "cosine" => 0.5 * (1.0 + (std::f64::consts::PI * done / total).cos()),
        _ => 1.0,
    }
}

/// A training run in a folder.
pub struct Training {
    pub config: TrainConfig,
    pub data: Dataset,
    pub model: HeeModel<f32>,
    kernel: Adaptation,
    chains: Chains<f32>,
    scratch: LearningScratch<f32>,
    /// With `learning.persistent_latents`: each training example's latent
    /// chain (examples × latent units), where it ended its last visit.
    bank: Option<LatentBank>,
    pos: RunPosition,
    curve: Vec<CurveRow>,
    retunes: Vec<RetuneRow>,
    files: RunFiles,
}

/// Number of running sums kept per epoch: |∂U/∂x|², update norm, count.
const SUMS: usize = 3;

fn model_for(cfg: &TrainConfig) -> Result<HeeModel<f32>, CliError> {
    let specs = cfg.layer_specs()?;
    let mut model = HeeModel::new(&specs, cfg.nonlinearity()?)?;
    for (l, d) in cfg.dispersion()?.into_iter().enumerate() {
        if d == config::Dispersion::Unit {
            model.set_unit_sigmas(l, &vec![specs[l].energy.sigma(); specs[l].size])?;
        }
    }
    Ok(model)
}

/// The run's kernel on `neural` (its `NeuralConfig`, or a variant of it
/// such as the baseline's on Ẽ) with the given τ_a and g.
fn kernel_for(
    cfg: &TrainConfig,
    neural: NeuralConfig,
    tau_a: f64,
    g: f64,
) -> Result<Adaptation, CliError> {
    // Plain Langevin is the adaptation kernel with g = 0, bit for bit
    // (tested in hee-core): one code path for both.
    if cfg.dynamics.kind == "plain" {
        Ok(Adaptation::new(neural, neural.tau, 0.0)?)
    } else {
        Ok(Adaptation::new(neural, tau_a, g)?)
    }
}

fn read_config(files: &RunFiles) -> Result<TrainConfig, CliError> {
    let cpath = files.config();
    let text = std::fs::read_to_string(&cpath).map_err(|e| CliError::Checkpoint {
        path: cpath.clone(),
        reason: e.to_string(),
    })?;
    TrainConfig::from_toml(&text, &format!("'{}'", cpath.display()))
}

/// The configuration and the last checkpointed model of the run in `dir`
/// (to use a trained model: generation, evaluation).
pub fn load_run(dir: &Path) -> Result<(TrainConfig, HeeModel<f32>), CliError> {
    let files = RunFiles {
        dir: dir.to_path_buf(),
    };
    let config = read_config(&files)?;
    config.check()?;
    let mut model = model_for(&config)?;
    checkpoint::load_model(&files.model(), &mut model)?;
    Ok((config, model))
}

impl Training {
    /// A new run of `config` in `dir` (created; it must not hold a run).
    pub fn start(mut config: TrainConfig, dir: &Path) -> Result<Self, CliError> {
        config.check()?;
        let files = RunFiles {
            dir: dir.to_path_buf(),
        };
        if files.model().exists() || files.state().exists() {
            return Err(CliError::Usage(format!(
                "'{}' already holds a run: continue it with --resume, or choose another --out",
                dir.display()
            )));
        }
        prepare_dir(dir)?;
        let data = load_data(&config)?;
        let batch = config.learning.batch;
        let (model, first) = initial_model(&config, &data)?;
        let mut pos = RunPosition {
            sums: vec![0.0; SUMS],
            ..RunPosition::default()
        };
        let mut retunes = Vec::new();
        let kernel = if config.dynamics.retune {
            let t = retune::retune(&config, &model, &first, None)?;
            pos.tuned_at = Some(0);
            pos.lambda_min = t.range.lambda_min;
            pos.lambda_max = t.range.lambda_max;
            pos.tuned_sigma = t.sigma;
            pos.tuned_stiffness = t.stiffness;
            t.kernel
        } else {
            starting_kernel(&config, config.neural()?, &model, &first)?
        };
        if is_tuned(&config) && !config.dynamics.retune {
            // Recorded in the effective configuration so that a resumed
            // run uses the same rule.
            config.dynamics.tau_a = kernel.tau_a;
            config.dynamics.g = kernel.g;
        }
        pos.tau_a = kernel.tau_a;
        pos.g = kernel.g;
        pos.dt = kernel.config.dt;
        pos.substeps = kernel.config.substeps();
        let chains = kernel.init(&model, Some(first.as_ref()), None, batch, config.seed)?;
        let scratch = LearningScratch::new(&model, batch);
        let bank = config
            .learning
            .persistent_latents
            .then(|| LatentBank::new(&model, data.len()));
        if pos.tuned_at.is_some() {
            retunes.push(RetuneRow {
                epoch: 1,
                dynamics: run_dynamics(&kernel, &pos, &model, 0),
            });
        }
        let t = Training {
            pos,
            config,
            data,
            model,
            kernel,
            chains,
            scratch,
            bank,
            curve: Vec::new(),
            retunes,
            files,
        };
        write_atomic(&t.files.config(), t.config.to_toml()?.as_bytes())?;
        Ok(t)
    }

    /// Continues the run in `dir`, up to `epochs` in total when given.
    pub fn resume(dir: &Path, epochs: Option<usize>) -> Result<Self, CliError> {
        let files = RunFiles {
            dir: dir.to_path_buf(),
        };
        let mut config = read_config(&files)?;
        if let Some(e) = epochs {
            config.epochs = e;
        }
        config.check()?;
        let data = load_data(&config)?;
        let mut model = model_for(&config)?;
        let model_no = checkpoint::load_model(&files.model(), &mut model)?;
        let bank_rows = config.learning.persistent_latents.then_some(data.len());
        let (state, streams, pos, bank) =
            checkpoint::load_state(&files.state(), &model, config.learning.batch, bank_rows)?;
        if pos.checkpoint != model_no {
            return Err(CliError::Checkpoint {
                path: files.state(),
                reason: format!(
                    "checkpoint {} does not match model.safetensors (checkpoint {model_no})",
                    pos.checkpoint
                ),
            });
        }
        if pos.sums.len() != SUMS {
            return Err(CliError::Checkpoint {
                path: files.state(),
                reason: format!("{} running sums, expected {SUMS}", pos.sums.len()),
            });
        }
        let kernel = kernel_for(&config, saved_neural(&config, &pos)?, pos.tau_a, pos.g)?;
        let chains = kernel
            .resume(&model, state, streams)
            .map_err(|e| CliError::Checkpoint {
                path: files.state(),
                reason: e.to_string(),
            })?;
        let (curve, retunes) = read_curve(&files.curve_csv(), model.n_layers(), pos.epoch)?;
        let scratch = LearningScratch::new(&model, config.learning.batch);
        write_atomic(&files.config(), config.to_toml()?.as_bytes())?;
        Ok(Training {
            config,
            data,
            model,
            kernel,
            chains,
            scratch,
            bank,
            pos,
            curve,
            retunes,
            files,
        })
    }

    /// The kernel the run's chains use.
    pub fn kernel(&self) -> &Adaptation {
        &self.kernel
    }

    /// Each training example's latents where its chain last ended
    /// (examples × latent units), with `learning.persistent_latents`.
    pub fn latent_bank(&self) -> Option<&LatentBank> {
        self.bank.as_ref()
    }

    /// The learning curve so far.
    pub fn curve(&self) -> &[CurveRow] {
        &self.curve
    }

    /// The run folder.
    pub fn dir(&self) -> &Path {
        &self.files.dir
    }

    fn batches_per_epoch(&self) -> usize {
        self.data.len() / self.config.learning.batch
    }

    /// Runs until the configured number of epochs is done, or until `stop`
    /// is set (checked after every minibatch; a checkpoint is written
    /// before returning). A checkpoint is also written after every epoch.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        on: &mut dyn FnMut(Event),
    ) -> Result<Outcome, CliError> {
        let cfg = self.config.clone();
        let per_epoch = self.batches_per_epoch();
        let total = (cfg.epochs * per_epoch) as u64;
        let base = cfg.rates()?;
        let schedule = MinibatchSchedule {
            warmup_steps: cfg.learning.warmup_steps,
            learning_steps: cfg.learning.learning_steps,
            steps_per_update: cfg.learning.steps_per_update,
        };
        let mut seconds = self.curve.last().map_or(0.0, |r| r.seconds);
        let mut clock = Instant::now();
        while self.pos.epoch < cfg.epochs {
            let order = self.data.minibatches(
                cfg.learning.batch,
                Purpose::Shuffles.seed(cfg.seed),
                self.pos.epoch as u64,
            )?;
            while self.pos.batch_in_epoch < per_epoch {
                let t0 = Instant::now();
                let idx = &order[self.pos.batch_in_epoch];
                let mb = self.data.batch(idx)?;
                let done = (self.pos.epoch * per_epoch + self.pos.batch_in_epoch) as u64;
                self.maybe_retune(&mb, idx, done)?;
                let rates = base.scaled(rate_factor(
                    &cfg.learning.schedule,
                    done as f64,
                    total as f64,
                ));
                let info = match &mut self.bank {
                    None => train_minibatch(
                        &mut self.model,
                        &self.kernel,
                        &mut self.chains,
                        &mut self.scratch,
                        mb.as_ref(),
                        &schedule,
                        &rates,
                    )?,
                    Some(bank) => {
                        let info = train_minibatch_at(
                            &mut self.model,
                            &self.kernel,
                            &mut self.chains,
                            &mut self.scratch,
                            mb.as_ref(),
                            bank.rows(idx).as_ref(),
                            &schedule,
                            &rates,
                        )?;
                        bank.store(idx, self.chains.state.latents(&self.model)?);
                        info
                    }
                };
                self.pos.sums[0] += info.mean_sq_grad;
                self.pos.sums[1] += rates.lr_weights * info.weight_grad_sq.sqrt();
                self.pos.sums[2] += 1.0;
                self.pos.batch_in_epoch += 1;
                self.pos.checkpoint += 1;
                on(Event::Minibatch {
                    epoch: self.pos.epoch + 1,
                    epochs: cfg.epochs,
                    done: done + 1,
                    total,
                    mean_sq_grad: info.mean_sq_grad,
                    samples_per_s: cfg.learning.batch as f64 / t0.elapsed().as_secs_f64(),
                });
                if stop.load(Ordering::SeqCst) && self.pos.batch_in_epoch < per_epoch {
                    self.write_checkpoint()?;
                    return Ok(Outcome::Interrupted);
                }
            }
            let (recon_error, mean_energy) = self.evaluate()?;
            seconds += clock.elapsed().as_secs_f64();
            clock = Instant::now();
            let n = self.pos.sums[2].max(1.0);
            let minibatches = ((self.pos.epoch + 1) * per_epoch) as u64;
            let row = CurveRow {
                epoch: self.pos.epoch + 1,
                recon_error,
                mean_energy,
                mean_sq_grad: self.pos.sums[0] / n,
                update_norm: self.pos.sums[1] / n,
                seconds,
                weight_norm: weight_norm(&self.model),
                dynamics: run_dynamics(&self.kernel, &self.pos, &self.model, minibatches),
            };
            self.curve.push(row.clone());
            self.pos.epoch += 1;
            self.pos.batch_in_epoch = 0;
            self.pos.sums = vec![0.0; SUMS];
            self.write_checkpoint()?;
            on(Event::Epoch(row));
            if stop.load(Ordering::SeqCst) && self.pos.epoch < cfg.epochs {
                return Ok(Outcome::Interrupted);
            }
        }
        Ok(Outcome::Finished)
    }

    /// Held-out reconstruction error and mean energy (see
    /// [`held_out_error`]), on chains seeded by the epoch.
    fn evaluate(&self) -> Result<(f64, f64), CliError> {
        let seed = Purpose::Evaluation.seed(self.config.seed) ^ self.pos.epoch as u64;
        let (err, chains) =
            held_out_error(&self.config, &self.data, &self.kernel, &self.model, seed)?;
        // The energy needs a quadrature per non-gaussian unit: 100 samples.
        let m = chains.state.batch().min(100);
        let u = self.model.energy_of(chains.state.x().subrows(0, m))?;
        Ok((err, u.iter().sum::<f64>() / m as f64))
    }

    /// Writes model, state, curve.csv and curve.png, each atomically.
    pub fn write_checkpoint(&self) -> Result<(), CliError> {
        let toml = self.config.to_toml()?;
        let model =
            checkpoint::model_bytes(&self.files.model(), &self.model, &toml, self.pos.checkpoint)?;
        let state = checkpoint::state_bytes(
            &self.files.state(),
            &self.chains.state,
            &self.chains.streams,
            &self.pos,
            self.bank.as_ref().map(LatentBank::as_ref),
        )?;
        write_atomic(&self.files.model(), &model)?;
        write_atomic(&self.files.state(), &state)?;
        write_curve(
            &self.files,
            self.model.n_layers(),
            &self.curve,
            &self.retunes,
        )
    }

    /// The retunings of the dynamics so far (`dynamics.retune`).
    pub fn retunes(&self) -> &[RetuneRow] {
        &self.retunes
    }
}
