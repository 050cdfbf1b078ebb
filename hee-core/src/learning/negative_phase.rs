//! The conventional baseline's rule (spec §7): the same layers and weights
//! as an undirected EBM with energy Ẽ = Σ_l [φ_l(x_l) − η_l·x_l] and one
//! global partition function. Its likelihood gradient needs two phases,
//!
//! ΔW_l ∝ ⟨x_l f(x_{l+1})ᵀ⟩_clamped − ⟨x_l f(x_{l+1})ᵀ⟩_free,
//! Δb_l ∝ ⟨x_l⟩_clamped − ⟨x_l⟩_free,
//!
//! the first over the posterior given the data, the second over the model's
//! own samples, here from persistent free-running chains (PCD; Tieleman
//! 2008). Both phases' chains run on Ẽ (`Potential::Unnormalised`).

use faer::{Mat, MatRef, Par};

use super::grads::ParamGrads;
use super::update::apply_gradients;
use super::LocalLearning;
use crate::dynamics::{clamp_data, resync_after_update, Chains, Dynamics, Observed, Potential};
use crate::error::{HeeError, Result};
use crate::model::HeeModel;
use crate::scalar::Real;

/// ⟨x_l f(x_{l+1})ᵀ⟩ and ⟨x_l⟩ over a batch of states (batch × total
/// units): one phase's sufficient statistics, in the shapes of W and b.
pub fn phase_statistics<T: Real>(model: &HeeModel<T>, x: MatRef<'_, T>) -> Result<ParamGrads<T>> {
    let zeros = Mat::<T>::zeros(x.nrows(), x.ncols());
    // The local rule's ΔW with A′ = 0 is exactly this average.
    model.weight_grads(x, zeros.as_ref())
}

/// The two-phase ascent direction: statistics of the clamped states minus
/// those of the free states.
pub fn two_phase_gradients<T: Real>(
    model: &HeeModel<T>,
    clamped: MatRef<'_, T>,
    free: MatRef<'_, T>,
) -> Result<ParamGrads<T>> {
    let mut g = phase_statistics(model, clamped)?;
    g.add_scaled(-1.0, &phase_statistics(model, free)?)?;
    Ok(g)
}

/// Scratch of [`pcd_step`]: the statistics of both phases.
#[derive(Debug, Clone)]
pub struct PcdScratch<T> {
    fx: Mat<T>,
    clamped: ParamGrads<T>,
    free: ParamGrads<T>,
}

impl<T: Real> PcdScratch<T> {
    /// Scratch for `batch` samples of `model` (both phases the same batch).
    pub fn new(model: &HeeModel<T>, batch: usize) -> Self {
        PcdScratch {
            fx: Mat::zeros(model.total_size(), batch),
            clamped: ParamGrads::zeros_like(model),
            free: ParamGrads::zeros_like(model),
        }
    }
    /// The last update direction (clamped minus free).
    pub fn gradients(&self) -> &ParamGrads<T> {
        &self.clamped
    }
}

/// Diagnostics of one [`pcd_step`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PcdInfo {
    /// Mean |∂Ẽ/∂x|² of the clamped and of the free chains' last step.
    pub clamped_sq_grad: f64,
    pub free_sq_grad: f64,
    /// ‖ΔW‖ of the update (before the rate).
    pub weight_grad_norm: f64,
}

/// One update of the baseline: clamps `data` into the clamped chains, runs
/// `steps` steps of both phases' chains on Ẽ, then applies
/// rate × (clamped − free statistics) and brings both chains' η up to the
/// new parameters. The free chains persist from call to call.
#[allow(clippy::too_many_arguments)]
pub fn pcd_step<T: Real, C: Dynamics<T>, F: Dynamics<T>>(
    model: &mut HeeModel<T>,
    clamped_kernel: &C,
    clamped: &mut Chains<T>,
    free_kernel: &F,
    free: &mut Chains<T>,
    data: MatRef<'_, T>,
    steps: usize,
    scratch: &mut PcdScratch<T>,
    rates: &LocalLearning,
) -> Result<PcdInfo> {
    check_pcd(clamped_kernel, clamped, free_kernel, free, scratch, rates)?;
    clamp_data(clamped_kernel, model, clamped, data)?;
    run_pcd(
        model,
        clamped_kernel,
        clamped,
        free_kernel,
        free,
        steps,
        scratch,
        rates,
    )
}

/// [`pcd_step`] on chains whose data are already clamped (the next update
/// on the same minibatch: the previous update's resync left them
/// consistent, so clamping again would only repeat that refresh).
#[allow(clippy::too_many_arguments)]
pub fn pcd_update<T: Real, C: Dynamics<T>, F: Dynamics<T>>(
    model: &mut HeeModel<T>,
    clamped_kernel: &C,
    clamped: &mut Chains<T>,
    free_kernel: &F,
    free: &mut Chains<T>,
    steps: usize,
    scratch: &mut PcdScratch<T>,
    rates: &LocalLearning,
) -> Result<PcdInfo> {
    check_pcd(clamped_kernel, clamped, free_kernel, free, scratch, rates)?;
    run_pcd(
        model,
        clamped_kernel,
        clamped,
        free_kernel,
        free,
        steps,
        scratch,
        rates,
    )
}

/// The kernels' potentials and observed layers, and the batch sizes.
fn check_pcd<T: Real, C: Dynamics<T>, F: Dynamics<T>>(
    clamped_kernel: &C,
    clamped: &Chains<T>,
    free_kernel: &F,
    free: &Chains<T>,
    scratch: &PcdScratch<T>,
    rates: &LocalLearning,
) -> Result<()> {
    let (cc, fc) = (clamped_kernel.config(), free_kernel.config());
    if cc.potential != Potential::Unnormalised || fc.potential != Potential::Unnormalised {
        return Err(HeeError::Unsupported(
            "the baseline's chains run on the unnormalised energy: set NeuralConfig::potential = Potential::Unnormalised".into(),
        ));
    }
    if cc.observed != Observed::Clamped || fc.observed != Observed::Free {
        return Err(HeeError::Unsupported(
            "the baseline needs clamped chains (Observed::Clamped) and free chains (Observed::Free)".into(),
        ));
    }
    if scratch.fx.ncols() != clamped.batch() || free.batch() != clamped.batch() {
        return Err(HeeError::dims(
            "pcd scratch",
            format!("{} samples in both phases", clamped.batch()),
            format!("{} and {}", scratch.fx.ncols(), free.batch()),
        ));
    }
    rates.validate()
}

/// Both phases' steps, the statistics, the update and the resync.
#[allow(clippy::too_many_arguments)]
fn run_pcd<T: Real, C: Dynamics<T>, F: Dynamics<T>>(
    model: &mut HeeModel<T>,
    clamped_kernel: &C,
    clamped: &mut Chains<T>,
    free_kernel: &F,
    free: &mut Chains<T>,
    steps: usize,
    scratch: &mut PcdScratch<T>,
    rates: &LocalLearning,
) -> Result<PcdInfo> {
    let mut info = PcdInfo {
        clamped_sq_grad: 0.0,
        free_sq_grad: 0.0,
        weight_grad_norm: 0.0,
    };
    for _ in 0..steps {
        info.clamped_sq_grad = clamped_kernel.step(model, clamped)?.mean_sq_grad;
        info.free_sq_grad = free_kernel.step(model, free)?.mean_sq_grad;
    }
    let PcdScratch {
        fx,
        clamped: gc,
        free: gf,
    } = scratch;
    for (chains, out) in [(&*clamped, &mut *gc), (&*free, &mut *gf)] {
        let x = chains.state.x.as_ref();
        model.presynaptic(x, fx.as_mut());
        let pre = if model.nonlinearity().is_identity() {
            x
        } else {
            fx.as_ref()
        };
        // Finiteness is checked by apply_gradients.
        let _ = model.weight_grads_from(x, pre, out, Par::rayon(0), None);
    }
    gc.add_scaled(-1.0, gf)?;
    info.weight_grad_norm = gc
        .weights
        .iter()
        .map(|w| {
            (0..w.ncols())
                .map(|j| (0..w.nrows()).map(|i| w[(i, j)].f64().powi(2)).sum::<f64>())
                .sum::<f64>()
        })
        .sum::<f64>()
        .sqrt();
    apply_gradients(model, gc, rates)?;
    resync_after_update(clamped_kernel, model, clamped)?;
    resync_after_update(free_kernel, model, free)?;
    Ok(info)
}
