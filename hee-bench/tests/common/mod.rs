//! Helpers shared by the `hee` program's integration tests.
#![allow(dead_code)]

use std::process::Command;

/// The `hee` binary of this build.
pub fn hee() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hee"))
}

/// Asserts a failed run that printed exactly one line `hee: …` (no panic,
/// no backtrace) and returns it.
pub fn one_line_error(out: &std::process::Output) -> String {
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

/// Runs `cmd`, asserts that it succeeded (showing its stderr otherwise) and
/// returns its output.
pub fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A fresh temporary folder name for `tag`, unique to this test process.
pub fn tmp_dir(prefix: &str, tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("{prefix}-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// `hee train` into `dir`: one epoch on 200 digits, 784-16-4 with a
/// sparse (smooth-laplace) latent layer and observation σ₀ = `sigma0`.
pub fn small_run(dir: &std::path::Path, sigma0: f64) {
    let energies = format!(
        "model.energies=[{{kind=\"gaussian\", sigma={sigma0:?}}}, {{kind=\"smooth-laplace\", sigma=1.0, lambda=0.5, delta=0.2}}, {{kind=\"gaussian\", sigma=1.0}}]"
    );
    run_ok(
        hee()
            .args([
                "train", "--data", "mnist", "--layers", "784,16,4", "--epochs", "1", "--quiet",
                "--out",
            ])
            .arg(dir)
            .args([
                "--set",
                "data.max_records=200",
                "--set",
                &energies,
                "--set",
                "learning.eval_records=20",
            ]),
    );
}
