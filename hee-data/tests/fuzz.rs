//! At least 1,000 random truncations and byte flips of valid IDX (raw and
//! gzip), PNG and CSV inputs: the loaders return Ok or a typed error, and
//! never panic. Gzip IDX streams that inflate beyond their header (small
//! decompression bombs, of random sizes) are always rejected; the large bomb
//! and its memory bound are in `bomb.rs`.

use std::io::Write;
use std::path::Path;

use hee_data::idx::{parse_images, parse_labels};
use hee_data::images::decode_png;
use hee_data::table::parse_csv;
use hee_data::DataError;
use proptest::prelude::*;

fn idx_images() -> Vec<u8> {
    let mut v = Vec::new();
    for x in [2051u32, 6, 5, 4] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend((0..120u32).map(|i| (i * 7 % 256) as u8));
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn png_bytes(color: png::ColorType, depth: png::BitDepth) -> Vec<u8> {
    let (w, h) = (7u32, 5u32);
    let ch = match color {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        _ => 4,
    };
    let bpp = if depth == png::BitDepth::Sixteen {
        2
    } else {
        1
    };
    let data: Vec<u8> = (0..w * h * ch * bpp)
        .map(|i| (i * 13 % 256) as u8)
        .collect();
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(depth);
        let mut wr = enc.write_header().unwrap();
        wr.write_image_data(&data).unwrap();
    }
    out
}

const CSV: &[u8] = b"x,y,z\n1.5,2,3\n-4,5e-3,6\n7,8,9\n";

/// Truncate at `cut` (as a fraction), then flip up to three bytes.
fn mutate(mut v: Vec<u8>, cut: f64, flips: &[(usize, u8)]) -> Vec<u8> {
    let keep = ((v.len() as f64) * cut).round() as usize;
    v.truncate(keep.min(v.len()));
    if !v.is_empty() {
        for &(pos, x) in flips {
            let i = pos % v.len();
            v[i] ^= x;
        }
    }
    v
}

fn flips() -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop::collection::vec((any::<usize>(), 1u8..=255), 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn idx_never_panics(cut in 0.0f64..=1.0, f in flips(), gzip in any::<bool>()) {
        let base = if gzip { gz(&idx_images()) } else { idx_images() };
        let bytes = mutate(base, cut, &f);
        let p = Path::new("fuzz.idx");
        let _ = parse_images(p, &bytes);
        let _ = parse_labels(p, &bytes);
    }

    /// A header for `n` images of 5×4 followed by `n·20 + extra` bytes,
    /// gzip-compressed: every stream that inflates past its header is
    /// rejected, naming the declared size; exact ones parse.
    #[test]
    fn idx_gzip_inflating_past_the_header_is_rejected(n in 0u32..50, extra in 0usize..200_000, fill in any::<u8>()) {
        let mut v = Vec::new();
        for x in [2051u32, n, 5, 4] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend(std::iter::repeat_n(fill, n as usize * 20 + extra));
        let r = parse_images(Path::new("bomb.idx.gz"), &gz(&v));
        if extra == 0 {
            prop_assert!(r.is_ok(), "{r:?}");
        } else {
            match r {
                Err(DataError::Format { reason, offset, .. }) => {
                    prop_assert!(reason.contains("beyond"), "{reason}");
                    prop_assert_eq!(offset, 16 + n as usize * 20);
                }
                other => prop_assert!(false, "expected a format error, got {:?}", other),
            }
        }
    }

    #[test]
    fn png_never_panics(cut in 0.0f64..=1.0, f in flips(), kind in 0usize..5) {
        let (c, d) = [
            (png::ColorType::Grayscale, png::BitDepth::Eight),
            (png::ColorType::Grayscale, png::BitDepth::Sixteen),
            (png::ColorType::GrayscaleAlpha, png::BitDepth::Eight),
            (png::ColorType::Rgb, png::BitDepth::Eight),
            (png::ColorType::Rgba, png::BitDepth::Sixteen),
        ][kind];
        let bytes = mutate(png_bytes(c, d), cut, &f);
        let _ = decode_png(Path::new("fuzz.png"), &bytes);
    }

    #[test]
    fn csv_never_panics(cut in 0.0f64..=1.0, f in flips()) {
        let bytes = mutate(CSV.to_vec(), cut, &f);
        let _ = parse_csv(Path::new("fuzz.csv"), &bytes);
    }
}

/// Unmutated inputs decode (so the fuzz bases are valid).
#[test]
fn bases_are_valid() {
    let p = Path::new("base");
    assert!(parse_images(p, &gz(&idx_images())).is_ok());
    assert!(parse_images(p, &idx_images()).is_ok());
    let im = decode_png(p, &png_bytes(png::ColorType::Rgb, png::BitDepth::Eight)).unwrap();
    assert_eq!((im.width, im.height), (7, 5));
    assert_eq!(parse_csv(p, CSV).unwrap().values.nrows(), 3);
}
