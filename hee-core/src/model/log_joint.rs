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
    /// σ per unit of the gaussian layers that have them.
    unit_sigmas: Vec<Option<Vec<f64>>>,
    tables: Vec<Option<NormaliserTable>>,
    /// Per gaussian layer, σ² and ½ log(2πσ²) (= a(0)) of each unit, or
    /// one entry for a layer that shares σ.
    gaussian: Vec<Option<GaussianTerms>>,
}

#[derive(Debug, Clone)]
struct GaussianTerms {
    s2: Vec<f64>,
    log_norm0: Vec<f64>,
}

impl GaussianTerms {
    fn new(sigmas: &[f64]) -> Self {
        GaussianTerms {
            s2: sigmas.iter().map(|s| s * s).collect(),
            log_norm0: sigmas
                .iter()
                .map(|&s| gaussian_moments(s, 0.0).log_normaliser)
                .collect(),
        }
    }
}

impl LogJoint {
    /// Tables for every non-gaussian layer of `model`.
    pub fn new<T: Real>(model: &HeeModel<T>) -> Result<Self> {
        let energies: Vec<BaseEnergy> = (0..model.n_layers()).map(|l| *model.energy(l)).collect();
        let unit_sigmas: Vec<Option<Vec<f64>>> = (0..model.n_layers())
            .map(|l| model.unit_sigmas(l).map(<[f64]>::to_vec))
            .collect();
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
        let gaussian = energies
            .iter()
            .zip(&unit_sigmas)
            .map(|(e, u)| {
                e.is_gaussian().then(|| match u {
                    Some(s) => GaussianTerms::new(s),
                    None => GaussianTerms::new(&[e.sigma()]),
                })
            })
            .collect();
        Ok(LogJoint {
            energies,
            unit_sigmas,
            tables,
            gaussian,
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

    /// (a_l(η), a_l′(η)) of one unit of layer `l` (unit 0 of a layer with
    /// σ per unit; see [`unit_at`](Self::unit_at)).
    pub fn unit(&self, l: usize, eta: f64) -> Result<(f64, f64)> {
        self.unit_at(l, 0, eta)
    }

    /// (a(η), a′(η)) of unit `i` of layer `l`.
    pub fn unit_at(&self, l: usize, i: usize, eta: f64) -> Result<(f64, f64)> {
        match (&self.tables[l], &self.gaussian[l]) {
            (Some(t), _) => t.eval(eta),
            (None, Some(g)) => {
                // a(η) = σ²η²/2 + ½ log(2πσ²), a′(η) = σ²η.
                let k = if g.s2.len() == 1 { 0 } else { i };
                let s2 = g.s2[k];
                Ok((0.5 * s2 * eta * eta + g.log_norm0[k], s2 * eta))
            }
            (None, None) => unreachable!("every layer has a table or is gaussian"),
        }
    }

    /// φ of unit `i` of layer `l` at x.
    fn phi(&self, l: usize, i: usize, x: f64) -> f64 {
        match &self.gaussian[l] {
            Some(g) => x * x / (2.0 * g.s2[if g.s2.len() == 1 { 0 } else { i }]),
            None => self.energies[l].phi(x),
        }
    }

    fn check<T: Real>(&self, model: &HeeModel<T>) -> Result<()> {
        let same = model.n_layers() == self.energies.len()
            && (0..model.n_layers()).all(|l| {
                *model.energy(l) == self.energies[l]
                    && model.unit_sigmas(l) == self.unit_sigmas[l].as_deref()
            });
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
                        let mut u = 0.0;
                        for i in 0..model.size(l) {
                            let c = model.offset(l) + i;
                            let (xv, ev) = (xj[c].f64(), ej[c].f64());
                            u += self.phi(l, i, xv) - ev * xv + self.unit_at(l, i, ev)?.0;
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
                    for i in 0..model.size(l) {
                        let c = model.offset(l) + i;
                        col[(c, 0)] = T::of(self.unit_at(l, i, ej[c].f64())?.1);
                    }
                }
                Ok(())
            })?;
        Ok(out.transpose().to_owned())
    }
}
