//! The IDX format of MNIST and Fashion-MNIST, raw or gzip, any record count.
//!
//! Header: two zero bytes, a type code (0x08 = u8), the number of dimensions,
//! then one big-endian u32 per dimension. Images are magic 2051
//! (0x00000803: 3 dims, count × rows × cols), labels 2049 (0x00000801: 1 dim).
//! The payload length must equal the product of the dimensions exactly; the
//! header is checked against the file length before anything is allocated
//! from it.
//!
//! Gzip files are inflated as a stream and never beyond what the header
//! declares: the header is decoded first, a declared size that no deflate
//! stream of this file's length could produce (deflate expands at most
//! ~1032:1) is refused before any allocation, and the payload is read with a
//! limit of the declared size plus one byte. A decompression bomb — a small
//! file whose stream inflates far past its header — is therefore rejected
//! with a typed error after reading at most the declared size plus a byte.

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

/// Largest expansion a deflate stream can achieve (258-byte matches coded in
/// 2 bits: 1032:1); a header declaring more than this times the compressed
/// length (plus a small allowance) cannot be honest.
const MAX_DEFLATE_RATIO: usize = 1032;

/// True when `raw` starts with the gzip magic 1f 8b.
fn is_gzip(raw: &[u8]) -> bool {
    raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b
}

/// Reads an IDX file of `magic` with `dims` dimensions (raw or gzip) and
/// returns the dimensions and the payload, reading no more than the header
/// declares (plus one byte, to detect trailing data).
fn read_idx(path: &Path, magic: u32, dims: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let raw = std::fs::read(path).map_err(io(path))?;
    parse_idx(path, &raw, magic, dims)
}

/// [`read_idx`] on the bytes of a file already in memory.
fn parse_idx(path: &Path, raw: &[u8], magic: u32, dims: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let head = 4 + 4 * dims;
    let fmt = |offset: usize, reason: String| DataError::Format {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    if !is_gzip(raw) {
        let d = header(path, raw, magic, dims)?;
        check_len(path, raw, head, &d)?;
        return Ok((d, raw[head..].to_vec()));
    }
    if raw.len() < 18 {
        return Err(fmt(raw.len(), "truncated gzip stream".into()));
    }
    let gz_err = |e: std::io::Error| fmt(0, format!("corrupt or truncated gzip stream: {e}"));
    let mut dec = flate2::read::GzDecoder::new(raw);
    // The header: at most `head` bytes (a shorter stream is a truncated header).
    let mut hbuf = Vec::with_capacity(head);
    (&mut dec)
        .take(head as u64)
        .read_to_end(&mut hbuf)
        .map_err(gz_err)?;
    let d = header(path, &hbuf, magic, dims)?;
    let payload = d
        .iter()
        .try_fold(1usize, |a, &x| a.checked_mul(x))
        .ok_or_else(|| fmt(4, format!("header sizes {d:?} overflow")))?;
    let possible = raw
        .len()
        .saturating_mul(MAX_DEFLATE_RATIO)
        .saturating_add(1 << 16);
    if payload.saturating_add(head) > possible {
        return Err(fmt(
            4,
            format!(
                "the header {d:?} declares {payload} bytes, more than a {}-byte gzip file can hold",
                raw.len()
            ),
        ));
    }
    // One byte more than declared, so that reading the byte that proves
    // trailing data does not make the vector double.
    let mut body = Vec::with_capacity(payload + 1);
    (&mut dec)
        .take(payload as u64 + 1)
        .read_to_end(&mut body)
        .map_err(gz_err)?;
    if body.len() < payload {
        return Err(fmt(
            head + body.len(),
            format!(
                "truncated: the header {d:?} promises {} bytes, the stream inflates to {}",
                head + payload,
                head + body.len()
            ),
        ));
    }
    if body.len() > payload {
        return Err(fmt(
            head + payload,
            format!(
                "the gzip stream inflates beyond the {} bytes the header {d:?} declares (trailing data or a decompression bomb); stopped reading there",
                head + payload
            ),
        ));
    }
    // Drive the decoder to the end of the member (it checks the CRC there),
    // then compare the trailer's ISIZE: the decoder alone may stop quietly
    // at the end of a stream cut short.
    let mut probe = [0u8; 1];
    let extra = dec.read(&mut probe).map_err(gz_err)?;
    let n = raw.len();
    let isize = u32::from_le_bytes([raw[n - 4], raw[n - 3], raw[n - 2], raw[n - 1]]);
    if extra != 0 || isize != (head + payload) as u32 {
        return Err(fmt(
            n,
            format!(
                "corrupt or truncated gzip stream: inflated {} bytes, trailer says {isize}",
                head + payload
            ),
        ));
    }
    Ok((d, body))
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

fn images_of(path: &Path, d: Vec<usize>, pixels: Vec<u8>) -> Result<IdxImages> {
    if d[1] == 0 || d[2] == 0 {
        return Err(DataError::Format {
            path: path.to_path_buf(),
            offset: 8,
            reason: format!("image size {}x{} is empty", d[1], d[2]),
        });
    }
    Ok(IdxImages {
        count: d[0],
        rows: d[1],
        cols: d[2],
        pixels,
    })
}

/// Parses the bytes of an IDX image file (raw or gzip); `path` is for messages.
pub fn parse_images(path: &Path, bytes: &[u8]) -> Result<IdxImages> {
    let (d, pixels) = parse_idx(path, bytes, 2051, 3)?;
    images_of(path, d, pixels)
}

/// Parses the bytes of an IDX label file (raw or gzip).
pub fn parse_labels(path: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    Ok(parse_idx(path, bytes, 2049, 1)?.1)
}

/// Reads an IDX image file, raw or gzip.
pub fn read_images(path: &Path) -> Result<IdxImages> {
    let (d, pixels) = read_idx(path, 2051, 3)?;
    images_of(path, d, pixels)
}

/// Reads an IDX label file, raw or gzip.
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    Ok(read_idx(path, 2049, 1)?.1)
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
