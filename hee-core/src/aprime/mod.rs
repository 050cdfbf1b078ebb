//! Estimators of A′(η) = E[x | η], the gradient of each layer's log-normaliser
//! (spec §2). Three estimators sit behind one interface:
//!
//! * [`APrime::Analytic`]: σ²η, gaussian layers only;
//! * [`APrime::Quadrature`]: a one-dimensional integral per unit (the reference);
//! * [`APrime::Interneurons`]: a population ε per layer running fast Langevin
//!   dynamics on p(ε | η) with time constant τ_ε < τ; the neurons use ε̄, the
//!   mean of ε over the K sub-steps of one neuron step.
//!
//! The exact estimators are in this file ([`exact_a_prime_into`], and
//! [`quadrature`] for the one-dimensional integrals, [`table`] for a
//! layer's a(η) and a′(η) interpolated from it); the interneurons in
//! [`interneurons`].

pub mod interneurons;
pub mod quadrature;
pub mod table;

pub use interneurons::{interneuron_time_average, InterneuronConfig};

use crate::error::{HeeError, Result};
use crate::model::{HeeModel, LayerEnergy};
use crate::scalar::Real;

/// Which estimator of A′(η) the dynamics use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum APrime {
    /// Closed form σ²η; only for gaussian layers.
    Analytic,
    /// Quadrature per unit (slow; the reference).
    Quadrature,
    /// Interneuron populations for every layer.
    Interneurons(InterneuronConfig),
    /// Analytic for gaussian layers, interneurons for the others.
    Auto(InterneuronConfig),
}

impl Default for APrime {
    fn default() -> Self {
        APrime::Auto(InterneuronConfig::default())
    }
}

/// The estimator chosen for one layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LayerAPrime {
    Analytic,
    Quadrature,
    Interneurons,
    /// The top layer: η_L = b_L is the same for every sample and no neuron
    /// reads A′_L (only learning b_L does), so it is computed exactly, once
    /// per unit, whenever the parameters change — never by a population.
    Constant,
}

impl APrime {
    /// Resolves the estimator of every layer, refusing analytic A′ for a
    /// non-gaussian layer below the top. The top layer is always
    /// [`LayerAPrime::Constant`].
    pub fn resolve<T: Real>(&self, model: &HeeModel<T>) -> Result<Vec<LayerAPrime>> {
        let mut out = Vec::with_capacity(model.n_layers());
        self.resolve_into(model, &mut out)?;
        Ok(out)
    }

    /// [`APrime::resolve`] into a reused buffer (no allocation once it has
    /// grown to the number of layers: the step loop calls this).
    pub fn resolve_into<T: Real>(
        &self,
        model: &HeeModel<T>,
        out: &mut Vec<LayerAPrime>,
    ) -> Result<()> {
        if let Some(c) = self.interneurons() {
            c.validate()?;
        }
        out.clear();
        for l in 0..model.n_layers() {
            let gaussian = model.energy(l).is_gaussian();
            if model.has_unit_sigmas(l)
                && l != model.top()
                && matches!(self, APrime::Interneurons(_))
            {
                return Err(HeeError::Unsupported(format!(
                    "interneurons run one energy per layer; layer {l} has one sigma per unit (use auto, analytic or quadrature)"
                )));
            }
            out.push(match self {
                _ if l == model.top() => LayerAPrime::Constant,
                APrime::Analytic if gaussian => LayerAPrime::Analytic,
                APrime::Analytic => {
                    return Err(HeeError::Unsupported(format!(
                        "analytic A' needs a gaussian layer; layer {l} is {}",
                        model.energy(l).name()
                    )))
                }
                APrime::Quadrature => LayerAPrime::Quadrature,
                APrime::Interneurons(_) => LayerAPrime::Interneurons,
                APrime::Auto(_) if gaussian => LayerAPrime::Analytic,
                APrime::Auto(_) => LayerAPrime::Interneurons,
            });
        }
        Ok(())
    }

    /// The interneuron parameters, when any layer may use them.
    pub fn interneurons(&self) -> Option<InterneuronConfig> {
        match *self {
            APrime::Interneurons(c) | APrime::Auto(c) => Some(c),
            _ => None,
        }
    }

    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            APrime::Analytic => "analytic",
            APrime::Quadrature => "quadrature",
            APrime::Interneurons(_) => "interneurons",
            APrime::Auto(_) => "auto",
        }
    }
}

/// The exact A′(η) of one layer's units into `out`: σ²η for
/// [`LayerAPrime::Analytic`] (gaussian layers; σ_i²η_i with σ per unit),
/// the quadrature mean for [`LayerAPrime::Quadrature`] (closed form for a
/// gaussian layer with σ per unit); the other kinds leave `out` as it is
/// (their estimate comes from elsewhere).
#[inline]
pub(crate) fn exact_a_prime_into<T: Real>(
    kind: LayerAPrime,
    energy: LayerEnergy<'_, T>,
    eta: &[T],
    out: &mut [T],
) -> Result<()> {
    match (kind, energy.s2()) {
        (LayerAPrime::Analytic | LayerAPrime::Quadrature, Some(s2)) => {
            for ((a, &e), &s2) in out.iter_mut().zip(eta).zip(s2) {
                *a = s2 * e;
            }
        }
        (LayerAPrime::Analytic, None) => {
            let s = energy.energy.sigma();
            let s2 = T::of(s * s);
            for (a, &e) in out.iter_mut().zip(eta) {
                *a = s2 * e;
            }
        }
        (LayerAPrime::Quadrature, None) => {
            for (a, &e) in out.iter_mut().zip(eta) {
                *a = T::of(quadrature::unit_moments(&energy.energy, e.f64())?.mean);
            }
        }
        (LayerAPrime::Interneurons | LayerAPrime::Constant, _) => {}
    }
    Ok(())
}
