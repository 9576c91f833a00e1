//! Reading an index directory: a version opened (manifest, model fingerprint, sizes and headers,
//! the vectors and graph mapped; or every byte verified, for `index check` and writers) into an
//! [`IndexVersion`], and its searches.

use std::fmt;
use std::path::{Path, PathBuf};

use twotower_data::artifact::Manifest;

use super::live::LiveIds;
use super::{
    read_json, required_files, IndexDir, IndexInfo, VersionId, GRAPH_BASENAME, HNSW_RS_FORMAT_VERSION,
    IDS_FILE, INDEX_FORMAT_VERSION, INDEX_KIND, NATIVE_GRAPH_FILE, TOMBSTONES_FILE,
};
use crate::backend::{
    check_batch, filter_of, Found, FoundKey, ItemFilter, ItemKey, ItemSearch, SearchSpec, VersionFacts,
};
use crate::embeddings::{read_embeddings, EMBEDDINGS_FILE};
use crate::error::{Error, Result};
use crate::exact::ExactIndex;
use crate::graph_file::Check;
use crate::hnsw::HnswIndex;
use crate::rows::ItemRows;
use crate::search::{Hit, RowFilter, VectorIndex};
use crate::vectors_file::{self, VECTORS_FILE};
use rayon::prelude::*;
use twotower_data::mapped::Slab;
use twotower_data::progress::Progress;

/// How much of a version an open checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    /// What serving does on every open: the manifest (kind, format, model, the files it must
    /// list), every listed file's presence and size, the checksums of the files it reads
    /// (`ids.json`, `tombstones.json`), the vectors file's header and size, and the graph's
    /// header, section sizes, levels and upper layers. The vectors and the graph's layer 0 are
    /// mapped, not read; `embeddings.parquet` is not read at all.
    Structure,
    /// Everything: every file's sha256, every layer-0 list, and `embeddings.parquet` against the
    /// mapped vectors (same ids, same bits). What `index check` and every writer deriving a new
    /// version from this one do.
    Full,
}

impl IndexDir {
    /// Opens the version `CURRENT` names for serving (see [`IndexDir::open_version`]). With
    /// `expected_model`, an index built from another model's embeddings is refused.
    pub fn open_current(&self, expected_model: Option<&str>) -> Result<IndexVersion> {
        let v = self.current()?;
        self.open_version(v, expected_model)
    }

    /// Opens version `v` for serving: the manifest, the model fingerprint, every file's size and
    /// every header are checked, and the vectors and graph are mapped rather than read, so a
    /// truncated, foreign or newer file is an error naming it. Checksums are not recomputed here:
    /// they are verified when a version is committed, by [`IndexDir::verify_version`] (`index
    /// check`), and by every writer that derives a version from this one. A version written before
    /// `vectors.f32` existed has no file to map and is verified and read whole, as before.
    pub fn open_version(&self, version: VersionId, expected_model: Option<&str>) -> Result<IndexVersion> {
        self.open_checked(version, expected_model, Verify::Structure)
    }

    /// Opens `CURRENT`'s version after verifying every byte of it (checksums, every graph list,
    /// `embeddings.parquet` against `vectors.f32`): what a writer does before deriving a new
    /// version from it, so damage is never carried forward.
    pub fn open_current_verified(&self, expected_model: Option<&str>) -> Result<IndexVersion> {
        let v = self.current()?;
        self.open_checked(v, expected_model, Verify::Full)
    }

    /// Verifies every byte of version `v` (see [`IndexDir::open_current_verified`]); the error
    /// names the damaged file. `index check` runs this.
    pub fn verify_version(&self, version: VersionId) -> Result<()> {
        self.open_checked(version, None, Verify::Full).map(|_| ())
    }

    fn open_checked(
        &self,
        version: VersionId,
        expected_model: Option<&str>,
        verify: Verify,
    ) -> Result<IndexVersion> {
        let dir = self.version_path(version);
        if !dir.is_dir() {
            return Err(Error::corrupt(&dir, format!("version {version} does not exist")));
        }
        let manifest = Manifest::read(&dir, INDEX_KIND, INDEX_FORMAT_VERSION)?;
        let mpath = dir.join("manifest.json");
        let info: IndexInfo = serde_json::from_value(manifest.extra.clone())
            .map_err(|e| Error::corrupt(&mpath, format!("index description: {e}")))?;
        if let Some(expected) = expected_model {
            if info.model_fingerprint != expected {
                return Err(Error::ModelMismatch {
                    dir: self.root.clone(),
                    version: version.to_string(),
                    found: info.model_fingerprint,
                    expected: expected.to_string(),
                });
            }
        }
        let format = manifest.format_version;
        if format != INDEX_FORMAT_VERSION && format != HNSW_RS_FORMAT_VERSION {
            return Err(Error::corrupt(
                &mpath,
                format!("unknown index format version {format}"),
            ));
        }
        for f in required_files(format) {
            if !manifest.files.contains_key(&f) {
                return Err(Error::corrupt(&mpath, format!("does not list {f}")));
            }
        }
        if info.dim == 0 || info.live > info.rows {
            return Err(Error::corrupt(&mpath, "inconsistent dim/rows/live"));
        }
        let mapped = format == INDEX_FORMAT_VERSION && manifest.files.contains_key(VECTORS_FILE);
        let full = verify == Verify::Full || !mapped;
        if full {
            manifest.verify(&dir)?;
        } else {
            // ids.json and tombstones.json are read: checksummed. The vectors and the graph are
            // mapped and embeddings.parquet is not read: sizes (and below, headers) only.
            manifest.verify_except(&dir, &[VECTORS_FILE, NATIVE_GRAPH_FILE, EMBEDDINGS_FILE])?;
        }
        let ids: Vec<String> = read_json(&dir.join(IDS_FILE))?;
        let dead: Vec<u32> = read_json(&dir.join(TOMBSTONES_FILE))?;
        if ids.len() != info.rows {
            return Err(Error::corrupt(
                dir.join(IDS_FILE),
                format!("{} ids, manifest says {} rows", ids.len(), info.rows),
            ));
        }
        let rows: Slab<f32> = if mapped {
            let vpath = dir.join(VECTORS_FILE);
            let rows = vectors_file::open(&vpath, info.dim, ids.len())?;
            if full {
                let epath = dir.join(EMBEDDINGS_FILE);
                let (emb_ids, emb_rows) = read_embeddings(&epath, info.dim)?;
                if emb_ids != ids || !super::same_bits(&emb_rows, &rows) {
                    return Err(Error::corrupt(
                        &epath,
                        format!("its ids or vectors differ from {IDS_FILE} and {VECTORS_FILE}"),
                    ));
                }
            }
            rows
        } else {
            let epath = dir.join(EMBEDDINGS_FILE);
            let (emb_ids, rows) = read_embeddings(&epath, info.dim)?;
            if emb_ids != ids {
                return Err(Error::corrupt(
                    &epath,
                    format!(
                        "{} rows and {} ids, manifest says {}",
                        emb_ids.len(),
                        ids.len(),
                        info.rows
                    ),
                ));
            }
            rows.into()
        };
        let mut tombstones = vec![false; ids.len()];
        for &r in &dead {
            *tombstones.get_mut(r as usize).ok_or_else(|| {
                Error::corrupt(dir.join(TOMBSTONES_FILE), format!("row {r} out of range"))
            })? = true;
        }
        let mut rows_by_id = LiveIds::with_capacity(ids.len());
        for (r, id) in ids.iter().enumerate() {
            if !tombstones[r] && rows_by_id.insert(&ids, r as u32).is_some() {
                return Err(Error::corrupt(
                    dir.join(IDS_FILE),
                    format!("live id {id:?} appears twice"),
                ));
            }
        }
        if rows_by_id.len() != info.live {
            return Err(Error::corrupt(&mpath, "live count disagrees with tombstones"));
        }
        // The graph holds the vectors once; exact search and point reads use its copy.
        let hnsw = if format == HNSW_RS_FORMAT_VERSION {
            let hnsw = HnswIndex::load(&dir, GRAPH_BASENAME, info.dim, ids.len(), info.hnsw)?;
            if !super::same_bits(&hnsw.flat().rows, &rows) {
                return Err(Error::corrupt(
                    dir.join(format!("{GRAPH_BASENAME}.hnsw.data")),
                    "its vectors differ from embeddings.parquet",
                ));
            }
            hnsw
        } else {
            let check = if full { Check::Full } else { Check::Structure };
            HnswIndex::load_native(&dir.join(NATIVE_GRAPH_FILE), info.dim, rows, info.hnsw, check)?
        };
        Ok(IndexVersion {
            version,
            dir,
            info,
            manifest,
            ids,
            rows_by_id,
            tombstones,
            hnsw,
        })
    }
}

/// One loaded, immutable version: graph, exact index, ids and tombstones.
///
/// As a [`VectorIndex`] it searches the graph and never returns tombstoned rows.
pub struct IndexVersion {
    pub(super) version: VersionId,
    pub(super) dir: PathBuf,
    pub(super) info: IndexInfo,
    pub(super) manifest: Manifest,
    pub(super) ids: Vec<String>,
    pub(super) rows_by_id: LiveIds,
    pub(super) tombstones: Vec<bool>,
    pub(super) hnsw: HnswIndex,
}

impl fmt::Debug for IndexVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndexVersion")
            .field("version", &self.version)
            .field("dir", &self.dir)
            .field("info", &self.info)
            .finish()
    }
}

impl IndexVersion {
    /// Which version this is.
    pub fn version(&self) -> VersionId {
        self.version
    }
    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Model fingerprint, dimension, parameters and counts.
    pub fn info(&self) -> &IndexInfo {
        &self.info
    }
    /// The verified manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// Item id of `row` (tombstoned rows keep their old id).
    pub fn id(&self, row: u32) -> &str {
        &self.ids[row as usize]
    }
    /// All row ids, tombstoned rows included.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }
    /// The live row of an item id.
    pub fn row_of(&self, id: &str) -> Option<u32> {
        self.rows_by_id.get(&self.ids, id)
    }
    /// `false` for tombstoned (replaced or removed) rows.
    pub fn is_live(&self, row: u32) -> bool {
        !self.tombstones.get(row as usize).copied().unwrap_or(true)
    }
    /// Number of rows visible in results.
    pub fn live_len(&self) -> usize {
        self.rows_by_id.len()
    }
    /// True when the vectors and the graph's layer 0 are views of the version's mapped files
    /// (every version written with `vectors.f32`), not copies in this process's memory.
    pub fn is_mapped(&self) -> bool {
        let flat = self.hnsw.flat();
        flat.rows.is_mapped() && (flat.len == 0 || flat.links0.is_mapped())
    }

    /// The graph (it does not know about tombstones: filter with [`Self::is_live`]).
    pub fn hnsw(&self) -> &HnswIndex {
        &self.hnsw
    }
    /// Exact search over the same rows (tombstoned ones included), on the graph's copy of them.
    pub fn exact(&self) -> ExactIndex<&[f32]> {
        ExactIndex::borrowed(self.info.dim, &self.hnsw.flat().rows)
    }
    /// Normalised vector of `row`.
    pub fn vector(&self, row: u32) -> &[f32] {
        self.hnsw.flat().row(row)
    }

    /// Live item ids, in row order: the live set a rebuild keeps.
    pub fn live_ids(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.ids.len() as u32)
            .filter(|&r| self.is_live(r))
            .map(|r| self.id(r))
    }

    /// The candidate list a search with `spec` walks.
    fn ef_of(&self, spec: SearchSpec) -> usize {
        spec.ef.unwrap_or(self.hnsw.params().ef_search).max(spec.k)
    }

    /// One query of [`ItemSearch::search_batch`], on the calling thread.
    fn search_one(&self, q: &[f32], spec: SearchSpec, f: &ItemFilter<'_>) -> Result<Vec<Found>> {
        let pred = |r: u32| f.keeps(ItemKey::Row(r));
        let rows: Option<RowFilter<'_>> = f.keep.is_some().then_some(&pred);
        let hits = if spec.exact {
            self.search_exact(q, spec.k, rows)?
        } else {
            VectorIndex::search_with_ef(self, q, spec.k, self.ef_of(spec), rows)?
        };
        Ok(found(hits))
    }

    /// Brute-force search, live rows only: exact answers for small catalogues and very selective
    /// filters (what [`ItemSearch`] does with [`SearchSpec::exact`]).
    pub fn search_exact(&self, query: &[f32], k: usize, filter: Option<RowFilter<'_>>) -> Result<Vec<Hit>> {
        self.with_live_filter(filter, |f| self.exact().search(query, k, f))
    }

    /// Runs `f` with the caller's filter combined with the tombstone filter (none when nothing is dead).
    pub(crate) fn with_live_filter<R>(
        &self,
        filter: Option<RowFilter<'_>>,
        f: impl FnOnce(Option<RowFilter<'_>>) -> R,
    ) -> R {
        if self.live_len() == self.ids.len() {
            return f(filter);
        }
        let live = |r: u32| self.is_live(r) && filter.is_none_or(|g| g(r));
        f(Some(&live))
    }
}

/// Graph search over the live rows (tombstoned rows are never returned).
impl VectorIndex for IndexVersion {
    fn dim(&self) -> usize {
        self.info.dim
    }
    fn len(&self) -> usize {
        self.ids.len()
    }
    fn default_ef(&self) -> usize {
        self.hnsw.params().ef_search
    }
    fn search_batch_with_ef(
        &self,
        queries: &[f32],
        k: usize,
        ef: usize,
        filter: Option<RowFilter<'_>>,
    ) -> Result<Vec<Vec<Hit>>> {
        self.with_live_filter(filter, |f| self.hnsw.search_batch_with_ef(queries, k, ef, f))
    }
    fn search_with_ef(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<RowFilter<'_>>,
    ) -> Result<Vec<Hit>> {
        self.with_live_filter(filter, |f| self.hnsw.search_with_ef(query, k, ef, f))
    }
}

/// Graph hits as the seam names them: by row.
fn found(hits: Vec<Hit>) -> Vec<Found> {
    hits.into_iter()
        .map(|h| Found {
            key: FoundKey::Row(h.row),
            score: h.score,
        })
        .collect()
}

/// The directory backend's [`ItemSearch`]: rows are numbered here, so filters and hits speak
/// [`ItemKey::Row`]; exact search scans the live rows.
impl ItemSearch for IndexVersion {
    fn facts(&self) -> VersionFacts {
        VersionFacts {
            kind: "directory",
            path: self
                .dir
                .parent()
                .and_then(Path::parent)
                .unwrap_or(&self.dir)
                .display()
                .to_string(),
            version: self.version,
            items: self.live_len(),
            rows: self.ids.len(),
            model_fingerprint: self.info.model_fingerprint.clone(),
            dim: self.info.dim,
            hnsw: self.info.hnsw,
        }
    }
    fn version(&self) -> VersionId {
        self.version
    }
    fn model_fingerprint(&self) -> &str {
        &self.info.model_fingerprint
    }
    fn dim(&self) -> usize {
        self.info.dim
    }
    fn default_ef(&self) -> usize {
        self.hnsw.params().ef_search
    }
    fn row_ids(&self) -> Option<&[String]> {
        Some(&self.ids)
    }
    fn is_live_row(&self, row: u32) -> bool {
        self.is_live(row)
    }
    fn vector(&self, item: ItemKey<'_>) -> Result<Option<Vec<f32>>> {
        let row = match item {
            ItemKey::Row(r) => (r < self.ids.len() as u32 && self.is_live(r)).then_some(r),
            ItemKey::Id(id) => self.row_of(id),
        };
        Ok(row.map(|r| self.vector(r).to_vec()))
    }
    fn search(&self, query: &[f32], spec: SearchSpec, filter: &ItemFilter<'_>) -> Result<Vec<Found>> {
        let nq = check_batch(query, self.info.dim, std::slice::from_ref(filter))?;
        if nq != 1 {
            return Err(Error::Dimension {
                what: "query".into(),
                expected: self.info.dim,
                got: query.len(),
            });
        }
        self.search_one(query, spec, filter)
    }
    fn search_batch(
        &self,
        queries: &[f32],
        spec: SearchSpec,
        filters: &[ItemFilter<'_>],
    ) -> Result<Vec<Vec<Found>>> {
        let nq = check_batch(queries, self.info.dim, filters)?;
        if filters.len() <= 1 && nq > 1 {
            // One filter for the whole batch: the batched search (one task per query).
            let f = filters.first().copied().unwrap_or(ItemFilter::NONE);
            let pred = |r: u32| f.keeps(ItemKey::Row(r));
            let rows: Option<RowFilter<'_>> = f.keep.is_some().then_some(&pred);
            let hits = if spec.exact {
                self.with_live_filter(rows, |g| self.exact().search_batch(queries, spec.k, g))?
            } else {
                VectorIndex::search_batch_with_ef(self, queries, spec.k, self.ef_of(spec), rows)?
            };
            return Ok(hits.into_iter().map(found).collect());
        }
        let dim = self.info.dim;
        (0..nq)
            .into_par_iter()
            .map(|i| self.search_one(&queries[i * dim..(i + 1) * dim], spec, filter_of(filters, i)))
            .collect()
    }
    fn read_live(&self, _progress: &dyn Progress) -> Result<ItemRows> {
        let mut out = ItemRows::bare(
            Vec::with_capacity(self.live_len()),
            Vec::with_capacity(self.live_len() * self.info.dim),
        );
        for r in (0..self.ids.len() as u32).filter(|&r| self.is_live(r)) {
            out.ids.push(self.ids[r as usize].clone());
            out.vectors.extend_from_slice(self.vector(r));
        }
        Ok(out)
    }
}
