//! The index directory: immutable versions and the `CURRENT` pointer.
//!
//! ```text
//! INDEX/CURRENT                 "0003\n", replaced atomically (temp file, fsync, rename)
//! INDEX/versions/0003/          written as a hidden staging dir, renamed into place when complete
//!     graph.links               the native graph (format 2; see graph_file.rs), or, in format-1
//!                               versions and those built with GraphBuilder::HnswRs:
//!     graph.hnsw.graph          hnsw_rs graph dump
//!     graph.hnsw.data           hnsw_rs vector dump
//!     ids.json                  row -> item id
//!     tombstones.json           rows hidden from results (replaced or removed items)
//!     embeddings.parquet        (item, vector) of every row, normalised
//!     manifest.json             kind "index", counts, checksums, IndexInfo under "extra"
//! ```
//! A writer never touches the version `CURRENT` names, so readers keep working during a rebuild and
//! a crash at any point leaves the previous version live. Loading checks the manifest, the model
//! fingerprint and every checksum before hnsw_rs's loader (which panics on bad input) sees a byte.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use twotower_data::artifact::{write_file_atomic, Manifest, StagingDir};
use twotower_data::progress::Progress;

use crate::embeddings::{read_embeddings, write_embeddings, EMBEDDINGS_FILE};
use crate::error::{Error, Result};
use crate::exact::ExactIndex;
use crate::graph_file;
use crate::hnsw::{GraphBuilder, HnswIndex, HnswParams};
use crate::metric::normalize_rows;
use crate::search::{Hit, RowFilter, VectorIndex};

/// Manifest kind of an index version.
pub const INDEX_KIND: &str = "index";
/// Newest on-disk format this build reads, and the one it writes for native graphs (`graph.links`).
/// Format 1 (an hnsw_rs dump) is still read, and written for graphs built by hnsw_rs.
pub const INDEX_FORMAT_VERSION: u32 = 2;
/// The format of versions that hold an hnsw_rs dump instead of `graph.links`.
const HNSW_RS_FORMAT_VERSION: u32 = 1;
/// The metric name recorded in manifests.
pub const METRIC: &str = "cosine (unit vectors, squared L2 in the graph)";

const CURRENT_FILE: &str = "CURRENT";
const LOCK_FILE: &str = "LOCK";
const VERSIONS_DIR: &str = "versions";
const GRAPH_BASENAME: &str = "graph";
const NATIVE_GRAPH_FILE: &str = "graph.links";
const IDS_FILE: &str = "ids.json";
const TOMBSTONES_FILE: &str = "tombstones.json";
/// Staging leftovers older than this are crash debris, not a concurrent writer's work in progress.
const STALE_STAGING: Duration = Duration::from_secs(3600);

/// A version number; shown and stored as four digits (`0007`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VersionId(pub u32);

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.0)
    }
}

impl FromStr for VersionId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        s.trim().parse().map(VersionId)
    }
}

/// What a version's manifest records about the index (its `extra` field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexInfo {
    /// Fingerprint of the model whose item tower produced the vectors.
    pub model_fingerprint: String,
    /// Always [`METRIC`].
    pub metric: String,
    /// Vector dimension.
    pub dim: usize,
    /// Graph parameters.
    pub hnsw: HnswParams,
    /// Rows in the graph, tombstoned ones included.
    pub rows: usize,
    /// Rows visible in results.
    pub live: usize,
    /// The version this one was derived from by `add`; `None` for a full build.
    pub parent: Option<VersionId>,
}

/// What [`IndexDir::add_items`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddReport {
    /// The new version (now `CURRENT`), or the unchanged `CURRENT` when nothing changed.
    pub version: VersionId,
    /// Whether a new version was committed (`false`: every item was unchanged and none removed).
    pub committed: bool,
    /// Ids that were not in the index before.
    pub added: usize,
    /// Ids whose old row was tombstoned and replaced by a new one.
    pub replaced: usize,
    /// Ids already live with a bit-identical (normalised) vector: skipped.
    pub unchanged: usize,
    /// Ids removed (tombstoned) without replacement.
    pub removed: usize,
    /// Ids asked to be removed that were not live in the index.
    pub not_found: Vec<String>,
}

impl AddReport {
    /// Nothing changed yet in `version`.
    pub(crate) fn none(version: VersionId) -> AddReport {
        AddReport {
            version,
            committed: false,
            added: 0,
            replaced: 0,
            unchanged: 0,
            removed: 0,
            not_found: Vec::new(),
        }
    }
}

/// What [`IndexDir::rebuild_live`] (and [`IndexDir::compact`]) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// The new version (now `CURRENT`).
    pub version: VersionId,
    /// The version whose live set was rebuilt.
    pub parent: VersionId,
    /// Rows of the new version: the parent's live items, nothing else.
    pub rows: usize,
    /// Live items that got the vector the caller gave.
    pub reembedded: usize,
    /// Live items that kept their stored vector (same model, no new vector given).
    pub kept: usize,
    /// Ids the caller gave a vector for that are not live in the parent (not added: a rebuild
    /// never brings back a removed item nor adds a new one).
    pub not_live: Vec<String>,
}

/// What [`IndexDir::gc`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Versions deleted.
    pub removed: Vec<VersionId>,
    /// Versions kept (the newest ones and `CURRENT`).
    pub kept: Vec<VersionId>,
    /// Stale staging directories (debris of crashed writers) deleted.
    pub debris: Vec<PathBuf>,
}

/// Held by a writer from reading `CURRENT` to moving it: two writers at once (a rebuild beside an
/// `add`, say) must neither claim the same version number nor both derive from one parent. An OS file
/// lock on `LOCK`, so a writer that is killed releases it.
struct WriterLock<'a> {
    dir: &'a IndexDir,
    _file: fs::File,
}

impl WriterLock<'_> {
    /// Writes a complete version into a staging directory, renames it into `versions/NNNN`, then
    /// moves `CURRENT`. Any failure before the last step leaves `CURRENT` where it was.
    fn commit_version(
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
        progress.set_message("checksums");
        let mut m = Manifest::new(INDEX_KIND, format);
        for f in required_files(format) {
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
    fn rebuild(
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
                rows.extend_from_slice(cur.exact.row(r));
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

impl IndexInfo {
    /// A full build's description: `rows` rows, all live, no parent.
    fn fresh(model_fingerprint: &str, dim: usize, hnsw: HnswParams, rows: usize) -> Self {
        IndexInfo {
            model_fingerprint: model_fingerprint.to_string(),
            metric: METRIC.to_string(),
            dim,
            hnsw,
            rows,
            live: rows,
            parent: None,
        }
    }
}

/// An index directory on disk. Cheap to construct; every method does its own I/O.
#[derive(Debug, Clone)]
pub struct IndexDir {
    root: PathBuf,
}

impl IndexDir {
    /// Names the directory; nothing is read or created yet.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        IndexDir { root: root.into() }
    }

    /// The index root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where version `v` lives.
    pub fn version_path(&self, v: VersionId) -> PathBuf {
        self.root.join(VERSIONS_DIR).join(v.to_string())
    }

    /// The version `CURRENT` names.
    pub fn current(&self) -> Result<VersionId> {
        let p = self.root.join(CURRENT_FILE);
        let text = match fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoCurrent {
                    dir: self.root.clone(),
                })
            }
            Err(e) => return Err(Error::io(&p, e)),
        };
        text.parse()
            .map_err(|_| Error::corrupt(&p, format!("expected a version number, found {:?}", text.trim())))
    }

    /// Committed versions, oldest first (staging leftovers and stray files are ignored).
    pub fn versions(&self) -> Result<Vec<VersionId>> {
        let dir = self.root.join(VERSIONS_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.len() >= 4 && name.bytes().all(|b| b.is_ascii_digit()) && entry.path().is_dir() {
                if let Ok(v) = name.parse() {
                    out.push(v);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Refuses a root that exists but is not an index (a dataset, a model, any other files), so a
    /// writer never puts versions inside someone else's directory. An index holds only `CURRENT`,
    /// `LOCK`, `versions/` and the temp files of an interrupted `CURRENT` swap.
    pub fn check_root(&self) -> Result<()> {
        let not_index = |problem: String| Error::NotAnIndex {
            dir: self.root.clone(),
            problem,
        };
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) if self.root.exists() && !self.root.is_dir() => {
                return Err(not_index("it is a file".into()))
            }
            Err(e) => return Err(Error::io(&self.root, e)),
        };
        let mut foreign = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let ours = match name.as_str() {
                CURRENT_FILE | LOCK_FILE => !is_dir,
                VERSIONS_DIR => is_dir,
                n => n.starts_with(&format!(".{CURRENT_FILE}.tmp-")),
            };
            if !ours {
                foreign.push(if is_dir { format!("{name}/") } else { name });
            }
        }
        if foreign.is_empty() {
            return Ok(());
        }
        foreign.sort();
        // Another twotower artifact says what it is.
        let manifest = self.root.join("manifest.json");
        let kind = fs::read(&manifest)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string));
        if let Some(kind) = kind {
            return Err(not_index(format!(
                "its manifest.json says it is a {kind} artifact, not an index"
            )));
        }
        Err(not_index(format!(
            "it holds {} (an index holds only CURRENT, LOCK and versions/)",
            crate::error::list_ids(&foreign, 5)
        )))
    }

    fn lock_writers(&self) -> Result<WriterLock<'_>> {
        self.check_root()?;
        fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        let path = self.root.join(LOCK_FILE);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        file.lock().map_err(|e| Error::io(&path, e))?;
        Ok(WriterLock {
            dir: self,
            _file: file,
        })
    }

    fn next_version(&self) -> Result<VersionId> {
        let newest = self.versions()?.last().copied();
        let current = self.current().ok();
        Ok(VersionId(newest.max(current).map_or(1, |v| v.0 + 1)))
    }

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
        let cur = self.open_current(None)?;
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
        let cur = self.open_current(None)?;
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
        let mut cur = self.open_current(Some(model_fingerprint))?;
        let dim = cur.info.dim;
        let given = normalize_rows(dim, vectors, Some(ids))?;
        let mut report = AddReport::none(cur.version);
        for id in remove {
            match cur.rows_by_id.remove(id.as_str()) {
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
            if let Some(&old) = cur.rows_by_id.get(id.as_str()) {
                if same_bits(cur.exact.row(old), v) {
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
            match cur.rows_by_id.insert(id.clone(), row) {
                Some(old) => {
                    cur.tombstones[old as usize] = true;
                    report.replaced += 1;
                }
                None => report.added += 1,
            }
            cur.ids.push(id);
            cur.tombstones.push(false);
        }
        let mut rows = cur.exact.rows().to_vec();
        rows.extend_from_slice(&new_rows);
        let dead: Vec<u32> = (0..cur.tombstones.len() as u32)
            .filter(|&r| cur.tombstones[r as usize])
            .collect();
        let info = IndexInfo {
            rows: cur.ids.len(),
            live: cur.ids.len() - dead.len(),
            parent: Some(cur.version),
            ..cur.info.clone()
        };
        report.version = lock.commit_version(&cur.hnsw, &cur.ids, &rows, &dead, info, progress)?;
        report.committed = true;
        Ok(report)
    }

    /// Loads the version `CURRENT` names. With `expected_model`, an index built from another
    /// model's embeddings is refused.
    pub fn open_current(&self, expected_model: Option<&str>) -> Result<IndexVersion> {
        let v = self.current()?;
        self.open_version(v, expected_model)
    }

    /// Loads version `v`: manifest, model fingerprint and every checksum are checked before the
    /// graph loader runs, so a damaged or foreign index is an error, never a panic.
    pub fn open_version(&self, version: VersionId, expected_model: Option<&str>) -> Result<IndexVersion> {
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
        manifest.verify(&dir)?;
        let ids: Vec<String> = read_json(&dir.join(IDS_FILE))?;
        let dead: Vec<u32> = read_json(&dir.join(TOMBSTONES_FILE))?;
        let epath = dir.join(EMBEDDINGS_FILE);
        let (emb_ids, rows) = read_embeddings(&epath, info.dim)?;
        if ids.len() != info.rows || emb_ids != ids {
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
        let mut tombstones = vec![false; ids.len()];
        for &r in &dead {
            *tombstones.get_mut(r as usize).ok_or_else(|| {
                Error::corrupt(dir.join(TOMBSTONES_FILE), format!("row {r} out of range"))
            })? = true;
        }
        let mut rows_by_id = HashMap::with_capacity(ids.len());
        for (r, id) in ids.iter().enumerate() {
            if !tombstones[r] && rows_by_id.insert(id.clone(), r as u32).is_some() {
                return Err(Error::corrupt(
                    dir.join(IDS_FILE),
                    format!("live id {id:?} appears twice"),
                ));
            }
        }
        if rows_by_id.len() != info.live {
            return Err(Error::corrupt(&mpath, "live count disagrees with tombstones"));
        }
        let hnsw = if format == HNSW_RS_FORMAT_VERSION {
            HnswIndex::load(&dir, GRAPH_BASENAME, info.dim, ids.len(), info.hnsw)?
        } else {
            HnswIndex::load_native(&dir.join(NATIVE_GRAPH_FILE), info.dim, rows.clone(), info.hnsw)?
        };
        let exact = ExactIndex::from_normalized(info.dim, rows);
        Ok(IndexVersion {
            version,
            dir,
            info,
            manifest,
            ids,
            rows_by_id,
            tombstones,
            hnsw,
            exact,
        })
    }

    /// Deletes all but the newest `keep_last` versions (never `CURRENT`), and staging debris: that
    /// of writers no longer running at once, any other older than an hour.
    /// Holds the writer lock throughout, so it never races a writer moving `CURRENT`.
    pub fn gc(&self, keep_last: usize) -> Result<GcReport> {
        self.current()?;
        let _lock = self.lock_writers()?;
        let current = self.current()?;
        let versions = self.versions()?;
        let cut = versions.len().saturating_sub(keep_last);
        let mut report = GcReport::default();
        for (i, v) in versions.into_iter().enumerate() {
            if i >= cut || v == current {
                report.kept.push(v);
            } else {
                let p = self.version_path(v);
                fs::remove_dir_all(&p).map_err(|e| Error::io(&p, e))?;
                report.removed.push(v);
            }
        }
        let vdir = self.root.join(VERSIONS_DIR);
        if let Ok(entries) = fs::read_dir(&vdir) {
            let now = SystemTime::now();
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| now.duration_since(t).ok())
                    .is_some_and(|age| age > STALE_STAGING);
                // A dead writer's staging can never be committed, whatever its age.
                if name.starts_with('.') && (old || twotower_data::artifact::is_abandoned(&entry.path())) {
                    let p = entry.path();
                    let _ = if p.is_dir() {
                        fs::remove_dir_all(&p)
                    } else {
                        fs::remove_file(&p)
                    };
                    report.debris.push(p);
                }
            }
        }
        Ok(report)
    }
}

/// The files a version of `format` must list in its manifest.
fn required_files(format: u32) -> Vec<String> {
    let graph = if format == HNSW_RS_FORMAT_VERSION {
        vec![
            format!("{GRAPH_BASENAME}.hnsw.graph"),
            format!("{GRAPH_BASENAME}.hnsw.data"),
        ]
    } else {
        vec![NATIVE_GRAPH_FILE.to_string()]
    };
    graph
        .into_iter()
        .chain([
            IDS_FILE.to_string(),
            TOMBSTONES_FILE.to_string(),
            EMBEDDINGS_FILE.to_string(),
        ])
        .collect()
}

/// Bit-for-bit equality (`==` on floats would call 0.0 and -0.0 equal).
pub(crate) fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn check_ids(ids: &[String]) -> Result<()> {
    let mut seen = HashMap::with_capacity(ids.len());
    for (r, id) in ids.iter().enumerate() {
        if id.is_empty() {
            return Err(Error::BadIds(format!("row {r}: empty item id")));
        }
        if let Some(first) = seen.insert(id.as_str(), r) {
            return Err(Error::BadIds(format!("item id {id:?} at rows {first} and {r}")));
        }
    }
    Ok(())
}

fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Write {
        path: path.to_path_buf(),
        problem: e.to_string(),
    })?;
    fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(path, format!("invalid JSON: {e}")))
}

/// One loaded, immutable version: graph, exact index, ids and tombstones.
///
/// As a [`VectorIndex`] it searches the graph and never returns tombstoned rows.
pub struct IndexVersion {
    version: VersionId,
    dir: PathBuf,
    info: IndexInfo,
    manifest: Manifest,
    ids: Vec<String>,
    rows_by_id: HashMap<String, u32>,
    tombstones: Vec<bool>,
    hnsw: HnswIndex,
    exact: ExactIndex,
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
        self.rows_by_id.get(id).copied()
    }
    /// `false` for tombstoned (replaced or removed) rows.
    pub fn is_live(&self, row: u32) -> bool {
        !self.tombstones.get(row as usize).copied().unwrap_or(true)
    }
    /// Number of rows visible in results.
    pub fn live_len(&self) -> usize {
        self.rows_by_id.len()
    }
    /// The graph (it does not know about tombstones: filter with [`Self::is_live`]).
    pub fn hnsw(&self) -> &HnswIndex {
        &self.hnsw
    }
    /// The exact index over the same rows (tombstoned ones included).
    pub fn exact(&self) -> &ExactIndex {
        &self.exact
    }
    /// Normalised vector of `row`.
    pub fn vector(&self, row: u32) -> &[f32] {
        self.exact.row(row)
    }

    /// Graph search with an explicit `ef`, live rows only.
    pub fn search_with_ef(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<RowFilter<'_>>,
    ) -> Result<Vec<Hit>> {
        self.with_live_filter(filter, |f| self.hnsw.search_with_ef(query, k, ef, f))
    }

    /// [`Self::search_with_ef`] for each of `queries.len() / dim` row-major queries, in parallel
    /// (rayon): result `i` is exactly what `search_with_ef` answers for query `i`.
    pub fn search_batch(
        &self,
        queries: &[f32],
        k: usize,
        ef: usize,
        filter: Option<RowFilter<'_>>,
    ) -> Result<Vec<Vec<Hit>>> {
        self.with_live_filter(filter, |f| self.hnsw.search_batch_with_ef(queries, k, ef, f))
    }

    /// Live item ids, in row order: the live set a rebuild keeps.
    pub fn live_ids(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.ids.len() as u32)
            .filter(|&r| self.is_live(r))
            .map(|r| self.id(r))
    }

    /// Brute-force search, live rows only: exact answers for small catalogs and very selective filters.
    pub fn search_exact(&self, query: &[f32], k: usize, filter: Option<RowFilter<'_>>) -> Result<Vec<Hit>> {
        self.with_live_filter(filter, |f| self.exact.search(query, k, f))
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

impl VectorIndex for IndexVersion {
    fn dim(&self) -> usize {
        self.info.dim
    }
    fn len(&self) -> usize {
        self.ids.len()
    }
    fn search(&self, query: &[f32], k: usize, filter: Option<RowFilter<'_>>) -> Result<Vec<Hit>> {
        self.with_live_filter(filter, |f| self.hnsw.search(query, k, f))
    }
    fn search_batch(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<RowFilter<'_>>,
    ) -> Result<Vec<Vec<Hit>>> {
        self.with_live_filter(filter, |f| self.hnsw.search_batch(queries, k, f))
    }
}
