//! Natural parameters (spec §1): η_l = W_l f(x_{l+1}) + b_l for every layer
//! below the top, η_L = b_L, and the exact A′(η) = E[x_l | η_l] they imply.

use faer::linalg::matmul::matmul;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef, Par};

use super::HeeModel;
use crate::aprime::{exact_a_prime_into, LayerAPrime};
use crate::elementwise::{add_bias, col, col_mut, map_f};
use crate::error::{HeeError, Result};
use crate::scalar::Real;

impl<T: Real> HeeModel<T> {
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

    /// η_l of one layer from the states of the layer above, for a batch:
    /// `above` is batch × size(l+1) (x_{l+1}, one sample per row) and the
    /// result batch × size(l). For the top layer η_L = b_L for every sample:
    /// pass a batch × 0 matrix. This is the step of ancestral sampling, which
    /// goes top-down one layer at a time; it equals the rows of layer l of
    /// [`natural_params`](Self::natural_params).
    pub fn layer_natural_params(&self, l: usize, above: MatRef<'_, T>) -> Result<Mat<T>> {
        self.check_layer(l)?;
        let want = if l == self.top() { 0 } else { self.size(l + 1) };
        if above.ncols() != want {
            return Err(HeeError::dims(
                "above",
                format!("batch x {want} (the units of layer {})", l + 1),
                format!("{}x{}", above.nrows(), above.ncols()),
            ));
        }
        let b = above.nrows();
        let mut eta = Mat::<T>::zeros(self.size(l), b);
        if l < self.top() {
            let f = self.nonlinearity;
            let fa: Mat<T> = if f.is_identity() {
                above.transpose().to_owned()
            } else {
                let mut fa = Mat::<T>::zeros(want, b);
                map_f(f, fa.as_mut(), above.transpose());
                fa
            };
            matmul(
                eta.as_mut(),
                Accum::Replace,
                self.weights[l].as_ref(),
                fa.as_ref(),
                T::one(),
                Par::Seq,
            );
        }
        add_bias(eta.as_mut(), &self.biases[l]);
        Ok(eta.transpose().to_owned())
    }

    /// Exact A′(η) of every layer for natural parameters `eta` (batch × total
    /// units): closed form for gaussian layers, quadrature otherwise.
    pub fn exact_a_prime(&self, eta: MatRef<'_, T>) -> Result<Mat<T>> {
        self.check_batch("eta", eta, None)?;
        let mut out = Mat::<T>::zeros(self.total_size(), eta.nrows());
        // A caller's batch, transposed, is strided: copy it to the
        // column-contiguous layout of the internal kernels.
        self.exact_a_prime_unchecked(eta.transpose().to_owned().as_ref(), out.as_mut())?;
        Ok(out.transpose().to_owned())
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

    /// Exact A′_l(η_l) of one layer for its natural parameters `eta_l`
    /// (batch × size(l)): σ²η for a gaussian layer, quadrature otherwise.
    /// The readout E[x_l | x_{l+1}] of generation, without the other layers.
    pub fn layer_exact_a_prime(&self, l: usize, eta_l: MatRef<'_, T>) -> Result<Mat<T>> {
        self.check_layer(l)?;
        if eta_l.ncols() != self.size(l) {
            return Err(HeeError::dims("eta", self.size(l), eta_l.ncols()));
        }
        let kind = if self.energy(l).is_gaussian() {
            LayerAPrime::Analytic
        } else {
            LayerAPrime::Quadrature
        };
        // Column-contiguous copies: one sample per column.
        let e = eta_l.transpose().to_owned();
        let mut out = Mat::<T>::zeros(e.nrows(), e.ncols());
        for j in 0..e.ncols() {
            exact_a_prime_into(
                kind,
                self.layer_energy(l),
                col(e.as_ref(), j),
                col_mut(out.as_mut(), j),
            )?;
        }
        Ok(out.transpose().to_owned())
    }

    /// Exact A′(η) for every layer: closed form for gaussian layers,
    /// quadrature otherwise. Internal layout, shapes unchecked.
    pub(crate) fn exact_a_prime_unchecked(
        &self,
        eta: MatRef<'_, T>,
        mut out: MatMut<'_, T>,
    ) -> Result<()> {
        for j in 0..eta.ncols() {
            let (e, o) = (col(eta, j), col_mut(out.rb_mut(), j));
            for l in 0..self.n_layers() {
                let kind = if self.energy(l).is_gaussian() {
                    LayerAPrime::Analytic
                } else {
                    LayerAPrime::Quadrature
                };
                let r = self.offsets[l]..self.offsets[l + 1];
                exact_a_prime_into(kind, self.layer_energy(l), &e[r.clone()], &mut o[r])?;
            }
        }
        Ok(())
    }
}
