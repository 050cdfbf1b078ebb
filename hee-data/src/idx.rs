//! The IDX format of MNIST and Fashion-MNIST, raw or gzip, any record count.
//!
//! Header: two zero bytes, a type code (0x08 = u8), the number of dimensions,
//! then one big-endian u32 per dimension. Images are magic 2051
//! (0x00000803: 3 dims, count × rows × cols), labels 2049 (0x00000801: 1 dim).
//! The payload length must equal the product of the dimensions exactly; the
//! header is checked against the file length before anything is allocated
//! from it.

use std::io::Read;
use std::path::Path;

use crate::error::{io, DataError, Result};

/// Images of one IDX file: `count` images of `rows × cols` bytes, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// Reads a whole file, inflating it when it starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(io(path))?;
    inflate_if_gz(path, raw)
}

/// Inflates `raw` when it starts with the gzip magic 1f 8b. The inflated
/// length must match the gzip trailer's ISIZE field, which catches streams
/// cut short (the decoder alone may stop quietly at the end of the input).
pub fn inflate_if_gz(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>> {
    if raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
        let bad = |offset: usize, reason: String| DataError::Format {
            path: path.to_path_buf(),
            offset,
            reason,
        };
        if raw.len() < 18 {
            return Err(bad(raw.len(), "truncated gzip stream".into()));
        }
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| bad(0, format!("corrupt or truncated gzip stream: {e}")))?;
        let n = raw.len();
        let isize = u32::from_le_bytes([raw[n - 4], raw[n - 3], raw[n - 2], raw[n - 1]]);
        if isize != out.len() as u32 {
            return Err(bad(
                n,
                format!(
                    "corrupt or truncated gzip stream: inflated {} bytes, trailer says {isize}",
                    out.len()
                ),
            ));
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn header(path: &Path, bytes: &[u8], magic: u32, dims: usize) -> Result<Vec<usize>> {
    let fmt = |offset: usize, reason: String| DataError::Format {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let need = 4 + 4 * dims;
    if bytes.is_empty() {
        return Err(fmt(0, "empty file".into()));
    }
    // The magic first: a file of the wrong kind is named as such even when
    // it is shorter than this kind's header.
    if bytes.len() >= 4 {
        let got = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if got != magic {
            return Err(fmt(
                0,
                format!("wrong magic number {got} (expected {magic})"),
            ));
        }
    }
    if bytes.len() < need {
        return Err(fmt(
            bytes.len(),
            format!(
                "truncated header: {} bytes, an IDX header with {dims} dimensions needs {need}",
                bytes.len()
            ),
        ));
    }
    Ok((0..dims)
        .map(|k| {
            let o = 4 + 4 * k;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect())
}

fn check_len(path: &Path, bytes: &[u8], head: usize, dims: &[usize]) -> Result<()> {
    let payload = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let expected = payload.and_then(|p| p.checked_add(head));
    match expected {
        Some(e) if e == bytes.len() => Ok(()),
        Some(e) if e > bytes.len() => Err(DataError::Format {
            path: path.to_path_buf(),
            offset: bytes.len(),
            reason: format!(
                "truncated: the header {dims:?} promises {e} bytes, the file has {}",
                bytes.len()
            ),
        }),
        Some(e) => Err(DataError::Format {
            path: path.to_path_buf(),
            offset: e,
            reason: format!(
                "{} trailing bytes after the {e} the header {dims:?} promises",
                bytes.len() - e
            ),
        }),
        None => Err(DataError::Format {
            path: path.to_path_buf(),
            offset: 4,
            reason: format!("header sizes {dims:?} overflow"),
        }),
    }
}

/// Parses IDX image bytes (already inflated); `path` is for messages.
pub fn parse_images(path: &Path, bytes: &[u8]) -> Result<IdxImages> {
    let d = header(path, bytes, 2051, 3)?;
    if d[1] == 0 || d[2] == 0 {
        return Err(DataError::Format {
            path: path.to_path_buf(),
            offset: 8,
            reason: format!("image size {}x{} is empty", d[1], d[2]),
        });
    }
    check_len(path, bytes, 16, &d)?;
    Ok(IdxImages {
        count: d[0],
        rows: d[1],
        cols: d[2],
        pixels: bytes[16..].to_vec(),
    })
}

/// Parses IDX label bytes (already inflated).
pub fn parse_labels(path: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    let d = header(path, bytes, 2049, 1)?;
    check_len(path, bytes, 8, &d)?;
    Ok(bytes[8..].to_vec())
}

/// Reads an IDX image file, raw or gzip.
pub fn read_images(path: &Path) -> Result<IdxImages> {
    parse_images(path, &read_maybe_gz(path)?)
}

/// Reads an IDX label file, raw or gzip.
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    parse_labels(path, &read_maybe_gz(path)?)
}

/// Reads an image file and its label file, checking that they agree in
/// count and that every label is a digit class 0–9.
pub fn read_labelled(images: &Path, labels: &Path) -> Result<(IdxImages, Vec<u8>)> {
    let im = read_images(images)?;
    let lb = read_labels(labels)?;
    if lb.len() != im.count {
        return Err(DataError::Invalid {
            path: labels.to_path_buf(),
            reason: format!(
                "{} labels for {} images in '{}'",
                lb.len(),
                im.count,
                images.display()
            ),
        });
    }
    if let Some((i, v)) = lb.iter().enumerate().find(|(_, &v)| v > 9) {
        return Err(DataError::Format {
            path: labels.to_path_buf(),
            offset: 8 + i,
            reason: format!("label {v} is not a class 0-9"),
        });
    }
    Ok((im, lb))
}
