//! Measurements of a run's model shared by HEE's training and the
//! baseline's: the held-out reconstruction error and ‖W‖.

use hee_core::faer::Mat;
use hee_core::{Adaptation, Chains, Dynamics, HeeModel, Potential};
use hee_data::Dataset;

use super::TrainConfig;
use crate::CliError;

/// ‖W‖, the Frobenius norm over every layer's weights.
pub fn weight_norm(model: &HeeModel<f32>) -> f64 {
    let mut s = 0.0;
    for l in 0..model.top() {
        let w = model.weight(l);
        for j in 0..w.ncols() {
            for i in 0..w.nrows() {
                s += (w[(i, j)] as f64).powi(2);
            }
        }
    }
    s.sqrt()
}

/// Held-out reconstruction error ‖x₀ − E[A′₀(η₀) | x₀]‖² per record: fresh
/// chains of `kernel` on the first `eval_records` test records (training
/// records when there is no test split), `eval_steps` steps of inference,
/// the prediction averaged over the second half of the steps. Returns the
/// chains too (their final states).
pub fn held_out_error(
    cfg: &TrainConfig,
    data: &Dataset,
    kernel: &Adaptation,
    model: &HeeModel<f32>,
    seed: u64,
) -> Result<(f64, Chains<f32>), CliError> {
    let test = if data.test.nrows() > 0 {
        &data.test
    } else {
        &data.train
    };
    let n = cfg.learning.eval_records.min(test.nrows()).max(1);
    let data = test.subrows(0, n);
    let mut chains = kernel.init(model, Some(data), None, n, seed)?;
    let n0 = model.size(0);
    let mut acc = Mat::<f64>::zeros(n, n0);
    let steps = cfg.learning.eval_steps.max(2);
    let from = steps / 2;
    for t in 0..steps {
        kernel.step(model, &mut chains)?;
        if t >= from {
            // Chains on Ẽ keep no A′ estimates: A′₀(η₀) from η₀.
            let exact;
            let ap = if kernel.config.potential == Potential::Unnormalised {
                exact = model.layer_exact_a_prime(0, chains.state.eta().subcols(0, n0))?;
                exact.as_ref()
            } else {
                chains.state.a_prime()
            };
            for r in 0..n {
                for i in 0..n0 {
                    acc[(r, i)] += ap[(r, i)] as f64;
                }
            }
        }
    }
    let k = (steps - from) as f64;
    let mut err = 0.0;
    for r in 0..n {
        for i in 0..n0 {
            err += (data[(r, i)] as f64 - acc[(r, i)] / k).powi(2);
        }
    }
    Ok((err / n as f64, chains))
}
