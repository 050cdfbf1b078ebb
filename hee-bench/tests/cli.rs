//! The `hee` program: one-line errors with non-zero exits, and the quick
//! sampler check meeting its acceptance thresholds.

use std::process::Command;

fn hee() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hee"))
}

fn one_line_error(out: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "must exit non-zero");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected, got:\n{err}"
    );
    assert!(err.starts_with("hee: "), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    err
}

#[test]
fn unknown_experiment_is_a_one_line_error() {
    let out = hee()
        .args(["reproduce", "no-such-experiment"])
        .output()
        .unwrap();
    let err = one_line_error(&out);
    assert!(err.contains("no-such-experiment"), "{err}");
}

#[test]
fn unknown_flag_is_a_one_line_error() {
    let out = hee()
        .args(["reproduce", "sampler-check", "--fast"])
        .output()
        .unwrap();
    let err = one_line_error(&out);
    assert!(err.contains("--fast"), "{err}");
}

#[test]
fn unwritable_out_is_a_one_line_error() {
    let dir = std::env::temp_dir().join(format!("hee-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A regular file where a directory is expected cannot hold results.
    let file = dir.join("not-a-dir");
    std::fs::write(&file, b"keep me").unwrap();
    let out = hee()
        .args(["reproduce", "sampler-check", "--quick", "--out"])
        .arg(file.join("sub"))
        .output()
        .unwrap();
    let err = one_line_error(&out);
    assert!(err.contains("not-a-dir"), "{err}");
    // Nothing the user had is lost.
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn quick_sampler_check_meets_thresholds() {
    let dir = std::env::temp_dir().join(format!("hee-sc-{}", std::process::id()));
    let out = hee()
        .args(["reproduce", "sampler-check", "--quick", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rdr = csv::Reader::from_path(dir.join("sampler-check.csv")).unwrap();
    let headers = rdr.headers().unwrap().clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        [
            "model",
            "a_prime",
            "mean_rel_err",
            "cov_rel_err",
            "kl",
            "steps",
            "seconds"
        ]
    );
    let mut n = 0;
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let mean: f64 = rec[2].parse().unwrap();
        let cov: f64 = rec[3].parse().unwrap();
        assert!(mean < 0.05, "{:?}: mean_rel_err {mean}", rec);
        assert!(cov < 0.10, "{:?}: cov_rel_err {cov}", rec);
        n += 1;
    }
    assert_eq!(n, 6, "3 models x 2 estimators");
    assert!(std::fs::metadata(dir.join("kl.png")).unwrap().len() > 1000);
    std::fs::remove_dir_all(&dir).unwrap();
}
