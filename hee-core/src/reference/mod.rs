//! Exact references for the linear-gaussian case (spec §8): the posterior,
//! the marginal of x₀ and the PPCA optimum in closed form
//! ([`linear_gaussian`]), and the exact moments of discretised linear
//! dynamics after any number of steps ([`moments`]).

pub mod linear_gaussian;
pub mod moments;
