//! Fast exact standard normal draws in f32: the ziggurat method of Marsaglia
//! & Tsang (2000) with 128 layers.
//!
//! Normal draws dominate the cost of a neural step (one per neuron, K per
//! interneuron), so f32 runs use this generator instead of rand_distr's f64
//! ziggurat. Each draw takes one 32-bit word from the sample's ChaCha8
//! stream: the low 7 bits choose the layer and the other 25 bits give the
//! signed value (24 bits of magnitude, f32's precision), so the layer and
//! the value are independent (Doornik 2005's objection to the original,
//! which reused bits). Draws that fall outside
//! the rectangle of their layer take the exact wedge and tail corrections,
//! so the distribution is exactly normal up to f32 rounding.
//!
//! [`Ziggurat::fill`] draws in bulk: a block of up to [`BLOCK`] words is
//! taken from the stream at once and turned into normals by a branch-free
//! loop the compiler vectorises (table lookups, a multiply, a compare); the
//! ~1% of draws that miss their rectangle are then finished in order, each
//! continuing with fresh words from the same stream. The values differ from
//! a loop of [`Ziggurat::sample`] (the order in which words are consumed
//! differs), not their distribution, and they are a function of the stream
//! alone.

use rand::Rng;
use std::sync::OnceLock;

/// Ziggurat tables for the standard normal.
#[derive(Debug)]
pub struct Ziggurat {
    k: [u32; 128],
    w: [f32; 128],
    f: [f32; 128],
}

const R: f64 = 3.442_619_855_899;
const V: f64 = 9.912_563_035_262_17e-3;
/// Words drawn from the stream at once by [`Ziggurat::fill`]: one ChaCha
/// output buffer (4 blocks of 16 words), and a stack array small enough to
/// stay in L1.
pub const BLOCK: usize = 64;
/// 2^24: the magnitude range of the 25-bit signed value.
const M: f64 = 16_777_216.0;

impl Ziggurat {
    fn build() -> Self {
        let mut k = [0u32; 128];
        let mut w = [0f32; 128];
        let mut f = [0f32; 128];
        let mut dn = R;
        let mut tn = dn;
        let q = V / (-0.5 * dn * dn).exp();
        k[0] = ((dn / q) * M) as u32;
        k[1] = 0;
        w[0] = (q / M) as f32;
        w[127] = (dn / M) as f32;
        f[0] = 1.0;
        f[127] = (-0.5 * dn * dn).exp() as f32;
        for i in (1..=126).rev() {
            dn = (-2.0 * (V / dn + (-0.5 * dn * dn).exp()).ln()).sqrt();
            k[i + 1] = ((dn / tn) * M) as u32;
            tn = dn;
            f[i] = (-0.5 * dn * dn).exp() as f32;
            w[i] = (dn / M) as f32;
        }
        Ziggurat { k, w, f }
    }

    /// The shared tables (built once).
    pub fn get() -> &'static Ziggurat {
        static TABLES: OnceLock<Ziggurat> = OnceLock::new();
        TABLES.get_or_init(Ziggurat::build)
    }

    /// One standard normal draw.
    #[inline(always)]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f32 {
        let u = rng.next_u32();
        let i = (u & 127) as usize;
        let j = (u as i32) >> 7;
        if j.unsigned_abs() < self.k[i] {
            return j as f32 * self.w[i];
        }
        self.slow(rng, i, j)
    }

    /// Fills `out` with independent standard normal draws from `rng`, in
    /// blocks of [`BLOCK`] (see the module documentation), compiled for the
    /// machine's widest vector extension ([`crate::simd`]).
    pub fn fill<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f32]) {
        crate::simd::dispatch(
            #[inline(always)]
            || self.fill_inline(rng, out),
        )
    }

    /// [`fill`](Self::fill) for callers already inside a dispatched kernel.
    #[inline(always)]
    pub(crate) fn fill_inline<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f32]) {
        let mut words = [0u32; BLOCK];
        let mut miss = [0u8; BLOCK];
        for block in out.chunks_mut(BLOCK) {
            let m = block.len();
            let (words, miss) = (&mut words[..m], &mut miss[..m]);
            rng.fill(&mut *words);
            // Every draw as if it fell in its rectangle: no branch, so the
            // loop vectorises; `miss` flags the ones that did not.
            let mut any = 0u8;
            for ((o, &u), f) in block.iter_mut().zip(words.iter()).zip(miss.iter_mut()) {
                let i = (u & 127) as usize;
                let j = (u as i32) >> 7;
                *o = j as f32 * self.w[i];
                *f = (j.unsigned_abs() >= self.k[i]) as u8;
                any |= *f;
            }
            if any != 0 {
                for t in 0..m {
                    if miss[t] != 0 {
                        let u = words[t];
                        block[t] = self.slow(rng, (u & 127) as usize, (u as i32) >> 7);
                    }
                }
            }
        }
    }

    #[cold]
    fn slow<R: Rng + ?Sized>(&self, rng: &mut R, mut i: usize, mut j: i32) -> f32 {
        loop {
            let x = j as f64 * self.w[i] as f64;
            if i == 0 {
                // Tail beyond R (Marsaglia 1964).
                loop {
                    let u1: f64 = 1.0 - rng.random::<f64>();
                    let u2: f64 = 1.0 - rng.random::<f64>();
                    let xt = -u1.ln() / R;
                    let y = -u2.ln();
                    if y + y >= xt * xt {
                        let v = R + xt;
                        return if j > 0 { v as f32 } else { -v as f32 };
                    }
                }
            }
            // Wedge: accept under the density.
            let (fi, fim1) = (self.f[i] as f64, self.f[i - 1] as f64);
            if fi + rng.random::<f64>() * (fim1 - fi) < (-0.5 * x * x).exp() {
                return x as f32;
            }
            let u = rng.next_u32();
            i = (u & 127) as usize;
            j = (u as i32) >> 7;
            if j.unsigned_abs() < self.k[i] {
                return j as f32 * self.w[i];
            }
        }
    }
}
