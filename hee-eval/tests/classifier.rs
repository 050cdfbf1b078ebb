//! The feature classifier: it learns the vendored MNIST subset, and its
//! features put the held-out split close to the training split (the floor
//! every generation method is reported beside) and far from noise.

use faer::Mat;
use hee_data::{load, DataSpec, LoadOptions};
use hee_eval::classifier::{Classifier, ClassifierConfig};
use hee_eval::sample_quality::frechet_distance;

fn to_f64(m: &Mat<f32>) -> Mat<f64> {
    Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)] as f64)
}

#[test]
fn learns_mnist_and_its_features_separate_data_from_noise() {
    let d = load(&DataSpec::Mnist, None, &LoadOptions::default()).unwrap();
    let (tr, te) = (to_f64(&d.train), to_f64(&d.test));
    let lab = |l: &Option<Vec<u8>>| {
        l.as_ref()
            .unwrap()
            .iter()
            .map(|&v| v as usize)
            .collect::<Vec<_>>()
    };
    let (ltr, lte) = (lab(&d.train_labels), lab(&d.test_labels));
    let c = Classifier::train(tr.as_ref(), &ltr, 10, &ClassifierConfig::default()).unwrap();
    let acc = c.accuracy(te.as_ref(), &lte).unwrap();
    eprintln!("test accuracy {acc:.4}");
    // A 2-hidden-layer MLP on 8,000 digits reaches 96–98%; 0.95 leaves
    // room for the seed, not for a broken gradient (chance is 0.1).
    assert!(acc > 0.95, "test accuracy {acc}");
    let (ftr, fte) = (
        c.features(tr.as_ref()).unwrap(),
        c.features(te.as_ref()).unwrap(),
    );
    assert_eq!(fte.ncols(), 128);
    let floor = frechet_distance(fte.as_ref(), ftr.as_ref()).unwrap();
    // Uniform noise images and the mean image: far from the data.
    let mut s = 1u64;
    let noise = Mat::from_fn(2000, 784, |_, _| {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 40) as f64 / (1u64 << 24) as f64
    });
    let fnoise = c.features(noise.as_ref()).unwrap();
    let far = frechet_distance(fnoise.as_ref(), ftr.as_ref()).unwrap();
    eprintln!("FCD held-out vs train {floor:.3}, noise vs train {far:.1}");
    assert!(
        far > 20.0 * floor,
        "noise {far} against the held-out floor {floor}"
    );
    // Wrong widths are typed errors.
    assert!(c.features(noise.as_ref().subcols(0, 10)).is_err());
    assert!(Classifier::train(tr.as_ref(), &ltr[1..], 10, &ClassifierConfig::default()).is_err());
}
