//! The joint energy (spec §1): U(x₀ … x_L) = Σ_l [φ_l(x_l) − η_l·x_l + A_l(η_l)],
//! so that p(x₀ … x_L) = exp(−U) exactly, in total or one term per layer
//! (the layer's −log p(x_l | x_{l+1}), or −log p(x_L) for the top); and
//! the unnormalised energy Ẽ = Σ_l [φ_l(x_l) − η_l·x_l] of the baseline
//! (spec §7), whose normaliser is one intractable global Z.
//!
//! Every A_l is a sum of one-dimensional a(η): closed form for gaussian
//! layers, quadrature otherwise. Sums run in f64, one sample per task, in
//! the same order whatever the number of threads.

use faer::{Mat, MatRef};
use rayon::prelude::*;

use super::HeeModel;
use crate::aprime::quadrature;
use crate::error::Result;
use crate::scalar::Real;

impl<T: Real> HeeModel<T> {
    /// U of every sample (row of `x`, batch × total units), in f64.
    pub fn energy_of(&self, x: MatRef<'_, T>) -> Result<Vec<f64>> {
        self.per_sample(x, true, |_| 0.0, |u, _, term| *u += term)
    }

    /// U split by layer: entry (j, l) is layer l's term
    /// φ_l(x_l) − η_l·x_l + A_l(η_l) for sample j (rows of `x`, batch ×
    /// total units), i.e. −log p(x_l | x_{l+1}); the rows sum to
    /// [`energy_of`](Self::energy_of). The result is batch × (L + 1).
    pub fn energy_by_layer(&self, x: MatRef<'_, T>) -> Result<Mat<f64>> {
        let n = self.n_layers();
        let rows = self.per_sample(
            x,
            true,
            |_| vec![0.0; n],
            |u: &mut Vec<f64>, l, term| u[l] += term,
        )?;
        Ok(Mat::from_fn(rows.len(), n, |j, l| rows[j][l]))
    }

    /// Ẽ = Σ_l [φ_l(x_l) − η_l·x_l] of every sample (rows of `x`), in f64:
    /// the energy of the negative-phase baseline, without log-normalisers.
    pub fn unnormalised_energy_of(&self, x: MatRef<'_, T>) -> Result<Vec<f64>> {
        self.per_sample(x, false, |_| 0.0, |u, _, term| *u += term)
    }

    /// Folds the energy terms of every unit of every sample, one sample per
    /// task, in layer and unit order: `add(acc, l, φ(x) − ηx [+ a(η)])`.
    fn per_sample<A: Send>(
        &self,
        x: MatRef<'_, T>,
        normalised: bool,
        start: impl Fn(usize) -> A + Sync,
        add: impl Fn(&mut A, usize, f64) + Sync,
    ) -> Result<Vec<A>> {
        self.check_batch("x", x, None)?;
        let x = x.transpose();
        let b = x.ncols();
        let mut fx = Mat::<T>::zeros(x.nrows(), b);
        let mut eta = Mat::<T>::zeros(x.nrows(), b);
        self.natural_params_unchecked(x, fx.as_mut(), eta.as_mut());
        let eta = eta.as_ref();
        (0..b)
            .into_par_iter()
            .map(|j| {
                let mut acc = start(j);
                for l in 0..self.n_layers() {
                    let layer = self.layer_energy(l);
                    let (xl, el) = (self.layer_of(x, l), self.layer_of(eta, l));
                    for i in 0..xl.nrows() {
                        let e = layer.unit(i);
                        let (xv, ev) = (xl[(i, j)].f64(), el[(i, j)].f64());
                        let term = if normalised {
                            e.phi(xv) - ev * xv + quadrature::moments(&e, ev)?.log_normaliser
                        } else {
                            e.phi(xv) - ev * xv
                        };
                        add(&mut acc, l, term);
                    }
                }
                Ok(acc)
            })
            .collect()
    }
}
