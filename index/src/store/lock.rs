//! The writer lock, and the commit of a complete version under it (staging directory, rename,
//! `CURRENT` swap) and the rebuild of a live set.

use std::collections::HashMap;
use std::fs;

use twotower_data::artifact::{write_file_atomic, Manifest, StagingDir};
use twotower_data::progress::Progress;

use super::{
    required_files, write_json, IndexDir, IndexInfo, IndexVersion, RebuildReport, VersionId, CURRENT_FILE,
    GRAPH_BASENAME, HNSW_RS_FORMAT_VERSION, IDS_FILE, INDEX_FORMAT_VERSION, INDEX_KIND, NATIVE_GRAPH_FILE,
    TOMBSTONES_FILE,
};
use crate::embeddings::{write_embeddings, EMBEDDINGS_FILE};
use crate::error::{Error, Result};
use crate::graph_file;
use crate::hnsw::{GraphBuilder, HnswIndex, HnswParams};
use crate::vectors_file::{self, VECTORS_FILE};

/// Held by a writer from reading `CURRENT` to moving it: two writers at once (a rebuild beside an
/// `add`, say) must neither claim the same version number nor both derive from one parent. An OS file
/// lock on `LOCK`, so a writer that is killed releases it.
pub(super) struct WriterLock<'a> {
    pub(super) dir: &'a IndexDir,
    pub(super) _file: fs::File,
}

impl WriterLock<'_> {
    /// Writes a complete version into a staging directory, renames it into `versions/NNNN`, then
    /// moves `CURRENT`. Any failure before the last step leaves `CURRENT` where it was.
    pub(super) fn commit_version(
        &self,
        hnsw: &HnswIndex,
        ids: &[String],
        rows: &[f32],
        tombstones: &[u32],
        info: IndexInfo,
        progress: &dyn Progress,
    ) -> Result<VersionId> {
        let version = self.dir.next_version()?;
        let staging = StagingDir::new(self.dir.version_path(version))?;
        let dir = staging.path().to_path_buf();
        progress.start("writing index version", None);
        progress.set_message("graph");
        let format = match hnsw.builder() {
            GraphBuilder::Native => {
                graph_file::write(hnsw.flat(), &dir.join(NATIVE_GRAPH_FILE))?;
                INDEX_FORMAT_VERSION
            }
            GraphBuilder::HnswRs => {
                hnsw.dump(&dir, GRAPH_BASENAME)?;
                HNSW_RS_FORMAT_VERSION
            }
        };
        progress.set_message("ids and embeddings");
        write_json(&dir.join(IDS_FILE), ids)?;
        write_json(&dir.join(TOMBSTONES_FILE), tombstones)?;
        write_embeddings(&dir.join(EMBEDDINGS_FILE), ids, rows, info.dim)?;
        let mut files = required_files(format);
        if format == INDEX_FORMAT_VERSION {
            // What an open maps instead of decoding embeddings.parquet.
            vectors_file::write(&dir.join(VECTORS_FILE), rows, info.dim)?;
            files.push(VECTORS_FILE.to_string());
        }
        progress.set_message("checksums");
        let mut m = Manifest::new(INDEX_KIND, format);
        for f in files {
            m.add_file(&dir, &f)?;
        }
        m.counts.insert("rows".into(), info.rows as u64);
        m.counts.insert("live".into(), info.live as u64);
        m.counts.insert("tombstones".into(), tombstones.len() as u64);
        m.counts.insert("dim".into(), info.dim as u64);
        m.extra = serde_json::to_value(&info).map_err(|e| Error::Write {
            path: dir.join("manifest.json"),
            problem: e.to_string(),
        })?;
        m.write(&dir)?;
        staging.commit()?;
        write_file_atomic(
            &self.dir.root.join(CURRENT_FILE),
            format!("{version}\n").as_bytes(),
        )?;
        progress.finish();
        Ok(version)
    }

    /// [`IndexDir::rebuild_live`] of `cur` (opened under this lock) with `given` normalised rows.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn rebuild(
        &self,
        cur: &IndexVersion,
        ids: &[String],
        given: &[f32],
        dim: usize,
        params: Option<HnswParams>,
        model_fingerprint: &str,
        progress: &dyn Progress,
    ) -> Result<RebuildReport> {
        let params = params.unwrap_or(cur.info.hnsw);
        params.validate()?;
        let by_id: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        let keep_stored = cur.info.model_fingerprint == model_fingerprint && cur.info.dim == dim;
        let mut report = RebuildReport {
            version: cur.version,
            parent: cur.version,
            rows: 0,
            reembedded: 0,
            kept: 0,
            not_live: Vec::new(),
        };
        let mut new_ids = Vec::with_capacity(cur.live_len());
        let mut rows = Vec::with_capacity(cur.live_len() * dim);
        let mut missing = Vec::new();
        for r in (0..cur.ids.len() as u32).filter(|&r| cur.is_live(r)) {
            let id = &cur.ids[r as usize];
            if let Some(&i) = by_id.get(id.as_str()) {
                rows.extend_from_slice(&given[i * dim..(i + 1) * dim]);
                report.reembedded += 1;
            } else if keep_stored {
                rows.extend_from_slice(cur.vector(r));
                report.kept += 1;
            } else {
                missing.push(id.clone());
                continue;
            }
            new_ids.push(id.clone());
        }
        if !missing.is_empty() {
            return Err(Error::MissingVectors {
                dir: self.dir.root.clone(),
                version: cur.version.to_string(),
                models: format!(
                    "model {model_fingerprint} was given, the version was built by model {}",
                    cur.info.model_fingerprint
                ),
                count: missing.len(),
                ids: crate::error::list_ids(&missing, 20),
            });
        }
        report.not_live = ids
            .iter()
            .filter(|id| cur.row_of(id).is_none())
            .cloned()
            .collect();
        let hnsw = HnswIndex::build_normalized(dim, &rows, params, GraphBuilder::Native, progress)?;
        let info = IndexInfo::fresh(model_fingerprint, dim, params, new_ids.len());
        report.rows = new_ids.len();
        report.version = self.commit_version(&hnsw, &new_ids, &rows, &[], info, progress)?;
        Ok(report)
    }
}
