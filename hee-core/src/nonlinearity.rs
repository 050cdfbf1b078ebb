//! Pointwise nonlinearities f between layers: η_l = W_l f(x_{l+1}) + b_l.

use crate::scalar::Real;

/// The pointwise map applied to a layer's state before it drives the layer below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Nonlinearity {
    /// f(x) = x: the linear-gaussian reference case.
    #[default]
    Identity,
    /// f(x) = tanh x.
    Tanh,
    /// f(x) = log(1 + eˣ).
    Softplus,
}

impl Nonlinearity {
    /// f(x) (tanh: [`Real::tanh_fast`]).
    #[inline(always)]
    pub fn f<T: Real>(self, x: T) -> T {
        match self {
            Nonlinearity::Identity => x,
            Nonlinearity::Tanh => x.tanh_fast(),
            // Stable for large |x|: max(x, 0) + log1p(e^{-|x|}).
            Nonlinearity::Softplus => x.max(T::zero()) + (-x.abs()).exp().ln_1p(),
        }
    }

    /// f′(x).
    #[inline(always)]
    pub fn df<T: Real>(self, x: T) -> T {
        match self {
            Nonlinearity::Identity => T::one(),
            Nonlinearity::Tanh => {
                let t = x.tanh_fast();
                T::one() - t * t
            }
            Nonlinearity::Softplus => T::one() / (T::one() + (-x).exp()),
        }
    }

    /// True for the identity (lets hot loops skip the element-wise pass).
    pub fn is_identity(self) -> bool {
        matches!(self, Nonlinearity::Identity)
    }

    /// Name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Nonlinearity::Identity => "identity",
            Nonlinearity::Tanh => "tanh",
            Nonlinearity::Softplus => "softplus",
        }
    }
}
