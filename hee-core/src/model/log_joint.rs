//! The exact log joint log p(x₀ … x_L) = −U (spec §1), fast enough to be
//! evaluated at every step of annealed importance sampling: closed form for
//! gaussian layers, a [`NormaliserTable`] per non-gaussian layer (all its
//! units share φ) in place of quadrature per unit. [`HeeModel::energy_by_layer`]
//! stays the quadrature reference it is tested against.

use faer::{Mat, MatRef};
use rayon::prelude::*;

use super::HeeModel;
use crate::aprime::quadrature::gaussian_moments;
use crate::aprime::table::NormaliserTable;
use crate::energy::BaseEnergy;
use crate::error::{HeeError, Result};
use crate::scalar::Real;

/// The per-layer log-normalisers of one model's base energies.
#[derive(Debug, Clone)]
pub struct LogJoint {
    energies: Vec<BaseEnergy>,
    tables: Vec<Option<NormaliserTable>>,
    /// ½ log(2πσ²) of each gaussian layer (a(0)).
    log_norm0: Vec<f64>,
}

impl LogJoint {
    /// Tables for every non-gaussian layer of `model`.
    pub fn new<T: Real>(model: &HeeModel<T>) -> Result<Self> {
        let energies: Vec<BaseEnergy> = (0..model.n_layers()).map(|l| *model.energy(l)).collect();
        let tables = energies
            .iter()
            .map(|e| {
                if e.is_gaussian() {
                    Ok(None)
                } else {
                    NormaliserTable::for_energy(e).map(Some)
                }
            })
            .collect::<Result<_>>()?;
        let log_norm0 = energies
            .iter()
            .map(|e| gaussian_moments(e.sigma(), 0.0).log_normaliser)
            .collect();
        Ok(LogJoint {
            energies,
            tables,
            log_norm0,
        })
    }

    /// The largest measured error of any table (0 for an all-gaussian model).
    pub fn max_table_error(&self) -> f64 {
        self.tables
            .iter()
            .flatten()
            .map(NormaliserTable::max_error)
            .fold(0.0, f64::max)
    }

    /// (a_l(η), a_l′(η)) of one unit of layer `l`.
    pub fn unit(&self, l: usize, eta: f64) -> Result<(f64, f64)> {
        match &self.tables[l] {
            Some(t) => t.eval(eta),
            None => {
                // a(η) = σ²η²/2 + ½ log(2πσ²), a′(η) = σ²η.
                let s2 = self.energies[l].sigma().powi(2);
                Ok((0.5 * s2 * eta * eta + self.log_norm0[l], s2 * eta))
            }
        }
    }

    fn check<T: Real>(&self, model: &HeeModel<T>) -> Result<()> {
        let same = model.n_layers() == self.energies.len()
            && (0..model.n_layers()).all(|l| *model.energy(l) == self.energies[l]);
        if same {
            Ok(())
        } else {
            Err(HeeError::param(
                "log_joint",
                f64::NAN,
                "built for other base energies than the model's",
            ))
        }
    }

    /// −log p(x_l | x_{l+1}) of every layer l (−log p(x_L) for the top) of
    /// every sample: entry (j, l) is φ_l(x_l) − η_l·x_l + A_l(η_l) for row j
    /// of `x`, with `eta` = η(x) (both batch × total units). Sums in f64.
    pub fn layer_terms<T: Real>(
        &self,
        model: &HeeModel<T>,
        x: MatRef<'_, T>,
        eta: MatRef<'_, T>,
    ) -> Result<Mat<f64>> {
        self.check(model)?;
        model.check_batch("x", x, None)?;
        model.check_batch("eta", eta, Some(x.nrows()))?;
        let n = model.n_layers();
        // One sample per column, contiguous.
        let (xt, et) = (x.transpose().to_owned(), eta.transpose().to_owned());
        let rows: Vec<Vec<f64>> = (0..x.nrows())
            .into_par_iter()
            .map(|j| {
                let (xj, ej) = (xt.col_as_slice(j), et.col_as_slice(j));
                (0..n)
                    .map(|l| {
                        let e = &self.energies[l];
                        let mut u = 0.0;
                        for c in model.offset(l)..model.offset(l) + model.size(l) {
                            let (xv, ev) = (xj[c].f64(), ej[c].f64());
                            u += e.phi(xv) - ev * xv + self.unit(l, ev)?.0;
                        }
                        Ok(u)
                    })
                    .collect::<Result<Vec<f64>>>()
            })
            .collect::<Result<_>>()?;
        Ok(Mat::from_fn(rows.len(), n, |j, l| rows[j][l]))
    }

    /// A′_l(η_l) of every layer (batch × total units), from the tables.
    pub fn a_prime<T: Real>(&self, model: &HeeModel<T>, eta: MatRef<'_, T>) -> Result<Mat<T>> {
        self.check(model)?;
        model.check_batch("eta", eta, None)?;
        let et = eta.transpose().to_owned();
        let mut out = Mat::<T>::zeros(et.nrows(), et.ncols());
        out.par_col_chunks_mut(1)
            .enumerate()
            .try_for_each(|(j, mut col)| -> Result<()> {
                let ej = et.col_as_slice(j);
                for l in 0..model.n_layers() {
                    for c in model.offset(l)..model.offset(l) + model.size(l) {
                        col[(c, 0)] = T::of(self.unit(l, ej[c].f64())?.1);
                    }
                }
                Ok(())
            })?;
        Ok(out.transpose().to_owned())
    }
}
