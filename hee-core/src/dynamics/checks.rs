//! What a kernel checks before and during a run: step sizes against the
//! stiffest energy, chains that fit the model and the kernel, and neurons
//! that leave the finite numbers.

use faer::MatRef;

use super::{Chains, NeuralConfig};
use crate::aprime::LayerAPrime;
use crate::elementwise::all_finite;
use crate::energy::BaseEnergy;
use crate::error::{HeeError, Result};
use crate::model::HeeModel;
use crate::scalar::Real;

/// Checks both step sizes against the stiffest energy they integrate:
/// the neurons' h = Δt/τ on every free layer, and the interneurons'
/// sub-step hε = Δt/(K τ_ε) on every layer that runs interneurons.
///
/// Euler steps on a unit of curvature c diverge once h·c ≥ 2 and are
/// strongly biased well before, so both must keep h·max φ″ < 1. (φ″ bounds
/// the neurons' stiffness from below; the coupling through W adds to it and
/// is watched at run time by the divergence check.)
pub fn check_step_sizes<T: Real>(model: &HeeModel<T>, cfg: &NeuralConfig) -> Result<()> {
    check_step_sizes_for(model, model.layers().iter().map(|s| s.energy), cfg)
}

/// [`check_step_sizes`] for `model` with its base energies replaced by
/// `energies` (used to vet an energy-parameter update before applying it).
pub fn check_step_sizes_for<T: Real>(
    model: &HeeModel<T>,
    energies: impl IntoIterator<Item = BaseEnergy>,
    cfg: &NeuralConfig,
) -> Result<()> {
    let mut kinds = Vec::with_capacity(model.n_layers());
    check_planned_steps(model, energies, cfg, &mut kinds)
}

/// [`check_step_sizes_for`] with a reused buffer for the resolved
/// estimators (the learning step's, which allocates nothing).
pub(crate) fn check_planned_steps<T: Real>(
    model: &HeeModel<T>,
    energies: impl IntoIterator<Item = BaseEnergy>,
    cfg: &NeuralConfig,
    kinds: &mut Vec<LayerAPrime>,
) -> Result<()> {
    cfg.a_prime.resolve_into(model, kinds)?;
    let (h, he) = (cfg.h(), cfg.h_eps());
    for (l, e) in energies.into_iter().enumerate().take(model.n_layers()) {
        let c = e.max_curvature();
        if l >= cfg.first_free() && h * c >= 1.0 {
            return Err(HeeError::param(
                "dt",
                cfg.dt,
                "too long for the curvature of a layer's energy (dt/tau * max phi'' must stay below 1); lower dt",
            ));
        }
        if kinds[l] == LayerAPrime::Interneurons && he * c >= 1.0 {
            return Err(HeeError::param(
                "substeps",
                cfg.substeps() as f64,
                "interneuron sub-step dt/(K tau_eps) is too long for the curvature of a layer's energy; raise substeps or tau_eps/tau, or lower dt",
            ));
        }
    }
    Ok(())
}

/// Puts the step number into a divergence error, and says what diverged:
/// the interneurons name their own cause; an empty cause means the neurons.
pub(crate) fn stamp_step<T: Real>(
    e: HeeError,
    step: u64,
    model: &HeeModel<T>,
    cfg: &NeuralConfig,
) -> HeeError {
    match e {
        HeeError::Diverged { layer, cause, .. } => HeeError::Diverged {
            step,
            layer,
            cause: if cause.is_empty() {
                format!(
                    "neurons: step too large for the stiffest layer (dt/tau = {:.3e}, curvature bound {:.3e}: keep dt/tau * curvature well below 2)",
                    cfg.h(),
                    model.stiffness_bound()
                )
            } else {
                cause
            },
        },
        other => other,
    }
}

/// A neuron state left the finite numbers (the cause is filled in by
/// `stamp_step`).
pub(crate) fn check_chunk<T: Real>(
    model: &HeeModel<T>,
    x: MatRef<'_, T>,
    first_free: usize,
) -> Result<()> {
    for l in first_free..model.n_layers() {
        if !all_finite(model.layer_of(x, l)) {
            return Err(HeeError::Diverged {
                step: 0,
                layer: l,
                cause: String::new(),
            });
        }
    }
    Ok(())
}

/// The parts of `chains` must fit the model, the kernel and each other:
/// otherwise the chunked parallel loop would silently skip samples.
pub(crate) fn check_chains<T: Real>(
    model: &HeeModel<T>,
    cfg: &NeuralConfig,
    chains: &Chains<T>,
) -> Result<()> {
    let (state, streams, ws) = (&chains.state, &chains.streams, &chains.workspace);
    let (n, b) = (model.total_size(), state.batch());
    for (field, m) in [
        ("state.x", &state.x),
        ("state.eta", &state.eta),
        ("state.a_prime", &state.a_prime),
        ("state.eps", &state.eps),
        ("state.aux", &state.aux),
    ] {
        if m.nrows() != n || m.ncols() != b {
            return Err(HeeError::dims(
                field,
                format!("{b}x{n} (batch x units)"),
                format!("{}x{}", m.ncols(), m.nrows()),
            ));
        }
    }
    if streams.len() != b {
        return Err(HeeError::dims("streams", b, streams.len()));
    }
    if ws.chunk != cfg.chunk {
        return Err(HeeError::dims(
            "workspace chunk",
            format!("{} (the kernel's chunk)", cfg.chunk),
            ws.chunk,
        ));
    }
    if ws.buf.ncols() != b || ws.buf.nrows() != 4 * n || ws.partial.len() != b.div_ceil(cfg.chunk) {
        return Err(HeeError::dims(
            "workspace",
            format!("buffers for {b} samples of {n} units"),
            format!("{} samples of {} units", ws.buf.ncols(), ws.buf.nrows() / 4),
        ));
    }
    Ok(())
}

/// `latents` (when given) must be `batch` × the latent units of `model`.
pub(crate) fn check_latents<T: Real>(
    model: &HeeModel<T>,
    latents: Option<MatRef<'_, T>>,
    batch: usize,
) -> Result<()> {
    let d = model.total_size() - model.size(0);
    match latents {
        Some(l) if l.nrows() != batch || l.ncols() != d => Err(HeeError::dims(
            "latents",
            format!("{batch}x{d}"),
            format!("{}x{}", l.nrows(), l.ncols()),
        )),
        _ => Ok(()),
    }
}
