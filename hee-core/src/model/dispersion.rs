//! Dispersion per unit: a gaussian layer may give every unit its own σ_i
//! (one noise level per pixel: the observation model of factor analysis,
//! spec §10), instead of one σ shared by the layer's units.
//!
//! The layer's [`BaseEnergy`] then carries the *smallest* σ_i, so that
//! what is read from it alone — its stiffness `max_curvature`, the step-size
//! checks — stays a bound for every unit; everything that needs the unit's
//! own value asks [`HeeModel::layer_energy`]. Only gaussian layers can have
//! per-unit σ: their A′ and normaliser are closed forms per unit, where a
//! non-gaussian layer would need one quadrature table per unit.

use super::HeeModel;
use crate::energy::BaseEnergy;
use crate::error::{HeeError, Result};
use crate::scalar::Real;

/// σ of every unit of a layer, with σ² and 1/σ² in the working precision
/// for the hot loops.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UnitSigmas<T> {
    pub sigma: Vec<f64>,
    pub s2: Vec<T>,
    pub inv_s2: Vec<T>,
}

impl<T: Real> UnitSigmas<T> {
    fn new(sigma: &[f64]) -> Self {
        UnitSigmas {
            sigma: sigma.to_vec(),
            s2: sigma.iter().map(|s| T::of(s * s)).collect(),
            inv_s2: sigma.iter().map(|s| T::of(1.0 / (s * s))).collect(),
        }
    }

    pub(crate) fn cast<U: Real>(&self) -> UnitSigmas<U> {
        UnitSigmas::new(&self.sigma)
    }
}

/// The base energy of a layer's units as the kernels see it: one
/// [`BaseEnergy`], and σ per unit when the layer has them.
#[derive(Debug, Clone, Copy)]
pub struct LayerEnergy<'a, T> {
    /// The layer's energy (its σ is the smallest σ_i of a per-unit layer).
    pub energy: BaseEnergy,
    units: Option<&'a UnitSigmas<T>>,
}

impl<'a, T: Real> LayerEnergy<'a, T> {
    /// A layer whose units all have `energy`.
    pub fn shared(energy: BaseEnergy) -> Self {
        LayerEnergy {
            energy,
            units: None,
        }
    }

    /// The energy of unit i: the layer's, with σ_i when it has one per unit.
    #[inline]
    pub fn unit(&self, i: usize) -> BaseEnergy {
        match self.units {
            Some(u) => self.energy.with_sigma(u.sigma[i]),
            None => self.energy,
        }
    }

    /// σ of every unit, when the layer has one per unit.
    pub fn unit_sigmas(&self) -> Option<&'a [f64]> {
        self.units.map(|u| &u.sigma[..])
    }

    /// σ_i² per unit in the working precision (hot loops).
    pub(crate) fn s2(&self) -> Option<&'a [T]> {
        self.units.map(|u| &u.s2[..])
    }

    /// 1/σ_i² per unit in the working precision (hot loops).
    pub(crate) fn inv_s2(&self) -> Option<&'a [T]> {
        self.units.map(|u| &u.inv_s2[..])
    }

    /// The largest σ of the layer's units.
    pub fn max_sigma(&self) -> f64 {
        match self.units {
            Some(u) => u.sigma.iter().cloned().fold(0.0, f64::max),
            None => self.energy.sigma(),
        }
    }
}

impl<T: Real> HeeModel<T> {
    /// The energy of layer l's units, with their own σ where the layer has
    /// one per unit. Panics if l > top.
    pub fn layer_energy(&self, l: usize) -> LayerEnergy<'_, T> {
        LayerEnergy {
            energy: self.layers[l].energy,
            units: self.unit_sigmas[l].as_ref(),
        }
    }

    /// σ of every unit of layer l, when it has one per unit. Panics if l > top.
    pub fn unit_sigmas(&self, l: usize) -> Option<&[f64]> {
        self.unit_sigmas[l].as_ref().map(|u| &u.sigma[..])
    }

    /// True when layer l has one σ per unit. Panics if l > top.
    pub fn has_unit_sigmas(&self, l: usize) -> bool {
        self.unit_sigmas[l].is_some()
    }

    /// Gives every unit of gaussian layer l its own σ (each finite and
    /// > 0); the layer's energy then carries the smallest of them.
    pub fn set_unit_sigmas(&mut self, l: usize, sigma: &[f64]) -> Result<()> {
        self.check_layer(l)?;
        if !self.layers[l].energy.is_gaussian() {
            return Err(HeeError::Unsupported(format!(
                "one sigma per unit needs a gaussian layer; layer {l} is {}",
                self.layers[l].energy.name()
            )));
        }
        if sigma.len() != self.size(l) {
            return Err(HeeError::dims(
                format!("layers[{l}] unit sigmas"),
                self.size(l),
                sigma.len(),
            ));
        }
        let mut smallest = f64::INFINITY;
        for (i, &s) in sigma.iter().enumerate() {
            if !(s.is_finite() && s > 0.0) {
                return Err(HeeError::param(
                    format!("layers[{l}].sigma[{i}]"),
                    s,
                    "must be finite and > 0",
                ));
            }
            smallest = smallest.min(s);
        }
        self.layers[l].energy = self.layers[l].energy.with_sigma(smallest);
        match &mut self.unit_sigmas[l] {
            // In place (the learning step sets them every step).
            Some(u) => {
                for (i, &s) in sigma.iter().enumerate() {
                    u.sigma[i] = s;
                    u.s2[i] = T::of(s * s);
                    u.inv_s2[i] = T::of(1.0 / (s * s));
                }
            }
            None => self.unit_sigmas[l] = Some(UnitSigmas::new(sigma)),
        }
        Ok(())
    }

    /// Sets the shared σ of layer l, already checked finite and > 0 by the
    /// caller (the learning step: no validation, so no allocation).
    pub(crate) fn set_layer_sigma_unchecked(&mut self, l: usize, sigma: f64) {
        self.layers[l].energy = self.layers[l].energy.with_sigma(sigma);
    }

    /// Gives layer l one shared σ again (its energy's).
    pub fn clear_unit_sigmas(&mut self, l: usize) -> Result<()> {
        self.check_layer(l)?;
        self.unit_sigmas[l] = None;
        Ok(())
    }
}
