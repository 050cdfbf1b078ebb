//! Learned dispersion (spec §10): every learned σ is moved as s = log σ,
//! by the base-energy rule of §5 with θ = s,
//!
//! ```text
//! Δs ∝ ⟨(x² − E[x² | η]) / σ²⟩          (η held: the natural parametrisation)
//! Δs ∝ ⟨(x − m)² / σ² − 1⟩              (m = σ²η held: the mean parametrisation)
//! ```
//!
//! averaged over the batch, and over the layer's units when they share one
//! σ, so that the rate means the same whatever the layer's width. E[x² | η]
//! is σ² + (σ²η)² for a gaussian unit; for the others it comes from the
//! interneurons' samples ε (x² − ε²) where they run, and from quadrature
//! (a″ + a′²) where the layer's A′ is exact. A floor keeps every σ, and so
//! the density, finite, and each step of log σ is bounded (the gradient is
//! not: one outlier residual of 10σ contributes 99).
//!
//! [`Parametrisation::Mean`] also changes how the rule steps W and b of a
//! gaussian layer: it moves the mean's coefficients M = σ²W, c = σ²b by
//! the rates times the rule's ⟨(x − A′) f(x_{l+1})ᵀ⟩ and ⟨x − A′⟩, each row
//! scaled by its unit's σ² (the inverse Fisher information of the mean),
//! then returns to natural coordinates with the new σ:
//! W ← (σ_old² W + rate·ΔW)/σ_new². A unit with a small σ then learns its
//! mean as fast as one with a large σ, and a change of σ leaves the mean
//! where it was. [`RowSteps`] is that plan of one step.

use faer::MatRef;

use super::grads::{EnergyReference, ParamGrads};
use super::LocalLearning;
use crate::aprime::{quadrature, LayerAPrime};
use crate::dynamics::SamplerState;
use crate::error::{HeeError, Result};
use crate::model::HeeModel;
use crate::scalar::Real;

/// The coordinates the rule steps a gaussian layer's parameters in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parametrisation {
    /// η = W f + b and σ, as the model stores them (spec §5).
    #[default]
    Natural,
    /// m = σ²η = M f + c and σ for gaussian layers (spec §10); non-gaussian
    /// layers keep the natural coordinates.
    Mean,
}

impl Parametrisation {
    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Parametrisation::Natural => "natural",
            Parametrisation::Mean => "mean",
        }
    }
}

/// A set of layers, by index (models of up to 64 layers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerSet(u64);

impl LayerSet {
    /// No layer.
    pub const EMPTY: LayerSet = LayerSet(0);

    /// The set of `layers` (each below 64).
    pub fn of(layers: &[usize]) -> Result<Self> {
        let mut s = LayerSet::EMPTY;
        for &l in layers {
            if l >= 64 {
                return Err(HeeError::dims("layer set", "layers below 64", l));
            }
            s.0 |= 1 << l;
        }
        Ok(s)
    }

    /// Whether layer l is in the set.
    pub fn contains(&self, l: usize) -> bool {
        l < 64 && self.0 & (1 << l) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
}

/// Smallest σ a learned dispersion can reach unless told otherwise.
pub const DEFAULT_SIGMA_FLOOR: f64 = 1e-3;

/// Which layers learn their σ, at what rate, above what floor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DispersionLearning {
    /// Rate of s = log σ (0 keeps every σ fixed).
    pub rate: f64,
    /// No σ goes below this.
    pub floor: f64,
    /// The layers whose σ learn (one per unit where the layer has them).
    pub layers: LayerSet,
    /// The largest change of log σ in one application of the rule. The
    /// rule's gradient is unbounded above (a residual of 10σ gives 99: one
    /// outlying minibatch could multiply σ by e^{rate·99} in one step),
    /// while in mean coordinates it is ≥ −1, so σ shrinks by at most the
    /// rate per step anyway.
    pub max_step: f64,
}

/// [`DispersionLearning::max_step`] unless told otherwise: σ grows by at
/// most 10.5% per application. A tighter bound biases σ low wherever the
/// batch means of its gradient are heavy-tailed upwards (measured: factor
/// analysis at 0.01 per step ended 6.8 nats below EM, at 0.1 within 0.2).
pub const DEFAULT_MAX_SIGMA_STEP: f64 = 0.1;

impl Default for DispersionLearning {
    fn default() -> Self {
        DispersionLearning {
            rate: 0.0,
            floor: DEFAULT_SIGMA_FLOOR,
            layers: LayerSet::EMPTY,
            max_step: DEFAULT_MAX_SIGMA_STEP,
        }
    }
}

impl DispersionLearning {
    /// Whether any σ moves.
    pub fn active(&self) -> bool {
        self.rate > 0.0 && !self.layers.is_empty()
    }
}

/// Number of σ of layer l: one per unit, or one shared.
pub(crate) fn sigma_count<T: Real>(model: &HeeModel<T>, l: usize) -> usize {
    if model.has_unit_sigmas(l) {
        model.size(l)
    } else {
        1
    }
}

impl<T: Real> HeeModel<T> {
    /// ∂ log p/∂s of layer l's σ (s = log σ) at states `x` (batch × total
    /// units), averaged over the batch (and the units, when they share σ):
    /// one entry per σ of the layer. `eta` is η(x); `reference` says where
    /// E[x² | η] comes from: the interneurons' samples ε (non-gaussian
    /// layers; a gaussian one is always exact), or quadrature at η. With [`Parametrisation::Mean`] a gaussian layer
    /// takes (x − m)²/σ² − 1, otherwise (x² − E[x² | η])/σ².
    pub fn log_sigma_grads(
        &self,
        l: usize,
        x: MatRef<'_, T>,
        eta: MatRef<'_, T>,
        reference: EnergyReference<'_, T>,
        parametrisation: Parametrisation,
    ) -> Result<Vec<f64>> {
        self.check_layer(l)?;
        self.check_batch("x", x, None)?;
        self.check_batch("eta", eta, Some(x.nrows()))?;
        let reference = match reference {
            EnergyReference::Exact(m) => {
                self.check_batch("reference", m, Some(x.nrows()))?;
                EnergyReference::Exact(m.transpose())
            }
            EnergyReference::Samples(m) => {
                self.check_batch("reference", m, Some(x.nrows()))?;
                EnergyReference::Samples(m.transpose())
            }
        };
        let mut out = vec![0.0; sigma_count(self, l)];
        self.log_sigma_grads_unchecked(
            l,
            x.transpose(),
            eta.transpose(),
            reference,
            parametrisation,
            &mut out,
        )?;
        Ok(out)
    }

    /// [`log_sigma_grads`](Self::log_sigma_grads) in the internal layout
    /// (one column per sample) into `out` (one entry per σ of the layer).
    pub(crate) fn log_sigma_grads_unchecked(
        &self,
        l: usize,
        x: MatRef<'_, T>,
        eta: MatRef<'_, T>,
        reference: EnergyReference<'_, T>,
        parametrisation: Parametrisation,
        out: &mut [f64],
    ) -> Result<()> {
        let layer = self.layer_energy(l);
        let gaussian = layer.energy.is_gaussian();
        let (xl, el) = (self.layer_of(x, l), self.layer_of(eta, l));
        let per_unit = self.has_unit_sigmas(l);
        if out.len() != sigma_count(self, l) {
            return Err(HeeError::dims(
                format!("log_sigma grads of layer {l}"),
                sigma_count(self, l),
                out.len(),
            ));
        }
        out.fill(0.0);
        for i in 0..xl.nrows() {
            let e = layer.unit(i);
            let s2 = e.sigma() * e.sigma();
            let mut acc = 0.0;
            for j in 0..xl.ncols() {
                let (xv, ev) = (xl[(i, j)].f64(), el[(i, j)].f64());
                acc += if gaussian {
                    let m = s2 * ev;
                    match parametrisation {
                        Parametrisation::Mean => (xv - m) * (xv - m) / s2 - 1.0,
                        Parametrisation::Natural => (xv * xv - s2 - m * m) / s2,
                    }
                } else {
                    let second = match reference {
                        EnergyReference::Samples(eps) => {
                            self.layer_of(eps, l)[(i, j)].f64().powi(2)
                        }
                        EnergyReference::Exact(_) => {
                            let m = quadrature::moments(&e, ev)?;
                            m.variance + m.mean * m.mean
                        }
                    };
                    (xv * xv - second) / s2
                };
            }
            out[if per_unit { i } else { 0 }] += acc;
        }
        let count = (xl.ncols() * if per_unit { 1 } else { xl.nrows() }) as f64;
        for v in out.iter_mut() {
            *v /= count;
        }
        Ok(())
    }
}

/// The σ-slots of `grads` from the state at the start of a step: exact
/// E[x² | η] for gaussian layers and wherever A′ is exact, the
/// interneurons' samples where they run.
pub(crate) fn sigma_gradients<T: Real>(
    model: &HeeModel<T>,
    state: &SamplerState<T>,
    kinds: &[LayerAPrime],
    rates: &LocalLearning,
    grads: &mut ParamGrads<T>,
) -> Result<()> {
    for l in 0..model.n_layers() {
        let out = &mut grads.log_sigma[l];
        if out.len() != sigma_count(model, l) {
            return Err(HeeError::dims(
                format!("grads.log_sigma[{l}]"),
                sigma_count(model, l),
                out.len(),
            ));
        }
        if !rates.sigma.layers.contains(l) {
            out.fill(0.0);
            continue;
        }
        let reference = match kinds[l] {
            LayerAPrime::Interneurons if !model.energy(l).is_gaussian() => {
                EnergyReference::Samples(state.eps.as_ref())
            }
            _ => EnergyReference::Exact(state.eta.as_ref()),
        };
        model.log_sigma_grads_unchecked(
            l,
            state.x.as_ref(),
            state.eta.as_ref(),
            reference,
            rates.parametrisation,
            out,
        )?;
    }
    Ok(())
}

/// How one learning step moves every layer: the σ it leaves and, for the
/// layers stepped in mean coordinates, each row's w ← keep·w + rate·g for
/// W_l and b_l. Buffers sized once per model (the step loop allocates
/// nothing).
#[derive(Debug, Clone)]
pub(crate) struct RowSteps<T> {
    /// Per layer, the σ after the step (one entry, or one per unit).
    pub sigma: Vec<Vec<f64>>,
    /// Per layer, whether σ changes.
    pub moved: Vec<bool>,
    /// Per layer, whether its rows are stepped by `keep`, `rate_w`, `rate_b`
    /// (the mean parametrisation of a gaussian layer) or uniformly.
    pub per_row: Vec<bool>,
    pub keep: Vec<Vec<T>>,
    pub rate_w: Vec<Vec<T>>,
    pub rate_b: Vec<Vec<T>>,
}

impl<T: Real> RowSteps<T> {
    pub(crate) fn new(model: &HeeModel<T>) -> Self {
        let n = model.n_layers();
        let rows = |l: usize| vec![T::zero(); model.size(l)];
        RowSteps {
            sigma: (0..n).map(|l| vec![0.0; sigma_count(model, l)]).collect(),
            moved: vec![false; n],
            per_row: vec![false; n],
            keep: (0..n).map(rows).collect(),
            rate_w: (0..n).map(rows).collect(),
            rate_b: (0..n).map(rows).collect(),
        }
    }

    /// Whether the buffers fit `model`.
    pub(crate) fn fits(&self, model: &HeeModel<T>) -> bool {
        self.sigma.len() == model.n_layers()
            && (0..model.n_layers()).all(|l| {
                self.sigma[l].len() == sigma_count(model, l) && self.keep[l].len() == model.size(l)
            })
    }

    /// Plans the step of `rates` with the σ-gradients in `grads`: new σ
    /// (floored, refused when not finite), and the rows' coefficients.
    pub(crate) fn plan(
        &mut self,
        model: &HeeModel<T>,
        grads: &ParamGrads<T>,
        rates: &LocalLearning,
    ) -> Result<()> {
        if !self.fits(model) || grads.log_sigma.len() != model.n_layers() {
            return Err(HeeError::dims(
                "learning scratch",
                "buffers for this model's layers and sigmas (LearningScratch::new)",
                "other shapes",
            ));
        }
        let learn = rates.sigma.active();
        let floor = rates.sigma.floor.ln();
        for l in 0..model.n_layers() {
            let layer = model.layer_energy(l);
            let moves = learn && rates.sigma.layers.contains(l);
            self.moved[l] = moves;
            for (k, s) in self.sigma[l].iter_mut().enumerate() {
                let old = layer.unit(k).sigma();
                *s = if moves {
                    let g = grads.log_sigma[l][k];
                    let m = rates.sigma.max_step;
                    let step = (rates.sigma.rate * g).clamp(-m, m);
                    let next = (old.ln() + step).max(floor).exp();
                    if !(next.is_finite() && next > 0.0) {
                        return Err(HeeError::param(
                            format!("layers[{l}].sigma[{k}] after the update"),
                            next,
                            "must be finite and > 0 (lower lr_sigma)",
                        ));
                    }
                    next
                } else {
                    old
                };
            }
            self.per_row[l] =
                rates.parametrisation == Parametrisation::Mean && layer.energy.is_gaussian();
            if self.per_row[l] {
                let shared = self.sigma[l].len() == 1;
                for i in 0..model.size(l) {
                    let old = layer.unit(i).sigma().powi(2);
                    let new = self.sigma[l][if shared { 0 } else { i }].powi(2);
                    self.keep[l][i] = T::of(old / new);
                    self.rate_w[l][i] = T::of(rates.lr_weights / new);
                    self.rate_b[l][i] = T::of(rates.lr_biases / new);
                }
            }
        }
        Ok(())
    }

    /// Sets the planned σ in the model.
    pub(crate) fn set_sigmas(&self, model: &mut HeeModel<T>) -> Result<()> {
        for l in 0..model.n_layers() {
            if !self.moved[l] {
                continue;
            }
            if model.has_unit_sigmas(l) {
                model.set_unit_sigmas(l, &self.sigma[l])?;
            } else {
                // `plan` checked it finite and > 0.
                model.set_layer_sigma_unchecked(l, self.sigma[l][0]);
            }
        }
        Ok(())
    }

    /// The smallest planned σ of layer l.
    pub(crate) fn smallest(&self, l: usize) -> f64 {
        self.sigma[l].iter().cloned().fold(f64::INFINITY, f64::min)
    }
}
