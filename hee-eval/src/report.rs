//! Result files, written atomically so that an interrupted run never leaves
//! a half-written file in place of a good one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Failures while writing results.
#[derive(Debug, Error)]
pub enum EvalError {
    #[error("cannot write '{path}': {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode '{path}': {reason}")]
    Encode { path: PathBuf, reason: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> EvalError + '_ {
    move |source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` via a temporary file in the same directory and a
/// rename, so readers see either the old file or the complete new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EvalError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        fs::rename(&tmp, path).map_err(io_err(path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Serialises rows with a header to CSV and writes them atomically.
pub fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<(), EvalError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let enc = |e: csv::Error| EvalError::Encode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    w.write_record(header).map_err(enc)?;
    for r in rows {
        w.write_record(r).map_err(enc)?;
    }
    let bytes = w.into_inner().map_err(|e| EvalError::Encode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    write_atomic(path, &bytes)
}

/// [`write_csv`] of one row per item, formatted by `row`, under `header`
/// written as the file's first line (comma-separated names).
pub fn write_rows<I: IntoIterator>(
    path: &Path,
    header: &str,
    items: I,
    row: impl FnMut(I::Item) -> Vec<String>,
) -> Result<(), EvalError> {
    let rows: Vec<Vec<String>> = items.into_iter().map(row).collect();
    let names: Vec<&str> = header.split(',').collect();
    write_csv(path, &names, &rows)
}

/// Creates `dir` (and parents) and checks that a file can be written in it.
pub fn prepare_dir(dir: &Path) -> Result<(), EvalError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let probe = dir.join(format!(".hee-write-probe.{}", std::process::id()));
    fs::write(&probe, b"").map_err(io_err(dir))?;
    let _ = fs::remove_file(&probe);
    Ok(())
}
