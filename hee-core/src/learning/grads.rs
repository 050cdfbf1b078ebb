//! The rule's ascent directions (spec §5): ΔW_l = ⟨(x_l − A′_l) f(x_{l+1})ᵀ⟩,
//! Δb_l = ⟨x_l − A′_l⟩, and for a base-energy parameter θ,
//! Δθ_l = ⟨−∂φ_l/∂θ(x_l) + E[∂φ_l/∂θ | η_l]⟩, with [`ParamGrads`] to hold
//! and combine them.

use faer::linalg::matmul::matmul;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::dispersion::{sigma_count, RowSteps};
use crate::aprime::quadrature;
use crate::elementwise::{all_finite, col, col_mut, contiguous, simd, zip_map2};
use crate::energy::MAX_ENERGY_PARAMS;
use crate::error::{HeeError, Result};
use crate::model::HeeModel;
use crate::scalar::Real;

/// Columns of W per parallel task of the weight-gradient product and of the
/// weight update.
pub(crate) const WEIGHT_GRAD_BLOCK: usize = 32;

/// Gradients of log p with respect to the parameters (the ascent direction),
/// averaged over a batch. Same shapes as the model's parameters.
#[derive(Debug, Clone)]
pub struct ParamGrads<T> {
    pub weights: Vec<Mat<T>>,
    pub biases: Vec<Vec<T>>,
    /// Per layer, per base-energy parameter (unused slots zero; σ learns
    /// through `log_sigma` instead).
    pub energy: Vec<[f64; MAX_ENERGY_PARAMS]>,
    /// Per layer, ∂ log p/∂ log σ: one entry per unit for a layer with σ per
    /// unit, one otherwise (zero for layers whose σ is fixed).
    pub log_sigma: Vec<Vec<f64>>,
}

impl<T: Real> ParamGrads<T> {
    /// Zero gradients shaped like `model`.
    pub fn zeros_like(model: &HeeModel<T>) -> Self {
        ParamGrads {
            weights: (0..model.top())
                .map(|l| Mat::zeros(model.size(l), model.size(l + 1)))
                .collect(),
            biases: (0..model.n_layers())
                .map(|l| vec![T::zero(); model.size(l)])
                .collect(),
            energy: vec![[0.0; MAX_ENERGY_PARAMS]; model.n_layers()],
            log_sigma: (0..model.n_layers())
                .map(|l| vec![0.0; sigma_count(model, l)])
                .collect(),
        }
    }

    /// Multiplies every gradient by `factor`.
    pub fn scale(&mut self, factor: f64) {
        let f = T::of(factor);
        for w in &mut self.weights {
            faer::zip!(w.as_mut()).for_each(|faer::unzip!(w)| *w *= f);
        }
        for v in self.biases.iter_mut().flatten() {
            *v *= f;
        }
        for v in self.energy.iter_mut().flatten() {
            *v *= factor;
        }
        for v in self.log_sigma.iter_mut().flatten() {
            *v *= factor;
        }
    }

    /// self += factor·other, entry by entry (e.g. a clamped phase minus a
    /// free phase: `clamped.add_scaled(-1.0, &free)`). An error when the
    /// shapes differ.
    pub fn add_scaled(&mut self, factor: f64, other: &ParamGrads<T>) -> Result<()> {
        let fits = self.weights.len() == other.weights.len()
            && self.biases.len() == other.biases.len()
            && self.energy.len() == other.energy.len()
            && self
                .weights
                .iter()
                .zip(&other.weights)
                .all(|(a, b)| (a.nrows(), a.ncols()) == (b.nrows(), b.ncols()))
            && self
                .biases
                .iter()
                .zip(&other.biases)
                .all(|(a, b)| a.len() == b.len())
            && self.log_sigma.len() == other.log_sigma.len()
            && self
                .log_sigma
                .iter()
                .zip(&other.log_sigma)
                .all(|(a, b)| a.len() == b.len());
        if !fits {
            return Err(HeeError::DimensionMismatch {
                field: "grads".into(),
                expected: "the shapes of the gradients added to".into(),
                got: "other shapes".into(),
            });
        }
        let f = T::of(factor);
        for (w, o) in self.weights.iter_mut().zip(&other.weights) {
            faer::zip!(w.as_mut(), o.as_ref()).for_each(|faer::unzip!(w, o)| *w += f * *o);
        }
        for (b, o) in self.biases.iter_mut().zip(&other.biases) {
            for (v, &u) in b.iter_mut().zip(o) {
                *v += f * u;
            }
        }
        for (e, o) in self.energy.iter_mut().zip(&other.energy) {
            for (v, &u) in e.iter_mut().zip(o) {
                *v += factor * u;
            }
        }
        for (e, o) in self.log_sigma.iter_mut().zip(&other.log_sigma) {
            for (v, &u) in e.iter_mut().zip(o) {
                *v += factor * u;
            }
        }
        Ok(())
    }
}

impl<T: Real> HeeModel<T> {
    /// The local rule's ascent direction for W and b (see
    /// `weight_grads_unchecked`), averaged
    /// over a batch of states `x` with A′ estimates `a_prime` (both batch ×
    /// total units). Energy-parameter slots are zero.
    pub fn weight_grads(&self, x: MatRef<'_, T>, a_prime: MatRef<'_, T>) -> Result<ParamGrads<T>> {
        self.check_batch("x", x, None)?;
        self.check_batch("a_prime", a_prime, Some(x.nrows()))?;
        let (n, b) = (self.total_size(), x.nrows());
        let (mut fx, mut diff) = (Mat::zeros(n, b), Mat::zeros(n, b));
        self.presynaptic(x.transpose(), fx.as_mut());
        let mut out = ParamGrads::zeros_like(self);
        self.weight_grads_unchecked(
            x.transpose(),
            a_prime.transpose(),
            fx.as_ref(),
            diff.as_mut(),
            &mut out,
            Par::rayon(0),
        );
        Ok(out)
    }

    /// Ascent direction of log p for W and b, averaged over the samples:
    /// ΔW_l = ⟨(x_l − A′_l) f(x_{l+1})ᵀ⟩, Δb_l = ⟨x_l − A′_l⟩ (spec §5).
    ///
    /// `fx` must hold f(x) (as left by `presynaptic`) when f is not the
    /// identity; `diff` is scratch. Energy-parameter slots of `out` are not
    /// touched. Internal layout, shapes unchecked.
    pub(crate) fn weight_grads_unchecked(
        &self,
        x: MatRef<'_, T>,
        a_prime: MatRef<'_, T>,
        fx: MatRef<'_, T>,
        mut diff: MatMut<'_, T>,
        out: &mut ParamGrads<T>,
        par: Par,
    ) {
        zip_map2(diff.rb_mut(), x, a_prime, |a, b| a - b);
        let pre = if self.nonlinearity().is_identity() {
            x
        } else {
            fx
        };
        // Finiteness is checked where the gradients are used.
        let _ = self.weight_grads_from(diff.rb(), pre, out, par, None);
    }

    /// ΔW_l = ⟨d_l pre_{l+1}ᵀ⟩ and Δb_l = ⟨d_l⟩ from the prediction errors
    /// `diff` (d_l = x_l − A′_l) and the presynaptic rates `pre` (f(x_l) for
    /// l ≥ 1). Returns whether every ΔW entry is finite. Internal layout,
    /// shapes unchecked.
    ///
    /// With `next = Some((rate, steps, w_next))`, each finite block of ΔW_l
    /// is also turned into the new W_l in `w_next[l]` while it is in cache
    /// (W_l + rate·ΔW_l, or row by row as `steps` plans for a layer stepped
    /// in mean coordinates); the learning step then swaps the matrices
    /// instead of a separate pass over W and ΔW. `w_next` is meaningful only
    /// when `true` is returned.
    pub(crate) fn weight_grads_from(
        &self,
        diff: MatRef<'_, T>,
        pre: MatRef<'_, T>,
        out: &mut ParamGrads<T>,
        par: Par,
        next: Option<NextWeights<'_, T>>,
    ) -> bool {
        let n = T::of(diff.ncols() as f64);
        let ParamGrads {
            weights, biases, ..
        } = out;
        let mut bias_sums = || {
            for (l, b) in biases.iter_mut().enumerate() {
                let dl = self.layer_of(diff, l);
                // Σ_j d_ij column by column (each sum still runs over j in
                // order), so the reads follow memory.
                b.fill(T::zero());
                for j in 0..dl.ncols() {
                    match contiguous(dl, j) {
                        Some(c) => {
                            for (b, &v) in b.iter_mut().zip(c) {
                                *b += v;
                            }
                        }
                        None => {
                            for (i, b) in b.iter_mut().enumerate() {
                                *b += dl[(i, j)];
                            }
                        }
                    }
                }
                for b in b.iter_mut() {
                    *b /= n;
                }
            }
        };
        let scale = T::one() / n;
        // Each block of ΔW is checked for finite values right after its
        // product, while it is still in cache: the update must refuse a
        // non-finite ΔW before it changes anything, without a second pass.
        let (rate, steps, mut next) = match next {
            Some((rate, steps, m)) => (rate, Some(steps), Some(m)),
            None => (T::zero(), None, None),
        };
        // The new W of one block of layer l's columns.
        let step = |l: usize, wn: MatMut<'_, T>, w_now: MatRef<'_, T>, g: MatRef<'_, T>| match steps
        {
            Some(s) if s.per_row[l] => rows_step(wn, w_now, g, &s.keep[l], &s.rate_w[l]),
            _ => step_block(wn, w_now, g, rate),
        };
        match par {
            Par::Seq => {
                bias_sums();
                let mut finite = true;
                for (l, w) in weights.iter_mut().enumerate() {
                    let (dl, above) = (self.layer_of(diff, l), self.layer_of(pre, l + 1));
                    matmul(
                        w.as_mut(),
                        Accum::Replace,
                        dl,
                        above.transpose(),
                        scale,
                        Par::Seq,
                    );
                    let ok = all_finite(w.as_ref());
                    if let (true, Some(next)) = (ok, next.as_deref_mut()) {
                        step(l, next[l].as_mut(), self.weight(l), w.as_ref());
                    }
                    finite &= ok;
                }
                finite
            }
            // Fixed blocks of ΔW's columns, one product each, for every
            // matrix at once, while the bias sums run beside them: the
            // threads share the work without faer's parallel path (which
            // allocates), and the result depends on the block size only,
            // never on the number of threads.
            _ => {
                // ΔW_l block by block, and W_l + rate·ΔW_l beside it when
                // `next` is given (an empty target otherwise).
                let layer = |l: usize, w: &mut Mat<T>, wn: MatMut<'_, T>, with_next: bool| {
                    let (dl, above) = (self.layer_of(diff, l), self.layer_of(pre, l + 1));
                    w.as_mut()
                        .par_col_chunks_mut(WEIGHT_GRAD_BLOCK)
                        .zip(above.transpose().par_col_chunks(WEIGHT_GRAD_BLOCK))
                        .zip(wn.par_col_chunks_mut(WEIGHT_GRAD_BLOCK))
                        .zip(self.weight(l).par_col_chunks(WEIGHT_GRAD_BLOCK))
                        .map(|(((mut o, a), wn), w_now)| {
                            matmul(o.rb_mut(), Accum::Replace, dl, a, scale, Par::Seq);
                            let ok = all_finite(o.rb());
                            if ok && with_next {
                                step(l, wn, w_now, o.rb());
                            }
                            ok
                        })
                        // Not `all`: it would stop early, and every block
                        // must be computed.
                        .reduce(|| true, |a, b| a & b)
                };
                let products = || match next {
                    Some(next) => weights
                        .par_iter_mut()
                        .zip(next.par_iter_mut())
                        .enumerate()
                        .map(|(l, (w, wn))| layer(l, w, wn.as_mut(), true))
                        .reduce(|| true, |a, b| a & b),
                    None => weights
                        .par_iter_mut()
                        .enumerate()
                        .map(|(l, w)| {
                            let cols = w.ncols();
                            let empty = MatMut::from_column_major_slice_mut(&mut [], 0, cols);
                            layer(l, w, empty, false)
                        })
                        .reduce(|| true, |a, b| a & b),
                };
                rayon::join(bias_sums, products).1
            }
        }
    }

    /// Ascent direction of log p for the base-energy parameters of layer l:
    /// ⟨−∂φ/∂θ(x_l) + E[∂φ/∂θ]⟩, where the expectation comes either from
    /// samples of the conditional (the interneurons ε) or from quadrature at η.
    /// `x` and the reference are batch × total units.
    pub fn energy_param_grads(
        &self,
        l: usize,
        x: MatRef<'_, T>,
        reference: EnergyReference<'_, T>,
    ) -> Result<[f64; MAX_ENERGY_PARAMS]> {
        self.check_layer(l)?;
        self.check_batch("x", x, None)?;
        let reference = match reference {
            EnergyReference::Samples(m) => {
                self.check_batch("reference", m, Some(x.nrows()))?;
                EnergyReference::Samples(m.transpose())
            }
            EnergyReference::Exact(m) => {
                self.check_batch("reference", m, Some(x.nrows()))?;
                EnergyReference::Exact(m.transpose())
            }
        };
        self.energy_param_grads_unchecked(l, x.transpose(), reference)
    }

    /// [`energy_param_grads`](Self::energy_param_grads) in the internal
    /// layout, shapes unchecked.
    pub(crate) fn energy_param_grads_unchecked(
        &self,
        l: usize,
        x: MatRef<'_, T>,
        reference: EnergyReference<'_, T>,
    ) -> Result<[f64; MAX_ENERGY_PARAMS]> {
        let layer = self.layer_energy(l);
        let xl = self.layer_of(x, l);
        let mut g = [0.0; MAX_ENERGY_PARAMS];
        for j in 0..xl.ncols() {
            for i in 0..xl.nrows() {
                let e = layer.unit(i);
                let d = e.dphi_dtheta(xl[(i, j)].f64());
                let r = match reference {
                    EnergyReference::Samples(eps) => {
                        e.dphi_dtheta(self.layer_of(eps, l)[(i, j)].f64())
                    }
                    EnergyReference::Exact(eta) => {
                        quadrature::moments(&e, self.layer_of(eta, l)[(i, j)].f64())?
                            .dphi_dtheta_mean
                    }
                };
                for p in 0..MAX_ENERGY_PARAMS {
                    g[p] += r[p] - d[p];
                }
            }
        }
        let n = xl.ncols() as f64;
        Ok(g.map(|v| v / n))
    }
}

/// What the learning step forms the new W in: the rate, the plan of rows
/// stepped in mean coordinates, and the matrices to fill.
pub(crate) type NextWeights<'a, T> = (T, &'a RowSteps<T>, &'a mut [Mat<T>]);

/// Where the expectation E[∂φ/∂θ] of the energy-parameter gradient comes from.
#[derive(Debug, Clone, Copy)]
pub enum EnergyReference<'a, T> {
    /// One sample of the conditional per unit (the interneurons' state ε).
    Samples(MatRef<'a, T>),
    /// Quadrature at the natural parameters η.
    Exact(MatRef<'a, T>),
}

/// out = w + rate·g, element by element (the rounding of `w += rate·g`),
/// compiled for the machine's vector extension.
fn step_block<T: Real>(out: MatMut<'_, T>, w: MatRef<'_, T>, g: MatRef<'_, T>, rate: T) {
    zip_map2(out, w, g, move |w, g| w + rate * g);
}

/// out_ij = keep_i·w_ij + rate_i·g_ij: a block of W (a few whole columns)
/// stepped row by row (the mean parametrisation, `dispersion`).
fn rows_step<T: Real>(
    mut out: MatMut<'_, T>,
    w: MatRef<'_, T>,
    g: MatRef<'_, T>,
    keep: &[T],
    rate: &[T],
) {
    simd::dispatch(
        #[inline(always)]
        move || {
            for j in 0..out.ncols() {
                let (o, w, g) = (col_mut(out.rb_mut(), j), col(w, j), col(g, j));
                for ((((o, &w), &g), &k), &r) in o.iter_mut().zip(w).zip(g).zip(keep).zip(rate) {
                    *o = k * w + r * g;
                }
            }
        },
    )
}

/// [`rows_step`] in place: w_ij ← keep_i·w_ij + rate_i·g_ij (same rounding).
pub(crate) fn rows_step_in_place<T: Real>(
    mut w: MatMut<'_, T>,
    g: MatRef<'_, T>,
    keep: &[T],
    rate: &[T],
) {
    simd::dispatch(
        #[inline(always)]
        move || {
            for j in 0..w.ncols() {
                let (wc, g) = (col_mut(w.rb_mut(), j), col(g, j));
                for (((w, &g), &k), &r) in wc.iter_mut().zip(g).zip(keep).zip(rate) {
                    *w = k * *w + r * g;
                }
            }
        },
    )
}
