//! Interneurons (spec §2): a population ε per layer running fast Langevin
//! dynamics on p(ε | η), τ_ε dε = (η − φ′(ε)) dt + √(2τ_ε) dW, with
//! τ_ε < τ; the neurons read ε̄, the mean of ε over the K sub-steps of one
//! neuron step, in place of A′(η).

use faer::reborrow::ReborrowMut;
use faer::{MatMut, MatRef};
use rand::Rng;

use super::{exact_a_prime_into, LayerAPrime};
use crate::elementwise::{col, col_mut, simd};
use crate::energy::BaseEnergy;
use crate::error::{positive, HeeError, Result};
use crate::model::{HeeModel, LayerEnergy};
use crate::rng::{SampleStream, Ziggurat};
use crate::scalar::Real;

/// Parameters of the interneuron populations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InterneuronConfig {
    /// Time constant τ_ε as a fraction of the neurons' τ (must be in (0, 1)).
    pub tau_ratio: f64,
    /// Sub-steps K per neuron step (≥ 1).
    pub substeps: usize,
}

impl Default for InterneuronConfig {
    /// τ_ε = τ/100 and K = 20. Using ε̄ in place of A′ adds gradient noise
    /// whose effect on the stationary covariance scales like τ_ε/τ (a
    /// fast–slow limit): the exact moment recursion gives a relative
    /// covariance bias of 1.6% at τ_ε/τ = 0.01, 2.4% at 0.02 and 8.6% at
    /// 0.1 on the 8-6-4 sampler-check model (0.9% with analytic A′), nearly
    /// independent of K (`results/defaults/interneuron-bias.csv`, written by
    /// `hee reproduce defaults`). K keeps each sub-step of the ε dynamics
    /// short (hε = Δt/(K τ_ε)).
    fn default() -> Self {
        InterneuronConfig {
            tau_ratio: 0.01,
            substeps: 20,
        }
    }
}

impl InterneuronConfig {
    /// Checks τ_ε/τ ∈ (0, 1) and K ≥ 1.
    pub fn validate(&self) -> Result<()> {
        positive("tau_eps/tau", self.tau_ratio)?;
        if self.tau_ratio >= 1.0 {
            return Err(HeeError::param(
                "tau_eps/tau",
                self.tau_ratio,
                "interneurons must be faster than neurons (tau_eps < tau)",
            ));
        }
        if self.substeps == 0 {
            return Err(HeeError::param("substeps", 0.0, "must be >= 1"));
        }
        Ok(())
    }
}

/// Refreshes the A′ estimate of layer l for one sample column.
///
/// For interneurons, runs K Euler–Maruyama sub-steps of
/// τ_ε dε = (η − φ′(ε)) dt + √(2τ_ε) dW with sub-step Δt/K and stores the
/// sub-step average in `a_prime`. The noise is drawn from `rng`, the
/// sample's own stream, in bulk: for each block of 64 units, one block of
/// normals per sub-step. A population
/// that leaves the finite numbers is reported as a divergence whose cause
/// names the interneurons' sub-step (its `layer` is filled in by the caller).
/// [`LayerAPrime::Constant`] layers are left as they are.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn refresh_layer<T: Real>(
    kind: LayerAPrime,
    layer: LayerEnergy<'_, T>,
    eta: &[T],
    eps: &mut [T],
    a_prime: &mut [T],
    h_eps: T,
    substeps: usize,
    rng: &mut SampleStream,
) -> Result<()> {
    match kind {
        LayerAPrime::Constant => {}
        LayerAPrime::Analytic | LayerAPrime::Quadrature => {
            exact_a_prime_into(kind, layer, eta, a_prime)?
        }
        LayerAPrime::Interneurons => {
            // One energy for every unit (`APrime::resolve` refuses
            // interneurons on a layer with σ per unit).
            let energy = &layer.energy;
            let noise = (T::of(2.0) * h_eps).sqrt();
            // One monomorphic loop per energy kind: no dispatch per element.
            let ok = crate::with_unit_energy!(T, *energy, |e| interneuron_substeps(
                move |v| e.dphi(v),
                eta,
                eps,
                a_prime,
                h_eps,
                noise,
                substeps,
                rng
            ));
            if let Some(e) = ok {
                // A non-finite η comes from the neurons (the caller names
                // their cause when `cause` is empty).
                return Err(HeeError::Diverged {
                    step: 0,
                    layer: 0,
                    cause: if !e.is_finite() {
                        String::new()
                    } else {
                        format!(
                            "interneurons: sub-step dt/(K tau_eps) = {:.3e} is too long for this layer's energy (max curvature {:.3e}); raise substeps or tau_eps/tau",
                            h_eps.f64(),
                            energy.max_curvature()
                        )
                    },
                });
            }
        }
    }
    Ok(())
}

/// Units advanced together by [`interneuron_substeps`]: their ε, running sums
/// and noise live in stack arrays (L1, largely registers) for all K
/// sub-steps, and each sub-step is one vectorisable pass over the block.
const UNIT_BLOCK: usize = 64;

/// K Euler–Maruyama sub-steps of the interneurons of one layer of one
/// sample, ε ← ε + hε(η − φ′(ε)) + √(2hε) ξ, storing the sub-step average in
/// `a_prime`. The noise of each block of units is drawn in bulk, sub-step by
/// sub-step. Returns the η of the first unit whose population left the
/// finite numbers (its ε and estimate are then left unwritten), if any.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn interneuron_substeps<T: Real>(
    dphi: impl Fn(T) -> T,
    eta: &[T],
    eps: &mut [T],
    a_prime: &mut [T],
    h_eps: T,
    noise: T,
    substeps: usize,
    rng: &mut SampleStream,
) -> Option<T> {
    let p = Substeps {
        h_eps,
        noise,
        inv_k: T::one() / T::of(substeps as f64),
        k: substeps,
    };
    let (eta_full, eta_rest) = eta.as_chunks::<UNIT_BLOCK>();
    let (eps_full, eps_rest) = eps.as_chunks_mut::<UNIT_BLOCK>();
    let (ap_full, ap_rest) = a_prime.as_chunks_mut::<UNIT_BLOCK>();
    for ((e, ep), ap) in eta_full.iter().zip(eps_full).zip(ap_full) {
        if let Some(bad) = interneuron_block(&dphi, &p, e, ep, ap, rng) {
            return Some(bad);
        }
    }
    if eta_rest.is_empty() {
        None
    } else {
        interneuron_block(&dphi, &p, eta_rest, eps_rest, ap_rest, rng)
    }
}

/// The constants of [`interneuron_substeps`].
struct Substeps<T> {
    h_eps: T,
    noise: T,
    inv_k: T,
    k: usize,
}

/// K sub-steps of one block of m ≤ [`UNIT_BLOCK`] units. Always inlined:
/// for the full blocks m is then the constant UNIT_BLOCK, so ε and the sums
/// stay in registers across the sub-steps and the copies and the
/// finiteness test are a few vector instructions (with a run-time length
/// they are calls to memmove and a scalar loop).
#[inline(always)]
fn interneuron_block<T: Real>(
    dphi: &impl Fn(T) -> T,
    p: &Substeps<T>,
    e: &[T],
    ep: &mut [T],
    ap: &mut [T],
    rng: &mut SampleStream,
) -> Option<T> {
    let z = Ziggurat::get();
    let m = e.len();
    let mut v = [T::zero(); UNIT_BLOCK];
    let mut sum = [T::zero(); UNIT_BLOCK];
    let mut xi = [T::zero(); UNIT_BLOCK];
    let (v, sum, xi) = (&mut v[..m], &mut sum[..m], &mut xi[..m]);
    v.copy_from_slice(ep);
    for _ in 0..p.k {
        T::fill_normals(z, rng, xi);
        for i in 0..m {
            let vi = v[i] + p.h_eps * (e[i] - dphi(v[i])) + p.noise * xi[i];
            v[i] = vi;
            sum[i] += vi;
        }
    }
    // A branch-free test first; the position only on failure.
    if sum.iter().fold(false, |bad, s| bad | !s.is_finite()) {
        let i = sum.iter().position(|s| !s.is_finite()).unwrap_or(0);
        return Some(e[i]);
    }
    ep.copy_from_slice(v);
    for (a, &s) in ap.iter_mut().zip(sum.iter()) {
        *a = s * p.inv_k;
    }
    None
}

/// Stand-alone interneuron population: runs `n_steps` neuron steps of the
/// interneurons of one unit at fixed η and returns the time average of ε̄.
/// Used to test the estimator against quadrature. The noise comes from a
/// [`SampleStream`] keyed by 32 bytes of `rng`, as in the neural dynamics.
pub fn interneuron_time_average<R: Rng + ?Sized>(
    energy: &BaseEnergy,
    eta: f64,
    dt_over_tau: f64,
    config: &InterneuronConfig,
    burn_in: usize,
    n_steps: usize,
    rng: &mut R,
) -> Result<f64> {
    config.validate()?;
    positive("dt/tau", dt_over_tau)?;
    let h_eps = dt_over_tau / (config.substeps as f64 * config.tau_ratio);
    if h_eps * energy.max_curvature() >= 1.0 {
        return Err(HeeError::param(
            "substeps",
            config.substeps as f64,
            "interneuron sub-step too long for the energy's curvature",
        ));
    }
    let mut stream = SampleStream::at(rng.random(), 0, 0);
    let mut eps = [0.0f64];
    let mut abar = [0.0f64];
    let mut acc = 0.0;
    for t in 0..burn_in + n_steps {
        refresh_layer(
            LayerAPrime::Interneurons,
            LayerEnergy::shared(*energy),
            &[eta],
            &mut eps,
            &mut abar,
            h_eps,
            config.substeps,
            &mut stream,
        )?;
        if t >= burn_in {
            acc += abar[0];
        }
    }
    Ok(acc / n_steps as f64)
}

/// Refreshes the A′ estimate of every layer for a chunk of sample columns.
///
/// The columns go in groups of [`STEAL_COLUMNS`] that an idle thread may
/// take over: the chunk's matrix products are done by then, and on a VM
/// whose cores run at unequal speeds the faster one would otherwise wait at
/// the end of the phase. Each sample's draws come from its own stream, so
/// the result does not depend on who runs which group.
#[allow(clippy::too_many_arguments)]
pub(crate) fn refresh_all<T: Real>(
    model: &HeeModel<T>,
    kinds: &[LayerAPrime],
    eta: MatRef<'_, T>,
    eps: MatMut<'_, T>,
    a_prime: MatMut<'_, T>,
    h_eps: T,
    substeps: usize,
    rngs: &mut [SampleStream],
) -> Result<()> {
    use rayon::prelude::*;
    (
        eta.par_col_chunks(STEAL_COLUMNS),
        eps.par_col_chunks_mut(STEAL_COLUMNS),
        a_prime.par_col_chunks_mut(STEAL_COLUMNS),
        rngs.par_chunks_mut(STEAL_COLUMNS),
    )
        .into_par_iter()
        .try_for_each(|(eta, eps, a_prime, rngs)| {
            refresh_columns(model, kinds, eta, eps, a_prime, h_eps, substeps, rngs)
        })
}

/// Columns per group of [`refresh_all`].
const STEAL_COLUMNS: usize = 16;

#[allow(clippy::too_many_arguments)]
fn refresh_columns<T: Real>(
    model: &HeeModel<T>,
    kinds: &[LayerAPrime],
    eta: MatRef<'_, T>,
    mut eps: MatMut<'_, T>,
    mut a_prime: MatMut<'_, T>,
    h_eps: T,
    substeps: usize,
    rngs: &mut [SampleStream],
) -> Result<()> {
    simd::dispatch(
        #[inline(always)]
        move || {
            for (j, rng) in rngs.iter_mut().enumerate() {
                let eta_j = col(eta, j);
                let eps_j = col_mut(eps.rb_mut(), j);
                let ap_j = col_mut(a_prime.rb_mut(), j);
                for (l, &kind) in kinds.iter().enumerate() {
                    let r = model.offset(l)..model.offset(l + 1);
                    refresh_layer(
                        kind,
                        model.layer_energy(l),
                        &eta_j[r.clone()],
                        &mut eps_j[r.clone()],
                        &mut ap_j[r],
                        h_eps,
                        substeps,
                        rng,
                    )
                    .map_err(|e| match e {
                        HeeError::Diverged { step, cause, .. } => HeeError::Diverged {
                            step,
                            layer: l,
                            cause,
                        },
                        other => other,
                    })?;
                }
            }
            Ok(())
        },
    )
}
