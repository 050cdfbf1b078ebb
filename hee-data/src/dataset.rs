//! The dataset API every experiment uses.

use std::path::{Path, PathBuf};

use faer::Mat;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{DataError, Result};
use crate::idx::{read_labelled, IdxImages};
use crate::images::read_png_dir;
use crate::patches::{extract_patches, normalise_contrast, Whitening};
use crate::table::read_csv;

/// Which data set.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSpec {
    /// The vendored 10,000 MNIST digits.
    Mnist,
    /// The vendored 10,000 Fashion-MNIST images.
    Fashion,
    /// The full 70,000 Fashion-MNIST images from the Debian package
    /// `dataset-fashion-mnist` (or `--data-dir`).
    FashionFull,
    /// Whitened patches of the vendored natural images.
    Natural,
    /// A numeric CSV file.
    Csv(PathBuf),
}

impl std::str::FromStr for DataSpec {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mnist" => Ok(DataSpec::Mnist),
            "fashion" => Ok(DataSpec::Fashion),
            "fashion-full" => Ok(DataSpec::FashionFull),
            "natural" => Ok(DataSpec::Natural),
            _ => match s.strip_prefix("csv:") {
                Some(p) if !p.is_empty() => Ok(DataSpec::Csv(PathBuf::from(p))),
                _ => Err(DataError::Spec(s.to_string())),
            },
        }
    }
}

/// Settings of the loaders that build data (patches, splits).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// Patch side p for natural images.
    pub patch: usize,
    /// Number of natural-image patches (train + test).
    pub patches: usize,
    /// ZCA regulariser, relative to the mean eigenvalue.
    pub zca_epsilon: f64,
    /// Fraction held out as the test split (natural images and CSV).
    pub test_fraction: f64,
    /// Seed of patch positions and splits.
    pub seed: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            patch: 16,
            patches: 50_000,
            zca_epsilon: 0.01,
            test_fraction: 0.1,
            seed: 20231012,
        }
    }
}

/// Where the values of a data set are put before use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scaling {
    /// As loaded (pixels in [0, 1]; whitened patches; CSV values).
    AsLoaded,
    /// Uniform dequantisation of 8-bit pixels: (byte + u)/256, u ~ U(0, 1).
    Dequantized { seed: u64 },
    /// Every feature to mean 0, sd 1 using the training split's statistics
    /// (constant features are only centred).
    Standardized,
}

/// A data set: training and test records (one per row) and what is known
/// about them.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub train: Mat<f32>,
    pub test: Mat<f32>,
    pub train_labels: Option<Vec<u8>>,
    pub test_labels: Option<Vec<u8>>,
    /// (rows, cols) when records are images.
    pub image_shape: Option<(usize, usize)>,
    /// Number of classes when labelled.
    pub classes: Option<usize>,
    /// The whitening applied (natural images), to map fields back to pixels.
    pub whitening: Option<Whitening>,
    /// True when values are 8-bit pixels divided by 255.
    quantized: bool,
}

/// The vendored data directory of this workspace.
pub fn vendored_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("data")
}

/// Where the Debian package `dataset-fashion-mnist` puts the full
/// Fashion-MNIST, relative to the file-system root.
pub const FASHION_DEBIAN_DIR: &str = "usr/share/datasets/fashion-mnist";

/// The full Fashion-MNIST directory of a Debian file system rooted at
/// `root` (`/` on the machine itself; a test can lay out a fixture
/// elsewhere).
pub fn debian_fashion_dir(root: &Path) -> PathBuf {
    root.join(FASHION_DEBIAN_DIR)
}

fn images_to_mat(im: &IdxImages) -> Mat<f32> {
    let d = im.rows * im.cols;
    Mat::from_fn(im.count, d, |i, j| im.pixels[i * d + j] as f32 / 255.0)
}

fn load_idx_dir(name: &str, dir: &Path, hint: &str) -> Result<Dataset> {
    let need = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ];
    // Accept raw or .gz files.
    let find = |stem: &str| -> Result<PathBuf> {
        for cand in [dir.join(format!("{stem}.gz")), dir.join(stem)] {
            if cand.is_file() {
                return Ok(cand);
            }
        }
        Err(DataError::Missing {
            what: format!("{name} file {stem}[.gz]"),
            path: dir.to_path_buf(),
            hint: hint.to_string(),
        })
    };
    let paths: Vec<PathBuf> = need.iter().map(|s| find(s)).collect::<Result<_>>()?;
    let (tr, trl) = read_labelled(&paths[0], &paths[1])?;
    let (te, tel) = read_labelled(&paths[2], &paths[3])?;
    if (tr.rows, tr.cols) != (te.rows, te.cols) {
        return Err(DataError::Invalid {
            path: paths[2].clone(),
            reason: format!(
                "test images are {}x{}, training images {}x{}",
                te.rows, te.cols, tr.rows, tr.cols
            ),
        });
    }
    Ok(Dataset {
        name: name.to_string(),
        train: images_to_mat(&tr),
        test: images_to_mat(&te),
        train_labels: Some(trl),
        test_labels: Some(tel),
        image_shape: Some((tr.rows, tr.cols)),
        classes: Some(10),
        whitening: None,
        quantized: true,
    })
}

fn split_rows(x: &Mat<f32>, test_fraction: f64, seed: u64) -> Result<(Mat<f32>, Mat<f32>)> {
    if !(0.0..1.0).contains(&test_fraction) {
        return Err(DataError::Setting {
            field: "test_fraction",
            value: test_fraction.to_string(),
            reason: "must be in [0, 1)".into(),
        });
    }
    let n = x.nrows();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let n_test = ((n as f64) * test_fraction).round() as usize;
    let (te, tr) = idx.split_at(n_test);
    let pick = |rows: &[usize]| Mat::from_fn(rows.len(), x.ncols(), |i, j| x[(rows[i], j)]);
    Ok((pick(tr), pick(te)))
}

/// Loads a data set. `data_dir` overrides the default location (the
/// vendored `data/` for mnist, fashion and natural,
/// `/usr/share/datasets/fashion-mnist` for fashion-full); it is ignored for
/// CSV.
pub fn load(spec: &DataSpec, data_dir: Option<&Path>, opts: &LoadOptions) -> Result<Dataset> {
    let dir_or = |default: PathBuf| data_dir.map(Path::to_path_buf).unwrap_or(default);
    match spec {
        DataSpec::Mnist => load_idx_dir(
            "mnist",
            &dir_or(vendored_root().join("mnist-10k")),
            "pass --data-dir DIR holding the four IDX files",
        ),
        DataSpec::Fashion => load_idx_dir(
            "fashion",
            &dir_or(vendored_root().join("fashion-10k")),
            "pass --data-dir DIR holding the four IDX files",
        ),
        DataSpec::FashionFull => load_idx_dir(
            "fashion-full",
            &dir_or(debian_fashion_dir(Path::new("/"))),
            "the full set comes from the Debian package: `apt-get install dataset-fashion-mnist`, or pass --data-dir DIR (the vendored 10,000 images are `--data fashion`)",
        ),
        DataSpec::Natural => {
            let dir = data_dir
                .map(Path::to_path_buf)
                .unwrap_or_else(|| vendored_root().join("natural-images"));
            let images: Vec<_> = read_png_dir(&dir)?.into_iter().map(|(_, im)| im).collect();
            let mut x = extract_patches(&images, opts.patch, opts.patches, opts.seed)?;
            normalise_contrast(&mut x, 0.1);
            let (mut train, mut test) = split_rows(&x, opts.test_fraction, opts.seed ^ 1)?;
            // Whitening is fitted on the training split only.
            let w = Whitening::fit(&train, opts.zca_epsilon)?;
            w.apply(&mut train)?;
            w.apply(&mut test)?;
            Ok(Dataset {
                name: "natural".into(),
                train,
                test,
                train_labels: None,
                test_labels: None,
                image_shape: Some((opts.patch, opts.patch)),
                classes: None,
                whitening: Some(w),
                quantized: false,
            })
        }
        DataSpec::Csv(path) => {
            let t = read_csv(path)?;
            let x = Mat::<f32>::from_fn(t.values.nrows(), t.values.ncols(), |i, j| {
                t.values[(i, j)] as f32
            });
            let (train, test) = split_rows(&x, opts.test_fraction, opts.seed)?;
            Ok(Dataset {
                name: format!("csv:{}", path.display()),
                train,
                test,
                train_labels: None,
                test_labels: None,
                image_shape: None,
                classes: None,
                whitening: None,
                quantized: false,
            })
        }
    }
}

impl Dataset {
    /// Whether the records are 8-bit pixels as loaded (byte/255), which
    /// [`Scaling::Dequantized`] can dequantise.
    pub fn is_quantized(&self) -> bool {
        self.quantized
    }

    /// Number of training records.
    pub fn len(&self) -> usize {
        self.train.nrows()
    }
    /// True when there are no training records.
    pub fn is_empty(&self) -> bool {
        self.train.nrows() == 0
    }
    /// Dimension of a record.
    pub fn dim(&self) -> usize {
        self.train.ncols()
    }
    /// Smallest and largest value over both splits.
    pub fn value_range(&self) -> (f32, f32) {
        let mut lo = f32::INFINITY;
        let mut hi = f32::NEG_INFINITY;
        for m in [&self.train, &self.test] {
            for j in 0..m.ncols() {
                for i in 0..m.nrows() {
                    lo = lo.min(m[(i, j)]);
                    hi = hi.max(m[(i, j)]);
                }
            }
        }
        (lo, hi)
    }

    /// Minibatches of training indices for one epoch, in an order shuffled
    /// by (seed, epoch); the last batch may be smaller.
    pub fn minibatches(&self, batch: usize, seed: u64, epoch: u64) -> Result<Vec<Vec<usize>>> {
        if batch == 0 {
            return Err(DataError::Setting {
                field: "batch",
                value: "0".into(),
                reason: "must be >= 1".into(),
            });
        }
        let mut idx: Vec<usize> = (0..self.len()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(epoch);
        idx.shuffle(&mut rng);
        Ok(idx.chunks(batch).map(|c| c.to_vec()).collect())
    }

    /// The training records at `indices`, one per row; an index past the
    /// training set is an error naming it.
    pub fn batch(&self, indices: &[usize]) -> Result<Mat<f32>> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(DataError::Setting {
                field: "index",
                value: bad.to_string(),
                reason: format!("the training set has {} records", self.len()),
            });
        }
        Ok(Mat::from_fn(indices.len(), self.dim(), |i, j| {
            self.train[(indices[i], j)]
        }))
    }

    /// Rescales both splits.
    pub fn scale(&mut self, scaling: Scaling) -> Result<()> {
        match scaling {
            Scaling::AsLoaded => Ok(()),
            Scaling::Dequantized { seed } => {
                if !self.quantized {
                    return Err(DataError::Setting {
                        field: "scaling",
                        value: "dequantized".into(),
                        reason: format!("{} is not 8-bit pixel data", self.name),
                    });
                }
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                for m in [&mut self.train, &mut self.test] {
                    for j in 0..m.ncols() {
                        for i in 0..m.nrows() {
                            let byte = (m[(i, j)] * 255.0).round();
                            m[(i, j)] = (byte + rng.random::<f32>()) / 256.0;
                        }
                    }
                }
                self.quantized = false;
                Ok(())
            }
            Scaling::Standardized => {
                let (n, d) = (self.train.nrows(), self.dim());
                for j in 0..d {
                    let mean =
                        (0..n).map(|i| self.train[(i, j)] as f64).sum::<f64>() / n.max(1) as f64;
                    let var = (0..n)
                        .map(|i| (self.train[(i, j)] as f64 - mean).powi(2))
                        .sum::<f64>()
                        / n.max(1) as f64;
                    let sd = if var > 0.0 { var.sqrt() } else { 1.0 };
                    for m in [&mut self.train, &mut self.test] {
                        for i in 0..m.nrows() {
                            m[(i, j)] = ((m[(i, j)] as f64 - mean) / sd) as f32;
                        }
                    }
                }
                self.quantized = false;
                Ok(())
            }
        }
    }
}
