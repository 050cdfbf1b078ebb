//! The loaders on the vendored data, Fashion-MNIST, and malformed input.

use std::io::Write;
use std::path::{Path, PathBuf};

use hee_data::idx::{parse_images, parse_labels, read_images, read_labelled};
use hee_data::table::parse_csv;
use hee_data::{load, DataError, DataSpec, LoadOptions, Scaling};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hee-data-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A valid raw IDX image file: `n` images of r×c.
pub fn idx_images(n: u32, r: u32, c: u32) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [2051u32, n, r, c] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend((0..n * r * c).map(|i| (i % 251) as u8));
    v
}

pub fn idx_labels(n: u32) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [2049u32, n] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend((0..n).map(|i| (i % 10) as u8));
    v
}

#[test]
fn vendored_mnist_loads_with_its_documented_counts() {
    let d = load(&DataSpec::Mnist, None, &LoadOptions::default()).unwrap();
    assert_eq!((d.len(), d.test.nrows(), d.dim()), (8000, 2000, 784));
    assert_eq!((d.image_shape, d.classes), (Some((28, 28)), Some(10)));
    let count = |l: &[u8]| {
        (0..10)
            .map(|c| l.iter().filter(|&&v| v == c).count())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        count(d.train_labels.as_ref().unwrap()),
        [799, 896, 792, 814, 790, 682, 816, 871, 745, 795]
    );
    assert_eq!(
        count(d.test_labels.as_ref().unwrap()),
        [202, 231, 199, 218, 190, 181, 198, 199, 199, 183]
    );
    let (lo, hi) = d.value_range();
    assert!(lo == 0.0 && hi == 1.0);
}

/// Needs the Debian package `dataset-fashion-mnist` (CI installs it); fails,
/// rather than passing silently, when it is absent.
#[test]
fn fashion_mnist_loads_from_the_debian_package() {
    let d = load(&DataSpec::Fashion, None, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("Fashion-MNIST is required for this test: {e}"));
    assert_eq!(
        (d.len(), d.test.nrows(), d.dim(), d.classes),
        (60000, 10000, 784, Some(10))
    );
}

#[test]
fn missing_fashion_mnist_says_how_to_install_it() {
    let dir = tmpdir("nofashion");
    let e = load(&DataSpec::Fashion, Some(&dir), &LoadOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("apt-get install dataset-fashion-mnist"),
        "{msg}"
    );
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
}

#[test]
fn natural_patches_are_whitened_and_reproducible() {
    let opts = LoadOptions {
        patch: 8,
        patches: 4000,
        ..LoadOptions::default()
    };
    let d = load(&DataSpec::Natural, None, &opts).unwrap();
    assert_eq!(
        (d.len(), d.test.nrows(), d.dim(), d.image_shape),
        (3600, 400, 64, Some((8, 8)))
    );
    let w = d.whitening.as_ref().unwrap();
    // dewhiten · whiten = I (to f32 round-off).
    let prod = &w.dewhiten * &w.whiten;
    for i in 0..64 {
        for j in 0..64 {
            let target = if i == j { 1.0 } else { 0.0 };
            assert!(
                (prod[(i, j)] - target).abs() < 1e-3,
                "({i},{j}) = {}",
                prod[(i, j)]
            );
        }
    }
    // The whitened training covariance is U diag(λ/(λ+ε)) Uᵀ: eigenvalues in (0, 1].
    let n = d.train.nrows() as f64;
    let x = faer::Mat::<f64>::from_fn(d.train.nrows(), 64, |i, j| d.train[(i, j)] as f64);
    let cov = (x.transpose() * &x) * faer::Scale(1.0 / (n - 1.0));
    let ev = cov.self_adjoint_eigenvalues(faer::Side::Lower).unwrap();
    let max = ev.iter().cloned().fold(0.0, f64::max);
    assert!(
        max <= 1.0 + 1e-3 && max > 0.9,
        "largest whitened eigenvalue {max}"
    );
    // Same seed, same patches.
    let again = load(&DataSpec::Natural, None, &opts).unwrap();
    assert!((0..64).all(|j| again.train[(7, j)] == d.train[(7, j)]));
}

#[test]
fn minibatches_cover_the_training_set_once_per_epoch() {
    let d = load(&DataSpec::Mnist, None, &LoadOptions::default()).unwrap();
    let b = d.minibatches(300, 1, 0).unwrap();
    let mut all: Vec<usize> = b.iter().flatten().copied().collect();
    assert_eq!(b.len(), 27);
    all.sort();
    assert_eq!(all, (0..8000).collect::<Vec<_>>());
    assert_ne!(
        b[0],
        d.minibatches(300, 1, 1).unwrap()[0],
        "epochs are shuffled differently"
    );
    assert_eq!(
        b,
        d.minibatches(300, 1, 0).unwrap(),
        "deterministic by seed"
    );
}

#[test]
fn scalings() {
    let mut d = load(&DataSpec::Mnist, None, &LoadOptions::default()).unwrap();
    let before = d.train[(0, 300)];
    d.scale(Scaling::Dequantized { seed: 3 }).unwrap();
    let after = d.train[(0, 300)];
    let byte = (before * 255.0).round();
    assert!(after >= byte / 256.0 && after < (byte + 1.0) / 256.0);
    assert!(
        d.scale(Scaling::Dequantized { seed: 3 }).is_err(),
        "dequantising twice is refused"
    );
    d.scale(Scaling::Standardized).unwrap();
    let n = d.train.nrows() as f64;
    let mean = (0..d.train.nrows())
        .map(|i| d.train[(i, 300)] as f64)
        .sum::<f64>()
        / n;
    assert!(mean.abs() < 1e-4);
}

fn assert_format(e: DataError, file: &Path, what: &str) {
    let msg = e.to_string();
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(msg.contains(what), "{msg}");
    assert_eq!(msg.lines().count(), 1, "{msg}");
}

#[test]
fn malformed_idx_files_give_typed_errors_naming_file_and_position() {
    let dir = tmpdir("idx");
    let p = dir.join("images");
    // Missing file.
    let e = read_images(&dir.join("absent")).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }), "{e}");
    // Empty file.
    std::fs::write(&p, b"").unwrap();
    assert_format(read_images(&p).unwrap_err(), &p, "empty file");
    // Truncated header.
    std::fs::write(&p, &idx_images(3, 4, 4)[..10]).unwrap();
    assert_format(read_images(&p).unwrap_err(), &p, "truncated header");
    // Truncated payload: the header's count disagrees with the length.
    let good = idx_images(3, 4, 4);
    std::fs::write(&p, &good[..good.len() - 5]).unwrap();
    assert_format(read_images(&p).unwrap_err(), &p, "truncated");
    // Trailing bytes.
    let mut long = good.clone();
    long.extend_from_slice(&[1, 2, 3]);
    std::fs::write(&p, &long).unwrap();
    assert_format(read_images(&p).unwrap_err(), &p, "trailing bytes");
    // Wrong magic (a label file read as images).
    std::fs::write(&p, idx_labels(5)).unwrap();
    assert_format(read_images(&p).unwrap_err(), &p, "wrong magic number 2049");
    // Image size that disagrees with the data: header says 5x5, data is 4x4.
    let mut bad = good.clone();
    bad[11] = 5;
    bad[15] = 5;
    std::fs::write(&p, &bad).unwrap();
    assert_format(read_images(&p).unwrap_err(), &p, "promises");
    // A corrupt gzip stream.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&good).unwrap();
    let gz = gz.finish().unwrap();
    std::fs::write(&p, &gz[..gz.len() / 2]).unwrap();
    assert_format(read_images(&p).unwrap_err(), &p, "gzip");
    // Labels that disagree with the images.
    let l = dir.join("labels");
    std::fs::write(&p, &good).unwrap();
    std::fs::write(&l, idx_labels(4)).unwrap();
    let e = read_labelled(&p, &l).unwrap_err();
    assert!(e.to_string().contains("4 labels for 3 images"), "{e}");
    // And a good pair reads.
    std::fs::write(&l, idx_labels(3)).unwrap();
    assert!(read_labelled(&p, &l).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn malformed_csv_gives_row_and_column() {
    let p = Path::new("table.csv");
    let cell = |bytes: &[u8]| match parse_csv(p, bytes).unwrap_err() {
        DataError::Cell {
            row, col, reason, ..
        } => (row, col, reason),
        other => panic!("unexpected {other}"),
    };
    assert_eq!(parse_csv(p, b"a,b\n1,2\n3,4\n").unwrap().values.nrows(), 2);
    assert_eq!(parse_csv(p, b"1,2\n3,4\n").unwrap().header, None);
    let (r, c, why) = cell(b"a,b\n1,2\n3,x\n");
    assert_eq!((r, c), (3, 2));
    assert!(why.contains("'x' is not a number"));
    let (r, _, why) = cell(b"1,2\n3,4,5\n");
    assert_eq!(r, 2);
    assert!(why.contains("ragged"));
    for bad in ["nan", "inf", "-inf", "NaN"] {
        let (r, c, why) = cell(format!("1,2\n3,{bad}\n").as_bytes());
        assert_eq!((r, c), (2, 2));
        assert!(why.contains("non-finite"), "{why}");
    }
    assert!(matches!(
        parse_csv(p, b"").unwrap_err(),
        DataError::Invalid { .. }
    ));
    assert!(matches!(
        parse_csv(p, b"a,b\n").unwrap_err(),
        DataError::Invalid { .. }
    ));
}

#[test]
fn labels_and_images_parse_from_bytes() {
    let p = Path::new("x");
    let im = parse_images(p, &idx_images(2, 3, 5)).unwrap();
    assert_eq!((im.count, im.rows, im.cols, im.pixels.len()), (2, 3, 5, 30));
    assert_eq!(parse_labels(p, &idx_labels(7)).unwrap().len(), 7);
}
