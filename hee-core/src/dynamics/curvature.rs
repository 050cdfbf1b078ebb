//! The time scales of a posterior: the extreme eigenvalues of the Hessian
//! of U over the free units, from which the adaptation rule picks τ_a and g.

use crate::error::{HeeError, Result};
use crate::model::HeeModel;
use crate::scalar::Real;

/// Time scales of a posterior: extreme eigenvalues of ∇²U over the latents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvatureRange {
    pub lambda_min: f64,
    pub lambda_max: f64,
}

impl CurvatureRange {
    /// Extreme eigenvalues of the Hessian of U over the free latent layers at
    /// one network state `x` (one sample: all layers in order, layer 0 the
    /// observation).
    ///
    /// The Hessian is assembled column by column from central differences of
    /// the exact gradient (A′ analytic or by quadrature), symmetrised, and
    /// diagonalised. Cost: 2·d gradient evaluations and one d×d eigen-
    /// decomposition for d latent units — meant for setting up a run, not for
    /// the step loop. For a linear-gaussian model the result is exact (the
    /// Hessian is the constant Λ). Where U is not convex at `x` (student-t
    /// layers), λ_min is floored at 1e-3·λ_max.
    pub fn at_state<T: Real>(model: &HeeModel<T>, x: &[f64]) -> Result<CurvatureRange> {
        let free: Vec<usize> = (model.offset(1)..model.total_size()).collect();
        Self::over_units(model, x, &free)
    }

    /// [`at_state`](Self::at_state) over any set of free units (indices into
    /// the stacked state, each once; the others held fixed): the latents and
    /// x₀ for joint generation, or the unseen part of x₀ and the latents for
    /// completion. The Hessian of U is then taken over exactly those units.
    pub fn over_units<T: Real>(
        model: &HeeModel<T>,
        x: &[f64],
        free: &[usize],
    ) -> Result<CurvatureRange> {
        let n = model.total_size();
        if free.is_empty() {
            return Err(HeeError::dims("free units", ">= 1", 0));
        }
        let mut seen = vec![false; n];
        for &i in free {
            if i >= n || seen[i] {
                return Err(HeeError::dims(
                    "free units",
                    format!("distinct indices below {n}"),
                    i,
                ));
            }
            seen[i] = true;
        }
        if x.len() != n {
            return Err(HeeError::dims("x", n, x.len()));
        }
        if let Some((i, v)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(HeeError::NonFiniteInput {
                field: "x".into(),
                row: i,
                col: 0,
                value: *v,
            });
        }
        let m64 = model.cast::<f64>();
        let d = free.len();
        // The drift of every layer that holds a free unit.
        let first = (0..model.n_layers())
            .find(|&l| free.iter().any(|&i| i < model.offset(l + 1)))
            .unwrap_or(1);
        let grad = |xs: &faer::Mat<f64>| -> Result<faer::Mat<f64>> {
            let b = xs.ncols();
            let mut fx = faer::Mat::zeros(n, b);
            let mut eta = faer::Mat::zeros(n, b);
            let mut ap = faer::Mat::zeros(n, b);
            let (mut diff, mut tmp, mut g) = (
                faer::Mat::zeros(n, b),
                faer::Mat::zeros(n, b),
                faer::Mat::zeros(n, b),
            );
            m64.natural_params_unchecked(xs.as_ref(), fx.as_mut(), eta.as_mut());
            m64.exact_a_prime_unchecked(eta.as_ref(), ap.as_mut())?;
            m64.state_gradient_unchecked(
                xs.as_ref(),
                eta.as_ref(),
                Some(ap.as_ref()),
                first,
                diff.as_mut(),
                tmp.as_mut(),
                g.as_mut(),
            );
            Ok(g)
        };
        // All 2d perturbed states in one batch: columns 2k and 2k+1 move
        // free unit k by +ε and −ε.
        let eps = 1e-4;
        let xs = faer::Mat::from_fn(n, 2 * d, |i, c| {
            let k = c / 2;
            let sign = if c % 2 == 0 { 1.0 } else { -1.0 };
            x[i] + if i == free[k] {
                sign * eps * (1.0 + x[i].abs())
            } else {
                0.0
            }
        });
        let g = grad(&xs)?;
        let h = faer::Mat::from_fn(d, d, |i, k| {
            let step = 2.0 * eps * (1.0 + x[free[k]].abs());
            (g[(free[i], 2 * k)] - g[(free[i], 2 * k + 1)]) / step
        });
        let sym = faer::Mat::from_fn(d, d, |i, k| 0.5 * (h[(i, k)] + h[(k, i)]));
        let ev = sym
            .self_adjoint_eigenvalues(faer::Side::Lower)
            .map_err(|_| HeeError::Numerical {
                routine: "eigen",
                reason: "Hessian of U".into(),
            })?;
        let lambda_max = ev.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        if !(lambda_max.is_finite() && lambda_max > 0.0) {
            return Err(HeeError::Numerical {
                routine: "curvature",
                reason: format!("largest curvature {lambda_max} is not positive"),
            });
        }
        let lambda_min = ev
            .iter()
            .cloned()
            .fold(f64::INFINITY, f64::min)
            .max(1e-3 * lambda_max);
        Ok(CurvatureRange {
            lambda_min,
            lambda_max,
        })
    }
}
