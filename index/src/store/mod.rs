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
//!
//! The directory backend, by concept: `info.rs` (what a version records), `lock.rs` (the writer lock and the commit of a version), `writer.rs` (build, add,
//! rebuild of the live set, compact), `reader.rs` (opening a version and searching it), and here the
//! directory itself: its layout, `CURRENT`, the version list, gc, and [`VersionStore`].

mod info;
mod live;
mod lock;
mod reader;
mod writer;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use twotower_data::progress::Progress;

use crate::backend::{ItemSearch, StoreStamp, VersionStore};
use crate::embeddings::EMBEDDINGS_FILE;
use crate::error::{Error, Result};
use crate::hnsw::HnswParams;
use crate::rows::ItemRows;
use lock::WriterLock;

pub(crate) use crate::reports::{AddReport, GcReport, RebuildReport, VersionId};
pub use info::IndexInfo;
pub use reader::IndexVersion;

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

/// The directory backend: versions are directories, `CURRENT` the pointer.
impl VersionStore for IndexDir {
    fn kind(&self) -> &'static str {
        "directory"
    }
    fn describe(&self) -> String {
        self.root.display().to_string()
    }
    fn check_location(&self) -> Result<()> {
        self.check_root()
    }
    fn versions(&self) -> Result<Vec<VersionId>> {
        IndexDir::versions(self)
    }
    fn current(&self) -> Result<Option<VersionId>> {
        match IndexDir::current(self) {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoCurrent { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn current_required(&self) -> Result<VersionId> {
        IndexDir::current(self)
    }
    fn open_current(&self, expected_model: Option<&str>) -> Result<Box<dyn ItemSearch>> {
        Ok(Box::new(IndexDir::open_current(self, expected_model)?))
    }
    fn verify_current(&self) -> Result<()> {
        self.verify_version(self.current()?)
    }
    fn build(
        &self,
        rows: &ItemRows,
        dim: usize,
        params: HnswParams,
        model_fingerprint: &str,
        progress: &dyn Progress,
    ) -> Result<VersionId> {
        self.build_version(&rows.ids, &rows.vectors, dim, params, model_fingerprint, progress)
    }
    fn add(
        &self,
        rows: &ItemRows,
        _dim: usize,
        remove: &[String],
        model_fingerprint: &str,
        progress: &dyn Progress,
    ) -> Result<AddReport> {
        self.add_items(&rows.ids, &rows.vectors, remove, model_fingerprint, progress)
    }
    fn rebuild_live(
        &self,
        rows: &ItemRows,
        dim: usize,
        params: Option<HnswParams>,
        model_fingerprint: &str,
        progress: &dyn Progress,
    ) -> Result<RebuildReport> {
        IndexDir::rebuild_live(
            self,
            &rows.ids,
            &rows.vectors,
            dim,
            params,
            model_fingerprint,
            progress,
        )
    }
    fn gc(&self, keep_last: usize) -> Result<GcReport> {
        IndexDir::gc(self, keep_last)
    }
    /// `CURRENT`'s bytes, and the size and time of `CURRENT`, the version directory it names and
    /// each file in it: a few `stat`s, no checksum.
    fn stamp(&self) -> StoreStamp {
        let mut stamp = StoreStamp::default();
        let current_path = self.root.join(CURRENT_FILE);
        stat(&mut stamp, &current_path);
        stamp.current = fs::read(&current_path).ok();
        let name = stamp
            .current
            .as_deref()
            .and_then(|c| std::str::from_utf8(c).ok())
            .map(str::trim);
        if let Some(name) = name.filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
            let dir = self.root.join(VERSIONS_DIR).join(name);
            stat(&mut stamp, &dir);
            if let Ok(entries) = fs::read_dir(&dir) {
                let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
                paths.sort();
                for p in paths {
                    stat(&mut stamp, &p);
                }
            }
        }
        stamp
    }
}

fn stat(stamp: &mut StoreStamp, p: &Path) {
    if let Ok(m) = fs::metadata(p) {
        stamp
            .files
            .push((p.display().to_string(), m.len(), m.modified().ok()));
    }
}
