//! Exact moment recursion of the *discretised* dynamics on a linear-gaussian
//! model (spec §8).
//!
//! With f = identity and gaussian layers every update of a step — the neuron
//! move, each interneuron sub-step, the running average ε̄ — is affine in the
//! full state z plus fresh gaussian noise. Composing them gives one step
//! z′ = M z + c + ξ, ξ ~ N(0, Q), so the mean and covariance of an ensemble
//! after t steps follow exactly from μ ← Mμ + c, P ← M P Mᵀ + Q: the
//! reference a sampled ensemble must match, and the convergence curve of a
//! sampler free of Monte Carlo noise. The stationary point shows the
//! discretisation (and interneuron) bias exactly.
//!
//! This module mirrors the kernels' equations in dense matrices on purpose:
//! it is an independent implementation to test them against.

use faer::linalg::solvers::Solve;
use faer::Mat;

use super::linear_gaussian::{Gaussian, LinearGaussian};
use crate::aprime::APrime;
use crate::dynamics::{NeuralConfig, Observed, INIT_REFRESHES};
use crate::error::{HeeError, Result};

/// z ↦ A z + c plus N(0, Q) noise.
#[derive(Debug, Clone)]
pub struct AffineStep {
    pub a: Mat<f64>,
    pub c: Vec<f64>,
    pub q: Mat<f64>,
}

impl AffineStep {
    /// The identity map on `dim` variables.
    pub fn identity(dim: usize) -> Self {
        AffineStep {
            a: Mat::identity(dim, dim),
            c: vec![0.0; dim],
            q: Mat::zeros(dim, dim),
        }
    }

    /// `next ∘ self`: first self, then next (noise of both, independent).
    pub fn then(&self, next: &AffineStep) -> AffineStep {
        let a = &next.a * &self.a;
        let c = add(&matvec(&next.a, &self.c), &next.c);
        let q = &next.a * &self.q * next.a.transpose() + &next.q;
        AffineStep { a, c, q }
    }

    /// The map applied `k` times (exponentiation by squaring, O(log k)
    /// compositions), for reading a convergence curve at sparse steps.
    pub fn power(&self, k: u64) -> AffineStep {
        let mut result = AffineStep::identity(self.c.len());
        let mut base = self.clone();
        let mut k = k;
        while k > 0 {
            if k & 1 == 1 {
                result = result.then(&base);
            }
            base = base.then(&base);
            k >>= 1;
        }
        result
    }

    /// Moments after one application.
    pub fn propagate(&self, mean: &[f64], cov: &Mat<f64>) -> (Vec<f64>, Mat<f64>) {
        let m = add(&matvec(&self.a, mean), &self.c);
        let p = &self.a * cov * self.a.transpose() + &self.q;
        (m, p)
    }
}

fn matvec(a: &Mat<f64>, v: &[f64]) -> Vec<f64> {
    (0..a.nrows())
        .map(|i| (0..a.ncols()).map(|j| a[(i, j)] * v[j]).sum())
        .collect()
}

fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// Which kernel the recursion describes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KernelKind {
    /// Plain Langevin, x ← x − h ∂U/∂x + √(2h) ξ.
    Plain,
    /// Adaptation dynamics with time constant τ_a and strength g, the
    /// kernel's scheme: with G = ∂U/∂x at the current state and
    /// ρ = e^{−Δt/τ_a}, first a ← ρa + (1−ρ)gG + √(μ(1−ρ²)) ξ_a, then
    /// x ← x − h(G + a) + √(2h) ξ_x with the new a.
    Adaptation { tau_a: f64, g: f64 },
}

/// Layout of the full state z = [x latents | aux | ε | ε̄].
#[derive(Debug, Clone, Copy)]
struct Layout {
    d: usize,
    aux: usize,
    e: usize,
    interneurons: bool,
}

impl Layout {
    fn dim(&self) -> usize {
        self.d + self.aux + 2 * self.e
    }
    fn eps(&self) -> usize {
        self.d + self.aux
    }
    fn ebar(&self) -> usize {
        self.d + self.aux + self.e
    }
}

/// The exact moment recursion of one kernel on one linear-gaussian model
/// with clamped observation x₀.
#[derive(Debug, Clone)]
pub struct MomentRecursion {
    /// One full neuron step.
    pub step: AffineStep,
    /// One refresh of the A′ estimators (used by the sampler's `init`).
    pub refresh: AffineStep,
    layout: Layout,
}

impl MomentRecursion {
    /// Builds the recursion for `kind` with `config` on `model`, given x₀.
    pub fn new(
        model: &LinearGaussian,
        config: &NeuralConfig,
        kind: KernelKind,
        x0: &[f64],
    ) -> Result<Self> {
        config.validate()?;
        if !model.shares_sigma() {
            return Err(HeeError::Unsupported(
                "moment recursion is for layers that share one sigma".into(),
            ));
        }
        if config.observed != Observed::Clamped {
            return Err(HeeError::Unsupported(
                "moment recursion is for clamped x0".into(),
            ));
        }
        let interneurons = matches!(config.a_prime, APrime::Interneurons(_));
        let top = model.n_layers() - 1;
        let d = model.latent_dim();
        let e: usize = (0..top).map(|l| model.size(l)).sum();
        let aux = match kind {
            KernelKind::Plain => 0,
            KernelKind::Adaptation { .. } => d,
        };
        let layout = Layout {
            d,
            aux,
            e: if interneurons { e } else { 0 },
            interneurons,
        };
        let (g, gc) = gradient_affine(model, &layout, x0);
        let h = config.h();
        let dim = layout.dim();
        // Neuron move.
        let mut mv = AffineStep::identity(dim);
        match kind {
            KernelKind::Plain => {
                for i in 0..d {
                    for j in 0..dim {
                        mv.a[(i, j)] -= h * g[(i, j)];
                    }
                    mv.c[i] = -h * gc[i];
                    mv.q[(i, i)] = 2.0 * h;
                }
            }
            KernelKind::Adaptation { tau_a, g: strength } => {
                // Exponential integrator for a at fixed force: decay e^{-Δt/τ_a},
                // force weight 1 − e^{-Δt/τ_a}, noise μ(1 − e^{-2Δt/τ_a}).
                let decay = (-config.dt / tau_a).exp();
                let ra = 1.0 - decay;
                let mu = strength * config.tau / tau_a;
                let qa = mu * (1.0 - decay * decay);
                let mut op_a = AffineStep::identity(dim);
                let mut op_x = AffineStep::identity(dim);
                for i in 0..d {
                    let ai = d + i;
                    for j in 0..dim {
                        op_a.a[(ai, j)] += ra * strength * g[(i, j)];
                        op_x.a[(i, j)] -= h * g[(i, j)];
                    }
                    op_a.a[(ai, ai)] -= ra;
                    op_a.c[ai] = ra * strength * gc[i];
                    op_a.q[(ai, ai)] = qa;
                    op_x.a[(i, ai)] -= h;
                    op_x.c[i] = -h * gc[i];
                    op_x.q[(i, i)] = 2.0 * h;
                }
                mv = op_a.then(&op_x);
            }
        }
        let refresh = refresh_affine(model, &layout, config);
        Ok(MomentRecursion {
            step: mv.then(&refresh),
            refresh,
            layout,
        })
    }

    /// Dimension of the full state.
    pub fn dim(&self) -> usize {
        self.layout.dim()
    }

    /// Moments of the full state right after the sampler's `init` from a
    /// deterministic latent start `x_init` (interneurons at 0).
    pub fn init_moments(&self, x_init: &[f64]) -> (Vec<f64>, Mat<f64>) {
        let mut mean = vec![0.0; self.dim()];
        mean[..self.layout.d].copy_from_slice(x_init);
        let mut cov = Mat::zeros(self.dim(), self.dim());
        for _ in 0..INIT_REFRESHES {
            (mean, cov) = self.refresh.propagate(&mean, &cov);
        }
        (mean, cov)
    }

    /// Mean and covariance of the auxiliary variable (adaptation current)
    /// from full-state moments; empty for plain Langevin.
    pub fn aux_part(&self, mean: &[f64], cov: &Mat<f64>) -> (Vec<f64>, Mat<f64>) {
        let (d, n) = (self.layout.d, self.layout.aux);
        (
            mean[d..d + n].to_vec(),
            Mat::from_fn(n, n, |i, j| cov[(d + i, d + j)]),
        )
    }

    /// Mean and covariance of the latents x from full-state moments.
    pub fn latent_part(&self, mean: &[f64], cov: &Mat<f64>) -> (Vec<f64>, Mat<f64>) {
        let d = self.layout.d;
        (mean[..d].to_vec(), Mat::from_fn(d, d, |i, j| cov[(i, j)]))
    }

    /// Stationary mean and covariance of the full state; fails if the
    /// discretised dynamics are unstable (spectral radius ≥ 1).
    pub fn stationary(&self) -> Result<(Vec<f64>, Mat<f64>)> {
        let dim = self.dim();
        let m = &self.step.a;
        let i_m = Mat::<f64>::identity(dim, dim) - m;
        let rhs = Mat::from_fn(dim, 1, |i, _| self.step.c[i]);
        let mean_m = i_m.partial_piv_lu().solve(rhs);
        let mean: Vec<f64> = (0..dim).map(|i| mean_m[(i, 0)]).collect();
        // Doubling: P = Σ_k M^k Q (M^k)ᵀ.
        let mut p = self.step.q.clone();
        let mut a = m.clone();
        for _ in 0..64 {
            p = &p + &a * &p * a.transpose();
            a = &a * &a;
            let norm: f64 = (0..dim)
                .flat_map(|i| (0..dim).map(move |j| (i, j)))
                .map(|(i, j)| a[(i, j)].abs())
                .fold(0.0, f64::max);
            if !norm.is_finite() || norm > 1e12 {
                return Err(HeeError::Numerical {
                    routine: "moment recursion",
                    reason: "discretised dynamics are unstable: reduce dt".into(),
                });
            }
            if norm < 1e-18 {
                return Ok((mean, p));
            }
        }
        Err(HeeError::Numerical {
            routine: "moment recursion",
            reason: "stationary covariance did not converge (mixing too slow for 2^64 steps)"
                .into(),
        })
    }

    /// The stationary distribution of the latents as a gaussian.
    pub fn stationary_latents(&self) -> Result<Gaussian> {
        let (m, p) = self.stationary()?;
        let (m, p) = self.latent_part(&m, &p);
        Gaussian::new(m, p)
    }
}

/// ∂U/∂x_latent as an affine function G z + g_c of the full state, with the
/// current A′ estimate: exact (σ²η) without interneurons, ε̄ with them.
fn gradient_affine(model: &LinearGaussian, layout: &Layout, x0: &[f64]) -> (Mat<f64>, Vec<f64>) {
    let top = model.n_layers() - 1;
    let dim = layout.dim();
    let mut g = Mat::<f64>::zeros(layout.d, dim);
    let mut gc = vec![0.0; layout.d];
    // Offsets of ε̄ blocks: layers 0..top-1 stacked.
    let ebar_off = |l: usize| layout.ebar() + (0..l).map(|m| model.size(m)).sum::<usize>();
    for k in 1..=top {
        let o = model.latent_offset(k);
        let s2k = model.sigma2(k);
        for i in 0..model.size(k) {
            // φ′(x_k) − η_k.
            g[(o + i, o + i)] += 1.0 / s2k;
            gc[o + i] -= model.bias(k)[i];
            if k < top {
                let oa = model.latent_offset(k + 1);
                for j in 0..model.size(k + 1) {
                    g[(o + i, oa + j)] -= model.weight(k)[(i, j)];
                }
            }
        }
        // − W_{k−1}ᵀ (x_{k−1} − A′_{k−1}).
        let w = model.weight(k - 1);
        let s2b = model.sigma2(k - 1);
        for i in 0..model.size(k) {
            for r in 0..model.size(k - 1) {
                let wri = w[(r, i)];
                if k == 1 {
                    gc[o + i] -= wri * x0[r];
                } else {
                    g[(o + i, model.latent_offset(k - 1) + r)] -= wri;
                }
                if layout.interneurons {
                    g[(o + i, ebar_off(k - 1) + r)] += wri;
                } else {
                    // A′ = σ²(W_{k−1} x_k + b_{k−1}).
                    gc[o + i] += wri * s2b * model.bias(k - 1)[r];
                    for j in 0..model.size(k) {
                        g[(o + i, o + j)] += wri * s2b * w[(r, j)];
                    }
                }
            }
        }
    }
    (g, gc)
}

/// One refresh of the interneurons of layers 0…L−1 (identity without them):
/// K sub-steps ε ← (1 − hε/σ²)ε + hε η + √(2hε) ξ and ε̄ = their average.
fn refresh_affine(model: &LinearGaussian, layout: &Layout, config: &NeuralConfig) -> AffineStep {
    let dim = layout.dim();
    let mut total = AffineStep::identity(dim);
    if !layout.interneurons {
        return total;
    }
    let top = model.n_layers() - 1;
    let k_sub = config.substeps();
    let he = config.h_eps();
    for s in 0..k_sub {
        let mut sub = AffineStep::identity(dim);
        let mut avg = AffineStep::identity(dim);
        let mut off = 0;
        for l in 0..top {
            let s2 = model.sigma2(l);
            for i in 0..model.size(l) {
                let ei = layout.eps() + off + i;
                sub.a[(ei, ei)] = 1.0 - he / s2;
                sub.c[ei] = he * model.bias(l)[i];
                sub.q[(ei, ei)] = 2.0 * he;
                // η_l = W_l x_{l+1} + b_l, x_{l+1} latent.
                let oa = model.latent_offset(l + 1);
                for j in 0..model.size(l + 1) {
                    sub.a[(ei, oa + j)] = he * model.weight(l)[(i, j)];
                }
                // ε̄ ← (s = 0 ? 0 : ε̄) + ε/K, applied after the sub-step.
                let bi = layout.ebar() + off + i;
                avg.a[(bi, bi)] = if s == 0 { 0.0 } else { 1.0 };
                avg.a[(bi, ei)] = 1.0 / k_sub as f64;
            }
            off += model.size(l);
        }
        total = total.then(&sub).then(&avg);
    }
    total
}
