//! Gibbs-Langevin chains of a GRBM (Liao et al. 2022): each step draws
//! h ~ p(h | v) exactly (Gibbs), then moves v by `langevin_steps` Langevin
//! steps on E(v, h) with h held, each preconditioned by σ²:
//!
//! v ← v − ε (v − m) + √(2ε) σ ξ,  m = μ + W h,
//!
//! optionally Metropolis-adjusted. p(v | h) factorises over pixels, so the
//! adjustment is made pixel by pixel (each a MALA step on a 1-d gaussian,
//! which leaves p(v | h), hence p(v, h), exactly invariant whatever ε;
//! acceptance stays high in any dimension). Without it the chain has the
//! discretisation bias of Langevin on a gaussian: stationary variance
//! σ²/(1 − ε/2). `langevin_steps = 0` draws v | h exactly (block Gibbs).
//!
//! Every sample owns a random stream; the batch is processed in fixed
//! chunks of columns, so the result is the same bit for bit whatever the
//! number of threads.

use faer::linalg::matmul::matmul;
use faer::reborrow::ReborrowMut;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::{sigmoid, Grbm};
use crate::error::{HeeError, Result};
use crate::rng::{SampleStream, Ziggurat};

/// Samples per work unit (fixed: results do not depend on threads).
const CHUNK: usize = 16;

/// The Gibbs-Langevin kernel's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GibbsLangevin {
    /// Langevin steps on v per Gibbs step (0: exact draw of v | h).
    pub langevin_steps: usize,
    /// ε, the step relative to σᵢ² (0 < ε ≤ 2).
    pub step: f64,
    /// Metropolis-adjust every Langevin step (pixel by pixel).
    pub metropolis: bool,
}

impl Default for GibbsLangevin {
    /// The recipe's 10 Langevin steps, adjusted, at ε = 0.5.
    fn default() -> Self {
        GibbsLangevin {
            langevin_steps: 10,
            step: 0.5,
            metropolis: true,
        }
    }
}

impl GibbsLangevin {
    /// Checks ε.
    pub fn validate(&self) -> Result<()> {
        if !(self.step > 0.0 && self.step <= 2.0) {
            return Err(HeeError::param(
                "grbm.langevin_step",
                self.step,
                "must be in (0, 2]",
            ));
        }
        Ok(())
    }
}

/// A batch of GRBM chains: the states (v, h) and one stream per sample.
/// Stored one sample per column internally; read out one per row.
#[derive(Debug, Clone)]
pub struct GrbmChains {
    d: usize,
    nh: usize,
    v: Vec<f32>,
    h: Vec<f32>,
    scratch_u: Vec<f32>,
    scratch_logits: Vec<f32>,
    scratch_mean: Vec<f32>,
    scratch_noise: Vec<f32>,
    streams: Vec<SampleStream>,
    /// Metropolis proposals and acceptances so far.
    pub proposed: u64,
    pub accepted: u64,
}

/// One chunk's slices.
struct Chunk<'a> {
    v: &'a mut [f32],
    h: &'a mut [f32],
    u: &'a mut [f32],
    logits: &'a mut [f32],
    mean: &'a mut [f32],
    noise: &'a mut [f32],
    streams: &'a mut [SampleStream],
}

/// A uniform draw on [0, 1) from the stream's next word (24 bits).
pub fn uniform(s: &mut SampleStream) -> f32 {
    (s.next_word() >> 8) as f32 * (1.0 / 16_777_216.0)
}

impl GrbmChains {
    /// `batch` chains of `model`, v drawn N(0, 1) (the recipe's noise
    /// start), h = 0; sample j uses stream j of the key `seed`.
    pub fn from_noise(model: &Grbm, batch: usize, seed: u64) -> Self {
        let (d, nh) = (model.visible(), model.hidden());
        let streams = (0..batch)
            .map(|j| SampleStream::new(seed, j as u64))
            .collect();
        let mut c = GrbmChains {
            d,
            nh,
            v: vec![0.0; d * batch],
            h: vec![0.0; nh * batch],
            scratch_u: vec![0.0; d * batch],
            scratch_logits: vec![0.0; nh * batch],
            scratch_mean: vec![0.0; d * batch],
            scratch_noise: vec![0.0; d * batch],
            streams,
            proposed: 0,
            accepted: 0,
        };
        c.reset_to_noise();
        c
    }

    /// Number of chains.
    pub fn batch(&self) -> usize {
        self.streams.len()
    }

    /// v ← N(0, 1) draws from each sample's stream, h ← 0.
    pub fn reset_to_noise(&mut self) {
        let z = Ziggurat::get();
        let d = self.d;
        self.v
            .par_chunks_mut(d)
            .zip(self.streams.par_iter_mut())
            .for_each(|(v, s)| z.fill_stream(s, v));
        self.h.fill(0.0);
    }

    /// Chain j's v ← N(0, 1) (a replay buffer's reinitialisation).
    pub fn reset_one(&mut self, j: usize) {
        let d = self.d;
        Ziggurat::get().fill_stream(&mut self.streams[j], &mut self.v[j * d..(j + 1) * d]);
    }

    /// The visibles, one sample per row.
    pub fn v(&self) -> MatRef<'_, f32> {
        MatRef::from_column_major_slice(&self.v, self.d, self.batch()).transpose()
    }

    /// The hiddens, one sample per row.
    pub fn h(&self) -> MatRef<'_, f32> {
        MatRef::from_column_major_slice(&self.h, self.nh, self.batch()).transpose()
    }

    /// Sets the visibles (one sample per row).
    pub fn set_v(&mut self, v: MatRef<'_, f32>) -> Result<()> {
        if v.nrows() != self.batch() || v.ncols() != self.d {
            return Err(HeeError::dims(
                "grbm chains v",
                format!("{} × {}", self.batch(), self.d),
                format!("{} × {}", v.nrows(), v.ncols()),
            ));
        }
        for j in 0..v.nrows() {
            for i in 0..self.d {
                self.v[j * self.d + i] = v[(j, i)];
            }
        }
        Ok(())
    }

    /// One Gibbs-Langevin step of every chain; the Metropolis acceptance
    /// rate of the step (NaN when not adjusted).
    pub fn step(&mut self, model: &Grbm, kernel: &GibbsLangevin) -> Result<f64> {
        kernel.validate()?;
        if model.visible() != self.d || model.hidden() != self.nh {
            return Err(HeeError::dims(
                "grbm chains",
                format!("{} × {} units", self.d, self.nh),
                format!("{} × {}", model.visible(), model.hidden()),
            ));
        }
        let var = model.var();
        // Per pixel, once per step: the exact draw's σ and the Langevin
        // noise's √(2εσ²).
        let scales: Vec<(f32, f64)> = var
            .iter()
            .map(|&s2| (s2.sqrt(), (2.0 * kernel.step * s2 as f64).sqrt()))
            .collect();
        let (d, nh) = (self.d, self.nh);
        let chunks: Vec<Chunk<'_>> = self
            .v
            .chunks_mut(d * CHUNK)
            .zip(self.h.chunks_mut(nh * CHUNK))
            .zip(self.scratch_u.chunks_mut(d * CHUNK))
            .zip(self.scratch_logits.chunks_mut(nh * CHUNK))
            .zip(self.scratch_mean.chunks_mut(d * CHUNK))
            .zip(self.scratch_noise.chunks_mut(d * CHUNK))
            .zip(self.streams.chunks_mut(CHUNK))
            .map(|((((((v, h), u), logits), mean), noise), streams)| Chunk {
                v,
                h,
                u,
                logits,
                mean,
                noise,
                streams,
            })
            .collect();
        let counts: Vec<(u64, u64)> = chunks
            .into_par_iter()
            .map(|c| step_chunk(model, kernel, &var, &scales, c))
            .collect();
        let (p, a) = counts.iter().fold((0, 0), |(p, a), &(x, y)| (p + x, a + y));
        self.proposed += p;
        self.accepted += a;
        if self.v.iter().any(|x| !x.is_finite()) {
            return Err(HeeError::Diverged {
                step: 0,
                layer: 0,
                cause: "a GRBM chain's visibles became non-finite".into(),
            });
        }
        Ok(if p > 0 { a as f64 / p as f64 } else { f64::NAN })
    }
}

/// h | v, then the visible update, for one chunk's columns.
fn step_chunk(
    model: &Grbm,
    k: &GibbsLangevin,
    var: &[f32],
    scales: &[(f32, f64)],
    c: Chunk<'_>,
) -> (u64, u64) {
    let (d, nh, n) = (model.visible(), model.hidden(), c.streams.len());
    for (col, u) in c.v.chunks(d).zip(c.u.chunks_mut(d)) {
        for ((u, &v), &s2) in u.iter_mut().zip(col).zip(var) {
            *u = v / s2;
        }
    }
    let mut logits = MatMut::from_column_major_slice_mut(c.logits, nh, n);
    for j in 0..n {
        logits
            .rb_mut()
            .col_mut(j)
            .copy_from(MatRef::from_column_major_slice(&model.b, nh, 1).col(0));
    }
    let u = MatRef::from_column_major_slice(c.u, d, n);
    matmul(
        logits.rb_mut(),
        Accum::Add,
        model.w.transpose(),
        u,
        1.0,
        Par::Seq,
    );
    for (j, s) in c.streams.iter_mut().enumerate() {
        for i in 0..nh {
            let p = sigmoid(c.logits[j * nh + i]);
            c.h[j * nh + i] = if uniform(s) < p { 1.0 } else { 0.0 };
        }
    }
    let mut mean = MatMut::from_column_major_slice_mut(c.mean, d, n);
    for j in 0..n {
        mean.rb_mut()
            .col_mut(j)
            .copy_from(MatRef::from_column_major_slice(&model.mu, d, 1).col(0));
    }
    let h = MatRef::from_column_major_slice(c.h, nh, n);
    matmul(
        mean.rb_mut(),
        Accum::Add,
        model.w.as_ref(),
        h,
        1.0,
        Par::Seq,
    );
    let z = Ziggurat::get();
    let (mut proposed, mut accepted) = (0, 0);
    for j in 0..n {
        let (v, m) = (&mut c.v[j * d..(j + 1) * d], &c.mean[j * d..(j + 1) * d]);
        let (noise, s) = (&mut c.noise[j * d..(j + 1) * d], &mut c.streams[j]);
        if k.langevin_steps == 0 {
            z.fill_stream(s, noise);
            for i in 0..d {
                v[i] = m[i] + scales[i].0 * noise[i];
            }
            continue;
        }
        for _ in 0..k.langevin_steps {
            z.fill_stream(s, noise);
            for i in 0..d {
                let (x, mi, s2) = (v[i] as f64, m[i] as f64, var[i] as f64);
                let e = k.step;
                let y = x - e * (x - mi) + scales[i].1 * noise[i] as f64;
                if !k.metropolis {
                    v[i] = y as f32;
                    continue;
                }
                let log_pi = -((y - mi).powi(2) - (x - mi).powi(2)) / (2.0 * s2);
                let back = (x - y + e * (y - mi)).powi(2);
                let fwd = (y - x + e * (x - mi)).powi(2);
                let log_ratio = log_pi + (fwd - back) / (4.0 * e * s2);
                proposed += 1;
                if (uniform(s) as f64).ln() < log_ratio {
                    v[i] = y as f32;
                    accepted += 1;
                }
            }
        }
    }
    (proposed, accepted)
}
