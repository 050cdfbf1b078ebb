//! Typed errors of the core library.

use thiserror::Error;

/// Everything that can go wrong when building or running an HEE model.
///
/// Every variant names the offending field (and value) so that a front end
/// can print it on one line.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum HeeError {
    /// A scalar parameter is outside its valid range.
    #[error("invalid parameter `{field}` = {value}: {reason}")]
    InvalidParameter {
        field: String,
        value: f64,
        reason: &'static str,
    },
    /// Two objects that must agree in shape do not.
    #[error("dimension mismatch in `{field}`: expected {expected}, got {got}")]
    DimensionMismatch {
        field: String,
        expected: String,
        got: String,
    },
    /// Input data holds a NaN or an infinity.
    #[error("non-finite value {value} in `{field}` at row {row}, column {col}")]
    NonFiniteInput {
        field: String,
        row: usize,
        col: usize,
        value: f64,
    },
    /// The sampler's state left the finite numbers.
    #[error("state became non-finite at step {step} in layer {layer}: {cause}")]
    Diverged {
        step: u64,
        layer: usize,
        cause: String,
    },
    /// An operation asked for something the configuration does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A numerical routine (quadrature, factorisation) failed.
    #[error("numerical failure in {routine}: {reason}")]
    Numerical {
        routine: &'static str,
        reason: String,
    },
}

/// Result alias of the core library.
pub type Result<T, E = HeeError> = std::result::Result<T, E>;

impl HeeError {
    /// A [`HeeError::InvalidParameter`] naming `field`, its value and why.
    pub fn param(field: impl Into<String>, value: f64, reason: &'static str) -> Self {
        HeeError::InvalidParameter {
            field: field.into(),
            value,
            reason,
        }
    }
    /// A [`HeeError::DimensionMismatch`] naming `field`.
    pub fn dims(field: impl Into<String>, expected: impl ToString, got: impl ToString) -> Self {
        HeeError::DimensionMismatch {
            field: field.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }
}

/// Checks that `value` is finite and strictly positive.
pub(crate) fn positive(field: &str, value: f64) -> Result<()> {
    if !value.is_finite() {
        return Err(HeeError::param(field, value, "must be finite"));
    }
    if value <= 0.0 {
        return Err(HeeError::param(field, value, "must be > 0"));
    }
    Ok(())
}

/// Checks that `value` is finite and non-negative.
pub(crate) fn non_negative(field: &str, value: f64) -> Result<()> {
    if !value.is_finite() {
        return Err(HeeError::param(field, value, "must be finite"));
    }
    if value < 0.0 {
        return Err(HeeError::param(field, value, "must be >= 0"));
    }
    Ok(())
}
