//! A table of one unit's log-normaliser a(η) and its derivative a′(η), for
//! evaluating the exact joint U (spec §1) and its gradient many times, as
//! annealed importance sampling does (issue 18): every unit of a layer
//! shares φ, so one table serves the whole layer.
//!
//! Nodes η_i = lo + i·h hold a, a′ and a″ from the reference quadrature;
//! between nodes a is the cubic Hermite interpolant of (a, a′) and a′ that
//! of (a′, a″). Hermite interpolation of f errs by at most h⁴/384·max|f⁗|,
//! so with h = 1/(32σ) (η's natural scale is 1/σ, since a′ = σ²η for the
//! quadratic part) the error is ~1e-9 times the unit's standardised
//! fourth and fifth cumulants. The table does not rely on that bound: it
//! measures its own error at every midpoint, where Hermite error peaks,
//! against quadrature ([`NormaliserTable::max_error`]) and refuses to be
//! built when that exceeds [`TABLE_TOLERANCE`]; tests check the bound at
//! random points too. Outside [lo, hi] it falls back to quadrature, so it
//! is never wrong, only slower.

use rayon::prelude::*;

use super::quadrature;
use crate::energy::BaseEnergy;
use crate::error::{HeeError, Result};

/// The error bound the tables are built to and tested against: the
/// absolute error of a(η) and of a′(η) anywhere, in units of 1 and σ.
pub const TABLE_TOLERANCE: f64 = 1e-7;

/// Nodes per unit of σ·η.
const NODES_PER_SCALE: f64 = 32.0;

/// Half-width of the default range, in units of 1/σ: a′ = σ²η ± σ·O(1)
/// covers conditional means up to ±64σ.
const HALF_RANGE: f64 = 64.0;

/// a(η), a′(η) and a″(η) tabulated for one base energy.
#[derive(Debug, Clone)]
pub struct NormaliserTable {
    energy: BaseEnergy,
    lo: f64,
    h: f64,
    a: Vec<f64>,
    da: Vec<f64>,
    d2a: Vec<f64>,
    max_error: f64,
}

impl NormaliserTable {
    /// The table of `energy` over η ∈ ±64/σ with spacing 1/(32σ).
    pub fn for_energy(energy: &BaseEnergy) -> Result<Self> {
        let s = energy.sigma();
        Self::new(
            energy,
            -HALF_RANGE / s,
            HALF_RANGE / s,
            1.0 / (NODES_PER_SCALE * s),
        )
    }

    /// The table of `energy` over [lo, hi] with node spacing at most
    /// `spacing`; its error is measured at every midpoint.
    pub fn new(energy: &BaseEnergy, lo: f64, hi: f64, spacing: f64) -> Result<Self> {
        energy.validate("energy")?;
        if !(lo.is_finite() && hi.is_finite() && hi > lo) {
            return Err(HeeError::param(
                "table range",
                hi - lo,
                "needs finite lo < hi",
            ));
        }
        if !(spacing.is_finite() && spacing > 0.0) {
            return Err(HeeError::param("table spacing", spacing, "must be > 0"));
        }
        let n = ((hi - lo) / spacing).ceil() as usize + 1;
        let h = (hi - lo) / (n - 1) as f64;
        let nodes: Vec<quadrature::UnitMoments> = (0..n)
            .into_par_iter()
            .map(|i| quadrature::moments(energy, lo + i as f64 * h))
            .collect::<Result<_>>()?;
        let mut t = NormaliserTable {
            energy: *energy,
            lo,
            h,
            a: nodes.iter().map(|m| m.log_normaliser).collect(),
            da: nodes.iter().map(|m| m.mean).collect(),
            d2a: nodes.iter().map(|m| m.variance).collect(),
            max_error: 0.0,
        };
        let errors: Vec<f64> = (0..n - 1)
            .into_par_iter()
            .map(|i| {
                let eta = lo + (i as f64 + 0.5) * h;
                let m = quadrature::moments(energy, eta)?;
                let (a, da) = t.interpolate(i, 0.5);
                Ok((a - m.log_normaliser)
                    .abs()
                    .max((da - m.mean).abs() / energy.sigma()))
            })
            .collect::<Result<_>>()?;
        t.max_error = errors.into_iter().fold(0.0, f64::max);
        // A table worse than its stated bound is refused, never used.
        if t.max_error.is_nan() || t.max_error > TABLE_TOLERANCE {
            return Err(HeeError::Numerical {
                routine: "normaliser table",
                reason: format!(
                    "measured error {:.3e} of {} exceeds TABLE_TOLERANCE {TABLE_TOLERANCE:.0e} (spacing {spacing:.3e}: use a finer one)",
                    t.max_error,
                    energy.name()
                ),
            });
        }
        Ok(t)
    }

    /// The energy this table is of.
    pub fn energy(&self) -> &BaseEnergy {
        &self.energy
    }

    /// The tabulated range [lo, hi].
    pub fn range(&self) -> (f64, f64) {
        (self.lo, self.lo + self.h * (self.a.len() - 1) as f64)
    }

    /// The largest error of a or a′/σ at the midpoints, against quadrature.
    pub fn max_error(&self) -> f64 {
        self.max_error
    }

    /// (a(η), a′(η)): interpolated inside the range, quadrature outside.
    pub fn eval(&self, eta: f64) -> Result<(f64, f64)> {
        let u = (eta - self.lo) / self.h;
        if u >= 0.0 && u < (self.a.len() - 1) as f64 {
            let i = u as usize;
            Ok(self.interpolate(i, u - i as f64))
        } else {
            let m = quadrature::moments(&self.energy, eta)?;
            Ok((m.log_normaliser, m.mean))
        }
    }

    /// Cubic Hermite on [η_i, η_{i+1}] at fraction t.
    fn interpolate(&self, i: usize, t: f64) -> (f64, f64) {
        let (t2, t3) = (t * t, t * t * t);
        let h00 = 2.0 * t3 - 3.0 * t2 + 1.0;
        let h10 = t3 - 2.0 * t2 + t;
        let h01 = -2.0 * t3 + 3.0 * t2;
        let h11 = t3 - t2;
        let h = self.h;
        let a =
            h00 * self.a[i] + h10 * h * self.da[i] + h01 * self.a[i + 1] + h11 * h * self.da[i + 1];
        let da = h00 * self.da[i]
            + h10 * h * self.d2a[i]
            + h01 * self.da[i + 1]
            + h11 * h * self.d2a[i + 1];
        (a, da)
    }
}
