//! Grayscale images from PNG files (any bit depth and colour type).

use std::path::Path;

use crate::error::{io, DataError, Result};

/// A grayscale image with values in [0, 1], row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct GrayImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<f32>,
}

impl GrayImage {
    /// Pixel at (row, col).
    pub fn at(&self, r: usize, c: usize) -> f32 {
        self.pixels[r * self.width + c]
    }
}

/// Decodes PNG bytes to grayscale (colour is converted with the Rec. 601
/// luma weights; alpha is ignored; palettes are expanded).
pub fn decode_png(path: &Path, bytes: &[u8]) -> Result<GrayImage> {
    let fmt = |reason: String| DataError::Format {
        path: path.to_path_buf(),
        offset: 0,
        reason,
    };
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder
        .read_info()
        .map_err(|e| fmt(format!("not a readable PNG: {e}")))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| fmt("image too large".into()))?;
    let mut buf = vec![0u8; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| fmt(format!("corrupt PNG data: {e}")))?;
    let (w, h) = (info.width as usize, info.height as usize);
    if w == 0 || h == 0 {
        return Err(fmt("empty image".into()));
    }
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err(fmt("palette not expanded".into())),
    };
    let bytes_per = match info.bit_depth {
        png::BitDepth::Sixteen => 2,
        _ => 1,
    };
    let stride = info.line_size;
    let sample = |row: &[u8], k: usize| -> f32 {
        if bytes_per == 2 {
            u16::from_be_bytes([row[2 * k], row[2 * k + 1]]) as f32 / 65535.0
        } else {
            row[k] as f32 / 255.0
        }
    };
    if buf.len() < stride * h || stride < w * channels * bytes_per {
        return Err(fmt("decoded buffer shorter than the image".into()));
    }
    let mut pixels = Vec::with_capacity(w * h);
    for r in 0..h {
        let row = &buf[r * stride..(r + 1) * stride];
        for c in 0..w {
            let v = match channels {
                1 | 2 => sample(row, c * channels),
                _ => {
                    0.299 * sample(row, c * channels)
                        + 0.587 * sample(row, c * channels + 1)
                        + 0.114 * sample(row, c * channels + 2)
                }
            };
            pixels.push(v);
        }
    }
    Ok(GrayImage {
        width: w,
        height: h,
        pixels,
    })
}

/// Reads and decodes a PNG file.
pub fn read_png(path: &Path) -> Result<GrayImage> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    decode_png(path, &bytes)
}

/// Every `*.png` in `dir`, sorted by name, decoded.
pub fn read_png_dir(dir: &Path) -> Result<Vec<(String, GrayImage)>> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .map(|x| x.eq_ignore_ascii_case("png"))
                .unwrap_or(false)
        })
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(DataError::Missing {
            what: "PNG images".into(),
            path: dir.to_path_buf(),
            hint: "the directory holds no *.png file".into(),
        });
    }
    names
        .into_iter()
        .map(|p| {
            Ok((
                p.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                read_png(&p)?,
            ))
        })
        .collect()
}
