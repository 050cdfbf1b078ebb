//! The HEE model (spec §1): a stack of exponential-family layers, the joint
//! energy U and its gradients with respect to states and parameters.
//!
//! Layout. Every public function takes and returns batches **one sample per
//! row**: a batch of network states is batch × [`total_size`](HeeModel::total_size),
//! the layers side by side (layer 0 first, layer l in the columns
//! `offset(l)..offset(l)+size(l)`), and is checked for shape before use.
//! Inside the crate the same matrices are stored transposed (one column per
//! sample, so each sample is contiguous and η_l = W_l f(x_{l+1}) + b_l is one
//! matrix product); the hot loops call the `pub(crate)` `*_unchecked`
//! kernels on those.

use faer::linalg::matmul::matmul;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rand::Rng;
use rayon::prelude::*;

use crate::energy::{BaseEnergy, PreparedEnergy, MAX_ENERGY_PARAMS};
use crate::error::{HeeError, Result};
use crate::nonlinearity::Nonlinearity;
use crate::quadrature;
use crate::scalar::Real;

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
    nonlinearity: Nonlinearity,
}

/// Gradients of log p with respect to the parameters (the ascent direction),
/// averaged over a batch. Same shapes as the model's parameters.
#[derive(Debug, Clone)]
pub struct ParamGrads<T> {
    pub weights: Vec<Mat<T>>,
    pub biases: Vec<Vec<T>>,
    /// Per layer, per base-energy parameter (unused slots zero).
    pub energy: Vec<[f64; MAX_ENERGY_PARAMS]>,
}

impl<T: Real> ParamGrads<T> {
    /// Zero gradients shaped like `model`.
    pub fn zeros_like(model: &HeeModel<T>) -> Self {
        ParamGrads {
            weights: model
                .weights
                .iter()
                .map(|w| Mat::zeros(w.nrows(), w.ncols()))
                .collect(),
            biases: model
                .biases
                .iter()
                .map(|b| vec![T::zero(); b.len()])
                .collect(),
            energy: vec![[0.0; MAX_ENERGY_PARAMS]; model.layers.len()],
        }
    }
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
    /// Replaces the base energy of layer l (validated).
    pub fn set_energy(&mut self, l: usize, energy: BaseEnergy) -> Result<()> {
        self.check_layer(l)?;
        energy.validate(&format!("layers[{l}].energy"))?;
        self.layers[l].energy = energy;
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
    fn check_batch(&self, field: &str, x: MatRef<'_, T>, rows: Option<usize>) -> Result<()> {
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

    /// η_l = W_l f(x_{l+1}) + b_l of every layer (η_L = b_L) for a batch of
    /// states `x` (batch × total units); the result has the same shape.
    pub fn natural_params(&self, x: MatRef<'_, T>) -> Result<Mat<T>> {
        self.check_batch("x", x, None)?;
        let (n, b) = (self.total_size(), x.nrows());
        let mut fx = Mat::<T>::zeros(n, b);
        let mut eta = Mat::<T>::zeros(n, b);
        self.natural_params_unchecked(x.transpose(), fx.as_mut(), eta.as_mut());
        Ok(eta.transpose().to_owned())
    }

    /// Exact A′(η) of every layer for natural parameters `eta` (batch × total
    /// units): closed form for gaussian layers, quadrature otherwise.
    pub fn exact_a_prime(&self, eta: MatRef<'_, T>) -> Result<Mat<T>> {
        self.check_batch("eta", eta, None)?;
        let mut out = Mat::<T>::zeros(self.total_size(), eta.nrows());
        self.exact_a_prime_unchecked(eta.transpose(), out.as_mut())?;
        Ok(out.transpose().to_owned())
    }

    /// ∂U/∂x_k for the layers k ≥ `first_free` (see
    /// `state_gradient_unchecked` for the
    /// equation), from states `x`, their natural parameters `eta` and an A′
    /// estimate `a_prime`, all batch × total units. Columns of layers below
    /// `first_free` are zero.
    pub fn state_gradient(
        &self,
        x: MatRef<'_, T>,
        eta: MatRef<'_, T>,
        a_prime: MatRef<'_, T>,
        first_free: usize,
    ) -> Result<Mat<T>> {
        self.check_batch("x", x, None)?;
        self.check_batch("eta", eta, Some(x.nrows()))?;
        self.check_batch("a_prime", a_prime, Some(x.nrows()))?;
        if first_free > self.top() {
            return Err(HeeError::dims(
                "first_free",
                format!("0..={}", self.top()),
                first_free,
            ));
        }
        let (n, b) = (self.total_size(), x.nrows());
        let (mut diff, mut tmp, mut g) = (Mat::zeros(n, b), Mat::zeros(n, b), Mat::zeros(n, b));
        self.state_gradient_unchecked(
            x.transpose(),
            eta.transpose(),
            a_prime.transpose(),
            first_free,
            diff.as_mut(),
            tmp.as_mut(),
            g.as_mut(),
        );
        Ok(g.transpose().to_owned())
    }

    /// The local rule's ascent direction for W and b (see
    /// `weight_grads_unchecked`), averaged
    /// over a batch of states `x` with A′ estimates `a_prime` (both batch ×
    /// total units). Energy-parameter slots are zero.
    pub fn weight_grads(&self, x: MatRef<'_, T>, a_prime: MatRef<'_, T>) -> Result<ParamGrads<T>> {
        self.check_batch("x", x, None)?;
        self.check_batch("a_prime", a_prime, Some(x.nrows()))?;
        let (n, b) = (self.total_size(), x.nrows());
        let (mut fx, mut diff) = (Mat::zeros(n, b), Mat::zeros(n, b));
        self.presynaptic(x.transpose(), fx.as_mut());
        let mut out = ParamGrads::zeros_like(self);
        self.weight_grads_unchecked(
            x.transpose(),
            a_prime.transpose(),
            fx.as_ref(),
            diff.as_mut(),
            &mut out,
            Par::rayon(0),
        );
        Ok(out)
    }

    /// Rows of layer l in a stacked state.
    pub(crate) fn layer_of<'a>(&self, x: MatRef<'a, T>, l: usize) -> MatRef<'a, T> {
        x.subrows(self.offsets[l], self.layers[l].size)
    }
    /// Mutable rows of layer l in a stacked state.
    pub(crate) fn layer_of_mut<'a>(&self, x: MatMut<'a, T>, l: usize) -> MatMut<'a, T> {
        x.subrows_mut(self.offsets[l], self.layers[l].size)
    }

    /// Natural parameters of every layer: η_l = W_l f(x_{l+1}) + b_l, η_top = b_top.
    ///
    /// Internal layout (units × samples), shapes unchecked. `fx` is scratch
    /// of the state's shape (unused when f is the identity).
    pub(crate) fn natural_params_unchecked(
        &self,
        x: MatRef<'_, T>,
        mut fx: MatMut<'_, T>,
        mut eta: MatMut<'_, T>,
    ) {
        let f = self.nonlinearity;
        let top = self.top();
        for l in 0..=top {
            let mut eta_l = self.layer_of_mut(eta.rb_mut(), l);
            if l < top {
                let above = self.layer_of(x, l + 1);
                let fa: MatRef<'_, T> = if f.is_identity() {
                    above
                } else {
                    let mut fa = self.layer_of_mut(fx.rb_mut(), l + 1);
                    map_f(f, fa.rb_mut(), above);
                    self.layer_of(fx.rb(), l + 1)
                };
                matmul(
                    eta_l.rb_mut(),
                    Accum::Replace,
                    self.weights[l].as_ref(),
                    fa,
                    T::one(),
                    Par::Seq,
                );
            } else {
                eta_l.fill(T::zero());
            }
            add_bias(eta_l, &self.biases[l]);
        }
    }

    /// f(x_l) for every layer l ≥ 1 (the presynaptic rates); nothing to do,
    /// and `fx` untouched, when f is the identity. Internal layout.
    pub(crate) fn presynaptic(&self, x: MatRef<'_, T>, mut fx: MatMut<'_, T>) {
        let f = self.nonlinearity;
        if f.is_identity() {
            return;
        }
        for l in 1..=self.top() {
            map_f(f, self.layer_of_mut(fx.rb_mut(), l), self.layer_of(x, l));
        }
    }

    /// ∂U/∂x_k for the layers k ≥ `first_free` (spec §1):
    ///
    /// ∂U/∂x_k = φ_k′(x_k) − η_k − f′(x_k) ⊙ W_{k−1}ᵀ (x_{k−1} − A′_{k−1})
    ///
    /// with `a_prime` holding the estimate of A′(η) for every layer (exact, or
    /// the interneurons' ε̄). `diff` and `tmp` are scratch of the state's shape;
    /// `diff` is left holding x_l − A′_l for every layer l below the top
    /// (the learning step reads it, `dynamics::split_step`). Rows of layers
    /// below `first_free` in `grad` are left untouched.
    /// Internal layout (units × samples), shapes unchecked: the step loop's
    /// kernel.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn state_gradient_unchecked(
        &self,
        x: MatRef<'_, T>,
        eta: MatRef<'_, T>,
        a_prime: MatRef<'_, T>,
        first_free: usize,
        mut diff: MatMut<'_, T>,
        mut tmp: MatMut<'_, T>,
        mut grad: MatMut<'_, T>,
    ) {
        let f = self.nonlinearity;
        for k in first_free..=self.top() {
            let e = self.layers[k].energy.prepare::<T>();
            let xk = self.layer_of(x, k);
            let etak = self.layer_of(eta, k);
            let mut gk = self.layer_of_mut(grad.rb_mut(), k);
            dphi_minus(e, gk.rb_mut(), xk, etak);
            if k == 0 {
                continue;
            }
            // Prediction error of the layer below: x_{k−1} − A′(η_{k−1}).
            let mut dk = self.layer_of_mut(diff.rb_mut(), k - 1);
            zip_map2(
                dk.rb_mut(),
                self.layer_of(x, k - 1),
                self.layer_of(a_prime, k - 1),
                |a, b| a - b,
            );
            let wt = self.weights[k - 1].transpose();
            if f.is_identity() {
                matmul(
                    gk,
                    Accum::Add,
                    wt,
                    self.layer_of(diff.rb(), k - 1),
                    -T::one(),
                    Par::Seq,
                );
            } else {
                let mut tk = self.layer_of_mut(tmp.rb_mut(), k);
                matmul(
                    tk.rb_mut(),
                    Accum::Replace,
                    wt,
                    self.layer_of(diff.rb(), k - 1),
                    T::one(),
                    Par::Seq,
                );
                sub_df_times(f, gk, xk, tk.rb());
            }
        }
    }

    /// Exact A′(η) for every layer: closed form for gaussian layers,
    /// quadrature otherwise. Internal layout, shapes unchecked.
    pub(crate) fn exact_a_prime_unchecked(
        &self,
        eta: MatRef<'_, T>,
        mut out: MatMut<'_, T>,
    ) -> Result<()> {
        for l in 0..self.n_layers() {
            let e = self.layers[l].energy;
            let mut o = self.layer_of_mut(out.rb_mut(), l);
            let el = self.layer_of(eta, l);
            match e {
                BaseEnergy::Gaussian { sigma } => {
                    let s2 = T::of(sigma * sigma);
                    zip_map(o.rb_mut(), el, |v| s2 * v);
                }
                _ => {
                    for j in 0..el.ncols() {
                        for i in 0..el.nrows() {
                            o[(i, j)] = T::of(quadrature::unit_moments(&e, el[(i, j)].f64())?.mean);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Joint energy U(x₀ … x_L) of every sample (row of `x`, batch × total
    /// units), in f64: U = Σ_l [φ_l(x_l) − η_l·x_l + A_l(η_l)], so that
    /// p = exp(−U).
    pub fn energy_of(&self, x: MatRef<'_, T>) -> Result<Vec<f64>> {
        self.check_batch("x", x, None)?;
        let x = x.transpose();
        let b = x.ncols();
        let mut fx = Mat::<T>::zeros(x.nrows(), b);
        let mut eta = Mat::<T>::zeros(x.nrows(), b);
        self.natural_params_unchecked(x, fx.as_mut(), eta.as_mut());
        // One sample per task (a quadrature per non-gaussian unit is the
        // cost); each sample's sum runs in the same order whatever the
        // threads.
        let eta = eta.as_ref();
        (0..b)
            .into_par_iter()
            .map(|j| {
                let mut uj = 0.0;
                for l in 0..self.n_layers() {
                    let e = self.layers[l].energy;
                    let (xl, el) = (self.layer_of(x, l), self.layer_of(eta, l));
                    for i in 0..xl.nrows() {
                        let (xv, ev) = (xl[(i, j)].f64(), el[(i, j)].f64());
                        uj += e.phi(xv) - ev * xv + quadrature::moments(&e, ev)?.log_normaliser;
                    }
                }
                Ok(uj)
            })
            .collect()
    }

    /// Ascent direction of log p for W and b, averaged over the samples:
    /// ΔW_l = ⟨(x_l − A′_l) f(x_{l+1})ᵀ⟩, Δb_l = ⟨x_l − A′_l⟩ (spec §5).
    ///
    /// `fx` must hold f(x) (as left by `presynaptic`) when f is not the
    /// identity; `diff` is scratch. Energy-parameter slots of `out` are not
    /// touched. Internal layout, shapes unchecked.
    pub(crate) fn weight_grads_unchecked(
        &self,
        x: MatRef<'_, T>,
        a_prime: MatRef<'_, T>,
        fx: MatRef<'_, T>,
        mut diff: MatMut<'_, T>,
        out: &mut ParamGrads<T>,
        par: Par,
    ) {
        zip_map2(diff.rb_mut(), x, a_prime, |a, b| a - b);
        let pre = if self.nonlinearity.is_identity() {
            x
        } else {
            fx
        };
        // Finiteness is checked where the gradients are used.
        let _ = self.weight_grads_from(diff.rb(), pre, out, par, None);
    }

    /// ΔW_l = ⟨d_l pre_{l+1}ᵀ⟩ and Δb_l = ⟨d_l⟩ from the prediction errors
    /// `diff` (d_l = x_l − A′_l) and the presynaptic rates `pre` (f(x_l) for
    /// l ≥ 1). Returns whether every ΔW entry is finite. Internal layout,
    /// shapes unchecked.
    ///
    /// With `next = Some((rate, w_next))`, each finite block of ΔW_l is also
    /// turned into W_l + rate·ΔW_l in `w_next[l]` while it is in cache (the
    /// learning step then swaps the matrices instead of a separate pass
    /// over W and ΔW); `w_next` is meaningful only when `true` is returned.
    pub(crate) fn weight_grads_from(
        &self,
        diff: MatRef<'_, T>,
        pre: MatRef<'_, T>,
        out: &mut ParamGrads<T>,
        par: Par,
        next: Option<(T, &mut [Mat<T>])>,
    ) -> bool {
        let n = T::of(diff.ncols() as f64);
        let ParamGrads {
            weights, biases, ..
        } = out;
        let mut bias_sums = || {
            for (l, b) in biases.iter_mut().enumerate() {
                let dl = self.layer_of(diff, l);
                // Σ_j d_ij column by column (each sum still runs over j in
                // order), so the reads follow memory.
                b.fill(T::zero());
                for j in 0..dl.ncols() {
                    match contiguous(dl, j) {
                        Some(c) => {
                            for (b, &v) in b.iter_mut().zip(c) {
                                *b += v;
                            }
                        }
                        None => {
                            for (i, b) in b.iter_mut().enumerate() {
                                *b += dl[(i, j)];
                            }
                        }
                    }
                }
                for b in b.iter_mut() {
                    *b /= n;
                }
            }
        };
        let scale = T::one() / n;
        // Each block of ΔW is checked for finite values right after its
        // product, while it is still in cache (the update must refuse a
        // non-finite ΔW before it changes anything; a separate pass over
        // ΔW cost a tenth of the update).
        let (rate, mut next) = match next {
            Some((rate, m)) => (rate, Some(m)),
            None => (T::zero(), None),
        };
        match par {
            Par::Seq => {
                bias_sums();
                let mut finite = true;
                for (l, w) in weights.iter_mut().enumerate() {
                    let (dl, above) = (self.layer_of(diff, l), self.layer_of(pre, l + 1));
                    matmul(
                        w.as_mut(),
                        Accum::Replace,
                        dl,
                        above.transpose(),
                        scale,
                        Par::Seq,
                    );
                    let ok = all_finite(w.as_ref());
                    if let (true, Some(next)) = (ok, next.as_deref_mut()) {
                        step_block(next[l].as_mut(), self.weight(l), w.as_ref(), rate);
                    }
                    finite &= ok;
                }
                finite
            }
            // Fixed blocks of ΔW's columns, one product each, for every
            // matrix at once, while the bias sums run beside them: the
            // threads share the work without faer's parallel path (which
            // allocates), and the result depends on the block size only,
            // never on the number of threads.
            _ => {
                // ΔW_l block by block, and W_l + rate·ΔW_l beside it when
                // `next` is given (an empty target otherwise).
                let layer = |l: usize, w: &mut Mat<T>, wn: MatMut<'_, T>, with_next: bool| {
                    let (dl, above) = (self.layer_of(diff, l), self.layer_of(pre, l + 1));
                    w.as_mut()
                        .par_col_chunks_mut(WEIGHT_GRAD_BLOCK)
                        .zip(above.transpose().par_col_chunks(WEIGHT_GRAD_BLOCK))
                        .zip(wn.par_col_chunks_mut(WEIGHT_GRAD_BLOCK))
                        .zip(self.weight(l).par_col_chunks(WEIGHT_GRAD_BLOCK))
                        .map(|(((mut o, a), wn), w_now)| {
                            matmul(o.rb_mut(), Accum::Replace, dl, a, scale, Par::Seq);
                            let ok = all_finite(o.rb());
                            if ok && with_next {
                                step_block(wn, w_now, o.rb(), rate);
                            }
                            ok
                        })
                        // Not `all`: it would stop early, and every block
                        // must be computed.
                        .reduce(|| true, |a, b| a & b)
                };
                let products = || match next {
                    Some(next) => weights
                        .par_iter_mut()
                        .zip(next.par_iter_mut())
                        .enumerate()
                        .map(|(l, (w, wn))| layer(l, w, wn.as_mut(), true))
                        .reduce(|| true, |a, b| a & b),
                    None => weights
                        .par_iter_mut()
                        .enumerate()
                        .map(|(l, w)| {
                            let cols = w.ncols();
                            let empty = MatMut::from_column_major_slice_mut(&mut [], 0, cols);
                            layer(l, w, empty, false)
                        })
                        .reduce(|| true, |a, b| a & b),
                };
                rayon::join(bias_sums, products).1
            }
        }
    }

    /// Ascent direction of log p for the base-energy parameters of layer l:
    /// ⟨−∂φ/∂θ(x_l) + E[∂φ/∂θ]⟩, where the expectation comes either from
    /// samples of the conditional (the interneurons ε) or from quadrature at η.
    /// `x` and the reference are batch × total units.
    pub fn energy_param_grads(
        &self,
        l: usize,
        x: MatRef<'_, T>,
        reference: EnergyReference<'_, T>,
    ) -> Result<[f64; MAX_ENERGY_PARAMS]> {
        self.check_layer(l)?;
        self.check_batch("x", x, None)?;
        let reference = match reference {
            EnergyReference::Samples(m) => {
                self.check_batch("reference", m, Some(x.nrows()))?;
                EnergyReference::Samples(m.transpose())
            }
            EnergyReference::Exact(m) => {
                self.check_batch("reference", m, Some(x.nrows()))?;
                EnergyReference::Exact(m.transpose())
            }
        };
        self.energy_param_grads_unchecked(l, x.transpose(), reference)
    }

    /// [`energy_param_grads`](Self::energy_param_grads) in the internal
    /// layout, shapes unchecked.
    pub(crate) fn energy_param_grads_unchecked(
        &self,
        l: usize,
        x: MatRef<'_, T>,
        reference: EnergyReference<'_, T>,
    ) -> Result<[f64; MAX_ENERGY_PARAMS]> {
        let e = self.layers[l].energy;
        let xl = self.layer_of(x, l);
        let mut g = [0.0; MAX_ENERGY_PARAMS];
        for j in 0..xl.ncols() {
            for i in 0..xl.nrows() {
                let d = e.dphi_dtheta(xl[(i, j)].f64());
                let r = match reference {
                    EnergyReference::Samples(eps) => {
                        e.dphi_dtheta(self.layer_of(eps, l)[(i, j)].f64())
                    }
                    EnergyReference::Exact(eta) => {
                        quadrature::moments(&e, self.layer_of(eta, l)[(i, j)].f64())?
                            .dphi_dtheta_mean
                    }
                };
                for p in 0..MAX_ENERGY_PARAMS {
                    g[p] += r[p] - d[p];
                }
            }
        }
        let n = xl.ncols() as f64;
        Ok(g.map(|v| v / n))
    }

    /// Stiffest curvature of the energy along any latent coordinate, an upper
    /// bound on the largest eigenvalue of ∇²U for gaussian-like layers; used
    /// to suggest step sizes.
    pub fn stiffness_bound(&self) -> f64 {
        let mut worst: f64 = 0.0;
        for k in 1..self.n_layers() {
            let mut c = self.layers[k].energy.max_curvature();
            let below = &self.weights[k - 1];
            let s2 = self.layers[k - 1].energy.sigma().powi(2);
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

/// Where the expectation E[∂φ/∂θ] of the energy-parameter gradient comes from.
#[derive(Debug, Clone, Copy)]
pub enum EnergyReference<'a, T> {
    /// One sample of the conditional per unit (the interneurons' state ε).
    Samples(MatRef<'a, T>),
    /// Quadrature at the natural parameters η.
    Exact(MatRef<'a, T>),
}

/// Checks every entry of a matrix for finiteness.
pub fn check_finite<T: Real>(field: &str, m: MatRef<'_, T>) -> Result<()> {
    // Fast path: a vectorisable scan of contiguous columns; the slow loop
    // below only runs to locate an offender (or on strided views).
    let clean = (0..m.ncols())
        .all(|j| contiguous(m, j).is_some_and(|c| c.iter().fold(true, |ok, v| ok & v.is_finite())));
    if clean {
        return Ok(());
    }
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            let v = m[(i, j)];
            if !v.is_finite() {
                return Err(HeeError::NonFiniteInput {
                    field: field.to_string(),
                    row: i,
                    col: j,
                    value: v.f64(),
                });
            }
        }
    }
    Ok(())
}

/// Columns of W per parallel task of the weight-gradient product and of the
/// weight update.
pub(crate) const WEIGHT_GRAD_BLOCK: usize = 32;

/// out = w + rate·g, element by element (the rounding of `w += rate·g`),
/// compiled for the machine's vector extension.
fn step_block<T: Real>(out: MatMut<'_, T>, w: MatRef<'_, T>, g: MatRef<'_, T>, rate: T) {
    zip_map2(out, w, g, move |w, g| w + rate * g);
}

/// True when every entry is finite: a vectorisable scan of contiguous
/// columns (strided views take the indexed loop).
pub(crate) fn all_finite<T: Real>(m: MatRef<'_, T>) -> bool {
    (0..m.ncols()).all(|j| match contiguous(m, j) {
        Some(c) => c.iter().fold(true, |ok, v| ok & v.is_finite()),
        None => (0..m.nrows()).all(|i| m[(i, j)].is_finite()),
    })
}

// Element-wise helpers over unit-major views (columns are contiguous in every
// buffer this crate allocates; faer's indexing keeps them correct otherwise).

#[inline]
pub(crate) fn zip_map<T: Real>(mut out: MatMut<'_, T>, a: MatRef<'_, T>, f: impl Fn(T) -> T) {
    // Compiled for the machine's vector extension (see `crate::simd`).
    crate::simd::dispatch(
        #[inline(always)]
        move || zip_map_inline(out.rb_mut(), a, f),
    )
}

#[inline(always)]
fn zip_map_inline<T: Real>(mut out: MatMut<'_, T>, a: MatRef<'_, T>, f: impl Fn(T) -> T) {
    for j in 0..out.ncols() {
        match (contiguous_mut(out.rb_mut(), j), contiguous(a, j)) {
            (Some(o), Some(a)) => {
                for (o, &a) in o.iter_mut().zip(a) {
                    *o = f(a);
                }
            }
            _ => {
                for i in 0..out.nrows() {
                    out[(i, j)] = f(a[(i, j)]);
                }
            }
        }
    }
}

#[inline]
pub(crate) fn zip_map2<T: Real>(
    out: MatMut<'_, T>,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    f: impl Fn(T, T) -> T,
) {
    zip_apply2(out, a, b, move |o, a, b| *o = f(a, b));
}

#[inline]
pub(crate) fn zip_apply2<T: Real>(
    mut out: MatMut<'_, T>,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    f: impl Fn(&mut T, T, T),
) {
    crate::simd::dispatch(
        #[inline(always)]
        move || zip_apply2_inline(out.rb_mut(), a, b, f),
    )
}

#[inline(always)]
fn zip_apply2_inline<T: Real>(
    mut out: MatMut<'_, T>,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    f: impl Fn(&mut T, T, T),
) {
    for j in 0..out.ncols() {
        match (
            contiguous_mut(out.rb_mut(), j),
            contiguous(a, j),
            contiguous(b, j),
        ) {
            (Some(o), Some(a), Some(b)) => {
                for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
                    f(o, a, b);
                }
            }
            _ => {
                for i in 0..out.nrows() {
                    f(&mut out[(i, j)], a[(i, j)], b[(i, j)]);
                }
            }
        }
    }
}

/// Column j as a slice when its rows are contiguous (every internal buffer):
/// slice loops vectorise, indexed ones with bounds checks do not.
#[inline(always)]
fn contiguous<T>(m: MatRef<'_, T>, j: usize) -> Option<&[T]> {
    m.col(j).try_as_col_major().map(|c| c.as_slice())
}

#[inline(always)]
fn contiguous_mut<T>(m: MatMut<'_, T>, j: usize) -> Option<&mut [T]> {
    m.col_mut(j)
        .try_as_col_major_mut()
        .map(|c| c.as_slice_mut())
}

/// out = φ′(x) − η element-wise, one monomorphic loop per energy kind (each
/// arm rebuilds the energy as a value of a known variant, so the match
/// inside `dphi` folds away).
#[inline]
fn dphi_minus<T: Real>(
    e: PreparedEnergy<T>,
    out: MatMut<'_, T>,
    x: MatRef<'_, T>,
    eta: MatRef<'_, T>,
) {
    match e {
        PreparedEnergy::Gaussian { inv_s2 } => {
            let e = PreparedEnergy::Gaussian { inv_s2 };
            zip_map2(out, x, eta, move |xv, ev| e.dphi(xv) - ev)
        }
        PreparedEnergy::SmoothLaplace {
            inv_s2,
            lambda,
            delta2,
        } => {
            let e = PreparedEnergy::SmoothLaplace {
                inv_s2,
                lambda,
                delta2,
            };
            zip_map2(out, x, eta, move |xv, ev| e.dphi(xv) - ev)
        }
        PreparedEnergy::StudentT { inv_s2, wnu1, nu } => {
            let e = PreparedEnergy::StudentT { inv_s2, wnu1, nu };
            zip_map2(out, x, eta, move |xv, ev| e.dphi(xv) - ev)
        }
    }
}

/// out = f(a) element-wise, one monomorphic loop per nonlinearity.
#[inline]
pub(crate) fn map_f<T: Real>(f: Nonlinearity, out: MatMut<'_, T>, a: MatRef<'_, T>) {
    match f {
        Nonlinearity::Identity => zip_map(out, a, |v| v),
        Nonlinearity::Tanh => zip_map(out, a, |v| v.tanh_fast()),
        Nonlinearity::Softplus => zip_map(out, a, |v| Nonlinearity::Softplus.f(v)),
    }
}

/// g −= f′(x) ⊙ t element-wise, one monomorphic loop per nonlinearity.
#[inline]
fn sub_df_times<T: Real>(f: Nonlinearity, g: MatMut<'_, T>, x: MatRef<'_, T>, t: MatRef<'_, T>) {
    match f {
        Nonlinearity::Identity => zip_apply2(g, x, t, |g, _, t| *g -= t),
        Nonlinearity::Tanh => zip_apply2(g, x, t, |g, xv, t| {
            let th = xv.tanh_fast();
            *g -= (T::one() - th * th) * t
        }),
        Nonlinearity::Softplus => {
            zip_apply2(g, x, t, |g, xv, t| *g -= Nonlinearity::Softplus.df(xv) * t)
        }
    }
}

#[inline]
fn add_bias<T: Real>(mut m: MatMut<'_, T>, b: &[T]) {
    for j in 0..m.ncols() {
        for (i, &bi) in b.iter().enumerate() {
            m[(i, j)] += bi;
        }
    }
}
