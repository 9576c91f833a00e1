//! Following an index directory without hammering it: [`ReloadGate`] retries a failed reload only after
//! what a reload reads (CURRENT, the version it names, the model's manifest) has changed, and no sooner
//! than a doubling backoff, so a broken CURRENT costs a few `stat`s per tick, not a checksum of every file.

use super::error::RecError;
use super::Recommender;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use twotower_index::VersionId;

/// Size and modification time of the files a reload reads, and CURRENT's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    current: Option<Vec<u8>>,
    files: Vec<(PathBuf, u64, Option<SystemTime>)>,
}

fn meta(files: &mut Vec<(PathBuf, u64, Option<SystemTime>)>, p: &Path) {
    if let Ok(m) = std::fs::metadata(p) {
        files.push((p.to_path_buf(), m.len(), m.modified().ok()));
    }
}

impl Stamp {
    /// Reads the stamp of an index directory and a model directory.
    pub fn of(index_root: &Path, model_dir: &Path) -> Stamp {
        let mut files = Vec::new();
        let current_path = index_root.join("CURRENT");
        meta(&mut files, &current_path);
        let current = std::fs::read(&current_path).ok();
        if let Some(name) = current.as_deref().and_then(|c| std::str::from_utf8(c).ok()) {
            let name = name.trim();
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
                let dir = index_root.join("versions").join(name);
                meta(&mut files, &dir);
                if let Ok(entries) = std::fs::read_dir(&dir) {
                    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
                    paths.sort();
                    for p in paths {
                        meta(&mut files, &p);
                    }
                }
            }
        }
        meta(&mut files, &model_dir.join("manifest.json"));
        Stamp { current, files }
    }

    /// The stamp of an index whose current version is named by a server (a Milvus alias): that
    /// name (`None` while the server cannot say), and the model's manifest.
    pub fn of_pointer(current: Option<String>, model_dir: &Path) -> Stamp {
        let mut files = Vec::new();
        meta(&mut files, &model_dir.join("manifest.json"));
        Stamp {
            current: current.map(String::into_bytes),
            files,
        }
    }
}

/// What one [`ReloadGate::poll`] did.
#[derive(Debug)]
pub enum Poll {
    /// CURRENT names the live version.
    Unchanged,
    /// A new version was loaded and swapped in.
    Reloaded(VersionId),
    /// A reload was tried and failed; the previous version is still live.
    Failed(RecError),
    /// An earlier reload failed and nothing it reads has changed since (or the backoff runs): not retried.
    Waiting,
}

/// Decides when to try a reload; see the module documentation.
#[derive(Debug)]
pub struct ReloadGate {
    failed: Option<Stamp>,
    next: Instant,
    backoff: Duration,
    min: Duration,
    max: Duration,
}

impl ReloadGate {
    /// A gate whose backoff after a failure starts at `min` and doubles up to `max`.
    pub fn new(min: Duration, max: Duration) -> ReloadGate {
        ReloadGate {
            failed: None,
            next: Instant::now(),
            backoff: min,
            min,
            max: max.max(min),
        }
    }

    /// Whether the last attempt failed (and nothing has succeeded since).
    pub fn is_failing(&self) -> bool {
        self.failed.is_some()
    }

    /// Follows CURRENT when it moved, unless the last failure's inputs are unchanged.
    pub fn poll(&mut self, rec: &Recommender) -> Poll {
        if let Some(stamp) = &self.failed {
            if Instant::now() < self.next || rec.watch_stamp() == *stamp {
                return Poll::Waiting;
            }
        }
        let stamp = rec.watch_stamp();
        match rec.reload_if_changed() {
            Ok(v) => {
                self.failed = None;
                self.backoff = self.min;
                match v {
                    Some(v) => Poll::Reloaded(v),
                    None => Poll::Unchanged,
                }
            }
            Err(e) => {
                self.failed = Some(stamp);
                self.next = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(self.max);
                Poll::Failed(e)
            }
        }
    }
}
