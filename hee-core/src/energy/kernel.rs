//! φ′ of each base-energy kind in the working precision, for the hot loops,
//! and the one place that turns a [`BaseEnergy`] into such a kernel.
//!
//! Each kind is its own type implementing [`UnitEnergy`], so a loop written
//! once against the trait is compiled once per kind with no branch per
//! element. [`with_unit_energy!`](crate::with_unit_energy) is the single
//! dispatch point: a new kind adds a variant to [`BaseEnergy`], a type here
//! and one arm there.

use super::BaseEnergy;
use crate::scalar::Real;

/// φ′(x) of one unit, parameters converted once to the working precision.
pub trait UnitEnergy<T: Real>: Copy + Send + Sync {
    /// φ′(x).
    fn dphi(&self, x: T) -> T;
}

/// φ = x²/(2σ²).
#[derive(Debug, Clone, Copy)]
pub struct GaussianKernel<T> {
    pub inv_s2: T,
}

/// φ = x²/(2σ²) + λ(√(x²+δ²) − δ).
#[derive(Debug, Clone, Copy)]
pub struct SmoothLaplaceKernel<T> {
    pub inv_s2: T,
    pub lambda: T,
    pub delta2: T,
}

/// φ = x²/(2σ²) + w·((ν+1)/2)·log(1 + x²/ν); `wnu1` = w(ν+1).
#[derive(Debug, Clone, Copy)]
pub struct StudentTKernel<T> {
    pub inv_s2: T,
    pub wnu1: T,
    pub nu: T,
}

impl<T: Real> UnitEnergy<T> for GaussianKernel<T> {
    #[inline(always)]
    fn dphi(&self, x: T) -> T {
        x * self.inv_s2
    }
}

impl<T: Real> UnitEnergy<T> for SmoothLaplaceKernel<T> {
    #[inline(always)]
    fn dphi(&self, x: T) -> T {
        x * self.inv_s2 + self.lambda * x / (x * x + self.delta2).sqrt()
    }
}

impl<T: Real> UnitEnergy<T> for StudentTKernel<T> {
    #[inline(always)]
    fn dphi(&self, x: T) -> T {
        x * self.inv_s2 + self.wnu1 * x / (self.nu + x * x)
    }
}

impl BaseEnergy {
    /// 1/σ² in the working precision.
    pub(crate) fn inv_s2<T: Real>(&self) -> T {
        T::of(1.0 / (self.sigma() * self.sigma()))
    }
}

/// Runs `$body` with `$e` bound to the [`UnitEnergy`] kernel of `$energy`
/// (a [`BaseEnergy`]) in precision `$t`: the crate's one match over energy
/// kinds in the hot loops. `$body` is compiled once per kind.
#[macro_export]
#[doc(hidden)]
macro_rules! with_unit_energy {
    ($t:ty, $energy:expr, |$e:ident| $body:expr) => {{
        use $crate::energy::kernel::*;
        let energy: $crate::energy::BaseEnergy = $energy;
        let inv_s2: $t = energy.inv_s2::<$t>();
        match energy {
            $crate::energy::BaseEnergy::Gaussian { .. } => {
                let $e = GaussianKernel::<$t> { inv_s2 };
                $body
            }
            $crate::energy::BaseEnergy::SmoothLaplace { lambda, delta, .. } => {
                let $e = SmoothLaplaceKernel::<$t> {
                    inv_s2,
                    lambda: <$t as $crate::scalar::Real>::of(lambda),
                    delta2: <$t as $crate::scalar::Real>::of(delta * delta),
                };
                $body
            }
            $crate::energy::BaseEnergy::StudentT { weight, nu, .. } => {
                let $e = StudentTKernel::<$t> {
                    inv_s2,
                    wnu1: <$t as $crate::scalar::Real>::of(weight * (nu + 1.0)),
                    nu: <$t as $crate::scalar::Real>::of(nu),
                };
                $body
            }
        }
    }};
}
