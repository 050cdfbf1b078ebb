//! The floating-point types the model runs in (`f32` by default, `f64` for
//! references and tight tests).

use crate::rng::SampleStream;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// A real scalar usable both by faer's kernels and by the element-wise code.
pub trait Real:
    faer::traits::RealField
    + num_traits::Float
    + Copy
    + Send
    + Sync
    + std::fmt::Debug
    + std::fmt::Display
    + Default
    + 'static
{
    /// Lossy conversion from `f64` (rounds for `f32`).
    fn of(x: f64) -> Self;
    /// Widening conversion to `f64`.
    fn f64(self) -> f64;
    /// One standard normal draw.
    fn std_normal<R: Rng + ?Sized>(rng: &mut R) -> Self;
    /// tanh x for the hot loops: f32 uses a vectorisable rational
    /// approximation ([`tanh_f32`], max error 4.7e-7, a few f32 ulps near
    /// ±1); f64 (the reference precision) uses libm.
    fn tanh_fast(self) -> Self;
    /// Fills `out` with standard normal draws from a sample's stream (f32:
    /// the ziggurat's bulk [`fill_stream`](crate::rng::Ziggurat::fill_stream);
    /// f64: one draw at a time).
    fn fill_normals(z: &crate::rng::Ziggurat, rng: &mut SampleStream, out: &mut [Self]);
    /// Type name for reports.
    const NAME: &'static str;
}

impl Real for f32 {
    #[inline(always)]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn f64(self) -> f64 {
        self as f64
    }
    /// The fast f32 ziggurat of [`crate::rng::ziggurat`].
    #[inline(always)]
    fn std_normal<R: Rng + ?Sized>(rng: &mut R) -> Self {
        crate::rng::Ziggurat::get().sample(rng)
    }
    #[inline(always)]
    fn tanh_fast(self) -> f32 {
        tanh_f32(self)
    }
    #[inline(always)]
    fn fill_normals(z: &crate::rng::Ziggurat, rng: &mut SampleStream, out: &mut [f32]) {
        z.fill_stream_inline(rng, out)
    }
    const NAME: &'static str = "f32";
}

impl Real for f64 {
    #[inline(always)]
    fn of(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn std_normal<R: Rng + ?Sized>(rng: &mut R) -> Self {
        <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng)
    }
    #[inline(always)]
    fn tanh_fast(self) -> f64 {
        self.tanh()
    }
    #[inline(always)]
    fn fill_normals(_: &crate::rng::Ziggurat, rng: &mut SampleStream, out: &mut [f64]) {
        for o in out {
            *o = <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng);
        }
    }
    const NAME: &'static str = "f64";
}

/// tanh x in f32 without a libm call: the odd 13/6 rational minimax
/// approximation of Eigen's `generic_fast_tanh_float` on [−7.905, 7.905]
/// (the input is clamped there; tanh(7.905) is within 3e-7 of 1), and x
/// itself below 4e-4. Only multiplications, additions and one division, so
/// a loop of it vectorises and its value is the same on every IEEE machine
/// (Rust does not contract a·b + c into an FMA). Measured maximum error
/// against f64 tanh over [−10, 10]: 4.7e-7 absolute (8 f32 ulps, near ±1);
/// tested in this module.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    const CLAMP: f32 = 7.905_311;
    const TINY: f32 = 0.0004;
    const A1: f32 = 4.893_524_6e-3;
    const A3: f32 = 6.372_619_3e-4;
    const A5: f32 = 1.485_722_4e-5;
    const A7: f32 = 5.122_297e-8;
    const A9: f32 = -8.604_672e-11;
    const A11: f32 = 2.000_188e-13;
    const A13: f32 = -2.760_768_5e-16;
    const B0: f32 = 4.893_525e-3;
    const B2: f32 = 2.268_434_6e-3;
    const B4: f32 = 1.185_347_1e-4;
    const B6: f32 = 1.198_258_4e-6;
    let xc = x.clamp(-CLAMP, CLAMP);
    let x2 = xc * xc;
    let mut p = x2 * A13 + A11;
    p = p * x2 + A9;
    p = p * x2 + A7;
    p = p * x2 + A5;
    p = p * x2 + A3;
    p = p * x2 + A1;
    p *= xc;
    let mut q = x2 * B6 + B4;
    q = q * x2 + B2;
    q = q * x2 + B0;
    let r = p / q;
    if x.abs() < TINY {
        x
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::tanh_f32;

    /// Every f32 on a fine grid of [−12, 12], plus the specials: the error
    /// bound quoted in the documentation, oddness and saturation.
    #[test]
    fn tanh_f32_matches_f64_tanh() {
        let n = 2_000_000;
        let mut worst = 0f64;
        for k in 0..=n {
            let x = (-12.0 + 24.0 * k as f64 / n as f64) as f32;
            let err = (tanh_f32(x) as f64 - (x as f64).tanh()).abs();
            worst = worst.max(err);
            assert_eq!(tanh_f32(-x), -tanh_f32(x), "odd at {x}");
        }
        assert!(worst < 5e-7, "max error {worst:e}");
        assert_eq!(tanh_f32(0.0), 0.0);
        assert!((tanh_f32(1e-5) - 1e-5).abs() < 1e-12);
        assert!(tanh_f32(1e6) <= 1.0 && tanh_f32(1e6) > 0.999_999);
        assert!(tanh_f32(f32::NAN).is_nan());
    }
}
