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

fn class_counts(labels: &[u8]) -> Vec<usize> {
    (0..10)
        .map(|c| labels.iter().filter(|&&v| v == c).count())
        .collect()
}

#[test]
fn vendored_mnist_loads_with_its_documented_counts() {
    let d = load(&DataSpec::Mnist, None, &LoadOptions::default()).unwrap();
    assert_eq!((d.len(), d.test.nrows(), d.dim()), (8000, 2000, 784));
    assert_eq!((d.image_shape, d.classes), (Some((28, 28)), Some(10)));
    assert_eq!(
        class_counts(d.train_labels.as_ref().unwrap()),
        [799, 896, 792, 814, 790, 682, 816, 871, 745, 795]
    );
    assert_eq!(
        class_counts(d.test_labels.as_ref().unwrap()),
        [202, 231, 199, 218, 190, 181, 198, 199, 199, 183]
    );
    let (lo, hi) = d.value_range();
    assert!(lo == 0.0 && hi == 1.0);
}

#[test]
fn vendored_fashion_mnist_loads_with_its_documented_counts() {
    let d = load(&DataSpec::Fashion, None, &LoadOptions::default()).unwrap();
    assert_eq!((d.len(), d.test.nrows(), d.dim()), (8000, 2000, 784));
    assert_eq!((d.image_shape, d.classes), (Some((28, 28)), Some(10)));
    assert_eq!(
        class_counts(d.train_labels.as_ref().unwrap()),
        [814, 835, 736, 832, 772, 835, 804, 763, 817, 792]
    );
    assert_eq!(
        class_counts(d.test_labels.as_ref().unwrap()),
        [197, 216, 211, 206, 203, 147, 218, 213, 192, 197]
    );
}

fn gz_file(path: &Path, bytes: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap();
}

/// The full Fashion-MNIST loader reads the Debian package's layout
/// (`<root>/usr/share/datasets/fashion-mnist/`, four gzip IDX files, as
/// `dpkg -c` lists them); tested on a fixture laid out like the package in
/// a temporary folder, so no test needs the package itself.
#[test]
fn fashion_full_loads_from_a_debian_layout() {
    let root = tmpdir("debroot");
    let dir = hee_data::dataset::debian_fashion_dir(&root);
    std::fs::create_dir_all(&dir).unwrap();
    assert!(dir.ends_with("usr/share/datasets/fashion-mnist"));
    gz_file(
        &dir.join("train-images-idx3-ubyte.gz"),
        &idx_images(60, 28, 28),
    );
    gz_file(&dir.join("train-labels-idx1-ubyte.gz"), &idx_labels(60));
    gz_file(
        &dir.join("t10k-images-idx3-ubyte.gz"),
        &idx_images(10, 28, 28),
    );
    gz_file(&dir.join("t10k-labels-idx1-ubyte.gz"), &idx_labels(10));
    let d = load(&DataSpec::FashionFull, Some(&dir), &LoadOptions::default()).unwrap();
    assert_eq!(
        (d.name.as_str(), d.len(), d.test.nrows(), d.dim(), d.classes),
        ("fashion-full", 60, 10, 784, Some(10))
    );
    assert_eq!(d.train[(0, 1)], 1.0 / 255.0);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn missing_full_fashion_mnist_says_how_to_install_it() {
    let dir = tmpdir("nofashion");
    let e = load(&DataSpec::FashionFull, Some(&dir), &LoadOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("apt-get install dataset-fashion-mnist"),
        "{msg}"
    );
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
}

#[test]
fn data_specs_parse() {
    for (s, want) in [
        ("mnist", DataSpec::Mnist),
        ("fashion", DataSpec::Fashion),
        ("fashion-full", DataSpec::FashionFull),
        ("natural", DataSpec::Natural),
    ] {
        assert_eq!(s.parse::<DataSpec>().unwrap(), want);
    }
    assert!(matches!(
        "fashionfull".parse::<DataSpec>(),
        Err(DataError::Spec(_))
    ));
}

fn setting_field(e: DataError) -> &'static str {
    match e {
        DataError::Setting { field, .. } => field,
        other => panic!("expected a setting error, got {other}"),
    }
}

/// Degenerate covariances give typed errors, never infinities.
#[test]
fn whitening_degenerate_patches_is_an_error() {
    use hee_data::patches::Whitening;
    // Every patch flat (all zero, and all the same constant).
    for v in [0.0f32, 0.7] {
        let flat = faer::Mat::<f32>::from_fn(100, 16, |_, _| v);
        assert_eq!(
            setting_field(Whitening::fit(&flat, 0.01).unwrap_err()),
            "patches"
        );
    }
    // Fewer patches than dimensions (rank ≤ n − 1 < d).
    let few = faer::Mat::<f32>::from_fn(10, 16, |i, j| ((i * 16 + j) as f32).sin());
    assert_eq!(
        setting_field(Whitening::fit(&few, 0.01).unwrap_err()),
        "patches"
    );
    // A non-finite pixel.
    let mut bad = faer::Mat::<f32>::from_fn(100, 16, |i, j| ((i * 16 + j) as f32).sin());
    bad[(3, 4)] = f32::NAN;
    assert_eq!(
        setting_field(Whitening::fit(&bad, 0.01).unwrap_err()),
        "patches"
    );
    // Enough varied patches fit, and the result is finite.
    let ok = faer::Mat::<f32>::from_fn(100, 16, |i, j| ((i * 16 + j) as f32 * 0.37).sin());
    let w = Whitening::fit(&ok, 0.01).unwrap();
    assert!((0..16).all(|i| (0..16).all(|j| w.whiten[(i, j)].is_finite())));
    // Applying it to patches of another size is an error.
    let mut other = faer::Mat::<f32>::zeros(5, 9);
    assert_eq!(
        setting_field(w.apply(&mut other).unwrap_err()),
        "patch dimension"
    );
}

#[test]
fn batch_index_out_of_range_is_an_error() {
    let d = load(&DataSpec::Mnist, None, &LoadOptions::default()).unwrap();
    assert_eq!(d.batch(&[0, 7999]).unwrap().shape(), (2, 784));
    assert_eq!(setting_field(d.batch(&[3, 8000]).unwrap_err()), "index");
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
