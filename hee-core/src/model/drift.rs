//! The force on the neurons (spec §1): the gradient of the joint energy with
//! respect to the states of the free layers,
//!
//! ∂U/∂x_k = φ_k′(x_k) − η_k − f′(x_k) ⊙ W_{k−1}ᵀ (x_{k−1} − A′_{k−1}(η_{k−1})),
//!
//! prior from the layer above, prediction error from the layer below. The
//! negative-phase baseline (spec §7) descends the unnormalised energy
//! Ẽ = Σ_l [φ_l(x_l) − η_l·x_l] instead, whose gradient is the same with
//! A′ ≡ 0 in the prediction error.

use faer::linalg::matmul::matmul;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef, Par};

use super::{HeeModel, LayerEnergy};
use crate::elementwise::{sub_df_times, zip_map2, zip_rows2};
use crate::error::{HeeError, Result};
use crate::scalar::Real;

impl<T: Real> HeeModel<T> {
    /// ∂U/∂x_k for the layers k ≥ `first_free`, from states `x`, their
    /// natural parameters `eta` and an A′ estimate `a_prime`, all batch ×
    /// total units. Columns of layers below `first_free` are zero.
    pub fn state_gradient(
        &self,
        x: MatRef<'_, T>,
        eta: MatRef<'_, T>,
        a_prime: MatRef<'_, T>,
        first_free: usize,
    ) -> Result<Mat<T>> {
        self.check_batch("a_prime", a_prime, Some(x.nrows()))?;
        self.gradient_checked(x, eta, Some(a_prime), first_free)
    }

    /// ∂Ẽ/∂x_k of the unnormalised energy Ẽ = Σ_l [φ_l(x_l) − η_l·x_l] for
    /// the layers k ≥ `first_free` (the drift of the baseline's chains):
    /// φ_k′(x_k) − η_k − f′(x_k) ⊙ W_{k−1}ᵀ x_{k−1}. `x` and `eta` are batch ×
    /// total units; columns of layers below `first_free` are zero.
    pub fn unnormalised_gradient(
        &self,
        x: MatRef<'_, T>,
        eta: MatRef<'_, T>,
        first_free: usize,
    ) -> Result<Mat<T>> {
        self.gradient_checked(x, eta, None, first_free)
    }

    fn gradient_checked(
        &self,
        x: MatRef<'_, T>,
        eta: MatRef<'_, T>,
        a_prime: Option<MatRef<'_, T>>,
        first_free: usize,
    ) -> Result<Mat<T>> {
        self.check_batch("x", x, None)?;
        self.check_batch("eta", eta, Some(x.nrows()))?;
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
            a_prime.map(|a| a.transpose()),
            first_free,
            diff.as_mut(),
            tmp.as_mut(),
            g.as_mut(),
        );
        Ok(g.transpose().to_owned())
    }

    /// The drift of the step loop: ∂U/∂x_k for k ≥ `first_free`, with
    /// `a_prime` the estimate of A′(η) of every layer (exact, or the
    /// interneurons' ε̄), or ∂Ẽ/∂x_k when `a_prime` is `None`.
    ///
    /// `diff` and `tmp` are scratch of the state's shape; with `a_prime`,
    /// `diff` is left holding x_l − A′_l for every layer l from
    /// `first_free − 1` to the top − 1 (the learning step reads it). Rows of
    /// layers below `first_free` in `grad` are left untouched. Internal
    /// layout (units × samples), shapes unchecked.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn state_gradient_unchecked(
        &self,
        x: MatRef<'_, T>,
        eta: MatRef<'_, T>,
        a_prime: Option<MatRef<'_, T>>,
        first_free: usize,
        mut diff: MatMut<'_, T>,
        mut tmp: MatMut<'_, T>,
        mut grad: MatMut<'_, T>,
    ) {
        let f = self.nonlinearity;
        for k in first_free..=self.top() {
            let xk = self.layer_of(x, k);
            let mut gk = self.layer_of_mut(grad.rb_mut(), k);
            dphi_minus(self.layer_energy(k), gk.rb_mut(), xk, self.layer_of(eta, k));
            if k == 0 {
                continue;
            }
            // Prediction error of the layer below: x_{k−1} − A′(η_{k−1})
            // (x_{k−1} alone for Ẽ).
            let below = match a_prime {
                Some(ap) => {
                    zip_map2(
                        self.layer_of_mut(diff.rb_mut(), k - 1),
                        self.layer_of(x, k - 1),
                        self.layer_of(ap, k - 1),
                        |a, b| a - b,
                    );
                    self.layer_of(diff.rb(), k - 1)
                }
                None => self.layer_of(x, k - 1),
            };
            let wt = self.weights[k - 1].transpose();
            if f.is_identity() {
                matmul(gk, Accum::Add, wt, below, -T::one(), Par::Seq);
            } else {
                let mut tk = self.layer_of_mut(tmp.rb_mut(), k);
                matmul(tk.rb_mut(), Accum::Replace, wt, below, T::one(), Par::Seq);
                sub_df_times(f, gk, xk, tk.rb());
            }
        }
    }
}

/// out = φ′(x) − η element-wise, compiled once per energy kind; a gaussian
/// layer with σ per unit takes x/σ_i² − η.
#[inline]
fn dphi_minus<T: Real>(
    layer: LayerEnergy<'_, T>,
    out: MatMut<'_, T>,
    x: MatRef<'_, T>,
    eta: MatRef<'_, T>,
) {
    if let Some(inv_s2) = layer.inv_s2() {
        return zip_rows2(out, x, eta, inv_s2, |o, xv, ev, q| *o = xv * q - ev);
    }
    crate::with_unit_energy!(T, layer.energy, |e| zip_map2(out, x, eta, move |xv, ev| e
        .dphi(xv)
        - ev))
}
