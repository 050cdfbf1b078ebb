//! `hee generate` on a small trained run: every mode writes its grid, the
//! raw samples (openable as plain safetensors) and its settings; the same
//! seed gives the same samples; bad input is a one-line error.

mod common;

use std::path::PathBuf;

use common::{hee, one_line_error, run_ok};
use safetensors::SafeTensors;

fn tmp(tag: &str) -> PathBuf {
    common::tmp_dir("hee-generate", tag)
}

/// A run of one epoch on 200 digits, 784-16-4 with a sparse latent layer.
fn small_run() -> PathBuf {
    let dir = tmp("run");
    common::small_run(&dir, 1.0);
    dir
}

/// `hee generate --mode MODE --n 12 --steps 20` of `run` into `out`.
fn generate(run: &std::path::Path, mode: &str, out: &std::path::Path) {
    run_ok(
        hee()
            .args([
                "generate", "--mode", mode, "--n", "12", "--steps", "20", "--model",
            ])
            .arg(run)
            .arg("--out")
            .arg(out),
    );
}

fn samples(dir: &std::path::Path) -> (Vec<usize>, Vec<u8>, Option<Vec<u8>>) {
    let bytes = std::fs::read(dir.join("samples.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let s = st.tensor("samples").unwrap();
    let mask = st.tensor("mask").ok().map(|m| m.data().to_vec());
    (s.shape().to_vec(), s.data().to_vec(), mask)
}

#[test]
fn every_mode_writes_grid_samples_and_settings() {
    let run = small_run();
    for mode in ["marginal", "joint", "complete"] {
        let out = tmp(mode);
        generate(&run, mode, &out);
        assert!(out.join("samples.png").exists(), "{mode}");
        let settings = std::fs::read_to_string(out.join("settings.toml")).unwrap();
        assert!(
            settings.contains(&format!("mode = \"{mode}\"")),
            "{settings}"
        );
        let (shape, data, mask) = samples(&out);
        assert_eq!(shape, vec![12, 784], "{mode}");
        let vals: Vec<f32> = data
            .chunks(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert!(vals.iter().all(|v| v.is_finite()), "{mode}");
        if mode == "complete" {
            // The top 14 rows are the held-out images', bit for bit.
            let mask = mask.expect("complete writes its mask");
            assert_eq!(mask.iter().filter(|&&m| m == 1).count(), 14 * 28);
            let bytes = std::fs::read(out.join("samples.safetensors")).unwrap();
            let st = SafeTensors::deserialize(&bytes).unwrap();
            let orig = st.tensor("originals").unwrap().data().to_vec();
            assert_eq!(&orig[..4 * 14 * 28], &data[..4 * 14 * 28]);
            assert!(out.join("originals.png").exists());
        }
        // Same seed, same samples.
        let again = tmp(&format!("{mode}-again"));
        generate(&run, mode, &again);
        assert_eq!(samples(&again).1, data, "{mode}: a function of the seed");
    }
}

#[test]
fn bad_generate_input_is_one_line() {
    let out = tmp("bad");
    let e = one_line_error(
        &hee()
            .args(["generate", "--model", "/nonexistent/run", "--out"])
            .arg(&out)
            .output()
            .unwrap(),
    );
    assert!(e.contains("config.toml"), "{e}");
    let e = one_line_error(
        &hee()
            .args(["generate", "--mode", "dream", "--model", "x", "--out"])
            .arg(&out)
            .output()
            .unwrap(),
    );
    assert!(e.contains("dream"), "{e}");
}

#[test]
fn generation_quick_writes_every_method_beside_the_floor() {
    let out = tmp("experiment");
    run_ok(
        hee()
            .args(["reproduce", "generation", "--quick", "--out"])
            .arg(&out),
    );
    let text = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("dataset,method,seed,fcd,kid,kid_se,precision,recall,nn_train_dist,train_seconds,sample_seconds,test_bpd,confident,class_entropy_bits")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let methods: Vec<&str> = rows.iter().map(|r| r[1]).collect();
    assert_eq!(
        methods,
        ["test-data", "hee-marginal", "hee-joint", "baseline-ebm"]
    );
    let num = |r: &Vec<&str>, k: usize| r[k].parse::<f64>().unwrap();
    // Bits/dim for the HEE rows only (one model: one value): exactly what
    // `hee eval` reports for the same run folder with the same AIS settings
    // (100 temperatures, 4 chains in 4 runs, the first 32 test images).
    assert_eq!(rows[1][11], rows[2][11]);
    assert!(rows[0][11].is_empty() && rows[3][11].is_empty());
    let eval_out = tmp("experiment-eval");
    run_ok(
        hee()
            .args([
                "eval",
                "--log-likelihood",
                "--images",
                "32",
                "--ais-steps",
                "100",
                "--chains",
                "4",
                "--runs",
                "4",
                "--model",
            ])
            .arg(out.join("run-mnist-seed-20231012"))
            .arg("--out")
            .arg(&eval_out),
    );
    let row = std::fs::read_to_string(eval_out.join("log-likelihood.csv")).unwrap();
    let bpd = row
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(10)
        .unwrap()
        .to_string();
    assert_eq!(rows[1][11], bpd, "generation's test_bpd against hee eval's");
    // Recognisability: a share and an entropy of at most log2(10) bits.
    for r in &rows {
        if r[12] == "NaN" {
            continue;
        }
        assert!((0.0..=1.0).contains(&num(r, 12)), "{r:?}");
        assert!((0.0..=10f64.log2() + 1e-9).contains(&num(r, 13)), "{r:?}");
    }
    // Held-out against training images: one law, so the unbiased KID is 0
    // within 3 of its standard errors, and every sample set lies farther.
    let floor = &rows[0];
    assert!(
        num(floor, 4).abs() < 3.0 * num(floor, 5),
        "test-data KID {} ± {}",
        num(floor, 4),
        num(floor, 5)
    );
    // Every HEE run finishes; a baseline without samples (NaN) is one
    // that budgets.csv reports as diverged.
    let budgets = std::fs::read_to_string(out.join("budgets.csv")).unwrap();
    let runs: Vec<Vec<&str>> = budgets
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    // --quick trains at budgets 1 and 5 (full mode: 1, 5 and 20).
    for k in ["1", "5"] {
        assert!(
            runs.iter()
                .any(|r| r[1] == "hee" && r[2] == k && r[4] == "finished"),
            "{budgets}"
        );
        assert!(
            runs.iter().any(|r| r[1] == "baseline-ebm" && r[2] == k),
            "{budgets}"
        );
    }
    for r in &rows[1..] {
        if r[1] == "baseline-ebm" && r[3] == "NaN" {
            let b = runs
                .iter()
                .find(|b| b[1] == "baseline-ebm" && b[2] == "1")
                .unwrap();
            assert!(b[4].starts_with("\"diverged"), "{budgets}");
            continue;
        }
        assert!(
            num(r, 3) > num(floor, 3),
            "{}: FCD {} against the floor {}",
            r[1],
            num(r, 3),
            num(floor, 3)
        );
    }
    assert!(out.join("samples-mnist-hee-marginal.png").exists());
    // The joint curve continues the chains of the joint row: at its
    // number of steps the adaptation point is the same FCD.
    let curve = std::fs::read_to_string(out.join("joint-steps.csv")).unwrap();
    let joint_fcd = rows[2][3];
    let at_400 = curve
        .lines()
        .find(|l| l.starts_with("mnist,adaptation,400,"))
        .expect("the adaptation curve reaches 400 steps");
    assert_eq!(at_400.rsplit(',').next(), Some(joint_fcd), "{curve}");
    assert!(curve.lines().any(|l| l.starts_with("mnist,plain,")));
    assert!(out.join("joint-steps.png").exists());
    for f in [
        "learning-curves.csv",
        "learning-curves.png",
        "samples-mnist-completions.png",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    // Chains started at other examples' latents are farther from the
    // posterior than the per-example chains when the rule first reads them.
    let relax = std::fs::read_to_string(out.join("relaxation.csv")).unwrap();
    let z = |start: &str, steps: &str| -> f64 {
        let l = relax
            .lines()
            .find(|l| l.starts_with(&format!("mnist,20231012,{start},{steps},")))
            .unwrap_or_else(|| panic!("{start} {steps}: {relax}"));
        l.split(',').nth(4).unwrap().parse().unwrap()
    };
    // The rule first reads the chains after the defaults' 50 warm-up steps.
    assert!(z("carried", "0") > z("per-example", "50"), "{relax}");
    let _ = std::fs::remove_dir_all(&out);
}
