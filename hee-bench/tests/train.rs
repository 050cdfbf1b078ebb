//! `hee train`: a run interrupted anywhere and resumed ends bit-identical to
//! an uninterrupted one; corrupt, truncated or incompatible checkpoints give
//! one-line errors naming the file; `model.safetensors` is plain
//! safetensors (JSON header with named tensors).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

mod common;

use common::{hee, one_line_error, run_ok};
use hee_bench::train::baseline::{Baseline, BaselineStatus};
use hee_bench::train::{Event, Outcome, TrainConfig, Training};
use safetensors::SafeTensors;

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hee-train-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A small run: 300 MNIST digits, 784-24-8, sparse first latent layer with
/// interneurons (so ε and every random stream matter), 3 minibatches per
/// epoch, 3 epochs, cosine schedule.
fn small_config() -> TrainConfig {
    let mut c = TrainConfig {
        epochs: 3,
        seed: 7,
        ..TrainConfig::default()
    };
    for s in [
        "data.max_records=300",
        "model.layers=[784, 24, 8]",
        "model.energies=[{kind=\"gaussian\", sigma=1.0}, {kind=\"smooth-laplace\", sigma=1.0, lambda=0.5, delta=0.2}, {kind=\"gaussian\", sigma=1.0}]",
        "learning.warmup_steps=4",
        "learning.learning_steps=3",
        "learning.steps_per_update=2",
        "learning.eval_records=50",
        "learning.eval_steps=6",
        "dynamics.substeps=4",
        "dynamics.tau_ratio=0.05",
    ] {
        c.set(s).unwrap();
    }
    c
}

/// Every tensor of a safetensors file, by name.
fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.data().to_vec()))
        .collect();
    out.sort();
    out
}

fn assert_same_run(a: &Path, b: &Path) {
    for f in ["model.safetensors", "state.safetensors"] {
        let (ta, tb) = (tensors(&a.join(f)), tensors(&b.join(f)));
        assert_eq!(ta.len(), tb.len(), "{f}");
        for ((na, da), (nb, db)) in ta.iter().zip(&tb) {
            assert_eq!(na, nb);
            assert!(da == db, "{f}: tensor {na} differs");
        }
    }
}

fn run_to_end(t: &mut Training) {
    let never = AtomicBool::new(false);
    assert_eq!(t.run(&never, &mut |_| {}).unwrap(), Outcome::Finished);
}

/// Interrupt after `stop_after` minibatches (counted over the run), resume
/// from the folder, finish; compare with an uninterrupted run.
fn interrupted_equals_uninterrupted(stop_after: u64, tag: &str) {
    let whole = tmp(&format!("{tag}-whole"));
    run_to_end(&mut Training::start(small_config(), &whole).unwrap());
    let cut = tmp(&format!("{tag}-cut"));
    let mut t = Training::start(small_config(), &cut).unwrap();
    let stop = AtomicBool::new(false);
    let outcome = t
        .run(&stop, &mut |e| {
            if let Event::Minibatch { done, .. } = e {
                if done == stop_after {
                    stop.store(true, Ordering::SeqCst);
                }
            }
        })
        .unwrap();
    assert_eq!(outcome, Outcome::Interrupted);
    drop(t);
    let mut t = Training::resume(&cut, None).unwrap();
    run_to_end(&mut t);
    assert_eq!(t.curve().len(), 3);
    assert_same_run(&whole, &cut);
    let _ = std::fs::remove_dir_all(&whole);
    let _ = std::fs::remove_dir_all(&cut);
}

#[test]
fn resumed_after_an_epoch_is_bit_identical() {
    // 3 minibatches per epoch: after minibatch 3 the first epoch is done.
    interrupted_equals_uninterrupted(3, "epoch");
}

#[test]
fn resumed_mid_epoch_is_bit_identical() {
    interrupted_equals_uninterrupted(4, "mid");
}

/// The same through the program: Ctrl-C (SIGINT) during a run, then
/// `hee train --resume`.
#[cfg(unix)]
#[test]
fn ctrl_c_then_resume_through_the_cli_is_bit_identical() {
    let cfg = tmp("cli-cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    let mut c = small_config();
    c.epochs = 40;
    let file = cfg.join("run.toml");
    std::fs::write(&file, c.to_toml().unwrap()).unwrap();
    let whole = tmp("cli-whole");
    run_ok(
        hee()
            .args(["train", "--quiet", "--config"])
            .arg(&file)
            .arg("--out")
            .arg(&whole),
    );
    let cut = tmp("cli-cut");
    let child = hee()
        .args(["train", "--quiet", "--config"])
        .arg(&file)
        .arg("--out")
        .arg(&cut)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first checkpoint, then interrupt.
    let t0 = std::time::Instant::now();
    while !cut.join("state.safetensors").exists() && t0.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("interrupted"),
        "the run ended before the signal: {text}"
    );
    run_ok(hee().args(["train", "--quiet", "--resume"]).arg(&cut));
    assert_same_run(&whole, &cut);
    for d in [cfg, whole, cut] {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn resume_error(dir: &Path) -> String {
    one_line_error(&hee().args(["train", "--resume"]).arg(dir).output().unwrap())
}

#[test]
fn corrupt_truncated_or_incompatible_checkpoints_are_one_line_errors() {
    let base = tmp("corrupt-base");
    let mut c = small_config();
    c.epochs = 1;
    run_to_end(&mut Training::start(c, &base).unwrap());
    let copy = |tag: &str| {
        let d = tmp(tag);
        std::fs::create_dir_all(&d).unwrap();
        for f in std::fs::read_dir(&base).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, d.join(f.file_name().unwrap())).unwrap();
        }
        d
    };
    // Truncated model.
    let d = copy("trunc");
    let m = std::fs::read(d.join("model.safetensors")).unwrap();
    std::fs::write(d.join("model.safetensors"), &m[..m.len() / 2]).unwrap();
    let e = resume_error(&d);
    assert!(e.contains("model.safetensors"), "{e}");
    // Garbage state.
    let d = copy("garbage");
    std::fs::write(d.join("state.safetensors"), b"not a checkpoint").unwrap();
    let e = resume_error(&d);
    assert!(e.contains("state.safetensors"), "{e}");
    // A flipped byte in the JSON header.
    let d = copy("flip");
    let mut m = std::fs::read(d.join("model.safetensors")).unwrap();
    m[20] ^= 0x55;
    std::fs::write(d.join("model.safetensors"), &m).unwrap();
    let e = resume_error(&d);
    assert!(e.contains("model.safetensors"), "{e}");
    // Missing state.
    let d = copy("missing");
    std::fs::remove_file(d.join("state.safetensors")).unwrap();
    let e = resume_error(&d);
    assert!(e.contains("state.safetensors"), "{e}");
    // Incompatible: the configuration now asks for other layer sizes.
    let d = copy("incompatible");
    let text = std::fs::read_to_string(d.join("config.toml")).unwrap();
    std::fs::write(
        d.join("config.toml"),
        text.replace("layers = [784, 24, 8]", "layers = [784, 20, 8]"),
    )
    .unwrap();
    let e = resume_error(&d);
    assert!(e.contains("model.safetensors") && e.contains("W.0"), "{e}");
    // A broken configuration.
    let d = copy("config");
    std::fs::write(d.join("config.toml"), "epochs = \"many\"\n").unwrap();
    let e = resume_error(&d);
    assert!(e.contains("config.toml"), "{e}");
    // State and model from different moments of the run.
    let d = copy("mismatch");
    let mut t = Training::resume(&d, Some(2)).unwrap();
    let stop = AtomicBool::new(false);
    t.run(&stop, &mut |e| {
        if let Event::Minibatch { .. } = e {
            stop.store(true, Ordering::SeqCst)
        }
    })
    .unwrap();
    std::fs::copy(base.join("state.safetensors"), d.join("state.safetensors")).unwrap();
    let e = resume_error(&d);
    assert!(
        e.contains("state.safetensors") && e.contains("checkpoint"),
        "{e}"
    );
    // Starting over an existing run is refused (nothing is overwritten).
    let out = hee()
        .args(["train", "--data", "mnist", "--layers", "784,8", "--out"])
        .arg(&base)
        .output()
        .unwrap();
    let e = one_line_error(&out);
    assert!(e.contains("--resume"), "{e}");
    for tag in [
        "trunc",
        "garbage",
        "flip",
        "missing",
        "incompatible",
        "config",
        "mismatch",
    ] {
        let _ = std::fs::remove_dir_all(tmp(tag));
    }
    let _ = std::fs::remove_dir_all(&base);
}

/// `model.safetensors` by a plain parse of the format: 8 bytes of header
/// length (little-endian), a JSON header naming every tensor with its dtype,
/// shape and byte range, then the data.
#[test]
fn model_file_is_plain_safetensors_with_named_tensors() {
    let dir = tmp("header");
    let mut c = small_config();
    c.epochs = 1;
    run_to_end(&mut Training::start(c, &dir).unwrap());
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let check = |name: &str, dtype: &str, shape: &[u64]| {
        let t = &header[name];
        assert_eq!(t["dtype"], dtype, "{name}");
        let s: Vec<u64> = t["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(s, shape, "{name}");
        let off = t["data_offsets"].as_array().unwrap();
        let len = off[1].as_u64().unwrap() - off[0].as_u64().unwrap();
        let width = if dtype == "F64" { 8 } else { 4 };
        assert_eq!(len, width * shape.iter().product::<u64>(), "{name}");
    };
    check("W.0", "F32", &[784, 24]);
    check("W.1", "F32", &[24, 8]);
    check("b.0", "F32", &[784]);
    check("b.2", "F32", &[8]);
    check("energy.1.sigma", "F64", &[1]);
    check("energy.1.lambda", "F64", &[1]);
    check("energy.1.delta", "F64", &[1]);
    let meta = &header["__metadata__"];
    assert_eq!(meta["format"], "hee-model");
    assert_eq!(meta["energy_kind.1"], "smooth-laplace");
    let cfg = TrainConfig::from_toml(meta["config"].as_str().unwrap(), "metadata").unwrap();
    assert_eq!(cfg.model.layers, vec![784, 24, 8]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The minimal call needs no file; bad values name the setting.
#[test]
fn minimal_call_and_bad_settings() {
    let dir = tmp("minimal");
    let out = hee()
        .args([
            "train", "--data", "mnist", "--layers", "784,16,4", "--epochs", "1", "--seed", "3",
            "--quiet",
        ])
        .args([
            "--set",
            "data.max_records=200",
            "--set",
            "learning.eval_records=20",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "config.toml",
        "model.safetensors",
        "state.safetensors",
        "curve.csv",
        "curve.png",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    // The defaults learn σ₀ per pixel and retune the dynamics: curve.csv
    // records every retuning, and every row the Δt and σ's in use.
    let curve = std::fs::read_to_string(dir.join("curve.csv")).unwrap();
    let header: Vec<&str> = curve.lines().next().unwrap().split(',').collect();
    for col in [
        "kind",
        "dt",
        "tau_a",
        "g",
        "substeps",
        "lambda_max",
        "sigma_0_min",
        "sigma_0_median",
        "sigma_2_max",
    ] {
        assert!(header.contains(&col), "{col}: {header:?}");
    }
    let kinds: Vec<&str> = curve
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"retune"), "{curve}");
    assert_eq!(kinds.last(), Some(&"epoch"), "{curve}");
    let last: Vec<&str> = curve.lines().last().unwrap().split(',').collect();
    let col = |name: &str| {
        last[header.iter().position(|h| *h == name).unwrap()]
            .parse::<f64>()
            .unwrap()
    };
    assert!(
        col("dt") > 0.0 && col("sigma_0_min") < col("sigma_0_max"),
        "{curve}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    for (set, needle) in [
        ("dynamics.dt=-1", "dt"),
        ("dynamics.kind=momentum", "dynamics.kind"),
        ("model.nonlinearity=relu", "model.nonlinearity"),
        ("learning.no_such=1", "learning.no_such"),
        ("learning.batch=\"many\"", "learning.batch"),
        ("learning.sigma_min=0", "learning.sigma_min"),
        ("learning.lr_sigma=-0.1", "learning.lr_sigma"),
        ("learning.parametrisation=polar", "learning.parametrisation"),
        ("model.dispersion=[\"each\"]", "model.dispersion[0]"),
        (
            "model.dispersion=[\"unit\",\"unit\",\"unit\"]",
            "model.dispersion",
        ),
        ("dynamics.dt_fraction=3", "dynamics.dt_fraction"),
    ] {
        let out = hee()
            .args([
                "train", "--data", "mnist", "--layers", "784,8", "--set", set, "--out",
            ])
            .arg(tmp("bad"))
            .output()
            .unwrap();
        let e = one_line_error(&out);
        assert!(e.contains(needle), "{set}: {e}");
    }
    // One σ per unit needs a gaussian layer.
    let out = hee()
        .args(["train", "--data", "mnist", "--layers", "784,8,4", "--set"])
        .arg("model.energies=[{kind=\"gaussian\", sigma=0.3}, {kind=\"smooth-laplace\", sigma=1.0, lambda=1.0, delta=0.1}, {kind=\"gaussian\", sigma=1.0}]")
        .args(["--set", "model.dispersion=[\"unit\",\"unit\"]", "--out"])
        .arg(tmp("bad"))
        .output()
        .unwrap();
    let e = one_line_error(&out);
    assert!(
        e.contains("model.dispersion[1]") && e.contains("gaussian"),
        "{e}"
    );
    let out = hee()
        .args(["train", "--data", "mnist", "--layers", "100,8", "--out"])
        .arg(tmp("bad"))
        .output()
        .unwrap();
    let e = one_line_error(&out);
    assert!(e.contains("model.layers"), "{e}");
    let _ = std::fs::remove_dir_all(tmp("bad"));
}

/// Per-example chains: after an epoch every example has been visited, so
/// every row of the saved bank has left x = 0, and the chains' latents
/// (the last minibatch) are rows of the bank.
#[test]
fn the_latent_bank_holds_each_examples_chain() {
    let dir = tmp("bank");
    let mut c = small_config();
    c.epochs = 1;
    run_to_end(&mut Training::start(c, &dir).unwrap());
    let bytes = std::fs::read(dir.join("state.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let f32s = |name: &str| -> (Vec<usize>, Vec<f32>) {
        let t = st.tensor(name).unwrap();
        let v = t
            .data()
            .chunks(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        (t.shape().to_vec(), v)
    };
    let (shape, bank) = f32s("latent_bank");
    assert_eq!(shape, vec![300, 32], "300 examples x (24 + 8) latents");
    let rows: Vec<&[f32]> = bank.chunks(32).collect();
    assert!(
        rows.iter().all(|r| r.iter().any(|&v| v != 0.0)),
        "every example visited"
    );
    let (xs, x) = f32s("x");
    assert_eq!(xs, vec![100, 784 + 32]);
    for chain in x.chunks(784 + 32) {
        assert!(
            rows.contains(&&chain[784..]),
            "a chain's latents are its example's row"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The negative-phase baseline reports a divergence as its status, with
/// the curve up to it, rather than failing; with small rates it finishes.
#[test]
fn the_baseline_reports_divergence_as_a_status() {
    let mut c = small_config();
    c.model.energies.clear();
    c.learning.lr_weights = 1e4;
    c.learning.lr_biases = 1e4;
    let mut b = Baseline::new(c.clone()).unwrap();
    b.run(&mut |_| {}).unwrap();
    assert!(
        matches!(b.status, BaselineStatus::Diverged { .. }),
        "{:?}",
        b.status
    );
    assert!(b.curve.len() < 3);
    c.learning.lr_weights = 1e-3;
    c.learning.lr_biases = 1e-3;
    let mut b = Baseline::new(c).unwrap();
    let mut seen = 0;
    b.run(&mut |r| {
        assert!(r.recon_error.is_finite() && r.weight_norm.is_finite());
        seen += 1;
    })
    .unwrap();
    assert_eq!((b.status, seen), (BaselineStatus::Finished, 3));
}
