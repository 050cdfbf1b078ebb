//! The floating-point types the model runs in (`f32` by default, `f64` for
//! references and tight tests).

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
    /// One standard normal draw with the f32 ziggurat tables at hand (hot
    /// loops fetch them once); f64 ignores them.
    fn std_normal_with<R: Rng + ?Sized>(z: &crate::normal::Ziggurat, rng: &mut R) -> Self;
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
    /// The fast f32 ziggurat of [`crate::normal`].
    #[inline(always)]
    fn std_normal<R: Rng + ?Sized>(rng: &mut R) -> Self {
        crate::normal::Ziggurat::get().sample(rng)
    }
    #[inline(always)]
    fn std_normal_with<R: Rng + ?Sized>(z: &crate::normal::Ziggurat, rng: &mut R) -> Self {
        z.sample(rng)
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
    fn std_normal_with<R: Rng + ?Sized>(_: &crate::normal::Ziggurat, rng: &mut R) -> Self {
        <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng)
    }
    const NAME: &'static str = "f64";
}
