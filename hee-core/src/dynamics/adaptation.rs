//! Neural adaptation as momentum (spec §4).
//!
//! Each neuron carries an adaptation current a, a noisy low-pass filter of
//! the force on it:
//!
//! ```text
//! τ   dx = (−∂U/∂x − a) dt + √(2τ) dW_x
//! τ_a da = (−a + g ∂U/∂x) dt + √(2gτ) dW_a
//! ```
//!
//! With H(x, a) = U(x) + |a|²/(2μ), μ = gτ/τ_a, this is
//! dz = −(D + Q)∇H dt + √(2D) dW with D = diag(1/τ, μ/τ_a) and the skew
//! Q = [[0, μ/τ], [−μ/τ, 0]] (see `docs/adaptation.md`), an instance of
//! the complete recipe of Ma, Chen & Fox (2015): the stationary law is
//! exp(−H), so x samples the posterior exactly (in continuous time) and
//! a ~ N(0, μ) independently. g = 0 is plain Langevin.
//!
//! Discretisation (measured against Euler–Maruyama on both, see
//! `docs/adaptation.md`): with G = ∂U/∂x at the current state,
//! ρ = e^{−Δt/τ_a} and h = Δt/τ,
//!
//! ```text
//! a ← ρ a + (1 − ρ) g G + √(μ(1 − ρ²)) ξ_a     (exact OU step at fixed G)
//! x ← x − h (G + a) + √(2h) ξ_x                 (with the new a)
//! ```
//!
//! Updating the current first and integrating its OU part exactly keeps the
//! stationary bias close to plain Langevin's at the same Δt (Euler on both
//! has 6–100× more, enough to miss a KL threshold of 0.05 altogether at the
//! momentum strengths this one takes), so the tuned rule can use much
//! stronger momentum.

use faer::reborrow::ReborrowMut;
use faer::{MatMut, MatRef};

use super::{CurvatureRange, Dynamics, NeuralConfig};
use crate::aprime::{APrime, LayerAPrime};
use crate::elementwise::{col, col_mut, simd};
use crate::error::{non_negative, positive, HeeError, Result};
use crate::model::HeeModel;
use crate::rng::{SampleStream, Ziggurat, BLOCK};
use crate::scalar::Real;

/// s = S_FACTOR·√(hλ_min) in the tuned rule with exact A′: ½ balances
/// speed and bias (worst relative covariance bias over 30 random models
/// 4.4% at ½, 7% at 0.35, 2.8% at 1; `results/defaults/momentum-factor.csv`,
/// written by `hee reproduce defaults`; see `docs/adaptation.md`).
pub const S_FACTOR: f64 = 0.5;

/// The factor when A′ comes from interneurons: strong momentum amplifies
/// the noise of ε̄ (worst relative covariance bias over 30 random models,
/// τ_ε/τ = 0.01: 12% at ½, 6.1% at 1, 5.0% at 1.5, 4.6% at 2;
/// `results/defaults/momentum-factor.csv`, written by
/// `hee reproduce defaults`), so the rule is gentler there.
pub const S_FACTOR_INTERNEURONS: f64 = 1.5;

/// Adaptation dynamics: plain Langevin plus a per-neuron adaptation current.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adaptation {
    pub config: NeuralConfig,
    /// Adaptation time constant τ_a.
    pub tau_a: f64,
    /// Adaptation strength g ≥ 0 (0 = plain Langevin).
    pub g: f64,
}

pub use super::curvature::CURVATURE_SAMPLES;

impl Adaptation {
    /// The tuned kernel for `model` and the data the run will use: `data`
    /// (batch × size(0)) and `latents` (batch × latent units, zero if `None`),
    /// exactly as passed to [`Dynamics::init`].
    ///
    /// The curvature range is measured by [`CurvatureRange::of_batch`] over
    /// the layers the kernel moves, then [`Adaptation::tuned`] picks τ_a and g.
    pub fn for_model<T: Real>(
        config: NeuralConfig,
        model: &HeeModel<T>,
        data: MatRef<'_, T>,
        latents: Option<MatRef<'_, T>>,
    ) -> Result<Self> {
        let range = CurvatureRange::of_batch(model, config.first_free(), data, latents)?;
        let interneurons = config
            .a_prime
            .resolve(model)?
            .contains(&LayerAPrime::Interneurons);
        Adaptation::tuned_with(config, range, interneurons)
    }

    /// A validated kernel with explicit τ_a and g.
    pub fn new(config: NeuralConfig, tau_a: f64, g: f64) -> Result<Self> {
        let k = Adaptation { config, tau_a, g };
        k.check()?;
        Ok(k)
    }

    fn check(&self) -> Result<()> {
        self.config.validate()?;
        positive("tau_a", self.tau_a)?;
        non_negative("g", self.g)
    }

    /// True when the scheme is stable on a mode of curvature λ: with
    /// r = 1 − e^{−Δt/τ_a}, the step matrix has trace 2 − hλ(1 + rg) − r and
    /// determinant (1 − r)(1 − hλ), and the Jury conditions reduce to
    /// hλ < 2 and 4 − 2r − hλ(2 + r(g − 1)) > 0.
    pub fn stable_for(&self, lambda: f64) -> bool {
        let h = self.config.h();
        let r = 1.0 - (-self.config.dt / self.tau_a).exp();
        h * lambda < 2.0 && 4.0 - 2.0 * r - h * lambda * (2.0 + r * (self.g - 1.0)) > 0.0
    }

    /// The default rule: τ_a and g from the step and the posterior's
    /// curvature range (see `docs/adaptation.md`).
    ///
    /// With s = τ_a λ_min/τ, critical damping of the slowest mode needs
    /// g = (1+s)²/(4s) − 1 and gives it the rate (1+s)/(2τ_a), against λ_min/τ
    /// for plain Langevin: a speed-up of (1+s)/(2s). Smaller s is faster but
    /// the discretisation bias grows with r·g ≈ 1/(4 s²/(hλ_min)); we take
    /// s = S_FACTOR·√(h λ_min), so r·g ≈ 1 and the slowest-mode speed-up is
    /// ≈ 1/(2·S_FACTOR·√(hλ_min)) = √(κ/(hλ_max)) for S_FACTOR = ½. When
    /// s ≥ 1 momentum cannot help and g = 0 (plain Langevin) is returned.
    /// Fails, naming `dt`, if the scheme would be unstable at λ_max.
    ///
    /// Which factor applies is read from `config.a_prime`: `Analytic` and
    /// `Quadrature` use [`S_FACTOR`]; `Interneurons` and `Auto` (which may
    /// use interneurons) use [`S_FACTOR_INTERNEURONS`]. [`Adaptation::for_model`]
    /// resolves `Auto` against the model instead.
    pub fn tuned(config: NeuralConfig, curvature: CurvatureRange) -> Result<Self> {
        let exact = matches!(config.a_prime, APrime::Analytic | APrime::Quadrature);
        Self::tuned_with(config, curvature, !exact)
    }

    /// [`Adaptation::tuned`] with the interneuron question answered explicitly.
    pub fn tuned_with(
        config: NeuralConfig,
        curvature: CurvatureRange,
        interneurons: bool,
    ) -> Result<Self> {
        let factor = if interneurons {
            S_FACTOR_INTERNEURONS
        } else {
            S_FACTOR
        };
        Self::tuned_with_factor(config, curvature, factor)
    }

    /// The tuned rule with an explicit momentum factor: s = factor·√(hλ_min)
    /// (smaller is stronger momentum; [`S_FACTOR`] and
    /// [`S_FACTOR_INTERNEURONS`] are the defaults, measured by
    /// `hee reproduce defaults`).
    pub fn tuned_with_factor(
        config: NeuralConfig,
        curvature: CurvatureRange,
        factor: f64,
    ) -> Result<Self> {
        config.validate()?;
        positive("lambda_min", curvature.lambda_min)?;
        positive("lambda_max", curvature.lambda_max)?;
        positive("factor", factor)?;
        let h = config.h();
        let s = factor * (h * curvature.lambda_min).sqrt();
        let k = if s >= 1.0 {
            Adaptation::new(config, config.tau, 0.0)?
        } else {
            let tau_a = config.tau * s / curvature.lambda_min;
            let g = (1.0 + s).powi(2) / (4.0 * s) - 1.0;
            Adaptation::new(config, tau_a, g)?
        };
        if !k.stable_for(curvature.lambda_max) {
            return Err(HeeError::param(
                "dt",
                config.dt,
                "too long for the stiffest posterior direction (dt/tau * lambda_max must stay well below 2)",
            ));
        }
        Ok(k)
    }

    /// μ = gτ/τ_a, the stationary variance of each adaptation current.
    pub fn mu(&self) -> f64 {
        self.g * self.config.tau / self.tau_a
    }
}

impl<T: Real> Dynamics<T> for Adaptation {
    fn name(&self) -> &'static str {
        "adaptation"
    }

    fn config(&self) -> &NeuralConfig {
        &self.config
    }

    fn validate(&self) -> Result<()> {
        self.check()
    }

    fn update_chunk(
        &self,
        model: &HeeModel<T>,
        mut x: MatMut<'_, T>,
        mut aux: MatMut<'_, T>,
        grad: MatRef<'_, T>,
        rngs: &mut [SampleStream],
    ) {
        let h = T::of(self.config.h());
        let noise_x = (T::of(2.0) * h).sqrt();
        let decay = (-self.config.dt / self.tau_a).exp();
        let rho = T::of(decay);
        let force = T::of((1.0 - decay) * self.g);
        let noise_a = T::of((self.mu() * (1.0 - decay * decay)).sqrt());
        let adapt = self.g > 0.0;
        let start = model.offset(self.config.first_free());
        let z = Ziggurat::get();
        // The noise is drawn in bulk, a block of units at a time: the
        // current's block first (only when g > 0), then the neurons'.
        const B: usize = BLOCK;
        let (mut xi_a, mut xi_x) = ([T::zero(); B], [T::zero(); B]);
        simd::dispatch(
            #[inline(always)]
            move || {
                for (j, rng) in rngs.iter_mut().enumerate() {
                    let xj = &mut col_mut(x.rb_mut(), j)[start..];
                    let aj = &mut col_mut(aux.rb_mut(), j)[start..];
                    let gj = &col(grad, j)[start..];
                    for ((xb, ab), gb) in xj.chunks_mut(B).zip(aj.chunks_mut(B)).zip(gj.chunks(B)) {
                        let m = xb.len();
                        let (xi_a, xi_x) = (&mut xi_a[..m], &mut xi_x[..m]);
                        // The current first (exact OU step at fixed force), then x
                        // with the new current. With g = 0 nothing is drawn for a and
                        // a ≡ 0, so x + h(−G − 0) is plain Langevin's x − hG bit for bit.
                        if adapt {
                            T::fill_normals(z, rng, xi_a);
                            for ((av, &gr), &n) in ab.iter_mut().zip(gb).zip(xi_a.iter()) {
                                *av = rho * *av + force * gr + noise_a * n;
                            }
                        }
                        T::fill_normals(z, rng, xi_x);
                        for (((xv, &av), &gr), &n) in
                            xb.iter_mut().zip(ab.iter()).zip(gb).zip(xi_x.iter())
                        {
                            *xv = *xv + h * (-gr - av) + noise_x * n;
                        }
                    }
                }
            },
        );
    }
}
