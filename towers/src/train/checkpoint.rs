//! A run's checkpoint (`checkpoint.json` + `checkpoint.safetensors`: tables, optimizer moments,
//! progress) and the model directory it is committed with after every epoch, so `--resume`
//! continues to the same result an uninterrupted run reaches.

use std::path::Path;

use serde::{Deserialize, Serialize};
use twotower_data::{Manifest, StagingDir};

use super::step::Trainer;
use super::EpochMetrics;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::mem::huge_copy;
use crate::model::{read_meta, ModelFiles, TrainingSummary, MODEL_FILES, MODEL_FORMAT_VERSION, MODEL_KIND};
use crate::tensor_file::{TensorReader, TensorWriter};

/// Where training stands after a completed epoch (`checkpoint.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TrainState {
    /// Epochs completed.
    pub(crate) epochs_done: usize,
    /// Global optimizer steps taken.
    pub(crate) step: u64,
    /// Best validation metric so far (None without validation).
    pub(crate) best_metric: Option<f64>,
    /// Epoch (1-based) that produced the saved weights.
    pub(crate) best_epoch: usize,
    /// Epochs since the best one.
    pub(crate) bad_epochs: usize,
    /// Training stopped (early stopping or all epochs done).
    pub(crate) finished: bool,
    /// Wall-clock training seconds so far.
    pub(crate) seconds: f64,
}

impl Trainer<'_> {
    pub(super) fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        let mut w = TensorWriter::default();
        for ((t, s), spec) in self
            .net
            .tables
            .iter()
            .zip(&self.sparse)
            .zip(&self.net.layout.tables)
        {
            w.f32(&format!("table.{}", t.name), &[t.rows, t.dim], &t.weights);
            w.f32(&format!("opt.{}.a", spec.name), &[s.a.len()], &s.a);
            w.f32(&format!("opt.{}.b", spec.name), &[s.b.len()], &s.b);
        }
        for p in &self.net.dense {
            w.f32(&format!("dense.{}", p.name), &p.shape, &p.value);
            w.f32(&format!("dense_m.{}", p.name), &p.shape, &p.m);
            w.f32(&format!("dense_v.{}", p.name), &p.shape, &p.v);
        }
        if self.config.loss.learn_temperature {
            w.f32("log_inv_temperature", &[3], &self.log_inv_t);
        }
        w.write(&dir.join("checkpoint.safetensors"))
    }

    pub(super) fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        let r = TensorReader::open(path)?;
        for ((t, s), spec) in self
            .net
            .tables
            .iter_mut()
            .zip(&mut self.sparse)
            .zip(&self.net.layout.tables)
        {
            // Back on huge pages, like freshly built tables (see `mem`).
            t.weights = huge_copy(&r.f32(&format!("table.{}", t.name), &[t.rows, t.dim])?);
            s.a = huge_copy(&r.f32(&format!("opt.{}.a", spec.name), &[s.a.len()])?);
            s.b = huge_copy(&r.f32(&format!("opt.{}.b", spec.name), &[s.b.len()])?);
        }
        for p in &mut self.net.dense {
            p.value = r.f32(&format!("dense.{}", p.name), &p.shape)?;
            p.m = r.f32(&format!("dense_m.{}", p.name), &p.shape)?;
            p.v = r.f32(&format!("dense_v.{}", p.name), &p.shape)?;
        }
        if self.config.loss.learn_temperature {
            let t = r.f32("log_inv_temperature", &[3])?;
            self.log_inv_t.copy_from_slice(&t);
        }
        Ok(())
    }
}

/// What `--resume` continues from: the checkpoint's progress (the best epoch's weights stay in the
/// directory's `weights.safetensors`).
pub(super) struct Resumed {
    pub(super) state: TrainState,
    pub(super) training: TrainingSummary,
    pub(super) epochs: Vec<EpochMetrics>,
}

/// Reads the checkpoint in `out` into `trainer` when there is one (None: nothing was started there),
/// after checking it was made with the same configuration and dataset.
pub(super) fn load_resume_state(
    out: &Path,
    config: &Config,
    dataset_fingerprint: &str,
    trainer: &mut Trainer<'_>,
) -> Result<Option<Resumed>> {
    let sp = out.join("checkpoint.json");
    if !sp.exists() {
        if out.join("model.json").exists() {
            return Err(Error::model(
                out,
                "nothing to resume: it holds a finished model without a checkpoint (an ensemble, \
                 assembled from its members; train without --resume to start over)",
            ));
        }
        return Ok(None);
    }
    // The directory's files are checked against its manifest, as a load would, without building
    // a second copy of the model's tables beside the trainer's.
    Manifest::read(out, MODEL_KIND, MODEL_FORMAT_VERSION)?.verify(out)?;
    let prev = read_meta(out)?;
    if prev.config != *config {
        return Err(Error::model(
            out,
            "cannot resume: the configuration differs from the checkpoint's",
        ));
    }
    if prev.dataset_fingerprint != dataset_fingerprint {
        return Err(Error::model(
            out,
            "cannot resume: the checkpoint was trained on another dataset",
        ));
    }
    let text = std::fs::read_to_string(&sp).map_err(|e| Error::io(&sp, e))?;
    let state: TrainState =
        serde_json::from_str(&text).map_err(|e| Error::model(&sp, format!("cannot parse: {e}")))?;
    trainer.load_checkpoint(&out.join("checkpoint.safetensors"))?;
    let training = prev.training;
    let mp = out.join("metrics.jsonl");
    let text = std::fs::read_to_string(&mp).map_err(|e| Error::io(&mp, e))?;
    let mut epochs = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        epochs.push(serde_json::from_str(line).map_err(|e| Error::model(&mp, format!("bad line: {e}")))?);
    }
    Ok(Some(Resumed {
        state,
        training,
        epochs,
    }))
}

/// Commits `out` with `model` (the best epoch so far), the run's checkpoint and its metrics.
pub(super) fn save_model_dir(
    out: &Path,
    model: &ModelFiles<'_>,
    trainer: &Trainer<'_>,
    state: &TrainState,
    epochs: &[EpochMetrics],
) -> Result<()> {
    commit_model_dir(out, model, epochs, |dir| {
        trainer.save_checkpoint(dir)?;
        let json = serde_json::to_vec_pretty(state).map_err(|e| Error::model(dir, e.to_string()))?;
        twotower_data::artifact::write_file_atomic(&dir.join("checkpoint.json"), &json)?;
        Ok(vec!["checkpoint.json", "checkpoint.safetensors"])
    })
}

/// Adds the file `name` holding `bytes` to the committed model directory `dir` (a hidden run about
/// to be swapped in) and lists it, with its checksum, in the manifest.
pub(super) fn add_model_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    twotower_data::artifact::write_file_atomic(&dir.join(name), bytes)?;
    let mut manifest = Manifest::read(dir, MODEL_KIND, MODEL_FORMAT_VERSION)?;
    manifest.add_file(dir, name)?;
    manifest.write(dir)?;
    Ok(())
}

/// Writes `model`, `metrics.jsonl`, whatever `extra` adds (returning the names it wrote) and the
/// manifest over all of them into a staging directory, then swaps it in as `out`.
pub(super) fn commit_model_dir(
    out: &Path,
    model: &ModelFiles<'_>,
    epochs: &[EpochMetrics],
    extra: impl FnOnce(&Path) -> Result<Vec<&'static str>>,
) -> Result<()> {
    let staging = StagingDir::new(out)?;
    let dir = staging.path();
    model.write(dir)?;
    let extra_files = extra(dir)?;
    let mut lines = String::new();
    for e in epochs {
        lines.push_str(&serde_json::to_string(e).map_err(|e| Error::model(dir, e.to_string()))?);
        lines.push('\n');
    }
    twotower_data::artifact::write_file_atomic(&dir.join("metrics.jsonl"), lines.as_bytes())?;
    let mut manifest = Manifest::new(MODEL_KIND, MODEL_FORMAT_VERSION);
    for f in MODEL_FILES
        .into_iter()
        .chain(["metrics.jsonl"])
        .chain(extra_files)
    {
        manifest.add_file(dir, f)?;
    }
    manifest.counts.insert("users".into(), model.users.len() as u64);
    manifest.counts.insert("items".into(), model.items.len() as u64);
    manifest.counts.insert("dim".into(), model.dim() as u64);
    manifest.extra = serde_json::json!({ "dataset_fingerprint": model.meta.dataset_fingerprint });
    manifest.write(dir)?;
    staging.commit()?;
    Ok(())
}
