//! Fast exact standard normal draws in f32: the ziggurat method of Marsaglia
//! & Tsang (2000) with 256 layers.
//!
//! Normal draws dominate the cost of a neural step (one per neuron, K per
//! interneuron), so f32 runs use this generator instead of rand_distr's f64
//! ziggurat. Each draw takes one 32-bit word from the sample's ChaCha8
//! stream: the low 8 bits choose the layer and the other 24 bits give the
//! signed value (23 bits of magnitude within the layer), so the layer and
//! the value are independent (Doornik 2005's objection to the original,
//! which reused bits). Draws that fall outside the rectangle of their
//! layer (1.5% of them with 256 layers, against 2.8% with 128: the mean of
//! `1 − k[i]/2^23` over the layers, which counts the top layer, always a
//! wedge, and the base layer's tail) take the
//! exact wedge test — in f32, against a uniform of 24 bits, since its
//! rounding moves the acceptance probability by ~1e-7 — and the tail
//! correction beyond R (in f64), so the distribution is normal up to f32
//! rounding.
//!
//! [`Ziggurat::fill`] draws in bulk: a block of up to [`BLOCK`] words is
//! taken from the stream at once and turned into normals by a branch-free
//! loop the compiler vectorises (table lookups, a multiply, a compare); the
//! ~1.5% of draws that miss their rectangle are then finished in order, each
//! continuing with fresh words from the same stream. The values differ from
//! a loop of [`Ziggurat::sample`] (the order in which words are consumed
//! differs), not their distribution, and they are a function of the stream
//! alone. [`Ziggurat::fill_stream`] gives the same draws from a
//! [`SampleStream`] faster (the neural dynamics use it): the words are
//! mapped where they lie in the stream's buffer, with AVX-512 by an
//! explicit kernel.

use rand::Rng;
use std::sync::OnceLock;

use super::SampleStream;

/// Ziggurat tables for the standard normal.
#[derive(Debug)]
pub struct Ziggurat {
    k: [u32; LAYERS],
    w: [f32; LAYERS],
    f: [f32; LAYERS],
    /// k[i] (low half) and the bits of w[i] (high half), for one 64-bit
    /// gather per draw instead of two 32-bit ones.
    kw: [u64; LAYERS],
    /// For the wedge of layer i ≥ 1, in t = x²/2 (where e^{−t} is convex):
    /// the chord through its two corners, above the density, and the
    /// tangent at its middle, below it, as (a, b, c, d): chord a − b·t,
    /// tangent c − d·t. See [`Ziggurat::under_density`].
    wedge: [[f64; 4]; LAYERS],
}

/// How far (absolute) a wedge point must lie from the chord or tangent
/// bound to be decided without `expf`. It covers the f32 evaluation of
/// e^{−x²/2} (argument rounded by 2⁻²⁴ relative with t ≤ R²/2 < 6.7, and
/// expf's error under 1 ulp: together under 6e-7 of a value ≤ 1) and the
/// f32 rounding of the layer edges (the chord is used up to ~1e-7 beyond
/// them: under 7e-7 more), with a wide margin. A point inside the margin
/// (about 1% of wedge tests) takes the exact comparison.
const WEDGE_MARGIN: f64 = 1e-5;

/// Layers of the ziggurat (the low 8 bits of a word choose one).
const LAYERS: usize = 256;
/// Start of the tail, and the area of each layer (Marsaglia & Tsang 2000).
const R: f64 = 3.654_152_885_361_009;
const V: f64 = 4.928_673_233_99e-3;
/// Words drawn from the stream at once by [`Ziggurat::fill`]: one ChaCha
/// output buffer (4 blocks of 16 words), and a stack array small enough to
/// stay in L1.
pub const BLOCK: usize = 64;
/// 2^23: the magnitude range of the 24-bit signed value.
const M: f64 = 8_388_608.0;
/// 2^-24, to turn the top 24 bits of a word into a uniform on [0, 1).
const U24: f32 = 1.0 / 16_777_216.0;

impl Ziggurat {
    fn build() -> Self {
        let mut k = [0u32; LAYERS];
        let mut w = [0f32; LAYERS];
        let mut f = [0f32; LAYERS];
        // The layers' right edges x_i (x_0 = 0: the top layer's wedge spans
        // [0, x_1]).
        let mut xs = [0f64; LAYERS];
        xs[LAYERS - 1] = R;
        let mut dn = R;
        let mut tn = dn;
        let q = V / (-0.5 * dn * dn).exp();
        k[0] = ((dn / q) * M) as u32;
        k[1] = 0;
        w[0] = (q / M) as f32;
        w[LAYERS - 1] = (dn / M) as f32;
        f[0] = 1.0;
        f[LAYERS - 1] = (-0.5 * dn * dn).exp() as f32;
        for i in (1..=LAYERS - 2).rev() {
            dn = (-2.0 * (V / dn + (-0.5 * dn * dn).exp()).ln()).sqrt();
            k[i + 1] = ((dn / tn) * M) as u32;
            tn = dn;
            f[i] = (-0.5 * dn * dn).exp() as f32;
            w[i] = (dn / M) as f32;
            xs[i] = dn;
        }
        let kw = std::array::from_fn(|i| k[i] as u64 | (w[i].to_bits() as u64) << 32);
        let wedge = std::array::from_fn(|i| {
            if i == 0 {
                return [0.0; 4]; // the base layer has a tail, not a wedge
            }
            let (t0, t1) = (0.5 * xs[i - 1] * xs[i - 1], 0.5 * xs[i] * xs[i]);
            let (g0, g1) = ((-t0).exp(), (-t1).exp());
            let b = (g0 - g1) / (t1 - t0);
            let tm = 0.5 * (t0 + t1);
            let gm = (-tm).exp();
            [g1 + b * t1, b, gm * (1.0 + tm), gm]
        });
        Ziggurat { k, w, f, kw, wedge }
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
        let (i, j) = split(u);
        if j.unsigned_abs() < self.k[i] {
            return j as f32 * self.w[i];
        }
        self.slow(rng, i, j)
    }

    /// Fills `out` with independent standard normal draws from `rng`, in
    /// blocks of [`BLOCK`] (see the module documentation), compiled for the
    /// machine's widest vector extension ([`crate::elementwise::simd`]).
    pub fn fill<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f32]) {
        crate::elementwise::simd::dispatch(
            #[inline(always)]
            || {
                let mut words = [0u32; BLOCK];
                let mut at = [0u8; BLOCK];
                let mut word = [0u32; BLOCK];
                for block in out.chunks_mut(BLOCK) {
                    let words = &mut words[..block.len()];
                    rng.fill(&mut *words);
                    // Always the portable pass: this is the reference that
                    // `fill_stream`'s AVX-512 kernel is tested against.
                    let misses = self.map_block(false, words, block, &mut at, &mut word);
                    for (&t, &u) in at[..misses].iter().zip(&word[..misses]) {
                        let (i, j) = split(u);
                        block[t as usize] = self.slow(rng, i, j);
                    }
                }
            },
        )
    }

    /// [`fill`](Self::fill) from a sample's [`SampleStream`]: the same words
    /// consumed in the same order, so the same draws, bit for bit (tested),
    /// but faster. Each block's words are mapped where they lie in the
    /// stream's buffer (no copy; a block that crosses the buffer's end is
    /// copied out), and with AVX-512 by an explicit kernel that marks the
    /// misses in a bit mask.
    pub fn fill_stream(&self, s: &mut SampleStream, out: &mut [f32]) {
        crate::elementwise::simd::dispatch(
            #[inline(always)]
            || self.fill_stream_inline(s, out),
        )
    }

    /// [`fill_stream`](Self::fill_stream) for callers already inside a
    /// dispatched kernel.
    #[inline(always)]
    pub(crate) fn fill_stream_inline(&self, s: &mut SampleStream, out: &mut [f32]) {
        let wide = crate::elementwise::simd::has_avx512();
        let mut copy = [0u32; BLOCK];
        // The misses of a block, in order: position and word. Kept apart
        // from the buffer, which a miss's own draws may refill.
        let mut at = [0u8; BLOCK];
        let mut word = [0u32; BLOCK];
        for block in out.chunks_mut(BLOCK) {
            let m = block.len();
            let misses = match s.take_in_place(m) {
                Some(words) => self.map_block(wide, words, block, &mut at, &mut word),
                None => {
                    s.fill_words(&mut copy[..m]);
                    self.map_block(wide, &copy[..m], block, &mut at, &mut word)
                }
            };
            for (&t, &u) in at[..misses].iter().zip(&word[..misses]) {
                let (i, j) = split(u);
                block[t as usize] = self.slow(s, i, j);
            }
        }
    }

    /// Every word of `words` mapped into `out` as if it fell in its
    /// rectangle; the misses' positions and words go to `at` and `word`,
    /// in order, and their number is returned.
    #[inline(always)]
    fn map_block(
        &self,
        wide: bool,
        words: &[u32],
        out: &mut [f32],
        at: &mut [u8; BLOCK],
        word: &mut [u32; BLOCK],
    ) -> usize {
        #[cfg(target_arch = "x86_64")]
        if wide {
            // SAFETY: `wide` says AVX-512F was detected on this CPU.
            let mut bits = unsafe { avx512::map(&self.kw, words, out) };
            let mut n = 0;
            while bits != 0 {
                let t = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                at[n] = t as u8;
                word[n] = words[t];
                n += 1;
            }
            return n;
        }
        let _ = wide;
        // Every draw as if it fell in its rectangle: no branch, so the loop
        // vectorises; `miss` flags the ones that did not. The flags are then
        // read eight at a time, so the rare misses cost a scan of a few
        // words.
        let m = words.len();
        let mut miss = [0u8; BLOCK];
        let mut any = 0u8;
        for ((o, &u), f) in out.iter_mut().zip(words).zip(miss.iter_mut()) {
            let (i, j) = split(u);
            *o = j as f32 * self.w[i];
            *f = (j.unsigned_abs() >= self.k[i]) as u8;
            any |= *f;
        }
        let mut n = 0;
        if any != 0 {
            for (q, flags) in miss.chunks_exact(8).enumerate().take(m.div_ceil(8)) {
                let mut bits = u64::from_le_bytes([
                    flags[0], flags[1], flags[2], flags[3], flags[4], flags[5], flags[6], flags[7],
                ]);
                while bits != 0 {
                    let t = 8 * q + (bits.trailing_zeros() / 8) as usize;
                    bits &= bits - 1;
                    at[n] = t as u8;
                    word[n] = words[t];
                    n += 1;
                }
            }
        }
        n
    }

    /// The wedge test of layer i ≥ 1, `y < (−0.5·x·x).exp()` in f32, with
    /// the same outcome but `expf` called only near the curve: e^{−t} is
    /// convex in t = x²/2, so it lies below the chord through the wedge's
    /// corners and above any tangent. A point more than [`WEDGE_MARGIN`]
    /// below the tangent is under the computed density too, one that far
    /// above the chord is over it (tested against the plain comparison).
    #[inline(always)]
    fn under_density(&self, i: usize, x: f32, y: f32) -> bool {
        let t = 0.5 * x as f64 * x as f64;
        let [a, b, c, d] = self.wedge[i];
        let y64 = y as f64;
        if y64 < c - d * t - WEDGE_MARGIN {
            return true;
        }
        if y64 >= a - b * t + WEDGE_MARGIN {
            return false;
        }
        y < (-0.5 * x * x).exp()
    }

    #[cold]
    fn slow<R: Rng + ?Sized>(&self, rng: &mut R, mut i: usize, mut j: i32) -> f32 {
        loop {
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
            let x = j as f32 * self.w[i];
            let u = (rng.next_u32() >> 8) as f32 * U24;
            let (fi, fim1) = (self.f[i], self.f[i - 1]);
            if self.under_density(i, x, fi + u * (fim1 - fi)) {
                return x;
            }
            (i, j) = split(rng.next_u32());
            if j.unsigned_abs() < self.k[i] {
                return j as f32 * self.w[i];
            }
        }
    }
}

/// A word's layer (low 8 bits) and signed value (the other 24).
#[inline(always)]
fn split(u: u32) -> (usize, i32) {
    ((u & (LAYERS as u32 - 1)) as usize, (u as i32) >> 8)
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{BLOCK, LAYERS};
    use std::arch::x86_64::*;

    /// The ziggurat's branch-free pass over up to [`BLOCK`] words, 16 lanes
    /// at a time: the layer's table entries by two 8-lane gathers of
    /// (k[i], w[i]) pairs (half the loads of one gather per table), |j| <
    /// k[i] as a mask, x = j·w[i]. The same
    /// operations as the portable loop — an exact conversion of a 24-bit
    /// integer, one IEEE multiply — so the same bits. Returns the misses as
    /// a bit mask (bit t: word t).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn map(kw: &[u64; LAYERS], words: &[u32], out: &mut [f32]) -> u64 {
        let m = words.len().min(out.len()).min(BLOCK);
        let low = _mm512_set1_epi32(LAYERS as i32 - 1);
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let mut miss = 0u64;
        let mut t = 0;
        while t < m {
            let lanes: __mmask16 = if m - t >= 16 {
                0xffff
            } else {
                ((1u32 << (m - t)) - 1) as u16
            };
            // SAFETY: the masked load and store touch only lanes t..m of
            // `words` and `out`; the gathers read entries 0..256 of the
            // table (the index is masked to 8 bits).
            unsafe {
                let u = _mm512_maskz_loadu_epi32(lanes, words.as_ptr().add(t).cast());
                let i = _mm512_and_si512(u, low);
                let j = _mm512_srai_epi32::<8>(u);
                let base = kw.as_ptr().cast();
                let g0 = _mm512_i32gather_epi64::<8>(_mm512_castsi512_si256(i), base);
                let g1 = _mm512_i32gather_epi64::<8>(_mm512_extracti64x4_epi64::<1>(i), base);
                let k = _mm512_permutex2var_epi32(g0, even, g1);
                let w = _mm512_castsi512_ps(_mm512_permutex2var_epi32(g0, odd, g1));
                let hit = _mm512_cmplt_epu32_mask(_mm512_abs_epi32(j), k);
                let x = _mm512_mul_ps(_mm512_cvtepi32_ps(j), w);
                _mm512_mask_storeu_ps(out.as_mut_ptr().add(t), lanes, x);
                miss |= u64::from(!hit & lanes) << t;
            }
            t += 16;
        }
        miss
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};

    /// The bounded wedge test decides exactly as the plain f32 comparison
    /// `y < (−0.5·x·x).exp()`, for 40,000 random points of every wedge
    /// (layers 1–255, either sign), and leaves only a small share to `expf`.
    #[test]
    fn wedge_bounds_agree_with_expf() {
        let z = Ziggurat::get();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (mut n, mut near) = (0u64, 0u64);
        for i in 1..LAYERS {
            for _ in 0..40_000 {
                // A value in the miss band |j| ∈ [k[i], 2^23), and a uniform.
                let mag = rng.random_range(z.k[i]..1 << 23) as i32;
                let j = if rng.random::<bool>() { mag } else { -mag };
                let x = j as f32 * z.w[i];
                let u = (rng.next_u32() >> 8) as f32 * U24;
                let y = z.f[i] + u * (z.f[i - 1] - z.f[i]);
                let exact = y < (-0.5 * x * x).exp();
                assert_eq!(z.under_density(i, x, y), exact, "layer {i}, j {j}, u {u}");
                let t = 0.5 * x as f64 * x as f64;
                let [a, b, c, d] = z.wedge[i];
                let y64 = y as f64;
                n += 1;
                near += (y64 >= c - d * t - WEDGE_MARGIN && y64 < a - b * t + WEDGE_MARGIN) as u64;
            }
        }
        let share = near as f64 / n as f64;
        assert!(share < 0.05, "{share} of wedge tests call expf");
        eprintln!("{share:.4} of wedge tests call expf");
    }

    /// The same, for points within a few ulps of the computed density, at
    /// the wedge's corners (where the chord meets the curve) and around the
    /// tangent's point: where the bounds are tight, so the margin must
    /// cover expf's rounding (with the margin at 0 this test fails).
    #[test]
    fn wedge_bounds_hold_next_to_the_curve() {
        let z = Ziggurat::get();
        let mut checked = 0;
        for i in 1..LAYERS {
            let top = (1i32 << 23) - 1;
            let tm = z.wedge[i][2] / z.wedge[i][3] - 1.0; // c/d − 1 = t_m
            let jm = ((2.0 * tm).sqrt() / z.w[i] as f64) as i32;
            let mut js = vec![z.k[i] as i32, z.k[i] as i32 + 1, top, top - 1];
            js.extend((-3..=3).map(|d| (jm + d).clamp(z.k[i] as i32, top)));
            for j in js {
                for j in [j, -j] {
                    let x = j as f32 * z.w[i];
                    let rhs = (-0.5 * x * x).exp();
                    let mut y = rhs;
                    for _ in 0..4 {
                        y = y.next_down();
                    }
                    for _ in 0..9 {
                        assert_eq!(z.under_density(i, x, y), y < rhs, "layer {i}, j {j}, y {y}");
                        y = y.next_up();
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 50_000);
    }
}
