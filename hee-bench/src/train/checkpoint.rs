//! Checkpoints of a training run, in the safetensors format (readable from
//! Python with the `safetensors` library, or by parsing its JSON header):
//!
//! * `model.safetensors` — `W.{l}` (f32, size(l) × size(l+1), row-major),
//!   `b.{l}` (f32, size(l)) and `energy.{l}.{param}` (f64, shape [1]) for
//!   every layer; metadata `format = hee-model`, `format_version`, the
//!   run's `config` (TOML), `energy_kind.{l}` and `checkpoint`;
//! * `state.safetensors` — what continuing needs: the chains' `x`, `eta`,
//!   `a_prime`, `eps`, `aux` (f32, batch × units), the random streams
//!   (`stream_seed` u8 batch × 32, `stream_id` u64, `stream_word_pos` u64
//!   batch × 2, low word first) and, in the metadata, the position in the
//!   run and the running sums of the current epoch.
//!
//! Both files carry the same `checkpoint` number, so a pair from different
//! moments is refused. Every read failure is a one-line error naming the
//! file and the problem.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hee_core::faer::{Mat, MatRef};
use hee_core::{HeeModel, RowStreams, SamplerState, StreamPosition};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::LatentBank;
use crate::CliError;

/// Version of both file formats.
pub const FORMAT_VERSION: &str = "1";

fn err(path: &Path, reason: impl std::fmt::Display) -> CliError {
    CliError::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn f32_bytes(m: MatRef<'_, f32>) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 * m.nrows() * m.ncols());
    for i in 0..m.nrows() {
        for j in 0..m.ncols() {
            out.extend_from_slice(&m[(i, j)].to_le_bytes());
        }
    }
    out
}

fn serialize(
    path: &Path,
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    meta: HashMap<String, String>,
) -> Result<Vec<u8>, CliError> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            TensorView::new(*d, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| err(path, e))
        })
        .collect::<Result<_, _>>()?;
    safetensors::tensor::serialize(views, Some(meta)).map_err(|e| err(path, e))
}

/// The bytes of `model.safetensors`.
pub fn model_bytes(
    path: &Path,
    model: &HeeModel<f32>,
    config_toml: &str,
    checkpoint: u64,
) -> Result<Vec<u8>, CliError> {
    let mut tensors = Vec::new();
    let mut meta = HashMap::new();
    meta.insert("format".into(), "hee-model".into());
    meta.insert("format_version".into(), FORMAT_VERSION.into());
    meta.insert("config".into(), config_toml.into());
    meta.insert("checkpoint".into(), checkpoint.to_string());
    for l in 0..model.n_layers() {
        if l < model.top() {
            let w = model.weight(l);
            tensors.push((
                format!("W.{l}"),
                Dtype::F32,
                vec![w.nrows(), w.ncols()],
                f32_bytes(w),
            ));
        }
        let b = model.bias(l);
        tensors.push((
            format!("b.{l}"),
            Dtype::F32,
            vec![b.len()],
            b.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ));
        let e = model.energy(l);
        meta.insert(format!("energy_kind.{l}"), e.name().into());
        let p = e.params();
        for (k, name) in e.param_names().iter().enumerate() {
            // σ per unit, where the layer has them: shape [size(l)].
            let values = match (k, model.unit_sigmas(l)) {
                (0, Some(u)) => u.to_vec(),
                _ => vec![p[k]],
            };
            tensors.push((
                format!("energy.{l}.{name}"),
                Dtype::F64,
                vec![values.len()],
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ));
        }
    }
    serialize(path, tensors, meta)
}

fn open<'a>(
    path: &Path,
    bytes: &'a [u8],
    format: &str,
) -> Result<(SafeTensors<'a>, HashMap<String, String>), CliError> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| err(path, format!("not a valid safetensors file ({e})")))?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| err(path, e))?;
    let meta = header.metadata().clone().unwrap_or_default();
    match meta.get("format").map(String::as_str) {
        Some(f) if f == format => {}
        other => return Err(err(path, format!("not a {format} file (format {other:?})"))),
    }
    match meta.get("format_version").map(String::as_str) {
        Some(FORMAT_VERSION) => {}
        other => {
            return Err(err(
                path,
                format!("format version {other:?}, this program reads {FORMAT_VERSION}"),
            ))
        }
    }
    Ok((st, meta))
}

fn tensor<'a>(
    path: &Path,
    st: &'a SafeTensors<'a>,
    name: &str,
    dtype: Dtype,
    shape: &[usize],
) -> Result<&'a [u8], CliError> {
    let v = st
        .tensor(name)
        .map_err(|_| err(path, format!("tensor `{name}` is missing")))?;
    if v.dtype() != dtype || v.shape() != shape {
        return Err(err(
            path,
            format!(
                "tensor `{name}` is {:?} {:?}, expected {dtype:?} {shape:?}",
                v.dtype(),
                v.shape()
            ),
        ));
    }
    Ok(v.data())
}

fn f32s(data: &[u8]) -> impl Iterator<Item = f32> + '_ {
    data.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

fn u64s(data: &[u8]) -> impl Iterator<Item = u64> + '_ {
    data.chunks_exact(8).map(|c| {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        u64::from_le_bytes(a)
    })
}

fn meta_u64(path: &Path, meta: &HashMap<String, String>, key: &str) -> Result<u64, CliError> {
    meta.get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| err(path, format!("metadata `{key}` is missing or not a number")))
}

/// Reads `model.safetensors` into `model` (which has the configured shapes);
/// returns the file's checkpoint number.
pub fn load_model(path: &Path, model: &mut HeeModel<f32>) -> Result<u64, CliError> {
    let bytes = std::fs::read(path).map_err(|e| err(path, e))?;
    let (st, meta) = open(path, &bytes, "hee-model")?;
    for l in 0..model.n_layers() {
        if l < model.top() {
            let (r, c) = (model.size(l), model.size(l + 1));
            let data = tensor(path, &st, &format!("W.{l}"), Dtype::F32, &[r, c])?;
            let v: Vec<f32> = f32s(data).collect();
            let w = Mat::from_fn(r, c, |i, j| v[i * c + j]);
            model.set_weight(l, w.as_ref()).map_err(|e| err(path, e))?;
        }
        let n = model.size(l);
        let data = tensor(path, &st, &format!("b.{l}"), Dtype::F32, &[n])?;
        let b: Vec<f32> = f32s(data).collect();
        model.set_bias(l, &b).map_err(|e| err(path, e))?;
        let e = *model.energy(l);
        match meta.get(&format!("energy_kind.{l}")) {
            Some(k) if k == e.name() => {}
            other => {
                return Err(err(
                    path,
                    format!(
                        "layer {l} energy is {other:?}, the configuration says {}",
                        e.name()
                    ),
                ))
            }
        }
        let mut p = e.params();
        let mut units = None;
        for (k, name) in e.param_names().iter().enumerate() {
            let per_unit = k == 0 && model.has_unit_sigmas(l);
            let len = if per_unit { model.size(l) } else { 1 };
            let data = tensor(path, &st, &format!("energy.{l}.{name}"), Dtype::F64, &[len])?;
            let v: Vec<f64> = data
                .chunks_exact(8)
                .map(|c| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    f64::from_le_bytes(a)
                })
                .collect();
            if per_unit {
                units = Some(v);
            } else {
                p[k] = v[0];
            }
        }
        model
            .set_energy(l, e.with_params(p))
            .map_err(|e| err(path, e))?;
        if let Some(u) = units {
            model.set_unit_sigmas(l, &u).map_err(|e| err(path, e))?;
        }
    }
    meta_u64(path, &meta, "checkpoint")
}

/// Where a run stands, beyond the chains: saved in the state's metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunPosition {
    /// Minibatches processed since the start of the run.
    pub checkpoint: u64,
    /// The epoch in progress (0-based) and minibatches done in it.
    pub epoch: usize,
    pub batch_in_epoch: usize,
    /// Running sums of the epoch in progress (exact f64 bits).
    pub sums: Vec<f64>,
    /// Adaptation settings in use (τ_a, g).
    pub tau_a: f64,
    pub g: f64,
    /// The step and interneuron sub-steps in use (the configured ones
    /// unless the run retunes them).
    pub dt: f64,
    pub substeps: usize,
    /// The last retuning (`dynamics.retune`): before which minibatch, the
    /// curvature range it measured and every σ it saw.
    pub tuned_at: Option<u64>,
    pub lambda_min: f64,
    pub lambda_max: f64,
    pub tuned_sigma: Vec<f64>,
    pub tuned_stiffness: Vec<f64>,
}

/// The bytes of `state.safetensors`.
pub fn state_bytes(
    path: &Path,
    state: &SamplerState<f32>,
    streams: &RowStreams,
    pos: &RunPosition,
    bank: Option<MatRef<'_, f32>>,
) -> Result<Vec<u8>, CliError> {
    let (b, n) = (state.batch(), state.x().ncols());
    let mut tensors = Vec::new();
    if let Some(m) = bank {
        let shape = vec![m.nrows(), m.ncols()];
        tensors.push(("latent_bank".to_string(), Dtype::F32, shape, f32_bytes(m)));
    }
    for (name, m) in [
        ("x", state.x()),
        ("eta", state.eta()),
        ("a_prime", state.a_prime()),
        ("eps", state.eps()),
        ("aux", state.aux()),
    ] {
        tensors.push((name.to_string(), Dtype::F32, vec![b, n], f32_bytes(m)));
    }
    let snap = streams.snapshot();
    tensors.push((
        "stream_seed".into(),
        Dtype::U8,
        vec![b, 32],
        snap.iter().flat_map(|s| s.seed).collect(),
    ));
    tensors.push((
        "stream_id".into(),
        Dtype::U64,
        vec![b],
        snap.iter().flat_map(|s| s.stream.to_le_bytes()).collect(),
    ));
    tensors.push((
        "stream_word_pos".into(),
        Dtype::U64,
        vec![b, 2],
        snap.iter()
            .flat_map(|s| {
                let (lo, hi) = (s.word_pos as u64, (s.word_pos >> 64) as u64);
                lo.to_le_bytes().into_iter().chain(hi.to_le_bytes())
            })
            .collect(),
    ));
    let mut meta = HashMap::new();
    meta.insert("format".into(), "hee-state".into());
    meta.insert("format_version".into(), FORMAT_VERSION.into());
    meta.insert("checkpoint".into(), pos.checkpoint.to_string());
    meta.insert("step".into(), state.steps().to_string());
    meta.insert("epoch".into(), pos.epoch.to_string());
    meta.insert("batch_in_epoch".into(), pos.batch_in_epoch.to_string());
    meta.insert(
        "sums".into(),
        pos.sums
            .iter()
            .map(|v| format!("{:016x}", v.to_bits()))
            .collect::<Vec<_>>()
            .join(","),
    );
    meta.insert("tau_a".into(), format!("{:016x}", pos.tau_a.to_bits()));
    meta.insert("g".into(), format!("{:016x}", pos.g.to_bits()));
    meta.insert("dt".into(), format!("{:016x}", pos.dt.to_bits()));
    meta.insert("substeps".into(), pos.substeps.to_string());
    if let Some(m) = pos.tuned_at {
        meta.insert("tuned_at".into(), m.to_string());
        for (k, v) in [
            ("lambda_min", pos.lambda_min),
            ("lambda_max", pos.lambda_max),
        ] {
            meta.insert(k.into(), format!("{:016x}", v.to_bits()));
        }
        for (name, v) in [
            ("tuned_sigma", &pos.tuned_sigma),
            ("tuned_stiffness", &pos.tuned_stiffness),
        ] {
            tensors.push((
                name.into(),
                Dtype::F64,
                vec![v.len()],
                v.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ));
        }
    }
    serialize(path, tensors, meta)
}

fn meta_f64_bits(path: &Path, s: &str, key: &str) -> Result<f64, CliError> {
    u64::from_str_radix(s, 16)
        .map(f64::from_bits)
        .map_err(|_| err(path, format!("metadata `{key}` is not a number")))
}

/// What `state.safetensors` holds: the chains, their streams, the position
/// in the run and, with per-example chains, the latent bank.
pub type SavedState = (
    SamplerState<f32>,
    RowStreams,
    RunPosition,
    Option<LatentBank>,
);

/// Reads `state.safetensors` for `model` with `batch` chains, and a latent
/// bank of `bank_rows` examples when given.
pub fn load_state(
    path: &Path,
    model: &HeeModel<f32>,
    batch: usize,
    bank_rows: Option<usize>,
) -> Result<SavedState, CliError> {
    let bytes = std::fs::read(path).map_err(|e| err(path, e))?;
    let (st, meta) = open(path, &bytes, "hee-state")?;
    let n = model.total_size();
    let bank = match bank_rows {
        None => None,
        Some(rows) => {
            let m = n - model.size(0);
            let v: Vec<f32> =
                f32s(tensor(path, &st, "latent_bank", Dtype::F32, &[rows, m])?).collect();
            Some(LatentBank::from_mat(Mat::from_fn(rows, m, |i, j| {
                v[i * m + j]
            })))
        }
    };
    let mut mats = Vec::new();
    for name in ["x", "eta", "a_prime", "eps", "aux"] {
        let v: Vec<f32> = f32s(tensor(path, &st, name, Dtype::F32, &[batch, n])?).collect();
        mats.push(Mat::from_fn(batch, n, |i, j| v[i * n + j]));
    }
    let step = meta_u64(path, &meta, "step")?;
    let state = SamplerState::from_parts(
        model,
        mats[0].as_ref(),
        mats[1].as_ref(),
        mats[2].as_ref(),
        mats[3].as_ref(),
        mats[4].as_ref(),
        step,
    )
    .map_err(|e| err(path, e))?;
    let seeds = tensor(path, &st, "stream_seed", Dtype::U8, &[batch, 32])?;
    let ids: Vec<u64> = u64s(tensor(path, &st, "stream_id", Dtype::U64, &[batch])?).collect();
    let pos: Vec<u64> = u64s(tensor(
        path,
        &st,
        "stream_word_pos",
        Dtype::U64,
        &[batch, 2],
    )?)
    .collect();
    let positions: Vec<StreamPosition> = (0..batch)
        .map(|j| {
            let mut seed = [0u8; 32];
            seed.copy_from_slice(&seeds[32 * j..32 * (j + 1)]);
            StreamPosition {
                seed,
                stream: ids[j],
                word_pos: pos[2 * j] as u128 | ((pos[2 * j + 1] as u128) << 64),
            }
        })
        .collect();
    let sums = match meta.get("sums").map(String::as_str) {
        None => return Err(err(path, "metadata `sums` is missing")),
        Some("") => Vec::new(),
        Some(s) => s
            .split(',')
            .map(|v| meta_f64_bits(path, v, "sums"))
            .collect::<Result<_, _>>()?,
    };
    let get = |key: &str| -> Result<f64, CliError> {
        meta_f64_bits(
            path,
            meta.get(key)
                .ok_or_else(|| err(path, format!("metadata `{key}` is missing")))?,
            key,
        )
    };
    let tuned_at = match meta.get("tuned_at") {
        None => None,
        Some(_) => Some(meta_u64(path, &meta, "tuned_at")?),
    };
    let vector = |name: &str| -> Result<Vec<f64>, CliError> {
        let v = st
            .tensor(name)
            .map_err(|_| err(path, format!("tensor `{name}` is missing")))?;
        if v.dtype() != Dtype::F64 || v.shape().len() != 1 {
            return Err(err(path, format!("tensor `{name}` is not a vector of f64")));
        }
        Ok(v.data()
            .chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                f64::from_le_bytes(a)
            })
            .collect())
    };
    let (lambda_min, lambda_max, tuned_sigma, tuned_stiffness) = match tuned_at {
        None => (f64::NAN, f64::NAN, Vec::new(), Vec::new()),
        Some(_) => (
            get("lambda_min")?,
            get("lambda_max")?,
            vector("tuned_sigma")?,
            vector("tuned_stiffness")?,
        ),
    };
    let position = RunPosition {
        checkpoint: meta_u64(path, &meta, "checkpoint")?,
        epoch: meta_u64(path, &meta, "epoch")? as usize,
        batch_in_epoch: meta_u64(path, &meta, "batch_in_epoch")? as usize,
        sums,
        tau_a: get("tau_a")?,
        g: get("g")?,
        // Checkpoints written before runs could retune hold neither: the
        // configured values (NaN and 0 here) apply.
        dt: if meta.contains_key("dt") {
            get("dt")?
        } else {
            f64::NAN
        },
        substeps: if meta.contains_key("substeps") {
            meta_u64(path, &meta, "substeps")? as usize
        } else {
            0
        },
        tuned_at,
        lambda_min,
        lambda_max,
        tuned_sigma,
        tuned_stiffness,
    };
    Ok((state, RowStreams::from_snapshot(&positions), position, bank))
}

/// The files of a run folder.
pub struct RunFiles {
    pub dir: PathBuf,
}

impl RunFiles {
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.toml")
    }
    pub fn model(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.safetensors")
    }
    pub fn curve_csv(&self) -> PathBuf {
        self.dir.join("curve.csv")
    }
    pub fn curve_png(&self) -> PathBuf {
        self.dir.join("curve.png")
    }
}
