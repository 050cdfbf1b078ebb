//! Loading the vendored MNIST, and extracting + whitening 100,000 16×16
//! natural-image patches. Run: `cargo bench -p hee-data --bench data`.

use criterion::{criterion_group, criterion_main, Criterion};
use hee_data::images::read_png_dir;
use hee_data::patches::{extract_patches, normalise_contrast, Whitening};
use hee_data::{load, DataSpec, LoadOptions};

fn data(c: &mut Criterion) {
    let mut g = c.benchmark_group("data");
    g.sample_size(10);
    g.bench_function("load_mnist_vendored", |b| {
        b.iter(|| load(&DataSpec::Mnist, None, &LoadOptions::default()).unwrap());
    });
    let images: Vec<_> = read_png_dir(&hee_data::dataset::vendored_root().join("natural-images"))
        .unwrap()
        .into_iter()
        .map(|(_, im)| im)
        .collect();
    g.bench_function("patches_100k_16x16_extract_whiten", |b| {
        b.iter(|| {
            let mut x = extract_patches(&images, 16, 100_000, 1).unwrap();
            normalise_contrast(&mut x, 0.1);
            let w = Whitening::fit(&x, 0.01).unwrap();
            w.apply(&mut x).unwrap();
            x
        });
    });
    g.finish();
}

criterion_group!(benches, data);
criterion_main!(benches);
