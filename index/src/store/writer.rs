//! Writes to an index directory: a full build, `add` (insert into the live graph, tombstone what it
//! replaces or removes), the rebuild of the live set and compaction. Each takes the writer lock and
//! commits a new version.

use twotower_data::progress::Progress;

use super::{check_ids, same_bits, AddReport, IndexDir, IndexInfo, RebuildReport, VersionId};
use crate::error::Result;
use crate::hnsw::{GraphBuilder, HnswIndex, HnswParams};
use crate::metric::normalize_rows;

impl IndexDir {
    /// Builds a new version from scratch over `ids` and row-major `vectors` (ids.len() × dim),
    /// commits it and points `CURRENT` at it. The previous version stays untouched and loadable
    /// until [`Self::gc`] removes it. Vectors are normalised; ids must be unique and non-empty.
    /// The graph is built by the native builder.
    pub fn build_version(
        &self,
        ids: &[String],
        vectors: &[f32],
        dim: usize,
        params: HnswParams,
        model_fingerprint: &str,
        progress: &dyn Progress,
    ) -> Result<VersionId> {
        self.build_version_with(
            ids,
            vectors,
            dim,
            params,
            GraphBuilder::Native,
            model_fingerprint,
            progress,
        )
    }

    /// [`Self::build_version`] with the given graph builder. [`GraphBuilder::HnswRs`] writes a
    /// format-1 version (an hnsw_rs dump), as builds before the native builder did; `add_items`
    /// keeps a version's builder, `compact` rebuilds natively.
    #[allow(clippy::too_many_arguments)]
    pub fn build_version_with(
        &self,
        ids: &[String],
        vectors: &[f32],
        dim: usize,
        params: HnswParams,
        builder: GraphBuilder,
        model_fingerprint: &str,
        progress: &dyn Progress,
    ) -> Result<VersionId> {
        params.validate()?;
        check_ids(ids)?;
        self.check_root()?;
        let rows = normalize_rows(dim, vectors, Some(ids))?;
        let hnsw = HnswIndex::build_normalized(dim, &rows, params, builder, progress)?;
        let info = IndexInfo::fresh(model_fingerprint, dim, params, ids.len());
        let lock = self.lock_writers()?;
        lock.commit_version(&hnsw, ids, &rows, &[], info, progress)
    }

    /// Rebuilds the graph over the live rows of `CURRENT` only (drops tombstones), keeping their
    /// stored vectors, with new parameters if given: the compaction step after many `add`s,
    /// without needing the model.
    pub fn compact(&self, params: Option<HnswParams>, progress: &dyn Progress) -> Result<VersionId> {
        let lock = self.lock_writers()?;
        let cur = self.open_current_verified(None)?;
        let fingerprint = cur.info.model_fingerprint.clone();
        let dim = cur.info.dim;
        Ok(lock
            .rebuild(&cur, &[], &[], dim, params, &fingerprint, progress)?
            .version)
    }

    /// Rebuilds `CURRENT`'s live set, exactly: its live items and nothing else, tombstones
    /// dropped, each with a fresh vector where the caller gives one (`ids`/`vectors`, row-major,
    /// `dim` wide, e.g. the model's re-embedding of its catalogue) and its stored vector
    /// otherwise. Stored vectors are only kept when `model_fingerprint` is the model the version
    /// was built by; with another model every live item needs a vector, else
    /// [`Error::MissingVectors`] names those without one and nothing is written. Ids given that
    /// are not live (removed, or never added) are ignored and listed in the report. The live set
    /// is read under the writer lock, so an `add` committed meanwhile is not lost. `params`
    /// defaults to the version's.
    #[allow(clippy::too_many_arguments)]
    pub fn rebuild_live(
        &self,
        ids: &[String],
        vectors: &[f32],
        dim: usize,
        params: Option<HnswParams>,
        model_fingerprint: &str,
        progress: &dyn Progress,
    ) -> Result<RebuildReport> {
        check_ids(ids)?;
        let given = normalize_rows(dim, vectors, Some(ids))?;
        let lock = self.lock_writers()?;
        let cur = self.open_current_verified(None)?;
        lock.rebuild(&cur, ids, &given, dim, params, model_fingerprint, progress)
    }

    /// Inserts new or changed items into the graph of `CURRENT` and commits the result as a new
    /// version: an id already live with another vector gets a new row and its old row is
    /// tombstoned; one whose normalised vector is bit-identical to its live row is skipped
    /// (`unchanged`); ids in `remove` are tombstoned, and win over `ids` (an id in both is removed,
    /// not added). When nothing changes no version is written. Results never show tombstoned rows;
    /// [`Self::compact`] or [`Self::rebuild_live`] drops them.
    pub fn add_items(
        &self,
        ids: &[String],
        vectors: &[f32],
        remove: &[String],
        model_fingerprint: &str,
        progress: &dyn Progress,
    ) -> Result<AddReport> {
        check_ids(ids)?;
        let lock = self.lock_writers()?;
        let mut cur = self.open_current_verified(Some(model_fingerprint))?;
        let dim = cur.info.dim;
        let given = normalize_rows(dim, vectors, Some(ids))?;
        let mut report = AddReport::none(cur.version);
        for id in remove {
            match cur.rows_by_id.remove(&cur.ids, id.as_str()) {
                Some(r) => {
                    cur.tombstones[r as usize] = true;
                    report.removed += 1;
                }
                None => report.not_found.push(id.clone()),
            }
        }
        let removed: std::collections::HashSet<&str> = remove.iter().map(String::as_str).collect();
        let mut new_ids = Vec::new();
        let mut new_rows = Vec::new();
        for (id, v) in ids.iter().zip(given.chunks_exact(dim)) {
            if removed.contains(id.as_str()) {
                continue;
            }
            if let Some(old) = cur.rows_by_id.get(&cur.ids, id.as_str()) {
                if same_bits(cur.vector(old), v) {
                    report.unchanged += 1;
                    continue;
                }
            }
            new_ids.push(id.clone());
            new_rows.extend_from_slice(v);
        }
        if new_ids.is_empty() && report.removed == 0 {
            return Ok(report);
        }
        let first = cur.hnsw.insert_normalized(&new_rows, progress)?;
        for (i, id) in new_ids.into_iter().enumerate() {
            let row = first + i as u32;
            cur.ids.push(id);
            cur.tombstones.push(false);
            match cur.rows_by_id.insert(&cur.ids, row) {
                Some(old) => {
                    cur.tombstones[old as usize] = true;
                    report.replaced += 1;
                }
                None => report.added += 1,
            }
        }
        let dead: Vec<u32> = (0..cur.tombstones.len() as u32)
            .filter(|&r| cur.tombstones[r as usize])
            .collect();
        let info = IndexInfo {
            rows: cur.ids.len(),
            live: cur.ids.len() - dead.len(),
            parent: Some(cur.version),
            ..cur.info.clone()
        };
        // The graph holds every row, the inserted ones included: its copy is what gets written.
        let rows = &cur.hnsw.flat().rows;
        debug_assert_eq!(rows.len(), cur.ids.len() * cur.info.dim);
        report.version = lock.commit_version(&cur.hnsw, &cur.ids, rows, &dead, info, progress)?;
        report.committed = true;
        Ok(report)
    }

    /// Writes `CURRENT`'s version again as a new version in this build's layout (today: with the
    /// `vectors.f32` an open maps), after verifying every byte of it: same ids, vectors, tombstones
    /// and graph, so every search answers as before. `None` when it already has that layout.
    pub fn upgrade(&self, progress: &dyn Progress) -> Result<Option<VersionId>> {
        let lock = self.lock_writers()?;
        let cur = self.open_current_verified(None)?;
        if cur.manifest.format_version != super::INDEX_FORMAT_VERSION
            || cur.manifest.files.contains_key(crate::vectors_file::VECTORS_FILE)
        {
            return Ok(None);
        }
        let dead: Vec<u32> = (0..cur.tombstones.len() as u32)
            .filter(|&r| cur.tombstones[r as usize])
            .collect();
        let info = IndexInfo {
            parent: Some(cur.version),
            ..cur.info.clone()
        };
        let rows = &cur.hnsw.flat().rows;
        lock.commit_version(&cur.hnsw, &cur.ids, rows, &dead, info, progress)
            .map(Some)
    }
}
