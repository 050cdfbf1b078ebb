//! Typed errors of the loaders; each names the file and the position.

use std::path::PathBuf;

use thiserror::Error;

/// Everything a loader can reject.
#[derive(Debug, Error)]
pub enum DataError {
    #[error("cannot read '{path}': {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("'{path}': {reason} (at byte {offset})")]
    Format {
        path: PathBuf,
        offset: usize,
        reason: String,
    },
    #[error("'{path}': row {row}, column {col}: {reason}")]
    Cell {
        path: PathBuf,
        row: usize,
        col: usize,
        reason: String,
    },
    #[error("'{path}': {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{what} not found in '{path}': {hint}")]
    Missing {
        what: String,
        path: PathBuf,
        hint: String,
    },
    #[error("invalid data specification '{0}': expected mnist, fashion, fashion-full, natural or csv:PATH")]
    Spec(String),
    #[error("invalid setting `{field}` = {value}: {reason}")]
    Setting {
        field: &'static str,
        value: String,
        reason: String,
    },
}

/// Result alias of the loaders.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}
