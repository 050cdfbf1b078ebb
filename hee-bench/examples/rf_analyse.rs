//! Analyses the receptive fields of any `hee train` run folder on natural
//! patches: `cargo run --release -p hee-bench --example rf_analyse -- DIR`.
//! Prints the fraction of Gabor-like fields and writes `DIR/fields.png`.

use hee_bench::experiments::receptive_fields::analyse;
use hee_bench::train::Training;
use hee_eval::receptive_fields::{fraction_gabor, orientation_bins};

fn main() -> Result<(), hee_bench::CliError> {
    let dir = std::env::args()
        .nth(1)
        .ok_or_else(|| hee_bench::CliError::Usage("usage: rf_analyse RUN_DIR".into()))?;
    let t = Training::resume(std::path::Path::new(&dir), None)?;
    let r = analyse(&t, "model", 0.0)?;
    let mut order: Vec<usize> = (0..r.fits.len()).collect();
    order.sort_by(|&a, &b| r.fits[b].r2.total_cmp(&r.fits[a].r2));
    let sorted: Vec<Vec<f64>> = order.iter().map(|&i| r.fields[i].clone()).collect();
    hee_eval::plot::write_field_grid(
        &std::path::Path::new(&dir).join("fields.png"),
        &sorted,
        t.config.data.patch,
        16,
        4,
    )?;
    let mut r2: Vec<f64> = r.fits.iter().map(|g| g.r2).collect();
    r2.sort_by(f64::total_cmp);
    println!(
        "fraction Gabor-like {:.3}, orientation bins {:?}, median r2 {:.3}",
        fraction_gabor(&r.fits),
        orientation_bins(&r.fits),
        r2[r2.len() / 2]
    );
    Ok(())
}
