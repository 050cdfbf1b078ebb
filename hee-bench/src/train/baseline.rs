//! The negative-phase baseline (spec §7) as a training loop beside
//! [`super::Training`]: the same layers, initial weights, data, minibatch
//! order, batch size, learning rates and schedule as an HEE run of the same
//! configuration, but the parameters follow the two-phase rule
//! ([`hee_core::learning::pcd_update`]) of an undirected EBM with energy Ẽ.
//!
//! Per minibatch, as for HEE: the clamped chains start at the examples'
//! persistent latents (when `learning.persistent_latents`), warm up for
//! `warmup_steps`, and then `learning_steps` updates follow, each after
//! `steps_per_update` steps of both the clamped chains and the persistent
//! free-running chains (PCD). The baseline thus runs twice HEE's chains
//! per update; wall-clock is reported for both. Nothing is checkpointed:
//! this loop exists to be compared, not to be resumed.
//!
//! A run that leaves the finite numbers is not restarted: it ends with
//! [`BaselineStatus::Diverged`], its curve up to that point kept.

use std::time::Instant;

use hee_core::dynamics::{clamp_data, clamp_data_at};
use hee_core::learning::{pcd_update, LocalLearning, PcdScratch};
use hee_core::{Adaptation, Chains, Dynamics, HeeError, HeeModel, Observed, Potential, Purpose};
use hee_data::Dataset;

use super::{
    held_out_error, initial_model, load_data, rate_factor, starting_kernel, weight_norm,
    LatentBank, TrainConfig,
};
use crate::CliError;

/// One row of the baseline's learning curve (end of an epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineRow {
    pub epoch: usize,
    /// Held-out ‖x₀ − E[A′₀(η₀) | x₀]‖² per record, the clamped chains on Ẽ.
    pub recon_error: f64,
    /// Mean over the epoch of the free chains' |∂Ẽ/∂x|² (last step of each update).
    pub free_sq_grad: f64,
    /// Mean over the epoch of rate × ‖ΔW‖.
    pub update_norm: f64,
    pub weight_norm: f64,
    pub seconds: f64,
}

/// How a baseline run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum BaselineStatus {
    Finished,
    /// The state or the parameters became non-finite during `epoch`
    /// (1-based) at its update `update`.
    Diverged {
        epoch: usize,
        update: usize,
        reason: String,
    },
}

/// A baseline run in memory.
pub struct Baseline {
    pub config: TrainConfig,
    pub data: Dataset,
    pub model: HeeModel<f32>,
    clamped_kernel: Adaptation,
    free_kernel: Adaptation,
    clamped: Chains<f32>,
    free: Chains<f32>,
    scratch: PcdScratch<f32>,
    bank: Option<LatentBank>,
    pub curve: Vec<BaselineRow>,
    pub status: BaselineStatus,
}

/// True for the errors that mean "the run left the finite numbers".
fn is_divergence(e: &HeeError) -> bool {
    matches!(
        e,
        HeeError::Diverged { .. } | HeeError::NonFiniteInput { .. }
    )
}

impl Baseline {
    /// A baseline for `config`: the weights HEE's run of `config` starts
    /// from, and its kernel (`tau_a`, `g` as written in `config`, or tuned
    /// on the first minibatch as HEE tunes them), on Ẽ.
    pub fn new(config: TrainConfig) -> Result<Self, CliError> {
        config.check()?;
        let data = load_data(&config)?;
        let batch = config.learning.batch;
        let (model, first) = initial_model(&config, &data)?;
        let mut cfg = config.neural()?;
        cfg.potential = Potential::Unnormalised;
        let clamped_kernel = starting_kernel(&config, cfg, &model, &first)?;
        let mut free_cfg = cfg;
        free_cfg.observed = Observed::Free;
        let free_kernel = Adaptation::new(free_cfg, clamped_kernel.tau_a, clamped_kernel.g)?;
        let clamped =
            clamped_kernel.init(&model, Some(first.as_ref()), None, batch, config.seed)?;
        let free = free_kernel.init(
            &model,
            None,
            None,
            batch,
            Purpose::FreeChains.seed(config.seed),
        )?;
        let bank = config
            .learning
            .persistent_latents
            .then(|| LatentBank::new(&model, data.len()));
        Ok(Baseline {
            scratch: PcdScratch::new(&model, batch),
            config,
            data,
            model,
            clamped_kernel,
            free_kernel,
            clamped,
            free,
            bank,
            curve: Vec::new(),
            status: BaselineStatus::Finished,
        })
    }

    /// The kernel of the free chains (x₀ released, on Ẽ).
    pub fn free_kernel(&self) -> &Adaptation {
        &self.free_kernel
    }

    /// Trains for the configured epochs, calling `on` after each; stops
    /// early, with [`BaselineStatus::Diverged`], if the run diverges.
    pub fn run(&mut self, on: &mut dyn FnMut(&BaselineRow)) -> Result<(), CliError> {
        let cfg = self.config.clone();
        let l = &cfg.learning;
        let per_epoch = self.data.len() / l.batch;
        let total = (cfg.epochs * per_epoch) as f64;
        let base = LocalLearning {
            lr_weights: l.lr_weights,
            lr_biases: l.lr_biases,
            lr_energy: 0.0,
            ..LocalLearning::default()
        };
        let clock = Instant::now();
        for epoch in 0..cfg.epochs {
            let order =
                self.data
                    .minibatches(l.batch, Purpose::Shuffles.seed(cfg.seed), epoch as u64)?;
            let (mut sq, mut upd, mut count) = (0.0, 0.0, 0.0);
            for (b, idx) in order.iter().take(per_epoch).enumerate() {
                let done = (epoch * per_epoch + b) as f64;
                let rates = base.scaled(rate_factor(&l.schedule, done, total));
                let mb = self.data.batch(idx)?;
                match self.minibatch(mb.as_ref(), idx, &rates) {
                    Ok((s, u)) => {
                        sq += s;
                        upd += u;
                        count += 1.0;
                    }
                    Err((update, e)) if is_divergence(&e) => {
                        self.status = BaselineStatus::Diverged {
                            epoch: epoch + 1,
                            update: b * l.learning_steps + update + 1,
                            reason: e.to_string(),
                        };
                        return Ok(());
                    }
                    Err((_, e)) => return Err(e.into()),
                }
            }
            let seed = Purpose::Evaluation.seed(cfg.seed) ^ epoch as u64;
            let recon =
                match held_out_error(&cfg, &self.data, &self.clamped_kernel, &self.model, seed) {
                    Ok((e, _)) => e,
                    Err(CliError::Model(e)) if is_divergence(&e) => f64::INFINITY,
                    Err(e) => return Err(e),
                };
            let row = BaselineRow {
                epoch: epoch + 1,
                recon_error: recon,
                free_sq_grad: sq / count,
                update_norm: upd / count,
                weight_norm: weight_norm(&self.model),
                seconds: clock.elapsed().as_secs_f64(),
            };
            on(&row);
            self.curve.push(row);
        }
        Ok(())
    }

    /// One minibatch: (mean free |∂Ẽ/∂x|², mean rate × ‖ΔW‖) over its
    /// updates, or the failing update's index and error.
    fn minibatch(
        &mut self,
        mb: hee_core::faer::MatRef<'_, f32>,
        idx: &[usize],
        rates: &LocalLearning,
    ) -> Result<(f64, f64), (usize, HeeError)> {
        let l = &self.config.learning;
        let (ck, fk) = (&self.clamped_kernel, &self.free_kernel);
        if let Some(bank) = &self.bank {
            clamp_data_at(
                ck,
                &self.model,
                &mut self.clamped,
                mb,
                bank.rows(idx).as_ref(),
            )
            .map_err(|e| (0, e))?;
        } else {
            clamp_data(ck, &self.model, &mut self.clamped, mb).map_err(|e| (0, e))?;
        }
        for _ in 0..l.warmup_steps {
            ck.step(&self.model, &mut self.clamped)
                .map_err(|e| (0, e))?;
        }
        let (mut sq, mut upd) = (0.0, 0.0);
        for u in 0..l.learning_steps {
            // The data are clamped above; each update's resync leaves the
            // chains consistent for the next.
            let info = pcd_update(
                &mut self.model,
                ck,
                &mut self.clamped,
                fk,
                &mut self.free,
                l.steps_per_update,
                &mut self.scratch,
                rates,
            )
            .map_err(|e| (u, e))?;
            sq += info.free_sq_grad;
            upd += rates.lr_weights * info.weight_grad_norm;
        }
        if let Some(bank) = &mut self.bank {
            let end = self
                .clamped
                .state
                .latents(&self.model)
                .map_err(|e| (l.learning_steps, e))?;
            bank.store(idx, end);
        }
        let n = l.learning_steps as f64;
        Ok((sq / n, upd / n))
    }
}
