//! `hee data`: load a data set, validate it and print its summary.

use std::path::Path;

use crate::CliError;

pub(super) fn summary(data: &hee_data::DataSpec, data_dir: Option<&Path>) -> Result<(), CliError> {
    let t0 = std::time::Instant::now();
    let d = hee_data::load(data, data_dir, &hee_data::LoadOptions::default())?;
    let secs = t0.elapsed().as_secs_f64();
    let (lo, hi) = d.value_range();
    println!("data set   {}", d.name);
    println!("records    {} train, {} test", d.len(), d.test.nrows());
    println!("dimension  {}", d.dim());
    match d.image_shape {
        Some((r, c)) => println!("shape      {r}x{c}"),
        None => println!("shape      (not images)"),
    }
    match d.classes {
        Some(c) => println!("classes    {c}"),
        None => println!("classes    (unlabelled)"),
    }
    println!("values     [{lo}, {hi}]");
    if let Some(w) = &d.whitening {
        println!("whitening  ZCA, epsilon {} x mean eigenvalue", w.epsilon);
    }
    println!("load time  {:.1} ms", secs * 1e3);
    Ok(())
}
