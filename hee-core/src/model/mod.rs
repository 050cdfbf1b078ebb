//! The HEE model (spec §1): a stack of exponential-family layers and its
//! parameters. What is computed from them lives beside this file:
//!
//! * [`eta`]: the natural parameters η_l = W_l f(x_{l+1}) + b_l, of every
//!   layer or of one layer from the layer above, and the exact A′(η);
//! * [`drift`]: ∂U/∂x, the force on the neurons, and the same for the
//!   unnormalised energy Ẽ of the negative-phase baseline (spec §7);
//! * [`joint`]: the joint energy U, in total and split by layer, and Ẽ;
//! * [`log_joint`]: the same U per layer from tabulated log-normalisers,
//!   fast enough for annealed importance sampling.
//!
//! The learning rule's gradients with respect to the parameters are in
//! [`crate::learning`].
//!
//! Layout. Every public function takes and returns batches **one sample per
//! row**: a batch of network states is batch × [`total_size`](HeeModel::total_size),
//! the layers side by side (layer 0 first, layer l in the columns
//! `offset(l)..offset(l)+size(l)`), and is checked for shape before use.
//! Inside the crate the same matrices are stored transposed (one column per
//! sample, so each sample is contiguous and η_l = W_l f(x_{l+1}) + b_l is one
//! matrix product); the hot loops call the `pub(crate)` `*_unchecked`
//! kernels on those.

pub mod dispersion;
pub mod drift;
pub mod eta;
pub mod joint;
pub mod log_joint;

use faer::{Mat, MatMut, MatRef};
use rand::Rng;

use crate::elementwise::check_finite;
use crate::energy::BaseEnergy;
use crate::error::{HeeError, Result};
use crate::nonlinearity::Nonlinearity;
use crate::scalar::Real;

pub use dispersion::LayerEnergy;
use dispersion::UnitSigmas;

/// One layer: its width and the base energy of its units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerSpec {
    pub size: usize,
    pub energy: BaseEnergy,
}

/// A hierarchical exponential-family energy-based model.
///
/// Layer 0 is the observation, layer `top()` the highest latent layer.
#[derive(Debug, Clone)]
pub struct HeeModel<T> {
    layers: Vec<LayerSpec>,
    offsets: Vec<usize>,
    /// W_l, of shape size(l) × size(l+1), for l < top.
    weights: Vec<Mat<T>>,
    /// b_l for every layer (b_top is the top layer's natural parameter).
    biases: Vec<Vec<T>>,
    /// σ per unit, for the gaussian layers that have one ([`dispersion`]).
    unit_sigmas: Vec<Option<UnitSigmas<T>>>,
    nonlinearity: Nonlinearity,
}

impl<T: Real> HeeModel<T> {
    /// A model with the given layers (observation first), zero weights and biases.
    pub fn new(layers: &[LayerSpec], nonlinearity: Nonlinearity) -> Result<Self> {
        if layers.len() < 2 {
            return Err(HeeError::dims(
                "layers",
                "at least 2 (observation + one latent)",
                layers.len(),
            ));
        }
        let mut offsets = Vec::with_capacity(layers.len() + 1);
        let mut off = 0;
        for (l, spec) in layers.iter().enumerate() {
            if spec.size == 0 {
                return Err(HeeError::dims(format!("layers[{l}].size"), ">= 1", 0));
            }
            spec.energy.validate(&format!("layers[{l}].energy"))?;
            offsets.push(off);
            off += spec.size;
        }
        offsets.push(off);
        let weights = (0..layers.len() - 1)
            .map(|l| Mat::zeros(layers[l].size, layers[l + 1].size))
            .collect();
        let biases = layers.iter().map(|s| vec![T::zero(); s.size]).collect();
        Ok(HeeModel {
            layers: layers.to_vec(),
            offsets,
            weights,
            biases,
            unit_sigmas: vec![None; layers.len()],
            nonlinearity,
        })
    }

    /// Fills every W_l with N(0, scale²/size(l+1)) entries.
    pub fn randomize_weights<R: Rng + ?Sized>(&mut self, rng: &mut R, scale: f64) {
        for w in &mut self.weights {
            let s = T::of(scale / (w.ncols() as f64).sqrt());
            for j in 0..w.ncols() {
                for v in w.col_as_slice_mut(j) {
                    *v = s * T::std_normal(rng);
                }
            }
        }
    }

    /// An error unless `l` is a layer of this model.
    pub fn check_layer(&self, l: usize) -> Result<()> {
        if l >= self.layers.len() {
            return Err(HeeError::dims(
                "layer index",
                format!("0..={}", self.top()),
                l,
            ));
        }
        Ok(())
    }

    /// Number of layers including the observation (L + 1).
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }
    /// Index L of the top layer.
    pub fn top(&self) -> usize {
        self.layers.len() - 1
    }
    /// Width of layer l. Panics if l > top (like slice indexing; see
    /// [`check_layer`](Self::check_layer)).
    pub fn size(&self, l: usize) -> usize {
        self.layers[l].size
    }
    /// First unit of layer l in a stacked state (l ≤ L + 1; panics beyond).
    pub fn offset(&self, l: usize) -> usize {
        self.offsets[l]
    }
    /// Total number of units, all layers.
    pub fn total_size(&self) -> usize {
        self.offsets[self.layers.len()]
    }
    /// Layer specifications.
    pub fn layers(&self) -> &[LayerSpec] {
        &self.layers
    }
    /// Base energy of layer l. Panics if l > top.
    pub fn energy(&self, l: usize) -> &BaseEnergy {
        &self.layers[l].energy
    }
    /// Replaces the base energy of layer l (validated). A layer with σ
    /// per unit keeps them (its energy carries the smallest) and must stay
    /// gaussian.
    pub fn set_energy(&mut self, l: usize, energy: BaseEnergy) -> Result<()> {
        self.check_layer(l)?;
        energy.validate(&format!("layers[{l}].energy"))?;
        match &self.unit_sigmas[l] {
            Some(_) if !energy.is_gaussian() => {
                return Err(HeeError::Unsupported(format!(
                    "layer {l} has one sigma per unit, which needs a gaussian energy, not {}",
                    energy.name()
                )));
            }
            Some(u) => {
                let smallest = u.sigma.iter().cloned().fold(f64::INFINITY, f64::min);
                self.layers[l].energy = energy.with_sigma(smallest);
            }
            None => self.layers[l].energy = energy,
        }
        Ok(())
    }
    /// The nonlinearity f.
    pub fn nonlinearity(&self) -> Nonlinearity {
        self.nonlinearity
    }
    /// W_l (size(l) × size(l+1)). Panics if l ≥ top.
    pub fn weight(&self, l: usize) -> MatRef<'_, T> {
        self.weights[l].as_ref()
    }
    /// Mutable W_l (its shape cannot change). Panics if l ≥ top.
    pub fn weight_mut(&mut self, l: usize) -> MatMut<'_, T> {
        self.weights[l].as_mut()
    }
    /// Swaps W_l with `next[l]` for every l (the learning step's update; the
    /// caller has checked that the shapes are the model's).
    pub(crate) fn swap_weights(&mut self, next: &mut [Mat<T>]) {
        for (w, n) in self.weights.iter_mut().zip(next) {
            std::mem::swap(w, n);
        }
    }
    /// Replaces W_l, checking its shape and finiteness.
    pub fn set_weight(&mut self, l: usize, w: MatRef<'_, T>) -> Result<()> {
        if l >= self.weights.len() {
            return Err(HeeError::dims(
                "weight index",
                format!("< {}", self.weights.len()),
                l,
            ));
        }
        let (r, c) = (self.size(l), self.size(l + 1));
        if w.nrows() != r || w.ncols() != c {
            return Err(HeeError::dims(
                format!("W[{l}]"),
                format!("{r}x{c}"),
                format!("{}x{}", w.nrows(), w.ncols()),
            ));
        }
        check_finite(&format!("W[{l}]"), w)?;
        self.weights[l].copy_from(w);
        Ok(())
    }
    /// b_l. Panics if l > top.
    pub fn bias(&self, l: usize) -> &[T] {
        &self.biases[l]
    }
    /// Mutable b_l. Panics if l > top.
    pub fn bias_mut(&mut self, l: usize) -> &mut [T] {
        &mut self.biases[l]
    }
    /// Replaces b_l, checking its length and finiteness.
    pub fn set_bias(&mut self, l: usize, b: &[T]) -> Result<()> {
        self.check_layer(l)?;
        if b.len() != self.size(l) {
            return Err(HeeError::dims(format!("b[{l}]"), self.size(l), b.len()));
        }
        if let Some((i, v)) = b.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(HeeError::NonFiniteInput {
                field: format!("b[{l}]"),
                row: i,
                col: 0,
                value: v.f64(),
            });
        }
        self.biases[l].copy_from_slice(b);
        Ok(())
    }

    /// The same model in another precision.
    pub fn cast<U: Real>(&self) -> HeeModel<U> {
        HeeModel {
            layers: self.layers.clone(),
            offsets: self.offsets.clone(),
            weights: self
                .weights
                .iter()
                .map(|w| Mat::from_fn(w.nrows(), w.ncols(), |i, j| U::of(w[(i, j)].f64())))
                .collect(),
            biases: self
                .biases
                .iter()
                .map(|b| b.iter().map(|v| U::of(v.f64())).collect())
                .collect(),
            unit_sigmas: self
                .unit_sigmas
                .iter()
                .map(|u| u.as_ref().map(UnitSigmas::cast))
                .collect(),
            nonlinearity: self.nonlinearity,
        }
    }

    /// Checks that an internal stacked state (units × samples) has the model's height.
    pub(crate) fn check_state(&self, field: &str, x: MatRef<'_, T>) -> Result<()> {
        if x.nrows() != self.total_size() {
            return Err(HeeError::dims(field, self.total_size(), x.nrows()));
        }
        Ok(())
    }

    /// Checks that a batch passed in by a caller is batch × total units, with
    /// `rows` samples when given.
    pub(crate) fn check_batch(
        &self,
        field: &str,
        x: MatRef<'_, T>,
        rows: Option<usize>,
    ) -> Result<()> {
        let n = self.total_size();
        let b = rows.unwrap_or(x.nrows());
        if x.ncols() != n || x.nrows() != b {
            return Err(HeeError::dims(
                field,
                format!("{b}x{n} (samples x units)"),
                format!("{}x{}", x.nrows(), x.ncols()),
            ));
        }
        Ok(())
    }

    /// Rows of layer l in a stacked state.
    pub(crate) fn layer_of<'a>(&self, x: MatRef<'a, T>, l: usize) -> MatRef<'a, T> {
        x.subrows(self.offsets[l], self.layers[l].size)
    }
    /// Mutable rows of layer l in a stacked state.
    pub(crate) fn layer_of_mut<'a>(&self, x: MatMut<'a, T>, l: usize) -> MatMut<'a, T> {
        x.subrows_mut(self.offsets[l], self.layers[l].size)
    }

    /// Stiffest curvature of the energy along any latent coordinate, an upper
    /// bound on the largest eigenvalue of ∇²U for gaussian-like layers; used
    /// to suggest step sizes.
    pub fn stiffness_bound(&self) -> f64 {
        let mut worst: f64 = 0.0;
        for k in 1..self.n_layers() {
            let mut c = self.layers[k].energy.max_curvature();
            let below = &self.weights[k - 1];
            let s2 = self.layer_energy(k - 1).max_sigma().powi(2);
            // ‖W‖²_F bounds the spectral norm squared; A″ ≤ σ² for the
            // layers this bound is meant for.
            let mut fro = 0.0;
            for j in 0..below.ncols() {
                for v in below.col_as_slice(j) {
                    fro += v.f64() * v.f64();
                }
            }
            c += s2 * fro;
            if k < self.top() {
                let mut fro_up = 0.0;
                for j in 0..self.weights[k].ncols() {
                    for v in self.weights[k].col_as_slice(j) {
                        fro_up += v.f64() * v.f64();
                    }
                }
                c += fro_up.sqrt();
            }
            worst = worst.max(c);
        }
        worst
    }
}
