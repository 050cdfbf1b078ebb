//! Dynamics that follow the model in a training run (`dynamics.retune`):
//! the kernel is chosen from the current parameters by
//! [`hee_core::dynamics::retuned`] at the start of every epoch and
//! whenever a σ has moved by more than `dynamics.retune_sigma_change`
//! (relative) since the last tuning, or the posterior may have stiffened
//! as much by another route (a layer's likelihood curvature, Σ σ²‖W_i‖²
//! over its units, grown by that change squared: weights that grow). This
//! file holds the run's side: when to retune, and what it compares against.

use hee_core::dynamics::tuning;
use hee_core::faer::{Mat, MatRef};
use hee_core::{APrime, Adaptation, CurvatureRange, HeeModel, InterneuronConfig, NeuralConfig};

use super::checkpoint::RunPosition;
use super::{RetuneRow, RunDynamics, TrainConfig, Training};
use crate::CliError;

/// One tuning of the dynamics: the kernel and what it was chosen from.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuning {
    pub kernel: Adaptation,
    pub range: CurvatureRange,
    /// Every σ of the model (layer by layer, every unit of a layer with σ
    /// per unit) when it was measured.
    pub sigma: Vec<f64>,
    /// [`hee_core::dynamics::tuning::stiffness`] when it was measured.
    pub stiffness: Vec<f64>,
}

/// Every σ of the model, layer by layer (one per unit where it has them).
pub fn all_sigmas(model: &HeeModel<f32>) -> Vec<f64> {
    (0..model.n_layers())
        .flat_map(|l| match model.unit_sigmas(l) {
            Some(u) => u.to_vec(),
            None => vec![model.energy(l).sigma()],
        })
        .collect()
}

/// Whether some σ has moved by more than `change` (relative) from
/// `sigma`, or some stiffness has grown by more than (1 + change)² from
/// `stiffness`.
pub fn needs_retune(model: &HeeModel<f32>, sigma: &[f64], stiffness: &[f64], change: f64) -> bool {
    let now = all_sigmas(model);
    let moved = now.len() != sigma.len()
        || now
            .iter()
            .zip(sigma)
            .any(|(a, b)| (a / b - 1.0).abs() > change);
    let stiff = tuning::stiffness(model);
    moved
        || stiff.len() != stiffness.len()
        || stiff
            .iter()
            .zip(stiffness)
            .any(|(a, b)| *a > (1.0 + change).powi(2) * b)
}

/// The kernel for the current parameters, measured on `data` (a minibatch,
/// batch × size(0)) with its chains' `latents` (batch × latent units, or
/// zero).
pub fn retune(
    cfg: &TrainConfig,
    model: &HeeModel<f32>,
    data: &Mat<f32>,
    latents: Option<MatRef<'_, f32>>,
) -> Result<Tuning, CliError> {
    let t = hee_core::dynamics::retuned(
        cfg.neural()?,
        model,
        data.as_ref(),
        latents,
        cfg.dynamics.dt_fraction,
        cfg.dynamics.kind != "plain",
    )?;
    Ok(Tuning {
        kernel: t.kernel,
        range: t.range,
        sigma: all_sigmas(model),
        stiffness: tuning::stiffness(model),
    })
}

/// The neural settings of a saved run: the configured ones with the step
/// and sub-steps the run was using (retuned runs change them).
pub(super) fn saved_neural(cfg: &TrainConfig, pos: &RunPosition) -> Result<NeuralConfig, CliError> {
    let mut neural = cfg.neural()?;
    if pos.dt.is_finite() {
        neural.dt = pos.dt;
    }
    if pos.substeps > 0 {
        neural.a_prime = match neural.a_prime {
            APrime::Auto(c) => APrime::Auto(InterneuronConfig {
                substeps: pos.substeps,
                ..c
            }),
            APrime::Interneurons(c) => APrime::Interneurons(InterneuronConfig {
                substeps: pos.substeps,
                ..c
            }),
            other => other,
        };
    }
    neural.validate()?;
    Ok(neural)
}

/// The dynamics of `kernel` and the σ of `model` for a curve row.
pub(super) fn run_dynamics(
    kernel: &Adaptation,
    pos: &RunPosition,
    model: &HeeModel<f32>,
    minibatch: u64,
) -> RunDynamics {
    RunDynamics {
        minibatch,
        dt: kernel.config.dt,
        tau_a: kernel.tau_a,
        g: kernel.g,
        substeps: kernel.config.substeps(),
        lambda_min: pos.lambda_min,
        lambda_max: pos.lambda_max,
        sigma: super::sigma_summary(model),
    }
}

impl Training {
    /// With `dynamics.retune`: measures the posterior's curvature from the
    /// current parameters on minibatch `mb` (its examples' chains where
    /// they are kept) and retunes the kernel, at the start of every epoch
    /// and whenever a σ has moved by more than `retune_sigma_change` since
    /// the last tuning (or the posterior may have stiffened as much); at
    /// most once before minibatch `done`.
    pub(super) fn maybe_retune(
        &mut self,
        mb: &Mat<f32>,
        idx: &[usize],
        done: u64,
    ) -> Result<(), CliError> {
        let d = &self.config.dynamics;
        if !d.retune || self.pos.tuned_at == Some(done) {
            return Ok(());
        }
        let epoch_start = self.pos.batch_in_epoch == 0;
        let moved = needs_retune(
            &self.model,
            &self.pos.tuned_sigma,
            &self.pos.tuned_stiffness,
            d.retune_sigma_change,
        );
        if !epoch_start && !moved {
            return Ok(());
        }
        let latents = self.bank.as_ref().map(|b| b.rows(idx));
        let t = retune(
            &self.config,
            &self.model,
            mb,
            latents.as_ref().map(|l| l.as_ref()),
        )?;
        self.kernel = t.kernel;
        // The adaptation current of the old kernel has the wrong scale for
        // the new one (per-example chains reset it at every visit anyway).
        self.chains.state.aux_mut().fill(0.0);
        self.pos.tuned_at = Some(done);
        self.pos.lambda_min = t.range.lambda_min;
        self.pos.lambda_max = t.range.lambda_max;
        self.pos.tuned_sigma = t.sigma;
        self.pos.tuned_stiffness = t.stiffness;
        self.pos.tau_a = self.kernel.tau_a;
        self.pos.g = self.kernel.g;
        self.pos.dt = self.kernel.config.dt;
        self.pos.substeps = self.kernel.config.substeps();
        self.retunes.push(RetuneRow {
            epoch: self.pos.epoch + 1,
            dynamics: run_dynamics(&self.kernel, &self.pos, &self.model, done),
        });
        Ok(())
    }
}
