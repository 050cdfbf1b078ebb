//! Training on minibatches (spec §5): for each minibatch, clamp x₀, run
//! inference to warm up, then inference and learning together.

use super::step::{check_scratch, learning_step, LearningScratch};
use super::LocalLearning;
use crate::dynamics::{clamp_data, clamp_data_at, Chains, Dynamics};
use crate::error::Result;
use crate::model::HeeModel;
use crate::scalar::Real;

/// How one minibatch is processed during training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinibatchSchedule {
    /// Inference steps before the rule is switched on.
    pub warmup_steps: usize,
    /// Applications of the rule: each is one step of inference and
    /// learning together ([`learning_step`]).
    pub learning_steps: usize,
    /// Inference steps per application of the rule, the last of them the
    /// learning step (the sampling budget per update; 1 = every step).
    pub steps_per_update: usize,
}

/// Diagnostics of one minibatch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinibatchInfo {
    /// Mean |∂U/∂x|² of the last step.
    pub mean_sq_grad: f64,
    /// Squared norm of the last weight update direction.
    pub weight_grad_sq: f64,
}

/// Clamps `data` (one observation per row), runs `warmup_steps` of inference,
/// then `learning_steps` applications of the local rule ([`learning_step`]),
/// each after `steps_per_update − 1` further steps of inference. The latent state
/// carries over from the previous minibatch, so consecutive minibatches
/// continue the same chains.
///
/// When energy parameters learn, every proposed update is checked against
/// the kernel's step sizes first ([`check_step_sizes_for`]): an update that
/// would make a layer too stiff for Δt or for the interneurons' sub-step
/// stops training with an error naming `dt` or `substeps`, and the model is
/// left as it was before that update.
#[allow(clippy::too_many_arguments)]
pub fn train_minibatch<T: Real, D: Dynamics<T> + ?Sized>(
    model: &mut HeeModel<T>,
    dynamics: &D,
    chains: &mut Chains<T>,
    scratch: &mut LearningScratch<T>,
    data: faer::MatRef<'_, T>,
    schedule: &MinibatchSchedule,
    rates: &LocalLearning,
) -> Result<MinibatchInfo> {
    rates.validate()?;
    check_scratch(model, chains, scratch)?;
    clamp_data(dynamics, model, chains, data)?;
    run_schedule(model, dynamics, chains, scratch, schedule, rates)
}

/// [`train_minibatch`] with the chains started at `latents` (batch × latent
/// units): persistent posterior chains per training example, each picking
/// up where it ended the last time its example was visited. Read the
/// latents back from `chains.state.latents(model)` afterwards.
#[allow(clippy::too_many_arguments)]
pub fn train_minibatch_at<T: Real, D: Dynamics<T> + ?Sized>(
    model: &mut HeeModel<T>,
    dynamics: &D,
    chains: &mut Chains<T>,
    scratch: &mut LearningScratch<T>,
    data: faer::MatRef<'_, T>,
    latents: faer::MatRef<'_, T>,
    schedule: &MinibatchSchedule,
    rates: &LocalLearning,
) -> Result<MinibatchInfo> {
    rates.validate()?;
    check_scratch(model, chains, scratch)?;
    clamp_data_at(dynamics, model, chains, data, latents)?;
    run_schedule(model, dynamics, chains, scratch, schedule, rates)
}

/// The warm-up and the learning steps of one minibatch.
fn run_schedule<T: Real, D: Dynamics<T> + ?Sized>(
    model: &mut HeeModel<T>,
    dynamics: &D,
    chains: &mut Chains<T>,
    scratch: &mut LearningScratch<T>,
    schedule: &MinibatchSchedule,
    rates: &LocalLearning,
) -> Result<MinibatchInfo> {
    let mut info = MinibatchInfo {
        mean_sq_grad: 0.0,
        weight_grad_sq: 0.0,
    };
    for _ in 0..schedule.warmup_steps {
        info.mean_sq_grad = dynamics.step(model, chains)?.mean_sq_grad;
    }
    for _ in 0..schedule.learning_steps {
        for _ in 1..schedule.steps_per_update {
            dynamics.step(model, chains)?;
        }
        info.mean_sq_grad = learning_step(model, dynamics, chains, scratch, rates)?.mean_sq_grad;
    }
    info.weight_grad_sq = scratch
        .grads
        .weights
        .iter()
        .map(|w| {
            let mut s = 0.0;
            for j in 0..w.ncols() {
                for i in 0..w.nrows() {
                    s += w[(i, j)].f64().powi(2);
                }
            }
            s
        })
        .sum();
    Ok(info)
}
