//! A training configuration resolved into the core's types (layers,
//! dispersions, learning rates, dynamics), each checked and every bad
//! value a one-line error naming its key.

use hee_core::learning::{DispersionLearning, LayerSet, LocalLearning, Parametrisation};
use hee_core::{APrime, BaseEnergy, InterneuronConfig, LayerSpec, NeuralConfig, Nonlinearity};

use super::{bad, Dispersion, TrainConfig, DEFAULT_SIGMA_0};
use crate::CliError;

impl TrainConfig {
    /// The layers of the model, with their energies (checked).
    pub fn layer_specs(&self) -> Result<Vec<LayerSpec>, CliError> {
        let m = &self.model;
        if m.layers.len() < 2 || m.layers.contains(&0) {
            return Err(bad(
                "model.layers",
                format!("{:?}", m.layers),
                "at least two layer sizes >= 1, observation first",
            ));
        }
        if !m.energies.is_empty() && m.energies.len() != m.layers.len() {
            return Err(bad(
                "model.energies",
                format!("{} entries", m.energies.len()),
                &format!("one per layer ({})", m.layers.len()),
            ));
        }
        Ok(m.layers
            .iter()
            .enumerate()
            .map(|(l, &size)| LayerSpec {
                size,
                energy: m.energies.get(l).map_or(
                    BaseEnergy::gaussian(if l == 0 { DEFAULT_SIGMA_0 } else { 1.0 }),
                    |e| e.to_energy(),
                ),
            })
            .collect())
    }

    /// Per layer, how its σ is held: `fixed`, `layer` or `unit` (checked:
    /// `unit` needs a gaussian layer).
    pub fn dispersion(&self) -> Result<Vec<Dispersion>, CliError> {
        let m = &self.model;
        if m.dispersion.len() > m.layers.len() {
            return Err(bad(
                "model.dispersion",
                format!("{} entries", m.dispersion.len()),
                &format!("at most one per layer ({})", m.layers.len()),
            ));
        }
        let specs = self.layer_specs()?;
        (0..m.layers.len())
            // Past the list: fixed.
            .map(|l| m.dispersion.get(l).map_or("fixed", String::as_str))
            .enumerate()
            .map(|(l, d)| match d {
                "fixed" => Ok(Dispersion::Fixed),
                "layer" => Ok(Dispersion::Layer),
                "unit" if specs[l].energy.is_gaussian() => Ok(Dispersion::Unit),
                "unit" => Err(bad(
                    &format!("model.dispersion[{l}]"),
                    "\"unit\"",
                    &format!(
                        "fixed or layer: one sigma per unit needs a gaussian layer, layer {l} is {}",
                        specs[l].energy.name()
                    ),
                )),
                other => Err(bad(
                    &format!("model.dispersion[{l}]"),
                    format!("{other:?}"),
                    "fixed, layer or unit",
                )),
            })
            .collect()
    }

    /// The rule's rates and coordinates (before the schedule scales them).
    pub fn rates(&self) -> Result<LocalLearning, CliError> {
        let l = &self.learning;
        let parametrisation = match l.parametrisation.as_str() {
            "natural" => Parametrisation::Natural,
            "mean" => Parametrisation::Mean,
            other => return Err(bad("learning.parametrisation", other, "natural or mean")),
        };
        let learned: Vec<usize> = self
            .dispersion()?
            .iter()
            .enumerate()
            .filter(|(_, d)| **d != Dispersion::Fixed)
            .map(|(l, _)| l)
            .collect();
        for (f, v) in [
            ("learning.sigma_min", l.sigma_min),
            ("learning.sigma_max_step", l.sigma_max_step),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(f, v, "a finite number > 0"));
            }
        }
        Ok(LocalLearning {
            lr_weights: l.lr_weights,
            lr_biases: l.lr_biases,
            lr_energy: l.lr_energy,
            sigma: DispersionLearning {
                rate: l.lr_sigma,
                floor: l.sigma_min,
                layers: LayerSet::of(&learned)?,
                max_step: l.sigma_max_step,
            },
            parametrisation,
        })
    }

    /// The nonlinearity f.
    pub fn nonlinearity(&self) -> Result<Nonlinearity, CliError> {
        match self.model.nonlinearity.as_str() {
            "identity" => Ok(Nonlinearity::Identity),
            "tanh" => Ok(Nonlinearity::Tanh),
            "softplus" => Ok(Nonlinearity::Softplus),
            other => Err(bad(
                "model.nonlinearity",
                other,
                "identity, tanh or softplus",
            )),
        }
    }

    /// The shared neural settings.
    pub fn neural(&self) -> Result<NeuralConfig, CliError> {
        let d = &self.dynamics;
        let mut c = NeuralConfig::new(d.dt, d.tau);
        let inter = InterneuronConfig {
            tau_ratio: d.tau_ratio,
            substeps: d.substeps,
        };
        c.a_prime = match d.a_prime.as_str() {
            "auto" => APrime::Auto(inter),
            "analytic" => APrime::Analytic,
            "quadrature" => APrime::Quadrature,
            "interneurons" => APrime::Interneurons(inter),
            other => {
                return Err(bad(
                    "dynamics.a_prime",
                    other,
                    "auto, analytic, quadrature or interneurons",
                ))
            }
        };
        c.chunk = d.chunk;
        c.validate()?;
        Ok(c)
    }

    /// Checks the settings that have no other validation.
    pub fn check(&self) -> Result<(), CliError> {
        self.layer_specs()?;
        self.nonlinearity()?;
        self.neural()?;
        self.rates()?;
        if !(self.dynamics.dt_fraction > 0.0 && self.dynamics.dt_fraction < 2.0) {
            return Err(bad(
                "dynamics.dt_fraction",
                self.dynamics.dt_fraction,
                "a number in (0, 2): dt = dt_fraction * tau / lambda_max",
            ));
        }
        if !(self.dynamics.retune_sigma_change > 0.0
            && self.dynamics.retune_sigma_change.is_finite())
        {
            return Err(bad(
                "dynamics.retune_sigma_change",
                self.dynamics.retune_sigma_change,
                "a finite number > 0",
            ));
        }
        if !matches!(self.dynamics.kind.as_str(), "plain" | "adaptation") {
            return Err(bad(
                "dynamics.kind",
                &self.dynamics.kind,
                "plain or adaptation",
            ));
        }
        if !matches!(self.learning.schedule.as_str(), "constant" | "cosine") {
            return Err(bad(
                "learning.schedule",
                &self.learning.schedule,
                "constant or cosine",
            ));
        }
        if !matches!(
            self.data.scaling.as_str(),
            "auto" | "as-loaded" | "standardized" | "dequantized"
        ) {
            return Err(bad(
                "data.scaling",
                &self.data.scaling,
                "auto, as-loaded, standardized or dequantized",
            ));
        }
        if self.epochs == 0 {
            return Err(bad("epochs", 0, ">= 1"));
        }
        if self.learning.batch == 0 {
            return Err(bad("learning.batch", 0, ">= 1"));
        }
        if self.learning.learning_steps == 0 {
            return Err(bad("learning.learning_steps", 0, ">= 1"));
        }
        if self.learning.steps_per_update == 0 {
            return Err(bad("learning.steps_per_update", 0, ">= 1"));
        }
        for (f, v) in [
            ("learning.lr_weights", self.learning.lr_weights),
            ("learning.lr_biases", self.learning.lr_biases),
            ("learning.lr_energy", self.learning.lr_energy),
            ("learning.lr_sigma", self.learning.lr_sigma),
            ("model.init_scale", self.model.init_scale),
            ("dynamics.tau_a", self.dynamics.tau_a),
            ("dynamics.g", self.dynamics.g),
            ("data.multiply", self.data.multiply),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(bad(f, v, "a finite number >= 0"));
            }
        }
        Ok(())
    }
}
