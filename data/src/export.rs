//! `data export`: a dataset's tables as plain Parquet for other engines (DuckDB, Spark, polars,
//! pandas): `interactions.parquet` (user Utf8, item Utf8, weight Float32, ts Int64 epoch seconds),
//! `items.parquet`, `users.parquet`, and `train.parquet`/`test.parquet` after a split. The output
//! directory appears whole or not at all (written in a [`StagingDir`], swapped into place), and a
//! `_twotower_export.json` marker (ignored by those readers: its name starts with `_`) says where it
//! came from.

use std::path::Path;

use serde::Serialize;

use crate::artifact::{write_file_atomic, Manifest, StagingDir, MANIFEST_FILE};
use crate::dataset::{DATASET_FORMAT_VERSION, DATASET_KIND};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// Name of the marker file of an export directory.
pub const EXPORT_MARKER: &str = "_twotower_export.json";

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// The Parquet files written, by name.
    pub files: Vec<String>,
    /// Rows of interactions.parquet.
    pub interactions: u64,
    /// The dataset's fingerprint.
    pub fingerprint: String,
}

/// Refuses to replace `out` unless it is absent, empty, or an earlier export.
fn check_replaceable(out: &Path) -> Result<()> {
    if !out.exists() {
        return Ok(());
    }
    if out.is_dir() {
        let mut entries = std::fs::read_dir(out).map_err(|e| Error::io(out, e))?;
        if entries.next().is_none() || out.join(EXPORT_MARKER).is_file() {
            return Ok(());
        }
    }
    Err(Error::InvalidArgument(format!(
        "refusing to replace {}: it exists and is not a twotower export (choose another --out)",
        out.display()
    )))
}

/// Writes the Parquet tables of the dataset at `dataset` into the directory `out` (checksums are
/// verified first, so a corrupt dataset is never exported).
pub fn export(dataset: &Path, out: &Path, progress: &dyn Progress) -> Result<ExportReport> {
    let m = Manifest::read(dataset, DATASET_KIND, DATASET_FORMAT_VERSION)?;
    m.verify(dataset)?;
    check_replaceable(out)?;
    if std::fs::canonicalize(dataset).ok() == std::fs::canonicalize(out).ok() {
        return Err(Error::InvalidArgument(format!(
            "--out {} is the dataset itself",
            out.display()
        )));
    }
    let files: Vec<String> = m
        .files
        .keys()
        .filter(|f| f.ends_with(".parquet") && f.as_str() != MANIFEST_FILE)
        .cloned()
        .collect();
    let total: u64 = files.iter().map(|f| m.files[f].bytes).sum();
    progress.start("exporting", Some(total));
    let stage = StagingDir::new(out)?;
    for f in &files {
        let from = dataset.join(f);
        let to = stage.path().join(f);
        std::fs::copy(&from, &to).map_err(|e| Error::io(&from, e))?;
        progress.inc(m.files[f].bytes);
    }
    let marker = serde_json::json!({
        "exported_from": std::fs::canonicalize(dataset).unwrap_or_else(|_| dataset.to_path_buf()),
        "dataset_fingerprint": m.fingerprint(),
        "dataset_created_at": m.created_at,
        "files": files,
        "counts": m.counts,
        "columns": {
            "interactions": "user Utf8, item Utf8, weight Float32, ts Int64 (epoch seconds, or the row's position when the source had no time)",
            "items": "item Utf8, title Utf8, genres List<Utf8>, then categorical Utf8 columns",
            "users": "user Utf8, then categorical Utf8 columns",
        },
    });
    let text = serde_json::to_string_pretty(&marker).map_err(|e| Error::invalid(out, e.to_string()))?;
    write_file_atomic(&stage.path().join(EXPORT_MARKER), text.as_bytes())?;
    stage.commit()?;
    progress.finish();
    Ok(ExportReport {
        interactions: m.counts.get("interactions").copied().unwrap_or(0),
        files,
        fingerprint: m.fingerprint(),
    })
}
