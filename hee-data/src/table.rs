//! Numeric CSV tables: one record per row, an optional header.

use std::path::Path;

use faer::Mat;

use crate::error::{io, DataError, Result};

/// A numeric matrix read from CSV.
#[derive(Debug, Clone)]
pub struct Table {
    /// Column names when the file had a header.
    pub header: Option<Vec<String>>,
    pub values: Mat<f64>,
}

/// Parses CSV bytes. The first row is a header iff none of its cells is a
/// number. Every other cell must be a finite number; rows must all have the
/// same number of fields. Rows and columns in errors are 1-based, as in an
/// editor (rows count the header line too).
pub fn parse_csv(path: &Path, bytes: &[u8]) -> Result<Table> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let mut header = None;
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut width = None;
    for (k, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| DataError::Format {
            path: path.to_path_buf(),
            offset: e.position().map(|p| p.byte() as usize).unwrap_or(0),
            reason: format!("unreadable CSV: {e}"),
        })?;
        let line = rec.position().map(|p| p.line() as usize).unwrap_or(k + 1);
        if k == 0 && rec.iter().all(|c| c.parse::<f64>().is_err()) {
            header = Some(rec.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            width = Some(rec.len());
            continue;
        }
        if rec.len() == 1 && rec.get(0) == Some("") {
            continue; // blank line
        }
        let w = *width.get_or_insert(rec.len());
        if rec.len() != w {
            return Err(DataError::Cell {
                path: path.to_path_buf(),
                row: line,
                col: rec.len().min(w) + 1,
                reason: format!("ragged row: {} fields, expected {w}", rec.len()),
            });
        }
        let mut row = Vec::with_capacity(w);
        for (j, cell) in rec.iter().enumerate() {
            let v: f64 = cell.parse().map_err(|_| DataError::Cell {
                path: path.to_path_buf(),
                row: line,
                col: j + 1,
                reason: format!("'{cell}' is not a number"),
            })?;
            if !v.is_finite() {
                return Err(DataError::Cell {
                    path: path.to_path_buf(),
                    row: line,
                    col: j + 1,
                    reason: format!("non-finite value {cell}"),
                });
            }
            row.push(v);
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            reason: "no data rows".into(),
        });
    }
    let w = rows[0].len();
    Ok(Table {
        header,
        values: Mat::from_fn(rows.len(), w, |i, j| rows[i][j]),
    })
}

/// Reads a CSV file.
pub fn read_csv(path: &Path) -> Result<Table> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    parse_csv(path, &bytes)
}
