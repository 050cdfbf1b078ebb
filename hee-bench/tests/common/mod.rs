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
