//! Plain (overdamped) Langevin dynamics of the neurons (spec §3):
//!
//! τ dx = −∂U/∂x dt + √(2τ) dW, discretised by Euler–Maruyama:
//! x ← x − h ∂U/∂x + √(2h) ξ with h = Δt/τ.

use faer::reborrow::ReborrowMut;
use faer::{MatMut, MatRef};

use super::{Dynamics, NeuralConfig};
use crate::elementwise::{col, col_mut, simd};
use crate::error::Result;
use crate::model::HeeModel;
use crate::rng::{SampleStream, Ziggurat, BLOCK};
use crate::scalar::Real;

/// Plain Langevin kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Langevin {
    pub config: NeuralConfig,
}

impl Langevin {
    /// A validated kernel.
    pub fn new(config: NeuralConfig) -> Result<Self> {
        config.validate()?;
        Ok(Langevin { config })
    }
}

impl<T: Real> Dynamics<T> for Langevin {
    fn name(&self) -> &'static str {
        "plain"
    }

    fn config(&self) -> &NeuralConfig {
        &self.config
    }

    fn update_chunk(
        &self,
        model: &HeeModel<T>,
        mut x: MatMut<'_, T>,
        _aux: MatMut<'_, T>,
        grad: MatRef<'_, T>,
        rngs: &mut [SampleStream],
    ) {
        let h = T::of(self.config.h());
        let noise = (T::of(2.0) * h).sqrt();
        let start = model.offset(self.config.first_free());
        let z = Ziggurat::get();
        // The noise is drawn in bulk, a block of units at a time.
        let mut xi = [T::zero(); BLOCK];
        simd::dispatch(
            #[inline(always)]
            move || {
                for (j, rng) in rngs.iter_mut().enumerate() {
                    let xj = &mut col_mut(x.rb_mut(), j)[start..];
                    let gj = &col(grad, j)[start..];
                    for (xb, gb) in xj.chunks_mut(BLOCK).zip(gj.chunks(BLOCK)) {
                        let xi = &mut xi[..xb.len()];
                        T::fill_normals(z, rng, xi);
                        for ((xv, &g), &n) in xb.iter_mut().zip(gb).zip(xi.iter()) {
                            *xv = *xv - h * g + noise * n;
                        }
                    }
                }
            },
        );
    }
}
