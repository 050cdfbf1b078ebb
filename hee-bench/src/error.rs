//! Errors of the `hee` program: each prints as one line.

use thiserror::Error;

/// Everything the `hee` program can fail with.
#[derive(Debug, Error)]
pub enum CliError {
    #[error("{0}")]
    Model(#[from] hee_core::HeeError),
    #[error("{0}")]
    Output(#[from] hee_eval::EvalError),
    #[error("{0}")]
    Data(#[from] hee_data::DataError),
    #[error("{0}")]
    Usage(String),
    #[error("'{path}': {reason}")]
    Checkpoint {
        path: std::path::PathBuf,
        reason: String,
    },
}
